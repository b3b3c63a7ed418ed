/* Tests of the media module: hv_frame refcount/headroom, and an in-process loopback in which a
 * GStreamer webrtcbin sender (tests/media/sender.c) offers VP8/H.264 video, Opus audio and a
 * data channel over 127.0.0.1 and an hv_media_session answers, decodes and hands out JPEGs and
 * PCM. Checks answers (recvonly, data channel kept), connection, frame rates, PCM rates, the
 * video on/off switch, renegotiation (and the 1.22 m-line reuse refusal), bad offers, and that
 * nothing is called after hv_media_session_free. Needs a loopback interface (run in unshare -n).
 */
#include "core/metrics.h"
#include "media/media.h"
#include "sender.h"

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- fixture ---------------------------------------------------------------------------- */

typedef struct {
    int rate_hz, channels;
    uint64_t samples;
    uint64_t chunks;
    bool nonzero;
} audio_count;

typedef struct {
    hv_media_session *s;
    test_sender *snd;
    bool forward_answers; /* pass answers to the sender */

    char *last_offer;
    uint32_t next_offer_id;
    char *answer;
    uint32_t answer_id;
    unsigned answers;

    hv_media_state state;
    bool connected;
    bool failed;
    char *fail_reason;

    GPtrArray *tracks; /* "mid kind codec" */

    unsigned jpegs;
    unsigned bad_jpegs;
    int last_w, last_h; /* from hv_frame_info */
    int jpeg_w, jpeg_h; /* from the JPEG's SOF header */
    int64_t last_latency_us;

    audio_count audio[2];
    /* The newest second of 48 kHz stereo PCM, left channel, for tone analysis. */
    int16_t pcm48[48000];
    size_t pcm48_next;

    bool munge_codecs; /* add LiveKit's other codecs to the sender's offer */
    /* Replace the offer's codecs with LiveKit's whole table in the server's order (Appendix
     * A.12), and say the video track is published in track_codecs (NULL-terminated MIME
     * types; NULL: the signalling layer knows nothing of it). */
    bool livekit_table;
    const char *const *track_codecs;
    GHashTable *mid_to_track_id;

    bool freed;
    unsigned free_at_jpeg; /* free the session inside on_video_frame at this count (0 = no) */
    unsigned after_free;   /* callbacks that arrived after free */
} fixture;

/* Width and height from the first SOFn segment of a JPEG; false if none. */
static bool
jpeg_dims(const uint8_t *p, size_t len, int *w, int *h)
{
    size_t i = 2;
    while (i + 9 < len) {
        if (p[i] != 0xFF) {
            return false;
        }
        uint8_t marker = p[i + 1];
        size_t seglen = ((size_t)p[i + 2] << 8) | p[i + 3];
        if (marker >= 0xC0 && marker <= 0xC3) {
            *h = (p[i + 5] << 8) | p[i + 6];
            *w = (p[i + 7] << 8) | p[i + 8];
            return true;
        }
        i += 2 + seglen;
    }
    return false;
}

static void
on_answer(const char *sdp, uint32_t offer_id, void *user_data)
{
    fixture *fx = user_data;
    if (fx->freed) {
        fx->after_free++;
        return;
    }
    g_free(fx->answer);
    fx->answer = g_strdup(sdp);
    fx->answer_id = offer_id;
    fx->answers++;
    if (fx->forward_answers) {
        test_sender_set_answer(fx->snd, sdp);
    }
}

static void
on_local_candidate(const char *candidate, const char *sdp_mid, int mline_index, void *user_data)
{
    fixture *fx = user_data;
    if (fx->freed) {
        fx->after_free++;
        return;
    }
    g_assert_true(g_str_has_prefix(candidate, "candidate:"));
    test_sender_add_candidate(fx->snd, (unsigned)mline_index, candidate);
}

static void
on_track(const char *mid, const char *track_sid, const char *kind, const char *codec,
         void *user_data)
{
    fixture *fx = user_data;
    if (fx->freed) {
        fx->after_free++;
        return;
    }
    g_ptr_array_add(fx->tracks, g_strdup_printf("%s %s %s", mid, kind, codec));
}

static void
on_video_frame(hv_frame *jpeg, void *user_data)
{
    fixture *fx = user_data;
    if (fx->freed) {
        fx->after_free++;
        return;
    }
    g_assert_cmpint(hv_frame_kind_of(jpeg), ==, HV_FRAME_JPEG);
    const uint8_t *p = hv_frame_payload_const(jpeg);
    size_t n = hv_frame_len(jpeg);
    if (n < 4 || p[0] != 0xFF || p[1] != 0xD8 || p[n - 2] != 0xFF || p[n - 1] != 0xD9 ||
        !jpeg_dims(p, n, &fx->jpeg_w, &fx->jpeg_h)) {
        fx->bad_jpegs++;
    }
    const hv_frame_info *info = hv_frame_info_const(jpeg);
    fx->last_w = info->width;
    fx->last_h = info->height;
    fx->last_latency_us = g_get_monotonic_time() - hv_buf_stamp_us(jpeg);
    fx->jpegs++;
    if (fx->free_at_jpeg != 0 && fx->jpegs == fx->free_at_jpeg) {
        fx->freed = true;
        hv_media_session_free(fx->s);
        fx->s = NULL;
    }
}

static void
on_audio_frame(hv_frame *pcm, void *user_data)
{
    fixture *fx = user_data;
    if (fx->freed) {
        fx->after_free++;
        return;
    }
    g_assert_cmpint(hv_frame_kind_of(pcm), ==, HV_FRAME_PCM_S16LE);
    const hv_frame_info *info = hv_frame_info_const(pcm);
    for (size_t i = 0; i < G_N_ELEMENTS(fx->audio); i++) {
        audio_count *a = &fx->audio[i];
        if (a->rate_hz != info->rate_hz || a->channels != info->channels) {
            continue;
        }
        size_t n = hv_frame_len(pcm);
        g_assert_cmpuint(n % (2 * (size_t)a->channels), ==, 0);
        a->samples += n / (2 * (size_t)a->channels);
        a->chunks++;
        const uint8_t *p = hv_frame_payload_const(pcm);
        for (size_t k = 0; k + 1 < n && !a->nonzero; k += 2) {
            int16_t v = (int16_t)(p[k] | (p[k + 1] << 8));
            a->nonzero = abs(v) > 1000;
        }
        if (a->rate_hz == 48000 && a->channels == 2) {
            for (size_t k = 0; k + 3 < n; k += 4) {
                fx->pcm48[fx->pcm48_next] = (int16_t)(p[k] | (p[k + 1] << 8));
                fx->pcm48_next = (fx->pcm48_next + 1) % G_N_ELEMENTS(fx->pcm48);
            }
        }
    }
}

static void
on_state(hv_media_state state, const char *reason, void *user_data)
{
    fixture *fx = user_data;
    if (fx->freed) {
        fx->after_free++;
        return;
    }
    fx->state = state;
    if (state == HV_MEDIA_CONNECTED) {
        fx->connected = true;
    }
    if (state == HV_MEDIA_FAILED) {
        g_assert_nonnull(reason);
        fx->failed = true;
        g_free(fx->fail_reason);
        fx->fail_reason = g_strdup(reason);
    }
}

/* Inserts a payload type in front of the m-line's existing ones (at index at). */
static void
add_codec(GstSDPMedia *m, int at, const char *pt, const char *rtpmap, const char *fmtp)
{
    gst_sdp_media_insert_format(m, at, pt);
    g_autofree char *map = g_strdup_printf("%s %s", pt, rtpmap);
    gst_sdp_media_add_attribute(m, "rtpmap", map);
    if (fmtp != NULL) {
        g_autofree char *f = g_strdup_printf("%s %s", pt, fmtp);
        gst_sdp_media_add_attribute(m, "fmtp", f);
    }
}

/* The payload types LiveKit offers besides the publisher's codec (protocol doc §9.1), put in
 * front: webrtcbin 1.22 answers only the first codec that survives its intersection with the
 * codec preferences, so without filtering the answer would pick AV1 / RED. */
static char *
add_livekit_codecs(const char *sdp)
{
    GstSDPMessage *msg = NULL;
    g_assert_cmpint(gst_sdp_message_new_from_text(sdp, &msg), ==, GST_SDP_OK);
    for (unsigned i = 0; i < gst_sdp_message_medias_len(msg); i++) {
        GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media(msg, i);
        if (strcmp(gst_sdp_media_get_media(m), "video") == 0) {
            int at = 0;
            add_codec(m, at++, "35", "AV1/90000", NULL);
            add_codec(m, at++, "36", "rtx/90000", "apt=35");
            add_codec(m, at++, "116", "H265/90000", NULL);
            add_codec(m, at++, "125", "H264/90000",
                      "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f");
            add_codec(m, at++, "126", "rtx/90000", "apt=125");
            add_codec(m, at++, "108", "H264/90000",
                      "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f");
            add_codec(m, at++, "109", "rtx/90000", "apt=108");
            add_codec(m, at++, "98", "VP9/90000", "profile-id=0");
            add_codec(m, (int)gst_sdp_media_formats_len(m), "97", "rtx/90000", "apt=96");
        } else if (strcmp(gst_sdp_media_get_media(m), "audio") == 0) {
            add_codec(m, 0, "63", "red/48000/2", "111/111");
            add_codec(m, 1, "0", "PCMU/8000", NULL);
        }
    }
    char *text = gst_sdp_message_as_text(msg);
    gst_sdp_message_free(msg);
    return text;
}

/* livekit-server's subscriber codec table (Appendix A.12), in its order, each with its RTX. */
static const struct {
    const char *pt, *rtpmap, *fmtp, *rtx;
} livekit_video_table[] = {
    {"96", "VP8/90000", NULL, "97"},
    {"98", "VP9/90000", "profile-id=0", "99"},
    {"100", "VP9/90000", "profile-id=1", "101"},
    {"125", "H264/90000", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
     "126"},
    {"108", "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
     "109"},
    {"123", "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032",
     "124"},
    {"39", "H264/90000", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f",
     "40"},
    {"106", "H264/90000", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
     "107"},
    {"35", "AV1/90000", NULL, "36"},
    {"116", "H265/90000", NULL, "117"},
};

/* The offer with every video m-line's codecs replaced by LiveKit's table, and audio by Opus,
 * RED, PCMU, PCMA (the feedback and the rest of the m-line stay). */
static char *
livekit_table_offer(const char *sdp)
{
    GstSDPMessage *msg = NULL;
    g_assert_cmpint(gst_sdp_message_new_from_text(sdp, &msg), ==, GST_SDP_OK);
    for (unsigned i = 0; i < gst_sdp_message_medias_len(msg); i++) {
        GstSDPMedia *m = (GstSDPMedia *)gst_sdp_message_get_media(msg, i);
        const char *media = gst_sdp_media_get_media(m);
        bool video = strcmp(media, "video") == 0;
        if (!video && strcmp(media, "audio") != 0) {
            continue;
        }
        while (gst_sdp_media_formats_len(m) > 0) {
            gst_sdp_media_remove_format(m, 0);
        }
        for (unsigned k = 0; k < gst_sdp_media_attributes_len(m);) {
            const char *key = gst_sdp_media_get_attribute(m, k)->key;
            if (strcmp(key, "rtpmap") == 0 || strcmp(key, "fmtp") == 0 ||
                strcmp(key, "rtcp-fb") == 0) {
                gst_sdp_media_remove_attribute(m, k);
            } else {
                k++;
            }
        }
        int at = 0;
        if (video) {
            /* LiveKit's msid: stream "PA_<publisher>|TR_<track>", track "TR_<track>" (A.3). */
            for (unsigned k = 0; k < gst_sdp_media_attributes_len(m);) {
                const char *key = gst_sdp_media_get_attribute(m, k)->key;
                if (strcmp(key, "msid") == 0 || strcmp(key, "ssrc") == 0) {
                    gst_sdp_media_remove_attribute(m, k);
                } else {
                    k++;
                }
            }
            gst_sdp_media_add_attribute(m, "msid", "PA_test|TR_video TR_video");
            for (size_t c = 0; c < G_N_ELEMENTS(livekit_video_table); c++) {
                add_codec(m, at++, livekit_video_table[c].pt, livekit_video_table[c].rtpmap,
                          livekit_video_table[c].fmtp);
                g_autofree char *apt = g_strdup_printf("apt=%s", livekit_video_table[c].pt);
                add_codec(m, at++, livekit_video_table[c].rtx, "rtx/90000", apt);
            }
        } else {
            add_codec(m, at++, "111", "OPUS/48000/2", "minptime=10;useinbandfec=1;sprop-stereo=1");
            add_codec(m, at++, "63", "red/48000/2", "111/111");
            add_codec(m, at++, "0", "PCMU/8000", NULL);
            add_codec(m, at++, "8", "PCMA/8000", NULL);
        }
    }
    char *text = gst_sdp_message_as_text(msg);
    gst_sdp_message_free(msg);
    return text;
}

static const char *const *
fixture_track_codecs(const char *track_sid, void *data)
{
    fixture *fx = data;
    return strcmp(track_sid, "TR_video") == 0 ? fx->track_codecs : NULL;
}

static void
on_sender_offer(const char *sdp, void *user_data)
{
    fixture *fx = user_data;
    g_free(fx->last_offer);
    fx->last_offer = fx->livekit_table  ? livekit_table_offer(sdp)
                     : fx->munge_codecs ? add_livekit_codecs(sdp)
                                        : g_strdup(sdp);
    if (fx->s != NULL) {
        hv_media_offer_info info = {fx->mid_to_track_id, fixture_track_codecs, fx};
        hv_media_session_set_offer(fx->s, fx->last_offer, fx->next_offer_id++, &info);
    }
}

static void
on_sender_candidate(unsigned mline, const char *candidate, void *user_data)
{
    fixture *fx = user_data;
    if (fx->s == NULL) {
        return;
    }
    /* Every other candidate comes as "a=..." with only a mid (the sender's mids are
     * "video0"/"audio1"/...; with BUNDLE all candidates are for m-line 0). */
    static unsigned n;
    if (n++ % 2 == 1 && fx->last_offer != NULL) {
        GstSDPMessage *msg = NULL;
        g_assert_cmpint(gst_sdp_message_new_from_text(fx->last_offer, &msg), ==, GST_SDP_OK);
        const char *mid =
            gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(msg, mline), "mid");
        g_autofree char *line = g_strdup_printf("a=%s", candidate);
        hv_media_session_add_candidate(fx->s, line, mid, -1);
        gst_sdp_message_free(msg);
        return;
    }
    hv_media_session_add_candidate(fx->s, candidate, NULL, (int)mline);
}

static const hv_media_callbacks callbacks = {
    .on_answer = on_answer,
    .on_local_candidate = on_local_candidate,
    .on_track = on_track,
    .on_video_frame = on_video_frame,
    .on_audio_frame = on_audio_frame,
    .on_state = on_state,
};

static void
fixture_start(fixture *fx, const test_sender_config *scfg)
{
    memset(fx, 0, sizeof(*fx));
    fx->tracks = g_ptr_array_new_with_free_func(g_free);
    fx->forward_answers = true;
    fx->next_offer_id = 7;
    fx->audio[0] = (audio_count){.rate_hz = 48000, .channels = 2};
    fx->audio[1] = (audio_count){.rate_hz = 44100, .channels = 1};
    hv_media_config cfg = {.ice_servers = NULL, .ice_addresses = "127.0.0.1", .jpeg_quality = 80};
    GError *error = NULL;
    fx->s = hv_media_session_new(&cfg, &callbacks, fx, &error);
    g_assert_no_error(error);
    g_assert_nonnull(fx->s);
    test_sender_callbacks scb = {.on_offer = on_sender_offer, .on_candidate = on_sender_candidate};
    fx->snd = test_sender_new(scfg, &scb, fx);
}

static void
fixture_stop(fixture *fx)
{
    if (fx->s != NULL) {
        fx->freed = true;
        hv_media_session_free(fx->s);
        fx->s = NULL;
    }
    test_sender_free(fx->snd);
    /* Let posted jobs of both sides run (they must not call anything). */
    for (int i = 0; i < 50; i++) {
        g_main_context_iteration(NULL, FALSE);
    }
    g_assert_cmpuint(fx->after_free, ==, 0);
    g_ptr_array_unref(fx->tracks);
    if (fx->mid_to_track_id != NULL) {
        g_hash_table_unref(fx->mid_to_track_id);
    }
    g_free(fx->answer);
    g_free(fx->last_offer);
    g_free(fx->fail_reason);
}

static gboolean
wake(gpointer p)
{
    return G_SOURCE_CONTINUE;
}

typedef bool (*pred_fn)(fixture *fx);

/* Runs the main loop until pred is true or timeout_ms passed; returns pred's value. */
static bool
run_until(fixture *fx, pred_fn pred, int timeout_ms)
{
    guint tick = g_timeout_add(10, wake, NULL);
    int64_t end = g_get_monotonic_time() + (int64_t)timeout_ms * 1000;
    while ((pred == NULL || !pred(fx)) && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_source_remove(tick);
    return pred != NULL && pred(fx);
}

static void
run_for(fixture *fx, int ms)
{
    (void)run_until(fx, NULL, ms);
}

static bool
is_connected(fixture *fx)
{
    return fx->connected || fx->failed;
}

static bool
has_jpeg(fixture *fx)
{
    return fx->jpegs > 0 || fx->failed;
}

static bool
has_audio(fixture *fx)
{
    return (fx->audio[0].nonzero && fx->audio[1].nonzero) || fx->failed;
}

static bool
has_answer(fixture *fx)
{
    return fx->answers > 0 || fx->failed;
}

/* Every audio/video m-line recvonly (or inactive when allowed), m=application kept. */
static void
check_answer(const char *sdp, unsigned expect_media)
{
    GstSDPMessage *msg = NULL;
    g_assert_cmpint(gst_sdp_message_new_from_text(sdp, &msg), ==, GST_SDP_OK);
    unsigned av = 0;
    bool app = false;
    g_assert_nonnull(gst_sdp_message_get_attribute_val(msg, "group"));
    for (unsigned i = 0; i < gst_sdp_message_medias_len(msg); i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(msg, i);
        const char *media = gst_sdp_media_get_media(m);
        if (strcmp(media, "application") == 0) {
            app = true;
            g_assert_cmpuint(gst_sdp_media_get_port(m), !=, 0);
            g_assert_nonnull(gst_sdp_media_get_attribute_val(m, "sctp-port"));
            continue;
        }
        av++;
        g_assert_nonnull(gst_sdp_media_get_attribute_val(m, "recvonly"));
        g_assert_null(gst_sdp_media_get_attribute_val(m, "sendrecv"));
        g_assert_null(gst_sdp_media_get_attribute_val(m, "sendonly"));
        /* Only codecs we decode (plus RTX) are answered. */
        for (unsigned k = 0; k < gst_sdp_media_attributes_len(m); k++) {
            const GstSDPAttribute *a = gst_sdp_media_get_attribute(m, k);
            if (strcmp(a->key, "rtpmap") == 0) {
                g_assert_true(strstr(a->value, "VP8") || strstr(a->value, "H264") ||
                              strstr(a->value, "OPUS") || strstr(a->value, "rtx") ||
                              strstr(a->value, "RTX") || strstr(a->value, "VP9") ||
                              strstr(a->value, "H265"));
            }
        }
    }
    g_assert_true(app);
    g_assert_cmpuint(av, ==, expect_media);
    gst_sdp_message_free(msg);
}

static void
connect_and_check(fixture *fx, unsigned expect_media)
{
    test_sender_offer(fx->snd);
    g_assert_true(run_until(fx, has_answer, 10000));
    g_assert_false(fx->failed);
    g_assert_cmpuint(fx->answer_id, ==, 7);
    check_answer(fx->answer, expect_media);
    g_assert_true(run_until(fx, is_connected, 15000));
    g_assert_false(fx->failed);
    g_assert_cmpint(fx->state, ==, HV_MEDIA_CONNECTED);
}

/* Measures JPEGs/s over at least 2 s after the first frame. */
static double
measure_fps(fixture *fx, int ms)
{
    g_assert_true(run_until(fx, has_jpeg, 10000));
    g_assert_false(fx->failed);
    run_for(fx, 300); /* past the first keyframe burst */
    unsigned n0 = fx->jpegs;
    int64_t t0 = g_get_monotonic_time();
    run_for(fx, ms);
    double secs = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
    return (fx->jpegs - n0) / secs;
}

static unsigned jpeg_mark;

static bool
jpegs_grew(fixture *fx)
{
    return fx->jpegs > jpeg_mark + 2 || fx->failed;
}

static void
check_video(fixture *fx, int w, int h, int fps)
{
    hv_media_session_set_video_enabled(fx->s, true);
    double got = measure_fps(fx, 2500);
    g_test_message("video: %.1f JPEG/s (want >= %.1f), last latency %.1f ms", got, 0.8 * fps,
                   fx->last_latency_us / 1000.0);
    g_assert_cmpfloat(got, >=, 0.8 * fps);
    g_assert_cmpuint(fx->bad_jpegs, ==, 0);
    g_assert_cmpint(fx->last_w, ==, w);
    g_assert_cmpint(fx->last_h, ==, h);
    g_assert_cmpint(fx->jpeg_w, ==, w);
    g_assert_cmpint(fx->jpeg_h, ==, h);
    g_assert_cmpint(fx->last_latency_us, >=, 0);
    g_assert_cmpint(fx->last_latency_us, <, 2 * G_USEC_PER_SEC);
    hv_media_stats st;
    hv_media_session_get_stats(fx->s, &st);
    g_assert_cmpint(st.width, ==, w);
    g_assert_cmpint(st.height, ==, h);
    g_assert_cmpfloat(st.fps, >=, 0.8 * fps);
    g_assert_cmpfloat(st.fps, <=, 1.3 * fps);
    g_assert_cmpuint(st.video_frames_encoded, >=, fx->jpegs);
    g_assert_cmpuint(st.video_frames_decoded, >=, st.video_frames_encoded);
    g_assert_cmpuint(st.bytes_received, >, 0);

    /* Off: no decode, no JPEG. */
    hv_media_session_set_video_enabled(fx->s, false);
    run_for(fx, 500);
    hv_media_session_get_stats(fx->s, &st);
    unsigned n_off = fx->jpegs;
    uint64_t dec_off = st.video_frames_decoded;
    uint64_t bytes_off = st.bytes_received;
    run_for(fx, 1500);
    hv_media_session_get_stats(fx->s, &st);
    g_assert_cmpuint(fx->jpegs, ==, n_off);
    g_assert_cmpuint(st.video_frames_decoded, ==, dec_off);
    g_assert_cmpuint(st.bytes_received, >, bytes_off); /* RTP still arrives */
    g_assert_cmpfloat(st.fps, ==, 0.0);

    /* On again: a keyframe is requested (the sender's own interval is 10 s). */
    jpeg_mark = fx->jpegs;
    int64_t t_on = g_get_monotonic_time();
    hv_media_session_set_video_enabled(fx->s, true);
    g_assert_true(run_until(fx, jpegs_grew, 3000));
    g_test_message("video re-enabled: frames again after %.0f ms",
                   (g_get_monotonic_time() - t_on) / 1000.0);
}

static void
check_audio(fixture *fx)
{
    hv_media_session_add_audio_format(fx->s, 48000, 2);
    hv_media_session_add_audio_format(fx->s, 44100, 1);
    hv_media_session_add_audio_format(fx->s, 44100, 1); /* counted: a second user */
    g_assert_true(run_until(fx, has_audio, 10000));
    g_assert_false(fx->failed);
    run_for(fx, 300);
    uint64_t s0[2] = {fx->audio[0].samples, fx->audio[1].samples};
    int64_t t0 = g_get_monotonic_time();
    run_for(fx, 3000);
    double secs = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
    for (int i = 0; i < 2; i++) {
        audio_count *a = &fx->audio[i];
        double rate = (double)(a->samples - s0[i]) / secs;
        g_test_message("audio %d/%d: %.0f samples/s in %" G_GUINT64_FORMAT " chunks", a->rate_hz,
                       a->channels, rate, a->chunks);
        g_assert_cmpfloat(rate, >=, 0.98 * a->rate_hz);
        g_assert_cmpfloat(rate, <=, 1.02 * a->rate_hz);
        g_assert_true(a->nonzero);
    }
    hv_media_stats st;
    hv_media_session_get_stats(fx->s, &st);
    g_assert_cmpstr(st.audio_codec, ==, "OPUS");
    g_assert_cmpuint(st.audio_chunks, >, 0);

    /* One user of 44100/1 left: still produced. Then none: it stops; 48000/2 goes on. */
    hv_media_session_remove_audio_format(fx->s, 44100, 1);
    uint64_t c1 = fx->audio[1].chunks;
    run_for(fx, 500);
    g_assert_cmpuint(fx->audio[1].chunks, >, c1);
    hv_media_session_remove_audio_format(fx->s, 44100, 1);
    run_for(fx, 300);
    c1 = fx->audio[1].chunks;
    uint64_t c0 = fx->audio[0].chunks;
    run_for(fx, 700);
    g_assert_cmpuint(fx->audio[1].chunks, ==, c1);
    g_assert_cmpuint(fx->audio[0].chunks, >, c0);
    /* No format at all: audio decoding stops. */
    hv_media_session_remove_audio_format(fx->s, 48000, 2);
    run_for(fx, 300);
    c0 = fx->audio[0].chunks;
    run_for(fx, 700);
    g_assert_cmpuint(fx->audio[0].chunks, ==, c0);
}

static bool
track_seen(fixture *fx, const char *kind, const char *codec)
{
    for (unsigned i = 0; i < fx->tracks->len; i++) {
        g_auto(GStrv) parts = g_strsplit(g_ptr_array_index(fx->tracks, i), " ", 3);
        if (g_strv_length(parts) == 3 && strcmp(parts[1], kind) == 0 &&
            strcmp(parts[2], codec) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void
test_frame_refcount_headroom(void)
{
    hv_frame *f = hv_frame_new(HV_FRAME_JPEG, 1000);
    g_assert_nonnull(f);
    g_assert_cmpuint(hv_frame_len(f), ==, 1000);
    g_assert_cmpint(hv_frame_kind_of(f), ==, HV_FRAME_JPEG);
    uint8_t *p = hv_frame_payload(f);
    g_assert_true(p == hv_frame_payload_const(f));
    g_assert_cmpuint((uintptr_t)p % 16, ==, 0);
    /* The headroom in front of the payload is ours to write (a WebSocket header). */
    memset(p - HV_BUF_HEADROOM, 0xAB, HV_BUF_HEADROOM);
    memset(p, 0x5A, 1000);
    const hv_frame_info *zero = hv_frame_info_const(f);
    g_assert_cmpint(zero->width, ==, 0);
    g_assert_cmpint(hv_buf_stamp_us(f), ==, 0);
    g_assert_true((hv_buf_flags(f) & HV_BUF_BINARY) != 0); /* a JPEG goes out binary */
    hv_frame_info *info = hv_frame_info_of(f);
    info->width = 640;
    info->height = 360;
    info->pts_us = 42;
    g_assert_true(hv_frame_ref(f) == f);
    g_assert_true(hv_frame_ref(f) == f);
    hv_frame_unref(f);
    hv_frame_unref(f);
    g_assert_cmpint(hv_frame_info_const(f)->width, ==, 640);
    g_assert_cmpuint(hv_frame_payload_const(f)[999], ==, 0x5A);
    hv_frame_unref(f);
    hv_frame_unref(NULL);

    /* Empty payloads are valid; so is a PCM frame shared across threads. */
    g_autoptr(hv_frame) e = hv_frame_new(HV_FRAME_PCM_S16LE, 0);
    g_assert_cmpuint(hv_frame_len(e), ==, 0);
    g_assert_cmpint(hv_frame_kind_of(e), ==, HV_FRAME_PCM_S16LE);
    hv_frame *shared = hv_frame_new(HV_FRAME_PCM_S16LE, 64);
    GThread *th[4];
    for (int i = 0; i < 4; i++) {
        hv_frame_ref(shared);
        th[i] = g_thread_new("unref", (GThreadFunc)(void (*)(void))hv_frame_unref, shared);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(th[i]);
    }
    g_assert_cmpuint(hv_frame_len(shared), ==, 64);
    hv_frame_unref(shared);
}

static void
test_session_vp8(void)
{
    fixture fx;
    test_sender_config scfg = {.video = "VP8",
                               .width = 640,
                               .height = 360,
                               .fps = 30,
                               .keyframe_interval = 300,
                               .audio = true,
                               .data_channel = true};
    fixture_start(&fx, &scfg);
    connect_and_check(&fx, 2);
    check_video(&fx, 640, 360, 30);
    g_assert_true(track_seen(&fx, "video", "VP8"));
    hv_media_stats st;
    hv_media_session_get_stats(fx.s, &st);
    g_assert_cmpstr(st.video_codec, ==, "VP8");
    /* Every decoded frame was received first; JPEG encoding and decoding were timed. */
    g_assert_cmpuint(st.video_frames_received, >, 0);
    g_assert_cmpuint(st.video_frames_received, >=, st.video_frames_decoded);
    g_autoptr(GString) page = g_string_new(NULL);
    hv_metrics_write_registry(page);
    g_assert_null(strstr(page->str, "\nhaven_jpeg_encode_seconds_count 0\n"));
    g_assert_null(strstr(page->str, "\nhaven_video_decode_seconds_count 0\n"));
    g_assert_nonnull(strstr(page->str, "\nhaven_jpeg_encode_seconds_count "));
    check_audio(&fx);
    g_assert_true(track_seen(&fx, "audio", "OPUS"));
    hv_media_session_request_keyframe(fx.s);
    run_for(&fx, 200);
    g_assert_false(fx.failed);
    fixture_stop(&fx);
}

static void
test_session_h264(void)
{
    fixture fx;
    test_sender_config scfg = {.video = "H264",
                               .width = 640,
                               .height = 360,
                               .fps = 30,
                               .keyframe_interval = 300,
                               .audio = true,
                               .data_channel = true};
    fixture_start(&fx, &scfg);
    connect_and_check(&fx, 2);
    check_video(&fx, 640, 360, 30);
    g_assert_true(track_seen(&fx, "video", "H264"));
    fixture_stop(&fx);
}

static bool
has_second_answer(fixture *fx)
{
    return fx->answers >= 2 || fx->failed;
}

static bool
has_fourth_answer_or_failed(fixture *fx)
{
    return fx->answers >= 4 || fx->failed;
}

/* PCM at 48 kHz carrying sound (the mixer sends silence while no track is there). */
static bool
has_pcm48(fixture *fx)
{
    return (fx->audio[0].chunks > 5 && fx->audio[0].nonzero) || fx->failed;
}

/* Replaces the direction attribute of the last m-line of sdp. */
static char *
set_last_direction(const char *sdp, const char *dir)
{
    GstSDPMessage *msg = NULL;
    g_assert_cmpint(gst_sdp_message_new_from_text(sdp, &msg), ==, GST_SDP_OK);
    GstSDPMedia *m =
        (GstSDPMedia *)gst_sdp_message_get_media(msg, gst_sdp_message_medias_len(msg) - 1);
    if (strcmp(gst_sdp_media_get_media(m), "application") == 0) {
        m = (GstSDPMedia *)gst_sdp_message_get_media(msg, gst_sdp_message_medias_len(msg) - 2);
    }
    static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
    for (unsigned k = 0; k < gst_sdp_media_attributes_len(m);) {
        const GstSDPAttribute *a = gst_sdp_media_get_attribute(m, k);
        bool is_dir = false;
        for (size_t d = 0; d < G_N_ELEMENTS(dirs); d++) {
            is_dir = is_dir || strcmp(a->key, dirs[d]) == 0;
        }
        if (is_dir) {
            gst_sdp_media_remove_attribute(m, k);
        } else {
            k++;
        }
    }
    gst_sdp_media_add_attribute(m, dir, "");
    char *text = gst_sdp_message_as_text(msg);
    gst_sdp_message_free(msg);
    return text;
}

static void
test_session_renegotiate(void)
{
    fixture fx;
    test_sender_config scfg = {.video = "VP8",
                               .width = 320,
                               .height = 240,
                               .fps = 30,
                               .keyframe_interval = 300,
                               .audio = false,
                               .data_channel = true};
    fixture_start(&fx, &scfg);
    connect_and_check(&fx, 1);
    hv_media_session_set_video_enabled(fx.s, true);
    g_assert_true(run_until(&fx, has_jpeg, 10000));
    hv_media_session_add_audio_format(fx.s, 48000, 2);

    /* The sender adds a track and offers again (as LiveKit does after a subscription). */
    test_sender_add_audio(fx.snd);
    test_sender_offer(fx.snd);
    g_assert_true(run_until(&fx, has_second_answer, 10000));
    g_assert_false(fx.failed);
    g_assert_cmpuint(fx.answer_id, ==, 8);
    check_answer(fx.answer, 2);
    g_assert_true(run_until(&fx, has_pcm48, 10000));
    g_assert_false(fx.failed);
    g_assert_true(track_seen(&fx, "audio", "OPUS"));
    jpeg_mark = fx.jpegs;
    g_assert_true(run_until(&fx, jpegs_grew, 3000)); /* video survived the renegotiation */

    /* m-line reuse as LiveKit does it: the track's m-line goes inactive, then carries a track
     * again. Answers to these hand-made offers are not given to the sender. */
    fx.forward_answers = false;
    g_autofree char *inactive = set_last_direction(fx.last_offer, "inactive");
    hv_media_session_set_offer(fx.s, inactive, 9, NULL);
    g_autofree char *reused = set_last_direction(fx.last_offer, "sendrecv");
    hv_media_session_set_offer(fx.s, reused, 10, NULL); /* queued until 9 is answered */
    g_assert_true(run_until(&fx, has_fourth_answer_or_failed, 10000));
    g_autofree char *version = gst_version_string();
    if (fx.failed) {
        g_test_message("reused m-line refused (%s): %s", version, fx.fail_reason);
        g_assert_cmpuint(fx.answer_id, ==, 9);
        g_assert_nonnull(strstr(fx.fail_reason, "offer 10"));
        g_assert_cmpint(fx.state, ==, HV_MEDIA_FAILED);
        /* FAILED is final: later offers are ignored. */
        hv_media_session_set_offer(fx.s, reused, 11, NULL);
        run_for(&fx, 300);
        g_assert_cmpuint(fx.answer_id, ==, 9);
    } else {
        g_test_message("reused m-line accepted (%s)", version);
        g_assert_cmpuint(fx.answer_id, ==, 10);
    }
    fixture_stop(&fx);
}

static bool
is_failed(fixture *fx)
{
    return fx->failed;
}

static void
test_session_bad_offer(void)
{
    fixture fx;
    test_sender_config scfg = {.video = NULL, .audio = false, .data_channel = false};
    fixture_start(&fx, &scfg);
    hv_media_session_set_offer(fx.s, "this is not SDP", 1, NULL);
    g_assert_true(run_until(&fx, is_failed, 5000));
    g_assert_nonnull(strstr(fx.fail_reason, "offer 1"));
    fixture_stop(&fx);

    /* A well-formed SDP that webrtcbin refuses (no ICE credentials, no fingerprint). */
    fixture_start(&fx, &scfg);
    hv_media_session_set_offer(fx.s,
                               "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                               "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\n"
                               "a=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n",
                               2, NULL);
    g_assert_true(run_until(&fx, is_failed, 5000));
    g_test_message("refused offer: %s", fx.fail_reason);
    g_assert_nonnull(strstr(fx.fail_reason, "offer 2"));
    fixture_stop(&fx);
}

/* The answer's payload types of the first m-line of kind media, as "96 97 ...". */
static char *
answer_formats(const char *sdp, const char *media)
{
    GstSDPMessage *msg = NULL;
    g_assert_cmpint(gst_sdp_message_new_from_text(sdp, &msg), ==, GST_SDP_OK);
    GString *out = g_string_new(NULL);
    for (unsigned i = 0; i < gst_sdp_message_medias_len(msg); i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(msg, i);
        if (strcmp(gst_sdp_media_get_media(m), media) != 0) {
            continue;
        }
        for (unsigned k = 0; k < gst_sdp_media_formats_len(m); k++) {
            g_string_append_printf(out, "%s%s", k > 0 ? " " : "", gst_sdp_media_get_format(m, k));
        }
        break;
    }
    gst_sdp_message_free(msg);
    return g_string_free(out, FALSE);
}

static void
test_session_codec_filter(void)
{
    fixture fx;
    test_sender_config scfg = {.video = "VP8",
                               .width = 320,
                               .height = 240,
                               .fps = 30,
                               .audio = true,
                               .data_channel = true};
    fixture_start(&fx, &scfg);
    fx.munge_codecs = true;
    fx.forward_answers = false; /* the sender never offered the extra codecs */
    test_sender_offer(fx.snd);
    g_assert_true(run_until(&fx, has_answer, 10000));
    g_assert_false(fx.failed);
    check_answer(fx.answer, 2);
    g_autofree char *video = answer_formats(fx.answer, "video");
    g_autofree char *audio = answer_formats(fx.answer, "audio");
    g_test_message("answered video PTs: %s; audio PTs: %s", video, audio);
    /* Without a word on the track's codec the offer's order decides: AV1 comes first but
     * cannot be used, H.265 can (answered without RTX: this offer has none for it); Opus, not
     * RED or PCMU. (webrtcbin 1.22 answers a single codec per m-line.) */
    g_assert_cmpstr(video, ==, "116");
    g_assert_cmpstr(audio, ==, "111");
    fixture_stop(&fx);
}

/* Relative power of one frequency in the newest n samples of the 48 kHz capture (Goertzel). */
static double
tone_power(const fixture *fx, double freq, size_t n)
{
    double coeff = 2.0 * cos(2.0 * G_PI * freq / 48000.0);
    double s1 = 0, s2 = 0;
    size_t len = G_N_ELEMENTS(fx->pcm48);
    for (size_t i = 0; i < n; i++) {
        double x = fx->pcm48[(fx->pcm48_next + len - n + i) % len] / 32768.0;
        double s0 = x + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / ((double)n * n);
}

/* A second audio track (screen audio beside the microphone) is mixed with the first: the PCM
 * keeps its announced rate (not twice the samples, as interleaved chunks of two tracks would
 * give), and every 20 ms window holds both tones at once. */
static void
test_session_two_audio_tracks_mixed(void)
{
    fixture fx;
    test_sender_config scfg = {.video = NULL, .audio = true, .data_channel = true};
    fixture_start(&fx, &scfg);
    hv_media_session_add_audio_format(fx.s, 48000, 2);
    connect_and_check(&fx, 1);
    g_assert_true(run_until(&fx, has_pcm48, 10000));
    test_sender_add_audio(fx.snd);
    test_sender_offer(fx.snd);
    g_assert_true(run_until(&fx, has_second_answer, 10000));
    g_assert_false(fx.failed);
    run_for(&fx, 1500); /* the second track arrives and the mixer settles */
    hv_media_stats st;
    hv_media_session_get_stats(fx.s, &st);
    g_assert_cmpuint(st.audio_tracks, ==, 2);
    uint64_t samples0 = fx.audio[0].samples;
    int64_t t0 = g_get_monotonic_time();
    run_for(&fx, 3000);
    double rate =
        (double)(fx.audio[0].samples - samples0) * 1e6 / (double)(g_get_monotonic_time() - t0);
    g_test_message("two tracks mixed: %.0f samples/s at 48 kHz", rate);
    g_assert_cmpfloat(fabs(rate - 48000), <, 0.05 * 48000);
    /* Both tones in each of the last ten 20 ms windows, each far above an absent tone. */
    for (int w = 0; w < 10; w++) {
        fixture win = fx; /* a copy whose ring ends w windows earlier */
        win.pcm48_next =
            (fx.pcm48_next + G_N_ELEMENTS(fx.pcm48) - (size_t)w * 960) % G_N_ELEMENTS(fx.pcm48);
        double p440 = tone_power(&win, 440, 960);
        double p1250 = tone_power(&win, 1250, 960);
        double p800 = tone_power(&win, 800, 960);
        if (w == 0) {
            g_test_message("window power: 440 Hz %.2e, 1250 Hz %.2e, 800 Hz %.2e", p440, p1250,
                           p800);
        }
        g_assert_cmpfloat(p440, >, 20 * p800);
        g_assert_cmpfloat(p1250, >, 20 * p800);
    }
    fixture_stop(&fx);
}

/* The value of the answer's "a=fmtp:<pt> ..." line, or NULL. (transfer full) */
static char *
answer_fmtp(const char *sdp, const char *pt)
{
    GstSDPMessage *msg = NULL;
    g_assert_cmpint(gst_sdp_message_new_from_text(sdp, &msg), ==, GST_SDP_OK);
    char *out = NULL;
    g_autofree char *prefix = g_strdup_printf("%s ", pt);
    for (unsigned i = 0; i < gst_sdp_message_medias_len(msg) && out == NULL; i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(msg, i);
        for (unsigned k = 0; k < gst_sdp_media_attributes_len(m); k++) {
            const GstSDPAttribute *a = gst_sdp_media_get_attribute(m, k);
            if (strcmp(a->key, "fmtp") == 0 && g_str_has_prefix(a->value, prefix)) {
                out = g_strdup(a->value + strlen(prefix));
                break;
            }
        }
    }
    gst_sdp_message_free(msg);
    return out;
}

/* livekit-server offers its whole codec table, VP8 first, on every video m-line whatever the
 * track carries (Appendix A.12): the answer must keep the track's own codec, which is only
 * known from TrackInfo (through mid_to_track_id). The H.264 answer keeps profile-level-id
 * (A.13). A track published in AV1 with a VP8 backup is answered VP8; one the signalling layer
 * says nothing about, in the offer's order. */
static void
test_session_livekit_codec_table(void)
{
    static const char *const vp8[] = {"video/VP8", NULL};
    static const char *const vp9[] = {"video/VP9", NULL};
    static const char *const h264[] = {"video/H264", NULL};
    static const char *const h265[] = {"video/H265", NULL};
    static const char *const av1_vp8[] = {"video/AV1", "video/VP8", NULL};
    static const struct {
        const char *const *codecs;
        bool map_by_mid; /* else the m-line's a=msid names the track */
        const char *want;
    } cases[] = {
        {vp8, true, "96 97"},    {h264, true, "108 109"},  {vp9, true, "98 99"},
        {h265, true, "116 117"}, {av1_vp8, true, "96 97"}, {h264, false, "108 109"},
        {NULL, true, "96 97"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        fixture fx;
        test_sender_config scfg = {.video = "VP8",
                                   .width = 320,
                                   .height = 240,
                                   .fps = 30,
                                   .audio = true,
                                   .data_channel = true};
        fixture_start(&fx, &scfg);
        fx.livekit_table = true;
        fx.forward_answers = false; /* the sender never offered these codecs */
        fx.track_codecs = cases[i].codecs;
        fx.mid_to_track_id = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        if (cases[i].map_by_mid) {
            /* The sender's mids: "video0", "audio1", "application2". */
            g_hash_table_insert(fx.mid_to_track_id, g_strdup("video0"), g_strdup("TR_video"));
        }
        test_sender_offer(fx.snd);
        g_assert_true(run_until(&fx, has_answer, 10000));
        g_assert_false(fx.failed);
        g_autofree char *video = answer_formats(fx.answer, "video");
        g_autofree char *audio = answer_formats(fx.answer, "audio");
        g_test_message("track %s (%s): answered video %s, audio %s",
                       cases[i].codecs != NULL ? cases[i].codecs[0] : "unknown",
                       cases[i].map_by_mid ? "mid_to_track_id" : "msid", video, audio);
        g_assert_cmpstr(audio, ==, "111");
        g_assert_cmpstr(video, ==, cases[i].want);
        if (strcmp(cases[i].want, "108 109") == 0) {
            g_autofree char *fmtp = answer_fmtp(fx.answer, "108");
            g_assert_nonnull(fmtp);
            g_test_message("answered H.264 fmtp: %s", fmtp);
            g_assert_nonnull(strstr(fmtp, "profile-level-id=42e01f"));
            g_assert_nonnull(strstr(fmtp, "packetization-mode=1"));
        }
        fixture_stop(&fx);
    }
}

/* An offer without any m-line (a server with nothing to send yet) is answered, not refused. */
static void
test_session_empty_offer(void)
{
    fixture fx;
    test_sender_config scfg = {.video = NULL, .audio = false, .data_channel = false};
    fixture_start(&fx, &scfg);
    hv_media_session_set_offer(fx.s,
                               "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\n"
                               "t=0 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n",
                               3, NULL);
    g_assert_true(run_until(&fx, has_answer, 5000));
    g_assert_false(fx.failed);
    g_assert_cmpuint(fx.answer_id, ==, 3);
    g_assert_cmpint(fx.state, ==, HV_MEDIA_NEW); /* nothing to connect */
    fixture_stop(&fx);
}

static void
test_session_free_while_streaming(void)
{
    fixture fx;
    test_sender_config scfg = {.video = "VP8",
                               .width = 640,
                               .height = 360,
                               .fps = 30,
                               .keyframe_interval = 30,
                               .audio = true,
                               .data_channel = true};
    /* Freed from outside a callback while frames are in flight. */
    fixture_start(&fx, &scfg);
    connect_and_check(&fx, 2);
    hv_media_session_set_video_enabled(fx.s, true);
    hv_media_session_add_audio_format(fx.s, 48000, 2);
    g_assert_true(run_until(&fx, has_jpeg, 10000));
    run_for(&fx, 500);
    fx.freed = true;
    hv_media_session_free(fx.s);
    fx.s = NULL;
    run_for(&fx, 1000);
    g_assert_cmpuint(fx.after_free, ==, 0);
    fixture_stop(&fx);

    /* Freed from inside on_video_frame, with audio chunks waiting in the same batch. */
    fixture_start(&fx, &scfg);
    fx.free_at_jpeg = 10;
    connect_and_check(&fx, 2);
    hv_media_session_add_audio_format(fx.s, 48000, 2);
    hv_media_session_add_audio_format(fx.s, 16000, 1);
    hv_media_session_set_video_enabled(fx.s, true);
    g_assert_true(run_until(&fx, has_jpeg, 10000));
    run_for(&fx, 1500);
    g_assert_true(fx.freed);
    g_assert_null(fx.s);
    g_assert_cmpuint(fx.jpegs, ==, 10);
    g_assert_cmpuint(fx.after_free, ==, 0);
    fixture_stop(&fx);
}

static void
test_session_missing_address(void)
{
    hv_media_config cfg = {.ice_addresses = "127.0.0.1, not-an-ip", .jpeg_quality = 80};
    GError *error = NULL;
    hv_media_session *s = hv_media_session_new(&cfg, &callbacks, NULL, &error);
    g_assert_null(s);
    g_assert_nonnull(error);
    g_assert_nonnull(strstr(error->message, "not-an-ip"));
    g_clear_error(&error);

    /* ICE servers in both spellings are accepted; nothing is contacted before an offer. */
    const char *const servers[] = {"stun:127.0.0.1:3478", "stun://127.0.0.1:3479",
                                   "turn://user:pass@127.0.0.1:3478", "bogus://x", NULL};
    hv_media_config cfg2 = {.ice_servers = servers, .ice_addresses = "", .jpeg_quality = 500};
    s = hv_media_session_new(&cfg2, &callbacks, NULL, &error);
    g_assert_no_error(error);
    hv_media_stats st;
    hv_media_session_get_stats(s, &st);
    g_assert_cmpuint(st.video_frames_decoded, ==, 0);
    g_assert_cmpfloat(st.fps, ==, 0.0);
    hv_media_session_free(s);
}

int
main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/media/frame/refcount-headroom", test_frame_refcount_headroom);
    g_test_add_func("/media/session/config", test_session_missing_address);
    g_test_add_func("/media/session/bad-offer-fails", test_session_bad_offer);
    g_test_add_func("/media/session/codec-filter", test_session_codec_filter);
    g_test_add_func("/media/session/livekit-codec-table", test_session_livekit_codec_table);
    g_test_add_func("/media/session/empty-offer", test_session_empty_offer);
    g_test_add_func("/media/session/two-audio-tracks-mixed", test_session_two_audio_tracks_mixed);
    g_test_add_func("/media/session/vp8-opus-loopback", test_session_vp8);
    g_test_add_func("/media/session/h264-loopback", test_session_h264);
    g_test_add_func("/media/session/renegotiation", test_session_renegotiate);
    g_test_add_func("/media/session/free-while-streaming", test_session_free_while_streaming);
    int rc = g_test_run();
    gst_deinit();
    return rc;
}

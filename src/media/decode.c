/* decode.c: one depayload/decode branch per webrtcbin src pad, and the frames they produce (the
 * audio mixer they feed is mixer.c's, the taps on them taps.c's).
 *
 *   video: [entry probe] depay ! (h264parse | h265parse) ! decoder ! videoconvert
 *          ! queue(leaky, 1 buffer) ! jpegenc ! appsink            → JPEG hv_frames
 *   audio: [entry probe] rtpopusdepay ! opusdec ! audioconvert ! audioresample
 *          ! capsfilter(S16LE, 48 kHz, stereo) ! ┐
 *   (every audio track)                         audiomixer ! tee
 *          per requested format: queue(leaky) ! audioconvert ! audioresample
 *          ! capsfilter(S16LE, rate, channels) ! appsink           → PCM hv_frames
 *
 * A streamer may publish a camera and a screen share, a microphone and screen audio: only the
 * selected video track (hv_media_session_select_tracks) is decoded and tapped, so viewers never
 * see two pictures alternate; every audio track is decoded and mixed, so they hear all of it as
 * one stream at the announced rate, and only the selected audio track is tapped.
 *
 * Threads: a branch is built and linked on the streaming thread that emits pad-added (before
 * that pad's first buffer), then registered on the main thread, which alone owns the list,
 * adds/removes audio outputs, sets each branch's selection and tears branches down (EOS or
 * pad-removed). The entry probe (the thread pushing out of webrtcbin) counts bytes, drops
 * packets nobody needs decoded, asks for a keyframe after a re-enable and stamps arrival times;
 * appsink callbacks (queue threads) only build frames for the mailbox. Ownership: see struct
 * hv_media_branch.
 */
#include "media/media-private.h"

#include "core/error.h"
#include "core/metrics.h"

#include <gst/app/gstappsink.h>
#include <gst/rtp/gstrtpbuffer.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>
#include <string.h>

#define BRANCH_KEY       "hv-media-branch"
#define STAMP_MAX_AGE_NS (2 * GST_SECOND)
#define STAMP_SLACK_NS   (1 * GST_MSECOND)

/* ---- refcounting ------------------------------------------------------------------------ */

static hv_media_branch *
branch_ref(hv_media_branch *b)
{
    g_atomic_ref_count_inc(&b->ref);
    return b;
}

static void
branch_unref(gpointer p)
{
    hv_media_branch *b = p;
    if (b == NULL || !g_atomic_ref_count_dec(&b->ref)) {
        return;
    }
    if (b->mix_pad != NULL) {
        gst_object_unref(b->mix_pad);
    }
    g_mutex_clear(&b->stamps_lock);
    g_mutex_clear(&b->timing_lock);
    g_free(b->mid);
    g_free(b->track_sid);
    hv_media_session_unref(b->s);
    g_free(b);
}

static void
closure_unref_branch(gpointer data, GClosure *closure)
{
    branch_unref(data);
}

static hv_media_branch *
branch_new(hv_media_session *s, bool is_video, const char *codec, const char *mid)
{
    hv_media_branch *b = g_new0(hv_media_branch, 1);
    g_atomic_ref_count_init(&b->ref);
    b->s = hv_media_session_ref(s);
    b->is_video = is_video;
    g_strlcpy(b->codec, codec != NULL ? codec : "", sizeof(b->codec));
    for (char *c = b->codec; *c != '\0'; c++) {
        *c = g_ascii_toupper(*c);
    }
    b->mid = g_strdup(mid != NULL ? mid : "");
    b->track_sid = g_strdup("");
    b->entry_last_pts = GST_CLOCK_TIME_NONE;
    g_mutex_init(&b->stamps_lock);
    g_mutex_init(&b->timing_lock);
    return b;
}

/* ---- arrival stamps ---------------------------------------------------------------------
 *
 * A frame's stamp (hv_buf_stamp_us) is when its first RTP packet left webrtcbin: after SRTP
 * and the jitterbuffer, which releases in-order packets at once (a packet held back waiting for
 * a retransmission is stamped when released). The entry probe puts g_get_monotonic_time() on
 * each packet it lets through as a GstReferenceTimestampMeta (caps timestamp/x-haven-arrival,
 * hv_media_arrival_caps), next to the sender's RTP time (timestamp/x-haven-rtp, for the taps).
 * Depayloaders, decoders, videoconvert and jpegenc copy untagged metas, so the appsink buffer
 * normally still carries it and hv_media_frame_from_sample reads it from there.
 *
 * Fallback, for a buffer that reaches the appsink without the meta (an element dropped it, or
 * the packet came in a buffer list, which the entry probe does not annotate): a small ring of
 * (PTS, arrival) stamps per branch, one for the first packet of each new PTS; the appsink takes
 * the newest stamp with pts <= its buffer's PTS (+1 ms), if at most 2 s older. No stamp
 * either → the appsink's own time. */

static void
stamp_arrival(hv_media_branch *b, GstClockTime pts, int64_t now_us)
{
    g_mutex_lock(&b->stamps_lock);
    b->stamps[b->stamps_next] = (arrival_stamp){.pts = pts, .arrival_us = now_us};
    b->stamps_next = (b->stamps_next + 1) % HV_MEDIA_STAMPS;
    if (b->stamps_count < HV_MEDIA_STAMPS) {
        b->stamps_count++;
    }
    g_mutex_unlock(&b->stamps_lock);
}

/* The arrival time of the newest stamp at or just before pts, or -1. */
static int64_t
lookup_arrival(hv_media_branch *b, GstClockTime pts)
{
    if (!GST_CLOCK_TIME_IS_VALID(pts)) {
        return -1;
    }
    int64_t found = -1;
    GstClockTime found_pts = 0;
    g_mutex_lock(&b->stamps_lock);
    for (unsigned i = 0; i < b->stamps_count; i++) {
        const arrival_stamp *st = &b->stamps[i];
        if (st->pts <= pts + STAMP_SLACK_NS && (found < 0 || st->pts > found_pts)) {
            found = st->arrival_us;
            found_pts = st->pts;
        }
    }
    g_mutex_unlock(&b->stamps_lock);
    if (found >= 0 && found_pts + STAMP_MAX_AGE_NS < pts) {
        return -1; /* too old: the ring does not reach back that far */
    }
    return found;
}

static int64_t
lookup_arrival_cb(void *b, GstClockTime pts)
{
    return lookup_arrival(b, pts);
}

/* ---- probes (streaming threads) --------------------------------------------------------- */

static gboolean on_branch_teardown(gpointer p);

/* Whether a viewer needs this branch decoded (a tap alone does not): the selected video track,
 * every audio track. */
static bool
decode_wanted(hv_media_branch *b)
{
    return b->is_video ? g_atomic_int_get(&b->s->video_enabled) != 0 && hv_media_branch_selected(b)
                       : g_atomic_int_get(&b->s->audio_active) > 0;
}

/* Decode gate for one buffer: false = keep it from the decoder. Video that was gated resumes
 * on a keyframe (asking for one), so the decoder never sees a broken reference chain. */
static bool
gate_pass(hv_media_branch *b, GstPad *pad, GstBuffer *buf)
{
    if (!decode_wanted(b)) {
        if (!b->decode_gated && b->is_video) {
            b->decode_gated = true;
        }
        return false;
    }
    if (b->decode_gated) {
        if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT)) {
            if (!b->gate_asked) {
                b->gate_asked = true;
                hv_media_request_keyframe_on(b->entry);
            }
            return false;
        }
        b->decode_gated = false;
        b->gate_asked = false;
    }
    return true;
}

static GstPadProbeReturn
on_depay_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_media_branch *b = user_data;
    hv_media_tap tap[HV_MEDIA_TAP_SLOTS];
    void *data[HV_MEDIA_TAP_SLOTS];
    if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0) {
        GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
        if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT) {
            b->have_segment = hv_media_copy_time_segment(ev, &b->segment) || b->have_segment;
        } else if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS && hv_media_taps_get(b, tap, data)) {
            GstCaps *caps = NULL;
            gst_event_parse_caps(ev, &caps);
            for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
                if (data[i] != NULL) {
                    tap[i].on_caps(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, caps,
                                   data[i]);
                }
            }
            hv_media_taps_release(tap, data);
        }
        return GST_PAD_PROBE_OK;
    }
    bool tapped = hv_media_taps_get(b, tap, data);
    if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) != 0) {
        GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
        if (tapped) {
            hv_media_taps_buffers(b, tap, data, buf);
            hv_media_taps_release(tap, data);
        }
        return gate_pass(b, pad, buf) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
    }
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    bool pass = true;
    for (unsigned i = 0; i < gst_buffer_list_length(list); i++) {
        GstBuffer *buf = gst_buffer_list_get(list, i);
        if (tapped) {
            hv_media_taps_buffers(b, tap, data, buf);
        }
        pass = gate_pass(b, pad, buf) && pass;
    }
    if (tapped) {
        hv_media_taps_release(tap, data);
    }
    return pass ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

static void
account_packet(hv_media_branch *b, GstBuffer *buf, bool enabled, int64_t now_us)
{
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    if (gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp)) {
        uint32_t ts = gst_rtp_buffer_get_timestamp(&rtp);
        /* a new RTP timestamp on a video track is a new frame */
        hv_media_stats_packet(b->s, gst_rtp_buffer_get_payload_len(&rtp),
                              b->is_video && (!b->have_rtp_ts || ts != b->last_rtp_ts));
        if (!b->have_rtp_ts) {
            b->have_rtp_ts = true;
            b->ext_rtp_ts = ts;
        } else {
            b->ext_rtp_ts += (int32_t)(ts - b->last_rtp_ts);
        }
        b->last_rtp_ts = ts;
        gst_rtp_buffer_unmap(&rtp);
    }
    GstClockTime pts = GST_BUFFER_PTS(buf);
    if (enabled && GST_CLOCK_TIME_IS_VALID(pts) && pts != b->entry_last_pts) {
        b->entry_last_pts = pts;
        stamp_arrival(b, pts, now_us);
    }
}

static GstPadProbeReturn
on_entry_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_media_branch *b = user_data;
    hv_media_session *s = b->s;
    if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0) {
        GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
        if (GST_EVENT_TYPE(ev) != GST_EVENT_EOS) {
            return GST_PAD_PROBE_OK;
        }
        /* The m-line went inactive: this pad is finished (protocol doc §9.4 item 4). */
        hv_media_post(s, on_branch_teardown, branch_ref(b), branch_unref);
        return GST_PAD_PROBE_DROP;
    }
    bool enabled =
        !hv_media_session_is_destroyed(s) && (decode_wanted(b) || hv_media_branch_tapped(b));
    int64_t now_us = g_get_monotonic_time();
    if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) != 0) {
        account_packet(b, GST_PAD_PROBE_INFO_BUFFER(info), enabled, now_us);
        if (enabled) {
            GstBuffer *buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
            gst_buffer_add_reference_timestamp_meta(buf, hv_media_arrival_caps(),
                                                    (GstClockTime)now_us * GST_USECOND,
                                                    GST_CLOCK_TIME_NONE);
            if (b->have_rtp_ts && b->clock_rate > 0 && b->ext_rtp_ts >= 0) {
                gst_buffer_add_reference_timestamp_meta(
                    buf, hv_media_rtp_time_caps(),
                    gst_util_uint64_scale((guint64)b->ext_rtp_ts, GST_SECOND,
                                          (guint64)b->clock_rate),
                    GST_CLOCK_TIME_NONE);
            }
            GST_PAD_PROBE_INFO_DATA(info) = buf;
        }
    } else if ((info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) != 0) {
        GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
        for (unsigned i = 0; i < gst_buffer_list_length(list); i++) {
            account_packet(b, gst_buffer_list_get(list, i), enabled, now_us);
        }
    }
    if (!enabled) {
        b->entry_enabled = false;
        return GST_PAD_PROBE_DROP;
    }
    if (!b->entry_enabled) {
        b->entry_enabled = true;
        if (b->is_video) {
            hv_media_request_keyframe_on(pad);
        }
    }
    return GST_PAD_PROBE_OK;
}

/* Before the video decoder: when each frame went in. */
static GstPadProbeReturn
on_decoder_in_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_media_branch *b = user_data;
    GstClockTime pts = GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info));
    if (GST_CLOCK_TIME_IS_VALID(pts)) {
        g_mutex_lock(&b->timing_lock);
        b->dec_in[b->dec_in_next] = (arrival_stamp){pts, g_get_monotonic_time()};
        b->dec_in_next = (b->dec_in_next + 1) % G_N_ELEMENTS(b->dec_in);
        g_mutex_unlock(&b->timing_lock);
    }
    return GST_PAD_PROBE_OK;
}

/* The decode time of a picture leaving the decoder, from its PTS (-1 when not seen going in). */
static int64_t
decode_time_us(hv_media_branch *b, GstClockTime pts, int64_t now_us)
{
    int64_t t = -1;
    g_mutex_lock(&b->timing_lock);
    for (size_t i = 0; i < G_N_ELEMENTS(b->dec_in); i++) {
        if (b->dec_in[i].arrival_us > 0 && b->dec_in[i].pts == pts) {
            t = now_us - b->dec_in[i].arrival_us;
            b->dec_in[i].arrival_us = 0;
            break;
        }
    }
    g_mutex_unlock(&b->timing_lock);
    return t;
}

static GstPadProbeReturn
on_jpeg_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_media_branch *b = user_data;
    int64_t now = g_get_monotonic_time();
    if (GST_PAD_DIRECTION(pad) == GST_PAD_SINK) {
        b->jpeg_in_us = now;
    } else if (b->jpeg_in_us > 0) {
        hv_metrics_observe(HV_METRICS_JPEG_ENCODE, (double)(now - b->jpeg_in_us) / 1e6);
        b->jpeg_in_us = 0;
    }
    return GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
on_decoded_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_media_branch *b = user_data;
    if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) != 0) {
        int64_t now = g_get_monotonic_time();
        int64_t took = decode_time_us(b, GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info)), now);
        if (took >= 0) {
            hv_metrics_observe(HV_METRICS_VIDEO_DECODE, (double)took / 1e6);
        }
        hv_media_stats_decoded(b->s, now);
    } else if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0) {
        GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
        if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS) {
            GstCaps *caps = NULL;
            gst_event_parse_caps(ev, &caps);
            GstVideoInfo vi;
            if (caps != NULL && gst_video_info_from_caps(&vi, caps)) {
                hv_media_stats_size(b->s, GST_VIDEO_INFO_WIDTH(&vi), GST_VIDEO_INFO_HEIGHT(&vi));
            }
        }
    }
    return GST_PAD_PROBE_OK;
}

static void
on_jpeg_queue_overrun(GstElement *queue, gpointer user_data)
{
    hv_media_branch *b = user_data;
    hv_media_stats_dropped(b->s); /* the leaky queue drops the older decoded frame */
}

/* ---- appsinks (streaming threads) ------------------------------------------------------- */

static GstFlowReturn
on_video_sample(GstAppSink *sink, gpointer user_data)
{
    hv_media_branch *b = user_data;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (sample == NULL) {
        return GST_FLOW_OK;
    }
    if (!hv_media_session_is_destroyed(b->s)) {
        hv_frame *f = hv_media_frame_from_sample(sample, HV_FRAME_JPEG, lookup_arrival_cb, b);
        if (f != NULL) {
            const GstCaps *caps = gst_sample_get_caps(sample);
            const GstStructure *st = caps != NULL ? gst_caps_get_structure(caps, 0) : NULL;
            hv_frame_info *info = hv_frame_info_of(f);
            if (st != NULL) {
                gst_structure_get_int(st, "width", &info->width);
                gst_structure_get_int(st, "height", &info->height);
            }
            hv_media_stats_encoded(b->s);
            hv_media_post_frame(b->s, f);
        }
    }
    gst_sample_unref(sample);
    return GST_FLOW_OK;
}

/* ---- building --------------------------------------------------------------------------- */

static void
add_depay_probe(hv_media_branch *b, GstElement *depay)
{
    b->depay_src = gst_element_get_static_pad(depay, "src");
    gst_object_unref(b->depay_src); /* borrowed */
    gst_pad_add_probe(b->depay_src,
                      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                          GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                      on_depay_probe, branch_ref(b), branch_unref);
}

static bool
build_video(hv_media_branch *b)
{
    hv_media_session *s = b->s;
    const hv_media_codec *c = hv_media_codec_find(b->codec);
    if (c == NULL || !c->is_video) {
        return false;
    }
    GstBin *bin = GST_BIN(b->bin);
    GstElement *depay = hv_media_add_element(bin, c->depay);
    GstElement *parse = c->parse != NULL ? hv_media_add_element(bin, c->parse) : NULL;
    GstElement *dec = hv_media_add_element(bin, c->decoder);
    GstElement *conv = hv_media_add_element(bin, "videoconvert");
    GstElement *queue = hv_media_add_element(bin, "queue");
    GstElement *jpeg = hv_media_add_element(bin, "jpegenc");
    GstElement *sink = hv_media_add_element(bin, "appsink");
    if (depay == NULL || (c->parse != NULL && parse == NULL) || dec == NULL || conv == NULL ||
        queue == NULL || jpeg == NULL || sink == NULL) {
        return false;
    }
    /* After a gap (loss, or packets dropped while disabled) wait for and ask for a keyframe
     * instead of decoding garbage; never turn decode errors into a pipeline error. */
    hv_media_set_if_exists(depay, "wait-for-keyframe", TRUE, NULL);
    hv_media_set_if_exists(depay, "request-keyframe", TRUE, NULL);
    hv_media_set_if_exists(dec, "automatic-request-sync-points", TRUE, NULL);
    hv_media_set_if_exists(dec, "discard-corrupted-frames", TRUE, NULL);
    hv_media_set_if_exists(dec, "max-errors", -1, NULL);
    /* Frame threading would add a frame of delay per thread. */
    hv_media_set_if_exists(dec, "thread-type", 2 /* slice */, NULL);
    g_object_set(queue, "leaky", 2 /* downstream */, "max-size-buffers", 1, "max-size-bytes", 0,
                 "max-size-time", (guint64)0, "silent", FALSE, NULL);
    g_signal_connect_data(queue, "overrun", G_CALLBACK(on_jpeg_queue_overrun), branch_ref(b),
                          closure_unref_branch, 0);
    g_object_set(jpeg, "quality", s->jpeg_quality, NULL);
    hv_media_setup_appsink(sink, 1, on_video_sample, branch_ref(b), branch_unref);
    bool linked = parse != NULL
                      ? gst_element_link_many(depay, parse, dec, conv, queue, jpeg, sink, NULL)
                      : gst_element_link_many(depay, dec, conv, queue, jpeg, sink, NULL);
    if (!linked || !hv_media_add_ghost_sink(b->bin, depay)) {
        return false;
    }
    GstPad *dec_src = gst_element_get_static_pad(dec, "src");
    gst_pad_add_probe(dec_src, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                      on_decoded_probe, branch_ref(b), branch_unref);
    gst_object_unref(dec_src);
    GstPad *dec_sink = gst_element_get_static_pad(dec, "sink");
    gst_pad_add_probe(dec_sink, GST_PAD_PROBE_TYPE_BUFFER, on_decoder_in_probe, branch_ref(b),
                      branch_unref);
    gst_object_unref(dec_sink);
    const char *jpeg_pads[] = {"sink", "src"};
    for (size_t i = 0; i < G_N_ELEMENTS(jpeg_pads); i++) {
        GstPad *p = gst_element_get_static_pad(jpeg, jpeg_pads[i]);
        gst_pad_add_probe(p, GST_PAD_PROBE_TYPE_BUFFER, on_jpeg_probe, branch_ref(b), branch_unref);
        gst_object_unref(p);
    }
    b->entry = gst_element_get_static_pad(depay, "sink");
    gst_object_unref(b->entry); /* borrowed: the depayloader keeps it */
    add_depay_probe(b, depay);
    return true;
}

/* depay ! opusdec ! audioconvert ! audioresample ! capsfilter(mix format), whose src is ghosted
 * and linked to a new mixer pad by hv_media_decode_pad_added. */
static bool
build_audio(hv_media_branch *b)
{
    const hv_media_codec *c = hv_media_codec_find(b->codec);
    if (c == NULL || c->is_video) {
        return false;
    }
    GstBin *bin = GST_BIN(b->bin);
    GstElement *depay = hv_media_add_element(bin, c->depay);
    GstElement *dec = hv_media_add_element(bin, c->decoder);
    GstElement *conv = hv_media_add_element(bin, "audioconvert");
    GstElement *res = hv_media_add_element(bin, "audioresample");
    GstElement *filter = hv_media_add_element(bin, "capsfilter");
    if (depay == NULL || dec == NULL || conv == NULL || res == NULL || filter == NULL) {
        return false;
    }
    hv_media_set_if_exists(dec, "max-errors", -1, NULL);
    GstCaps *caps = hv_media_mix_caps();
    g_object_set(filter, "caps", caps, NULL);
    gst_caps_unref(caps);
    if (!gst_element_link_many(depay, dec, conv, res, filter, NULL) ||
        !hv_media_add_ghost_sink(b->bin, depay)) {
        return false;
    }
    GstPad *target = gst_element_get_static_pad(filter, "src");
    gst_pad_add_probe(target,
                      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                          GST_PAD_PROBE_TYPE_QUERY_UPSTREAM,
                      hv_media_mix_probe, branch_ref(b), branch_unref);
    GstPad *ghost = gst_ghost_pad_new("src", target);
    gst_object_unref(target);
    if (ghost == NULL || !gst_element_add_pad(b->bin, ghost)) {
        return false;
    }
    b->entry = gst_element_get_static_pad(depay, "sink");
    gst_object_unref(b->entry);
    add_depay_probe(b, depay);
    return true;
}

/* A pad we cannot decode still has to be linked, or webrtcbin's stream stops not-linked. */
static bool
build_discard(hv_media_branch *b)
{
    GstElement *sink = hv_media_add_element(GST_BIN(b->bin), "fakesink");
    if (sink == NULL) {
        return false;
    }
    g_object_set(sink, "sync", FALSE, "async", FALSE, NULL);
    return hv_media_add_ghost_sink(b->bin, sink);
}

/* ---- selection (main thread) -------------------------------------------------------------- */

/* Whether the branch is the selected video track, or the tapped audio track (the first audio
 * branch when none is named). */
static bool
compute_selected(hv_media_session *s, hv_media_branch *b)
{
    const char *want = b->is_video ? s->video_track : s->tap_audio_track;
    if (want != NULL) {
        return strcmp(b->track_sid, want) == 0;
    }
    if (b->is_video) {
        return true;
    }
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *o = g_ptr_array_index(s->branches, i);
        if (!o->is_video && o->supported) {
            return o == b; /* the first registered audio branch */
        }
    }
    return false;
}

void
hv_media_decode_select(hv_media_session *s)
{
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *b = g_ptr_array_index(s->branches, i);
        const char *sid = g_hash_table_lookup(s->mid_tracks, b->mid);
        if (sid != NULL && strcmp(sid, b->track_sid) != 0) {
            g_free(b->track_sid);
            b->track_sid = g_strdup(sid);
        }
        bool sel = b->supported && compute_selected(s, b);
        if (sel != hv_media_branch_selected(b)) {
            HV_MEDIA_DEBUG(s, "%s track %s (mid %s) %s", b->is_video ? "video" : "audio",
                           b->track_sid, b->mid, sel ? "selected" : "not selected");
        }
        if (sel && !hv_media_branch_selected(b)) {
            hv_media_taps_branch_selected(s, b); /* before its buffers reach them */
        }
        /* A video branch selected again resumes on a keyframe: the entry probe asks for one
         * on its first packet through (entry_enabled was cleared while it dropped them). */
        g_atomic_int_set(&b->selected, sel ? 1 : 0);
    }
}

/* ---- registration and teardown (main thread) -------------------------------------------- */

static gboolean
on_branch_register(gpointer p)
{
    hv_media_branch *b = p;
    hv_media_session *s = b->s;
    if (b->removed) {
        return G_SOURCE_REMOVE;
    }
    b->registered = true;
    g_ptr_array_add(s->branches, branch_ref(b));
    const char *sid = g_hash_table_lookup(s->mid_tracks, b->mid);
    g_free(b->track_sid);
    b->track_sid = g_strdup(sid != NULL ? sid : "");
    const char *kind = b->is_video ? "video" : "audio";
    if (!b->supported) {
        HV_MEDIA_INFO(s, "track %s (mid %s): %s codec '%s' is not decodable; discarding",
                      b->track_sid, b->mid, kind, b->codec);
        return G_SOURCE_REMOVE;
    }
    HV_MEDIA_DEBUG(s, "track %s (mid %s) %s %s", b->track_sid, b->mid, kind, b->codec);
    hv_media_decode_select(s);
    if (hv_media_branch_selected(b)) {
        g_mutex_lock(&s->stats_lock);
        g_strlcpy(b->is_video ? s->stats.video_codec : s->stats.audio_codec, b->codec,
                  sizeof(s->stats.video_codec));
        g_mutex_unlock(&s->stats_lock);
    }
    if (!b->is_video) {
        g_atomic_int_inc(&s->audio_branches);
        /* A live input joined the mixer: the pipeline works out its latency again (the
         * mixer's deadline depends on its inputs'). */
        gst_bin_recalculate_latency(GST_BIN(s->pipeline));
    }
    if (s->cb.on_track != NULL) {
        s->cb.on_track(b->mid, b->track_sid, kind, b->codec, s->user_data);
    }
    return G_SOURCE_REMOVE;
}

static gboolean
on_branch_teardown(gpointer p)
{
    hv_media_branch *b = p;
    hv_media_session *s = b->s;
    if (b->removed) {
        return G_SOURCE_REMOVE;
    }
    b->removed = true;
    if (b->registered && g_ptr_array_remove(s->branches, b)) {
        if (!b->is_video && b->supported) {
            (void)g_atomic_int_dec_and_test(&s->audio_branches);
        }
        branch_unref(b);
    }
    HV_MEDIA_DEBUG(s, "track %s (mid %s) %s ended; removing its branch", b->track_sid, b->mid,
                   b->codec);
    GstElement *bin = gst_object_ref(b->bin);
    GstPad *sink = gst_element_get_static_pad(bin, "sink");
    GstPad *peer = sink != NULL ? gst_pad_get_peer(sink) : NULL;
    if (peer != NULL) {
        gst_pad_unlink(peer, sink);
        branch_unref(g_object_steal_data(G_OBJECT(peer), BRANCH_KEY));
        gst_object_unref(peer);
    }
    if (sink != NULL) {
        gst_object_unref(sink);
    }
    if (gst_element_set_state(bin, GST_STATE_NULL) == GST_STATE_CHANGE_FAILURE) {
        HV_MEDIA_DEBUG(s, "branch did not stop cleanly");
    }
    if (b->mix_pad != NULL) {
        /* The bin is stopped: nothing pushes into the mixer pad any more. */
        gst_element_release_request_pad(s->mixer, b->mix_pad);
        g_clear_pointer(&b->mix_pad, gst_object_unref);
    }
    gst_bin_remove(GST_BIN(s->pipeline), bin);
    b->bin = NULL;
    b->entry = NULL;
    b->depay_src = NULL;
    gst_object_unref(bin);
    hv_media_decode_select(s); /* another audio branch may be the tapped one now */
    return G_SOURCE_REMOVE;
}

void
hv_media_decode_pad_added(hv_media_session *s, GstPad *pad)
{
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (caps == NULL) {
        caps = gst_pad_query_caps(pad, NULL);
    }
    const GstStructure *st =
        caps != NULL && !gst_caps_is_empty(caps) ? gst_caps_get_structure(caps, 0) : NULL;
    const char *media = st != NULL ? gst_structure_get_string(st, "media") : NULL;
    const char *enc = st != NULL ? gst_structure_get_string(st, "encoding-name") : NULL;
    char *mid = NULL;
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(pad), "transceiver") != NULL) {
        GstWebRTCRTPTransceiver *trans = NULL;
        g_object_get(pad, "transceiver", &trans, NULL);
        if (trans != NULL) {
            g_object_get(trans, "mid", &mid, NULL);
            gst_object_unref(trans);
        }
    }
    bool is_video = media != NULL && strcmp(media, "video") == 0;
    hv_media_branch *b = branch_new(s, is_video, enc, mid);
    if (st == NULL || !gst_structure_get_int(st, "clock-rate", &b->clock_rate)) {
        b->clock_rate = 0;
    }
    g_free(mid);
    if (caps != NULL) {
        gst_caps_unref(caps);
    }

    b->bin = gst_bin_new(NULL);
    b->supported = is_video ? build_video(b) : build_audio(b);
    if (b->supported) {
        gst_bin_add(GST_BIN(s->pipeline), b->bin);
        if (!is_video && !hv_media_mixer_link(s, b)) {
            HV_MEDIA_INFO(s, "cannot link audio %s to the mixer", GST_PAD_NAME(pad));
            b->supported = false;
            if (b->mix_pad != NULL) {
                gst_element_release_request_pad(s->mixer, b->mix_pad);
                g_clear_pointer(&b->mix_pad, gst_object_unref);
            }
            gst_bin_remove(GST_BIN(s->pipeline), b->bin); /* drops the pipeline's ref */
            b->bin = NULL;
        }
    } else {
        gst_object_unref(gst_object_ref_sink(b->bin));
        b->bin = NULL;
    }
    if (!b->supported) {
        /* Start over with an empty bin: a half-built one may hold unlinked elements. */
        b->bin = gst_bin_new(NULL);
        b->entry = NULL;
        b->depay_src = NULL;
        if (!build_discard(b)) {
            HV_MEDIA_INFO(s, "cannot build any branch for %s", GST_PAD_NAME(pad));
            gst_object_unref(gst_object_ref_sink(b->bin));
            branch_unref(b);
            return;
        }
        gst_bin_add(GST_BIN(s->pipeline), b->bin);
    }
    if (b->entry != NULL) {
        gst_pad_add_probe(b->entry,
                          GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                              GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                          on_entry_probe, branch_ref(b), branch_unref);
    }
    if (!gst_element_sync_state_with_parent(b->bin)) {
        HV_MEDIA_DEBUG(s, "branch for %s did not reach the pipeline state", GST_PAD_NAME(pad));
    }
    GstPad *sink = gst_element_get_static_pad(b->bin, "sink");
    GstPadLinkReturn lr = gst_pad_link(pad, sink);
    gst_object_unref(sink);
    if (lr != GST_PAD_LINK_OK) {
        HV_MEDIA_INFO(s, "cannot link %s to its branch (%d)", GST_PAD_NAME(pad), (int)lr);
    }
    g_object_set_data_full(G_OBJECT(pad), BRANCH_KEY, branch_ref(b), branch_unref);
    hv_media_post(s, on_branch_register, b, branch_unref);
}

void
hv_media_decode_pad_removed(hv_media_session *s, GstPad *pad)
{
    hv_media_branch *b = g_object_steal_data(G_OBJECT(pad), BRANCH_KEY);
    if (b != NULL) {
        hv_media_post(s, on_branch_teardown, b, branch_unref);
    }
}

/* ---- the mixer and its PCM outputs (main thread) ---------------------------------------- */

void
hv_media_decode_clear(hv_media_session *s)
{
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *b = g_ptr_array_index(s->branches, i);
        b->removed = true;
        branch_unref(b);
    }
    g_ptr_array_set_size(s->branches, 0);
}

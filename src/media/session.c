/* session.c: one receive-only WebRTC peer connection (webrtcbin in its own pipeline).
 *
 * Owns the pipeline and webrtcbin, the offer/answer sequence (offers are applied one at a
 * time; a later one waits in a one-slot queue), ICE configuration (servers, the local address
 * restriction through the libnice agent) and the hand-over of frames to the main thread.
 * Threads: the public functions and every user callback run on the main thread (the owner's
 * GMainContext). webrtcbin's promise callbacks and signals arrive on its own threads; they only
 * copy what they need into a job posted to the main context (an idle source holding a session
 * reference). Frames go through a bounded mailbox (latest JPEG, a capped PCM queue) with at
 * most one wake-up in flight. decode.c builds the per-pad decode branches.
 */
#include "media/media-private.h"

#include "core/error.h"
#include "core/log.h"

#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <nice/agent.h>
#include <string.h>

static unsigned next_session_id = 1; /* atomic */

void
hv_media_log(const hv_media_session *s, GLogLevelFlags level, const char *fmt, ...)
{
    hv_log_ctx ctx = {.mint = s->log_mint, .room = s->log_room};
    va_list ap;
    va_start(ap, fmt);
    hv_log_structured_va(G_LOG_DOMAIN, level, &ctx, fmt, ap);
    va_end(ap);
}

/* ---- lifetime --------------------------------------------------------------------------- */

hv_media_session *
hv_media_session_ref(hv_media_session *s)
{
    g_atomic_ref_count_inc(&s->ref);
    return s;
}

static void
free_memory(hv_media_session *s)
{
    hv_frame_unref(s->mail_video);
    g_queue_clear_full(&s->mail_audio, (GDestroyNotify)hv_frame_unref);
    g_mutex_clear(&s->mailbox_lock);
    g_mutex_clear(&s->stats_lock);
    g_mutex_clear(&s->tap_lock);
    g_main_context_unref(s->ctx);
    g_free(s->log_mint);
    g_free(s->log_room);
    g_free(s);
}

void
hv_media_session_unref(hv_media_session *s)
{
    if (s != NULL && g_atomic_ref_count_dec(&s->ref)) {
        free_memory(s);
    }
}

bool
hv_media_session_is_destroyed(const hv_media_session *s)
{
    return g_atomic_int_get(&s->destroyed) != 0;
}

static void
closure_unref_session(gpointer data, GClosure *closure)
{
    hv_media_session_unref(data);
}

/* ---- posting to the main context -------------------------------------------------------- */

typedef struct {
    hv_media_session *s;
    GSourceFunc fn;
    void *data;
    GDestroyNotify destroy;
} post_job;

static gboolean
post_job_dispatch(gpointer p)
{
    post_job *j = p;
    if (!hv_media_session_is_destroyed(j->s)) {
        j->fn(j->data);
    }
    return G_SOURCE_REMOVE;
}

static void
post_job_free(gpointer p)
{
    post_job *j = p;
    if (j->destroy != NULL) {
        j->destroy(j->data);
    }
    hv_media_session_unref(j->s);
    g_free(j);
}

void
hv_media_post(hv_media_session *s, GSourceFunc fn, void *data, GDestroyNotify destroy)
{
    /* An explicit idle source, not g_main_context_invoke(): invoke would run fn right here when
     * this thread can acquire the context, i.e. on a GStreamer thread. */
    post_job *j = g_new(post_job, 1);
    j->s = hv_media_session_ref(s);
    j->fn = fn;
    j->data = data;
    j->destroy = destroy;
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, post_job_dispatch, j, post_job_free);
    g_source_set_static_name(src, "hv-media-post");
    g_source_attach(src, s->ctx);
    g_source_unref(src);
}

/* ---- frame mailbox ---------------------------------------------------------------------- */

static gboolean
mailbox_drain(gpointer data)
{
    hv_media_session *s = data;
    g_mutex_lock(&s->mailbox_lock);
    hv_frame *video = s->mail_video;
    s->mail_video = NULL;
    GQueue audio = s->mail_audio;
    g_queue_init(&s->mail_audio);
    s->mail_wake_pending = false;
    g_mutex_unlock(&s->mailbox_lock);

    /* A callback may free the session: check before each one, but release every frame. */
    for (hv_frame *f = g_queue_pop_head(&audio); f != NULL; f = g_queue_pop_head(&audio)) {
        if (!hv_media_session_is_destroyed(s) && s->cb.on_audio_frame != NULL) {
            s->cb.on_audio_frame(f, s->user_data);
        }
        hv_frame_unref(f);
    }
    if (video != NULL) {
        if (!hv_media_session_is_destroyed(s) && s->cb.on_video_frame != NULL) {
            s->cb.on_video_frame(video, s->user_data);
        }
        hv_frame_unref(video);
    }
    return G_SOURCE_REMOVE;
}

void
hv_media_post_frame(hv_media_session *s, hv_frame *f)
{
    hv_frame *drop = NULL;
    bool wake = false;
    bool video = hv_frame_kind_of(f) == HV_FRAME_JPEG;
    g_mutex_lock(&s->mailbox_lock);
    if (video) {
        drop = s->mail_video; /* the main thread lagged: the newest JPEG wins */
        s->mail_video = f;
    } else {
        g_queue_push_tail(&s->mail_audio, f);
        if (g_queue_get_length(&s->mail_audio) > HV_MEDIA_AUDIO_BACKLOG) {
            drop = g_queue_pop_head(&s->mail_audio);
        }
    }
    if (!s->mail_wake_pending) {
        s->mail_wake_pending = true;
        wake = true;
    }
    g_mutex_unlock(&s->mailbox_lock);
    if (drop != NULL) {
        if (video) {
            hv_media_stats_dropped(s);
        }
        hv_frame_unref(drop);
    }
    if (wake) {
        hv_media_post(s, mailbox_drain, s, NULL);
    }
}

/* ---- stats ------------------------------------------------------------------------------ */

void
hv_media_stats_packet(hv_media_session *s, uint64_t payload_bytes, bool new_video_frame)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.bytes_received += payload_bytes;
    s->stats.video_frames_received += new_video_frame ? 1 : 0;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_decoded(hv_media_session *s, int64_t now_us)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.video_frames_decoded++;
    s->decode_us[s->decode_next] = now_us;
    s->decode_next = (s->decode_next + 1) % HV_MEDIA_FPS_RING;
    if (s->decode_count < HV_MEDIA_FPS_RING) {
        s->decode_count++;
    }
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_size(hv_media_session *s, int width, int height)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.width = width;
    s->stats.height = height;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_encoded(hv_media_session *s)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.video_frames_encoded++;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_dropped(hv_media_session *s)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.video_frames_dropped++;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_audio_chunk(hv_media_session *s)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.audio_chunks++;
    g_mutex_unlock(&s->stats_lock);
}

/* Frames decoded per second over the last HV_MEDIA_FPS_WINDOW_US: (n - 1) intervals over the
 * span from the oldest to the newest decode in the window; 0 when the stream stalled. */
static double
fps_locked(const hv_media_session *s, int64_t now_us)
{
    int64_t oldest = 0;
    int64_t newest = 0;
    unsigned n = 0;
    for (unsigned i = 0; i < s->decode_count; i++) {
        unsigned idx = (s->decode_next + HV_MEDIA_FPS_RING - 1 - i) % HV_MEDIA_FPS_RING;
        int64_t t = s->decode_us[idx];
        if (t < now_us - HV_MEDIA_FPS_WINDOW_US) {
            break;
        }
        if (n == 0) {
            newest = t;
        }
        oldest = t;
        n++;
    }
    if (n < 2 || newest <= oldest) {
        return 0.0;
    }
    return (double)(n - 1) * G_USEC_PER_SEC / (double)(newest - oldest);
}

void
hv_media_session_get_stats(const hv_media_session *s, hv_media_stats *out)
{
    g_return_if_fail(s != NULL && out != NULL);
    hv_media_session *m = (hv_media_session *)s; /* the lock is the only thing written */
    g_mutex_lock(&m->stats_lock);
    *out = s->stats;
    out->fps = fps_locked(s, g_get_monotonic_time());
    g_mutex_unlock(&m->stats_lock);
}

/* ---- state ------------------------------------------------------------------------------ */

static const char *
state_name(hv_media_state st)
{
    switch (st) {
    case HV_MEDIA_NEW:
        return "new";
    case HV_MEDIA_CONNECTING:
        return "connecting";
    case HV_MEDIA_CONNECTED:
        return "connected";
    case HV_MEDIA_FAILED:
        return "failed";
    }
    return "?";
}

/* The one way into FAILED: reports once; later offers are ignored. */
static void
session_fail(hv_media_session *s, const char *reason)
{
    if (s->state == HV_MEDIA_FAILED || hv_media_session_is_destroyed(s)) {
        return;
    }
    HV_MEDIA_INFO(s, "failed: %s", reason);
    s->state = HV_MEDIA_FAILED;
    s->negotiating = false;
    g_clear_pointer(&s->pending_offer, g_free);
    if (s->cb.on_state != NULL) {
        s->cb.on_state(HV_MEDIA_FAILED, reason, s->user_data);
    }
}

static void
session_set_state(hv_media_session *s, hv_media_state st)
{
    if (s->state == st || s->state == HV_MEDIA_FAILED || hv_media_session_is_destroyed(s)) {
        return;
    }
    HV_MEDIA_DEBUG(s, "state %s -> %s", state_name(s->state), state_name(st));
    s->state = st;
    if (s->cb.on_state != NULL) {
        s->cb.on_state(st, NULL, s->user_data);
    }
}

typedef struct {
    hv_media_session *s;
    int ice; /* GstWebRTCICEConnectionState, or -1 */
    int pc;  /* GstWebRTCPeerConnectionState, or -1 */
} state_job;

static gboolean
on_state_job(gpointer p)
{
    state_job *j = p;
    hv_media_session *s = j->s;
    /* Either tells: against a LiveKit-like server (werift, pion) webrtcbin 1.22 never notifies
     * ice-connection-state at all, only connection-state (ICE and DTLS both connected). */
    if (j->ice == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
        j->ice == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED ||
        j->pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
        session_set_state(s, HV_MEDIA_CONNECTED);
    } else if (j->ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) {
        session_fail(s, "ICE failed");
    } else if (j->pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
        session_fail(s, "peer connection failed (DTLS)");
    } else {
        HV_MEDIA_DEBUG(s, "ice-connection-state %d, connection-state %d", j->ice, j->pc);
    }
    return G_SOURCE_REMOVE;
}

static void
on_webrtc_state_notify(GObject *webrtc, GParamSpec *pspec, gpointer user_data)
{
    hv_media_session *s = user_data;
    state_job *j = g_new(state_job, 1);
    j->s = s;
    j->ice = -1;
    j->pc = -1;
    if (strcmp(pspec->name, "ice-connection-state") == 0) {
        GstWebRTCICEConnectionState v;
        g_object_get(webrtc, "ice-connection-state", &v, NULL);
        j->ice = (int)v;
    } else {
        GstWebRTCPeerConnectionState v;
        g_object_get(webrtc, "connection-state", &v, NULL);
        j->pc = (int)v;
    }
    hv_media_post(s, on_state_job, j, g_free);
}

static gboolean
on_bus_message(GstBus *bus, GstMessage *msg, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        g_autoptr(GError) err = NULL;
        g_autofree char *dbg = NULL;
        gst_message_parse_error(msg, &err, &dbg);
        g_autofree char *reason =
            g_strdup_printf("pipeline error from %s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                            err != NULL ? err->message : "?");
        HV_MEDIA_DEBUG(s, "%s (%s)", reason, dbg != NULL ? dbg : "");
        session_fail(s, reason);
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
        g_autoptr(GError) err = NULL;
        gst_message_parse_warning(msg, &err, NULL);
        HV_MEDIA_DEBUG(s, "pipeline warning from %s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                       err != NULL ? err->message : "?");
    }
    return G_SOURCE_CONTINUE;
}

/* ---- local ICE candidates --------------------------------------------------------------- */

typedef struct {
    hv_media_session *s;
    unsigned mline;
    char *candidate;
} cand_job;

static void
cand_job_free(gpointer p)
{
    cand_job *j = p;
    g_free(j->candidate);
    g_free(j);
}

static void
deliver_local_candidate(hv_media_session *s, const cand_job *j)
{
    const char *mid = NULL;
    if (s->answer_mids != NULL && j->mline < g_strv_length(s->answer_mids)) {
        mid = s->answer_mids[j->mline];
    }
    if (s->cb.on_local_candidate != NULL) {
        s->cb.on_local_candidate(j->candidate, mid, (int)j->mline, s->user_data);
    }
}

static gboolean
on_local_candidate_job(gpointer p)
{
    cand_job *j = p;
    hv_media_session *s = j->s;
    if (s->answer_sent) {
        deliver_local_candidate(s, j);
        return G_SOURCE_REMOVE;
    }
    /* Held until the answer is out (protocol doc §4.5, §9.4 item 12). */
    if (s->held_cands->len >= HV_MEDIA_MAX_PENDING_CANDS) {
        HV_MEDIA_DEBUG(s, "too many early local candidates; dropping %s", j->candidate);
        return G_SOURCE_REMOVE;
    }
    cand_job *copy = g_new(cand_job, 1);
    copy->s = s;
    copy->mline = j->mline;
    copy->candidate = g_strdup(j->candidate);
    g_ptr_array_add(s->held_cands, copy);
    return G_SOURCE_REMOVE;
}

static void
on_webrtc_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (candidate == NULL || candidate[0] == '\0') {
        return;
    }
    cand_job *j = g_new(cand_job, 1);
    j->s = s;
    j->mline = mline;
    j->candidate = g_strdup(candidate);
    hv_media_post(s, on_local_candidate_job, j, cand_job_free);
}

static void
flush_held_candidates(hv_media_session *s)
{
    g_autoptr(GPtrArray) held = s->held_cands;
    s->held_cands = g_ptr_array_new_with_free_func(cand_job_free);
    for (unsigned i = 0; i < held->len && !hv_media_session_is_destroyed(s); i++) {
        deliver_local_candidate(s, g_ptr_array_index(held, i));
    }
}

void
hv_media_session_add_candidate(hv_media_session *s, const char *candidate, const char *sdp_mid,
                               int mline_index)
{
    g_return_if_fail(s != NULL && candidate != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    const char *c = candidate;
    if (g_str_has_prefix(c, "a=")) {
        c += 2;
    }
    g_autofree char *line = g_strstrip(g_strdup(c));
    /* webrtcbin keys candidates by m-line index only (it buffers those that arrive before the
     * remote description); the index is what LiveKit sends reliably (protocol doc §9.4 item
     * 9). Without one, the mid is looked up in the last applied offer. */
    for (size_t i = 0;
         mline_index < 0 && sdp_mid != NULL && s->offer_mids != NULL && s->offer_mids[i] != NULL;
         i++) {
        if (strcmp(s->offer_mids[i], sdp_mid) == 0) {
            mline_index = (int)i;
        }
    }
    if (line[0] == '\0' || mline_index < 0) {
        HV_MEDIA_DEBUG(s, "ignoring remote candidate '%s' (mline %d)", candidate, mline_index);
        return;
    }
    g_signal_emit_by_name(s->webrtc, "add-ice-candidate", (guint)mline_index, line);
}

/* ---- offer / answer --------------------------------------------------------------------- */

/* One step of the offer → answer sequence, carried from a promise callback (webrtcbin thread)
 * to the main thread. */
typedef struct {
    hv_media_session *s; /* strong */
    uint32_t offer_id;
    GstSDPMessage *offer;
    GstWebRTCSessionDescription *answer;
    char *error; /* set when the step failed */
} neg_step;

static neg_step *
neg_step_new(hv_media_session *s, uint32_t offer_id)
{
    neg_step *n = g_new0(neg_step, 1);
    n->s = hv_media_session_ref(s);
    n->offer_id = offer_id;
    return n;
}

static void
neg_step_free(gpointer p)
{
    neg_step *n = p;
    if (n->offer != NULL) {
        gst_sdp_message_free(n->offer);
    }
    if (n->answer != NULL) {
        gst_webrtc_session_description_free(n->answer);
    }
    g_free(n->error);
    hv_media_session_unref(n->s);
    g_free(n);
}

/* Moves the step's payload into a new step for the next stage (the promise keeps the old one
 * until it is freed). */
static neg_step *
neg_step_take(neg_step *n)
{
    neg_step *next = neg_step_new(n->s, n->offer_id);
    next->offer = n->offer;
    next->answer = n->answer;
    n->offer = NULL;
    n->answer = NULL;
    return next;
}

/* The promise's error text, or NULL when it was replied without an "error" field. */
static char *
promise_error(GstPromise *promise)
{
    GstPromiseResult res = gst_promise_wait(promise);
    if (res != GST_PROMISE_RESULT_REPLIED) {
        return g_strdup(res == GST_PROMISE_RESULT_INTERRUPTED ? "interrupted" : "expired");
    }
    const GstStructure *reply = gst_promise_get_reply(promise);
    if (reply == NULL || !gst_structure_has_field(reply, "error")) {
        return NULL;
    }
    GError *err = NULL;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &err, NULL);
    char *text = g_strdup(err != NULL ? err->message : "unknown error");
    g_clear_error(&err);
    return text;
}

static void apply_offer(hv_media_session *s, char *sdp, uint32_t offer_id);
static gboolean on_remote_set(gpointer p);
static gboolean on_answer_created(gpointer p);
static gboolean on_local_set(gpointer p);

static void
on_promise_remote_set(GstPromise *promise, gpointer user_data)
{
    neg_step *next = neg_step_take(user_data);
    next->error = promise_error(promise);
    hv_media_post(next->s, on_remote_set, next, neg_step_free);
}

static void
on_promise_answer_created(GstPromise *promise, gpointer user_data)
{
    neg_step *next = neg_step_take(user_data);
    next->error = promise_error(promise);
    const GstStructure *reply = NULL;
    if (next->error == NULL) {
        reply = gst_promise_get_reply(promise);
    }
    if (reply != NULL && gst_structure_has_field(reply, "answer")) {
        gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &next->answer,
                          NULL);
    }
    if (next->error == NULL && next->answer == NULL) {
        next->error = g_strdup("no answer in the reply");
    }
    hv_media_post(next->s, on_answer_created, next, neg_step_free);
}

static void
on_promise_local_set(GstPromise *promise, gpointer user_data)
{
    neg_step *next = neg_step_take(user_data);
    next->error = promise_error(promise);
    hv_media_post(next->s, on_local_set, next, neg_step_free);
}

static gboolean
strip_rtcp_fb(GQuark field, GValue *value, gpointer user_data)
{
    return !g_str_has_prefix(g_quark_to_string(field), "rtcp-fb-");
}

/* Whether a codec of this m-line can be depayloaded and decoded here. */
static bool
codec_usable(const hv_media_session *s, const char *media, const GstStructure *st)
{
    const char *enc = gst_structure_get_string(st, "encoding-name");
    if (enc == NULL) {
        return false;
    }
    if (strcmp(media, "audio") == 0) {
        return s->have_opus && g_ascii_strcasecmp(enc, "OPUS") == 0;
    }
    if (g_ascii_strcasecmp(enc, "VP8") == 0) {
        return s->have_vp8;
    }
    if (g_ascii_strcasecmp(enc, "VP9") == 0) {
        return s->have_vp9;
    }
    if (g_ascii_strcasecmp(enc, "H264") == 0) {
        const char *mode = gst_structure_get_string(st, "packetization-mode");
        return s->have_h264 && mode != NULL && strcmp(mode, "1") == 0;
    }
    return false;
}

/* The offer's payload types for this m-line that we can decode, plus their RTX entries, in the
 * offer's order, without rtcp-fb fields (the offer's feedback lines survive the intersection
 * webrtcbin makes). NULL when nothing is usable. */
static GstCaps *
codec_preferences(const hv_media_session *s, const GstSDPMedia *m)
{
    const char *media = gst_sdp_media_get_media(m);
    GstCaps *prefs = gst_caps_new_empty();
    g_autoptr(GArray) kept = g_array_new(FALSE, FALSE, sizeof(int));
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < gst_sdp_media_formats_len(m); i++) {
            int64_t pt = 0;
            if (!g_ascii_string_to_signed(gst_sdp_media_get_format(m, i), 10, 0, 127, &pt, NULL)) {
                continue;
            }
            GstCaps *c = gst_sdp_media_get_caps_from_media(m, (int)pt);
            if (c == NULL) {
                continue;
            }
            c = gst_caps_make_writable(c);
            GstStructure *st = gst_caps_get_structure(c, 0);
            /* webrtcbin renames these the same way before intersecting. */
            gst_structure_set_name(st, "application/x-rtp");
            bool keep = false;
            const char *enc = gst_structure_get_string(st, "encoding-name");
            if (pass == 0) {
                keep = codec_usable(s, media, st);
            } else if (enc != NULL && g_ascii_strcasecmp(enc, "RTX") == 0) {
                int64_t apt = -1;
                const char *apt_s = gst_structure_get_string(st, "apt");
                if (apt_s != NULL && g_ascii_string_to_signed(apt_s, 10, 0, 127, &apt, NULL)) {
                    for (unsigned k = 0; k < kept->len; k++) {
                        keep = keep || g_array_index(kept, int, k) == (int)apt;
                    }
                }
            }
            if (keep) {
                int v = (int)pt;
                g_array_append_val(kept, v);
                gst_structure_filter_and_map_in_place(st, strip_rtcp_fb, NULL);
                gst_caps_append_structure(prefs, gst_structure_copy(st));
            }
            gst_caps_unref(c);
        }
    }
    if (gst_caps_is_empty(prefs)) {
        gst_caps_unref(prefs);
        return NULL;
    }
    return prefs;
}

static void
configure_transceiver(hv_media_session *s, GstWebRTCRTPTransceiver *t, const GstSDPMedia *m,
                      unsigned mline)
{
    g_autoptr(GstCaps) prefs = codec_preferences(s, m);
    if (prefs == NULL) {
        HV_MEDIA_INFO(s, "m-line %u (%s): no codec we can decode; answering inactive", mline,
                      gst_sdp_media_get_media(m));
        g_object_set(t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE,
                     "codec-preferences", NULL, NULL);
        return;
    }
    g_autofree char *txt = gst_caps_to_string(prefs);
    HV_MEDIA_DEBUG(s, "m-line %u codec preferences: %s", mline, txt);
    g_object_set(t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, "do-nack", TRUE,
                 "codec-preferences", prefs, NULL);
}

/* After set-remote-description: every audio/video transceiver becomes recvonly with codec
 * preferences limited to what we decode (protocol doc §4.3 step 4). An audio/video m-line with
 * no transceiver (possible on GStreamer <= 1.24, doc §9.4 item 2) gets a recvonly one. */
static void
configure_transceivers(hv_media_session *s, const GstSDPMessage *offer)
{
    unsigned n_media = gst_sdp_message_medias_len(offer);
    g_autofree bool *covered = g_new0(bool, n_media + 1);
    GArray *arr = NULL;
    g_signal_emit_by_name(s->webrtc, "get-transceivers", &arr);
    for (unsigned i = 0; arr != NULL && i < arr->len; i++) {
        GstWebRTCRTPTransceiver *t = g_array_index(arr, GstWebRTCRTPTransceiver *, i);
        guint mline = G_MAXUINT;
        g_object_get(t, "mlineindex", &mline, NULL);
        if (mline >= n_media) {
            continue;
        }
        const GstSDPMedia *m = gst_sdp_message_get_media(offer, mline);
        const char *media = gst_sdp_media_get_media(m);
        if (strcmp(media, "audio") != 0 && strcmp(media, "video") != 0) {
            continue;
        }
        covered[mline] = true;
        configure_transceiver(s, t, m, mline);
    }
    if (arr != NULL) {
        g_array_unref(arr);
    }
    for (unsigned i = 0; i < n_media; i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(offer, i);
        const char *media = gst_sdp_media_get_media(m);
        if (covered[i] || (strcmp(media, "audio") != 0 && strcmp(media, "video") != 0)) {
            continue;
        }
        g_autoptr(GstCaps) prefs = codec_preferences(s, m);
        if (prefs == NULL) {
            continue;
        }
        HV_MEDIA_INFO(s, "m-line %u (%s) has no transceiver; adding a recvonly one", i, media);
        GstWebRTCRTPTransceiver *t = NULL;
        g_signal_emit_by_name(s->webrtc, "add-transceiver",
                              GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, prefs, &t);
        if (t != NULL) {
            g_object_set(t, "do-nack", TRUE, NULL);
            gst_object_unref(t);
        }
    }
}

/* The ICE ufrag of an SDP (session level, else the first media's), or NULL. */
static char *
sdp_ufrag(const GstSDPMessage *msg)
{
    const char *u = gst_sdp_message_get_attribute_val(msg, "ice-ufrag");
    for (unsigned i = 0; u == NULL && i < gst_sdp_message_medias_len(msg); i++) {
        u = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(msg, i), "ice-ufrag");
    }
    return g_strdup(u);
}

static gboolean
on_remote_set(gpointer p)
{
    neg_step *n = p;
    hv_media_session *s = n->s;
    if (n->error != NULL) {
        g_autofree char *reason =
            g_strdup_printf("set-remote-description refused offer %u: %s", n->offer_id, n->error);
        session_fail(s, reason);
        return G_SOURCE_REMOVE;
    }
    configure_transceivers(s, n->offer);
    GstPromise *promise = gst_promise_new_with_change_func(on_promise_answer_created,
                                                           neg_step_take(n), neg_step_free);
    g_signal_emit_by_name(s->webrtc, "create-answer", NULL, promise);
    gst_promise_unref(promise);
    return G_SOURCE_REMOVE;
}

static gboolean
on_answer_created(gpointer p)
{
    neg_step *n = p;
    hv_media_session *s = n->s;
    if (n->error != NULL) {
        g_autofree char *reason =
            g_strdup_printf("create-answer failed for offer %u: %s", n->offer_id, n->error);
        session_fail(s, reason);
        return G_SOURCE_REMOVE;
    }
    GstWebRTCSessionDescription *answer = n->answer;
    GstPromise *promise =
        gst_promise_new_with_change_func(on_promise_local_set, neg_step_take(n), neg_step_free);
    g_signal_emit_by_name(s->webrtc, "set-local-description", answer, promise);
    gst_promise_unref(promise);
    return G_SOURCE_REMOVE;
}

static gboolean
on_local_set(gpointer p)
{
    neg_step *n = p;
    hv_media_session *s = n->s;
    if (n->error != NULL) {
        g_autofree char *reason =
            g_strdup_printf("set-local-description failed for offer %u: %s", n->offer_id, n->error);
        session_fail(s, reason);
        return G_SOURCE_REMOVE;
    }
    if (s->state == HV_MEDIA_FAILED) {
        return G_SOURCE_REMOVE;
    }
    const GstSDPMessage *sdp = n->answer->sdp;
    unsigned n_media = gst_sdp_message_medias_len(sdp);
    g_strfreev(s->answer_mids);
    s->answer_mids = g_new0(char *, n_media + 1);
    for (unsigned i = 0; i < n_media; i++) {
        const char *mid = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(sdp, i), "mid");
        s->answer_mids[i] = g_strdup(mid != NULL ? mid : "");
    }
    g_autofree char *text = gst_sdp_message_as_text(sdp);
    s->negotiating = false;
    HV_MEDIA_DEBUG(s, "answer for offer %u ready (%u m-lines)", n->offer_id, n_media);
    if (s->cb.on_answer != NULL) {
        s->cb.on_answer(text, n->offer_id, s->user_data);
    }
    if (hv_media_session_is_destroyed(s)) {
        return G_SOURCE_REMOVE;
    }
    if (s->state == HV_MEDIA_NEW) {
        session_set_state(s, HV_MEDIA_CONNECTING);
    }
    if (!s->answer_sent && !hv_media_session_is_destroyed(s)) {
        s->answer_sent = true;
        flush_held_candidates(s);
    }
    if (s->pending_offer != NULL && !hv_media_session_is_destroyed(s)) {
        char *next = s->pending_offer;
        s->pending_offer = NULL;
        apply_offer(s, next, s->pending_offer_id);
    }
    return G_SOURCE_REMOVE;
}

/* Takes sdp (transfer full). */
static void
apply_offer(hv_media_session *s, char *sdp, uint32_t offer_id)
{
    GstSDPMessage *msg = NULL;
    if (gst_sdp_message_new_from_text(sdp, &msg) != GST_SDP_OK ||
        gst_sdp_message_medias_len(msg) == 0) {
        g_free(sdp);
        if (msg != NULL) {
            gst_sdp_message_free(msg);
        }
        g_autofree char *reason = g_strdup_printf("offer %u is not a usable SDP", offer_id);
        session_fail(s, reason);
        return;
    }
    g_free(sdp);
    char *ufrag = sdp_ufrag(msg);
    if (s->last_ufrag != NULL && ufrag != NULL && strcmp(ufrag, s->last_ufrag) != 0) {
        /* webrtcbin cannot restart ICE (protocol doc §4.3 step 2): the caller reconnects. */
        g_free(ufrag);
        gst_sdp_message_free(msg);
        g_autofree char *reason = g_strdup_printf(
            "offer %u restarts ICE (new ufrag), which webrtcbin cannot do", offer_id);
        session_fail(s, reason);
        return;
    }
    if (ufrag != NULL) {
        g_free(s->last_ufrag);
        s->last_ufrag = ufrag;
    }
    unsigned n_media = gst_sdp_message_medias_len(msg);
    g_strfreev(s->offer_mids);
    s->offer_mids = g_new0(char *, n_media + 1);
    for (unsigned i = 0; i < n_media; i++) {
        const char *mid = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(msg, i), "mid");
        s->offer_mids[i] = g_strdup(mid != NULL ? mid : "");
    }
    HV_MEDIA_DEBUG(s, "applying offer %u (%u m-lines)", offer_id, gst_sdp_message_medias_len(msg));
    s->negotiating = true;
    neg_step *n = neg_step_new(s, offer_id);
    gst_sdp_message_copy(msg, &n->offer);
    GstWebRTCSessionDescription *desc =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, msg);
    GstPromise *promise = gst_promise_new_with_change_func(on_promise_remote_set, n, neg_step_free);
    g_signal_emit_by_name(s->webrtc, "set-remote-description", desc, promise);
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(desc);
}

void
hv_media_session_set_offer(hv_media_session *s, const char *sdp, uint32_t offer_id)
{
    g_return_if_fail(s != NULL && sdp != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    if (s->state == HV_MEDIA_FAILED) {
        HV_MEDIA_DEBUG(s, "ignoring offer %u: session failed", offer_id);
        return;
    }
    if (s->negotiating) {
        if (s->pending_offer != NULL) {
            HV_MEDIA_INFO(s, "offer %u replaces unanswered offer %u", offer_id,
                          s->pending_offer_id);
            g_free(s->pending_offer);
        }
        s->pending_offer = g_strdup(sdp);
        s->pending_offer_id = offer_id;
        return;
    }
    apply_offer(s, g_strdup(sdp), offer_id);
}

/* ---- webrtcbin signals (GStreamer threads) ---------------------------------------------- */

static void
on_webrtc_pad_added(GstElement *webrtc, GstPad *pad, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC && !hv_media_session_is_destroyed(s)) {
        hv_media_decode_pad_added(s, pad);
    }
}

static void
on_webrtc_pad_removed(GstElement *webrtc, GstPad *pad, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC) {
        hv_media_decode_pad_removed(s, pad);
    }
}

typedef struct {
    hv_media_session *s;
    GObject *channel; /* strong */
} channel_job;

static gboolean
on_data_channel_job(gpointer p)
{
    channel_job *j = p;
    HV_MEDIA_DEBUG(j->s, "data channel opened by the server; keeping it");
    g_ptr_array_add(j->s->data_channels, g_object_ref(j->channel));
    return G_SOURCE_REMOVE;
}

static void
channel_job_free(gpointer p)
{
    channel_job *j = p;
    g_object_unref(j->channel);
    g_free(j);
}

static void
on_webrtc_data_channel(GstElement *webrtc, GObject *channel, gpointer user_data)
{
    hv_media_session *s = user_data;
    channel_job *j = g_new(channel_job, 1);
    j->s = s;
    j->channel = g_object_ref(channel);
    hv_media_post(s, on_data_channel_job, j, channel_job_free);
}

/* ---- construction ----------------------------------------------------------------------- */

static bool
have_element(const char *name)
{
    GstElementFactory *f = gst_element_factory_find(name);
    if (f == NULL) {
        return false;
    }
    gst_object_unref(f);
    return true;
}

static bool
check_elements(GError **error)
{
    static const char *const required[] = {
        "webrtcbin", "nicesrc",      "dtlssrtpdec",   "sctpdec", "jpegenc",    "videoconvert",
        "appsink",   "audioconvert", "audioresample", "tee",     "capsfilter", "queue",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(required); i++) {
        if (!have_element(required[i])) {
            g_set_error(error, HV_ERROR, HV_ENOTFOUND, "GStreamer element '%s' is missing",
                        required[i]);
            return false;
        }
    }
    return true;
}

static bool
configure_ice_servers(hv_media_session *s, const char *const *servers)
{
    bool have_stun = false;
    for (size_t i = 0; servers != NULL && servers[i] != NULL; i++) {
        const char *uri = servers[i];
        g_autofree char *fixed = NULL;
        /* Accept the RFC 7064 spelling ("stun:host:port") as well as GStreamer's. */
        static const char *const schemes[] = {"stun:", "turn:", "turns:"};
        for (size_t k = 0; k < G_N_ELEMENTS(schemes); k++) {
            size_t len = strlen(schemes[k]);
            if (g_str_has_prefix(uri, schemes[k]) && strncmp(uri + len, "//", 2) != 0) {
                fixed = g_strdup_printf("%s//%s", schemes[k], uri + len);
                uri = fixed;
            }
        }
        if (g_str_has_prefix(uri, "stun://")) {
            if (have_stun) {
                HV_MEDIA_DEBUG(s, "webrtcbin takes one STUN server; ignoring %s", uri);
                continue;
            }
            g_object_set(s->webrtc, "stun-server", uri, NULL);
            have_stun = true;
        } else if (g_str_has_prefix(uri, "turn://") || g_str_has_prefix(uri, "turns://")) {
            gboolean ok = FALSE;
            g_signal_emit_by_name(s->webrtc, "add-turn-server", uri, &ok);
            if (!ok) {
                HV_MEDIA_INFO(s, "webrtcbin refused a TURN server URI");
            }
        } else {
            HV_MEDIA_INFO(s, "ignoring ICE server with unknown scheme");
        }
    }
    return true;
}

/* Configures webrtcbin's libnice agent: no UPnP port mapping (a server must not ask the LAN's
 * router for mappings), and, when list is non-empty, only the listed local addresses. libnice
 * gathers on every non-loopback interface unless local addresses are added explicitly; once
 * one is added it uses only the added ones, which is also the only way to get loopback. */
static bool
configure_nice(hv_media_session *s, const char *list, GError **error)
{
    GstObject *ice = NULL;
    g_object_get(s->webrtc, "ice-agent", &ice, NULL);
    NiceAgent *agent = NULL;
    if (ice != NULL && g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent") != NULL) {
        g_object_get(ice, "agent", &agent, NULL);
    }
    g_clear_object(&ice);
    if (agent == NULL) {
        if (list == NULL || list[0] == '\0') {
            return true;
        }
        g_set_error(error, HV_ERROR, HV_EINVAL,
                    "webrtcbin's ICE agent is not libnice; cannot restrict ICE addresses");
        return false;
    }
    g_object_set(agent, "upnp", FALSE, NULL);
    bool ok = true;
    g_auto(GStrv) parts = g_strsplit(list != NULL ? list : "", ",", -1);
    for (size_t i = 0; parts[i] != NULL && ok; i++) {
        const char *ip = g_strstrip(parts[i]);
        if (ip[0] == '\0') {
            continue;
        }
        NiceAddress addr;
        nice_address_init(&addr);
        if (!nice_address_set_from_string(&addr, ip)) {
            g_set_error(error, HV_ERROR, HV_EINVAL, "ICE address '%s' is not an IP address", ip);
            ok = false;
        } else if (!nice_agent_add_local_address(agent, &addr)) {
            g_set_error(error, HV_ERROR, HV_EINVAL, "libnice refused local address '%s'", ip);
            ok = false;
        } else {
            HV_MEDIA_DEBUG(s, "ICE may use %s", ip);
        }
    }
    g_object_unref(agent);
    return ok;
}

static void
connect_session(hv_media_session *s, const char *signal, GCallback cb)
{
    g_signal_connect_data(s->webrtc, signal, cb, hv_media_session_ref(s), closure_unref_session, 0);
}

/* Builds the pipeline (NULL state) with webrtcbin configured and connected. */
static bool
build_pipeline(hv_media_session *s, const hv_media_config *cfg, GError **error)
{
    g_autofree char *name = g_strdup_printf("hv-media-%u", s->id);
    s->pipeline = gst_pipeline_new(name);
    s->webrtc = gst_element_factory_make("webrtcbin", "webrtc");
    if (s->pipeline == NULL || s->webrtc == NULL) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "cannot create webrtcbin");
        if (s->webrtc != NULL) {
            gst_object_unref(gst_object_ref_sink(s->webrtc));
        }
        s->webrtc = NULL;
        return false;
    }
    gst_bin_add(GST_BIN(s->pipeline), s->webrtc);
    g_object_set(s->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, NULL);
    if (!configure_ice_servers(s, cfg->ice_servers) ||
        !configure_nice(s, cfg->ice_addresses, error)) {
        return false;
    }
    connect_session(s, "on-ice-candidate", G_CALLBACK(on_webrtc_ice_candidate));
    connect_session(s, "pad-added", G_CALLBACK(on_webrtc_pad_added));
    connect_session(s, "pad-removed", G_CALLBACK(on_webrtc_pad_removed));
    connect_session(s, "on-data-channel", G_CALLBACK(on_webrtc_data_channel));
    connect_session(s, "notify::ice-connection-state", G_CALLBACK(on_webrtc_state_notify));
    connect_session(s, "notify::connection-state", G_CALLBACK(on_webrtc_state_notify));

    g_autoptr(GstBus) bus = gst_pipeline_get_bus(GST_PIPELINE(s->pipeline));
    s->bus_source = gst_bus_create_watch(bus);
    g_source_set_callback(s->bus_source, G_SOURCE_FUNC(on_bus_message), hv_media_session_ref(s),
                          (GDestroyNotify)hv_media_session_unref);
    g_source_attach(s->bus_source, s->ctx);
    return true;
}

static void session_teardown(hv_media_session *s);

hv_media_session *
hv_media_session_new(const hv_media_config *cfg, const hv_media_callbacks *cb, void *user_data,
                     GError **error)
{
    g_return_val_if_fail(cfg != NULL && cb != NULL, NULL);
    if (!gst_is_initialized() && !gst_init_check(NULL, NULL, error)) {
        return NULL;
    }
    if (!check_elements(error)) {
        return NULL;
    }
    hv_media_session *s = g_new0(hv_media_session, 1);
    g_atomic_ref_count_init(&s->ref);
    s->id = (unsigned)g_atomic_int_add(&next_session_id, 1);
    s->log_mint = g_strdup(cfg->log_mint);
    s->log_room = g_strdup(cfg->log_room);
    s->ctx = g_main_context_ref_thread_default();
    s->cb = *cb;
    s->user_data = user_data;
    s->jpeg_quality = CLAMP(cfg->jpeg_quality, 1, 100);
    s->have_vp8 = have_element("rtpvp8depay") && have_element("vp8dec");
    s->have_vp9 = have_element("rtpvp9depay") && have_element("vp9dec");
    s->h264_decoder = have_element("avdec_h264")    ? "avdec_h264"
                      : have_element("openh264dec") ? "openh264dec"
                                                    : NULL;
    s->have_h264 =
        s->h264_decoder != NULL && have_element("rtph264depay") && have_element("h264parse");
    s->have_opus = have_element("rtpopusdepay") && have_element("opusdec");
    g_mutex_init(&s->stats_lock);
    g_mutex_init(&s->mailbox_lock);
    g_mutex_init(&s->tap_lock);
    g_queue_init(&s->mail_audio);
    s->branches = g_ptr_array_new();
    s->formats = g_array_new(FALSE, FALSE, sizeof(hv_media_audio_format));
    s->data_channels = g_ptr_array_new_with_free_func(g_object_unref);
    s->held_cands = g_ptr_array_new_with_free_func(cand_job_free);

    if (!s->have_vp8 && !s->have_vp9 && !s->have_h264) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "no VP8, VP9 or H.264 decoder is installed");
    } else if (!s->have_opus) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "opusdec or rtpopusdepay is missing");
    } else if (build_pipeline(s, cfg, error)) {
        if (gst_element_set_state(s->pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE) {
            HV_MEDIA_DEBUG(s, "session created (vp8=%d vp9=%d h264=%s opus=%d)", s->have_vp8,
                           s->have_vp9, s->h264_decoder ? s->h264_decoder : "no", s->have_opus);
            return s;
        }
        g_set_error(error, HV_ERROR, HV_EIO, "the webrtcbin pipeline does not start");
    }
    session_teardown(s);
    return NULL;
}

/* Stops everything and drops the owner's reference. Safe on a half-built session. */
static void
session_teardown(hv_media_session *s)
{
    g_atomic_int_set(&s->destroyed, 1);
    if (s->bus_source != NULL) {
        g_source_destroy(s->bus_source);
        g_clear_pointer(&s->bus_source, g_source_unref);
    }
    if (s->webrtc != NULL) {
        g_signal_handlers_disconnect_matched(s->webrtc, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, s);
    }
    if (s->pipeline != NULL) {
        if (gst_element_set_state(s->pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_FAILURE) {
            HV_MEDIA_INFO(s, "pipeline did not stop cleanly");
        }
    }
    hv_media_decode_clear(s);
    hv_media_session_set_tap(s, NULL, NULL); /* after NULL: no streaming thread is inside it */
    g_ptr_array_unref(s->branches);
    g_array_unref(s->formats);
    g_ptr_array_unref(s->data_channels);
    g_ptr_array_unref(s->held_cands);
    g_strfreev(s->answer_mids);
    g_strfreev(s->offer_mids);
    g_free(s->pending_offer);
    g_free(s->last_ufrag);
    if (s->pipeline != NULL) {
        gst_object_unref(s->pipeline);
    }
    s->pipeline = NULL;
    s->webrtc = NULL;
    hv_media_session_unref(s);
}

void
hv_media_session_free(hv_media_session *s)
{
    if (s == NULL) {
        return;
    }
    HV_MEDIA_DEBUG(s, "freeing session");
    session_teardown(s);
}

/* ---- decoding switches ------------------------------------------------------------------ */

void
hv_media_session_set_video_enabled(hv_media_session *s, bool enabled)
{
    g_return_if_fail(s != NULL);
    /* The video branches' entry probes read this per packet; on the first packet after a
     * re-enable each asks for a keyframe (decode.c). */
    g_atomic_int_set(&s->video_enabled, enabled ? 1 : 0);
}

static int
find_format(const hv_media_session *s, int rate_hz, int channels)
{
    for (unsigned i = 0; i < s->formats->len; i++) {
        const hv_media_audio_format *f = &g_array_index(s->formats, hv_media_audio_format, i);
        if (f->rate_hz == rate_hz && f->channels == channels) {
            return (int)i;
        }
    }
    return -1;
}

void
hv_media_session_add_audio_format(hv_media_session *s, int rate_hz, int channels)
{
    g_return_if_fail(s != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    if (rate_hz < 8000 || rate_hz > 192000 || channels < 1 || channels > 8) {
        HV_MEDIA_INFO(s, "refusing audio format %d Hz / %d channels", rate_hz, channels);
        return;
    }
    int i = find_format(s, rate_hz, channels);
    if (i >= 0) {
        g_array_index(s->formats, hv_media_audio_format, i).users++;
        return;
    }
    if (s->formats->len >= HV_MEDIA_MAX_AUDIO_FORMATS) {
        HV_MEDIA_INFO(s, "too many audio formats; refusing %d Hz / %d channels", rate_hz, channels);
        return;
    }
    hv_media_audio_format f = {.rate_hz = rate_hz, .channels = channels, .users = 1};
    g_array_append_val(s->formats, f);
    g_atomic_int_inc(&s->audio_active);
    hv_media_decode_add_output(s, rate_hz, channels);
}

void
hv_media_session_remove_audio_format(hv_media_session *s, int rate_hz, int channels)
{
    g_return_if_fail(s != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    int i = find_format(s, rate_hz, channels);
    if (i < 0) {
        HV_MEDIA_DEBUG(s, "remove of unknown audio format %d/%d", rate_hz, channels);
        return;
    }
    hv_media_audio_format *f = &g_array_index(s->formats, hv_media_audio_format, i);
    if (--f->users > 0) {
        return;
    }
    g_array_remove_index(s->formats, (unsigned)i);
    (void)g_atomic_int_dec_and_test(&s->audio_active);
    hv_media_decode_remove_output(s, rate_hz, channels);
}

void
hv_media_session_request_keyframe(hv_media_session *s)
{
    g_return_if_fail(s != NULL);
    if (!hv_media_session_is_destroyed(s)) {
        hv_media_decode_request_keyframe(s);
    }
}

/* ---- tap -------------------------------------------------------------------------------- */

void
hv_media_session_set_tap(hv_media_session *s, const hv_media_tap *tap, void *data)
{
    g_return_if_fail(s != NULL);
    void *new_data = tap != NULL && data != NULL ? tap->ref(data) : NULL;
    g_mutex_lock(&s->tap_lock);
    hv_media_tap old = s->tap;
    void *old_data = s->tap_data;
    s->tap_data = new_data;
    if (new_data != NULL) {
        s->tap = *tap;
    }
    g_atomic_int_inc(&s->tap_gen);
    g_atomic_int_set(&s->tap_active, new_data != NULL ? 1 : 0);
    g_mutex_unlock(&s->tap_lock);
    if (old_data != NULL) {
        old.unref(old_data);
    }
    if (new_data != NULL && !hv_media_session_is_destroyed(s)) {
        hv_media_decode_tap_caps(s, tap, new_data);
        hv_media_decode_request_keyframe(s);
    }
}

/* decode.c: one depayload/decode branch per webrtcbin src pad, the audio mixer, and the frames
 * they produce.
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

typedef struct {
    GstClockTime pts;
    int64_t arrival_us;
} arrival_stamp;

/* Refcounted: the main list, the webrtcbin pad's qdata, each probe and appsink callback hold
 * references. The bin is owned by the pipeline; the branch only borrows pointers into it. */
struct hv_media_branch {
    gatomicrefcount ref;
    hv_media_session *s; /* strong */
    bool is_video;
    bool supported; /* false: the pad goes to a fakesink */
    char codec[16];
    char *mid;
    char *track_sid; /* main thread: the LiveKit track, from the offer ("" unknown) */
    /* Atomic: video: this track is the one decoded and tapped; audio: the one tapped. Starts
     * 0: nothing leaves the branch before the main thread registered and selected it. */
    int selected;

    /* Borrowed from the bin (owned by the pipeline); used by the main thread only while
     * registered && !removed, or by the threads running inside the bin. */
    GstElement *bin;
    GstPad *mix_pad;   /* audio: the mixer's request pad (strong), released at teardown */
    GstPad *entry;     /* the depayloader's sink pad */
    GstPad *depay_src; /* the depayloader's src pad: tap and decode gate */

    /* Entry probe only (the thread pushing out of the webrtcbin pad). */
    bool entry_enabled;
    GstClockTime entry_last_pts;
    int clock_rate; /* RTP clock rate from the pad caps (90000 video, 48000 Opus) */
    bool have_rtp_ts;
    uint32_t last_rtp_ts;
    int64_t ext_rtp_ts; /* unwrapped RTP timestamp of the newest packet */

    /* Depayloader src probe only (same thread as the entry probe). */
    GstSegment segment; /* for running times handed to the tap */
    bool have_segment;
    bool decode_gated; /* packets were kept from the decoder; video resumes on a keyframe */
    /* Per tap slot: the tap generation the anchor belongs to, and the anchor. */
    unsigned tap_gen[HV_MEDIA_TAP_SLOTS];
    GstClockTime anchor_rt[HV_MEDIA_TAP_SLOTS];
    int64_t anchor_rtp_ns[HV_MEDIA_TAP_SLOTS];
    bool gate_asked; /* a keyframe was requested for the resume */

    /* Decode timing (haven_video_decode_seconds): the decoder's sink probe notes when each
     * PTS went in, its src probe looks it up. TIMING_LOCK: a decoder may push from a thread of
     * its own. */
    GMutex timing_lock;
    arrival_stamp dec_in[8];
    unsigned dec_in_next;
    /* JPEG timing: jpegenc encodes within its sink pad's chain call, so both probes run on
     * the same thread one after the other. */
    int64_t jpeg_in_us;

    /* Audio into the mixer (the mix probe's thread only): the branch's own timeline, see
     * on_mix_probe. */
    GstSegment mix_segment;
    bool mix_have_segment;
    bool mix_anchored;
    GstClockTime mix_next_rt; /* running time of the next sample into the mixer */

    /* STAMPS_LOCK: the entry probe writes, appsink callbacks read. */
    GMutex stamps_lock;
    arrival_stamp stamps[HV_MEDIA_STAMPS];
    unsigned stamps_next;
    unsigned stamps_count;

    /* Main thread only. */
    bool registered;
    bool removed;
};

/* One PCM format on the mixer's tee. Refcounted: s->outputs, the appsink callback and a
 * pending unlink hold references. */
struct hv_media_output {
    gatomicrefcount ref;
    hv_media_session *s; /* strong */
    int rate_hz;
    int channels;
    GstElement *bin; /* borrowed: owned by the pipeline */
    GstPad *tee_pad; /* strong: the request pad on s->mix_tee */
    bool removing;   /* main: an idle probe will unlink it; then it leaves s->outputs */
};

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

static hv_media_output *
output_ref(hv_media_output *o)
{
    g_atomic_ref_count_inc(&o->ref);
    return o;
}

static void
output_unref(gpointer p)
{
    hv_media_output *o = p;
    if (o == NULL || !g_atomic_ref_count_dec(&o->ref)) {
        return;
    }
    if (o->tee_pad != NULL) {
        gst_object_unref(o->tee_pad);
    }
    hv_media_session_unref(o->s);
    g_free(o);
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
 * captured_us: the entry probe records (buffer PTS → g_get_monotonic_time()) for the first
 * packet of each new RTP timestamp in a small per-branch ring. Depayloaders, decoders, jpegenc
 * and audioresample carry the PTS through, so the appsink looks up the newest stamp with
 * pts <= the output PTS. The stamp is taken where the packet leaves webrtcbin: after SRTP and
 * the jitterbuffer, which releases in-order packets at once (a packet held back waiting for a
 * retransmission is stamped when released). No stamp (ring overrun) → the appsink's time. */

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

/* The arrival time also travels on the buffers themselves, as a GstReferenceTimestampMeta with
 * these caps: depayloaders, decoders, videoconvert and jpegenc copy metas without tags, so the
 * JPEG or PCM buffer at the appsink still says when its first packet arrived, whatever the
 * elements did to its PTS. The PTS ring above remains the fallback for elements that drop it. */
GstCaps *
hv_media_arrival_caps(void)
{
    static GstCaps *caps = NULL;
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        caps = gst_caps_new_empty_simple("timestamp/x-haven-arrival");
        GST_MINI_OBJECT_FLAG_SET(caps, GST_MINI_OBJECT_FLAG_MAY_BE_LEAKED);
        g_once_init_leave(&once, 1);
    }
    return caps;
}

/* The sender's RTP timestamp, unwrapped to 64 bits and converted to ns, travels on the buffers
 * the same way: the tap builds each stream's timeline from it, so that jitterbuffer resyncs and
 * rtpbin's lip-sync corrections (jumps of hundreds of ms) never reach a recording. */
static GstCaps *
rtp_time_caps(void)
{
    static GstCaps *caps = NULL;
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        caps = gst_caps_new_empty_simple("timestamp/x-haven-rtp");
        GST_MINI_OBJECT_FLAG_SET(caps, GST_MINI_OBJECT_FLAG_MAY_BE_LEAKED);
        g_once_init_leave(&once, 1);
    }
    return caps;
}

/* ---- probes (streaming threads) --------------------------------------------------------- */

/* A SEGMENT event in TIME format is copied into `into`; false for any other. */
static bool
copy_time_segment(GstEvent *ev, GstSegment *into)
{
    const GstSegment *seg = NULL;
    gst_event_parse_segment(ev, &seg);
    if (seg->format != GST_FORMAT_TIME) {
        return false;
    }
    gst_segment_copy_into(seg, into);
    return true;
}

static void
request_keyframe_on(GstPad *entry)
{
    /* Travels upstream into webrtcbin; rtpbin's session turns it into RTCP PLI. */
    GstEvent *ev = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, 0);
    (void)gst_pad_push_event(entry, ev);
}

static gboolean on_branch_teardown(gpointer p);

static bool
is_selected(hv_media_branch *b)
{
    return g_atomic_int_get(&b->selected) != 0;
}

/* Whether a viewer needs this branch decoded (a tap alone does not): the selected video track,
 * every audio track. */
static bool
decode_wanted(hv_media_branch *b)
{
    return b->is_video ? g_atomic_int_get(&b->s->video_enabled) != 0 && is_selected(b)
                       : g_atomic_int_get(&b->s->audio_active) > 0;
}

static bool
tap_wanted(hv_media_branch *b)
{
    return g_atomic_int_get(&b->s->tap_active) != 0 && is_selected(b);
}

/* The taps, each referenced for one call, or NULL (every one NULL for a branch no tap takes).
 * Returns whether any is set. */
static bool
tap_get(hv_media_branch *b, hv_media_tap out[HV_MEDIA_TAP_SLOTS], void *data[HV_MEDIA_TAP_SLOTS])
{
    hv_media_session *s = b->s;
    bool any = false;
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        data[i] = NULL;
    }
    if (!tap_wanted(b)) {
        return false;
    }
    g_mutex_lock(&s->tap_lock);
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        if (s->tap_data[i] != NULL) {
            data[i] = s->tap[i].ref(s->tap_data[i]);
            out[i] = s->tap[i];
            any = true;
        }
    }
    g_mutex_unlock(&s->tap_lock);
    return any;
}

static void
tap_release(hv_media_tap tap[HV_MEDIA_TAP_SLOTS], void *data[HV_MEDIA_TAP_SLOTS])
{
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        if (data[i] != NULL) {
            tap[i].unref(data[i]);
        }
    }
}

/* The running time handed to the tap: the first buffer of each stream after the tap was set
 * anchors it at its pipeline running time (both streams on one clock); from there it advances
 * by the sender's RTP timestamps, so it never jumps when the jitterbuffer or rtpbin's lip-sync
 * moves the pipeline timestamps. Without an RTP time meta, the pipeline's running time. */
static void
tap_buffer(hv_media_branch *b, int slot, const hv_media_tap *tap, void *data, GstBuffer *buf)
{
    GstClockTime pts = GST_BUFFER_PTS(buf);
    if (!b->have_segment || !GST_CLOCK_TIME_IS_VALID(pts)) {
        return;
    }
    guint64 rt = gst_segment_to_running_time(&b->segment, GST_FORMAT_TIME, pts);
    if (!GST_CLOCK_TIME_IS_VALID(rt)) {
        return;
    }
    GstReferenceTimestampMeta *meta = gst_buffer_get_reference_timestamp_meta(buf, rtp_time_caps());
    unsigned gen = (unsigned)g_atomic_int_get(&b->s->tap_gen[slot]);
    if (meta != NULL) {
        int64_t rtp_ns = (int64_t)meta->timestamp;
        if (b->tap_gen[slot] != gen) {
            b->tap_gen[slot] = gen;
            b->anchor_rt[slot] = rt;
            b->anchor_rtp_ns[slot] = rtp_ns;
        }
        int64_t t = (int64_t)b->anchor_rt[slot] + (rtp_ns - b->anchor_rtp_ns[slot]);
        rt = t > 0 ? (guint64)t : 0;
    }
    tap->on_buffer(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, buf, rt, data);
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
                request_keyframe_on(b->entry);
            }
            return false;
        }
        b->decode_gated = false;
        b->gate_asked = false;
    }
    return true;
}

/* After the depayloader: hands access units to the tap, then keeps them from the decoder
 * unless a viewer needs it. */
static void
tap_buffers(hv_media_branch *b, hv_media_tap tap[HV_MEDIA_TAP_SLOTS],
            void *data[HV_MEDIA_TAP_SLOTS], GstBuffer *buf)
{
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        if (data[i] != NULL) {
            tap_buffer(b, i, &tap[i], data[i], buf);
        }
    }
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
            b->have_segment = copy_time_segment(ev, &b->segment) || b->have_segment;
        } else if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS && tap_get(b, tap, data)) {
            GstCaps *caps = NULL;
            gst_event_parse_caps(ev, &caps);
            for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
                if (data[i] != NULL) {
                    tap[i].on_caps(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, caps,
                                   data[i]);
                }
            }
            tap_release(tap, data);
        }
        return GST_PAD_PROBE_OK;
    }
    bool tapped = tap_get(b, tap, data);
    if ((info->type & GST_PAD_PROBE_TYPE_BUFFER) != 0) {
        GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
        if (tapped) {
            tap_buffers(b, tap, data, buf);
            tap_release(tap, data);
        }
        return gate_pass(b, pad, buf) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
    }
    GstBufferList *list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    bool pass = true;
    for (unsigned i = 0; i < gst_buffer_list_length(list); i++) {
        GstBuffer *buf = gst_buffer_list_get(list, i);
        if (tapped) {
            tap_buffers(b, tap, data, buf);
        }
        pass = gate_pass(b, pad, buf) && pass;
    }
    if (tapped) {
        tap_release(tap, data);
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
    bool enabled = !hv_media_session_is_destroyed(s) && (decode_wanted(b) || tap_wanted(b));
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
                    buf, rtp_time_caps(),
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
            request_keyframe_on(pad);
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

/* One copy of the sample's buffer into a new frame with its pts and arrival stamp, or NULL. */
static hv_frame *
frame_from_sample(hv_media_branch *b, GstSample *sample, hv_frame_kind kind)
{
    GstBuffer *buf = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (buf == NULL || !gst_buffer_map(buf, &map, GST_MAP_READ)) {
        return NULL;
    }
    hv_frame *f = hv_frame_new(kind, map.size);
    memcpy(hv_frame_payload(f), map.data, map.size);
    gst_buffer_unmap(buf, &map);

    hv_frame_info *info = hv_frame_info_of(f);
    GstClockTime pts = GST_BUFFER_PTS(buf);
    const GstSegment *seg = gst_sample_get_segment(sample);
    guint64 rt = GST_CLOCK_TIME_NONE;
    if (seg != NULL && GST_CLOCK_TIME_IS_VALID(pts)) {
        rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, pts);
    }
    info->pts_us = GST_CLOCK_TIME_IS_VALID(rt) ? (int64_t)(rt / GST_USECOND) : -1;
    int64_t arrival = -1;
    GstReferenceTimestampMeta *meta =
        gst_buffer_get_reference_timestamp_meta(buf, hv_media_arrival_caps());
    if (meta != NULL) {
        arrival = (int64_t)(meta->timestamp / GST_USECOND);
    } else if (b != NULL) {
        arrival = lookup_arrival(b, pts);
    }
    hv_buf_set_stamp_us(f, arrival >= 0 ? arrival : g_get_monotonic_time());
    return f;
}

static GstFlowReturn
on_video_sample(GstAppSink *sink, gpointer user_data)
{
    hv_media_branch *b = user_data;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (sample == NULL) {
        return GST_FLOW_OK;
    }
    if (!hv_media_session_is_destroyed(b->s)) {
        hv_frame *f = frame_from_sample(b, sample, HV_FRAME_JPEG);
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

static GstFlowReturn
on_audio_sample(GstAppSink *sink, gpointer user_data)
{
    hv_media_output *o = user_data;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (sample == NULL) {
        return GST_FLOW_OK;
    }
    if (!hv_media_session_is_destroyed(o->s)) {
        /* After the mixer there is no branch (and no arrival stamp): the chunk is stamped with
         * the time it left the pipeline. */
        hv_frame *f = frame_from_sample(NULL, sample, HV_FRAME_PCM_S16LE);
        if (f != NULL) {
            hv_frame_info *info = hv_frame_info_of(f);
            info->rate_hz = o->rate_hz;
            info->channels = o->channels;
            if (g_atomic_int_get(&o->s->audio_branches) > 0) {
                hv_media_stats_audio_chunk(o->s); /* decoded sound, not the mixer's silence */
            }
            hv_media_post_frame(o->s, f);
        }
    }
    gst_sample_unref(sample);
    return GST_FLOW_OK;
}

/* ---- building --------------------------------------------------------------------------- */

static GstElement *
add_new(GstBin *bin, const char *factory)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (e != NULL) {
        gst_bin_add(bin, e);
    }
    return e;
}

static void
set_if_exists(GstElement *e, const char *prop, ...)
{
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop) == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, prop);
    g_object_set_valist(G_OBJECT(e), prop, ap);
    va_end(ap);
}

static void
setup_appsink(GstElement *sink, unsigned max_buffers, GstFlowReturn (*cb)(GstAppSink *, gpointer),
              gpointer data, GDestroyNotify notify)
{
    g_object_set(sink, "sync", FALSE, "async", FALSE, "max-buffers", max_buffers, "drop", TRUE,
                 "enable-last-sample", FALSE, "emit-signals", FALSE, NULL);
    GstAppSinkCallbacks callbacks = {0};
    callbacks.new_sample = cb;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, data, notify);
}

static bool
add_ghost_sink(GstElement *bin, GstElement *first)
{
    GstPad *target = gst_element_get_static_pad(first, "sink");
    GstPad *ghost = gst_ghost_pad_new("sink", target);
    gst_object_unref(target);
    return ghost != NULL && gst_element_add_pad(bin, ghost);
}

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
    GstElement *depay = add_new(bin, c->depay);
    GstElement *parse = c->parse != NULL ? add_new(bin, c->parse) : NULL;
    GstElement *dec = add_new(bin, c->decoder);
    GstElement *conv = add_new(bin, "videoconvert");
    GstElement *queue = add_new(bin, "queue");
    GstElement *jpeg = add_new(bin, "jpegenc");
    GstElement *sink = add_new(bin, "appsink");
    if (depay == NULL || (c->parse != NULL && parse == NULL) || dec == NULL || conv == NULL ||
        queue == NULL || jpeg == NULL || sink == NULL) {
        return false;
    }
    /* After a gap (loss, or packets dropped while disabled) wait for and ask for a keyframe
     * instead of decoding garbage; never turn decode errors into a pipeline error. */
    set_if_exists(depay, "wait-for-keyframe", TRUE, NULL);
    set_if_exists(depay, "request-keyframe", TRUE, NULL);
    set_if_exists(dec, "automatic-request-sync-points", TRUE, NULL);
    set_if_exists(dec, "discard-corrupted-frames", TRUE, NULL);
    set_if_exists(dec, "max-errors", -1, NULL);
    /* Frame threading would add a frame of delay per thread. */
    set_if_exists(dec, "thread-type", 2 /* slice */, NULL);
    g_object_set(queue, "leaky", 2 /* downstream */, "max-size-buffers", 1, "max-size-bytes", 0,
                 "max-size-time", (guint64)0, "silent", FALSE, NULL);
    g_signal_connect_data(queue, "overrun", G_CALLBACK(on_jpeg_queue_overrun), branch_ref(b),
                          closure_unref_branch, 0);
    g_object_set(jpeg, "quality", s->jpeg_quality, NULL);
    setup_appsink(sink, 1, on_video_sample, branch_ref(b), branch_unref);
    bool linked = parse != NULL
                      ? gst_element_link_many(depay, parse, dec, conv, queue, jpeg, sink, NULL)
                      : gst_element_link_many(depay, dec, conv, queue, jpeg, sink, NULL);
    if (!linked || !add_ghost_sink(b->bin, depay)) {
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

static GstCaps *
mix_caps(void)
{
    return gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "S16LE", "rate", G_TYPE_INT,
                               HV_MEDIA_MIX_RATE, "channels", G_TYPE_INT, HV_MEDIA_MIX_CHANNELS,
                               "layout", G_TYPE_STRING, "interleaved", NULL);
}

/* Into the mixer, each track's audio gets a timeline of its own: it starts at the running time
 * its first chunk arrives and then advances by the samples it carries, re-anchored only when
 * arrival drifts from it by more than HV_MEDIA_MIX_RESYNC_MS (sender clock skew, a gap in the
 * stream). The timestamps the jitterbuffer gives are not fit for live mixing: rtpbin's
 * lip-sync moves them by hundreds of milliseconds whenever sender reports come in (the SFU's
 * tracks share one CNAME), and the mixer then dropped that track for as long as the jump
 * lasted. Its latency query is answered with what the branch adds after this point (none):
 * its chunks arrive when their timeline says, so the mixer needs only HV_MEDIA_MIX_SLACK_MS
 * for scheduling jitter, not the jitterbuffer's 200 ms on top of the audio's delay. */
static GstPadProbeReturn
on_mix_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_media_branch *b = user_data;
    if ((info->type & GST_PAD_PROBE_TYPE_QUERY_UPSTREAM) != 0) {
        GstQuery *q = GST_PAD_PROBE_INFO_QUERY(info);
        if (GST_QUERY_TYPE(q) == GST_QUERY_LATENCY && (info->type & GST_PAD_PROBE_TYPE_PULL)) {
            gboolean live = FALSE;
            GstClockTime min = 0, max = GST_CLOCK_TIME_NONE;
            gst_query_parse_latency(q, &live, &min, &max);
            gst_query_set_latency(q, TRUE, 0, max);
        }
        return GST_PAD_PROBE_OK;
    }
    if ((info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) != 0) {
        GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
        if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT && copy_time_segment(ev, &b->mix_segment)) {
            b->mix_have_segment = true;
            b->mix_anchored = false;
        }
        return GST_PAD_PROBE_OK;
    }
    GstElement *pipeline = b->s->pipeline;
    GstClock *clock = pipeline != NULL ? gst_element_get_clock(pipeline) : NULL;
    if (clock == NULL || !b->mix_have_segment) {
        if (clock != NULL) {
            gst_object_unref(clock);
        }
        return GST_PAD_PROBE_OK;
    }
    GstClockTime now = gst_clock_get_time(clock) - gst_element_get_base_time(pipeline);
    gst_object_unref(clock);
    GstBuffer *buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
    GstClockTime dur = GST_BUFFER_DURATION(buf);
    if (!GST_CLOCK_TIME_IS_VALID(dur)) {
        dur = gst_util_uint64_scale(gst_buffer_get_size(buf) / (2 * HV_MEDIA_MIX_CHANNELS),
                                    GST_SECOND, HV_MEDIA_MIX_RATE);
    }
    GstClockTimeDiff drift = GST_CLOCK_DIFF(b->mix_next_rt, now);
    if (!b->mix_anchored || ABS(drift) > (GstClockTimeDiff)HV_MEDIA_MIX_RESYNC_MS * GST_MSECOND) {
        b->mix_next_rt = now;
        b->mix_anchored = true;
    }
    guint64 pts =
        gst_segment_position_from_running_time(&b->mix_segment, GST_FORMAT_TIME, b->mix_next_rt);
    GST_BUFFER_PTS(buf) = pts;
    GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
    GST_BUFFER_DURATION(buf) = dur;
    b->mix_next_rt += dur;
    GST_PAD_PROBE_INFO_DATA(info) = buf;
    return GST_PAD_PROBE_OK;
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
    GstElement *depay = add_new(bin, c->depay);
    GstElement *dec = add_new(bin, c->decoder);
    GstElement *conv = add_new(bin, "audioconvert");
    GstElement *res = add_new(bin, "audioresample");
    GstElement *filter = add_new(bin, "capsfilter");
    if (depay == NULL || dec == NULL || conv == NULL || res == NULL || filter == NULL) {
        return false;
    }
    set_if_exists(dec, "max-errors", -1, NULL);
    GstCaps *caps = mix_caps();
    g_object_set(filter, "caps", caps, NULL);
    gst_caps_unref(caps);
    if (!gst_element_link_many(depay, dec, conv, res, filter, NULL) ||
        !add_ghost_sink(b->bin, depay)) {
        return false;
    }
    GstPad *target = gst_element_get_static_pad(filter, "src");
    gst_pad_add_probe(target,
                      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                          GST_PAD_PROBE_TYPE_QUERY_UPSTREAM,
                      on_mix_probe, branch_ref(b), branch_unref);
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
    GstElement *sink = add_new(GST_BIN(b->bin), "fakesink");
    if (sink == NULL) {
        return false;
    }
    g_object_set(sink, "sync", FALSE, "async", FALSE, NULL);
    return add_ghost_sink(b->bin, sink);
}

/* ---- selection (main thread) -------------------------------------------------------------- */

/* A branch about to be selected: its current caps to the encoded viewers' tap, which goes on
 * across the switch (its caps event went by while no tap took it). The recorder's tap is not
 * told: the recording ends and a new one starts on the new tracks (live/recording.c). */
static void
branch_caps_to_taps(hv_media_session *s, hv_media_branch *b)
{
    if (b->depay_src == NULL || b->removed) {
        return;
    }
    g_autoptr(GstCaps) caps = gst_pad_get_current_caps(b->depay_src);
    if (caps == NULL) {
        return;
    }
    const int slot = HV_MEDIA_TAP_SLOT_VIEWERS;
    g_mutex_lock(&s->tap_lock);
    hv_media_tap tap = s->tap[slot];
    void *data = s->tap_data[slot] != NULL ? tap.ref(s->tap_data[slot]) : NULL;
    g_mutex_unlock(&s->tap_lock);
    if (data != NULL) {
        tap.on_caps(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, caps, data);
        tap.unref(data);
    }
}

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
        if (sel != is_selected(b)) {
            HV_MEDIA_DEBUG(s, "%s track %s (mid %s) %s", b->is_video ? "video" : "audio",
                           b->track_sid, b->mid, sel ? "selected" : "not selected");
        }
        if (sel && !is_selected(b)) {
            branch_caps_to_taps(s, b); /* before its buffers reach them */
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
    if (is_selected(b)) {
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

/* Audio branches end in the mixer: a new request pad, linked from the branch's src ghost. */
static bool
link_to_mixer(hv_media_session *s, hv_media_branch *b)
{
    b->mix_pad = gst_element_request_pad_simple(s->mixer, "sink_%u");
    GstPad *src = gst_element_get_static_pad(b->bin, "src");
    bool ok = b->mix_pad != NULL && src != NULL && gst_pad_link(src, b->mix_pad) == GST_PAD_LINK_OK;
    if (src != NULL) {
        gst_object_unref(src);
    }
    return ok;
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
        if (!is_video && !link_to_mixer(s, b)) {
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

void
hv_media_decode_request_keyframe(hv_media_session *s)
{
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *b = g_ptr_array_index(s->branches, i);
        if (b->is_video && b->supported && b->entry != NULL && is_selected(b)) {
            request_keyframe_on(b->entry);
        }
    }
}

/* ---- the mixer and its PCM outputs (main thread) ---------------------------------------- */

bool
hv_media_decode_build_mixer(hv_media_session *s, GError **error)
{
    s->mixer = gst_element_factory_make("audiomixer", "mix");
    GstElement *filter = gst_element_factory_make("capsfilter", NULL);
    s->mix_tee = gst_element_factory_make("tee", "mix-tee");
    GstElement *silence = gst_element_factory_make("audiotestsrc", "mix-silence");
    GstElement *silence_caps = gst_element_factory_make("capsfilter", NULL);
    if (s->mixer == NULL || filter == NULL || s->mix_tee == NULL || silence == NULL ||
        silence_caps == NULL) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "cannot create the audio mixer");
        GstElement *all[] = {s->mixer, filter, s->mix_tee, silence, silence_caps};
        for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
            if (all[i] != NULL) {
                gst_object_unref(gst_object_ref_sink(all[i]));
            }
        }
        s->mixer = s->mix_tee = NULL;
        return false;
    }
    /* Live mixing: output starts at the first input's time (not at 0, which would make up
     * silence for all the time before it), and a track that sends nothing (DTX, muted) is
     * skipped at the deadline instead of holding the others back. */
    g_object_set(s->mixer, "start-time-selection", 1 /* first */, NULL);
    set_if_exists(s->mixer, "ignore-inactive-pads", TRUE, NULL);
    /* Each input's chunks come when their timeline says (on_mix_probe): the mixer waits that
     * much longer for the late ones. */
    g_object_set(s->mixer, "latency", (guint64)HV_MEDIA_MIX_SLACK_MS * GST_MSECOND, NULL);
    /* 20 ms blocks, an Opus frame each: the chunk size viewers and the docs are told (the
     * aggregator's default, 10 ms, would double the WebSocket messages for nothing). */
    g_object_set(s->mixer, "output-buffer-duration", (guint64)HV_MEDIA_MIX_BLOCK_MS * GST_MSECOND,
                 NULL);
    /* One input is always there: live silence. An aggregator whose last input goes away
     * (a republished microphone: the old track's pad leaves before the new one's comes)
     * counts as having reached the end of every stream and stops for good; and without a
     * live input between tracks it would make up the gap in one burst once the next one
     * came. The silent input keeps the output going in real time, silent between tracks. */
    g_object_set(silence, "is-live", TRUE, "wave", 4 /* silence */, "samplesperbuffer",
                 HV_MEDIA_MIX_RATE * HV_MEDIA_MIX_BLOCK_MS / 1000, NULL);
    GstCaps *caps = mix_caps();
    g_object_set(filter, "caps", caps, NULL);
    g_object_set(silence_caps, "caps", caps, NULL);
    gst_caps_unref(caps);
    /* With no output format linked the tee must not fail the stream. */
    g_object_set(s->mix_tee, "allow-not-linked", TRUE, NULL);
    gst_bin_add_many(GST_BIN(s->pipeline), silence, silence_caps, s->mixer, filter, s->mix_tee,
                     NULL);
    if (!gst_element_link_many(silence, silence_caps, s->mixer, filter, s->mix_tee, NULL)) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot link the audio mixer");
        return false;
    }
    return true;
}

void
hv_media_decode_add_output(hv_media_session *s, int rate_hz, int channels)
{
    hv_media_output *o = g_new0(hv_media_output, 1);
    g_atomic_ref_count_init(&o->ref);
    o->s = hv_media_session_ref(s);
    o->rate_hz = rate_hz;
    o->channels = channels;

    GstElement *bin = gst_bin_new(NULL);
    GstElement *queue = add_new(GST_BIN(bin), "queue");
    GstElement *conv = add_new(GST_BIN(bin), "audioconvert");
    GstElement *res = add_new(GST_BIN(bin), "audioresample");
    GstElement *filter = add_new(GST_BIN(bin), "capsfilter");
    GstElement *sink = add_new(GST_BIN(bin), "appsink");
    if (queue == NULL || conv == NULL || res == NULL || filter == NULL || sink == NULL) {
        HV_MEDIA_INFO(s, "cannot build the %d Hz/%d ch audio output", rate_hz, channels);
        gst_object_unref(gst_object_ref_sink(bin));
        output_unref(o);
        return;
    }
    /* About one second of 20 ms chunks (HV_MEDIA_MIX_BLOCK_MS); the oldest goes when the
     * consumer stalls. */
    g_object_set(queue, "leaky", 2 /* downstream */, "max-size-buffers", 50, "max-size-bytes", 0,
                 "max-size-time", (guint64)0, NULL);
    GstCaps *caps = gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "S16LE", "rate",
                                        G_TYPE_INT, rate_hz, "channels", G_TYPE_INT, channels,
                                        "layout", G_TYPE_STRING, "interleaved", NULL);
    g_object_set(filter, "caps", caps, NULL);
    gst_caps_unref(caps);
    setup_appsink(sink, 8, on_audio_sample, output_ref(o), output_unref);
    if (!gst_element_link_many(queue, conv, res, filter, sink, NULL) ||
        !add_ghost_sink(bin, queue)) {
        HV_MEDIA_INFO(s, "cannot link the %d Hz/%d ch audio output", rate_hz, channels);
        gst_object_unref(gst_object_ref_sink(bin));
        output_unref(o);
        return;
    }
    gst_bin_add(GST_BIN(s->pipeline), bin);
    (void)gst_element_sync_state_with_parent(bin);
    o->bin = bin;
    o->tee_pad = gst_element_request_pad_simple(s->mix_tee, "src_%u");
    GstPad *ghost = gst_element_get_static_pad(bin, "sink");
    if (o->tee_pad == NULL || gst_pad_link(o->tee_pad, ghost) != GST_PAD_LINK_OK) {
        HV_MEDIA_INFO(s, "cannot attach the %d Hz/%d ch audio output", rate_hz, channels);
    }
    gst_object_unref(ghost);
    g_ptr_array_add(s->outputs, o);
}

static gboolean
on_output_unlinked(gpointer p)
{
    hv_media_output *o = p;
    hv_media_session *s = o->s;
    if (o->bin == NULL) {
        return G_SOURCE_REMOVE;
    }
    gst_element_release_request_pad(s->mix_tee, o->tee_pad);
    GstElement *bin = gst_object_ref(o->bin);
    o->bin = NULL;
    if (gst_element_set_state(bin, GST_STATE_NULL) == GST_STATE_CHANGE_FAILURE) {
        HV_MEDIA_DEBUG(s, "audio output did not stop cleanly");
    }
    gst_bin_remove(GST_BIN(s->pipeline), bin);
    gst_object_unref(bin);
    if (g_ptr_array_remove(s->outputs, o)) {
        output_unref(o); /* the list's reference */
    }
    return G_SOURCE_REMOVE;
}

/* Runs when no buffer is inside the tee pad: at once on the main thread, or on the streaming
 * thread after the current push. o stays alive meanwhile: s->outputs holds it until
 * on_output_unlinked. */
static GstPadProbeReturn
on_tee_pad_idle(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_media_output *o = user_data;
    GstPad *peer = gst_pad_get_peer(pad);
    if (peer != NULL) {
        (void)gst_pad_unlink(pad, peer);
        gst_object_unref(peer);
    }
    hv_media_post(o->s, on_output_unlinked, output_ref(o), output_unref);
    return GST_PAD_PROBE_REMOVE;
}

void
hv_media_decode_remove_output(hv_media_session *s, int rate_hz, int channels)
{
    for (unsigned k = 0; k < s->outputs->len; k++) {
        hv_media_output *o = g_ptr_array_index(s->outputs, k);
        if (o->removing || o->rate_hz != rate_hz || o->channels != channels) {
            continue;
        }
        o->removing = true;
        if (o->tee_pad != NULL && o->bin != NULL) {
            /* Unlink only between buffers; the rest happens on the main thread. */
            gst_pad_add_probe(o->tee_pad, GST_PAD_PROBE_TYPE_IDLE, on_tee_pad_idle, o, NULL);
        } else {
            g_ptr_array_remove_index(s->outputs, k);
            output_unref(o);
        }
        break;
    }
}

void
hv_media_decode_tap_caps(hv_media_session *s, const hv_media_tap *tap, void *data)
{
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *b = g_ptr_array_index(s->branches, i);
        if (!b->supported || b->depay_src == NULL || b->removed || !is_selected(b)) {
            continue;
        }
        GstCaps *caps = gst_pad_get_current_caps(b->depay_src);
        if (caps != NULL) {
            tap->on_caps(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, caps, data);
            gst_caps_unref(caps);
        }
    }
}

void
hv_media_decode_clear(hv_media_session *s)
{
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *b = g_ptr_array_index(s->branches, i);
        b->removed = true;
        branch_unref(b);
    }
    g_ptr_array_set_size(s->branches, 0);
    for (unsigned i = 0; i < s->outputs->len; i++) {
        hv_media_output *o = g_ptr_array_index(s->outputs, i);
        o->bin = NULL; /* the pipeline, in NULL, owns it; no pending unlink may touch it */
        output_unref(o);
    }
    g_ptr_array_set_size(s->outputs, 0);
}

/* mixer.c: the session's audio mixer (every audio track in, one PCM stream out, with a live
 * silent input) and its PCM outputs, one convert/resample branch per requested format on the
 * mixer's tee. Built and changed on the main thread; the probe and the appsinks run on
 * streaming threads and only build frames for the mailbox. */
#include "media/media-private.h"

#include "core/error.h"

#include <gst/app/gstappsink.h>
#include <string.h>

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

GstCaps *
hv_media_mix_caps(void)
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
GstPadProbeReturn
hv_media_mix_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
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
        if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT &&
            hv_media_copy_time_segment(ev, &b->mix_segment)) {
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

/* Audio branches end in the mixer: a new request pad, linked from the branch's src ghost. */
bool
hv_media_mixer_link(hv_media_session *s, hv_media_branch *b)
{
    b->mix_pad = gst_element_request_pad_simple(s->mixer, "sink_%u");
    GstPad *src = gst_element_get_static_pad(b->bin, "src");
    bool ok = b->mix_pad != NULL && src != NULL && gst_pad_link(src, b->mix_pad) == GST_PAD_LINK_OK;
    if (src != NULL) {
        gst_object_unref(src);
    }
    return ok;
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
        hv_frame *f = hv_media_frame_from_sample(sample, HV_FRAME_PCM_S16LE, NULL, NULL);
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

bool
hv_media_mixer_build(hv_media_session *s, GError **error)
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
    hv_media_set_if_exists(s->mixer, "ignore-inactive-pads", TRUE, NULL);
    /* Each input's chunks come when their timeline says (hv_media_mix_probe): the mixer waits that
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
    GstCaps *caps = hv_media_mix_caps();
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
hv_media_mixer_add_output(hv_media_session *s, int rate_hz, int channels)
{
    hv_media_output *o = g_new0(hv_media_output, 1);
    g_atomic_ref_count_init(&o->ref);
    o->s = hv_media_session_ref(s);
    o->rate_hz = rate_hz;
    o->channels = channels;

    GstElement *bin = gst_bin_new(NULL);
    GstElement *queue = hv_media_add_element(GST_BIN(bin), "queue");
    GstElement *conv = hv_media_add_element(GST_BIN(bin), "audioconvert");
    GstElement *res = hv_media_add_element(GST_BIN(bin), "audioresample");
    GstElement *filter = hv_media_add_element(GST_BIN(bin), "capsfilter");
    GstElement *sink = hv_media_add_element(GST_BIN(bin), "appsink");
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
    hv_media_setup_appsink(sink, 8, on_audio_sample, output_ref(o), output_unref);
    if (!gst_element_link_many(queue, conv, res, filter, sink, NULL) ||
        !hv_media_add_ghost_sink(bin, queue)) {
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
hv_media_mixer_remove_output(hv_media_session *s, int rate_hz, int channels)
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
hv_media_mixer_clear(hv_media_session *s)
{
    for (unsigned i = 0; i < s->outputs->len; i++) {
        hv_media_output *o = g_ptr_array_index(s->outputs, i);
        o->bin = NULL; /* the pipeline, in NULL, owns it; no pending unlink may touch it */
        output_unref(o);
    }
    g_ptr_array_set_size(s->outputs, 0);
}

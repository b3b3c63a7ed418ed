/* hv-avprobe: measures audio/video sync in a recorded file made from hv-flashbeep's output.
 *
 * Usage: hv-avprobe [--pts] FILE        (mp4, webm, wav, anything decodebin can decode)
 *
 * The file is decoded as fast as possible: video to GRAY8, audio to mono S16LE at 48 kHz. On
 * stdout goes one JSON object (one line):
 *
 *   {"video": {"frames", "first_s", "last_s", "width", "height"} or null,
 *    "audio": {"samples", "first_s", "last_s", "rate", "channels"} or null,
 *    "flashes": [s...], "beeps": [s...],
 *    "pairs": [{"flash": s, "beep": s, "offset_ms": (beep - flash) * 1000}],
 *    "error": null or "message", "timeline": "stream-time" or "pts"}
 *
 *   flash  time of a frame whose mean luma is above 128 when the previous frame's was below 64;
 *   beep   time of the first sample with |x| > 0.1 full scale after at least 300 ms of samples
 *          with |x| < 0.02 (t = buffer time + i / 48000); samples between the two thresholds
 *          after those 300 ms (a codec's ramp into the beep) neither count nor disarm;
 *   pairs  each flash with the nearest beep within 500 ms, if any.
 *
 * Times are in seconds on the file's own timeline, never rebased to the first frame or sample:
 * each decoded buffer's PTS mapped through the segment it arrived in to stream time. For most
 * files that is the PTS itself; for an MP4 with an edit list it is where the edit list presents
 * the sample (qtdemux leaves the PTS in media time and puts the edit's shift in the segment), so
 * an empty edit that delays a track is honoured as a player would. With --pts the raw buffer PTS
 * is used instead, which shows what the edit list contributes. "timeline" in the JSON says which
 * ("stream-time" or "pts").
 *
 * video.last_s is the last frame's time; audio.last_s is the end of the last buffer.
 * audio.samples counts 48 kHz mono samples; rate and channels are the decoder's output.
 *
 * A damaged or truncated file (a fragmented MP4 cut by SIGKILL) is decoded as far as it goes:
 * after an error the pipeline keeps running while decoded data still arrives, then the JSON is
 * printed with what was measured and the first error in "error". The exit status is 0 whenever
 * the JSON was printed, 2 for bad usage.
 */
#include <gst/app/gstappsink.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PROBE_RATE     48000
#define FLASH_ON       128.0                 /* mean luma above which a frame is bright */
#define FLASH_OFF      64.0                  /* mean luma below which a frame is dark */
#define BEEP_ON        0.1                   /* |x| in full scale that starts a beep */
#define BEEP_QUIET     0.02                  /* |x| in full scale below which a sample is silence */
#define BEEP_QUIET_LEN (PROBE_RATE * 3 / 10) /* 300 ms of silence arms the detector */
#define PAIR_WINDOW_S  0.5
#define STALL_S        30   /* no decoded data for this long: give up */
#define ERROR_GRACE_MS 1000 /* after an error, stop once data stops arriving for this long */

typedef struct {
    gboolean present; /* a decoded video stream was linked */
    guint64 frames;
    gboolean timed; /* first/last are set */
    double first;
    double last;
    gint width;
    gint height;
    double prev_mean; /* < 0: no previous frame */
    GArray *flashes;  /* double seconds */
} video_track;

typedef struct {
    gboolean present;
    guint64 samples;
    gboolean timed; /* first/end are set */
    double first;
    double end;
    gint rate; /* as decoded, before conversion */
    gint channels;
    guint64 quiet_run; /* consecutive silent samples */
    gboolean armed;    /* quiet_run reached 300 ms since the last onset */
    GArray *beeps;     /* double seconds: onsets fall between nanoseconds */
} audio_track;

typedef struct {
    GMainLoop *loop;
    GstElement *pipeline;
    gboolean raw_pts; /* --pts */
    /* Each track is written only by its own streaming thread while the pipeline runs and read by
     * the main thread after the pipeline is back in NULL, which joins those threads. */
    video_track video;
    audio_track audio;
    gint progress; /* atomic: decoded buffers so far, for the stall and error-grace checks */
    gint last_progress;
    guint idle_ticks;
    gboolean draining; /* an error was seen; wait for the data still in flight */
    GMutex pad_lock;   /* pad-added runs on streaming threads */
    gchar *error;      /* first error; main thread only */
} probe;

static void
set_error(probe *p, const gchar *msg)
{
    if (p->error == NULL) {
        p->error = g_strdup(msg);
    }
}

/* Seconds on the file's timeline for a buffer timestamp (see the top of the file). FALSE when
 * the buffer has no PTS. */
static gboolean
buffer_time(const probe *p, GstSample *sample, GstClockTime pts, double *out)
{
    if (!GST_CLOCK_TIME_IS_VALID(pts)) {
        return FALSE;
    }
    const GstSegment *seg = gst_sample_get_segment(sample);
    if (p->raw_pts || seg == NULL || seg->format != GST_FORMAT_TIME) {
        *out = (double)pts / GST_SECOND;
        return TRUE;
    }
    /* The _full variant also maps timestamps before the segment start (negative stream time)
     * instead of refusing them. */
    guint64 st;
    int sign = gst_segment_to_stream_time_full(seg, GST_FORMAT_TIME, pts, &st);
    if (sign == 0) {
        *out = (double)pts / GST_SECOND;
    } else {
        *out = sign > 0 ? (double)st / GST_SECOND : -(double)st / GST_SECOND;
    }
    return TRUE;
}

/* --- video ----------------------------------------------------------------------------------- */

static double
mean_luma(GstVideoFrame *frame)
{
    const guint8 *data = GST_VIDEO_FRAME_PLANE_DATA(frame, 0);
    gint stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, 0);
    gint width = GST_VIDEO_FRAME_WIDTH(frame);
    gint height = GST_VIDEO_FRAME_HEIGHT(frame);
    guint64 sum = 0;

    for (gint y = 0; y < height; y++) {
        const guint8 *row = data + (gsize)y * stride;
        for (gint x = 0; x < width; x++) {
            sum += row[x];
        }
    }
    return width > 0 && height > 0 ? (double)sum / ((double)width * height) : 0.0;
}

static GstFlowReturn
on_video_sample(GstAppSink *sink, gpointer user_data)
{
    probe *p = user_data;
    video_track *v = &p->video;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (sample == NULL) {
        return GST_FLOW_EOS;
    }
    GstBuffer *buf = gst_sample_get_buffer(sample);
    GstVideoInfo info;
    GstVideoFrame frame;
    if (buf == NULL || !gst_video_info_from_caps(&info, gst_sample_get_caps(sample)) ||
        !gst_video_frame_map(&frame, &info, buf, GST_MAP_READ)) {
        gst_sample_unref(sample);
        return GST_FLOW_OK;
    }
    double mean = mean_luma(&frame);
    gst_video_frame_unmap(&frame);

    double t;
    v->width = GST_VIDEO_INFO_WIDTH(&info);
    v->height = GST_VIDEO_INFO_HEIGHT(&info);
    if (buffer_time(p, sample, GST_BUFFER_PTS(buf), &t)) {
        if (!v->timed) {
            v->first = t;
            v->timed = TRUE;
        }
        v->last = t;
        /* Dark-to-bright only: a file that starts inside a flash has no measurable onset. */
        if (v->prev_mean >= 0.0 && v->prev_mean < FLASH_OFF && mean > FLASH_ON) {
            g_array_append_val(v->flashes, t);
        }
    }
    v->prev_mean = mean;
    v->frames++;
    g_atomic_int_inc(&p->progress);
    gst_sample_unref(sample);
    return GST_FLOW_OK;
}

/* --- audio ----------------------------------------------------------------------------------- */

static GstFlowReturn
on_audio_sample(GstAppSink *sink, gpointer user_data)
{
    probe *p = user_data;
    audio_track *a = &p->audio;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (sample == NULL) {
        return GST_FLOW_EOS;
    }
    GstBuffer *buf = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (buf == NULL || !gst_buffer_map(buf, &map, GST_MAP_READ)) {
        gst_sample_unref(sample);
        return GST_FLOW_OK;
    }
    const gint16 *x = (const gint16 *)map.data;
    gsize n = map.size / sizeof(gint16);
    double start;
    if (!buffer_time(p, sample, GST_BUFFER_PTS(buf), &start)) {
        /* Continue from the previous buffer; a first buffer without PTS starts at 0. */
        start = a->timed ? a->end : 0.0;
    }
    if (!a->timed) {
        a->first = start;
        a->timed = TRUE;
    }

    for (gsize i = 0; i < n; i++) {
        double level = fabs(GINT16_FROM_LE(x[i]) / 32768.0);
        if (level > BEEP_ON) {
            if (a->armed) {
                double t = start + (double)i / PROBE_RATE;
                g_array_append_val(a->beeps, t);
                a->armed = FALSE;
            }
            a->quiet_run = 0;
        } else if (level < BEEP_QUIET) {
            if (++a->quiet_run >= BEEP_QUIET_LEN) {
                a->armed = TRUE;
            }
        } else {
            /* Between the thresholds: not silence, but not an onset either, and it does not
             * disarm. A lossy codec smears the beep's first edge into a few samples of ramp
             * (Opus pre-echo) before the 0.1 crossing; those belong to the onset, not to a
             * sound that would make the crossing a continuation. */
            a->quiet_run = 0;
        }
    }
    a->samples += n;
    a->end = start + (double)n / PROBE_RATE;
    gst_buffer_unmap(buf, &map);
    g_atomic_int_inc(&p->progress);
    gst_sample_unref(sample);
    return GST_FLOW_OK;
}

/* The decoder's own rate and channels, before audioconvert/audioresample change them. */
static void
record_audio_caps(audio_track *a, GstCaps *caps)
{
    GstStructure *s =
        caps != NULL && gst_caps_get_size(caps) > 0 ? gst_caps_get_structure(caps, 0) : NULL;
    if (s != NULL) {
        gst_structure_get_int(s, "rate", &a->rate);
        gst_structure_get_int(s, "channels", &a->channels);
    }
}

static GstPadProbeReturn
audio_caps_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS) {
        GstCaps *caps;
        gst_event_parse_caps(ev, &caps);
        record_audio_caps(user_data, caps);
    }
    return GST_PAD_PROBE_OK;
}

/* --- pipeline -------------------------------------------------------------------------------- */

/* Drops an element that never made it into the pipeline (it is still floating). */
static void
discard(GstElement *e)
{
    if (e != NULL) {
        gst_object_unref(gst_object_ref_sink(e));
    }
}

static GstElement *
make(const char *factory)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (e == NULL) {
        g_printerr("hv-avprobe: GStreamer element %s is not installed\n", factory);
    }
    return e;
}

/* Builds convert ! [resample !] appsink (whose caps fix the output format) in the pipeline and
 * returns the converter's sink pad (NULL when an element is missing). */
static GstPad *
add_branch(probe *p, gboolean video)
{
    GstElement *conv = make(video ? "videoconvert" : "audioconvert");
    GstElement *resample = video ? NULL : make("audioresample");
    GstElement *sink = make("appsink");
    if (conv == NULL || sink == NULL || (!video && resample == NULL)) {
        discard(conv);
        discard(resample);
        discard(sink);
        return NULL;
    }
    GstCaps *caps =
        video ? gst_caps_from_string("video/x-raw,format=GRAY8")
              : gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "S16LE", "layout",
                                    G_TYPE_STRING, "interleaved", "rate", G_TYPE_INT, PROBE_RATE,
                                    "channels", G_TYPE_INT, 1, NULL);
    /* sync=false: as fast as decoding goes. async=false: the sinks take no part in preroll, so
     * a file whose other stream starts late (or never delivers) cannot hold this one up. */
    g_object_set(sink, "caps", caps, "sync", FALSE, "async", FALSE, "max-buffers", 4, NULL);
    gst_caps_unref(caps);
    GstAppSinkCallbacks cb = {0};
    cb.new_sample = video ? on_video_sample : on_audio_sample;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cb, p, NULL);

    gst_bin_add_many(GST_BIN(p->pipeline), conv, sink, NULL);
    gboolean linked;
    if (video) {
        linked = gst_element_link(conv, sink);
    } else {
        gst_bin_add(GST_BIN(p->pipeline), resample);
        linked = gst_element_link_many(conv, resample, sink, NULL);
    }
    if (!linked) {
        g_printerr("hv-avprobe: could not link the %s branch\n", video ? "video" : "audio");
    }
    gst_element_sync_state_with_parent(sink);
    if (resample != NULL) {
        gst_element_sync_state_with_parent(resample);
    }
    gst_element_sync_state_with_parent(conv);
    return gst_element_get_static_pad(conv, "sink");
}

/* Streams this tool does not measure (a second video, subtitles) still need a sink: an unlinked
 * pad returns not-linked and could stop the demuxer for all streams. */
static GstPad *
add_discard(probe *p)
{
    GstElement *sink = make("fakesink");
    if (sink == NULL) {
        return NULL;
    }
    g_object_set(sink, "sync", FALSE, "async", FALSE, NULL);
    gst_bin_add(GST_BIN(p->pipeline), sink);
    gst_element_sync_state_with_parent(sink);
    return gst_element_get_static_pad(sink, "sink");
}

/* Links each decoded stream: the first video and the first audio to their measuring branches,
 * anything else to a fakesink. */
static void
on_pad_added(GstElement *decodebin, GstPad *pad, gpointer user_data)
{
    probe *p = user_data;
    /* decodebin calls this from streaming threads; the lock makes "first video/audio" hold
     * whatever thread exposes the pads. */
    g_mutex_lock(&p->pad_lock);
    GstCaps *caps = gst_pad_get_current_caps(pad);
    if (caps == NULL) {
        caps = gst_pad_query_caps(pad, NULL);
    }
    const gchar *name =
        gst_caps_get_size(caps) > 0 ? gst_structure_get_name(gst_caps_get_structure(caps, 0)) : "";
    GstPad *sinkpad = NULL;

    if (g_str_equal(name, "video/x-raw") && !p->video.present) {
        p->video.present = TRUE;
        sinkpad = add_branch(p, TRUE);
    } else if (g_str_equal(name, "audio/x-raw") && !p->audio.present) {
        p->audio.present = TRUE;
        record_audio_caps(&p->audio, caps);
        gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, audio_caps_probe, &p->audio,
                          NULL);
        sinkpad = add_branch(p, FALSE);
    } else {
        sinkpad = add_discard(p);
    }

    if (sinkpad == NULL || GST_PAD_LINK_FAILED(gst_pad_link(pad, sinkpad))) {
        GST_ELEMENT_ERROR(decodebin, CORE, PAD, ("could not link a decoded %s stream", name),
                          (NULL));
    }
    gst_caps_unref(caps); /* after the last use of name, which points into it */
    g_clear_object(&sinkpad);
    g_mutex_unlock(&p->pad_lock);
}

static gboolean
on_bus_message(GstBus *bus, GstMessage *msg, gpointer user_data)
{
    probe *p = user_data;

    switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
        GError *err = NULL;
        gchar *debug = NULL;
        gst_message_parse_error(msg, &err, &debug);
        gchar *text =
            g_strdup_printf("%s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message);
        set_error(p, text);
        g_printerr("hv-avprobe: %s\n", text);
        if (debug != NULL) {
            g_printerr("hv-avprobe: debug: %s\n", debug);
        }
        g_free(text);
        g_free(debug);
        g_clear_error(&err);
        /* The other stream may still be decoding (the multiqueue holds data the failed demuxer
         * pushed earlier): keep going until data stops, instead of cutting it short. */
        p->draining = TRUE;
        p->idle_ticks = 0;
        break;
    }
    case GST_MESSAGE_EOS:
        g_main_loop_quit(p->loop);
        break;
    default:
        break;
    }
    return G_SOURCE_CONTINUE;
}

/* Every ERROR_GRACE_MS: stop when draining after an error and nothing arrived since the last
 * tick, or when nothing at all has arrived for STALL_S. */
static gboolean
on_tick(gpointer user_data)
{
    probe *p = user_data;
    gint now = g_atomic_int_get(&p->progress);

    if (now != p->last_progress) {
        p->last_progress = now;
        p->idle_ticks = 0;
        return G_SOURCE_CONTINUE;
    }
    p->idle_ticks++;
    if (p->draining) {
        g_main_loop_quit(p->loop);
    } else if (p->idle_ticks * ERROR_GRACE_MS >= STALL_S * 1000) {
        gchar *text = g_strdup_printf("no decoded data for %d s; gave up", STALL_S);
        set_error(p, text);
        g_free(text);
        g_main_loop_quit(p->loop);
    }
    return G_SOURCE_CONTINUE;
}

/* --- output ---------------------------------------------------------------------------------- */

/* Microsecond resolution is plenty (a 48 kHz sample is 20.8 us) and keeps the JSON readable. */
static json_t *
seconds(double s)
{
    return json_real(round(s * 1e6) / 1e6);
}

static json_t *
maybe_seconds(gboolean valid, double s)
{
    return valid ? seconds(s) : json_null();
}

static json_t *
dimension(gint v)
{
    return v > 0 ? json_integer(v) : json_null();
}

static json_t *
build_json(probe *p)
{
    json_t *root = json_object();
    video_track *v = &p->video;
    audio_track *a = &p->audio;

    if (v->present) {
        json_object_set_new(root, "video",
                            json_pack("{s:I, s:o, s:o, s:o, s:o}", "frames", (json_int_t)v->frames,
                                      "first_s", maybe_seconds(v->timed, v->first), "last_s",
                                      maybe_seconds(v->timed, v->last), "width",
                                      dimension(v->width), "height", dimension(v->height)));
    } else {
        json_object_set_new(root, "video", json_null());
    }
    if (a->present) {
        json_object_set_new(
            root, "audio",
            json_pack("{s:I, s:o, s:o, s:o, s:o}", "samples", (json_int_t)a->samples, "first_s",
                      maybe_seconds(a->timed, a->first), "last_s", maybe_seconds(a->timed, a->end),
                      "rate", dimension(a->rate), "channels", dimension(a->channels)));
    } else {
        json_object_set_new(root, "audio", json_null());
    }

    json_t *flashes = json_array();
    for (guint i = 0; i < v->flashes->len; i++) {
        json_array_append_new(flashes, seconds(g_array_index(v->flashes, double, i)));
    }
    json_object_set_new(root, "flashes", flashes);

    json_t *beeps = json_array();
    for (guint i = 0; i < a->beeps->len; i++) {
        json_array_append_new(beeps, seconds(g_array_index(a->beeps, double, i)));
    }
    json_object_set_new(root, "beeps", beeps);

    json_t *pairs = json_array();
    for (guint i = 0; i < v->flashes->len; i++) {
        double f = g_array_index(v->flashes, double, i);
        double best = 0.0;
        gboolean found = FALSE;
        for (guint j = 0; j < a->beeps->len; j++) {
            double b = g_array_index(a->beeps, double, j);
            if (fabs(b - f) <= PAIR_WINDOW_S && (!found || fabs(b - f) < fabs(best - f))) {
                best = b;
                found = TRUE;
            }
        }
        if (found) {
            json_array_append_new(pairs, json_pack("{s:o, s:o, s:o}", "flash", seconds(f), "beep",
                                                   seconds(best), "offset_ms",
                                                   json_real(round((best - f) * 1e6) / 1e3)));
        }
    }
    json_object_set_new(root, "pairs", pairs);

    json_object_set_new(root, "error", p->error != NULL ? json_string(p->error) : json_null());
    json_object_set_new(root, "timeline", json_string(p->raw_pts ? "pts" : "stream-time"));
    return root;
}

int
main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    probe p = {0};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (g_str_equal(argv[i], "--pts")) {
            p.raw_pts = TRUE;
        } else if (path == NULL && argv[i][0] != '-') {
            path = argv[i];
        } else {
            path = NULL;
            break;
        }
    }
    if (path == NULL) {
        g_printerr("usage: hv-avprobe [--pts] FILE\n"
                   "  decodes FILE and prints one JSON object: video/audio extents, flash and "
                   "beep onsets, their pairs and offsets\n"
                   "  --pts  raw buffer PTS instead of stream time (ignores MP4 edit lists)\n");
        return 2;
    }

    g_mutex_init(&p.pad_lock);
    p.video.prev_mean = -1.0;
    p.video.flashes = g_array_new(FALSE, FALSE, sizeof(double));
    p.audio.beeps = g_array_new(FALSE, FALSE, sizeof(double));
    p.loop = g_main_loop_new(NULL, FALSE);
    p.pipeline = gst_object_ref_sink(gst_pipeline_new("avprobe"));

    GstElement *src = make("filesrc");
    GstElement *dec = make("decodebin");
    if (src == NULL || dec == NULL) {
        set_error(&p, "filesrc or decodebin is not installed");
        discard(src);
        discard(dec);
    } else {
        g_object_set(src, "location", path, NULL);
        gst_bin_add_many(GST_BIN(p.pipeline), src, dec, NULL);
        gst_element_link(src, dec);
        g_signal_connect(dec, "pad-added", G_CALLBACK(on_pad_added), &p);
    }

    GstBus *bus = gst_element_get_bus(p.pipeline);
    guint bus_watch = gst_bus_add_watch(bus, on_bus_message, &p);
    gst_object_unref(bus);
    guint tick = g_timeout_add(ERROR_GRACE_MS, on_tick, &p);

    if (p.error == NULL) {
        if (gst_element_set_state(p.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
            /* The reason (e.g. filesrc cannot open the file) is on the bus; the loop reads it and
             * the grace tick ends the run. */
            p.draining = TRUE;
        }
        g_main_loop_run(p.loop);
    }

    /* Joins the streaming threads: the tracks are ours to read from here on. */
    gst_element_set_state(p.pipeline, GST_STATE_NULL);
    g_source_remove(tick);
    g_source_remove(bus_watch);

    /* Errors posted while stopping (or before the watch ran) still count. */
    bus = gst_element_get_bus(p.pipeline);
    GstMessage *msg;
    while ((msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) != NULL) {
        on_bus_message(bus, msg, &p);
        gst_message_unref(msg);
    }
    gst_object_unref(bus);

    json_t *root = build_json(&p);
    char *text = json_dumps(root, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_REAL_PRECISION(15));
    printf("%s\n", text);
    fflush(stdout);
    free(text);
    json_decref(root);

    gst_object_unref(p.pipeline);
    g_main_loop_unref(p.loop);
    g_array_free(p.video.flashes, TRUE);
    g_array_free(p.audio.beeps, TRUE);
    g_free(p.error);
    g_mutex_clear(&p.pad_lock);
    return 0;
}

/* recorder.c: one recording, its own pipeline (see record.h for the graph and the threads).
 *
 * Ownership: the recorder is refcounted. The owner's reference comes from _new; the media tap
 * takes one per call into push/set_caps; the WAV appsink callbacks and the bus watch hold one
 * each. Fields are grouped by who touches them.
 */
#include "record/record.h"

#include "core/error.h"
#include "core/log.h"
#include "record/wav.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/audio/audio.h>
#include <string.h>

#define WAV_RATE          48000
#define WAV_SYNC_NS       GST_SECOND       /* header rewrite interval (media time) */
#define WAV_GAP_TOLERANCE (WAV_RATE / 100) /* 10 ms: smaller jitter is not a gap */
#define KEYFRAME_WAIT_NS  (3 * GST_SECOND)

struct hv_recorder {
    gatomicrefcount ref;

    /* Immutable after _new. */
    char *log_mint; /* log context */
    GMainContext *ctx;
    GstElement *pipeline;
    GstElement *vsrc, *asrc; /* borrowed from the pipeline; NULL when the kind is not recorded */
    char *video_path, *video_part;
    char *audio_path, *audio_part;
    char *container, *stored_codec, *video_codec;
    bool vp8_sizes; /* read the size from VP8 keyframes (no parser reports it) */
    guint64 queue_bytes;

    /* LOCK: streaming threads (push, set_caps, parser probe, WAV) and the main thread. */
    GMutex lock;
    bool closed; /* finishing or failed: pushes are ignored */
    bool started;
    GstClockTime start_rt;
    GstClockTime last_pts; /* newest timestamp written, rebased */
    bool need_key;         /* a video packet was dropped: wait for the next keyframe */
    GstClockTime waiting_since_rt;
    uint64_t dropped;
    int width, height;
    char *stream_error; /* set by the WAV writer; reported on the main thread */

    /* WAV appsink thread only (the main thread closes the file after the pipeline is NULL). */
    hv_wav *wav;
    GstClockTime wav_synced_pts;

    /* Main thread only. */
    hv_recorder_done_cb cb;
    void *user_data;
    GSource *bus_source;
    GSource *timeout_source;
    bool finishing, done;
};

/* ---- refcounting ------------------------------------------------------------------------ */

hv_recorder *
hv_recorder_ref(hv_recorder *r)
{
    g_atomic_ref_count_inc(&r->ref);
    return r;
}

void
hv_recorder_unref(hv_recorder *r)
{
    if (r == NULL || !g_atomic_ref_count_dec(&r->ref)) {
        return;
    }
    if (r->pipeline != NULL) {
        (void)gst_element_set_state(r->pipeline, GST_STATE_NULL);
        gst_object_unref(r->pipeline);
    }
    if (r->wav != NULL) {
        (void)hv_wav_close(r->wav, NULL);
    }
    g_mutex_clear(&r->lock);
    g_free(r->stream_error);
    g_free(r->log_mint);
    g_free(r->video_path);
    g_free(r->video_part);
    g_free(r->audio_path);
    g_free(r->audio_part);
    g_free(r->container);
    g_free(r->stored_codec);
    g_free(r->video_codec);
    g_main_context_unref(r->ctx);
    g_free(r);
}

static void
unref_notify(gpointer p)
{
    hv_recorder_unref(p);
}

/* ---- names ------------------------------------------------------------------------------ */

char *
hv_record_base_path(const char *dir, const char *mint_id, int64_t wall_ms)
{
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(wall_ms / 1000);
    g_autofree char *stamp = t != NULL ? g_date_time_format(t, "%Y%m%dT%H%M%SZ") : g_strdup("0");
    g_autofree char *base = g_strdup_printf("%s_%s", mint_id, stamp);
    static const char *const exts[] = {".mp4", ".webm", ".wav"};
    for (int n = 1;; n++) {
        g_autofree char *name = n == 1 ? g_strdup(base) : g_strdup_printf("%s-%d", base, n);
        char *path = g_build_filename(dir, name, NULL);
        bool taken = false;
        for (size_t i = 0; i < G_N_ELEMENTS(exts) && !taken; i++) {
            g_autofree char *f = g_strconcat(path, exts[i], NULL);
            g_autofree char *p = g_strconcat(f, ".part", NULL);
            taken = g_file_test(f, G_FILE_TEST_EXISTS) || g_file_test(p, G_FILE_TEST_EXISTS);
        }
        if (!taken) {
            return path;
        }
        g_free(path);
    }
}

/* ---- streaming threads ------------------------------------------------------------------ */

/* VP8 keyframe header (RFC 6386 §9.1): 3-byte frame tag, start code 9d 01 2a, then 14-bit
 * width and height. */
static void
read_vp8_size(hv_recorder *r, GstBuffer *buf)
{
    uint8_t h[10];
    if (gst_buffer_extract(buf, 0, h, sizeof(h)) != sizeof(h) || (h[0] & 1) != 0 || h[3] != 0x9d ||
        h[4] != 0x01 || h[5] != 0x2a) {
        return;
    }
    r->width = (h[6] | h[7] << 8) & 0x3fff;
    r->height = (h[8] | h[9] << 8) & 0x3fff;
}

void
hv_recorder_set_caps(hv_recorder *r, hv_record_kind kind, GstCaps *caps)
{
    GstElement *src = kind == HV_RECORD_VIDEO ? r->vsrc : r->asrc;
    if (src != NULL && caps != NULL) {
        gst_app_src_set_caps(GST_APP_SRC(src), caps);
    }
}

void
hv_recorder_push(hv_recorder *r, hv_record_kind kind, GstBuffer *buf, GstClockTime running_time)
{
    GstElement *src = kind == HV_RECORD_VIDEO ? r->vsrc : r->asrc;
    if (src == NULL || !GST_CLOCK_TIME_IS_VALID(running_time)) {
        return;
    }
    bool key = !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
    GstClockTime pts;
    g_mutex_lock(&r->lock);
    if (r->closed) {
        g_mutex_unlock(&r->lock);
        return;
    }
    if (kind == HV_RECORD_VIDEO) {
        if (!r->started) {
            if (!key) {
                r->dropped++;
                g_mutex_unlock(&r->lock);
                return;
            }
            r->started = true;
            r->start_rt = running_time;
        } else if (r->need_key) {
            if (!key) {
                r->dropped++;
                g_mutex_unlock(&r->lock);
                return;
            }
            r->need_key = false;
        }
        if (key && r->vp8_sizes) {
            read_vp8_size(r, buf);
        }
    } else if (!r->started) {
        if (r->vsrc != NULL) {
            g_mutex_unlock(&r->lock); /* audio waits for the first video keyframe */
            return;
        }
        r->started = true;
        r->start_rt = running_time;
    }
    if (running_time < r->start_rt) {
        g_mutex_unlock(&r->lock); /* from before the first keyframe */
        return;
    }
    pts = running_time - r->start_rt;
    if (gst_app_src_get_current_level_bytes(GST_APP_SRC(src)) > r->queue_bytes) {
        /* The disk is behind: drop rather than block the media pipeline. A dropped video frame
         * makes the next ones undecodable until a keyframe. */
        r->dropped++;
        if (kind == HV_RECORD_VIDEO) {
            r->need_key = true;
        }
        g_mutex_unlock(&r->lock);
        /* per packet: debug only, and at most once per 10 s */
        HV_LOG_RATELIMITED(G_LOG_LEVEL_DEBUG, 10, HV_CTX_MINT(r->log_mint),
                           "recording queue over %" G_GUINT64_FORMAT " bytes: dropping packets",
                           (guint64)r->queue_bytes);
        return;
    }
    if (!GST_CLOCK_TIME_IS_VALID(r->last_pts) || pts > r->last_pts) {
        r->last_pts = pts;
    }
    g_mutex_unlock(&r->lock);

    /* A new buffer object sharing the memory: only the timestamps change. */
    GstBuffer *out = gst_buffer_copy(buf);
    GST_BUFFER_PTS(out) = pts;
    GST_BUFFER_DTS(out) = pts; /* WebRTC video has no B-frames: decode order is display order */
    GST_BUFFER_DURATION(out) = GST_CLOCK_TIME_NONE;
    (void)gst_app_src_push_buffer(GST_APP_SRC(src), out);
}

static GstPadProbeReturn
on_parsed_caps(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    hv_recorder *r = user_data;
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS) {
        GstCaps *caps = NULL;
        gst_event_parse_caps(ev, &caps);
        const GstStructure *st = caps != NULL ? gst_caps_get_structure(caps, 0) : NULL;
        int w = 0, h = 0;
        if (st != NULL && gst_structure_get_int(st, "width", &w) &&
            gst_structure_get_int(st, "height", &h)) {
            g_mutex_lock(&r->lock);
            r->width = w;
            r->height = h;
            g_mutex_unlock(&r->lock);
        }
    }
    return GST_PAD_PROBE_OK;
}

static gboolean
on_stream_error(gpointer p)
{
    hv_recorder *r = p;
    g_mutex_lock(&r->lock);
    g_autofree char *why = g_strdup(r->stream_error);
    g_mutex_unlock(&r->lock);
    hv_recorder_abort(r, why != NULL ? why : "write error");
    return G_SOURCE_REMOVE;
}

static void
wav_fail(hv_recorder *r, const char *message)
{
    g_mutex_lock(&r->lock);
    bool first = r->stream_error == NULL;
    if (first) {
        r->stream_error = g_strdup(message);
    }
    r->closed = true;
    g_mutex_unlock(&r->lock);
    if (first) {
        GSource *src = g_idle_source_new();
        g_source_set_callback(src, on_stream_error, hv_recorder_ref(r), unref_notify);
        g_source_attach(src, r->ctx);
        g_source_unref(src);
    }
}

/* Writes one decoded chunk at its place on the timeline: silence fills gaps (lost packets,
 * DTX), overlaps are trimmed, so sample n of the WAV is always at n / 48000 s of the video. */
static bool
wav_write_chunk(hv_recorder *r, const GstMapInfo *map, GstClockTime pts, int channels,
                GError **error)
{
    const uint64_t frame_bytes = (uint64_t)channels * 2;
    uint64_t frames = map->size / frame_bytes;
    const uint8_t *data = map->data;
    if (GST_CLOCK_TIME_IS_VALID(pts)) {
        uint64_t at = gst_util_uint64_scale_round(pts, WAV_RATE, GST_SECOND);
        uint64_t written = hv_wav_frames(r->wav);
        if (at > written + WAV_GAP_TOLERANCE) {
            if (!hv_wav_write_silence(r->wav, at - written, error)) {
                return false;
            }
        } else if (at + WAV_GAP_TOLERANCE < written) {
            uint64_t skip = MIN(written - at, frames);
            data += skip * frame_bytes;
            frames -= skip;
        }
    }
    if (frames > 0 && !hv_wav_write(r->wav, data, frames * frame_bytes, error)) {
        return false;
    }
    GstClockTime now_pts = gst_util_uint64_scale(hv_wav_frames(r->wav), GST_SECOND, WAV_RATE);
    if (!GST_CLOCK_TIME_IS_VALID(r->wav_synced_pts) || now_pts >= r->wav_synced_pts + WAV_SYNC_NS) {
        r->wav_synced_pts = now_pts;
        return hv_wav_sync(r->wav, error);
    }
    return true;
}

static GstFlowReturn
on_wav_sample(GstAppSink *sink, gpointer user_data)
{
    hv_recorder *r = user_data;
    GstSample *sample = gst_app_sink_pull_sample(sink);
    if (sample == NULL) {
        return GST_FLOW_OK;
    }
    GstBuffer *buf = gst_sample_get_buffer(sample);
    GstAudioInfo ai;
    GstMapInfo map;
    GstFlowReturn ret = GST_FLOW_OK;
    g_autoptr(GError) error = NULL;
    if (buf == NULL || !gst_audio_info_from_caps(&ai, gst_sample_get_caps(sample)) ||
        !gst_buffer_map(buf, &map, GST_MAP_READ)) {
        gst_sample_unref(sample);
        return GST_FLOW_OK;
    }
    if (r->wav == NULL) {
        r->wav = hv_wav_open(r->audio_part, WAV_RATE, GST_AUDIO_INFO_CHANNELS(&ai), &error);
    }
    if (r->wav != NULL && GST_AUDIO_INFO_CHANNELS(&ai) != hv_wav_channels(r->wav)) {
        g_set_error(&error, HV_ERROR, HV_EINVAL, "the audio changed from %d to %d channel(s)",
                    hv_wav_channels(r->wav), GST_AUDIO_INFO_CHANNELS(&ai));
    }
    if (error == NULL && r->wav != NULL) {
        (void)wav_write_chunk(r, &map, GST_BUFFER_PTS(buf), hv_wav_channels(r->wav), &error);
    }
    gst_buffer_unmap(buf, &map);
    gst_sample_unref(sample);
    if (error != NULL) {
        wav_fail(r, error->message);
        ret = GST_FLOW_ERROR;
    }
    return ret;
}

/* ---- building --------------------------------------------------------------------------- */

static GstElement *
add(GstElement *pipeline, const char *factory, GError **error)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (e == NULL) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "GStreamer element '%s' is not installed", factory);
        return NULL;
    }
    gst_bin_add(GST_BIN(pipeline), e);
    return e;
}

static GstElement *
add_appsrc(hv_recorder *r, GError **error)
{
    GstElement *src = add(r->pipeline, "appsrc", error);
    if (src != NULL) {
        /* Live: the muxer never waits for a kind that went quiet (a muted microphone). */
        g_object_set(src, "format", GST_FORMAT_TIME, "is-live", TRUE, "do-timestamp", FALSE,
                     "block", FALSE, "max-bytes", (guint64)r->queue_bytes * 2, NULL);
    }
    return src;
}

static bool
link_chain(GError **error, GstElement *first, ...)
{
    va_list ap;
    va_start(ap, first);
    GstElement *prev = first;
    GstElement *next;
    bool ok = true;
    while (ok && (next = va_arg(ap, GstElement *)) != NULL) {
        ok = gst_element_link(prev, next);
        prev = next;
    }
    va_end(ap);
    if (!ok) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "cannot link the recording pipeline");
    }
    return ok;
}

static bool
build_video(hv_recorder *r, const hv_recorder_config *cfg, GstElement *mux, GError **error)
{
    r->vsrc = add_appsrc(r, error);
    if (r->vsrc == NULL) {
        return false;
    }
    GstElement *q = add(r->pipeline, "queue", error);
    if (q == NULL) {
        return false;
    }
    g_object_set(q, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)0, NULL);
    GstElement *last = NULL;
    if (strcmp(cfg->video_codec, "H264") == 0) {
        GstElement *parse = add(r->pipeline, "h264parse", error);
        if (parse == NULL || !link_chain(error, r->vsrc, q, parse, NULL)) {
            return false;
        }
        last = parse;
    } else if (strcmp(cfg->video_codec, "H265") == 0) {
        /* MP4's 'hvc1' sample entry: parameter sets in the sample description, which is what
         * players (Apple's above all) expect. */
        GstElement *parse = add(r->pipeline, "h265parse", error);
        GstElement *filter = parse != NULL ? add(r->pipeline, "capsfilter", error) : NULL;
        if (filter == NULL) {
            return false;
        }
        GstCaps *caps = gst_caps_from_string("video/x-h265,stream-format=hvc1,alignment=au");
        g_object_set(filter, "caps", caps, NULL);
        gst_caps_unref(caps);
        if (!link_chain(error, r->vsrc, q, parse, filter, NULL)) {
            return false;
        }
        last = filter;
    } else if (strcmp(cfg->video_codec, "VP9") == 0) {
        GstElement *parse = add(r->pipeline, "vp9parse", error);
        if (parse == NULL || !link_chain(error, r->vsrc, q, parse, NULL)) {
            return false;
        }
        last = parse;
    } else if (strcmp(cfg->video_codec, "VP8") == 0 && cfg->force_mp4) {
        GstElement *dec = add(r->pipeline, "vp8dec", error);
        GstElement *conv = dec != NULL ? add(r->pipeline, "videoconvert", error) : NULL;
        GstElement *enc = conv != NULL ? add(r->pipeline, "x264enc", error) : NULL;
        GstElement *parse = enc != NULL ? add(r->pipeline, "h264parse", error) : NULL;
        if (parse == NULL) {
            return false;
        }
        g_object_set(enc, "speed-preset", 3 /* veryfast */, "key-int-max", 60, NULL);
        gst_util_set_object_arg(G_OBJECT(enc), "tune", "zerolatency");
        if (!link_chain(error, r->vsrc, q, dec, conv, enc, parse, NULL)) {
            return false;
        }
        last = parse;
    } else if (strcmp(cfg->video_codec, "VP8") == 0) {
        if (!link_chain(error, r->vsrc, q, NULL)) {
            return false;
        }
        last = q;
        r->vp8_sizes = true;
    } else {
        g_set_error(error, HV_ERROR, HV_EINVAL, "cannot record %s video", cfg->video_codec);
        return false;
    }
    if (last != q) {
        GstPad *src = gst_element_get_static_pad(last, "src");
        /* No reference: probes and appsink callbacks only run while the pipeline is not in
         * NULL, and the pipeline goes to NULL before the recorder is freed. */
        gst_pad_add_probe(src, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, on_parsed_caps, r, NULL);
        gst_object_unref(src);
    }
    if (!gst_element_link(last, mux)) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "the %s muxer does not take %s video", r->container,
                    r->stored_codec);
        return false;
    }
    return true;
}

static bool
build_audio(hv_recorder *r, GstElement *mux, GError **error)
{
    r->asrc = add_appsrc(r, error);
    GstElement *tee = r->asrc != NULL ? add(r->pipeline, "tee", error) : NULL;
    GstElement *q1 = tee != NULL ? add(r->pipeline, "queue", error) : NULL;
    GstElement *q2 = q1 != NULL ? add(r->pipeline, "queue", error) : NULL;
    GstElement *dec = q2 != NULL ? add(r->pipeline, "opusdec", error) : NULL;
    GstElement *conv = dec != NULL ? add(r->pipeline, "audioconvert", error) : NULL;
    GstElement *res = conv != NULL ? add(r->pipeline, "audioresample", error) : NULL;
    GstElement *filter = res != NULL ? add(r->pipeline, "capsfilter", error) : NULL;
    GstElement *sink = filter != NULL ? add(r->pipeline, "appsink", error) : NULL;
    if (sink == NULL) {
        return false;
    }
    /* The queues only decouple the two paths (unbounded here: the appsrc is the bound). */
    g_object_set(q1, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)0, NULL);
    g_object_set(q2, "max-size-buffers", 0, "max-size-bytes", 0, "max-size-time", (guint64)0, NULL);
    /* Packet loss concealment: a lost packet is decoded as a plausible 20 ms, keeping time. */
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(dec), "plc") != NULL) {
        g_object_set(dec, "plc", TRUE, NULL);
    }
    GstCaps *caps =
        gst_caps_new_simple("audio/x-raw", "format", G_TYPE_STRING, "S16LE", "rate", G_TYPE_INT,
                            WAV_RATE, "layout", G_TYPE_STRING, "interleaved", NULL);
    g_object_set(filter, "caps", caps, NULL);
    gst_caps_unref(caps);
    g_object_set(sink, "sync", FALSE, "async", FALSE, "emit-signals", FALSE, "enable-last-sample",
                 FALSE, NULL);
    GstAppSinkCallbacks callbacks = {0};
    callbacks.new_sample = on_wav_sample;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, r, NULL);
    if (!link_chain(error, r->asrc, tee, q2, dec, conv, res, filter, sink, NULL)) {
        return false;
    }
    if (mux != NULL) {
        GstElement *parse = add(r->pipeline, "opusparse", error);
        if (parse == NULL || !link_chain(error, tee, q1, parse, mux, NULL)) {
            return false;
        }
    }
    return true;
}

static gboolean on_bus_message(GstBus *bus, GstMessage *msg, gpointer user_data);

static bool
build(hv_recorder *r, const hv_recorder_config *cfg, GError **error)
{
    r->pipeline = gst_pipeline_new("hv-recorder");
    GstElement *mux = NULL;
    if (r->video_path != NULL) {
        bool webm = strcmp(r->container, "webm") == 0;
        mux = add(r->pipeline, webm ? "webmmux" : "mp4mux", error);
        GstElement *sink = mux != NULL ? add(r->pipeline, "filesink", error) : NULL;
        if (sink == NULL) {
            return false;
        }
        guint64 frag_ns = (guint64)cfg->fragment_ms * GST_MSECOND;
        if (webm) {
            /* A cluster per fragment: a cut file loses at most the last one. */
            g_object_set(mux, "max-cluster-duration", (gint64)frag_ns, NULL);
        } else {
            g_object_set(mux, "fragment-duration", (guint)cfg->fragment_ms, NULL);
        }
        /* Unbuffered: every muxer write reaches the kernel at once, so a killed process loses
         * nothing already muxed (filesink would otherwise hold up to 64 KiB). */
        g_object_set(sink, "location", r->video_part, "sync", FALSE, "async", FALSE, NULL);
        gst_util_set_object_arg(G_OBJECT(sink), "buffer-mode", "unbuffered");
        if (!gst_element_link(mux, sink) || !build_video(r, cfg, mux, error)) {
            if (error != NULL && *error == NULL) {
                g_set_error(error, HV_ERROR, HV_EINVAL, "cannot link the recording muxer");
            }
            return false;
        }
    }
    if (r->audio_path != NULL && !build_audio(r, mux, error)) {
        return false;
    }
    GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(r->pipeline));
    r->bus_source = gst_bus_create_watch(bus);
    gst_object_unref(bus);
    g_source_set_callback(r->bus_source, G_SOURCE_FUNC(on_bus_message), hv_recorder_ref(r),
                          unref_notify);
    g_source_attach(r->bus_source, r->ctx);
    return true;
}

hv_recorder *
hv_recorder_new(const hv_recorder_config *cfg, hv_recorder_done_cb cb, void *user_data,
                GError **error)
{
    if (cfg->video_codec == NULL && cfg->audio_codec == NULL) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "nothing to record: no audio or video track");
        return NULL;
    }
    if (cfg->audio_codec != NULL && g_ascii_strcasecmp(cfg->audio_codec, "OPUS") != 0) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "cannot record %s audio", cfg->audio_codec);
        return NULL;
    }
    hv_recorder *r = g_new0(hv_recorder, 1);
    g_atomic_ref_count_init(&r->ref);
    g_mutex_init(&r->lock);
    r->ctx = g_main_context_ref_thread_default();
    r->cb = cb;
    r->user_data = user_data;
    r->log_mint = g_strdup(cfg->mint_id);
    r->queue_bytes = (guint64)MAX(cfg->queue_bytes, 65536);
    r->start_rt = GST_CLOCK_TIME_NONE;
    r->last_pts = GST_CLOCK_TIME_NONE;
    r->wav_synced_pts = GST_CLOCK_TIME_NONE;
    g_autofree char *base = hv_record_base_path(cfg->dir, cfg->mint_id, cfg->start_wall_ms);
    if (cfg->video_codec != NULL) {
        r->video_codec = g_ascii_strup(cfg->video_codec, -1);
        bool vp8 = strcmp(r->video_codec, "VP8") == 0;
        bool webm = vp8 && !cfg->force_mp4;
        r->container = g_strdup(webm ? "webm" : "mp4");
        r->stored_codec = g_strdup(vp8 && !webm ? "H264" : r->video_codec);
        r->video_path = g_strconcat(base, webm ? ".webm" : ".mp4", NULL);
        r->video_part = g_strconcat(r->video_path, ".part", NULL);
    }
    if (cfg->audio_codec != NULL) {
        r->audio_path = g_strconcat(base, ".wav", NULL);
        r->audio_part = g_strconcat(r->audio_path, ".part", NULL);
    }
    hv_recorder_config c = *cfg;
    c.video_codec = r->video_codec;
    c.fragment_ms = cfg->fragment_ms > 0 ? cfg->fragment_ms : 1000;
    if (!build(r, &c, error)) {
        r->done = true;
        hv_recorder_unref(r);
        return NULL;
    }
    if (gst_element_set_state(r->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot start recording to %s",
                    r->video_part != NULL ? r->video_part : r->audio_part);
        if (r->video_part != NULL) {
            (void)g_unlink(r->video_part);
        }
        r->done = true;
        g_source_destroy(r->bus_source);
        g_clear_pointer(&r->bus_source, g_source_unref);
        hv_recorder_unref(r);
        return NULL;
    }
    return r;
}

/* ---- finishing (main thread) ------------------------------------------------------------ */

static uint64_t
file_size(const char *path)
{
    GStatBuf st;
    return path != NULL && g_stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void
finalize(hv_recorder *r, const char *error)
{
    if (r->done) {
        return;
    }
    r->done = true;
    g_mutex_lock(&r->lock);
    r->closed = true;
    bool started = r->started;
    g_mutex_unlock(&r->lock);
    if (r->timeout_source != NULL) {
        g_source_destroy(r->timeout_source);
        g_clear_pointer(&r->timeout_source, g_source_unref);
    }
    if (r->bus_source != NULL) {
        g_source_destroy(r->bus_source);
        g_clear_pointer(&r->bus_source, g_source_unref);
    }
    /* NULL joins every streaming thread: nothing writes the files any more. */
    (void)gst_element_set_state(r->pipeline, GST_STATE_NULL);
    g_autoptr(GError) werr = NULL;
    if (r->wav != NULL && !hv_wav_close(r->wav, &werr) && error == NULL) {
        error = werr->message;
    }
    r->wav = NULL;

    g_autofree char *why = g_strdup(error);
    if (!started) {
        /* Nothing was recorded: leave no empty or headless files behind. */
        if (r->video_part != NULL) {
            (void)g_unlink(r->video_part);
        }
        if (r->audio_part != NULL) {
            (void)g_unlink(r->audio_part);
        }
        if (why == NULL) {
            why = g_strdup("no media was received before the recording ended");
        }
    } else {
        const char *parts[] = {r->video_part, r->audio_part};
        const char *finals[] = {r->video_path, r->audio_path};
        for (size_t i = 0; i < G_N_ELEMENTS(parts); i++) {
            if (parts[i] == NULL || !g_file_test(parts[i], G_FILE_TEST_EXISTS)) {
                continue;
            }
            if (g_rename(parts[i], finals[i]) != 0 && why == NULL) {
                why = g_strdup_printf("cannot rename %s: %s", parts[i], g_strerror(errno));
            }
        }
    }
    hv_recorder_ref(r);
    if (r->cb != NULL) {
        r->cb(r, why, r->user_data);
    }
    hv_recorder_unref(r);
}

static gboolean
on_bus_message(GstBus *bus, GstMessage *msg, gpointer user_data)
{
    hv_recorder *r = user_data;
    switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_EOS:
        finalize(r, NULL);
        return G_SOURCE_REMOVE;
    case GST_MESSAGE_ERROR: {
        g_autoptr(GError) err = NULL;
        g_autofree char *dbg = NULL;
        gst_message_parse_error(msg, &err, &dbg);
        HV_DEBUG(HV_CTX_MINT(r->log_mint), "recording error from %s: %s (%s)",
                 GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)), err->message, dbg != NULL ? dbg : "");
        /* The debug text ends with the system's reason ("...: No space left on device"). */
        const char *colon = dbg != NULL ? strrchr(dbg, ':') : NULL;
        g_autofree char *detail = colon != NULL ? g_strstrip(g_strdup(colon + 1)) : NULL;
        g_autofree char *why =
            detail != NULL && detail[0] != '\0'
                ? g_strdup_printf("recording failed: %s (%s)", err->message, detail)
                : g_strdup_printf("recording failed: %s", err->message);
        finalize(r, why);
        return G_SOURCE_REMOVE;
    }
    default:
        return G_SOURCE_CONTINUE;
    }
}

static gboolean
on_finish_timeout(gpointer user_data)
{
    hv_recorder *r = user_data;
    g_clear_pointer(&r->timeout_source, g_source_unref);
    HV_WARNING(HV_CTX_MINT(r->log_mint),
               "recording %s did not finish in time; keeping it as written",
               r->video_path != NULL ? r->video_path : r->audio_path);
    finalize(r, NULL);
    return G_SOURCE_REMOVE;
}

void
hv_recorder_finish(hv_recorder *r, int64_t timeout_ms)
{
    if (r == NULL || r->done || r->finishing) {
        return;
    }
    r->finishing = true;
    g_mutex_lock(&r->lock);
    r->closed = true;
    g_mutex_unlock(&r->lock);
    if (r->vsrc != NULL) {
        (void)gst_app_src_end_of_stream(GST_APP_SRC(r->vsrc));
    }
    if (r->asrc != NULL) {
        (void)gst_app_src_end_of_stream(GST_APP_SRC(r->asrc));
    }
    r->timeout_source = g_timeout_source_new((guint)MAX(timeout_ms, 100));
    g_source_set_callback(r->timeout_source, on_finish_timeout, r, NULL);
    g_source_attach(r->timeout_source, r->ctx);
}

void
hv_recorder_abort(hv_recorder *r, const char *reason)
{
    if (r != NULL) {
        finalize(r, reason != NULL ? reason : "recording aborted");
    }
}

bool
hv_recorder_is_done(const hv_recorder *r)
{
    return r->done;
}

void
hv_recorder_get_files(const hv_recorder *r, hv_recorder_files *out)
{
    out->video_path = r->video_path;
    out->audio_path = r->audio_path;
    out->container = r->container;
    out->stored_video_codec = r->stored_codec;
}

void
hv_recorder_get_stats(hv_recorder *r, hv_recorder_stats *out)
{
    memset(out, 0, sizeof(*out));
    g_mutex_lock(&r->lock);
    out->started = r->started;
    out->duration_ms =
        GST_CLOCK_TIME_IS_VALID(r->last_pts) ? (int64_t)(r->last_pts / GST_MSECOND) : 0;
    out->dropped = r->dropped;
    out->width = r->width;
    out->height = r->height;
    g_mutex_unlock(&r->lock);
    if (r->done) {
        out->bytes = file_size(r->video_path) + file_size(r->audio_path);
    } else {
        out->bytes = file_size(r->video_part) + file_size(r->audio_part);
    }
}

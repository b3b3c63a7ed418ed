/* hv-flashbeep: a live flash/beep source for measuring audio/video sync.
 *
 * Usage: hv-flashbeep 'GST-LAUNCH DESCRIPTION'
 *
 * The description names a live videotestsrc "flashsrc" whose caps it forces to I420 and a live
 * audiotestsrc "beepsrc" (wave=silence) whose caps it forces to S16LE interleaved. Buffer probes
 * on their src pads overwrite what the sources made, from buffer PTS alone:
 *
 *   video  a frame whose PTS mod 1 s is below 200 ms is white (Y=235, U=V=128), any other is
 *          black (Y=16, U=V=128);
 *   audio  a sample at t = PTS + i / rate carries a 1 kHz tone at half full scale on every
 *          channel for 100 ms from each beep onset, any other sample is 0. The onset for second
 *          k is the PTS of the first video frame at or after k s, i.e. exactly when the flash
 *          starts; until flashsrc has sent a frame (and if its framerate is 0/1) it is k s.
 *
 * Why the beep follows the frame grid rather than the whole second: live sources stamp their
 * first buffer with the pipeline's running time when they start, so frames sit at phase + n/fps
 * with a phase that differs from run to run. A flash can then only start at the first frame
 * after the whole second, up to one frame period (33 ms at 30 fps) late, while a sample-exact
 * beep would start on the second: every run would carry its own constant offset of 0..-33 ms.
 * Starting the beep on that frame's PTS instead makes the generated offset zero (within one
 * audio sample), so what hv-avprobe measures is what happened downstream.
 *
 * Both sources run in one pipeline, on one clock, so their PTS share a time base. Whatever
 * offset hv-avprobe later measures between a flash and its beep was added by what carried,
 * decoded or recorded the media.
 *
 * SIGINT/SIGTERM: EOS is sent and awaited, so a muxer in the description writes a complete file,
 * then the program exits 0 (1 if EOS did not arrive in time). A pipeline error is printed on
 * stderr and the exit status is 1. A bad description or bad caps exit 2 and 1 respectively.
 */
#include <glib-unix.h>
#include <gst/audio/audio.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define FLASH_LEN  (200 * GST_MSECOND)
#define BEEP_LEN   (100 * GST_MSECOND)
#define BEEP_FREQ  1000.0
#define BEEP_AMPL  16384.0 /* half of S16 full scale */
#define EOS_WAIT_S 5

/* Limited-range BT.601 levels: what encoders expect from camera video, so nothing on the way
 * clips or range-converts the picture into something the probe's thresholds would misread. */
#define LUMA_WHITE 235
#define LUMA_BLACK 16
#define CHROMA_MID 128

/* The flash's frame grid, published by the video probe for the audio probe (another thread). */
typedef struct {
    GMutex lock;
    gboolean valid;
    GstClockTime ref; /* PTS of the latest frame */
    gint fps_n;       /* flashsrc's framerate; 0 when unknown or variable */
    gint fps_d;
} frame_grid;

typedef struct {
    GstElement *element;
    gboolean video;
    /* Set from the CAPS event and read by the buffer probe: both run on the source's streaming
     * thread, so no lock is needed. */
    gboolean have_info;
    GstVideoInfo vinfo;
    GstAudioInfo ainfo;
    gboolean warned_no_pts;
    frame_grid *grid;
} source_state;

typedef struct {
    GMainLoop *loop;
    GstElement *pipeline;
    int exit_code;
    gboolean stopping;
    guint eos_timer;
    source_state flash;
    source_state beep;
    frame_grid grid;
} app_state;

static void
paint_video(GstVideoFrame *frame, gboolean white)
{
    const guint8 level[3] = {white ? LUMA_WHITE : LUMA_BLACK, CHROMA_MID, CHROMA_MID};

    for (guint c = 0; c < 3; c++) {
        guint8 *data = GST_VIDEO_FRAME_COMP_DATA(frame, c);
        gint stride = GST_VIDEO_FRAME_COMP_STRIDE(frame, c);
        gint width = GST_VIDEO_FRAME_COMP_WIDTH(frame, c);
        gint height = GST_VIDEO_FRAME_COMP_HEIGHT(frame, c);
        for (gint y = 0; y < height; y++) {
            memset(data + (gsize)y * stride, level[c], width);
        }
    }
}

static void
grid_update(frame_grid *g, GstClockTime pts, const GstVideoInfo *info)
{
    g_mutex_lock(&g->lock);
    g->valid = TRUE;
    g->ref = pts;
    g->fps_n = GST_VIDEO_INFO_FPS_N(info);
    g->fps_d = GST_VIDEO_INFO_FPS_D(info);
    g_mutex_unlock(&g->lock);
}

/* PTS of the first frame at or after T on the grid of the latest frame (T itself without a grid).
 * Doubles in nanoseconds are exact enough (well under 1 ns for days of PTS); the small slack in
 * ceil() keeps a frame that sits exactly on T from being pushed a whole period later by rounding.
 */
static GstClockTime
grid_first_frame_from(frame_grid *g, GstClockTime t)
{
    GstClockTime onset = t;

    g_mutex_lock(&g->lock);
    if (g->valid && g->fps_n > 0 && g->fps_d > 0) {
        double period = (double)GST_SECOND * g->fps_d / g->fps_n;
        double n = ceil(((double)t - (double)g->ref) / period - 1e-6);
        double frame = (double)g->ref + n * period;
        onset = frame > 0.0 ? (GstClockTime)llround(frame) : 0;
    }
    g_mutex_unlock(&g->lock);
    return onset;
}

static void
paint_audio(gint16 *samples, gsize frames, gint channels, gint rate, GstClockTime pts,
            frame_grid *grid)
{
    guint64 onset_second = G_MAXUINT64;
    GstClockTime onset = 0;

    for (gsize i = 0; i < frames; i++) {
        /* Each sample's time from the buffer PTS, not a running counter, so a gap or a dropped
         * buffer upstream cannot move the beeps. */
        GstClockTime t = pts + gst_util_uint64_scale_int(i, GST_SECOND, rate);
        /* The onset of second k lies in [k s, k s + one frame), and frame + beep is far below
         * 1 s, so only this second's beep can cover t. */
        guint64 k = t / GST_SECOND;
        if (k != onset_second) {
            onset_second = k;
            onset = grid_first_frame_from(grid, k * GST_SECOND);
        }
        gint16 v = 0;
        if (t >= onset && t - onset < BEEP_LEN) {
            /* Cosine phase: the first sample of a beep is already at half scale, so the probe's
             * 0.1 threshold fires on the onset sample itself instead of a sample or two into a
             * rising sine. */
            double s = (double)(t - onset) / GST_SECOND;
            v = (gint16)lrint(BEEP_AMPL * cos(2.0 * G_PI * BEEP_FREQ * s));
        }
        for (gint c = 0; c < channels; c++) {
            samples[i * channels + c] = GINT16_TO_LE(v);
        }
    }
}

/* Records the source's caps, or posts an error when they are not what the painter handles. */
static void
on_caps(source_state *st, gboolean video, GstCaps *caps)
{
    gchar *str = gst_caps_to_string(caps);

    st->have_info = FALSE;
    if (video) {
        if (gst_video_info_from_caps(&st->vinfo, caps) &&
            GST_VIDEO_INFO_FORMAT(&st->vinfo) == GST_VIDEO_FORMAT_I420) {
            st->have_info = TRUE;
        } else {
            GST_ELEMENT_ERROR(st->element, CORE, NEGOTIATION,
                              ("flashsrc must output I420 (add a video/x-raw,format=I420 "
                               "capsfilter after it), got %s",
                               str),
                              (NULL));
        }
    } else {
        if (gst_audio_info_from_caps(&st->ainfo, caps) &&
            GST_AUDIO_INFO_FORMAT(&st->ainfo) == GST_AUDIO_FORMAT_S16LE &&
            GST_AUDIO_INFO_LAYOUT(&st->ainfo) == GST_AUDIO_LAYOUT_INTERLEAVED) {
            st->have_info = TRUE;
        } else {
            GST_ELEMENT_ERROR(st->element, CORE, NEGOTIATION,
                              ("beepsrc must output interleaved S16LE (add an "
                               "audio/x-raw,format=S16LE,layout=interleaved capsfilter after "
                               "it), got %s",
                               str),
                              (NULL));
        }
    }
    g_free(str);
}

static GstPadProbeReturn
paint_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
    source_state *st = user_data;
    gboolean video = st->video;

    if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
        GstEvent *ev = GST_PAD_PROBE_INFO_EVENT(info);
        if (GST_EVENT_TYPE(ev) == GST_EVENT_CAPS) {
            GstCaps *caps;
            gst_event_parse_caps(ev, &caps);
            on_caps(st, video, caps);
        }
        return GST_PAD_PROBE_OK;
    }

    GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
    if (!st->have_info) {
        return GST_PAD_PROBE_OK; /* bad caps: the error is already on the bus */
    }
    GstClockTime pts = GST_BUFFER_PTS(buf);
    if (!GST_CLOCK_TIME_IS_VALID(pts)) {
        /* Without a PTS there is nothing to derive the content from; leave it and say so once
         * rather than guess a time that would fake a sync error. */
        if (!st->warned_no_pts) {
            g_printerr("hv-flashbeep: %s pushes buffers without PTS; left unpainted\n",
                       GST_OBJECT_NAME(st->element));
            st->warned_no_pts = TRUE;
        }
        return GST_PAD_PROBE_OK;
    }

    /* The source's buffers come from a pool and usually have no other owner, so this is rarely
     * a copy; when it is, the probe hands the copy on in place of the original. */
    buf = gst_buffer_make_writable(buf);
    GST_PAD_PROBE_INFO_DATA(info) = buf;

    if (video) {
        GstVideoFrame frame;
        if (!gst_video_frame_map(&frame, &st->vinfo, buf, GST_MAP_WRITE)) {
            GST_ELEMENT_ERROR(st->element, RESOURCE, WRITE, ("could not map a video frame"),
                              (NULL));
            return GST_PAD_PROBE_DROP;
        }
        paint_video(&frame, pts % GST_SECOND < FLASH_LEN);
        gst_video_frame_unmap(&frame);
        grid_update(st->grid, pts, &st->vinfo);
    } else {
        GstMapInfo map;
        if (!gst_buffer_map(buf, &map, GST_MAP_WRITE)) {
            GST_ELEMENT_ERROR(st->element, RESOURCE, WRITE, ("could not map an audio buffer"),
                              (NULL));
            return GST_PAD_PROBE_DROP;
        }
        gint bpf = GST_AUDIO_INFO_BPF(&st->ainfo);
        paint_audio((gint16 *)map.data, map.size / bpf, GST_AUDIO_INFO_CHANNELS(&st->ainfo),
                    GST_AUDIO_INFO_RATE(&st->ainfo), pts, st->grid);
        gst_buffer_unmap(buf, &map);
    }
    return GST_PAD_PROBE_OK;
}

/* Finds NAME and hooks the painter on its src pad. FALSE when the pipeline has no such element. */
static gboolean
attach_painter(app_state *app, source_state *st, const char *name)
{
    st->element = gst_bin_get_by_name(GST_BIN(app->pipeline), name);
    if (st->element == NULL) {
        return FALSE;
    }
    GstPad *pad = gst_element_get_static_pad(st->element, "src");
    if (pad == NULL) {
        g_printerr("hv-flashbeep: element %s has no src pad\n", name);
        return FALSE;
    }
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
                      paint_probe, st, NULL);
    gst_object_unref(pad);
    return TRUE;
}

static gboolean
on_bus_message(GstBus *bus, GstMessage *msg, gpointer user_data)
{
    app_state *app = user_data;

    switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR: {
        GError *err = NULL;
        gchar *debug = NULL;
        gst_message_parse_error(msg, &err, &debug);
        g_printerr("hv-flashbeep: error from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                   err->message);
        if (debug != NULL) {
            g_printerr("hv-flashbeep: debug: %s\n", debug);
        }
        g_clear_error(&err);
        g_free(debug);
        app->exit_code = 1;
        g_main_loop_quit(app->loop);
        break;
    }
    case GST_MESSAGE_WARNING: {
        GError *err = NULL;
        gst_message_parse_warning(msg, &err, NULL);
        g_printerr("hv-flashbeep: warning from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                   err->message);
        g_clear_error(&err);
        break;
    }
    case GST_MESSAGE_EOS:
        /* Ours after a signal, or the description's own (num-buffers=...): both end cleanly. */
        g_main_loop_quit(app->loop);
        break;
    default:
        break;
    }
    return G_SOURCE_CONTINUE;
}

static gboolean
on_eos_timeout(gpointer user_data)
{
    app_state *app = user_data;
    g_printerr("hv-flashbeep: no EOS within %d s after the signal; stopping anyway\n", EOS_WAIT_S);
    app->eos_timer = 0;
    app->exit_code = 1;
    g_main_loop_quit(app->loop);
    return G_SOURCE_REMOVE;
}

static gboolean
on_signal(gpointer user_data)
{
    app_state *app = user_data;

    if (app->stopping) {
        /* A second signal: whoever sent it does not want to wait for the muxer. */
        app->exit_code = 1;
        g_main_loop_quit(app->loop);
        return G_SOURCE_CONTINUE;
    }
    app->stopping = TRUE;
    /* EOS rather than an immediate stop: a muxer only writes its index/headers (mp4 moov or
     * mfra, webm cues) when EOS reaches it. The bin hands the event to every source, live ones
     * included, and the EOS message arrives once all sinks have it. */
    gst_element_send_event(app->pipeline, gst_event_new_eos());
    app->eos_timer = g_timeout_add_seconds(EOS_WAIT_S, on_eos_timeout, app);
    return G_SOURCE_CONTINUE;
}

static void
print_bus_error(GstElement *pipeline)
{
    GstBus *bus = gst_element_get_bus(pipeline);
    GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR);
    if (msg != NULL) {
        GError *err = NULL;
        gst_message_parse_error(msg, &err, NULL);
        g_printerr("hv-flashbeep: error from %s: %s\n", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                   err->message);
        g_clear_error(&err);
        gst_message_unref(msg);
    }
    gst_object_unref(bus);
}

int
main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    if (argc != 2) {
        g_printerr("usage: hv-flashbeep 'GST-LAUNCH DESCRIPTION'\n"
                   "  the description must contain a live videotestsrc name=flashsrc forced to "
                   "I420\n"
                   "  and a live audiotestsrc name=beepsrc wave=silence forced to interleaved "
                   "S16LE\n");
        return 2;
    }

    GError *err = NULL;
    /* Fatal errors: a misspelt property must not give a pipeline that silently ignores it. */
    GstElement *parsed = gst_parse_launch_full(argv[1], NULL, GST_PARSE_FLAG_FATAL_ERRORS, &err);
    if (parsed == NULL) {
        g_printerr("hv-flashbeep: bad description: %s\n", err != NULL ? err->message : "?");
        g_clear_error(&err);
        return 2;
    }

    app_state app = {0};
    if (GST_IS_PIPELINE(parsed)) {
        app.pipeline = gst_object_ref_sink(parsed);
    } else {
        /* A description with a single top-level element parses to that element. */
        app.pipeline = gst_object_ref_sink(gst_pipeline_new("flashbeep"));
        gst_bin_add(GST_BIN(app.pipeline), parsed);
    }

    g_mutex_init(&app.grid.lock);
    app.flash.video = TRUE;
    app.flash.grid = &app.grid;
    app.beep.grid = &app.grid;
    gboolean have_flash = attach_painter(&app, &app.flash, "flashsrc");
    gboolean have_beep = attach_painter(&app, &app.beep, "beepsrc");
    if (!have_flash || !have_beep) {
        g_printerr("hv-flashbeep: the description needs elements named flashsrc and beepsrc "
                   "(missing:%s%s)\n",
                   have_flash ? "" : " flashsrc", have_beep ? "" : " beepsrc");
        g_clear_object(&app.flash.element);
        g_clear_object(&app.beep.element);
        gst_object_unref(app.pipeline);
        return 2;
    }

    app.loop = g_main_loop_new(NULL, FALSE);
    GstBus *bus = gst_element_get_bus(app.pipeline);
    guint bus_watch = gst_bus_add_watch(bus, on_bus_message, &app);
    gst_object_unref(bus);
    guint sigint = g_unix_signal_add(SIGINT, on_signal, &app);
    guint sigterm = g_unix_signal_add(SIGTERM, on_signal, &app);

    if (gst_element_set_state(app.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        print_bus_error(app.pipeline);
        g_printerr("hv-flashbeep: the pipeline did not start\n");
        app.exit_code = 1;
    } else {
        g_main_loop_run(app.loop);
    }

    gst_element_set_state(app.pipeline, GST_STATE_NULL);
    g_source_remove(sigint);
    g_source_remove(sigterm);
    g_source_remove(bus_watch);
    if (app.eos_timer != 0) {
        g_source_remove(app.eos_timer);
    }
    g_main_loop_unref(app.loop);
    g_clear_object(&app.flash.element);
    g_clear_object(&app.beep.element);
    gst_object_unref(app.pipeline);
    g_mutex_clear(&app.grid.lock);
    return app.exit_code;
}

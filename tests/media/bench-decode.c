/* bench-decode: decode throughput, CPU and latency of the media module on a loopback.
 *
 * Runs the in-process test sender (videotestsrc → VP8 or H.264, 1280x720@30 by default, plus
 * Opus) against an hv_media_session with video enabled (audio off unless --audio), warms up,
 * then measures for N seconds: decoded frames/s, JPEGs/s delivered to on_video_frame, process
 * CPU time per second of video (getrusage; also split by thread name into the sender's source
 * threads, which do the test encoding, and the rest), and latency from captured_us (packet
 * arrival at the decode branch) to on_video_frame on the main thread, p50/p99.
 * Needs a loopback interface: unshare -n sh -c 'ip link set lo up; bench-decode 10'.
 * The last line is JSON for scripts.
 */
#include "media/media.h"
#include "sender.h"

#include <dirent.h>
#include <gst/gst.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

typedef struct {
    hv_media_session *s;
    test_sender *snd;
    bool connected;
    bool failed;
    unsigned jpegs;
    bool measuring;
    GArray *latency_us; /* int64_t, while measuring */
} bench;

static void
on_answer(const char *sdp, uint32_t offer_id, void *user_data)
{
    bench *b = user_data;
    test_sender_set_answer(b->snd, sdp);
}

static void
on_local_candidate(const char *candidate, const char *sdp_mid, int mline_index, void *user_data)
{
    bench *b = user_data;
    test_sender_add_candidate(b->snd, (unsigned)mline_index, candidate);
}

static void
on_video_frame(hv_frame *jpeg, void *user_data)
{
    bench *b = user_data;
    b->jpegs++;
    if (b->measuring) {
        int64_t lat = g_get_monotonic_time() - hv_buf_stamp_us(jpeg);
        g_array_append_val(b->latency_us, lat);
    }
}

static void
on_state(hv_media_state state, const char *reason, void *user_data)
{
    bench *b = user_data;
    b->connected = b->connected || state == HV_MEDIA_CONNECTED;
    if (state == HV_MEDIA_FAILED) {
        fprintf(stderr, "session failed: %s\n", reason);
        b->failed = true;
    }
}

static void
on_sender_offer(const char *sdp, void *user_data)
{
    bench *b = user_data;
    hv_media_session_set_offer(b->s, sdp, 1, NULL);
}

static void
on_sender_candidate(unsigned mline, const char *candidate, void *user_data)
{
    bench *b = user_data;
    hv_media_session_add_candidate(b->s, candidate, NULL, (int)mline);
}

static gboolean
wake(gpointer p)
{
    return G_SOURCE_CONTINUE;
}

static void
run_ms(bench *b, int ms, bool (*until)(bench *))
{
    guint tick = g_timeout_add(10, wake, NULL);
    int64_t end = g_get_monotonic_time() + (int64_t)ms * 1000;
    while (g_get_monotonic_time() < end && !b->failed && (until == NULL || !until(b))) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_source_remove(tick);
}

static bool
has_frames(bench *b)
{
    return b->jpegs > 0;
}

static double
cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) {
        return 0.0;
    }
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* CPU seconds of the live threads whose name starts with prefix (from /proc/self/task). */
static double
thread_cpu_seconds(const char *prefix)
{
    double total = 0.0;
    long hz = sysconf(_SC_CLK_TCK);
    DIR *d = opendir("/proc/self/task");
    if (d == NULL || hz <= 0) {
        if (d != NULL) {
            closedir(d);
        }
        return 0.0;
    }
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d)) {
        if (e->d_name[0] == '.') {
            continue;
        }
        g_autofree char *path = g_strdup_printf("/proc/self/task/%s/stat", e->d_name);
        g_autofree char *text = NULL;
        if (!g_file_get_contents(path, &text, NULL, NULL)) {
            continue;
        }
        /* pid (comm) state ... field 14 utime, 15 stime; comm may contain spaces. */
        char *open = strchr(text, '(');
        char *close = strrchr(text, ')');
        if (open == NULL || close == NULL) {
            continue;
        }
        *close = '\0';
        if (!g_str_has_prefix(open + 1, prefix)) {
            continue;
        }
        g_auto(GStrv) f = g_strsplit(close + 2, " ", 0);
        if (g_strv_length(f) > 13) {
            total +=
                (double)(g_ascii_strtoull(f[11], NULL, 10) + g_ascii_strtoull(f[12], NULL, 10)) /
                (double)hz;
        }
    }
    closedir(d);
    return total;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double
percentile_ms(GArray *v, double p)
{
    if (v->len == 0) {
        return 0.0;
    }
    size_t idx = (size_t)(p * (double)(v->len - 1) + 0.5);
    return (double)g_array_index(v, int64_t, idx) / 1000.0;
}

int
main(int argc, char **argv)
{
    int seconds = 10;
    int width = 1280;
    int height = 720;
    int fps = 30;
    int quality = 80;
    gboolean audio = FALSE;
    g_autofree char *codec = NULL;
    GOptionEntry entries[] = {
        {"seconds", 's', 0, G_OPTION_ARG_INT, &seconds, "measured seconds (10)", "N"},
        {"width", 'w', 0, G_OPTION_ARG_INT, &width, "video width (1280)", "PX"},
        {"height", 'h', 0, G_OPTION_ARG_INT, &height, "video height (720)", "PX"},
        {"fps", 'f', 0, G_OPTION_ARG_INT, &fps, "frame rate (30)", "N"},
        {"codec", 'c', 0, G_OPTION_ARG_STRING, &codec, "VP8 (default) or H264", "NAME"},
        {"quality", 'q', 0, G_OPTION_ARG_INT, &quality, "JPEG quality (80)", "1..100"},
        {"audio", 'a', 0, G_OPTION_ARG_NONE, &audio, "also decode audio (48000/2)", NULL},
        {NULL},
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("- media decode benchmark (loopback)");
    g_option_context_add_main_entries(ctx, entries, NULL);
    g_option_context_add_group(ctx, gst_init_get_option_group());
    GError *error = NULL;
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "%s\n", error->message);
        return 2;
    }
    int64_t n = 0;
    if (argc > 1) { /* bench-decode 10 */
        if (!g_ascii_string_to_signed(argv[1], 10, 1, 3600, &n, &error)) {
            fprintf(stderr, "seconds: %s\n", error->message);
            return 2;
        }
        seconds = (int)n;
    }
    const char *vcodec = codec != NULL ? codec : "VP8";

    bench b = {0};
    b.latency_us = g_array_new(FALSE, FALSE, sizeof(int64_t));
    hv_media_callbacks cb = {.on_answer = on_answer,
                             .on_local_candidate = on_local_candidate,
                             .on_video_frame = on_video_frame,
                             .on_state = on_state};
    hv_media_config cfg = {.ice_addresses = "127.0.0.1", .jpeg_quality = quality};
    b.s = hv_media_session_new(&cfg, &cb, &b, &error);
    if (b.s == NULL) {
        fprintf(stderr, "session: %s\n", error->message);
        return 1;
    }
    hv_media_session_set_video_enabled(b.s, true);
    if (audio) {
        hv_media_session_add_audio_format(b.s, 48000, 2);
    }
    test_sender_config scfg = {.video = vcodec,
                               .width = width,
                               .height = height,
                               .fps = fps,
                               .keyframe_interval = 3 * fps,
                               .audio = true,
                               .data_channel = true};
    test_sender_callbacks scb = {.on_offer = on_sender_offer, .on_candidate = on_sender_candidate};
    b.snd = test_sender_new(&scfg, &scb, &b);
    test_sender_offer(b.snd);
    run_ms(&b, 15000, has_frames);
    if (b.jpegs == 0) {
        fprintf(stderr, "no video frames (connected=%d)\n", b.connected);
        return 1;
    }
    run_ms(&b, 2000, NULL); /* warm-up */

    hv_media_stats st0;
    hv_media_session_get_stats(b.s, &st0);
    unsigned j0 = b.jpegs;
    double cpu0 = cpu_seconds();
    double snd0 = thread_cpu_seconds("sndvideo") + thread_cpu_seconds("sndaudio");
    int64_t t0 = g_get_monotonic_time();
    b.measuring = true;
    run_ms(&b, seconds * 1000, NULL);
    b.measuring = false;
    double dur = (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
    double cpu = cpu_seconds() - cpu0;
    double snd = thread_cpu_seconds("sndvideo") + thread_cpu_seconds("sndaudio") - snd0;
    hv_media_stats st1;
    hv_media_session_get_stats(b.s, &st1);

    g_array_sort(b.latency_us, cmp_i64);
    double dec_fps = (double)(st1.video_frames_decoded - st0.video_frames_decoded) / dur;
    double jpeg_fps = (double)(b.jpegs - j0) / dur;
    double p50 = percentile_ms(b.latency_us, 0.50);
    double p99 = percentile_ms(b.latency_us, 0.99);
    printf("codec %s %dx%d@%d, JPEG quality %d, %.1f s measured\n", vcodec, st1.width, st1.height,
           fps, quality, dur);
    printf("decoded fps        %.1f\n", dec_fps);
    printf("JPEGs/s            %.1f (dropped by the leaky JPEG queue: %" G_GUINT64_FORMAT ")\n",
           jpeg_fps, st1.video_frames_dropped - st0.video_frames_dropped);
    printf("CPU s per s        %.3f process (%.3f in the sender's encode threads, "
           "%.3f everything else)\n",
           cpu / dur, snd / dur, (cpu - snd) / dur);
    printf("latency ms         p50 %.2f  p99 %.2f  (%u frames; captured_us -> on_video_frame)\n",
           p50, p99, b.latency_us->len);
    printf("{\"codec\":\"%s\",\"width\":%d,\"height\":%d,\"seconds\":%.2f,\"decoded_fps\":%.2f,"
           "\"jpeg_fps\":%.2f,\"cpu_per_s\":%.4f,\"cpu_sender_per_s\":%.4f,"
           "\"cpu_receiver_per_s\":%.4f,\"latency_p50_ms\":%.3f,\"latency_p99_ms\":%.3f}\n",
           vcodec, st1.width, st1.height, dur, dec_fps, jpeg_fps, cpu / dur, snd / dur,
           (cpu - snd) / dur, p50, p99);

    hv_media_session_free(b.s);
    test_sender_free(b.snd);
    g_array_unref(b.latency_us);
    return b.failed ? 1 : 0;
}

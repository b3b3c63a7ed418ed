/* GET /metrics: the Prometheus text exposition (version 0.0.4).
 *
 * Counters and histograms counted where events happen come from core/metrics; everything
 * that is state (sessions, viewers, per-session frame counts, the catalog, recordings, the
 * process) is read from its owner while the page is built, on the main thread. The families
 * and their labels are listed in docs/OPERATIONS.md; tests/integration/test_metrics.py checks
 * each one appears and moves.
 */
#include "http-private.h"

#include "core/metrics.h"
#include "core/util.h"

#include <dirent.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

typedef struct {
    const char *family;
    const char *type;
    const char *help;
    size_t offset; /* into hv_live_session_report, a uint64_t */
} session_family;

#define SM(field) offsetof(hv_live_session_report, field)

static const session_family session_families[] = {
    {"haven_session_video_frames_received_total", "counter",
     "Video frames (RTP timestamps) received from the streamer, decoded or not.",
     SM(video.frames_received)},
    {"haven_session_video_frames_decoded_total", "counter",
     "Video frames decoded (only while a viewer watches).", SM(video.frames_decoded)},
    {"haven_session_video_frames_encoded_total", "counter", "JPEG frames encoded for viewers.",
     SM(video.frames_encoded)},
    {"haven_session_video_frames_sent_total", "counter",
     "Video frames (JPEG, or encoded for mode=encoded viewers) handed to viewer sockets, summed "
     "over viewers.",
     SM(video.frames_sent)},
    {"haven_session_audio_chunks_decoded_total", "counter", "Audio chunks (about 20 ms) decoded.",
     SM(audio.chunks_decoded)},
    {"haven_session_audio_chunks_sent_total", "counter",
     "Audio chunks handed to viewer sockets, summed over viewers.", SM(audio.sent)},
    {"haven_session_received_bytes_total", "counter", "RTP payload bytes received.",
     SM(bytes_received)},
    {"haven_session_reconnects_total", "counter",
     "Full reconnects of this session to its LiveKit room.", SM(reconnects)},
};

/* Sessions are reported in every state the live module has, zeros included. */
static const char *const session_states[] = {"starting", "active", "reconnecting", "ended"};
/* Recording rows by status (store.h). */
static const char *const recording_states[] = {"recording", "finished", "failed", "recovered"};

static void
write_gauge(GString *out, const char *family, const char *help, double value)
{
    hv_metrics_write_header(out, family, "gauge", help);
    hv_metrics_write_sample(out, family, NULL, value);
}

static void
write_sessions(GString *out, hv_live *live)
{
    g_autoptr(GArray) list = hv_live_reports(live);
    unsigned by_state[G_N_ELEMENTS(session_states)] = {0};
    unsigned viewers = 0;
    for (guint i = 0; i < list->len; i++) {
        const hv_live_session_report *m = &g_array_index(list, hv_live_session_report, i);
        for (size_t k = 0; k < G_N_ELEMENTS(session_states); k++) {
            by_state[k] += strcmp(m->state, session_states[k]) == 0 ? 1 : 0;
        }
        viewers += m->viewers;
    }
    hv_metrics_write_header(out, "haven_sessions", "gauge", "Live sessions by state.");
    for (size_t k = 0; k < G_N_ELEMENTS(session_states); k++) {
        g_autofree char *labels = hv_metrics_labels("state", session_states[k], NULL);
        hv_metrics_write_sample(out, "haven_sessions", labels, by_state[k]);
    }
    write_gauge(out, "haven_viewers", "Viewer WebSockets connected, over all sessions.", viewers);

    hv_metrics_write_header(out, "haven_session_viewers", "gauge",
                            "Viewer WebSockets connected to one session.");
    for (guint i = 0; i < list->len; i++) {
        const hv_live_session_report *m = &g_array_index(list, hv_live_session_report, i);
        g_autofree char *labels = hv_metrics_labels("mint", m->mint, NULL);
        hv_metrics_write_sample(out, "haven_session_viewers", labels, m->viewers);
    }
    hv_metrics_write_header(out, "haven_session_encoded_viewers", "gauge",
                            "Viewer WebSockets of one session in mode=encoded (also counted in "
                            "haven_session_viewers).");
    for (guint i = 0; i < list->len; i++) {
        const hv_live_session_report *m = &g_array_index(list, hv_live_session_report, i);
        g_autofree char *labels = hv_metrics_labels("mint", m->mint, NULL);
        hv_metrics_write_sample(out, "haven_session_encoded_viewers", labels, m->encoded.viewers);
    }
    hv_metrics_write_header(out, "haven_session_gop_cache_bytes", "gauge",
                            "Bytes in the session's GOP cache (encoded media from the newest key "
                            "frame on), at most HAVEN_GOP_CACHE.");
    for (guint i = 0; i < list->len; i++) {
        const hv_live_session_report *m = &g_array_index(list, hv_live_session_report, i);
        g_autofree char *labels = hv_metrics_labels("mint", m->mint, NULL);
        hv_metrics_write_sample(out, "haven_session_gop_cache_bytes", labels,
                                (double)m->encoded.gop_bytes);
    }
    for (size_t f = 0; f < G_N_ELEMENTS(session_families); f++) {
        const session_family *fam = &session_families[f];
        hv_metrics_write_header(out, fam->family, fam->type, fam->help);
        for (guint i = 0; i < list->len; i++) {
            const hv_live_session_report *m = &g_array_index(list, hv_live_session_report, i);
            g_autofree char *labels = hv_metrics_labels("mint", m->mint, NULL);
            uint64_t v = *(const uint64_t *)((const char *)m + fam->offset);
            hv_metrics_write_sample(out, fam->family, labels, (double)v);
        }
    }
    /* Dropped frames: one family, the stage that dropped them as a label. */
    hv_metrics_write_header(out, "haven_session_video_frames_dropped_total", "counter",
                            "Video frames dropped: stage=\"encoder\" decoded frames skipped "
                            "because JPEG encoding lagged, stage=\"viewer\" frames a slow viewer "
                            "skipped (a newer JPEG replaced them, or an encoded viewer skipped to "
                            "a key frame).");
    for (guint i = 0; i < list->len; i++) {
        const hv_live_session_report *m = &g_array_index(list, hv_live_session_report, i);
        g_autofree char *enc = hv_metrics_labels("mint", m->mint, "stage", "encoder", NULL);
        g_autofree char *view = hv_metrics_labels("mint", m->mint, "stage", "viewer", NULL);
        hv_metrics_write_sample(out, "haven_session_video_frames_dropped_total", enc,
                                (double)m->video.frames_dropped_encoder);
        hv_metrics_write_sample(out, "haven_session_video_frames_dropped_total", view,
                                (double)m->video.frames_dropped_viewer);
    }
}

static void
write_catalog(GString *out, const hv_http_deps *deps)
{
    hv_pf_roster *roster = hv_pf_catalog_peek(deps->catalog);
    hv_metrics_write_header(out, "haven_catalog_age_seconds", "gauge",
                            "Age of the cached live-stream roster (absent before the first "
                            "fetch).");
    if (roster != NULL) {
        hv_metrics_write_sample(out, "haven_catalog_age_seconds", NULL,
                                (double)(hv_now_ms() - roster->fetched_at_ms) / 1000.0);
    }
    write_gauge(out, "haven_catalog_live_streams", "Streams in the cached live roster.",
                roster != NULL ? (double)roster->all->len : 0);
    write_gauge(out, "haven_coins_cached", "Coins stored in SQLite (pumpfun_coins rows).",
                (double)hv_store_count(deps->store, "pumpfun_coins"));
}

static void
write_recordings(GString *out, const hv_http_deps *deps)
{
    hv_metrics_write_header(out, "haven_recordings", "gauge",
                            "Recordings in the database, by status.");
    for (size_t k = 0; k < G_N_ELEMENTS(recording_states); k++) {
        int64_t n = hv_store_count_recordings(deps->store, NULL, recording_states[k], NULL);
        g_autofree char *labels = hv_metrics_labels("state", recording_states[k], NULL);
        hv_metrics_write_sample(out, "haven_recordings", labels, n >= 0 ? (double)n : NAN);
    }
    unsigned running = 0;
    uint64_t bytes = hv_live_recording_bytes(deps->live, &running);
    write_gauge(out, "haven_recordings_running", "Recorders writing or finishing their files now.",
                running);
    hv_metrics_write_header(out, "haven_recording_written_bytes_total", "counter",
                            "Bytes written to recording files by this process.");
    hv_metrics_write_sample(out, "haven_recording_written_bytes_total", NULL, (double)bytes);
}

/* The standard process_* families (as the Prometheus client libraries name them), from
 * /proc/self. */
static void
write_process(GString *out, const hv_http_deps *deps)
{
    long page = sysconf(_SC_PAGESIZE);
    long ticks = sysconf(_SC_CLK_TCK);
    unsigned long long vsize = 0, rss_pages = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f != NULL) {
        if (fscanf(f, "%llu %llu", &vsize, &rss_pages) != 2) {
            vsize = rss_pages = 0;
        }
        fclose(f);
    }
    double cpu = 0;
    g_autofree char *stat = NULL;
    if (g_file_get_contents("/proc/self/stat", &stat, NULL, NULL)) {
        /* Fields after the command name, which may hold spaces and ')'. */
        const char *p = strrchr(stat, ')');
        unsigned long utime = 0, stime = 0;
        if (p != NULL &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) ==
                2 &&
            ticks > 0) {
            cpu = (double)(utime + stime) / (double)ticks;
        }
    }
    unsigned fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            fds += e->d_name[0] != '.' ? 1 : 0;
        }
        closedir(d);
        fds = fds > 0 ? fds - 1 : 0; /* the directory's own descriptor */
    }
    write_gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
                (double)rss_pages * (double)page);
    write_gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                (double)vsize * (double)page);
    write_gauge(out, "process_open_fds", "Open file descriptors.", fds);
    hv_metrics_write_header(out, "process_cpu_seconds_total", "counter",
                            "User and system CPU time spent, in seconds.");
    hv_metrics_write_sample(out, "process_cpu_seconds_total", NULL, cpu);
    write_gauge(out, "process_start_time_seconds", "Start time of the process, in Unix seconds.",
                (double)deps->started_wall_ms / 1000.0);
}

void
hv_http_handle_metrics(hv_http_exchange *ex)
{
    g_autoptr(GString) out = g_string_sized_new(8192);
    hv_metrics_write_header(out, "haven_build_info", "gauge", "haven's version (value 1).");
    g_autofree char *labels = hv_metrics_labels("version", ex->deps->version, NULL);
    hv_metrics_write_sample(out, "haven_build_info", labels, 1);
    write_sessions(out, ex->deps->live);
    hv_metrics_write_registry(out);
    write_catalog(out, ex->deps);
    write_recordings(out, ex->deps);
    write_process(out, ex->deps);
    hv_http_add_header(ex, "Cache-Control", "no-store");
    hv_http_respond(ex, 200, CONTENT_TYPE, out->str, out->len);
}

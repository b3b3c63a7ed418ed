/* The counter and histogram registry behind GET /metrics (see metrics.h). */
#include "metrics.h"

#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *help;
    /* Series shown as 0 before their first event, so rates and alerts work from the start:
     * "" for a family without labels; the known label sets of a labelled one (NULL-ended).
     * Other labelled series appear with their first event. */
    const char *const *presets;
} family_def;

static const char *const unlabelled[] = {"", NULL};
static const char *const ended_statuses[] = {"status=\"ended\"", "status=\"failed\"",
                                             "status=\"stopped\"", NULL};
static const char *const cull_reasons[] = {"reason=\"audio_backlog\"", "reason=\"event_queue\"",
                                           NULL};

/* Every counter family haven counts. Labels are documented in docs/OPERATIONS.md. */
static const family_def counter_families[] = {
    {"haven_upstream_requests_total",
     "Requests to pump.fun, by endpoint and HTTP status (\"error\": no HTTP answer).", NULL},
    {"haven_upstream_errors_total",
     "Failed requests to pump.fun, by endpoint and reason (http: a status outside 2xx/3xx, "
     "challenge: Cloudflare, timeout, network, too_large).",
     NULL},
    {"haven_sessions_started_total", "Live sessions created (a start for a mint without one).",
     unlabelled},
    {"haven_sessions_ended_total",
     "Live sessions that ended, by final status (stopped, ended, failed).", ended_statuses},
    {"haven_reconnects_total", "Full reconnects of live sessions to their LiveKit room.",
     unlabelled},
    {"haven_viewers_culled_total",
     "Viewer WebSockets closed for falling behind, by reason (audio_backlog, event_queue).",
     cull_reasons},
    {"haven_audio_chunks_culled_total",
     "Audio chunks culled viewers never received: their unread backlog when they were closed.",
     unlabelled},
};

typedef struct {
    const char *name;
    const char *help;
    double bounds[12];
    int n_bounds;
} histogram_def;

static const histogram_def histogram_defs[HV_METRICS_N_HISTOGRAMS] = {
    [HV_METRICS_JPEG_ENCODE] = {"haven_jpeg_encode_seconds",
                                "Time jpegenc takes for one frame sent to viewers.",
                                {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
                                 0.256},
                                10},
    [HV_METRICS_VIDEO_DECODE] = {"haven_video_decode_seconds",
                                 "Time from a compressed video frame entering the decoder to its "
                                 "picture leaving it.",
                                 {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
                                  0.256},
                                 10},
};

/* Lock-free: observed on streaming threads, read by the main thread. The last bucket is +Inf. */
typedef struct {
    uint64_t buckets[13];
    uint64_t sum_ns;
} histogram_state;

static histogram_state histograms[HV_METRICS_N_HISTOGRAMS];

/* family name → GTree (labels string → uint64_t*), main thread only; made with the presets
 * on first use (registry()). */
static GHashTable *counters;

static int
cmp_labels(gconstpointer a, gconstpointer b, gpointer user_data)
{
    return strcmp(a, b);
}

static void
series_add(GTree *series, const char *labels, uint64_t n)
{
    uint64_t *v = g_tree_lookup(series, labels);
    if (v == NULL) {
        v = g_new0(uint64_t, 1);
        g_tree_insert(series, g_strdup(labels), v);
    }
    *v += n;
}

static GHashTable *
registry(void)
{
    if (counters == NULL) {
        counters =
            g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)g_tree_destroy);
        for (size_t i = 0; i < G_N_ELEMENTS(counter_families); i++) {
            const family_def *def = &counter_families[i];
            GTree *series = g_tree_new_full(cmp_labels, NULL, g_free, g_free);
            for (const char *const *p = def->presets; p != NULL && *p != NULL; p++) {
                series_add(series, *p, 0);
            }
            g_hash_table_insert(counters, (gpointer)def->name, series);
        }
    }
    return counters;
}

void
hv_metrics_count(const char *family, const char *labels, uint64_t n)
{
    GTree *series = g_hash_table_lookup(registry(), family);
    if (series == NULL) {
        g_critical("metrics: no counter family %s", family);
        return;
    }
    series_add(series, labels != NULL ? labels : "", n);
}

uint64_t
hv_metrics_counter_value(const char *family, const char *labels)
{
    GTree *series = g_hash_table_lookup(registry(), family);
    uint64_t *v = series != NULL ? g_tree_lookup(series, labels != NULL ? labels : "") : NULL;
    return v != NULL ? *v : 0;
}

void
hv_metrics_observe(hv_metrics_histogram h, double seconds)
{
    if ((unsigned)h >= HV_METRICS_N_HISTOGRAMS || !(seconds >= 0)) {
        return;
    }
    const histogram_def *def = &histogram_defs[h];
    int i = 0;
    while (i < def->n_bounds && seconds > def->bounds[i]) {
        i++;
    }
    __atomic_fetch_add(&histograms[h].buckets[i], 1, __ATOMIC_RELAXED);
    double ns = seconds * 1e9;
    __atomic_fetch_add(&histograms[h].sum_ns, ns < 1.8e19 ? (uint64_t)ns : 0, __ATOMIC_RELAXED);
}

static void
append_escaped(GString *out, const char *v)
{
    for (const char *p = v; *p != '\0'; p++) {
        if (*p == '\\') {
            g_string_append(out, "\\\\");
        } else if (*p == '"') {
            g_string_append(out, "\\\"");
        } else if (*p == '\n') {
            g_string_append(out, "\\n");
        } else {
            g_string_append_c(out, *p);
        }
    }
}

char *
hv_metrics_labels(const char *name, ...)
{
    GString *out = g_string_new(NULL);
    va_list ap;
    va_start(ap, name);
    for (const char *n = name; n != NULL; n = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        g_string_append_printf(out, "%s%s=\"", out->len > 0 ? "," : "", n);
        append_escaped(out, v != NULL ? v : "");
        g_string_append_c(out, '"');
    }
    va_end(ap);
    return g_string_free(out, FALSE);
}

void
hv_metrics_write_header(GString *out, const char *family, const char *type, const char *help)
{
    /* HELP text escapes only backslash and newline. */
    g_string_append_printf(out, "# HELP %s ", family);
    for (const char *p = help; *p != '\0'; p++) {
        if (*p == '\\') {
            g_string_append(out, "\\\\");
        } else if (*p == '\n') {
            g_string_append(out, "\\n");
        } else {
            g_string_append_c(out, *p);
        }
    }
    g_string_append_printf(out, "\n# TYPE %s %s\n", family, type);
}

static void
append_value(GString *out, double value)
{
    if (isnan(value)) {
        g_string_append(out, "NaN");
    } else if (isinf(value)) {
        g_string_append(out, value > 0 ? "+Inf" : "-Inf");
    } else if (value == floor(value) && fabs(value) < 9007199254740992.0) {
        g_string_append_printf(out, "%.0f", value);
    } else {
        char buf[40];
        hv_format_double(value, buf, sizeof(buf));
        g_string_append(out, buf);
    }
}

void
hv_metrics_write_sample(GString *out, const char *name, const char *labels, double value)
{
    g_string_append(out, name);
    if (labels != NULL && *labels != '\0') {
        g_string_append_printf(out, "{%s}", labels);
    }
    g_string_append_c(out, ' ');
    append_value(out, value);
    g_string_append_c(out, '\n');
}

static gboolean
write_series(gpointer key, gpointer value, gpointer user_data)
{
    void **ctx = user_data;
    hv_metrics_write_sample(ctx[0], ctx[1], key, (double)*(uint64_t *)value);
    return FALSE;
}

static void
write_histogram(GString *out, hv_metrics_histogram h)
{
    const histogram_def *def = &histogram_defs[h];
    hv_metrics_write_header(out, def->name, "histogram", def->help);
    g_autofree char *bucket = g_strdup_printf("%s_bucket", def->name);
    uint64_t cumulative = 0;
    for (int i = 0; i <= def->n_bounds; i++) {
        cumulative += __atomic_load_n(&histograms[h].buckets[i], __ATOMIC_RELAXED);
        char le[40] = "+Inf";
        if (i < def->n_bounds) {
            hv_format_double(def->bounds[i], le, sizeof(le));
        }
        g_autofree char *labels = hv_metrics_labels("le", le, NULL);
        hv_metrics_write_sample(out, bucket, labels, (double)cumulative);
    }
    g_autofree char *sum = g_strdup_printf("%s_sum", def->name);
    g_autofree char *count = g_strdup_printf("%s_count", def->name);
    hv_metrics_write_sample(out, sum, NULL,
                            (double)__atomic_load_n(&histograms[h].sum_ns, __ATOMIC_RELAXED) / 1e9);
    hv_metrics_write_sample(out, count, NULL, (double)cumulative);
}

void
hv_metrics_write_registry(GString *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(counter_families); i++) {
        const family_def *def = &counter_families[i];
        hv_metrics_write_header(out, def->name, "counter", def->help);
        void *ctx[2] = {out, (void *)def->name};
        g_tree_foreach(g_hash_table_lookup(registry(), def->name), write_series, ctx);
    }
    for (int h = 0; h < HV_METRICS_N_HISTOGRAMS; h++) {
        write_histogram(out, (hv_metrics_histogram)h);
    }
}

void
hv_metrics_reset(void)
{
    g_clear_pointer(&counters, g_hash_table_destroy);
    memset(histograms, 0, sizeof(histograms));
}

/* Unit tests for core/metrics (the registry behind GET /metrics) and the hub's cull counters:
 * the exposition text, label escaping, counters, cumulative histograms from several threads. */
#include "core/metrics.h"
#include "hub/hub.h"

#include <math.h>
#include <string.h>

static char *
page(void)
{
    GString *out = g_string_new(NULL);
    hv_metrics_write_registry(out);
    return g_string_free(out, FALSE);
}

/* The value of the sample line that starts with prefix, or -1. */
static double
sample(const char *text, const char *prefix)
{
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l != NULL; l++) {
        if (g_str_has_prefix(*l, prefix) && (*l)[strlen(prefix)] == ' ') {
            return g_ascii_strtod(*l + strlen(prefix) + 1, NULL);
        }
    }
    return -1;
}

static void
test_labels_escaped(void)
{
    g_autofree char *l = hv_metrics_labels("a", "x\"y\\z\nw", "b", "", NULL);
    g_assert_cmpstr(l, ==, "a=\"x\\\"y\\\\z\\nw\",b=\"\"");
    g_autofree char *none = hv_metrics_labels(NULL, NULL);
    g_assert_cmpstr(none, ==, "");
}

static void
test_counters(void)
{
    hv_metrics_reset();
    g_autofree char *before = page();
    /* Unlabelled families show 0 from the start; labelled ones only after an event. */
    g_assert_cmpfloat(sample(before, "haven_reconnects_total"), ==, 0);
    g_assert_null(strstr(before, "haven_upstream_requests_total{"));
    g_assert_nonnull(strstr(before, "# TYPE haven_upstream_requests_total counter\n"));
    /* Known label sets of a labelled family are there at 0 from the start. */
    g_assert_cmpfloat(sample(before, "haven_viewers_culled_total{reason=\"event_queue\"}"), ==, 0);
    g_assert_cmpfloat(sample(before, "haven_sessions_ended_total{status=\"stopped\"}"), ==, 0);

    g_autofree char *ok = hv_metrics_labels("endpoint", "/coins/{mint}", "status", "200", NULL);
    g_autofree char *err = hv_metrics_labels("endpoint", "/coins/{mint}", "status", "error", NULL);
    hv_metrics_count("haven_upstream_requests_total", ok, 1);
    hv_metrics_count("haven_upstream_requests_total", ok, 2);
    hv_metrics_count("haven_upstream_requests_total", err, 1);
    hv_metrics_count("haven_reconnects_total", NULL, 5);
    g_assert_cmpuint(hv_metrics_counter_value("haven_upstream_requests_total", ok), ==, 3);
    g_autofree char *after = page();
    g_assert_cmpfloat(sample(after, "haven_reconnects_total"), ==, 5);
    g_assert_cmpfloat(
        sample(after, "haven_upstream_requests_total{endpoint=\"/coins/{mint}\",status=\"200\"}"),
        ==, 3);
    g_assert_cmpfloat(
        sample(after, "haven_upstream_requests_total{endpoint=\"/coins/{mint}\",status=\"error\"}"),
        ==, 1);
    /* One HELP and one TYPE per family, the samples right after them. */
    const char *type = strstr(after, "# TYPE haven_upstream_requests_total counter\n");
    g_assert_nonnull(type);
    g_assert_true(g_str_has_prefix(type + strlen("# TYPE haven_upstream_requests_total counter\n"),
                                   "haven_upstream_requests_total{"));
    g_assert_null(strstr(type + 1, "# TYPE haven_upstream_requests_total"));
}

static void
test_unknown_family(void)
{
    if (g_test_subprocess()) {
        hv_metrics_count("haven_no_such_total", NULL, 1);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*no counter family haven_no_such_total*");
}

static gpointer
observe_many(gpointer data)
{
    for (int i = 0; i < 10000; i++) {
        hv_metrics_observe(HV_METRICS_JPEG_ENCODE, 0.003); /* the le="0.004" bucket */
    }
    return NULL;
}

static void
test_histogram(void)
{
    hv_metrics_reset();
    hv_metrics_observe(HV_METRICS_VIDEO_DECODE, 0.0001);
    hv_metrics_observe(HV_METRICS_VIDEO_DECODE, 0.001); /* on a bound: le is inclusive */
    hv_metrics_observe(HV_METRICS_VIDEO_DECODE, 0.02);
    hv_metrics_observe(HV_METRICS_VIDEO_DECODE, 5.0); /* beyond every bound: +Inf only */
    hv_metrics_observe(HV_METRICS_VIDEO_DECODE, -1);  /* ignored */
    GThread *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = g_thread_new("observe", observe_many, NULL);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(t[i]);
    }
    g_autofree char *text = page();
    g_assert_cmpfloat(sample(text, "haven_video_decode_seconds_bucket{le=\"0.0005\"}"), ==, 1);
    g_assert_cmpfloat(sample(text, "haven_video_decode_seconds_bucket{le=\"0.001\"}"), ==, 2);
    g_assert_cmpfloat(sample(text, "haven_video_decode_seconds_bucket{le=\"0.016\"}"), ==, 2);
    g_assert_cmpfloat(sample(text, "haven_video_decode_seconds_bucket{le=\"0.032\"}"), ==, 3);
    g_assert_cmpfloat(sample(text, "haven_video_decode_seconds_bucket{le=\"0.256\"}"), ==, 3);
    g_assert_cmpfloat(sample(text, "haven_video_decode_seconds_bucket{le=\"+Inf\"}"), ==, 4);
    g_assert_cmpfloat(sample(text, "haven_video_decode_seconds_count"), ==, 4);
    g_assert_cmpfloat_with_epsilon(sample(text, "haven_video_decode_seconds_sum"), 5.0211, 1e-6);
    /* Four threads at once lose no observation. */
    g_assert_cmpfloat(sample(text, "haven_jpeg_encode_seconds_bucket{le=\"0.002\"}"), ==, 0);
    g_assert_cmpfloat(sample(text, "haven_jpeg_encode_seconds_bucket{le=\"0.004\"}"), ==, 40000);
    g_assert_cmpfloat(sample(text, "haven_jpeg_encode_seconds_count"), ==, 40000);
    g_assert_cmpfloat_with_epsilon(sample(text, "haven_jpeg_encode_seconds_sum"), 120.0, 1e-3);
}

static void
test_sample_format(void)
{
    g_autoptr(GString) out = g_string_new(NULL);
    hv_metrics_write_header(out, "x", "gauge", "a \\ b\nc");
    hv_metrics_write_sample(out, "x", NULL, 3);
    hv_metrics_write_sample(out, "x", "k=\"v\"", 0.25);
    hv_metrics_write_sample(out, "x", "", 1e300);
    hv_metrics_write_sample(out, "x", NULL, NAN);
    hv_metrics_write_sample(out, "x", NULL, -INFINITY);
    g_assert_cmpstr(out->str, ==,
                    "# HELP x a \\\\ b\\nc\n# TYPE x gauge\nx 3\nx{k=\"v\"} 0.25\nx 1e+300\n"
                    "x NaN\nx -Inf\n");
}

static void
nop_wake(void *user_data)
{
}

/* A viewer that never reads is culled once, with its unread audio counted. */
static void
test_hub_cull_counted(void)
{
    hv_metrics_reset();
    hv_hub_channel *ch = hv_hub_channel_new(4, NULL, NULL);
    hv_hub_viewer *slow = hv_hub_viewer_new(ch, 48000, 2, nop_wake, NULL);
    hv_hub_viewer *fast = hv_hub_viewer_new(ch, 48000, 2, nop_wake, NULL);
    for (int i = 0; i < 10; i++) {
        g_autoptr(hv_hub_msg) m = hv_hub_msg_new_copy(false, "audio:AAAA", 10);
        hv_hub_channel_publish_audio(ch, 48000, 2, m);
        hv_hub_msg *out = NULL;
        const char *why = NULL;
        g_assert_cmpint(hv_hub_viewer_next(fast, &out, &why), ==, HV_HUB_SEND);
        hv_hub_msg_unref(out);
    }
    g_autofree char *labels = hv_metrics_labels("reason", "audio_backlog", NULL);
    g_assert_cmpuint(hv_metrics_counter_value("haven_viewers_culled_total", labels), ==, 1);
    /* Culled when 5 chunks were unread (backlog 4): those are the ones it never gets. */
    g_assert_cmpuint(hv_metrics_counter_value("haven_audio_chunks_culled_total", NULL), ==, 5);
    hv_hub_viewer_stats totals;
    hv_hub_channel_get_totals(ch, &totals);
    g_assert_cmpuint(totals.audio_sent, ==, 10);
    hv_hub_viewer_free(slow);
    hv_hub_viewer_free(fast);
    /* Totals outlive the viewers. */
    hv_hub_channel_get_totals(ch, &totals);
    g_assert_cmpuint(totals.audio_sent, ==, 10);
    hv_hub_channel_free(ch, NULL);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/metrics/labels-escaped", test_labels_escaped);
    g_test_add_func("/metrics/counters", test_counters);
    g_test_add_func("/metrics/unknown-family", test_unknown_family);
    g_test_add_func("/metrics/histogram", test_histogram);
    g_test_add_func("/metrics/sample-format", test_sample_format);
    g_test_add_func("/metrics/hub-cull-counted", test_hub_cull_counted);
    return g_test_run();
}

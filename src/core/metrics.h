/* Process-wide metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * Two kinds of numbers end up in GET /metrics:
 *   - events counted where they happen, kept here: labelled counters (main thread only) and
 *     histograms (any thread: lock-free atomics, because JPEG encoding and decoding are timed
 *     on GStreamer streaming threads);
 *   - state read when the page is scraped (sessions, viewers, per-session frame counts, cache
 *     age, recordings, RSS, fds): src/http/metrics.c asks the modules that own it, so there is
 *     no second copy of it to go stale.
 * Every family is declared once in the table in metrics.c, with its type and help text; a
 * counter or histogram name not in the table is a programming error (g_critical, ignored).
 */
#ifndef HV_CORE_METRICS_H
#define HV_CORE_METRICS_H

#include <glib.h>
#include <stdint.h>

/* Histograms, observed in seconds from any thread. */
typedef enum {
    HV_METRICS_JPEG_ENCODE,  /* haven_jpeg_encode_seconds: one frame through jpegenc */
    HV_METRICS_VIDEO_DECODE, /* haven_video_decode_seconds: compressed frame in, picture out */
    HV_METRICS_N_HISTOGRAMS
} hv_metrics_histogram;

void hv_metrics_observe(hv_metrics_histogram h, double seconds);

/* Adds n to a counter family's series. labels: NULL or an already formatted label list such
 * as `endpoint="livestream",status="200"` (see hv_metrics_labels). Main thread only. */
void hv_metrics_count(const char *family, const char *labels, uint64_t n);
/* The current value of one series (0 if never counted). Main thread only. */
uint64_t hv_metrics_counter_value(const char *family, const char *labels);

/* (transfer full) A label list from NULL-terminated name/value pairs, values escaped as the
 * format requires (backslash, double quote, newline): hv_metrics_labels("mint", m, NULL). */
char *hv_metrics_labels(const char *name, ...) G_GNUC_NULL_TERMINATED;

/* Writing a page. A family's samples must follow its header without another family between. */
void hv_metrics_write_header(GString *out, const char *family, const char *type, const char *help);
/* One sample: name{labels} value. labels may be NULL. Integers print without a fraction. */
void hv_metrics_write_sample(GString *out, const char *name, const char *labels, double value);
/* Writes every counter and histogram family of the table (headers included). */
void hv_metrics_write_registry(GString *out);

/* Forgets every counted value (tests). */
void hv_metrics_reset(void);

#endif

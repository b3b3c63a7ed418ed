/* notify.c: what both kinds of viewers share, below hub.c and encoded.c: waking a viewer's
 * socket, culling a viewer that fell behind, telling the owner the viewer count changed, and the
 * latency ring. */
#include "hub/hub-private.h"

#include "core/metrics.h"

/* Marks a viewer to be closed for falling behind (once), and counts it with the audio it
 * will never get. */
void
hv_hub_cull(hv_hub_viewer *v, const char *reason, const char *metric_reason)
{
    if (v->cull_reason != NULL) {
        return;
    }
    v->cull_reason = reason;
    g_autofree char *labels = hv_metrics_labels("reason", metric_reason, NULL);
    hv_metrics_count("haven_viewers_culled_total", labels, 1);
    if (v->ring != NULL && v->ring->head > v->cursor) {
        hv_metrics_count("haven_audio_chunks_culled_total", NULL, v->ring->head - v->cursor);
    }
}

void
hv_hub_wake(hv_hub_viewer *v)
{
    if (v->wake != NULL) {
        v->wake(v->user_data);
    }
}

void
hv_hub_viewers_changed(hv_hub_channel *ch)
{
    if (ch->cb.viewers_changed != NULL) {
        ch->cb.viewers_changed(ch->user_data);
    }
}

void
hv_hub_note_latency(hv_hub_channel *ch, const hv_hub_msg *m)
{
    if (ch == NULL || hv_buf_stamp_us(m) <= 0) {
        return;
    }
    ch->latency_ms[ch->latency_next] =
        (float)(g_get_monotonic_time() - hv_buf_stamp_us(m)) / 1000.0f;
    ch->latency_next = (ch->latency_next + 1) % HV_HUB_LATENCY_SAMPLES;
    if (ch->latency_n < HV_HUB_LATENCY_SAMPLES) {
        ch->latency_n++;
    }
}

/* hub.c: the hub's channels and JPEG/PCM viewers, and what every viewer is handed next (see
 * hub.h for the policy). Main thread only. Below it: encoded.c (the GOP cache and encoded
 * viewers), notify.c (waking, culling, viewer counts, latency) and msg.c (messages).
 *
 * Ownership: a channel owns its audio rings (one per format in use), the latest video message
 * and the GOP cache; a viewer owns one pending video reference, a cursor into its ring (or into
 * the GOP cache), and a bounded event queue. Messages are atomically refcounted hv_bufs, so a
 * GStreamer thread can build them.
 */
#include "hub/hub-private.h"

#include "core/metrics.h"

#include <stdlib.h>
#include <string.h>

/* ---- channel ------------------------------------------------------------------------------ */

hv_hub_channel *
hv_hub_channel_new(size_t audio_backlog, const hv_hub_channel_callbacks *cb, void *user_data)
{
    hv_hub_channel *ch = g_new0(hv_hub_channel, 1);
    ch->backlog = audio_backlog > 0 ? audio_backlog : 1;
    if (cb != NULL) {
        ch->cb = *cb;
    }
    ch->user_data = user_data;
    ch->rings = g_ptr_array_new();
    ch->gop.max_bytes = HV_HUB_GOP_DEFAULT_BYTES;
    return ch;
}

static void
ring_free(hv_hub_channel *ch, audio_ring *r)
{
    for (size_t i = 0; i < ch->backlog; i++) {
        hv_hub_msg_unref(r->slots[i]);
    }
    g_free(r->slots);
    g_free(r);
}

void
hv_hub_channel_free(hv_hub_channel *ch, const char *reason)
{
    if (ch == NULL) {
        return;
    }
    for (GList *l = ch->viewers; l != NULL; l = l->next) {
        hv_hub_viewer *v = l->data;
        v->ch = NULL;
        v->ring = NULL;
        v->closed_reason = g_strdup(reason != NULL ? reason : "stream ended");
        if (v->wake != NULL) {
            v->wake(v->user_data);
        }
    }
    g_list_free(ch->viewers);
    for (guint i = 0; i < ch->rings->len; i++) {
        ring_free(ch, g_ptr_array_index(ch->rings, i));
    }
    g_ptr_array_unref(ch->rings);
    hv_hub_msg_unref(ch->latest_video);
    hv_hub_gop_clear(ch);
    g_free(ch);
}

void
hv_hub_channel_publish_video(hv_hub_channel *ch, hv_hub_msg *jpeg, int width, int height)
{
    hv_hub_msg_unref(ch->latest_video);
    ch->latest_video = hv_hub_msg_ref(jpeg);
    ch->width = width;
    ch->height = height;
    for (GList *l = ch->viewers; l != NULL; l = l->next) {
        hv_hub_viewer *v = l->data;
        if (v->encoded) {
            continue;
        }
        if (v->pending_video != NULL) {
            v->stats.video_dropped++; /* latest wins: the unsent one is skipped */
            hv_hub_msg_unref(v->pending_video);
        }
        v->pending_video = hv_hub_msg_ref(jpeg);
        hv_hub_wake(v);
    }
}

static audio_ring *
find_ring(hv_hub_channel *ch, int rate_hz, int channels)
{
    for (guint i = 0; i < ch->rings->len; i++) {
        audio_ring *r = g_ptr_array_index(ch->rings, i);
        if (r->rate_hz == rate_hz && r->channels == channels) {
            return r;
        }
    }
    return NULL;
}

void
hv_hub_channel_publish_audio(hv_hub_channel *ch, int rate_hz, int channels, hv_hub_msg *text)
{
    audio_ring *r = find_ring(ch, rate_hz, channels);
    if (r == NULL) {
        return; /* nobody listens in this format */
    }
    size_t slot = (size_t)(r->head % ch->backlog);
    hv_hub_msg_unref(r->slots[slot]);
    r->slots[slot] = hv_hub_msg_ref(text);
    r->head++;
    for (GList *l = ch->viewers; l != NULL; l = l->next) {
        hv_hub_viewer *v = l->data;
        if (v->ring != r) {
            continue;
        }
        if (r->head - v->cursor > ch->backlog) {
            hv_hub_cull(v, "viewer too slow: audio backlog exceeded", "audio_backlog");
        }
        hv_hub_wake(v);
    }
}

void
hv_hub_channel_publish_event(hv_hub_channel *ch, const char *json)
{
    g_autoptr(hv_hub_msg) m = hv_hub_msg_new_copy(false, json, strlen(json));
    for (GList *l = ch->viewers; l != NULL; l = l->next) {
        hv_hub_viewer *v = l->data;
        if (g_queue_get_length(&v->events) >= HV_HUB_EVENT_QUEUE) {
            hv_hub_cull(v, "viewer too slow: event queue full", "event_queue");
        } else {
            g_queue_push_tail(&v->events, hv_hub_msg_ref(m));
        }
        hv_hub_wake(v);
    }
}

unsigned
hv_hub_channel_viewer_count(const hv_hub_channel *ch)
{
    return ch->n_viewers;
}

static int
cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void
hv_hub_channel_latency(const hv_hub_channel *ch, double *p50_ms, double *p99_ms, unsigned *samples)
{
    *samples = ch->latency_n;
    *p50_ms = *p99_ms = 0;
    if (ch->latency_n == 0) {
        return;
    }
    g_autofree float *sorted = g_memdup2(ch->latency_ms, ch->latency_n * sizeof(float));
    qsort(sorted, ch->latency_n, sizeof(float), cmp_float);
    *p50_ms = sorted[(ch->latency_n - 1) / 2];
    *p99_ms = sorted[(size_t)((ch->latency_n - 1) * 0.99)];
}

void
hv_hub_channel_video_size(const hv_hub_channel *ch, int *width, int *height)
{
    *width = ch->width;
    *height = ch->height;
}

static void
add_stats(hv_hub_viewer_stats *sum, const hv_hub_viewer_stats *v)
{
    sum->video_sent += v->video_sent;
    sum->video_dropped += v->video_dropped;
    sum->audio_sent += v->audio_sent;
    sum->events_sent += v->events_sent;
    sum->bytes_sent += v->bytes_sent;
}

/* ---- viewers ------------------------------------------------------------------------------ */

hv_hub_viewer *
hv_hub_viewer_new(hv_hub_channel *ch, int audio_rate_hz, int audio_channels,
                  void (*wake_fn)(void *user_data), void *user_data)
{
    hv_hub_viewer *v = g_new0(hv_hub_viewer, 1);
    v->ch = ch;
    v->wake = wake_fn;
    v->user_data = user_data;
    g_queue_init(&v->events);
    audio_ring *r = find_ring(ch, audio_rate_hz, audio_channels);
    if (r == NULL) {
        r = g_new0(audio_ring, 1);
        r->rate_hz = audio_rate_hz;
        r->channels = audio_channels;
        r->slots = g_new0(hv_hub_msg *, ch->backlog);
        g_ptr_array_add(ch->rings, r);
        if (ch->cb.audio_format_needed != NULL) {
            ch->cb.audio_format_needed(audio_rate_hz, audio_channels, true, ch->user_data);
        }
    }
    r->users++;
    v->ring = r;
    v->cursor = r->head; /* a new viewer hears from now on */
    if (ch->latest_video != NULL) {
        v->pending_video = hv_hub_msg_ref(ch->latest_video); /* no black screen until the next */
    }
    ch->viewers = g_list_prepend(ch->viewers, v);
    ch->n_viewers++;
    ch->n_jpeg++;
    if (ch->n_jpeg == 1 && ch->cb.video_needed != NULL) {
        ch->cb.video_needed(true, ch->user_data);
    }
    hv_hub_viewers_changed(ch);
    return v;
}

void
hv_hub_viewer_free(hv_hub_viewer *v)
{
    if (v == NULL) {
        return;
    }
    hv_hub_channel *ch = v->ch;
    if (ch != NULL) {
        ch->viewers = g_list_remove(ch->viewers, v);
        ch->n_viewers--;
        add_stats(&ch->departed, &v->stats);
        if (v->encoded) {
            ch->n_encoded--;
        } else {
            ch->n_jpeg--;
        }
        audio_ring *r = v->ring;
        if (r != NULL && --r->users == 0) {
            g_ptr_array_remove(ch->rings, r);
            int rate = r->rate_hz, channels = r->channels;
            ring_free(ch, r);
            if (ch->cb.audio_format_needed != NULL) {
                ch->cb.audio_format_needed(rate, channels, false, ch->user_data);
            }
        }
        if (!v->encoded && ch->n_jpeg == 0) {
            /* Decoding stops with the last JPEG viewer: the frame kept so far will only get
             * older, so the next viewer must not be shown it. */
            g_clear_pointer(&ch->latest_video, hv_hub_msg_unref);
            if (ch->cb.video_needed != NULL) {
                ch->cb.video_needed(false, ch->user_data);
            }
        }
        hv_hub_viewers_changed(ch);
    }
    hv_hub_msg_unref(v->pending_video);
    hv_hub_msg_unref(v->enc_format);
    g_queue_clear_full(&v->events, (GDestroyNotify)hv_hub_msg_unref);
    g_free(v->closed_reason);
    g_free(v);
}

void
hv_hub_viewer_push_text(hv_hub_viewer *v, const char *text)
{
    if (g_queue_get_length(&v->events) >= HV_HUB_EVENT_QUEUE) {
        hv_hub_cull(v, "viewer too slow: event queue full", "event_queue");
    } else {
        g_queue_push_tail(&v->events, hv_hub_msg_new_copy(false, text, strlen(text)));
    }
    hv_hub_wake(v);
}

bool
hv_hub_viewer_has_pending(const hv_hub_viewer *v)
{
    return g_queue_peek_head((GQueue *)&v->events) != NULL || v->pending_video != NULL ||
           (v->ring != NULL && v->cursor < v->ring->head) || v->cull_reason != NULL ||
           v->ch == NULL || (v->encoded && hv_hub_encoded_has_pending(v));
}

hv_hub_next
hv_hub_viewer_next(hv_hub_viewer *v, hv_hub_msg **msg, const char **reason)
{
    *msg = NULL;
    if (v->cull_reason != NULL) {
        *reason = v->cull_reason;
        return HV_HUB_CULLED;
    }
    hv_hub_msg *m = g_queue_pop_head(&v->events);
    if (m != NULL) {
        v->stats.events_sent++;
    } else if (v->encoded && v->ch != NULL && (m = hv_hub_encoded_next(v)) != NULL) {
        /* counted by hv_hub_encoded_next */
    } else if (v->ring != NULL && v->cursor < v->ring->head) {
        m = hv_hub_msg_ref(v->ring->slots[v->cursor % v->ch->backlog]);
        v->cursor++;
        v->stats.audio_sent++;
    } else if (v->pending_video != NULL) {
        m = v->pending_video;
        v->pending_video = NULL;
        v->stats.video_sent++;
        hv_hub_note_latency(v->ch, m);
    } else if (v->ch == NULL) {
        *reason = v->closed_reason;
        return HV_HUB_CLOSED;
    } else {
        return HV_HUB_NOTHING;
    }
    v->stats.bytes_sent += hv_hub_msg_len(m);
    *msg = m;
    return HV_HUB_SEND;
}

void
hv_hub_channel_get_totals(const hv_hub_channel *ch, hv_hub_viewer_stats *out)
{
    *out = ch->departed;
    for (GList *l = ch->viewers; l != NULL; l = l->next) {
        add_stats(out, &((const hv_hub_viewer *)l->data)->stats);
    }
}

void
hv_hub_viewer_get_stats(const hv_hub_viewer *v, hv_hub_viewer_stats *out)
{
    *out = v->stats;
}

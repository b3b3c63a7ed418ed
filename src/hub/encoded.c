/* encoded.c: the GOP cache and the encoded viewers (policy in hub.h). Main thread only.
 *
 * The cache is a ring of entries with consecutive sequence numbers; a viewer is a cursor (the
 * sequence number of its next entry). Nothing is copied per viewer, and a viewer's memory is
 * its cursor and the format it last got.
 */
#include "hub/hub-private.h"

#include <string.h>

/* More entries than this and the oldest go whatever their size (tiny messages). */
#define GOP_MAX_ENTRIES     65536
/* At most one key frame asked for per this long. */
#define KEY_ASK_INTERVAL_US G_USEC_PER_SEC

static hv_hub_gop_entry *
entry_at(hv_hub_gop *g, uint64_t seq)
{
    return &g->buf[(g->head + (size_t)(seq - g->first_seq)) % g->cap];
}

static uint64_t
next_seq(const hv_hub_gop *g)
{
    return g->first_seq + g->count;
}

static void
entry_clear(hv_hub_gop_entry *e)
{
    hv_hub_msg_unref(e->msg);
    hv_hub_msg_unref(e->format);
    *e = (hv_hub_gop_entry){0};
}

static void
pop_front(hv_hub_gop *g)
{
    hv_hub_gop_entry *e = &g->buf[g->head];
    g->bytes -= hv_hub_msg_len(e->msg);
    if (g->have_key && g->key_seq == g->first_seq) {
        g->have_key = false;
    }
    entry_clear(e);
    g->head = (g->head + 1) % g->cap;
    g->count--;
    g->first_seq++;
}

void
hv_hub_gop_clear(hv_hub_channel *ch)
{
    hv_hub_gop *g = &ch->gop;
    while (g->count > 0) {
        pop_front(g);
    }
    g_free(g->buf);
    g->buf = NULL;
    g->cap = 0;
    g_clear_pointer(&g->format, hv_hub_msg_unref);
}

static void
ask_key(hv_hub_channel *ch)
{
    int64_t now = g_get_monotonic_time();
    hv_hub_gop *g = &ch->gop;
    if (g->key_asked_us != 0 && now - g->key_asked_us < KEY_ASK_INTERVAL_US) {
        return;
    }
    g->key_asked_us = now;
    g->keys_asked++;
    if (ch->cb.keyframe_wanted != NULL) {
        ch->cb.keyframe_wanted(ch->user_data);
    }
}

static void
push_back(hv_hub_gop *g, hv_hub_msg *msg, bool video, bool key)
{
    if (g->count == g->cap) {
        size_t cap = g->cap == 0 ? 256 : g->cap * 2;
        hv_hub_gop_entry *buf = g_new0(hv_hub_gop_entry, cap);
        for (size_t i = 0; i < g->count; i++) {
            buf[i] = g->buf[(g->head + i) % g->cap];
        }
        g_free(g->buf);
        g->buf = buf;
        g->cap = cap;
        g->head = 0;
    }
    hv_hub_gop_entry *e = &g->buf[(g->head + g->count) % g->cap];
    e->msg = hv_hub_msg_ref(msg);
    e->format = g->format != NULL ? hv_hub_msg_ref(g->format) : NULL;
    e->video = video;
    e->key = key;
    e->format_has_video = g->format_has_video;
    g->count++;
    g->bytes += hv_hub_msg_len(msg);
}

/* The smallest cursor among encoded viewers (a waiting one may still have audio to get). */
static uint64_t
min_cursor(hv_hub_channel *ch)
{
    uint64_t min = UINT64_MAX;
    for (GList *l = ch->viewers; l != NULL; l = l->next) {
        hv_hub_viewer *v = l->data;
        if (v->encoded && v->enc_cursor < min) {
            min = v->enc_cursor;
        }
    }
    return min;
}

/* Drops what nobody needs (before the newest key frame, behind every viewer) and whatever is
 * over the bounds. */
static void
trim(hv_hub_channel *ch)
{
    hv_hub_gop *g = &ch->gop;
    bool have_min = false;
    uint64_t min = 0;
    while (g->count > 0) {
        bool over = g->bytes > g->max_bytes || g->count > GOP_MAX_ENTRIES;
        if (!over) {
            if (!g->have_key || g->first_seq >= g->key_seq) {
                break;
            }
            if (!have_min) {
                min = min_cursor(ch);
                have_min = true;
            }
            if (min <= g->first_seq) {
                break;
            }
        }
        bool losing_key = over && g->have_key && g->first_seq == g->key_seq;
        pop_front(g);
        if (losing_key) {
            /* The current GOP alone is over the bound: no key frame left to start from. */
            ask_key(ch);
        }
    }
}

void
hv_hub_channel_set_gop_limit(hv_hub_channel *ch, size_t max_bytes)
{
    ch->gop.max_bytes = max_bytes > 0 ? max_bytes : 1;
    trim(ch);
}

void
hv_hub_channel_set_encoded_format(hv_hub_channel *ch, const char *json, bool has_video)
{
    hv_hub_gop *g = &ch->gop;
    hv_hub_msg_unref(g->format);
    g->format = hv_hub_msg_new_copy(false, json, strlen(json));
    g->format_has_video = has_video;
}

void
hv_hub_channel_publish_encoded(hv_hub_channel *ch, hv_hub_msg *msg, bool video, bool key)
{
    hv_hub_gop *g = &ch->gop;
    uint64_t seq = next_seq(g);
    push_back(g, msg, video, key);
    if (video && key) {
        bool had = g->have_key;
        uint64_t previous = g->key_seq;
        g->have_key = true;
        g->key_seq = seq;
        /* A viewer still before the previous key frame is more than a GOP behind: it skips
         * to this one. */
        for (GList *l = ch->viewers; had && l != NULL; l = l->next) {
            hv_hub_viewer *v = l->data;
            if (v->encoded && v->enc_cursor < previous) {
                v->stats.video_dropped += seq - v->enc_cursor;
                v->enc_cursor = seq;
                v->enc_waiting = false;
            }
        }
    }
    trim(ch);
    for (GList *l = ch->viewers; l != NULL; l = l->next) {
        hv_hub_viewer *v = l->data;
        if (v->encoded) {
            hv_hub_wake(v);
        }
    }
}

hv_hub_viewer *
hv_hub_viewer_new_encoded(hv_hub_channel *ch, void (*wake_fn)(void *user_data), void *user_data)
{
    hv_hub_viewer *v = g_new0(hv_hub_viewer, 1);
    hv_hub_gop *g = &ch->gop;
    v->ch = ch;
    v->wake = wake_fn;
    v->user_data = user_data;
    v->encoded = true;
    g_queue_init(&v->events);
    hv_hub_msg *format = g->format;
    if (g->have_key) {
        v->enc_cursor = g->key_seq; /* the newest key frame and everything since */
        format = entry_at(g, g->key_seq)->format;
    } else {
        v->enc_cursor = next_seq(g);
        v->enc_waiting = true;
        ask_key(ch);
    }
    if (format != NULL) {
        v->enc_format = hv_hub_msg_ref(format);
        g_queue_push_tail(&v->events, hv_hub_msg_ref(format));
    }
    ch->viewers = g_list_prepend(ch->viewers, v);
    ch->n_viewers++;
    ch->n_encoded++;
    hv_hub_viewers_changed(ch);
    return v;
}

/* A cursor that fell out of the cache skips to the cached key frame, or waits for the next. */
static void
catch_up(hv_hub_viewer *v)
{
    hv_hub_channel *ch = v->ch;
    hv_hub_gop *g = &ch->gop;
    if (v->enc_cursor >= g->first_seq) {
        return;
    }
    if (g->have_key) {
        v->stats.video_dropped += g->key_seq - v->enc_cursor;
        v->enc_cursor = g->key_seq;
    } else {
        v->stats.video_dropped += next_seq(g) - v->enc_cursor;
        v->enc_cursor = next_seq(g);
        v->enc_waiting = true;
        ask_key(ch);
    }
}

bool
hv_hub_encoded_has_pending(const hv_hub_viewer *v)
{
    return v->ch != NULL && v->enc_cursor < next_seq(&v->ch->gop);
}

hv_hub_msg *
hv_hub_encoded_next(hv_hub_viewer *v)
{
    hv_hub_gop *g = &v->ch->gop;
    catch_up(v);
    while (v->enc_cursor < next_seq(g)) {
        hv_hub_gop_entry *e = entry_at(g, v->enc_cursor);
        if (v->enc_waiting) {
            if (e->video && e->key) {
                v->enc_waiting = false;
            } else if (e->video || e->format_has_video) {
                /* Until the key frame: no delta (undecodable) and no audio ahead of it. */
                v->stats.video_dropped += e->video ? 1 : 0;
                v->enc_cursor++;
                continue;
            }
        }
        if (e->format != NULL && e->format != v->enc_format) {
            /* The format first; the entry goes next time. */
            hv_hub_msg_unref(v->enc_format);
            v->enc_format = hv_hub_msg_ref(e->format);
            v->stats.events_sent++;
            return hv_hub_msg_ref(e->format);
        }
        v->enc_cursor++;
        if (e->video) {
            v->stats.video_sent++;
            hv_hub_note_latency(v->ch, e->msg);
        } else {
            v->stats.audio_sent++;
        }
        return hv_hub_msg_ref(e->msg);
    }
    return NULL;
}

void
hv_hub_channel_gop_stats(const hv_hub_channel *ch, hv_hub_gop_stats *out)
{
    const hv_hub_gop *g = &ch->gop;
    out->bytes = g->bytes;
    out->entries = g->count;
    out->max_bytes = g->max_bytes;
    out->has_key_frame = g->have_key;
    out->viewers = ch->n_encoded;
    out->keys_asked = g->keys_asked;
}

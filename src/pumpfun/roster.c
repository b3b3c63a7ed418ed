/* hv_pf_roster: an immutable, indexed snapshot of the live streams (main thread builds it; a
 * response being written may hold a reference while a newer roster replaces it). */
#include "pumpfun.h"

static gint
by_participants_desc(gconstpointer a, gconstpointer b)
{
    const hv_pf_stream *x = *(hv_pf_stream *const *)a;
    const hv_pf_stream *y = *(hv_pf_stream *const *)b;
    return (x->num_participants < y->num_participants) -
           (x->num_participants > y->num_participants);
}

static GPtrArray *
new_stream_array(guint size)
{
    return g_ptr_array_new_full(size, (GDestroyNotify)hv_pf_stream_unref);
}

hv_pf_roster *
hv_pf_roster_new(GPtrArray *streams, int64_t now_ms, int64_t now_wall_ms)
{
    hv_pf_roster *r = g_atomic_rc_box_new0(hv_pf_roster);
    r->all = new_stream_array(streams->len);
    r->sfw = new_stream_array(streams->len);
    r->by_mint = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < streams->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(streams, i);
        if (!s->is_currently_live || g_hash_table_contains(r->by_mint, s->mint_id)) {
            continue;
        }
        g_ptr_array_add(r->all, hv_pf_stream_ref(s));
        g_hash_table_insert(r->by_mint, s->mint_id, s);
        /* Saturating: counts are pump.fun's numbers, up to INT64_MAX each. */
        r->total_participants = s->num_participants > INT64_MAX - r->total_participants
                                    ? INT64_MAX
                                    : r->total_participants + s->num_participants;
        if (s->nsfw) {
            r->nsfw_count++;
        } else {
            g_ptr_array_add(r->sfw, hv_pf_stream_ref(s));
        }
    }
    /* g_ptr_array_sort is a stable merge sort (GLib >= 2.32), so ties keep upstream order. */
    r->popular = new_stream_array(r->all->len);
    r->popular_sfw = new_stream_array(r->sfw->len);
    for (guint i = 0; i < r->all->len; i++) {
        g_ptr_array_add(r->popular, hv_pf_stream_ref(g_ptr_array_index(r->all, i)));
    }
    for (guint i = 0; i < r->sfw->len; i++) {
        g_ptr_array_add(r->popular_sfw, hv_pf_stream_ref(g_ptr_array_index(r->sfw, i)));
    }
    g_ptr_array_sort(r->popular, by_participants_desc);
    g_ptr_array_sort(r->popular_sfw, by_participants_desc);
    r->fetched_at_ms = now_ms;
    r->fetched_at_wall_ms = now_wall_ms;
    return r;
}

hv_pf_roster *
hv_pf_roster_ref(hv_pf_roster *r)
{
    return g_atomic_rc_box_acquire(r);
}

static void
roster_clear(gpointer p)
{
    hv_pf_roster *r = p;
    g_hash_table_destroy(r->by_mint);
    g_ptr_array_unref(r->popular_sfw);
    g_ptr_array_unref(r->popular);
    g_ptr_array_unref(r->sfw);
    g_ptr_array_unref(r->all);
}

void
hv_pf_roster_unref(hv_pf_roster *r)
{
    if (r != NULL) {
        g_atomic_rc_box_release_full(r, roster_clear);
    }
}

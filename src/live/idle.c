/* idle.c: the idle timeout and the sessions it ended. A leaf of the module: when the timer
 * fires it ends the session through live->end_session (lifecycle.c's hv_live_session_end, set by
 * hv_live_new), so that recording.c, which re-arms the timer when a recording fails, never
 * depends on the files that depend on it. Main thread only. */
#include "live/live-private.h"

#include "core/error.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/util.h"

#include <string.h>

/* Sessions that ended for idleness, remembered for a while: the guide's flow starts a session
 * (curl) and opens the WebSocket later, and a viewer that comes after the idle stop must learn
 * why there is no session instead of a bare "no session". Bounded in count and age. */
#define RECENT_ENDS_MAX     256
#define RECENT_ENDS_KEEP_MS (5 * 60 * 1000)

typedef struct {
    int64_t at_ms; /* monotonic */
    char *reason;
} recent_end;

static void
recent_end_free(gpointer p)
{
    recent_end *e = p;
    g_free(e->reason);
    g_free(e);
}

static void
remember_end(hv_live *live, const char *mint, const char *reason)
{
    int64_t now = hv_now_ms();
    GHashTableIter it;
    gpointer value = NULL;
    g_hash_table_iter_init(&it, live->recent_ends);
    const char *oldest = NULL;
    int64_t oldest_ms = G_MAXINT64;
    gpointer key = NULL;
    while (g_hash_table_iter_next(&it, &key, &value)) {
        recent_end *e = value;
        if (now - e->at_ms > RECENT_ENDS_KEEP_MS) {
            g_hash_table_iter_remove(&it);
        } else if (e->at_ms < oldest_ms) {
            oldest_ms = e->at_ms;
            oldest = key;
        }
    }
    if (g_hash_table_size(live->recent_ends) >= RECENT_ENDS_MAX && oldest != NULL) {
        g_hash_table_remove(live->recent_ends, oldest);
    }
    recent_end *e = g_new(recent_end, 1);
    e->at_ms = now;
    e->reason = g_strdup(reason);
    g_hash_table_replace(live->recent_ends, g_strdup(mint), e);
}

const char *
hv_live_recent_end(hv_live *live, const char *mint_id)
{
    recent_end *e = g_hash_table_lookup(live->recent_ends, mint_id);
    if (e == NULL || hv_now_ms() - e->at_ms > RECENT_ENDS_KEEP_MS) {
        return NULL;
    }
    return e->reason;
}

static gboolean
on_idle_timeout(gpointer user_data)
{
    hv_live_session *s = user_data;
    s->idle_timer = 0;
    g_autofree char *reason = g_strdup_printf("stopped after %" G_GINT64_FORMAT
                                              " s without viewers or a recording (idle timeout); "
                                              "start it again",
                                              s->live->cfg->idle_timeout_ms / 1000);
    remember_end(s->live, s->mint, reason);
    s->live->end_session(s, "stopped", reason); /* lifecycle.c, through the hook (no cycle) */
    return G_SOURCE_REMOVE;
}

void
hv_live_update_idle_timer(hv_live_session *s)
{
    /* HAVEN_IDLE_TIMEOUT=0: a session runs until it is stopped. */
    bool idle = !s->record && hv_hub_channel_viewer_count(s->channel) == 0 &&
                s->live->cfg->idle_timeout_ms > 0;
    if (idle && s->idle_timer == 0 && s->state != S_ENDED) {
        s->idle_timer = g_timeout_add((guint)s->live->cfg->idle_timeout_ms, on_idle_timeout, s);
        HV_INFO(S_CTX(s),
                "no viewer and no recording: stopping in %" G_GINT64_FORMAT
                " s unless one comes (idle timeout)",
                s->live->cfg->idle_timeout_ms / 1000);
    } else if (!idle && s->idle_timer != 0) {
        g_source_remove(s->idle_timer);
        s->idle_timer = 0;
    }
}

GHashTable *
hv_live_recent_ends_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, recent_end_free);
}

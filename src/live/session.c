/* session.c: live sessions, the module's public functions (see live.h). Main thread only.
 * The files below it, each calling only files further down (no cycles): connect.c (catalog,
 * token, room, peer connection, reconnects), lifecycle.c (start answers, teardown, the end),
 * recording.c, encoded.c, report.c, and the leaves idle.c and tokens.c.
 *
 * Lifecycle of one session:
 *   STARTING ──info, token, room joined──▶ ACTIVE ──signal lost / leave RECONNECT──▶ RECONNECTING
 *      │ (failure: start answered with an error, session freed)        │ new token, new room,
 *      │                                                               │ new peer connection
 *      ▼                                                               ▼ (frames flow: ACTIVE)
 *   ended: stop, idle timeout, streamer gone past HAVEN_STREAMER_GRACE, leave DISCONNECT,
 *          reconnect give-up (a streamer back within the grace period: a full reconnect)
 * The room and the media session are never freed from inside their own callbacks: teardown
 * happens from an idle source. Everything a session owns is freed in hv_live_session_free().
 */
#include "live-private.h"

#include "core/error.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/util.h"

#include <string.h>

/* ---- start answers ------------------------------------------------------------------------ */

void
hv_live_op_cancel(hv_live_op *op)
{
    if (op != NULL) {
        g_queue_unlink(&op->s->ops, &op->link);
        g_free(op);
    }
}

static void
on_stream_info(hv_pf_stream *stream, const hv_pf_cache_info *info, const GError *error,
               void *user_data)
{
    hv_live_session *s = user_data;
    s->info_waiter = NULL;
    if (error != NULL) {
        g_autofree char *msg =
            g_strdup_printf("Could not look up mint_id: %s (%s)", s->mint, error->message);
        /* pump.fun busy or unreachable: try again later; a bad answer: a bad gateway. */
        hv_live_fail_start(
            s,
            error->code == HV_ERATELIMIT || error->code == HV_ETIMEDOUT ? HV_EAGAIN : HV_EUPSTREAM,
            msg);
        return;
    }
    if (stream == NULL || !stream->is_currently_live) {
        g_autofree char *msg =
            g_strdup_printf("Stream not found or not live for mint_id: %s", s->mint);
        hv_live_fail_start(s, HV_ENOTFOUND, msg);
        return;
    }
    s->info = hv_pf_stream_ref(stream);
    hv_live_begin_join(s);
}

/* ---- public API --------------------------------------------------------------------------- */

/* Turns recording on or off for a joined session (idempotent). */
static void
set_recording(hv_live_session *s, bool on)
{
    if (on && !s->record) {
        HV_MESSAGE(S_CTX(s), "recording requested");
        s->record = true;
        g_clear_pointer(&s->rec_error, g_free);
        hv_live_rec_maybe_start(s);
    } else if (!on && s->record) {
        HV_MESSAGE(S_CTX(s), "recording stopped on request");
        s->record = false;
        hv_live_rec_stop(s);
    }
    hv_live_update_idle_timer(s);
}

hv_live *
hv_live_new(const hv_config *cfg, hv_pf_client *client, hv_pf_catalog *catalog, hv_store *store)
{
    hv_live *live = g_new0(hv_live, 1);
    live->cfg = cfg;
    live->client = client;
    live->catalog = catalog;
    live->store = store;
    live->sessions =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)hv_live_session_free);
    live->recent_ends = hv_live_recent_ends_new();
    live->continuations = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    live->end_session = hv_live_session_end; /* idle.c's way to end a session */
    live->recordings = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    int64_t n = hv_store_recover_live_sessions(store, hv_wall_ms(), &error);
    if (n > 0) {
        g_message("marked %" G_GINT64_FORMAT " live session(s) of a previous run as interrupted",
                  n);
    } else if (n < 0) {
        g_warning("%s", error->message);
    }
    return live;
}

void
hv_live_free(hv_live *live)
{
    if (live == NULL) {
        return;
    }
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, live->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        hv_live_session_end(value, "stopped", "haven is shutting down");
    }
    g_hash_table_destroy(live->sessions);
    g_hash_table_destroy(live->recent_ends);
    g_hash_table_destroy(live->continuations);
    hv_live_rec_abort_all(live);
    g_ptr_array_unref(live->recordings);
    if (live->rec_update_timer != 0) {
        g_source_remove(live->rec_update_timer);
    }
    g_free(live);
}

void
hv_live_shutdown(hv_live *live)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, live->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        hv_live_session_end(value, "stopped", "haven is shutting down");
    }
}

bool
hv_live_busy(hv_live *live)
{
    return live->recordings->len > 0;
}

hv_live_op *
hv_live_start(hv_live *live, const char *mint_id, bool record, hv_live_start_cb cb, void *user_data)
{
    hv_live_session *s = g_hash_table_lookup(live->sessions, mint_id);
    if (s != NULL && (s->state == S_ACTIVE || s->state == S_RECONNECTING)) {
        if (record && !s->record) {
            /* record_session: true on a running session starts its recording; the answer's
             * record_session says whether it does (false when it could not start). */
            set_recording(s, true);
        }
        cb(s, NULL, user_data);
        return NULL;
    }
    bool fresh = s == NULL || s->state == S_ENDED;
    if (fresh && hv_live_session_count(live) >= (unsigned)live->cfg->max_sessions) {
        /* Each session holds a room connection, a peer connection and decoders: the limit
         * keeps a burst of starts from exhausting the machine. Joined sessions still answer. */
        g_autofree char *msg = g_strdup_printf(
            "Too many live sessions (limit %" G_GINT64_FORMAT ")", live->cfg->max_sessions);
        HV_MESSAGE(HV_CTX_MINT(mint_id), "start refused: %s", msg);
        g_autoptr(GError) e = g_error_new_literal(HV_ERROR, HV_EAGAIN, msg);
        cb(NULL, e, user_data);
        return NULL;
    }
    if (fresh) {
        if (s != NULL) {
            /* An ended session still waiting for its teardown idle: finish it now. */
            g_hash_table_remove(live->sessions, mint_id);
        }
        s = g_new0(hv_live_session, 1);
        s->live = live;
        g_strlcpy(s->mint, mint_id, sizeof(s->mint));
        s->state = S_STARTING;
        s->record = record;
        s->started_ms = hv_now_ms();
        s->started_wall_ms = hv_wall_ms();
        s->audio_formats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_queue_init(&s->ops);
        s->channel =
            hv_hub_channel_new((size_t)live->cfg->audio_backlog_chunks, &hv_live_hub_callbacks, s);
        hv_live_enc_init(s);
        g_hash_table_insert(live->sessions, s->mint, s);
        /* Started again: a later 4404 is about this session's end, not the old idle stop. */
        g_hash_table_remove(live->recent_ends, mint_id);
        hv_metrics_count("haven_sessions_started_total", NULL, 1);
        HV_MESSAGE(S_CTX(s), "starting a live session");
    }
    /* Every caller of a starting session waits for the one start in progress. */
    bool answered = false;
    hv_live_op *op = g_new0(hv_live_op, 1);
    op->s = s;
    op->cb = cb;
    op->user_data = user_data;
    op->answered = &answered;
    op->link.data = op;
    g_queue_push_tail_link(&s->ops, &op->link);
    if (fresh) {
        s->info_waiter = hv_pf_catalog_get_stream(live->catalog, mint_id, on_stream_info, s);
    } else if (record) {
        s->record = true; /* a second caller of a starting session asks for a recording too */
    }
    if (answered) {
        return NULL; /* the callback already ran (and op was freed) */
    }
    op->answered = NULL;
    return op;
}

unsigned
hv_live_session_count(hv_live *live)
{
    unsigned n = 0;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, live->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        n += ((hv_live_session *)value)->state != S_ENDED;
    }
    return n;
}

unsigned
hv_live_viewer_count(hv_live *live)
{
    unsigned n = 0;
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, live->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        hv_live_session *s = value;
        n += s->channel != NULL ? hv_hub_channel_viewer_count(s->channel) : 0;
    }
    return n;
}

bool
hv_live_stop(hv_live *live, const char *mint_id)
{
    hv_live_session *s = g_hash_table_lookup(live->sessions, mint_id);
    if (s == NULL || s->state == S_ENDED) {
        return false;
    }
    hv_live_session_end(s, "stopped", "session stopped");
    return true;
}

hv_live_session *
hv_live_find(hv_live *live, const char *mint_id)
{
    hv_live_session *s = g_hash_table_lookup(live->sessions, mint_id);
    return s != NULL && (s->state == S_ACTIVE || s->state == S_RECONNECTING) ? s : NULL;
}

hv_hub_channel *
hv_live_session_channel(hv_live_session *s)
{
    return s->channel;
}

bool
hv_live_set_recording(hv_live *live, const char *mint_id, bool on, GError **error)
{
    hv_live_session *s = hv_live_find(live, mint_id);
    if (s == NULL) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "No active session for mint_id: %s", mint_id);
        return false;
    }
    set_recording(s, on);
    if (on && s->rec_error != NULL && !s->record) {
        g_set_error(error, HV_ERROR, HV_EIO, "Could not start recording for mint_id: %s (%s)",
                    s->mint, s->rec_error);
        return false;
    }
    return true;
}

void
hv_live_note_continuation(hv_live *live, const char *mint_id, int64_t recording_id)
{
    if (recording_id > 0) {
        g_hash_table_replace(live->continuations, g_strdup(mint_id),
                             g_memdup2(&recording_id, sizeof(recording_id)));
    } else {
        g_hash_table_remove(live->continuations, mint_id);
    }
}

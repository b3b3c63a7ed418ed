/* Nodes and session leases: several havens on one PostgreSQL database
 * (docs/internals/cluster.md). A node's row carries its heartbeat and load; a session's lease
 * row says which node owns the mint's session, until when, and what the owner last reported.
 * Placements and takeovers take one transaction-scoped advisory lock, so two nodes placing at
 * once see each other's leases and the load stays even; a takeover also skips rows another
 * node has locked (SKIP LOCKED). Every time is the database's clock, in ms. PostgreSQL only.
 */
#include "store-private.h"

#include "core/error.h"

#include <string.h>

/* The database clock in ms. */
#define NOW_MS         "(extract(epoch from clock_timestamp()) * 1000)::bigint"
/* The advisory lock key placements and takeovers share ("hvplace"). */
#define PLACEMENT_LOCK "SELECT pg_advisory_xact_lock(6874760761163877)"

#define LEASE_SELECT                                                                               \
    "SELECT l.mint_id, l.owner, n.url, l.state, l.record, (l.lease_until < " NOW_MS "), "          \
    "l.recording_id, l.continues_recording, l.takeovers, l.error_code, l.error, l.report, " NOW_MS \
    " - l.updated_at FROM session_leases l LEFT JOIN nodes n ON n.node_id = l.owner"

static bool
require_shared(hv_store *store, GError **error)
{
    if (hv_store_is_shared(store)) {
        return true;
    }
    g_set_error(error, HV_ERROR, HV_EINVAL,
                "several nodes need a shared PostgreSQL store (HAVEN_DB=postgresql://...)");
    return false;
}

void
hv_store_node_free(hv_store_node *n)
{
    if (n != NULL) {
        g_free(n->node_id);
        g_free(n->url);
        g_free(n);
    }
}

void
hv_store_lease_free(hv_store_lease *l)
{
    if (l != NULL) {
        g_free(l->mint_id);
        g_free(l->owner);
        g_free(l->owner_url);
        g_free(l->state);
        g_free(l->error);
        g_free(l->report);
        g_free(l);
    }
}

static hv_store_lease *
read_lease(hv_store_stmt *st)
{
    hv_store_lease *l = g_new0(hv_store_lease, 1);
    int c = 0;
    l->mint_id = g_strdup(hv_store_stmt_column_text(st, c++));
    l->owner = g_strdup(hv_store_stmt_column_text(st, c++));
    l->owner_url = g_strdup(hv_store_stmt_column_text(st, c++));
    l->state = g_strdup(hv_store_stmt_column_text(st, c++));
    l->record = hv_store_stmt_column_int64(st, c++) != 0;
    l->expired = hv_store_stmt_column_int64(st, c++) != 0;
    l->recording_id = hv_store_stmt_column_int64(st, c++);
    l->continues_recording = hv_store_stmt_column_int64(st, c++);
    l->takeovers = hv_store_stmt_column_int64(st, c++);
    l->error_code = (int)hv_store_stmt_column_int64(st, c++);
    l->error = g_strdup(hv_store_stmt_column_text(st, c++));
    l->report = g_strdup(hv_store_stmt_column_text(st, c++));
    l->updated_age_ms = hv_store_stmt_column_int64(st, c);
    return l;
}

#define TXT(x) ((hv_store_value){.type = HV_STORE_VALUE_TEXT, .s = (x)})
#define INT(x) ((hv_store_value){.type = HV_STORE_VALUE_INT, .i = (x)})

static void
bind_values(hv_store_stmt *st, const hv_store_value *v, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        int idx = (int)k + 1;
        if (v[k].type == HV_STORE_VALUE_INT) {
            hv_store_stmt_bind_int64(st, idx, v[k].i);
        } else {
            hv_store_stmt_bind_text(st, idx, v[k].s);
        }
    }
}

/* Runs sql with parameters v; returns rows changed, -1 + error. */
static int64_t
run(hv_store *store, const char *sql, const hv_store_value *v, size_t n, const char *what,
    GError **error)
{
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(hv_store_db(store), sql, false, &cause);
    if (st != NULL) {
        bind_values(st, v, n);
        if (hv_store_stmt_run(st, &cause)) {
            return hv_store_conn_changes(hv_store_db(store));
        }
    }
    hv_store_fail(error, cause, what);
    return -1;
}

/* The leases sql (LEASE_SELECT + a condition) selects, (element-type hv_store_lease). */
static GPtrArray *
select_leases(hv_store *store, const char *sql, const hv_store_value *v, size_t n, GError **error)
{
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(hv_store_db(store), sql, false, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "reading session leases");
        return NULL;
    }
    bind_values(st, v, n);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hv_store_lease_free);
    int rc;
    while ((rc = hv_store_stmt_step(st, &cause)) == HV_STORE_ROW) {
        g_ptr_array_add(out, read_lease(st));
    }
    if (rc != HV_STORE_DONE) {
        hv_store_fail(error, cause, "reading session leases");
        g_clear_pointer(&out, g_ptr_array_unref);
    }
    return out;
}

/* mint's lease: (transfer full), NULL without error when none, NULL + error on failure. */
static hv_store_lease *
lease_of(hv_store *store, const char *mint_id, GError **error)
{
    const hv_store_value v[] = {TXT(mint_id)};
    g_autoptr(GPtrArray) rows =
        select_leases(store, LEASE_SELECT " WHERE l.mint_id = ?", v, G_N_ELEMENTS(v), error);
    if (rows == NULL || rows->len == 0) {
        return NULL;
    }
    return g_ptr_array_steal_index(rows, 0);
}

static bool
begin(hv_store *store, bool placement_lock, GError **error)
{
    hv_store_conn *conn = hv_store_db(store);
    if (!hv_store_conn_begin(conn, error)) {
        return false;
    }
    if (placement_lock && !hv_store_conn_exec(conn, PLACEMENT_LOCK, error)) {
        hv_store_conn_rollback(conn);
        return false;
    }
    return true;
}

static bool
commit(hv_store *store, GError **error)
{
    if (hv_store_conn_commit(hv_store_db(store), error)) {
        return true;
    }
    hv_store_conn_rollback(hv_store_db(store));
    return false;
}

static bool
rollback(hv_store *store)
{
    hv_store_conn_rollback(hv_store_db(store));
    return false;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

bool
hv_store_node_heartbeat(hv_store *store, const char *node_id, const char *url, int64_t sessions,
                        int64_t viewers, int64_t lease_ms, GError **error)
{
    if (!require_shared(store, error) || !begin(store, false, error)) {
        return false;
    }
    const hv_store_value node[] = {TXT(node_id), TXT(url), INT(sessions), INT(viewers)};
    const hv_store_value renew[] = {INT(lease_ms), TXT(node_id)};
    if (run(store,
            "INSERT INTO nodes (node_id, url, started_at, heartbeat_at, sessions, viewers) "
            "VALUES (?, ?, " NOW_MS ", " NOW_MS ", ?, ?) ON CONFLICT (node_id) DO UPDATE SET "
            "url = excluded.url, heartbeat_at = excluded.heartbeat_at, "
            "sessions = excluded.sessions, viewers = excluded.viewers",
            node, G_N_ELEMENTS(node), "writing the heartbeat", error) < 0 ||
        run(store, "UPDATE session_leases SET lease_until = " NOW_MS " + ? WHERE owner = ?", renew,
            G_N_ELEMENTS(renew), "renewing the leases", error) < 0) {
        return rollback(store);
    }
    return commit(store, error);
}

bool
hv_store_node_leave(hv_store *store, const char *node_id, GError **error)
{
    if (!require_shared(store, error) || !begin(store, false, error)) {
        return false;
    }
    const hv_store_value v[] = {TXT(node_id)};
    if (run(store, "DELETE FROM nodes WHERE node_id = ?", v, 1, "leaving", error) < 0 ||
        run(store, "UPDATE session_leases SET lease_until = 0 WHERE owner = ?", v, 1,
            "ending the leases", error) < 0) {
        return rollback(store);
    }
    return commit(store, error);
}

GPtrArray *
hv_store_live_nodes(hv_store *store, int64_t max_age_ms, GError **error)
{
    if (!require_shared(store, error)) {
        return NULL;
    }
    static const char sql[] =
        "SELECT n.node_id, n.url, " NOW_MS " - n.heartbeat_at, n.sessions, n.viewers, "
        "(SELECT count(*) FROM session_leases l WHERE l.owner = n.node_id) AS leases "
        "FROM nodes n WHERE n.heartbeat_at >= " NOW_MS " - ? "
        "ORDER BY leases, n.viewers, n.node_id";
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(hv_store_db(store), sql, false, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "reading the nodes");
        return NULL;
    }
    hv_store_stmt_bind_int64(st, 1, max_age_ms);
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)hv_store_node_free);
    int rc;
    while ((rc = hv_store_stmt_step(st, &cause)) == HV_STORE_ROW) {
        hv_store_node *n = g_new0(hv_store_node, 1);
        n->node_id = g_strdup(hv_store_stmt_column_text(st, 0));
        n->url = g_strdup(hv_store_stmt_column_text(st, 1));
        n->age_ms = hv_store_stmt_column_int64(st, 2);
        n->sessions = hv_store_stmt_column_int64(st, 3);
        n->viewers = hv_store_stmt_column_int64(st, 4);
        n->leases = hv_store_stmt_column_int64(st, 5);
        g_ptr_array_add(out, n);
    }
    if (rc != HV_STORE_DONE) {
        hv_store_fail(error, cause, "reading the nodes");
        g_clear_pointer(&out, g_ptr_array_unref);
    }
    return out;
}

/* ---- leases --------------------------------------------------------------------------------- */

/* The least loaded of nodes (sorted by hv_store_live_nodes, then counted up by assign). */
static hv_store_node *
least_loaded(GPtrArray *nodes)
{
    hv_store_node *best = NULL;
    for (guint i = 0; i < nodes->len; i++) {
        hv_store_node *n = g_ptr_array_index(nodes, i);
        if (best == NULL || n->leases < best->leases ||
            (n->leases == best->leases && n->viewers < best->viewers)) {
            best = n;
        }
    }
    return best;
}

/* Gives mint's lease (new, or an expired or failed one) to node: "assigned", a fresh lease;
 * an existing row counts a takeover and remembers the recording its owner was writing. */
static bool
assign(hv_store *store, const char *mint_id, const hv_store_node *node, bool record,
       int64_t lease_ms, GError **error)
{
    const hv_store_value v[] = {TXT(mint_id), TXT(node->node_id), INT(lease_ms), INT(record)};
    return run(store,
               "INSERT INTO session_leases (mint_id, owner, lease_until, state, record, "
               "created_at, updated_at) VALUES (?, ?, " NOW_MS " + ?, 'assigned', ?, " NOW_MS
               ", " NOW_MS ") ON CONFLICT (mint_id) DO UPDATE SET "
               "owner = excluded.owner, lease_until = excluded.lease_until, state = 'assigned', "
               "record = GREATEST(session_leases.record, excluded.record), "
               "continues_recording = CASE WHEN session_leases.state = 'failed' THEN NULL "
               "ELSE COALESCE(session_leases.recording_id, "
               "session_leases.continues_recording) END, recording_id = NULL, "
               "takeovers = session_leases.takeovers + "
               "CASE WHEN session_leases.state = 'failed' THEN 0 ELSE 1 END, "
               "error = NULL, error_code = NULL, report = NULL, updated_at = excluded.updated_at",
               v, G_N_ELEMENTS(v), "assigning a session", error) >= 0;
}

/* Starts a placement transaction and reads mint's lease in it (NULL: none). *failed (with
 * error set, nothing left open) when either fails. */
static hv_store_lease *
begin_with_lease(hv_store *store, const char *mint_id, bool *failed, GError **error)
{
    *failed = true;
    if (!require_shared(store, error) || !begin(store, true, error)) {
        return NULL;
    }
    GError *cause = NULL;
    hv_store_lease *cur = lease_of(store, mint_id, &cause);
    if (cause != NULL) {
        rollback(store);
        g_propagate_error(error, cause);
        return NULL;
    }
    *failed = false;
    return cur;
}

/* Reads mint's lease and commits: the answer of a placement or claim. */
static hv_store_lease *
commit_with_lease(hv_store *store, const char *mint_id, GError **error)
{
    hv_store_lease *out = lease_of(store, mint_id, error);
    if (out == NULL) {
        rollback(store);
        return NULL;
    }
    if (!commit(store, error)) {
        hv_store_lease_free(out);
        return NULL;
    }
    return out;
}

hv_store_lease *
hv_store_lease_place(hv_store *store, const char *mint_id, bool record, int64_t node_max_age_ms,
                     int64_t lease_ms, GError **error)
{
    bool failed = false;
    g_autoptr(hv_store_lease) cur = begin_with_lease(store, mint_id, &failed, error);
    if (failed) {
        return NULL;
    }
    if (cur != NULL && !cur->expired && strcmp(cur->state, "failed") != 0) {
        const hv_store_value v[] = {TXT(mint_id)};
        if (record && !cur->record &&
            run(store, "UPDATE session_leases SET record = 1 WHERE mint_id = ?", v, 1,
                "asking for a recording", error) < 0) {
            rollback(store);
            return NULL;
        }
    } else {
        g_autoptr(GPtrArray) nodes = hv_store_live_nodes(store, node_max_age_ms, error);
        if (nodes == NULL) {
            rollback(store);
            return NULL;
        }
        if (nodes->len == 0) {
            rollback(store);
            g_set_error(error, HV_ERROR, HV_EAGAIN, "no haven node is live in the cluster");
            return NULL;
        }
        if (!assign(store, mint_id, least_loaded(nodes), record, lease_ms, error)) {
            rollback(store);
            return NULL;
        }
    }
    return commit_with_lease(store, mint_id, error);
}

hv_store_lease *
hv_store_lease_claim(hv_store *store, const char *mint_id, const char *node_id, bool record,
                     int64_t lease_ms, GError **error)
{
    bool failed = false;
    g_autoptr(hv_store_lease) cur = begin_with_lease(store, mint_id, &failed, error);
    if (failed) {
        return NULL;
    }
    bool others = cur != NULL && !cur->expired && strcmp(cur->state, "failed") != 0 &&
                  strcmp(cur->owner, node_id) != 0;
    if (!others) {
        const hv_store_value v[] = {TXT(mint_id), TXT(node_id), INT(lease_ms), INT(record)};
        if (run(store,
                "INSERT INTO session_leases (mint_id, owner, lease_until, state, record, "
                "created_at, updated_at) VALUES (?, ?, " NOW_MS " + ?, 'running', ?, " NOW_MS
                ", " NOW_MS ") ON CONFLICT (mint_id) DO UPDATE SET owner = excluded.owner, "
                "lease_until = excluded.lease_until, state = 'running', "
                "record = excluded.record, error = NULL, error_code = NULL, "
                "updated_at = excluded.updated_at",
                v, G_N_ELEMENTS(v), "claiming a session", error) < 0) {
            rollback(store);
            return NULL;
        }
    }
    return commit_with_lease(store, mint_id, error);
}

hv_store_lease *
hv_store_lease_get(hv_store *store, const char *mint_id, GError **error)
{
    if (!require_shared(store, error)) {
        return NULL;
    }
    return lease_of(store, mint_id, error);
}

GPtrArray *
hv_store_leases(hv_store *store, const char *owner, GError **error)
{
    if (!require_shared(store, error)) {
        return NULL;
    }
    if (owner == NULL) {
        return select_leases(store, LEASE_SELECT " ORDER BY l.mint_id", NULL, 0, error);
    }
    const hv_store_value v[] = {TXT(owner)};
    return select_leases(store, LEASE_SELECT " WHERE l.owner = ? ORDER BY l.mint_id", v, 1, error);
}

bool
hv_store_lease_update(hv_store *store, const char *mint_id, const char *owner, const char *state,
                      const char *report, int64_t recording_id, int error_code,
                      const char *error_text, GError **error)
{
    if (!require_shared(store, error)) {
        return false;
    }
    /* NULLIF: 0 is "none" for both numbers. */
    const hv_store_value v[] = {TXT(state),      TXT(report),  INT(recording_id), INT(error_code),
                                TXT(error_text), TXT(mint_id), TXT(owner)};
    return run(store,
               "UPDATE session_leases SET state = ?, report = ?, recording_id = NULLIF(?, 0), "
               "error_code = NULLIF(?, 0), error = ?, updated_at = " NOW_MS
               " WHERE mint_id = ? AND owner = ?",
               v, G_N_ELEMENTS(v), "updating a session lease", error) >= 0;
}

bool
hv_store_lease_set_record(hv_store *store, const char *mint_id, bool record, GError **error)
{
    if (!require_shared(store, error)) {
        return false;
    }
    const hv_store_value v[] = {INT(record), TXT(mint_id)};
    return run(store, "UPDATE session_leases SET record = ? WHERE mint_id = ?", v, 2,
               "setting a lease's recording", error) >= 0;
}

bool
hv_store_lease_release(hv_store *store, const char *mint_id, const char *owner, GError **error)
{
    if (!require_shared(store, error)) {
        return false;
    }
    const hv_store_value v[] = {TXT(mint_id), TXT(owner)};
    int64_t n = owner != NULL ? run(store,
                                    "DELETE FROM session_leases WHERE mint_id = ? AND "
                                    "owner = ?",
                                    v, 2, "releasing a session lease", error)
                              : run(store, "DELETE FROM session_leases WHERE mint_id = ?", v, 1,
                                    "releasing a session lease", error);
    return n > 0;
}

int64_t
hv_store_leases_take_over(hv_store *store, int64_t node_max_age_ms, int64_t lease_ms,
                          GError **error)
{
    if (!require_shared(store, error) || !begin(store, true, error)) {
        return -1;
    }
    /* Rows another node is taking over right now are locked: skip them, never wait. */
    g_autoptr(GPtrArray) dead = select_leases(
        store,
        LEASE_SELECT " WHERE l.lease_until < " NOW_MS
                     " AND l.state <> 'failed' ORDER BY l.mint_id FOR UPDATE OF l SKIP LOCKED",
        NULL, 0, error);
    g_autoptr(GPtrArray) nodes =
        dead != NULL && dead->len > 0 ? hv_store_live_nodes(store, node_max_age_ms, error) : NULL;
    if (dead == NULL || (dead->len > 0 && nodes == NULL)) {
        rollback(store);
        return -1;
    }
    int64_t taken = 0;
    for (guint i = 0; nodes != NULL && nodes->len > 0 && i < dead->len; i++) {
        const hv_store_lease *l = g_ptr_array_index(dead, i);
        hv_store_node *to = least_loaded(nodes);
        const hv_store_value gone[] = {TXT(l->mint_id), TXT(l->owner)};
        if (!assign(store, l->mint_id, to, l->record, lease_ms, error) ||
            run(store,
                "UPDATE live_sessions SET status = 'interrupted', end_time = " NOW_MS
                ", updated_at = " NOW_MS ", error = 'its haven node stopped; another node "
                "took the session over' WHERE mint_id = ? AND node_id = ? "
                "AND status IN ('active', 'reconnecting')",
                gone, 2, "ending a lost node's session", error) < 0) {
            rollback(store);
            return -1;
        }
        to->leases++;
        taken++;
    }
    return commit(store, error) ? taken : -1;
}

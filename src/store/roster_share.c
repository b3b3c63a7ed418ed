/* The shared pump.fun roster: several havens on one PostgreSQL database fetch the roster once
 * per TTL between them, not once each (docs/internals/pumpfun.md, "The shared roster").
 *
 * One row (roster_share, id = 1, made by migration 003) holds the last roster fetched (a JSON
 * array of pump.fun coin objects), when and by whom, and a fetch lease: which node has the
 * right to fetch the next one, until when. A claim reads the row under a row lock (SELECT ...
 * FOR UPDATE) and, in the same transaction, takes the lease when the roster is too old and no
 * other node holds an unexpired lease; so of N nodes asking at once, one fetches and the
 * others wait for its publish. Every time is the database's clock, in ms, so the nodes' own
 * clocks never have to agree. PostgreSQL only: on SQLite there is one node and nothing to
 * share.
 *
 * Publishing always stores the body, even when the lease expired and another node took it
 * over meanwhile: the data is fresh either way. It ends the lease only when node_id holds it
 * (or it has expired), so a node that took over keeps its lease until it publishes in turn.
 */
#include "store-private.h"

#include "core/error.h"

/* The database clock in ms. */
#define NOW_MS "(extract(epoch from clock_timestamp()) * 1000)::bigint"

static bool
require_pg(hv_store *store, const char *node_id, GError **error)
{
    if (hv_store_conn_kind(hv_store_db(store)) != HV_STORE_PG) {
        g_set_error(error, HV_ERROR, HV_EINVAL,
                    "sharing the pump.fun roster between nodes needs PostgreSQL");
        return false;
    }
    if (node_id == NULL || node_id[0] == '\0') {
        g_set_error(error, HV_ERROR, HV_EINVAL, "sharing the pump.fun roster needs a node id");
        return false;
    }
    return true;
}

/* The claim's decision, once the row is read (under its lock). */
static hv_store_roster_state
decide_claim(bool have_body, int64_t fetched_at, const char *lease_owner, int64_t lease_until,
             int64_t now, const char *node_id, int64_t ttl_ms)
{
    if (have_body && now - fetched_at < ttl_ms) {
        return HV_STORE_ROSTER_FRESH;
    }
    if (lease_until > now && lease_owner != NULL && g_strcmp0(lease_owner, node_id) != 0) {
        return HV_STORE_ROSTER_BUSY;
    }
    return HV_STORE_ROSTER_FETCH;
}

/* Takes the lease for node_id until `until` (inside the claim's transaction). */
static bool
take_lease(hv_store_conn *conn, const char *node_id, int64_t until, GError **error)
{
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(
        conn, "UPDATE roster_share SET lease_owner = ?, lease_until = ? WHERE id = 1", false,
        &cause);
    if (st != NULL) {
        hv_store_stmt_bind_text(st, 1, node_id);
        hv_store_stmt_bind_int64(st, 2, until);
        if (hv_store_stmt_run(st, &cause)) {
            return true;
        }
    }
    return hv_store_fail(error, cause, "taking the roster fetch lease");
}

int
hv_store_roster_claim(hv_store *store, const char *node_id, int64_t ttl_ms, int64_t lease_ms,
                      char **body_out, int64_t *fetched_at_ms_out, GError **error)
{
    *body_out = NULL;
    *fetched_at_ms_out = 0;
    if (!require_pg(store, node_id, error)) {
        return -1;
    }
    if (lease_ms <= 0) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "the roster fetch lease must be positive");
        return -1;
    }
    hv_store_conn *conn = hv_store_db(store);
    if (!hv_store_conn_begin(conn, error)) {
        return -1;
    }
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st =
        hv_store_stmt_new(conn,
                          "SELECT body, fetched_at, lease_owner, lease_until, " NOW_MS
                          " FROM roster_share WHERE id = 1 FOR UPDATE",
                          false, &cause);
    int rc = st != NULL ? hv_store_stmt_step(st, &cause) : -1;
    if (rc != HV_STORE_ROW) {
        hv_store_conn_rollback(conn);
        if (rc == HV_STORE_DONE) {
            g_set_error(error, HV_ERROR, HV_EIO,
                        "reading the shared roster: roster_share is empty");
            return -1;
        }
        hv_store_fail(error, cause, "reading the shared roster");
        return -1;
    }
    bool have_body = !hv_store_stmt_column_is_null(st, 0);
    int64_t fetched_at = hv_store_stmt_column_int64(st, 1);
    g_autofree char *lease_owner = g_strdup(hv_store_stmt_column_text(st, 2));
    int64_t lease_until = hv_store_stmt_column_int64(st, 3);
    int64_t now = hv_store_stmt_column_int64(st, 4);
    hv_store_roster_state claim =
        decide_claim(have_body, fetched_at, lease_owner, lease_until, now, node_id, ttl_ms);
    g_autofree char *body = have_body ? g_strdup(hv_store_stmt_column_text(st, 0)) : NULL;
    g_clear_pointer(&st, hv_store_stmt_free);

    if (claim == HV_STORE_ROSTER_FETCH && !take_lease(conn, node_id, now + lease_ms, error)) {
        hv_store_conn_rollback(conn);
        return -1;
    }
    if (!hv_store_conn_commit(conn, error)) {
        hv_store_conn_rollback(conn);
        return -1;
    }
    if (claim != HV_STORE_ROSTER_FETCH && body != NULL) {
        *body_out = g_steal_pointer(&body);
        *fetched_at_ms_out = fetched_at;
    }
    return (int)claim;
}

bool
hv_store_roster_publish(hv_store *store, const char *node_id, const char *body, GError **error)
{
    if (!require_pg(store, node_id, error)) {
        return false;
    }
    if (body == NULL) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "publishing the shared roster: no body");
        return false;
    }
    /* One statement, so one transaction. Every right-hand side reads the row as it was. */
    static const char sql[] =
        "UPDATE roster_share SET body = ?1, fetched_at = " NOW_MS ", fetched_by = ?2, "
        "lease_owner = CASE WHEN lease_owner = ?2 OR lease_until <= " NOW_MS
        " THEN NULL ELSE lease_owner END, "
        "lease_until = CASE WHEN lease_owner = ?2 OR lease_until <= " NOW_MS
        " THEN 0 ELSE lease_until END WHERE id = 1";
    hv_store_conn *conn = hv_store_db(store);
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(conn, sql, false, &cause);
    if (st == NULL) {
        return hv_store_fail(error, cause, "preparing the shared roster update");
    }
    hv_store_stmt_bind_text(st, 1, body);
    hv_store_stmt_bind_text(st, 2, node_id);
    if (!hv_store_stmt_run(st, &cause)) {
        return hv_store_fail(error, cause, "publishing the shared roster");
    }
    if (hv_store_conn_changes(conn) != 1) {
        g_set_error(error, HV_ERROR, HV_EIO, "publishing the shared roster: roster_share is empty");
        return false;
    }
    return true;
}

bool
hv_store_roster_release(hv_store *store, const char *node_id, GError **error)
{
    if (!require_pg(store, node_id, error)) {
        return false;
    }
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(
        hv_store_db(store),
        "UPDATE roster_share SET lease_owner = NULL, lease_until = 0 WHERE id = 1 AND "
        "lease_owner = ?",
        false, &cause);
    if (st != NULL) {
        hv_store_stmt_bind_text(st, 1, node_id);
        if (hv_store_stmt_run(st, &cause)) {
            return true;
        }
    }
    return hv_store_fail(error, cause, "releasing the roster fetch lease");
}

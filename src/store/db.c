/* The store on either engine (engine.h): open and migrate, and the statements for coins,
 * snapshots, health and live sessions. Main thread only. The two statements a roster refresh
 * runs per coin are kept for the life of the store; every write path runs in one transaction
 * so a refresh of a thousand coins costs one fsync at most.
 */
#include "store-private.h"

#include "core/error.h"
#include "core/util.h"

#include <string.h>

struct hv_store {
    hv_store_conn *conn;
    hv_store_stmt *upsert_coin;
    hv_store_stmt *insert_snapshot;
    char *node_id; /* nullable: one node */
};

typedef enum { COL_TEXT, COL_INT, COL_REAL, COL_BOOL } col_type;

/* pumpfun_coins columns filled from pump.fun's coin object (column = JSON key unless noted). */
static const struct {
    const char *column;
    const char *key;
    col_type type;
} coin_columns[] = {
    {"mint_id", "mint", COL_TEXT},
    {"name", "name", COL_TEXT},
    {"symbol", "symbol", COL_TEXT},
    {"description", "description", COL_TEXT},
    {"image_uri", "image_uri", COL_TEXT},
    {"metadata_uri", "metadata_uri", COL_TEXT},
    {"banner_uri", "banner_uri", COL_TEXT},
    {"thumbnail", "thumbnail", COL_TEXT},
    {"video_uri", "video_uri", COL_TEXT},
    {"website", "website", COL_TEXT},
    {"twitter", "twitter", COL_TEXT},
    {"telegram", "telegram", COL_TEXT},
    {"creator", "creator", COL_TEXT},
    {"bonding_curve", "bonding_curve", COL_TEXT},
    {"associated_bonding_curve", "associated_bonding_curve", COL_TEXT},
    {"raydium_pool", "raydium_pool", COL_TEXT},
    {"pump_swap_pool", "pump_swap_pool", COL_TEXT},
    {"market_id", "market_id", COL_TEXT},
    {"program", "program", COL_TEXT},
    {"platform", "platform", COL_TEXT},
    {"token_program", "token_program", COL_TEXT},
    {"market_cap", "market_cap", COL_REAL},
    {"usd_market_cap", "usd_market_cap", COL_REAL},
    {"ath_market_cap", "ath_market_cap", COL_REAL},
    {"ath_market_cap_timestamp", "ath_market_cap_timestamp", COL_INT},
    {"virtual_sol_reserves", "virtual_sol_reserves", COL_INT},
    {"virtual_token_reserves", "virtual_token_reserves", COL_INT},
    {"real_sol_reserves", "real_sol_reserves", COL_INT},
    {"real_token_reserves", "real_token_reserves", COL_INT},
    {"total_supply", "total_supply", COL_INT},
    {"complete", "complete", COL_BOOL},
    {"hidden", "hidden", COL_BOOL},
    {"nsfw", "nsfw", COL_BOOL},
    {"is_banned", "is_banned", COL_BOOL},
    {"show_name", "show_name", COL_BOOL},
    {"hide_banner", "hide_banner", COL_BOOL},
    {"inverted", "inverted", COL_BOOL},
    {"initialized", "initialized", COL_BOOL},
    {"is_currently_live", "is_currently_live", COL_BOOL},
    {"num_participants", "num_participants", COL_INT},
    {"livestream_title", "livestream_title", COL_TEXT},
    {"livestream_ban_expiry", "livestream_ban_expiry", COL_INT},
    {"livestream_downrank_score", "livestream_downrank_score", COL_INT},
    {"downrank_score", "downrank_score", COL_INT},
    {"reply_count", "reply_count", COL_INT},
    {"last_reply", "last_reply", COL_INT},
    {"created_timestamp", "created_timestamp", COL_INT},
    {"last_trade_timestamp", "last_trade_timestamp", COL_INT},
    {"king_of_the_hill_timestamp", "king_of_the_hill_timestamp", COL_INT},
    {"thumbnail_updated_at", "thumbnail_updated_at", COL_INT},
    {"updated_at", "updated_at", COL_INT},
    {"username", "username", COL_TEXT},
    {"profile_image", "profile_image", COL_TEXT},
};
#define N_COIN_COLUMNS G_N_ELEMENTS(coin_columns)

bool
hv_store_fail(GError **error, GError *cause, const char *what)
{
    if (cause != NULL) {
        g_propagate_prefixed_error(error, cause, "%s: ", what);
    } else {
        g_set_error(error, HV_ERROR, HV_EIO, "%s: unknown error", what);
    }
    return false;
}

static bool
prepare_statements(hv_store *store, GError **error)
{
    g_autoptr(GString) sql = g_string_new("INSERT INTO pumpfun_coins (");
    for (size_t i = 0; i < N_COIN_COLUMNS; i++) {
        g_string_append_printf(sql, "%s, ", coin_columns[i].column);
    }
    g_string_append(sql, "raw_json, first_seen, last_updated) VALUES (");
    for (size_t i = 0; i < N_COIN_COLUMNS + 3; i++) {
        g_string_append(sql, i == 0 ? "?" : ", ?");
    }
    g_string_append(sql, ") ON CONFLICT(mint_id) DO UPDATE SET ");
    for (size_t i = 1; i < N_COIN_COLUMNS; i++) {
        g_string_append_printf(sql, "%s = excluded.%s, ", coin_columns[i].column,
                               coin_columns[i].column);
    }
    g_string_append(sql, "raw_json = excluded.raw_json, last_updated = excluded.last_updated");
    GError *cause = NULL;
    store->upsert_coin = hv_store_stmt_new(store->conn, sql->str, true, &cause);
    if (store->upsert_coin == NULL) {
        return hv_store_fail(error, cause, "preparing the coin upsert");
    }
    /* ?1 mint, ?2 now, ?3 participants, ?4 market cap, ?5 usd market cap, ?6 interval. The
     * casts give PostgreSQL the parameters' types, which a SELECT list does not. */
    static const char snapshot_sql[] =
        "INSERT INTO coin_snapshots (mint_id, taken_at, num_participants, market_cap, "
        "usd_market_cap) SELECT CAST(?1 AS TEXT), CAST(?2 AS BIGINT), CAST(?3 AS BIGINT), "
        "CAST(?4 AS DOUBLE PRECISION), CAST(?5 AS DOUBLE PRECISION) WHERE NOT EXISTS (SELECT 1 "
        "FROM coin_snapshots WHERE mint_id = CAST(?1 AS TEXT) AND taken_at > CAST(?2 AS BIGINT) "
        "- CAST(?6 AS BIGINT))";
    store->insert_snapshot = hv_store_stmt_new(store->conn, snapshot_sql, true, &cause);
    if (store->insert_snapshot == NULL) {
        return hv_store_fail(error, cause, "preparing the snapshot insert");
    }
    return true;
}

hv_store *
hv_store_open(const char *path, GError **error)
{
    g_autoptr(hv_store) store = g_new0(hv_store, 1);
    store->conn = hv_store_conn_open(path, error);
    if (store->conn == NULL) {
        return NULL;
    }
    if (!hv_store_migrate(store->conn, error) || !prepare_statements(store, error)) {
        g_prefix_error(error, "database %s: ", hv_store_conn_display(store->conn));
        return NULL;
    }
    return g_steal_pointer(&store);
}

void
hv_store_close(hv_store *store)
{
    if (store == NULL) {
        return;
    }
    hv_store_stmt_free(store->upsert_coin);
    hv_store_stmt_free(store->insert_snapshot);
    hv_store_conn_close(store->conn);
    g_free(store->node_id);
    g_free(store);
}

hv_store_conn *
hv_store_db(hv_store *store)
{
    return store->conn;
}

bool
hv_store_is_shared(const hv_store *store)
{
    return hv_store_conn_kind(store->conn) == HV_STORE_PG;
}

void
hv_store_set_node_id(hv_store *store, const char *node_id)
{
    g_free(store->node_id);
    store->node_id = g_strdup(node_id);
}

const char *
hv_store_node_id(const hv_store *store)
{
    return store->node_id;
}

int
hv_store_schema_version(hv_store *store)
{
    return hv_store_conn_version(store->conn, NULL);
}

const char *
hv_store_path(const hv_store *store)
{
    return hv_store_conn_display(store->conn);
}

static void
bind_column(hv_store_stmt *st, int idx, json_t *v, col_type type)
{
    switch (type) {
    case COL_TEXT:
        if (json_is_string(v)) {
            hv_store_stmt_bind_text(st, idx, json_string_value(v));
            return;
        }
        break;
    case COL_INT:
        if (json_is_integer(v)) {
            hv_store_stmt_bind_int64(st, idx, (int64_t)json_integer_value(v));
            return;
        }
        if (json_is_real(v)) {
            hv_store_stmt_bind_int64(st, idx, hv_int64_from_double(json_real_value(v)));
            return;
        }
        break;
    case COL_REAL:
        if (json_is_number(v)) {
            hv_store_stmt_bind_double(st, idx, json_number_value(v));
            return;
        }
        break;
    case COL_BOOL:
        if (json_is_boolean(v)) {
            hv_store_stmt_bind_int64(st, idx, json_is_true(v) ? 1 : 0);
            return;
        }
        break;
    }
    hv_store_stmt_bind_null(st, idx);
}

/* The coin's mint: "mint" as pump.fun sends it, else "mint_id" (haven's own name). */
static json_t *
coin_mint(json_t *coin)
{
    json_t *m = json_object_get(coin, "mint");
    return json_is_string(m) ? m : json_object_get(coin, "mint_id");
}

static bool
upsert_one(hv_store *store, json_t *coin, int64_t now, int64_t snapshot_interval_ms, GError **error)
{
    hv_store_stmt *st = store->upsert_coin;
    hv_store_stmt_reset(st);
    for (size_t i = 0; i < N_COIN_COLUMNS; i++) {
        json_t *v = i == 0 ? coin_mint(coin) : json_object_get(coin, coin_columns[i].key);
        bind_column(st, (int)i + 1, v, coin_columns[i].type);
    }
    char *raw = json_dumps(coin, JSON_COMPACT);
    hv_store_stmt_bind_text(st, (int)N_COIN_COLUMNS + 1, raw != NULL ? raw : "{}");
    free(raw);
    hv_store_stmt_bind_int64(st, (int)N_COIN_COLUMNS + 2, now);
    hv_store_stmt_bind_int64(st, (int)N_COIN_COLUMNS + 3, now);
    GError *cause = NULL;
    if (!hv_store_stmt_run(st, &cause)) {
        return hv_store_fail(error, cause, "upserting a coin");
    }

    hv_store_stmt *sn = store->insert_snapshot;
    hv_store_stmt_reset(sn);
    bind_column(sn, 1, coin_mint(coin), COL_TEXT);
    hv_store_stmt_bind_int64(sn, 2, now);
    bind_column(sn, 3, json_object_get(coin, "num_participants"), COL_INT);
    bind_column(sn, 4, json_object_get(coin, "market_cap"), COL_REAL);
    bind_column(sn, 5, json_object_get(coin, "usd_market_cap"), COL_REAL);
    hv_store_stmt_bind_int64(sn, 6, snapshot_interval_ms);
    if (!hv_store_stmt_run(sn, &cause)) {
        return hv_store_fail(error, cause, "adding a coin snapshot");
    }
    return true;
}

bool
hv_store_upsert_coins(hv_store *store, json_t *const *coins, size_t n, int64_t now_wall_ms,
                      int64_t snapshot_interval_ms, GError **error)
{
    if (!hv_store_conn_begin(store->conn, error)) {
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        ok = upsert_one(store, coins[i], now_wall_ms, snapshot_interval_ms, error);
    }
    /* Reset before COMMIT or ROLLBACK: a SQLite statement still running would keep its
     * transaction open. */
    hv_store_stmt_reset(store->upsert_coin);
    hv_store_stmt_reset(store->insert_snapshot);
    if (!ok) {
        hv_store_conn_rollback(store->conn);
        return false;
    }
    return hv_store_conn_commit(store->conn, error);
}

/* Runs sql with the integers args bound to ?1.. and returns the rows it changed, or -1 + error
 * "what: ...". */
static int64_t
run_changes(hv_store *store, const char *sql, const int64_t *args, size_t n_args, const char *what,
            GError **error)
{
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(store->conn, sql, false, &cause);
    if (st != NULL) {
        for (size_t i = 0; i < n_args; i++) {
            hv_store_stmt_bind_int64(st, (int)i + 1, args[i]);
        }
        if (hv_store_stmt_run(st, &cause)) {
            return hv_store_conn_changes(store->conn);
        }
    }
    hv_store_fail(error, cause, what);
    return -1;
}

int64_t
hv_store_prune_snapshots(hv_store *store, int64_t now_wall_ms, int64_t retention_ms, GError **error)
{
    if (retention_ms <= 0) {
        return 0;
    }
    int64_t cutoff = now_wall_ms - retention_ms;
    return run_changes(store, "DELETE FROM coin_snapshots WHERE taken_at < ?", &cutoff, 1,
                       "pruning snapshots", error);
}

static json_t *
column_json_int(hv_store_stmt *st, int col)
{
    return hv_store_stmt_column_is_null(st, col)
               ? json_null()
               : json_integer(hv_store_stmt_column_int64(st, col));
}

static json_t *
column_json_real(hv_store_stmt *st, int col)
{
    return hv_store_stmt_column_is_null(st, col) ? json_null()
                                                 : json_real(hv_store_stmt_column_double(st, col));
}

json_t *
hv_store_coin_history(hv_store *store, const char *mint_id, int64_t since_wall_ms, int64_t limit,
                      GError **error)
{
    /* The newest `limit` points, returned oldest first. */
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st =
        hv_store_stmt_new(store->conn,
                          "SELECT taken_at, num_participants, market_cap, usd_market_cap FROM "
                          "(SELECT * FROM coin_snapshots WHERE mint_id = ? AND taken_at >= ? "
                          "ORDER BY taken_at DESC LIMIT ?) AS recent ORDER BY taken_at",
                          false, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "reading coin history");
        return NULL;
    }
    hv_store_stmt_bind_text(st, 1, mint_id);
    hv_store_stmt_bind_int64(st, 2, since_wall_ms);
    hv_store_stmt_bind_int64(st, 3, limit);
    json_t *points = json_array();
    int rc;
    while ((rc = hv_store_stmt_step(st, &cause)) == HV_STORE_ROW) {
        char t[40];
        hv_format_iso8601(hv_store_stmt_column_int64(st, 0), t, sizeof(t));
        json_t *p = json_pack("{s:s}", "t", t);
        json_object_set_new(p, "num_participants", column_json_int(st, 1));
        json_object_set_new(p, "market_cap", column_json_real(st, 2));
        json_object_set_new(p, "usd_market_cap", column_json_real(st, 3));
        json_array_append_new(points, p);
    }
    if (rc != HV_STORE_DONE) {
        json_decref(points);
        hv_store_fail(error, cause, "reading coin history");
        return NULL;
    }
    return points;
}

bool
hv_store_check_writable(hv_store *store, GError **error)
{
    if (!hv_store_conn_begin(store->conn, error)) {
        return false;
    }
    char now[24];
    g_snprintf(now, sizeof(now), "%" G_GINT64_FORMAT, g_get_real_time() / 1000);
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st =
        hv_store_stmt_new(store->conn,
                          "INSERT INTO meta (key, value) VALUES ('health_check', ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                          false, &cause);
    if (st != NULL) {
        hv_store_stmt_bind_text(st, 1, now);
    }
    if (st == NULL || !hv_store_stmt_run(st, &cause)) {
        g_clear_pointer(&st, hv_store_stmt_free);
        hv_store_conn_rollback(store->conn);
        return hv_store_fail(error, cause, "writing to the database");
    }
    g_clear_pointer(&st, hv_store_stmt_free);
    return hv_store_conn_commit(store->conn, error);
}

int64_t
hv_store_count(hv_store *store, const char *table)
{
    static const char *known[] = {"pumpfun_coins",  "coin_snapshots", "live_sessions",
                                  "meta",           "recordings",     "nodes",
                                  "session_leases", "roster_share"};
    bool ok = false;
    for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
        ok = ok || strcmp(table, known[i]) == 0;
    }
    if (!ok) {
        return -1;
    }
    g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM %s", table);
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(store->conn, sql, false, NULL);
    if (st == NULL || hv_store_stmt_step(st, NULL) != HV_STORE_ROW) {
        return -1;
    }
    return hv_store_stmt_column_int64(st, 0);
}

/* ---- live_sessions ------------------------------------------------------------------------ */

int64_t
hv_store_insert_live_session(hv_store *store, const hv_store_session_row *r, int64_t now,
                             GError **error)
{
    static const char sql[] =
        "INSERT INTO live_sessions (mint_id, coin_name, coin_symbol, coin_description, "
        "image_uri, thumbnail, creator, market_cap, usd_market_cap, num_participants, nsfw, "
        "website, twitter, telegram, room_name, participant_sid, status, record_session, "
        "start_time, created_at, updated_at, node_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?) RETURNING id";
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(store->conn, sql, false, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "preparing the live session insert");
        return -1;
    }
    const char *texts[] = {r->mint_id,   r->coin_name, r->coin_symbol, r->coin_description,
                           r->image_uri, r->thumbnail, r->creator};
    int i = 1;
    for (size_t k = 0; k < G_N_ELEMENTS(texts); k++) {
        hv_store_stmt_bind_text(st, i++, texts[k]);
    }
    hv_store_stmt_bind_double(st, i++, r->market_cap);
    hv_store_stmt_bind_double(st, i++, r->usd_market_cap);
    hv_store_stmt_bind_int64(st, i++, r->num_participants);
    hv_store_stmt_bind_int64(st, i++, r->nsfw ? 1 : 0);
    hv_store_stmt_bind_text(st, i++, r->website);
    hv_store_stmt_bind_text(st, i++, r->twitter);
    hv_store_stmt_bind_text(st, i++, r->telegram);
    hv_store_stmt_bind_text(st, i++, r->room_name);
    hv_store_stmt_bind_text(st, i++, r->participant_sid);
    hv_store_stmt_bind_int64(st, i++, r->record_session ? 1 : 0);
    hv_store_stmt_bind_int64(st, i++, now);
    hv_store_stmt_bind_int64(st, i++, now);
    hv_store_stmt_bind_int64(st, i++, now);
    hv_store_stmt_bind_text(st, i, store->node_id);
    if (hv_store_stmt_step(st, &cause) != HV_STORE_ROW) {
        hv_store_fail(error, cause, "inserting a live session");
        return -1;
    }
    return hv_store_stmt_column_int64(st, 0);
}

bool
hv_store_update_live_session(hv_store *store, int64_t id, const char *status,
                             const char *error_text, bool ended, int64_t now, GError **error)
{
    static const char sql[] = "UPDATE live_sessions SET status = ?, error = ?, updated_at = ?, "
                              "end_time = CASE WHEN ? <> 0 THEN ? ELSE end_time END WHERE id = ?";
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(store->conn, sql, false, &cause);
    if (st == NULL) {
        return hv_store_fail(error, cause, "preparing the live session update");
    }
    hv_store_stmt_bind_text(st, 1, status);
    hv_store_stmt_bind_text(st, 2, error_text);
    hv_store_stmt_bind_int64(st, 3, now);
    hv_store_stmt_bind_int64(st, 4, ended ? 1 : 0);
    hv_store_stmt_bind_int64(st, 5, now);
    hv_store_stmt_bind_int64(st, 6, id);
    if (!hv_store_stmt_run(st, &cause)) {
        return hv_store_fail(error, cause, "updating a live session");
    }
    return true;
}

int64_t
hv_store_recover_live_sessions(hv_store *store, int64_t now, GError **error)
{
    const int64_t args[] = {now, now};
    if (store->node_id == NULL) {
        return run_changes(store,
                           "UPDATE live_sessions SET status = 'interrupted', end_time = ?, "
                           "updated_at = ?, error = 'haven stopped without ending this session' "
                           "WHERE status IN ('active', 'reconnecting')",
                           args, G_N_ELEMENTS(args), "recovering live sessions", error);
    }
    /* Several nodes: the other nodes' sessions are running; only this node's are its own. */
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(
        store->conn,
        "UPDATE live_sessions SET status = 'interrupted', end_time = ?, updated_at = ?, "
        "error = 'haven stopped without ending this session' "
        "WHERE status IN ('active', 'reconnecting') AND (node_id = ? OR node_id IS NULL)",
        false, &cause);
    if (st != NULL) {
        hv_store_stmt_bind_int64(st, 1, now);
        hv_store_stmt_bind_int64(st, 2, now);
        hv_store_stmt_bind_text(st, 3, store->node_id);
        if (hv_store_stmt_run(st, &cause)) {
            return hv_store_conn_changes(store->conn);
        }
    }
    hv_store_fail(error, cause, "recovering live sessions");
    return -1;
}

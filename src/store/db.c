/* SQLite access: open with WAL and sane pragmas, migrate, and the few statements haven needs.
 * Main thread only. Prepared statements are kept for the life of the store; every write path
 * runs in one transaction so a refresh of a thousand coins costs one fsync at most.
 */
#include "store-private.h"

#include "core/error.h"
#include "core/util.h"

#include <string.h>

struct hv_store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *upsert_coin;
    sqlite3_stmt *insert_snapshot;
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

static bool
fail(GError **error, sqlite3 *db, const char *what)
{
    g_set_error(error, HV_ERROR, HV_EIO, "%s: %s", what, db != NULL ? sqlite3_errmsg(db) : "?");
    return false;
}

static bool
exec(sqlite3 *db, const char *sql, GError **error)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, HV_ERROR, HV_EIO, "%s", msg != NULL ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return false;
    }
    return true;
}

static int
user_version(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    return v;
}

int
hv_store_latest_version(void)
{
    return hv_store_migrations[hv_store_n_migrations - 1].version;
}

static bool
migrate(sqlite3 *db, GError **error)
{
    int current = user_version(db);
    int latest = hv_store_latest_version();
    if (current < 0) {
        return fail(error, db, "cannot read the schema version");
    }
    if (current > latest) {
        g_set_error(error, HV_ERROR, HV_EINVAL,
                    "database schema version %d is newer than this haven understands (%d); "
                    "use a newer haven or another HAVEN_DB",
                    current, latest);
        return false;
    }
    for (size_t i = 0; i < hv_store_n_migrations; i++) {
        const hv_store_migration *m = &hv_store_migrations[i];
        if (m->version <= current) {
            continue;
        }
        g_autofree char *set_version = g_strdup_printf("PRAGMA user_version = %d", m->version);
        if (!exec(db, "BEGIN IMMEDIATE", error)) {
            return false;
        }
        if (!exec(db, m->sql, error) || !exec(db, set_version, error)) {
            g_prefix_error(error, "migration %03d (%s) failed: ", m->version, m->name);
            (void)exec(db, "ROLLBACK", NULL);
            return false;
        }
        if (!exec(db, "COMMIT", error)) {
            return false;
        }
        g_info("database migrated to version %d (%s)", m->version, m->name);
    }
    return true;
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
    if (sqlite3_prepare_v3(store->db, sql->str, -1, SQLITE_PREPARE_PERSISTENT, &store->upsert_coin,
                           NULL) != SQLITE_OK) {
        return fail(error, store->db, "preparing the coin upsert");
    }
    /* ?1 mint, ?2 now, ?3 participants, ?4 market cap, ?5 usd market cap, ?6 interval */
    static const char snapshot_sql[] =
        "INSERT INTO coin_snapshots (mint_id, taken_at, num_participants, market_cap, "
        "usd_market_cap) SELECT ?1, ?2, ?3, ?4, ?5 WHERE NOT EXISTS (SELECT 1 FROM "
        "coin_snapshots WHERE mint_id = ?1 AND taken_at > ?2 - ?6)";
    if (sqlite3_prepare_v3(store->db, snapshot_sql, -1, SQLITE_PREPARE_PERSISTENT,
                           &store->insert_snapshot, NULL) != SQLITE_OK) {
        return fail(error, store->db, "preparing the snapshot insert");
    }
    return true;
}

hv_store *
hv_store_open(const char *path, GError **error)
{
    g_autoptr(hv_store) store = g_new0(hv_store, 1);
    store->path = g_strdup(path);
    int rc = sqlite3_open_v2(
        path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot open database %s: %s", path,
                    store->db != NULL ? sqlite3_errmsg(store->db) : sqlite3_errstr(rc));
        return NULL;
    }
    sqlite3_busy_timeout(store->db, 5000);
    sqlite3_extended_result_codes(store->db, 1);
    /* WAL: readers never block the writer, and a crash loses at most the last transaction.
     * synchronous=NORMAL is durable across application crashes in WAL mode. */
    if (!exec(store->db,
              "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
              "PRAGMA foreign_keys = ON;",
              error)) {
        g_prefix_error(error, "cannot use database %s: ", path);
        return NULL;
    }
    if (!migrate(store->db, error) || !prepare_statements(store, error)) {
        g_prefix_error(error, "database %s: ", path);
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
    sqlite3_finalize(store->upsert_coin);
    sqlite3_finalize(store->insert_snapshot);
    if (store->db != NULL && sqlite3_close(store->db) != SQLITE_OK) {
        g_warning("closing database %s: %s", store->path, sqlite3_errmsg(store->db));
    }
    g_free(store->path);
    g_free(store);
}

sqlite3 *
hv_store_db(hv_store *store)
{
    return store->db;
}

int
hv_store_schema_version(hv_store *store)
{
    return user_version(store->db);
}

const char *
hv_store_path(const hv_store *store)
{
    return store->path;
}

static void
bind_column(sqlite3_stmt *st, int idx, json_t *v, col_type type)
{
    switch (type) {
    case COL_TEXT:
        if (json_is_string(v)) {
            sqlite3_bind_text(st, idx, json_string_value(v), (int)json_string_length(v),
                              SQLITE_TRANSIENT);
            return;
        }
        break;
    case COL_INT:
        if (json_is_integer(v)) {
            sqlite3_bind_int64(st, idx, (sqlite3_int64)json_integer_value(v));
            return;
        }
        if (json_is_real(v)) {
            sqlite3_bind_int64(st, idx, (sqlite3_int64)json_real_value(v));
            return;
        }
        break;
    case COL_REAL:
        if (json_is_number(v)) {
            sqlite3_bind_double(st, idx, json_number_value(v));
            return;
        }
        break;
    case COL_BOOL:
        if (json_is_boolean(v)) {
            sqlite3_bind_int(st, idx, json_is_true(v) ? 1 : 0);
            return;
        }
        break;
    }
    sqlite3_bind_null(st, idx);
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
    sqlite3_stmt *st = store->upsert_coin;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    for (size_t i = 0; i < N_COIN_COLUMNS; i++) {
        json_t *v = i == 0 ? coin_mint(coin) : json_object_get(coin, coin_columns[i].key);
        bind_column(st, (int)i + 1, v, coin_columns[i].type);
    }
    char *raw = json_dumps(coin, JSON_COMPACT);
    sqlite3_bind_text(st, (int)N_COIN_COLUMNS + 1, raw != NULL ? raw : "{}", -1, SQLITE_TRANSIENT);
    free(raw);
    sqlite3_bind_int64(st, (int)N_COIN_COLUMNS + 2, now);
    sqlite3_bind_int64(st, (int)N_COIN_COLUMNS + 3, now);
    if (sqlite3_step(st) != SQLITE_DONE) {
        return fail(error, store->db, "upserting a coin");
    }

    sqlite3_stmt *sn = store->insert_snapshot;
    sqlite3_reset(sn);
    sqlite3_clear_bindings(sn);
    bind_column(sn, 1, coin_mint(coin), COL_TEXT);
    sqlite3_bind_int64(sn, 2, now);
    bind_column(sn, 3, json_object_get(coin, "num_participants"), COL_INT);
    bind_column(sn, 4, json_object_get(coin, "market_cap"), COL_REAL);
    bind_column(sn, 5, json_object_get(coin, "usd_market_cap"), COL_REAL);
    sqlite3_bind_int64(sn, 6, snapshot_interval_ms);
    if (sqlite3_step(sn) != SQLITE_DONE) {
        return fail(error, store->db, "adding a coin snapshot");
    }
    return true;
}

bool
hv_store_upsert_coins(hv_store *store, json_t *const *coins, size_t n, int64_t now_wall_ms,
                      int64_t snapshot_interval_ms, GError **error)
{
    if (!exec(store->db, "BEGIN IMMEDIATE", error)) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (!upsert_one(store, coins[i], now_wall_ms, snapshot_interval_ms, error)) {
            sqlite3_reset(store->upsert_coin);
            sqlite3_reset(store->insert_snapshot);
            (void)exec(store->db, "ROLLBACK", NULL);
            return false;
        }
    }
    sqlite3_reset(store->upsert_coin);
    sqlite3_reset(store->insert_snapshot);
    return exec(store->db, "COMMIT", error);
}

int64_t
hv_store_prune_snapshots(hv_store *store, int64_t now_wall_ms, int64_t retention_ms, GError **error)
{
    if (retention_ms <= 0) {
        return 0;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, "DELETE FROM coin_snapshots WHERE taken_at < ?", -1, &st,
                           NULL) != SQLITE_OK) {
        fail(error, store->db, "pruning snapshots");
        return -1;
    }
    sqlite3_bind_int64(st, 1, now_wall_ms - retention_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fail(error, store->db, "pruning snapshots");
        return -1;
    }
    return sqlite3_changes64(store->db);
}

json_t *
hv_store_coin_history(hv_store *store, const char *mint_id, int64_t since_wall_ms, int64_t limit,
                      GError **error)
{
    /* The newest `limit` points, returned oldest first. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db,
                           "SELECT taken_at, num_participants, market_cap, usd_market_cap FROM "
                           "(SELECT * FROM coin_snapshots WHERE mint_id = ? AND taken_at >= ? "
                           "ORDER BY taken_at DESC LIMIT ?) ORDER BY taken_at",
                           -1, &st, NULL) != SQLITE_OK) {
        fail(error, store->db, "reading coin history");
        return NULL;
    }
    sqlite3_bind_text(st, 1, mint_id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 2, since_wall_ms);
    sqlite3_bind_int64(st, 3, limit);
    json_t *points = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char t[40];
        hv_format_iso8601(sqlite3_column_int64(st, 0), t, sizeof(t));
        json_t *p = json_pack("{s:s}", "t", t);
        json_object_set_new(p, "num_participants",
                            sqlite3_column_type(st, 1) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int64(st, 1)));
        json_object_set_new(p, "market_cap",
                            sqlite3_column_type(st, 2) == SQLITE_NULL
                                ? json_null()
                                : json_real(sqlite3_column_double(st, 2)));
        json_object_set_new(p, "usd_market_cap",
                            sqlite3_column_type(st, 3) == SQLITE_NULL
                                ? json_null()
                                : json_real(sqlite3_column_double(st, 3)));
        json_array_append_new(points, p);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(points);
        fail(error, store->db, "reading coin history");
        return NULL;
    }
    return points;
}

bool
hv_store_check_writable(hv_store *store, GError **error)
{
    g_autofree char *sql = g_strdup_printf(
        "BEGIN IMMEDIATE; INSERT INTO meta (key, value) VALUES ('health_check', '%" G_GINT64_FORMAT
        "') ON CONFLICT(key) DO UPDATE SET value = excluded.value; COMMIT;",
        g_get_real_time() / 1000);
    if (!exec(store->db, sql, error)) {
        (void)exec(store->db, "ROLLBACK", NULL);
        return false;
    }
    return true;
}

int64_t
hv_store_count(hv_store *store, const char *table)
{
    static const char *known[] = {"pumpfun_coins", "coin_snapshots", "live_sessions", "meta",
                                  "recordings"};
    bool ok = false;
    for (size_t i = 0; i < G_N_ELEMENTS(known); i++) {
        ok = ok || strcmp(table, known[i]) == 0;
    }
    if (!ok) {
        return -1;
    }
    g_autofree char *sql = g_strdup_printf("SELECT count(*) FROM %s", table);
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    return n;
}

/* ---- live_sessions ------------------------------------------------------------------------ */

static void
bind_text_or_null(sqlite3_stmt *st, int idx, const char *s)
{
    if (s != NULL) {
        sqlite3_bind_text(st, idx, s, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_null(st, idx);
    }
}

int64_t
hv_store_insert_live_session(hv_store *store, const hv_store_session_row *r, int64_t now,
                             GError **error)
{
    static const char sql[] =
        "INSERT INTO live_sessions (mint_id, coin_name, coin_symbol, coin_description, "
        "image_uri, thumbnail, creator, market_cap, usd_market_cap, num_participants, nsfw, "
        "website, twitter, telegram, room_name, participant_sid, status, record_session, "
        "start_time, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, ?, 'active', ?, ?, ?, ?)";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(error, store->db, "preparing the live session insert");
        return -1;
    }
    const char *texts[] = {r->mint_id,   r->coin_name, r->coin_symbol, r->coin_description,
                           r->image_uri, r->thumbnail, r->creator};
    int i = 1;
    for (size_t k = 0; k < G_N_ELEMENTS(texts); k++) {
        bind_text_or_null(st, i++, texts[k]);
    }
    sqlite3_bind_double(st, i++, r->market_cap);
    sqlite3_bind_double(st, i++, r->usd_market_cap);
    sqlite3_bind_int64(st, i++, r->num_participants);
    sqlite3_bind_int(st, i++, r->nsfw ? 1 : 0);
    bind_text_or_null(st, i++, r->website);
    bind_text_or_null(st, i++, r->twitter);
    bind_text_or_null(st, i++, r->telegram);
    bind_text_or_null(st, i++, r->room_name);
    bind_text_or_null(st, i++, r->participant_sid);
    sqlite3_bind_int(st, i++, r->record_session ? 1 : 0);
    sqlite3_bind_int64(st, i++, now);
    sqlite3_bind_int64(st, i++, now);
    sqlite3_bind_int64(st, i++, now);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fail(error, store->db, "inserting a live session");
        return -1;
    }
    return sqlite3_last_insert_rowid(store->db);
}

bool
hv_store_update_live_session(hv_store *store, int64_t id, const char *status,
                             const char *error_text, bool ended, int64_t now, GError **error)
{
    static const char sql[] = "UPDATE live_sessions SET status = ?, error = ?, updated_at = ?, "
                              "end_time = CASE WHEN ? THEN ? ELSE end_time END WHERE id = ?";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(store->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return fail(error, store->db, "preparing the live session update");
    }
    sqlite3_bind_text(st, 1, status, -1, SQLITE_TRANSIENT);
    bind_text_or_null(st, 2, error_text);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int(st, 4, ended ? 1 : 0);
    sqlite3_bind_int64(st, 5, now);
    sqlite3_bind_int64(st, 6, id);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return fail(error, store->db, "updating a live session");
    }
    return true;
}

int64_t
hv_store_recover_live_sessions(hv_store *store, int64_t now, GError **error)
{
    g_autofree char *sql = g_strdup_printf(
        "UPDATE live_sessions SET status = 'interrupted', end_time = %" G_GINT64_FORMAT
        ", updated_at = %" G_GINT64_FORMAT ", error = 'haven stopped without ending this session' "
        "WHERE status IN ('active', 'reconnecting')",
        now, now);
    if (!exec(store->db, sql, error)) {
        return -1;
    }
    return sqlite3_changes64(store->db);
}

/* Unit tests for the store module on SQLite: migrations and schema (":memory:" and a file in a
 * temporary directory: WAL, reopen, refusing a newer schema), coin upserts from the
 * currently-live fixture, snapshot spacing and pruning, the health helpers, and recordings
 * (insert/get/update/list/count/delete, and migrating a version-1 database).
 */
#include "../common/fixture.h"
#include "store/store-private.h"

#include "core/error.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <jansson.h>
#include <sqlite3.h>
#include <string.h>

#define T0           1795532400000LL /* 2026-11-24T15:00:00Z */
#define MINT_OTTER   "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump"
#define MINT_NOODLE  "4odAMtm92RnFU3V3kLb9ZdJSUsraFCas1vx9CxVxpump"
#define N_FIXTURE    12
#define OTTER_VTOKEN 279900000000000LL

/* ---- helpers ---------------------------------------------------------------------------- */

static json_t *
load_fixture_rows(void)
{
    g_autofree char *path = hv_test_data_path("pumpfun/currently-live.json");
    json_error_t jerr;
    json_t *rows = json_load_file(path, 0, &jerr);
    if (rows == NULL) {
        g_error("cannot load %s: %s", path, jerr.text);
    }
    g_assert_true(json_is_array(rows));
    g_assert_cmpuint(json_array_size(rows), ==, N_FIXTURE);
    return rows;
}

/* Upserts every element of a JSON array. */
static void
upsert_rows(hv_store *store, json_t *rows, int64_t now, int64_t interval_ms)
{
    size_t n = json_array_size(rows);
    g_autofree json_t **coins = g_new0(json_t *, n + 1);
    for (size_t i = 0; i < n; i++) {
        coins[i] = json_array_get(rows, i);
    }
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_store_upsert_coins(store, coins, n, now, interval_ms, &error));
    g_assert_no_error(error);
}

static hv_store *
open_memory(void)
{
    g_autoptr(GError) error = NULL;
    hv_store *store = hv_store_open(":memory:", &error);
    g_assert_no_error(error);
    g_assert_nonnull(store);
    return store;
}

/* Runs a query returning one integer (SQLITE_NULL → -999). */
static int64_t
query_int(hv_store *store, const char *sql, const char *text_arg)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(hv_store_db(store), sql, -1, &st, NULL) != SQLITE_OK) {
        g_error("prepare %s: %s", sql, sqlite3_errmsg(hv_store_db(store)));
    }
    if (text_arg != NULL) {
        sqlite3_bind_text(st, 1, text_arg, -1, SQLITE_TRANSIENT);
    }
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    int64_t v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -999 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Runs a query returning one text value (NULL when SQL NULL). */
static char *
query_text(hv_store *store, const char *sql, const char *text_arg)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(hv_store_db(store), sql, -1, &st, NULL) != SQLITE_OK) {
        g_error("prepare %s: %s", sql, sqlite3_errmsg(hv_store_db(store)));
    }
    if (text_arg != NULL) {
        sqlite3_bind_text(st, 1, text_arg, -1, SQLITE_TRANSIENT);
    }
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *v = t != NULL ? g_strdup((const char *)t) : NULL;
    sqlite3_finalize(st);
    return v;
}

static bool
column_is_null(hv_store *store, const char *column, const char *mint)
{
    g_autofree char *sql =
        g_strdup_printf("SELECT %s IS NULL FROM pumpfun_coins WHERE mint_id = ?", column);
    return query_int(store, sql, mint) == 1;
}

/* A temporary directory removed (with the database files in it) at the end of a test. */
typedef struct {
    char *dir;
    char *db;
} tmp_db;

static void
tmp_db_init(tmp_db *t)
{
    g_autoptr(GError) error = NULL;
    t->dir = g_dir_make_tmp("haven-test-store-XXXXXX", &error);
    g_assert_no_error(error);
    t->db = g_build_filename(t->dir, "haven.db", NULL);
}

static void
tmp_db_clear(tmp_db *t)
{
    static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *f = g_strconcat(t->db, suffixes[i], NULL);
        (void)g_remove(f);
    }
    g_assert_cmpint(g_rmdir(t->dir), ==, 0);
    g_free(t->db);
    g_free(t->dir);
}

/* ---- schema ----------------------------------------------------------------------------- */

static void
test_migrations_table(void)
{
    g_assert_cmpuint(hv_store_n_migrations, >=, 1);
    g_assert_cmpint(hv_store_migrations[0].version, ==, 1);
    for (size_t i = 0; i < hv_store_n_migrations; i++) {
        g_assert_nonnull(hv_store_migrations[i].name);
        g_assert_nonnull(hv_store_migrations[i].sql);
        g_assert_cmpuint(strlen(hv_store_migrations[i].sql), >, 0);
        if (i > 0) {
            g_assert_cmpint(hv_store_migrations[i].version, ==,
                            hv_store_migrations[i - 1].version + 1);
        }
    }
    g_assert_cmpint(hv_store_latest_version(), ==,
                    hv_store_migrations[hv_store_n_migrations - 1].version);
}

static void
test_open_memory_schema(void)
{
    g_autoptr(hv_store) store = open_memory();
    g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
    g_assert_cmpint(hv_store_schema_version(store), >=, 1);
    g_assert_cmpstr(hv_store_path(store), ==, ":memory:");

    static const char *tables[] = {"pumpfun_coins", "coin_snapshots", "live_sessions", "meta",
                                   "recordings"};
    for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
        g_assert_cmpint(
            query_int(store, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
                      tables[i]),
            ==, 1);
        g_assert_cmpint(hv_store_count(store, tables[i]), ==, 0);
    }

    static const char *session_columns[] = {"mint_id",    "room_name",      "participant_sid",
                                            "status",     "record_session", "recording_path",
                                            "start_time", "end_time"};
    for (size_t i = 0; i < G_N_ELEMENTS(session_columns); i++) {
        int64_t n = query_int(store,
                              "SELECT count(*) FROM pragma_table_info('live_sessions') "
                              "WHERE name = ?",
                              session_columns[i]);
        if (n != 1) {
            g_error("live_sessions lacks column %s", session_columns[i]);
        }
    }
    /* a few pumpfun_coins columns the upsert relies on */
    static const char *coin_columns[] = {
        "mint_id",         "raw_json", "first_seen", "last_updated", "virtual_token_reserves",
        "num_participants"};
    for (size_t i = 0; i < G_N_ELEMENTS(coin_columns); i++) {
        g_assert_cmpint(query_int(store,
                                  "SELECT count(*) FROM pragma_table_info('pumpfun_coins') "
                                  "WHERE name = ?",
                                  coin_columns[i]),
                        ==, 1);
    }
    g_autofree char *pk =
        query_text(store, "SELECT name FROM pragma_table_info('pumpfun_coins') WHERE pk = 1", NULL);
    g_assert_cmpstr(pk, ==, "mint_id");
}

static void
test_open_file_wal_reopen(void)
{
    tmp_db t;
    tmp_db_init(&t);
    json_t *rows = load_fixture_rows();
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.db, &error);
        g_assert_no_error(error);
        g_assert_nonnull(store);
        g_assert_cmpstr(hv_store_path(store), ==, t.db);
        g_autofree char *mode = query_text(store, "PRAGMA journal_mode", NULL);
        g_assert_cmpstr(mode, ==, "wal");
        g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
        upsert_rows(store, rows, T0, 60000);
        g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
    }
    g_assert_true(g_file_test(t.db, G_FILE_TEST_IS_REGULAR));
    {
        /* reopening migrates nothing and keeps the data */
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.db, &error);
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
        g_autofree char *mode = query_text(store, "PRAGMA journal_mode", NULL);
        g_assert_cmpstr(mode, ==, "wal");
        g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, N_FIXTURE);
        g_assert_cmpint(
            query_int(store, "SELECT first_seen FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER),
            ==, T0);
        g_assert_true(hv_store_check_writable(store, &error));
        g_assert_no_error(error);
    }
    json_decref(rows);
    tmp_db_clear(&t);
}

static void
test_open_refuses_newer_schema(void)
{
    tmp_db t;
    tmp_db_init(&t);
    int newer = hv_store_latest_version() + 1;
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.db, &error);
        g_assert_no_error(error);
        g_autofree char *sql = g_strdup_printf("PRAGMA user_version = %d", newer);
        g_assert_cmpint(sqlite3_exec(hv_store_db(store), sql, NULL, NULL, NULL), ==, SQLITE_OK);
        g_assert_cmpint(hv_store_schema_version(store), ==, newer);
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.db, &error);
        g_assert_null(store);
        g_assert_nonnull(error);
        g_assert_true(error->domain == HV_ERROR);
        if (strstr(error->message, "newer") == NULL || strstr(error->message, t.db) == NULL) {
            g_error("error \"%s\" should say the schema is newer and name the file",
                    error->message);
        }
    }
    tmp_db_clear(&t);
}

static void
test_open_bad_path(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) store = hv_store_open("/nonexistent-haven-dir/sub/haven.db", &error);
    g_assert_null(store);
    g_assert_error(error, HV_ERROR, HV_EIO);
    g_assert_nonnull(strstr(error->message, "/nonexistent-haven-dir/sub/haven.db"));
}

/* ---- coins ------------------------------------------------------------------------------ */

static void
test_upsert_fixture(void)
{
    g_autoptr(hv_store) store = open_memory();
    json_t *rows = load_fixture_rows();
    upsert_rows(store, rows, T0, 60000);
    g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);

    /* 64-bit reserves read back exactly */
    g_assert_cmpint(query_int(store,
                              "SELECT virtual_token_reserves FROM pumpfun_coins WHERE mint_id = ?",
                              MINT_OTTER),
                    ==, OTTER_VTOKEN);
    g_assert_cmpint(
        query_int(store,
                  "SELECT typeof(virtual_token_reserves) = 'integer' FROM pumpfun_coins "
                  "WHERE mint_id = ?",
                  MINT_OTTER),
        ==, 1);
    g_assert_cmpint(query_int(store, "SELECT num_participants FROM pumpfun_coins WHERE mint_id = ?",
                              MINT_OTTER),
                    ==, 1843);
    g_assert_cmpint(
        query_int(store, "SELECT first_seen FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER), ==,
        T0);
    g_assert_cmpint(
        query_int(store, "SELECT last_updated FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER),
        ==, T0);
    g_autofree char *name =
        query_text(store, "SELECT name FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER);
    g_assert_cmpstr(name, ==, "Orbital Otter");
    g_assert_cmpint(query_int(store,
                              "SELECT market_cap = 4120.55 AND typeof(market_cap) = 'real' FROM "
                              "pumpfun_coins WHERE mint_id = ?",
                              MINT_OTTER),
                    ==, 1);

    /* booleans as 0/1 */
    g_assert_cmpint(query_int(store, "SELECT count(*) FROM pumpfun_coins WHERE nsfw = 1", NULL), ==,
                    3);
    g_assert_cmpint(
        query_int(store, "SELECT count(*) FROM pumpfun_coins WHERE is_currently_live = 0", NULL),
        ==, 1);
    g_assert_cmpint(query_int(store,
                              "SELECT is_currently_live FROM pumpfun_coins WHERE mint_id = ?",
                              "3db3seiWSQSmKUeNWD87dN5AcYG2mLa12FHC4D2zpump"),
                    ==, 0);

    /* JSON nulls stay SQL NULL; "" stays "" */
    g_assert_true(column_is_null(store, "telegram", MINT_NOODLE));
    g_assert_true(column_is_null(store, "raydium_pool", MINT_NOODLE));
    g_assert_false(column_is_null(store, "twitter", MINT_NOODLE));
    g_assert_true(column_is_null(store, "twitter", "CjgM7MPSTLzA6mmRbTWvg3M5tz5KggBKgWZtW9Fbpump"));
    g_autofree char *website =
        query_text(store, "SELECT website FROM pumpfun_coins WHERE mint_id = ?",
                   "8TqeR7rhM6LoDWevinTrTqnvSWREcUyBepyyBgAJpump");
    g_assert_cmpstr(website, ==, "");

    /* raw_json holds the whole upstream object */
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *row = json_array_get(rows, i);
        const char *mint = json_string_value(json_object_get(row, "mint"));
        g_autofree char *raw =
            query_text(store, "SELECT raw_json FROM pumpfun_coins WHERE mint_id = ?", mint);
        g_assert_nonnull(raw);
        json_t *back = json_loads(raw, 0, NULL);
        g_assert_nonnull(back);
        if (!json_equal(back, row)) {
            g_error("raw_json of %s differs from the upstream object", mint);
        }
        json_decref(back);
        /* and every reserve column matches */
        g_assert_cmpint(
            query_int(store, "SELECT virtual_token_reserves FROM pumpfun_coins WHERE mint_id = ?",
                      mint),
            ==, json_integer_value(json_object_get(row, "virtual_token_reserves")));
    }
    json_decref(rows);
}

static void
test_upsert_updates(void)
{
    g_autoptr(hv_store) store = open_memory();
    json_t *rows = load_fixture_rows();
    upsert_rows(store, rows, T0, 60000);

    json_t *changed = json_deep_copy(rows);
    json_t *otter = json_array_get(changed, 0);
    json_object_set_new(otter, "num_participants", json_integer(5000));
    json_object_set_new(otter, "name", json_string("Orbital Otter II"));
    json_object_set_new(otter, "twitter", json_null());
    upsert_rows(store, changed, T0 + 5000, 60000);

    g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
    g_assert_cmpint(query_int(store, "SELECT num_participants FROM pumpfun_coins WHERE mint_id = ?",
                              MINT_OTTER),
                    ==, 5000);
    g_assert_cmpint(
        query_int(store, "SELECT first_seen FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER), ==,
        T0);
    g_assert_cmpint(
        query_int(store, "SELECT last_updated FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER),
        ==, T0 + 5000);
    g_autofree char *name =
        query_text(store, "SELECT name FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER);
    g_assert_cmpstr(name, ==, "Orbital Otter II");
    g_assert_true(column_is_null(store, "twitter", MINT_OTTER));
    g_autofree char *raw =
        query_text(store, "SELECT raw_json FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER);
    json_t *back = json_loads(raw, 0, NULL);
    g_assert_true(json_equal(back, otter));
    json_decref(back);
    /* every row was touched, none re-created */
    g_assert_cmpint(query_int(store,
                              "SELECT count(*) FROM pumpfun_coins WHERE first_seen = 1795532400000 "
                              "AND last_updated = 1795532405000",
                              NULL),
                    ==, N_FIXTURE);
    json_decref(changed);
    json_decref(rows);
}

static void
test_upsert_mint_id_key_and_empty(void)
{
    g_autoptr(hv_store) store = open_memory();
    /* a stream's merged object may carry "mint_id" instead of "mint" */
    json_t *coin = json_pack("{s:s, s:s, s:I}", "mint_id", MINT_NOODLE, "symbol", "NOODL",
                             "num_participants", (json_int_t)9);
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_store_upsert_coins(store, &coin, 1, T0, 0, &error));
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, 1);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 1);
    g_assert_cmpint(query_int(store,
                              "SELECT num_participants FROM coin_snapshots WHERE mint_id = ?",
                              MINT_NOODLE),
                    ==, 9);
    g_assert_true(column_is_null(store, "name", MINT_NOODLE));
    json_decref(coin);

    /* "mint": null with a valid "mint_id" is stored under mint_id (as the stream parser reads
     * it), not rejected as a NULL key */
    json_t *nullmint = json_pack("{s:n, s:s, s:I}", "mint", "mint_id", MINT_OTTER,
                                 "num_participants", (json_int_t)4);
    g_assert_true(hv_store_upsert_coins(store, &nullmint, 1, T0, 0, &error));
    g_assert_no_error(error);
    g_assert_cmpint(query_int(store, "SELECT num_participants FROM pumpfun_coins WHERE mint_id = ?",
                              MINT_OTTER),
                    ==, 4);
    json_decref(nullmint);

    /* integers beyond 2^53 (where a double would round) read back exactly */
    json_t *big =
        json_pack("{s:s, s:I, s:I, s:I}", "mint", MINT_OTTER, "virtual_token_reserves",
                  (json_int_t)9007199254740993LL, "real_token_reserves", (json_int_t)G_MAXINT64,
                  "total_supply", (json_int_t)-9007199254740993LL);
    g_assert_true(hv_store_upsert_coins(store, &big, 1, T0, 0, &error));
    g_assert_no_error(error);
    g_assert_cmpint(query_int(store,
                              "SELECT virtual_token_reserves FROM pumpfun_coins WHERE mint_id = ?",
                              MINT_OTTER),
                    ==, 9007199254740993LL);
    g_assert_cmpint(query_int(store,
                              "SELECT real_token_reserves FROM pumpfun_coins WHERE mint_id = ?",
                              MINT_OTTER),
                    ==, G_MAXINT64);
    g_assert_cmpint(
        query_int(store, "SELECT total_supply FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER),
        ==, -9007199254740993LL);
    json_decref(big);
    g_assert_true(hv_store_upsert_coins(store, NULL, 0, T0, 0, &error));
    g_assert_cmpint(sqlite3_exec(hv_store_db(store),
                                 "DELETE FROM pumpfun_coins WHERE mint_id = '" MINT_OTTER
                                 "'; DELETE FROM coin_snapshots WHERE mint_id = '" MINT_OTTER "'",
                                 NULL, NULL, NULL),
                    ==, SQLITE_OK);

    /* nothing to write is fine */
    g_assert_true(hv_store_upsert_coins(store, NULL, 0, T0, 0, &error));
    g_assert_no_error(error);

    /* a batch with a coin lacking any mint fails as a whole and writes nothing */
    json_t *good = json_pack("{s:s}", "mint", MINT_OTTER);
    json_t *bad = json_pack("{s:s}", "name", "no mint");
    json_t *batch[] = {good, bad};
    g_assert_false(hv_store_upsert_coins(store, batch, 2, T0 + 1000, 0, &error));
    g_assert_error(error, HV_ERROR, HV_EIO);
    g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, 1);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 1);
    g_clear_error(&error);
    /* and the store still works afterwards */
    g_assert_true(hv_store_upsert_coins(store, batch, 1, T0 + 2000, 0, &error));
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, 2);
    json_decref(good);
    json_decref(bad);
}

/* ---- snapshots -------------------------------------------------------------------------- */

static void
test_snapshot_interval(void)
{
    json_t *rows = load_fixture_rows();
    {
        g_autoptr(hv_store) store = open_memory();
        upsert_rows(store, rows, T0, 60000);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, N_FIXTURE);
        upsert_rows(store, rows, T0 + 30000, 60000);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, N_FIXTURE);
        upsert_rows(store, rows, T0 + 59999, 60000);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, N_FIXTURE);
        upsert_rows(store, rows, T0 + 61000, 60000);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 2 * N_FIXTURE);
        /* exactly one interval after the last snapshot is old enough */
        upsert_rows(store, rows, T0 + 121000, 60000);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 3 * N_FIXTURE);
        g_assert_cmpint(
            query_int(store, "SELECT count(*) FROM coin_snapshots WHERE mint_id = ?", MINT_OTTER),
            ==, 3);
        g_assert_cmpint(query_int(store,
                                  "SELECT max(taken_at) FROM coin_snapshots WHERE mint_id = ?",
                                  MINT_OTTER),
                        ==, T0 + 121000);
        g_assert_cmpint(query_int(store,
                                  "SELECT num_participants FROM coin_snapshots WHERE mint_id = ? "
                                  "ORDER BY taken_at LIMIT 1",
                                  MINT_OTTER),
                        ==, 1843);
        g_assert_cmpint(query_int(store,
                                  "SELECT market_cap = 4120.55 FROM coin_snapshots WHERE "
                                  "mint_id = ? ORDER BY taken_at LIMIT 1",
                                  MINT_OTTER),
                        ==, 1);
        /* the coin rows themselves are updated on every call */
        g_assert_cmpint(query_int(store, "SELECT last_updated FROM pumpfun_coins WHERE mint_id = ?",
                                  MINT_OTTER),
                        ==, T0 + 121000);
    }
    {
        /* interval 0: one snapshot per call */
        g_autoptr(hv_store) store = open_memory();
        upsert_rows(store, rows, T0, 0);
        upsert_rows(store, rows, T0 + 1, 0);
        upsert_rows(store, rows, T0 + 2, 0);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 3 * N_FIXTURE);
        g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
    }
    json_decref(rows);
}

static void
test_prune_snapshots(void)
{
    g_autoptr(hv_store) store = open_memory();
    json_t *rows = load_fixture_rows();
    upsert_rows(store, rows, T0, 60000);
    upsert_rows(store, rows, T0 + 61000, 60000);
    upsert_rows(store, rows, T0 + 122000, 60000);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 3 * N_FIXTURE);
    g_autoptr(GError) error = NULL;

    /* retention 0 keeps everything */
    g_assert_cmpint(hv_store_prune_snapshots(store, T0 + 1000000000, 0, &error), ==, 0);
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 3 * N_FIXTURE);

    /* nothing older than the cutoff yet (a row exactly at the cutoff is kept) */
    g_assert_cmpint(hv_store_prune_snapshots(store, T0 + 50000, 50000, &error), ==, 0);
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 3 * N_FIXTURE);

    /* cutoff T0 + 61000: only the rows taken at T0 go */
    g_assert_cmpint(hv_store_prune_snapshots(store, T0 + 111000, 50000, &error), ==, N_FIXTURE);
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 2 * N_FIXTURE);
    g_assert_cmpint(query_int(store, "SELECT min(taken_at) FROM coin_snapshots", NULL), ==,
                    T0 + 61000);

    /* again: nothing more */
    g_assert_cmpint(hv_store_prune_snapshots(store, T0 + 111000, 50000, &error), ==, 0);

    /* cutoff past everything */
    g_assert_cmpint(hv_store_prune_snapshots(store, T0 + 200000, 50000, &error), ==, 2 * N_FIXTURE);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 0);
    /* coins are never pruned */
    g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
    json_decref(rows);
}

/* ---- health helpers --------------------------------------------------------------------- */

static void
test_writable_and_count(void)
{
    g_autoptr(hv_store) store = open_memory();
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_store_check_writable(store, &error));
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count(store, "meta"), ==, 1);
    g_assert_true(hv_store_check_writable(store, &error));
    g_assert_cmpint(hv_store_count(store, "meta"), ==, 1);
    g_assert_cmpint(query_int(store, "SELECT count(*) FROM meta WHERE key = ?", "health_check"), ==,
                    1);
    /* not left inside a transaction */
    g_assert_cmpint(sqlite3_get_autocommit(hv_store_db(store)), !=, 0);

    static const char *unknown[] = {"",
                                    "nope",
                                    "sqlite_master",
                                    "META",
                                    "meta; DROP TABLE meta",
                                    "pumpfun_coins WHERE 0",
                                    "pumpfun_coins "};
    for (size_t i = 0; i < G_N_ELEMENTS(unknown); i++) {
        g_assert_cmpint(hv_store_count(store, unknown[i]), ==, -1);
    }
    g_assert_cmpint(hv_store_count(store, "meta"), ==, 1);
    g_assert_cmpint(hv_store_count(store, "live_sessions"), ==, 0);
}

static void
test_live_sessions_lifecycle(void)
{
    g_autoptr(hv_store) store = open_memory();
    g_autoptr(GError) error = NULL;
    hv_store_session_row row = {.mint_id = MINT_OTTER,
                                .coin_name = "Orbital Otter",
                                .coin_symbol = "OTTR",
                                .market_cap = 4120.55,
                                .num_participants = 1843,
                                .room_name = "livestream:x:1",
                                .participant_sid = "PA_abc"};
    int64_t id = hv_store_insert_live_session(store, &row, T0, &error);
    g_assert_no_error(error);
    g_assert_cmpint(id, >, 0);
    int64_t id2 = hv_store_insert_live_session(store, &row, T0 + 1, &error);
    g_assert_cmpint(id2, ==, id + 1);
    sqlite3 *db = hv_store_db(store);
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db,
                                       "SELECT status, room_name, participant_sid, start_time, "
                                       "end_time, coin_name FROM live_sessions WHERE id = ?",
                                       -1, &st, NULL),
                    ==, SQLITE_OK);
    sqlite3_bind_int64(st, 1, id);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    g_assert_cmpstr((const char *)sqlite3_column_text(st, 0), ==, "active");
    g_assert_cmpstr((const char *)sqlite3_column_text(st, 1), ==, "livestream:x:1");
    g_assert_cmpstr((const char *)sqlite3_column_text(st, 2), ==, "PA_abc");
    g_assert_cmpint(sqlite3_column_int64(st, 3), ==, T0);
    g_assert_cmpint(sqlite3_column_type(st, 4), ==, SQLITE_NULL);
    g_assert_cmpstr((const char *)sqlite3_column_text(st, 5), ==, "Orbital Otter");
    sqlite3_finalize(st);

    /* reconnecting keeps it open; stopped closes it with an end time */
    g_assert_true(hv_store_update_live_session(store, id, "reconnecting", "signal lost", false,
                                               T0 + 5, &error));
    g_assert_cmpint(query_int(store,
                              "SELECT count(*) FROM live_sessions WHERE end_time IS NULL "
                              "AND status = 'reconnecting' AND mint_id = ?",
                              MINT_OTTER),
                    ==, 1);
    g_assert_true(hv_store_update_live_session(store, id, "stopped", NULL, true, T0 + 9, &error));
    g_assert_cmpint(query_int(store,
                              "SELECT end_time FROM live_sessions WHERE status = 'stopped' "
                              "AND mint_id = ?",
                              MINT_OTTER),
                    ==, T0 + 9);

    /* a crash leaves id2 active: the next start marks it interrupted, and only it */
    g_assert_cmpint(hv_store_recover_live_sessions(store, T0 + 20, &error), ==, 1);
    g_assert_cmpint(query_int(store,
                              "SELECT count(*) FROM live_sessions WHERE status = "
                              "'interrupted' AND end_time IS NOT NULL AND mint_id = ?",
                              MINT_OTTER),
                    ==, 1);
    g_assert_cmpint(hv_store_recover_live_sessions(store, T0 + 30, &error), ==, 0);
}

/* ---- recordings ------------------------------------------------------------------------- */

/* A finished recording of mint at start (all fields set, so the round trip checks each). */
static hv_store_recording
sample_recording(const char *mint, int64_t start, const char *status)
{
    hv_store_recording r = {
        .mint_id = (char *)mint,
        .video_path = (char *)"/rec/a_20261124T150000Z.mp4",
        .audio_path = (char *)"/rec/a_20261124T150000Z.wav",
        .container = (char *)"mp4",
        .video_codec = (char *)"VP8",
        .audio_codec = (char *)"OPUS",
        .stored_video_codec = (char *)"H264",
        .width = 1280,
        .height = 720,
        .start_ms = start,
        .end_ms = start + 61500,
        .duration_ms = 61500,
        .bytes = 12345678,
        .dropped = 3,
        .status = (char *)status,
        .error = NULL,
    };
    return r;
}

static int64_t
insert_recording(hv_store *store, const hv_store_recording *r)
{
    g_autoptr(GError) error = NULL;
    int64_t id = hv_store_insert_recording(store, r, &error);
    g_assert_no_error(error);
    g_assert_cmpint(id, >, 0);
    return id;
}

static void
assert_recording_equal(const hv_store_recording *a, const hv_store_recording *b)
{
    g_assert_cmpstr(a->mint_id, ==, b->mint_id);
    g_assert_cmpstr(a->video_path, ==, b->video_path);
    g_assert_cmpstr(a->audio_path, ==, b->audio_path);
    g_assert_cmpstr(a->container, ==, b->container);
    g_assert_cmpstr(a->video_codec, ==, b->video_codec);
    g_assert_cmpstr(a->audio_codec, ==, b->audio_codec);
    g_assert_cmpstr(a->stored_video_codec, ==, b->stored_video_codec);
    g_assert_cmpint(a->width, ==, b->width);
    g_assert_cmpint(a->height, ==, b->height);
    g_assert_cmpint(a->start_ms, ==, b->start_ms);
    g_assert_cmpint(a->end_ms, ==, b->end_ms);
    g_assert_cmpint(a->duration_ms, ==, b->duration_ms);
    g_assert_cmpint(a->bytes, ==, b->bytes);
    g_assert_cmpint(a->dropped, ==, b->dropped);
    g_assert_cmpstr(a->status, ==, b->status);
    g_assert_cmpstr(a->error, ==, b->error);
}

static void
test_recordings_schema(void)
{
    g_autoptr(hv_store) store = open_memory();
    g_assert_cmpint(hv_store_count(store, "recordings"), ==, 0);
    static const char *columns[] = {
        "id",        "session_id",  "mint_id",     "video_path",         "audio_path",
        "container", "video_codec", "audio_codec", "stored_video_codec", "width",
        "height",    "start_time",  "end_time",    "duration_ms",        "bytes",
        "dropped",   "status",      "error"};
    g_assert_cmpint(query_int(store, "SELECT count(*) FROM pragma_table_info('recordings')", NULL),
                    ==, G_N_ELEMENTS(columns));
    for (size_t i = 0; i < G_N_ELEMENTS(columns); i++) {
        if (query_int(store, "SELECT count(*) FROM pragma_table_info('recordings') WHERE name = ?",
                      columns[i]) != 1) {
            g_error("recordings lacks column %s", columns[i]);
        }
    }
    static const char *indexed[] = {"mint_id", "status", "start_time"};
    for (size_t i = 0; i < G_N_ELEMENTS(indexed); i++) {
        g_assert_cmpint(query_int(store,
                                  "SELECT count(*) FROM sqlite_master m, pragma_index_info(m.name) "
                                  "i WHERE m.type = 'index' AND m.tbl_name = 'recordings' AND "
                                  "i.name = ?",
                                  indexed[i]),
                        ==, 1);
    }
    /* the status CHECK refuses anything but the four states; dropped defaults to 0 */
    sqlite3 *db = hv_store_db(store);
    g_assert_cmpint(sqlite3_exec(db,
                                 "INSERT INTO recordings (mint_id, start_time, status) VALUES "
                                 "('m', 1, 'paused')",
                                 NULL, NULL, NULL),
                    ==, SQLITE_CONSTRAINT_CHECK);
    g_assert_cmpint(sqlite3_exec(db,
                                 "INSERT INTO recordings (mint_id, start_time, status) VALUES "
                                 "('m', 1, 'recovered')",
                                 NULL, NULL, NULL),
                    ==, SQLITE_OK);
    g_assert_cmpint(query_int(store, "SELECT dropped FROM recordings", NULL), ==, 0);
    /* session_id must name a live session (foreign keys are on) */
    g_assert_cmpint(sqlite3_exec(db,
                                 "INSERT INTO recordings (session_id, mint_id, start_time, status) "
                                 "VALUES (42, 'm', 1, 'finished')",
                                 NULL, NULL, NULL),
                    ==, SQLITE_CONSTRAINT_FOREIGNKEY);
    g_assert_cmpint(hv_store_count(store, "recordings"), ==, 1);
}

static void
test_recordings_insert_get_update(void)
{
    g_autoptr(hv_store) store = open_memory();
    g_autoptr(GError) error = NULL;
    hv_store_session_row row = {.mint_id = MINT_OTTER, .record_session = true};
    int64_t session = hv_store_insert_live_session(store, &row, T0, &error);
    g_assert_cmpint(session, >, 0);

    hv_store_recording r = sample_recording(MINT_OTTER, T0, "recording");
    r.id = 999; /* ignored */
    r.session_id = session;
    int64_t id = insert_recording(store, &r);
    g_assert_cmpint(id, !=, 999);

    hv_store_recording got = {0};
    g_assert_true(hv_store_get_recording(store, id, &got, &error));
    g_assert_no_error(error);
    g_assert_cmpint(got.id, ==, id);
    g_assert_cmpint(got.session_id, ==, session);
    assert_recording_equal(&got, &r);
    hv_store_recording_clear(&got);
    g_assert_null(got.mint_id);
    g_assert_null(got.status);

    /* zeros ("not known yet") are stored as NULL and read back as zeros */
    hv_store_recording bare = {
        .mint_id = (char *)MINT_NOODLE, .start_ms = T0 + 5, .status = (char *)"recording"};
    int64_t bare_id = insert_recording(store, &bare);
    g_autofree char *sql = g_strdup_printf(
        "SELECT count(*) FROM recordings WHERE id = %" G_GINT64_FORMAT " AND session_id IS NULL "
        "AND width IS NULL AND height IS NULL AND end_time IS NULL AND video_path IS NULL",
        bare_id);
    g_assert_cmpint(query_int(store, sql, NULL), ==, 1);
    g_autoptr(hv_store_recording) bare_got = g_new0(hv_store_recording, 1);
    g_assert_true(hv_store_get_recording(store, bare_id, bare_got, &error));
    g_assert_cmpint(bare_got->session_id, ==, 0);
    assert_recording_equal(bare_got, &bare);

    /* update rewrites everything but id and session_id */
    hv_store_recording u = sample_recording(MINT_NOODLE, T0 + 1, "failed");
    u.id = id;
    u.session_id = 0; /* not written */
    u.video_path = (char *)"/rec/b.webm";
    u.audio_path = NULL;
    u.container = (char *)"webm";
    u.stored_video_codec = (char *)"VP8";
    u.width = 0;
    u.height = 0;
    u.end_ms = T0 + 99;
    u.duration_ms = 98;
    u.bytes = 5;
    u.dropped = 7;
    u.error = (char *)"disk full";
    g_assert_true(hv_store_update_recording(store, &u, &error));
    g_assert_no_error(error);
    g_assert_true(hv_store_get_recording(store, id, &got, &error));
    g_assert_cmpint(got.session_id, ==, session);
    assert_recording_equal(&got, &u);
    hv_store_recording_clear(&got);

    /* a missing row: update fails with an error, get returns false with none */
    u.id = 12345;
    g_assert_false(hv_store_update_recording(store, &u, &error));
    g_assert_error(error, HV_ERROR, HV_ENOTFOUND);
    g_clear_error(&error);
    g_assert_false(hv_store_get_recording(store, 12345, &got, &error));
    g_assert_no_error(error);

    /* the CHECK constraint surfaces as an error */
    hv_store_recording bad = sample_recording(MINT_OTTER, T0, "paused");
    g_assert_cmpint(hv_store_insert_recording(store, &bad, &error), ==, -1);
    g_assert_error(error, HV_ERROR, HV_EIO);
    g_clear_error(&error);
    bad.id = id;
    g_assert_false(hv_store_update_recording(store, &bad, &error));
    g_assert_error(error, HV_ERROR, HV_EIO);
    g_clear_error(&error);
    g_assert_cmpint(hv_store_count(store, "recordings"), ==, 2);

    /* the seed's live_sessions.recording_path */
    g_assert_true(hv_store_set_session_recording_path(store, session, "/rec/b.webm", &error));
    g_assert_no_error(error);
    g_autofree char *path = query_text(store, "SELECT recording_path FROM live_sessions", NULL);
    g_assert_cmpstr(path, ==, "/rec/b.webm");
    g_assert_false(hv_store_set_session_recording_path(store, session + 10, "/x", &error));
    g_assert_error(error, HV_ERROR, HV_ENOTFOUND);
}

/* Ids of a list, as "3,2,1". */
static char *
list_ids(hv_store *store, const char *mint, const char *status, int64_t limit, int64_t offset)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) rows =
        hv_store_list_recordings(store, mint, status, limit, offset, &error);
    g_assert_no_error(error);
    g_assert_nonnull(rows);
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < rows->len; i++) {
        const hv_store_recording *r = g_ptr_array_index(rows, i);
        if (mint != NULL) {
            g_assert_cmpstr(r->mint_id, ==, mint);
        }
        if (status != NULL) {
            g_assert_cmpstr(r->status, ==, status);
        }
        g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i > 0 ? "," : "", r->id);
    }
    return g_string_free(s, FALSE);
}

static void
test_recordings_list_count_delete(void)
{
    g_autoptr(hv_store) store = open_memory();
    g_autoptr(GError) error = NULL;
    /* ids 1..6; start times not in id order, and 5 and 6 share one */
    const struct {
        const char *mint;
        int64_t start;
        const char *status;
    } rows[] = {
        {MINT_OTTER, T0 + 30, "finished"},  {MINT_NOODLE, T0 + 10, "failed"},
        {MINT_OTTER, T0 + 50, "recording"}, {MINT_OTTER, T0 + 20, "finished"},
        {MINT_NOODLE, T0 + 40, "finished"}, {MINT_OTTER, T0 + 40, "recovered"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(rows); i++) {
        hv_store_recording r = sample_recording(rows[i].mint, rows[i].start, rows[i].status);
        g_assert_cmpint(insert_recording(store, &r), ==, (int64_t)i + 1);
    }

    const struct {
        const char *mint, *status;
        int64_t limit, offset;
        const char *ids;
    } cases[] = {
        {NULL, NULL, 50, 0, "3,6,5,1,4,2"}, /* newest first, ties by id descending */
        {NULL, NULL, 2, 0, "3,6"},
        {NULL, NULL, 2, 2, "5,1"},
        {NULL, NULL, 2, 4, "4,2"},
        {NULL, NULL, 2, 6, ""},
        {NULL, NULL, 50, 100, ""},
        {NULL, NULL, -1, 1, "6,5,1,4,2"}, /* negative limit: all */
        {NULL, NULL, 0, 0, ""},
        {MINT_OTTER, NULL, 50, 0, "3,6,1,4"},
        {MINT_OTTER, NULL, 1, 1, "6"},
        {NULL, "finished", 50, 0, "5,1,4"},
        {MINT_OTTER, "finished", 50, 0, "1,4"},
        {MINT_NOODLE, "finished", 50, 0, "5"},
        {MINT_NOODLE, "recording", 50, 0, ""},
        {"nope", NULL, 50, 0, ""},
        {"' OR 1=1 --", NULL, 50, 0, ""},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *ids =
            list_ids(store, cases[i].mint, cases[i].status, cases[i].limit, cases[i].offset);
        if (strcmp(ids, cases[i].ids) != 0) {
            g_error("case %zu: got [%s], want [%s]", i, ids, cases[i].ids);
        }
    }

    g_assert_cmpint(hv_store_count_recordings(store, NULL, NULL, &error), ==, 6);
    g_assert_cmpint(hv_store_count_recordings(store, MINT_OTTER, NULL, &error), ==, 4);
    g_assert_cmpint(hv_store_count_recordings(store, NULL, "finished", &error), ==, 3);
    g_assert_cmpint(hv_store_count_recordings(store, MINT_NOODLE, "failed", &error), ==, 1);
    g_assert_cmpint(hv_store_count_recordings(store, MINT_NOODLE, "recording", &error), ==, 0);
    g_assert_cmpint(hv_store_count_recordings(store, "nope", NULL, &error), ==, 0);
    g_assert_no_error(error);

    g_assert_true(hv_store_delete_recording(store, 6, &error));
    g_assert_no_error(error);
    g_assert_false(hv_store_delete_recording(store, 6, &error));
    g_assert_no_error(error);
    g_assert_false(hv_store_delete_recording(store, 0, &error));
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count_recordings(store, NULL, NULL, &error), ==, 5);
    g_assert_cmpint(hv_store_count(store, "recordings"), ==, 5);
    g_autofree char *ids = list_ids(store, MINT_OTTER, NULL, 50, 0);
    g_assert_cmpstr(ids, ==, "3,1,4");
}

static void
test_recordings_migrate_from_v1(void)
{
    tmp_db t;
    tmp_db_init(&t);
    /* a database as haven version 1 left it, with a coin and a live session in it */
    {
        sqlite3 *db = NULL;
        g_assert_cmpint(sqlite3_open(t.db, &db), ==, SQLITE_OK);
        g_assert_cmpint(hv_store_migrations[0].version, ==, 1);
        g_assert_cmpint(sqlite3_exec(db, hv_store_migrations[0].sql, NULL, NULL, NULL), ==,
                        SQLITE_OK);
        g_assert_cmpint(sqlite3_exec(db,
                                     "PRAGMA user_version = 1;"
                                     "INSERT INTO pumpfun_coins (mint_id, name, raw_json, "
                                     "first_seen, last_updated) VALUES ('" MINT_OTTER
                                     "', 'Orbital Otter', '{}', 1, 2);"
                                     "INSERT INTO live_sessions (mint_id, status, recording_path, "
                                     "start_time, created_at, updated_at) VALUES ('" MINT_OTTER
                                     "', 'stopped', '/old/path.mp4', 10, 10, 10);",
                                     NULL, NULL, NULL),
                        ==, SQLITE_OK);
        sqlite3_close(db);
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.db, &error);
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
        g_assert_cmpint(hv_store_latest_version(), >=, 2);
        g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, 1);
        g_assert_cmpint(hv_store_count(store, "live_sessions"), ==, 1);
        g_assert_cmpint(hv_store_count(store, "recordings"), ==, 0);
        g_autofree char *name = query_text(store, "SELECT name FROM pumpfun_coins", NULL);
        g_assert_cmpstr(name, ==, "Orbital Otter");
        g_autofree char *path = query_text(store, "SELECT recording_path FROM live_sessions", NULL);
        g_assert_cmpstr(path, ==, "/old/path.mp4");
        /* the new table works, tied to the old session */
        hv_store_recording r = sample_recording(MINT_OTTER, T0, "finished");
        r.session_id = query_int(store, "SELECT id FROM live_sessions", NULL);
        int64_t id = insert_recording(store, &r);
        hv_store_recording got = {0};
        g_assert_true(hv_store_get_recording(store, id, &got, &error));
        g_assert_cmpint(got.session_id, ==, r.session_id);
        hv_store_recording_clear(&got);
    }
    {
        /* reopening migrates nothing more and keeps the recording */
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.db, &error);
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_count(store, "recordings"), ==, 1);
        g_assert_cmpint(hv_store_count(store, "live_sessions"), ==, 1);
    }
    tmp_db_clear(&t);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/store/schema/migrations-table", test_migrations_table);
    g_test_add_func("/store/schema/open-memory", test_open_memory_schema);
    g_test_add_func("/store/schema/file-wal-reopen", test_open_file_wal_reopen);
    g_test_add_func("/store/schema/refuses-newer", test_open_refuses_newer_schema);
    g_test_add_func("/store/schema/bad-path", test_open_bad_path);
    g_test_add_func("/store/coins/upsert-fixture", test_upsert_fixture);
    g_test_add_func("/store/coins/upsert-updates", test_upsert_updates);
    g_test_add_func("/store/coins/mint-id-key-and-failures", test_upsert_mint_id_key_and_empty);
    g_test_add_func("/store/snapshots/interval", test_snapshot_interval);
    g_test_add_func("/store/snapshots/prune", test_prune_snapshots);
    g_test_add_func("/store/health/writable-and-count", test_writable_and_count);
    g_test_add_func("/store/live-sessions/lifecycle", test_live_sessions_lifecycle);
    g_test_add_func("/store/recordings/schema", test_recordings_schema);
    g_test_add_func("/store/recordings/insert-get-update", test_recordings_insert_get_update);
    g_test_add_func("/store/recordings/list-count-delete", test_recordings_list_count_delete);
    g_test_add_func("/store/recordings/migrate-from-v1", test_recordings_migrate_from_v1);

    return g_test_run();
}

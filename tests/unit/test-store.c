/* Unit tests for the store module, on one engine per run: SQLite (meson test "store") or, with
 * HAVEN_TEST_STORE_ENGINE=pg, PostgreSQL (meson test "store-pg", on a throwaway server this
 * program starts: tests/pg/pg_server.h). Every case but a few engine-specific ones runs on both:
 * migrations and schema (a fresh database, reopening, refusing a newer schema), coin upserts
 * from the currently-live fixture, snapshot spacing and pruning, the health helpers, live
 * sessions and recordings (insert/get/update/list/count/delete, and migrating a version-1
 * database). SQLite alone: WAL mode on a file, a path that cannot be opened, the shared roster
 * refused. PostgreSQL alone: the same tables as SQLite, a fresh database, connection errors
 * and timeouts, the password masked, reconnecting, the session's statement timeout, the
 * shared pump.fun roster (claim, publish, release between two nodes; TTL and lease expiry).
 */
#include "../common/fixture.h"
#include "../pg/pg_server.h"
#include "store/store-private.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define T0           1795532400000LL /* 2026-11-24T15:00:00Z */
#define MINT_OTTER   "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump"
#define MINT_NOODLE  "4odAMtm92RnFU3V3kLb9ZdJSUsraFCas1vx9CxVxpump"
#define N_FIXTURE    12
#define OTTER_VTOKEN 279900000000000LL

/* The engine this run tests, and with PostgreSQL, its server. */
static hv_store_engine_kind engine = HV_STORE_SQLITE;
static hv_test_pg *pg_server;
static int n_fresh; /* names fresh schemas and databases */

/* A text per engine, for the few queries of the tests the dialects spell differently. */
#define STORE_SQL(store, sqlite, pg) \
    (hv_store_conn_kind(hv_store_db(store)) == HV_STORE_PG ? (pg) : (sqlite))

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

/* (transfer full) A target no test used before: ":memory:" with SQLite, a new schema with
 * PostgreSQL. */
static char *
fresh_target(void)
{
    if (engine == HV_STORE_SQLITE) {
        return g_strdup(":memory:");
    }
    g_autofree char *name = g_strdup_printf("t%d", ++n_fresh);
    return hv_test_pg_new_schema(pg_server, name);
}

/* A store on a fresh, empty database. */
static hv_store *
open_fresh(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(GError) error = NULL;
    hv_store *store = hv_store_open(target, &error);
    g_assert_no_error(error);
    g_assert_nonnull(store);
    return store;
}

/* Runs a query with one optional text parameter; returns the statement on its first row. */
static hv_store_stmt *
query_row(hv_store *store, const char *sql, const char *text_arg)
{
    g_autoptr(GError) error = NULL;
    hv_store_stmt *st = hv_store_stmt_new(hv_store_db(store), sql, false, &error);
    if (st == NULL) {
        g_error("prepare %s: %s", sql, error->message);
    }
    if (text_arg != NULL) {
        hv_store_stmt_bind_text(st, 1, text_arg);
    }
    int rc = hv_store_stmt_step(st, &error);
    if (rc != HV_STORE_ROW) {
        g_error("%s: %s", sql, error != NULL ? error->message : "no row");
    }
    return st;
}

/* Runs a query returning one integer (NULL → -999; booleans are 0/1). */
static int64_t
query_int(hv_store *store, const char *sql, const char *text_arg)
{
    g_autoptr(hv_store_stmt) st = query_row(store, sql, text_arg);
    return hv_store_stmt_column_is_null(st, 0) ? -999 : hv_store_stmt_column_int64(st, 0);
}

/* Runs a query returning one text value (NULL when SQL NULL). */
static char *
query_text(hv_store *store, const char *sql, const char *text_arg)
{
    g_autoptr(hv_store_stmt) st = query_row(store, sql, text_arg);
    return g_strdup(hv_store_stmt_column_text(st, 0));
}

/* Runs SQL that must succeed. */
static void
exec_ok(hv_store *store, const char *sql)
{
    g_autoptr(GError) error = NULL;
    if (!hv_store_conn_exec(hv_store_db(store), sql, &error)) {
        g_error("%s: %s", sql, error->message);
    }
}

/* Runs SQL that must fail with an error whose message contains want (any case). */
static void
exec_fails(hv_store *store, const char *sql, const char *want)
{
    g_autoptr(GError) error = NULL;
    g_assert_false(hv_store_conn_exec(hv_store_db(store), sql, &error));
    g_assert_error(error, HV_ERROR, HV_EIO);
    g_autofree char *lower = g_ascii_strdown(error->message, -1);
    if (strstr(lower, want) == NULL) {
        g_error("%s: error \"%s\" lacks \"%s\"", sql, error->message, want);
    }
}

static bool
column_is_null(hv_store *store, const char *column, const char *mint)
{
    g_autofree char *sql =
        g_strdup_printf("SELECT %s IS NULL FROM pumpfun_coins WHERE mint_id = ?", column);
    return query_int(store, sql, mint) == 1;
}

static bool
table_exists(hv_store *store, const char *table)
{
    return query_int(store,
                     STORE_SQL(store,
                               "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                               "name = ?",
                               "SELECT count(*) FROM information_schema.tables WHERE "
                               "table_schema = current_schema() AND table_name = ?"),
                     table) == 1;
}

/* (transfer full) A table's columns in order, as "a,b,c" ("" when there is no such table). */
static char *
table_columns(hv_store *store, const char *table)
{
    const char *sql =
        STORE_SQL(store, "SELECT name FROM pragma_table_info(?) ORDER BY cid",
                  "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                  "current_schema() AND table_name = ? ORDER BY ordinal_position");
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(hv_store_db(store), sql, false, &error);
    g_assert_no_error(error);
    hv_store_stmt_bind_text(st, 1, table);
    GString *out = g_string_new(NULL);
    int rc;
    while ((rc = hv_store_stmt_step(st, &error)) == HV_STORE_ROW) {
        g_string_append_printf(out, "%s%s", out->len > 0 ? "," : "",
                               hv_store_stmt_column_text(st, 0));
    }
    g_assert_no_error(error);
    return g_string_free(out, FALSE);
}

static bool
has_column(hv_store *store, const char *table, const char *column)
{
    g_autofree char *columns = table_columns(store, table);
    g_auto(GStrv) names = g_strsplit(columns, ",", -1);
    return g_strv_contains((const char *const *)names, column);
}

/* (transfer full) A table's columns as "name type[ not null],..." in order, with the types
 * SQLite's names for them: what must match between the engines. */
static char *
table_signature(hv_store *store, const char *table)
{
    const char *sql = STORE_SQL(
        store,
        "SELECT name || ' ' || lower(type) || CASE WHEN \"notnull\" OR pk > 0 THEN ' not null' "
        "ELSE '' END FROM pragma_table_info(?) ORDER BY cid",
        "SELECT column_name || ' ' || CASE data_type WHEN 'bigint' THEN 'integer' WHEN 'double "
        "precision' THEN 'real' ELSE data_type END || CASE WHEN is_nullable = 'NO' THEN ' not "
        "null' ELSE '' END FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? ORDER BY ordinal_position");
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(hv_store_db(store), sql, false, &error);
    g_assert_no_error(error);
    hv_store_stmt_bind_text(st, 1, table);
    GString *out = g_string_new(NULL);
    while (hv_store_stmt_step(st, &error) == HV_STORE_ROW) {
        g_string_append_printf(out, "%s%s", out->len > 0 ? "," : "",
                               hv_store_stmt_column_text(st, 0));
    }
    g_assert_no_error(error);
    return g_string_free(out, FALSE);
}

/* (transfer full) The names of the indexes haven created (not those of primary keys). */
static char *
index_names(hv_store *store)
{
    return query_text(
        store,
        STORE_SQL(store,
                  "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE "
                  "type = 'index' AND name NOT LIKE 'sqlite_autoindex_%' ORDER BY name)",
                  "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE "
                  "schemaname = current_schema() AND indexname NOT LIKE '%_pkey'"),
        NULL);
}

/* A database file in a temporary directory (SQLite), or a fresh schema (PostgreSQL), removed
 * at the end of a test: for the tests that open one database several times. */
typedef struct {
    char *dir;    /* SQLite: the directory, else NULL */
    char *target; /* what hv_store_open takes */
} test_db;

static void
test_db_init(test_db *t)
{
    if (engine == HV_STORE_PG) {
        t->dir = NULL;
        t->target = fresh_target();
        return;
    }
    g_autoptr(GError) error = NULL;
    t->dir = g_dir_make_tmp("haven-test-store-XXXXXX", &error);
    g_assert_no_error(error);
    t->target = g_build_filename(t->dir, "haven.db", NULL);
}

static void
test_db_clear(test_db *t)
{
    if (t->dir != NULL) {
        static const char *suffixes[] = {"", "-wal", "-shm", "-journal"};
        for (size_t i = 0; i < G_N_ELEMENTS(suffixes); i++) {
            g_autofree char *f = g_strconcat(t->target, suffixes[i], NULL);
            (void)g_remove(f);
        }
        g_assert_cmpint(g_rmdir(t->dir), ==, 0);
    }
    g_free(t->target);
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
        g_assert_nonnull(hv_store_migrations[i].sqlite);
        g_assert_cmpuint(strlen(hv_store_migrations[i].sqlite), >, 0);
        g_assert_nonnull(hv_store_migrations[i].pg);
        g_assert_cmpuint(strlen(hv_store_migrations[i].pg), >, 0);
        g_assert_true(hv_store_migration_sql(&hv_store_migrations[i], HV_STORE_PG) ==
                      hv_store_migrations[i].pg);
        if (i > 0) {
            g_assert_cmpint(hv_store_migrations[i].version, ==,
                            hv_store_migrations[i - 1].version + 1);
        }
    }
    g_assert_cmpint(hv_store_latest_version(), ==,
                    hv_store_migrations[hv_store_n_migrations - 1].version);
}

static void
test_open_fresh_schema(void)
{
    g_autofree char *target = fresh_target();
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) store = hv_store_open(target, &error);
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
    g_assert_cmpint(hv_store_schema_version(store), >=, 1);
    g_assert_cmpstr(hv_store_path(store), ==, target);

    static const char *tables[] = {"pumpfun_coins", "coin_snapshots", "live_sessions", "meta",
                                   "recordings"};
    for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
        g_assert_true(table_exists(store, tables[i]));
        g_assert_cmpint(hv_store_count(store, tables[i]), ==, 0);
    }

    static const char *session_columns[] = {"mint_id",    "room_name",      "participant_sid",
                                            "status",     "record_session", "recording_path",
                                            "start_time", "end_time"};
    for (size_t i = 0; i < G_N_ELEMENTS(session_columns); i++) {
        if (!has_column(store, "live_sessions", session_columns[i])) {
            g_error("live_sessions lacks column %s", session_columns[i]);
        }
    }
    /* a few pumpfun_coins columns the upsert relies on */
    static const char *coin_columns[] = {
        "mint_id",         "raw_json", "first_seen", "last_updated", "virtual_token_reserves",
        "num_participants"};
    for (size_t i = 0; i < G_N_ELEMENTS(coin_columns); i++) {
        g_assert_true(has_column(store, "pumpfun_coins", coin_columns[i]));
    }
    g_autofree char *pk = query_text(
        store,
        STORE_SQL(store, "SELECT name FROM pragma_table_info('pumpfun_coins') WHERE pk = 1",
                  "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = "
                  "i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = "
                  "'pumpfun_coins'::regclass AND i.indisprimary"),
        NULL);
    g_assert_cmpstr(pk, ==, "mint_id");
}

static void
test_open_file_wal_reopen(void)
{
    test_db t;
    test_db_init(&t);
    json_t *rows = load_fixture_rows();
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
        g_assert_no_error(error);
        g_assert_nonnull(store);
        g_assert_cmpstr(hv_store_path(store), ==, t.target);
        g_autofree char *mode = query_text(store, "PRAGMA journal_mode", NULL);
        g_assert_cmpstr(mode, ==, "wal");
        g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
        upsert_rows(store, rows, T0, 60000);
        g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
    }
    g_assert_true(g_file_test(t.target, G_FILE_TEST_IS_REGULAR));
    {
        /* reopening migrates nothing and keeps the data */
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
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
    test_db_clear(&t);
}

static void
test_open_refuses_newer_schema(void)
{
    test_db t;
    test_db_init(&t);
    int newer = hv_store_latest_version() + 1;
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
        g_assert_no_error(error);
        g_assert_true(
            hv_store_conn_set_version(hv_store_db(store), newer, "from the future", &error));
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_schema_version(store), ==, newer);
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
        g_assert_null(store);
        g_assert_error(error, HV_ERROR, HV_EINVAL);
        if (strstr(error->message, "newer") == NULL || strstr(error->message, t.target) == NULL) {
            g_error("error \"%s\" should say the schema is newer and name the database",
                    error->message);
        }
    }
    test_db_clear(&t);
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
    g_autoptr(hv_store) store = open_fresh();
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
                  STORE_SQL(store,
                            "SELECT typeof(virtual_token_reserves) = 'integer' FROM "
                            "pumpfun_coins WHERE mint_id = ?",
                            "SELECT pg_typeof(virtual_token_reserves) = 'bigint'::regtype FROM "
                            "pumpfun_coins WHERE mint_id = ?"),
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
                              STORE_SQL(store,
                                        "SELECT market_cap = 4120.55 AND typeof(market_cap) = "
                                        "'real' FROM pumpfun_coins WHERE mint_id = ?",
                                        "SELECT market_cap = 4120.55 AND pg_typeof(market_cap) "
                                        "= 'double precision'::regtype FROM pumpfun_coins "
                                        "WHERE mint_id = ?"),
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
    g_autoptr(hv_store) store = open_fresh();
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
    g_autoptr(hv_store) store = open_fresh();
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
    exec_ok(store, "DELETE FROM pumpfun_coins WHERE mint_id = '" MINT_OTTER
                   "'; DELETE FROM coin_snapshots WHERE mint_id = '" MINT_OTTER "'");

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
        g_autoptr(hv_store) store = open_fresh();
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
        g_autoptr(hv_store) store = open_fresh();
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
    g_autoptr(hv_store) store = open_fresh();
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
    g_autoptr(hv_store) store = open_fresh();
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_store_check_writable(store, &error));
    g_assert_no_error(error);
    g_assert_cmpint(hv_store_count(store, "meta"), ==, 1);
    g_assert_true(hv_store_check_writable(store, &error));
    g_assert_cmpint(hv_store_count(store, "meta"), ==, 1);
    g_assert_cmpint(query_int(store, "SELECT count(*) FROM meta WHERE key = ?", "health_check"), ==,
                    1);
    /* not left inside a transaction */
    g_assert_false(hv_store_conn_in_transaction(hv_store_db(store)));

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
    g_autoptr(hv_store) store = open_fresh();
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
    hv_store_stmt *st = hv_store_stmt_new(hv_store_db(store),
                                          "SELECT status, room_name, participant_sid, "
                                          "start_time, end_time, coin_name FROM live_sessions "
                                          "WHERE id = ?",
                                          false, &error);
    g_assert_no_error(error);
    hv_store_stmt_bind_int64(st, 1, id);
    g_assert_cmpint(hv_store_stmt_step(st, &error), ==, HV_STORE_ROW);
    g_assert_cmpstr(hv_store_stmt_column_text(st, 0), ==, "active");
    g_assert_cmpstr(hv_store_stmt_column_text(st, 1), ==, "livestream:x:1");
    g_assert_cmpstr(hv_store_stmt_column_text(st, 2), ==, "PA_abc");
    g_assert_cmpint(hv_store_stmt_column_int64(st, 3), ==, T0);
    g_assert_true(hv_store_stmt_column_is_null(st, 4));
    g_assert_null(hv_store_stmt_column_text(st, 4));
    g_assert_cmpstr(hv_store_stmt_column_text(st, 5), ==, "Orbital Otter");
    g_assert_cmpint(hv_store_stmt_step(st, &error), ==, HV_STORE_DONE);
    hv_store_stmt_free(st);

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
    g_autoptr(hv_store) store = open_fresh();
    g_assert_cmpint(hv_store_count(store, "recordings"), ==, 0);
    static const char *columns[] = {"id",          "session_id",     "mint_id",
                                    "video_path",  "audio_path",     "container",
                                    "video_codec", "audio_codec",    "stored_video_codec",
                                    "width",       "height",         "start_time",
                                    "end_time",    "duration_ms",    "bytes",
                                    "dropped",     "status",         "error",
                                    "node_id",     "continuation_of"};
    g_autofree char *all = table_columns(store, "recordings");
    g_auto(GStrv) names = g_strsplit(all, ",", -1);
    g_assert_cmpuint(g_strv_length(names), ==, G_N_ELEMENTS(columns));
    for (size_t i = 0; i < G_N_ELEMENTS(columns); i++) {
        if (!g_strv_contains((const char *const *)names, columns[i])) {
            g_error("recordings lacks column %s", columns[i]);
        }
    }
    static const char *indexed[] = {"mint_id", "status", "start_time"};
    for (size_t i = 0; i < G_N_ELEMENTS(indexed); i++) {
        g_assert_cmpint(
            query_int(store,
                      STORE_SQL(store,
                                "SELECT count(*) FROM sqlite_master m, pragma_index_info(m.name) "
                                "i WHERE m.type = 'index' AND m.tbl_name = 'recordings' AND "
                                "i.name = ?",
                                "SELECT count(*) FROM pg_index x JOIN pg_attribute a ON "
                                "a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey) WHERE "
                                "x.indrelid = 'recordings'::regclass AND NOT x.indisprimary "
                                "AND a.attname = ?"),
                      indexed[i]),
            ==, 1);
    }
    /* the status CHECK refuses anything but the four states; dropped defaults to 0 */
    exec_fails(store,
               "INSERT INTO recordings (mint_id, start_time, status) VALUES ('m', 1, 'paused')",
               "check constraint");
    exec_ok(store,
            "INSERT INTO recordings (mint_id, start_time, status) VALUES ('m', 1, 'recovered')");
    g_assert_cmpint(query_int(store, "SELECT dropped FROM recordings", NULL), ==, 0);
    /* session_id must name a live session (foreign keys are on) */
    exec_fails(store,
               "INSERT INTO recordings (session_id, mint_id, start_time, status) "
               "VALUES (42, 'm', 1, 'finished')",
               "foreign key");
    g_assert_cmpint(hv_store_count(store, "recordings"), ==, 1);
}

static void
test_recordings_insert_get_update(void)
{
    g_autoptr(hv_store) store = open_fresh();
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
    g_autoptr(hv_store) store = open_fresh();
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
    test_db t;
    test_db_init(&t);
    /* a database as haven version 1 left it, with a coin and a live session in it */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store_conn) conn = hv_store_conn_open(t.target, &error);
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_conn_kind(conn), ==, engine);
        g_assert_cmpint(hv_store_migrations[0].version, ==, 1);
        g_assert_true(hv_store_conn_exec(
            conn, hv_store_migration_sql(&hv_store_migrations[0], engine), &error));
        g_assert_true(hv_store_conn_set_version(conn, 1, hv_store_migrations[0].name, &error));
        g_assert_true(hv_store_conn_exec(
            conn,
            "INSERT INTO pumpfun_coins (mint_id, name, raw_json, "
            "first_seen, last_updated) VALUES ('" MINT_OTTER "', 'Orbital Otter', '{}', 1, 2);"
            "INSERT INTO live_sessions (mint_id, status, "
            "recording_path, start_time, created_at, updated_at) "
            "VALUES ('" MINT_OTTER "', 'stopped', '/old/path.mp4', 10, 10, 10);",
            &error));
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_conn_version(conn, &error), ==, 1);
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
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
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_count(store, "recordings"), ==, 1);
        g_assert_cmpint(hv_store_count(store, "live_sessions"), ==, 1);
    }
    test_db_clear(&t);
}

/* ---- PostgreSQL alone ------------------------------------------------------------------- */

/* The migrations of both engines make the same tables: columns (names, order, types, NOT NULL)
 * and indexes. */
static void
test_pg_same_tables_as_sqlite(void)
{
    g_autoptr(hv_store) pg = open_fresh();
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) lite = hv_store_open(":memory:", &error);
    g_assert_no_error(error);
    static const char *tables[] = {"pumpfun_coins", "coin_snapshots", "live_sessions", "meta",
                                   "recordings"};
    for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
        g_autofree char *want = table_signature(lite, tables[i]);
        g_autofree char *got = table_signature(pg, tables[i]);
        g_assert_cmpstr(want, !=, "");
        if (strcmp(want, got) != 0) {
            g_error("table %s differs:\n  SQLite:     %s\n  PostgreSQL: %s", tables[i], want, got);
        }
    }
    g_autofree char *want = index_names(lite);
    g_autofree char *got = index_names(pg);
    g_assert_cmpstr(got, ==, want);
}

/* An empty database (not only an empty schema) migrates to the latest version, recording each
 * migration; opening it again changes nothing. */
static void
test_pg_fresh_database(void)
{
    g_autofree char *name = g_strdup_printf("db%d", ++n_fresh);
    g_autofree char *uri = hv_test_pg_new_database(pg_server, name);
    for (int round = 0; round < 2; round++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(uri, &error);
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
        g_assert_cmpint(query_int(store, "SELECT count(*) FROM schema_version", NULL), ==,
                        (int64_t)hv_store_n_migrations);
        for (size_t i = 0; i < hv_store_n_migrations; i++) {
            g_autofree char *sql =
                g_strdup_printf("SELECT name FROM schema_version WHERE version = %d",
                                hv_store_migrations[i].version);
            g_autofree char *recorded = query_text(store, sql, NULL);
            g_assert_cmpstr(recorded, ==, hv_store_migrations[i].name);
        }
        g_assert_true(table_exists(store, "recordings"));
        g_assert_cmpint(hv_store_count(store, "recordings"), ==, 0);
        g_autofree char *timeout = query_text(store, "SHOW statement_timeout", NULL);
        g_assert_cmpstr(timeout, ==, "10s");
    }
}

/* Reopening keeps the data and migrates nothing, also with a second store open on the same
 * database (two havens). */
static void
test_pg_reopen(void)
{
    test_db t;
    test_db_init(&t);
    json_t *rows = load_fixture_rows();
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
        g_assert_no_error(error);
        upsert_rows(store, rows, T0, 60000);
        g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
    }
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(t.target, &error);
        g_assert_no_error(error);
        g_autoptr(hv_store) second = hv_store_open(t.target, &error);
        g_assert_no_error(error);
        g_assert_cmpint(hv_store_schema_version(store), ==, hv_store_latest_version());
        g_assert_cmpint(hv_store_schema_version(second), ==, hv_store_latest_version());
        g_assert_cmpint(query_int(store, "SELECT count(*) FROM schema_version", NULL), ==,
                        (int64_t)hv_store_n_migrations);
        g_assert_cmpint(hv_store_count(second, "pumpfun_coins"), ==, N_FIXTURE);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, N_FIXTURE);
        g_assert_cmpint(
            query_int(store, "SELECT first_seen FROM pumpfun_coins WHERE mint_id = ?", MINT_OTTER),
            ==, T0);
        upsert_rows(second, rows, T0 + 61000, 60000);
        g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 2 * N_FIXTURE);
        g_assert_true(hv_store_check_writable(store, &error));
        g_assert_no_error(error);
    }
    json_decref(rows);
    test_db_clear(&t);
}

/* Asserts error is a connection failure naming the masked URI and never the password. */
static void
assert_connect_error(const GError *error, const char *masked, const char *password)
{
    g_assert_error(error, HV_ERROR, HV_EIO);
    g_test_message("%s", error->message);
    if (strstr(error->message, "cannot connect to PostgreSQL") == NULL ||
        strstr(error->message, masked) == NULL) {
        g_error("error \"%s\" should say it cannot connect to %s", error->message, masked);
    }
    if (password != NULL && strstr(error->message, password) != NULL) {
        g_error("error \"%s\" shows the password", error->message);
    }
}

/* Nothing listens there: a clear error at once, without the password. */
static void
test_pg_wrong_port(void)
{
    int64_t t0 = g_get_monotonic_time();
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) store =
        hv_store_open("postgresql://haven:s3cret-pw@127.0.0.1:1/haven", &error);
    g_assert_null(store);
    assert_connect_error(error, "postgresql://haven:***@127.0.0.1:1/haven", "s3cret-pw");
    g_assert_nonnull(strstr(error->message, "refused"));
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 6 * G_USEC_PER_SEC);

    /* libpq quotes the part of a URI it cannot decode: never the password */
    g_clear_error(&error);
    g_assert_null(hv_store_open("postgresql://haven:pw%zz-s3cret@127.0.0.1:1/haven", &error));
    assert_connect_error(error, "postgresql://haven:***@127.0.0.1:1/haven", "s3cret");
    g_clear_error(&error);
    g_assert_null(hv_store_open("postgresql://127.0.0.1:1/haven?password=pw%zz-s3cret", &error));
    assert_connect_error(error, "postgresql://127.0.0.1:1/haven?password=***", "s3cret");
}

/* A port that accepts connections but never answers (a listening socket nobody accepts on):
 * the URI's connect_timeout, else the 5 s haven adds, ends the wait. */
static void
test_pg_connect_timeouts(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    g_assert_cmpint(fd, >=, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    g_assert_cmpint(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
    g_assert_cmpint(listen(fd, 8), ==, 0);
    g_assert_cmpint(getsockname(fd, (struct sockaddr *)&sa, &len), ==, 0);
    const struct {
        const char *params;
        int64_t min_s, max_s;
    } cases[] = {
        {"?connect_timeout=2", 1, 5}, {"", 4, 9}, /* haven's default: 5 s */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *uri = g_strdup_printf("postgresql://haven@127.0.0.1:%u/haven%s",
                                               (unsigned)ntohs(sa.sin_port), cases[i].params);
        int64_t t0 = g_get_monotonic_time();
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store) store = hv_store_open(uri, &error);
        int64_t took_s = (g_get_monotonic_time() - t0) / G_USEC_PER_SEC;
        g_assert_null(store);
        assert_connect_error(error, uri, NULL);
        g_assert_nonnull(strstr(error->message, "timeout"));
        if (took_s < cases[i].min_s || took_s > cases[i].max_s) {
            g_error("%s failed after %" G_GINT64_FORMAT " s, not %" G_GINT64_FORMAT
                    "..%" G_GINT64_FORMAT " s",
                    uri, took_s, cases[i].min_s, cases[i].max_s);
        }
    }
    close(fd);
}

static void
test_pg_password_masked(void)
{
    const struct {
        const char *uri, *masked;
    } cases[] = {
        {"postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"},
        {"postgres://u:p%40w:x@h/db", "postgres://u:***@h/db"},
        {"postgresql://u@h/db?password=pw&sslmode=require",
         "postgresql://u@h/db?password=***&sslmode=require"},
        {"postgresql://u:a@h1:1,h2:2/db?connect_timeout=3&password=b",
         "postgresql://u:***@h1:1,h2:2/db?connect_timeout=3&password=***"},
        {"postgresql://u:pw@h", "postgresql://u:***@h"},
        {"postgresql://h/db", "postgresql://h/db"},
        {"postgresql:///db?host=/tmp/x", "postgresql:///db?host=/tmp/x"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *masked = hv_store_pg_mask_uri(cases[i].uri);
        g_assert_cmpstr(masked, ==, cases[i].masked);
    }
    /* A real store (trust authentication ignores the password); postgres:// works too. */
    g_autofree char *name = g_strdup_printf("t%d", ++n_fresh);
    g_autofree char *plain = hv_test_pg_new_schema(pg_server, name);
    g_assert_true(g_str_has_prefix(plain, "postgresql:///haven?"));
    const char *query = strchr(plain, '?');
    g_autofree char *with_user = g_strdup_printf("postgres://haven:s3cret-pw@/haven%s", query);
    g_autofree char *with_param = g_strdup_printf("%s&password=s3cret-pw", plain);
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) a = hv_store_open(with_user, &error);
    g_assert_no_error(error);
    g_autoptr(hv_store) b = hv_store_open(with_param, &error);
    g_assert_no_error(error);
    g_autofree char *want_a = g_strdup_printf("postgres://haven:***@/haven%s", query);
    g_autofree char *want_b = g_strdup_printf("%s&password=***", plain);
    g_assert_cmpstr(hv_store_path(a), ==, want_a);
    g_assert_cmpstr(hv_store_path(b), ==, want_b);
    g_assert_cmpint(hv_store_schema_version(b), ==, hv_store_latest_version());
}

/* The server drops the connection (pg_terminate_backend): the call that finds out fails with
 * an error, the next one reconnects, and the kept statements are prepared again. */
static void
test_pg_reconnect(void)
{
    test_db t;
    test_db_init(&t);
    json_t *rows = load_fixture_rows();
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) store = hv_store_open(t.target, &error);
    g_assert_no_error(error);
    upsert_rows(store, rows, T0, 60000);
    int64_t pid = query_int(store, "SELECT pg_backend_pid()", NULL);
    {
        g_autoptr(hv_store) admin = hv_store_open(t.target, &error);
        g_assert_no_error(error);
        g_autofree char *kill =
            g_strdup_printf("SELECT pg_terminate_backend(%" G_GINT64_FORMAT ")", pid);
        g_assert_cmpint(query_int(admin, kill, NULL), ==, 1);
        g_autofree char *gone = g_strdup_printf(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %" G_GINT64_FORMAT, pid);
        for (int i = 0; i < 500 && query_int(admin, gone, NULL) > 0; i++) {
            g_usleep(10000);
        }
        g_assert_cmpint(query_int(admin, gone, NULL), ==, 0);
    }
    g_assert_false(hv_store_check_writable(store, &error));
    g_assert_error(error, HV_ERROR, HV_EIO);
    g_clear_error(&error);
    g_assert_cmpint(hv_store_count(store, "pumpfun_coins"), ==, N_FIXTURE);
    g_assert_cmpint(query_int(store, "SELECT pg_backend_pid()", NULL), !=, pid);
    g_autofree char *timeout = query_text(store, "SHOW statement_timeout", NULL);
    g_assert_cmpstr(timeout, ==, "10s");
    upsert_rows(store, rows, T0 + 61000, 60000);
    g_assert_cmpint(hv_store_count(store, "coin_snapshots"), ==, 2 * N_FIXTURE);
    json_decref(rows);
    test_db_clear(&t);
}

/* ---- the shared pump.fun roster ------------------------------------------------------- */

#define ROSTER_A "[{\"mint\":\"a\"}]"
#define ROSTER_B "[{\"mint\":\"b\"}]"

/* Claims for node_id; asserts the answer, and returns the body (transfer full, nullable). */
static char *
claim_roster(hv_store *store, const char *node_id, int64_t ttl_ms, int64_t lease_ms, int expected,
             int64_t *fetched_at_out)
{
    g_autoptr(GError) error = NULL;
    char *body = (char *)"unset";
    int64_t fetched_at = -1;
    int got = hv_store_roster_claim(store, node_id, ttl_ms, lease_ms, &body, &fetched_at, &error);
    g_assert_no_error(error);
    g_assert_cmpint(got, ==, expected);
    if (body == NULL) {
        g_assert_cmpint(fetched_at, ==, 0);
    }
    if (fetched_at_out != NULL) {
        *fetched_at_out = fetched_at;
    }
    return body;
}

static void
publish_roster(hv_store *store, const char *node_id, const char *body)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_store_roster_publish(store, node_id, body, &error));
    g_assert_no_error(error);
}

static void
release_roster(hv_store *store, const char *node_id)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_store_roster_release(store, node_id, &error));
    g_assert_no_error(error);
}

static int64_t
db_now_ms(hv_store *store)
{
    return query_int(store, "SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint", NULL);
}

/* Two nodes: A takes the lease, B waits, A publishes, B reads A's roster. */
static void
test_pg_roster_share_two_nodes(void)
{
    test_db t;
    test_db_init(&t);
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) a = hv_store_open(t.target, &error);
    g_assert_no_error(error);
    g_autoptr(hv_store) b = hv_store_open(t.target, &error);
    g_assert_no_error(error);

    int64_t before = db_now_ms(a);
    g_assert_null(claim_roster(a, "node-a", 60000, 30000, HV_STORE_ROSTER_FETCH, NULL));
    g_assert_cmpint(query_int(a, "SELECT lease_until FROM roster_share", NULL), >=, before + 30000);
    g_autofree char *owner = query_text(b, "SELECT lease_owner FROM roster_share", NULL);
    g_assert_cmpstr(owner, ==, "node-a");
    g_assert_null(claim_roster(b, "node-b", 60000, 30000, HV_STORE_ROSTER_BUSY, NULL));
    /* The holder asking again keeps the right to fetch. */
    g_assert_null(claim_roster(a, "node-a", 60000, 30000, HV_STORE_ROSTER_FETCH, NULL));
    /* Releasing a lease another node holds changes nothing. */
    release_roster(b, "node-b");
    g_assert_null(claim_roster(b, "node-b", 60000, 30000, HV_STORE_ROSTER_BUSY, NULL));

    publish_roster(a, "node-a", ROSTER_A);
    int64_t after = db_now_ms(a);
    int64_t fetched_at = 0;
    g_autofree char *body =
        claim_roster(b, "node-b", 60000, 30000, HV_STORE_ROSTER_FRESH, &fetched_at);
    g_assert_cmpstr(body, ==, ROSTER_A);
    g_assert_cmpint(fetched_at, >=, before);
    g_assert_cmpint(fetched_at, <=, after);
    g_autofree char *by = query_text(b, "SELECT fetched_by FROM roster_share", NULL);
    g_assert_cmpstr(by, ==, "node-a");
    g_assert_cmpint(query_int(b, "SELECT lease_owner IS NULL FROM roster_share", NULL), ==, 1);
    g_assert_cmpint(query_int(b, "SELECT lease_until FROM roster_share", NULL), ==, 0);
    /* A fresh roster is fresh for its publisher too. */
    g_autofree char *again = claim_roster(a, "node-a", 60000, 30000, HV_STORE_ROSTER_FRESH, NULL);
    g_assert_cmpstr(again, ==, ROSTER_A);
    test_db_clear(&t);
}

/* Past the TTL the next claim fetches; the others get the stale roster while it does. */
static void
test_pg_roster_share_ttl(void)
{
    test_db t;
    test_db_init(&t);
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) a = hv_store_open(t.target, &error);
    g_assert_no_error(error);
    g_autoptr(hv_store) b = hv_store_open(t.target, &error);
    g_assert_no_error(error);

    g_assert_null(claim_roster(a, "node-a", 1, 30000, HV_STORE_ROSTER_FETCH, NULL));
    publish_roster(a, "node-a", ROSTER_A);
    int64_t published_at = query_int(a, "SELECT fetched_at FROM roster_share", NULL);
    g_usleep(5000);
    g_assert_null(claim_roster(b, "node-b", 1, 30000, HV_STORE_ROSTER_FETCH, NULL));
    int64_t fetched_at = 0;
    g_autofree char *stale = claim_roster(a, "node-a", 1, 30000, HV_STORE_ROSTER_BUSY, &fetched_at);
    g_assert_cmpstr(stale, ==, ROSTER_A);
    g_assert_cmpint(fetched_at, ==, published_at);
    /* B's fetch failed: it lets go, and A may fetch. */
    release_roster(b, "node-b");
    g_assert_cmpint(query_int(a, "SELECT lease_owner IS NULL FROM roster_share", NULL), ==, 1);
    g_assert_null(claim_roster(a, "node-a", 1, 30000, HV_STORE_ROSTER_FETCH, NULL));
    publish_roster(a, "node-a", ROSTER_B);
    g_autofree char *fresh = claim_roster(b, "node-b", 60000, 30000, HV_STORE_ROSTER_FRESH, NULL);
    g_assert_cmpstr(fresh, ==, ROSTER_B);
    test_db_clear(&t);
}

/* An expired lease is anyone's; the late publisher's roster is still stored, and the lease
 * stays with the node that took it over. */
static void
test_pg_roster_share_lease_expires(void)
{
    test_db t;
    test_db_init(&t);
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store) a = hv_store_open(t.target, &error);
    g_assert_no_error(error);
    g_autoptr(hv_store) b = hv_store_open(t.target, &error);
    g_assert_no_error(error);

    g_assert_null(claim_roster(a, "node-a", 60000, 1, HV_STORE_ROSTER_FETCH, NULL));
    g_usleep(5000);
    g_assert_null(claim_roster(b, "node-b", 60000, 30000, HV_STORE_ROSTER_FETCH, NULL));
    g_assert_null(claim_roster(a, "node-a", 60000, 1, HV_STORE_ROSTER_BUSY, NULL));

    publish_roster(a, "node-a", ROSTER_A);
    g_autofree char *owner = query_text(a, "SELECT lease_owner FROM roster_share", NULL);
    g_assert_cmpstr(owner, ==, "node-b");
    g_assert_cmpint(query_int(a, "SELECT lease_until FROM roster_share", NULL), >, 0);
    g_autofree char *body = claim_roster(a, "node-a", 60000, 1, HV_STORE_ROSTER_FRESH, NULL);
    g_assert_cmpstr(body, ==, ROSTER_A);

    publish_roster(b, "node-b", ROSTER_B);
    g_assert_cmpint(query_int(a, "SELECT lease_owner IS NULL FROM roster_share", NULL), ==, 1);
    g_autofree char *by = query_text(a, "SELECT fetched_by FROM roster_share", NULL);
    g_assert_cmpstr(by, ==, "node-b");
    g_autofree char *latest = claim_roster(a, "node-a", 60000, 1, HV_STORE_ROSTER_FRESH, NULL);
    g_assert_cmpstr(latest, ==, ROSTER_B);
    test_db_clear(&t);
}

/* Bad arguments: no node id, no lease, no body. */
static void
test_pg_roster_share_invalid(void)
{
    g_autoptr(hv_store) store = open_fresh();
    char *body = NULL;
    int64_t fetched_at = 0;
    GError *error = NULL;
    g_assert_cmpint(hv_store_roster_claim(store, "", 1000, 1000, &body, &fetched_at, &error), ==,
                    -1);
    g_assert_error(error, HV_ERROR, HV_EINVAL);
    g_clear_error(&error);
    g_assert_cmpint(hv_store_roster_claim(store, "n", 1000, 0, &body, &fetched_at, &error), ==, -1);
    g_assert_error(error, HV_ERROR, HV_EINVAL);
    g_clear_error(&error);
    g_assert_false(hv_store_roster_publish(store, "n", NULL, &error));
    g_assert_error(error, HV_ERROR, HV_EINVAL);
    g_clear_error(&error);
    g_assert_null(body);
}

/* SQLite has one node: nothing to share. */
static void
test_roster_share_needs_pg(void)
{
    g_autoptr(hv_store) store = open_fresh();
    char *body = NULL;
    int64_t fetched_at = 0;
    GError *error = NULL;
    g_assert_cmpint(hv_store_roster_claim(store, "n", 1000, 1000, &body, &fetched_at, &error), ==,
                    -1);
    g_assert_error(error, HV_ERROR, HV_EINVAL);
    g_assert_nonnull(strstr(error->message, "needs PostgreSQL"));
    g_clear_error(&error);
    g_assert_null(body);
    g_assert_false(hv_store_roster_publish(store, "n", ROSTER_A, &error));
    g_assert_error(error, HV_ERROR, HV_EINVAL);
    g_clear_error(&error);
    g_assert_false(hv_store_roster_release(store, "n", &error));
    g_assert_error(error, HV_ERROR, HV_EINVAL);
    g_clear_error(&error);
}

/* ---- main ------------------------------------------------------------------------------- */

/* Registers /store/<engine>/path. */
static void
add(const char *path, GTestFunc fn)
{
    g_autofree char *full =
        g_strdup_printf("/store/%s%s", engine == HV_STORE_PG ? "pg" : "sqlite", path);
    g_test_add_func(full, fn);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    engine =
        g_strcmp0(g_getenv("HAVEN_TEST_STORE_ENGINE"), "pg") == 0 ? HV_STORE_PG : HV_STORE_SQLITE;
    if (engine == HV_STORE_PG) {
        /* No PostgreSQL is a failure, not a skip: tools/install-deps.sh installs it. */
        g_autoptr(GError) error = NULL;
        pg_server = hv_test_pg_start(&error);
        if (pg_server == NULL) {
            g_printerr("%s\n", error->message);
            g_auto(GStrv) lines = g_strsplit(error->message, "\n", 2);
            printf("Bail out! %s\n", lines[0]);
            return 1;
        }
    }

    add("/schema/migrations-table", test_migrations_table);
    add("/schema/open-fresh", test_open_fresh_schema);
    add("/schema/refuses-newer", test_open_refuses_newer_schema);
    add("/coins/upsert-fixture", test_upsert_fixture);
    add("/coins/upsert-updates", test_upsert_updates);
    add("/coins/mint-id-key-and-failures", test_upsert_mint_id_key_and_empty);
    add("/snapshots/interval", test_snapshot_interval);
    add("/snapshots/prune", test_prune_snapshots);
    add("/health/writable-and-count", test_writable_and_count);
    add("/live-sessions/lifecycle", test_live_sessions_lifecycle);
    add("/recordings/schema", test_recordings_schema);
    add("/recordings/insert-get-update", test_recordings_insert_get_update);
    add("/recordings/list-count-delete", test_recordings_list_count_delete);
    add("/recordings/migrate-from-v1", test_recordings_migrate_from_v1);
    if (engine == HV_STORE_SQLITE) {
        add("/schema/file-wal-reopen", test_open_file_wal_reopen);
        add("/schema/bad-path", test_open_bad_path);
        add("/roster-share/needs-pg", test_roster_share_needs_pg);
    } else {
        add("/schema/same-tables-as-sqlite", test_pg_same_tables_as_sqlite);
        add("/schema/fresh-database", test_pg_fresh_database);
        add("/schema/reopen", test_pg_reopen);
        add("/connect/wrong-port", test_pg_wrong_port);
        add("/connect/timeouts", test_pg_connect_timeouts);
        add("/connect/password-masked", test_pg_password_masked);
        add("/connect/reconnect", test_pg_reconnect);
        add("/roster-share/two-nodes", test_pg_roster_share_two_nodes);
        add("/roster-share/ttl", test_pg_roster_share_ttl);
        add("/roster-share/lease-expires", test_pg_roster_share_lease_expires);
        add("/roster-share/invalid", test_pg_roster_share_invalid);
    }

    int rc = g_test_run();
    hv_test_pg_stop(pg_server);
    return rc;
}

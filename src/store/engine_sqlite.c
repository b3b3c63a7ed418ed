/* The SQLite engine: a database file in WAL mode (or ":memory:"), busy timeout 5 s, foreign
 * keys on; PRAGMA user_version is the schema version (as in every haven before PostgreSQL). */
#include "engine.h"

#include "core/error.h"

#include <sqlite3.h>

typedef struct {
    hv_store_conn base;
    sqlite3 *db;
} sqlite_conn;

typedef struct {
    hv_store_stmt base;
    sqlite3_stmt *st;
} sqlite_stmt;

static sqlite3 *
db_of(hv_store_conn *conn)
{
    return ((sqlite_conn *)conn)->db;
}

static sqlite3_stmt *
st_of(hv_store_stmt *st)
{
    return ((sqlite_stmt *)st)->st;
}

static bool
sqlite_exec(hv_store_conn *conn, const char *sql, GError **error)
{
    char *msg = NULL;
    if (sqlite3_exec(db_of(conn), sql, NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, HV_ERROR, HV_EIO, "%s", msg != NULL ? msg : sqlite3_errmsg(db_of(conn)));
        sqlite3_free(msg);
        return false;
    }
    return true;
}

static void
sqlite_close(hv_store_conn *conn)
{
    sqlite_conn *c = (sqlite_conn *)conn;
    if (c->db != NULL && sqlite3_close(c->db) != SQLITE_OK) {
        g_warning("closing database %s: %s", c->base.display, sqlite3_errmsg(c->db));
    }
    g_free(c->base.display);
    g_free(c);
}

static hv_store_conn *
sqlite_open(const char *path, GError **error)
{
    sqlite_conn *c = g_new0(sqlite_conn, 1);
    c->base.engine = &hv_store_engine_sqlite;
    c->base.display = g_strdup(path);
    int rc = sqlite3_open_v2(
        path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot open database %s: %s", path,
                    c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite_close(&c->base);
        return NULL;
    }
    sqlite3_busy_timeout(c->db, 5000);
    sqlite3_extended_result_codes(c->db, 1);
    /* WAL: readers never block the writer, and a crash loses at most the last transaction.
     * synchronous=NORMAL is durable across application crashes in WAL mode. */
    if (!sqlite_exec(&c->base,
                     "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                     "PRAGMA foreign_keys = ON;",
                     error)) {
        g_prefix_error(error, "cannot use database %s: ", path);
        sqlite_close(&c->base);
        return NULL;
    }
    return &c->base;
}

static bool
sqlite_in_transaction(hv_store_conn *conn)
{
    return sqlite3_get_autocommit(db_of(conn)) == 0;
}

static int64_t
sqlite_changes(hv_store_conn *conn)
{
    return sqlite3_changes64(db_of(conn));
}

static int
sqlite_version(hv_store_conn *conn, GError **error)
{
    sqlite3_stmt *st = NULL;
    int v = -1;
    if (sqlite3_prepare_v2(db_of(conn), "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int(st, 0);
    } else {
        g_set_error(error, HV_ERROR, HV_EIO, "%s", sqlite3_errmsg(db_of(conn)));
    }
    sqlite3_finalize(st);
    return v;
}

static bool
sqlite_lock_schema(hv_store_conn *conn, GError **error)
{
    return true; /* BEGIN IMMEDIATE already holds the database's write lock */
}

static bool
sqlite_set_version(hv_store_conn *conn, int version, const char *name, GError **error)
{
    g_autofree char *sql = g_strdup_printf("PRAGMA user_version = %d", version);
    return sqlite_exec(conn, sql, error);
}

static hv_store_stmt *
sqlite_prepare(hv_store_conn *conn, const char *sql, bool persistent, GError **error)
{
    sqlite_stmt *s = g_new0(sqlite_stmt, 1);
    s->base.conn = conn;
    if (sqlite3_prepare_v3(db_of(conn), sql, -1, persistent ? SQLITE_PREPARE_PERSISTENT : 0, &s->st,
                           NULL) != SQLITE_OK) {
        g_set_error(error, HV_ERROR, HV_EIO, "%s", sqlite3_errmsg(db_of(conn)));
        sqlite3_finalize(s->st);
        g_free(s);
        return NULL;
    }
    return &s->base;
}

static void
sqlite_bind(hv_store_stmt *st, int idx, const hv_store_value *v)
{
    switch (v->type) {
    case HV_STORE_VALUE_INT:
        sqlite3_bind_int64(st_of(st), idx, v->i);
        break;
    case HV_STORE_VALUE_REAL:
        sqlite3_bind_double(st_of(st), idx, v->d);
        break;
    case HV_STORE_VALUE_TEXT:
        sqlite3_bind_text(st_of(st), idx, v->s, -1, SQLITE_TRANSIENT);
        break;
    case HV_STORE_VALUE_NULL:
    default:
        sqlite3_bind_null(st_of(st), idx);
        break;
    }
}

static int
sqlite_step(hv_store_stmt *st, GError **error)
{
    int rc = sqlite3_step(st_of(st));
    if (rc == SQLITE_ROW) {
        return HV_STORE_ROW;
    }
    if (rc == SQLITE_DONE) {
        return HV_STORE_DONE;
    }
    g_set_error(error, HV_ERROR, HV_EIO, "%s", sqlite3_errmsg(db_of(st->conn)));
    return -1;
}

static bool
sqlite_column_is_null(hv_store_stmt *st, int col)
{
    return sqlite3_column_type(st_of(st), col) == SQLITE_NULL;
}

static int64_t
sqlite_column_int64(hv_store_stmt *st, int col)
{
    return sqlite3_column_int64(st_of(st), col);
}

static double
sqlite_column_double(hv_store_stmt *st, int col)
{
    return sqlite3_column_double(st_of(st), col);
}

static const char *
sqlite_column_text(hv_store_stmt *st, int col)
{
    return (const char *)sqlite3_column_text(st_of(st), col);
}

static void
sqlite_reset(hv_store_stmt *st)
{
    sqlite3_reset(st_of(st));
    sqlite3_clear_bindings(st_of(st));
}

static void
sqlite_finalize(hv_store_stmt *st)
{
    sqlite3_finalize(st_of(st));
    g_free(st);
}

const hv_store_engine hv_store_engine_sqlite = {
    .kind = HV_STORE_SQLITE,
    .name = "SQLite",
    .open = sqlite_open,
    .close = sqlite_close,
    .exec = sqlite_exec,
    /* IMMEDIATE: take the write lock now, so that a writer waits (busy timeout) at BEGIN
     * rather than failing halfway through. */
    .begin_sql = "BEGIN IMMEDIATE",
    .in_transaction = sqlite_in_transaction,
    .changes = sqlite_changes,
    .version = sqlite_version,
    .lock_schema = sqlite_lock_schema,
    .set_version = sqlite_set_version,
    .prepare = sqlite_prepare,
    .bind = sqlite_bind,
    .step = sqlite_step,
    .column_is_null = sqlite_column_is_null,
    .column_int64 = sqlite_column_int64,
    .column_double = sqlite_column_double,
    .column_text = sqlite_column_text,
    .reset = sqlite_reset,
    .finalize = sqlite_finalize,
};

/* The engine interface's front: picks the engine from the target's form and forwards each call
 * to it (engine.h). */
#include "engine.h"

bool
hv_store_target_is_pg(const char *target)
{
    return g_str_has_prefix(target, "postgresql://") || g_str_has_prefix(target, "postgres://");
}

hv_store_conn *
hv_store_conn_open(const char *target, GError **error)
{
    const hv_store_engine *e =
        hv_store_target_is_pg(target) ? &hv_store_engine_pg : &hv_store_engine_sqlite;
    return e->open(target, error);
}

void
hv_store_conn_close(hv_store_conn *conn)
{
    if (conn != NULL) {
        conn->engine->close(conn);
    }
}

hv_store_engine_kind
hv_store_conn_kind(const hv_store_conn *conn)
{
    return conn->engine->kind;
}

const char *
hv_store_conn_display(const hv_store_conn *conn)
{
    return conn->display;
}

bool
hv_store_conn_exec(hv_store_conn *conn, const char *sql, GError **error)
{
    return conn->engine->exec(conn, sql, error);
}

bool
hv_store_conn_begin(hv_store_conn *conn, GError **error)
{
    return conn->engine->exec(conn, conn->engine->begin_sql, error);
}

bool
hv_store_conn_commit(hv_store_conn *conn, GError **error)
{
    return conn->engine->exec(conn, "COMMIT", error);
}

void
hv_store_conn_rollback(hv_store_conn *conn)
{
    g_autoptr(GError) error = NULL;
    if (!conn->engine->exec(conn, "ROLLBACK", &error)) {
        g_debug("rollback on %s: %s", conn->display, error->message);
    }
}

bool
hv_store_conn_in_transaction(hv_store_conn *conn)
{
    return conn->engine->in_transaction(conn);
}

int64_t
hv_store_conn_changes(hv_store_conn *conn)
{
    return conn->engine->changes(conn);
}

int
hv_store_conn_version(hv_store_conn *conn, GError **error)
{
    return conn->engine->version(conn, error);
}

bool
hv_store_conn_lock_schema(hv_store_conn *conn, GError **error)
{
    return conn->engine->lock_schema(conn, error);
}

bool
hv_store_conn_set_version(hv_store_conn *conn, int version, const char *name, GError **error)
{
    return conn->engine->set_version(conn, version, name, error);
}

hv_store_stmt *
hv_store_stmt_new(hv_store_conn *conn, const char *sql, bool persistent, GError **error)
{
    return conn->engine->prepare(conn, sql, persistent, error);
}

void
hv_store_stmt_free(hv_store_stmt *st)
{
    if (st != NULL) {
        st->conn->engine->finalize(st);
    }
}

void
hv_store_stmt_bind_null(hv_store_stmt *st, int idx)
{
    hv_store_value v = {.type = HV_STORE_VALUE_NULL};
    st->conn->engine->bind(st, idx, &v);
}

void
hv_store_stmt_bind_int64(hv_store_stmt *st, int idx, int64_t i)
{
    hv_store_value v = {.type = HV_STORE_VALUE_INT, .i = i};
    st->conn->engine->bind(st, idx, &v);
}

void
hv_store_stmt_bind_double(hv_store_stmt *st, int idx, double d)
{
    hv_store_value v = {.type = HV_STORE_VALUE_REAL, .d = d};
    st->conn->engine->bind(st, idx, &v);
}

void
hv_store_stmt_bind_text(hv_store_stmt *st, int idx, const char *s)
{
    hv_store_value v = {.type = s != NULL ? HV_STORE_VALUE_TEXT : HV_STORE_VALUE_NULL, .s = s};
    st->conn->engine->bind(st, idx, &v);
}

int
hv_store_stmt_step(hv_store_stmt *st, GError **error)
{
    return st->conn->engine->step(st, error);
}

bool
hv_store_stmt_column_is_null(hv_store_stmt *st, int col)
{
    return st->conn->engine->column_is_null(st, col);
}

int64_t
hv_store_stmt_column_int64(hv_store_stmt *st, int col)
{
    return st->conn->engine->column_int64(st, col);
}

double
hv_store_stmt_column_double(hv_store_stmt *st, int col)
{
    return st->conn->engine->column_double(st, col);
}

const char *
hv_store_stmt_column_text(hv_store_stmt *st, int col)
{
    return st->conn->engine->column_text(st, col);
}

void
hv_store_stmt_reset(hv_store_stmt *st)
{
    st->conn->engine->reset(st);
}

bool
hv_store_stmt_run(hv_store_stmt *st, GError **error)
{
    int rc;
    while ((rc = hv_store_stmt_step(st, error)) == HV_STORE_ROW) {
    }
    return rc == HV_STORE_DONE;
}

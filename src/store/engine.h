/* The store's database engines behind one small interface: a connection (hv_store_conn) runs
 * SQL text and statements (hv_store_stmt) with bound parameters and result rows, the way
 * SQLite's prepare/bind/step/column API does. Two implementations: engine_sqlite.c (a file or
 * ":memory:") and engine_pg.c (PostgreSQL through libpq, for "postgresql://" and "postgres://"
 * URIs). Nothing outside src/store sees which one is in use.
 *
 * SQL is written once with SQLite's placeholders, "?" or "?NNN"; the PostgreSQL engine rewrites
 * them to $1..$n. Where the dialects differ the caller picks a text per engine
 * (hv_store_conn_kind), as the migrations do. Values travel as 64-bit integers, doubles, text or
 * NULL; booleans are 0/1 integers on both engines.
 *
 * Main thread only, like the store. Every call blocks until the database answers: SQLite
 * within its busy timeout, PostgreSQL within connect_timeout and statement_timeout.
 */
#ifndef HV_STORE_ENGINE_H
#define HV_STORE_ENGINE_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum { HV_STORE_SQLITE, HV_STORE_PG } hv_store_engine_kind;

typedef struct hv_store_engine hv_store_engine;
typedef struct hv_store_conn hv_store_conn;
typedef struct hv_store_stmt hv_store_stmt;

/* hv_store_stmt_step's answers (-1: error, with the GError set). */
#define HV_STORE_DONE 0
#define HV_STORE_ROW  1

typedef enum {
    HV_STORE_VALUE_NULL,
    HV_STORE_VALUE_INT,
    HV_STORE_VALUE_REAL,
    HV_STORE_VALUE_TEXT
} hv_store_value_type;

/* A parameter value; text is copied when bound. */
typedef struct {
    hv_store_value_type type;
    int64_t i;
    double d;
    const char *s;
} hv_store_value;

/* What an engine implements. Connections and statements start with the generic part below
 * (each engine's own struct embeds it first). */
struct hv_store_engine {
    hv_store_engine_kind kind;
    const char *name;
    /* (transfer full) or NULL + error; sets up the session (pragmas, timeouts). */
    hv_store_conn *(*open)(const char *target, GError **error);
    void (*close)(hv_store_conn *conn);
    /* One or more statements without parameters or results. */
    bool (*exec)(hv_store_conn *conn, const char *sql, GError **error);
    const char *begin_sql; /* starts a write transaction */
    bool (*in_transaction)(hv_store_conn *conn);
    /* Rows changed by the last INSERT, UPDATE or DELETE. */
    int64_t (*changes)(hv_store_conn *conn);
    /* The schema version recorded in the database (0: none yet), -1 + error. */
    int (*version)(hv_store_conn *conn, GError **error);
    /* Inside a transaction: waits until no other process migrates this database. */
    bool (*lock_schema)(hv_store_conn *conn, GError **error);
    /* Records that migration `version` (named name) is applied; inside its transaction. */
    bool (*set_version)(hv_store_conn *conn, int version, const char *name, GError **error);
    /* persistent: the statement is kept and run many times (prepared once per session on the
     * server, where it stays until the connection closes). */
    hv_store_stmt *(*prepare)(hv_store_conn *conn, const char *sql, bool persistent,
                              GError **error);
    void (*bind)(hv_store_stmt *st, int idx, const hv_store_value *v);
    int (*step)(hv_store_stmt *st, GError **error);
    bool (*column_is_null)(hv_store_stmt *st, int col);
    int64_t (*column_int64)(hv_store_stmt *st, int col);
    double (*column_double)(hv_store_stmt *st, int col);
    const char *(*column_text)(hv_store_stmt *st, int col);
    /* Ready to bind and step again: drops the bindings and the result. */
    void (*reset)(hv_store_stmt *st);
    void (*finalize)(hv_store_stmt *st);
};

struct hv_store_conn {
    const hv_store_engine *engine;
    char *display; /* the target as printed: a URI's password masked */
};

struct hv_store_stmt {
    hv_store_conn *conn;
};

extern const hv_store_engine hv_store_engine_sqlite;
extern const hv_store_engine hv_store_engine_pg;

/* True for the targets the PostgreSQL engine opens: "postgresql://..." and "postgres://...". */
bool hv_store_target_is_pg(const char *target);
/* (transfer full) a libpq URI with its password (in the user info, or a password= parameter)
 * replaced by "***". */
char *hv_store_pg_mask_uri(const char *uri);

/* ---- connections ---- */

/* Opens target with the engine its form selects. (transfer full) or NULL + error (HV_EIO). */
hv_store_conn *hv_store_conn_open(const char *target, GError **error);
void hv_store_conn_close(hv_store_conn *conn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_store_conn, hv_store_conn_close)

hv_store_engine_kind hv_store_conn_kind(const hv_store_conn *conn);
/* (transfer none) the target with any password masked, for messages. */
const char *hv_store_conn_display(const hv_store_conn *conn);
bool hv_store_conn_exec(hv_store_conn *conn, const char *sql, GError **error);
bool hv_store_conn_begin(hv_store_conn *conn, GError **error);
bool hv_store_conn_commit(hv_store_conn *conn, GError **error);
/* Ends a failed transaction; logs (at debug level) when even that fails. */
void hv_store_conn_rollback(hv_store_conn *conn);
bool hv_store_conn_in_transaction(hv_store_conn *conn);
int64_t hv_store_conn_changes(hv_store_conn *conn);
int hv_store_conn_version(hv_store_conn *conn, GError **error);
bool hv_store_conn_lock_schema(hv_store_conn *conn, GError **error);
bool hv_store_conn_set_version(hv_store_conn *conn, int version, const char *name, GError **error);

/* ---- statements ---- */

/* (transfer full) or NULL + error. An error in the SQL may only show at the first step. */
hv_store_stmt *hv_store_stmt_new(hv_store_conn *conn, const char *sql, bool persistent,
                                 GError **error);
void hv_store_stmt_free(hv_store_stmt *st);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_store_stmt, hv_store_stmt_free)

/* Parameters count from 1. Text may be NULL (binds NULL). */
void hv_store_stmt_bind_null(hv_store_stmt *st, int idx);
void hv_store_stmt_bind_int64(hv_store_stmt *st, int idx, int64_t v);
void hv_store_stmt_bind_double(hv_store_stmt *st, int idx, double v);
void hv_store_stmt_bind_text(hv_store_stmt *st, int idx, const char *s);
/* Runs the statement on the first call; HV_STORE_ROW while rows remain, then HV_STORE_DONE;
 * -1 + error (HV_EIO, the engine's message). */
int hv_store_stmt_step(hv_store_stmt *st, GError **error);
/* Columns of the current row count from 0; NULL reads as 0, 0.0 or a NULL string. Text stays
 * valid until the next step, reset or free. */
bool hv_store_stmt_column_is_null(hv_store_stmt *st, int col);
int64_t hv_store_stmt_column_int64(hv_store_stmt *st, int col);
double hv_store_stmt_column_double(hv_store_stmt *st, int col);
const char *hv_store_stmt_column_text(hv_store_stmt *st, int col);
void hv_store_stmt_reset(hv_store_stmt *st);

/* Steps st to its end: true when it ran without error (rows, if any, are skipped). */
bool hv_store_stmt_run(hv_store_stmt *st, GError **error);

#endif

/* The PostgreSQL engine, through libpq: HAVEN_DB=postgresql://user:password@host:port/db?...
 * (or postgres://), any URI libpq takes.
 *
 * Timeouts: the URI gets connect_timeout=5 and TCP keepalives / tcp_user_timeout unless it sets
 * them, and every session runs with statement_timeout = 10 s, so no call waits for the server
 * for long. A connection the server or the network dropped is re-opened (PQreset) at the next
 * call, after the failing call reported its error.
 *
 * Statements run with PQexecParams and text parameters ("?" rewritten to $n); persistent ones
 * are prepared on the server once per connection (PQprepare, PQexecPrepared). Results come back
 * in text form and are parsed on read. The schema version is the largest version in a
 * schema_version table (one row per migration applied); an advisory lock serializes migrations
 * of one database by several processes.
 */
#include "engine.h"

#include "core/error.h"

#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

/* Type OIDs from PostgreSQL's catalog (pg_type.dat); libpq-fe.h does not carry them. */
#define PG_BOOLOID   16
#define PG_INT8OID   20
#define PG_FLOAT8OID 701

/* The session every connection runs: statements that take longer are cancelled by the server;
 * NOTICEs (such as "relation already exists, skipping") are not sent. */
#define PG_SESSION_SETUP "SET statement_timeout = 10000; SET client_min_messages = warning"

/* pg_advisory_xact_lock key taken while migrating ("hvsm"). */
#define PG_MIGRATION_LOCK "1752594285"

typedef struct {
    hv_store_conn base;
    PGconn *pg;
    char **passwords; /* never printed: scrubbed from libpq's messages */
    int64_t changes;
    unsigned generation; /* counts sessions: prepared statements live in one */
    unsigned next_name;
} pg_conn;

typedef struct {
    hv_store_stmt base;
    char *sql; /* with $n placeholders */
    int n_params;
    char **values; /* n_params texts; NULL: SQL NULL */
    Oid *types;    /* 0: let the server infer it */
    bool persistent;
    char name[24];       /* persistent: the prepared statement's name */
    unsigned generation; /* of the session it was prepared in (0: not yet) */
    bool ran;
    PGresult *res;
    int row;
} pg_stmt;

static pg_conn *
pg_of(hv_store_conn *conn)
{
    return (pg_conn *)conn;
}

static pg_stmt *
stmt_of(hv_store_stmt *st)
{
    return (pg_stmt *)st;
}

/* ---- URIs ------------------------------------------------------------------------------- */

/* Where a libpq URI holds passwords: in the user info ("user:password@host") and as password=
 * parameters. Fills up to max (offset, length) pairs, in order; returns how many. */
typedef struct {
    size_t start, len;
} span;

static size_t
password_spans(const char *uri, span *out, size_t max)
{
    const char *auth = strstr(uri, "://");
    if (auth == NULL) {
        return 0;
    }
    auth += 3;
    size_t n = 0, auth_len = strcspn(auth, "/?");
    const char *at = g_strrstr_len(auth, (gssize)auth_len, "@");
    const char *colon = at != NULL ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon != NULL && n < max) {
        out[n++] = (span){(size_t)(colon + 1 - uri), (size_t)(at - colon - 1)};
    }
    for (const char *p = strchr(auth + auth_len, '?'); p != NULL && n < max;
         p = strchr(p + 1, '&')) {
        if (strncmp(p + 1, "password=", 9) == 0) {
            out[n++] = (span){(size_t)(p + 10 - uri), strcspn(p + 10, "&")};
        }
    }
    return n;
}

char *
hv_store_pg_mask_uri(const char *uri)
{
    span spans[8];
    size_t n = password_spans(uri, spans, G_N_ELEMENTS(spans));
    GString *out = g_string_new(NULL);
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        g_string_append_len(out, uri + from, (gssize)(spans[i].start - from));
        g_string_append(out, "***");
        from = spans[i].start + spans[i].len;
    }
    g_string_append(out, uri + from);
    return g_string_free(out, FALSE);
}

/* (transfer full) The passwords in uri as written and percent-decoded (NULL-terminated), to
 * scrub from messages: libpq quotes parts of a URI it cannot parse. */
static char **
uri_passwords(const char *uri)
{
    span spans[8];
    size_t n = password_spans(uri, spans, G_N_ELEMENTS(spans));
    GPtrArray *out = g_ptr_array_new();
    for (size_t i = 0; i < n; i++) {
        if (spans[i].len == 0) {
            continue;
        }
        char *raw = g_strndup(uri + spans[i].start, spans[i].len);
        char *decoded = g_uri_unescape_string(raw, NULL);
        g_ptr_array_add(out, raw);
        if (decoded != NULL && decoded[0] != '\0' && strcmp(decoded, raw) != 0) {
            g_ptr_array_add(out, decoded);
        } else {
            g_free(decoded);
        }
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

/* (transfer full) SQL with SQLite's "?" and "?NNN" placeholders as $n; *n_params gets the
 * largest parameter number. Quoted text, quoted names and comments are left alone. */
static char *
translate_placeholders(const char *sql, int *n_params)
{
    GString *out = g_string_sized_new(strlen(sql) + 16);
    int next = 0, max = 0;
    const char *p = sql;
    while (*p != '\0') {
        if (*p == '\'' || *p == '"') {
            const char *end = strchr(p + 1, *p); /* '' inside text: two quoted runs in a row */
            size_t n = end != NULL ? (size_t)(end + 1 - p) : strlen(p);
            g_string_append_len(out, p, (gssize)n);
            p += n;
        } else if (p[0] == '-' && p[1] == '-') {
            size_t n = strcspn(p, "\n");
            g_string_append_len(out, p, (gssize)n);
            p += n;
        } else if (p[0] == '/' && p[1] == '*') {
            const char *end = strstr(p + 2, "*/");
            size_t n = end != NULL ? (size_t)(end + 2 - p) : strlen(p);
            g_string_append_len(out, p, (gssize)n);
            p += n;
        } else if (*p == '?') {
            p++;
            int k = 0;
            if (g_ascii_isdigit(*p)) {
                for (; g_ascii_isdigit(*p); p++) {
                    k = MIN(k * 10 + (*p - '0'), 65535); /* the protocol's limit */
                }
            } else {
                k = ++next;
            }
            max = MAX(max, k);
            g_string_append_printf(out, "$%d", k);
        } else {
            g_string_append_c(out, *p++);
        }
    }
    *n_params = max;
    return g_string_free(out, FALSE);
}

/* ---- connections ------------------------------------------------------------------------ */

/* libpq's message on one line: "connection to server ... failed: Connection refused". */
static char *
one_line(const char *msg)
{
    g_auto(GStrv) lines = g_strsplit(msg != NULL ? msg : "", "\n", -1);
    for (size_t i = 0; lines[i] != NULL; i++) {
        g_strstrip(lines[i]);
    }
    char *joined = g_strjoinv(" ", lines);
    return g_strstrip(joined);
}

/* Sets error to prefix + msg on one line, without the URI's passwords. */
static bool
set_error(GError **error, pg_conn *c, const char *prefix, const char *msg)
{
    g_autoptr(GString) text = g_string_new(NULL);
    g_autofree char *line = one_line(msg);
    g_string_append(text, line[0] != '\0' ? line : "unknown error");
    for (size_t i = 0; c->passwords != NULL && c->passwords[i] != NULL; i++) {
        g_string_replace(text, c->passwords[i], "***", 0);
    }
    g_set_error(error, HV_ERROR, HV_EIO, "%s%s", prefix, text->str);
    return false;
}

static bool
set_conn_error(GError **error, pg_conn *c, const char *prefix)
{
    return set_error(error, c, prefix, PQerrorMessage(c->pg));
}

static bool
set_result_error(GError **error, pg_conn *c, const PGresult *res)
{
    const char *primary = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    return set_error(error, c, "", primary != NULL ? primary : PQerrorMessage(c->pg));
}

static void
on_pg_notice(void *arg, const char *message)
{
    g_autofree char *line = one_line(message);
    g_debug("%s: %s", ((pg_conn *)arg)->base.display, line);
}

/* Runs SQL without parameters; true when the server took it. */
static bool
run_simple(pg_conn *c, const char *sql, GError **error)
{
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType s = PQresultStatus(res);
    bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok) {
        set_result_error(error, c, res);
    }
    PQclear(res);
    return ok;
}

/* Starts a session on a new or re-opened connection. */
static bool
setup_session(pg_conn *c, GError **error)
{
    c->generation++;
    if (PQserverVersion(c->pg) < 100000) {
        g_set_error(error, HV_ERROR, HV_EIO,
                    "PostgreSQL %d.%d is too old (haven needs 10 or newer)",
                    PQserverVersion(c->pg) / 10000, PQserverVersion(c->pg) / 100 % 100);
        return false;
    }
    return run_simple(c, PG_SESSION_SETUP, error);
}

/* Before each call: re-opens a connection that was lost (within connect_timeout). */
static bool
ensure_connected(pg_conn *c, GError **error)
{
    if (PQstatus(c->pg) == CONNECTION_OK) {
        return true;
    }
    g_info("reconnecting to PostgreSQL %s", c->base.display);
    PQreset(c->pg);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        return set_conn_error(error, c, "lost the connection and cannot reconnect: ");
    }
    return setup_session(c, error);
}

static void
pg_close(hv_store_conn *conn)
{
    pg_conn *c = pg_of(conn);
    PQfinish(c->pg);
    g_strfreev(c->passwords);
    g_free(c->base.display);
    g_free(c);
}

static hv_store_conn *
pg_open(const char *uri, GError **error)
{
    pg_conn *c = g_new0(pg_conn, 1);
    c->base.engine = &hv_store_engine_pg;
    c->base.display = hv_store_pg_mask_uri(uri);
    c->passwords = uri_passwords(uri);
    /* Defaults first: the URI (dbname, expanded) overrides them. connect_timeout bounds each
     * connection attempt; keepalives and tcp_user_timeout notice a peer gone silent. */
    const char *const keys[] = {"connect_timeout",
                                "keepalives_idle",
                                "keepalives_interval",
                                "keepalives_count",
                                "tcp_user_timeout",
                                "application_name",
                                "dbname",
                                NULL};
    const char *const values[] = {"5", "10", "5", "3", "10000", "haven", uri, NULL};
    c->pg = PQconnectdbParams(keys, values, 1);
    if (c->pg == NULL) {
        g_set_error(error, HV_ERROR, HV_ENOMEM, "cannot connect to PostgreSQL %s: out of memory",
                    c->base.display);
        pg_close(&c->base);
        return NULL;
    }
    PQsetNoticeProcessor(c->pg, on_pg_notice, c);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        set_conn_error(error, c, "");
        g_prefix_error(error, "cannot connect to PostgreSQL %s: ", c->base.display);
        pg_close(&c->base);
        return NULL;
    }
    if (!setup_session(c, error)) {
        g_prefix_error(error, "cannot use PostgreSQL %s: ", c->base.display);
        pg_close(&c->base);
        return NULL;
    }
    return &c->base;
}

static bool
pg_exec(hv_store_conn *conn, const char *sql, GError **error)
{
    pg_conn *c = pg_of(conn);
    return ensure_connected(c, error) && run_simple(c, sql, error);
}

static bool
pg_in_transaction(hv_store_conn *conn)
{
    PGTransactionStatusType s = PQtransactionStatus(pg_of(conn)->pg);
    return s == PQTRANS_ACTIVE || s == PQTRANS_INTRANS || s == PQTRANS_INERROR;
}

static int64_t
pg_changes(hv_store_conn *conn)
{
    return pg_of(conn)->changes;
}

/* The integer in the first column of the first row sql returns; -1 + error. */
static int64_t
query_int(pg_conn *c, const char *sql, GError **error)
{
    PGresult *res = PQexec(c->pg, sql);
    int64_t v = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        const char *t = PQgetvalue(res, 0, 0);
        v = t[0] == 't' ? 1 : t[0] == 'f' ? 0 : g_ascii_strtoll(t, NULL, 10);
    } else {
        set_result_error(error, c, res);
    }
    PQclear(res);
    return v;
}

static int
pg_version(hv_store_conn *conn, GError **error)
{
    pg_conn *c = pg_of(conn);
    if (!ensure_connected(c, error)) {
        return -1;
    }
    int64_t exists = query_int(c, "SELECT to_regclass('schema_version') IS NOT NULL", error);
    if (exists <= 0) {
        return (int)exists;
    }
    return (int)query_int(c, "SELECT coalesce(max(version), 0) FROM schema_version", error);
}

static bool
pg_lock_schema(hv_store_conn *conn, GError **error)
{
    return pg_exec(conn, "SELECT pg_advisory_xact_lock(" PG_MIGRATION_LOCK ")", error);
}

static bool
pg_set_version(hv_store_conn *conn, int version, const char *name, GError **error)
{
    pg_conn *c = pg_of(conn);
    if (!pg_exec(conn,
                 "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                 "name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                 error)) {
        return false;
    }
    char v[16], t[24];
    g_snprintf(v, sizeof(v), "%d", version);
    g_snprintf(t, sizeof(t), "%" G_GINT64_FORMAT, g_get_real_time() / 1000);
    const char *const params[] = {v, name, t};
    PGresult *res = PQexecParams(c->pg,
                                 "INSERT INTO schema_version (version, name, applied_at) "
                                 "VALUES ($1, $2, $3)",
                                 3, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        set_result_error(error, c, res);
    }
    PQclear(res);
    return ok;
}

/* ---- statements ------------------------------------------------------------------------- */

static hv_store_stmt *
pg_prepare(hv_store_conn *conn, const char *sql, bool persistent, GError **error)
{
    pg_conn *c = pg_of(conn);
    pg_stmt *s = g_new0(pg_stmt, 1);
    s->base.conn = conn;
    s->sql = translate_placeholders(sql, &s->n_params);
    s->values = g_new0(char *, s->n_params + 1);
    s->types = g_new0(Oid, s->n_params + 1);
    s->persistent = persistent;
    if (persistent) {
        g_snprintf(s->name, sizeof(s->name), "hv_%u", ++c->next_name);
    }
    return &s->base;
}

static void
clear_result(pg_stmt *s)
{
    PQclear(s->res);
    s->res = NULL;
    s->ran = false;
    s->row = -1;
}

static void
pg_bind(hv_store_stmt *st, int idx, const hv_store_value *v)
{
    pg_stmt *s = stmt_of(st);
    if (idx < 1 || idx > s->n_params) {
        g_critical("parameter %d out of range (1..%d) in %s", idx, s->n_params, s->sql);
        return;
    }
    char **slot = &s->values[idx - 1];
    g_free(*slot);
    *slot = NULL;
    s->types[idx - 1] = 0;
    switch (v->type) {
    case HV_STORE_VALUE_INT:
        *slot = g_strdup_printf("%" G_GINT64_FORMAT, v->i);
        s->types[idx - 1] = PG_INT8OID;
        break;
    case HV_STORE_VALUE_REAL: {
        char buf[G_ASCII_DTOSTR_BUF_SIZE];
        *slot = g_strdup(g_ascii_dtostr(buf, sizeof(buf), v->d)); /* reads back exactly */
        s->types[idx - 1] = PG_FLOAT8OID;
        break;
    }
    case HV_STORE_VALUE_TEXT:
        *slot = g_strdup(v->s);
        break;
    case HV_STORE_VALUE_NULL:
    default:
        break;
    }
}

/* Runs the statement (preparing it first in this session when persistent). */
static bool
execute(pg_stmt *s, GError **error)
{
    pg_conn *c = pg_of(s->base.conn);
    if (!ensure_connected(c, error)) {
        return false;
    }
    const char *const *values = (const char *const *)s->values;
    if (s->persistent && s->generation != c->generation) {
        PGresult *prep = PQprepare(c->pg, s->name, s->sql, s->n_params, s->types);
        bool ok = PQresultStatus(prep) == PGRES_COMMAND_OK;
        if (!ok) {
            set_result_error(error, c, prep);
        }
        PQclear(prep);
        if (!ok) {
            return false;
        }
        s->generation = c->generation;
    }
    s->res = s->persistent
                 ? PQexecPrepared(c->pg, s->name, s->n_params, values, NULL, NULL, 0)
                 : PQexecParams(c->pg, s->sql, s->n_params, s->types, values, NULL, NULL, 0);
    ExecStatusType status = PQresultStatus(s->res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
        set_result_error(error, c, s->res);
        return false;
    }
    const char *cmd = PQcmdStatus(s->res);
    if (g_str_has_prefix(cmd, "INSERT") || g_str_has_prefix(cmd, "UPDATE") ||
        g_str_has_prefix(cmd, "DELETE")) {
        c->changes = g_ascii_strtoll(PQcmdTuples(s->res), NULL, 10);
    }
    return true;
}

static int
pg_step(hv_store_stmt *st, GError **error)
{
    pg_stmt *s = stmt_of(st);
    if (!s->ran) {
        s->ran = true;
        s->row = -1;
        if (!execute(s, error)) {
            PQclear(s->res);
            s->res = NULL;
            return -1;
        }
    }
    if (s->res == NULL) {
        return HV_STORE_DONE;
    }
    s->row++;
    return s->row < PQntuples(s->res) ? HV_STORE_ROW : HV_STORE_DONE;
}

static bool
pg_column_is_null(hv_store_stmt *st, int col)
{
    pg_stmt *s = stmt_of(st);
    return s->res == NULL || s->row < 0 || s->row >= PQntuples(s->res) ||
           col >= PQnfields(s->res) || PQgetisnull(s->res, s->row, col);
}

static const char *
pg_column_text(hv_store_stmt *st, int col)
{
    pg_stmt *s = stmt_of(st);
    return pg_column_is_null(st, col) ? NULL : PQgetvalue(s->res, s->row, col);
}

static int64_t
pg_column_int64(hv_store_stmt *st, int col)
{
    const char *t = pg_column_text(st, col);
    if (t == NULL) {
        return 0;
    }
    if (PQftype(stmt_of(st)->res, col) == PG_BOOLOID) {
        return t[0] == 't' ? 1 : 0;
    }
    return g_ascii_strtoll(t, NULL, 10);
}

static double
pg_column_double(hv_store_stmt *st, int col)
{
    const char *t = pg_column_text(st, col);
    if (t == NULL) {
        return 0.0;
    }
    if (PQftype(stmt_of(st)->res, col) == PG_BOOLOID) {
        return t[0] == 't' ? 1.0 : 0.0;
    }
    return g_ascii_strtod(t, NULL);
}

static void
pg_reset(hv_store_stmt *st)
{
    pg_stmt *s = stmt_of(st);
    clear_result(s);
    for (int i = 0; i < s->n_params; i++) {
        g_clear_pointer(&s->values[i], g_free);
        s->types[i] = 0;
    }
}

/* A persistent statement stays prepared on the server until the connection closes (the store
 * frees its two only then): no DEALLOCATE round trip, which could wait on a dead server. */
static void
pg_finalize(hv_store_stmt *st)
{
    pg_stmt *s = stmt_of(st);
    pg_reset(st);
    g_free(s->values);
    g_free(s->types);
    g_free(s->sql);
    g_free(s);
}

const hv_store_engine hv_store_engine_pg = {
    .kind = HV_STORE_PG,
    .name = "PostgreSQL",
    .open = pg_open,
    .close = pg_close,
    .exec = pg_exec,
    .begin_sql = "BEGIN",
    .in_transaction = pg_in_transaction,
    .changes = pg_changes,
    .version = pg_version,
    .lock_schema = pg_lock_schema,
    .set_version = pg_set_version,
    .prepare = pg_prepare,
    .bind = pg_bind,
    .step = pg_step,
    .column_is_null = pg_column_is_null,
    .column_int64 = pg_column_int64,
    .column_double = pg_column_double,
    .column_text = pg_column_text,
    .reset = pg_reset,
    .finalize = pg_finalize,
};

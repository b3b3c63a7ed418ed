/* The recordings table: one row per recorded file set (a video file and/or a WAV) with its
 * codecs, size, times and status, and the live_sessions.recording_path the seed's schema keeps.
 * Main thread only, like the rest of the store; every call is one short statement (no explicit
 * transaction needed). Zero in the struct means "unknown" and is stored as NULL (session_id,
 * width, height, end time), so the API can say null.
 */
#include "store-private.h"

#include "core/error.h"

#include <string.h>

/* The columns insert and update write, in bind order (?1 .. ?18). */
#define RECORDING_COLUMNS                                                                        \
    "mint_id, video_path, audio_path, container, video_codec, audio_codec, stored_video_codec, " \
    "width, height, start_time, end_time, duration_ms, bytes, dropped, status, error, node_id, " \
    "continuation_of"
#define N_RECORDING_COLUMNS 18

/* What get and list read, in column order. */
#define RECORDING_SELECT "SELECT id, session_id, " RECORDING_COLUMNS " FROM recordings"

/* Binds v, or NULL when v is 0 ("not known"). */
static void
bind_int_or_null(hv_store_stmt *st, int idx, int64_t v)
{
    if (v != 0) {
        hv_store_stmt_bind_int64(st, idx, v);
    } else {
        hv_store_stmt_bind_null(st, idx);
    }
}

/* Binds RECORDING_COLUMNS from r, starting at parameter first; node_id: r's, or when r has
 * none, this one. */
static void
bind_recording(hv_store_stmt *st, int first, const hv_store_recording *r, const char *node_id)
{
    int i = first;
    hv_store_stmt_bind_text(st, i++, r->mint_id);
    hv_store_stmt_bind_text(st, i++, r->video_path);
    hv_store_stmt_bind_text(st, i++, r->audio_path);
    hv_store_stmt_bind_text(st, i++, r->container);
    hv_store_stmt_bind_text(st, i++, r->video_codec);
    hv_store_stmt_bind_text(st, i++, r->audio_codec);
    hv_store_stmt_bind_text(st, i++, r->stored_video_codec);
    bind_int_or_null(st, i++, r->width);
    bind_int_or_null(st, i++, r->height);
    hv_store_stmt_bind_int64(st, i++, r->start_ms);
    bind_int_or_null(st, i++, r->end_ms);
    hv_store_stmt_bind_int64(st, i++, r->duration_ms);
    hv_store_stmt_bind_int64(st, i++, r->bytes);
    hv_store_stmt_bind_int64(st, i++, r->dropped);
    hv_store_stmt_bind_text(st, i++, r->status);
    hv_store_stmt_bind_text(st, i++, r->error);
    hv_store_stmt_bind_text(st, i++, r->node_id != NULL ? r->node_id : node_id);
    bind_int_or_null(st, i, r->continuation_of);
}

static char *
column_text(hv_store_stmt *st, int col)
{
    return g_strdup(hv_store_stmt_column_text(st, col));
}

/* Reads one RECORDING_SELECT row into out (NULL columns become NULL / 0). */
static void
read_recording(hv_store_stmt *st, hv_store_recording *out)
{
    int c = 0;
    out->id = hv_store_stmt_column_int64(st, c++);
    out->session_id = hv_store_stmt_column_int64(st, c++);
    out->mint_id = column_text(st, c++);
    out->video_path = column_text(st, c++);
    out->audio_path = column_text(st, c++);
    out->container = column_text(st, c++);
    out->video_codec = column_text(st, c++);
    out->audio_codec = column_text(st, c++);
    out->stored_video_codec = column_text(st, c++);
    out->width = (int)hv_store_stmt_column_int64(st, c++);
    out->height = (int)hv_store_stmt_column_int64(st, c++);
    out->start_ms = hv_store_stmt_column_int64(st, c++);
    out->end_ms = hv_store_stmt_column_int64(st, c++);
    out->duration_ms = hv_store_stmt_column_int64(st, c++);
    out->bytes = hv_store_stmt_column_int64(st, c++);
    out->dropped = hv_store_stmt_column_int64(st, c++);
    out->status = column_text(st, c++);
    out->error = column_text(st, c++);
    out->node_id = column_text(st, c++);
    out->continuation_of = hv_store_stmt_column_int64(st, c);
}

/* Every row st selects (RECORDING_SELECT), (element-type hv_store_recording); NULL + error. */
static GPtrArray *
read_rows(hv_store_stmt *st, const char *what, GError **error)
{
    GError *cause = NULL;
    GPtrArray *rows = g_ptr_array_new_with_free_func((GDestroyNotify)hv_store_recording_free);
    int rc;
    while ((rc = hv_store_stmt_step(st, &cause)) == HV_STORE_ROW) {
        hv_store_recording *r = g_new0(hv_store_recording, 1);
        read_recording(st, r);
        g_ptr_array_add(rows, r);
    }
    if (rc != HV_STORE_DONE) {
        hv_store_fail(error, cause, what);
        g_clear_pointer(&rows, g_ptr_array_unref);
    }
    return rows;
}

void
hv_store_recording_clear(hv_store_recording *r)
{
    if (r == NULL) {
        return;
    }
    g_clear_pointer(&r->mint_id, g_free);
    g_clear_pointer(&r->video_path, g_free);
    g_clear_pointer(&r->audio_path, g_free);
    g_clear_pointer(&r->container, g_free);
    g_clear_pointer(&r->video_codec, g_free);
    g_clear_pointer(&r->audio_codec, g_free);
    g_clear_pointer(&r->stored_video_codec, g_free);
    g_clear_pointer(&r->status, g_free);
    g_clear_pointer(&r->error, g_free);
    g_clear_pointer(&r->node_id, g_free);
}

void
hv_store_recording_free(hv_store_recording *r)
{
    hv_store_recording_clear(r);
    g_free(r);
}

int64_t
hv_store_insert_recording(hv_store *store, const hv_store_recording *r, GError **error)
{
    static const char sql[] =
        "INSERT INTO recordings (session_id, " RECORDING_COLUMNS
        ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id";
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(hv_store_db(store), sql, false, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "preparing the recording insert");
        return -1;
    }
    bind_int_or_null(st, 1, r->session_id);
    bind_recording(st, 2, r, hv_store_node_id(store));
    if (hv_store_stmt_step(st, &cause) != HV_STORE_ROW) {
        hv_store_fail(error, cause, "inserting a recording");
        return -1;
    }
    return hv_store_stmt_column_int64(st, 0);
}

bool
hv_store_update_recording(hv_store *store, const hv_store_recording *r, GError **error)
{
    static const char sql[] =
        "UPDATE recordings SET mint_id = ?1, video_path = ?2, audio_path = ?3, container = ?4, "
        "video_codec = ?5, audio_codec = ?6, stored_video_codec = ?7, width = ?8, height = ?9, "
        "start_time = ?10, end_time = ?11, duration_ms = ?12, bytes = ?13, dropped = ?14, "
        "status = ?15, error = ?16, node_id = ?17, continuation_of = ?18 WHERE id = ?19";
    G_STATIC_ASSERT(N_RECORDING_COLUMNS == 18);
    hv_store_conn *conn = hv_store_db(store);
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(conn, sql, false, &cause);
    if (st == NULL) {
        return hv_store_fail(error, cause, "preparing the recording update");
    }
    bind_recording(st, 1, r, hv_store_node_id(store));
    hv_store_stmt_bind_int64(st, N_RECORDING_COLUMNS + 1, r->id);
    if (!hv_store_stmt_run(st, &cause)) {
        return hv_store_fail(error, cause, "updating a recording");
    }
    if (hv_store_conn_changes(conn) == 0) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "no recording with id %" G_GINT64_FORMAT, r->id);
        return false;
    }
    return true;
}

bool
hv_store_get_recording(hv_store *store, int64_t id, hv_store_recording *out, GError **error)
{
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st =
        hv_store_stmt_new(hv_store_db(store), RECORDING_SELECT " WHERE id = ?", false, &cause);
    if (st == NULL) {
        return hv_store_fail(error, cause, "preparing the recording lookup");
    }
    hv_store_stmt_bind_int64(st, 1, id);
    int rc = hv_store_stmt_step(st, &cause);
    if (rc == HV_STORE_ROW) {
        memset(out, 0, sizeof(*out));
        read_recording(st, out);
    } else if (rc != HV_STORE_DONE) {
        hv_store_fail(error, cause, "reading a recording");
    }
    return rc == HV_STORE_ROW;
}

/* Prepares sql_head + " WHERE ..." (the non-NULL filters, so the database can use their
 * indexes) + sql_tail, with the filters bound from parameter 1 on; *next gets the next free
 * parameter. */
static hv_store_stmt *
prepare_filtered(hv_store_conn *conn, const char *sql_head, const char *mint_id, const char *status,
                 const char *sql_tail, int *next, GError **error)
{
    g_autoptr(GString) sql = g_string_new(sql_head);
    if (mint_id != NULL) {
        g_string_append(sql, " WHERE mint_id = ?");
    }
    if (status != NULL) {
        g_string_append(sql, mint_id != NULL ? " AND status = ?" : " WHERE status = ?");
    }
    g_string_append(sql, sql_tail);
    hv_store_stmt *st = hv_store_stmt_new(conn, sql->str, false, error);
    if (st == NULL) {
        return NULL;
    }
    int i = 1;
    if (mint_id != NULL) {
        hv_store_stmt_bind_text(st, i++, mint_id);
    }
    if (status != NULL) {
        hv_store_stmt_bind_text(st, i++, status);
    }
    *next = i;
    return st;
}

GPtrArray *
hv_store_list_recordings(hv_store *store, const char *mint_id, const char *status, int64_t limit,
                         int64_t offset, GError **error)
{
    int i = 0;
    GError *cause = NULL;
    /* Newest first; id breaks ties between recordings started in the same millisecond. */
    g_autoptr(hv_store_stmt) st =
        prepare_filtered(hv_store_db(store), RECORDING_SELECT, mint_id, status,
                         " ORDER BY start_time DESC, id DESC LIMIT ? OFFSET ?", &i, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "preparing the recording list");
        return NULL;
    }
    /* negative: no limit (PostgreSQL refuses a negative LIMIT) */
    hv_store_stmt_bind_int64(st, i++, limit >= 0 ? limit : G_MAXINT64);
    hv_store_stmt_bind_int64(st, i, MAX(offset, 0));
    return read_rows(st, "listing recordings", error);
}

GPtrArray *
hv_store_list_unfinished_recordings(hv_store *store, GError **error)
{
    const char *node = hv_store_node_id(store);
    /* A node recovers its own files (and rows from before nodes, which have no node). */
    g_autofree char *sql =
        g_strdup_printf(RECORDING_SELECT " WHERE status = 'recording'%s ORDER BY id",
                        node != NULL ? " AND (node_id = ? OR node_id IS NULL)" : "");
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(hv_store_db(store), sql, false, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "preparing the unfinished recordings");
        return NULL;
    }
    if (node != NULL) {
        hv_store_stmt_bind_text(st, 1, node);
    }
    return read_rows(st, "listing unfinished recordings", error);
}

int64_t
hv_store_count_recordings(hv_store *store, const char *mint_id, const char *status, GError **error)
{
    int i = 0;
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = prepare_filtered(
        hv_store_db(store), "SELECT count(*) FROM recordings", mint_id, status, "", &i, &cause);
    if (st == NULL) {
        hv_store_fail(error, cause, "preparing the recording count");
        return -1;
    }
    if (hv_store_stmt_step(st, &cause) != HV_STORE_ROW) {
        hv_store_fail(error, cause, "counting recordings");
        return -1;
    }
    return hv_store_stmt_column_int64(st, 0);
}

bool
hv_store_delete_recording(hv_store *store, int64_t id, GError **error)
{
    hv_store_conn *conn = hv_store_db(store);
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st =
        hv_store_stmt_new(conn, "DELETE FROM recordings WHERE id = ?", false, &cause);
    if (st == NULL) {
        return hv_store_fail(error, cause, "preparing the recording delete");
    }
    hv_store_stmt_bind_int64(st, 1, id);
    if (!hv_store_stmt_run(st, &cause)) {
        return hv_store_fail(error, cause, "deleting a recording");
    }
    return hv_store_conn_changes(conn) > 0;
}

bool
hv_store_set_session_recording_path(hv_store *store, int64_t session_id, const char *path,
                                    GError **error)
{
    hv_store_conn *conn = hv_store_db(store);
    GError *cause = NULL;
    g_autoptr(hv_store_stmt) st = hv_store_stmt_new(
        conn, "UPDATE live_sessions SET recording_path = ?, updated_at = ? WHERE id = ?", false,
        &cause);
    if (st == NULL) {
        return hv_store_fail(error, cause, "preparing the session recording path update");
    }
    hv_store_stmt_bind_text(st, 1, path);
    hv_store_stmt_bind_int64(st, 2, g_get_real_time() / 1000);
    hv_store_stmt_bind_int64(st, 3, session_id);
    if (!hv_store_stmt_run(st, &cause)) {
        return hv_store_fail(error, cause, "setting a session's recording path");
    }
    if (hv_store_conn_changes(conn) == 0) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "no live session with id %" G_GINT64_FORMAT,
                    session_id);
        return false;
    }
    return true;
}

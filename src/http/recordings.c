/* The recordings API: list, describe, download (with single-range requests) and delete
 * recordings the recorder listed in the store. Main thread only.
 *
 * Paths come from the database, but a file is served or deleted only when its real path
 * (symlinks and ".." resolved) lies inside HAVEN_RECORDINGS_DIR, so a bad row can never expose
 * or remove anything else. Downloads are streamed by the server (hv_http_respond_file) at the
 * size the file has when the request arrives: a recording still being written can be fetched.
 */
#include "http-private.h"

#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORDINGS_LIMIT_DEFAULT 50
#define RECORDINGS_LIMIT_MAX     500
#define PART_SUFFIX              ".part"

static const char *const statuses[] = {"recording", "finished", "failed", "recovered"};

/* ---- Range (pure) ----------------------------------------------------------------------- */

/* Reads decimal digits at *p (at least one), saturating at INT64_MAX; advances *p. */
static bool
read_position(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (!g_ascii_isdigit(*s)) {
        return false;
    }
    for (; g_ascii_isdigit(*s); s++) {
        int d = *s - '0';
        v = v > (INT64_MAX - d) / 10 ? INT64_MAX : v * 10 + d;
    }
    *p = s;
    *out = v;
    return true;
}

static const char *
skip_blanks(const char *s)
{
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

hv_http_range
hv_http_parse_range(const char *header, int64_t size, int64_t *first, int64_t *last)
{
    if (header == NULL || g_ascii_strncasecmp(header, "bytes=", 6) != 0 ||
        strchr(header, ',') != NULL) {
        return HV_HTTP_RANGE_NONE; /* absent, another unit, or several ranges: send it all */
    }
    const char *p = skip_blanks(header + 6);
    int64_t a = -1;
    int64_t b = -1;
    bool has_first = read_position(&p, &a);
    if (*p++ != '-') {
        return HV_HTTP_RANGE_NONE;
    }
    bool has_last = read_position(&p, &b);
    if (*skip_blanks(p) != '\0' || (!has_first && !has_last)) {
        return HV_HTTP_RANGE_NONE;
    }
    if (!has_first) {
        /* suffix: the last b bytes (all of a shorter file); none of an empty one */
        if (b == 0 || size <= 0) {
            return HV_HTTP_RANGE_UNSATISFIABLE;
        }
        *first = size - MIN(b, size);
        *last = size - 1;
        return HV_HTTP_RANGE_PARTIAL;
    }
    if (has_last && b < a) {
        return HV_HTTP_RANGE_NONE; /* invalid (RFC 9110 14.1.1): ignored */
    }
    if (a >= size) {
        return HV_HTTP_RANGE_UNSATISFIABLE;
    }
    *first = a;
    *last = has_last ? MIN(b, size - 1) : size - 1;
    return HV_HTTP_RANGE_PARTIAL;
}

/* ---- files inside the recordings directory ---------------------------------------------- */

/* Opens a recording's file: the path itself, or its ".part" while it is still being written
 * (the recorder renames it when the recording ends). -1 when neither is servable. */
static int
open_recording_file(const hv_config *cfg, const char *path)
{
    if (path == NULL) {
        return -1;
    }
    int fd = hv_http_open_inside(cfg->recordings_dir, path);
    if (fd < 0 && errno == ENOENT && !g_str_has_suffix(path, PART_SUFFIX)) {
        g_autofree char *part = g_strconcat(path, PART_SUFFIX, NULL);
        fd = hv_http_open_inside(cfg->recordings_dir, part);
    }
    return fd;
}

/* Removes the directory entry path names (a symlink itself, never its target) when its
 * directory resolves inside root. A missing entry counts as removed. */
static bool
unlink_inside(const char *root, const char *path)
{
    char real_root[PATH_MAX];
    char real_dir[PATH_MAX];
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strcmp(base, "/") == 0 ||
        realpath(root, real_root) == NULL || realpath(dir, real_dir) == NULL) {
        return false;
    }
    if (strcmp(real_dir, real_root) != 0 && !hv_http_path_inside(real_root, real_dir)) {
        g_warning("not deleting %s: it is outside the recordings directory %s", path, root);
        return false;
    }
    g_autofree char *entry = g_build_filename(real_dir, base, NULL);
    if (unlink(entry) != 0 && errno != ENOENT) {
        g_warning("cannot delete %s: %s", entry, g_strerror(errno));
        return false;
    }
    return true;
}

/* ---- JSON ------------------------------------------------------------------------------- */

static const char *
video_content_type(const hv_store_recording *r)
{
    const char *c = r->container != NULL ? r->container : "";
    if (strcmp(c, "webm") == 0 ||
        (*c == '\0' && r->video_path != NULL && strstr(r->video_path, ".webm") != NULL)) {
        return "video/webm";
    }
    return "video/mp4";
}

static json_t *
int_or_null(int64_t v)
{
    return v != 0 ? json_integer((json_int_t)v) : json_null();
}

static json_t *
time_or_null(int64_t wall_ms)
{
    if (wall_ms == 0) {
        return json_null();
    }
    char buf[40];
    hv_format_iso8601(wall_ms, buf, sizeof(buf));
    return json_string(buf);
}

/* {"name", "bytes" (now, null when the file cannot be served), "url", "content_type"} or null
 * without a path. */
static json_t *
file_json(const hv_config *cfg, const hv_store_recording *r, const char *path, const char *kind,
          const char *content_type)
{
    if (path == NULL) {
        return json_null();
    }
    json_t *bytes = json_null();
    int fd = open_recording_file(cfg, path);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0) {
        bytes = json_integer((json_int_t)st.st_size);
    }
    if (fd >= 0) {
        close(fd);
    }
    g_autofree char *name = g_path_get_basename(path);
    g_autofree char *url =
        g_strdup_printf("/api/recordings/%" G_GINT64_FORMAT "/file?kind=%s", r->id, kind);
    return json_pack("{s:s, s:o, s:s, s:s}", "name", name, "bytes", bytes, "url", url,
                     "content_type", content_type);
}

static json_t *
recording_json(const hv_config *cfg, const hv_store_recording *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)r->id));
    json_object_set_new(o, "session_id", int_or_null(r->session_id));
    json_object_set_new(o, "mint_id", json_string(r->mint_id != NULL ? r->mint_id : ""));
    json_object_set_new(o, "status", json_string(r->status != NULL ? r->status : ""));
    const char *texts[][2] = {
        {"error", r->error},
        {"container", r->container},
        {"video_codec", r->video_codec},
        {"audio_codec", r->audio_codec},
        {"stored_video_codec", r->stored_video_codec},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(texts); i++) {
        json_object_set_new(o, texts[i][0],
                            texts[i][1] != NULL ? json_string(texts[i][1]) : json_null());
    }
    json_object_set_new(o, "width", int_or_null(r->width));
    json_object_set_new(o, "height", int_or_null(r->height));
    json_object_set_new(o, "start_time", time_or_null(r->start_ms));
    json_object_set_new(o, "end_time", time_or_null(r->end_ms));
    json_object_set_new(o, "duration_seconds", json_real((double)r->duration_ms / 1000.0));
    json_object_set_new(o, "bytes", json_integer((json_int_t)r->bytes));
    json_object_set_new(o, "dropped_packets", json_integer((json_int_t)r->dropped));
    json_object_set_new(o, "node_id", r->node_id != NULL ? json_string(r->node_id) : json_null());
    json_object_set_new(o, "continuation_of", int_or_null(r->continuation_of));
    json_object_set_new(o, "files",
                        json_pack("{s:o, s:o}", "video",
                                  file_json(cfg, r, r->video_path, "video", video_content_type(r)),
                                  "audio", file_json(cfg, r, r->audio_path, "audio", "audio/wav")));
    return o;
}

/* ---- handlers --------------------------------------------------------------------------- */

static void
respond_store_error(hv_http_exchange *ex, const GError *error)
{
    g_warning("recordings: %s", error != NULL ? error->message : "database error");
    hv_http_respond_detail(ex, 500, "Database error: %s",
                           error != NULL ? error->message : "unknown");
}

/* Parses the {id} path segment; answers 422 and returns false when it is not an integer. */
static bool
parse_id(hv_http_exchange *ex, const char *segment, int64_t *id)
{
    if (hv_parse_int64(segment, id)) {
        return true;
    }
    json_t *errors = json_array();
    json_array_append_new(
        errors,
        hv_http_validation_error(
            "path", "id", "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer", segment));
    hv_http_respond_validation(ex, errors);
    return false;
}

/* Loads recording id into r; answers 422/404/500 and returns false when there is none. */
static bool
load_recording(hv_http_exchange *ex, const char *segment, hv_store_recording *r)
{
    int64_t id = 0;
    if (!parse_id(ex, segment, &id)) {
        return false;
    }
    g_autoptr(GError) error = NULL;
    if (!hv_store_get_recording(ex->deps->store, id, r, &error)) {
        if (error != NULL) {
            respond_store_error(ex, error);
        } else {
            hv_http_respond_detail(ex, 404, "Recording not found");
        }
        return false;
    }
    return true;
}

void
hv_http_handle_recordings(hv_http_exchange *ex)
{
    json_t *errors = json_array();
    hv_http_query_int(ex->query, "limit", RECORDINGS_LIMIT_DEFAULT, 1, RECORDINGS_LIMIT_MAX,
                      &ex->limit, errors);
    hv_http_query_int(ex->query, "offset", 0, 0, G_MAXINT32, &ex->offset, errors);
    const char *mint = hv_http_query_get(ex->query, "mint_id");
    if (mint != NULL && !hv_mint_id_is_valid(mint)) {
        json_array_append_new(errors, hv_http_validation_error("query", "mint_id", "value_error",
                                                               HV_HTTP_MINT_ID_MESSAGE, mint));
    }
    const char *status = hv_http_query_get(ex->query, "status");
    bool status_ok = status == NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(statuses) && !status_ok; i++) {
        status_ok = strcmp(status, statuses[i]) == 0;
    }
    if (!status_ok) {
        json_array_append_new(
            errors,
            hv_http_validation_error(
                "query", "status", "enum",
                "Input should be 'recording', 'finished', 'failed' or 'recovered'", status));
    }
    if (json_array_size(errors) > 0) {
        hv_http_respond_validation(ex, errors);
        return;
    }
    json_decref(errors);

    g_autoptr(GError) error = NULL;
    int64_t total = hv_store_count_recordings(ex->deps->store, mint, status, &error);
    g_autoptr(GPtrArray) rows = total < 0 ? NULL
                                          : hv_store_list_recordings(ex->deps->store, mint, status,
                                                                     ex->limit, ex->offset, &error);
    if (rows == NULL) {
        respond_store_error(ex, error);
        return;
    }
    json_t *list = json_array();
    for (guint i = 0; i < rows->len; i++) {
        json_array_append_new(list, recording_json(ex->cfg, g_ptr_array_index(rows, i)));
    }
    hv_http_add_header(ex, "Cache-Control", "no-store");
    hv_http_respond_json(ex, 200,
                         json_pack("{s:o, s:I, s:I, s:I}", "recordings", list, "total",
                                   (json_int_t)total, "limit", (json_int_t)ex->limit, "offset",
                                   (json_int_t)ex->offset));
}

void
hv_http_handle_recording(hv_http_exchange *ex, const char *segment)
{
    g_autoptr(hv_store_recording) r = g_new0(hv_store_recording, 1);
    if (!load_recording(ex, segment, r)) {
        return;
    }
    hv_http_add_header(ex, "Cache-Control", "no-store");
    hv_http_respond_json(ex, 200, recording_json(ex->cfg, r));
}

/* Several nodes: a recording another node wrote is on that node's disk. Answers a redirect to
 * it (307 keeps the method) with the same path and query, or 503 when it is not running, and
 * returns true; false when the recording is this node's to serve. */
static bool
redirect_to_writer(hv_http_exchange *ex, const hv_store_recording *r)
{
    const char *me = hv_cluster_node_id(ex->deps->cluster);
    if (me == NULL || r->node_id == NULL || strcmp(r->node_id, me) == 0) {
        return false;
    }
    g_autofree char *url = hv_cluster_node_url_of(ex->deps->cluster, r->node_id);
    if (url == NULL) {
        hv_http_respond_detail(ex, 503, "Recording is on node %s, which is not running",
                               r->node_id);
        return true;
    }
    const char *kind = hv_http_query_get(ex->query, "kind");
    g_autofree char *location = g_strdup_printf(
        "%s%s%s%s", url, ex->path, kind != NULL ? "?kind=" : "", kind != NULL ? kind : "");
    hv_http_add_header(ex, "Location", location);
    hv_http_respond_detail(ex, 307, "Recording is on node %s: %s", r->node_id, location);
    return true;
}

void
hv_http_handle_recording_delete(hv_http_exchange *ex, const char *segment)
{
    g_autoptr(hv_store_recording) r = g_new0(hv_store_recording, 1);
    if (!load_recording(ex, segment, r) || redirect_to_writer(ex, r)) {
        return;
    }
    if (g_strcmp0(r->status, "recording") == 0) {
        hv_http_respond_detail(ex, 409, "Recording is in progress; stop it first");
        return;
    }
    /* Files first: a row whose files could not all be removed stays, so it can be retried. */
    bool removed = true;
    const char *paths[] = {r->video_path, r->audio_path};
    for (size_t i = 0; i < G_N_ELEMENTS(paths); i++) {
        if (paths[i] == NULL) {
            continue;
        }
        g_autofree char *part = g_strconcat(paths[i], PART_SUFFIX, NULL);
        removed = unlink_inside(ex->cfg->recordings_dir, paths[i]) && removed;
        removed = unlink_inside(ex->cfg->recordings_dir, part) && removed;
    }
    g_autoptr(GError) error = NULL;
    if (!hv_store_delete_recording(ex->deps->store, r->id, &error)) {
        if (error != NULL) {
            respond_store_error(ex, error);
        } else {
            hv_http_respond_detail(ex, 404, "Recording not found");
        }
        return;
    }
    if (!removed) {
        HV_MESSAGE(&(hv_log_ctx){.mint = r->mint_id, .recording = r->id},
                   "recording %" G_GINT64_FORMAT " deleted; some of its files were left alone",
                   r->id);
    }
    hv_http_respond_json(ex, 200,
                         json_pack("{s:b, s:I}", "success", 1, "deleted", (json_int_t)r->id));
}

/* Content-Disposition's filename: the base name with quotes, backslashes and control
 * characters replaced, so the header stays well-formed. */
static char *
disposition(const char *path)
{
    g_autofree char *name = g_path_get_basename(path);
    for (char *c = name; *c != '\0'; c++) {
        if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20 || *c == 0x7f) {
            *c = '_';
        }
    }
    return g_strdup_printf("attachment; filename=\"%s\"", name);
}

void
hv_http_handle_recording_file(hv_http_exchange *ex, const char *segment)
{
    int64_t id = 0;
    if (!parse_id(ex, segment, &id)) {
        return;
    }
    const char *kind = hv_http_query_get(ex->query, "kind");
    bool audio = g_strcmp0(kind, "audio") == 0;
    if (kind != NULL && !audio && strcmp(kind, "video") != 0) {
        json_t *errors = json_array();
        json_array_append_new(errors,
                              hv_http_validation_error("query", "kind", "enum",
                                                       "Input should be 'video' or 'audio'", kind));
        hv_http_respond_validation(ex, errors);
        return;
    }
    g_autoptr(hv_store_recording) r = g_new0(hv_store_recording, 1);
    if (!load_recording(ex, segment, r) || redirect_to_writer(ex, r)) {
        return;
    }
    const char *path = audio ? r->audio_path : r->video_path;
    int fd = open_recording_file(ex->cfg, path);
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) != 0) {
        close(fd);
        fd = -1;
    }
    if (fd < 0) {
        if (path != NULL && errno == EACCES) {
            HV_WARNING(&(hv_log_ctx){.mint = r->mint_id, .recording = r->id},
                       "recording %" G_GINT64_FORMAT ": not serving %s (outside %s)", r->id, path,
                       ex->cfg->recordings_dir);
        }
        hv_http_respond_detail(ex, 404, "Recording file not found");
        return;
    }
    int64_t size = (int64_t)st.st_size;
    hv_http_add_header(ex, "Accept-Ranges", "bytes");
    hv_http_add_header(ex, "Cache-Control", "no-store");
    int64_t first = 0;
    int64_t last = size - 1;
    hv_http_range range = hv_http_parse_range(ex->range, size, &first, &last);
    const char *type = audio ? "audio/wav" : video_content_type(r);
    char content_range[96];
    if (range != HV_HTTP_RANGE_UNSATISFIABLE) {
        g_autofree char *disp = disposition(path);
        hv_http_add_header(ex, "Content-Disposition", disp);
    }
    switch (range) {
    case HV_HTTP_RANGE_UNSATISFIABLE:
        close(fd);
        g_snprintf(content_range, sizeof(content_range), "bytes */%" G_GINT64_FORMAT, size);
        hv_http_add_header(ex, "Content-Range", content_range);
        hv_http_respond_detail(ex, 416, "Range Not Satisfiable");
        return;
    case HV_HTTP_RANGE_PARTIAL:
        g_snprintf(content_range, sizeof(content_range),
                   "bytes %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT "/%" G_GINT64_FORMAT, first, last,
                   size);
        hv_http_add_header(ex, "Content-Range", content_range);
        hv_http_respond_file(ex, 206, type, fd, first, last - first + 1);
        return;
    case HV_HTTP_RANGE_NONE:
        hv_http_respond_file(ex, 200, type, fd, 0, size);
        return;
    }
}

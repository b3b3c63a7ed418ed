/* The REST API: routing, parameter validation and the discovery endpoints. Main thread only.
 *
 * Handlers validate input first (422 in FastAPI's shape, naming the parameter), then answer
 * from the catalog. Answers served from cached data carry Age and X-Haven-Cache headers, plus
 * X-Haven-Upstream-Error when pump.fun's last answer was a failure; with nothing cached an
 * upstream failure becomes 502 (bad answer) or 503 (unreachable, rate limited) naming it.
 */
#include "http-private.h"

#include "core/error.h"
#include "core/json.h"
#include "core/util.h"

#include <string.h>
#include <unistd.h>

typedef void (*route_handler)(hv_http_exchange *ex);

/* ---- shared helpers --------------------------------------------------------------------- */

static void
add_cache_headers(hv_http_exchange *ex, const hv_pf_cache_info *info)
{
    char buf[64];
    g_snprintf(buf, sizeof(buf), "%" G_GINT64_FORMAT, info->age_ms / 1000);
    hv_http_add_header(ex, "Age", buf);
    hv_http_add_header(ex, "X-Haven-Cache", info->stale ? "stale" : "fresh");
    hv_format_iso8601(info->fetched_at_wall_ms, buf, sizeof(buf));
    hv_http_add_header(ex, "X-Haven-Fetched-At", buf);
    if (info->upstream_error != NULL) {
        /* Header values must stay on one line. */
        g_autofree char *one_line = g_strdup(info->upstream_error);
        g_strdelimit(one_line, "\r\n", ' ');
        hv_http_add_header(ex, "X-Haven-Upstream-Error", one_line);
    }
    hv_http_add_header(ex, "Cache-Control", "no-store");
}

static void
respond_upstream_error(hv_http_exchange *ex, const hv_pf_cache_info *info, const GError *error)
{
    if (error == NULL) {
        hv_http_respond_detail(ex, 503, "pump.fun is unavailable and nothing is cached");
        return;
    }
    /* pump.fun unreachable or rate-limiting: 503 (try later); a bad answer: 502. A timeout is
     * "unavailable" here, not a gateway timeout: the answer comes from haven's cache rules. */
    bool unavailable =
        error->code == HV_ERATELIMIT || error->code == HV_ETIMEDOUT || error->code == HV_EIO;
    if (unavailable) {
        /* When the catalog will ask pump.fun again (its backoff, or pump.fun's Retry-After). */
        char secs[32];
        g_snprintf(secs, sizeof(secs), "%" G_GINT64_FORMAT,
                   MAX(1, (info->retry_in_ms + 999) / 1000));
        hv_http_add_header(ex, "Retry-After", secs);
    }
    hv_http_add_header(ex, "X-Haven-Upstream-Error", error->message);
    hv_http_respond_json(
        ex, unavailable ? 503 : 502,
        json_pack("{s:s, s:s, s:s}", "detail", "pump.fun is unavailable and nothing is cached",
                  "upstream_error", error->message, "error", hv_err_name(error->code)));
}

static bool
check_mint(hv_http_exchange *ex, const char *segment)
{
    if (!hv_mint_id_is_valid(segment)) {
        json_t *errors = json_array();
        json_array_append_new(errors, hv_http_validation_error("path", "mint_id", "value_error",
                                                               HV_HTTP_MINT_ID_MESSAGE, segment));
        hv_http_respond_validation(ex, errors);
        return false;
    }
    g_strlcpy(ex->mint, segment, sizeof(ex->mint));
    return true;
}

/* ---- /api/pumpfun/live and /popular ----------------------------------------------------- */

/* Answers with streams[offset, offset + limit) as a JSON array. The rendered array (and its
 * gzip copy) is kept per roster, so repeated requests cost a lookup, not a rebuild. */
static void
respond_stream_list(hv_http_exchange *ex, hv_pf_roster *roster, const char *list,
                    GPtrArray *streams, const hv_pf_cache_info *info)
{
    add_cache_headers(ex, info);
    hv_http_body_cache *cache = hv_http_exchange_body_cache(ex);
    char key[96];
    g_snprintf(key, sizeof(key), "%s:%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT, list, ex->offset,
               ex->limit);
    hv_http_body *body = hv_http_body_cache_get(cache, roster, key);
    if (body == NULL) {
        g_autoptr(GString) b = g_string_sized_new(1024);
        g_string_append_c(b, '[');
        guint first = (guint)MIN((int64_t)streams->len, ex->offset);
        guint last = (guint)MIN((int64_t)streams->len, ex->offset + ex->limit);
        for (guint i = first; i < last; i++) {
            const hv_pf_stream *s = g_ptr_array_index(streams, i);
            if (i > first) {
                g_string_append_c(b, ',');
            }
            g_string_append_len(b, s->json, (gssize)s->json_len);
        }
        g_string_append_c(b, ']');
        body = hv_http_body_new(b->str, b->len, true);
        hv_http_body_cache_put(cache, roster, key, body);
    }
    hv_http_respond_shared(ex, 200, "application/json", body);
}

static void
on_live_roster(hv_pf_roster *roster, const hv_pf_cache_info *info, const GError *error,
               void *user_data)
{
    hv_http_exchange *ex = user_data;
    ex->waiter = NULL;
    if (roster == NULL) {
        respond_upstream_error(ex, info, error);
        return;
    }
    respond_stream_list(ex, roster, ex->include_nsfw ? "live" : "live-sfw",
                        ex->include_nsfw ? roster->all : roster->sfw, info);
}

static void
on_popular_roster(hv_pf_roster *roster, const hv_pf_cache_info *info, const GError *error,
                  void *user_data)
{
    hv_http_exchange *ex = user_data;
    ex->waiter = NULL;
    if (roster == NULL) {
        respond_upstream_error(ex, info, error);
        return;
    }
    respond_stream_list(ex, roster, ex->include_nsfw ? "popular" : "popular-sfw",
                        ex->include_nsfw ? roster->popular : roster->popular_sfw, info);
}

static void
handle_live(hv_http_exchange *ex)
{
    json_t *errors = json_array();
    hv_http_query_int(ex->query, "offset", 0, 0, G_MAXINT32, &ex->offset, errors);
    hv_http_query_int(ex->query, "limit", 60, 1, 100, &ex->limit, errors);
    hv_http_query_bool(ex->query, "include_nsfw", true, &ex->include_nsfw, errors);
    if (json_array_size(errors) > 0) {
        hv_http_respond_validation(ex, errors);
        return;
    }
    json_decref(errors);
    ex->waiter = hv_pf_catalog_get_roster(ex->deps->catalog, on_live_roster, ex);
}

static void
handle_popular(hv_http_exchange *ex)
{
    json_t *errors = json_array();
    ex->offset = 0;
    hv_http_query_int(ex->query, "limit", 20, 1, 50, &ex->limit, errors);
    hv_http_query_bool(ex->query, "include_nsfw", true, &ex->include_nsfw, errors);
    if (json_array_size(errors) > 0) {
        hv_http_respond_validation(ex, errors);
        return;
    }
    json_decref(errors);
    ex->waiter = hv_pf_catalog_get_roster(ex->deps->catalog, on_popular_roster, ex);
}

/* ---- /api/pumpfun/stats ----------------------------------------------------------------- */

static void
on_stats_roster(hv_pf_roster *roster, const hv_pf_cache_info *info, const GError *error,
                void *user_data)
{
    hv_http_exchange *ex = user_data;
    ex->waiter = NULL;
    if (roster == NULL) {
        respond_upstream_error(ex, info, error);
        return;
    }
    json_t *top = json_null();
    if (roster->popular->len > 0) {
        /* The whole stream object (mint_id, name and num_participants, the seed's three, and
         * the rest: clients of the original implementation read usd_market_cap, thumbnail). */
        const hv_pf_stream *s = g_ptr_array_index(roster->popular, 0);
        top = json_loadb(s->json, s->json_len, 0, NULL);
        if (top == NULL) {
            top = json_null();
        }
    }
    add_cache_headers(ex, info);
    hv_http_respond_json(ex, 200,
                         json_pack("{s:I, s:I, s:I, s:I, s:o}", "total_live_streams",
                                   (json_int_t)roster->all->len, "total_participants",
                                   (json_int_t)roster->total_participants, "nsfw_streams",
                                   (json_int_t)roster->nsfw_count, "sfw_streams",
                                   (json_int_t)roster->sfw->len, "top_stream", top));
}

static void
handle_stats(hv_http_exchange *ex)
{
    ex->waiter = hv_pf_catalog_get_roster(ex->deps->catalog, on_stats_roster, ex);
}

/* ---- /api/pumpfun/stream/{mint} and /validate/{mint} ------------------------------------ */

static void
on_stream(hv_pf_stream *stream, const hv_pf_cache_info *info, const GError *error, void *user_data)
{
    hv_http_exchange *ex = user_data;
    ex->waiter = NULL;
    if (error != NULL) {
        respond_upstream_error(ex, info, error);
        return;
    }
    if (stream == NULL) {
        hv_http_respond_detail(ex, 404, "Stream not found for mint_id: %s", ex->mint);
        return;
    }
    add_cache_headers(ex, info);
    hv_http_respond(ex, 200, "application/json", stream->json, stream->json_len);
}

static void
handle_stream(hv_http_exchange *ex, const char *segment)
{
    if (check_mint(ex, segment)) {
        ex->waiter = hv_pf_catalog_get_stream(ex->deps->catalog, ex->mint, on_stream, ex);
    }
}

static void
on_validate(hv_pf_stream *stream, const hv_pf_cache_info *info, const GError *error,
            void *user_data)
{
    hv_http_exchange *ex = user_data;
    ex->waiter = NULL;
    if (error != NULL) {
        respond_upstream_error(ex, info, error);
        return;
    }
    if (stream != NULL) {
        add_cache_headers(ex, info);
    }
    hv_http_respond_json(ex, 200,
                         json_pack("{s:s, s:b, s:b}", "mint_id", ex->mint, "is_valid",
                                   stream != NULL, "is_live",
                                   stream != NULL && stream->is_currently_live));
}

/* The validation endpoint validates: a malformed id is an answer (not valid, not live), not an
 * error, unlike on every other route. */
static void
handle_validate(hv_http_exchange *ex, const char *segment)
{
    if (!hv_mint_id_is_valid(segment)) {
        g_autofree char *given = g_utf8_make_valid(segment, -1);
        hv_http_respond_json(
            ex, 200, json_pack("{s:s, s:b, s:b}", "mint_id", given, "is_valid", 0, "is_live", 0));
        return;
    }
    g_strlcpy(ex->mint, segment, sizeof(ex->mint));
    ex->waiter = hv_pf_catalog_get_stream(ex->deps->catalog, ex->mint, on_validate, ex);
}

/* ---- /api/live-sessions ------------------------------------------------------------------ */

/* Parses the JSON object body; on failure answers 422 (FastAPI shape) and returns NULL. */
static json_t *
body_object(hv_http_exchange *ex)
{
    json_error_t jerr;
    const char *data = ex->req_body != NULL ? (const char *)ex->req_body->data : "";
    size_t len = ex->req_body != NULL ? ex->req_body->len : 0;
    json_t *root = len > 0 ? json_loadb(data, len, 0, &jerr) : NULL;
    if (!json_is_object(root)) {
        json_t *errors = json_array();
        json_array_append_new(
            errors, hv_http_validation_error("body", "", len == 0 ? "missing" : "json_invalid",
                                             len == 0 ? "Field required: a JSON object body"
                                                      : "Body must be a JSON object",
                                             NULL));
        hv_http_respond_validation(ex, errors);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* Reads a mint_id field (422 when missing or not a valid mint). */
static bool
body_mint(hv_http_exchange *ex, json_t *body)
{
    json_t *v = json_object_get(body, "mint_id");
    const char *mint = json_string_value(v);
    if (mint == NULL || !hv_mint_id_is_valid(mint)) {
        json_t *errors = json_array();
        json_array_append_new(
            errors,
            hv_http_validation_error("body", "mint_id", v == NULL ? "missing" : "value_error",
                                     v == NULL ? "Field required" : HV_HTTP_MINT_ID_MESSAGE, mint));
        hv_http_respond_validation(ex, errors);
        return false;
    }
    g_strlcpy(ex->mint, mint, sizeof(ex->mint));
    return true;
}

static void
on_session_started(hv_live_session *s, const GError *error, void *user_data)
{
    hv_http_exchange *ex = user_data;
    ex->live_op = NULL;
    if (s == NULL) {
        hv_http_respond_session_error(ex, hv_http_status_for_error(error->code), error->message);
        return;
    }
    hv_http_respond_json(ex, 200, hv_http_session_started_json(s));
}

static void
on_cluster_started(hv_live_session *s, json_t *remote, const GError *error, void *user_data)
{
    hv_http_exchange *ex = user_data;
    ex->cluster_op = NULL;
    if (error != NULL) {
        hv_http_respond_session_error(ex, hv_http_status_for_error(error->code), error->message);
    } else if (remote != NULL) {
        hv_http_respond_json(ex, 200, json_incref(remote));
    } else {
        json_t *answer = hv_http_session_started_json(s);
        json_object_set_new(answer, "node_id", json_string(hv_cluster_node_id(ex->deps->cluster)));
        json_object_set_new(answer, "node_url",
                            json_string(hv_cluster_node_url(ex->deps->cluster)));
        hv_http_respond_json(ex, 200, answer);
    }
}

static void
handle_session_start(hv_http_exchange *ex)
{
    g_autoptr(json_t) body = body_object(ex);
    if (body == NULL || !body_mint(ex, body)) {
        return;
    }
    json_t *rec = json_object_get(body, "record_session");
    if (rec != NULL && !json_is_boolean(rec) && !json_is_null(rec)) {
        json_t *errors = json_array();
        json_array_append_new(errors,
                              hv_http_validation_error("body", "record_session", "bool_type",
                                                       "Input should be a valid boolean", NULL));
        hv_http_respond_validation(ex, errors);
        return;
    }
    if (ex->deps->cluster != NULL) {
        /* Several nodes: the session goes where the cluster places it (maybe here). */
        ex->cluster_op = hv_cluster_start(ex->deps->cluster, ex->mint, json_is_true(rec),
                                          on_cluster_started, ex);
        return;
    }
    ex->live_op =
        hv_live_start(ex->deps->live, ex->mint, json_is_true(rec), on_session_started, ex);
}

static void
handle_session_stop(hv_http_exchange *ex)
{
    g_autoptr(json_t) body = body_object(ex);
    if (body == NULL || !body_mint(ex, body)) {
        return;
    }
    if (!hv_live_stop(ex->deps->live, ex->mint) &&
        !hv_cluster_stop_remote(ex->deps->cluster, ex->mint)) {
        g_autofree char *msg = g_strdup_printf("No active session for mint_id: %s", ex->mint);
        hv_http_respond_session_error(ex, 404, msg);
        return;
    }
    hv_http_respond_json(ex, 200, json_pack("{s:b, s:s}", "success", 1, "mint_id", ex->mint));
}

/* POST /api/live-sessions/{mint_id}/recording {"action": "start" | "stop"}: every bad input
 * is named in one 422, then the live module decides (404 without a session). */
static void
handle_session_recording(hv_http_exchange *ex, const char *segment)
{
    json_t *errors = json_array();
    if (hv_mint_id_is_valid(segment)) {
        g_strlcpy(ex->mint, segment, sizeof(ex->mint));
    } else {
        json_array_append_new(errors, hv_http_validation_error("path", "mint_id", "value_error",
                                                               HV_HTTP_MINT_ID_MESSAGE, segment));
    }
    const char *data = ex->req_body != NULL ? (const char *)ex->req_body->data : "";
    size_t len = ex->req_body != NULL ? ex->req_body->len : 0;
    json_error_t jerr;
    g_autoptr(json_t) body = len > 0 ? json_loadb(data, len, 0, &jerr) : NULL;
    json_t *action = json_object_get(body, "action");
    const char *act = json_string_value(action);
    bool on = g_strcmp0(act, "start") == 0;
    if (!json_is_object(body)) {
        json_array_append_new(
            errors, hv_http_validation_error("body", "", len == 0 ? "missing" : "json_invalid",
                                             len == 0 ? "Field required: a JSON object body"
                                                      : "Body must be a JSON object",
                                             NULL));
    } else if (!on && g_strcmp0(act, "stop") != 0) {
        json_array_append_new(
            errors, hv_http_validation_error("body", "action", action == NULL ? "missing" : "enum",
                                             action == NULL ? "Field required"
                                                            : "Input should be 'start' or 'stop'",
                                             act));
    }
    if (json_array_size(errors) > 0) {
        hv_http_respond_validation(ex, errors);
        return;
    }
    json_decref(errors);
    g_autoptr(GError) error = NULL;
    if (!hv_live_set_recording(ex->deps->live, ex->mint, on, &error)) {
        /* Several nodes: the session may run on another one, which follows its lease. */
        g_autofree char *owner = error->code == HV_ENOTFOUND
                                     ? hv_cluster_set_record(ex->deps->cluster, ex->mint, on)
                                     : NULL;
        if (owner != NULL) {
            hv_http_respond_json(
                ex, 200,
                json_pack("{s:b, s:s, s:b, s:b, s:s, s:n, s:i, s:f, s:i, s:n, s:s}", "success", 1,
                          "mint_id", ex->mint, "recording", on, "active", 0, "status", "requested",
                          "recording_id", "bytes", 0, "duration_seconds", 0.0, "dropped_packets", 0,
                          "error", "node_id", owner));
            return;
        }
        hv_http_respond_session_error(ex, hv_http_status_for_error(error->code), error->message);
        return;
    }
    g_free(hv_cluster_set_record(ex->deps->cluster, ex->mint, on));
    hv_http_respond_json(ex, 200,
                         hv_http_recording_answer_json(hv_live_find(ex->deps->live, ex->mint), on));
}

static void
handle_session_active(hv_http_exchange *ex)
{
    hv_http_respond_json(ex, 200, hv_http_active_json(ex->deps->live, ex->deps->cluster));
}

/* ---- /healthz and / --------------------------------------------------------------------- */

static json_t *
event_json(int64_t wall_ms, int64_t now_wall_ms, const char *endpoint, const char *err)
{
    if (wall_ms == 0) {
        return json_null();
    }
    char at[40];
    hv_format_iso8601(wall_ms, at, sizeof(at));
    return json_pack("{s:s, s:f, s:s, s:s?}", "at", at, "age_s",
                     (double)(now_wall_ms - wall_ms) / 1000.0, "endpoint", endpoint, "error", err);
}

static void
handle_healthz(hv_http_exchange *ex)
{
    int64_t now = hv_wall_ms();
    g_autoptr(GError) db_error = NULL;
    bool writable = hv_store_check_writable(ex->deps->store, &db_error);
    const hv_pf_health *h = hv_pf_catalog_health(ex->deps->catalog);
    bool upstream_failing = h->last_failure_wall_ms > h->last_success_wall_ms;
    hv_pf_roster *roster = hv_pf_catalog_peek(ex->deps->catalog);
    char started[40];
    hv_format_iso8601(ex->deps->started_wall_ms, started, sizeof(started));

    json_t *catalog = json_null();
    if (roster != NULL) {
        char fetched[40];
        hv_format_iso8601(roster->fetched_at_wall_ms, fetched, sizeof(fetched));
        catalog =
            json_pack("{s:I, s:s, s:f}", "live_streams", (json_int_t)roster->all->len, "fetched_at",
                      fetched, "age_s", (double)(hv_now_ms() - roster->fetched_at_ms) / 1000.0);
    }
    json_t *body = json_pack(
        "{s:s, s:s, s:I, s:s, s:f, s:{s:s, s:b, s:i, s:I, s:s?}, s:{s:o, s:o, s:I, s:I}, s:o}",
        "status",
        !writable          ? "error"
        : upstream_failing ? "degraded"
                           : "ok",
        "version", ex->deps->version, "pid", (json_int_t)getpid(), "started_at", started,
        "uptime_s", (double)(now - ex->deps->started_wall_ms) / 1000.0, "db", "path",
        hv_store_path(ex->deps->store), "writable", writable, "schema_version",
        hv_store_schema_version(ex->deps->store), "coins_cached",
        (json_int_t)hv_store_count(ex->deps->store, "pumpfun_coins"), "error",
        db_error != NULL ? db_error->message : NULL, "upstream", "last_success",
        event_json(h->last_success_wall_ms, now, h->last_success_endpoint, NULL), "last_failure",
        event_json(h->last_failure_wall_ms, now, h->last_failure_endpoint, h->last_error),
        "requests", (json_int_t)h->requests, "failures", (json_int_t)h->failures, "catalog",
        catalog);
    hv_http_add_header(ex, "Cache-Control", "no-store");
    hv_http_respond_json(ex, writable ? 200 : 503, body);
}

static void handle_index(hv_http_exchange *ex);

/* GET /: the web player when HAVEN_WEB_DIR has one, else the API index. */
static void
handle_root(hv_http_exchange *ex)
{
    if (!hv_http_serve_static(ex, "/index.html")) {
        handle_index(ex);
    }
}

/* GET /api/pumpfun/history/{mint_id}?hours=24: participants and market cap over time, from
 * coin_snapshots (one point per HAVEN_SNAPSHOT_INTERVAL at most), for the player's chart. */
static void
handle_history(hv_http_exchange *ex, const char *mint)
{
    if (!check_mint(ex, mint)) {
        return;
    }
    json_t *errors = json_array();
    int64_t hours = 24;
    (void)hv_http_query_int(ex->query, "hours", 24, 1, 24 * 90, &hours, errors);
    if (json_array_size(errors) > 0) {
        hv_http_respond_validation(ex, errors);
        return;
    }
    json_decref(errors);
    g_autoptr(GError) error = NULL;
    json_t *points = hv_store_coin_history(ex->deps->store, mint,
                                           hv_wall_ms() - hours * 3600 * 1000, 2000, &error);
    if (points == NULL) {
        hv_http_respond_detail(ex, 500, "%s", error->message);
        return;
    }
    hv_http_add_header(ex, "Cache-Control", "no-store");
    hv_http_respond_json(ex, 200,
                         json_pack("{s:s, s:I, s:o}", "mint_id", mint, "hours", (json_int_t)hours,
                                   "points", points));
}

/* ---- routing ---------------------------------------------------------------------------- */

typedef void (*segment_handler)(hv_http_exchange *ex, const char *segment);

/* A path is exact, or holds one "{name}" placeholder that matches one non-empty segment (no
 * '/'), which is passed to with_segment. */
static const struct {
    const char *method;
    const char *path;
    route_handler handler;
    segment_handler with_segment;
} routes[] = {
    {"GET", "/", handle_root, NULL},
    {"GET", "/api", handle_index, NULL},
    {"GET", "/healthz", handle_healthz, NULL},
    {"GET", "/metrics", hv_http_handle_metrics, NULL},
    {"GET", "/openapi.json", hv_http_handle_openapi, NULL},
    {"GET", "/api/pumpfun/live", handle_live, NULL},
    {"GET", "/api/pumpfun/popular", handle_popular, NULL},
    {"GET", "/api/pumpfun/stats", handle_stats, NULL},
    {"GET", "/api/pumpfun/stream/{mint_id}", NULL, handle_stream},
    {"GET", "/api/pumpfun/validate/{mint_id}", NULL, handle_validate},
    {"GET", "/api/pumpfun/history/{mint_id}", NULL, handle_history},
    {"POST", "/api/live-sessions/start", handle_session_start, NULL},
    {"POST", "/api/live-sessions/stop", handle_session_stop, NULL},
    {"GET", "/api/live-sessions/active", handle_session_active, NULL},
    {"POST", "/api/live-sessions/{mint_id}/recording", NULL, handle_session_recording},
    {"GET", "/api/recordings", hv_http_handle_recordings, NULL},
    {"GET", "/api/recordings/{id}", NULL, hv_http_handle_recording},
    {"DELETE", "/api/recordings/{id}", NULL, hv_http_handle_recording_delete},
    {"GET", "/api/recordings/{id}/file", NULL, hv_http_handle_recording_file},
};

/* GET /: what this server answers, generated from the route table so it cannot go stale. */
static void
handle_index(hv_http_exchange *ex)
{
    json_t *list = json_array();
    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
        g_autofree char *e = g_strdup_printf("%s %s", routes[i].method, routes[i].path);
        json_array_append_new(list, json_string(e));
    }
    json_array_append_new(list, json_string("WS " HV_HTTP_WS_ROUTE));
    hv_http_respond_json(ex, 200,
                         json_pack("{s:s, s:s, s:o}", "name", "haven", "version", ex->deps->version,
                                   "endpoints", list));
}

bool
hv_http_route(size_t i, const char **method, const char **path)
{
    if (i >= G_N_ELEMENTS(routes)) {
        return false;
    }
    *method = routes[i].method;
    *path = routes[i].path;
    return true;
}

/* Matches path against a route pattern. For a pattern with a "{name}" placeholder, *seg gets
 * (transfer full) the segment it matched. */
static bool
match_route(const char *path, const char *pattern, char **seg)
{
    const char *open = strchr(pattern, '{');
    if (open == NULL) {
        return strcmp(path, pattern) == 0;
    }
    size_t prefix_len = (size_t)(open - pattern);
    const char *suffix = strchr(open, '}') + 1;
    size_t suffix_len = strlen(suffix);
    size_t path_len = strlen(path);
    if (path_len <= prefix_len + suffix_len || strncmp(path, pattern, prefix_len) != 0 ||
        strcmp(path + path_len - suffix_len, suffix) != 0) {
        return false;
    }
    size_t seg_len = path_len - prefix_len - suffix_len;
    if (memchr(path + prefix_len, '/', seg_len) != NULL) {
        return false;
    }
    *seg = g_strndup(path + prefix_len, seg_len);
    return true;
}

void
hv_http_dispatch(hv_http_exchange *ex)
{
    const char *method = strcmp(ex->method, "HEAD") == 0 ? "GET" : ex->method;
    g_autoptr(GString) allow = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
        g_autofree char *segment = NULL;
        if (!match_route(ex->path, routes[i].path, &segment)) {
            continue;
        }
        if (strcmp(method, routes[i].method) != 0) {
            g_string_append_printf(allow, "%s%s", allow->len > 0 ? ", " : "", routes[i].method);
            if (strcmp(routes[i].method, "GET") == 0) {
                g_string_append(allow, ", HEAD");
            }
            continue;
        }
        if (routes[i].with_segment != NULL) {
            routes[i].with_segment(ex, segment);
        } else {
            routes[i].handler(ex);
        }
        return;
    }
    if (allow->len > 0) {
        hv_http_add_header(ex, "Allow", allow->str);
        hv_http_respond_detail(ex, 405, "Method Not Allowed");
        return;
    }
    if (strcmp(method, "GET") == 0 && !g_str_has_prefix(ex->path, "/api/") &&
        hv_http_serve_static(ex, ex->path)) {
        return;
    }
    hv_http_respond_detail(ex, 404, "Not Found");
}

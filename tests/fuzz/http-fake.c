/* The in-memory world of the HTTP fuzz targets (see http-fake.h). The __wrap_* functions replace
 * the catalog and live-session entry points the handlers call (meson.build links these targets
 * with -Wl,--wrap=<name> for each), so a handler that validated its input gets an immediate,
 * deterministic answer instead of a network fetch. */
#include "http-fake.h"

#include "core/error.h"
#include "core/util.h"
#include "fuzz-common.h"

#include <jansson.h>
#include <libwebsockets.h>

/* Three coins as pump.fun's currently-live page has them (tests/data/pumpfun). */
static const char roster_json[] =
    "[{\"mint\":\"7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump\",\"name\":\"Orbital Otter\","
    "\"symbol\":\"OTTR\",\"description\":\"An otter in low orbit\",\"image_uri\":"
    "\"https://ipfs.io/ipfs/QmRvnidG5ZocFnzvexJrC2F3qvan6SB12yQpAz5RvnphmF\",\"creator\":"
    "\"9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin\",\"market_cap\":41.234,\"usd_market_cap\":"
    "7213.55,\"num_participants\":1843,\"is_currently_live\":true,\"nsfw\":false,"
    "\"created_timestamp\":1732400000000,\"last_trade_timestamp\":1732460000000},"
    "{\"mint\":\"4odAMtm92RnFU3V3kLb9ZdJSUsraFCas1vx9CxVxpump\",\"name\":\"Night Market\","
    "\"symbol\":\"NITE\",\"num_participants\":962,\"is_currently_live\":true,\"nsfw\":false,"
    "\"market_cap\":30.5},"
    "{\"mint\":\"CjgM7MPSTLzA6mmRbTWvg3M5tz5KggBKgWZtW9Fbpump\",\"name\":\"Late Show\","
    "\"symbol\":\"LATE\",\"num_participants\":488,\"is_currently_live\":true,\"nsfw\":true}]";

static struct {
    bool ready;
    hv_config *cfg;
    hv_store *store;
    hv_pf_roster *roster;
    hv_http_deps deps;
    hv_http_body_cache *bodies;
    hv_pf_health health;
    /* the answer mode of the request being dispatched */
    hv_fuzz_upstream upstream;
    const char *upstream_body;
} fake;

/* A non-NULL stand-in for a live session: the wrapped live functions only compare it. */
static int fake_session_tag;
#define FAKE_SESSION ((hv_live_session *)&fake_session_tag)

void
hv_fuzz_http_init(void)
{
    if (fake.ready) {
        return;
    }
    hv_fuzz_setup_logging();
    char *argv[] = {(char *)"haven", (char *)"--web-dir=", (char *)"--db=:memory:",
                    (char *)"--recordings-dir=/nonexistent/haven-fuzz", NULL};
    char *envp[] = {NULL};
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    fake.cfg = hv_config_load(4, argv, envp, &action, &error);
    if (fake.cfg == NULL) {
        g_error("fuzz config: %s", error->message);
    }
    fake.store = hv_store_open(":memory:", &error);
    if (fake.store == NULL) {
        g_error("fuzz store: %s", error->message);
    }
    unsigned skipped = 0;
    g_autoptr(GPtrArray) rows =
        hv_pf_parse_roster(roster_json, strlen(roster_json), &skipped, &error);
    if (rows == NULL) {
        g_error("fuzz roster: %s", error->message);
    }
    fake.roster = hv_pf_roster_new(rows, hv_now_ms(), hv_wall_ms());
    g_autofree json_t **coins = g_new0(json_t *, rows->len);
    for (guint i = 0; i < rows->len; i++) {
        coins[i] = ((hv_pf_stream *)g_ptr_array_index(rows, i))->raw;
    }
    if (!hv_store_upsert_coins(fake.store, coins, rows->len, hv_wall_ms() - 3600 * 1000, 0,
                               &error) ||
        !hv_store_upsert_coins(fake.store, coins, rows->len, hv_wall_ms(), 0, &error)) {
        g_error("fuzz store coins: %s", error->message);
    }
    fake.bodies = hv_http_body_cache_new();
    fake.deps = (hv_http_deps){
        .catalog = NULL,
        .store = fake.store,
        .live = (hv_live *)&fake_session_tag,
        .version = "0.0.0-fuzz",
        .started_wall_ms = hv_wall_ms() - 5000,
    };
    fake.health.last_success_wall_ms = hv_wall_ms() - 60000;
    g_strlcpy(fake.health.last_success_endpoint, "currently-live",
              sizeof(fake.health.last_success_endpoint));
    fake.health.last_failure_wall_ms = hv_wall_ms() - 1000;
    g_strlcpy(fake.health.last_failure_endpoint, "coins",
              sizeof(fake.health.last_failure_endpoint));
    g_strlcpy(fake.health.last_error, "pump.fun coins: HTTP 429 rate limited (retry after 30 s)",
              sizeof(fake.health.last_error));
    fake.health.requests = 12;
    fake.health.failures = 1;
    fake.ready = true;
}

/* ---- the fake catalog ------------------------------------------------------------------------ */

static hv_pf_cache_info
cache_info(void)
{
    hv_pf_cache_info info = {
        .stale = fake.upstream == HV_FUZZ_UPSTREAM_STALE,
        .age_ms = fake.upstream == HV_FUZZ_UPSTREAM_STALE ? 45000 : 1200,
        .fetched_at_wall_ms = fake.roster->fetched_at_wall_ms,
        .upstream_error = fake.upstream == HV_FUZZ_UPSTREAM_STALE ? fake.health.last_error : NULL,
        .retry_in_ms = 0,
    };
    return info;
}

/* (transfer full, nullable) The error of the refresh that failed, if the mode says one did: a
 * real parse of the upstream body (its message as the catalog would prefix it). */
static GError *
upstream_error(hv_pf_cache_info *info)
{
    switch (fake.upstream) {
    case HV_FUZZ_UPSTREAM_ERROR: {
        const char *body = fake.upstream_body != NULL ? fake.upstream_body : "";
        unsigned skipped = 0;
        GError *error = NULL;
        GPtrArray *rows = hv_pf_parse_roster(body, strlen(body), &skipped, &error);
        if (rows != NULL) {
            g_ptr_array_unref(rows);
            return g_error_new(HV_ERROR, HV_EUPSTREAM, "pump.fun currently-live: HTTP 502");
        }
        g_prefix_error(&error, "pump.fun currently-live: ");
        return error;
    }
    case HV_FUZZ_UPSTREAM_RATE_LIMITED:
        info->retry_in_ms = 29500;
        return g_error_new(HV_ERROR, HV_ERATELIMIT,
                           "pump.fun currently-live: HTTP 429 rate limited (retry after 30 s)");
    default:
        return NULL;
    }
}

static bool
have_data(void)
{
    return fake.upstream == HV_FUZZ_UPSTREAM_FRESH || fake.upstream == HV_FUZZ_UPSTREAM_STALE;
}

hv_pf_waiter *__wrap_hv_pf_catalog_get_roster(hv_pf_catalog *cat, hv_pf_roster_cb cb,
                                              void *user_data);
hv_pf_waiter *
__wrap_hv_pf_catalog_get_roster(hv_pf_catalog *cat, hv_pf_roster_cb cb, void *user_data)
{
    (void)cat;
    hv_pf_cache_info info = cache_info();
    if (have_data()) {
        cb(fake.roster, &info, NULL, user_data);
        return NULL;
    }
    g_autoptr(GError) error = upstream_error(&info);
    cb(NULL, &info, error, user_data);
    return NULL;
}

hv_pf_waiter *__wrap_hv_pf_catalog_get_stream(hv_pf_catalog *cat, const char *mint_id,
                                              hv_pf_stream_cb cb, void *user_data);
hv_pf_waiter *
__wrap_hv_pf_catalog_get_stream(hv_pf_catalog *cat, const char *mint_id, hv_pf_stream_cb cb,
                                void *user_data)
{
    (void)cat;
    if (!hv_mint_id_is_valid(mint_id)) {
        abort(); /* the contract: callers validate first */
    }
    hv_pf_cache_info info = cache_info();
    if (have_data()) {
        cb(g_hash_table_lookup(fake.roster->by_mint, mint_id), &info, NULL, user_data);
        return NULL;
    }
    g_autoptr(GError) error = upstream_error(&info);
    cb(NULL, &info, error, user_data);
    return NULL;
}

hv_pf_roster *__wrap_hv_pf_catalog_peek(hv_pf_catalog *cat);
hv_pf_roster *
__wrap_hv_pf_catalog_peek(hv_pf_catalog *cat)
{
    (void)cat;
    return have_data() ? fake.roster : NULL;
}

const hv_pf_health *__wrap_hv_pf_catalog_health(const hv_pf_catalog *cat);
const hv_pf_health *
__wrap_hv_pf_catalog_health(const hv_pf_catalog *cat)
{
    (void)cat;
    return &fake.health;
}

/* ---- the fake live manager: a mint in the roster has (or gets) a session ----------------- */

static bool
is_live(const char *mint_id)
{
    if (!hv_mint_id_is_valid(mint_id)) {
        abort(); /* the contract: callers validate first */
    }
    return g_hash_table_contains(fake.roster->by_mint, mint_id);
}

hv_live_op *__wrap_hv_live_start(hv_live *live, const char *mint_id, bool record,
                                 hv_live_start_cb cb, void *user_data);
hv_live_op *
__wrap_hv_live_start(hv_live *live, const char *mint_id, bool record, hv_live_start_cb cb,
                     void *user_data)
{
    (void)live;
    (void)record;
    if (is_live(mint_id)) {
        cb(FAKE_SESSION, NULL, user_data);
    } else {
        g_autoptr(GError) e = g_error_new(HV_ERROR, HV_ENOTFOUND,
                                          "Stream not found or not live for mint_id: %s", mint_id);
        cb(NULL, e, user_data);
    }
    return NULL;
}

hv_live_session *__wrap_hv_live_find(hv_live *live, const char *mint_id);
hv_live_session *
__wrap_hv_live_find(hv_live *live, const char *mint_id)
{
    (void)live;
    return is_live(mint_id) ? FAKE_SESSION : NULL;
}

void __wrap_hv_live_session_report_get(hv_live_session *s, hv_live_session_report *out);
void
__wrap_hv_live_session_report_get(hv_live_session *s, hv_live_session_report *out)
{
    if (s != FAKE_SESSION) {
        abort();
    }
    memset(out, 0, sizeof(*out));
    out->mint = HV_FUZZ_LIVE_MINT;
    out->state = "active";
    out->joined = true;
    out->session_id = 1;
    out->room_name = "livestream:fuzz:1";
    out->participant_sid = "PA_fuzz";
    out->recording.status = "off";
}

const hv_pf_stream *__wrap_hv_live_session_stream(hv_live_session *s);
const hv_pf_stream *
__wrap_hv_live_session_stream(hv_live_session *s)
{
    if (s != FAKE_SESSION) {
        abort();
    }
    return NULL;
}

GArray *__wrap_hv_live_reports(hv_live *live);
GArray *
__wrap_hv_live_reports(hv_live *live)
{
    (void)live;
    GArray *out = g_array_new(FALSE, TRUE, sizeof(hv_live_session_report));
    hv_live_session_report r;
    __wrap_hv_live_session_report_get(FAKE_SESSION, &r);
    g_array_append_val(out, r);
    return out;
}

bool __wrap_hv_live_stop(hv_live *live, const char *mint_id);
bool
__wrap_hv_live_stop(hv_live *live, const char *mint_id)
{
    (void)live;
    return is_live(mint_id);
}

bool __wrap_hv_live_set_recording(hv_live *live, const char *mint_id, bool on, GError **error);
bool
__wrap_hv_live_set_recording(hv_live *live, const char *mint_id, bool on, GError **error)
{
    (void)live;
    (void)on;
    if (!is_live(mint_id)) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "No active session for mint_id: %s", mint_id);
        return false;
    }
    return true;
}

void __wrap_hv_live_op_cancel(hv_live_op *op);
void
__wrap_hv_live_op_cancel(hv_live_op *op)
{
    if (op != NULL) {
        abort(); /* the fake never parks a request */
    }
}

hv_http_body_cache *__wrap_hv_http_exchange_body_cache(hv_http_exchange *ex);
hv_http_body_cache *
__wrap_hv_http_exchange_body_cache(hv_http_exchange *ex)
{
    (void)ex;
    return fake.bodies;
}

/* ---- requests -------------------------------------------------------------------------------- */

hv_http_exchange *
hv_fuzz_http_exchange(const char *method, const char *path, GPtrArray *query, const uint8_t *body,
                      size_t body_len)
{
    hv_http_exchange *ex = g_new0(hv_http_exchange, 1);
    ex->srv = NULL;
    ex->cfg = fake.cfg;
    ex->deps = &fake.deps;
    ex->wsi = NULL; /* nothing is written: the answer stays in ex */
    g_strlcpy(ex->method, method, sizeof(ex->method));
    ex->path = g_strdup(path);
    ex->query = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; query != NULL && i < query->len; i++) {
        g_ptr_array_add(ex->query, g_strdup(g_ptr_array_index(query, i)));
    }
    ex->headers = g_ptr_array_new_with_free_func(g_free);
    ex->content_length = body != NULL ? (int64_t)body_len : -1;
    ex->file_fd = -1;
    if (body != NULL) {
        ex->req_body = g_byte_array_new();
        g_byte_array_append(ex->req_body, body, (guint)body_len);
    }
    return ex;
}

static void
exchange_free(hv_http_exchange *ex)
{
    g_free(ex->path);
    g_free(ex->range);
    g_free(ex->if_none_match);
    g_free(ex->cors_origin); /* as src/http/server.c frees it (never set here today) */
    g_ptr_array_unref(ex->query);
    g_ptr_array_unref(ex->headers);
    if (ex->req_body != NULL) {
        g_byte_array_unref(ex->req_body);
    }
    if (ex->body != NULL) {
        g_string_free(ex->body, TRUE);
    }
    hv_http_body_unref(ex->shared);
    g_free(ex);
}

static bool
one_line(const char *s)
{
    return s != NULL && strpbrk(s, "\r\n") == NULL;
}

static void
check_answer(hv_http_exchange *ex)
{
    static int verbose = -1;
    if (verbose < 0) {
        verbose = g_getenv("HV_FUZZ_VERBOSE") != NULL;
    }
    if (!ex->responded || ex->waiter != NULL || ex->live_op != NULL || ex->file_fd >= 0) {
        fprintf(stderr, "%s %s: no immediate answer\n", ex->method, ex->path);
        abort();
    }
    if (ex->status < 200 || ex->status > 599 || ex->content_type == NULL) {
        fprintf(stderr, "%s %s: status %d\n", ex->method, ex->path, ex->status);
        abort();
    }
    for (guint i = 0; i < ex->headers->len; i++) {
        if (!one_line(g_ptr_array_index(ex->headers, i))) {
            fprintf(stderr, "%s %s: header %s is not one line\n", ex->method, ex->path,
                    (const char *)g_ptr_array_index(ex->headers, i & ~1u));
            abort();
        }
    }
    size_t len = 0;
    const uint8_t *data = NULL;
    if (ex->shared != NULL) {
        data = hv_http_body_data(ex->shared, false, &len);
    } else if (ex->body != NULL) {
        data = (const uint8_t *)ex->body->str + LWS_PRE;
        len = ex->body->len - LWS_PRE;
    }
    if (strcmp(ex->content_type, "application/json") == 0) {
        json_error_t jerr;
        json_t *doc = data != NULL ? json_loadb((const char *)data, len, 0, &jerr) : NULL;
        if (doc == NULL) {
            fprintf(stderr, "%s %s: %d answer is not JSON: %.*s\n", ex->method, ex->path,
                    ex->status, (int)MIN(len, 400), data != NULL ? (const char *)data : "");
            abort();
        }
        if (ex->status == 422 && !json_is_array(json_object_get(doc, "detail"))) {
            abort();
        }
        json_decref(doc);
    }
    if (verbose) {
        fprintf(stderr, "# %s %s -> %d %.*s\n", ex->method, ex->path, ex->status,
                (int)MIN(len, 160), data != NULL ? (const char *)data : "");
    }
}

int
hv_fuzz_http_run(hv_http_exchange *ex, hv_fuzz_upstream upstream, const char *upstream_body)
{
    fake.upstream = upstream;
    fake.upstream_body = upstream_body;
    ex->in_dispatch = true;
    hv_http_dispatch(ex);
    ex->in_dispatch = false;
    check_answer(ex);
    int status = ex->status;
    exchange_free(ex);
    return status;
}

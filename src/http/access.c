/* Access control and request limits: who may make a request, decided before it is dispatched
 * and before its body is read. Main thread only.
 *
 * hv_http_admit_request() answers CORS preflights from allowed origins, refuses cross-origin
 * writes, checks the API token and takes a session start from the client's token bucket (the
 * rate table). server.c calls it for every request and hv_http_request_has_token() for viewer
 * WebSocket upgrades. The checks themselves (token comparison in constant time, Bearer parsing,
 * origins, the rate table) are pure and unit-tested.
 */
#include "http-private.h"

#include "core/log.h"
#include "core/util.h"

#include <libwebsockets.h>
#include <string.h>

/* ---- the checks (pure) ------------------------------------------------------------------ */

bool
hv_http_path_needs_token(const char *path)
{
    /* /metrics names the mints being watched and recorded: it is guarded like the API. */
    return strcmp(path, "/api") == 0 || g_str_has_prefix(path, "/api/") ||
           strcmp(path, "/metrics") == 0;
}

bool
hv_http_token_matches(const char *expected, const char *given)
{
    if (given == NULL) {
        return false;
    }
    size_t n = strlen(expected);
    size_t m = strnlen(given, n + 1);
    /* Every byte of expected is compared whatever the guess; a shorter guess reads as zeros
     * past its end (never past its terminator), a longer one fails on the length. */
    unsigned diff = (unsigned)(n != m);
    for (size_t i = 0; i < n; i++) {
        unsigned char g = i < m ? (unsigned char)given[i] : 0;
        diff |= (unsigned)(g ^ (unsigned char)expected[i]);
    }
    return diff == 0;
}

const char *
hv_http_bearer_token(const char *authorization)
{
    if (g_ascii_strncasecmp(authorization, "Bearer", 6) != 0 ||
        (authorization[6] != ' ' && authorization[6] != '\t')) {
        return NULL;
    }
    const char *t = authorization + 6;
    while (*t == ' ' || *t == '\t') {
        t++;
    }
    return *t != '\0' ? t : NULL;
}

bool
hv_http_origin_allowed(const char *const *allow, const char *origin)
{
    if (allow == NULL || origin == NULL || *origin == '\0') {
        return false;
    }
    for (const char *const *a = allow; *a != NULL; a++) {
        if (strcmp(*a, "*") == 0 || g_ascii_strcasecmp(*a, origin) == 0) {
            return true;
        }
    }
    return false;
}

bool
hv_http_same_origin(const char *origin, const char *host)
{
    const char *rest = g_str_has_prefix(origin, "http://")    ? origin + 7
                       : g_str_has_prefix(origin, "https://") ? origin + 8
                                                              : NULL;
    return rest != NULL && *host != '\0' && g_ascii_strcasecmp(rest, host) == 0;
}

char *
hv_http_mask_tokens(const char *text)
{
    /* The rule lives in core/log.c, which applies it to every log line as well. */
    return hv_log_mask_secrets(text);
}

/* ---- session starts per client (the rate table) ----------------------------------------- */

typedef struct {
    double tokens;   /* starts available now (refilled up to per_minute) */
    int64_t last_ms; /* when tokens was computed */
} rate_bucket;

struct hv_http_rate {
    double per_minute;
    unsigned max_clients;
    GHashTable *buckets; /* address (owned) → rate_bucket (owned) */
};

hv_http_rate *
hv_http_rate_new(int64_t per_minute, unsigned max_clients)
{
    hv_http_rate *r = g_new0(hv_http_rate, 1);
    r->per_minute = (double)per_minute;
    r->max_clients = MAX(max_clients, 1u);
    r->buckets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return r;
}

void
hv_http_rate_free(hv_http_rate *r)
{
    if (r == NULL) {
        return;
    }
    g_hash_table_destroy(r->buckets);
    g_free(r);
}

unsigned
hv_http_rate_size(const hv_http_rate *r)
{
    return g_hash_table_size(r->buckets);
}

static double
rate_level(const hv_http_rate *r, const rate_bucket *b, int64_t now_ms)
{
    double level = b->tokens + (double)(now_ms - b->last_ms) * r->per_minute / 60000.0;
    return MIN(level, r->per_minute);
}

/* Makes room for one more address: refilled buckets go first, then the one idle longest.
 * O(table) per call, and only when the table is full. */
static void
rate_evict(hv_http_rate *r, int64_t now_ms)
{
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, r->buckets);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        if (rate_level(r, value, now_ms) >= r->per_minute) {
            g_hash_table_iter_remove(&it);
        }
    }
    if (g_hash_table_size(r->buckets) < r->max_clients) {
        return;
    }
    gpointer oldest_key = NULL;
    int64_t oldest_ms = G_MAXINT64;
    gpointer key;
    g_hash_table_iter_init(&it, r->buckets);
    while (g_hash_table_iter_next(&it, &key, &value)) {
        if (((rate_bucket *)value)->last_ms < oldest_ms) {
            oldest_ms = ((rate_bucket *)value)->last_ms;
            oldest_key = key;
        }
    }
    g_hash_table_remove(r->buckets, oldest_key);
}

int64_t
hv_http_rate_take(hv_http_rate *r, const char *key, int64_t now_ms)
{
    rate_bucket *b = g_hash_table_lookup(r->buckets, key);
    if (b == NULL) {
        if (g_hash_table_size(r->buckets) >= r->max_clients) {
            rate_evict(r, now_ms);
        }
        b = g_new0(rate_bucket, 1);
        b->tokens = r->per_minute;
        b->last_ms = now_ms;
        g_hash_table_insert(r->buckets, g_strdup(key), b);
    }
    b->tokens = rate_level(r, b, now_ms);
    b->last_ms = now_ms;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    return (int64_t)((1.0 - b->tokens) * 60000.0 / r->per_minute) + 1;
}

/* ---- admission -------------------------------------------------------------------------- */

bool
hv_http_request_has_token(struct lws *wsi, const char *expected, const char *query_token)
{
    char auth[600];
    if (lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        hv_http_token_matches(expected, hv_http_bearer_token(auth))) {
        return true;
    }
    return hv_http_token_matches(expected, query_token);
}

static void
respond_unauthorized(hv_http_exchange *ex)
{
    hv_http_add_header(ex, "WWW-Authenticate", "Bearer");
    hv_http_respond_detail(ex, 401, HV_HTTP_TOKEN_DETAIL);
}

/* Answers a CORS preflight from an allowed origin. */
static void
respond_preflight(hv_http_exchange *ex)
{
    hv_http_add_header(ex, "Access-Control-Allow-Methods", "GET, HEAD, POST, DELETE, OPTIONS");
    hv_http_add_header(ex, "Access-Control-Allow-Headers", "Authorization, Content-Type, Range");
    hv_http_add_header(ex, "Access-Control-Max-Age", "600");
    hv_http_respond(ex, 204, NULL, "", 0);
}

bool
hv_http_admit_request(hv_http_exchange *ex, struct lws *wsi)
{
    hv_http_server *srv = ex->srv;
    bool safe = strcmp(ex->method, "GET") == 0 || strcmp(ex->method, "HEAD") == 0 ||
                strcmp(ex->method, "OPTIONS") == 0;
    char origin[256] = "";
    bool has_origin = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0;
    if (has_origin && lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0) {
        origin[0] = '\0'; /* too long to be an origin we know: allowed nowhere */
    }
    if (has_origin && hv_http_origin_allowed((const char *const *)srv->cors, origin)) {
        ex->cors_origin = g_strdup(origin);
        if (strcmp(ex->method, "OPTIONS") == 0) {
            respond_preflight(ex);
            return false;
        }
    }
    /* CORS only hides answers from other sites' pages; a "simple" cross-origin POST still runs.
     * A browser names the page's origin on every POST and DELETE: one that is neither this
     * server nor allowed is another site acting through a visitor's browser. */
    if (has_origin && !safe && ex->cors_origin == NULL) {
        char host[256] = "";
        if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) < 0) {
            host[0] = '\0';
        }
        if (!hv_http_same_origin(origin, host)) {
            g_debug("refused a cross-origin %s %s from origin %s", ex->method, ex->path, origin);
            hv_http_respond_detail(ex, 403,
                                   "Cross-origin request refused: origin %s is not allowed "
                                   "(HAVEN_CORS_ORIGINS)",
                                   origin[0] != '\0' ? origin : "(unreadable)");
            return false;
        }
    }
    const char *token = srv->cfg->api_token;
    if (token[0] != '\0' && hv_http_path_needs_token(ex->path)) {
        const char *q = strcmp(ex->method, "GET") == 0 || strcmp(ex->method, "HEAD") == 0
                            ? hv_http_query_get(ex->query, "token")
                            : NULL;
        if (!hv_http_request_has_token(wsi, token, q)) {
            g_debug("refused %s %s: missing or invalid API token", ex->method, ex->path);
            respond_unauthorized(ex);
            return false;
        }
    }
    /* The token is no parameter of any endpoint: drop it so nothing can echo or log it. */
    for (guint i = ex->query->len; i > 0; i--) {
        if (g_str_has_prefix(g_ptr_array_index(ex->query, i - 1), "token=")) {
            g_ptr_array_remove_index(ex->query, i - 1);
        }
    }
    if (srv->rate != NULL && strcmp(ex->method, "POST") == 0 &&
        strcmp(ex->path, "/api/live-sessions/start") == 0) {
        char ip[64] = "";
        lws_get_peer_simple(wsi, ip, sizeof(ip));
        int64_t wait_ms = hv_http_rate_take(srv->rate, ip, hv_now_ms());
        if (wait_ms > 0) {
            int64_t secs = MAX((int64_t)1, (wait_ms + 999) / 1000);
            char retry[32];
            g_snprintf(retry, sizeof(retry), "%" G_GINT64_FORMAT, secs);
            hv_http_add_header(ex, "Retry-After", retry);
            g_autofree char *msg =
                g_strdup_printf("Too many session starts from %s (limit %" G_GINT64_FORMAT
                                " per minute); try again in %" G_GINT64_FORMAT " s",
                                ip, srv->cfg->start_rate, secs);
            g_debug("%s", msg);
            hv_http_respond_session_error(ex, 429, msg);
            return false;
        }
    }
    return true;
}

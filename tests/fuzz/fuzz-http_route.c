/* Fuzz target: HTTP routing and query validation (src/http/rest.c, query.c, recordings.c,
 * static.c, response.c), through hv_http_dispatch as server.c calls it, in the in-memory world
 * of http-fake.c.
 *
 * Input: an HTTP-like request, after lws has parsed it:
 *     METHOD PATH[?QUERY]
 *     Header-Name: value          (Accept-Encoding, Range, X-Fuzz-Upstream, X-Fuzz-Upstream-Body)
 *     (empty line)
 *     body                        (for POST: the request body, verbatim)
 * The path is URL-decoded; the query is split at '&' and each argument URL-decoded ('+' is a
 * space), as lws hands them over. X-Fuzz-Upstream picks the fake catalog's answer: fresh (the
 * default), stale, none, error (the parse error of X-Fuzz-Upstream-Body as a pump.fun page) or
 * 429. The pure helpers access.c, server.c and recordings.c apply to these headers run too.
 */
#include "fuzz-common.h"
#include "http-fake.h"

#include "core/util.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_http_init();
    return 0;
}

/* The methods lws reports (server.c's table). */
static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"};

static hv_fuzz_upstream
upstream_mode(const char *v)
{
    static const struct {
        const char *name;
        hv_fuzz_upstream mode;
    } modes[] = {{"stale", HV_FUZZ_UPSTREAM_STALE},
                 {"none", HV_FUZZ_UPSTREAM_NONE},
                 {"error", HV_FUZZ_UPSTREAM_ERROR},
                 {"429", HV_FUZZ_UPSTREAM_RATE_LIMITED}};
    for (size_t i = 0; v != NULL && i < G_N_ELEMENTS(modes); i++) {
        if (g_ascii_strcasecmp(v, modes[i].name) == 0) {
            return modes[i].mode;
        }
    }
    return HV_FUZZ_UPSTREAM_FRESH;
}

/* The pure parts of access.c's admission, on this request's headers: the Bearer token and
 * the token comparison, CORS origins, the token masking applied to logged URLs. */
static void
admission_helpers(const char *path, GPtrArray *query, const char *authorization, const char *origin,
                  const char *host)
{
    (void)hv_http_path_needs_token(path);
    const char *given = authorization != NULL ? hv_http_bearer_token(authorization) : NULL;
    if (given == NULL) {
        given = hv_http_query_get(query, "token");
    }
    if (hv_http_token_matches("s3cret-token", given) && strcmp(given, "s3cret-token") != 0) {
        abort();
    }
    if (origin != NULL) {
        static const char *const allow[] = {"https://app.example", "http://127.0.0.1:8000", NULL};
        static const char *const any[] = {"*", NULL};
        (void)hv_http_origin_allowed(allow, origin);
        if (*origin != '\0' && !hv_http_origin_allowed(any, origin)) {
            abort();
        }
        (void)hv_http_same_origin(origin, host);
    }
    for (guint i = 0; i < query->len; i++) {
        const char *arg = g_ptr_array_index(query, i);
        g_autofree char *masked = hv_http_mask_tokens(arg);
        size_t n = g_str_has_prefix(arg, "token=") ? strcspn(arg + 6, "& \t\r\n\"'") : 0;
        if (n > 6 && (strncmp(masked, arg, 12) != 0 || !g_str_has_prefix(masked + 12, "…"))) {
            abort(); /* more than the first 6 characters of a token would be logged */
        }
    }
}

/* The spec's promise for malformed parameters (docs/API.md): a query parameter of these
 * endpoints that is not a whole number (or not a boolean) is a 422 naming it, whatever else the
 * request holds. Returns true when path/query must be answered 422. */
static bool
must_be_422(const char *method, const char *path, GPtrArray *query)
{
    static const struct {
        const char *path;
        const char *name;
        bool boolean;
    } params[] = {
        {"/api/pumpfun/live", "offset", false},         {"/api/pumpfun/live", "limit", false},
        {"/api/pumpfun/live", "include_nsfw", true},    {"/api/pumpfun/popular", "limit", false},
        {"/api/pumpfun/popular", "include_nsfw", true}, {"/api/recordings", "limit", false},
        {"/api/recordings", "offset", false},
    };
    static const char *const bools[] = {"true",  "1", "yes", "on",  "t", "y",
                                        "false", "0", "no",  "off", "f", "n"};
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        return false;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(params); i++) {
        if (strcmp(path, params[i].path) != 0) {
            continue;
        }
        const char *v = hv_http_query_get(query, params[i].name);
        if (v == NULL) {
            continue;
        }
        if (params[i].boolean) {
            bool known = false;
            for (size_t k = 0; k < G_N_ELEMENTS(bools); k++) {
                known = known || g_ascii_strcasecmp(v, bools[k]) == 0;
            }
            if (!known) {
                return true;
            }
        } else {
            int64_t n;
            if (!hv_parse_int64(v, &n)) {
                return true;
            }
        }
    }
    return false;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* head: up to the first empty line; body: the rest, verbatim */
    size_t head_len = size, body_at = size;
    for (size_t i = 0; i + 1 < size; i++) {
        if (data[i] == '\n' && data[i + 1] == '\n') {
            head_len = i;
            body_at = i + 2;
            break;
        }
    }
    g_auto(GStrv) lines = hv_fuzz_lines(data, head_len);
    if (lines[0] == NULL) {
        return 0;
    }
    char *line = lines[0];
    char *sp = strchr(line, ' ');
    if (sp == NULL) {
        return 0;
    }
    *sp = '\0';
    const char *method = NULL;
    for (size_t i = 0; i < G_N_ELEMENTS(methods); i++) {
        if (strcmp(line, methods[i]) == 0) {
            method = methods[i];
        }
    }
    if (method == NULL) {
        return 0;
    }
    char *path = sp + 1;
    char *q = strchr(path, '?');
    g_autoptr(GPtrArray) query = g_ptr_array_new_with_free_func(g_free);
    if (q != NULL) {
        *q = '\0';
        g_auto(GStrv) args = g_strsplit(q + 1, "&", -1);
        for (char **a = args; *a != NULL; a++) {
            if (**a == '\0') {
                continue;
            }
            char *arg = g_strdup(*a);
            hv_fuzz_url_decode(arg, true);
            g_ptr_array_add(query, arg);
        }
    }
    hv_fuzz_url_decode(path, false);
    if (path[0] != '/') {
        return 0; /* lws answers such a request line itself */
    }

    const char *accept_encoding = NULL, *range = NULL, *upstream = NULL, *upstream_body = NULL;
    const char *authorization = NULL, *origin = NULL, *host = "127.0.0.1:8000";
    for (char **l = lines + 1; *l != NULL; l++) {
        char *colon = strchr(*l, ':');
        if (colon == NULL) {
            continue;
        }
        *colon = '\0';
        const char *value = colon + 1;
        while (*value == ' ') {
            value++;
        }
        if (g_ascii_strcasecmp(*l, "Accept-Encoding") == 0) {
            accept_encoding = value;
        } else if (g_ascii_strcasecmp(*l, "Range") == 0) {
            range = value;
        } else if (g_ascii_strcasecmp(*l, "X-Fuzz-Upstream") == 0) {
            upstream = value;
        } else if (g_ascii_strcasecmp(*l, "X-Fuzz-Upstream-Body") == 0) {
            upstream_body = value;
        } else if (g_ascii_strcasecmp(*l, "Authorization") == 0) {
            authorization = value;
        } else if (g_ascii_strcasecmp(*l, "Origin") == 0) {
            origin = value;
        } else if (g_ascii_strcasecmp(*l, "Host") == 0) {
            host = value;
        }
    }

    hv_http_exchange *ex =
        hv_fuzz_http_exchange(method, path, query, body_at < size ? data + body_at : NULL,
                              body_at < size ? size - body_at : 0);
    if (accept_encoding != NULL) {
        ex->accepts_gzip = hv_http_accepts_gzip(accept_encoding);
        g_autofree char *lower = g_ascii_strdown(accept_encoding, -1);
        if (ex->accepts_gzip && strstr(lower, "gzip") == NULL && strchr(lower, '*') == NULL) {
            abort(); /* gzip for a client that did not name it */
        }
    }
    if (range != NULL) {
        ex->range = g_strdup(range);
        /* what the file handler does with it, for a few sizes */
        static const int64_t sizes[] = {0, 1, 1000, G_MAXINT64};
        for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
            int64_t first = -1, last = -1;
            if (hv_http_parse_range(range, sizes[i], &first, &last) == HV_HTTP_RANGE_PARTIAL &&
                (first < 0 || last < first || last >= sizes[i])) {
                abort();
            }
        }
    }
    (void)hv_http_static_path_ok(path);
    admission_helpers(path, query, authorization, origin, host);
    bool want_422 = must_be_422(method, path, query);
    int status = hv_fuzz_http_run(ex, upstream_mode(upstream), upstream_body);
    if (want_422 && status != 422) {
        fprintf(stderr, "%s %s: a malformed parameter was answered %d\n", method, path, status);
        abort();
    }
    return 0;
}

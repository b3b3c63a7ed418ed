/* Asynchronous HTTP client for pump.fun's APIs: libcurl's multi-socket interface driven by the
 * GLib main loop (one GSource per socket plus one timer), so no request ever blocks the loop.
 *
 * Main thread only. The client owns every in-flight request; a request is freed right after its
 * callback returns, or when it is cancelled. Every request has a connect and a total timeout and
 * a bounded body (HAVEN_UPSTREAM_MAX_BODY); headers look like a desktop browser's because
 * Cloudflare, in front of pump.fun, challenges anything else.
 */
#include "pumpfun.h"

#include "core/metrics.h"
#include "core/util.h"

#include <curl/curl.h>
#include <glib-unix.h>
#include <string.h>

struct hv_pf_client {
    const hv_config *cfg;
    CURLM *multi;
    guint timer_id;
    GHashTable *requests; /* hv_pf_request* set, owned */
    struct curl_slist *headers_get;
    struct curl_slist *headers_post;
};

struct hv_pf_request {
    hv_pf_client *client;
    CURL *easy;
    char *url;
    GByteArray *body;
    char *retry_after;
    bool cf_challenge;
    bool too_big;
    hv_pf_response_cb cb;
    void *user_data;
    int64_t started_ms;
    char errbuf[CURL_ERROR_SIZE];
};

typedef struct {
    hv_pf_client *client;
    guint source_id;
} socket_watch;

static void check_finished(hv_pf_client *client);

static void
request_free(hv_pf_request *req)
{
    if (req->easy != NULL) {
        curl_multi_remove_handle(req->client->multi, req->easy);
        curl_easy_cleanup(req->easy);
    }
    g_free(req->url);
    g_byte_array_unref(req->body);
    g_free(req->retry_after);
    g_free(req);
}

static gboolean
on_socket_ready(gint fd, GIOCondition cond, gpointer user_data)
{
    hv_pf_client *client = user_data;
    int action = 0;
    if (cond & G_IO_IN) {
        action |= CURL_CSELECT_IN;
    }
    if (cond & G_IO_OUT) {
        action |= CURL_CSELECT_OUT;
    }
    if (cond & (G_IO_ERR | G_IO_HUP)) {
        action |= CURL_CSELECT_ERR;
    }
    int running = 0;
    curl_multi_socket_action(client->multi, fd, action, &running);
    check_finished(client);
    return G_SOURCE_CONTINUE;
}

static int
on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    hv_pf_client *client = userp;
    socket_watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w != NULL) {
            g_source_remove(w->source_id);
            g_free(w);
        }
        curl_multi_assign(client->multi, s, NULL);
        return 0;
    }
    GIOCondition cond = G_IO_ERR | G_IO_HUP;
    if (what & CURL_POLL_IN) {
        cond |= G_IO_IN;
    }
    if (what & CURL_POLL_OUT) {
        cond |= G_IO_OUT;
    }
    if (w == NULL) {
        w = g_new0(socket_watch, 1);
        w->client = client;
        curl_multi_assign(client->multi, s, w);
    } else {
        g_source_remove(w->source_id);
    }
    w->source_id = g_unix_fd_add(s, cond, on_socket_ready, client);
    return 0;
}

static gboolean
on_timer(gpointer user_data)
{
    hv_pf_client *client = user_data;
    client->timer_id = 0;
    int running = 0;
    curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_finished(client);
    return G_SOURCE_REMOVE;
}

/* libcurl asks for a timer; it must not be driven from inside this callback, so even a zero
 * timeout goes through the main loop. */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    hv_pf_client *client = userp;
    if (client->timer_id != 0) {
        g_source_remove(client->timer_id);
        client->timer_id = 0;
    }
    if (timeout_ms >= 0) {
        client->timer_id = g_timeout_add((guint)timeout_ms, on_timer, client);
    }
    return 0;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    hv_pf_request *req = userp;
    size_t n = size * nmemb;
    if ((int64_t)(req->body->len + n) > req->client->cfg->upstream_max_body_bytes) {
        req->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    g_byte_array_append(req->body, (const guint8 *)data, (guint)n);
    return n;
}

static size_t
on_header(char *data, size_t size, size_t nitems, void *userp)
{
    hv_pf_request *req = userp;
    size_t n = size * nitems;
    g_autofree char *line = g_strndup(data, n);
    g_strchomp(line);
    if (g_str_has_prefix(line, "HTTP/")) {
        /* A new response (after a redirect or 100-continue): forget the previous headers. */
        g_clear_pointer(&req->retry_after, g_free);
        req->cf_challenge = false;
    } else if (g_ascii_strncasecmp(line, "retry-after:", 12) == 0) {
        g_free(req->retry_after);
        req->retry_after = g_strstrip(g_strdup(line + 12));
    } else if (g_ascii_strncasecmp(line, "cf-mitigated:", 13) == 0) {
        req->cf_challenge = strstr(line + 13, "challenge") != NULL;
    }
    return n;
}

/* The metrics label for a URL: its path without the query, mint segments replaced by
 * "{mint}", so the label set stays as small as the set of endpoints we call. */
static char *
endpoint_label(const char *url)
{
    const char *p = strstr(url, "://");
    p = p != NULL ? strchr(p + 3, '/') : NULL;
    if (p == NULL) {
        return g_strdup("/");
    }
    g_autofree char *path = g_strndup(p, strcspn(p, "?#"));
    g_auto(GStrv) parts = g_strsplit(path, "/", -1);
    for (char **s = parts; *s != NULL; s++) {
        if (hv_mint_id_is_valid(*s)) {
            g_free(*s);
            *s = g_strdup("{mint}");
        }
    }
    return g_strjoinv("/", parts);
}

/* haven_upstream_requests_total / haven_upstream_errors_total for one finished request. */
static void
count_request(const hv_pf_request *req, CURLcode code, long status)
{
    g_autofree char *endpoint = endpoint_label(req->url);
    char status_text[16] = "error";
    if (code == CURLE_OK) {
        g_snprintf(status_text, sizeof(status_text), "%ld", status);
    }
    g_autofree char *labels = hv_metrics_labels("endpoint", endpoint, "status", status_text, NULL);
    hv_metrics_count("haven_upstream_requests_total", labels, 1);
    const char *reason = NULL;
    if (code == CURLE_OPERATION_TIMEDOUT) {
        reason = "timeout";
    } else if (req->too_big) {
        reason = "too_large";
    } else if (code != CURLE_OK) {
        reason = "network";
    } else if (req->cf_challenge) {
        reason = "challenge";
    } else if (status >= 400 || status < 200) {
        reason = "http";
    }
    if (reason != NULL) {
        g_autofree char *err_labels =
            hv_metrics_labels("endpoint", endpoint, "reason", reason, NULL);
        hv_metrics_count("haven_upstream_errors_total", err_labels, 1);
    }
}

static void
finish_request(hv_pf_request *req, CURLcode code)
{
    long status = 0;
    char *content_type = NULL;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(req->easy, CURLINFO_CONTENT_TYPE, &content_type);
    const char *err = NULL;
    if (code != CURLE_OK) {
        status = 0;
        err = req->too_big             ? "response body over the size limit"
              : req->errbuf[0] != '\0' ? req->errbuf
                                       : curl_easy_strerror(code);
    }
    guint len = req->body->len;
    g_byte_array_append(req->body, (const guint8 *)"", 1); /* NUL-terminate for parsers */
    hv_pf_response resp = {
        .url = req->url,
        .status = status,
        .content_type = content_type,
        .retry_after = req->retry_after,
        .cf_challenge = req->cf_challenge,
        .body = (const char *)req->body->data,
        .len = len,
        .timed_out = code == CURLE_OPERATION_TIMEDOUT,
        .error = err,
        .elapsed_ms = hv_now_ms() - req->started_ms,
    };
    count_request(req, code, status);
    g_debug("%s → %ld (%u bytes, %" G_GINT64_FORMAT " ms)%s%s", req->url, status, len,
            resp.elapsed_ms, err != NULL ? ": " : "", err != NULL ? err : "");
    req->cb(&resp, req->user_data);
}

static void
check_finished(hv_pf_client *client)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(client->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        hv_pf_request *req = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
        CURLcode code = msg->data.result;
        /* Steal it from the set first, so the callback cannot cancel what is finishing. */
        g_hash_table_steal(client->requests, req);
        finish_request(req, code);
        request_free(req);
    }
}

hv_pf_client *
hv_pf_client_new(const hv_config *cfg)
{
    static gsize curl_ready = 0;
    if (g_once_init_enter(&curl_ready)) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        g_once_init_leave(&curl_ready, 1);
    }
    hv_pf_client *client = g_new0(hv_pf_client, 1);
    client->cfg = cfg;
    client->multi = curl_multi_init();
    client->requests = g_hash_table_new_full(NULL, NULL, (GDestroyNotify)request_free, NULL);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(client->multi, CURLMOPT_SOCKETDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(client->multi, CURLMOPT_TIMERDATA, client);
    curl_multi_setopt(client->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 8L);

    static const char *common[] = {
        "Accept: application/json, text/plain, */*",
        "Accept-Language: en-US,en;q=0.9",
        "Origin: https://pump.fun",
        "Referer: https://pump.fun/",
        "Cache-Control: no-cache",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(common); i++) {
        client->headers_get = curl_slist_append(client->headers_get, common[i]);
        client->headers_post = curl_slist_append(client->headers_post, common[i]);
    }
    client->headers_post =
        curl_slist_append(client->headers_post, "Content-Type: application/json");
    return client;
}

void
hv_pf_client_free(hv_pf_client *client)
{
    if (client == NULL) {
        return;
    }
    g_hash_table_destroy(client->requests); /* removes every easy handle from the multi */
    if (client->timer_id != 0) {
        g_source_remove(client->timer_id);
    }
    curl_multi_cleanup(client->multi);
    curl_slist_free_all(client->headers_get);
    curl_slist_free_all(client->headers_post);
    g_free(client);
}

hv_pf_request *
hv_pf_client_fetch(hv_pf_client *client, const char *url, const char *post_json,
                   hv_pf_response_cb cb, void *user_data)
{
    hv_pf_request *req = g_new0(hv_pf_request, 1);
    req->client = client;
    req->url = g_strdup(url);
    req->body = g_byte_array_new();
    req->cb = cb;
    req->user_data = user_data;
    req->started_ms = hv_now_ms();
    CURL *e = curl_easy_init();
    req->easy = e;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)client->cfg->upstream_connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)client->cfg->upstream_timeout_ms);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding libcurl decodes */
    curl_easy_setopt(e, CURLOPT_USERAGENT, client->cfg->user_agent);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    if (post_json != NULL) {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, client->headers_post);
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, post_json);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, client->headers_get);
    }
    g_hash_table_add(client->requests, req);
    curl_multi_add_handle(client->multi, e);
    return req;
}

void
hv_pf_request_cancel(hv_pf_request *req)
{
    if (req != NULL) {
        g_hash_table_remove(req->client->requests, req);
    }
}

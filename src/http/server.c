/* The libwebsockets server on the GLib loop: the lws callbacks, request intake, body limits,
 * and writing answers out. Main thread only (lws dispatches on the loop's thread).
 *
 * Each request gets an hv_http_exchange. It is admitted (access.c: CORS preflights answered,
 * cross-origin writes refused, the API token checked, session starts rate-limited per client),
 * then dispatched (rest.c's route table). A handler answers at once through response.c or parks
 * the exchange on the catalog; when the answer is ready the exchange asks lws for a writable
 * callback, writes the headers and the body (lws buffers what the socket does not take at
 * once), and completes the transaction so keep-alive connections carry the next request. If
 * the client goes away first, the exchange is freed and its waiter cancelled: no callback ever
 * touches a dead connection. A file (a recording) is streamed instead, HV_HTTP_FILE_CHUNK bytes
 * at a time (at most HV_HTTP_FILE_BURST per writable callback) through one server-wide buffer,
 * so a download of any size holds no more than lws' own copy of a chunk the socket did not take.
 *
 * A viewer WebSocket upgrade is admitted here too (confirm_upgrade: the token, the viewer
 * limits), so a refusal is a plain HTTP answer (401, 503) before any WebSocket exists.
 *
 * This file is the top of the module: it calls the dispatcher, the admission, the response
 * API and the viewer WebSocket, and none of them calls back into it.
 */
#include "http-private.h"

#include "core/error.h"
#include "core/json.h"

#include <errno.h>
#include <libwebsockets.h>
#include <string.h>
#include <unistd.h>

/* Our response headers (the request's bound is HAVEN_MAX_HEADER, enforced by lws). */
#define HV_HTTP_HEADER_MAX      8192
#define HV_HTTP_PARK_TIMEOUT_S  120
/* A file download whose client takes no chunk for this long is closed. */
#define HV_HTTP_STALL_TIMEOUT_S 60
/* File chunks written per writable callback at most (while the socket takes them). */
#define HV_HTTP_FILE_BURST      16

/* Per-connection data lws allocates for us (zeroed); lives as long as the connection. */
typedef struct {
    hv_http_exchange *ex; /* an HTTP request in progress */
    hv_ws_viewer *ws;     /* or: this connection is a viewer WebSocket */
} conn_data;

/* ---- exchange lifecycle ----------------------------------------------------------------- */

static hv_http_exchange *
exchange_new(hv_http_server *srv, struct lws *wsi)
{
    hv_http_exchange *ex = g_new0(hv_http_exchange, 1);
    ex->srv = srv;
    ex->cfg = srv->cfg;
    ex->deps = &srv->deps;
    ex->wsi = wsi;
    ex->query = g_ptr_array_new_with_free_func(g_free);
    ex->headers = g_ptr_array_new_with_free_func(g_free);
    ex->content_length = -1;
    ex->file_fd = -1;
    return ex;
}

static void
exchange_free(hv_http_exchange *ex)
{
    hv_pf_waiter_cancel(ex->waiter);
    hv_live_op_cancel(ex->live_op);
    hv_cluster_op_cancel(ex->cluster_op);
    g_free(ex->path);
    g_free(ex->range);
    g_free(ex->if_none_match);
    g_free(ex->cors_origin);
    g_ptr_array_unref(ex->query);
    g_ptr_array_unref(ex->headers);
    if (ex->req_body != NULL) {
        g_byte_array_unref(ex->req_body);
    }
    if (ex->body != NULL) {
        g_string_free(ex->body, TRUE);
    }
    hv_http_body_unref(ex->shared);
    if (ex->file_fd >= 0) {
        close(ex->file_fd);
    }
    g_free(ex);
}

static int on_writable(conn_data *conn, struct lws *wsi);

/* ---- request intake --------------------------------------------------------------------- */

static const struct {
    enum lws_token_indexes token;
    const char *name;
} methods[] = {
    {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
    {WSI_TOKEN_PUT_URI, "PUT"},       {WSI_TOKEN_PATCH_URI, "PATCH"},
    {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
    {WSI_TOKEN_HEAD_URI, "HEAD"},
};

static bool
read_request_line(hv_http_exchange *ex)
{
    struct lws *wsi = ex->wsi;
    for (size_t i = 0; i < G_N_ELEMENTS(methods); i++) {
        int len = lws_hdr_total_length(wsi, methods[i].token);
        if (len > 0) {
            g_strlcpy(ex->method, methods[i].name, sizeof(ex->method));
            ex->path = g_malloc((gsize)len + 1);
            if (lws_hdr_copy(wsi, ex->path, len + 1, methods[i].token) < 0) {
                return false;
            }
            break;
        }
    }
    if (ex->path == NULL) {
        return false;
    }
    char frag[1024];
    for (int idx = 0;; idx++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, idx);
        if (n < 0) {
            break;
        }
        g_ptr_array_add(ex->query, g_strndup(frag, (gsize)n));
    }
    char ae[256];
    if (lws_hdr_copy(wsi, ae, sizeof(ae), WSI_TOKEN_HTTP_ACCEPT_ENCODING) > 0) {
        ex->accepts_gzip = hv_http_accepts_gzip(ae);
    }
    char range[256];
    if (lws_hdr_copy(wsi, range, sizeof(range), WSI_TOKEN_HTTP_RANGE) > 0) {
        ex->range = g_strdup(range);
    }
    char inm[256];
    if (lws_hdr_copy(wsi, inm, sizeof(inm), WSI_TOKEN_HTTP_IF_NONE_MATCH) > 0) {
        ex->if_none_match = g_strdup(inm);
    }
    char cl[32];
    if (lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) {
        ex->content_length = g_ascii_strtoll(cl, NULL, 10);
    }
    return true;
}

/* True when an Accept-Encoding value allows gzip ("gzip", "gzip;q=0.5", "*"; not "q=0"). */
bool
hv_http_accepts_gzip(const char *accept_encoding)
{
    g_auto(GStrv) parts = g_strsplit(accept_encoding, ",", -1);
    for (char **p = parts; *p != NULL; p++) {
        g_auto(GStrv) params = g_strsplit(*p, ";", -1);
        if (params[0] == NULL) {
            continue; /* an empty element ("gzip,,br", a trailing comma): g_strsplit gives {} */
        }
        const char *coding = g_strstrip(params[0]);
        if (g_ascii_strcasecmp(coding, "gzip") != 0 && strcmp(coding, "*") != 0) {
            continue;
        }
        bool refused = false;
        for (char **q = params + 1; *q != NULL; q++) {
            const char *v = g_strstrip(*q);
            if (g_str_has_prefix(v, "q=") && g_ascii_strtod(v + 2, NULL) <= 0.0) {
                refused = true;
            }
        }
        return !refused;
    }
    return false;
}

static bool
has_body(struct lws *wsi, const hv_http_exchange *ex)
{
    if (ex->content_length > 0) {
        return true;
    }
    char te[32];
    return lws_hdr_copy(wsi, te, sizeof(te), WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 &&
           strstr(te, "chunked") != NULL;
}

static void
respond_too_large(hv_http_exchange *ex)
{
    /* The rest of the body is not read, so the connection cannot carry another request. */
    ex->close_after = true;
    hv_http_respond_detail(ex, 413, "Request body is larger than %" G_GINT64_FORMAT " bytes",
                           ex->cfg->max_body_bytes);
}

static int
on_request(conn_data *conn, hv_http_server *srv, struct lws *wsi)
{
    if (conn->ex != NULL) {
        exchange_free(conn->ex); /* a keep-alive request whose predecessor never finished */
        conn->ex = NULL;
    }
    hv_http_exchange *ex = exchange_new(srv, wsi);
    conn->ex = ex;
    if (!read_request_line(ex)) {
        ex->close_after = true;
        hv_http_respond_detail(ex, 400, "Malformed request");
        return 0;
    }
    /* Long enough for a multi-page roster refresh; the catalog's own timeouts fire first. */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HV_HTTP_PARK_TIMEOUT_S);
    if (!hv_http_admit_request(ex, wsi)) {
        /* Refused before its body was read: the connection cannot carry another request. */
        ex->close_after = ex->close_after || has_body(wsi, ex);
        return 0;
    }
    if (ex->content_length > srv->cfg->max_body_bytes) {
        respond_too_large(ex);
        return 0;
    }
    if (has_body(wsi, ex)) {
        ex->req_body = g_byte_array_new();
        return 0; /* dispatched at LWS_CALLBACK_HTTP_BODY_COMPLETION */
    }
    ex->in_dispatch = true;
    hv_http_dispatch(ex);
    ex->in_dispatch = false;
    return ex->responded ? on_writable(conn, wsi) : 0;
}

/* ---- response output -------------------------------------------------------------------- */

/* Returns -1 when the connection must close, 0 otherwise. */
static int
finish_exchange(conn_data *conn, struct lws *wsi)
{
    hv_http_exchange *ex = conn->ex;
    bool close_after = ex->close_after;
    conn->ex = NULL;
    exchange_free(ex);
    if (close_after) {
        return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Answers differ by Origin once CORS is on, so caches must key on it; the Access-Control
 * headers go only to an allowed origin. */
static void
add_cors_headers(hv_http_exchange *ex)
{
    hv_http_add_header(ex, "Vary", "Origin");
    if (ex->cors_origin == NULL) {
        return;
    }
    hv_http_add_header(ex, "Access-Control-Allow-Origin", ex->cors_origin);
    hv_http_add_header(ex, "Access-Control-Expose-Headers",
                       "Age, Content-Disposition, Content-Range, Retry-After, X-Haven-Cache, "
                       "X-Haven-Fetched-At, X-Haven-Upstream-Error");
}

static int
write_headers(hv_http_exchange *ex, struct lws *wsi, size_t body_len)
{
    uint8_t buf[LWS_PRE + HV_HTTP_HEADER_MAX];
    uint8_t *start = buf + LWS_PRE;
    uint8_t *p = start;
    uint8_t *end = buf + sizeof(buf) - 1;
    if (ex->status == 204 || ex->status == 304) {
        /* No Content-Length on a 204 (RFC 9110 section 8.6), nor on a 304, where it would have
         * to be the length of the 200 answer (section 8.6 too): neither has a body. */
        if (lws_add_http_header_status(wsi, (unsigned int)ex->status, &p, end) != 0) {
            return -1;
        }
    } else if (lws_add_http_common_headers(wsi, (unsigned int)ex->status, ex->content_type,
                                           (lws_filepos_t)body_len, &p, end) != 0) {
        return -1;
    }
    if (ex->srv->cors != NULL) {
        add_cors_headers(ex);
    }
    for (guint i = 0; i + 1 < ex->headers->len; i += 2) {
        g_autofree char *name = g_strconcat(g_ptr_array_index(ex->headers, i), ":", NULL);
        const char *value = g_ptr_array_index(ex->headers, i + 1);
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                        (const unsigned char *)value, (int)strlen(value), &p,
                                        end) != 0) {
            return -1;
        }
    }
    if (ex->close_after &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close", 5,
                                     &p, end) != 0) {
        return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end) != 0) {
        return -1;
    }
    return 0;
}

/* Streams a file answer: the headers, then chunks for as long as the socket takes them
 * without blocking (at most HV_HTTP_FILE_BURST per callback, so other connections get their
 * turn), then waits for the next writable callback. lws keeps at most one partly sent chunk
 * and calls back only once it is out. The size was promised in Content-Length, so a file that
 * shrinks meanwhile ends the connection. */
static int
on_writable_file(conn_data *conn, struct lws *wsi)
{
    hv_http_exchange *ex = conn->ex;
    if (!ex->headers_sent) {
        if (write_headers(ex, wsi, (size_t)(ex->file_end - ex->file_pos)) != 0) {
            return -1;
        }
        ex->headers_sent = true;
        if (strcmp(ex->method, "HEAD") == 0) {
            ex->file_pos = ex->file_end;
        }
    }
    for (int i = 0; i < HV_HTTP_FILE_BURST && ex->file_pos < ex->file_end; i++) {
        if (i > 0 && lws_send_pipe_choked(wsi)) {
            break;
        }
        uint8_t *buf = ex->srv->file_buf + LWS_PRE;
        size_t want = (size_t)MIN((int64_t)HV_HTTP_FILE_CHUNK, ex->file_end - ex->file_pos);
        ssize_t n = pread(ex->file_fd, buf, want, (off_t)ex->file_pos);
        if (n <= 0) {
            g_message("file download ended early at byte %" G_GINT64_FORMAT ": %s", ex->file_pos,
                      n < 0 ? g_strerror(errno) : "the file got shorter");
            return -1;
        }
        ex->file_pos += n;
        bool last = ex->file_pos == ex->file_end;
        if (lws_write(wsi, buf, (size_t)n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < 0) {
            return -1;
        }
    }
    if (ex->file_pos < ex->file_end) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HV_HTTP_STALL_TIMEOUT_S);
        lws_callback_on_writable(wsi);
        return 0;
    }
    return finish_exchange(conn, wsi);
}

/* Writes the whole response in one writable callback: the headers, then the body. lws keeps
 * whatever the socket does not take at once and sends it before anything else on this
 * connection (and defers the transaction's completion until then), so one large write costs
 * less than many chunked callbacks. */
static int
on_writable(conn_data *conn, struct lws *wsi)
{
    hv_http_exchange *ex = conn->ex;
    if (ex != NULL && ex->responded && ex->file_fd >= 0) {
        return on_writable_file(conn, wsi);
    }
    if (ex == NULL || !ex->responded || ex->headers_sent) {
        return 0;
    }
    size_t len;
    const uint8_t *data;
    if (ex->shared != NULL) {
        data = hv_http_body_data(ex->shared, ex->accepts_gzip, &len);
    } else {
        data = (const uint8_t *)ex->body->str + LWS_PRE;
        len = ex->body->len - LWS_PRE;
    }
    if (write_headers(ex, wsi, len) != 0) {
        return -1;
    }
    ex->headers_sent = true;
    if (len > 0 && strcmp(ex->method, "HEAD") != 0) {
        /* lws may write its own framing into the LWS_PRE bytes in front of data, which every
         * body here reserves; for a shared body that only touches unused headroom. */
        if (lws_write(wsi, (uint8_t *)data, len, LWS_WRITE_HTTP_FINAL) < 0) {
            return -1;
        }
    }
    return finish_exchange(conn, wsi);
}

/* ---- viewer WebSocket admission ---------------------------------------------------------- */

/* Refuses a WebSocket upgrade with a plain HTTP answer {"detail": detail}, written at once (lws
 * lets the CONFIRM_UPGRADE callback answer, then completes the transaction). Returns what that
 * callback must return: 1 (answered), or -1 (hang up) when even that cannot be written. */
static int
refuse_upgrade(struct lws *wsi, int status, const char *header, const char *value,
               const char *detail)
{
    g_autoptr(json_t) json = json_pack("{s:s}", "detail", detail);
    g_autofree char *body = json_dumps(json, JSON_COMPACT);
    size_t len = strlen(body);
    uint8_t buf[LWS_PRE + 2048];
    uint8_t *start = buf + LWS_PRE;
    uint8_t *p = start;
    uint8_t *end = buf + sizeof(buf) - 1;
    char clen[24];
    int n = g_snprintf(clen, sizeof(clen), "%zu", len);
    if (lws_add_http_header_status(wsi, (unsigned int)status, &p, end) != 0 ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)"application/json", 16, &p, end) != 0 ||
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                     (const unsigned char *)clen, n, &p, end) != 0 ||
        (header != NULL && lws_add_http_header_by_name(wsi, (const unsigned char *)header,
                                                       (const unsigned char *)value,
                                                       (int)strlen(value), &p, end) != 0) ||
        lws_finalize_http_header(wsi, &p, end) != 0 || (size_t)(end - p) < len) {
        return -1;
    }
    memcpy(p, body, len);
    p += len;
    int total = (int)(p - start);
    return lws_write(wsi, start, (size_t)total, LWS_WRITE_HTTP) == total ? 1 : -1;
}

/* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: the last moment a WebSocket upgrade can still be answered
 * in plain HTTP. Only the viewer path upgrades; it needs the API token when one is set (the
 * "token" query parameter, as browsers cannot set headers on a WebSocket, or a Bearer header)
 * and room under the viewer limits. The ESTABLISHED callback that adds the viewer follows
 * synchronously, so no other upgrade can slip in between the count and the viewer. */
static int
confirm_upgrade(hv_http_server *srv, struct lws *wsi, const char *what)
{
    if (what == NULL || g_ascii_strcasecmp(what, "websocket") != 0) {
        return 0;
    }
    char path[256] = "";
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0 || !hv_ws_path_matches(path)) {
        return -1;
    }
    const char *token = srv->cfg->api_token;
    if (token[0] != '\0') {
        char buf[600];
        const char *q = lws_get_urlarg_by_name(wsi, "token=", buf, sizeof(buf));
        if (!hv_http_request_has_token(wsi, token, q)) {
            g_debug("refused a viewer WebSocket: missing or invalid API token");
            return refuse_upgrade(wsi, 401, "www-authenticate:", "Bearer", HV_HTTP_TOKEN_DETAIL);
        }
    }
    char why[160];
    int status = hv_ws_admit(srv->cfg, &srv->deps, path, why, sizeof(why));
    if (status != 0) {
        g_info("refused a viewer WebSocket: %s", why);
        return refuse_upgrade(wsi, status, NULL, NULL, why);
    }
    return 0;
}

/* ---- lws glue --------------------------------------------------------------------------- */

static int
on_lws_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    conn_data *conn = user;
    hv_http_server *srv = lws_context_user(lws_get_context(wsi));
    if (reason == LWS_CALLBACK_HTTP_CONFIRM_UPGRADE) {
        /* Comes before lws allocates the per-connection data. */
        return confirm_upgrade(srv, wsi, in);
    }
    if (conn == NULL) {
        /* lws reports some events (e.g. CLOSED_HTTP of a connection that never got to HTTP)
         * without per-connection data; nothing of ours exists for it. */
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_request(conn, srv, wsi);
    case LWS_CALLBACK_HTTP_BODY:
        if (conn->ex != NULL && conn->ex->req_body != NULL && !conn->ex->responded) {
            if ((int64_t)(conn->ex->req_body->len + len) > srv->cfg->max_body_bytes) {
                respond_too_large(conn->ex);
                return 0;
            }
            g_byte_array_append(conn->ex->req_body, in, (guint)len);
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (conn->ex != NULL && !conn->ex->responded) {
            hv_http_dispatch(conn->ex);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return on_writable(conn, wsi);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (conn->ex != NULL) {
            exchange_free(conn->ex);
            conn->ex = NULL;
        }
        return 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        /* Only the viewer path upgrades to a WebSocket. */
        char path[256] = "";
        lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
        return hv_ws_path_matches(path) ? 0 : -1;
    }
    case LWS_CALLBACK_ESTABLISHED:
    case LWS_CALLBACK_SERVER_WRITEABLE:
    case LWS_CALLBACK_RECEIVE:
    case LWS_CALLBACK_CLOSED:
        return hv_ws_callback(wsi, (int)reason, &conn->ws, srv->cfg, &srv->deps, in, len);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols protocols[] = {
    {"http", on_lws_http, sizeof(conn_data), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void
on_lws_log(int level, const char *line)
{
    /* A line may quote a URL, and a URL may hold the API token or a LiveKit access_token. */
    g_autofree char *msg = g_strchomp(hv_http_mask_tokens(line));
    if (level & LLL_ERR) {
        g_message("lws: %s", msg);
    } else {
        g_debug("lws: %s", msg);
    }
}

/* Frees what the server holds besides its lws context, and the server. */
static void
server_free_parts(hv_http_server *srv)
{
    hv_http_body_cache_free(srv->bodies);
    hv_http_rate_free(srv->rate);
    g_strfreev(srv->cors);
    g_free(srv->file_buf);
    g_free(srv);
}

hv_http_server *
hv_http_server_new(const hv_config *cfg, GMainLoop *loop, const hv_http_deps *deps, GError **error)
{
    hv_http_server *srv = g_new0(hv_http_server, 1);
    srv->cfg = cfg;
    srv->deps = *deps;
    hv_cluster_set_renderer(deps->cluster, hv_http_cluster_report, NULL);
    srv->foreign_loops[0] = loop;
    srv->bodies = hv_http_body_cache_new();
    srv->file_buf = g_malloc(LWS_PRE + HV_HTTP_FILE_CHUNK);
    if (cfg->cors_origins[0] != '\0') {
        srv->cors = g_strsplit(cfg->cors_origins, ",", -1);
    }
    if (cfg->start_rate > 0) {
        srv->rate = hv_http_rate_new(cfg->start_rate, HV_HTTP_RATE_CLIENTS);
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, on_lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_DISABLE_IPV6;
    /* "localhost" is not an interface name lws understands; bind loopback explicitly. */
    const char *host = cfg->listen_host;
    if (g_ascii_strcasecmp(host, "localhost") == 0) {
        host = "127.0.0.1";
    }
    if (strchr(host, ':') != NULL) {
        info.options &= ~(uint64_t)LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    info.iface = strcmp(host, "0.0.0.0") == 0 ? NULL : host;
    info.port = cfg->listen_port;
    info.protocols = protocols;
    info.foreign_loops = srv->foreign_loops;
    info.user = srv;
    info.vhost_name = "haven";
    /* lws keeps the request line and headers in one buffer of this size per request being
     * parsed (at most 256 at once), and closes a connection whose headers do not fit. */
    info.max_http_header_data = (unsigned short)cfg->max_header_bytes;
    info.max_http_header_pool = 256;
    info.keepalive_timeout = 30;
    info.timeout_secs = 30;
    srv->ctx = lws_create_context(&info);
    if (srv->ctx == NULL) {
        g_set_error(error, HV_ERROR, HV_EIO,
                    "cannot listen on %s (address in use, not local, or not permitted)",
                    cfg->listen);
        server_free_parts(srv);
        return NULL;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(srv->ctx, "haven");
    if (vh == NULL || lws_get_vhost_listen_port(vh) <= 0) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot listen on %s", cfg->listen);
        lws_context_destroy(srv->ctx);
        hv_ws_proxy_shutdown(); /* the proxies' upstream connections (their viewers are gone) */
        server_free_parts(srv);
        return NULL;
    }
    return srv;
}

void
hv_http_server_free(hv_http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    lws_context_destroy(srv->ctx);
    hv_ws_proxy_shutdown(); /* the proxies' upstream connections (their viewers are gone) */
    server_free_parts(srv);
}

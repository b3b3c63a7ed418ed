/* The viewer WebSocket proxy (issue 17): a viewer that reaches a node which does not own the
 * mint's session is relayed to the owner node's own viewer socket, transparently to the viewer.
 * Main thread only (lws callbacks and GLib sources on the loop's thread).
 *
 * One proxy = the viewer's server connection (server.c's context, ws_viewer.c's callbacks) plus
 * one lws client connection to ws://<owner>/api/live-sessions/ws/live/<mint>?<same query>,
 * carrying "X-Haven-Proxied: 1" (the owner never proxies such a request again: no loops).
 * Messages are relayed whole and unchanged both ways (binary stays binary, text stays text);
 * the owner's close code and reason reach the viewer after what was queued before it; a viewer
 * that closes closes the upstream connection.
 *
 * The client context. All proxies share ONE lws client context, created by the first proxy on
 * the thread-default GMainContext, as livekit/signal.c does for LiveKit (a GMainLoop wrapping
 * that context, never run, in foreign_loops). Not the server's own context: a client wsi needs
 * a protocol of its vhost, and the server's protocol table, header pool and timeouts are
 * server.c's and tuned for serving; a context of our own keeps the proxy's settings (receive
 * buffer, connect bound) and its shutdown order (hv_ws_proxy_shutdown after the server's
 * context, so every upstream connection is closed and freed) in this file. It costs one
 * context, with no listening socket. Plain ws:// only: nodes talk over the cluster's own network
 * (HAVEN_NODE_URL is http://), and a second lws context with TLS (DO_SSL_GLOBAL_INIT) leaks an
 * SSL_CTX at destroy in lws 4.1 (tests/livekit/test-livekit-ws.c).
 *
 * Ownership. The viewer connection owns its proxy until hv_ws_proxy_free (viewer CLOSED); the
 * upstream wsi holds a pointer until LWS_CALLBACK_WSI_DESTROY, and a name lookup until it
 * answers. The proxy is freed when all three have let go (proxy_release).
 *
 * Bounds. Toward the viewer: at most max_messages / max_bytes queued (64, 4 MiB); when the
 * viewer reads slower than the owner sends, the oldest binary video message goes first (a JPEG
 * viewer skips frames; an encoded viewer skips to the next key frame so its decoder's reference
 * chain stays whole), then other binary messages; text (format, events, JPEG mode's audio) is
 * never dropped: when text alone exceeds the bound the viewer is closed with 1008. One upstream
 * message is reassembled at a time, at most max_bytes. Toward the owner: at most 16 messages /
 * 64 KiB (pings), also while connecting; more closes the viewer with 1008. The upstream connect
 * (name lookup, TCP, upgrade) has connect_timeout_ms (5 s), else the viewer gets 1011.
 */
#include "http-private.h"

#include "core/error.h"
#include "core/log.h"

#include <gio/gio.h>
#include <libwebsockets.h>
#include <string.h>

#define HV_WS_PROXY_LWS_PROTOCOL "hv-ws-proxy"
/* Messages written to the viewer per writable callback at most (ws_viewer.c's figure). */
#define HV_WS_PROXY_WRITES       16
/* What the upstream socket's reads are delivered in (a JPEG is ~100 KB: a few callbacks). */
#define HV_WS_PROXY_RX_CHUNK     (32 * 1024)
/* After the owner closed, how long the viewer gets to take what is queued before its close. */
#define HV_WS_PROXY_DRAIN_S      10
/* How long the upstream close handshake may take once the viewer is gone. */
#define HV_WS_PROXY_CLOSE_S      5

/* Log context of a proxied viewer. */
#define P_CTX(p) (&(const hv_log_ctx){.mint = (p)->mint, .viewer = (p)->viewer_id})

G_STATIC_ASSERT(LWS_PRE <= HV_WS_PROXY_HEADROOM);

/* A queued buffer's payload: what follows the headroom. */
static size_t
payload_len(const GByteArray *buf)
{
    return buf->len - HV_WS_PROXY_HEADROOM;
}

/* Writes one queued message whole and frees it; false when the socket took less. */
static bool
write_message(struct lws *wsi, GByteArray *m, bool binary)
{
    size_t len = payload_len(m);
    int n = lws_write(wsi, m->data + HV_WS_PROXY_HEADROOM, len,
                      binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    g_byte_array_unref(m);
    return n >= (int)len;
}

/* ---- the proxy ------------------------------------------------------------------------------- */

struct hv_ws_proxy {
    struct lws *viewer; /* NULL once the viewer connection is gone */
    struct lws *up;     /* the owner connection; NULL before the connect and after WSI_DESTROY */
    char mint[64];
    uint64_t viewer_id;
    char *host; /* the owner's host name or address */
    char *host_header;
    char *path; /* path and query */
    int port;
    char *authorization; /* the viewer's Authorization header, passed on; nullable */
    GCancellable *cancel;
    bool resolving;   /* the name lookup's callback is pending (it holds a pointer to us) */
    bool starting;    /* inside lws_client_connect_via_info */
    bool established; /* the owner accepted the upgrade */
    bool up_done;     /* the owner connection failed or closed */
    bool up_closing;  /* the viewer is gone: close upstream once its queue is out */
    int http_status;  /* of the upgrade answer, 0 before it */
    guint connect_timer;
    int close_code; /* != 0: close the viewer (after the queue when close_drain) */
    bool close_drain;
    char close_reason[124];
    hv_ws_proxy_queue *down; /* owner → viewer */
    hv_ws_proxy_queue *upq;  /* viewer → owner */
    GByteArray *down_rx;     /* an owner message being reassembled (with headroom) */
    bool down_rx_binary;
    bool down_rx_skip; /* the message being received is dropped (too big) */
    GByteArray *up_rx; /* a viewer message being reassembled (with headroom) */
    bool up_rx_binary;
    size_t max_viewer_message;
    size_t max_bytes;
    uint64_t relayed; /* messages relayed to the viewer */
};

static struct {
    struct lws_context *ctx;
    GMainLoop *loop; /* wraps the thread-default context of the first proxy; never run */
    void *foreign_loops[1];
    unsigned live; /* proxies in memory */
} px;

static GByteArray *
new_buf(void)
{
    GByteArray *b = g_byte_array_new();
    g_byte_array_set_size(b, HV_WS_PROXY_HEADROOM);
    return b;
}

static void
proxy_destroy(hv_ws_proxy *p)
{
    hv_ws_proxy_queue_free(p->down);
    hv_ws_proxy_queue_free(p->upq);
    g_byte_array_unref(p->down_rx);
    g_byte_array_unref(p->up_rx);
    g_free(p->host);
    g_free(p->host_header);
    g_free(p->path);
    g_free(p->authorization);
    g_free(p);
    px.live--;
}

/* Frees p once the viewer, the upstream wsi and the name lookup have all let go. */
static void
proxy_release(hv_ws_proxy *p)
{
    if (p->viewer == NULL && p->up == NULL && !p->resolving && !p->starting) {
        proxy_destroy(p);
    }
}

/* Wakes lws' glib plugin after arming a timer from outside one of our context's callbacks: it
 * recomputes its next timeout only when it services something (signal.c's kick_lws). */
static void
kick_lws(void)
{
    if (px.ctx != NULL) {
        lws_cancel_service(px.ctx);
    }
}

static void
stop_connect_timer(hv_ws_proxy *p)
{
    if (p->connect_timer != 0) {
        g_source_remove(p->connect_timer);
        p->connect_timer = 0;
    }
}

/* Closes the viewer with code and reason: at once, or (drain) after what is queued for it. */
static void
close_viewer(hv_ws_proxy *p, int code, const char *reason, bool drain)
{
    if (p->viewer == NULL || p->close_code != 0) {
        return;
    }
    p->close_code = code;
    p->close_drain = drain;
    g_strlcpy(p->close_reason, reason, sizeof(p->close_reason));
    if (drain) {
        lws_set_timeout(p->viewer, PENDING_TIMEOUT_USER_OK, HV_WS_PROXY_DRAIN_S);
        lws_cancel_service(lws_get_context(p->viewer)); /* see kick_lws */
    }
    lws_callback_on_writable(p->viewer);
}

/* Lets go of the upstream connection: closes it (after what is queued for the owner when it is
 * up), or abandons the connect. */
static void
drop_upstream(hv_ws_proxy *p)
{
    stop_connect_timer(p);
    if (p->resolving) {
        p->up_done = true;
        if (p->cancel != NULL) {
            g_cancellable_cancel(p->cancel);
        }
        return; /* on_address lets go */
    }
    if (p->up == NULL || p->up_done || p->up_closing) {
        return;
    }
    p->up_closing = true;
    if (p->established) {
        lws_set_timeout(p->up, PENDING_TIMEOUT_CLOSE_SEND, HV_WS_PROXY_CLOSE_S);
        lws_callback_on_writable(p->up);
    } else {
        lws_set_timeout(p->up, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    kick_lws();
}

/* The upstream connection is over (failed or closed): the viewer learns it. */
static void
upstream_failed(hv_ws_proxy *p, int code, const char *reason)
{
    stop_connect_timer(p);
    p->up_done = true;
    close_viewer(p, code, reason, false);
}

static gboolean
on_connect_timeout(gpointer data)
{
    hv_ws_proxy *p = data;
    p->connect_timer = 0;
    HV_MESSAGE(P_CTX(p), "owner node %s:%d did not answer the proxied viewer in time", p->host,
               p->port);
    close_viewer(p, 1011, "owner node unreachable", false);
    drop_upstream(p);
    return G_SOURCE_REMOVE;
}

/* ---- lws callbacks of the upstream connection ---------------------------------------------- */

static int
append_headers(hv_ws_proxy *p, struct lws *wsi, unsigned char **pp, size_t len)
{
    unsigned char *end = *pp + len;
    static const char ua[] = "haven/" HAVEN_VERSION;
    if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_USER_AGENT, (const unsigned char *)ua,
                                     (int)strlen(ua), pp, end) != 0 ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)HV_WS_PROXY_HEADER ":",
                                    (const unsigned char *)"1", 1, pp, end) != 0) {
        return -1;
    }
    if (p->authorization != NULL &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
                                     (const unsigned char *)p->authorization,
                                     (int)strlen(p->authorization), pp, end) != 0) {
        return -1;
    }
    return 0;
}

static void
on_upstream_receive(hv_ws_proxy *p, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        g_byte_array_set_size(p->down_rx, HV_WS_PROXY_HEADROOM);
        p->down_rx_binary = lws_frame_is_binary(wsi) != 0;
        p->down_rx_skip = false;
    }
    if (!p->down_rx_skip && payload_len(p->down_rx) + len > p->max_bytes) {
        /* Never return non-zero from CLIENT_RECEIVE (signal.c): skip the rest of it. */
        HV_MESSAGE(P_CTX(p), "the owner node sent a message over %zu bytes; closing", p->max_bytes);
        p->down_rx_skip = true;
        g_byte_array_set_size(p->down_rx, HV_WS_PROXY_HEADROOM);
        close_viewer(p, 1009, "message from the owner node too big", false);
        drop_upstream(p);
    }
    if (p->down_rx_skip || p->viewer == NULL) {
        return;
    }
    g_byte_array_append(p->down_rx, in, (guint)len);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) {
        return;
    }
    GByteArray *msg = p->down_rx;
    p->down_rx = new_buf();
    if (!hv_ws_proxy_queue_push(p->down, msg, p->down_rx_binary)) {
        HV_MESSAGE(P_CTX(p), "closing a proxied viewer: too slow for its events");
        close_viewer(p, 1008, "viewer too slow: event queue full", false);
        drop_upstream(p);
        return;
    }
    lws_callback_on_writable(p->viewer);
}

static int
on_upstream_writable(hv_ws_proxy *p, struct lws *wsi)
{
    bool binary = false;
    GByteArray *m = hv_ws_proxy_queue_pop(p->upq, &binary);
    if (m == NULL) {
        if (p->up_closing) {
            static const char reason[] = "viewer closed";
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)reason, strlen(reason));
            return -1;
        }
        return 0;
    }
    if (!write_message(wsi, m, binary)) {
        return -1;
    }
    if (hv_ws_proxy_queue_length(p->upq) > 0 || p->up_closing) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

/* The owner's close frame: its code (network order) and reason, passed on to the viewer after
 * what it sent before. No code (1005) becomes 1000: 1005 may not be sent. */
static void
on_upstream_peer_close(hv_ws_proxy *p, const uint8_t *in, size_t len)
{
    int code = 1000;
    char reason[124] = "";
    if (in != NULL && len >= 2) {
        code = (in[0] << 8) | in[1];
        size_t rlen = MIN(len - 2, sizeof(reason) - 1);
        memcpy(reason, in + 2, rlen);
        reason[rlen] = '\0';
    }
    if (code == LWS_CLOSE_STATUS_NO_STATUS || code == LWS_CLOSE_STATUS_ABNORMAL_CLOSE ||
        code == LWS_CLOSE_STATUS_TLS_FAILURE) {
        code = 1000;
    }
    p->up_done = true;
    close_viewer(p, code, reason, true);
}

static void
on_upstream_error(hv_ws_proxy *p, const void *in, size_t len)
{
    if (p->starting) {
        return; /* start_connect reports it */
    }
    HV_MESSAGE(P_CTX(p), "proxied viewer: owner node %s:%d: %.*s (HTTP %d)", p->host, p->port,
               in != NULL ? (int)len : 0, in != NULL ? (const char *)in : "", p->http_status);
    if (p->http_status == 503) {
        upstream_failed(p, 1013, "owner node has no room for another viewer; try again later");
    } else if (p->http_status != 0 && p->http_status != 101) {
        char reason[64];
        g_snprintf(reason, sizeof(reason), "owner node refused the viewer (HTTP %d)",
                   p->http_status);
        upstream_failed(p, 1011, reason);
    } else {
        upstream_failed(p, 1011, "owner node unreachable");
    }
}

static void
on_upstream_established(hv_ws_proxy *p, struct lws *wsi)
{
    p->established = true;
    stop_connect_timer(p);
    if (p->up_closing || hv_ws_proxy_queue_length(p->upq) > 0) {
        lws_callback_on_writable(wsi);
    }
}

static void
on_upstream_destroy(hv_ws_proxy *p)
{
    p->up = NULL;
    if (!p->up_done && !p->starting) {
        /* Gone without a close frame (the owner died, the network went). */
        upstream_failed(p, 1011,
                        p->established ? "connection to the owner node lost"
                                       : "owner node unreachable");
    }
    p->up_done = true;
    proxy_release(p);
}

static int
on_upstream_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    hv_ws_proxy *p = user;
    if (p == NULL) {
        return 0; /* context-level events */
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        return append_headers(p, wsi, in, len);
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        p->http_status = (int)lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        on_upstream_established(p, wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        on_upstream_receive(p, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_upstream_writable(p, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        on_upstream_peer_close(p, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        on_upstream_error(p, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (!p->up_done) {
            upstream_failed(p, 1011, "connection to the owner node lost");
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        on_upstream_destroy(p);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols proxy_protocols[] = {
    {HV_WS_PROXY_LWS_PROTOCOL, on_upstream_event, 0, HV_WS_PROXY_RX_CHUNK, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- the client context ---------------------------------------------------------------------- */

static bool
ensure_context(GError **error)
{
    GMainContext *mc = g_main_context_ref_thread_default();
    if (px.ctx != NULL) {
        bool same = g_main_loop_get_context(px.loop) == mc;
        g_main_context_unref(mc);
        if (!same) {
            g_set_error(error, HV_ERROR, HV_EINVAL, "proxies must all use the same main context");
        }
        return same;
    }
    px.loop = g_main_loop_new(mc, FALSE);
    g_main_context_unref(mc);
    px.foreign_loops[0] = px.loop;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_GLIB;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = proxy_protocols;
    info.foreign_loops = px.foreign_loops;
    info.vhost_name = "hv-ws-proxy";
    info.pt_serv_buf_size = HV_WS_PROXY_RX_CHUNK;
    info.max_http_header_data = 8 * 1024; /* the upgrade carries the query and maybe a token */
    info.timeout_secs = 20;               /* lws' own bound; each proxy arms a tighter one */
    px.ctx = lws_create_context(&info);
    if (px.ctx == NULL) {
        g_main_loop_unref(px.loop);
        px.loop = NULL;
        g_set_error(error, HV_ERROR, HV_EIO, "cannot create the libwebsockets client context");
        return false;
    }
    return true;
}

void
hv_ws_proxy_shutdown(void)
{
    if (px.ctx == NULL) {
        return;
    }
    lws_context_destroy(px.ctx); /* WSI_DESTROY for every upstream connection */
    px.ctx = NULL;
    g_main_loop_unref(px.loop);
    px.loop = NULL;
}

unsigned
hv_ws_proxy_live_count(void)
{
    return px.live;
}

/* ---- connecting ------------------------------------------------------------------------------ */

static void
start_connect(hv_ws_proxy *p, const char *address)
{
    if (px.ctx == NULL) {
        upstream_failed(p, 1011, "owner node unreachable");
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = px.ctx;
    ci.address = address;
    ci.port = p->port;
    ci.path = p->path;
    ci.host = p->host_header;
    ci.alpn = "http/1.1";
    ci.ssl_connection = LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    ci.local_protocol_name = HV_WS_PROXY_LWS_PROTOCOL;
    ci.ietf_version_or_minus_one = -1;
    ci.userdata = p;
    ci.pwsi = &p->up;
    p->starting = true;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    p->starting = false;
    p->up = wsi;
    if (wsi == NULL) {
        HV_MESSAGE(P_CTX(p), "proxied viewer: cannot connect to %s port %d", address, p->port);
        upstream_failed(p, 1011, "owner node unreachable");
        return;
    }
    kick_lws(); /* the connect timeout lws just armed must reach the glib timer */
}

/* The owner's address is known (NULL: the lookup failed, why says why): connect, unless the
 * viewer or the connect timeout let go meanwhile. */
static void
on_address(hv_ws_proxy *p, const char *address, const char *why)
{
    p->resolving = false;
    g_clear_object(&p->cancel);
    if (p->viewer == NULL || p->up_closing || p->up_done) {
        p->up_done = true;
        proxy_release(p);
        return;
    }
    if (address == NULL) {
        HV_MESSAGE(P_CTX(p), "proxied viewer: cannot resolve %s: %s", p->host, why);
        upstream_failed(p, 1011, "owner node unreachable");
        return;
    }
    start_connect(p, address);
}

static void
on_resolved(GObject *source, GAsyncResult *result, gpointer data)
{
    g_autoptr(GError) error = NULL;
    GList *addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(source), result, &error);
    g_autofree char *address = NULL;
    /* The first IPv4 address if any (IPv6 is often announced but broken), else the first. */
    for (GList *l = addrs; l != NULL && address == NULL; l = l->next) {
        if (g_inet_address_get_family(l->data) == G_SOCKET_FAMILY_IPV4) {
            address = g_inet_address_to_string(l->data);
        }
    }
    if (address == NULL && addrs != NULL) {
        address = g_inet_address_to_string(addrs->data);
    }
    g_resolver_free_addresses(addrs);
    on_address(data, address, error != NULL ? error->message : "no address");
}

/* An address literal needs no lookup (and no resolver thread): connect from the loop. */
static gboolean
on_literal_address(gpointer data)
{
    hv_ws_proxy *p = data;
    g_autofree char *address = g_strdup(p->host);
    on_address(p, address, NULL);
    return G_SOURCE_REMOVE;
}

static bool
parse_url(hv_ws_proxy *p, const char *url, GError **error)
{
    g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_ENCODED, error);
    if (uri == NULL) {
        return false;
    }
    const char *host = g_uri_get_host(uri);
    if (g_ascii_strcasecmp(g_uri_get_scheme(uri), "ws") != 0 || host == NULL || *host == '\0') {
        g_set_error(error, HV_ERROR, HV_EINVAL, "not a ws:// URL with a host: %s", url);
        return false;
    }
    int port = g_uri_get_port(uri);
    p->port = port > 0 ? port : 80;
    p->host = g_strdup(host);
    bool v6 = strchr(host, ':') != NULL;
    p->host_header = port > 0 ? g_strdup_printf(v6 ? "[%s]:%d" : "%s:%d", host, port)
                              : g_strdup_printf(v6 ? "[%s]" : "%s", host);
    const char *path = g_uri_get_path(uri);
    const char *query = g_uri_get_query(uri);
    p->path = g_strconcat(*path != '\0' ? path : "/", query != NULL ? "?" : "", query, NULL);
    return true;
}

/* ---- public ---------------------------------------------------------------------------------- */

hv_ws_proxy *
hv_ws_proxy_new(struct lws *viewer, const hv_ws_proxy_params *params, GError **error)
{
    hv_ws_proxy *p = g_new0(hv_ws_proxy, 1);
    px.live++;
    if (!parse_url(p, params->url, error) || !ensure_context(error)) {
        proxy_destroy(p);
        return NULL;
    }
    p->viewer = viewer;
    g_strlcpy(p->mint, params->mint != NULL ? params->mint : "", sizeof(p->mint));
    p->viewer_id = params->viewer_id;
    p->authorization = g_strdup(params->authorization);
    p->max_bytes = params->max_bytes > 0 ? params->max_bytes : HV_WS_PROXY_MAX_BYTES;
    p->max_viewer_message = params->max_viewer_message > 0 ? params->max_viewer_message : 4096;
    p->down = hv_ws_proxy_queue_new(
        params->max_messages > 0 ? params->max_messages : HV_WS_PROXY_MAX_MESSAGES, p->max_bytes,
        params->encoded ? HV_WS_PROXY_DROP_ENCODED : HV_WS_PROXY_DROP_JPEG);
    p->upq = hv_ws_proxy_queue_new(HV_WS_PROXY_UP_MAX_MESSAGES, HV_WS_PROXY_UP_MAX_BYTES,
                                   HV_WS_PROXY_DROP_NONE);
    p->down_rx = new_buf();
    p->up_rx = new_buf();
    int timeout_ms =
        params->connect_timeout_ms > 0 ? params->connect_timeout_ms : HV_WS_PROXY_CONNECT_MS;
    p->connect_timer = g_timeout_add(timeout_ms, on_connect_timeout, p);
    /* Always asynchronous, even for an address (from an idle source): one path, and no lws
     * callback from inside this call (signal.c). */
    p->resolving = true;
    if (g_hostname_is_ip_address(p->host)) {
        g_idle_add(on_literal_address, p);
        return p;
    }
    p->cancel = g_cancellable_new();
    GResolver *resolver = g_resolver_get_default();
    g_resolver_lookup_by_name_async(resolver, p->host, p->cancel, on_resolved, p);
    g_object_unref(resolver);
    return p;
}

int
hv_ws_proxy_on_writable(hv_ws_proxy *p)
{
    struct lws *wsi = p->viewer;
    for (int i = 0; i < HV_WS_PROXY_WRITES; i++) {
        if (p->close_code != 0 && (!p->close_drain || hv_ws_proxy_queue_length(p->down) == 0)) {
            lws_close_reason(wsi, (enum lws_close_status)p->close_code,
                             (unsigned char *)p->close_reason, strlen(p->close_reason));
            return -1;
        }
        if (i > 0 && lws_send_pipe_choked(wsi)) {
            break;
        }
        bool binary = false;
        GByteArray *m = hv_ws_proxy_queue_pop(p->down, &binary);
        if (m == NULL) {
            return 0;
        }
        if (!write_message(wsi, m, binary)) {
            return -1;
        }
        p->relayed++;
    }
    if (hv_ws_proxy_queue_length(p->down) > 0 || p->close_code != 0) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

int
hv_ws_proxy_on_receive(hv_ws_proxy *p, const void *in, size_t len)
{
    struct lws *wsi = p->viewer;
    if (lws_is_first_fragment(wsi)) {
        g_byte_array_set_size(p->up_rx, HV_WS_PROXY_HEADROOM);
        p->up_rx_binary = lws_frame_is_binary(wsi) != 0;
    }
    if (payload_len(p->up_rx) + len > p->max_viewer_message) {
        char reason[64];
        g_snprintf(reason, sizeof(reason), "message too big (limit %zu bytes)",
                   p->max_viewer_message);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)reason,
                         strlen(reason));
        return -1;
    }
    g_byte_array_append(p->up_rx, in, (guint)len);
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) {
        return 0;
    }
    GByteArray *msg = p->up_rx;
    p->up_rx = new_buf();
    if (p->up_done || p->up_closing) {
        g_byte_array_unref(msg); /* the owner is gone; the viewer is being closed */
        return 0;
    }
    if (!hv_ws_proxy_queue_push(p->upq, msg, p->up_rx_binary)) {
        static const char reason[] = "too many messages toward the owner node";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)reason,
                         strlen(reason));
        return -1;
    }
    if (p->established && p->up != NULL) {
        lws_callback_on_writable(p->up);
    }
    return 0;
}

void
hv_ws_proxy_free(hv_ws_proxy *p)
{
    if (p == NULL) {
        return;
    }
    HV_INFO(P_CTX(p),
            "proxied viewer gone: %" G_GUINT64_FORMAT " messages relayed, %" G_GUINT64_FORMAT
            " dropped",
            p->relayed, hv_ws_proxy_queue_dropped(p->down));
    drop_upstream(p);
    p->viewer = NULL;
    proxy_release(p);
}

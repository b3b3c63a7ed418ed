/* The LiveKit signalling WebSocket: a libwebsockets 4.1 client on the GLib main loop that moves
 * whole binary messages between the server and room.c (spec §2 connecting, §3.1 framing).
 *
 * Main thread only. The module has ONE lws client context, created by the first connection on
 * the thread-default GMainContext: lws' glib event plugin takes a GMainLoop* in foreign_loops and
 * attaches every source to g_main_loop_get_context(loop), so we hand it a GMainLoop that wraps
 * the thread-default context and never run it; haven's own loop on that context dispatches the
 * sources. The context lives until hv_lk_signal_shutdown() (or process exit).
 *
 * Ownership: a room owns its hv_lk_signal, which is also the lws per-connection user data. When
 * the room lets go (hv_lk_signal_free) the signal is detached: it makes no more callbacks, and
 * is freed by LWS_CALLBACK_WSI_DESTROY, lws' last word on the connection, after flushing and
 * closing. If lws is already done with the connection, free releases it at once. Every buffer is
 * bounded: HV_LK_MAX_MESSAGE_BYTES per message received, HV_LK_MAX_REQUEST_BYTES per message
 * sent, HV_LK_MAX_QUEUED_MESSAGES / HV_LK_MAX_QUEUED_BYTES queued for sending.
 *
 * Names are resolved with GLib's asynchronous resolver (Debian's lws 4.1 has no async DNS and
 * would block the loop in getaddrinfo); lws then connects to the address while the Host header,
 * TLS SNI and certificate check use the name.
 */
#include "livekit-private.h"

#include "core/error.h"

#include <gio/gio.h>
#include <libwebsockets.h>
#include <string.h>

#define HV_LK_LWS_PROTOCOL "hv-livekit"
#define HV_LK_CA_BUNDLE    "/etc/ssl/certs/ca-certificates.crt"

/* One queued outgoing message, with the LWS_PRE bytes of headroom lws_write() needs. */
typedef struct {
    size_t len;
    uint8_t buf[]; /* LWS_PRE + len */
} out_msg;

struct hv_lk_signal {
    struct lws *wsi; /* NULL before the connect starts and once lws destroyed it */
    hv_lk_url url;
    GCancellable *cancel; /* the name lookup */
    bool resolving;       /* the lookup's callback is pending (it owns a pointer to us) */
    hv_lk_signal_callbacks cb;
    void *user_data;
    bool starting;    /* inside lws_client_connect_via_info(): lws' own failure callbacks are
                       * ignored; start_connect() reports the failure once it returns */
    bool established; /* the upgrade succeeded */
    bool reported;    /* on_closed was delivered */
    bool detached;    /* the owner let go: no callbacks; freed at WSI_DESTROY */
    bool lws_closing; /* lws is closing the connection (CLOSED / CONNECTION_ERROR seen) */
    bool closing;     /* close with 1000 once the queue is flushed */
    int http_status;  /* status of the upgrade response, 0 before it */
    int peer_close_code;
    enum lws_close_status close_status; /* what we send when closing: 1000, or 1009 */
    GQueue out;                         /* out_msg*, owned */
    size_t out_bytes;                   /* payload bytes in out */
    GByteArray *rx;                     /* the message being reassembled */
    bool rx_binary;
};

static struct {
    struct lws_context *ctx;
    GMainLoop *loop; /* wraps the thread-default context of the first connection; never run */
    void *foreign_loops[1];
    unsigned live; /* hv_lk_signal objects in memory */
} lk_lws;

/* ---- lifetime ------------------------------------------------------------------------------ */

static void
drop_queue(hv_lk_signal *sig)
{
    out_msg *m = NULL;
    while ((m = g_queue_pop_head(&sig->out)) != NULL) {
        g_free(m);
    }
    sig->out_bytes = 0;
}

static void
signal_destroy(hv_lk_signal *sig)
{
    drop_queue(sig);
    g_byte_array_unref(sig->rx);
    hv_lk_url_clear(&sig->url);
    g_free(sig);
    lk_lws.live--;
}

/* Delivers the one terminal event. Must be the last thing a caller does with sig: the owner may
 * free it from inside the callback (and if lws is done with the connection, that frees it). */
static void
report_closed(hv_lk_signal *sig, hv_lk_close_reason reason, const char *detail)
{
    if (sig->reported || sig->detached || sig->starting) {
        return;
    }
    sig->reported = true;
    sig->cb.on_closed(reason, detail, sig->user_data);
}

/* Wakes lws' glib plugin after arming an lws timer from outside an lws callback: the plugin
 * recomputes its next timeout only when it services something, and the cancel pipe is such a
 * thing. Harmless inside a callback. */
static void
kick_lws(void)
{
    if (lk_lws.ctx != NULL) {
        lws_cancel_service(lk_lws.ctx);
    }
}

void
hv_lk_signal_free(hv_lk_signal *sig, bool flush)
{
    if (sig == NULL) {
        return;
    }
    sig->detached = true;
    if (sig->resolving) {
        g_cancellable_cancel(sig->cancel); /* on_resolved frees sig */
        return;
    }
    if (sig->wsi == NULL) {
        signal_destroy(sig);
        return;
    }
    if (sig->lws_closing) {
        return; /* WSI_DESTROY follows and frees sig */
    }
    if (!flush) {
        drop_queue(sig);
    }
    if (sig->established) {
        /* Send what is queued (the leave), then the close frame; bounded by a timeout. */
        sig->closing = true;
        lws_set_timeout(sig->wsi, PENDING_TIMEOUT_CLOSE_SEND, HV_LK_CLOSE_GRACE_S);
        lws_callback_on_writable(sig->wsi);
    } else {
        /* Still connecting: abandon it at the next service. */
        lws_set_timeout(sig->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    kick_lws();
}

unsigned
hv_lk_signal_live_count(void)
{
    return lk_lws.live;
}

/* ---- lws callbacks ------------------------------------------------------------------------- */

static int
on_receive(hv_lk_signal *sig, struct lws *wsi, const void *in, size_t len)
{
    if (sig->detached || sig->reported) {
        return 0; /* draining towards close; nobody listens */
    }
    if (lws_is_first_fragment(wsi)) {
        g_byte_array_set_size(sig->rx, 0);
        sig->rx_binary = lws_frame_is_binary(wsi) != 0;
        /* A big message (a JoinResponse of a crowded room) usually comes as one frame: reserve
         * it whole instead of growing the buffer by doubling through every size below it. */
        size_t expect = len + lws_remaining_packet_payload(wsi);
        if (expect > (size_t)64 * 1024 && expect <= HV_LK_MAX_MESSAGE_BYTES) {
            g_byte_array_unref(sig->rx);
            sig->rx = g_byte_array_sized_new((guint)expect);
        }
    }
    if (sig->rx->len + len > HV_LK_MAX_MESSAGE_BYTES) {
        /* Never return non-zero from CLIENT_RECEIVE: lws 4.1 then keeps feeding the rest of
         * the read into its frame buffer past the end. Drop the rest and close from WRITEABLE
         * (the owner's hv_lk_signal_free asks for it). */
        g_autofree char *detail =
            g_strdup_printf("message larger than %zu bytes", HV_LK_MAX_MESSAGE_BYTES);
        g_byte_array_set_size(sig->rx, 0);
        sig->close_status = LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE;
        report_closed(sig, HV_LK_PROTOCOL_ERROR, detail);
        return 0;
    }
    g_byte_array_append(sig->rx, in, (guint)len);
    if (!lws_is_final_fragment(wsi)) {
        return 0;
    }
    if (!sig->rx_binary) {
        /* The server only speaks JSON to clients that sent text; we never do. */
        g_debug("ignoring a %u-byte text message", sig->rx->len);
    } else {
        sig->cb.on_message(sig->rx->data, sig->rx->len, sig->user_data);
    }
    /* sig is still alive here even if the owner let go inside the callback: the wsi exists,
     * so free only detached it (and asked for the close). */
    if (sig->rx->len > (guint)64 * 1024) {
        g_byte_array_unref(sig->rx); /* do not keep a large buffer for small messages */
        sig->rx = g_byte_array_new();
    }
    g_byte_array_set_size(sig->rx, 0);
    return 0;
}

static int
on_writable(hv_lk_signal *sig, struct lws *wsi)
{
    out_msg *m = g_queue_pop_head(&sig->out);
    if (m != NULL) {
        sig->out_bytes -= m->len;
    }
    if (m == NULL) {
        if (sig->closing) {
            lws_close_reason(wsi, sig->close_status, NULL, 0);
            return -1;
        }
        return 0;
    }
    int n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_BINARY);
    bool ok = n >= 0 && (size_t)n >= m->len;
    g_free(m);
    if (!ok) {
        sig->lws_closing = true;
        report_closed(sig, HV_LK_SIGNAL_LOST, "write failed");
        return -1;
    }
    if (!g_queue_is_empty(&sig->out) || sig->closing) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

static void
on_connection_error(hv_lk_signal *sig, const void *in, size_t len)
{
    sig->lws_closing = true;
    g_autofree char *why = in != NULL ? g_strndup(in, len) : g_strdup("connection failed");
    if (sig->http_status == 401 || sig->http_status == 403) {
        g_autofree char *detail =
            g_strdup_printf("HTTP %d on the WebSocket upgrade", sig->http_status);
        report_closed(sig, HV_LK_UNAUTHORIZED, detail);
    } else if (sig->http_status != 0 && sig->http_status != 101) {
        g_autofree char *detail =
            g_strdup_printf("HTTP %d on the WebSocket upgrade", sig->http_status);
        report_closed(sig, HV_LK_CONNECT_FAILED, detail);
    } else {
        report_closed(sig, HV_LK_CONNECT_FAILED, why);
    }
}

static int
on_lws_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    hv_lk_signal *sig = user;
    if (sig == NULL) {
        return 0; /* context-level events (protocol init, cancel-service wakeups) */
    }
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER: {
        unsigned char **p = in;
        static const char ua[] = "haven/" HAVEN_VERSION;
        return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_USER_AGENT,
                                            (const unsigned char *)ua, (int)strlen(ua), p,
                                            *p + len) != 0
                   ? -1
                   : 0;
    }
    case LWS_CALLBACK_ESTABLISHED_CLIENT_HTTP:
        /* lws 4.1 shows us the upgrade response status here, before it judges it. */
        sig->http_status = (int)lws_http_client_http_response(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        sig->established = true;
        if (sig->detached) {
            return -1; /* abandoned while connecting */
        }
        if (!g_queue_is_empty(&sig->out)) {
            lws_callback_on_writable(wsi);
        }
        sig->cb.on_open(sig->user_data);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        return on_receive(sig, wsi, in, len);
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writable(sig, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (in != NULL && len >= 2) {
            const uint8_t *b = in;
            sig->peer_close_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        on_connection_error(sig, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED: {
        sig->lws_closing = true;
        g_autofree char *detail =
            sig->peer_close_code != 0
                ? g_strdup_printf("WebSocket closed by the server (code %d)", sig->peer_close_code)
                : g_strdup("WebSocket closed");
        report_closed(sig, HV_LK_SIGNAL_LOST, detail);
        return 0;
    }
    case LWS_CALLBACK_WSI_DESTROY:
        sig->wsi = NULL;
        sig->lws_closing = true;
        if (sig->detached) {
            signal_destroy(sig);
        } else if (!sig->starting) {
            report_closed(sig, sig->established ? HV_LK_SIGNAL_LOST : HV_LK_CONNECT_FAILED,
                          "connection closed");
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols lk_protocols[] = {
    {HV_LK_LWS_PROTOCOL, on_lws_event, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* ---- the client context -------------------------------------------------------------------- */

static bool
ensure_context(GError **error)
{
    GMainContext *mc = g_main_context_ref_thread_default();
    if (lk_lws.ctx != NULL) {
        bool same = g_main_loop_get_context(lk_lws.loop) == mc;
        g_main_context_unref(mc);
        if (!same) {
            g_set_error(error, HV_ERROR, HV_EINVAL,
                        "LiveKit connections must all use the same main context");
        }
        return same;
    }
    lk_lws.loop = g_main_loop_new(mc, FALSE);
    g_main_context_unref(mc);
    lk_lws.foreign_loops[0] = lk_lws.loop;

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = lk_protocols;
    info.foreign_loops = lk_lws.foreign_loops;
    info.vhost_name = "hv-livekit";
    /* lws 4.1 also loads the OS default paths; naming Debian's bundle avoids its fallback to a
     * compiled-in directory that does not exist here (and the error it logs). */
    if (g_file_test(HV_LK_CA_BUNDLE, G_FILE_TEST_IS_REGULAR)) {
        info.client_ssl_ca_filepath = HV_LK_CA_BUNDLE;
    }
    info.pt_serv_buf_size = 16 * 1024; /* the upgrade request carries a ~1 KiB token */
    info.max_http_header_data = 8 * 1024;
    info.timeout_secs = 20; /* lws' own connect/TLS bound; rooms set a tighter one */
    lk_lws.ctx = lws_create_context(&info);
    if (lk_lws.ctx == NULL) {
        g_main_loop_unref(lk_lws.loop);
        lk_lws.loop = NULL;
        g_set_error(error, HV_ERROR, HV_EIO, "cannot create the libwebsockets client context");
        return false;
    }
    return true;
}

void
hv_lk_signal_shutdown(void)
{
    if (lk_lws.ctx == NULL) {
        return;
    }
    lws_context_destroy(lk_lws.ctx);
    lk_lws.ctx = NULL;
    g_main_loop_unref(lk_lws.loop);
    lk_lws.loop = NULL;
}

/* ---- URL ----------------------------------------------------------------------------------- */

void
hv_lk_url_clear(hv_lk_url *u)
{
    if (u == NULL) {
        return;
    }
    g_free(u->host);
    g_free(u->host_header);
    g_free(u->path);
    memset(u, 0, sizeof(*u));
}

bool
hv_lk_signal_parse_url(const char *url, const char *token, hv_lk_url *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    g_autoptr(GError) perr = NULL;
    g_autoptr(GUri) uri = url != NULL ? g_uri_parse(url, G_URI_FLAGS_NONE, &perr) : NULL;
    if (uri == NULL) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "invalid LiveKit URL: %s",
                    perr != NULL ? perr->message : "none given");
        return false;
    }
    const char *scheme = g_uri_get_scheme(uri);
    if (g_ascii_strcasecmp(scheme, "wss") == 0 || g_ascii_strcasecmp(scheme, "https") == 0) {
        out->tls = true;
    } else if (g_ascii_strcasecmp(scheme, "ws") != 0 && g_ascii_strcasecmp(scheme, "http") != 0) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "LiveKit URL scheme must be ws(s) or http(s)");
        return false;
    }
    const char *host = g_uri_get_host(uri);
    if (host == NULL || *host == '\0') {
        g_set_error(error, HV_ERROR, HV_EINVAL, "LiveKit URL has no host");
        return false;
    }
    int port = g_uri_get_port(uri);
    bool explicit_port = port > 0;
    out->port = explicit_port ? port : (out->tls ? 443 : 80);
    out->host = g_strdup(host);
    bool v6 = strchr(host, ':') != NULL;
    if (explicit_port) {
        out->host_header = g_strdup_printf(v6 ? "[%s]:%d" : "%s:%d", host, port);
    } else {
        out->host_header = g_strdup_printf(v6 ? "[%s]" : "%s", host);
    }

    /* Spec §2.1: keep any path, make it end in '/', append "rtc". */
    GString *path = g_string_new(g_uri_get_path(uri));
    if (path->len == 0 || path->str[path->len - 1] != '/') {
        g_string_append_c(path, '/');
    }
    g_autofree char *tok = g_uri_escape_string(token != NULL ? token : "", NULL, FALSE);
    /* Spec §2.2. No `sdk`: the server then treats us as UNKNOWN, which makes it renegotiate
     * instead of switching codecs in place (what a webrtcbin receiver wants).
     * browser=Safari: livekit-server then never reuses a dormant m-line for a new track
     * (ClientInfo.SupportsTransceiverReuse), which webrtcbin 1.22 cannot take (its inactive →
     * recvonly direction change fails set-local-description): a republished track gets a new
     * m-line instead, and no reconnect is needed. The server's other Safari rules change
     * nothing here: no RED audio (we answer Opus only anyway) and AV1 in the client
     * configuration's disabled codecs (we cannot decode AV1). docs/internals/livekit.md. */
    g_string_append_printf(path,
                           "rtc?access_token=%s&protocol=%d&auto_subscribe=0&adaptive_stream=0"
                           "&browser=Safari&version=%s",
                           tok, HV_LK_PROTOCOL_VERSION, HAVEN_VERSION);
    out->path = g_string_free(path, FALSE);
    return true;
}

/* ---- connecting ------------------------------------------------------------------------------ */

/* Opens the connection to a resolved address. Failures are reported through on_closed. */
static void
start_connect(hv_lk_signal *sig, const char *address)
{
    if (lk_lws.ctx == NULL) {
        report_closed(sig, HV_LK_CONNECT_FAILED, "LiveKit client shut down");
        return;
    }
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = lk_lws.ctx;
    ci.address = address;
    ci.port = sig->url.port;
    ci.path = sig->url.path;
    /* Host header; lws also takes the TLS SNI and certificate name from it (port stripped). */
    ci.host = sig->url.host_header;
    ci.alpn = "http/1.1"; /* lws 4.1 cannot do WebSocket over h2 */
    /* Never follow a redirect: the token is in the URL. */
    ci.ssl_connection = (sig->url.tls ? LCCSCF_USE_SSL : 0) | LCCSCF_HTTP_NO_FOLLOW_REDIRECT;
    ci.protocol = NULL; /* no Sec-WebSocket-Protocol (spec §2.3) */
    ci.local_protocol_name = HV_LK_LWS_PROTOCOL;
    ci.ietf_version_or_minus_one = -1;
    ci.userdata = sig;
    ci.pwsi = &sig->wsi;
    sig->starting = true;
    struct lws *wsi = lws_client_connect_via_info(&ci);
    sig->starting = false;
    sig->wsi = wsi;
    if (wsi == NULL) {
        /* lws freed the attempt itself (without CONNECTION_ERROR while starting). */
        g_autofree char *detail =
            g_strdup_printf("cannot connect to %s port %d", address, sig->url.port);
        report_closed(sig, HV_LK_CONNECT_FAILED, detail);
        return;
    }
    kick_lws(); /* the connect timeout lws just armed must reach the glib timer */
}

/* Picks the address to use: the first IPv4 one if any (IPv6 is often announced but broken),
 * else the first. (transfer full) */
static char *
pick_address(GList *addrs)
{
    for (GList *l = addrs; l != NULL; l = l->next) {
        if (g_inet_address_get_family(l->data) == G_SOCKET_FAMILY_IPV4) {
            return g_inet_address_to_string(l->data);
        }
    }
    return addrs != NULL ? g_inet_address_to_string(addrs->data) : NULL;
}

/* lws 4.1 as built by Debian resolves names with a blocking getaddrinfo(); GLib's resolver
 * does it on its worker thread and calls back here, on the main context. */
static void
on_resolved(GObject *source, GAsyncResult *result, gpointer data)
{
    hv_lk_signal *sig = data;
    g_autoptr(GError) error = NULL;
    GList *addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(source), result, &error);
    sig->resolving = false;
    g_object_unref(sig->cancel);
    sig->cancel = NULL;
    if (sig->detached) {
        g_resolver_free_addresses(addrs);
        signal_destroy(sig);
        return;
    }
    g_autofree char *address = pick_address(addrs);
    g_resolver_free_addresses(addrs);
    if (address == NULL) {
        g_autofree char *detail = g_strdup_printf("cannot resolve %s: %s", sig->url.host,
                                                  error != NULL ? error->message : "no address");
        report_closed(sig, HV_LK_CONNECT_FAILED, detail);
        return;
    }
    start_connect(sig, address);
}

/* ---- public -------------------------------------------------------------------------------- */

hv_lk_signal *
hv_lk_signal_new(const char *url, const char *token, const hv_lk_signal_callbacks *cb,
                 void *user_data, GError **error)
{
    hv_lk_url u;
    if (!hv_lk_signal_parse_url(url, token, &u, error)) {
        return NULL;
    }
    if (!ensure_context(error)) {
        hv_lk_url_clear(&u);
        return NULL;
    }
    hv_lk_signal *sig = g_new0(hv_lk_signal, 1);
    lk_lws.live++;
    sig->cb = *cb;
    sig->user_data = user_data;
    sig->url = u;
    sig->rx = g_byte_array_new();
    sig->close_status = LWS_CLOSE_STATUS_NORMAL;
    g_queue_init(&sig->out);
    /* Always asynchronous, even for an IP literal (answered at once): one path, and no callback
     * from inside this call. */
    sig->resolving = true;
    sig->cancel = g_cancellable_new();
    GResolver *resolver = g_resolver_get_default();
    g_resolver_lookup_by_name_async(resolver, sig->url.host, sig->cancel, on_resolved, sig);
    g_object_unref(resolver);
    return sig;
}

unsigned
hv_lk_signal_queued(const hv_lk_signal *sig)
{
    return sig != NULL ? g_queue_get_length((GQueue *)&sig->out) : 0;
}

int
hv_lk_signal_send(hv_lk_signal *sig, const uint8_t *buf, size_t len)
{
    g_return_val_if_fail(sig != NULL, HV_EINVAL);
    if (sig->detached || sig->reported || sig->lws_closing) {
        return HV_ECLOSED;
    }
    if (len > HV_LK_MAX_REQUEST_BYTES) {
        return HV_EINVAL;
    }
    if (g_queue_get_length(&sig->out) >= HV_LK_MAX_QUEUED_MESSAGES ||
        sig->out_bytes + len > HV_LK_MAX_QUEUED_BYTES) {
        return HV_EAGAIN;
    }
    out_msg *m = g_malloc(sizeof(*m) + LWS_PRE + len);
    m->len = len;
    memcpy(m->buf + LWS_PRE, buf, len);
    g_queue_push_tail(&sig->out, m);
    sig->out_bytes += len;
    if (sig->established && sig->wsi != NULL) {
        lws_callback_on_writable(sig->wsi);
    }
    return 0;
}

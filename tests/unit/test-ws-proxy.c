/* Tests of the viewer WebSocket proxy (src/http/ws_proxy.c), without a cluster: the bounded
 * queue and its drop rule (pure), the owner URL, and the relay itself over loopback sockets.
 *
 * One in-process lws context on 127.0.0.1 (on the GLib loop) plays three parts: the "owner"
 * (its viewer socket at /api/live-sessions/ws/live/..., scripted), the "front" node (a viewer
 * socket at /front whose callbacks are hv_ws_proxy's, as ws_viewer.c calls them), and the
 * viewer (a client connection to /front). The proxy's own client context connects front to
 * owner. Checks relay both ways (text stays text, binary binary), the request header, query
 * and Authorization upstream, the owner's close code reaching the viewer, a viewer close
 * closing upstream, an unreachable or silent owner (1011), and a slow viewer: video dropped
 * oldest first and text kept, or a 1008 when text alone exceeds the bound.
 */
#include "../common/loop.h"
#include "http/http-private.h"

#include <gio/gio.h>
#include <glib.h>
#include <libwebsockets.h>
#include <string.h>

static int wait_ms = 5000;

#define MINT "So11111111111111111111111111111111111111112"

/* ---- main-loop helpers ----------------------------------------------------------------------- */

/* ---- messages -------------------------------------------------------------------------------- */

static GByteArray *
msg_new(const void *payload, size_t len)
{
    GByteArray *b = g_byte_array_sized_new((guint)(HV_WS_PROXY_HEADROOM + len));
    g_byte_array_set_size(b, HV_WS_PROXY_HEADROOM);
    g_byte_array_append(b, payload, (guint)len);
    return b;
}

/* An encoded-mode video frame: kind 1, flags (key), an 8-byte timestamp, then tag. */
static GByteArray *
encoded_msg(uint8_t kind, bool key, uint8_t tag, size_t len)
{
    g_assert_cmpuint(len, >=, 11);
    uint8_t *p = g_malloc0(len);
    p[0] = kind;
    p[1] = key ? 1 : 0;
    p[10] = tag;
    GByteArray *b = msg_new(p, len);
    g_free(p);
    return b;
}

/* Pops the next message: its kind ('t' text, 'b' binary) and first payload byte (or tag). */
static bool
pop_tag(hv_ws_proxy_queue *q, char *kind, uint8_t *tag, size_t tag_at)
{
    bool binary = false;
    GByteArray *b = hv_ws_proxy_queue_pop(q, &binary);
    if (b == NULL) {
        return false;
    }
    *kind = binary ? 'b' : 't';
    *tag = b->len > HV_WS_PROXY_HEADROOM + tag_at ? b->data[HV_WS_PROXY_HEADROOM + tag_at] : 0;
    g_byte_array_unref(b);
    return true;
}

/* ---- pure tests --------------------------------------------------------------------------------
 */

static void
test_url(void)
{
    const char *args[] = {"audio_rate=48000", "mode=encoded", "token=a b&c", NULL};
    g_autofree char *u1 =
        hv_ws_proxy_url("http://127.0.0.1:8123", "/api/live-sessions/ws/live/" MINT, args);
    g_assert_cmpstr(u1, ==,
                    "ws://127.0.0.1:8123/api/live-sessions/ws/live/" MINT
                    "?audio_rate=48000&mode=encoded&token=a%20b%26c");
    g_autofree char *u2 = hv_ws_proxy_url("http://node-b:8000/", "/p", NULL);
    g_assert_cmpstr(u2, ==, "ws://node-b:8000/p");
    const char *none[] = {NULL};
    g_autofree char *u3 = hv_ws_proxy_url("ws://[::1]:9", "/p", none);
    g_assert_cmpstr(u3, ==, "ws://[::1]:9/p");
    g_assert_null(hv_ws_proxy_url("https://x:1", "/p", NULL));
    g_assert_null(hv_ws_proxy_url("ftp://x", "/p", NULL));
}

/* JPEG mode: over the message bound, the oldest binary message goes; text never does. */
static void
test_queue_jpeg_drops_oldest_video(void)
{
    hv_ws_proxy_queue *q = hv_ws_proxy_queue_new(4, 1 << 20, HV_WS_PROXY_DROP_JPEG);
    const uint8_t fmt = 'F', j1 = 1, j2 = 2, j3 = 3, j4 = 4, ev = 'E';
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(&fmt, 1), false));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(&j1, 1), true));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(&j2, 1), true));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(&ev, 1), false));
    g_assert_cmpuint(hv_ws_proxy_queue_length(q), ==, 4);
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(&j3, 1), true)); /* j1 goes */
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(&j4, 1), true)); /* j2 goes */
    g_assert_cmpuint(hv_ws_proxy_queue_length(q), ==, 4);
    g_assert_cmpuint(hv_ws_proxy_queue_dropped(q), ==, 2);
    g_assert_cmpuint(hv_ws_proxy_queue_bytes(q), ==, 4);
    const char want_kind[] = "ttbb";
    const uint8_t want_tag[] = {'F', 'E', 3, 4};
    for (int i = 0; i < 4; i++) {
        char kind = 0;
        uint8_t tag = 0;
        g_assert_true(pop_tag(q, &kind, &tag, 0));
        g_assert_cmpint(kind, ==, want_kind[i]);
        g_assert_cmpuint(tag, ==, want_tag[i]);
    }
    g_assert_cmpuint(hv_ws_proxy_queue_length(q), ==, 0);
    g_assert_cmpuint(hv_ws_proxy_queue_bytes(q), ==, 0);
    hv_ws_proxy_queue_free(q);
}

/* The byte bound drops video too, and text alone over a bound makes push fail. */
static void
test_queue_bytes_and_text_overflow(void)
{
    hv_ws_proxy_queue *q = hv_ws_proxy_queue_new(100, 1000, HV_WS_PROXY_DROP_JPEG);
    g_autofree uint8_t *big = g_malloc0(400);
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(big, 400), true));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(big, 400), false));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(big, 400), true)); /* the first goes */
    g_assert_cmpuint(hv_ws_proxy_queue_length(q), ==, 2);
    g_assert_cmpuint(hv_ws_proxy_queue_bytes(q), ==, 800);
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new(big, 400), false)); /* the binary goes */
    g_assert_cmpuint(hv_ws_proxy_queue_length(q), ==, 2);
    g_assert_false(hv_ws_proxy_queue_push(q, msg_new(big, 400), false)); /* text only: over */
    hv_ws_proxy_queue_free(q);

    /* The message bound, text only. */
    q = hv_ws_proxy_queue_new(3, 1 << 20, HV_WS_PROXY_DROP_JPEG);
    for (int i = 0; i < 3; i++) {
        g_assert_true(hv_ws_proxy_queue_push(q, msg_new("a", 1), false));
    }
    g_assert_false(hv_ws_proxy_queue_push(q, msg_new("a", 1), false));
    hv_ws_proxy_queue_free(q);

    /* Nothing is dropped toward the owner. */
    q = hv_ws_proxy_queue_new(2, 1 << 20, HV_WS_PROXY_DROP_NONE);
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("a", 1), true));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("a", 1), true));
    g_assert_false(hv_ws_proxy_queue_push(q, msg_new("a", 1), true));
    g_assert_cmpuint(hv_ws_proxy_queue_dropped(q), ==, 0);
    hv_ws_proxy_queue_free(q);
}

/* Encoded mode: dropping a video frame drops the frames after it up to the next key frame;
 * audio (kind 2) stays while video can go; with no key frame queued, video arriving later is
 * dropped until a key frame. */
static void
test_queue_encoded_drops_to_key_frame(void)
{
    hv_ws_proxy_queue *q = hv_ws_proxy_queue_new(6, 1 << 20, HV_WS_PROXY_DROP_ENCODED);
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("F", 1), false));
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, true, 10, 16), true));  /* K10 */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(2, true, 90, 16), true));  /* A90 */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, false, 11, 16), true)); /* D11 */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, false, 12, 16), true)); /* D12 */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, true, 20, 16), true));  /* K20 */
    /* Full (6). One more: K10 goes, and D11, D12 with it (they need it); K20 stays. */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, false, 21, 16), true)); /* D21 */
    g_assert_cmpuint(hv_ws_proxy_queue_dropped(q), ==, 3);
    g_assert_cmpuint(hv_ws_proxy_queue_length(q), ==, 4);
    char kind = 0;
    uint8_t tag = 0;
    const uint8_t want[] = {0, 90, 20, 21};
    for (int i = 0; i < 4; i++) {
        g_assert_true(pop_tag(q, &kind, &tag, 10));
        g_assert_cmpuint(tag, ==, want[i]);
        g_assert_cmpint(kind, ==, i == 0 ? 't' : 'b');
    }

    /* Now no key frame queued: dropping K30 makes D31, D32 arriving later go too, until K40. */
    hv_ws_proxy_queue_free(q);
    q = hv_ws_proxy_queue_new(3, 1 << 20, HV_WS_PROXY_DROP_ENCODED);
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("E", 1), false));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("E", 1), false));
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, true, 30, 16), true));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("E", 1), false)); /* K30 goes */
    g_assert_cmpuint(hv_ws_proxy_queue_dropped(q), ==, 1);
    g_assert_true(pop_tag(q, &kind, &tag, 0));
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, false, 31, 16), true)); /* dropped */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(2, true, 91, 16), true));  /* audio */
    g_assert_cmpuint(hv_ws_proxy_queue_dropped(q), ==, 2);
    g_assert_true(pop_tag(q, &kind, &tag, 0));
    g_assert_true(pop_tag(q, &kind, &tag, 0)); /* the viewer took both events: [A91] */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, false, 32, 16), true)); /* dropped */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, true, 40, 16), true));  /* passes */
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(1, false, 41, 16), true)); /* passes */
    g_assert_cmpuint(hv_ws_proxy_queue_dropped(q), ==, 3);
    g_assert_cmpuint(hv_ws_proxy_queue_length(q), ==, 3);
    const uint8_t want2[] = {91, 40, 41};
    for (int i = 0; i < 3; i++) {
        g_assert_true(pop_tag(q, &kind, &tag, 10));
        g_assert_cmpuint(tag, ==, want2[i]);
    }

    /* Without video, other binary messages (audio) go before the queue fails. */
    hv_ws_proxy_queue_free(q);
    q = hv_ws_proxy_queue_new(2, 1 << 20, HV_WS_PROXY_DROP_ENCODED);
    g_assert_true(hv_ws_proxy_queue_push(q, encoded_msg(2, true, 92, 16), true));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("E", 1), false));
    g_assert_true(hv_ws_proxy_queue_push(q, msg_new("E", 1), false)); /* A92 goes */
    g_assert_cmpuint(hv_ws_proxy_queue_dropped(q), ==, 1);
    g_assert_false(hv_ws_proxy_queue_push(q, msg_new("E", 1), false));
    hv_ws_proxy_queue_free(q);
}

/* ---- the loopback setup ---------------------------------------------------------------------- */

typedef enum { ROLE_NONE, ROLE_FRONT, ROLE_OWNER, ROLE_VIEWER } conn_role;

typedef struct {
    conn_role role;
    hv_ws_proxy *proxy; /* ROLE_FRONT */
} tconn;

typedef struct {
    GBytes *data;
    bool binary;
} tmsg;

static void
tmsg_free(gpointer p)
{
    tmsg *m = p;
    g_bytes_unref(m->data);
    g_free(m);
}

/* One side's script and record: what to send, what came, how it closed. */
typedef struct {
    struct lws *wsi;
    GQueue out;     /* tmsg* to send */
    int close_code; /* != 0: close with it once out is sent */
    const char *close_reason;
    GPtrArray *rx; /* tmsg* received */
    GByteArray *rx_buf;
    bool rx_binary;
    int peer_close_code;
    char peer_close_reason[128];
    bool established;
    bool closed;
} side;

static struct {
    struct lws_context *ctx;
    GMainLoop *loop;
    void *foreign_loops[1];
    int port;
    side owner;
    side viewer;
    /* the owner's view of the upgrade request */
    char *owner_uri;
    char *owner_args;
    char *owner_auth;
    bool owner_saw_header;
    /* the front's proxy */
    hv_ws_proxy_params params;
    char *target;
} t;

static void
side_reset(side *s)
{
    g_queue_clear_full(&s->out, tmsg_free);
    if (s->rx != NULL) {
        g_ptr_array_unref(s->rx);
    }
    if (s->rx_buf != NULL) {
        g_byte_array_unref(s->rx_buf);
    }
    memset(s, 0, sizeof(*s));
    g_queue_init(&s->out);
    s->rx = g_ptr_array_new_with_free_func(tmsg_free);
    s->rx_buf = g_byte_array_new();
}

static void
side_queue(side *s, const void *data, size_t len, bool binary)
{
    tmsg *m = g_new0(tmsg, 1);
    m->data = g_bytes_new(data, len);
    m->binary = binary;
    g_queue_push_tail(&s->out, m);
    if (s->wsi != NULL) {
        lws_callback_on_writable(s->wsi);
    }
}

static void
side_queue_text(side *s, const char *text)
{
    side_queue(s, text, strlen(text), false);
}

static int
side_writable(side *s, struct lws *wsi)
{
    tmsg *m = g_queue_pop_head(&s->out);
    if (m == NULL) {
        if (s->close_code != 0) {
            lws_close_reason(wsi, (enum lws_close_status)s->close_code,
                             (unsigned char *)s->close_reason, strlen(s->close_reason));
            return -1;
        }
        return 0;
    }
    gsize len = 0;
    const uint8_t *data = g_bytes_get_data(m->data, &len);
    uint8_t *buf = g_malloc(LWS_PRE + len);
    memcpy(buf + LWS_PRE, data, len);
    int n = lws_write(wsi, buf + LWS_PRE, len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    g_free(buf);
    tmsg_free(m);
    if (n < (int)len) {
        return -1;
    }
    if (!g_queue_is_empty(&s->out) || s->close_code != 0) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

static void
side_receive(side *s, struct lws *wsi, const void *in, size_t len)
{
    if (lws_is_first_fragment(wsi)) {
        g_byte_array_set_size(s->rx_buf, 0);
        s->rx_binary = lws_frame_is_binary(wsi) != 0;
    }
    g_byte_array_append(s->rx_buf, in, (guint)len);
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        tmsg *m = g_new0(tmsg, 1);
        m->data = g_bytes_new(s->rx_buf->data, s->rx_buf->len);
        m->binary = s->rx_binary;
        g_ptr_array_add(s->rx, m);
    }
}

static void
side_peer_close(side *s, const uint8_t *in, size_t len)
{
    if (in != NULL && len >= 2) {
        s->peer_close_code = (in[0] << 8) | in[1];
        size_t n = MIN(len - 2, sizeof(s->peer_close_reason) - 1);
        memcpy(s->peer_close_reason, in + 2, n);
        s->peer_close_reason[n] = '\0';
    }
}

static void
record_owner_request(struct lws *wsi)
{
    char buf[1024] = "";
    (void)lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_GET_URI);
    g_free(t.owner_uri);
    t.owner_uri = g_strdup(buf);
    GString *args = g_string_new(NULL);
    for (int i = 0; lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++) {
        g_string_append_printf(args, "%s%s", i > 0 ? "&" : "", buf);
    }
    g_free(t.owner_args);
    t.owner_args = g_string_free(args, FALSE);
    buf[0] = '\0';
    (void)lws_hdr_copy(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_AUTHORIZATION);
    g_free(t.owner_auth);
    t.owner_auth = g_strdup(buf);
    t.owner_saw_header = hv_ws_proxy_request_is_proxied(wsi);
}

static int
on_established(tconn *c, struct lws *wsi)
{
    char uri[256] = "";
    (void)lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
    if (g_str_has_prefix(uri, "/front")) {
        c->role = ROLE_FRONT;
        t.params.url = t.target;
        g_autoptr(GError) error = NULL;
        c->proxy = hv_ws_proxy_new(wsi, &t.params, &error);
        g_assert_no_error(error);
        return 0;
    }
    c->role = ROLE_OWNER;
    record_owner_request(wsi);
    t.owner.wsi = wsi;
    t.owner.established = true;
    lws_callback_on_writable(wsi);
    return 0;
}

static int
on_test_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    tconn *c = user;
    side *own = &t.owner, *vw = &t.viewer;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        return on_established(c, wsi);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c->role == ROLE_FRONT ? hv_ws_proxy_on_writable(c->proxy) : side_writable(own, wsi);
    case LWS_CALLBACK_RECEIVE:
        if (c->role == ROLE_FRONT) {
            return hv_ws_proxy_on_receive(c->proxy, in, len);
        }
        side_receive(own, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (c != NULL && c->role == ROLE_FRONT) {
            hv_ws_proxy_free(c->proxy);
            c->proxy = NULL;
        } else if (c != NULL && c->role == ROLE_OWNER) {
            own->wsi = NULL;
            own->closed = true;
        }
        return 0;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c != NULL && (c->role == ROLE_VIEWER || c->role == ROLE_OWNER)) {
            side_peer_close(c->role == ROLE_VIEWER ? vw : own, in, len);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->role = ROLE_VIEWER;
        vw->established = true;
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        side_receive(vw, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return side_writable(vw, wsi);
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
    case LWS_CALLBACK_CLIENT_CLOSED:
        vw->wsi = NULL;
        vw->closed = true;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols test_protocols[] = {
    {"t", on_test_event, sizeof(tconn), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void
setup_start(void)
{
    t.loop = g_main_loop_new(NULL, FALSE);
    t.foreign_loops[0] = t.loop;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.iface = "127.0.0.1";
    info.port = 0;
    info.protocols = test_protocols;
    info.foreign_loops = t.foreign_loops;
    info.vhost_name = "t";
    info.pt_serv_buf_size = 32 * 1024;
    info.max_http_header_data = 8 * 1024;
    t.ctx = lws_create_context(&info);
    g_assert_nonnull(t.ctx);
    t.port = lws_get_vhost_listen_port(lws_get_vhost_by_name(t.ctx, "t"));
    g_assert_cmpint(t.port, >, 0);
}

static void
setup_stop(void)
{
    lws_context_destroy(t.ctx);
    g_main_loop_unref(t.loop);
    side_reset(&t.owner);
    side_reset(&t.viewer);
    g_ptr_array_unref(t.owner.rx);
    g_ptr_array_unref(t.viewer.rx);
    g_byte_array_unref(t.owner.rx_buf);
    g_byte_array_unref(t.viewer.rx_buf);
    g_free(t.owner_uri);
    g_free(t.owner_args);
    g_free(t.owner_auth);
    g_free(t.target);
}

static bool
no_proxy(void *data)
{
    return hv_ws_proxy_live_count() == 0 && t.owner.wsi == NULL && t.viewer.wsi == NULL;
}

/* A fresh case: the previous one's connections gone, the owner's script empty, the target the
 * owner's viewer socket (with query). */
static void
reset_case(void)
{
    g_assert_true(wait_for(no_proxy, NULL, wait_ms));
    side_reset(&t.owner);
    side_reset(&t.viewer);
    memset(&t.params, 0, sizeof(t.params));
    t.params.mint = MINT;
    t.params.viewer_id = 7;
    g_free(t.target);
    t.target = g_strdup_printf(
        "ws://127.0.0.1:%d/api/live-sessions/ws/live/" MINT "?audio_rate=48000&mode=jpeg", t.port);
}

static void
viewer_connect(void)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.context = t.ctx;
    ci.address = "127.0.0.1";
    ci.port = t.port;
    ci.path = "/front";
    ci.host = "127.0.0.1";
    ci.local_protocol_name = "t";
    ci.ietf_version_or_minus_one = -1;
    ci.pwsi = &t.viewer.wsi;
    t.viewer.wsi = lws_client_connect_via_info(&ci);
    g_assert_nonnull(t.viewer.wsi);
}

typedef struct {
    side *s;
    guint n;
} rx_wait;

static bool
has_rx(void *data)
{
    const rx_wait *w = data;
    return w->s->rx->len >= w->n;
}

static bool
is_closed(void *data)
{
    return ((side *)data)->closed;
}

static void
assert_msg(const side *s, guint i, bool binary, const void *data, size_t len)
{
    const tmsg *m = g_ptr_array_index(s->rx, i);
    g_assert_cmpint(m->binary, ==, binary);
    gsize got = 0;
    const void *p = g_bytes_get_data(m->data, &got);
    g_assert_cmpmem(p, got, data, len);
}

/* ---- socket tests ------------------------------------------------------------------------------
 */

/* Both ways, unchanged; the owner's close code and reason reach the viewer. */
static void
test_relay(void)
{
    reset_case();
    t.params.authorization = "Bearer secret-token";
    const char *format = "{\"type\":\"format\",\"mint_id\":\"" MINT "\"}";
    size_t jpeg_len = 300 * 1024; /* several reads and frames */
    g_autofree uint8_t *jpeg = g_malloc(jpeg_len);
    for (size_t i = 0; i < jpeg_len; i++) {
        jpeg[i] = (uint8_t)(i * 7 + 3);
    }
    side_queue_text(&t.owner, format);
    side_queue(&t.owner, jpeg, jpeg_len, true);
    side_queue_text(&t.owner, "audio:AAAA");
    viewer_connect();
    rx_wait w = {&t.viewer, 3};
    g_assert_true(wait_for(has_rx, &w, wait_ms));
    assert_msg(&t.viewer, 0, false, format, strlen(format));
    assert_msg(&t.viewer, 1, true, jpeg, jpeg_len);
    assert_msg(&t.viewer, 2, false, "audio:AAAA", 10);

    /* The upstream request: the path, the query, the header, the Authorization. */
    g_assert_cmpstr(t.owner_uri, ==, "/api/live-sessions/ws/live/" MINT);
    g_assert_cmpstr(t.owner_args, ==, "audio_rate=48000&mode=jpeg");
    g_assert_true(t.owner_saw_header);
    g_assert_cmpstr(t.owner_auth, ==, "Bearer secret-token");
    g_assert_cmpuint(hv_ws_proxy_live_count(), ==, 1);

    /* Viewer → owner: text and binary. */
    side_queue_text(&t.viewer, "ping");
    const uint8_t bin[] = {1, 2, 3};
    side_queue(&t.viewer, bin, sizeof(bin), true);
    rx_wait wo = {&t.owner, 2};
    g_assert_true(wait_for(has_rx, &wo, wait_ms));
    assert_msg(&t.owner, 0, false, "ping", 4);
    assert_msg(&t.owner, 1, true, bin, sizeof(bin));
    side_queue_text(&t.owner, "pong");

    /* The owner ends: an event, then a close the viewer gets after it, code and reason. */
    side_queue_text(&t.owner, "{\"type\":\"ended\"}");
    t.owner.close_code = 4404;
    t.owner.close_reason = "no active session for mint_id " MINT;
    lws_callback_on_writable(t.owner.wsi);
    g_assert_true(wait_for(is_closed, &t.viewer, wait_ms));
    g_assert_cmpuint(t.viewer.rx->len, ==, 5);
    assert_msg(&t.viewer, 3, false, "pong", 4);
    assert_msg(&t.viewer, 4, false, "{\"type\":\"ended\"}", 16);
    g_assert_cmpint(t.viewer.peer_close_code, ==, 4404);
    g_assert_cmpstr(t.viewer.peer_close_reason, ==, "no active session for mint_id " MINT);
    g_assert_true(wait_for(no_proxy, NULL, wait_ms));
}

/* A viewer that closes closes the upstream connection. */
static void
test_viewer_close(void)
{
    reset_case();
    side_queue_text(&t.owner, "{\"type\":\"format\"}");
    viewer_connect();
    rx_wait w = {&t.viewer, 1};
    g_assert_true(wait_for(has_rx, &w, wait_ms));
    t.viewer.close_code = 1000;
    t.viewer.close_reason = "bye";
    lws_callback_on_writable(t.viewer.wsi);
    g_assert_true(wait_for(is_closed, &t.owner, wait_ms));
    g_assert_cmpint(t.owner.peer_close_code, ==, 1000);
    g_assert_true(wait_for(no_proxy, NULL, wait_ms));
}

static int
free_port(void)
{
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(s, any, FALSE, NULL));
    g_autoptr(GSocketAddress) bound = g_socket_get_local_address(s, NULL);
    return g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
}

/* Nothing listens on the owner's port: 1011 at once. */
static void
test_refused(void)
{
    reset_case();
    g_free(t.target);
    t.target = g_strdup_printf("ws://127.0.0.1:%d/api/live-sessions/ws/live/" MINT, free_port());
    viewer_connect();
    g_assert_true(wait_for(is_closed, &t.viewer, wait_ms));
    g_assert_cmpint(t.viewer.peer_close_code, ==, 1011);
    g_assert_cmpstr(t.viewer.peer_close_reason, ==, "owner node unreachable");
    g_assert_true(wait_for(no_proxy, NULL, wait_ms));
}

/* The owner accepts TCP but never answers the upgrade: 1011 after the connect timeout. */
static void
test_connect_timeout(void)
{
    reset_case();
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(s, any, FALSE, NULL));
    g_assert_true(g_socket_listen(s, NULL));
    g_autoptr(GSocketAddress) bound = g_socket_get_local_address(s, NULL);
    int port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
    g_free(t.target);
    t.target = g_strdup_printf("ws://127.0.0.1:%d/api/live-sessions/ws/live/" MINT, port);
    t.params.connect_timeout_ms = 300;
    int64_t start = g_get_monotonic_time();
    viewer_connect();
    /* A viewer's ping before the owner answers waits (bounded) and goes nowhere. */
    side_queue_text(&t.viewer, "ping");
    g_assert_true(wait_for(is_closed, &t.viewer, wait_ms));
    int64_t took_ms = (g_get_monotonic_time() - start) / 1000;
    g_assert_cmpint(took_ms, >=, 250);
    g_assert_cmpint(took_ms, <, 3000);
    g_assert_cmpint(t.viewer.peer_close_code, ==, 1011);
    g_assert_cmpstr(t.viewer.peer_close_reason, ==, "owner node unreachable");
    g_assert_true(wait_for(no_proxy, NULL, wait_ms));
}

static bool
owner_sent_all(void *data)
{
    return g_queue_is_empty(&t.owner.out);
}

/* A viewer that stops reading: the owner's video is dropped oldest first and its text kept;
 * once the viewer reads again it gets the format, the newest frames in order, and the last
 * event. */
static void
test_slow_viewer_drops_video(void)
{
    reset_case();
    t.params.max_messages = 8;
    t.params.max_bytes = 256 * 1024;
    side_queue_text(&t.owner, "{\"type\":\"format\"}");
    viewer_connect();
    rx_wait w = {&t.viewer, 1};
    g_assert_true(wait_for(has_rx, &w, wait_ms));
    lws_rx_flow_control(t.viewer.wsi, 0);
    const int frames = 600; /* 600 × 32 KiB: far more than the socket buffers hold */
    g_autofree uint8_t *frame = g_malloc0(32 * 1024);
    for (int i = 0; i < frames; i++) {
        frame[0] = (uint8_t)(i >> 8);
        frame[1] = (uint8_t)i;
        side_queue(&t.owner, frame, 32 * 1024, true);
    }
    side_queue_text(&t.owner, "{\"type\":\"last\"}");
    lws_callback_on_writable(t.owner.wsi);
    /* The owner gets everything out (the proxy reads it all and drops video). */
    g_assert_true(wait_for(owner_sent_all, NULL, wait_ms * 2));
    run_for(200);
    lws_rx_flow_control(t.viewer.wsi, 1);
    rx_wait all = {&t.viewer, 2};
    bool got_last = false;
    for (int i = 0; i < 100 && !got_last; i++) {
        (void)wait_for(has_rx, &all, 100);
        const tmsg *m = g_ptr_array_index(t.viewer.rx, t.viewer.rx->len - 1);
        got_last = !m->binary;
        all.n = t.viewer.rx->len + 1;
        if (!got_last) {
            run_for(20);
        }
    }
    g_assert_true(got_last);
    g_assert_false(t.viewer.closed);
    guint n = t.viewer.rx->len;
    g_assert_cmpuint(n, <, (guint)frames); /* frames were dropped */
    assert_msg(&t.viewer, n - 1, false, "{\"type\":\"last\"}", 15);
    int prev = -1;
    for (guint i = 1; i + 1 < n; i++) {
        const tmsg *m = g_ptr_array_index(t.viewer.rx, i);
        g_assert_true(m->binary);
        const uint8_t *p = g_bytes_get_data(m->data, NULL);
        int seq = (p[0] << 8) | p[1];
        g_assert_cmpint(seq, >, prev);
        prev = seq;
    }
    g_assert_cmpint(prev, ==, frames - 1); /* the newest frame made it */
    t.viewer.close_code = 1000;
    t.viewer.close_reason = "bye";
    lws_callback_on_writable(t.viewer.wsi);
    g_assert_true(wait_for(no_proxy, NULL, wait_ms));
}

/* A viewer that stops reading while the owner sends text only: 1008, and upstream is closed. */
static void
test_slow_viewer_text_overflow(void)
{
    reset_case();
    t.params.max_messages = 8;
    t.params.max_bytes = 256 * 1024;
    side_queue_text(&t.owner, "{\"type\":\"format\"}");
    viewer_connect();
    rx_wait w = {&t.viewer, 1};
    g_assert_true(wait_for(has_rx, &w, wait_ms));
    lws_rx_flow_control(t.viewer.wsi, 0);
    g_autofree char *text = g_malloc(32 * 1024 + 1);
    memset(text, 'a', 32 * 1024);
    text[32 * 1024] = '\0';
    for (int i = 0; i < 600; i++) {
        side_queue_text(&t.owner, text);
    }
    lws_callback_on_writable(t.owner.wsi);
    g_assert_true(wait_for(is_closed, &t.owner, wait_ms));
    /* The close frame says "viewer closed" with 1000, unless the owner was busy sending: lws
     * 4.1 then drops a connection whose peer closes while a write is partly out. */
    if (t.owner.peer_close_code != 0) {
        g_assert_cmpint(t.owner.peer_close_code, ==, 1000);
    }
    lws_rx_flow_control(t.viewer.wsi, 1);
    g_assert_true(wait_for(is_closed, &t.viewer, wait_ms));
    g_assert_cmpint(t.viewer.peer_close_code, ==, 1008);
    g_assert_cmpstr(t.viewer.peer_close_reason, ==, "viewer too slow: event queue full");
    g_assert_true(wait_for(no_proxy, NULL, wait_ms));
}

static void
on_lws_log(int level, const char *line)
{
    g_autofree char *msg = g_strchomp(g_strdup(line));
    g_debug("lws: %s", msg);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (g_getenv("HAVEN_TEST_SANITIZED") != NULL) {
        wait_ms *= 3;
    }
    lws_set_log_level(LLL_ERR | LLL_WARN, on_lws_log);
    setup_start();
    g_test_add_func("/http/ws-proxy/url", test_url);
    g_test_add_func("/http/ws-proxy/queue/jpeg-drops-oldest-video",
                    test_queue_jpeg_drops_oldest_video);
    g_test_add_func("/http/ws-proxy/queue/bytes-and-text-overflow",
                    test_queue_bytes_and_text_overflow);
    g_test_add_func("/http/ws-proxy/queue/encoded-drops-to-key-frame",
                    test_queue_encoded_drops_to_key_frame);
    g_test_add_func("/http/ws-proxy/relay", test_relay);
    g_test_add_func("/http/ws-proxy/viewer-close", test_viewer_close);
    g_test_add_func("/http/ws-proxy/refused", test_refused);
    g_test_add_func("/http/ws-proxy/connect-timeout", test_connect_timeout);
    g_test_add_func("/http/ws-proxy/slow-viewer-drops-video", test_slow_viewer_drops_video);
    g_test_add_func("/http/ws-proxy/slow-viewer-text-overflow", test_slow_viewer_text_overflow);
    int rc = g_test_run();
    (void)wait_for(no_proxy, NULL, wait_ms);
    hv_ws_proxy_shutdown();
    setup_stop();
    return rc;
}

/* Socket tests of the LiveKit signalling client: a real hv_lk_room against an in-process fake
 * SFU (a libwebsockets WebSocket server on 127.0.0.1, on the same GLib loop) that answers the
 * upgrade, sends a JoinResponse and answers pings; plus a silent TCP listener and a refused
 * port. Checks join, keepalive, leave on free, server close, 401, refused, connect and join
 * timeouts, fragmented and oversized messages, and freeing while connecting.
 *
 * Loopback only: run inside `unshare -n` (see tests/livekit/meson.build). The fake SFU shares
 * our generated protobuf code; the independent check against @livekit/protocol lives in the
 * integration tests.
 */
#include "../common/loop.h"
#include "livekit/room-private.h"

#include "livekit/livekit-proto.h"
#include "lk-builders.h"

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <libwebsockets.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>

/* How long a step may take: 5 s, three times that in a sanitized build (HAVEN_TEST_SANITIZED,
 * set by the asan test setup), whose first seconds under a loaded machine are slow. */
static int wait_ms = 5000;
#define WAIT_MS wait_ms

/* ---- main-loop helpers ----------------------------------------------------------------------- */

static bool
no_live_signal(void *data)
{
    return hv_lk_signal_live_count() == 0;
}

/* ---- the fake SFU ---------------------------------------------------------------------------- */

typedef enum {
    SFU_NORMAL,
    SFU_REJECT,          /* an HTTP error (reject_status) instead of the upgrade */
    SFU_NO_JOIN,         /* upgrade, then silence */
    SFU_FRAGMENTED_JOIN, /* the join in two WebSocket frames */
    SFU_OVERSIZE,        /* join, then a message just over 1 MiB in 64 KiB fragments */
} sfu_mode;

typedef struct {
    GBytes *data;
    int flags; /* lws_write protocol flags */
} sfu_out;

static struct {
    struct lws_context *ctx;
    GMainLoop *loop;
    void *foreign_loops[1];
    int port;
    sfu_mode mode;
    unsigned reject_status;
    struct lws *conn;
    GQueue out; /* sfu_out* */
    GByteArray *rx;
    int upgrades;
    int ping_reqs;
    int legacy_pings;
    int trickles;
    int leaves;
    int leave_reason;
    int leave_action;
    int close_code;
    bool closed;
    bool close_now;
    char *uri;
    char *args;
    char *host;
} sfu;

static void
sfu_queue(GBytes *data, int flags)
{
    sfu_out *o = g_new0(sfu_out, 1);
    o->data = data;
    o->flags = flags;
    g_queue_push_tail(&sfu.out, o);
}

static void
sfu_queue_join(void)
{
    static const char *const stun[] = {"stun:127.0.0.1:3478", NULL};
    hv_lkt_join_msg m;
    const hv_lkt_join_spec spec = {.room_sid = "RM_fake",
                                   .room_name = "livestream:fake:1",
                                   .stun = stun,
                                   .ping_interval = 1, /* × the test's 50 ms "second" */
                                   .ping_timeout = 40};
    GBytes *b = hv_lkt_pack(&hv_lkt_join(&m, &spec)->base);
    if (sfu.mode == SFU_FRAGMENTED_JOIN) {
        gsize len = g_bytes_get_size(b);
        sfu_queue(g_bytes_new_from_bytes(b, 0, len / 2), LWS_WRITE_BINARY | LWS_WRITE_NO_FIN);
        sfu_queue(g_bytes_new_from_bytes(b, len / 2, len - len / 2), LWS_WRITE_CONTINUATION);
        g_bytes_unref(b);
    } else {
        sfu_queue(b, LWS_WRITE_BINARY);
    }
}

static void
sfu_queue_oversize(void)
{
    const size_t chunk = (size_t)64 * 1024;
    const int n = (int)(HV_LK_MAX_MESSAGE_BYTES / chunk) + 1;
    for (int i = 0; i < n; i++) {
        int flags = i == 0 ? LWS_WRITE_BINARY : LWS_WRITE_CONTINUATION;
        if (i < n - 1) {
            flags |= LWS_WRITE_NO_FIN;
        }
        sfu_queue(g_bytes_new_take(g_malloc0(chunk), chunk), flags);
    }
}

static void
sfu_on_request(const uint8_t *buf, size_t len)
{
    Livekit__SignalRequest *req = livekit__signal_request__unpack(NULL, len, buf);
    if (req == NULL) {
        g_error("the client sent an undecodable SignalRequest");
        return;
    }
    switch (req->message_case) {
    case LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING_REQ: {
        sfu.ping_reqs++;
        hv_lkt_pong_msg pong;
        sfu_queue(
            hv_lkt_pack(
                &hv_lkt_pong(&pong, req->ping_req->timestamp, g_get_real_time() / 1000)->base),
            LWS_WRITE_BINARY);
        lws_callback_on_writable(sfu.conn);
        break;
    }
    case LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING:
        sfu.legacy_pings++;
        break;
    case LIVEKIT__SIGNAL_REQUEST__MESSAGE_TRICKLE:
        sfu.trickles++;
        break;
    case LIVEKIT__SIGNAL_REQUEST__MESSAGE_LEAVE:
        sfu.leaves++;
        sfu.leave_reason = req->leave->reason;
        sfu.leave_action = req->leave->action;
        break;
    default:
        break;
    }
    livekit__signal_request__free_unpacked(req, NULL);
}

static int
sfu_writable(struct lws *wsi)
{
    if (sfu.close_now) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, NULL, 0);
        return -1;
    }
    sfu_out *o = g_queue_pop_head(&sfu.out);
    if (o == NULL) {
        return 0;
    }
    gsize len = 0;
    const uint8_t *data = g_bytes_get_data(o->data, &len);
    uint8_t *buf = g_malloc(LWS_PRE + len);
    memcpy(buf + LWS_PRE, data, len);
    int n = lws_write(wsi, buf + LWS_PRE, len, (enum lws_write_protocol)o->flags);
    g_free(buf);
    g_bytes_unref(o->data);
    g_free(o);
    if (n < (int)len) {
        return -1;
    }
    if (!g_queue_is_empty(&sfu.out)) {
        lws_callback_on_writable(wsi);
    }
    return 0;
}

static void
sfu_record_request(struct lws *wsi)
{
    char uri[256] = "";
    (void)lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);
    g_free(sfu.uri);
    sfu.uri = g_strdup(uri);
    GString *args = g_string_new(NULL);
    char frag[2048];
    for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++) {
        g_string_append_printf(args, "%s%s", i > 0 ? "&" : "", frag);
    }
    g_free(sfu.args);
    sfu.args = g_string_free(args, FALSE);
    char host[256] = "";
    (void)lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST);
    g_free(sfu.host);
    sfu.host = g_strdup(host);
}

static int
on_sfu_event(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        sfu_record_request(wsi);
        if (sfu.mode == SFU_REJECT) {
            (void)lws_return_http_status(wsi, sfu.reject_status, "refused by the fake SFU");
            return 1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        sfu.conn = wsi;
        sfu.upgrades++;
        sfu.closed = false;
        if (sfu.mode != SFU_NO_JOIN) {
            sfu_queue_join();
        }
        if (sfu.mode == SFU_OVERSIZE) {
            sfu_queue_oversize();
        }
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            g_byte_array_set_size(sfu.rx, 0);
        }
        g_byte_array_append(sfu.rx, in, (guint)len);
        if (lws_is_final_fragment(wsi)) {
            sfu_on_request(sfu.rx->data, sfu.rx->len);
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return sfu_writable(wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (in != NULL && len >= 2) {
            const uint8_t *b = in;
            sfu.close_code = (b[0] << 8) | b[1];
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        sfu.conn = NULL;
        sfu.closed = true;
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols sfu_protocols[] = {
    {"fake-sfu", on_sfu_event, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void
sfu_start(void)
{
    sfu.loop = g_main_loop_new(NULL, FALSE);
    sfu.foreign_loops[0] = sfu.loop;
    sfu.rx = g_byte_array_new();
    g_queue_init(&sfu.out);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_GLIB | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.iface = "127.0.0.1";
    info.port = 0; /* any free port */
    info.protocols = sfu_protocols;
    info.foreign_loops = sfu.foreign_loops;
    info.vhost_name = "fake-sfu";
    info.pt_serv_buf_size = 16 * 1024;
    info.max_http_header_data = 8 * 1024;
    sfu.ctx = lws_create_context(&info);
    g_assert_nonnull(sfu.ctx);
    sfu.port = lws_get_vhost_listen_port(lws_get_vhost_by_name(sfu.ctx, "fake-sfu"));
    g_assert_cmpint(sfu.port, >, 0);
}

static void
sfu_drop_queue(void)
{
    sfu_out *o = NULL;
    while ((o = g_queue_pop_head(&sfu.out)) != NULL) {
        g_bytes_unref(o->data);
        g_free(o);
    }
}

static void
sfu_stop(void)
{
    lws_context_destroy(sfu.ctx);
    g_main_loop_unref(sfu.loop);
    sfu_drop_queue();
    g_byte_array_unref(sfu.rx);
    g_free(sfu.uri);
    g_free(sfu.args);
    g_free(sfu.host);
}

static bool
sfu_idle(void *data)
{
    return sfu.conn == NULL;
}

/* Waits for the previous test's connection to be gone, then resets the counters. */
static void
sfu_reset(sfu_mode mode)
{
    g_assert_true(wait_for(sfu_idle, NULL, WAIT_MS));
    sfu_drop_queue();
    sfu.mode = mode;
    sfu.upgrades = sfu.ping_reqs = sfu.legacy_pings = sfu.leaves = 0;
    sfu.leave_reason = sfu.leave_action = -1;
    sfu.close_code = 0;
    sfu.closed = false;
    sfu.close_now = false;
}

static char *
sfu_url(void)
{
    return g_strdup_printf("ws://127.0.0.1:%d", sfu.port);
}

/* ---- a TLS listener with a self-signed certificate ------------------------------------------ */

/* `openssl s_server` in a child process rather than an in-process TLS server: a second lws
 * context with LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT leaks an SSL_CTX at destroy (lws 4.1 keeps
 * its OpenSSL ex-data indexes in globals), and GIO's GnuTLS threads trip LeakSanitizer. The
 * listener only has to run the handshake our client rejects. */
static struct {
    GPid pid;
    int port;
    char *dir;
} tls_srv;

static int refused_port(void);

static bool
run_quiet(const char *const *argv)
{
    int status = -1;
    return g_spawn_sync(NULL, (char **)argv, NULL,
                        G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL |
                            G_SPAWN_STDERR_TO_DEV_NULL,
                        NULL, NULL, NULL, NULL, &status, NULL) &&
           g_spawn_check_wait_status(status, NULL);
}

/* The listener dies with the test, even when an assertion aborts it. */
static void
die_with_parent(gpointer data)
{
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static bool
port_accepts(int port)
{
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, (guint16)port);
    return s != NULL && g_socket_connect(s, addr, NULL, NULL);
}

/* Starts the TLS listener with a fresh self-signed certificate. Returns false when the openssl
 * command is missing or does not come up. */
static bool
tls_srv_start(void)
{
    tls_srv.dir = g_dir_make_tmp("hv-lk-tls-XXXXXX", NULL);
    g_assert_nonnull(tls_srv.dir);
    g_autofree char *key = g_build_filename(tls_srv.dir, "key.pem", NULL);
    g_autofree char *cert = g_build_filename(tls_srv.dir, "cert.pem", NULL);
    const char *req[] = {"openssl",
                         "req",
                         "-x509",
                         "-newkey",
                         "ec",
                         "-pkeyopt",
                         "ec_paramgen_curve:prime256v1",
                         "-nodes",
                         "-subj",
                         "/CN=localhost",
                         "-days",
                         "1",
                         "-keyout",
                         key,
                         "-out",
                         cert,
                         NULL};
    if (!run_quiet(req)) {
        return false;
    }
    tls_srv.port = refused_port();
    g_autofree char *accept = g_strdup_printf("127.0.0.1:%d", tls_srv.port);
    const char *server[] = {"openssl", "s_server", "-quiet", "-accept", accept,
                            "-cert",   cert,       "-key",   key,       NULL};
    if (!g_spawn_async(NULL, (char **)server, NULL,
                       G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                           G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
                       die_with_parent, NULL, &tls_srv.pid, NULL)) {
        tls_srv.pid = 0;
        return false;
    }
    for (int i = 0; i < 100; i++) {
        if (port_accepts(tls_srv.port)) {
            return true;
        }
        g_usleep((gulong)50 * 1000);
    }
    return false;
}

static void
tls_srv_stop(void)
{
    if (tls_srv.pid > 0) {
        (void)kill(tls_srv.pid, SIGTERM);
        (void)waitpid(tls_srv.pid, NULL, 0);
        g_spawn_close_pid(tls_srv.pid);
        tls_srv.pid = 0;
    }
    if (tls_srv.dir != NULL) {
        g_autofree char *key = g_build_filename(tls_srv.dir, "key.pem", NULL);
        g_autofree char *cert = g_build_filename(tls_srv.dir, "cert.pem", NULL);
        (void)g_remove(key);
        (void)g_remove(cert);
        (void)g_rmdir(tls_srv.dir);
        g_clear_pointer(&tls_srv.dir, g_free);
    }
}

/* ---- a TCP listener that never answers, and a port that refuses ---------------------------------
 */

static GSocketService *silent;
static GPtrArray *silent_conns;
static int silent_port;

static gboolean
on_silent_incoming(GSocketService *service, GSocketConnection *conn, GObject *source, gpointer data)
{
    g_ptr_array_add(silent_conns, g_object_ref(conn)); /* hold it open, say nothing */
    return TRUE;
}

static void
silent_start(void)
{
    silent = g_socket_service_new();
    silent_conns = g_ptr_array_new_with_free_func(g_object_unref);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) effective = NULL;
    g_autoptr(GError) error = NULL;
    g_assert_true(g_socket_listener_add_address(G_SOCKET_LISTENER(silent), addr,
                                                G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                                &effective, &error));
    g_assert_no_error(error);
    silent_port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
    g_signal_connect(silent, "incoming", G_CALLBACK(on_silent_incoming), NULL);
    g_socket_service_start(silent);
}

static void
silent_stop(void)
{
    g_socket_service_stop(silent);
    g_socket_listener_close(G_SOCKET_LISTENER(silent));
    g_object_unref(silent);
    g_ptr_array_unref(silent_conns);
}

/* A loopback port nobody listens on (bound, then released). */
static int
refused_port(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocket) s =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
    g_assert_no_error(error);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, 0);
    g_assert_true(g_socket_bind(s, addr, FALSE, &error));
    g_autoptr(GSocketAddress) local = g_socket_get_local_address(s, &error);
    int port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(local));
    g_assert_true(g_socket_close(s, &error));
    return port;
}

/* ---- the room side -----------------------------------------------------------------------------
 */

typedef struct {
    hv_lk_room *room;
    int joined;
    int closed;
    hv_lk_close_reason reason;
    bool retryable;
    char *detail;
    int other_callbacks;
    bool free_in_joined; /* free the room from inside on_joined (inside an lws callback) */
} recorder;

static void
rec_joined(const hv_lk_join_info *info, void *ud)
{
    recorder *r = ud;
    r->joined++;
    g_assert_cmpstr(info->ice_servers[0], ==, "stun://127.0.0.1:3478");
    if (r->free_in_joined) {
        hv_lk_room_free(r->room);
        r->room = NULL;
    }
}

static void
rec_offer(const char *sdp, uint32_t id, GHashTable *map, void *ud)
{
    ((recorder *)ud)->other_callbacks++;
}

static void
rec_candidate(const char *c, const char *mid, int idx, void *ud)
{
    ((recorder *)ud)->other_callbacks++;
}

static void
rec_streamer(const char *sid, const char *identity, const hv_lk_track *t, size_t n, void *ud)
{
    ((recorder *)ud)->other_callbacks++;
}

static void
rec_left(const char *identity, void *ud)
{
    ((recorder *)ud)->other_callbacks++;
}

static void
rec_closed(hv_lk_close_reason reason, bool retryable, const char *detail, void *ud)
{
    recorder *r = ud;
    r->closed++;
    r->reason = reason;
    r->retryable = retryable;
    g_free(r->detail);
    r->detail = g_strdup(detail);
}

static const hv_lk_room_callbacks rec_cb = {
    .on_joined = rec_joined,
    .on_offer = rec_offer,
    .on_remote_candidate = rec_candidate,
    .on_streamer = rec_streamer,
    .on_streamer_left = rec_left,
    .on_closed = rec_closed,
};

static const char *test_token =
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiNDVlMTgyMSIsInZpZGVvIjp7InJvb20iOiJsaXZlc3RyZWFtOmZha2U6"
    "MSJ9fQ.c2ln";

static hv_lk_room *
open_room(recorder *r, const char *url, int64_t timeout_ms)
{
    hv_lk_room_config cfg = {.url = url, .token = test_token, .connect_timeout_ms = timeout_ms};
    r->room = hv_lk_room_new(&cfg, &rec_cb, r);
    g_assert_nonnull(r->room);
    hv_lk_room_set_second_ms(r->room, 50);
    return r->room;
}

static void
close_room(recorder *r)
{
    hv_lk_room_free(r->room);
    r->room = NULL;
    g_assert_true(wait_for(no_live_signal, NULL, WAIT_MS));
    g_free(r->detail);
    r->detail = NULL;
}

static bool
is_closed(void *data)
{
    return ((recorder *)data)->closed > 0;
}

static bool
joined_and_pinged(void *data)
{
    recorder *r = data;
    hv_lk_room_stats st;
    hv_lk_room_get_stats(r->room, &st);
    return r->joined > 0 && sfu.ping_reqs >= 2 && st.rtt_ms >= 0;
}

static bool
sfu_saw_leave_and_close(void *data)
{
    return sfu.leaves > 0 && sfu.closed && hv_lk_signal_live_count() == 0;
}

/* ---- tests -------------------------------------------------------------------------------------
 */

/* The upgrade request of spec §2.1/2.2, as the fake SFU saw it. */
static void
assert_upgrade_request(void)
{
    g_assert_cmpstr(sfu.uri, ==, "/rtc");
    g_autofree char *tok = g_strdup_printf("access_token=%s", test_token);
    g_auto(GStrv) args = g_strsplit(sfu.args, "&", -1);
    g_assert_true(g_strv_contains((const char *const *)args, tok));
    g_assert_true(g_strv_contains((const char *const *)args, "protocol=17"));
    g_assert_true(g_strv_contains((const char *const *)args, "auto_subscribe=0"));
    g_assert_true(g_strv_contains((const char *const *)args, "adaptive_stream=0"));
    /* The server then never reuses a dormant m-line (webrtcbin 1.22 cannot take that). */
    g_assert_true(g_strv_contains((const char *const *)args, "browser=Safari"));
}

static void
test_ws_join_ping_leave(void)
{
    sfu_reset(SFU_NORMAL);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_cmpuint(hv_lk_signal_live_count(), ==, 1);
    g_assert_true(wait_for(joined_and_pinged, &r, WAIT_MS));
    g_assert_cmpint(r.joined, ==, 1);
    g_assert_cmpint(r.closed, ==, 0);
    g_assert_cmpint(sfu.legacy_pings, >=, 1);
    hv_lk_room_stats st;
    hv_lk_room_get_stats(r.room, &st);
    g_assert_true(st.joined);
    g_assert_cmpuint(st.messages_out, >=, 4);
    g_assert_cmpuint(st.messages_in, >=, 2);

    assert_upgrade_request();

    /* free: leave{CLIENT_INITIATED, DISCONNECT}, then close 1000, and no callback. */
    hv_lk_room_free(r.room);
    r.room = NULL;
    g_assert_true(wait_for(sfu_saw_leave_and_close, NULL, WAIT_MS));
    g_assert_cmpint(sfu.leaves, ==, 1);
    g_assert_cmpint(sfu.leave_reason, ==, LIVEKIT__DISCONNECT_REASON__CLIENT_INITIATED);
    g_assert_cmpint(sfu.leave_action, ==, LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT);
    g_assert_cmpint(sfu.close_code, ==, LWS_CLOSE_STATUS_NORMAL);
    run_for(50);
    g_assert_cmpint(r.closed, ==, 0);
    g_assert_cmpint(r.other_callbacks, ==, 0);
}

static bool
is_joined(void *data)
{
    return ((recorder *)data)->joined > 0;
}

/* Freeing from inside a callback that lws is running (on_joined comes from CLIENT_RECEIVE):
 * the leave still goes out, the socket closes with 1000, nothing else is called. */
static void
test_ws_free_inside_callback(void)
{
    sfu_reset(SFU_NORMAL);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    r.free_in_joined = true;
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(sfu_saw_leave_and_close, NULL, WAIT_MS));
    g_assert_null(r.room);
    g_assert_cmpint(r.joined, ==, 1);
    g_assert_cmpint(sfu.leave_reason, ==, LIVEKIT__DISCONNECT_REASON__CLIENT_INITIATED);
    g_assert_cmpint(sfu.close_code, ==, LWS_CLOSE_STATUS_NORMAL);
    run_for(50);
    g_assert_cmpint(r.closed + r.other_callbacks, ==, 0);
}

static void
test_ws_server_closes(void)
{
    sfu_reset(SFU_NORMAL);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_joined, &r, WAIT_MS));
    sfu.close_now = true;
    lws_callback_on_writable(sfu.conn);
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.reason, ==, HV_LK_SIGNAL_LOST);
    g_assert_true(r.retryable);
    g_assert_nonnull(strstr(r.detail, "closed"));
    run_for(50);
    g_assert_cmpint(r.closed, ==, 1);
    close_room(&r);
}

static void
expect_rejection(unsigned status, hv_lk_close_reason want, bool want_retryable)
{
    sfu_reset(SFU_REJECT);
    sfu.reject_status = status;
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.reason, ==, want);
    g_assert_cmpint(r.retryable, ==, want_retryable);
    g_autofree char *code = g_strdup_printf("HTTP %u", status);
    g_assert_nonnull(strstr(r.detail, code));
    g_assert_cmpint(r.joined, ==, 0);
    close_room(&r);
}

static void
test_ws_http_errors(void)
{
    expect_rejection(401, HV_LK_UNAUTHORIZED, false);
    expect_rejection(403, HV_LK_UNAUTHORIZED, false);
    /* Anything else (room missing, node full) is a connect failure worth retrying later. */
    expect_rejection(404, HV_LK_CONNECT_FAILED, true);
    expect_rejection(503, HV_LK_CONNECT_FAILED, true);
}

/* A host name goes through the asynchronous resolver ("localhost" comes from /etc/hosts, so
 * no DNS query leaves the machine), and the Host header keeps the name. */
static void
test_ws_host_name(void)
{
    sfu_reset(SFU_NORMAL);
    g_autofree char *url = g_strdup_printf("http://localhost:%d/", sfu.port);
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_joined, &r, WAIT_MS));
    g_assert_cmpstr(sfu.uri, ==, "/rtc");
    g_autofree char *want_host = g_strdup_printf("localhost:%d", sfu.port);
    g_assert_cmpstr(sfu.host, ==, want_host);
    close_room(&r);
}

static void
test_ws_refused(void)
{
    g_autofree char *url = g_strdup_printf("ws://127.0.0.1:%d/", refused_port());
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.reason, ==, HV_LK_CONNECT_FAILED);
    g_assert_true(r.retryable);
    close_room(&r);
}

/* wss: the TLS handshake runs, and a certificate no system CA vouches for is refused. */
static void
test_ws_tls_untrusted(void)
{
    if (tls_srv.pid <= 0) {
        g_test_skip("no `openssl s_server` to talk to");
        return;
    }
    g_autofree char *url = g_strdup_printf("wss://localhost:%d", tls_srv.port);
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.reason, ==, HV_LK_CONNECT_FAILED);
    g_assert_true(r.retryable);
    g_assert_cmpint(r.joined, ==, 0);
    close_room(&r);
}

static void
test_ws_bad_url(void)
{
    recorder r = {0};
    open_room(&r, "ftp://127.0.0.1/", WAIT_MS);
    g_assert_cmpint(r.closed, ==, 0); /* never from inside hv_lk_room_new */
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.reason, ==, HV_LK_CONNECT_FAILED);
    g_assert_false(r.retryable);
    close_room(&r);
}

static void
test_ws_free_while_connecting(void)
{
    /* Freed at once, before anything happened on the socket. */
    sfu_reset(SFU_NORMAL);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    close_room(&r);
    run_for(100);
    g_assert_cmpint(r.closed + r.joined + r.other_callbacks, ==, 0);

    /* Freed while the TCP connection is up but the upgrade is unanswered. */
    g_autofree char *silent_url = g_strdup_printf("ws://127.0.0.1:%d", silent_port);
    recorder r2 = {0};
    open_room(&r2, silent_url, WAIT_MS);
    run_for(100);
    g_assert_cmpuint(silent_conns->len, >=, 1);
    close_room(&r2);
    run_for(50);
    g_assert_cmpint(r2.closed + r2.joined + r2.other_callbacks, ==, 0);
}

static void
test_ws_connect_timeout(void)
{
    g_autofree char *url = g_strdup_printf("ws://127.0.0.1:%d", silent_port);
    recorder r = {0};
    int64_t start = g_get_monotonic_time();
    open_room(&r, url, 300);
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.reason, ==, HV_LK_CONNECT_TIMEOUT);
    g_assert_true(r.retryable);
    g_assert_nonnull(strstr(r.detail, "no WebSocket"));
    g_assert_cmpint(g_get_monotonic_time() - start, >=, (gint64)290 * 1000);
    close_room(&r);
}

static void
test_ws_join_timeout(void)
{
    sfu_reset(SFU_NO_JOIN);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, 300);
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.reason, ==, HV_LK_CONNECT_TIMEOUT);
    g_assert_nonnull(strstr(r.detail, "JoinResponse"));
    g_assert_cmpint(sfu.upgrades, ==, 1);
    close_room(&r);
}

static void
test_ws_fragmented_join(void)
{
    sfu_reset(SFU_FRAGMENTED_JOIN);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_joined, &r, WAIT_MS));
    g_assert_cmpint(r.closed, ==, 0);
    close_room(&r);
}

static bool
trickles_done(void *data)
{
    return sfu.trickles >= *(int *)data;
}

/* A burst of local candidates larger than the send queue (a host with many addresses, each
 * with UDP and TCP candidates) does not fail the room: the queue takes what it can but
 * HV_LK_QUEUE_RESERVE slots, the rest is dropped, and the connection goes on (pings still
 * sent and answered, even when the burst is slower than a ping interval, as under ASan). */
static void
test_ws_candidate_burst(void)
{
    sfu_reset(SFU_NORMAL);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_joined, &r, WAIT_MS));
    enum { BURST = HV_LK_MAX_QUEUED_MESSAGES + 500 };
    for (int i = 0; i < BURST; i++) {
        g_autofree char *cand = g_strdup_printf(
            "candidate:%d 1 UDP 2015363327 127.0.%d.%d 40000 typ host", i, i / 250, i % 250 + 1);
        hv_lk_room_send_candidate(r.room, cand, "0", 0);
    }
    int enough = HV_LK_MAX_QUEUED_MESSAGES - HV_LK_QUEUE_RESERVE - 10;
    bool done = wait_for(trickles_done, &enough, WAIT_MS);
    g_test_message("%d of %d candidates trickled after the wait", sfu.trickles, enough);
    g_assert_true(done);
    int pings = sfu.ping_reqs;
    g_assert_true(wait_for(joined_and_pinged, &r, WAIT_MS));
    run_for(200);
    g_test_message("burst of %d candidates: %d trickled, pings %d -> %d", BURST, sfu.trickles,
                   pings, sfu.ping_reqs);
    g_assert_cmpint(r.closed, ==, 0);
    g_assert_cmpint(sfu.trickles, <=, HV_LK_MAX_QUEUED_MESSAGES - HV_LK_QUEUE_RESERVE + 1);
    close_room(&r);
}

static void
test_ws_oversize(void)
{
    sfu_reset(SFU_OVERSIZE);
    g_autofree char *url = sfu_url();
    recorder r = {0};
    open_room(&r, url, WAIT_MS);
    g_assert_true(wait_for(is_closed, &r, WAIT_MS));
    g_assert_cmpint(r.joined, ==, 1);
    g_assert_cmpint(r.reason, ==, HV_LK_PROTOCOL_ERROR);
    g_assert_nonnull(strstr(r.detail, "larger"));
    close_room(&r);
    g_assert_true(wait_for(sfu_idle, NULL, WAIT_MS));
    /* The close frame says why, unless the server was still busy sending when the close grace
     * ran out (slow runs, valgrind): then the socket is just dropped. */
    if (sfu.close_code != 0) {
        g_assert_cmpint(sfu.close_code, ==, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE);
    }
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
    sfu_start();
    silent_start();
    if (!tls_srv_start()) {
        tls_srv_stop();
        g_test_message("no TLS listener (openssl missing or not starting)");
    }
    g_test_add_func("/livekit/ws/join-ping-leave", test_ws_join_ping_leave);
    g_test_add_func("/livekit/ws/free-inside-callback", test_ws_free_inside_callback);
    g_test_add_func("/livekit/ws/server-closes", test_ws_server_closes);
    g_test_add_func("/livekit/ws/http-errors", test_ws_http_errors);
    g_test_add_func("/livekit/ws/host-name", test_ws_host_name);
    g_test_add_func("/livekit/ws/refused", test_ws_refused);
    g_test_add_func("/livekit/ws/tls-untrusted-certificate", test_ws_tls_untrusted);
    g_test_add_func("/livekit/ws/bad-url", test_ws_bad_url);
    g_test_add_func("/livekit/ws/free-while-connecting", test_ws_free_while_connecting);
    g_test_add_func("/livekit/ws/connect-timeout", test_ws_connect_timeout);
    g_test_add_func("/livekit/ws/join-timeout", test_ws_join_timeout);
    g_test_add_func("/livekit/ws/fragmented-join", test_ws_fragmented_join);
    g_test_add_func("/livekit/ws/oversize-message", test_ws_oversize);
    g_test_add_func("/livekit/ws/candidate-burst", test_ws_candidate_burst);
    int rc = g_test_run();
    hv_lk_signal_shutdown();
    tls_srv_stop();
    silent_stop();
    sfu_stop();
    return rc;
}

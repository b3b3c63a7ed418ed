/* The viewer WebSocket: /api/live-sessions/ws/live/{mint_id}[?audio_rate=&audio_channels=].
 * Main thread only (lws callbacks on the GLib loop).
 *
 * Protocol (docs/API.md): the first message is a JSON text line {"type":"format",...}; then a
 * binary message is one complete JPEG, a text "audio:<base64>" one PCM chunk, and other JSON
 * text lines are events (video_size, reconnecting, resumed, ended). Text "ping" gets "pong".
 * Each connection is a hub viewer: one message per writable callback, in the hub's priority
 * order, so a slow socket holds at most the message lws is sending plus the hub's bounded
 * per-viewer state. Closes carry a code and a reason (table in docs/API.md).
 *
 * A viewer of a mint whose session another cluster node owns (hv_cluster_remote_owner_url) is
 * relayed to that node instead (ws_proxy.c), unless its upgrade came from a node's proxy
 * already (X-Haven-Proxied): then it closes as any mint without a session here does (4404).
 */
#include "http-private.h"

#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <libwebsockets.h>
#include <string.h>
#include <sys/socket.h>

#define WS_PREFIX             "/api/live-sessions/ws/live/"
#define WS_CLOSE_NO_SESSION   4404
/* The mint's session stopped for idleness a little while ago (the reason says so). */
#define WS_CLOSE_IDLE_STOPPED 4410
/* An encoded viewer's socket send buffer (the kernel doubles it): what the kernel may hold for
 * a viewer that reads slower than the stream. Linux grows it up to tcp_wmem's 4 MB otherwise,
 * about 10 s of a 3 Mbit/s stream, all of it latency, before the viewer's cursor falls behind
 * and the hub skips it to a key frame. 256 KB: about 1 s at 4 Mbit/s, and still 40 Mbit/s over
 * a 100 ms path. */
#define WS_ENCODED_SNDBUF     (256 * 1024)

G_STATIC_ASSERT(LWS_PRE <= HV_HUB_HEADROOM);

/* Log context of a viewer: the mint it watches and its id. */
#define W_CTX(w) (&(const hv_log_ctx){.mint = (w)->mint, .viewer = (w)->id})

static uint64_t next_viewer_id = 1; /* main thread only */

struct hv_ws_viewer {
    struct lws *wsi;
    uint64_t id; /* log context: viewer=N, per process from 1 */
    hv_hub_viewer *viewer;
    hv_ws_proxy *proxy; /* or: relayed to the node that owns the session */
    char mint[64];
    int close_code; /* != 0: close at the next writable callback */
    char close_reason[124];
    GString *rx;   /* a client message being reassembled (bounded) */
    size_t rx_max; /* HAVEN_MAX_VIEWER_MESSAGE */
};

bool
hv_ws_path_matches(const char *path)
{
    return g_str_has_prefix(path, WS_PREFIX);
}

int
hv_ws_admit(const hv_config *cfg, const hv_http_deps *deps, const char *path, char *why,
            size_t why_len)
{
    const char *mint = hv_ws_path_matches(path) ? path + strlen(WS_PREFIX) : "";
    bool valid = deps->live != NULL && hv_mint_id_is_valid(mint);
    hv_live_session *s = valid ? hv_live_find(deps->live, mint) : NULL;
    /* In a cluster a viewer without a local session may become a proxied one (ws_proxy.c),
     * which holds a bounded queue here: proxies count toward HAVEN_MAX_VIEWERS too. */
    bool maybe_proxied = s == NULL && valid && deps->cluster != NULL;
    if (s == NULL && !maybe_proxied) {
        return 0;
    }
    if (hv_live_viewer_count(deps->live) + hv_ws_proxy_live_count() >= (unsigned)cfg->max_viewers) {
        g_snprintf(why, why_len, "Too many viewers (limit %" G_GINT64_FORMAT "); try again later",
                   cfg->max_viewers);
        return 503;
    }
    if (s == NULL) {
        return 0; /* the owner node applies its per-session limit */
    }
    if (hv_hub_channel_viewer_count(hv_live_session_channel(s)) >=
        (unsigned)cfg->max_viewers_per_session) {
        g_snprintf(why, why_len,
                   "Too many viewers of this stream (limit %" G_GINT64_FORMAT
                   " per session); try again later",
                   cfg->max_viewers_per_session);
        return 503;
    }
    return 0;
}

static void
on_viewer_wake(void *user_data)
{
    hv_ws_viewer *w = user_data;
    lws_callback_on_writable(w->wsi);
}

static void
close_later(hv_ws_viewer *w, int code, const char *reason)
{
    if (w->close_code == 0) {
        w->close_code = code;
        g_strlcpy(w->close_reason, reason, sizeof(w->close_reason));
    }
    lws_callback_on_writable(w->wsi);
}

static bool
query_int(struct lws *wsi, const char *name, int def, int min, int max, int *out)
{
    char buf[64];
    *out = def;
    const char *v = lws_get_urlarg_by_name(wsi, name, buf, sizeof(buf));
    if (v == NULL) {
        return true;
    }
    /* lws returns the value after "name=": v points inside buf */
    int64_t n;
    if (!hv_parse_int64(v, &n) || n < min || n > max) {
        return false;
    }
    *out = (int)n;
    return true;
}

/* Collects the request's query ("name=value", URL-decoded) and makes the owner's URL. */
static char *
owner_viewer_url(struct lws *wsi, const char *owner, const char *mint)
{
    g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
    char frag[1024];
    for (int idx = 0;; idx++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, idx);
        if (n < 0) {
            break;
        }
        g_ptr_array_add(args, g_strndup(frag, (gsize)n));
    }
    g_ptr_array_add(args, NULL);
    g_autofree char *path = g_strconcat(WS_PREFIX, mint, NULL);
    return hv_ws_proxy_url(owner, path, (const char *const *)args->pdata);
}

/* When another node owns mint's session, makes w a proxied viewer and returns true. A request
 * that a node proxied already never is (no loops). */
static bool
try_proxy(hv_ws_viewer *w, struct lws *wsi, const hv_config *cfg, const hv_http_deps *deps,
          bool encoded)
{
    if (deps->cluster == NULL || hv_ws_proxy_request_is_proxied(wsi)) {
        return false;
    }
    g_autofree char *owner = hv_cluster_remote_owner_url(deps->cluster, w->mint);
    if (owner == NULL) {
        return false;
    }
    g_autofree char *url = owner_viewer_url(wsi, owner, w->mint);
    char auth[1024] = "";
    bool has_auth = lws_hdr_copy(wsi, auth, sizeof(auth), WSI_TOKEN_HTTP_AUTHORIZATION) > 0;
    const hv_ws_proxy_params params = {
        .url = url != NULL ? url : "",
        .authorization = has_auth ? auth : NULL,
        .encoded = encoded,
        .max_viewer_message = (size_t)cfg->max_viewer_message_bytes,
        .mint = w->mint,
        .viewer_id = w->id,
    };
    g_autoptr(GError) error = NULL;
    w->proxy = hv_ws_proxy_new(wsi, &params, &error);
    if (w->proxy == NULL) {
        HV_MESSAGE(W_CTX(w), "cannot proxy a viewer to %s: %s", owner, error->message);
        close_later(w, 1011, "owner node unreachable");
        return true;
    }
    HV_INFO(W_CTX(w), "viewer proxied to %s%s", owner, encoded ? " (encoded)" : "");
    return true;
}

static hv_ws_viewer *
viewer_open(struct lws *wsi, const hv_config *cfg, const hv_http_deps *deps)
{
    hv_ws_viewer *w = g_new0(hv_ws_viewer, 1);
    w->wsi = wsi;
    w->id = next_viewer_id++;
    w->rx_max = (size_t)cfg->max_viewer_message_bytes;
    char path[256] = "";
    lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
    const char *mint = hv_ws_path_matches(path) ? path + strlen(WS_PREFIX) : "";
    g_strlcpy(w->mint, mint, sizeof(w->mint));
    int rate = 0, channels = 0;
    if (!hv_mint_id_is_valid(mint)) {
        close_later(w, 1008, "invalid mint_id");
        return w;
    }
    if (!query_int(wsi, "audio_rate=", 44100, 8000, 96000, &rate)) {
        close_later(w, 1008, "invalid audio_rate: must be a whole number from 8000 to 96000");
        return w;
    }
    if (!query_int(wsi, "audio_channels=", 1, 1, 2, &channels)) {
        close_later(w, 1008, "invalid audio_channels: must be 1 or 2");
        return w;
    }
    /* ?mode=encoded: the stream's own frames (WebCodecs); jpeg (the default): the seed's. */
    char mode[16];
    const char *m = lws_get_urlarg_by_name(wsi, "mode=", mode, sizeof(mode));
    if (m != NULL && strcmp(m, "jpeg") != 0 && strcmp(m, "encoded") != 0) {
        close_later(w, 1008, "invalid mode: must be jpeg or encoded");
        return w;
    }
    bool encoded = m != NULL && strcmp(m, "encoded") == 0;
    hv_live_session *s = deps->live != NULL ? hv_live_find(deps->live, mint) : NULL;
    if (s == NULL && try_proxy(w, wsi, cfg, deps, encoded)) {
        return w;
    }
    const char *ended =
        s == NULL && deps->live != NULL ? hv_live_recent_end(deps->live, mint) : NULL;
    if (ended != NULL) {
        close_later(w, WS_CLOSE_IDLE_STOPPED, ended);
        return w;
    }
    if (s == NULL) {
        g_autofree char *reason = g_strdup_printf("no active session for mint_id %.60s", mint);
        close_later(w, WS_CLOSE_NO_SESSION, reason);
        return w;
    }
    hv_hub_channel *ch = hv_live_session_channel(s);
    if (encoded) {
        int sndbuf = WS_ENCODED_SNDBUF;
        lws_sockfd_type fd = lws_get_socket_fd(wsi);
        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0) {
            HV_DEBUG(W_CTX(w), "SO_SNDBUF not set: %s", g_strerror(errno));
        }
        /* The hub sends the format message in force where this viewer starts. */
        w->viewer = hv_hub_viewer_new_encoded(ch, on_viewer_wake, w);
        HV_INFO(W_CTX(w), "viewer connected (encoded)");
        return w;
    }
    w->viewer = hv_hub_viewer_new(ch, rate, channels, on_viewer_wake, w);
    int width = 0, height = 0;
    hv_hub_channel_video_size(ch, &width, &height);
    g_autoptr(json_t) fmt =
        json_pack("{s:s, s:s, s:{s:s, s:i, s:i, s:s, s:s}, s:{s:s, s:o, s:o}}", "type", "format",
                  "mint_id", mint, "audio", "format", "s16le", "rate", rate, "channels", channels,
                  "encoding", "base64", "prefix", "audio:", "video", "format", "jpeg", "width",
                  width > 0 ? json_integer(width) : json_null(), "height",
                  height > 0 ? json_integer(height) : json_null());
    g_autofree char *text = json_dumps(fmt, JSON_COMPACT);
    hv_hub_viewer_push_text(w->viewer, text);
    HV_INFO(W_CTX(w), "viewer connected (audio %d Hz x %d)", rate, channels);
    return w;
}

static void
viewer_free(hv_ws_viewer *w)
{
    if (w == NULL) {
        return;
    }
    if (w->viewer != NULL) {
        hv_hub_viewer_stats st;
        hv_hub_viewer_get_stats(w->viewer, &st);
        HV_INFO(W_CTX(w),
                "viewer gone: video sent %" G_GUINT64_FORMAT " dropped %" G_GUINT64_FORMAT
                ", audio sent %" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT " bytes",
                st.video_sent, st.video_dropped, st.audio_sent, st.bytes_sent);
    }
    hv_hub_viewer_free(w->viewer);
    hv_ws_proxy_free(w->proxy);
    if (w->rx != NULL) {
        g_string_free(w->rx, TRUE);
    }
    g_free(w);
}

static int
close_now(struct lws *wsi, int code, const char *reason)
{
    lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    return -1;
}

/* Writes what the viewer has pending, several messages per writable callback while the socket
 * takes them (lws_send_pipe_choked), at most WS_WRITES_PER_CALLBACK: one poll round trip per
 * message would make the loop, not the network, the limit with hundreds of viewers. */
#define WS_WRITES_PER_CALLBACK 16

static int
on_writable(hv_ws_viewer *w)
{
    if (w->close_code != 0) {
        return close_now(w->wsi, w->close_code, w->close_reason);
    }
    if (w->proxy != NULL) {
        return hv_ws_proxy_on_writable(w->proxy);
    }
    if (w->viewer == NULL) {
        return 0;
    }
    for (int i = 0; i < WS_WRITES_PER_CALLBACK; i++) {
        if (i > 0 && lws_send_pipe_choked(w->wsi)) {
            break;
        }
        hv_hub_msg *m = NULL;
        const char *reason = NULL;
        switch (hv_hub_viewer_next(w->viewer, &m, &reason)) {
        case HV_HUB_SEND: {
            size_t len = hv_hub_msg_len(m);
            int n = lws_write(w->wsi, hv_hub_msg_data(m), len,
                              hv_hub_msg_is_binary(m) ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
            hv_hub_msg_unref(m);
            if (n < (int)len) {
                return -1;
            }
            break;
        }
        case HV_HUB_CULLED:
            HV_MESSAGE(W_CTX(w), "closing a viewer: %s", reason);
            return close_now(w->wsi, 1008, reason);
        case HV_HUB_CLOSED:
            return close_now(w->wsi, 1000, reason);
        case HV_HUB_NOTHING:
        default:
            return 0;
        }
    }
    if (hv_hub_viewer_has_pending(w->viewer)) {
        lws_callback_on_writable(w->wsi);
    }
    return 0;
}

static int
on_receive(hv_ws_viewer *w, const void *in, size_t len)
{
    if (w->proxy != NULL) {
        return hv_ws_proxy_on_receive(w->proxy, in, len);
    }
    if (w->rx == NULL) {
        w->rx = g_string_new(NULL);
    }
    if (w->rx->len + len > w->rx_max) {
        char reason[64];
        g_snprintf(reason, sizeof(reason), "message too big (limit %zu bytes)", w->rx_max);
        return close_now(w->wsi, 1009, reason);
    }
    g_string_append_len(w->rx, in, (gssize)len);
    if (!lws_is_final_fragment(w->wsi) || lws_remaining_packet_payload(w->wsi) > 0) {
        return 0;
    }
    if (w->viewer != NULL && strcmp(w->rx->str, "ping") == 0) {
        hv_hub_viewer_push_text(w->viewer, "pong");
    }
    /* Anything else from a viewer is ignored: the protocol is one-way. */
    g_string_truncate(w->rx, 0);
    return 0;
}

int
hv_ws_callback(struct lws *wsi, int reason, hv_ws_viewer **slot, const hv_config *cfg,
               const hv_http_deps *deps, void *in, size_t len)
{
    switch ((enum lws_callback_reasons)reason) {
    case LWS_CALLBACK_ESTABLISHED:
        *slot = viewer_open(wsi, cfg, deps);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return *slot != NULL ? on_writable(*slot) : 0;
    case LWS_CALLBACK_RECEIVE:
        return *slot != NULL ? on_receive(*slot, in, len) : 0;
    case LWS_CALLBACK_CLOSED:
        viewer_free(*slot);
        *slot = NULL;
        return 0;
    default:
        return 0;
    }
}

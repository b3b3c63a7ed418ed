/* Fuzz target: the viewer WebSocket (src/http/ws_viewer.c): the request URI with its mint and
 * query parameters (audio_rate, audio_channels), then text messages from the viewer (split in
 * fragments, reassembled, bounded), interleaved with writable callbacks, through hv_ws_callback
 * exactly as server.c calls it. libwebsockets is replaced by a model of the few calls the file
 * makes (linked with -Wl,--wrap, see meson.build), and the live manager by a fake that has a
 * session, with a real hub channel, for the mints of the fixture roster.
 *
 * Input: the request URI on the first line ("/api/live-sessions/ws/live/<mint>?a=b&c=d"; the
 * query is split at '&' and URL-decoded, as lws stores it), then operations:
 *     [op] [u16 big-endian length] [bytes]   op & 3 == 0: a received fragment (these bytes);
 *                                            op & 4: it is the final fragment; op & 8: lws
 *                                            says more of this frame's payload is coming
 *     [op]                                   op & 3 == 1: a writable callback (op & 4: the
 *                                            socket is choked after the first write;
 *                                            op & 8: lws_write fails)
 *                                            op & 3 == 2: the stream publishes a JPEG, audio
 *                                            in the viewer's format and an event
 *                                            op & 3 == 3: the session ends (channel freed)
 * A callback returning -1 closes the connection, as lws would. Oracles: no crash, no critical,
 * close reasons fit a close frame (123 bytes), and only whole messages are written.
 */
#include "fuzz-common.h"
#include "http/http-private.h"

#include "core/util.h"

#include <jansson.h>
#include <libwebsockets.h>

/* The mints with a session: the fixture roster's first two. */
static const char *const live_mints[] = {"7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump",
                                         "4odAMtm92RnFU3V3kLb9ZdJSUsraFCas1vx9CxVxpump"};

typedef struct {
    char *uri;
    GPtrArray *args; /* URL-decoded query fragments */
    bool final_fragment;
    size_t remaining;
    bool choked, write_fails;
    int writes;
    int close_code;
    unsigned wakes;
} fake_wsi;

static struct {
    hv_config *cfg;
    hv_hub_channel *channel;
    hv_http_deps deps;
    int session_tag;
} world;

static void
video_needed(bool needed, void *ud)
{
    (void)needed;
    (void)ud;
}

static void
audio_needed(int rate, int channels, bool needed, void *ud)
{
    (void)needed;
    (void)ud;
    if (rate < 8000 || rate > 96000 || channels < 1 || channels > 2) {
        abort(); /* the viewer's parameters reached the hub unchecked */
    }
}

static const hv_hub_channel_callbacks channel_cb = {video_needed, audio_needed, NULL, NULL};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_setup_logging();
    char *args[] = {(char *)"haven", NULL};
    char *envp[] = {NULL};
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    world.cfg = hv_config_load(1, args, envp, &action, &error);
    if (world.cfg == NULL) {
        g_error("fuzz config: %s", error->message);
    }
    world.channel = hv_hub_channel_new(100, &channel_cb, NULL);
    world.deps.live = (hv_live *)&world.session_tag;
    world.deps.version = "0.0.0-fuzz";
    return 0;
}

/* ---- the fake live manager ------------------------------------------------------------------ */

hv_live_session *__wrap_hv_live_find(hv_live *live, const char *mint_id);
hv_live_session *
__wrap_hv_live_find(hv_live *live, const char *mint_id)
{
    (void)live;
    if (!hv_mint_id_is_valid(mint_id)) {
        abort(); /* the viewer code validates the mint first */
    }
    for (size_t i = 0; i < G_N_ELEMENTS(live_mints); i++) {
        if (strcmp(mint_id, live_mints[i]) == 0) {
            return (hv_live_session *)&world.session_tag;
        }
    }
    return NULL;
}

const char *__wrap_hv_live_recent_end(hv_live *live, const char *mint_id);
const char *
__wrap_hv_live_recent_end(hv_live *live, const char *mint_id)
{
    (void)live;
    (void)mint_id;
    return NULL; /* no session ended recently */
}

unsigned __wrap_hv_live_viewer_count(hv_live *live);
unsigned
__wrap_hv_live_viewer_count(hv_live *live)
{
    (void)live;
    return hv_hub_channel_viewer_count(world.channel);
}

hv_hub_channel *__wrap_hv_live_session_channel(hv_live_session *s);
hv_hub_channel *
__wrap_hv_live_session_channel(hv_live_session *s)
{
    if (s != (hv_live_session *)&world.session_tag) {
        abort();
    }
    return world.channel;
}

/* ---- a model of the libwebsockets 4.1 calls ws_viewer.c makes -------------------------------- */

int __wrap_lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h);
int
__wrap_lws_hdr_copy(struct lws *wsi, char *dest, int len, enum lws_token_indexes h)
{
    fake_wsi *f = (fake_wsi *)wsi;
    if (h != WSI_TOKEN_GET_URI) {
        return -1;
    }
    int n = (int)strlen(f->uri);
    if (n >= len) {
        return -1; /* lws: the header does not fit, nothing copied */
    }
    memcpy(dest, f->uri, (size_t)n + 1);
    return n;
}

const char *__wrap_lws_get_urlarg_by_name(struct lws *wsi, const char *name, char *buf, int len);
const char *
__wrap_lws_get_urlarg_by_name(struct lws *wsi, const char *name, char *buf, int len)
{
    /* lws 4.1: walks the fragments with lws_hdr_copy_fragment, which fails (ending the walk)
     * for a fragment that does not fit in buf; the first fragment starting with name wins. */
    fake_wsi *f = (fake_wsi *)wsi;
    size_t sl = strlen(name);
    for (guint i = 0; i < f->args->len; i++) {
        const char *frag = g_ptr_array_index(f->args, i);
        size_t n = strlen(frag);
        if ((int)n >= len) {
            return NULL;
        }
        memcpy(buf, frag, n + 1);
        if (strncmp(buf, name, sl) == 0) {
            return buf + sl;
        }
    }
    return NULL;
}

int __wrap_lws_callback_on_writable(struct lws *wsi);
int
__wrap_lws_callback_on_writable(struct lws *wsi)
{
    ((fake_wsi *)wsi)->wakes++;
    return 1;
}

void __wrap_lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf,
                             size_t len);
void
__wrap_lws_close_reason(struct lws *wsi, enum lws_close_status status, unsigned char *buf,
                        size_t len)
{
    fake_wsi *f = (fake_wsi *)wsi;
    /* A close frame's payload is at most 125 bytes: the 2-byte code and the reason. */
    if (len > 123 || (len > 0 && buf == NULL) || status < 1000 || status > 4999) {
        fprintf(stderr, "close %d with a %zu-byte reason\n", (int)status, len);
        abort();
    }
    f->close_code = (int)status;
}

int __wrap_lws_send_pipe_choked(struct lws *wsi);
int
__wrap_lws_send_pipe_choked(struct lws *wsi)
{
    return ((fake_wsi *)wsi)->choked;
}

int __wrap_lws_write(struct lws *wsi, unsigned char *buf, size_t len, enum lws_write_protocol wp);
int
__wrap_lws_write(struct lws *wsi, unsigned char *buf, size_t len, enum lws_write_protocol wp)
{
    fake_wsi *f = (fake_wsi *)wsi;
    if (buf == NULL || (wp != LWS_WRITE_TEXT && wp != LWS_WRITE_BINARY)) {
        abort();
    }
    if (len > 0) {
        /* touch the whole message, and the LWS_PRE bytes lws may write in front of it */
        volatile unsigned char sum = 0;
        for (size_t i = 0; i < len; i++) {
            sum ^= buf[i];
        }
        buf[-1] = buf[-(int)LWS_PRE];
        (void)sum;
    }
    f->writes++;
    return f->write_fails ? -1 : (int)len;
}

int __wrap_lws_is_final_fragment(struct lws *wsi);
int
__wrap_lws_is_final_fragment(struct lws *wsi)
{
    return ((fake_wsi *)wsi)->final_fragment;
}

size_t __wrap_lws_remaining_packet_payload(struct lws *wsi);
size_t
__wrap_lws_remaining_packet_payload(struct lws *wsi)
{
    return ((fake_wsi *)wsi)->remaining;
}

/* ---- the connection ------------------------------------------------------------------------- */

static void
publish(int rate, int channels)
{
    static const uint8_t jpeg[] = {0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10,
                                   'J',  'F',  'I',  'F',  0xff, 0xd9};
    g_autoptr(hv_hub_msg) v = hv_hub_msg_new_copy(true, jpeg, sizeof(jpeg));
    hv_hub_channel_publish_video(world.channel, v, 640, 360);
    static const uint8_t pcm[64] = {0};
    g_autoptr(hv_hub_msg) a = hv_hub_msg_new_audio_text(pcm, sizeof(pcm));
    hv_hub_channel_publish_audio(world.channel, rate, channels, a);
    hv_hub_channel_publish_event(world.channel, "{\"type\":\"video_size\",\"width\":640}");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t first = 0;
    while (first < size && data[first] != '\n') {
        first++;
    }
    g_autofree char *line = hv_fuzz_strndup(data, first);
    size_t pos = first < size ? first + 1 : size;

    fake_wsi f = {0};
    char *q = strchr(line, '?');
    f.args = g_ptr_array_new_with_free_func(g_free);
    if (q != NULL) {
        *q = '\0';
        g_auto(GStrv) args = g_strsplit(q + 1, "&", -1);
        for (char **a = args; *a != NULL; a++) {
            if (**a != '\0') {
                char *arg = g_strdup(*a);
                hv_fuzz_url_decode(arg, true);
                g_ptr_array_add(f.args, arg);
            }
        }
    }
    f.uri = line;
    if (!hv_ws_path_matches(f.uri)) {
        g_ptr_array_unref(f.args);
        return 0; /* server.c refuses the upgrade */
    }
    /* server.c's upgrade admission (viewer limits), then the WebSocket */
    char why[160];
    if (hv_ws_admit(world.cfg, &world.deps, f.uri, why, sizeof(why)) != 0) {
        if (strlen(why) >= sizeof(why) - 1) {
            abort();
        }
        g_ptr_array_unref(f.args);
        return 0;
    }
    struct lws *wsi = (struct lws *)&f;
    hv_ws_viewer *slot = NULL;
    bool open =
        hv_ws_callback(wsi, LWS_CALLBACK_ESTABLISHED, &slot, world.cfg, &world.deps, NULL, 0) == 0;
    int rate = 48000, channels = 2;
    while (open && pos < size) {
        uint8_t op = data[pos++];
        int rc = 0;
        switch (op & 3) {
        case 0: {
            size_t len = 0;
            if (pos + 2 <= size) {
                len = ((size_t)data[pos] << 8) | data[pos + 1];
                pos += 2;
            }
            len = MIN(len, size - pos);
            /* lws hands over a copy with room for a NUL it does not write */
            g_autofree uint8_t *frag = g_malloc(len + 1);
            memcpy(frag, data + pos, len);
            pos += len;
            f.final_fragment = (op & 4) != 0;
            f.remaining = (op & 8) ? 1 : 0;
            rc =
                hv_ws_callback(wsi, LWS_CALLBACK_RECEIVE, &slot, world.cfg, &world.deps, frag, len);
            break;
        }
        case 1:
            f.choked = (op & 4) != 0;
            f.write_fails = (op & 8) != 0;
            rc = hv_ws_callback(wsi, LWS_CALLBACK_SERVER_WRITEABLE, &slot, world.cfg, &world.deps,
                                NULL, 0);
            break;
        case 2:
            publish(rate, channels);
            rate = rate == 48000 ? 44100 : 48000;
            break;
        default:
            hv_hub_channel_free(world.channel, "session stopped");
            world.channel = hv_hub_channel_new(100, &channel_cb, NULL);
            break;
        }
        if (rc != 0) {
            open = false; /* lws closes the connection */
        }
    }
    /* a last writable callback delivers what is pending, then the connection closes */
    if (open) {
        (void)hv_ws_callback(wsi, LWS_CALLBACK_SERVER_WRITEABLE, &slot, world.cfg, &world.deps,
                             NULL, 0);
    }
    hv_ws_callback(wsi, LWS_CALLBACK_CLOSED, &slot, world.cfg, &world.deps, NULL, 0);
    if (slot != NULL) {
        abort();
    }
    g_ptr_array_unref(f.args);
    return 0;
}

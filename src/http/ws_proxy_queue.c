/* The viewer proxy's pure parts (ws_proxy.c has the relay): the bounded message queue toward
 * a viewer, with its drop rule (oldest video first; in encoded mode up to the next key frame;
 * text never), and the upstream URL. No lws connection, no loop: unit-tested on their own
 * (tests/unit/test-ws-proxy.c). Main thread only, like the proxy.
 */
#include "http-private.h"

#include <libwebsockets.h>
#include <string.h>

/* ---- the bounded message queue (pure) ------------------------------------------------------ */

typedef struct {
    GByteArray *buf; /* HV_WS_PROXY_HEADROOM bytes, then the payload */
    bool binary;
    bool video; /* a droppable video frame (JPEG mode: every binary message) */
    bool key;   /* encoded mode: a video key frame */
} queued_msg;

struct hv_ws_proxy_queue {
    GQueue msgs; /* queued_msg*, oldest first */
    size_t bytes;
    unsigned max_messages;
    size_t max_bytes;
    hv_ws_proxy_drop drop;
    bool await_key; /* encoded: video was dropped; video passes again from a key frame */
    uint64_t dropped;
};

hv_ws_proxy_queue *
hv_ws_proxy_queue_new(unsigned max_messages, size_t max_bytes, hv_ws_proxy_drop drop)
{
    hv_ws_proxy_queue *q = g_new0(hv_ws_proxy_queue, 1);
    g_queue_init(&q->msgs);
    q->max_messages = max_messages;
    q->max_bytes = max_bytes;
    q->drop = drop;
    return q;
}

static size_t
payload_len(const GByteArray *buf)
{
    return buf->len - HV_WS_PROXY_HEADROOM;
}

static void
queued_msg_free(queued_msg *m)
{
    g_byte_array_unref(m->buf);
    g_free(m);
}

void
hv_ws_proxy_queue_free(hv_ws_proxy_queue *q)
{
    if (q == NULL) {
        return;
    }
    queued_msg *m = NULL;
    while ((m = g_queue_pop_head(&q->msgs)) != NULL) {
        queued_msg_free(m);
    }
    g_free(q);
}

static void
remove_link(hv_ws_proxy_queue *q, GList *l)
{
    queued_msg *m = l->data;
    q->bytes -= payload_len(m->buf);
    q->dropped++;
    queued_msg_free(m);
    g_queue_delete_link(&q->msgs, l);
}

/* Drops one droppable message, the oldest video first (encoded: with the frames that depend on
 * it, up to the next key frame), else the oldest other binary one. False: only text is left. */
static bool
drop_one(hv_ws_proxy_queue *q)
{
    GList *video = NULL, *other = NULL;
    for (GList *l = q->msgs.head; l != NULL && video == NULL; l = l->next) {
        const queued_msg *m = l->data;
        if (m->video) {
            video = l;
        } else if (m->binary && other == NULL) {
            other = l;
        }
    }
    if (video == NULL) {
        if (other == NULL) {
            return false;
        }
        remove_link(q, other);
        return true;
    }
    GList *next = video->next;
    remove_link(q, video);
    if (q->drop != HV_WS_PROXY_DROP_ENCODED) {
        return true;
    }
    /* The frames after it up to the next key frame cannot be decoded without it. */
    while (next != NULL) {
        const queued_msg *m = next->data;
        GList *after = next->next;
        if (m->video && m->key) {
            return true;
        }
        if (m->video) {
            remove_link(q, next);
        }
        next = after;
    }
    q->await_key = true; /* no key frame queued: the next one that arrives */
    return true;
}

static void
classify(const hv_ws_proxy_queue *q, queued_msg *m)
{
    if (!m->binary || q->drop == HV_WS_PROXY_DROP_NONE) {
        return;
    }
    if (q->drop == HV_WS_PROXY_DROP_JPEG) {
        m->video = true;
        return;
    }
    /* Encoded: a 10-byte header, byte 0 the kind (1 video), byte 1 the flags (bit 0 key). */
    const uint8_t *p = m->buf->data + HV_WS_PROXY_HEADROOM;
    if (payload_len(m->buf) >= 10 && p[0] == 1) {
        m->video = true;
        m->key = (p[1] & 1) != 0;
    }
}

bool
hv_ws_proxy_queue_push(hv_ws_proxy_queue *q, GByteArray *buf, bool binary)
{
    queued_msg *m = g_new0(queued_msg, 1);
    m->buf = buf;
    m->binary = binary;
    classify(q, m);
    if (m->video && q->await_key) {
        if (!m->key) {
            q->dropped++;
            queued_msg_free(m);
            return true;
        }
        q->await_key = false;
    }
    g_queue_push_tail(&q->msgs, m);
    q->bytes += payload_len(buf);
    while (q->msgs.length > q->max_messages || q->bytes > q->max_bytes) {
        if (q->drop == HV_WS_PROXY_DROP_NONE || !drop_one(q)) {
            return false;
        }
    }
    return true;
}

GByteArray *
hv_ws_proxy_queue_pop(hv_ws_proxy_queue *q, bool *binary)
{
    queued_msg *m = g_queue_pop_head(&q->msgs);
    if (m == NULL) {
        return NULL;
    }
    GByteArray *buf = m->buf;
    *binary = m->binary;
    q->bytes -= payload_len(buf);
    g_free(m);
    return buf;
}

unsigned
hv_ws_proxy_queue_length(const hv_ws_proxy_queue *q)
{
    return q->msgs.length;
}

size_t
hv_ws_proxy_queue_bytes(const hv_ws_proxy_queue *q)
{
    return q->bytes;
}

uint64_t
hv_ws_proxy_queue_dropped(const hv_ws_proxy_queue *q)
{
    return q->dropped;
}

/* ---- the upstream URL (pure) and the loop guard
 * --------------------------------------------------------------- */

char *
hv_ws_proxy_url(const char *owner_base, const char *path, const char *const *args)
{
    const char *rest = NULL;
    const char *scheme = NULL;
    if (g_str_has_prefix(owner_base, "http://")) {
        scheme = "ws://", rest = owner_base + 7;
    } else if (g_str_has_prefix(owner_base, "ws://")) {
        scheme = "ws://", rest = owner_base + 5;
    } else {
        return NULL; /* https: see the client context's comment */
    }
    GString *url = g_string_new(scheme);
    g_string_append(url, rest);
    while (url->len > strlen(scheme) && url->str[url->len - 1] == '/') {
        g_string_truncate(url, url->len - 1);
    }
    g_string_append(url, path);
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        const char *eq = strchr(args[i], '=');
        g_autofree char *name =
            eq != NULL ? g_strndup(args[i], (gsize)(eq - args[i])) : g_strdup(args[i]);
        g_autofree char *ename = g_uri_escape_string(name, NULL, FALSE);
        g_string_append_c(url, i == 0 ? '?' : '&');
        g_string_append(url, ename);
        if (eq != NULL) {
            g_autofree char *evalue = g_uri_escape_string(eq + 1, NULL, FALSE);
            g_string_append_c(url, '=');
            g_string_append(url, evalue);
        }
    }
    return g_string_free(url, FALSE);
}

bool
hv_ws_proxy_request_is_proxied(struct lws *wsi)
{
    static const char name[] = "x-haven-proxied:";
    return lws_hdr_custom_length(wsi, name, (int)strlen(name)) > 0;
}

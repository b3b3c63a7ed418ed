/* Rendered answers shared between requests: each list answer built from one roster is kept,
 * with a gzip copy, until the roster is replaced. Requests hold a reference to the body they
 * send, so nothing is copied per request and a roster swap never frees a body mid-write.
 *
 * Main thread only. Bounded: at most HV_HTTP_BODY_CACHE_MAX answers; the cache is emptied when
 * full (the keys are few in practice: a handful of offset/limit/nsfw combinations).
 */
#include "http-private.h"

#include <libwebsockets.h>
#include <string.h>
#include <zlib.h>

/* A body is an hv_buf (core/buf.h) holding the identity bytes; its metadata points to the
 * gzip copy, another hv_buf (NULL when compression did not pay off), released with it. */
typedef struct {
    hv_buf *gzip;
} body_meta;

struct hv_http_body_cache {
    hv_pf_roster *roster; /* the roster every cached body was built from (ref held) */
    GHashTable *bodies;   /* key → hv_http_body* (ref) */
};

static hv_buf *
gzip_copy(const char *data, size_t len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    uLong bound = deflateBound(&zs, (uLong)len);
    hv_buf *out = hv_buf_new(bound, 0);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = hv_buf_data(out);
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    size_t out_len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END || out_len >= len) {
        hv_buf_unref(out);
        return NULL;
    }
    hv_buf_truncate(out, out_len);
    return out;
}

G_STATIC_ASSERT(HV_BUF_HEADROOM >= LWS_PRE);

hv_http_body *
hv_http_body_new(const char *data, size_t len, bool compress)
{
    hv_http_body *b = hv_buf_new(len, sizeof(body_meta));
    memcpy(hv_buf_data(b), data, len);
    if (compress && len >= HV_HTTP_GZIP_MIN_BYTES) {
        body_meta *m = hv_buf_meta(b);
        m->gzip = gzip_copy(data, len);
        if (m->gzip != NULL) {
            hv_buf_set_release(b, (GDestroyNotify)hv_buf_unref, m->gzip);
        }
    }
    return b;
}

hv_http_body *
hv_http_body_ref(hv_http_body *b)
{
    return hv_buf_ref(b);
}

void
hv_http_body_unref(hv_http_body *b)
{
    hv_buf_unref(b);
}

const uint8_t *
hv_http_body_data(const hv_http_body *b, bool gzip, size_t *len)
{
    const body_meta *m = hv_buf_meta_const(b);
    const hv_buf *which = gzip && m->gzip != NULL ? m->gzip : b;
    *len = hv_buf_len(which);
    return hv_buf_data_const(which); /* with HV_BUF_HEADROOM (>= LWS_PRE) in front */
}

bool
hv_http_body_has_gzip(const hv_http_body *b)
{
    return ((const body_meta *)hv_buf_meta_const(b))->gzip != NULL;
}

hv_http_body_cache *
hv_http_body_cache_new(void)
{
    hv_http_body_cache *c = g_new0(hv_http_body_cache, 1);
    c->bodies =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)hv_http_body_unref);
    return c;
}

void
hv_http_body_cache_free(hv_http_body_cache *c)
{
    if (c == NULL) {
        return;
    }
    g_hash_table_destroy(c->bodies);
    hv_pf_roster_unref(c->roster);
    g_free(c);
}

static void
switch_roster(hv_http_body_cache *c, hv_pf_roster *roster)
{
    if (c->roster != roster) {
        g_hash_table_remove_all(c->bodies);
        hv_pf_roster_unref(c->roster);
        c->roster = hv_pf_roster_ref(roster);
    }
}

hv_http_body *
hv_http_body_cache_get(hv_http_body_cache *c, hv_pf_roster *roster, const char *key)
{
    switch_roster(c, roster);
    return g_hash_table_lookup(c->bodies, key);
}

void
hv_http_body_cache_put(hv_http_body_cache *c, hv_pf_roster *roster, const char *key,
                       hv_http_body *body)
{
    switch_roster(c, roster);
    if (g_hash_table_size(c->bodies) >= HV_HTTP_BODY_CACHE_MAX) {
        g_hash_table_remove_all(c->bodies);
    }
    g_hash_table_replace(c->bodies, g_strdup(key), body);
}

unsigned
hv_http_body_cache_size(const hv_http_body_cache *c)
{
    return g_hash_table_size(c->bodies);
}

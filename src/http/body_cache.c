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

struct hv_http_body {
    uint8_t *identity; /* LWS_PRE headroom, then the payload */
    size_t identity_len;
    uint8_t *gzip; /* NULL when compression did not pay off */
    size_t gzip_len;
};

struct hv_http_body_cache {
    hv_pf_roster *roster; /* the roster every cached body was built from (ref held) */
    GHashTable *bodies;   /* key → hv_http_body* (ref) */
};

static uint8_t *
gzip_with_headroom(const char *data, size_t len, size_t *out_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return NULL;
    }
    uLong bound = deflateBound(&zs, (uLong)len);
    uint8_t *out = g_malloc(LWS_PRE + bound);
    zs.next_in = (Bytef *)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out + LWS_PRE;
    zs.avail_out = (uInt)bound;
    int rc = deflate(&zs, Z_FINISH);
    *out_len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END || *out_len >= len) {
        g_free(out);
        return NULL;
    }
    return out;
}

hv_http_body *
hv_http_body_new(const char *data, size_t len, bool compress)
{
    hv_http_body *b = g_atomic_rc_box_new0(hv_http_body);
    b->identity = g_malloc(LWS_PRE + len + 1);
    memcpy(b->identity + LWS_PRE, data, len);
    b->identity_len = len;
    if (compress && len >= HV_HTTP_GZIP_MIN_BYTES) {
        b->gzip = gzip_with_headroom(data, len, &b->gzip_len);
    }
    return b;
}

hv_http_body *
hv_http_body_ref(hv_http_body *b)
{
    return g_atomic_rc_box_acquire(b);
}

static void
body_clear(gpointer p)
{
    hv_http_body *b = p;
    g_free(b->identity);
    g_free(b->gzip);
}

void
hv_http_body_unref(hv_http_body *b)
{
    if (b != NULL) {
        g_atomic_rc_box_release_full(b, body_clear);
    }
}

const uint8_t *
hv_http_body_data(const hv_http_body *b, bool gzip, size_t *len)
{
    if (gzip && b->gzip != NULL) {
        *len = b->gzip_len;
        return b->gzip + LWS_PRE;
    }
    *len = b->identity_len;
    return b->identity + LWS_PRE;
}

bool
hv_http_body_has_gzip(const hv_http_body *b)
{
    return b->gzip != NULL;
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

/* An in-memory world for the HTTP fuzz targets: the real route table, handlers, validators and
 * response code of src/http run against
 *   - a configuration from hv_config_load (no web directory, recordings directory absent),
 *   - a real store on SQLite ":memory:" holding a few coins (no recordings, so no file is
 *     opened),
 *   - a fake catalog and live manager that answer at once from a fixed roster (three streams
 *     from tests/data/pumpfun/currently-live.json, one NSFW), linked in place of the real ones
 *     with the linker's --wrap (see meson.build): nothing reaches the network or the disk.
 * Main thread; one request at a time.
 */
#ifndef HV_FUZZ_HTTP_FAKE_H
#define HV_FUZZ_HTTP_FAKE_H

#include "http/http-private.h"

/* How the fake catalog answers (the route target's "X-Fuzz-Upstream:" line). */
typedef enum {
    HV_FUZZ_UPSTREAM_FRESH,
    HV_FUZZ_UPSTREAM_STALE, /* cached data past its TTL, with the last upstream error */
    HV_FUZZ_UPSTREAM_NONE,  /* nothing cached, no error known yet */
    HV_FUZZ_UPSTREAM_ERROR, /* nothing cached: the error a refresh with upstream_body gave */
    HV_FUZZ_UPSTREAM_RATE_LIMITED,
} hv_fuzz_upstream;

/* Builds the world once (idempotent). */
void hv_fuzz_http_init(void);

/* A mint in the roster (live, SFW). */
#define HV_FUZZ_LIVE_MINT "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump"

/* (transfer full) A request as server.c's read_request_line builds it: method (must be one of
 * the methods lws reports), path, query ("name=value" strings, already URL-decoded), body
 * (nullable). */
hv_http_exchange *hv_fuzz_http_exchange(const char *method, const char *path, GPtrArray *query,
                                        const uint8_t *body, size_t body_len);

/* Dispatches ex as server.c does, checks the answer (one was given; a status from 200 to 599;
 * JSON bodies parse; header names and values are single lines), and frees ex. upstream says
 * how the fake catalog answers, upstream_body (nullable) is the pump.fun page whose parse
 * error an ERROR answer carries. Returns the answer's status. */
int hv_fuzz_http_run(hv_http_exchange *ex, hv_fuzz_upstream upstream, const char *upstream_body);

#endif

/* pump.fun discovery: an asynchronous HTTP client on the GLib loop (libcurl multi), parsers for
 * pump.fun's JSON, and the catalog cache that answers "what is live" and "what is this mint".
 *
 * Everything here runs on the main thread (the GMainContext haven runs); none of it blocks.
 * Streams and rosters are immutable once built and reference-counted, so a response that is
 * being written can keep one alive while the catalog swaps in a newer roster.
 */
#ifndef HV_PUMPFUN_H
#define HV_PUMPFUN_H

#include "core/config.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- streams ---------------------------------------------------------------------------- */

/* One pump.fun coin as haven serves it. Immutable after creation; refcounted (main thread).
 * String fields are NULL where pump.fun has none; has_* flags say whether a number was sent. */
typedef struct hv_pf_stream {
    char *mint_id;
    char *name, *symbol, *description, *image_uri, *thumbnail, *creator;
    char *website, *twitter, *telegram, *livestream_title;
    double market_cap, usd_market_cap;
    bool has_market_cap, has_usd_market_cap;
    int64_t num_participants;
    bool is_currently_live, nsfw;
    int64_t created_timestamp, last_trade_timestamp;
    bool has_created_timestamp, has_last_trade_timestamp;
    json_t *raw; /* the upstream object (live fields merged in for single lookups): for the store */
    char *json;  /* the public stream object, rendered once (compact JSON) */
    size_t json_len;
} hv_pf_stream;

/* Builds a stream from one upstream coin object. Returns (transfer full) NULL when the object
 * has no valid mint. raw is referenced, not copied. */
hv_pf_stream *hv_pf_stream_new_from_json(json_t *raw);
hv_pf_stream *hv_pf_stream_ref(hv_pf_stream *s);
void hv_pf_stream_unref(hv_pf_stream *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_pf_stream, hv_pf_stream_unref)

/* ---- parsing (pure) --------------------------------------------------------------------- */

/* Parses a currently-live page (a bare JSON array). Rows without a valid mint are skipped and
 * counted in *skipped. Returns (transfer full) a GPtrArray of hv_pf_stream, or NULL + error. */
GPtrArray *hv_pf_parse_roster(const char *body, size_t len, unsigned *skipped, GError **error);

/* Live state from GET /livestream?mintId=. An empty body means offline (pump.fun's way). */
typedef struct {
    bool present; /* false: empty body, i.e. not live */
    bool is_live;
    int64_t num_participants;
    int64_t stream_id;
    char *thumbnail; /* nullable */
    char *title;     /* nullable */
} hv_pf_live_info;
bool hv_pf_parse_live_info(const char *body, size_t len, hv_pf_live_info *out, GError **error);
void hv_pf_live_info_clear(hv_pf_live_info *info);

/* Merges a /coins/{mint} object with live info into one stream (transfer full), or NULL + error
 * when the coin object is not usable. live may be NULL (unknown). */
hv_pf_stream *hv_pf_stream_from_coin(const char *body, size_t len, const hv_pf_live_info *live,
                                     GError **error);

/* ---- HTTP client ------------------------------------------------------------------------ */

typedef struct hv_pf_client hv_pf_client;
typedef struct hv_pf_request hv_pf_request;

/* What came back from one upstream request. status is 0 when no HTTP answer arrived (then
 * error says why, and timed_out tells a timeout apart). Valid only during the callback. */
typedef struct {
    const char *url;
    long status;
    const char *content_type; /* nullable */
    const char *retry_after;  /* nullable: Retry-After header */
    bool cf_challenge;        /* cf-mitigated: challenge */
    const char *body;         /* NUL-terminated for convenience; len excludes the NUL */
    size_t len;
    bool timed_out;
    const char *error; /* nullable: transport error text */
    int64_t elapsed_ms;
} hv_pf_response;

typedef void (*hv_pf_response_cb)(const hv_pf_response *resp, void *user_data);

/* Creates the client on the thread-default main context (transfer full). cfg must outlive it. */
hv_pf_client *hv_pf_client_new(const hv_config *cfg);
/* Cancels every transfer in flight (their callbacks are not called) and frees the client. */
void hv_pf_client_free(hv_pf_client *client);

/* Starts a GET (body == NULL) or a JSON POST. The callback runs later on the main loop, never
 * from inside this call. Returns (transfer none) a handle valid until the callback runs. */
hv_pf_request *hv_pf_client_fetch(hv_pf_client *client, const char *url, const char *post_json,
                                  hv_pf_response_cb cb, void *user_data);
/* Cancels a request; its callback will not run. */
void hv_pf_request_cancel(hv_pf_request *req);

/* Upstream health, for /healthz: the last success and failure seen by the catalog. */
typedef struct {
    int64_t last_success_wall_ms; /* 0 = never */
    int64_t last_failure_wall_ms; /* 0 = never */
    char last_success_endpoint[64];
    char last_failure_endpoint[64];
    char last_error[256];
    uint64_t requests, failures;
} hv_pf_health;

/* Classifies an upstream answer. Returns true when status is 200 (or 201) and, unless
 * allow_empty, the body is non-empty; otherwise false with error set: HV_ETIMEDOUT (timeout),
 * HV_EIO (no answer), HV_ERATELIMIT (429), HV_EUPSTREAM (403 challenge, 5xx, other status),
 * HV_EPROTO (empty body). The message names the endpoint. */
bool hv_pf_check_response(const hv_pf_response *resp, const char *endpoint, bool allow_empty,
                          GError **error);

/* ---- livestream/join -------------------------------------------------------------------- */

typedef struct hv_pf_join hv_pf_join;
/* token: (transfer none, nullable) the LiveKit JWT; NULL with error: HV_ENOTFOUND (not live:
 * 404, or 2xx without a token), HV_EINVAL (400), or an upstream error (see check_response). */
typedef void (*hv_pf_join_cb)(const char *token, const GError *error, void *user_data);
/* Asks pump.fun for a fresh viewer token. The callback runs once, later, unless cancelled. */
hv_pf_join *hv_pf_join_start(hv_pf_client *client, const char *livestream_api, const char *mint_id,
                             hv_pf_join_cb cb, void *user_data);
void hv_pf_join_cancel(hv_pf_join *j);
/* Pure: the classification used by hv_pf_join_start, for tests. */
bool hv_pf_parse_join(const hv_pf_response *resp, char **token_out, GError **error);

/* ---- catalog ---------------------------------------------------------------------------- */

/* One roster snapshot: the live streams, indexed and pre-sorted. Immutable; refcounted. */
typedef struct hv_pf_roster {
    GPtrArray *all;         /* hv_pf_stream*, live only, upstream order */
    GPtrArray *sfw;         /* the same without nsfw streams */
    GPtrArray *popular;     /* all, by num_participants descending (ties keep upstream order) */
    GPtrArray *popular_sfw; /* popular without nsfw streams */
    GHashTable *by_mint;    /* mint_id → hv_pf_stream* (borrowed from all) */
    int64_t total_participants;
    unsigned nsfw_count;
    int64_t fetched_at_ms;      /* monotonic */
    int64_t fetched_at_wall_ms; /* wall clock */
    unsigned pages;             /* upstream pages fetched */
} hv_pf_roster;

/* Builds a roster from streams (transfer none; each is referenced). Rows with
 * is_currently_live false are left out; duplicate mints keep the first. */
hv_pf_roster *hv_pf_roster_new(GPtrArray *streams, int64_t now_ms, int64_t now_wall_ms);
hv_pf_roster *hv_pf_roster_ref(hv_pf_roster *r);
void hv_pf_roster_unref(hv_pf_roster *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_pf_roster, hv_pf_roster_unref)

/* How old the data in an answer is, and whether it is past its TTL. */
typedef struct {
    bool stale;
    int64_t age_ms;
    int64_t fetched_at_wall_ms;
    const char *upstream_error; /* nullable: the failure that keeps this data from being fresh */
    int64_t retry_in_ms;        /* with an error and no data: when pump.fun is asked again */
} hv_pf_cache_info;

typedef struct hv_pf_catalog hv_pf_catalog;
typedef struct hv_pf_waiter hv_pf_waiter;

/* roster: (transfer none, nullable) the roster to answer from; NULL only with error set.
 * error carries the HV_* code of the upstream failure when nothing usable is cached. */
typedef void (*hv_pf_roster_cb)(hv_pf_roster *roster, const hv_pf_cache_info *info,
                                const GError *error, void *user_data);
/* stream: (transfer none, nullable) NULL with error == NULL means pump.fun does not know it. */
typedef void (*hv_pf_stream_cb)(hv_pf_stream *stream, const hv_pf_cache_info *info,
                                const GError *error, void *user_data);

/* What a shared roster source answers when the catalog is about to refresh the roster. */
typedef enum {
    HV_PF_SHARE_ERROR = -1, /* the source failed (it logs why): fetch from pump.fun anyway */
    HV_PF_SHARE_FRESH = 0,  /* *body_out holds a roster younger than ttl_ms: use it */
    HV_PF_SHARE_FETCH = 1,  /* this node may fetch now; share_publish must follow */
    HV_PF_SHARE_BUSY = 2,   /* another node is fetching: ask again shortly (*body_out: the
                             * stale roster, if there is one) */
} hv_pf_share_answer;

/* How often the catalog asks again while another node fetches, and how long it waits in all
 * (cfg->upstream_timeout_ms) before it fetches from pump.fun itself. */
#define HV_PF_SHARE_RETRY_MS 250

/* The catalog's hooks (main thread; all optional).
 *
 * on_coins: told about every coin the catalog fetched from pump.fun, so it can be stored. Not
 * called for a roster that came from share_claim: the node that fetched it stored those.
 *
 * share_claim / share_publish: a roster shared by several nodes (src/store's roster_share),
 * so that N nodes do not fetch it N times. Both or neither. Before each roster refresh the
 * catalog calls share_claim(cfg->catalog_ttl_ms, ...), from the main loop, never from inside
 * a hv_pf_catalog_* call. With FRESH and BUSY, *body_out (transfer full, NULL when there is
 * none) is a JSON array of pump.fun coin objects, the form of a currently-live page, and
 * *age_ms_out how old it is. After every roster fetch from pump.fun made while the hooks are
 * set, the catalog calls share_publish: with the fetched coin objects as a compact JSON array
 * and ok true, or with NULL and ok false when the fetch failed (give up the right to fetch,
 * so that another node may try). hv_pf_catalog_free calls neither: a lease held then runs
 * out by itself. */
typedef struct {
    void (*on_coins)(GPtrArray *streams, void *user_data);
    hv_pf_share_answer (*share_claim)(int64_t ttl_ms, char **body_out, int64_t *age_ms_out,
                                      void *user_data);
    void (*share_publish)(const char *body, bool ok, void *user_data);
} hv_pf_catalog_callbacks;

hv_pf_catalog *hv_pf_catalog_new(const hv_config *cfg, hv_pf_client *client,
                                 const hv_pf_catalog_callbacks *cb, void *user_data);
/* Frees the catalog; pending waiters are dropped without being called. */
void hv_pf_catalog_free(hv_pf_catalog *cat);

/* Answers with the live roster: at once (cb runs before this returns, result NULL) when a
 * usable roster is cached, otherwise later (returns a waiter the caller may cancel). At most
 * one upstream refresh runs at a time, whatever the number of callers. */
hv_pf_waiter *hv_pf_catalog_get_roster(hv_pf_catalog *cat, hv_pf_roster_cb cb, void *user_data);
/* Answers with one stream: from the roster when it is there, otherwise from a lookup of the
 * coin and livestream endpoints (cached and single-flight per mint). mint_id must be valid. */
hv_pf_waiter *hv_pf_catalog_get_stream(hv_pf_catalog *cat, const char *mint_id, hv_pf_stream_cb cb,
                                       void *user_data);
/* Cancels a pending answer; its callback will not run. */
void hv_pf_waiter_cancel(hv_pf_waiter *w);

/* The current roster if any, whatever its age (transfer none, nullable). */
hv_pf_roster *hv_pf_catalog_peek(hv_pf_catalog *cat);
const hv_pf_health *hv_pf_catalog_health(const hv_pf_catalog *cat);

#endif

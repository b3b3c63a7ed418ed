/* Internals of the pumpfun module shared between its files and its unit tests. */
#ifndef HV_PUMPFUN_PRIVATE_H
#define HV_PUMPFUN_PRIVATE_H

#include "pumpfun.h"

/* The cache policy, as a pure function so it can be tested without a network or a clock.
 *
 *   data younger than the TTL        → serve it
 *   data older than the TTL          → serve it, and start a refresh unless one is running or a
 *                                      failure backoff is in force (stale-while-revalidate)
 *   no data, refresh running         → wait for it (single flight)
 *   no data, backoff in force        → fail now with the last upstream error
 *   no data otherwise                → start a refresh and wait for it
 */
typedef enum {
    HV_PF_SERVE_FRESH,
    HV_PF_SERVE_STALE,
    HV_PF_WAIT,
    HV_PF_FAIL,
} hv_pf_cache_verdict;

typedef struct {
    bool have_data;
    int64_t fetched_at_ms;
    bool in_flight;
    int64_t retry_at_ms; /* no new refresh before this (failure backoff); 0 = none */
} hv_pf_cache_state;

typedef struct {
    hv_pf_cache_verdict verdict;
    bool start_refresh;
} hv_pf_cache_decision;

hv_pf_cache_decision hv_pf_cache_decide(const hv_pf_cache_state *st, int64_t now_ms,
                                        int64_t ttl_ms);

/* Failure backoff: doubles from 1 s up to 60 s; a Retry-After of N seconds (from a 429 or 503)
 * raises the delay to N s, capped at 10 minutes. Returns the delay in ms. */
#define HV_PF_BACKOFF_MIN_MS     1000
#define HV_PF_BACKOFF_MAX_MS     60000
#define HV_PF_RETRY_AFTER_MAX_MS 600000
int64_t hv_pf_backoff_next_ms(int64_t prev_delay_ms, const char *retry_after);

/* Most single-mint lookups remembered at once; older idle ones are dropped first. */
#define HV_PF_LOOKUP_CACHE_MAX 1024

#endif

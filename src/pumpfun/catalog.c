/* The catalog: haven's cache of what is live on pump.fun. Main thread only.
 *
 * The roster (every live stream, paged through currently-live up to HAVEN_ROSTER_MAX) is
 * fetched on demand, kept for HAVEN_CATALOG_TTL, then served stale while one refresh runs.
 * However many requests arrive, at most one roster refresh and one lookup per mint are in
 * flight; callers that need data that is not there yet wait in a queue and are all answered
 * by that one fetch. Upstream failures keep the last good data (marked stale, with the error)
 * and start a backoff, so a failing pump.fun is not hammered.
 *
 * With the share_claim/share_publish hooks (several nodes on one database), each roster
 * refresh first asks the shared roster: a fresh one from another node is used as it is (no
 * request to pump.fun, no on_coins); the right to fetch means fetching as above and then
 * publishing what came back; another node fetching means waiting for its roster, asking again
 * every HV_PF_SHARE_RETRY_MS for at most cfg->upstream_timeout_ms, then fetching anyway. A
 * failing hook never stops discovery: the catalog fetches from pump.fun as if it were unset.
 */
#include "pumpfun-private.h"

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"

#include <stdlib.h>
#include <string.h>

typedef struct lookup lookup;

struct hv_pf_waiter {
    hv_pf_catalog *cat;
    lookup *lk; /* NULL: waiting for the roster */
    GList link;
    hv_pf_roster_cb roster_cb;
    hv_pf_stream_cb stream_cb;
    void *user_data;
};

/* Shared failure bookkeeping for the roster and for each lookup. */
typedef struct {
    bool in_flight;
    int64_t retry_at_ms;
    int64_t backoff_ms;
    GError *last_error;
    int64_t last_error_at_ms;
    GQueue waiters;
} fetch_state;

struct lookup {
    hv_pf_catalog *cat;
    char *mint;
    bool have_result;
    hv_pf_stream *stream; /* NULL with have_result: pump.fun does not know this mint */
    int64_t fetched_at_ms, fetched_at_wall_ms;
    fetch_state fs;
    hv_pf_request *coin_req, *live_req;
    GError *coin_error;
    GBytes *coin_body; /* NULL with no error: 404 */
    hv_pf_live_info live;
    bool live_known;
    bool answering; /* its waiters are being called back: must not be trimmed */
};

struct hv_pf_catalog {
    const hv_config *cfg;
    hv_pf_client *client;
    hv_pf_catalog_callbacks cb;
    void *user_data;
    hv_pf_roster *roster;
    fetch_state fs;
    /* the refresh in progress */
    hv_pf_request *page_req;
    GPtrArray *pending;
    GHashTable *pending_mints;
    int64_t page_offset;
    unsigned pages;
    GHashTable *lookups; /* mint → lookup* (owned) */
    hv_pf_health health;
    /* the shared roster (cb.share_claim): the refresh's next claim, and when to stop waiting
     * for another node's fetch */
    guint share_source;
    int64_t share_deadline_ms;
};

/* ---- policy ----------------------------------------------------------------------------- */

hv_pf_cache_decision
hv_pf_cache_decide(const hv_pf_cache_state *st, int64_t now_ms, int64_t ttl_ms)
{
    hv_pf_cache_decision d = {HV_PF_FAIL, false};
    bool may_refresh = !st->in_flight && now_ms >= st->retry_at_ms;
    if (st->have_data) {
        if (now_ms - st->fetched_at_ms < ttl_ms) {
            d.verdict = HV_PF_SERVE_FRESH;
        } else {
            d.verdict = HV_PF_SERVE_STALE;
            d.start_refresh = may_refresh;
        }
    } else if (st->in_flight) {
        d.verdict = HV_PF_WAIT;
    } else if (may_refresh) {
        d.verdict = HV_PF_WAIT;
        d.start_refresh = true;
    }
    return d;
}

int64_t
hv_pf_backoff_next_ms(int64_t prev_delay_ms, const char *retry_after)
{
    int64_t delay = prev_delay_ms <= 0 ? HV_PF_BACKOFF_MIN_MS : prev_delay_ms * 2;
    if (delay > HV_PF_BACKOFF_MAX_MS) {
        delay = HV_PF_BACKOFF_MAX_MS;
    }
    int64_t secs = 0;
    if (retry_after != NULL && hv_parse_int64(retry_after, &secs) && secs >= 0) {
        /* Compare before multiplying: a huge Retry-After must not overflow. */
        int64_t ra =
            secs > HV_PF_RETRY_AFTER_MAX_MS / 1000 ? HV_PF_RETRY_AFTER_MAX_MS : secs * 1000;
        if (ra > delay) {
            delay = ra;
        }
    }
    return delay;
}

/* ---- shared helpers --------------------------------------------------------------------- */

static void
note_upstream(hv_pf_catalog *cat, const char *endpoint, const GError *error)
{
    hv_pf_health *h = &cat->health;
    h->requests++;
    if (error == NULL) {
        h->last_success_wall_ms = hv_wall_ms();
        g_strlcpy(h->last_success_endpoint, endpoint, sizeof(h->last_success_endpoint));
        return;
    }
    h->failures++;
    h->last_failure_wall_ms = hv_wall_ms();
    g_strlcpy(h->last_failure_endpoint, endpoint, sizeof(h->last_failure_endpoint));
    g_strlcpy(h->last_error, error->message, sizeof(h->last_error));
}

static void
fetch_succeeded(fetch_state *fs)
{
    fs->in_flight = false;
    fs->backoff_ms = 0;
    fs->retry_at_ms = 0;
}

static void
fetch_failed(fetch_state *fs, const GError *error, const char *retry_after)
{
    fs->in_flight = false;
    fs->backoff_ms = hv_pf_backoff_next_ms(fs->backoff_ms, retry_after);
    fs->retry_at_ms = hv_now_ms() + fs->backoff_ms;
    g_clear_error(&fs->last_error);
    fs->last_error = g_error_copy(error);
    fs->last_error_at_ms = hv_now_ms();
}

static hv_pf_cache_info
make_info(const hv_pf_catalog *cat, const fetch_state *fs, int64_t fetched_at_ms,
          int64_t fetched_at_wall_ms)
{
    int64_t now = hv_now_ms();
    hv_pf_cache_info info = {
        .stale = now - fetched_at_ms >= cat->cfg->catalog_ttl_ms,
        .age_ms = now - fetched_at_ms,
        .fetched_at_wall_ms = fetched_at_wall_ms,
        .upstream_error = NULL,
    };
    if (fs->last_error != NULL && fs->last_error_at_ms >= fetched_at_ms) {
        info.upstream_error = fs->last_error->message;
    }
    return info;
}

/* The answer's info when there is no data to give: only when the next attempt will be. */
static hv_pf_cache_info
failure_info(const fetch_state *fs)
{
    int64_t wait = fs->retry_at_ms - hv_now_ms();
    return (hv_pf_cache_info){.retry_in_ms = wait > 0 ? wait : 0};
}

static hv_pf_waiter *
enqueue_waiter(hv_pf_catalog *cat, fetch_state *fs, lookup *lk)
{
    hv_pf_waiter *w = g_new0(hv_pf_waiter, 1);
    w->cat = cat;
    w->lk = lk;
    w->link.data = w;
    g_queue_push_tail_link(&fs->waiters, &w->link);
    return w;
}

static void
drop_waiters(fetch_state *fs)
{
    GList *l;
    while ((l = g_queue_pop_head_link(&fs->waiters)) != NULL) {
        g_free(l->data);
    }
}

static void
fetch_state_clear(fetch_state *fs)
{
    drop_waiters(fs);
    g_clear_error(&fs->last_error);
}

void
hv_pf_waiter_cancel(hv_pf_waiter *w)
{
    if (w == NULL) {
        return;
    }
    fetch_state *fs = w->lk != NULL ? &w->lk->fs : &w->cat->fs;
    g_queue_unlink(&fs->waiters, &w->link);
    g_free(w);
}

/* ---- roster ----------------------------------------------------------------------------- */

static void fetch_page(hv_pf_catalog *cat);

static void
answer_roster_waiters(hv_pf_catalog *cat)
{
    GList *l;
    while ((l = g_queue_pop_head_link(&cat->fs.waiters)) != NULL) {
        hv_pf_waiter *w = l->data;
        if (cat->roster != NULL) {
            hv_pf_cache_info info = make_info(cat, &cat->fs, cat->roster->fetched_at_ms,
                                              cat->roster->fetched_at_wall_ms);
            w->roster_cb(cat->roster, &info, NULL, w->user_data);
        } else {
            hv_pf_cache_info info = failure_info(&cat->fs);
            w->roster_cb(NULL, &info, cat->fs.last_error, w->user_data);
        }
        g_free(w);
    }
}

/* Hands the coin objects of a fetched roster to share_publish, as one compact JSON array. */
static void
publish_roster(hv_pf_catalog *cat)
{
    json_t *coins = json_array();
    for (guint i = 0; i < cat->pending->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(cat->pending, i);
        json_array_append(coins, s->raw);
    }
    char *body = json_dumps(coins, JSON_COMPACT);
    json_decref(coins);
    cat->cb.share_publish(body, body != NULL, cat->user_data);
    free(body);
}

static void
refresh_done(hv_pf_catalog *cat, const GError *error, const char *retry_after)
{
    cat->page_req = NULL;
    if (error != NULL) {
        fetch_failed(&cat->fs, error, retry_after);
        g_warning("roster refresh failed: %s (next try in %" G_GINT64_FORMAT " ms%s)",
                  error->message, cat->fs.backoff_ms,
                  cat->roster != NULL ? ", serving the last good roster" : "");
        if (cat->cb.share_publish != NULL) {
            cat->cb.share_publish(NULL, false, cat->user_data);
        }
    } else {
        hv_pf_roster *r = hv_pf_roster_new(cat->pending, hv_now_ms(), hv_wall_ms());
        r->pages = cat->pages;
        g_info("roster refreshed: %u live streams in %u page(s)", r->all->len, r->pages);
        hv_pf_roster_unref(cat->roster);
        cat->roster = r;
        fetch_succeeded(&cat->fs);
        if (cat->cb.share_publish != NULL) {
            publish_roster(cat);
        }
        if (cat->cb.on_coins != NULL) {
            cat->cb.on_coins(cat->pending, cat->user_data);
        }
    }
    g_clear_pointer(&cat->pending, g_ptr_array_unref);
    g_clear_pointer(&cat->pending_mints, g_hash_table_destroy);
    answer_roster_waiters(cat);
}

static void
on_page(const hv_pf_response *resp, void *user_data)
{
    hv_pf_catalog *cat = user_data;
    g_autoptr(GError) error = NULL;
    unsigned skipped = 0;
    g_autoptr(GPtrArray) rows = NULL;
    if (hv_pf_check_response(resp, "currently-live", false, &error)) {
        rows = hv_pf_parse_roster(resp->body, resp->len, &skipped, &error);
        if (rows == NULL) {
            g_prefix_error(&error, "pump.fun currently-live: ");
        }
    }
    note_upstream(cat, "currently-live", error);
    if (error != NULL) {
        refresh_done(cat, error, resp->retry_after);
        return;
    }
    if (skipped > 0) {
        g_debug("currently-live page %u: skipped %u row(s) without a valid mint", cat->pages,
                skipped);
    }
    cat->pages++;
    unsigned added = 0;
    for (guint i = 0; i < rows->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(rows, i);
        if ((int64_t)cat->pending->len >= cat->cfg->roster_max) {
            break;
        }
        if (g_hash_table_add(cat->pending_mints, g_strdup(s->mint_id))) {
            g_ptr_array_add(cat->pending, hv_pf_stream_ref(s));
            added++;
        }
    }
    int64_t asked = MIN(cat->cfg->roster_page_size, cat->cfg->roster_max - cat->page_offset);
    cat->page_offset += rows->len + skipped;
    /* A short page ends the roster; so do the cap and a page that adds nothing new (an
     * upstream that ignores offset would otherwise be paged forever). */
    bool more = (int64_t)(rows->len + skipped) >= asked && added > 0 &&
                (int64_t)cat->pending->len < cat->cfg->roster_max;
    if (more) {
        fetch_page(cat);
    } else {
        refresh_done(cat, NULL, NULL);
    }
}

static void
fetch_page(hv_pf_catalog *cat)
{
    int64_t limit = MIN(cat->cfg->roster_page_size, cat->cfg->roster_max - cat->page_offset);
    if (limit < 1) {
        limit = 1;
    }
    g_autofree char *url = g_strdup_printf("%s/coins/currently-live?offset=%" G_GINT64_FORMAT
                                           "&limit=%" G_GINT64_FORMAT
                                           "&sort=currently_live&order=DESC&includeNsfw=true",
                                           cat->cfg->pumpfun_frontend_api, cat->page_offset, limit);
    cat->page_req = hv_pf_client_fetch(cat->client, url, NULL, on_page, cat);
}

/* Fetches the roster from pump.fun, page after page; refresh_done ends it. */
static void
fetch_roster(hv_pf_catalog *cat)
{
    cat->pending = g_ptr_array_new_with_free_func((GDestroyNotify)hv_pf_stream_unref);
    cat->pending_mints = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    cat->page_offset = 0;
    cat->pages = 0;
    fetch_page(cat);
}

/* (transfer full) A roster built from a shared body (a JSON array of coin objects) that is
 * age_ms old, or NULL (logged) when the body is not usable. */
static hv_pf_roster *
roster_from_share(hv_pf_catalog *cat, const char *body, int64_t age_ms)
{
    g_autoptr(GError) error = NULL;
    unsigned skipped = 0;
    g_autoptr(GPtrArray) rows = hv_pf_parse_roster(body, strlen(body), &skipped, &error);
    if (rows == NULL) {
        g_warning("the shared roster is not usable: %s", error->message);
        return NULL;
    }
    if ((int64_t)rows->len > cat->cfg->roster_max) {
        g_ptr_array_set_size(rows, (guint)cat->cfg->roster_max);
    }
    return hv_pf_roster_new(rows, hv_now_ms() - age_ms, hv_wall_ms() - age_ms);
}

/* BUSY with a stale shared roster: it answers the waiters now when it is newer than what the
 * catalog has (or the catalog has nothing); the refresh goes on waiting for a fresh one. */
static void
offer_stale_share(hv_pf_catalog *cat, const char *body, int64_t age_ms)
{
    age_ms = MAX(age_ms, 0);
    if (cat->roster != NULL && cat->roster->fetched_at_wall_ms >= hv_wall_ms() - age_ms) {
        return;
    }
    hv_pf_roster *r = roster_from_share(cat, body, age_ms);
    if (r == NULL) {
        return;
    }
    g_debug("another node is fetching the roster: serving its last one (%" G_GINT64_FORMAT
            " ms old) meanwhile",
            age_ms);
    hv_pf_roster_unref(cat->roster);
    cat->roster = r;
    answer_roster_waiters(cat);
}

/* Asks the shared roster before a refresh (and again while another node fetches). */
static gboolean
on_share_claim(gpointer user_data)
{
    hv_pf_catalog *cat = user_data;
    cat->share_source = 0;
    int64_t ttl = cat->cfg->catalog_ttl_ms;
    g_autofree char *body = NULL;
    int64_t age_ms = 0;
    hv_pf_share_answer answer = cat->cb.share_claim(ttl, &body, &age_ms, cat->user_data);
    switch (answer) {
    case HV_PF_SHARE_FRESH: {
        /* The database's clock said fresh: a node clock that disagrees must not make the
         * roster stale on arrival (a refresh per request). */
        hv_pf_roster *r =
            body != NULL ? roster_from_share(cat, body, CLAMP(age_ms, 0, ttl - 1)) : NULL;
        if (r == NULL) {
            break;
        }
        g_info("roster from the shared store: %u live streams, %" G_GINT64_FORMAT " ms old",
               r->all->len, CLAMP(age_ms, 0, ttl - 1));
        hv_pf_roster_unref(cat->roster);
        cat->roster = r;
        fetch_succeeded(&cat->fs);
        answer_roster_waiters(cat);
        return G_SOURCE_REMOVE;
    }
    case HV_PF_SHARE_FETCH:
        fetch_roster(cat);
        return G_SOURCE_REMOVE;
    case HV_PF_SHARE_BUSY:
        /* The next step is under way before the waiters are answered: a callback may free
         * the catalog, and nothing touches it after them. */
        if (hv_now_ms() < cat->share_deadline_ms) {
            cat->share_source = g_timeout_add(HV_PF_SHARE_RETRY_MS, on_share_claim, cat);
        } else {
            g_warning("another node has been fetching the roster for over %" G_GINT64_FORMAT
                      " ms: fetching it here",
                      cat->cfg->upstream_timeout_ms);
            fetch_roster(cat);
        }
        if (body != NULL) {
            offer_stale_share(cat, body, age_ms);
        }
        return G_SOURCE_REMOVE;
    case HV_PF_SHARE_ERROR:
    default:
        g_warning("the shared roster is unavailable: fetching the roster from pump.fun");
        break;
    }
    fetch_roster(cat);
    return G_SOURCE_REMOVE;
}

static void
start_refresh(hv_pf_catalog *cat)
{
    cat->fs.in_flight = true;
    if (cat->cb.share_claim != NULL) {
        /* From the main loop, not from here: a shared roster can end the refresh at once,
         * and this function's callers answer from the roster they hold after it returns. */
        cat->share_deadline_ms = hv_now_ms() + cat->cfg->upstream_timeout_ms;
        cat->share_source = g_idle_add(on_share_claim, cat);
        return;
    }
    fetch_roster(cat);
}

static hv_pf_cache_state
roster_state(const hv_pf_catalog *cat)
{
    return (hv_pf_cache_state){
        .have_data = cat->roster != NULL,
        .fetched_at_ms = cat->roster != NULL ? cat->roster->fetched_at_ms : 0,
        .in_flight = cat->fs.in_flight,
        .retry_at_ms = cat->fs.retry_at_ms,
    };
}

hv_pf_waiter *
hv_pf_catalog_get_roster(hv_pf_catalog *cat, hv_pf_roster_cb cb, void *user_data)
{
    hv_pf_cache_state st = roster_state(cat);
    hv_pf_cache_decision d = hv_pf_cache_decide(&st, hv_now_ms(), cat->cfg->catalog_ttl_ms);
    if (d.start_refresh) {
        start_refresh(cat);
    }
    switch (d.verdict) {
    case HV_PF_SERVE_FRESH:
    case HV_PF_SERVE_STALE: {
        hv_pf_cache_info info =
            make_info(cat, &cat->fs, cat->roster->fetched_at_ms, cat->roster->fetched_at_wall_ms);
        cb(cat->roster, &info, NULL, user_data);
        return NULL;
    }
    case HV_PF_FAIL: {
        hv_pf_cache_info info = failure_info(&cat->fs);
        cb(NULL, &info, cat->fs.last_error, user_data);
        return NULL;
    }
    case HV_PF_WAIT:
    default: {
        hv_pf_waiter *w = enqueue_waiter(cat, &cat->fs, NULL);
        w->roster_cb = cb;
        w->user_data = user_data;
        return w;
    }
    }
}

hv_pf_roster *
hv_pf_catalog_peek(hv_pf_catalog *cat)
{
    return cat->roster;
}

const hv_pf_health *
hv_pf_catalog_health(const hv_pf_catalog *cat)
{
    return &cat->health;
}

/* ---- single-mint lookups ---------------------------------------------------------------- */

static void
lookup_free(lookup *lk)
{
    hv_pf_request_cancel(lk->coin_req);
    hv_pf_request_cancel(lk->live_req);
    fetch_state_clear(&lk->fs);
    hv_pf_stream_unref(lk->stream);
    g_clear_error(&lk->coin_error);
    g_clear_pointer(&lk->coin_body, g_bytes_unref);
    hv_pf_live_info_clear(&lk->live);
    g_free(lk->mint);
    g_free(lk);
}

static void
answer_lookup_waiters(lookup *lk)
{
    hv_pf_catalog *cat = lk->cat;
    GList *l;
    lk->answering = true;
    while ((l = g_queue_pop_head_link(&lk->fs.waiters)) != NULL) {
        hv_pf_waiter *w = l->data;
        if (lk->have_result) {
            hv_pf_cache_info info =
                make_info(cat, &lk->fs, lk->fetched_at_ms, lk->fetched_at_wall_ms);
            w->stream_cb(lk->stream, &info, NULL, w->user_data);
        } else {
            hv_pf_cache_info info = failure_info(&lk->fs);
            w->stream_cb(NULL, &info, lk->fs.last_error, w->user_data);
        }
        g_free(w);
    }
    lk->answering = false;
}

static void
lookup_complete(lookup *lk)
{
    hv_pf_catalog *cat = lk->cat;
    g_autoptr(GError) error = NULL;
    if (lk->coin_error != NULL) {
        error = g_steal_pointer(&lk->coin_error);
    } else {
        hv_pf_stream *s = NULL;
        if (lk->coin_body != NULL) {
            gsize len = 0;
            const char *body = g_bytes_get_data(lk->coin_body, &len);
            s = hv_pf_stream_from_coin(body, len, lk->live_known ? &lk->live : NULL, &error);
            if (s == NULL) {
                g_prefix_error(&error, "pump.fun coin: ");
            }
        }
        if (error == NULL) {
            hv_pf_stream_unref(lk->stream);
            lk->stream = s;
            lk->have_result = true;
            lk->fetched_at_ms = hv_now_ms();
            lk->fetched_at_wall_ms = hv_wall_ms();
            fetch_succeeded(&lk->fs);
            if (s != NULL && cat->cb.on_coins != NULL) {
                g_autoptr(GPtrArray) one = g_ptr_array_new();
                g_ptr_array_add(one, s);
                cat->cb.on_coins(one, cat->user_data);
            }
        }
    }
    if (error != NULL) {
        fetch_failed(&lk->fs, error, NULL);
        HV_WARNING(HV_CTX_MINT(lk->mint), "lookup failed: %s", error->message);
    }
    g_clear_pointer(&lk->coin_body, g_bytes_unref);
    hv_pf_live_info_clear(&lk->live);
    lk->live_known = false;
    answer_lookup_waiters(lk);
}

static void
on_coin(const hv_pf_response *resp, void *user_data)
{
    lookup *lk = user_data;
    lk->coin_req = NULL;
    g_autoptr(GError) error = NULL;
    if (resp->status == 404) {
        /* Not an upstream failure: pump.fun answered that it does not know this mint. */
        note_upstream(lk->cat, "coin", NULL);
    } else if (hv_pf_check_response(resp, "coin", false, &error)) {
        lk->coin_body = g_bytes_new(resp->body, resp->len);
        note_upstream(lk->cat, "coin", NULL);
    } else {
        note_upstream(lk->cat, "coin", error);
        lk->coin_error = g_steal_pointer(&error);
    }
    if (lk->live_req == NULL) {
        lookup_complete(lk);
    }
}

static void
on_live(const hv_pf_response *resp, void *user_data)
{
    lookup *lk = user_data;
    lk->live_req = NULL;
    g_autoptr(GError) error = NULL;
    if (hv_pf_check_response(resp, "livestream", true, &error) &&
        hv_pf_parse_live_info(resp->body, resp->len, &lk->live, &error)) {
        lk->live_known = true;
        note_upstream(lk->cat, "livestream", NULL);
    } else {
        /* Without live state the coin's own is_currently_live is used; not fatal. */
        note_upstream(lk->cat, "livestream", error);
        HV_DEBUG(HV_CTX_MINT(lk->mint), "livestream state unknown: %s", error->message);
    }
    if (lk->coin_req == NULL) {
        lookup_complete(lk);
    }
}

static void
start_lookup(lookup *lk)
{
    hv_pf_catalog *cat = lk->cat;
    lk->fs.in_flight = true;
    g_autofree char *coin_url =
        g_strdup_printf("%s/coins/%s", cat->cfg->pumpfun_frontend_api, lk->mint);
    /* /livestream is edge-cached for about a minute; a changing parameter gets a fresh answer. */
    g_autofree char *live_url =
        g_strdup_printf("%s/livestream?mintId=%s&_=%" G_GINT64_FORMAT,
                        cat->cfg->pumpfun_livestream_api, lk->mint, hv_wall_ms());
    lk->coin_req = hv_pf_client_fetch(cat->client, coin_url, NULL, on_coin, lk);
    lk->live_req = hv_pf_client_fetch(cat->client, live_url, NULL, on_live, lk);
}

static void
trim_lookups(hv_pf_catalog *cat)
{
    if (g_hash_table_size(cat->lookups) < HV_PF_LOOKUP_CACHE_MAX) {
        return;
    }
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, cat->lookups);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        lookup *lk = value;
        if (!lk->fs.in_flight && !lk->answering && g_queue_is_empty(&lk->fs.waiters)) {
            g_hash_table_iter_remove(&it);
        }
    }
}

hv_pf_waiter *
hv_pf_catalog_get_stream(hv_pf_catalog *cat, const char *mint_id, hv_pf_stream_cb cb,
                         void *user_data)
{
    int64_t now = hv_now_ms();
    /* The roster answers for every live stream it holds (refreshing it if stale). */
    hv_pf_cache_state rst = roster_state(cat);
    hv_pf_cache_decision rd = hv_pf_cache_decide(&rst, now, cat->cfg->catalog_ttl_ms);
    if (cat->roster != NULL) {
        hv_pf_stream *s = g_hash_table_lookup(cat->roster->by_mint, mint_id);
        if (s != NULL) {
            if (rd.start_refresh) {
                start_refresh(cat);
            }
            hv_pf_cache_info info = make_info(cat, &cat->fs, cat->roster->fetched_at_ms,
                                              cat->roster->fetched_at_wall_ms);
            cb(s, &info, NULL, user_data);
            return NULL;
        }
    }

    lookup *lk = g_hash_table_lookup(cat->lookups, mint_id);
    if (lk == NULL) {
        trim_lookups(cat);
        lk = g_new0(lookup, 1);
        lk->cat = cat;
        lk->mint = g_strdup(mint_id);
        g_queue_init(&lk->fs.waiters);
        g_hash_table_insert(cat->lookups, lk->mint, lk);
    }
    hv_pf_cache_state st = {
        .have_data = lk->have_result,
        .fetched_at_ms = lk->fetched_at_ms,
        .in_flight = lk->fs.in_flight,
        .retry_at_ms = lk->fs.retry_at_ms,
    };
    hv_pf_cache_decision d = hv_pf_cache_decide(&st, now, cat->cfg->catalog_ttl_ms);
    if (d.start_refresh) {
        start_lookup(lk);
    }
    switch (d.verdict) {
    case HV_PF_SERVE_FRESH:
    case HV_PF_SERVE_STALE: {
        hv_pf_cache_info info = make_info(cat, &lk->fs, lk->fetched_at_ms, lk->fetched_at_wall_ms);
        cb(lk->stream, &info, NULL, user_data);
        return NULL;
    }
    case HV_PF_FAIL: {
        hv_pf_cache_info info = failure_info(&lk->fs);
        cb(NULL, &info, lk->fs.last_error, user_data);
        return NULL;
    }
    case HV_PF_WAIT:
    default: {
        hv_pf_waiter *w = enqueue_waiter(cat, &lk->fs, lk);
        w->stream_cb = cb;
        w->user_data = user_data;
        return w;
    }
    }
}

/* ---- lifecycle -------------------------------------------------------------------------- */

hv_pf_catalog *
hv_pf_catalog_new(const hv_config *cfg, hv_pf_client *client, const hv_pf_catalog_callbacks *cb,
                  void *user_data)
{
    hv_pf_catalog *cat = g_new0(hv_pf_catalog, 1);
    cat->cfg = cfg;
    cat->client = client;
    if (cb != NULL) {
        cat->cb = *cb;
    }
    cat->user_data = user_data;
    g_queue_init(&cat->fs.waiters);
    cat->lookups =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)lookup_free);
    return cat;
}

void
hv_pf_catalog_free(hv_pf_catalog *cat)
{
    if (cat == NULL) {
        return;
    }
    hv_pf_request_cancel(cat->page_req);
    if (cat->share_source != 0) {
        g_source_remove(cat->share_source);
    }
    g_hash_table_destroy(cat->lookups);
    fetch_state_clear(&cat->fs);
    g_clear_pointer(&cat->pending, g_ptr_array_unref);
    g_clear_pointer(&cat->pending_mints, g_hash_table_destroy);
    hv_pf_roster_unref(cat->roster);
    g_free(cat);
}

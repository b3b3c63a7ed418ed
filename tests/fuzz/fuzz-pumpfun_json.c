/* Fuzz target: pump.fun's answers (src/pumpfun/parse.c, stream.c, roster.c, join.c, and the
 * Retry-After header in catalog.c). Every input goes through every parser, as any of pump.fun's
 * endpoints may answer with any body:
 *   - a currently-live page → streams → a roster (indexed, sorted) → list answers;
 *   - a coin object (/coins/{mint}), alone and merged with live info;
 *   - a livestream object (/livestream?mintId=);
 *   - a livestream/join answer, with the statuses the classification distinguishes;
 *   - the response classification (403 challenge, 5xx snippets) and the Retry-After backoff
 *     (the first line of the input as the header value).
 * Oracles: every stream's pre-rendered JSON (hand-written renderer) parses back as an object
 * with the same mint; the roster's counts and orders are consistent.
 */
#include "fuzz-common.h"
#include "pumpfun/pumpfun-private.h"

#include <jansson.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_setup_logging();
    return 0;
}

static void
check_stream(const hv_pf_stream *s)
{
    json_error_t jerr;
    json_t *o = json_loadb(s->json, s->json_len, 0, &jerr);
    if (!json_is_object(o) ||
        g_strcmp0(json_string_value(json_object_get(o, "mint_id")), s->mint_id) != 0 ||
        strlen(s->json) != s->json_len) {
        fprintf(stderr, "stream JSON does not read back: %s\n", s->json);
        abort();
    }
    json_decref(o);
}

static void
check_roster(const hv_pf_roster *r)
{
    if (r->sfw->len + r->nsfw_count != r->all->len || r->popular->len != r->all->len ||
        r->popular_sfw->len != r->sfw->len || g_hash_table_size(r->by_mint) != r->all->len) {
        abort();
    }
    int64_t total = 0;
    for (guint i = 0; i < r->all->len; i++) {
        const hv_pf_stream *s = g_ptr_array_index(r->all, i);
        if (!s->is_currently_live || s->num_participants < 0) {
            abort();
        }
        total = s->num_participants > INT64_MAX - total ? INT64_MAX : total + s->num_participants;
    }
    for (guint i = 1; i < r->popular->len; i++) {
        const hv_pf_stream *a = g_ptr_array_index(r->popular, i - 1);
        const hv_pf_stream *b = g_ptr_array_index(r->popular, i);
        if (a->num_participants < b->num_participants) {
            abort();
        }
    }
    if (total != r->total_participants) {
        abort();
    }
}

static void
fuzz_roster(const char *body, size_t len)
{
    unsigned skipped = 0;
    g_autoptr(GError) error = NULL;
    GPtrArray *rows = hv_pf_parse_roster(body, len, &skipped, &error);
    if (rows == NULL) {
        if (error == NULL) {
            abort();
        }
        return;
    }
    for (guint i = 0; i < rows->len; i++) {
        check_stream(g_ptr_array_index(rows, i));
    }
    hv_pf_roster *r = hv_pf_roster_new(rows, 1000, 1700000000000);
    check_roster(r);
    hv_pf_roster_unref(r);
    g_ptr_array_unref(rows);
}

static void
fuzz_coin(const char *body, size_t len)
{
    hv_pf_live_info live = {0};
    g_autoptr(GError) error = NULL;
    bool have_live = hv_pf_parse_live_info(body, len, &live, &error);
    if (!have_live && error == NULL) {
        abort();
    }
    /* the coin alone, then merged with this input's own live info (or a fixed live one) */
    static const hv_pf_live_info fixed = {
        true, true, 42, 7, (char *)"https://t.example/x.jpg", (char *)"title"};
    const hv_pf_live_info *lives[] = {NULL, have_live ? &live : &fixed};
    for (size_t i = 0; i < G_N_ELEMENTS(lives); i++) {
        g_autoptr(GError) cerr = NULL;
        hv_pf_stream *s = hv_pf_stream_from_coin(body, len, lives[i], &cerr);
        if (s != NULL) {
            check_stream(s);
            hv_pf_stream_unref(s);
        } else if (cerr == NULL) {
            abort();
        }
    }
    hv_pf_live_info_clear(&live);
}

static void
fuzz_join_and_classify(const char *body, size_t len)
{
    static const long statuses[] = {200, 201, 400, 403, 404, 429, 502};
    for (size_t i = 0; i < G_N_ELEMENTS(statuses); i++) {
        hv_pf_response resp = {
            .url = "https://livestream-api.pump.fun/livestream/join",
            .status = statuses[i],
            .content_type = i % 2 == 0 ? "application/json" : "text/plain",
            .retry_after = statuses[i] == 429 ? "30" : NULL,
            .cf_challenge = false,
            .body = body,
            .len = len,
        };
        char *token = NULL;
        g_autoptr(GError) error = NULL;
        bool ok = hv_pf_parse_join(&resp, &token, &error);
        if (ok != (token != NULL) || ok == (error != NULL) || (ok && token[0] == '\0')) {
            abort();
        }
        g_free(token);
        g_autoptr(GError) cerr = NULL;
        if (!hv_pf_check_response(&resp, "coins/currently-live", i % 3 == 0, &cerr) &&
            cerr == NULL) {
            abort();
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* pump.fun bodies arrive NUL-terminated from the client (hv_pf_response.body) */
    g_autofree char *body = hv_fuzz_strndup(data, size);
    fuzz_roster(body, size);
    fuzz_coin(body, size);
    fuzz_join_and_classify(body, size);

    g_autofree char *first_line = g_strndup(body, strcspn(body, "\r\n"));
    int64_t d = hv_pf_backoff_next_ms(4000, first_line);
    if (d < HV_PF_BACKOFF_MIN_MS || d > HV_PF_RETRY_AFTER_MAX_MS) {
        abort();
    }
    return 0;
}

/* Unit tests for the pumpfun module without a network: roster/coin/livestream parsing against
 * tests/data/pumpfun fixtures, the rendered stream JSON, upstream answer classification, the
 * cache policy and failure backoff, roster indexing/sorting, stream/roster ref counting, and
 * the catalog's roster refresh with and without the shared-roster hooks (against a fake
 * pump.fun on 127.0.0.1 and fake hooks).
 */
#include "../common/fixture.h"
#include "pumpfun/pumpfun-private.h"

#include "core/error.h"

#include <arpa/inet.h>
#include <glib.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MINT_OTTER  "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump"
#define MINT_NOODLE "4odAMtm92RnFU3V3kLb9ZdJSUsraFCas1vx9CxVxpump"
#define MINT_TEACUP "AKPXNJKPrDtn3pXykeGfmxXWjEJpJekPRRr5NJmfpump"
#define MINT_VELVET "CjgM7MPSTLzA6mmRbTWvg3M5tz5KggBKgWZtW9Fbpump"
#define MINT_PIXEL  "EsM78cQ5JHeRorCkvNNNaCX2i6QmdkyRT2fwRSdypump"
#define MINT_FOGGY  "3db3seiWSQSmKUeNWD87dN5AcYG2mLa12FHC4D2zpump"

/* ---- helpers ---------------------------------------------------------------------------- */

static GPtrArray *
parse_fixture_roster(unsigned *skipped)
{
    gsize len = 0;
    g_autofree char *body = hv_test_read_fixture("pumpfun/currently-live.json", &len);
    g_autoptr(GError) error = NULL;
    GPtrArray *streams = hv_pf_parse_roster(body, len, skipped, &error);
    g_assert_no_error(error);
    g_assert_nonnull(streams);
    return streams;
}

static hv_pf_stream *
find_stream(GPtrArray *streams, const char *mint)
{
    for (guint i = 0; i < streams->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(streams, i);
        if (strcmp(s->mint_id, mint) == 0) {
            return s;
        }
    }
    g_error("stream %s not found", mint);
    return NULL;
}

/* Parses a stream's rendered JSON and checks it holds exactly the public keys. */
static json_t *
rendered_json(const hv_pf_stream *s)
{
    static const char *keys[] = {
        "mint_id",
        "name",
        "symbol",
        "description",
        "image_uri",
        "thumbnail",
        "creator",
        "market_cap",
        "usd_market_cap",
        "num_participants",
        "is_currently_live",
        "nsfw",
        "website",
        "twitter",
        "telegram",
        "created_timestamp",
        "last_trade_timestamp",
        "livestream_title",
    };
    g_assert_nonnull(s->json);
    g_assert_cmpuint(s->json_len, ==, strlen(s->json));
    json_error_t jerr;
    json_t *j = json_loadb(s->json, s->json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (j == NULL) {
        g_error("rendered JSON does not parse (%s): %s", jerr.text, s->json);
    }
    g_assert_true(json_is_object(j));
    for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
        if (json_object_get(j, keys[i]) == NULL) {
            g_error("rendered JSON lacks \"%s\": %s", keys[i], s->json);
        }
    }
    g_assert_cmpuint(json_object_size(j), ==, G_N_ELEMENTS(keys));
    return j;
}

static hv_pf_stream *
stream_from_text(const char *text)
{
    json_error_t jerr;
    json_t *raw = json_loads(text, 0, &jerr);
    g_assert_nonnull(raw);
    hv_pf_stream *s = hv_pf_stream_new_from_json(raw);
    json_decref(raw);
    return s;
}

/* A synthetic live stream with the given mint, count and nsfw flag. */
static hv_pf_stream *
make_stream(const char *mint, int64_t participants, bool nsfw, bool live)
{
    json_t *raw = json_pack("{s:s, s:I, s:b, s:b}", "mint", mint, "num_participants",
                            (json_int_t)participants, "nsfw", nsfw, "is_currently_live", live);
    g_assert_nonnull(raw);
    hv_pf_stream *s = hv_pf_stream_new_from_json(raw);
    json_decref(raw);
    g_assert_nonnull(s);
    return s;
}

/* ---- hv_pf_parse_roster ----------------------------------------------------------------- */

static void
test_parse_roster_fixture(void)
{
    unsigned skipped = 99;
    g_autoptr(GPtrArray) streams = parse_fixture_roster(&skipped);
    g_assert_cmpuint(streams->len, ==, 12);
    g_assert_cmpuint(skipped, ==, 0);

    hv_pf_stream *s = g_ptr_array_index(streams, 0);
    g_assert_cmpstr(s->mint_id, ==, MINT_OTTER);
    g_assert_cmpstr(s->name, ==, "Orbital Otter");
    g_assert_cmpstr(s->symbol, ==, "OTTR");
    g_assert_cmpint(s->num_participants, ==, 1843);
    g_assert_true(s->has_market_cap);
    g_assert_cmpfloat(s->market_cap, ==, 4120.55);
    g_assert_true(s->has_usd_market_cap);
    g_assert_false(s->nsfw);
    g_assert_true(s->is_currently_live);
    g_assert_cmpstr(s->twitter, ==, "https://example.com/social/x/otter_orbit");
    g_assert_cmpstr(s->website, ==, "https://example.com/orbital-otter");
    g_assert_cmpstr(s->telegram, ==, "https://example.com/social/tg/orbitalotter");
    g_assert_true(s->has_created_timestamp);
    g_assert_true(s->has_last_trade_timestamp);
    g_assert_nonnull(s->raw);
    g_assert_cmpstr(json_string_value(json_object_get(s->raw, "mint")), ==, MINT_OTTER);
    /* shortest round-trip formatting in the rendered text */
    g_assert_nonnull(strstr(s->json, "\"market_cap\":4120.55,"));
    g_assert_true(g_str_has_prefix(s->json, "{\"mint_id\":\"" MINT_OTTER "\",\"name\":\"Orbital "
                                            "Otter\",\"symbol\":\"OTTR\","));

    json_t *j = rendered_json(s);
    g_assert_cmpstr(json_string_value(json_object_get(j, "mint_id")), ==, MINT_OTTER);
    g_assert_cmpstr(json_string_value(json_object_get(j, "name")), ==, "Orbital Otter");
    g_assert_cmpint(json_integer_value(json_object_get(j, "num_participants")), ==, 1843);
    g_assert_cmpfloat(json_number_value(json_object_get(j, "market_cap")), ==, 4120.55);
    g_assert_cmpfloat(json_number_value(json_object_get(j, "usd_market_cap")), ==,
                      json_number_value(json_object_get(s->raw, "usd_market_cap")));
    g_assert_true(json_is_true(json_object_get(j, "is_currently_live")));
    g_assert_true(json_is_false(json_object_get(j, "nsfw")));
    g_assert_cmpint(json_integer_value(json_object_get(j, "created_timestamp")), ==,
                    json_integer_value(json_object_get(s->raw, "created_timestamp")));
    g_assert_cmpint(json_integer_value(json_object_get(j, "last_trade_timestamp")), ==,
                    json_integer_value(json_object_get(s->raw, "last_trade_timestamp")));
    g_assert_cmpstr(json_string_value(json_object_get(j, "creator")), ==,
                    json_string_value(json_object_get(s->raw, "creator")));
    g_assert_cmpstr(json_string_value(json_object_get(j, "twitter")), ==,
                    "https://example.com/social/x/otter_orbit");
    json_decref(j);

    /* null socials map to NULL and render as null; "" stays "" */
    hv_pf_stream *velvet = find_stream(streams, MINT_VELVET);
    g_assert_null(velvet->twitter);
    g_assert_true(velvet->nsfw);
    j = rendered_json(velvet);
    g_assert_true(json_is_null(json_object_get(j, "twitter")));
    g_assert_true(json_is_true(json_object_get(j, "nsfw")));
    json_decref(j);
    hv_pf_stream *pixel = find_stream(streams, MINT_PIXEL);
    g_assert_null(pixel->twitter);
    g_assert_null(pixel->website);
    g_assert_null(pixel->telegram);
    hv_pf_stream *dough = find_stream(streams, "8TqeR7rhM6LoDWevinTrTqnvSWREcUyBepyyBgAJpump");
    g_assert_cmpstr(dough->website, ==, "");
    g_assert_cmpstr(dough->telegram, ==, "");

    /* the not-live row is parsed (the roster drops it, not the parser) */
    hv_pf_stream *foggy = g_ptr_array_index(streams, 11);
    g_assert_cmpstr(foggy->mint_id, ==, MINT_FOGGY);
    g_assert_cmpstr(foggy->name, ==, "Foggy Harbor");
    g_assert_false(foggy->is_currently_live);
    g_assert_cmpint(foggy->num_participants, ==, 0);
}

static void
test_parse_roster_every_row_renders(void)
{
    unsigned skipped = 0;
    g_autoptr(GPtrArray) streams = parse_fixture_roster(&skipped);
    for (guint i = 0; i < streams->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(streams, i);
        json_t *j = rendered_json(s);
        g_assert_cmpstr(json_string_value(json_object_get(j, "mint_id")), ==, s->mint_id);
        g_assert_cmpint(json_integer_value(json_object_get(j, "num_participants")), ==,
                        json_integer_value(json_object_get(s->raw, "num_participants")));
        g_assert_true(json_equal(json_object_get(j, "name"), json_object_get(s->raw, "name")));
        g_assert_true(
            json_equal(json_object_get(j, "twitter"), json_object_get(s->raw, "twitter")));
        g_assert_true(
            json_equal(json_object_get(j, "telegram"), json_object_get(s->raw, "telegram")));
        g_assert_true(
            json_equal(json_object_get(j, "website"), json_object_get(s->raw, "website")));
        /* reals round-trip exactly */
        g_assert_cmpfloat(json_number_value(json_object_get(j, "market_cap")), ==,
                          json_number_value(json_object_get(s->raw, "market_cap")));
        json_decref(j);
    }
}

static void
test_parse_roster_nulls_and_absent(void)
{
    g_autoptr(hv_pf_stream) s = stream_from_text("{\"mint\": \"" MINT_OTTER "\", \"name\": null, "
                                                 "\"market_cap\": 12, \"num_participants\": -4}");
    g_assert_nonnull(s);
    g_assert_null(s->name);
    g_assert_false(s->has_last_trade_timestamp);
    g_assert_false(s->has_created_timestamp);
    g_assert_false(s->has_usd_market_cap);
    g_assert_true(s->has_market_cap);
    g_assert_cmpint(s->num_participants, ==, 0); /* negative counts become 0 */
    g_assert_false(s->is_currently_live);
    json_t *j = rendered_json(s);
    g_assert_true(json_is_null(json_object_get(j, "name")));
    g_assert_true(json_is_null(json_object_get(j, "last_trade_timestamp")));
    g_assert_true(json_is_null(json_object_get(j, "created_timestamp")));
    g_assert_true(json_is_null(json_object_get(j, "usd_market_cap")));
    g_assert_true(json_is_null(json_object_get(j, "description")));
    g_assert_true(json_is_null(json_object_get(j, "livestream_title")));
    g_assert_true(json_is_real(json_object_get(j, "market_cap")));
    g_assert_cmpfloat(json_real_value(json_object_get(j, "market_cap")), ==, 12.0);
    g_assert_cmpint(json_integer_value(json_object_get(j, "num_participants")), ==, 0);
    g_assert_true(json_is_false(json_object_get(j, "is_currently_live")));
    g_assert_true(json_is_false(json_object_get(j, "nsfw")));
    json_decref(j);
    g_assert_nonnull(strstr(s->json, "\"market_cap\":12.0,"));

    /* strings needing escapes survive rendering; "mint_id" is accepted instead of "mint" */
    g_autoptr(hv_pf_stream) t =
        stream_from_text("{\"mint_id\": \"" MINT_NOODLE "\", \"name\": \"a \\\"q\\\" \\\\ "
                         "\\u00e9\\n\", \"num_participants\": 7.9, \"created_timestamp\": 5}");
    g_assert_nonnull(t);
    g_assert_cmpstr(t->mint_id, ==, MINT_NOODLE);
    g_assert_cmpint(t->num_participants, ==, 7);
    j = rendered_json(t);
    g_assert_cmpstr(json_string_value(json_object_get(j, "name")), ==, "a \"q\" \\ \xc3\xa9\n");
    g_assert_cmpint(json_integer_value(json_object_get(j, "created_timestamp")), ==, 5);
    json_decref(j);
}

static void
test_parse_roster_skips_bad_rows(void)
{
    static const char body[] = "[{\"mint\": \"" MINT_OTTER "\", \"is_currently_live\": true},"
                               " {\"name\": \"no mint\"},"
                               " {\"mint\": \"not-a-mint\"},"
                               " {\"mint\": \"" MINT_OTTER "x\"},"
                               " {\"mint\": 12345},"
                               " 5, null, \"str\","
                               " {\"mint\": \"" MINT_NOODLE "\", \"num_participants\": 3}]";
    unsigned skipped = 0;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) streams = hv_pf_parse_roster(body, strlen(body), &skipped, &error);
    g_assert_no_error(error);
    g_assert_nonnull(streams);
    g_assert_cmpuint(streams->len, ==, 2);
    g_assert_cmpuint(skipped, ==, 7);
    hv_pf_stream *a = g_ptr_array_index(streams, 0);
    hv_pf_stream *b = g_ptr_array_index(streams, 1);
    g_assert_cmpstr(a->mint_id, ==, MINT_OTTER);
    g_assert_cmpstr(b->mint_id, ==, MINT_NOODLE);
    g_assert_cmpint(b->num_participants, ==, 3);

    /* a row with a repeated key does not fail the page: the last value wins */
    static const char dup[] = "[{\"mint\": \"" MINT_OTTER "\", \"name\": \"a\", \"name\": \"b\"},"
                              " {\"mint\": \"" MINT_NOODLE "\"}]";
    g_autoptr(GPtrArray) dups = hv_pf_parse_roster(dup, strlen(dup), &skipped, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(dups->len, ==, 2);
    g_assert_cmpstr(((hv_pf_stream *)g_ptr_array_index(dups, 0))->name, ==, "b");

    /* an empty page */
    gsize len = 0;
    g_autofree char *empty = hv_test_read_fixture("pumpfun/errors/currently-live-empty.json", &len);
    skipped = 99;
    g_autoptr(GPtrArray) none = hv_pf_parse_roster(empty, len, &skipped, &error);
    g_assert_no_error(error);
    g_assert_nonnull(none);
    g_assert_cmpuint(none->len, ==, 0);
    g_assert_cmpuint(skipped, ==, 0);
}

static void
test_parse_roster_errors(void)
{
    static const char *bad[] = {"{}",  "{\"data\": []}", "[{\"mint\": ", "not json", "", "42",
                                "[1,2"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        unsigned skipped = 99;
        g_autoptr(GError) error = NULL;
        GPtrArray *streams = hv_pf_parse_roster(bad[i], strlen(bad[i]), &skipped, &error);
        if (streams != NULL) {
            g_error("roster body \"%s\" accepted", bad[i]);
        }
        g_assert_error(error, HV_ERROR, HV_EPROTO);
        g_assert_cmpuint(skipped, ==, 0);
    }
    g_autoptr(GError) error = NULL;
    unsigned skipped = 0;
    g_assert_null(hv_pf_parse_roster("{}", 2, &skipped, &error));
    g_assert_nonnull(strstr(error->message, "array"));
    g_clear_error(&error);
    g_assert_null(hv_pf_parse_roster("", 0, &skipped, &error));
    g_assert_nonnull(strstr(error->message, "empty"));
    g_clear_error(&error);
    /* the 403 challenge page is not JSON */
    gsize len = 0;
    g_autofree char *html =
        hv_test_read_fixture("pumpfun/errors/cloudflare-403-challenge.html", &len);
    g_assert_null(hv_pf_parse_roster(html, len, &skipped, &error));
    g_assert_error(error, HV_ERROR, HV_EPROTO);
    g_assert_nonnull(strstr(error->message, "malformed JSON"));
}

/* ---- hv_pf_parse_live_info -------------------------------------------------------------- */

static void
test_parse_live_info(void)
{
    hv_pf_live_info info;
    g_autoptr(GError) error = NULL;

    /* offline: empty or blank body */
    memset(&info, 0x5a, sizeof(info));
    g_assert_true(hv_pf_parse_live_info("", 0, &info, &error));
    g_assert_no_error(error);
    g_assert_false(info.present);
    g_assert_false(info.is_live);
    g_assert_null(info.thumbnail);
    g_assert_null(info.title);
    g_assert_true(hv_pf_parse_live_info(" \r\n\t ", 5, &info, &error));
    g_assert_no_error(error);
    g_assert_false(info.present);
    gsize len = 99;
    g_autofree char *offline = hv_test_read_fixture("pumpfun/errors/livestream-offline.body", &len);
    g_assert_cmpuint(len, ==, 0);
    g_assert_true(hv_pf_parse_live_info(offline, len, &info, &error));
    g_assert_false(info.present);

    /* the fixture object */
    g_autofree char *body = hv_test_read_fixture("pumpfun/livestream-info.json", &len);
    g_assert_true(hv_pf_parse_live_info(body, len, &info, &error));
    g_assert_no_error(error);
    g_assert_true(info.present);
    g_assert_true(info.is_live);
    g_assert_cmpint(info.num_participants, ==, 1840);
    g_assert_cmpint(info.stream_id, ==, 2421674);
    g_assert_cmpstr(info.thumbnail, ==,
                    "https://example.com/livestream-thumbnails/2421674/1795532269425.jpeg");
    g_assert_cmpstr(info.title, ==, "zero-g snack review #41");
    hv_pf_live_info_clear(&info);
    g_assert_null(info.thumbnail);
    g_assert_null(info.title);

    /* every object in the by-mint fixture agrees with its own fields */
    g_autofree char *by_mint = hv_test_read_fixture("pumpfun/livestream-info-by-mint.json", &len);
    json_t *map = json_loadb(by_mint, len, 0, NULL);
    g_assert_nonnull(map);
    const char *mint;
    json_t *obj;
    unsigned checked = 0;
    json_object_foreach(map, mint, obj)
    {
        if (json_is_null(obj)) {
            g_assert_cmpstr(mint, ==, MINT_FOGGY);
            continue;
        }
        char *text = json_dumps(obj, JSON_COMPACT);
        g_assert_true(hv_pf_parse_live_info(text, strlen(text), &info, &error));
        g_assert_no_error(error);
        g_assert_true(info.present);
        g_assert_cmpint(info.is_live, ==, json_is_true(json_object_get(obj, "isLive")));
        g_assert_cmpint(info.num_participants, ==,
                        json_integer_value(json_object_get(obj, "numParticipants")));
        g_assert_cmpint(info.stream_id, ==, json_integer_value(json_object_get(obj, "id")));
        g_assert_cmpstr(info.title, ==, json_string_value(json_object_get(obj, "title")));
        hv_pf_live_info_clear(&info);
        free(text);
        checked++;
    }
    g_assert_cmpuint(checked, ==, 11);
    json_decref(map);

    /* missing fields default; "" thumbnail is NULL */
    static const char sparse[] = "{\"isLive\": false, \"thumbnail\": \"\"}";
    g_assert_true(hv_pf_parse_live_info(sparse, strlen(sparse), &info, &error));
    g_assert_true(info.present);
    g_assert_false(info.is_live);
    g_assert_cmpint(info.num_participants, ==, 0);
    g_assert_cmpint(info.stream_id, ==, 0);
    g_assert_null(info.thumbnail);
    g_assert_null(info.title);
    hv_pf_live_info_clear(&info);

    /* malformed / not an object */
    static const char *bad[] = {"{\"isLive\": tru", "<html>", "[]", "null", "\"x\""};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_clear_error(&error);
        if (hv_pf_parse_live_info(bad[i], strlen(bad[i]), &info, &error)) {
            g_error("livestream body \"%s\" accepted", bad[i]);
        }
        g_assert_error(error, HV_ERROR, HV_EPROTO);
        g_assert_false(info.present);
    }
}

/* ---- hv_pf_stream_from_coin ------------------------------------------------------------- */

static void
test_stream_from_coin(void)
{
    gsize len = 0;
    g_autofree char *coin = hv_test_read_fixture("pumpfun/coin.json", &len);
    g_autoptr(GError) error = NULL;

    /* live and present: /livestream wins for live state and count */
    hv_pf_live_info live = {
        .present = true,
        .is_live = true,
        .num_participants = 900,
        .stream_id = 7,
        .thumbnail = (char *)"https://example.com/t.jpeg",
        .title = (char *)"chat picks the broth",
    };
    g_autoptr(hv_pf_stream) a = hv_pf_stream_from_coin(coin, len, &live, &error);
    g_assert_no_error(error);
    g_assert_nonnull(a);
    g_assert_cmpstr(a->mint_id, ==, MINT_NOODLE);
    g_assert_cmpstr(a->name, ==, "Midnight Noodle Club");
    g_assert_cmpint(a->num_participants, ==, 900);
    g_assert_true(a->is_currently_live);
    g_assert_cmpstr(a->thumbnail, ==, "https://example.com/t.jpeg");
    g_assert_cmpstr(a->livestream_title, ==, "chat picks the broth");
    g_assert_null(a->telegram);
    g_assert_cmpfloat(a->market_cap, ==, 288.690897794);
    g_assert_cmpint(json_integer_value(json_object_get(a->raw, "num_participants")), ==, 900);
    json_t *j = rendered_json(a);
    g_assert_cmpint(json_integer_value(json_object_get(j, "num_participants")), ==, 900);
    g_assert_true(json_is_true(json_object_get(j, "is_currently_live")));
    g_assert_cmpstr(json_string_value(json_object_get(j, "livestream_title")), ==,
                    "chat picks the broth");
    json_decref(j);

    /* present but not live: count from /livestream, not live */
    hv_pf_live_info idle = {.present = true, .is_live = false, .num_participants = 5};
    g_autoptr(hv_pf_stream) b = hv_pf_stream_from_coin(coin, len, &idle, &error);
    g_assert_no_error(error);
    g_assert_false(b->is_currently_live);
    g_assert_cmpint(b->num_participants, ==, 5);

    /* not present (empty /livestream body): offline, 0 viewers */
    hv_pf_live_info offline = {.present = false};
    g_autoptr(hv_pf_stream) c = hv_pf_stream_from_coin(coin, len, &offline, &error);
    g_assert_no_error(error);
    g_assert_false(c->is_currently_live);
    g_assert_cmpint(c->num_participants, ==, 0);
    g_assert_null(c->livestream_title);

    /* live state unknown: the coin's own values */
    g_autoptr(hv_pf_stream) d = hv_pf_stream_from_coin(coin, len, NULL, &error);
    g_assert_no_error(error);
    g_assert_true(d->is_currently_live);
    g_assert_cmpint(d->num_participants, ==, 0);
    g_assert_null(d->thumbnail);

    /* the same with a coin that reports its own viewers (coin.json says 0) */
    json_t *obj = json_loadb(coin, len, 0, NULL);
    g_assert_nonnull(obj);
    json_object_set_new(obj, "num_participants", json_integer(42));
    char *coin42 = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    g_autoptr(hv_pf_stream) own = hv_pf_stream_from_coin(coin42, strlen(coin42), NULL, &error);
    g_assert_no_error(error);
    g_assert_true(own->is_currently_live);
    g_assert_cmpint(own->num_participants, ==, 42);
    g_autoptr(hv_pf_stream) gone = hv_pf_stream_from_coin(coin42, strlen(coin42), &offline, &error);
    g_assert_no_error(error);
    g_assert_false(gone->is_currently_live);
    g_assert_cmpint(gone->num_participants, ==, 0);
    g_autoptr(hv_pf_stream) live900 = hv_pf_stream_from_coin(coin42, strlen(coin42), &live, &error);
    g_assert_no_error(error);
    g_assert_cmpint(live900->num_participants, ==, 900);
    free(coin42);

    /* wrapped in {"data": ...} and in a one-element array */
    g_autofree char *wrapped = g_strdup_printf("{\"data\": %s}", coin);
    g_autoptr(hv_pf_stream) e = hv_pf_stream_from_coin(wrapped, strlen(wrapped), &live, &error);
    g_assert_no_error(error);
    g_assert_nonnull(e);
    g_assert_cmpstr(e->mint_id, ==, MINT_NOODLE);
    g_assert_cmpint(e->num_participants, ==, 900);
    g_assert_true(e->is_currently_live);
    g_autofree char *array = g_strdup_printf("[%s]", coin);
    g_autoptr(hv_pf_stream) f = hv_pf_stream_from_coin(array, strlen(array), NULL, &error);
    g_assert_no_error(error);
    g_assert_nonnull(f);
    g_assert_cmpstr(f->mint_id, ==, MINT_NOODLE);
    g_assert_cmpstr(f->symbol, ==, "NOODL");
    g_assert_cmpstr(f->json, ==, d->json);
}

static void
test_stream_from_coin_errors(void)
{
    static const char *bad[] = {
        "", "{", "[]", "[1, 2]", "\"coin\"", "{\"name\": \"no mint\"}", "{\"mint\": \"bad\"}",
    };
    hv_pf_live_info live = {.present = true, .is_live = true, .num_participants = 1};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        hv_pf_stream *s = hv_pf_stream_from_coin(bad[i], strlen(bad[i]), &live, &error);
        if (s != NULL) {
            g_error("coin body \"%s\" accepted", bad[i]);
        }
        g_assert_error(error, HV_ERROR, HV_EPROTO);
    }
    gsize len = 0;
    g_autofree char *not_found = hv_test_read_fixture("pumpfun/errors/coin-not-found.json", &len);
    g_autoptr(GError) error = NULL;
    g_assert_null(hv_pf_stream_from_coin(not_found, len, NULL, &error));
    g_assert_error(error, HV_ERROR, HV_EPROTO);
    g_assert_nonnull(strstr(error->message, "mint"));
}

/* ---- hv_pf_check_response --------------------------------------------------------------- */

static void
expect_check(const hv_pf_response *r, const char *endpoint, bool allow_empty, int code,
             const char *needle)
{
    g_autoptr(GError) error = NULL;
    bool ok = hv_pf_check_response(r, endpoint, allow_empty, &error);
    if (code == 0) {
        g_assert_no_error(error);
        g_assert_true(ok);
        return;
    }
    g_assert_false(ok);
    g_assert_error(error, HV_ERROR, code);
    if (strstr(error->message, endpoint) == NULL) {
        g_error("message \"%s\" does not name endpoint %s", error->message, endpoint);
    }
    if (needle != NULL && strstr(error->message, needle) == NULL) {
        g_error("message \"%s\" does not contain \"%s\"", error->message, needle);
    }
}

static void
test_check_response(void)
{
    gsize len = 0;
    g_autofree char *body504 = hv_test_read_fixture("pumpfun/errors/cloudflare-504.txt", &len);
    gsize len504 = len;
    g_autofree char *challenge =
        hv_test_read_fixture("pumpfun/errors/cloudflare-403-challenge.html", &len);
    gsize len_challenge = len;
    g_autofree char *body429 = hv_test_read_fixture("pumpfun/errors/rate-limited-429.json", &len);
    gsize len429 = len;
    g_autofree char *body1016 = hv_test_read_fixture("pumpfun/errors/cloudflare-1016.txt", &len);
    gsize len1016 = len;

    hv_pf_response r = {.url = "http://x/coins/currently-live", .body = "", .len = 0};

    r.status = 0;
    r.timed_out = true;
    r.error = "Operation timed out";
    r.elapsed_ms = 15000;
    expect_check(&r, "currently-live", false, HV_ETIMEDOUT, "Operation timed out");
    expect_check(&r, "currently-live", true, HV_ETIMEDOUT, "15000 ms");

    r.timed_out = false;
    r.error = "Could not resolve host";
    expect_check(&r, "coin", false, HV_EIO, "Could not resolve host");
    r.error = NULL;
    expect_check(&r, "livestream", true, HV_EIO, "no answer");

    r = (hv_pf_response){.status = 429,
                         .content_type = "application/json",
                         .retry_after = "60",
                         .body = body429,
                         .len = len429};
    expect_check(&r, "currently-live", false, HV_ERATELIMIT, "429");
    expect_check(&r, "currently-live", false, HV_ERATELIMIT, "retry after 60 s");
    r.retry_after = NULL;
    expect_check(&r, "coin", false, HV_ERATELIMIT, "HTTP 429");

    r = (hv_pf_response){.status = 403,
                         .content_type = "text/html; charset=UTF-8",
                         .cf_challenge = true,
                         .body = "",
                         .len = 0};
    expect_check(&r, "currently-live", false, HV_EUPSTREAM, "Cloudflare");
    r.cf_challenge = false;
    r.body = challenge;
    r.len = len_challenge;
    expect_check(&r, "coin", false, HV_EUPSTREAM, "Cloudflare");
    /* a 403 that is not a challenge is a plain upstream failure */
    r.body = "{\"message\":\"Forbidden\"}";
    r.len = strlen(r.body);
    r.content_type = "application/json";
    {
        g_autoptr(GError) error = NULL;
        g_assert_false(hv_pf_check_response(&r, "coin", false, &error));
        g_assert_error(error, HV_ERROR, HV_EUPSTREAM);
        g_assert_null(strstr(error->message, "Cloudflare"));
        g_assert_cmpstr(error->message, ==, "pump.fun coin: HTTP 403");
    }

    r = (hv_pf_response){
        .status = 504, .content_type = "text/plain; charset=UTF-8", .body = body504, .len = len504};
    expect_check(&r, "currently-live", false, HV_EUPSTREAM, "error code: 504");
    {
        g_autoptr(GError) error = NULL;
        g_assert_false(hv_pf_check_response(&r, "currently-live", false, &error));
        g_assert_cmpstr(error->message, ==, "pump.fun currently-live: HTTP 504 (error code: 504)");
    }
    r = (hv_pf_response){
        .status = 530, .content_type = "text/plain", .body = body1016, .len = len1016};
    expect_check(&r, "coin", false, HV_EUPSTREAM, "HTTP 530 (error code: 1016)");
    /* JSON and HTML bodies are not quoted */
    r = (hv_pf_response){
        .status = 500, .content_type = "application/json", .body = "{\"x\":1}", .len = 7};
    {
        g_autoptr(GError) error = NULL;
        g_assert_false(hv_pf_check_response(&r, "coin", false, &error));
        g_assert_error(error, HV_ERROR, HV_EUPSTREAM);
        g_assert_cmpstr(error->message, ==, "pump.fun coin: HTTP 500");
    }
    r = (hv_pf_response){.status = 404, .content_type = NULL, .body = "", .len = 0};
    expect_check(&r, "coin", true, HV_EUPSTREAM, "HTTP 404");

    /* 200 and 201 */
    r = (hv_pf_response){.status = 200, .content_type = "application/json", .body = "", .len = 0};
    expect_check(&r, "currently-live", false, HV_EPROTO, "empty body");
    expect_check(&r, "livestream", true, 0, NULL);
    r.body = "[]";
    r.len = 2;
    expect_check(&r, "currently-live", false, 0, NULL);
    r.status = 201;
    expect_check(&r, "join", false, 0, NULL);
    r.status = 204;
    r.body = "";
    r.len = 0;
    expect_check(&r, "join", true, HV_EUPSTREAM, "HTTP 204");

    /* a NULL error pointer is allowed */
    r.status = 0;
    g_assert_false(hv_pf_check_response(&r, "coin", false, NULL));
}

/* ---- hv_pf_cache_decide ----------------------------------------------------------------- */

static const char *
verdict_name(hv_pf_cache_verdict v)
{
    switch (v) {
    case HV_PF_SERVE_FRESH:
        return "SERVE_FRESH";
    case HV_PF_SERVE_STALE:
        return "SERVE_STALE";
    case HV_PF_WAIT:
        return "WAIT";
    case HV_PF_FAIL:
        return "FAIL";
    }
    return "?";
}

static void
test_cache_decide(void)
{
    const int64_t now = 1000000, ttl = 10000;
    static const struct {
        const char *what;
        bool have_data;
        int64_t age_ms;
        bool in_flight;
        int64_t retry_at_rel; /* retry_at_ms - now (> 0: backoff in force); 0 = none */
        hv_pf_cache_verdict verdict;
        bool start_refresh;
    } cases[] = {
        /* fresh data: served whatever else is going on */
        {"fresh idle", true, 5000, false, 0, HV_PF_SERVE_FRESH, false},
        {"fresh in flight", true, 5000, true, 0, HV_PF_SERVE_FRESH, false},
        {"fresh in backoff", true, 5000, false, 3000, HV_PF_SERVE_FRESH, false},
        {"fresh age 0", true, 0, false, 0, HV_PF_SERVE_FRESH, false},
        {"fresh age ttl-1", true, 9999, false, 0, HV_PF_SERVE_FRESH, false},
        /* stale data */
        {"stale idle", true, 20000, false, 0, HV_PF_SERVE_STALE, true},
        {"stale in flight", true, 20000, true, 0, HV_PF_SERVE_STALE, false},
        {"stale in backoff", true, 20000, false, 3000, HV_PF_SERVE_STALE, false},
        {"stale in flight and backoff", true, 20000, true, 3000, HV_PF_SERVE_STALE, false},
        {"stale backoff over", true, 20000, false, -1, HV_PF_SERVE_STALE, true},
        {"age == ttl is stale", true, 10000, false, 0, HV_PF_SERVE_STALE, true},
        {"age == ttl in flight", true, 10000, true, 0, HV_PF_SERVE_STALE, false},
        /* no data */
        {"empty idle", false, 0, false, 0, HV_PF_WAIT, true},
        {"empty in flight", false, 0, true, 0, HV_PF_WAIT, false},
        {"empty in flight and backoff", false, 0, true, 3000, HV_PF_WAIT, false},
        {"empty in backoff", false, 0, false, 3000, HV_PF_FAIL, false},
        {"empty backoff over", false, 0, false, -1, HV_PF_WAIT, true},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        hv_pf_cache_state st = {
            .have_data = cases[i].have_data,
            .fetched_at_ms = cases[i].have_data ? now - cases[i].age_ms : 0,
            .in_flight = cases[i].in_flight,
            .retry_at_ms = cases[i].retry_at_rel != 0 ? now + cases[i].retry_at_rel : 0,
        };
        hv_pf_cache_decision d = hv_pf_cache_decide(&st, now, ttl);
        if (d.verdict != cases[i].verdict || d.start_refresh != cases[i].start_refresh) {
            g_error("%s: got %s%s, want %s%s", cases[i].what, verdict_name(d.verdict),
                    d.start_refresh ? " + refresh" : "", verdict_name(cases[i].verdict),
                    cases[i].start_refresh ? " + refresh" : "");
        }
    }

    /* retry_at exactly now: the backoff is over */
    hv_pf_cache_state st = {.have_data = false, .in_flight = false, .retry_at_ms = now};
    hv_pf_cache_decision d = hv_pf_cache_decide(&st, now, ttl);
    g_assert_cmpint(d.verdict, ==, HV_PF_WAIT);
    g_assert_true(d.start_refresh);
    st.retry_at_ms = now + 1;
    d = hv_pf_cache_decide(&st, now, ttl);
    g_assert_cmpint(d.verdict, ==, HV_PF_FAIL);
    g_assert_false(d.start_refresh);
}

/* ---- hv_pf_backoff_next_ms -------------------------------------------------------------- */

static void
test_backoff(void)
{
    g_assert_cmpint(hv_pf_backoff_next_ms(0, NULL), ==, 1000);
    g_assert_cmpint(hv_pf_backoff_next_ms(-5, NULL), ==, 1000);
    int64_t want[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000};
    int64_t d = 0;
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        d = hv_pf_backoff_next_ms(d, NULL);
        g_assert_cmpint(d, ==, want[i]);
    }
    g_assert_cmpint(hv_pf_backoff_next_ms(1000, NULL), ==, 2000);
    g_assert_cmpint(hv_pf_backoff_next_ms(HV_PF_BACKOFF_MAX_MS, NULL), ==, HV_PF_BACKOFF_MAX_MS);

    /* Retry-After raises the delay, capped at ten minutes */
    g_assert_cmpint(hv_pf_backoff_next_ms(0, "120"), ==, 120000);
    g_assert_cmpint(hv_pf_backoff_next_ms(60000, "120"), ==, 120000);
    g_assert_cmpint(hv_pf_backoff_next_ms(0, "9999"), ==, HV_PF_RETRY_AFTER_MAX_MS);
    g_assert_cmpint(hv_pf_backoff_next_ms(0, "600"), ==, 600000);
    g_assert_cmpint(hv_pf_backoff_next_ms(0, "601"), ==, 600000);
    /* a Retry-After too large to multiply must still cap, not overflow */
    g_assert_cmpint(hv_pf_backoff_next_ms(0, "10000000000000000"), ==, HV_PF_RETRY_AFTER_MAX_MS);
    g_assert_cmpint(hv_pf_backoff_next_ms(0, "9223372036854775807"), ==, HV_PF_RETRY_AFTER_MAX_MS);
    /* ...but never lowers it */
    g_assert_cmpint(hv_pf_backoff_next_ms(16000, "1"), ==, 32000);
    g_assert_cmpint(hv_pf_backoff_next_ms(0, "0"), ==, 1000);
    /* garbage and HTTP dates are ignored */
    static const char *garbage[] = {
        "", "abc", "-30", "1.5", " 60", "60s", "Wed, 21 Oct 2015 07:28:00 GMT"};
    for (size_t i = 0; i < G_N_ELEMENTS(garbage); i++) {
        g_assert_cmpint(hv_pf_backoff_next_ms(0, garbage[i]), ==, 1000);
        g_assert_cmpint(hv_pf_backoff_next_ms(4000, garbage[i]), ==, 8000);
    }
}

/* ---- hv_pf_roster ----------------------------------------------------------------------- */

static void
test_roster_fixture(void)
{
    unsigned skipped = 0;
    g_autoptr(GPtrArray) streams = parse_fixture_roster(&skipped);

    /* expectations computed from the fixture itself */
    int64_t want_total = 0;
    unsigned want_live = 0, want_nsfw = 0;
    for (guint i = 0; i < streams->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(streams, i);
        json_t *live = json_object_get(s->raw, "is_currently_live");
        if (json_is_true(live)) {
            want_live++;
            want_total += json_integer_value(json_object_get(s->raw, "num_participants"));
            want_nsfw += json_is_true(json_object_get(s->raw, "nsfw"));
        }
    }
    g_assert_cmpuint(want_live, ==, 11);
    g_assert_cmpuint(want_nsfw, ==, 3);

    g_autoptr(hv_pf_roster) r = hv_pf_roster_new(streams, 12345, 1795532400000);
    g_assert_cmpuint(r->all->len, ==, 11);
    g_assert_cmpuint(r->sfw->len, ==, 8);
    g_assert_cmpuint(r->nsfw_count, ==, 3);
    g_assert_cmpuint(r->popular->len, ==, 11);
    g_assert_cmpuint(r->popular_sfw->len, ==, 8);
    g_assert_cmpint(r->total_participants, ==, want_total);
    g_assert_cmpint(r->total_participants, ==, 5955);
    g_assert_cmpint(r->fetched_at_ms, ==, 12345);
    g_assert_cmpint(r->fetched_at_wall_ms, ==, 1795532400000);
    g_assert_cmpuint(g_hash_table_size(r->by_mint), ==, 11);

    /* upstream order kept in all; the not-live row left out everywhere */
    for (guint i = 0; i < r->all->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(r->all, i);
        g_assert_true(s == g_ptr_array_index(streams, i));
        g_assert_true(s->is_currently_live);
        g_assert_true(g_hash_table_lookup(r->by_mint, s->mint_id) == s);
    }
    g_assert_null(g_hash_table_lookup(r->by_mint, MINT_FOGGY));
    hv_pf_stream *velvet = g_hash_table_lookup(r->by_mint, MINT_VELVET);
    g_assert_nonnull(velvet);
    g_assert_cmpstr(velvet->name, ==, "Velvet Static");
    for (guint i = 0; i < r->sfw->len; i++) {
        g_assert_false(((hv_pf_stream *)g_ptr_array_index(r->sfw, i))->nsfw);
    }

    /* popular: descending by viewers */
    static const int64_t want_popular[] = {1843, 1210, 962, 611, 488, 350, 207, 143, 88, 41, 12};
    for (guint i = 0; i < r->popular->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(r->popular, i);
        g_assert_cmpint(s->num_participants, ==, want_popular[i]);
    }
    g_assert_cmpstr(((hv_pf_stream *)g_ptr_array_index(r->popular, 0))->mint_id, ==, MINT_OTTER);
    static const int64_t want_popular_sfw[] = {1843, 1210, 962, 611, 350, 207, 88, 41};
    for (guint i = 0; i < r->popular_sfw->len; i++) {
        hv_pf_stream *s = g_ptr_array_index(r->popular_sfw, i);
        g_assert_cmpint(s->num_participants, ==, want_popular_sfw[i]);
        g_assert_false(s->nsfw);
    }
}

static void
test_roster_sort_stable_and_dedup(void)
{
    g_autoptr(GPtrArray) streams =
        g_ptr_array_new_with_free_func((GDestroyNotify)hv_pf_stream_unref);
    /* mint, viewers, nsfw, live */
    g_ptr_array_add(streams, make_stream(MINT_OTTER, 10, false, true));  /* 0 */
    g_ptr_array_add(streams, make_stream(MINT_NOODLE, 20, true, true));  /* 1 */
    g_ptr_array_add(streams, make_stream(MINT_TEACUP, 10, false, true)); /* 2 */
    g_ptr_array_add(streams, make_stream(MINT_VELVET, 20, false, true)); /* 3 */
    g_ptr_array_add(streams, make_stream(MINT_FOGGY, 99, false, false)); /* not live */
    g_ptr_array_add(streams, make_stream(MINT_PIXEL, 10, true, true));   /* 5 */
    g_ptr_array_add(streams, make_stream(MINT_OTTER, 500, false, true)); /* duplicate */
    g_ptr_array_add(streams, make_stream(MINT_FOGGY, 30, false, true));  /* live after not-live */

    g_autoptr(hv_pf_roster) r = hv_pf_roster_new(streams, 1, 2);
    g_assert_cmpuint(r->all->len, ==, 6);
    g_assert_cmpuint(r->nsfw_count, ==, 2);
    g_assert_cmpint(r->total_participants, ==, 10 + 20 + 10 + 20 + 10 + 30);
    /* the duplicate keeps the first */
    hv_pf_stream *otter = g_hash_table_lookup(r->by_mint, MINT_OTTER);
    g_assert_true(otter == g_ptr_array_index(streams, 0));
    g_assert_cmpint(otter->num_participants, ==, 10);
    /* a not-live row does not block a later live row with the same mint */
    hv_pf_stream *foggy = g_hash_table_lookup(r->by_mint, MINT_FOGGY);
    g_assert_true(foggy == g_ptr_array_index(streams, 7));

    static const guint want_all[] = {0, 1, 2, 3, 5, 7};
    for (guint i = 0; i < G_N_ELEMENTS(want_all); i++) {
        g_assert_true(g_ptr_array_index(r->all, i) == g_ptr_array_index(streams, want_all[i]));
    }
    /* ties keep upstream order */
    static const guint want_popular[] = {7, 1, 3, 0, 2, 5};
    for (guint i = 0; i < G_N_ELEMENTS(want_popular); i++) {
        hv_pf_stream *s = g_ptr_array_index(r->popular, i);
        if (s != g_ptr_array_index(streams, want_popular[i])) {
            g_error("popular[%u] is %s (%" G_GINT64_FORMAT "), want row %u", i, s->mint_id,
                    s->num_participants, want_popular[i]);
        }
    }
    static const guint want_popular_sfw[] = {7, 3, 0, 2};
    g_assert_cmpuint(r->popular_sfw->len, ==, G_N_ELEMENTS(want_popular_sfw));
    for (guint i = 0; i < G_N_ELEMENTS(want_popular_sfw); i++) {
        g_assert_true(g_ptr_array_index(r->popular_sfw, i) ==
                      g_ptr_array_index(streams, want_popular_sfw[i]));
    }

    /* many equal counts: still upstream order */
    static const char *mints[] = {MINT_OTTER,  MINT_NOODLE, MINT_TEACUP,
                                  MINT_VELVET, MINT_PIXEL,  MINT_FOGGY};
    g_autoptr(GPtrArray) ties = g_ptr_array_new_with_free_func((GDestroyNotify)hv_pf_stream_unref);
    for (size_t i = 0; i < G_N_ELEMENTS(mints); i++) {
        g_ptr_array_add(ties, make_stream(mints[i], 7, false, true));
    }
    g_autoptr(hv_pf_roster) rt = hv_pf_roster_new(ties, 1, 2);
    for (guint i = 0; i < ties->len; i++) {
        g_assert_true(g_ptr_array_index(rt->popular, i) == g_ptr_array_index(ties, i));
    }

    /* an empty roster */
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    g_autoptr(hv_pf_roster) re = hv_pf_roster_new(none, 1, 2);
    g_assert_cmpuint(re->all->len, ==, 0);
    g_assert_cmpuint(re->popular->len, ==, 0);
    g_assert_cmpint(re->total_participants, ==, 0);
    g_assert_cmpuint(re->nsfw_count, ==, 0);
}

static void
test_refcounts(void)
{
    unsigned skipped = 0;
    GPtrArray *streams = parse_fixture_roster(&skipped);
    hv_pf_roster *r = hv_pf_roster_new(streams, 1, 2);
    g_ptr_array_unref(streams); /* the roster holds its own references */
    hv_pf_stream *kept = hv_pf_stream_ref(g_hash_table_lookup(r->by_mint, MINT_TEACUP));
    g_assert_nonnull(kept);

    /* a second roster reference keeps it alive past one unref */
    hv_pf_roster *r2 = hv_pf_roster_ref(r);
    g_assert_true(r2 == r);
    hv_pf_roster_unref(r);
    g_assert_cmpuint(r2->all->len, ==, 11);
    g_assert_cmpstr(((hv_pf_stream *)g_ptr_array_index(r2->all, 0))->mint_id, ==, MINT_OTTER);
    hv_pf_roster_unref(r2);

    /* the stream outlives its roster */
    g_assert_cmpstr(kept->mint_id, ==, MINT_TEACUP);
    g_assert_cmpstr(kept->name, ==, "Quantum Teacup");
    g_assert_cmpint(kept->num_participants, ==, 611);
    json_t *j = rendered_json(kept);
    g_assert_cmpstr(json_string_value(json_object_get(j, "symbol")), ==, "QTEA");
    json_decref(j);
    g_assert_cmpstr(json_string_value(json_object_get(kept->raw, "mint")), ==, MINT_TEACUP);
    hv_pf_stream_unref(kept);

    hv_pf_roster_unref(NULL);
    hv_pf_stream_unref(NULL);

    /* the raw object is shared, not copied */
    json_t *raw = json_pack("{s:s}", "mint", MINT_PIXEL);
    hv_pf_stream *s = hv_pf_stream_new_from_json(raw);
    g_assert_true(s->raw == raw);
    g_assert_cmpint(raw->refcount, ==, 2);
    hv_pf_stream_unref(s);
    g_assert_cmpint(raw->refcount, ==, 1);
    json_decref(raw);
}

/* ---- catalog and the shared roster (a fake pump.fun on loopback) ------------------------ */

/* A fake pump.fun on 127.0.0.1: every request gets the currently-live fixture (one short page)
 * and is counted. One thread accepts and answers, one connection at a time. */
typedef struct {
    int listen_fd;
    GThread *thread;
    gint stop; /* atomic */
    char *base_url;
    char *body;
    gsize len;
    gint requests; /* atomic */
} fake_pumpfun;

static void
fake_pumpfun_answer(fake_pumpfun *f, int fd)
{
    g_autoptr(GString) req = g_string_new(NULL);
    while (strstr(req->str, "\r\n\r\n") == NULL && req->len < 65536) {
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            return;
        }
        g_string_append_len(req, buf, n);
    }
    g_atomic_int_inc(&f->requests);
    g_autoptr(GString) resp = g_string_new(NULL);
    g_string_append_printf(resp,
                           "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           "Content-Length: %" G_GSIZE_FORMAT "\r\nConnection: close\r\n\r\n",
                           f->len);
    g_string_append_len(resp, f->body, (gssize)f->len);
    for (gsize off = 0; off < resp->len;) {
        ssize_t n = send(fd, resp->str + off, resp->len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            return;
        }
        off += (gsize)n;
    }
}

static gpointer
fake_pumpfun_thread(gpointer user_data)
{
    fake_pumpfun *f = user_data;
    while (!g_atomic_int_get(&f->stop)) {
        struct pollfd pfd = {.fd = f->listen_fd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        int fd = accept(f->listen_fd, NULL, NULL);
        if (fd >= 0) {
            fake_pumpfun_answer(f, fd);
            close(fd);
        }
    }
    return NULL;
}

static void
fake_pumpfun_start(fake_pumpfun *f)
{
    memset(f, 0, sizeof(*f));
    f->body = hv_test_read_fixture("pumpfun/currently-live.json", &f->len);
    f->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(f->listen_fd, >=, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    g_assert_cmpint(bind(f->listen_fd, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(f->listen_fd, 16), ==, 0);
    socklen_t alen = sizeof(addr);
    g_assert_cmpint(getsockname(f->listen_fd, (struct sockaddr *)&addr, &alen), ==, 0);
    f->base_url = g_strdup_printf("http://127.0.0.1:%u", ntohs(addr.sin_port));
    f->thread = g_thread_new("fake-pumpfun", fake_pumpfun_thread, f);
}

static void
fake_pumpfun_stop(fake_pumpfun *f)
{
    g_atomic_int_set(&f->stop, 1);
    g_thread_join(f->thread);
    close(f->listen_fd);
    g_free(f->base_url);
    g_free(f->body);
}

/* The fake share hooks: answers[] in turn (the last one repeats), with body for FRESH/BUSY. */
typedef struct {
    hv_config cfg;
    fake_pumpfun up;
    hv_pf_client *client;
    hv_pf_catalog *cat;
    const hv_pf_share_answer *answers;
    size_t n_answers;
    const char *share_body; /* nullable: what FRESH and BUSY give */
    int64_t share_age_ms;
    unsigned claims, publishes, coin_batches;
    bool published_ok;
    char *published;
    /* the roster answer */
    bool answered;
    unsigned answers_seen;
    unsigned live;
    hv_pf_cache_info info;
} share_test;

static hv_pf_share_answer
on_test_share_claim(int64_t ttl_ms, char **body_out, int64_t *age_ms_out, void *user_data)
{
    share_test *t = user_data;
    g_assert_cmpint(ttl_ms, ==, t->cfg.catalog_ttl_ms);
    hv_pf_share_answer a = t->answers[MIN(t->claims, t->n_answers - 1)];
    t->claims++;
    if ((a == HV_PF_SHARE_FRESH || a == HV_PF_SHARE_BUSY) && t->share_body != NULL) {
        *body_out = g_strdup(t->share_body);
        *age_ms_out = t->share_age_ms;
    }
    return a;
}

static void
on_test_share_publish(const char *body, bool ok, void *user_data)
{
    share_test *t = user_data;
    t->publishes++;
    t->published_ok = ok;
    g_free(t->published);
    t->published = g_strdup(body);
}

static void
on_test_coins(GPtrArray *streams, void *user_data)
{
    (void)streams;
    share_test *t = user_data;
    t->coin_batches++;
}

static void
on_test_roster(hv_pf_roster *roster, const hv_pf_cache_info *info, const GError *error,
               void *user_data)
{
    share_test *t = user_data;
    g_assert_no_error(error);
    g_assert_nonnull(roster);
    t->answered = true;
    t->answers_seen++;
    t->live = roster->all->len;
    t->info = *info;
}

static gboolean
on_test_timeout(gpointer user_data)
{
    (void)user_data;
    g_error("the catalog did not answer in time");
    return G_SOURCE_REMOVE;
}

/* Iterates the main loop until cond is true (at most 10 s). */
static void
run_until(const bool *cond)
{
    guint guard = g_timeout_add_seconds(10, on_test_timeout, NULL);
    while (!*cond) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_source_remove(guard);
}

/* A catalog on the fake pump.fun; with_share sets the share hooks. */
static void
share_test_init(share_test *t, bool with_share, const hv_pf_share_answer *answers, size_t n_answers)
{
    memset(t, 0, sizeof(*t));
    fake_pumpfun_start(&t->up);
    t->cfg.pumpfun_frontend_api = t->up.base_url;
    t->cfg.pumpfun_livestream_api = t->up.base_url;
    t->cfg.user_agent = (char *)"haven-test";
    t->cfg.catalog_ttl_ms = 10000;
    t->cfg.roster_max = 1000;
    t->cfg.roster_page_size = 100;
    t->cfg.upstream_connect_timeout_ms = 2000;
    t->cfg.upstream_timeout_ms = 5000;
    t->cfg.upstream_max_body_bytes = 1 << 20;
    t->answers = answers;
    t->n_answers = n_answers;
    t->client = hv_pf_client_new(&t->cfg);
    hv_pf_catalog_callbacks cb = {.on_coins = on_test_coins};
    if (with_share) {
        cb.share_claim = on_test_share_claim;
        cb.share_publish = on_test_share_publish;
    }
    t->cat = hv_pf_catalog_new(&t->cfg, t->client, &cb, t);
}

static void
share_test_clear(share_test *t)
{
    hv_pf_catalog_free(t->cat);
    hv_pf_client_free(t->client);
    fake_pumpfun_stop(&t->up);
    g_free(t->published);
}

/* Asks for the roster (nothing cached: the answer comes later) and waits for it. */
static void
get_roster_and_wait(share_test *t)
{
    t->answered = false;
    hv_pf_waiter *w = hv_pf_catalog_get_roster(t->cat, on_test_roster, t);
    g_assert_nonnull(w);
    g_assert_false(t->answered);
    run_until(&t->answered);
}

/* Without the hooks: one fetch from pump.fun, stored through on_coins, as always. */
static void
test_catalog_fetch_without_share(void)
{
    share_test t;
    share_test_init(&t, false, NULL, 0);
    get_roster_and_wait(&t);
    g_assert_cmpuint(t.live, ==, 11);
    g_assert_false(t.info.stale);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 1);
    g_assert_cmpuint(t.coin_batches, ==, 1);
    /* Fresh now: answered at once, nothing fetched. */
    t.answered = false;
    g_assert_null(hv_pf_catalog_get_roster(t.cat, on_test_roster, &t));
    g_assert_true(t.answered);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 1);
    share_test_clear(&t);
}

/* FRESH: another node's roster is served without a request to pump.fun and is not stored. */
static void
test_catalog_share_fresh(void)
{
    static const hv_pf_share_answer answers[] = {HV_PF_SHARE_FRESH};
    share_test t;
    share_test_init(&t, true, answers, G_N_ELEMENTS(answers));
    t.share_body = t.up.body;
    t.share_age_ms = 3000;
    get_roster_and_wait(&t);
    g_assert_cmpuint(t.live, ==, 11);
    g_assert_cmpuint(t.claims, ==, 1);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 0);
    g_assert_cmpuint(t.coin_batches, ==, 0);
    g_assert_cmpuint(t.publishes, ==, 0);
    g_assert_false(t.info.stale);
    g_assert_cmpint(t.info.age_ms, >=, 3000);
    g_assert_cmpint(t.info.age_ms, <, 6000);
    hv_pf_roster *r = hv_pf_catalog_peek(t.cat);
    g_assert_nonnull(g_hash_table_lookup(r->by_mint, MINT_OTTER));
    g_assert_cmpint(r->fetched_at_wall_ms, <=, g_get_real_time() / 1000 - 3000);
    share_test_clear(&t);
}

/* FETCH: the catalog fetches from pump.fun, stores the coins and publishes their objects. */
static void
test_catalog_share_fetch_publishes(void)
{
    static const hv_pf_share_answer answers[] = {HV_PF_SHARE_FETCH};
    share_test t;
    share_test_init(&t, true, answers, G_N_ELEMENTS(answers));
    get_roster_and_wait(&t);
    g_assert_cmpuint(t.live, ==, 11);
    g_assert_cmpuint(t.claims, ==, 1);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 1);
    g_assert_cmpuint(t.coin_batches, ==, 1);
    g_assert_cmpuint(t.publishes, ==, 1);
    g_assert_true(t.published_ok);
    g_assert_nonnull(t.published);
    /* The published body is the page's coin objects, as a page. */
    json_error_t jerr;
    json_t *got = json_loads(t.published, 0, &jerr);
    json_t *want = json_loads(t.up.body, 0, &jerr);
    g_assert_nonnull(got);
    g_assert_nonnull(want);
    g_assert_true(json_equal(got, want));
    g_assert_null(strchr(t.published, '\n'));
    json_decref(got);
    json_decref(want);
    unsigned skipped = 0;
    g_autoptr(GPtrArray) again =
        hv_pf_parse_roster(t.published, strlen(t.published), &skipped, NULL);
    g_assert_nonnull(again);
    g_assert_cmpuint(again->len, ==, 12);
    share_test_clear(&t);
}

/* BUSY (nothing shared yet), then FRESH: the waiter is answered from the shared roster after
 * one retry, and pump.fun is never asked. */
static void
test_catalog_share_busy_then_fresh(void)
{
    static const hv_pf_share_answer answers[] = {HV_PF_SHARE_BUSY, HV_PF_SHARE_FRESH};
    share_test t;
    share_test_init(&t, true, answers, G_N_ELEMENTS(answers));
    int64_t start = g_get_monotonic_time();
    /* BUSY gives no body: the first answer must wait for the retry. */
    t.share_body = NULL;
    t.answered = false;
    g_assert_nonnull(hv_pf_catalog_get_roster(t.cat, on_test_roster, &t));
    while (t.claims < 1) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_false(t.answered);
    t.share_body = t.up.body;
    run_until(&t.answered);
    g_assert_cmpint(g_get_monotonic_time() - start, >=, (HV_PF_SHARE_RETRY_MS - 50) * 1000);
    g_assert_cmpuint(t.claims, ==, 2);
    g_assert_cmpuint(t.answers_seen, ==, 1);
    g_assert_cmpuint(t.live, ==, 11);
    g_assert_false(t.info.stale);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 0);
    g_assert_cmpuint(t.coin_batches, ==, 0);
    g_assert_cmpuint(t.publishes, ==, 0);
    share_test_clear(&t);
}

/* BUSY with a stale roster: waiters get it at once (marked stale); the retries go on until
 * the other node's roster arrives. */
static void
test_catalog_share_busy_serves_stale(void)
{
    static const hv_pf_share_answer answers[] = {HV_PF_SHARE_BUSY, HV_PF_SHARE_BUSY,
                                                 HV_PF_SHARE_FRESH};
    share_test t;
    share_test_init(&t, true, answers, G_N_ELEMENTS(answers));
    t.share_body = t.up.body;
    t.share_age_ms = 60000;
    get_roster_and_wait(&t);
    g_assert_cmpuint(t.claims, ==, 1);
    g_assert_true(t.info.stale);
    g_assert_cmpint(t.info.age_ms, >=, 60000);
    /* Asked now: the stale roster, at once, and no second refresh. */
    t.answered = false;
    g_assert_null(hv_pf_catalog_get_roster(t.cat, on_test_roster, &t));
    g_assert_true(t.answered);
    g_assert_true(t.info.stale);
    t.share_age_ms = 10;
    while (t.claims < 3) {
        g_main_context_iteration(NULL, TRUE);
    }
    t.answered = false;
    g_assert_null(hv_pf_catalog_get_roster(t.cat, on_test_roster, &t));
    g_assert_true(t.answered);
    g_assert_false(t.info.stale);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 0);
    g_assert_cmpuint(t.publishes, ==, 0);
    share_test_clear(&t);
}

/* BUSY for longer than the upstream timeout: the catalog stops waiting and fetches itself. */
static void
test_catalog_share_busy_gives_up(void)
{
    static const hv_pf_share_answer answers[] = {HV_PF_SHARE_BUSY};
    share_test t;
    share_test_init(&t, true, answers, G_N_ELEMENTS(answers));
    t.cfg.upstream_timeout_ms = 600;
    g_test_expect_message("hv-pumpfun", G_LOG_LEVEL_WARNING, "*another node*fetching it here*");
    get_roster_and_wait(&t);
    g_test_assert_expected_messages();
    g_assert_cmpuint(t.claims, >=, 2);
    g_assert_cmpuint(t.live, ==, 11);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 1);
    g_assert_cmpuint(t.coin_batches, ==, 1);
    g_assert_cmpuint(t.publishes, ==, 1);
    g_assert_true(t.published_ok);
    share_test_clear(&t);
}

/* The shared roster failing (the database is down) does not stop discovery. */
static void
test_catalog_share_error_fetches(void)
{
    static const hv_pf_share_answer answers[] = {HV_PF_SHARE_ERROR};
    share_test t;
    share_test_init(&t, true, answers, G_N_ELEMENTS(answers));
    g_test_expect_message("hv-pumpfun", G_LOG_LEVEL_WARNING, "*shared roster is unavailable*");
    get_roster_and_wait(&t);
    g_test_assert_expected_messages();
    g_assert_cmpuint(t.claims, ==, 1);
    g_assert_cmpuint(t.live, ==, 11);
    g_assert_cmpint(g_atomic_int_get(&t.up.requests), ==, 1);
    g_assert_cmpuint(t.coin_batches, ==, 1);
    share_test_clear(&t);
}

/* ---- livestream/join ------------------------------------------------------------------- */

static void
expect_join(long status, const char *body, int code, const char *token)
{
    hv_pf_response r = {.url = "u",
                        .status = status,
                        .body = body,
                        .len = strlen(body),
                        .content_type = "application/json"};
    g_autofree char *out = NULL;
    g_autoptr(GError) error = NULL;
    bool ok = hv_pf_parse_join(&r, &out, &error);
    if (token != NULL) {
        g_assert_true(ok);
        g_assert_no_error(error);
        g_assert_cmpstr(out, ==, token);
    } else {
        g_assert_false(ok);
        g_assert_null(out);
        g_assert_error(error, HV_ERROR, code);
        g_assert_nonnull(strstr(error->message, "livestream/join"));
    }
}

static void
test_parse_join(void)
{
    gsize len = 0;
    g_autofree char *fixture = hv_test_read_fixture("pumpfun/join-response.json", &len);
    json_t *j = json_loadb(fixture, len, 0, NULL);
    const char *token = json_string_value(json_object_get(j, "token"));
    expect_join(201, fixture, 0, token);
    expect_join(200, fixture, 0, token);
    g_autofree char *no_token = hv_test_read_fixture("pumpfun/errors/join-no-token.json", &len);
    expect_join(201, no_token, HV_ENOTFOUND, NULL);
    g_autofree char *not_live = hv_test_read_fixture("pumpfun/errors/join-not-live.json", &len);
    expect_join(404, not_live, HV_ENOTFOUND, NULL);
    g_autofree char *bad = hv_test_read_fixture("pumpfun/errors/join-bad-request.json", &len);
    expect_join(400, bad, HV_EINVAL, NULL);
    expect_join(201, "{\"token\": \"\"}", HV_ENOTFOUND, NULL);
    expect_join(201, "[1,2]", HV_EPROTO, NULL);
    expect_join(201, "{\"tok", HV_EPROTO, NULL);
    expect_join(429, "{}", HV_ERATELIMIT, NULL);
    expect_join(504, "error code: 504", HV_EUPSTREAM, NULL);
    json_decref(j);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* The catalog cases talk to a fake pump.fun on 127.0.0.1: never through a proxy. */
    g_setenv("no_proxy", "*", TRUE);
    g_setenv("NO_PROXY", "*", TRUE);

    g_test_add_func("/pumpfun/parse/roster-fixture", test_parse_roster_fixture);
    g_test_add_func("/pumpfun/parse/roster-every-row-renders", test_parse_roster_every_row_renders);
    g_test_add_func("/pumpfun/parse/stream-nulls-and-absent", test_parse_roster_nulls_and_absent);
    g_test_add_func("/pumpfun/parse/roster-skips-bad-rows", test_parse_roster_skips_bad_rows);
    g_test_add_func("/pumpfun/parse/roster-errors", test_parse_roster_errors);
    g_test_add_func("/pumpfun/parse/live-info", test_parse_live_info);
    g_test_add_func("/pumpfun/parse/stream-from-coin", test_stream_from_coin);
    g_test_add_func("/pumpfun/parse/stream-from-coin-errors", test_stream_from_coin_errors);
    g_test_add_func("/pumpfun/client/check-response", test_check_response);
    g_test_add_func("/pumpfun/catalog/cache-decide", test_cache_decide);
    g_test_add_func("/pumpfun/catalog/backoff", test_backoff);
    g_test_add_func("/pumpfun/roster/fixture", test_roster_fixture);
    g_test_add_func("/pumpfun/roster/sort-stable-and-dedup", test_roster_sort_stable_and_dedup);
    g_test_add_func("/pumpfun/roster/refcounts", test_refcounts);
    g_test_add_func("/pumpfun/catalog/fetch-without-share", test_catalog_fetch_without_share);
    g_test_add_func("/pumpfun/catalog/share-fresh", test_catalog_share_fresh);
    g_test_add_func("/pumpfun/catalog/share-fetch-publishes", test_catalog_share_fetch_publishes);
    g_test_add_func("/pumpfun/catalog/share-busy-then-fresh", test_catalog_share_busy_then_fresh);
    g_test_add_func("/pumpfun/catalog/share-busy-serves-stale",
                    test_catalog_share_busy_serves_stale);
    g_test_add_func("/pumpfun/catalog/share-busy-gives-up", test_catalog_share_busy_gives_up);
    g_test_add_func("/pumpfun/catalog/share-error-fetches", test_catalog_share_error_fetches);

    g_test_add_func("/pumpfun/join/parse", test_parse_join);
    return g_test_run();
}

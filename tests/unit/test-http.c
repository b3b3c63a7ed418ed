/* Unit tests for the http module's query validation (query.c): parameter lookup, integer and
 * boolean parsing, and the FastAPI-style error objects ({"type","loc","msg","input"}) that
 * accumulate in one array; and for the recordings download: Range parsing (recordings.c) and
 * the check that only files inside the recordings directory are opened (fs.c).
 */
#include "core/json.h"
#include "http/http-private.h"

#include <errno.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A query list from "name=value" strings (as the server stores them: already URL-decoded). */
static GPtrArray *
make_query(const char *const *items)
{
    GPtrArray *q = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; items[i] != NULL; i++) {
        g_ptr_array_add(q, g_strdup(items[i]));
    }
    return q;
}

/* Checks errors[index] is {"type": type, "loc": [where, name], "msg": msg, "input": input}
 * (msg NULL: any string). */
static void
assert_loc_error(json_t *errors, size_t index, const char *where, const char *type,
                 const char *name, const char *input, const char *msg)
{
    json_t *e = json_array_get(errors, index);
    g_assert_nonnull(e);
    g_assert_true(json_is_object(e));
    g_assert_cmpuint(json_object_size(e), ==, 4);
    g_assert_cmpstr(json_string_value(json_object_get(e, "type")), ==, type);
    json_t *loc = json_object_get(e, "loc");
    g_assert_true(json_is_array(loc));
    g_assert_cmpuint(json_array_size(loc), ==, 2);
    g_assert_cmpstr(json_string_value(json_array_get(loc, 0)), ==, where);
    g_assert_cmpstr(json_string_value(json_array_get(loc, 1)), ==, name);
    g_assert_cmpstr(json_string_value(json_object_get(e, "input")), ==, input);
    g_assert_true(json_is_string(json_object_get(e, "msg")));
    if (msg != NULL) {
        g_assert_cmpstr(json_string_value(json_object_get(e, "msg")), ==, msg);
    }
}

/* The same for a query-string parameter. */
static void
assert_error_entry(json_t *errors, size_t index, const char *type, const char *name,
                   const char *input, const char *msg)
{
    assert_loc_error(errors, index, "query", type, name, input, msg);
}

static void
test_query_get(void)
{
    const char *items[] = {"limit=5",  "offset=10", "limit=7", "flag",      "empty=",
                           "limitx=9", "lim=1",     "a=b=c",   "nsfw=true", NULL};
    g_autoptr(GPtrArray) q = make_query(items);
    g_assert_cmpstr(hv_http_query_get(q, "limit"), ==, "7"); /* last value wins */
    g_assert_cmpstr(hv_http_query_get(q, "offset"), ==, "10");
    g_assert_cmpstr(hv_http_query_get(q, "flag"), ==, "");
    g_assert_cmpstr(hv_http_query_get(q, "empty"), ==, "");
    g_assert_cmpstr(hv_http_query_get(q, "limitx"), ==, "9");
    g_assert_cmpstr(hv_http_query_get(q, "lim"), ==, "1");
    g_assert_cmpstr(hv_http_query_get(q, "a"), ==, "b=c");
    g_assert_null(hv_http_query_get(q, "li"));
    g_assert_null(hv_http_query_get(q, "missing"));
    g_assert_null(hv_http_query_get(q, "Limit"));
    g_assert_null(hv_http_query_get(NULL, "limit"));

    /* a bare flag after a value also wins */
    const char *items2[] = {"x=1", "x", NULL};
    g_autoptr(GPtrArray) q2 = make_query(items2);
    g_assert_cmpstr(hv_http_query_get(q2, "x"), ==, "");
    const char *items3[] = {"x", "x=2", NULL};
    g_autoptr(GPtrArray) q3 = make_query(items3);
    g_assert_cmpstr(hv_http_query_get(q3, "x"), ==, "2");
}

static void
test_query_int(void)
{
    json_t *errors = json_array();
    int64_t v = -1;

    /* absent: the default, no error */
    const char *none[] = {NULL};
    g_autoptr(GPtrArray) q0 = make_query(none);
    g_assert_true(hv_http_query_int(q0, "limit", 50, 1, 100, &v, errors));
    g_assert_cmpint(v, ==, 50);
    g_assert_true(hv_http_query_int(NULL, "limit", 50, 1, 100, &v, errors));
    g_assert_cmpint(v, ==, 50);
    g_assert_cmpuint(json_array_size(errors), ==, 0);

    /* good values, including both bounds */
    const char *good[] = {"limit=25", "offset=0", "max=100", "neg=-3", NULL};
    g_autoptr(GPtrArray) q1 = make_query(good);
    g_assert_true(hv_http_query_int(q1, "limit", 50, 1, 100, &v, errors));
    g_assert_cmpint(v, ==, 25);
    g_assert_true(hv_http_query_int(q1, "offset", 7, 0, 1000, &v, errors));
    g_assert_cmpint(v, ==, 0);
    g_assert_true(hv_http_query_int(q1, "max", 50, 1, 100, &v, errors));
    g_assert_cmpint(v, ==, 100);
    g_assert_true(hv_http_query_int(q1, "neg", 0, -10, 10, &v, errors));
    g_assert_cmpint(v, ==, -3);
    g_assert_cmpuint(json_array_size(errors), ==, 0);

    /* bad values: the default is left in *out and errors accumulate in order */
    const char *bad[] = {"limit=abc", "offset=-1", "size=101", "empty=", "space= 5", NULL};
    g_autoptr(GPtrArray) q2 = make_query(bad);
    v = 0;
    g_assert_false(hv_http_query_int(q2, "limit", 50, 1, 100, &v, errors));
    g_assert_cmpint(v, ==, 50);
    g_assert_cmpuint(json_array_size(errors), ==, 1);
    assert_error_entry(errors, 0, "int_parsing", "limit", "abc",
                       "Input should be a valid integer, unable to parse string as an integer");

    g_assert_false(hv_http_query_int(q2, "offset", 0, 0, 1000, &v, errors));
    g_assert_cmpint(v, ==, 0);
    g_assert_cmpuint(json_array_size(errors), ==, 2);
    assert_error_entry(errors, 1, "greater_than_equal", "offset", "-1",
                       "Input should be greater than or equal to 0");

    g_assert_false(hv_http_query_int(q2, "size", 20, 1, 100, &v, errors));
    g_assert_cmpint(v, ==, 20);
    g_assert_cmpuint(json_array_size(errors), ==, 3);
    assert_error_entry(errors, 2, "less_than_equal", "size", "101",
                       "Input should be less than or equal to 100");

    g_assert_false(hv_http_query_int(q2, "empty", 1, 0, 10, &v, errors));
    assert_error_entry(errors, 3, "int_parsing", "empty", "", NULL);
    g_assert_false(hv_http_query_int(q2, "space", 1, 0, 10, &v, errors));
    assert_error_entry(errors, 4, "int_parsing", "space", " 5", NULL);
    g_assert_cmpuint(json_array_size(errors), ==, 5);

    /* the array serialises to FastAPI's shape */
    json_t *first = json_array_get(errors, 0);
    char *text = json_dumps(first, JSON_COMPACT | JSON_SORT_KEYS);
    g_assert_cmpstr(text, ==,
                    "{\"input\":\"abc\",\"loc\":[\"query\",\"limit\"],\"msg\":\"Input should be a "
                    "valid integer, unable to parse string as an integer\",\"type\":"
                    "\"int_parsing\"}");
    free(text);
    json_decref(errors);
}

static void
test_query_bool(void)
{
    static const struct {
        const char *text;
        bool value;
    } good[] = {
        {"true", true},   {"TRUE", true},   {"True", true},   {"1", true},
        {"yes", true},    {"YES", true},    {"on", true},     {"On", true},
        {"false", false}, {"FALSE", false}, {"False", false}, {"0", false},
        {"no", false},    {"No", false},    {"off", false},   {"OFF", false},
    };
    json_t *errors = json_array();
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autofree char *kv = g_strdup_printf("nsfw=%s", good[i].text);
        const char *items[] = {kv, NULL};
        g_autoptr(GPtrArray) q = make_query(items);
        /* start from the opposite default so a no-op would be caught */
        bool v = !good[i].value;
        if (!hv_http_query_bool(q, "nsfw", !good[i].value, &v, errors)) {
            g_error("boolean \"%s\" rejected", good[i].text);
        }
        g_assert_cmpint(v, ==, good[i].value);
    }
    g_assert_cmpuint(json_array_size(errors), ==, 0);

    /* absent: default */
    bool v = false;
    g_assert_true(hv_http_query_bool(NULL, "nsfw", true, &v, errors));
    g_assert_true(v);
    g_assert_true(hv_http_query_bool(NULL, "nsfw", false, &v, errors));
    g_assert_false(v);

    /* bad values */
    const char *bad_items[] = {"a=maybe", "b=", "c=2", "d=truee", "e=nah", NULL};
    g_autoptr(GPtrArray) q = make_query(bad_items);
    v = false;
    g_assert_false(hv_http_query_bool(q, "a", true, &v, errors));
    g_assert_true(v); /* default kept */
    g_assert_cmpuint(json_array_size(errors), ==, 1);
    assert_error_entry(errors, 0, "bool_parsing", "a", "maybe",
                       "Input should be a valid boolean, unable to interpret input");
    static const char *names[] = {"b", "c", "d", "e"};
    static const char *inputs[] = {"", "2", "truee", "nah"};
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
        g_assert_false(hv_http_query_bool(q, names[i], false, &v, errors));
        assert_error_entry(errors, i + 1, "bool_parsing", names[i], inputs[i], NULL);
    }
    g_assert_cmpuint(json_array_size(errors), ==, 5);
    json_decref(errors);
}

static void
test_validation_error(void)
{
    json_t *e = hv_http_validation_error("path", "mint", "value_error", "bad mint", "xyz");
    g_assert_nonnull(e);
    json_t *arr = json_array();
    json_array_append_new(arr, e);
    assert_loc_error(arr, 0, "path", "value_error", "mint", "xyz", "bad mint");
    json_decref(arr);

    /* a NULL input is a JSON null (FastAPI's "missing" errors carry "input": null) */
    json_t *n = hv_http_validation_error("query", "x", "missing", "Field required", NULL);
    g_assert_nonnull(n);
    g_assert_true(json_is_null(json_object_get(n, "input")));
    g_assert_cmpuint(json_object_size(n), ==, 4);
    g_assert_cmpstr(json_string_value(json_object_get(n, "type")), ==, "missing");
    json_decref(n);
}

static void
test_accepts_gzip(void)
{
    g_assert_true(hv_http_accepts_gzip("gzip"));
    g_assert_true(hv_http_accepts_gzip("gzip, deflate, br"));
    g_assert_true(hv_http_accepts_gzip("br;q=1.0, GZIP;q=0.5"));
    g_assert_true(hv_http_accepts_gzip("*"));
    g_assert_false(hv_http_accepts_gzip(""));
    g_assert_false(hv_http_accepts_gzip("br, deflate"));
    g_assert_false(hv_http_accepts_gzip("gzip;q=0"));
    g_assert_false(hv_http_accepts_gzip("gzip; q=0.0, identity"));
    g_assert_false(hv_http_accepts_gzip("x-gzip-ish"));
}

static void
test_body_cache(void)
{
    /* A roster is only an identity for the cache; an empty one will do. */
    g_autoptr(GPtrArray) none = g_ptr_array_new();
    hv_pf_roster *r1 = hv_pf_roster_new(none, 0, 0);
    hv_pf_roster *r2 = hv_pf_roster_new(none, 0, 0);
    hv_http_body_cache *c = hv_http_body_cache_new();

    GString *json = g_string_new("[");
    for (int i = 0; i < 200; i++) {
        g_string_append_printf(json, "%s{\"n\":%d,\"name\":\"stream\"}", i ? "," : "", i);
    }
    g_string_append_c(json, ']');
    hv_http_body *b = hv_http_body_new(json->str, json->len, true);
    g_assert_true(hv_http_body_has_gzip(b));
    size_t plain_len = 0, gz_len = 0;
    const uint8_t *plain = hv_http_body_data(b, false, &plain_len);
    const uint8_t *gz = hv_http_body_data(b, true, &gz_len);
    g_assert_cmpmem(plain, plain_len, json->str, json->len);
    g_assert_cmpuint(gz_len, <, plain_len);
    g_assert_cmpint(gz[0], ==, 0x1f); /* gzip magic */
    g_assert_cmpint(gz[1], ==, 0x8b);

    hv_http_body_cache_put(c, r1, "live:0:60", hv_http_body_ref(b));
    g_assert_true(hv_http_body_cache_get(c, r1, "live:0:60") == b);
    g_assert_null(hv_http_body_cache_get(c, r1, "live:0:61"));
    /* a new roster empties the cache; the body stays alive for whoever holds it */
    g_assert_null(hv_http_body_cache_get(c, r2, "live:0:60"));
    g_assert_cmpuint(hv_http_body_cache_size(c), ==, 0);
    g_assert_cmpmem(hv_http_body_data(b, false, &plain_len), plain_len, json->str, json->len);
    /* bounded */
    for (int i = 0; i < HV_HTTP_BODY_CACHE_MAX * 3; i++) {
        char key[32];
        g_snprintf(key, sizeof(key), "k%d", i);
        hv_http_body_cache_put(c, r2, key, hv_http_body_new("[]", 2, true));
        g_assert_cmpuint(hv_http_body_cache_size(c), <=, HV_HTTP_BODY_CACHE_MAX);
    }
    /* small bodies are not compressed */
    hv_http_body *small = hv_http_body_new("[]", 2, true);
    g_assert_false(hv_http_body_has_gzip(small));
    hv_http_body_unref(small);

    hv_http_body_unref(b);
    hv_http_body_cache_free(c);
    hv_pf_roster_unref(r1);
    hv_pf_roster_unref(r2);
    g_string_free(json, TRUE);
}

/* ---- recordings: Range and the recordings directory -------------------------------------- */

static void
test_parse_range(void)
{
    const int64_t none = -7; /* first/last must stay untouched unless the result is PARTIAL */
    const struct {
        const char *header;
        int64_t size;
        hv_http_range want;
        int64_t first, last;
    } cases[] = {
        /* absent or not for us: send everything */
        {NULL, 1000, HV_HTTP_RANGE_NONE, none, none},
        {"", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=-", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"items=0-5", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes 0-5", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"0-5", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=abc", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=5", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=1-2-3", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=--5", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=+1-5", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=0x10-20", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=1-5x", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=0 - 5", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=0-5\r\n", 1000, HV_HTTP_RANGE_NONE, none, none},
        /* several ranges: ignored, the whole file goes out */
        {"bytes=0-5,10-20", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=0-5, 10-20", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=0-5,", 1000, HV_HTTP_RANGE_NONE, none, none},
        /* last before first is invalid, so ignored */
        {"bytes=5-4", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=2000-1000", 1000, HV_HTTP_RANGE_NONE, none, none},
        {"bytes=99999999999999999999-5", 1000, HV_HTTP_RANGE_NONE, none, none},
        /* one range */
        {"bytes=0-0", 1000, HV_HTTP_RANGE_PARTIAL, 0, 0},
        {"bytes=0-499", 1000, HV_HTTP_RANGE_PARTIAL, 0, 499},
        {"bytes=500-999", 1000, HV_HTTP_RANGE_PARTIAL, 500, 999},
        {"bytes=999-999", 1000, HV_HTTP_RANGE_PARTIAL, 999, 999},
        {"bytes=5-5", 1000, HV_HTTP_RANGE_PARTIAL, 5, 5},
        {"bytes=500-", 1000, HV_HTTP_RANGE_PARTIAL, 500, 999},
        {"bytes=0-", 1000, HV_HTTP_RANGE_PARTIAL, 0, 999},
        {"bytes=0-0", 1, HV_HTTP_RANGE_PARTIAL, 0, 0},
        {"BYTES=1-2", 1000, HV_HTTP_RANGE_PARTIAL, 1, 2},
        {"Bytes=1-2", 1000, HV_HTTP_RANGE_PARTIAL, 1, 2},
        {"bytes=007-008", 1000, HV_HTTP_RANGE_PARTIAL, 7, 8},
        /* blanks around the range are allowed */
        {"bytes= 1-2", 1000, HV_HTTP_RANGE_PARTIAL, 1, 2},
        {"bytes=1-2 ", 1000, HV_HTTP_RANGE_PARTIAL, 1, 2},
        {"bytes=\t-3\t ", 1000, HV_HTTP_RANGE_PARTIAL, 997, 999},
        /* a last position past the end is clamped, also when it overflows 64 bits */
        {"bytes=0-5000", 1000, HV_HTTP_RANGE_PARTIAL, 0, 999},
        {"bytes=10-99999999999999999999", 1000, HV_HTTP_RANGE_PARTIAL, 10, 999},
        {"bytes=0-9223372036854775807", 1000, HV_HTTP_RANGE_PARTIAL, 0, 999},
        /* suffixes: the last n bytes; longer than the file means all of it */
        {"bytes=-1", 1000, HV_HTTP_RANGE_PARTIAL, 999, 999},
        {"bytes=-500", 1000, HV_HTTP_RANGE_PARTIAL, 500, 999},
        {"bytes=-1000", 1000, HV_HTTP_RANGE_PARTIAL, 0, 999},
        {"bytes=-5000", 1000, HV_HTTP_RANGE_PARTIAL, 0, 999},
        {"bytes=-99999999999999999999", 1000, HV_HTTP_RANGE_PARTIAL, 0, 999},
        /* unsatisfiable: starts at or past the end, empty suffix, empty file */
        {"bytes=1000-", 1000, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=1000-1000", 1000, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=1000-2000", 1000, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=99999999999999999999-", 1000, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=-0", 1000, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=-000", 1000, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=0-0", 0, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=0-", 0, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=-5", 0, HV_HTTP_RANGE_UNSATISFIABLE, none, none},
        {"bytes=", 0, HV_HTTP_RANGE_NONE, none, none},
        /* several gigabytes */
        {"bytes=4294967296-", 6000000000LL, HV_HTTP_RANGE_PARTIAL, 4294967296LL, 5999999999LL},
        {"bytes=-1", 6000000000LL, HV_HTTP_RANGE_PARTIAL, 5999999999LL, 5999999999LL},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        int64_t first = none;
        int64_t last = none;
        hv_http_range got = hv_http_parse_range(cases[i].header, cases[i].size, &first, &last);
        if (got != cases[i].want || first != cases[i].first || last != cases[i].last) {
            g_error("Range \"%s\" of %" G_GINT64_FORMAT " bytes: got %d [%" G_GINT64_FORMAT
                    ", %" G_GINT64_FORMAT "], want %d [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "]",
                    cases[i].header != NULL ? cases[i].header : "(null)", cases[i].size, got, first,
                    last, cases[i].want, cases[i].first, cases[i].last);
        }
    }
}

/* Opens path with hv_http_open_inside(root, path): returns the file's first byte, or -errno
 * when it is refused. */
static int
open_inside_byte(const char *root, const char *path)
{
    int fd = hv_http_open_inside(root, path);
    if (fd < 0) {
        g_assert_cmpint(errno, !=, 0);
        return -errno;
    }
    char c = 0;
    g_assert_cmpint(read(fd, &c, 1), ==, 1);
    close(fd);
    return c;
}

static void
test_open_inside(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp = g_dir_make_tmp("haven-test-http-XXXXXX", &error);
    g_assert_no_error(error);
    g_autofree char *root = g_build_filename(tmp, "recordings", NULL);
    g_autofree char *sub = g_build_filename(root, "sub", NULL);
    g_assert_cmpint(g_mkdir_with_parents(sub, 0700), ==, 0);
    g_autofree char *inside = g_build_filename(root, "a.mp4", NULL);
    g_autofree char *nested = g_build_filename(sub, "b.wav", NULL);
    g_autofree char *outside = g_build_filename(tmp, "secret", NULL);
    g_autofree char *sibling = g_build_filename(tmp, "recordings-other", NULL);
    g_autofree char *sibling_file = g_build_filename(sibling, "c.mp4", NULL);
    g_assert_cmpint(g_mkdir_with_parents(sibling, 0700), ==, 0);
    g_assert_true(g_file_set_contents(inside, "A", 1, NULL));
    g_assert_true(g_file_set_contents(nested, "B", 1, NULL));
    g_assert_true(g_file_set_contents(outside, "S", 1, NULL));
    g_assert_true(g_file_set_contents(sibling_file, "C", 1, NULL));
    g_autofree char *link_out = g_build_filename(root, "out.mp4", NULL);
    g_autofree char *link_in = g_build_filename(root, "in.mp4", NULL);
    g_autofree char *link_dir = g_build_filename(root, "up", NULL);
    g_autofree char *fifo = g_build_filename(root, "fifo.wav", NULL);
    g_assert_cmpint(symlink(outside, link_out), ==, 0);
    g_assert_cmpint(symlink("sub/b.wav", link_in), ==, 0);
    g_assert_cmpint(symlink("..", link_dir), ==, 0);
    g_assert_cmpint(mkfifo(fifo, 0600), ==, 0);
    g_autofree char *dotdot = g_build_filename(root, "..", "secret", NULL);
    g_autofree char *dotdot_in = g_build_filename(root, "sub", "..", "a.mp4", NULL);
    g_autofree char *via_link_dir = g_build_filename(root, "up", "secret", NULL);
    g_autofree char *root_slash = g_strconcat(root, "/", NULL);
    g_autofree char *missing = g_build_filename(root, "gone.mp4", NULL);

    /* inside: plain, nested, through ".." that stays inside, a symlink to a file inside */
    g_assert_cmpint(open_inside_byte(root, inside), ==, 'A');
    g_assert_cmpint(open_inside_byte(root, nested), ==, 'B');
    g_assert_cmpint(open_inside_byte(root, dotdot_in), ==, 'A');
    g_assert_cmpint(open_inside_byte(root, link_in), ==, 'B');
    g_assert_cmpint(open_inside_byte(root_slash, inside), ==, 'A');
    /* outside: "..", a symlink out, a symlinked directory, a directory sharing the prefix,
     * an absolute path elsewhere */
    g_assert_cmpint(open_inside_byte(root, dotdot), ==, -EACCES);
    g_assert_cmpint(open_inside_byte(root, link_out), ==, -EACCES);
    g_assert_cmpint(open_inside_byte(root, via_link_dir), ==, -EACCES);
    g_assert_cmpint(open_inside_byte(root, sibling_file), ==, -EACCES);
    g_assert_cmpint(open_inside_byte(root, outside), ==, -EACCES);
    /* not a regular file: the directory itself, a subdirectory, a FIFO (without blocking) */
    g_assert_cmpint(open_inside_byte(root, root), ==, -EACCES);
    g_assert_cmpint(open_inside_byte(root, sub), ==, -EACCES);
    g_assert_cmpint(open_inside_byte(root, fifo), ==, -EACCES);
    /* missing things */
    g_assert_cmpint(open_inside_byte(root, missing), ==, -ENOENT);
    g_assert_cmpint(open_inside_byte("/nonexistent-haven-dir", inside), ==, -ENOENT);
    g_assert_cmpint(open_inside_byte(root, ""), ==, -ENOENT);
    g_assert_cmpint(open_inside_byte("", inside), ==, -ENOENT);
    g_assert_cmpint(hv_http_open_inside(NULL, inside), ==, -1);
    g_assert_cmpint(hv_http_open_inside(root, NULL), ==, -1);

    const char *entries[] = {link_out, link_in, link_dir,     fifo,
                             inside,   nested,  sibling_file, outside};
    for (size_t i = 0; i < G_N_ELEMENTS(entries); i++) {
        g_assert_cmpint(g_unlink(entries[i]), ==, 0);
    }
    g_assert_cmpint(g_rmdir(sub), ==, 0);
    g_assert_cmpint(g_rmdir(root), ==, 0);
    g_assert_cmpint(g_rmdir(sibling), ==, 0);
    g_assert_cmpint(g_rmdir(tmp), ==, 0);
}

static void
test_static_path(void)
{
    static const char *const ok[] = {"/index.html", "/js/app.js", "/css/app-1.css", "/img/a_b.png",
                                     "/a"};
    static const char *const bad[] = {"",         "/",      "index.html", "/.env", "/../x",
                                      "/js/../x", "/js//x", "/js/.x",     "/a b",  "/a%2e",
                                      "/a?x",     "/a\\b",  "/js/",       "/-x",   "/_x"};
    for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_assert_true(hv_http_static_path_ok(ok[i]));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_false(hv_http_static_path_ok(bad[i]));
    }
    g_autofree char *longp = g_strnfill(300, 'a');
    longp[0] = '/';
    g_assert_false(hv_http_static_path_ok(longp));
}

static void
test_token_matches(void)
{
    const char *t = "s3cret-token-0123456789";
    g_assert_true(hv_http_token_matches(t, "s3cret-token-0123456789"));
    g_assert_false(hv_http_token_matches(t, NULL));
    g_assert_false(hv_http_token_matches(t, ""));
    g_assert_false(hv_http_token_matches(t, "s3cret-token-012345678"));   /* a prefix */
    g_assert_false(hv_http_token_matches(t, "s3cret-token-01234567890")); /* longer */
    g_assert_false(hv_http_token_matches(t, "S3cret-token-0123456789"));  /* case matters */
    g_assert_false(hv_http_token_matches(t, "s3cret-token-0123456788"));  /* last byte */
}

static void
test_bearer_token(void)
{
    g_assert_cmpstr(hv_http_bearer_token("Bearer abc"), ==, "abc");
    g_assert_cmpstr(hv_http_bearer_token("bearer   abc"), ==, "abc");
    g_assert_cmpstr(hv_http_bearer_token("BEARER\tabc def"), ==, "abc def");
    g_assert_null(hv_http_bearer_token("Bearer"));
    g_assert_null(hv_http_bearer_token("Bearer "));
    g_assert_null(hv_http_bearer_token("Bearerabc"));
    g_assert_null(hv_http_bearer_token("Basic YWJjOmRlZg=="));
    g_assert_null(hv_http_bearer_token(""));
}

static void
test_path_needs_token(void)
{
    static const char *const yes[] = {"/api", "/api/", "/api/pumpfun/live",
                                      "/api/live-sessions/ws/live/x", "/api/recordings/1/file"};
    static const char *const no[] = {"/",        "/index.html", "/js/api.js",
                                     "/healthz", "/apix",       "/favicon.svg"};
    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        g_assert_true(hv_http_path_needs_token(yes[i]));
    }
    for (size_t i = 0; i < G_N_ELEMENTS(no); i++) {
        g_assert_false(hv_http_path_needs_token(no[i]));
    }
}

static void
test_origins(void)
{
    const char *const list[] = {"https://app.example:8443", "http://127.0.0.1:3000", NULL};
    const char *const any[] = {"*", NULL};
    g_assert_true(hv_http_origin_allowed(list, "https://app.example:8443"));
    g_assert_true(hv_http_origin_allowed(list, "HTTPS://App.Example:8443"));
    g_assert_true(hv_http_origin_allowed(list, "http://127.0.0.1:3000"));
    g_assert_false(hv_http_origin_allowed(list, "https://app.example"));     /* other port */
    g_assert_false(hv_http_origin_allowed(list, "http://app.example:8443")); /* other scheme */
    g_assert_false(hv_http_origin_allowed(list, "https://app.example:8443.evil.example"));
    g_assert_false(hv_http_origin_allowed(list, "null"));
    g_assert_false(hv_http_origin_allowed(list, ""));
    g_assert_false(hv_http_origin_allowed(NULL, "https://app.example:8443")); /* CORS off */
    g_assert_true(hv_http_origin_allowed(any, "https://anything.example"));
    g_assert_false(hv_http_origin_allowed(any, ""));

    g_assert_true(hv_http_same_origin("http://127.0.0.1:8000", "127.0.0.1:8000"));
    g_assert_true(hv_http_same_origin("https://Haven.Example", "haven.example"));
    g_assert_false(hv_http_same_origin("http://127.0.0.1:8001", "127.0.0.1:8000"));
    g_assert_false(hv_http_same_origin("http://evil.example", "127.0.0.1:8000"));
    g_assert_false(hv_http_same_origin("null", "127.0.0.1:8000"));
    g_assert_false(hv_http_same_origin("http://127.0.0.1:8000", ""));
    g_assert_false(hv_http_same_origin("", "127.0.0.1:8000"));
}

static void
test_mask_tokens(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"GET /api/x?token=abcdefghijkl HTTP/1.1", "GET /api/x?token=abcdef… HTTP/1.1"},
        {"/rtc?access_token=eyJhbGciOiJIUzI1NiJ9.x.y&protocol=17",
         "/rtc?access_token=eyJhbG…&protocol=17"},
        {"a=1&token=short&b=2", "a=1&token=short&b=2"},
        {"token=abcdef", "token=abcdef"},
        {"token=abcdefg", "token=abcdef…"},
        {"token=", "token="},
        {"no secrets here", "no secrets here"},
        {"token=aaaaaaaaa token=bbbbbbbbb\n", "token=aaaaaa… token=bbbbbb…\n"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = hv_http_mask_tokens(cases[i].in);
        g_assert_cmpstr(got, ==, cases[i].out);
    }
}

static void
test_rate(void)
{
    /* 30 per minute: a burst of 30, then one every 2 s */
    hv_http_rate *r = hv_http_rate_new(30, 3);
    int64_t t = 1000000;
    for (int i = 0; i < 30; i++) {
        g_assert_cmpint(hv_http_rate_take(r, "10.0.0.1", t), ==, 0);
    }
    int64_t wait = hv_http_rate_take(r, "10.0.0.1", t);
    g_assert_cmpint(wait, >, 1900);
    g_assert_cmpint(wait, <=, 2001);
    /* a refusal takes nothing: the wait only shrinks */
    g_assert_cmpint(hv_http_rate_take(r, "10.0.0.1", t + 1000), <=, 1001);
    g_assert_cmpint(hv_http_rate_take(r, "10.0.0.1", t + 2000), ==, 0);
    g_assert_cmpint(hv_http_rate_take(r, "10.0.0.1", t + 2000), >, 0);
    /* other clients have their own bucket */
    g_assert_cmpint(hv_http_rate_take(r, "10.0.0.2", t + 2000), ==, 0);
    g_assert_cmpint(hv_http_rate_take(r, "10.0.0.3", t + 2000), ==, 0);
    g_assert_cmpuint(hv_http_rate_size(r), ==, 3);
    /* the table is full: a fourth address evicts the one idle longest (10.0.0.1 used its
     * bucket last at t + 2000 like the others, so ties go to any; all are kept bounded) */
    g_assert_cmpint(hv_http_rate_take(r, "10.0.0.4", t + 3000), ==, 0);
    g_assert_cmpuint(hv_http_rate_size(r), ==, 3);
    /* a minute later every bucket has refilled: they are forgotten first */
    g_assert_cmpint(hv_http_rate_take(r, "10.0.0.5", t + 70000), ==, 0);
    g_assert_cmpuint(hv_http_rate_size(r), ==, 1);
    hv_http_rate_free(r);

    /* the throttled client survives eviction while idle clients go first */
    r = hv_http_rate_new(2, 2);
    g_assert_cmpint(hv_http_rate_take(r, "busy", t), ==, 0);
    g_assert_cmpint(hv_http_rate_take(r, "busy", t), ==, 0);
    g_assert_cmpint(hv_http_rate_take(r, "busy", t), >, 0);
    g_assert_cmpint(hv_http_rate_take(r, "idle", t - 1), ==, 0); /* refilled by t + 30 s */
    g_assert_cmpint(hv_http_rate_take(r, "new", t + 30000), ==, 0);
    g_assert_cmpuint(hv_http_rate_size(r), ==, 2);
    g_assert_cmpint(hv_http_rate_take(r, "busy", t + 30000), ==, 0); /* one refilled, kept */
    g_assert_cmpint(hv_http_rate_take(r, "busy", t + 30000), >, 0);  /* the state survived */
    hv_http_rate_free(r);
}

/* The embedded API description parses, is OpenAPI 3.1 with the version filled in, and
 * documents every route of the table (method and path) and the viewer WebSocket. */
static void
test_openapi_documents_every_route(void)
{
    char error[200] = "";
    g_autoptr(json_t) doc = hv_http_openapi_load("9.8.7", error, sizeof(error));
    g_assert_nonnull(doc);
    g_assert_cmpstr(error, ==, "");
    g_assert_true(g_str_has_prefix(json_string_value(json_object_get(doc, "openapi")), "3.1."));
    g_assert_cmpstr(json_string_value(json_object_get(json_object_get(doc, "info"), "version")), ==,
                    "9.8.7");
    json_t *paths = json_object_get(doc, "paths");
    const char *method;
    const char *path;
    size_t n = 0;
    for (size_t i = 0; hv_http_route(i, &method, &path); i++, n++) {
        g_autofree char *lower = g_ascii_strdown(method, -1);
        json_t *op = json_object_get(json_object_get(paths, path), lower);
        if (!json_is_object(op) || !json_is_object(json_object_get(op, "responses"))) {
            g_error("%s %s is not in src/http/openapi.json (with its responses)", method, path);
        }
    }
    g_assert_cmpuint(n, >, 10);
    g_assert_true(json_is_object(json_object_get(json_object_get(paths, HV_HTTP_WS_ROUTE), "get")));
    g_assert_true(json_is_object(json_object_get(paths, "/openapi.json")));

    /* version NULL: the build's own */
    g_autoptr(json_t) doc2 = hv_http_openapi_load(NULL, error, sizeof(error));
    g_assert_cmpstr(json_string_value(json_object_get(json_object_get(doc2, "info"), "version")),
                    ==, HAVEN_VERSION);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/http/static/path", test_static_path);
    g_test_add_func("/http/query/get", test_query_get);
    g_test_add_func("/http/query/int", test_query_int);
    g_test_add_func("/http/query/bool", test_query_bool);
    g_test_add_func("/http/query/validation-error", test_validation_error);
    g_test_add_func("/http/encoding/accepts-gzip", test_accepts_gzip);
    g_test_add_func("/http/body-cache/shared-and-bounded", test_body_cache);
    g_test_add_func("/http/recordings/parse-range", test_parse_range);
    g_test_add_func("/http/recordings/open-inside", test_open_inside);
    g_test_add_func("/http/access/token-matches", test_token_matches);
    g_test_add_func("/http/access/bearer-token", test_bearer_token);
    g_test_add_func("/http/access/path-needs-token", test_path_needs_token);
    g_test_add_func("/http/access/origins", test_origins);
    g_test_add_func("/http/access/mask-tokens", test_mask_tokens);
    g_test_add_func("/http/limits/start-rate", test_rate);
    g_test_add_func("/http/openapi/documents-every-route", test_openapi_documents_every_route);

    return g_test_run();
}

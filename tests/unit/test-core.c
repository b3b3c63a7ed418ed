/* Unit tests for the core module: base58 mint validation, duration/int/double/time helpers,
 * error names, and configuration (defaults < HAVEN_* environment < flags, validation messages,
 * actions) including the check that docs/CONFIG.md embeds the generated option table.
 */
#include "../common/fixture.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* ---- helpers ---------------------------------------------------------------------------- */

/* ---- hv_mint_id_is_valid / hv_base58_decode ------------------------------------------- */

static void
test_mint_fixture_mints_valid(void)
{
    g_autofree char *path = hv_test_data_path("pumpfun/currently-live.json");
    gsize len = 0;
    g_autofree char *text = hv_test_read_file(path, &len);
    /* core has no JSON parser; the fixture's "mint" keys are found with a regex. */
    g_autoptr(GRegex) re = g_regex_new("\"mint\"\\s*:\\s*\"([^\"]*)\"", 0, 0, NULL);
    g_assert_nonnull(re);
    g_autoptr(GMatchInfo) m = NULL;
    unsigned n = 0;
    g_regex_match(re, text, 0, &m);
    while (g_match_info_matches(m)) {
        g_autofree char *mint = g_match_info_fetch(m, 1);
        if (!hv_mint_id_is_valid(mint)) {
            g_error("fixture mint %s (row %u) rejected", mint, n);
        }
        uint8_t out[64];
        g_assert_cmpint(hv_base58_decode(mint, out, sizeof(out)), ==, 32);
        n++;
        g_match_info_next(m, NULL);
    }
    g_assert_cmpuint(n, ==, 12);
    g_assert_true(hv_mint_id_is_valid("3db3seiWSQSmKUeNWD87dN5AcYG2mLa12FHC4D2zpump"));
}

static void
test_mint_invalid_lengths_and_chars(void)
{
    /* 32 '1's decode to 32 zero bytes: the shortest valid mint. */
    g_assert_true(hv_mint_id_is_valid("11111111111111111111111111111111"));
    /* 2^256 - 1: the largest 32-byte value, 44 characters. */
    g_assert_true(hv_mint_id_is_valid("JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG"));

    g_assert_false(hv_mint_id_is_valid(NULL));
    g_assert_false(hv_mint_id_is_valid(""));
    /* 31 characters (a valid fixture mint minus its last character). */
    g_assert_cmpuint(strlen("7k13ksm9yfWYBqVUrvdG5to1ecy4AhV"), ==, 31);
    g_assert_false(hv_mint_id_is_valid("7k13ksm9yfWYBqVUrvdG5to1ecy4AhV"));
    /* 45 characters. */
    g_assert_cmpuint(strlen("7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump1"), ==, 45);
    g_assert_false(hv_mint_id_is_valid("7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump1"));
    /* 31 and 45 '1's (zero bytes) as well. */
    g_assert_false(hv_mint_id_is_valid("1111111111111111111111111111111"));
    g_assert_false(hv_mint_id_is_valid("111111111111111111111111111111111111111111111"));

    /* 44-character strings with one character outside the base58 alphabet. */
    static const char *bad_chars[] = {
        "0k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump",
        "Ok13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump",
        "Ik13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump",
        "lk13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump",
        "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepum+",
        "7k13ksm9yfWYBqVUrvdG5to1ecy4AhV y2qsnbPepump",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad_chars); i++) {
        g_assert_cmpuint(strlen(bad_chars[i]), ==, 44);
        g_assert_false(hv_mint_id_is_valid(bad_chars[i]));
        uint8_t out[64];
        g_assert_cmpint(hv_base58_decode(bad_chars[i], out, sizeof(out)), ==, -1);
    }
}

static void
test_mint_decodes_to_33_bytes(void)
{
    /* Both decode to more than 32 bytes, which only a big buffer shows. */
    static const char *too_big[] = {
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        "JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFH", /* 2^256 */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(too_big); i++) {
        uint8_t out[128];
        g_assert_cmpuint(strlen(too_big[i]), ==, 44);
        g_assert_cmpint(hv_base58_decode(too_big[i], out, sizeof(out)), ==, 33);
        g_assert_false(hv_mint_id_is_valid(too_big[i]));
    }
    uint8_t out[128];
    g_assert_cmpint(hv_base58_decode("JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFH", out, 128), ==,
                    33);
    g_assert_cmpuint(out[0], ==, 1);
    for (int i = 1; i < 33; i++) {
        g_assert_cmpuint(out[i], ==, 0);
    }
}

static void
test_base58_vectors(void)
{
    uint8_t out[64];
    memset(out, 0xAA, sizeof(out));
    g_assert_cmpint(hv_base58_decode("2g", out, sizeof(out)), ==, 1);
    g_assert_cmpuint(out[0], ==, 0x61);

    g_assert_cmpint(hv_base58_decode("a3gV", out, sizeof(out)), ==, 3);
    g_assert_cmpmem(out, 3, "bbb", 3);

    memset(out, 0xAA, sizeof(out));
    g_assert_cmpint(hv_base58_decode("1", out, sizeof(out)), ==, 1);
    g_assert_cmpuint(out[0], ==, 0);

    g_assert_cmpint(hv_base58_decode("", out, sizeof(out)), ==, 0);

    /* Leading '1's are leading zero bytes. */
    memset(out, 0xAA, sizeof(out));
    g_assert_cmpint(hv_base58_decode("112g", out, sizeof(out)), ==, 3);
    static const uint8_t want_zeros[] = {0, 0, 0x61};
    g_assert_cmpmem(out, 3, want_zeros, 3);

    /* "Hello World!" (Bitcoin base58 test vector). */
    g_assert_cmpint(hv_base58_decode("2NEpo7TZRRrLZSi2U", out, sizeof(out)), ==, 12);
    g_assert_cmpmem(out, 12, "Hello World!", 12);

    /* 32 '1's → 32 zero bytes. */
    memset(out, 0xAA, sizeof(out));
    g_assert_cmpint(hv_base58_decode("11111111111111111111111111111111", out, sizeof(out)), ==, 32);
    for (int i = 0; i < 32; i++) {
        g_assert_cmpuint(out[i], ==, 0);
    }

    /* Output buffer too small. */
    g_assert_cmpint(hv_base58_decode("a3gV", out, 2), ==, -1);
    g_assert_cmpint(hv_base58_decode("a3gV", out, 3), ==, 3);
}

/* ---- hv_parse_duration_ms -------------------------------------------------------------- */

static void
test_parse_duration(void)
{
    static const struct {
        const char *in;
        int64_t ms;
    } good[] = {
        {"10", 10000},   {"1.5s", 1500},      {"500ms", 500}, {"2m", 120000},
        {"1h", 3600000}, {"30d", 2592000000}, {"0", 0},       {"0ms", 0},
        {"0.25s", 250},  {"7d", 604800000},   {"100ms", 100},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        int64_t ms = -42;
        if (!hv_parse_duration_ms(good[i].in, &ms)) {
            g_error("duration \"%s\" rejected", good[i].in);
        }
        g_assert_cmpint(ms, ==, good[i].ms);
    }
    static const char *bad[] = {"",     "-1",     "10x",  "abc",   "s",   "ms",  "10 s",
                                " 10",  "1s ",    "-5ms", "10sec", "1hh", "inf", "nan",
                                "0x10", "0x1p4s", "1e3",  "1.2.3", "."};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        int64_t ms = -42;
        if (hv_parse_duration_ms(bad[i], &ms)) {
            g_error("duration \"%s\" accepted as %" G_GINT64_FORMAT " ms", bad[i], ms);
        }
        g_assert_cmpint(ms, ==, -42); /* untouched on failure */
    }
    int64_t ms = -42;
    g_assert_false(hv_parse_duration_ms(NULL, &ms));
}

/* ---- hv_parse_int64 --------------------------------------------------------------------- */

static void
test_parse_int64(void)
{
    static const struct {
        const char *in;
        int64_t v;
    } good[] = {
        {"0", 0},
        {"-5", -5},
        {"123", 123},
        {"007", 7},
        {"9223372036854775807", G_MAXINT64},
        {"-9223372036854775808", G_MININT64},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
        int64_t v = 42;
        if (!hv_parse_int64(good[i].in, &v)) {
            g_error("integer \"%s\" rejected", good[i].in);
        }
        g_assert_cmpint(v, ==, good[i].v);
    }
    static const char *bad[] = {"",
                                "-",
                                "1.0",
                                " 1",
                                "1 ",
                                "0x10",
                                "+1",
                                "--1",
                                "1e3",
                                "99999999999999999999",
                                "9223372036854775808",
                                "-9223372036854775809"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        int64_t v = 42;
        if (hv_parse_int64(bad[i], &v)) {
            g_error("integer \"%s\" accepted as %" G_GINT64_FORMAT, bad[i], v);
        }
        g_assert_cmpint(v, ==, 42);
    }
    int64_t v = 42;
    g_assert_false(hv_parse_int64(NULL, &v));
}

/* ---- hv_format_double ------------------------------------------------------------------- */

static void
test_format_double(void)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {4120.55, "4120.55"},
        {586642.7035, "586642.7035"},
        {0.1, "0.1"},
        {3.0, "3.0"},
        {0.0, "0.0"},
        {-2.5, "-2.5"},
        {288.690897794, "288.690897794"},
        {41100.923119, "41100.923119"},
        {1.0 / 3.0, "0.3333333333333333"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        char buf[40];
        hv_format_double(cases[i].v, buf, sizeof(buf));
        g_assert_cmpstr(buf, ==, cases[i].text);
        g_assert_true(g_ascii_strtod(buf, NULL) == cases[i].v);
    }

    /* Large and tiny values read back exactly. */
    static const double round_trip[] = {
        1e21, 1e-7, 123456789012345678.0, 0.30000000000000004, 5e-324, 1.7976931348623157e308};
    for (size_t i = 0; i < G_N_ELEMENTS(round_trip); i++) {
        char buf[40];
        hv_format_double(round_trip[i], buf, sizeof(buf));
        char *end = NULL;
        double back = g_ascii_strtod(buf, &end);
        g_assert_true(end != buf && *end == '\0');
        if (back != round_trip[i]) {
            g_error("%.17g formatted as \"%s\" reads back as %.17g", round_trip[i], buf, back);
        }
    }

    char buf[40];
    hv_format_double(INFINITY, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "null");
    hv_format_double(NAN, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "null");
}

/* ---- hv_format_iso8601 ------------------------------------------------------------------ */

static void
test_format_iso8601(void)
{
    char buf[32];
    hv_format_iso8601(0, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "1970-01-01T00:00:00.000Z");
    /* 2026-11-24T15:00:00.123Z */
    hv_format_iso8601(1795532400123LL, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "2026-11-24T15:00:00.123Z");
    /* 2000-02-29T23:59:59.999Z (leap day) */
    hv_format_iso8601(951868799999LL, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "2000-02-29T23:59:59.999Z");
    hv_format_iso8601(1005, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "1970-01-01T00:00:01.005Z");
    /* before the epoch: floor division, never a negative millisecond part */
    hv_format_iso8601(-1, buf, sizeof(buf));
    g_assert_cmpstr(buf, ==, "1969-12-31T23:59:59.999Z");
}

/* ---- error names ------------------------------------------------------------------------ */

static void
test_error_names(void)
{
    g_assert_cmpstr(hv_err_name(HV_OK), ==, "OK");
    g_assert_cmpstr(hv_strerror(HV_OK), ==, "success");
    g_assert_cmpstr(hv_err_name(HV_ENOTFOUND), ==, "ENOTFOUND");
    g_assert_cmpstr(hv_strerror(HV_ENOTFOUND), ==, "no such stream");
    g_assert_cmpstr(hv_err_name(HV_ERATELIMIT), ==, "ERATELIMIT");
    g_assert_cmpstr(hv_strerror(HV_ERATELIMIT), ==, "rate limited by upstream");
    g_assert_cmpstr(hv_err_name(HV_ECONFIG), ==, "ECONFIG");
    g_assert_cmpstr(hv_strerror(HV_ECONFIG), ==, "invalid configuration");
    g_assert_cmpstr(hv_err_name(HV_EPROTO), ==, "EPROTO");
    g_assert_cmpstr(hv_strerror(HV_ETIMEDOUT), ==, "timed out");
    g_assert_cmpstr(hv_err_name(12345), ==, "EUNKNOWN");
    g_assert_cmpstr(hv_strerror(12345), ==, "unknown error");
    g_assert_cmpstr(hv_err_name(-1), ==, "EUNKNOWN");
    /* Codes are negative and distinct. */
    g_assert_cmpint(HV_EINVAL, <, 0);
    g_assert_cmpint(HV_ECONFIG, <, 0);
    g_assert_cmpint(HV_EINVAL, !=, HV_ECONFIG);
    g_assert_cmpstr(g_quark_to_string(HV_ERROR), ==, "hv-error-quark");
}

/* ---- configuration ---------------------------------------------------------------------- */

/* Loads a config from a NULL-terminated argument list (argv[0] added) and environment. */
static hv_config *
load_config(const char *const *args, const char *const *env, hv_config_action *action,
            GError **error)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)"haven");
    for (size_t i = 0; args != NULL && args[i] != NULL; i++) {
        g_ptr_array_add(argv, (char *)args[i]);
    }
    int argc = (int)argv->len;
    g_ptr_array_add(argv, NULL);
    return hv_config_load(argc, (char **)argv->pdata, (char **)env, action, error);
}

/* Expects loading to fail with HV_ECONFIG and a message containing every needle. */
static void
expect_config_error(const char *const *args, const char *const *env, const char *needle1,
                    const char *needle2)
{
    hv_config_action action = HV_CONFIG_ACTION_RUN;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(args, env, &action, &error);
    g_assert_null(cfg);
    g_assert_error(error, HV_ERROR, HV_ECONFIG);
    if (strstr(error->message, needle1) == NULL ||
        (needle2 != NULL && strstr(error->message, needle2) == NULL)) {
        g_error("config error \"%s\" does not mention \"%s\"%s%s", error->message, needle1,
                needle2 != NULL ? " and " : "", needle2 != NULL ? needle2 : "");
    }
}

static void
test_config_defaults(void)
{
    hv_config_action action = HV_CONFIG_ACTION_VERSION;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(NULL, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_nonnull(cfg);
    g_assert_cmpint(action, ==, HV_CONFIG_ACTION_RUN);
    g_assert_cmpstr(cfg->listen, ==, "127.0.0.1:8000");
    g_assert_cmpstr(cfg->listen_host, ==, "127.0.0.1");
    g_assert_cmpint(cfg->listen_port, ==, 8000);
    g_assert_cmpstr(cfg->db_path, ==, "./haven.db");
    g_assert_cmpstr(cfg->pumpfun_frontend_api, ==, "https://frontend-api-v3.pump.fun");
    g_assert_cmpstr(cfg->pumpfun_livestream_api, ==, "https://livestream-api.pump.fun");
    g_assert_true(g_str_has_prefix(cfg->user_agent, "Mozilla/5.0 "));
    g_assert_cmpint(cfg->catalog_ttl_ms, ==, 10000);
    g_assert_cmpint(cfg->roster_max, ==, 1000);
    g_assert_cmpint(cfg->roster_page_size, ==, 100);
    g_assert_cmpint(cfg->upstream_connect_timeout_ms, ==, 5000);
    g_assert_cmpint(cfg->upstream_timeout_ms, ==, 15000);
    g_assert_cmpint(cfg->upstream_max_body_bytes, ==, 33554432);
    g_assert_cmpint(cfg->snapshot_interval_ms, ==, 60000);
    g_assert_cmpint(cfg->snapshot_retention_ms, ==, 30LL * 86400000LL);
    g_assert_cmpint(cfg->max_body_bytes, ==, 65536);
    g_assert_cmpint(cfg->max_header_bytes, ==, 8192);
    g_assert_cmpint(cfg->max_sessions, ==, 16);
    /* The guide's flow (start with curl, open the WebSocket later) needs minutes, not seconds. */
    g_assert_cmpint(cfg->idle_timeout_ms, ==, 5 * 60000);
    g_assert_cmpint(cfg->max_viewers_per_session, ==, 200);
    g_assert_cmpint(cfg->max_viewers, ==, 1000);
    g_assert_cmpint(cfg->start_rate, ==, 30);
    g_assert_cmpint(cfg->max_viewer_message_bytes, ==, 4096);
    g_assert_cmpstr(cfg->api_token, ==, "");
    g_assert_cmpstr(cfg->api_token_file, ==, "");
    g_assert_false(cfg->insecure_public);
    g_assert_cmpstr(cfg->cors_origins, ==, "");
    g_assert_cmpstr(cfg->log_level, ==, "info");
    g_assert_cmpstr(cfg->log_format, ==, "text");

    /* An environment without HAVEN_* variables changes nothing. */
    const char *env[] = {"PATH=/usr/bin", "HAVEN_LISTENX=1.2.3.4:5", "XHAVEN_DB=/x", NULL};
    g_autoptr(hv_config) cfg2 = load_config(NULL, env, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg2->listen, ==, "127.0.0.1:8000");
    g_assert_cmpstr(cfg2->db_path, ==, "./haven.db");
}

static void
test_config_precedence(void)
{
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    const char *env[] = {"HAVEN_LISTEN=0.0.0.0:9000", "HAVEN_CATALOG_TTL=30s",
                         "HAVEN_DB=/var/lib/haven/h.db", NULL};

    /* environment over default */
    g_autoptr(hv_config) a = load_config(NULL, env, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(a->listen, ==, "0.0.0.0:9000");
    g_assert_cmpstr(a->listen_host, ==, "0.0.0.0");
    g_assert_cmpint(a->listen_port, ==, 9000);
    g_assert_cmpint(a->catalog_ttl_ms, ==, 30000);
    g_assert_cmpstr(a->db_path, ==, "/var/lib/haven/h.db");

    /* flag over environment; "--x=v" and "--x v" forms */
    const char *args[] = {"--listen", "127.0.0.2:7000", "--catalog-ttl=2s", NULL};
    g_autoptr(hv_config) b = load_config(args, env, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpint(action, ==, HV_CONFIG_ACTION_RUN);
    g_assert_cmpstr(b->listen, ==, "127.0.0.2:7000");
    g_assert_cmpstr(b->listen_host, ==, "127.0.0.2");
    g_assert_cmpint(b->listen_port, ==, 7000);
    g_assert_cmpint(b->catalog_ttl_ms, ==, 2000);
    g_assert_cmpstr(b->db_path, ==, "/var/lib/haven/h.db"); /* env value kept */

    const char *args2[] = {"--catalog-ttl", "2s", "--listen=[::1]:8443", NULL};
    g_autoptr(hv_config) c = load_config(args2, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpint(c->catalog_ttl_ms, ==, 2000);
    g_assert_cmpstr(c->listen, ==, "[::1]:8443");
    g_assert_cmpstr(c->listen_host, ==, "::1");
    g_assert_cmpint(c->listen_port, ==, 8443);

    /* the last occurrence of a flag wins */
    const char *args3[] = {"--roster-max=5", "--roster-max", "7", NULL};
    g_autoptr(hv_config) d = load_config(args3, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpint(d->roster_max, ==, 7);
}

static void
test_config_values(void)
{
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    const char *env[] = {"HAVEN_PUMPFUN_FRONTEND_API=http://127.0.0.1:5000/",
                         "HAVEN_PUMPFUN_LIVESTREAM_API=https://live.example//",
                         "HAVEN_LOG_LEVEL=debug",
                         "HAVEN_LOG_FORMAT=json",
                         "HAVEN_SNAPSHOT_INTERVAL=0",
                         "HAVEN_UPSTREAM_TIMEOUT=500ms",
                         "HAVEN_ROSTER_MAX=100000",
                         NULL};
    g_autoptr(hv_config) cfg = load_config(NULL, env, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg->pumpfun_frontend_api, ==, "http://127.0.0.1:5000");
    g_assert_cmpstr(cfg->pumpfun_livestream_api, ==, "https://live.example");
    g_assert_cmpstr(cfg->log_level, ==, "debug");
    g_assert_cmpstr(cfg->log_format, ==, "json");
    g_assert_cmpint(cfg->snapshot_interval_ms, ==, 0);
    g_assert_cmpint(cfg->upstream_timeout_ms, ==, 500);
    g_assert_cmpint(cfg->roster_max, ==, 100000);

    /* a trailing slash on a flag value is stripped too */
    const char *args[] = {"--pumpfun-frontend-api=https://fe.example/", NULL};
    g_autoptr(hv_config) cfg2 = load_config(args, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg2->pumpfun_frontend_api, ==, "https://fe.example");
}

static void
test_config_invalid(void)
{
    const char *env_roster[] = {"HAVEN_ROSTER_MAX=0", NULL};
    expect_config_error(NULL, env_roster, "HAVEN_ROSTER_MAX", "1..100000");
    const char *env_roster2[] = {"HAVEN_ROSTER_MAX=12abc", NULL};
    expect_config_error(NULL, env_roster2, "HAVEN_ROSTER_MAX", "12abc");
    const char *env_listen[] = {"HAVEN_LISTEN=nope", NULL};
    expect_config_error(NULL, env_listen, "HAVEN_LISTEN", "nope");
    const char *env_port[] = {"HAVEN_LISTEN=127.0.0.1:70000", NULL};
    expect_config_error(NULL, env_port, "HAVEN_LISTEN", "70000");
    const char *env_noport[] = {"HAVEN_LISTEN=:8000", NULL};
    expect_config_error(NULL, env_noport, "HAVEN_LISTEN", NULL);
    const char *env_level[] = {"HAVEN_LOG_LEVEL=loud", NULL};
    expect_config_error(NULL, env_level, "HAVEN_LOG_LEVEL", "error|warning|info|debug");
    const char *env_url[] = {"HAVEN_PUMPFUN_FRONTEND_API=ftp://x", NULL};
    expect_config_error(NULL, env_url, "HAVEN_PUMPFUN_FRONTEND_API", "ftp://x");
    const char *env_ttl[] = {"HAVEN_CATALOG_TTL=10x", NULL};
    expect_config_error(NULL, env_ttl, "HAVEN_CATALOG_TTL", "10x");
    const char *env_ttl_small[] = {"HAVEN_CATALOG_TTL=10ms", NULL};
    expect_config_error(NULL, env_ttl_small, "HAVEN_CATALOG_TTL", "out of range");
    const char *env_db[] = {"HAVEN_DB=", NULL};
    expect_config_error(NULL, env_db, "HAVEN_DB", "empty");

    /* flags name the flag (as "listen", without the dashes) */
    const char *args_listen[] = {"--listen=nope", NULL};
    expect_config_error(args_listen, NULL, "listen", "nope");
    const char *args_ttl[] = {"--catalog-ttl", "forever", NULL};
    expect_config_error(args_ttl, NULL, "catalog-ttl", "forever");
    /* a bad flag fails even when the environment holds a good value */
    const char *env_good[] = {"HAVEN_ROSTER_MAX=10", NULL};
    const char *args_roster[] = {"--roster-max=-1", NULL};
    expect_config_error(args_roster, env_good, "roster-max", "-1");

    const char *args_unknown[] = {"--nope", NULL};
    expect_config_error(args_unknown, NULL, "--nope", NULL);
    const char *args_unknown_eq[] = {"--nope=1", NULL};
    expect_config_error(args_unknown_eq, NULL, "--nope", NULL);
    const char *args_missing[] = {"--listen", NULL};
    expect_config_error(args_missing, NULL, "--listen", "needs a value");
    const char *args_positional[] = {"serve", NULL};
    expect_config_error(args_positional, NULL, "serve", NULL);
}

static void
test_config_actions(void)
{
    static const struct {
        const char *arg;
        hv_config_action action;
    } cases[] = {
        {"--help", HV_CONFIG_ACTION_HELP},
        {"-h", HV_CONFIG_ACTION_HELP},
        {"--print-config", HV_CONFIG_ACTION_PRINT_CONFIG},
        {"--version", HV_CONFIG_ACTION_VERSION},
        {"--print-config-markdown", HV_CONFIG_ACTION_PRINT_MARKDOWN},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const char *args[] = {"--listen=127.0.0.1:8001", cases[i].arg, NULL};
        hv_config_action action = HV_CONFIG_ACTION_RUN;
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_config) cfg = load_config(args, NULL, &action, &error);
        g_assert_no_error(error);
        g_assert_nonnull(cfg);
        g_assert_cmpint(action, ==, cases[i].action);
        g_assert_cmpint(cfg->listen_port, ==, 8001);
    }
}

/* Runs a printer into a string. */
static char *
capture(void (*print)(FILE *, const void *), const void *arg)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    g_assert_nonnull(f);
    print(f, arg);
    g_assert_cmpint(fclose(f), ==, 0);
    return buf; /* malloc'ed */
}

static void
print_markdown(FILE *f, const void *arg)
{
    hv_config_print_markdown(f);
}

static void
print_help(FILE *f, const void *arg)
{
    hv_config_print_help(f, "haven");
}

static void
print_config(FILE *f, const void *arg)
{
    hv_config_print(arg, f);
}

static void
test_config_print(void)
{
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    const char *env[] = {"HAVEN_CATALOG_TTL=2s", NULL};
    g_autoptr(hv_config) cfg = load_config(NULL, env, &action, &error);
    g_assert_no_error(error);
    char *text = capture(print_config, cfg);
    g_assert_nonnull(strstr(text, "HAVEN_LISTEN=127.0.0.1:8000  # default\n"));
    g_assert_nonnull(strstr(text, "HAVEN_CATALOG_TTL=2000ms  # environment\n"));
    g_assert_nonnull(strstr(text, "HAVEN_ROSTER_MAX=1000  # default\n"));
    g_assert_nonnull(strstr(text, "HAVEN_LOG_LEVEL=info  # default\n"));
    g_assert_nonnull(strstr(text, "HAVEN_CONFIG=  # default\n"));
    free(text);

    /* A PostgreSQL URI's password, in the authority or as a parameter, is never printed. */
    const char *pg_env[] = {
        "HAVEN_DB=postgresql://haven:s3cr%40t@db.example:5433/haven?password=p2&sslmode=require",
        NULL};
    g_autoptr(hv_config) pg_cfg = load_config(NULL, pg_env, &action, &error);
    g_assert_no_error(error);
    text = capture(print_config, pg_cfg);
    g_assert_nonnull(strstr(text, "HAVEN_DB=postgresql://haven:***@db.example:5433/haven"
                                  "?password=***&sslmode=require  # environment\n"));
    g_assert_null(strstr(text, "s3cr"));
    g_assert_null(strstr(text, "p2"));
    free(text);

    text = capture(print_help, NULL);
    g_assert_true(g_str_has_prefix(text, "Usage: haven [OPTION...]\n"));
    g_assert_nonnull(strstr(text, "  --catalog-ttl=duration\n      env HAVEN_CATALOG_TTL, default "
                                  "10s\n"));
    g_assert_nonnull(strstr(text, "      one of: text|json\n"));
    free(text);

    text = capture(print_markdown, NULL);
    g_assert_true(g_str_has_prefix(text, "| Flag | Environment | Type | Default | Description |\n"
                                         "|---|---|---|---|---|\n"));
    g_assert_nonnull(
        strstr(text, "| `--listen` | `HAVEN_LISTEN` | host:port | `127.0.0.1:8000` |"));
    g_assert_nonnull(strstr(text, " Range 1..100000. |\n"));
    g_assert_nonnull(strstr(text, " One of `error|warning|info|debug`. |\n"));
    /* one row per option after the 2 header lines, each naming its flag and HAVEN_ variable */
    g_auto(GStrv) rows = g_strsplit(text, "\n", -1);
    guint n_rows = g_strv_length(rows) - 1; /* the text ends with a newline */
    g_assert_cmpuint(n_rows, >=, 18);
    for (guint i = 2; i < n_rows; i++) {
        g_assert_true(g_str_has_prefix(rows[i], "| `--") ||
                      g_str_has_prefix(rows[i], "| (no flag; `api-token` in a file) | "
                                                "`HAVEN_API_TOKEN`"));
        g_assert_nonnull(strstr(rows[i], "| `HAVEN_"));
    }
    g_assert_nonnull(
        strstr(text, "| (no flag; `api-token` in a file) | `HAVEN_API_TOKEN` | string | `` |"));
    g_assert_nonnull(strstr(text, "| `--config` | `HAVEN_CONFIG` | string | `` |"));
    g_assert_nonnull(strstr(text, "| `--insecure-public` | `HAVEN_INSECURE_PUBLIC` | boolean | "
                                  "`false` |"));
    free(text);
}

static void
test_config_loopback(void)
{
    static const char *const loopback[] = {"127.0.0.1",       "127.8.9.10", "localhost",
                                           "LocalHost",       "::1",        "0:0:0:0:0:0:0:1",
                                           "::ffff:127.0.0.1"};
    static const char *const public_[] = {"0.0.0.0",
                                          "::",
                                          "10.0.0.1",
                                          "192.168.1.2",
                                          "128.0.0.1",
                                          "1.127.0.0",
                                          "::ffff:10.0.0.1",
                                          "example.com",
                                          "eth0",
                                          "localhost.example",
                                          "127.0.0.1.nip.io"};
    for (size_t i = 0; i < G_N_ELEMENTS(loopback); i++) {
        if (!hv_config_host_is_loopback(loopback[i])) {
            g_error("%s should count as loopback", loopback[i]);
        }
    }
    for (size_t i = 0; i < G_N_ELEMENTS(public_); i++) {
        if (hv_config_host_is_loopback(public_[i])) {
            g_error("%s should not count as loopback", public_[i]);
        }
    }
}

#define TEST_TOKEN "s3cret-token-0123456789"

/* Loads a configuration (which must succeed) and returns whether it passes the exposure
 * check; on failure the message must contain needle (when not NULL). */
static bool
exposure_ok(const char *const *args, const char *const *env, const char *needle)
{
    hv_config_action action = HV_CONFIG_ACTION_RUN;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(args, env, &action, &error);
    g_assert_no_error(error);
    if (hv_config_check_exposure(cfg, &error)) {
        g_assert_no_error(error);
        return true;
    }
    g_assert_error(error, HV_ERROR, HV_ECONFIG);
    if (needle != NULL && strstr(error->message, needle) == NULL) {
        g_error("exposure error \"%s\" does not mention \"%s\"", error->message, needle);
    }
    return false;
}

static void
test_config_exposure(void)
{
    /* A non-loopback address needs a token or --insecure-public. */
    const char *env_public[] = {"HAVEN_LISTEN=0.0.0.0:8000", NULL};
    g_assert_false(
        exposure_ok(NULL, env_public, "refusing to listen on 0.0.0.0:8000 without an API token"));
    g_assert_false(exposure_ok(NULL, env_public, "Set HAVEN_API_TOKEN (or --api-token-file)"));
    const char *args_v6[] = {"--listen=[::]:8000", NULL};
    g_assert_false(exposure_ok(args_v6, NULL, "--insecure-public"));
    const char *args_lan[] = {"--listen=10.1.2.3:8000", NULL};
    g_assert_false(exposure_ok(args_lan, NULL, "10.1.2.3:8000"));

    const char *args_flag[] = {"--listen=0.0.0.0:8000", "--insecure-public", NULL};
    g_assert_true(exposure_ok(args_flag, NULL, NULL));
    const char *env_flag[] = {"HAVEN_LISTEN=0.0.0.0:8000", "HAVEN_INSECURE_PUBLIC=yes", NULL};
    g_assert_true(exposure_ok(NULL, env_flag, NULL));
    /* a flag with a value wins over the environment */
    const char *args_off[] = {"--insecure-public=false", NULL};
    g_assert_false(exposure_ok(args_off, env_flag, "refusing to listen"));
    const char *env_token[] = {"HAVEN_LISTEN=0.0.0.0:8000", "HAVEN_API_TOKEN=" TEST_TOKEN, NULL};
    g_assert_true(exposure_ok(NULL, env_token, NULL));
    /* loopback needs nothing */
    const char *args_lo[] = {"--listen=[::1]:8000", NULL};
    g_assert_true(exposure_ok(args_lo, NULL, NULL));
    g_assert_true(exposure_ok(NULL, NULL, NULL));

    hv_config_action action;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) a = load_config(args_flag, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_true(a->insecure_public);
    g_autoptr(hv_config) c = load_config(NULL, env_token, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(c->api_token, ==, TEST_TOKEN);
    g_assert_false(c->insecure_public);

    const char *args_bad[] = {"--insecure-public=maybe", NULL};
    expect_config_error(args_bad, NULL, "insecure-public", "boolean");
}

/* Loads env and expects an error that never shows the token's text. */
static void
expect_token_error(const char *const *args, const char *const *env, const char *needle,
                   const char *secret)
{
    hv_config_action action = HV_CONFIG_ACTION_RUN;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(args, env, &action, &error);
    g_assert_null(cfg);
    g_assert_error(error, HV_ERROR, HV_ECONFIG);
    if (strstr(error->message, needle) == NULL) {
        g_error("config error \"%s\" does not mention \"%s\"", error->message, needle);
    }
    if (secret != NULL) {
        g_assert_null(strstr(error->message, secret));
    }
}

static void
test_config_api_token(void)
{
    const char *env_short[] = {"HAVEN_API_TOKEN=tooshort", NULL};
    expect_token_error(NULL, env_short, "16 to 512 visible ASCII", "tooshort");
    const char *env_blank[] = {"HAVEN_API_TOKEN=has a blank in it 0123", NULL};
    expect_token_error(NULL, env_blank, "no blanks", "has a blank");
    /* never from a flag: every user sees flags in ps */
    const char *args_flag[] = {"--api-token=" TEST_TOKEN, NULL};
    expect_token_error(args_flag, NULL, "HAVEN_API_TOKEN in the environment", TEST_TOKEN);

    /* from a file: the first line */
    g_autofree char *dir = g_dir_make_tmp("hv-token-XXXXXX", NULL);
    g_assert_nonnull(dir);
    g_autofree char *path = g_build_filename(dir, "token", NULL);
    g_assert_true(g_file_set_contents(path, TEST_TOKEN "\nsecond line\n", -1, NULL));
    g_autofree char *arg = g_strconcat("--api-token-file=", path, NULL);
    const char *args_file[] = {arg, NULL};
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(args_file, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg->api_token, ==, TEST_TOKEN);
    char *text = capture(print_config, cfg);
    g_assert_nonnull(strstr(text, "HAVEN_API_TOKEN=***  # flag\n"));
    g_assert_null(strstr(text, TEST_TOKEN));
    free(text);

    const char *env_both[] = {"HAVEN_API_TOKEN=" TEST_TOKEN, NULL};
    expect_token_error(args_file, env_both, "both set", TEST_TOKEN);
    g_assert_true(g_file_set_contents(path, "\n", -1, NULL));
    expect_token_error(args_file, NULL, "holds no token", NULL);
    g_assert_cmpint(g_remove(path), ==, 0);
    expect_token_error(args_file, NULL, "cannot read the API token file", NULL);
    g_assert_cmpint(g_rmdir(dir), ==, 0);

    /* unset prints empty, so --print-config shows whether a token is in force */
    g_autoptr(hv_config) none = load_config(NULL, NULL, &action, &error);
    g_assert_no_error(error);
    text = capture(print_config, none);
    g_assert_nonnull(strstr(text, "HAVEN_API_TOKEN=  # default\n"));
    g_assert_nonnull(strstr(text, "HAVEN_INSECURE_PUBLIC=false  # default\n"));
    free(text);
}

static void
test_config_cors_origins(void)
{
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    const char *env[] = {"HAVEN_CORS_ORIGINS= https://app.example:8443 ,http://127.0.0.1:3000,",
                         NULL};
    g_autoptr(hv_config) cfg = load_config(NULL, env, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg->cors_origins, ==, "https://app.example:8443,http://127.0.0.1:3000");
    const char *args_any[] = {"--cors-origins=*", NULL};
    g_autoptr(hv_config) any = load_config(args_any, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(any->cors_origins, ==, "*");

    static const char *const bad[] = {
        "https://app.example/", "ftp://x.example",       "*,http://a.example", "http://",
        "app.example",          "http://a.example/path", "http://*.example",   "http://a b"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *v = g_strconcat("HAVEN_CORS_ORIGINS=", bad[i], NULL);
        const char *env_bad[] = {v, NULL};
        expect_config_error(NULL, env_bad, "HAVEN_CORS_ORIGINS", "comma list of origins");
    }
}

static void
test_config_limits(void)
{
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    const char *env[] = {"HAVEN_MAX_SESSIONS=1",
                         "HAVEN_MAX_VIEWERS_PER_SESSION=2",
                         "HAVEN_MAX_VIEWERS=3",
                         "HAVEN_START_RATE=0",
                         "HAVEN_MAX_HEADER=65535",
                         "HAVEN_MAX_VIEWER_MESSAGE=64",
                         NULL};
    g_autoptr(hv_config) cfg = load_config(NULL, env, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpint(cfg->max_sessions, ==, 1);
    g_assert_cmpint(cfg->max_viewers_per_session, ==, 2);
    g_assert_cmpint(cfg->max_viewers, ==, 3);
    g_assert_cmpint(cfg->start_rate, ==, 0);
    g_assert_cmpint(cfg->max_header_bytes, ==, 65535);
    g_assert_cmpint(cfg->max_viewer_message_bytes, ==, 64);
    /* lws keeps the header size in 16 bits */
    const char *env_header[] = {"HAVEN_MAX_HEADER=65536", NULL};
    expect_config_error(NULL, env_header, "HAVEN_MAX_HEADER", "1024..65535");
    const char *env_sessions[] = {"HAVEN_MAX_SESSIONS=0", NULL};
    expect_config_error(NULL, env_sessions, "HAVEN_MAX_SESSIONS", "1..10000");
}

/* ---- configuration file ------------------------------------------------------------------ */

/* Writes text to a new temporary file with the given mode; returns (transfer full) its path. */
static char *
write_conf(const char *text, int mode)
{
    g_autoptr(GError) error = NULL;
    char *path = NULL;
    int fd = g_file_open_tmp("hv-conf-XXXXXX", &path, &error);
    g_assert_no_error(error);
    g_assert_cmpint(close(fd), ==, 0);
    g_assert_true(g_file_set_contents(path, text, -1, &error));
    g_assert_no_error(error);
    g_assert_cmpint(g_chmod(path, mode), ==, 0);
    return path;
}

/* Applies text (strlen) to fresh defaults as a file called "haven.conf"; returns the config
 * (transfer full), or NULL with error set. */
static hv_config *
apply_conf_text(const char *text, size_t len, bool secrets_ok, GError **error)
{
    hv_config_action action;
    g_autoptr(hv_config) cfg = load_config(NULL, NULL, &action, error);
    g_assert_nonnull(cfg);
    if (!hv_config_apply_file_text(cfg, "haven.conf", text, len, secrets_ok, error)) {
        return NULL;
    }
    return g_steal_pointer(&cfg);
}

/* Expects text to be refused with a one-line HV_ECONFIG message holding every needle. */
static void
expect_conf_error(const char *text, size_t len, const char *const *needles)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = apply_conf_text(text, len, true, &error);
    if (cfg != NULL) {
        g_error("config file text \"%s\" should have been refused", text);
    }
    g_assert_error(error, HV_ERROR, HV_ECONFIG);
    g_assert_null(strchr(error->message, '\n'));
    for (size_t i = 0; needles[i] != NULL; i++) {
        if (strstr(error->message, needles[i]) == NULL) {
            g_error("config file error \"%s\" does not mention \"%s\"", error->message, needles[i]);
        }
    }
}

static void
test_config_file_precedence(void)
{
    g_autofree char *path = write_conf("# all four layers\n"
                                       "listen = 127.0.0.3:7001\n"
                                       "catalog-ttl = 20s\n"
                                       "roster-max = 50\n"
                                       "db = /from/file.db\n",
                                       0600);
    g_autofree char *config_env = g_strconcat("HAVEN_CONFIG=", path, NULL);
    const char *env[] = {config_env, "HAVEN_CATALOG_TTL=30s", "HAVEN_ROSTER_MAX=60", NULL};
    const char *args[] = {"--roster-max=70", NULL};
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(args, env, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg->config_file, ==, path);
    g_assert_cmpint(cfg->jpeg_quality, ==, 85);         /* default */
    g_assert_cmpstr(cfg->listen, ==, "127.0.0.3:7001"); /* file over default */
    g_assert_cmpint(cfg->listen_port, ==, 7001);        /* (parsed from it) */
    g_assert_cmpstr(cfg->db_path, ==, "/from/file.db"); /* file over default */
    g_assert_cmpint(cfg->catalog_ttl_ms, ==, 30000);    /* environment over file */
    g_assert_cmpint(cfg->roster_max, ==, 70);           /* flag over environment */
    g_assert_cmpint(hv_config_value_source(cfg, "jpeg-quality"), ==, HV_CONFIG_SOURCE_DEFAULT);
    g_assert_cmpint(hv_config_value_source(cfg, "listen"), ==, HV_CONFIG_SOURCE_FILE);
    g_assert_cmpint(hv_config_value_source(cfg, "catalog-ttl"), ==, HV_CONFIG_SOURCE_ENVIRONMENT);
    g_assert_cmpint(hv_config_value_source(cfg, "roster-max"), ==, HV_CONFIG_SOURCE_FLAG);
    g_assert_cmpint(hv_config_value_source(cfg, "config"), ==, HV_CONFIG_SOURCE_ENVIRONMENT);
    g_assert_cmpint(hv_config_value_source(cfg, "no-such-option"), ==, -1);

    /* --config wins over HAVEN_CONFIG (which names a file that does not exist here) */
    const char *env_missing[] = {"HAVEN_CONFIG=/nonexistent/haven.conf", NULL};
    const char *args_config[] = {"--config", path, NULL};
    g_autoptr(hv_config) b = load_config(args_config, env_missing, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b->db_path, ==, "/from/file.db");
    g_assert_cmpint(hv_config_value_source(b, "config"), ==, HV_CONFIG_SOURCE_FLAG);
    /* ... and an empty --config= means no file at all */
    const char *args_none[] = {"--config=", NULL};
    g_autoptr(hv_config) c = load_config(args_none, env_missing, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(c->db_path, ==, "./haven.db");
    g_assert_cmpstr(c->config_file, ==, "");
    /* without --config or HAVEN_CONFIG no file is read */
    g_autoptr(hv_config) d = load_config(NULL, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(d->config_file, ==, "");
    g_assert_cmpint(hv_config_value_source(d, "listen"), ==, HV_CONFIG_SOURCE_DEFAULT);
    /* the environment alone names the file too */
    g_autoptr(hv_config) e = load_config(NULL, (const char *[]){config_env, NULL}, &action, &error);
    g_assert_no_error(error);
    g_assert_cmpint(e->roster_max, ==, 50);
    g_assert_cmpint(e->catalog_ttl_ms, ==, 20000);
    /* a bad flag still fails when the file holds a good value */
    const char *args_bad[] = {"--roster-max=0", NULL};
    expect_config_error(args_bad, (const char *[]){config_env, NULL}, "roster-max", "1..100000");
    g_assert_cmpint(g_remove(path), ==, 0);
}

static void
test_config_file_syntax(void)
{
    static const char text[] = "\xef\xbb\xbf# a comment, then blank lines\r\n"
                               "\n"
                               "   \t\n"
                               "  # an indented comment = with an equals sign\n"
                               "log-level=debug\n"
                               "  idle-timeout   =   2m   \r\n"
                               "user-agent = \"  spaced #1 \\\"quoted\\\" back\\\\slash  \"  \n"
                               "web-dir =\n"
                               "ice-addresses = \"\"\n"
                               "cors-origins = https://a.example:8443 , http://127.0.0.1:3000\n"
                               "pumpfun-frontend-api = http://127.0.0.1:5000/\n"
                               "recordings-dir = un\"quoted\\inside\n"
                               "insecure-public = yes\n"
                               "log-format = json"; /* no newline at the end */
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = apply_conf_text(text, sizeof(text) - 1, false, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cfg->log_level, ==, "debug");
    g_assert_cmpint(cfg->idle_timeout_ms, ==, 120000);
    g_assert_cmpstr(cfg->user_agent, ==, "  spaced #1 \"quoted\" back\\slash  ");
    g_assert_cmpstr(cfg->web_dir, ==, "");
    g_assert_cmpstr(cfg->ice_addresses, ==, "");
    g_assert_cmpstr(cfg->cors_origins, ==, "https://a.example:8443,http://127.0.0.1:3000");
    g_assert_cmpstr(cfg->pumpfun_frontend_api, ==, "http://127.0.0.1:5000");
    g_assert_cmpstr(cfg->recordings_dir, ==, "un\"quoted\\inside");
    g_assert_true(cfg->insecure_public);
    g_assert_cmpstr(cfg->log_format, ==, "json");
    g_assert_cmpint(hv_config_value_source(cfg, "log-format"), ==, HV_CONFIG_SOURCE_FILE);
    g_assert_cmpint(hv_config_value_source(cfg, "db"), ==, HV_CONFIG_SOURCE_DEFAULT);

    /* only len bytes are read: the text need not be NUL-terminated */
    static const char cut[] = "log-level = error\nlog-level = junk";
    g_autoptr(hv_config) c = apply_conf_text(cut, strlen("log-level = error\n"), false, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(c->log_level, ==, "error");
    /* an empty file, or one of comments only, changes nothing */
    g_autoptr(hv_config) e = apply_conf_text("", 0, false, &error);
    g_assert_no_error(error);
    g_autoptr(hv_config) f = apply_conf_text("# nothing\n\n", 11, false, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(f->listen, ==, "127.0.0.1:8000");
}

#define CONF_ERR(text, ...) \
    expect_conf_error(text, strlen(text), (const char *[]){__VA_ARGS__, NULL})

static void
test_config_file_errors(void)
{
    CONF_ERR("# ok\nlisten\n", "config file haven.conf:2:", "no \"=\"");
    CONF_ERR(" = 1\n", "haven.conf:1:", "no option name");
    CONF_ERR("log-level = info\nlisen = 1.2.3.4:5\n", "haven.conf:2:", "unknown option \"lisen\"");
    CONF_ERR("HAVEN_LISTEN = 127.0.0.1:1\n", "haven.conf:1:", "unknown option \"HAVEN_LISTEN\"");
    CONF_ERR("--listen = 127.0.0.1:1\n", "unknown option \"--listen\"");
    CONF_ERR("catalog-ttl = 10s\n\ncatalog-ttl = 10s\n",
             "haven.conf:3:", "catalog-ttl is set twice (first on line 1)");
    /* values: the per-type checks of the other layers, naming file:line, the key and value */
    CONF_ERR("\n\nroster-max = 0\n", "config file haven.conf:3: invalid roster-max=\"0\"",
             "out of range", "1..100000");
    CONF_ERR("idle-timeout = 2x\n", "haven.conf:1: invalid idle-timeout=\"2x\"", "duration");
    CONF_ERR("listen = nope\n", "invalid listen=\"nope\"", "host:port");
    CONF_ERR("log-level = loud\n", "invalid log-level=\"loud\"", "error|warning|info|debug");
    CONF_ERR("db =\n", "invalid db=\"\"", "must not be empty");
    CONF_ERR("insecure-public = maybe\n", "invalid insecure-public=\"maybe\"", "boolean");
    CONF_ERR("livekit-url = ftp://x\n", "invalid livekit-url=\"ftp://x\"");
    /* quoting */
    CONF_ERR("user-agent = \"open\n", "haven.conf:1: user-agent", "without its closing quote");
    CONF_ERR("user-agent = \"a\\nb\"\n", "user-agent", "unknown escape");
    CONF_ERR("user-agent = \"a\" b\n", "user-agent", "text after the closing quote");
    CONF_ERR("listen = 127.0.0.1:8000 # comment\n", "haven.conf:1: listen", "'#'", "quote");
    CONF_ERR("config = /etc/haven/other.conf\n", "haven.conf:1:", "\"config\" cannot be set");
    /* bytes that are not text */
    static const char nul[] = "log-level = info\nweb-dir = a\0b\n";
    expect_conf_error(nul, sizeof(nul) - 1, (const char *[]){"haven.conf:2:", "NUL byte", NULL});
    CONF_ERR("log-level = info\nweb-dir = \xff\xfe\n", "haven.conf:2:", "not valid UTF-8");
    CONF_ERR("web-dir = \xc3\n", "haven.conf:1:", "not valid UTF-8"); /* cut sequence */
    /* too big: refused before any line is looked at */
    gsize big_len = HV_CONFIG_FILE_MAX_BYTES + 1;
    g_autofree char *big = g_malloc(big_len + 1);
    memset(big, '#', big_len);
    big[big_len] = '\0';
    expect_conf_error(big, big_len, (const char *[]){"haven.conf", "1048577 bytes", NULL});
    /* just under the cap is fine */
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) ok = apply_conf_text(big, big_len - 1, true, &error);
    g_assert_no_error(error);
}

static void
test_config_file_unreadable(void)
{
    const char *args_missing[] = {"--config=/nonexistent/haven.conf", NULL};
    expect_config_error(args_missing, NULL, "cannot read config file /nonexistent/haven.conf",
                        "No such file");
    const char *env_missing[] = {"HAVEN_CONFIG=/nonexistent/x.conf", NULL};
    expect_config_error(NULL, env_missing, "/nonexistent/x.conf", NULL);
    g_autofree char *dir = g_dir_make_tmp("hv-conf-XXXXXX", NULL);
    g_autofree char *arg = g_strconcat("--config=", dir, NULL);
    const char *args_dir[] = {arg, NULL};
    expect_config_error(args_dir, NULL, "cannot read config file", "directory");
    g_assert_cmpint(g_rmdir(dir), ==, 0);
    /* a file's error names the path as given, with the line */
    g_autofree char *path = write_conf("log-level = info\nmax-header = 70000\n", 0644);
    g_autofree char *arg2 = g_strconcat("--config=", path, NULL);
    g_autofree char *where = g_strconcat("config file ", path, ":2: invalid max-header", NULL);
    const char *args_bad[] = {arg2, NULL};
    expect_config_error(args_bad, NULL, where, "1024..65535");
    g_assert_cmpint(g_remove(path), ==, 0);
}

static void
test_config_file_secret_mode(void)
{
    static const char text[] = "# the token\napi-token = " TEST_TOKEN "\n";
    static const int readable[] = {0644, 0640, 0604, 0620, 0602, 0610, 0601};
    for (size_t i = 0; i < G_N_ELEMENTS(readable); i++) {
        g_autofree char *path = write_conf(text, readable[i]);
        g_autofree char *arg = g_strconcat("--config=", path, NULL);
        const char *args[] = {arg, NULL};
        expect_token_error(args, NULL, "refusing api-token=\"***\"", TEST_TOKEN);
        expect_token_error(args, NULL, ":2:", TEST_TOKEN);
        expect_token_error(args, NULL, "chmod 600", TEST_TOKEN);
        g_assert_cmpint(g_remove(path), ==, 0);
    }
    /* 0600 (and 0400): allowed; shown masked, with where it came from */
    static const int private_[] = {0600, 0400};
    for (size_t i = 0; i < G_N_ELEMENTS(private_); i++) {
        g_autofree char *path = write_conf(text, private_[i]);
        g_autofree char *arg = g_strconcat("--config=", path, NULL);
        const char *args[] = {arg, "--listen=0.0.0.0:8000", NULL};
        hv_config_action action;
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_config) cfg = load_config(args, NULL, &action, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(cfg->api_token, ==, TEST_TOKEN);
        g_assert_true(hv_config_check_exposure(cfg, &error));
        char *out = capture(print_config, cfg);
        g_assert_nonnull(strstr(out, "HAVEN_API_TOKEN=***  # file\n"));
        g_assert_null(strstr(out, TEST_TOKEN));
        free(out);
        /* the token is still checked, without being shown */
        /* (g_file_set_contents would make a new file with mode 0666 & ~umask) */
        g_assert_true(g_file_set_contents_full(path, "api-token = short\n", -1,
                                               G_FILE_SET_CONTENTS_CONSISTENT, private_[i], NULL));
        expect_token_error(args, NULL, "16 to 512 visible ASCII", "short\"");
        /* the environment's token wins over the file's */
        g_assert_true(g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT,
                                               private_[i], NULL));
        const char *env[] = {"HAVEN_API_TOKEN=another-token-0123456789", NULL};
        g_autoptr(hv_config) env_wins = load_config(args, env, &action, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(env_wins->api_token, ==, "another-token-0123456789");
        g_assert_cmpint(hv_config_value_source(env_wins, "api-token"), ==,
                        HV_CONFIG_SOURCE_ENVIRONMENT);
        g_assert_cmpint(g_remove(path), ==, 0);
    }
    /* an empty api-token in a readable file sets nothing secret: allowed */
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) empty = apply_conf_text("api-token =\n", 12, false, &error);
    g_assert_no_error(error);
    /* the pure parser applies the same rule */
    g_autoptr(hv_config) refused = apply_conf_text(text, strlen(text), false, &error);
    g_assert_null(refused);
    g_assert_error(error, HV_ERROR, HV_ECONFIG);
    g_assert_null(strstr(error->message, TEST_TOKEN));
    g_assert_nonnull(
        strstr(error->message, "config file haven.conf:2: refusing api-token=\"***\""));
}

static void
test_config_file_print_sources(void)
{
    g_autofree char *path = write_conf("listen = 127.0.0.1:9001\nlog-level = debug\n"
                                       "max-viewers = 5\n",
                                       0644);
    g_autofree char *arg = g_strconcat("--config=", path, NULL);
    const char *args[] = {arg, "--max-viewers=7", NULL};
    const char *env[] = {"HAVEN_LOG_LEVEL=warning", NULL};
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(args, env, &action, &error);
    g_assert_no_error(error);
    char *text = capture(print_config, cfg);
    g_autofree char *config_line = g_strconcat("HAVEN_CONFIG=", path, "  # flag\n", NULL);
    g_assert_nonnull(strstr(text, config_line));
    g_assert_nonnull(strstr(text, "HAVEN_LISTEN=127.0.0.1:9001  # file\n"));
    g_assert_nonnull(strstr(text, "HAVEN_LOG_LEVEL=warning  # environment\n"));
    g_assert_nonnull(strstr(text, "HAVEN_MAX_VIEWERS=7  # flag\n"));
    g_assert_nonnull(strstr(text, "HAVEN_MAX_SESSIONS=16  # default\n"));
    g_assert_nonnull(strstr(text, "HAVEN_API_TOKEN=  # default\n"));
    /* every line is NAME=value  # source */
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l != NULL && **l != '\0'; l++) {
        g_assert_true(g_str_has_prefix(*l, "HAVEN_"));
        g_assert_true(g_str_has_suffix(*l, "  # default") || g_str_has_suffix(*l, "  # file") ||
                      g_str_has_suffix(*l, "  # environment") || g_str_has_suffix(*l, "  # flag"));
    }
    free(text);
    text = capture(print_help, NULL);
    g_assert_nonnull(strstr(text, "  --config=string\n      env HAVEN_CONFIG, default (empty)\n"));
    g_assert_nonnull(strstr(text, "HAVEN_API_TOKEN, or api-token in a private config file"));
    free(text);
    g_assert_cmpstr(hv_config_source_name(HV_CONFIG_SOURCE_FILE), ==, "file");
    g_assert_cmpint(g_remove(path), ==, 0);
}

/* The example configuration that meson install puts in /etc/haven (dist/haven.conf.in, with
 * the install paths filled in by Meson) loads, and sets what it says. */
static void
test_config_file_example(void)
{
    const char *path = g_getenv("HAVEN_EXAMPLE_CONFIG");
    if (path == NULL) {
        g_error("HAVEN_EXAMPLE_CONFIG is not set (run the tests with meson test)");
    }
    g_autofree char *arg = g_strconcat("--config=", path, NULL);
    const char *args[] = {arg, NULL};
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_config) cfg = load_config(args, NULL, &action, &error);
    g_assert_no_error(error);
    g_assert_true(hv_config_check_exposure(cfg, &error));
    g_assert_cmpstr(cfg->db_path, ==, "/var/lib/haven/haven.db");
    g_assert_cmpstr(cfg->recordings_dir, ==, "/var/lib/haven/recordings");
    g_assert_true(g_str_has_suffix(cfg->web_dir, "/haven/web"));
    g_assert_cmpint(hv_config_value_source(cfg, "db"), ==, HV_CONFIG_SOURCE_FILE);
    g_assert_cmpint(hv_config_value_source(cfg, "web-dir"), ==, HV_CONFIG_SOURCE_FILE);
}

#define CONFIG_MD_BEGIN \
    "<!-- BEGIN OPTIONS (generated by haven --print-config-markdown; checked by tests) -->"
#define CONFIG_MD_END "<!-- END OPTIONS -->"

static void
test_config_doc_matches_table(void)
{
    const char *root = g_getenv("HAVEN_SOURCE_ROOT");
    if (root == NULL) {
        g_error("HAVEN_SOURCE_ROOT is not set (run the tests with meson test)");
    }
    g_autofree char *path = g_build_filename(root, "docs", "CONFIG.md", NULL);
    g_autofree char *doc = NULL;
    g_autoptr(GError) error = NULL;
    if (!g_file_get_contents(path, &doc, NULL, &error)) {
        g_test_message("%s", error->message);
        g_test_fail_printf("cannot read %s; create it with the generated option table between "
                           "the markers " CONFIG_MD_BEGIN " and " CONFIG_MD_END,
                           path);
        return;
    }
    const char *begin = strstr(doc, CONFIG_MD_BEGIN);
    const char *end = begin != NULL ? strstr(begin, CONFIG_MD_END) : NULL;
    if (begin == NULL || end == NULL) {
        g_test_fail_printf("%s lacks the markers " CONFIG_MD_BEGIN " ... " CONFIG_MD_END, path);
        return;
    }
    begin += strlen(CONFIG_MD_BEGIN);
    g_autofree char *section = g_strndup(begin, (gsize)(end - begin));
    g_strstrip(section);

    char *generated = capture(print_markdown, NULL);
    g_autofree char *want = g_strstrip(g_strdup(generated));
    free(generated);
    if (strcmp(section, want) != 0) {
        g_test_message("expected between the markers:\n%s", want);
        g_test_fail_printf("%s is out of date: regenerate the option table with "
                           "tools/gen-config-doc.sh (haven --print-config-markdown) so that it "
                           "sits between the OPTIONS markers",
                           path);
    }
}

/* ==== logging (core/log.c): formats, context fields, JSON validity, levels, masking, rate
 * limit. Each test sends the writer's lines to a GString (hv_log_set_capture) and restores
 * stderr and the default level at the end. ============================================== */

#define LOG_JWT                                                                  \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ2aWV3ZXIiLCJyb29tIjoiciJ9." \
    "c2lnbmF0dXJlLXNpZ25hdHVyZQ"

static GString *
log_capture_begin(const char *level, bool json)
{
    GString *out = g_string_new(NULL);
    hv_log_init(level, json);
    hv_log_set_capture(out);
    return out;
}

static void
log_capture_end(void)
{
    hv_log_set_capture(NULL);
    hv_log_init("info", false);
}

/* Splits captured output into lines; every record must end with exactly one '\n'. */
static char **
log_lines(const GString *out)
{
    g_assert_true(out->len == 0 || out->str[out->len - 1] == '\n');
    g_autofree char *trimmed = g_strndup(out->str, out->len > 0 ? out->len - 1 : 0);
    return out->len == 0 ? g_new0(char *, 1) : g_strsplit(trimmed, "\n", -1);
}

static json_t *
log_parse_line(const char *line)
{
    json_error_t err;
    json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &err);
    if (j == NULL) {
        g_test_message("not JSON (%s): %s", err.text, line);
    }
    g_assert_nonnull(j);
    g_assert_true(json_is_object(j));
    return j;
}

static void
test_log_text_format(void)
{
    GString *out = log_capture_begin("info", false);
    HV_INFO(&(hv_log_ctx){.mint = "MintAbc", .room = "room-1", .viewer = 3}, "hello %d", 42);
    HV_MESSAGE(NULL, "no context");
    g_message("plain g_message");
    HV_INFO(&(hv_log_ctx){.session = 7, .recording = 9}, "ids");
    HV_INFO(&(hv_log_ctx){.mint = "M"}, "two\nlines");
    log_capture_end();
    g_auto(GStrv) lines = log_lines(out);
    g_assert_cmpuint(g_strv_length(lines), ==, 5);
    static const char *want[] = {
        "INFO  hv-test-core [mint=MintAbc room=room-1 viewer=3] hello 42",
        "INFO  hv-test-core no context",
        "INFO  hv-test-core plain g_message",
        "INFO  hv-test-core [session=7 recording=9] ids",
        "INFO  hv-test-core [mint=M] two\\nlines",
    };
    g_autoptr(GRegex) ts =
        g_regex_new("^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z ", 0, 0, NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
        g_assert_true(g_regex_match(ts, lines[i], 0, NULL));
        g_assert_cmpstr(lines[i] + 25, ==, want[i]);
    }
    g_string_free(out, TRUE);
}

static void
test_log_json_fields(void)
{
    GString *out = log_capture_begin("info", true);
    HV_INFO(&(hv_log_ctx){.mint = "MintAbc", .room = "room-1", .viewer = 3}, "hello");
    HV_MESSAGE(HV_CTX_MINT("MintOnly"), "mint only");
    g_info("no context");
    HV_INFO(&(hv_log_ctx){.session = 7, .recording = 9}, "ids");
    log_capture_end();
    g_auto(GStrv) lines = log_lines(out);
    g_assert_cmpuint(g_strv_length(lines), ==, 4);
    g_autoptr(json_t) a = log_parse_line(lines[0]);
    g_assert_cmpstr(json_string_value(json_object_get(a, "level")), ==, "info");
    g_assert_cmpstr(json_string_value(json_object_get(a, "domain")), ==, "hv-test-core");
    g_assert_cmpstr(json_string_value(json_object_get(a, "msg")), ==, "hello");
    g_assert_cmpstr(json_string_value(json_object_get(a, "mint")), ==, "MintAbc");
    g_assert_cmpstr(json_string_value(json_object_get(a, "room")), ==, "room-1");
    g_assert_cmpint(json_integer_value(json_object_get(a, "viewer")), ==, 3);
    g_assert_true(json_is_string(json_object_get(a, "ts")));
    g_autoptr(json_t) b = log_parse_line(lines[1]);
    g_assert_cmpstr(json_string_value(json_object_get(b, "mint")), ==, "MintOnly");
    g_assert_null(json_object_get(b, "room"));
    g_assert_null(json_object_get(b, "viewer"));
    g_autoptr(json_t) c = log_parse_line(lines[2]);
    g_assert_cmpuint(json_object_size(c), ==, 4); /* ts level domain msg */
    g_autoptr(json_t) d = log_parse_line(lines[3]);
    g_assert_cmpint(json_integer_value(json_object_get(d, "session")), ==, 7);
    g_assert_cmpint(json_integer_value(json_object_get(d, "recording")), ==, 9);
    g_assert_null(json_object_get(d, "mint"));
    g_string_free(out, TRUE);
}

static void
test_log_json_escaping(void)
{
    static const char *nasty[] = {
        "quote \" backslash \\ slash /",
        "new\nline\r\ttab",
        "ctl \x01\x02\x1f del \x7f",
        "invalid utf-8 \xff\xfe \xc3 end",
        "truncated \xe2\x82",
        "valid \xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xa5",
        "{\"looks\":\"like json\"}",
        "",
    };
    GString *out = log_capture_begin("info", true);
    for (size_t i = 0; i < G_N_ELEMENTS(nasty); i++) {
        HV_INFO(&(hv_log_ctx){.mint = nasty[i], .room = nasty[(i + 1) % G_N_ELEMENTS(nasty)]}, "%s",
                nasty[i]);
    }
    log_capture_end();
    g_auto(GStrv) lines = log_lines(out);
    g_assert_cmpuint(g_strv_length(lines), ==, G_N_ELEMENTS(nasty));
    for (size_t i = 0; i < G_N_ELEMENTS(nasty); i++) {
        g_autoptr(json_t) j = log_parse_line(lines[i]);
        const char *msg = json_string_value(json_object_get(j, "msg"));
        g_assert_nonnull(msg);
        g_assert_true(g_utf8_validate(msg, -1, NULL));
        if (g_utf8_validate(nasty[i], -1, NULL)) {
            g_assert_cmpstr(msg, ==, nasty[i]); /* round trip */
        } else {
            g_assert_nonnull(strstr(msg, "\xef\xbf\xbd")); /* U+FFFD */
        }
    }
    g_string_free(out, TRUE);
}

static void
test_log_levels(void)
{
    GString *out = log_capture_begin("info", false);
    HV_DEBUG(NULL, "debug hidden");
    HV_INFO(NULL, "info shown");
    log_capture_end();
    g_assert_null(strstr(out->str, "debug hidden"));
    g_assert_nonnull(strstr(out->str, "info shown"));
    g_string_truncate(out, 0);

    hv_log_init("error", false);
    hv_log_set_capture(out);
    HV_INFO(NULL, "info hidden");
    g_message("message hidden");
    g_assert_false(hv_log_enabled("hv-test-core", G_LOG_LEVEL_INFO));
    log_capture_end();
    g_assert_cmpuint(out->len, ==, 0);

    /* warnings are fatal under g_test: lift that for this one line */
    GLogLevelFlags fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK);
    hv_log_init("warning", false);
    hv_log_set_capture(out);
    HV_WARNING(HV_CTX_MINT("M"), "warning shown");
    HV_INFO(NULL, "info hidden");
    log_capture_end();
    g_log_set_always_fatal(fatal);
    g_assert_nonnull(strstr(out->str, " WARN  hv-test-core [mint=M] warning shown\n"));
    g_assert_null(strstr(out->str, "info hidden"));
    g_string_truncate(out, 0);

    hv_log_init("debug", true);
    hv_log_set_capture(out);
    HV_DEBUG(NULL, "debug shown");
    log_capture_end();
    g_assert_nonnull(strstr(out->str, "\"level\":\"debug\""));
    g_string_truncate(out, 0);

    /* G_MESSAGES_DEBUG enables debug for the domains it names only */
    g_autofree char *saved = g_strdup(g_getenv("G_MESSAGES_DEBUG"));
    g_setenv("G_MESSAGES_DEBUG", "hv-other,hv-test-core", TRUE);
    hv_log_init("info", false);
    hv_log_set_capture(out);
    HV_DEBUG(NULL, "domain debug shown");
    hv_log_structured("hv-third", G_LOG_LEVEL_DEBUG, NULL, "third hidden");
    hv_log_structured("hv-other", G_LOG_LEVEL_DEBUG, NULL, "other shown");
    if (saved != NULL) {
        g_setenv("G_MESSAGES_DEBUG", saved, TRUE);
    } else {
        g_unsetenv("G_MESSAGES_DEBUG");
    }
    log_capture_end();
    g_assert_nonnull(strstr(out->str, "DEBUG hv-test-core domain debug shown"));
    g_assert_nonnull(strstr(out->str, "DEBUG hv-other other shown"));
    g_assert_null(strstr(out->str, "third hidden"));
    g_string_free(out, TRUE);
}

static void
test_log_masks_secrets(void)
{
    static const char api_token[] = "s3cr3t-api-token-0123456789";
    hv_log_add_secret(api_token);
    for (int json = 0; json <= 1; json++) {
        GString *out = log_capture_begin("debug", json);
        HV_INFO(NULL, "connecting to ws://127.0.0.1:7880/rtc?access_token=%s&protocol=17", LOG_JWT);
        HV_INFO(NULL, "join response {\"token\":\"%s\"}", LOG_JWT);
        HV_INFO(NULL, "bare %s end", LOG_JWT);
        HV_INFO(NULL, "GET /api/live-sessions?token=%s HTTP/1.1", api_token);
        HV_INFO(NULL, "Authorization: Bearer %s", api_token);
        HV_INFO(NULL, "Cookie: session=abcdefghijklmnopqrstuvwxyz; other=1");
        HV_INFO(NULL, "api token %s in text", api_token);
        g_message("/rtc?access_token=%s", LOG_JWT); /* plain GLib calls too */
        HV_INFO(HV_CTX_MINT(LOG_JWT), "even in context");
        log_capture_end();
        g_assert_null(strstr(out->str, LOG_JWT));
        g_assert_null(strstr(out->str, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"));
        g_assert_null(strstr(out->str, api_token));
        g_assert_null(strstr(out->str, "abcdefghijklmnopqrstuvwxyz"));
        g_assert_nonnull(strstr(out->str, "access_token=eyJhbG…&protocol=17"));
        g_assert_nonnull(strstr(out->str, "token=s3cr3t…"));
        g_assert_nonnull(strstr(out->str, "Bearer s3cr3t…"));
        g_auto(GStrv) lines = log_lines(out);
        g_assert_cmpuint(g_strv_length(lines), ==, 9);
        for (guint i = 0; json && lines[i] != NULL; i++) {
            g_autoptr(json_t) j = log_parse_line(lines[i]);
        }
        g_string_free(out, TRUE);
    }
    /* the rule itself: short values stay, words inside other words are not JWTs */
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"a=1&token=short&b=2", "a=1&token=short&b=2"},
        {"refresh_token=abcdefghij", "refresh_token=abcdef…"},
        {"mint 7eyJabcdefghijklmnop.qrs stays", "mint 7eyJabcdefghijklmnop.qrs stays"},
        {"eyJabc.def short", "eyJabc.def short"},
        {"no secrets here", "no secrets here"},
        /* an API token may hold ',' or ';': the value goes on to the query's '&' */
        {"token=ab,cdefgh;ij&x=1", "token=ab,cde…&x=1"},
        {"Authorization: Bearer ab;cdefgh,ij", "Authorization: Bearer ab;cde…"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = hv_log_mask_secrets(cases[i].in);
        g_assert_cmpstr(got, ==, cases[i].out);
    }
}

static void
test_log_rate_limit(void)
{
    hv_log_limit lim = {0};
    uint64_t n = 99;
    g_assert_true(hv_log_limit_pass(&lim, (int64_t)3600 * G_USEC_PER_SEC, &n));
    g_assert_cmpuint(n, ==, 0);
    for (int i = 0; i < 5; i++) {
        g_assert_false(hv_log_limit_pass(&lim, (int64_t)3600 * G_USEC_PER_SEC, &n));
    }
    lim.next_us = g_get_monotonic_time() - 1; /* the interval is over */
    g_assert_true(hv_log_limit_pass(&lim, (int64_t)3600 * G_USEC_PER_SEC, &n));
    g_assert_cmpuint(n, ==, 5);
    g_assert_false(hv_log_limit_pass(&lim, (int64_t)3600 * G_USEC_PER_SEC, NULL));

    /* the macro: one line for 1000 calls within the interval */
    GString *out = log_capture_begin("debug", false);
    for (int i = 0; i < 1000; i++) {
        HV_LOG_RATELIMITED(G_LOG_LEVEL_DEBUG, 3600, HV_CTX_MINT("M"), "frame %d dropped", i);
    }
    log_capture_end();
    g_assert_true(g_str_has_suffix(out->str, "[mint=M] frame 0 dropped\n"));
    g_auto(GStrv) lines = log_lines(out);
    g_assert_cmpuint(g_strv_length(lines), ==, 1);
    /* the next line that passes reports the count */
    g_string_truncate(out, 0);
    hv_log_limit lim2 = {0};
    hv_log_init("info", false);
    hv_log_set_capture(out);
    for (int i = 0; i < 4; i++) {
        hv_log_limited("hv-test-core", G_LOG_LEVEL_INFO, &lim2, 0, NULL, "again %d", i);
        lim2.next_us = i < 2 ? G_MAXINT64 : 0; /* refuse the next two, then let one pass */
    }
    log_capture_end();
    g_assert_nonnull(strstr(out->str, "again 0\n"));
    g_assert_nonnull(strstr(out->str, "again 3 (2 more suppressed)\n"));
    g_assert_null(strstr(out->str, "again 1"));
    g_string_free(out, TRUE);
}

/* ---- hv_buf ------------------------------------------------------------------------------ */

static void
count_release(gpointer data)
{
    (*(int *)data)++;
}

static void
test_buf_layout_and_release(void)
{
    int released = 0;
    hv_buf *b = hv_buf_new(10, 24);
    /* zeroed metadata, headroom in front of the data, both 16-byte aligned */
    const uint8_t *meta = hv_buf_meta(b);
    for (int i = 0; i < 24; i++) {
        g_assert_cmpint(meta[i], ==, 0);
    }
    g_assert_cmpuint((uintptr_t)hv_buf_meta(b) % 16, ==, 0);
    g_assert_cmpuint((uintptr_t)hv_buf_data(b) % 16, ==, 0);
    g_assert_true(hv_buf_data(b) - HV_BUF_HEADROOM >= (uint8_t *)hv_buf_meta(b) + 24);
    memset(hv_buf_data(b) - HV_BUF_HEADROOM, 0xAB, HV_BUF_HEADROOM + 10); /* writable */
    g_assert_cmpuint(hv_buf_len(b), ==, 10);
    hv_buf_truncate(b, 4);
    g_assert_cmpuint(hv_buf_len(b), ==, 4);
    g_assert_cmpuint(hv_buf_flags(b), ==, 0);
    hv_buf_set_flags(b, HV_BUF_BINARY);
    hv_buf_set_stamp_us(b, 42);
    g_assert_cmpuint(hv_buf_flags(b), ==, HV_BUF_BINARY);
    g_assert_cmpint(hv_buf_stamp_us(b), ==, 42);
    hv_buf_set_release(b, count_release, &released);
    hv_buf_ref(b);
    hv_buf_unref(b);
    g_assert_cmpint(released, ==, 0);
    hv_buf_unref(b);
    g_assert_cmpint(released, ==, 1); /* exactly once, at the last reference */
    g_autoptr(hv_buf) c = hv_buf_new_copy("abc", 3);
    g_assert_cmpmem(hv_buf_data_const(c), hv_buf_len(c), "abc", 3);
    hv_buf_unref(NULL);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/core/buf/layout-and-release", test_buf_layout_and_release);
    g_test_add_func("/core/mint/fixture-mints-valid", test_mint_fixture_mints_valid);
    g_test_add_func("/core/mint/invalid-lengths-and-chars", test_mint_invalid_lengths_and_chars);
    g_test_add_func("/core/mint/decodes-to-33-bytes", test_mint_decodes_to_33_bytes);
    g_test_add_func("/core/base58/vectors", test_base58_vectors);
    g_test_add_func("/core/util/parse-duration", test_parse_duration);
    g_test_add_func("/core/util/parse-int64", test_parse_int64);
    g_test_add_func("/core/util/format-double", test_format_double);
    g_test_add_func("/core/util/format-iso8601", test_format_iso8601);
    g_test_add_func("/core/error/names", test_error_names);
    g_test_add_func("/core/config/defaults", test_config_defaults);
    g_test_add_func("/core/config/precedence", test_config_precedence);
    g_test_add_func("/core/config/values", test_config_values);
    g_test_add_func("/core/config/invalid", test_config_invalid);
    g_test_add_func("/core/config/actions", test_config_actions);
    g_test_add_func("/core/config/print", test_config_print);
    g_test_add_func("/core/config/doc-matches-table", test_config_doc_matches_table);
    g_test_add_func("/core/config/loopback", test_config_loopback);
    g_test_add_func("/core/config/exposure", test_config_exposure);
    g_test_add_func("/core/config/api-token", test_config_api_token);
    g_test_add_func("/core/config/cors-origins", test_config_cors_origins);
    g_test_add_func("/core/config/limits", test_config_limits);
    g_test_add_func("/core/config/file/precedence", test_config_file_precedence);
    g_test_add_func("/core/config/file/syntax", test_config_file_syntax);
    g_test_add_func("/core/config/file/errors", test_config_file_errors);
    g_test_add_func("/core/config/file/unreadable", test_config_file_unreadable);
    g_test_add_func("/core/config/file/secret-mode", test_config_file_secret_mode);
    g_test_add_func("/core/config/file/print-sources", test_config_file_print_sources);
    g_test_add_func("/core/config/file/example", test_config_file_example);

    /* logging */
    g_test_add_func("/core/log/text-format", test_log_text_format);
    g_test_add_func("/core/log/json-fields", test_log_json_fields);
    g_test_add_func("/core/log/json-escaping", test_log_json_escaping);
    g_test_add_func("/core/log/levels", test_log_levels);
    g_test_add_func("/core/log/masks-secrets", test_log_masks_secrets);
    g_test_add_func("/core/log/rate-limit", test_log_rate_limit);

    return g_test_run();
}

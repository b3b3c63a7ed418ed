/* Pure helpers: base58 mint validation, duration parsing, clocks. No state, any thread. */
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char b58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static int
b58_value(char c)
{
    const char *p = c != '\0' ? strchr(b58_alphabet, c) : NULL;
    return p == NULL ? -1 : (int)(p - b58_alphabet);
}

int
hv_base58_decode(const char *s, uint8_t *out, size_t out_len)
{
    size_t n = strlen(s);
    size_t zeros = 0;
    while (zeros < n && s[zeros] == '1') {
        zeros++;
    }
    /* Big-number accumulation in a scratch buffer sized for the largest input we accept. */
    uint8_t buf[128];
    size_t used = 0; /* bytes of buf in use, least significant at the end */
    if (n > 170) {
        return -1;
    }
    memset(buf, 0, sizeof(buf));
    for (size_t i = zeros; i < n; i++) {
        int v = b58_value(s[i]);
        if (v < 0) {
            return -1;
        }
        unsigned carry = (unsigned)v;
        size_t j = 0;
        for (; j < used || carry != 0; j++) {
            if (j >= sizeof(buf)) {
                return -1;
            }
            size_t k = sizeof(buf) - 1 - j;
            carry += 58u * buf[k];
            buf[k] = (uint8_t)(carry & 0xff);
            carry >>= 8;
        }
        used = j;
    }
    size_t total = zeros + used;
    if (total > out_len) {
        return -1;
    }
    memset(out, 0, zeros);
    memcpy(out + zeros, buf + sizeof(buf) - used, used);
    return (int)total;
}

bool
hv_mint_id_is_valid(const char *s)
{
    if (s == NULL) {
        return false;
    }
    size_t n = strlen(s);
    if (n < 32 || n > HV_MINT_MAX_LEN) {
        return false;
    }
    uint8_t out[64];
    return hv_base58_decode(s, out, sizeof(out)) == 32;
}

bool
hv_parse_int64(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    const char *p = s[0] == '-' ? s + 1 : s;
    if (*p == '\0') {
        return false;
    }
    for (; *p != '\0'; p++) {
        if (!g_ascii_isdigit(*p)) {
            return false;
        }
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == NULL || *end != '\0') {
        return false;
    }
    *out = (int64_t)v;
    return true;
}

bool
hv_parse_duration_ms(const char *s, int64_t *out_ms)
{
    if (s == NULL || *s == '\0') {
        return false;
    }
    /* Plain decimal only: strtod would also take hex ("0x10") and exponents ("1e3"). */
    size_t digits = strspn(s, "0123456789.");
    if (digits == 0 || memchr(s, '.', digits) != memrchr(s, '.', digits)) {
        return false;
    }
    char *end = NULL;
    double v = g_ascii_strtod(s, &end);
    if (end != s + digits || !isfinite(v) || v < 0) {
        return false;
    }
    double scale;
    if (*end == '\0' || strcmp(end, "s") == 0) {
        scale = 1000.0;
    } else if (strcmp(end, "ms") == 0) {
        scale = 1.0;
    } else if (strcmp(end, "m") == 0) {
        scale = 60000.0;
    } else if (strcmp(end, "h") == 0) {
        scale = 3600000.0;
    } else if (strcmp(end, "d") == 0) {
        scale = 86400000.0;
    } else {
        return false;
    }
    double ms = v * scale;
    if (ms > 9.0e15) {
        return false;
    }
    *out_ms = (int64_t)llround(ms);
    return true;
}

int64_t
hv_int64_from_double(double v)
{
    if (isnan(v)) {
        return 0;
    }
    if (v >= 9223372036854775808.0) { /* 2^63: INT64_MAX is not exactly representable */
        return INT64_MAX;
    }
    if (v < -9223372036854775808.0) {
        return INT64_MIN;
    }
    return (int64_t)v;
}

void
hv_format_double(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        g_strlcpy(buf, "null", len);
        return;
    }
    for (int precision = 15; precision <= 17; precision++) {
        g_snprintf(buf, len, "%.*g", precision, v);
        if (g_ascii_strtod(buf, NULL) == v) {
            break;
        }
    }
    /* JSON has no bare "1e+20"-style problem, but a whole number must still read as a real. */
    if (strpbrk(buf, ".eEn") == NULL) {
        g_strlcat(buf, ".0", len);
    }
}

int64_t
hv_now_ms(void)
{
    return g_get_monotonic_time() / 1000;
}

int64_t
hv_wall_ms(void)
{
    return g_get_real_time() / 1000;
}

void
hv_format_iso8601(int64_t wall_ms, char *buf, size_t len)
{
    /* Floor division, so times before 1970 get a positive millisecond part. */
    int64_t ms = wall_ms % 1000;
    if (ms < 0) {
        ms += 1000;
    }
    time_t secs = (time_t)((wall_ms - ms) / 1000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) == NULL) {
        g_strlcpy(buf, "1970-01-01T00:00:00.000Z", len);
        return;
    }
    g_snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
               tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
}

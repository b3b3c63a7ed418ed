/* Query-string validation for the REST handlers. Pure functions; errors are collected in the
 * FastAPI shape ({"type","loc","msg","input"}) so clients written for the seed's API read them. */
#include "http-private.h"

#include "core/util.h"

#include <string.h>

const char *
hv_http_query_get(const GPtrArray *query, const char *name)
{
    const char *found = NULL;
    size_t n = strlen(name);
    for (guint i = 0; query != NULL && i < query->len; i++) {
        const char *kv = g_ptr_array_index(query, i);
        if (strncmp(kv, name, n) == 0 && (kv[n] == '=' || kv[n] == '\0')) {
            found = kv[n] == '=' ? kv + n + 1 : "";
        }
    }
    return found;
}

json_t *
hv_http_validation_error(const char *where, const char *name, const char *type, const char *msg,
                         const char *input)
{
    /* input is the client's text, which need not be UTF-8: json_pack would then fail and the
     * error (and with it the 422) would be lost. Invalid bytes become U+FFFD. */
    g_autofree char *text = input != NULL ? g_utf8_make_valid(input, -1) : NULL;
    return json_pack("{s:s, s:[s,s], s:s, s:s?}", "type", type, "loc", where, name, "msg", msg,
                     "input", text);
}

bool
hv_http_query_int(const GPtrArray *query, const char *name, int64_t def, int64_t min, int64_t max,
                  int64_t *out, json_t *errors)
{
    const char *v = hv_http_query_get(query, name);
    *out = def;
    if (v == NULL) {
        return true;
    }
    int64_t n = 0;
    if (!hv_parse_int64(v, &n)) {
        json_array_append_new(
            errors,
            hv_http_validation_error(
                "query", name, "int_parsing",
                "Input should be a valid integer, unable to parse string as an integer", v));
        return false;
    }
    if (n < min || n > max) {
        g_autofree char *msg =
            g_strdup_printf(n < min ? "Input should be greater than or equal to %" G_GINT64_FORMAT
                                    : "Input should be less than or equal to %" G_GINT64_FORMAT,
                            n < min ? min : max);
        json_array_append_new(
            errors, hv_http_validation_error(
                        "query", name, n < min ? "greater_than_equal" : "less_than_equal", msg, v));
        return false;
    }
    *out = n;
    return true;
}

bool
hv_http_query_bool(const GPtrArray *query, const char *name, bool def, bool *out, json_t *errors)
{
    static const char *truthy[] = {"true", "1", "yes", "on", "t", "y"};
    static const char *falsy[] = {"false", "0", "no", "off", "f", "n"};
    const char *v = hv_http_query_get(query, name);
    *out = def;
    if (v == NULL) {
        return true;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(truthy); i++) {
        if (g_ascii_strcasecmp(v, truthy[i]) == 0) {
            *out = true;
            return true;
        }
        if (g_ascii_strcasecmp(v, falsy[i]) == 0) {
            *out = false;
            return true;
        }
    }
    json_array_append_new(errors,
                          hv_http_validation_error("query", name, "bool_parsing",
                                                   "Input should be a valid boolean, unable to "
                                                   "interpret input",
                                                   v));
    return false;
}

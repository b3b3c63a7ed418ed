/* Parsers for pump.fun's answers (pure functions, any thread): the currently-live roster, one
 * coin, the per-mint livestream state, and the classification of failed answers. pump.fun's
 * field set changes over time, so parsing is permissive: unknown keys are ignored, missing ones
 * default, and one bad row never fails a whole page.
 */
#include "pumpfun.h"

#include "core/error.h"

#include <string.h>

static json_t *
load_json(const char *body, size_t len, GError **error)
{
    if (len == 0) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "empty body");
        return NULL;
    }
    /* Duplicate keys are accepted (the last wins): one odd row must not fail a whole page. */
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "malformed JSON at line %d: %s", jerr.line,
                    jerr.text);
    }
    return root;
}

GPtrArray *
hv_pf_parse_roster(const char *body, size_t len, unsigned *skipped, GError **error)
{
    *skipped = 0;
    json_t *root = load_json(body, len, error);
    if (root == NULL) {
        return NULL;
    }
    if (!json_is_array(root)) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "expected a JSON array of coins, got %s",
                    json_is_object(root) ? "an object" : "another JSON value");
        json_decref(root);
        return NULL;
    }
    GPtrArray *out =
        g_ptr_array_new_full(json_array_size(root), (GDestroyNotify)hv_pf_stream_unref);
    size_t i;
    json_t *row;
    json_array_foreach(root, i, row)
    {
        hv_pf_stream *s = hv_pf_stream_new_from_json(row);
        if (s == NULL) {
            (*skipped)++;
            continue;
        }
        g_ptr_array_add(out, s);
    }
    json_decref(root);
    return out;
}

bool
hv_pf_parse_live_info(const char *body, size_t len, hv_pf_live_info *out, GError **error)
{
    memset(out, 0, sizeof(*out));
    /* pump.fun answers 200 with an empty body for a stream that is not live. */
    size_t i = 0;
    while (i < len && g_ascii_isspace(body[i])) {
        i++;
    }
    if (i == len) {
        return true;
    }
    json_t *root = load_json(body, len, error);
    if (root == NULL) {
        return false;
    }
    if (!json_is_object(root)) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "expected a livestream object");
        json_decref(root);
        return false;
    }
    out->present = true;
    out->is_live = json_is_true(json_object_get(root, "isLive"));
    json_t *n = json_object_get(root, "numParticipants");
    out->num_participants = json_is_integer(n) ? (int64_t)json_integer_value(n) : 0;
    json_t *id = json_object_get(root, "id");
    out->stream_id = json_is_integer(id) ? (int64_t)json_integer_value(id) : 0;
    const char *thumb = json_string_value(json_object_get(root, "thumbnail"));
    out->thumbnail = thumb != NULL && *thumb != '\0' ? g_strdup(thumb) : NULL;
    const char *title = json_string_value(json_object_get(root, "title"));
    out->title = title != NULL ? g_strdup(title) : NULL;
    json_decref(root);
    return true;
}

void
hv_pf_live_info_clear(hv_pf_live_info *info)
{
    g_clear_pointer(&info->thumbnail, g_free);
    g_clear_pointer(&info->title, g_free);
}

hv_pf_stream *
hv_pf_stream_from_coin(const char *body, size_t len, const hv_pf_live_info *live, GError **error)
{
    json_t *root = load_json(body, len, error);
    if (root == NULL) {
        return NULL;
    }
    /* Some wrappers (coins-v2) put the coin under "data" or in a one-element array. */
    json_t *coin = root;
    if (json_is_array(coin) && json_array_size(coin) == 1) {
        coin = json_array_get(coin, 0);
    }
    if (json_is_object(coin) && json_is_object(json_object_get(coin, "data"))) {
        coin = json_object_get(coin, "data");
    }
    if (!json_is_object(coin)) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "expected a coin object");
        json_decref(root);
        return NULL;
    }
    json_t *merged = json_deep_copy(coin);
    json_decref(root);
    if (live != NULL) {
        /* /livestream is the authority on live state and viewer counts (the coin endpoint has
         * been seen reporting 0 participants for a live coin). */
        bool live_now = live->present && live->is_live;
        json_object_set_new(merged, "is_currently_live", json_boolean(live_now));
        if (live->present) {
            json_object_set_new(merged, "num_participants", json_integer(live->num_participants));
            if (live->thumbnail != NULL) {
                json_object_set_new(merged, "thumbnail", json_string(live->thumbnail));
            }
            if (live->title != NULL) {
                json_object_set_new(merged, "livestream_title", json_string(live->title));
            }
        } else {
            json_object_set_new(merged, "num_participants", json_integer(0));
        }
    }
    hv_pf_stream *s = hv_pf_stream_new_from_json(merged);
    json_decref(merged);
    if (s == NULL) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "coin object has no valid mint");
    }
    return s;
}

bool
hv_pf_check_response(const hv_pf_response *r, const char *endpoint, bool allow_empty,
                     GError **error)
{
    if (r->status == 0) {
        g_set_error(error, HV_ERROR, r->timed_out ? HV_ETIMEDOUT : HV_EIO,
                    "pump.fun %s: %s after %" G_GINT64_FORMAT " ms", endpoint,
                    r->error != NULL ? r->error : "no answer", r->elapsed_ms);
        return false;
    }
    if (r->status == 429) {
        g_set_error(error, HV_ERROR, HV_ERATELIMIT, "pump.fun %s: HTTP 429 rate limited%s%s%s",
                    endpoint, r->retry_after != NULL ? " (retry after " : "",
                    r->retry_after != NULL ? r->retry_after : "",
                    r->retry_after != NULL ? " s)" : "");
        return false;
    }
    if (r->status == 403 &&
        (r->cf_challenge || (r->body != NULL && strstr(r->body, "Just a moment") != NULL))) {
        g_set_error(error, HV_ERROR, HV_EUPSTREAM,
                    "pump.fun %s: HTTP 403 Cloudflare challenge (bot check)", endpoint);
        return false;
    }
    if (r->status != 200 && r->status != 201) {
        /* Quote a short, printable piece of a non-JSON body such as "error code: 504". */
        char snippet[48] = "";
        bool is_json = r->content_type != NULL && strstr(r->content_type, "json") != NULL;
        if (!is_json && r->len > 0 && r->len < 200 && r->body[0] != '<') {
            g_strlcpy(snippet, r->body, sizeof(snippet));
            g_strdelimit(snippet, "\r\n\t", ' ');
            g_strstrip(snippet);
        }
        g_set_error(error, HV_ERROR, HV_EUPSTREAM, "pump.fun %s: HTTP %ld%s%s%s", endpoint,
                    r->status, snippet[0] != '\0' ? " (" : "", snippet,
                    snippet[0] != '\0' ? ")" : "");
        return false;
    }
    if (!allow_empty && r->len == 0) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "pump.fun %s: HTTP %ld with an empty body",
                    endpoint, r->status);
        return false;
    }
    return true;
}

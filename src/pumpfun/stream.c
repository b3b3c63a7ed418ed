/* hv_pf_stream: one coin as haven serves it, built from pump.fun's JSON and rendered to the
 * public stream object once, so list answers only concatenate pre-rendered text.
 * Main thread; immutable after hv_pf_stream_new_from_json returns.
 */
#include "pumpfun.h"

#include "core/util.h"

static char *
dup_string(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL ? g_strdup(s) : NULL;
}

static bool
get_number(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v)) {
        return false;
    }
    *out = json_number_value(v);
    return true;
}

static bool
get_int(json_t *obj, const char *key, int64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return true;
    }
    if (json_is_real(v)) {
        *out = hv_int64_from_double(json_real_value(v)); /* 1e300 must not be a cast */
        return true;
    }
    return false;
}

static void
put_key(GString *out, const char *key)
{
    g_string_append_printf(out, "%s\"%s\":", out->len > 1 ? "," : "", key);
}

static void
put_string(GString *out, const char *key, const char *value)
{
    put_key(out, key);
    if (value == NULL) {
        g_string_append(out, "null");
        return;
    }
    json_t *s = json_string(value);
    char *text = s != NULL ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
    g_string_append(out, text != NULL ? text : "null"); /* invalid UTF-8 becomes null */
    free(text);
    json_decref(s);
}

static void
put_int(GString *out, const char *key, bool has, int64_t value)
{
    put_key(out, key);
    if (has) {
        g_string_append_printf(out, "%" G_GINT64_FORMAT, value);
    } else {
        g_string_append(out, "null");
    }
}

static void
put_real(GString *out, const char *key, bool has, double value)
{
    put_key(out, key);
    if (has) {
        char buf[40];
        hv_format_double(value, buf, sizeof(buf));
        g_string_append(out, buf);
    } else {
        g_string_append(out, "null");
    }
}

/* Renders the public stream object once; list answers concatenate these. */
static void
render(hv_pf_stream *s)
{
    GString *o = g_string_sized_new(768);
    g_string_append_c(o, '{');
    put_string(o, "mint_id", s->mint_id);
    put_string(o, "name", s->name);
    put_string(o, "symbol", s->symbol);
    put_string(o, "description", s->description);
    put_string(o, "image_uri", s->image_uri);
    put_string(o, "thumbnail", s->thumbnail);
    put_string(o, "creator", s->creator);
    put_real(o, "market_cap", s->has_market_cap, s->market_cap);
    put_real(o, "usd_market_cap", s->has_usd_market_cap, s->usd_market_cap);
    put_int(o, "num_participants", true, s->num_participants);
    put_key(o, "is_currently_live");
    g_string_append(o, s->is_currently_live ? "true" : "false");
    put_key(o, "nsfw");
    g_string_append(o, s->nsfw ? "true" : "false");
    put_string(o, "website", s->website);
    put_string(o, "twitter", s->twitter);
    put_string(o, "telegram", s->telegram);
    put_int(o, "created_timestamp", s->has_created_timestamp, s->created_timestamp);
    put_int(o, "last_trade_timestamp", s->has_last_trade_timestamp, s->last_trade_timestamp);
    put_string(o, "livestream_title", s->livestream_title);
    g_string_append_c(o, '}');
    s->json_len = o->len;
    s->json = g_string_free(o, FALSE);
}

hv_pf_stream *
hv_pf_stream_new_from_json(json_t *raw)
{
    const char *mint = json_string_value(json_object_get(raw, "mint"));
    if (mint == NULL) {
        mint = json_string_value(json_object_get(raw, "mint_id"));
    }
    if (!json_is_object(raw) || !hv_mint_id_is_valid(mint)) {
        return NULL;
    }
    hv_pf_stream *s = g_atomic_rc_box_new0(hv_pf_stream);
    s->mint_id = g_strdup(mint);
    s->name = dup_string(raw, "name");
    s->symbol = dup_string(raw, "symbol");
    s->description = dup_string(raw, "description");
    s->image_uri = dup_string(raw, "image_uri");
    s->thumbnail = dup_string(raw, "thumbnail");
    s->creator = dup_string(raw, "creator");
    s->website = dup_string(raw, "website");
    s->twitter = dup_string(raw, "twitter");
    s->telegram = dup_string(raw, "telegram");
    s->livestream_title = dup_string(raw, "livestream_title");
    s->has_market_cap = get_number(raw, "market_cap", &s->market_cap);
    s->has_usd_market_cap = get_number(raw, "usd_market_cap", &s->usd_market_cap);
    if (!get_int(raw, "num_participants", &s->num_participants) || s->num_participants < 0) {
        s->num_participants = 0;
    }
    s->is_currently_live = json_is_true(json_object_get(raw, "is_currently_live"));
    s->nsfw = json_is_true(json_object_get(raw, "nsfw"));
    s->has_created_timestamp = get_int(raw, "created_timestamp", &s->created_timestamp);
    s->has_last_trade_timestamp = get_int(raw, "last_trade_timestamp", &s->last_trade_timestamp);
    s->raw = json_incref(raw);
    render(s);
    return s;
}

hv_pf_stream *
hv_pf_stream_ref(hv_pf_stream *s)
{
    return g_atomic_rc_box_acquire(s);
}

static void
stream_clear(gpointer p)
{
    hv_pf_stream *s = p;
    g_free(s->mint_id);
    g_free(s->name);
    g_free(s->symbol);
    g_free(s->description);
    g_free(s->image_uri);
    g_free(s->thumbnail);
    g_free(s->creator);
    g_free(s->website);
    g_free(s->twitter);
    g_free(s->telegram);
    g_free(s->livestream_title);
    g_free(s->json);
    json_decref(s->raw);
}

void
hv_pf_stream_unref(hv_pf_stream *s)
{
    if (s != NULL) {
        g_atomic_rc_box_release_full(s, stream_clear);
    }
}

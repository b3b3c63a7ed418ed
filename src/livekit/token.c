/* LiveKit access tokens (JWT, spec §8): decodes the payload of a token WITHOUT verifying its
 * signature (haven has no API secret and needs none), to read the identity, the room, the issuer
 * and the expiry for logs and for deciding whether a reconnect with this token can still work.
 *
 * Pure functions, any thread. hv_lk_token_info owns its strings (absent claims become "", never
 * NULL); hv_lk_token_info_clear frees them. Tokens are credentials: nothing here logs one, and
 * hv_lk_token_redact gives the only form other files may log (first 8 characters + "…").
 */
#include "livekit-private.h"

#include "core/error.h"
#include "core/util.h"

#include <jansson.h>
#include <string.h>

/* A LiveKit token is a few hundred bytes; anything this large is not one. */
#define HV_LK_TOKEN_MAX_BYTES ((size_t)16 * 1024)

static bool
is_base64url_part(const char *s, size_t len)
{
    if (len == 0) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!g_ascii_isalnum(c) && c != '-' && c != '_') {
            return false;
        }
    }
    /* Unpadded base64 never leaves a single character in the last quantum. */
    return len % 4 != 1;
}

/* Decodes base64url without padding. Returns (transfer full) the bytes, NUL-terminated, or NULL. */
static char *
base64url_decode(const char *s, size_t len, size_t *out_len)
{
    GString *std = g_string_sized_new(len + 4);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        g_string_append_c(std, c == '-' ? '+' : (c == '_' ? '/' : c));
    }
    while (std->len % 4 != 0) {
        g_string_append_c(std, '=');
    }
    gsize n = 0;
    guchar *raw = g_base64_decode(std->str, &n);
    g_string_free(std, TRUE);
    if (raw == NULL) {
        return NULL;
    }
    char *out = g_malloc(n + 1);
    memcpy(out, raw, n);
    out[n] = '\0';
    g_free(raw);
    *out_len = n;
    return out;
}

static char *
dup_string_member(json_t *obj, const char *key)
{
    const char *v = json_string_value(json_object_get(obj, key));
    return g_strdup(v != NULL ? v : "");
}

bool
hv_lk_token_decode(const char *jwt, hv_lk_token_info *out, GError **error)
{
    g_return_val_if_fail(out != NULL, false);
    memset(out, 0, sizeof(*out));
    if (jwt == NULL || strnlen(jwt, HV_LK_TOKEN_MAX_BYTES + 1) > HV_LK_TOKEN_MAX_BYTES) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "token missing or too long");
        return false;
    }
    const char *dot1 = strchr(jwt, '.');
    const char *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot1 == NULL || dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "token is not three dot-separated parts");
        return false;
    }
    const char *payload = dot1 + 1;
    size_t payload_len = (size_t)(dot2 - payload);
    if (!is_base64url_part(jwt, (size_t)(dot1 - jwt)) || !is_base64url_part(payload, payload_len) ||
        !is_base64url_part(dot2 + 1, strlen(dot2 + 1))) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "token parts are not base64url");
        return false;
    }
    size_t json_len = 0;
    char *json = base64url_decode(payload, payload_len, &json_len);
    if (json == NULL) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "token payload is not base64url");
        return false;
    }
    json_error_t jerr;
    json_t *root = json_loadb(json, json_len, JSON_REJECT_DUPLICATES, &jerr);
    g_free(json);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        g_set_error(error, HV_ERROR, HV_EINVAL, "token payload is not a JSON object");
        return false;
    }
    out->identity = dup_string_member(root, "sub");
    out->issuer = dup_string_member(root, "iss");
    json_t *exp = json_object_get(root, "exp");
    out->expires_at_s = json_is_number(exp) ? hv_int64_from_double(json_number_value(exp)) : 0;
    json_t *video = json_object_get(root, "video");
    out->room = dup_string_member(video, "room"); /* json_object_get(NULL, …) is NULL */
    /* Spec §8: an omitted canSubscribe means true. */
    json_t *can_sub = json_object_get(video, "canSubscribe");
    out->can_subscribe = json_is_boolean(can_sub) ? json_is_true(can_sub) : true;
    json_decref(root);
    return true;
}

void
hv_lk_token_info_clear(hv_lk_token_info *info)
{
    if (info == NULL) {
        return;
    }
    g_free(info->identity);
    g_free(info->room);
    g_free(info->issuer);
    memset(info, 0, sizeof(*info));
}

char *
hv_lk_token_redact(const char *token)
{
    if (token == NULL) {
        return g_strdup("(none)");
    }
    size_t len = strnlen(token, 9);
    if (len <= 8) {
        return g_strdup("…");
    }
    return g_strdup_printf("%.8s…", token);
}

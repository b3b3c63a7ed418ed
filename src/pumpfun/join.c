/* POST {livestream-api}/livestream/join: a fresh LiveKit viewer token for one mint, on every
 * join and rejoin (tokens carry a new identity each time and are never cached or shared).
 * Main thread; asynchronous through hv_pf_client.
 */
#include "pumpfun.h"

#include "core/error.h"

#include <string.h>

struct hv_pf_join {
    hv_pf_request *req;
    hv_pf_join_cb cb;
    void *user_data;
    char mint[64];
};

bool
hv_pf_parse_join(const hv_pf_response *resp, char **token_out, GError **error)
{
    *token_out = NULL;
    /* pump.fun answers 404 (assumed NestJS shape) or 2xx without a token when nobody streams. */
    if (resp->status == 404) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "pump.fun livestream/join: not live (HTTP 404)");
        return false;
    }
    if (resp->status == 400) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "pump.fun livestream/join: bad request (HTTP 400)");
        return false;
    }
    if (!hv_pf_check_response(resp, "livestream/join", false, error)) {
        return false;
    }
    json_error_t jerr;
    json_t *root = json_loadb(resp->body, resp->len, 0, &jerr);
    if (!json_is_object(root)) {
        g_set_error(error, HV_ERROR, HV_EPROTO, "pump.fun livestream/join: malformed JSON: %s",
                    root == NULL ? jerr.text : "not an object");
        json_decref(root);
        return false;
    }
    const char *token = json_string_value(json_object_get(root, "token"));
    if (token == NULL || *token == '\0') {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND,
                    "pump.fun livestream/join: no token in the answer (stream not live)");
        json_decref(root);
        return false;
    }
    *token_out = g_strdup(token);
    json_decref(root);
    return true;
}

static void
on_join_response(const hv_pf_response *resp, void *user_data)
{
    hv_pf_join *j = user_data;
    j->req = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *token = NULL;
    hv_pf_parse_join(resp, &token, &error);
    j->cb(token, error, j->user_data);
    g_free(j);
}

hv_pf_join *
hv_pf_join_start(hv_pf_client *client, const char *livestream_api, const char *mint_id,
                 hv_pf_join_cb cb, void *user_data)
{
    hv_pf_join *j = g_new0(hv_pf_join, 1);
    j->cb = cb;
    j->user_data = user_data;
    g_strlcpy(j->mint, mint_id, sizeof(j->mint));
    g_autofree char *url = g_strdup_printf("%s/livestream/join", livestream_api);
    /* The body the pump.fun site sends (pumpfun-api.md §2). mint_id is validated base58. */
    g_autofree char *body = g_strdup_printf("{\"mintId\":\"%s\",\"viewer\":true}", mint_id);
    j->req = hv_pf_client_fetch(client, url, body, on_join_response, j);
    return j;
}

void
hv_pf_join_cancel(hv_pf_join *j)
{
    if (j != NULL) {
        hv_pf_request_cancel(j->req);
        g_free(j);
    }
}

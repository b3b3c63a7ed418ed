/* tokens.c: the newest LiveKit token of a session (pump.fun's, or the server's refresh_token)
 * with its expiry. Main thread only; a leaf of the module. */
#include "live/live-private.h"

#include "core/error.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/util.h"

#include <string.h>

/* Keeps the newest LiveKit token (pump.fun's, or the server's refresh_token) with its expiry:
 * reconnects use it while it is valid, so a dropped connection costs no pump.fun join (which
 * rate-limits, and whose Cloudflare challenges datacenter addresses) and keeps the identity. */
void
hv_live_token_remember(hv_live_session *s, const char *token)
{
    if (token == NULL || token[0] == '\0' || g_strcmp0(token, s->lk_token) == 0) {
        return;
    }
    g_free(s->lk_token);
    s->lk_token = g_strdup(token);
    hv_lk_token_info ti = {0};
    s->lk_token_exp_s = hv_lk_token_decode(token, &ti, NULL) ? ti.expires_at_s : 0;
    hv_lk_token_info_clear(&ti);
}

/* The LiveKit token still good for a connection (valid for at least another 30 s), or NULL. */
const char *
hv_live_token_usable(const hv_live_session *s)
{
    if (s->lk_token == NULL || s->lk_token_exp_s <= 0) {
        return NULL;
    }
    return s->lk_token_exp_s - hv_wall_ms() / 1000 > 30 ? s->lk_token : NULL;
}

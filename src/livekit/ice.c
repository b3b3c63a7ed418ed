/* ice.c: the JoinResponse's ICE servers as URIs webrtcbin takes, leaving out what libnice
 * cannot use (TURN over TLS, stuns:). Plain code; any thread. */
#include "room-private.h"

#include <stddef.h>
#include <string.h>

/* Whether a TURN URL needs TLS, which libnice (webrtcbin's ICE agent) cannot speak: every
 * turns: URL, and TCP on port 443, where LiveKit Cloud's TURN listens behind TLS. Gathering
 * against them would only spend the connect timeout. */
static bool
turn_needs_tls(const char *url)
{
    if (g_str_has_prefix(url, "turns:")) {
        return true;
    }
    if (!g_str_has_prefix(url, "turn:") || strstr(url, "transport=tcp") == NULL) {
        return false;
    }
    const char *q = strchr(url, '?');
    size_t hostport = q != NULL ? (size_t)(q - url) : strlen(url);
    g_autofree char *hp = g_strndup(url, hostport);
    const char *colon = strrchr(hp, ':');
    const char *bracket = strrchr(hp, ']');
    return colon != NULL && (bracket == NULL || colon > bracket) && strcmp(colon + 1, "443") == 0;
}

/* "stun:h:p" → "stun://h:p"; "turn:h:p?transport=x" + credentials →
 * "turn://user:pass@h:p?transport=x" (percent-encoded; webrtcbin unescapes them). NULL for
 * what webrtcbin cannot use (stuns:, and TURN over TLS: see turn_needs_tls). */
static char *
ice_url_to_gst(const char *url, const char *username, const char *credential)
{
    const char *rest = NULL;
    const char *scheme = NULL;
    if (g_str_has_prefix(url, "stun:")) {
        scheme = "stun";
        rest = url + 5;
    } else if (g_str_has_prefix(url, "turn:") && !turn_needs_tls(url)) {
        scheme = "turn";
        rest = url + 5;
    } else {
        return NULL;
    }
    while (*rest == '/') {
        rest++;
    }
    if (*rest == '\0') {
        return NULL;
    }
    if (strcmp(scheme, "stun") == 0) {
        const char *q = strchr(rest, '?'); /* STUN has no transport parameter */
        return g_strdup_printf("stun://%.*s", (int)(q != NULL ? q - rest : (ptrdiff_t)strlen(rest)),
                               rest);
    }
    g_autofree char *user = g_uri_escape_string(username != NULL ? username : "", NULL, FALSE);
    g_autofree char *pass = g_uri_escape_string(credential != NULL ? credential : "", NULL, FALSE);
    return g_strdup_printf("%s://%s:%s@%s", scheme, user, pass, rest);
}

/* The usable ICE servers as GStreamer URIs (NULL-terminated, transfer full); the URLs left out
 * are appended to skipped, comma-separated, for the caller's log line. */
char **
hv_lk_ice_servers_to_gst(Livekit__ICEServer *const *servers, size_t n, GString *skipped)
{
    GPtrArray *out = g_ptr_array_new();
    for (size_t i = 0; i < n; i++) {
        const Livekit__ICEServer *s = servers[i];
        for (size_t u = 0; s != NULL && u < s->n_urls; u++) {
            char *uri = ice_url_to_gst(s->urls[u], s->username, s->credential);
            if (uri != NULL) {
                g_ptr_array_add(out, uri);
            } else {
                g_string_append_printf(skipped, "%s%s", skipped->len > 0 ? ", " : "", s->urls[u]);
            }
        }
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

/* Fuzz target: LiveKit access tokens (src/livekit/token.c). The token comes from pump.fun's
 * livestream/join answer and from the server's refresh_token messages; haven decodes its payload
 * without verifying it (identity, room, expiry) and logs only its redacted form.
 *
 * Input: the token text. Checks: decoding never crashes, a decoded token has non-NULL strings,
 * and the redacted form never holds more than the first 8 bytes of the token.
 */
#include "fuzz-common.h"
#include "livekit/livekit-private.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_setup_logging();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *jwt = hv_fuzz_strndup(data, size);
    hv_lk_token_info info;
    g_autoptr(GError) error = NULL;
    if (hv_lk_token_decode(jwt, &info, &error)) {
        if (info.identity == NULL || info.room == NULL || info.issuer == NULL || error != NULL) {
            abort();
        }
    } else if (error == NULL) {
        abort();
    }
    hv_lk_token_info_clear(&info);

    g_autofree char *shown = hv_lk_token_redact(jwt);
    size_t n = strlen(jwt);
    /* "…" is 3 bytes of UTF-8: at most 8 bytes of the token may show. */
    if (strlen(shown) > 8 + 3 || (n > 8 && strncmp(shown, jwt, 8) != 0)) {
        abort();
    }
    return 0;
}

/* Fuzz target: the JSON request bodies of the live-session endpoints (src/http/rest.c):
 *     POST /api/live-sessions/start              {"mint_id": "...", "record_session": bool}
 *     POST /api/live-sessions/stop               {"mint_id": "..."}
 *     POST /api/live-sessions/{mint_id}/recording {"action": "start" | "stop"}
 * dispatched through hv_http_dispatch exactly as a request with that body, so the handlers' own
 * parsing and validation run, in the in-memory world of http-fake.c (the live manager is a fake
 * that knows the fixture roster's mints).
 *
 * Input: one character choosing the endpoint, then the body verbatim:
 *     '0' start, '1' stop, '2' recording of a live mint, '3' recording with an invalid mint
 *     segment, '4' recording of a valid mint that has no session
 * (any other first byte: its value modulo 5).
 */
#include "fuzz-common.h"
#include "http-fake.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_http_init();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    static const char *const paths[] = {
        "/api/live-sessions/start",
        "/api/live-sessions/stop",
        "/api/live-sessions/" HV_FUZZ_LIVE_MINT "/recording",
        "/api/live-sessions/not-a-mint/recording",
        "/api/live-sessions/EsM78cQ5JHeRorCkvNNNaCX2i6QmdkyRT2fwRSdypump/recording",
    };
    unsigned which = (unsigned)(data[0] >= '0' && data[0] <= '4' ? data[0] - '0' : data[0] % 5);
    hv_http_exchange *ex = hv_fuzz_http_exchange("POST", paths[which], NULL, data + 1, size - 1);
    hv_fuzz_http_run(ex, HV_FUZZ_UPSTREAM_FRESH, NULL);
    return 0;
}

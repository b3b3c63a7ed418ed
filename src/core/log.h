/* Logging: GLib structured logging with one domain per module ("hv-<module>"), printed as
 * human-readable lines or JSON lines on stderr. Installed once on the main thread at startup;
 * any thread may log: the writer writes each line under a lock of its own (log.c).
 *
 * Lines about a stream, a room, a viewer or a recording carry that context as structured
 * fields (HV_MINT, HV_ROOM, HV_VIEWER, HV_SESSION, HV_RECORDING), not as text in the message:
 *
 *   HV_MESSAGE(&(hv_log_ctx){.mint = s->mint, .room = s->room_name}, "joined as %s", sid);
 *
 * Modules wrap the compound literal in a short macro (live: S_CTX(s) in live-private.h,
 * recordings: REC_CTX(e) in live/recording.c, viewers: W_CTX(w) in http/ws_viewer.c) or use
 * HV_CTX_MINT(m) below; media and livekit log through a function that adds their session's or
 * room's context (media: hv_media_log, behind HV_MEDIA_DEBUG/_INFO; livekit: room_log).
 * Text mode prints   2026-11-24T15:00:00.123Z INFO  hv-live [mint=Abc… room=r viewer=3] msg
 * JSON mode prints   {"ts":…,"level":"info","domain":"hv-live","mint":"Abc…","room":"r",
 *                     "viewer":3,"msg":"…"}   (context keys only when set).
 * The writer masks secrets in every message (see hv_log_mask_secrets) as a last line of defence;
 * call sites still must not pass tokens.
 */
#ifndef HV_CORE_LOG_H
#define HV_CORE_LOG_H

#include <glib.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* level: "error" | "warning" | "info" | "debug"; json: JSON lines instead of text.
 * G_MESSAGES_DEBUG=hv-pumpfun,... (or "all") still enables debug output for single domains;
 * it is read here, once. May be called again (tests). */
void hv_log_init(const char *level, bool json);

/* Context of a log line; every member is optional (NULL / 0 = not set). (transfer none) */
typedef struct {
    const char *mint;  /* stream mint id */
    const char *room;  /* LiveKit room name */
    uint64_t viewer;   /* viewer id (per process, from 1) */
    int64_t session;   /* live_sessions row id */
    int64_t recording; /* recordings row id */
} hv_log_ctx;

/* Logs fmt with ctx (nullable) as fields through g_log_structured_array(). Formats nothing when
 * the level is filtered out, so a debug line costs one check. Warnings and criticals are fatal
 * where GLib's g_log would make them fatal (G_DEBUG=fatal-warnings, g_test). */
void hv_log_structured(const char *domain, GLogLevelFlags level, const hv_log_ctx *ctx,
                       const char *fmt, ...) G_GNUC_PRINTF(4, 5);

/* The same with a va_list, for modules' own wrappers that add their context. */
void hv_log_structured_va(const char *domain, GLogLevelFlags level, const hv_log_ctx *ctx,
                          const char *fmt, va_list ap);

/* The context argument is part of __VA_ARGS__ so that a compound literal with commas in it
 * (&(hv_log_ctx){.mint = m, .room = r}) can be written inline. */
#define HV_LOG(level, ...) hv_log_structured(G_LOG_DOMAIN, (level), __VA_ARGS__)
#define HV_DEBUG(...)      HV_LOG(G_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define HV_INFO(...)       HV_LOG(G_LOG_LEVEL_INFO, __VA_ARGS__)
#define HV_MESSAGE(...)    HV_LOG(G_LOG_LEVEL_MESSAGE, __VA_ARGS__)
#define HV_WARNING(...)    HV_LOG(G_LOG_LEVEL_WARNING, __VA_ARGS__)
/* A context with only a mint. */
#define HV_CTX_MINT(m)     (&(const hv_log_ctx){.mint = (m)})

/* True when a line of this level and domain would be printed. */
bool hv_log_enabled(const char *domain, GLogLevelFlags level);

/* (transfer full) text with secrets cut to their first 6 characters + "…": values of
 * `token=` (also access_token=, refresh_token=), JWTs (eyJ… with at least one ".part"), `Bearer`
 * credentials, Cookie/Set-Cookie header values, and every string registered with
 * hv_log_add_secret(). */
char *hv_log_mask_secrets(const char *text);
/* Registers a secret (e.g. the API token) the writer must never print in full; copied.
 * Strings shorter than 8 bytes are ignored. Main thread, at startup. */
void hv_log_add_secret(const char *secret);

/* Rate limit for lines that could repeat per frame: at most one per interval.
 * Static storage, zero-initialised: `static hv_log_limit lim;`. Any thread. */
typedef struct {
    int64_t next_us;     /* monotonic time from which the next line may pass */
    uint64_t suppressed; /* calls refused since the last pass */
} hv_log_limit;
/* True: log now; *suppressed (nullable) gets how many calls were refused since the last pass. */
bool hv_log_limit_pass(hv_log_limit *lim, int64_t interval_us, uint64_t *suppressed);

/* hv_log_structured() through the limit lim: at most one line per interval_us, and that line
 * ends with " (N more suppressed)" when calls were refused since the last one. */
void hv_log_limited(const char *domain, GLogLevelFlags level, hv_log_limit *lim,
                    int64_t interval_us, const hv_log_ctx *ctx, const char *fmt, ...)
    G_GNUC_PRINTF(6, 7);
/* For paths that can repeat per frame: at most one line per interval_s seconds per call site.
 * HV_LOG_RATELIMITED(G_LOG_LEVEL_DEBUG, 10, ctx, "fmt", ...) */
#define HV_LOG_RATELIMITED(level, interval_s, ...)                                            \
    do {                                                                                      \
        static hv_log_limit hv_lim_;                                                          \
        hv_log_limited(G_LOG_DOMAIN, (level), &hv_lim_, (int64_t)(interval_s)*G_USEC_PER_SEC, \
                       __VA_ARGS__);                                                          \
    } while (0)

/* Tests: when capture is non-NULL the writer appends its lines to it instead of stderr.
 * (transfer none); pass NULL to restore stderr. */
void hv_log_set_capture(GString *capture);

#endif

/* The log writer installed with g_log_set_writer_func. Formats
 *   2026-11-24T15:00:00.123Z WARN  hv-live [mint=Abc… room=r viewer=3] message
 * or {"ts":"…","level":"warning","domain":"hv-live","mint":"…","msg":"…"} per line, filters by
 * level, and masks secrets. hv_log_structured() passes context as fields of its own (HV_MINT,
 * HV_ROOM, HV_VIEWER, HV_SESSION, HV_RECORDING) next to GLib's GLIB_DOMAIN, MESSAGE, PRIORITY.
 */
#include "log.h"

#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASK_KEEP 6 /* characters of a secret that may be shown */

static int min_rank = 2; /* 0 error .. 3 debug */
static bool json_lines;
static bool installed;
static char **debug_domains; /* G_MESSAGES_DEBUG split, read at init */
static bool debug_all;
static GPtrArray *secrets; /* (element-type utf8) hv_log_add_secret */
static GString *capture;   /* tests: lines go here instead of stderr */
static GMutex capture_lock;
static GMutex limit_lock;

static int
rank_of(GLogLevelFlags level)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
        return 0;
    }
    if (level & G_LOG_LEVEL_WARNING) {
        return 1;
    }
    if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) {
        return 2;
    }
    return 3;
}

static const char *
level_name(GLogLevelFlags level)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (level & G_LOG_LEVEL_CRITICAL) {
        return "critical";
    }
    return names[rank_of(level)];
}

static const char *
priority_of(GLogLevelFlags level)
{
    /* syslog priorities, as GLib's g_log_structured uses them */
    if (level & G_LOG_LEVEL_ERROR) {
        return "3";
    }
    if (level & G_LOG_LEVEL_CRITICAL) {
        return "4";
    }
    if (level & G_LOG_LEVEL_WARNING) {
        return "4";
    }
    if (level & G_LOG_LEVEL_MESSAGE) {
        return "5";
    }
    if (level & G_LOG_LEVEL_INFO) {
        return "6";
    }
    return "7";
}

static bool
debug_domain_enabled(const char *domain)
{
    if (debug_all) {
        return true;
    }
    if (debug_domains == NULL || domain == NULL) {
        return false;
    }
    return g_strv_contains((const char *const *)debug_domains, domain);
}

bool
hv_log_enabled(const char *domain, GLogLevelFlags level)
{
    if (!installed) {
        return !g_log_writer_default_would_drop(level, domain);
    }
    int rank = rank_of(level);
    return rank <= min_rank || (rank == 3 && debug_domain_enabled(domain));
}

/* ---- masking ------------------------------------------------------------------------------- */

static bool
is_b64url(unsigned char c)
{
    return g_ascii_isalnum(c) || c == '-' || c == '_';
}

/* Appends the first MASK_KEEP bytes of the len-byte secret s, then "…" if anything was cut. */
static void
append_masked(GString *out, const char *s, size_t len)
{
    g_string_append_len(out, s, (gssize)MIN(len, (size_t)MASK_KEEP));
    if (len > MASK_KEEP) {
        g_string_append(out, "…");
    }
}

/* Length of a JWT starting at p ("eyJ" base64url, then at least one ".part"), or 0. */
static size_t
jwt_len(const char *p)
{
    if (strncmp(p, "eyJ", 3) != 0) {
        return 0;
    }
    size_t n = 3;
    int dots = 0;
    while (is_b64url((unsigned char)p[n]) || (p[n] == '.' && is_b64url((unsigned char)p[n + 1]))) {
        dots += p[n] == '.';
        n++;
    }
    return dots >= 1 && n >= 16 ? n : 0;
}

static bool
ascii_prefix(const char *p, const char *word)
{
    return g_ascii_strncasecmp(p, word, strlen(word)) == 0;
}

char *
hv_log_mask_secrets(const char *text)
{
    if (text == NULL) {
        return NULL;
    }
    GString *out = g_string_sized_new(strlen(text) + 8);
    const char *p = text;
    while (*p != '\0') {
        bool boundary = p == text || !is_b64url((unsigned char)p[-1]);
        size_t n;
        if (boundary && (n = jwt_len(p)) > 0) {
            append_masked(out, p, n);
            p += n;
            continue;
        }
        static const struct {
            const char *word;
            const char *stop; /* characters that end the value */
        } creds[] = {
            /* A value ends where a URL query or a header value does: API tokens may hold any
             * visible character, so ',' or ';' inside one must not end the masking early and
             * print the rest (fuzz-http_route found that). */
            {"token=", "& \t\r\n\"'"},
            {"Bearer ", " \t\r\n\"'"},
            {"Cookie: ", "\r\n\""},
            {"Set-Cookie: ", "\r\n\""},
        };
        bool hit = false;
        for (size_t i = 0; i < G_N_ELEMENTS(creds) && !hit; i++) {
            /* "token=" also ends access_token= and refresh_token=; words match case-blind */
            bool word_start = creds[i].word[0] == 't' || boundary;
            if (word_start && ascii_prefix(p, creds[i].word)) {
                size_t w = strlen(creds[i].word);
                g_string_append_len(out, p, (gssize)w);
                p += w;
                n = strcspn(p, creds[i].stop); /* the value, after the word */
                append_masked(out, p, n);
                p += n;
                hit = true;
            }
        }
        for (guint i = 0; !hit && secrets != NULL && i < secrets->len; i++) {
            const char *sec = g_ptr_array_index(secrets, i);
            size_t len = strlen(sec);
            if (strncmp(p, sec, len) == 0) {
                append_masked(out, p, len);
                p += len;
                hit = true;
            }
        }
        if (!hit) {
            g_string_append_c(out, *p);
            p++;
        }
    }
    return g_string_free(out, FALSE);
}

void
hv_log_add_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 8) {
        return;
    }
    if (secrets == NULL) {
        secrets = g_ptr_array_new_with_free_func(g_free);
    }
    g_ptr_array_add(secrets, g_strdup(secret));
}

/* ---- rate limit ---------------------------------------------------------------------------- */

bool
hv_log_limit_pass(hv_log_limit *lim, int64_t interval_us, uint64_t *suppressed)
{
    int64_t now = g_get_monotonic_time();
    bool pass = false;
    g_mutex_lock(&limit_lock);
    if (lim->next_us == 0 || now >= lim->next_us) {
        pass = true;
        if (suppressed != NULL) {
            *suppressed = lim->suppressed;
        }
        lim->suppressed = 0;
        lim->next_us = now + MAX(interval_us, (int64_t)1);
    } else {
        lim->suppressed++;
    }
    g_mutex_unlock(&limit_lock);
    return pass;
}

/* ---- writer -------------------------------------------------------------------------------- */

static void
append_json_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    const char *p = s;
    const char *end = s + strlen(s);
    while (p < end) {
        gunichar c = g_utf8_get_char_validated(p, end - p);
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            g_string_append(out, "\\ufffd"); /* one invalid byte */
            p++;
            continue;
        }
        const char *next = g_utf8_next_char(p);
        switch (c) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (c < 0x20 || c == 0x7f || c == 0x2028 || c == 0x2029) {
                g_string_append_printf(out, "\\u%04x", (unsigned)c);
            } else {
                g_string_append_len(out, p, next - p);
            }
        }
        p = next;
    }
    g_string_append_c(out, '"');
}

/* Text mode: one line per record, so line breaks and other control characters are escaped. */
static void
append_text(GString *out, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p == '\n') {
            g_string_append(out, "\\n");
        } else if (*p == '\r') {
            g_string_append(out, "\\r");
        } else if (*p < 0x20 && *p != '\t') {
            g_string_append_printf(out, "\\x%02x", *p);
        } else {
            g_string_append_c(out, (char)*p);
        }
    }
}

typedef struct {
    const char *domain, *message, *mint, *room, *viewer, *session, *recording;
} record_fields;

static const char *
field_value(const GLogField *f, char **owned)
{
    if (f->length < 0) {
        return f->value;
    }
    *owned = g_strndup(f->value, (gsize)f->length);
    return *owned;
}

static void
collect_fields(const GLogField *fields, gsize n_fields, record_fields *r, GPtrArray *owned)
{
    static const struct {
        const char *key;
        size_t offset;
    } keys[] = {
        {"GLIB_DOMAIN", G_STRUCT_OFFSET(record_fields, domain)},
        {"MESSAGE", G_STRUCT_OFFSET(record_fields, message)},
        {"HV_MINT", G_STRUCT_OFFSET(record_fields, mint)},
        {"HV_ROOM", G_STRUCT_OFFSET(record_fields, room)},
        {"HV_VIEWER", G_STRUCT_OFFSET(record_fields, viewer)},
        {"HV_SESSION", G_STRUCT_OFFSET(record_fields, session)},
        {"HV_RECORDING", G_STRUCT_OFFSET(record_fields, recording)},
    };
    memset(r, 0, sizeof(*r));
    for (gsize i = 0; i < n_fields; i++) {
        for (size_t k = 0; k < G_N_ELEMENTS(keys); k++) {
            if (strcmp(fields[i].key, keys[k].key) == 0) {
                char *copy = NULL;
                *(const char **)G_STRUCT_MEMBER_P(r, keys[k].offset) =
                    field_value(&fields[i], &copy);
                if (copy != NULL) {
                    g_ptr_array_add(owned, copy);
                }
            }
        }
    }
}

static void
format_json(GString *line, const char *ts, GLogLevelFlags level, const record_fields *r,
            const char *msg)
{
    g_string_append_printf(line, "{\"ts\":\"%s\",\"level\":\"%s\",\"domain\":", ts,
                           level_name(level));
    append_json_string(line, r->domain != NULL ? r->domain : "haven");
    const char *strs[][2] = {{"mint", r->mint}, {"room", r->room}};
    for (size_t i = 0; i < G_N_ELEMENTS(strs); i++) {
        if (strs[i][1] != NULL) {
            g_string_append_printf(line, ",\"%s\":", strs[i][0]);
            g_autofree char *masked = hv_log_mask_secrets(strs[i][1]);
            append_json_string(line, masked);
        }
    }
    const char *nums[][2] = {
        {"viewer", r->viewer}, {"session", r->session}, {"recording", r->recording}};
    for (size_t i = 0; i < G_N_ELEMENTS(nums); i++) {
        int64_t v;
        if (nums[i][1] != NULL && hv_parse_int64(nums[i][1], &v)) {
            g_string_append_printf(line, ",\"%s\":%" G_GINT64_FORMAT, nums[i][0], v);
        }
    }
    g_string_append(line, ",\"msg\":");
    append_json_string(line, msg);
    g_string_append(line, "}\n");
}

static void
format_text(GString *line, const char *ts, GLogLevelFlags level, const record_fields *r,
            const char *msg)
{
    static const char *labels[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    const char *label = (level & G_LOG_LEVEL_CRITICAL) ? "CRIT" : labels[rank_of(level)];
    g_string_append_printf(line, "%s %-5s ", ts, label);
    append_text(line, r->domain != NULL ? r->domain : "haven");
    g_string_append_c(line, ' ');
    const char *ctx[][2] = {{"mint", r->mint},
                            {"room", r->room},
                            {"viewer", r->viewer},
                            {"session", r->session},
                            {"recording", r->recording}};
    bool open = false;
    for (size_t i = 0; i < G_N_ELEMENTS(ctx); i++) {
        if (ctx[i][1] != NULL) {
            g_string_append_printf(line, "%s%s=", open ? " " : "[", ctx[i][0]);
            g_autofree char *masked = hv_log_mask_secrets(ctx[i][1]);
            append_text(line, masked);
            open = true;
        }
    }
    if (open) {
        g_string_append(line, "] ");
    }
    append_text(line, msg);
    g_string_append_c(line, '\n');
}

static GLogWriterOutput
hv_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
    g_autoptr(GPtrArray) owned = g_ptr_array_new_with_free_func(g_free);
    record_fields r;
    collect_fields(fields, n_fields, &r, owned);
    if (!hv_log_enabled(r.domain, level)) {
        return G_LOG_WRITER_HANDLED;
    }
    char ts[32];
    hv_format_iso8601(hv_wall_ms(), ts, sizeof(ts));
    g_autofree char *msg = hv_log_mask_secrets(r.message != NULL ? r.message : "");
    g_autoptr(GString) line = g_string_sized_new(160);
    if (json_lines) {
        format_json(line, ts, level, &r, msg);
    } else {
        format_text(line, ts, level, &r, msg);
    }
    g_mutex_lock(&capture_lock);
    if (capture != NULL) {
        g_string_append_len(capture, line->str, (gssize)line->len);
    } else {
        fputs(line->str, stderr);
        fflush(stderr);
    }
    g_mutex_unlock(&capture_lock);
    return G_LOG_WRITER_HANDLED;
}

void
hv_log_set_capture(GString *out)
{
    g_mutex_lock(&capture_lock);
    capture = out;
    g_mutex_unlock(&capture_lock);
}

static void
log_va(const char *domain, GLogLevelFlags level, const hv_log_ctx *ctx, uint64_t suppressed,
       const char *fmt, va_list ap)
{
    g_autofree char *text = g_strdup_vprintf(fmt, ap);
    g_autofree char *msg = suppressed > 0
                               ? g_strdup_printf("%s (%" G_GUINT64_FORMAT " more suppressed)", text,
                                                 (guint64)suppressed)
                               : g_steal_pointer(&text);
    char viewer[24];
    char session[24];
    char recording[24];
    GLogField fields[8] = {
        {"GLIB_DOMAIN", domain != NULL ? domain : "haven", -1},
        {"PRIORITY", priority_of(level), -1},
        {"MESSAGE", msg, -1},
    };
    gsize n = 3;
    if (ctx != NULL && ctx->mint != NULL && ctx->mint[0] != '\0') {
        fields[n++] = (GLogField){"HV_MINT", ctx->mint, -1};
    }
    if (ctx != NULL && ctx->room != NULL && ctx->room[0] != '\0') {
        fields[n++] = (GLogField){"HV_ROOM", ctx->room, -1};
    }
    if (ctx != NULL && ctx->viewer != 0) {
        g_snprintf(viewer, sizeof(viewer), "%" G_GUINT64_FORMAT, (guint64)ctx->viewer);
        fields[n++] = (GLogField){"HV_VIEWER", viewer, -1};
    }
    if (ctx != NULL && ctx->session > 0) {
        g_snprintf(session, sizeof(session), "%" G_GINT64_FORMAT, (gint64)ctx->session);
        fields[n++] = (GLogField){"HV_SESSION", session, -1};
    }
    if (ctx != NULL && ctx->recording > 0) {
        g_snprintf(recording, sizeof(recording), "%" G_GINT64_FORMAT, (gint64)ctx->recording);
        fields[n++] = (GLogField){"HV_RECORDING", recording, -1};
    }
    /* g_log_structured_array() itself aborts only for errors; honour the always-fatal mask
     * (G_DEBUG=fatal-warnings, g_test_init) the way g_logv() does. */
    bool fatal = false;
    if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL)) {
        GLogLevelFlags mask = g_log_set_always_fatal(G_LOG_FATAL_MASK);
        g_log_set_always_fatal(mask);
        fatal = (level & mask) != 0;
    }
    g_log_structured_array(level, fields, n);
    if (fatal) {
        abort();
    }
}

void
hv_log_structured(const char *domain, GLogLevelFlags level, const hv_log_ctx *ctx, const char *fmt,
                  ...)
{
    if (!hv_log_enabled(domain, level)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_va(domain, level, ctx, 0, fmt, ap);
    va_end(ap);
}

void
hv_log_structured_va(const char *domain, GLogLevelFlags level, const hv_log_ctx *ctx,
                     const char *fmt, va_list ap)
{
    if (hv_log_enabled(domain, level)) {
        log_va(domain, level, ctx, 0, fmt, ap);
    }
}

void
hv_log_limited(const char *domain, GLogLevelFlags level, hv_log_limit *lim, int64_t interval_us,
               const hv_log_ctx *ctx, const char *fmt, ...)
{
    uint64_t suppressed = 0;
    if (!hv_log_enabled(domain, level) || !hv_log_limit_pass(lim, interval_us, &suppressed)) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    log_va(domain, level, ctx, suppressed, fmt, ap);
    va_end(ap);
}

void
hv_log_init(const char *level, bool json)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    for (int i = 0; i < 4; i++) {
        if (g_strcmp0(level, names[i]) == 0) {
            min_rank = i;
        }
    }
    json_lines = json;
    g_strfreev(debug_domains);
    const char *env = g_getenv("G_MESSAGES_DEBUG");
    debug_domains = env != NULL ? g_strsplit_set(env, ", ", -1) : NULL;
    debug_all = g_strcmp0(env, "all") == 0;
    if (!installed) {
        g_log_set_writer_func(hv_log_writer, NULL, NULL);
        installed = true;
    }
}

/* The log writer installed with g_log_set_writer_func. Formats
 *   2026-11-24T15:00:00.123Z WARN  hv-pumpfun message
 * or {"ts":"…","level":"warning","domain":"hv-pumpfun","msg":"…"} per line, and filters by level.
 */
#include "log.h"

#include "util.h"

#include <stdio.h>
#include <string.h>

static int min_rank = 2; /* 0 error .. 3 debug */
static bool json_lines;

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

static bool
debug_domain_enabled(const char *domain)
{
    const char *env = g_getenv("G_MESSAGES_DEBUG");
    if (env == NULL || domain == NULL) {
        return false;
    }
    if (strcmp(env, "all") == 0) {
        return true;
    }
    g_auto(GStrv) parts = g_strsplit_set(env, ", ", -1);
    return g_strv_contains((const char *const *)parts, domain);
}

static void
append_json_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
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
            if (*p < 0x20) {
                g_string_append_printf(out, "\\u%04x", *p);
            } else {
                g_string_append_c(out, (char)*p);
            }
        }
    }
    g_string_append_c(out, '"');
}

static GLogWriterOutput
hv_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user_data)
{
    const char *domain = NULL;
    const char *message = NULL;
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0) {
            domain = fields[i].value;
        } else if (strcmp(fields[i].key, "MESSAGE") == 0) {
            message = fields[i].value;
        }
    }
    int rank = rank_of(level);
    if (rank > min_rank && !(rank == 3 && debug_domain_enabled(domain))) {
        return G_LOG_WRITER_HANDLED;
    }
    char ts[32];
    hv_format_iso8601(hv_wall_ms(), ts, sizeof(ts));
    g_autoptr(GString) line = g_string_sized_new(160);
    if (json_lines) {
        g_string_append_printf(line, "{\"ts\":\"%s\",\"level\":\"%s\",\"domain\":", ts,
                               level_name(level));
        append_json_string(line, domain != NULL ? domain : "haven");
        g_string_append(line, ",\"msg\":");
        append_json_string(line, message != NULL ? message : "");
        g_string_append(line, "}\n");
    } else {
        static const char *labels[] = {"ERROR", "WARN", "INFO", "DEBUG"};
        const char *label = (level & G_LOG_LEVEL_CRITICAL) ? "CRIT" : labels[rank];
        g_string_append_printf(line, "%s %-5s %s %s\n", ts, label,
                               domain != NULL ? domain : "haven", message != NULL ? message : "");
    }
    fputs(line->str, stderr);
    fflush(stderr);
    return G_LOG_WRITER_HANDLED;
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
    g_log_set_writer_func(hv_log_writer, NULL, NULL);
}

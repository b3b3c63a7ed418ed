/* config_print.c: --help, --print-config and the Markdown table of docs/CONFIG.md, all from the
 * option table (config_options.c). */
#include "config-private.h"

#include <stdio.h>
#include <string.h>

static const char *
type_name(const opt_row *row)
{
    switch (row->type) {
    case OPT_INT:
        return "integer";
    case OPT_DURATION:
        return "duration";
    case OPT_CHOICE:
        return "choice";
    case OPT_URL:
    case OPT_WS_URL:
        return "URL";
    case OPT_LISTEN:
        return "host:port";
    case OPT_BOOL:
        return "boolean";
    case OPT_ORIGINS:
        return "origins";
    case OPT_STRING:
    case OPT_STRING_EMPTY:
    default:
        return "string";
    }
}

void
hv_config_print_help(FILE *out, const char *argv0)
{
    fprintf(out,
            "Usage: %s [OPTION...]\n\n"
            "haven discovers pump.fun live streams and serves them over HTTP.\n\n"
            "Every option can also be set with its environment variable, or in a configuration\n"
            "file (--config FILE or HAVEN_CONFIG; `name = value` lines, name as the flag without\n"
            "the dashes). A flag wins over the environment, which wins over the file, which wins\n"
            "over the default. Durations take ms, s, m, h or d suffixes (a bare number means\n"
            "seconds).\n\n"
            "Options:\n",
            argv0);
    for (size_t i = 0; i < hv_config_n_options; i++) {
        const opt_row *r = &hv_config_options[i];
        if (r->secret) {
            fprintf(out,
                    "  %s, or %s in a private config file (no flag)\n      default %s\n      %s\n",
                    r->env, r->name, *r->def != '\0' ? r->def : "(empty)", r->help);
            continue;
        }
        fprintf(out, "  --%s%s%s%s\n      env %s, default %s\n      %s\n", r->name,
                r->type == OPT_BOOL ? "[=" : "=", type_name(r), r->type == OPT_BOOL ? "]" : "",
                r->env, *r->def != '\0' ? r->def : "(empty)", r->help);
        if (r->type == OPT_CHOICE) {
            fprintf(out, "      one of: %s\n", r->choices);
        }
    }
    fprintf(out,
            "\n  --print-config   print the effective configuration (and where each value came\n"
            "                   from) and exit\n"
            "  --version        print the version and exit\n"
            "  -h, --help       print this help and exit\n\n"
            "Exit status 78 means the configuration is invalid.\n");
}

/* A string value with a URI's password hidden (scheme://user:PASSWORD@host, or a password=
 * parameter, as libpq's postgresql:// URIs allow): HAVEN_DB may carry one. */
static char *
mask_uri_password(const char *v)
{
    GString *s = g_string_new(v);
    const char *scheme = strstr(s->str, "://");
    if (scheme != NULL) {
        size_t auth = (size_t)(scheme - s->str) + 3;
        size_t end = auth + strcspn(s->str + auth, "/?#");
        const char *at = g_strstr_len(s->str + auth, (gssize)(end - auth), "@");
        const char *colon = g_strstr_len(s->str + auth, (gssize)(end - auth), ":");
        if (at != NULL && colon != NULL && colon < at) {
            size_t from = (size_t)(colon - s->str) + 1;
            g_string_erase(s, (gssize)from, at - colon - 1);
            g_string_insert(s, (gssize)from, "***");
        }
    }
    for (char *p = strstr(s->str, "password="); p != NULL; p = strstr(p + 1, "password=")) {
        size_t from = (size_t)(p - s->str) + strlen("password=");
        size_t len = strcspn(s->str + from, "& ");
        g_string_erase(s, (gssize)from, (gssize)len);
        g_string_insert(s, (gssize)from, "***");
        p = s->str + from;
    }
    return g_string_free(s, FALSE);
}

void
hv_config_print(const hv_config *cfg, FILE *out)
{
    for (size_t i = 0; i < hv_config_n_options; i++) {
        const opt_row *r = &hv_config_options[i];
        const void *slot = (const char *)cfg + r->offset;
        g_autofree char *value = NULL;
        if (r->secret) {
            /* Whether it is set, never what it is. */
            value = g_strdup(**(char *const *)slot != '\0' ? "***" : "");
        } else if (r->type == OPT_BOOL) {
            value = g_strdup(*(const bool *)slot ? "true" : "false");
        } else if (r->type == OPT_INT) {
            value = g_strdup_printf("%" G_GINT64_FORMAT, *(const int64_t *)slot);
        } else if (r->type == OPT_DURATION) {
            value = g_strdup_printf("%" G_GINT64_FORMAT "ms", *(const int64_t *)slot);
        } else {
            value = mask_uri_password(*(char *const *)slot);
        }
        fprintf(out, "%s=%s  # %s\n", r->env, value,
                hv_config_source_name((hv_config_source)cfg->sources[i]));
    }
}

void
hv_config_print_markdown(FILE *out)
{
    fprintf(out, "| Flag | Environment | Type | Default | Description |\n"
                 "|---|---|---|---|---|\n");
    for (size_t i = 0; i < hv_config_n_options; i++) {
        const opt_row *r = &hv_config_options[i];
        g_autofree char *flag = r->secret ? g_strdup_printf("(no flag; `%s` in a file)", r->name)
                                          : g_strdup_printf("`--%s`", r->name);
        fprintf(out, "| %s | `%s` | %s | `%s` | %s", flag, r->env, type_name(r), r->def, r->help);
        if (r->type == OPT_CHOICE) {
            fprintf(out, " One of `%s`.", r->choices);
        } else if (r->type == OPT_INT) {
            fprintf(out, " Range %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ".", r->min, r->max);
        }
        fprintf(out, " |\n");
    }
}

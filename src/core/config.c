/* config.c: the configuration's parsers and loading. Runs once on the main thread before
 * anything else starts. The table itself is config_options.c; --help, --print-config and the
 * docs table come from it in config_print.c.
 *
 * Each row names an option once: its CLI flag (also its key in the configuration file),
 * environment variable, type, default, bounds and help text. Parsing, --help, --print-config
 * and the Markdown table in docs/CONFIG.md are all derived from the table, so they cannot drift
 * apart (a unit test compares the doc). The layers, lowest first: default, configuration file
 * (hv_config_apply_file_text, a pure function of the file's text), environment, flags.
 */
#include "config-private.h"

#include "error.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An API token shorter than this is too easy to guess; longer than the max would not fit the
 * header buffers comfortably. */
#define TOKEN_MIN_LEN 16
#define TOKEN_MAX_LEN 512

static bool
parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (g_ascii_strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (g_ascii_strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* One origin as browsers send it: scheme "://" host [":" port], nothing after. */
static bool
origin_ok(const char *o)
{
    const char *rest = g_str_has_prefix(o, "https://")  ? o + 8
                       : g_str_has_prefix(o, "http://") ? o + 7
                                                        : NULL;
    if (rest == NULL || *rest == '\0') {
        return false;
    }
    for (const char *p = rest; *p != '\0'; p++) {
        if (*p == '/' || *p == '*' || *p == '?' || *p == '#' || g_ascii_isspace(*p) ||
            !g_ascii_isprint(*p)) {
            return false;
        }
    }
    return true;
}

/* Validates a CORS allow-list and returns (transfer full) it normalised ("a,b", blanks
 * removed), or NULL when an entry is not an origin. */
static char *
parse_origins(const char *v)
{
    g_auto(GStrv) parts = g_strsplit(v, ",", -1);
    g_autoptr(GString) out = g_string_new(NULL);
    for (char **p = parts; *p != NULL; p++) {
        const char *o = g_strstrip(*p);
        if (*o == '\0') {
            continue;
        }
        if (strcmp(o, "*") == 0 && g_strv_length(parts) == 1) {
            return g_strdup("*");
        }
        if (!origin_ok(o)) {
            return NULL;
        }
        g_string_append_printf(out, "%s%s", out->len > 0 ? "," : "", o);
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

bool
hv_config_host_is_loopback(const char *host)
{
    if (g_ascii_strcasecmp(host, "localhost") == 0) {
        return true;
    }
    struct in_addr v4;
    if (inet_pton(AF_INET, host, &v4) == 1) {
        return (ntohl(v4.s_addr) >> 24) == 127;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, host, &v6) == 1) {
        return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
    }
    return false;
}

static bool
parse_listen(const char *v, char **host, int *port)
{
    const char *colon;
    g_autofree char *h = NULL;
    if (v[0] == '[') {
        const char *close = strchr(v, ']');
        if (close == NULL || close[1] != ':') {
            return false;
        }
        h = g_strndup(v + 1, (gsize)(close - v - 1));
        colon = close + 1;
    } else {
        colon = strrchr(v, ':');
        if (colon == NULL) {
            return false;
        }
        h = g_strndup(v, (gsize)(colon - v));
    }
    int64_t p;
    if (*h == '\0' || !hv_parse_int64(colon + 1, &p) || p < 1 || p > 65535) {
        return false;
    }
    *host = g_steal_pointer(&h);
    *port = (int)p;
    return true;
}

static bool
choice_ok(const char *choices, const char *v)
{
    g_auto(GStrv) parts = g_strsplit(choices, "|", -1);
    return g_strv_contains((const char *const *)parts, v);
}

/* Validates value for row and stores it in cfg. source says where it came from (kept for
 * --print-config, and named in errors); where is the file:line of a file value. */
static bool
apply_option(hv_config *cfg, const opt_row *row, const char *value, hv_config_source source,
             const char *where, GError **error)
{
    void *slot = (char *)cfg + row->offset;
    int64_t n = 0;
    bool b = false;
    g_autofree char *normalised = NULL;
    const char *why = NULL;
    switch (row->type) {
    case OPT_STRING:
        if (*value == '\0') {
            why = "must not be empty";
        }
        break;
    case OPT_STRING_EMPTY:
        break;
    case OPT_WS_URL:
        if (!g_str_has_prefix(value, "wss://") && !g_str_has_prefix(value, "ws://") &&
            !g_str_has_prefix(value, "https://") && !g_str_has_prefix(value, "http://")) {
            why = "must be a wss://, ws://, https:// or http:// URL";
        }
        break;
    case OPT_URL:
        if (!g_str_has_prefix(value, "http://") && !g_str_has_prefix(value, "https://")) {
            why = "must be an http:// or https:// URL";
        }
        break;
    case OPT_CHOICE:
        if (!choice_ok(row->choices, value)) {
            why = "is not one of the allowed values";
        }
        break;
    case OPT_INT:
        if (!hv_parse_int64(value, &n)) {
            why = "is not a whole number";
        } else if (n < row->min || n > row->max) {
            why = "is out of range";
        }
        break;
    case OPT_DURATION:
        if (!hv_parse_duration_ms(value, &n)) {
            why = "is not a duration (e.g. 10s, 500ms, 2m, 1h, 7d)";
        } else if (n < row->min || n > row->max) {
            why = "is out of range";
        }
        break;
    case OPT_BOOL:
        if (!parse_bool(value, &b)) {
            why = "is not a boolean (true/false, 1/0, yes/no, on/off)";
        }
        break;
    case OPT_ORIGINS:
        normalised = parse_origins(value);
        if (normalised == NULL) {
            why = "must be * or a comma list of origins such as https://app.example:8443 "
                  "(scheme and host, no path)";
        }
        break;
    case OPT_LISTEN: {
        char *host = NULL;
        int port = 0;
        if (!parse_listen(value, &host, &port)) {
            why = "must be host:port with a port from 1 to 65535";
        } else {
            g_free(cfg->listen_host);
            cfg->listen_host = host;
            cfg->listen_port = port;
        }
        break;
    }
    }
    if (why != NULL) {
        g_autofree char *range = NULL;
        if (row->type == OPT_INT) {
            range = g_strdup_printf(" (allowed: %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT ")",
                                    row->min, row->max);
        } else if (row->type == OPT_CHOICE) {
            range = g_strdup_printf(" (allowed: %s)", row->choices);
        }
        const char *shown = row->secret ? "***" : value;
        if (source == HV_CONFIG_SOURCE_FILE) {
            g_set_error(error, HV_ERROR, HV_ECONFIG, "config file %s: invalid %s=\"%s\": %s%s",
                        where, row->name, shown, why, range != NULL ? range : "");
        } else {
            bool flag = source == HV_CONFIG_SOURCE_FLAG;
            g_set_error(error, HV_ERROR, HV_ECONFIG, "invalid %s %s%s=\"%s\": %s%s",
                        hv_config_source_name(source), flag ? "--" : "",
                        flag ? row->name : row->env, shown, why, range != NULL ? range : "");
        }
        return false;
    }
    cfg->sources[row - hv_config_options] = (uint8_t)source;
    if (row->type == OPT_INT || row->type == OPT_DURATION) {
        *(int64_t *)slot = n;
    } else if (row->type == OPT_BOOL) {
        *(bool *)slot = b;
    } else {
        char **s = slot;
        g_free(*s);
        *s = normalised != NULL ? g_steal_pointer(&normalised) : g_strdup(value);
        if (row->type == OPT_URL || row->type == OPT_WS_URL) {
            size_t len = strlen(*s);
            while (len > 0 && (*s)[len - 1] == '/') {
                (*s)[--len] = '\0';
            }
        }
    }
    return true;
}

static const char *
env_lookup(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
            return *e + n + 1;
        }
    }
    return NULL;
}

/* Reads the token from HAVEN_API_TOKEN_FILE when given and checks it. Errors never show the
 * token itself. */
static bool
load_api_token(hv_config *cfg, GError **error)
{
    const char *name = "HAVEN_API_TOKEN";
    if (cfg->api_token_file[0] != '\0') {
        if (cfg->api_token[0] != '\0') {
            g_set_error(error, HV_ERROR, HV_ECONFIG,
                        "the API token (HAVEN_API_TOKEN, or api-token in the configuration "
                        "file) and the API token file (--api-token-file, HAVEN_API_TOKEN_FILE) "
                        "are both set: use one of them");
            return false;
        }
        g_autofree char *text = NULL;
        g_autoptr(GError) ferr = NULL;
        if (!g_file_get_contents(cfg->api_token_file, &text, NULL, &ferr)) {
            g_set_error(error, HV_ERROR, HV_ECONFIG, "cannot read the API token file: %s",
                        ferr->message);
            return false;
        }
        char *nl = strpbrk(text, "\r\n");
        if (nl != NULL) {
            *nl = '\0';
        }
        g_free(cfg->api_token);
        cfg->api_token = g_strdup(text);
        cfg->sources[hv_config_find_option("api-token") - hv_config_options] =
            cfg->sources[hv_config_find_option("api-token-file") - hv_config_options];
        memset(text, 0, strlen(text));
        name = "the API token file";
    }
    size_t len = strlen(cfg->api_token);
    if (len == 0) {
        if (cfg->api_token_file[0] != '\0') {
            g_set_error(error, HV_ERROR, HV_ECONFIG,
                        "the API token file \"%s\" holds no token (its first line is empty)",
                        cfg->api_token_file);
            return false;
        }
        return true;
    }
    bool visible = true;
    for (const char *p = cfg->api_token; *p != '\0'; p++) {
        visible = visible && *p > ' ' && *p < 0x7f;
    }
    if (len < TOKEN_MIN_LEN || len > TOKEN_MAX_LEN || !visible) {
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "invalid %s: the token must be %d to %d visible ASCII characters (no blanks "
                    "or control characters); it has %zu",
                    name, TOKEN_MIN_LEN, TOKEN_MAX_LEN, len);
        return false;
    }
    return true;
}

bool
hv_config_check_exposure(const hv_config *cfg, GError **error)
{
    if (hv_config_host_is_loopback(cfg->listen_host) || cfg->api_token[0] != '\0' ||
        cfg->insecure_public) {
        return true;
    }
    g_set_error(error, HV_ERROR, HV_ECONFIG,
                "refusing to listen on %s without an API token: it is not a loopback address, so "
                "anyone who can reach it could use the API. Set HAVEN_API_TOKEN (or "
                "--api-token-file), or pass --insecure-public to serve it without one",
                cfg->listen);
    return false;
}

/* Cuts the value part of a configuration file line (trimmed) into the value: taken as it is,
 * or, when it starts with '"', up to the closing quote with \" and \\ unescaped. Returns
 * (transfer full) the value, or NULL with *why set. */
static char *
parse_file_value(const char *raw, const char **why)
{
    if (raw[0] != '"') {
        if (strchr(raw, '#') != NULL) {
            *why = "has a '#' in its value: comments go on lines of their own; quote the value "
                   "(\"...\") if the '#' belongs to it";
            return NULL;
        }
        return g_strdup(raw);
    }
    g_autoptr(GString) out = g_string_new(NULL);
    const char *p = raw + 1;
    for (; *p != '"'; p++) {
        if (*p == '\0') {
            *why = "has a quoted value without its closing quote";
            return NULL;
        }
        if (*p == '\\') {
            if (p[1] != '"' && p[1] != '\\') {
                *why = "has an unknown escape in its quoted value (only \\\" and \\\\ are escapes)";
                return NULL;
            }
            p++;
        }
        g_string_append_c(out, *p);
    }
    for (p++; *p == ' ' || *p == '\t'; p++) {
    }
    if (*p != '\0') {
        *why = "has text after the closing quote of its value";
        return NULL;
    }
    return g_string_free(g_steal_pointer(&out), FALSE);
}

/* Applies one non-blank, non-comment line (trimmed; modified in place). seen_on holds, per
 * table row, the line that set it (0: none yet). */
static bool
apply_file_line(hv_config *cfg, const char *name, int lineno, char *line, int *seen_on,
                bool secrets_ok, GError **error)
{
    char *eq = strchr(line, '=');
    if (eq == NULL) {
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "config file %s:%d: no \"=\" in this line (expected name = value)", name,
                    lineno);
        return false;
    }
    *eq = '\0';
    const char *key = g_strstrip(line);
    const char *raw = g_strstrip(eq + 1);
    if (*key == '\0') {
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "config file %s:%d: no option name before \"=\" (expected name = value)", name,
                    lineno);
        return false;
    }
    const opt_row *row = hv_config_find_option(key);
    if (row == NULL) {
        /* The value is not shown: a mistyped secret's name must not put the secret in a log. */
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "config file %s:%d: unknown option \"%s\" (names are the flags of haven --help "
                    "without the dashes)",
                    name, lineno, key);
        return false;
    }
    if (row->offset == OFF(config_file)) {
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "config file %s:%d: \"config\" cannot be set in a configuration file (use "
                    "--config or HAVEN_CONFIG)",
                    name, lineno);
        return false;
    }
    size_t idx = (size_t)(row - hv_config_options);
    if (seen_on[idx] != 0) {
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "config file %s:%d: %s is set twice (first on line %d); keep one", name, lineno,
                    row->name, seen_on[idx]);
        return false;
    }
    seen_on[idx] = lineno;
    const char *why = NULL;
    g_autofree char *value = parse_file_value(raw, &why);
    if (value == NULL) {
        g_set_error(error, HV_ERROR, HV_ECONFIG, "config file %s:%d: %s %s", name, lineno,
                    row->name, why);
        return false;
    }
    bool ok = true;
    if (row->secret && *value != '\0' && !secrets_ok) {
        /* ssh refuses readable private keys for the same reason. */
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "config file %s:%d: refusing %s=\"***\": group or others can read the file; "
                    "make it private (chmod 600) or set %s in the environment instead",
                    name, lineno, row->name, row->env);
        ok = false;
    } else {
        g_autofree char *where = g_strdup_printf("%s:%d", name, lineno);
        ok = apply_option(cfg, row, value, HV_CONFIG_SOURCE_FILE, where, error);
    }
    if (row->secret) {
        memset(value, 0, strlen(value));
        memset(eq + 1, 0, strlen(eq + 1));
    }
    return ok;
}

bool
hv_config_apply_file_text(hv_config *cfg, const char *name, const char *text, size_t len,
                          bool secrets_ok, GError **error)
{
    g_return_val_if_fail(cfg != NULL && name != NULL && (text != NULL || len == 0), false);
    if (len > HV_CONFIG_FILE_MAX_BYTES) {
        g_set_error(error, HV_ERROR, HV_ECONFIG,
                    "config file %s: %zu bytes, more than the %d a configuration file may have "
                    "(is it the right file?)",
                    name, len, HV_CONFIG_FILE_MAX_BYTES);
        return false;
    }
    size_t pos = 0;
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        pos = 3; /* a UTF-8 byte order mark, as some editors write */
    }
    int seen_on[HV_CONFIG_MAX_OPTIONS] = {0}; /* the table has at most that many rows */
    for (int lineno = 1; pos < len; lineno++) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += n + 1;
        if (memchr(start, '\0', n) != NULL) {
            g_set_error(error, HV_ERROR, HV_ECONFIG,
                        "config file %s:%d: holds a NUL byte (is it a text file?)", name, lineno);
            return false;
        }
        if (!g_utf8_validate_len(start, n, NULL)) {
            g_set_error(error, HV_ERROR, HV_ECONFIG, "config file %s:%d: is not valid UTF-8", name,
                        lineno);
            return false;
        }
        g_autofree char *line = g_strstrip(g_strndup(start, n));
        if (*line == '\0' || *line == '#') {
            continue;
        }
        if (!apply_file_line(cfg, name, lineno, line, seen_on, secrets_ok, error)) {
            return false;
        }
    }
    return true;
}

/* Reads the configuration file at path (at most HV_CONFIG_FILE_MAX_BYTES + 1 bytes, so that
 * the parser can say it is too big) and applies it. The mode comes from the open descriptor,
 * so it is the mode of the file that was read. */
static bool
load_config_file(hv_config *cfg, const char *path, GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, HV_ERROR, HV_ECONFIG, "cannot read config file %s: %s", path,
                    g_strerror(e));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        int e = S_ISDIR(st.st_mode) ? EISDIR : errno;
        (void)close(fd);
        g_set_error(error, HV_ERROR, HV_ECONFIG, "cannot read config file %s: %s", path,
                    g_strerror(e));
        return false;
    }
    g_autoptr(GString) text = g_string_sized_new(4096);
    char buf[4096];
    while (text->len <= HV_CONFIG_FILE_MAX_BYTES) {
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            (void)close(fd);
            g_set_error(error, HV_ERROR, HV_ECONFIG, "cannot read config file %s: %s", path,
                        g_strerror(e));
            return false;
        }
        if (n == 0) {
            break;
        }
        g_string_append_len(text, buf, n);
    }
    (void)close(fd);
    bool secrets_ok = (st.st_mode & 077) == 0;
    bool ok = hv_config_apply_file_text(cfg, path, text->str, text->len, secrets_ok, error);
    memset(text->str, 0, text->len); /* it may hold the API token */
    memset(buf, 0, sizeof(buf));
    return ok;
}

/* One option given on the command line, applied after the file and the environment. */
typedef struct {
    const opt_row *row;
    const char *value; /* (transfer none) points into argv */
} flag_value;

/* Reads argv: actions, and the options into flags (not yet validated or applied). */
static bool
parse_args(int argc, char **argv, hv_config_action *action, GArray *flags, GError **error)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *action = HV_CONFIG_ACTION_HELP;
            continue;
        }
        if (strcmp(arg, "--print-config") == 0) {
            *action = HV_CONFIG_ACTION_PRINT_CONFIG;
            continue;
        }
        if (strcmp(arg, "--print-config-markdown") == 0) {
            *action = HV_CONFIG_ACTION_PRINT_MARKDOWN;
            continue;
        }
        if (strcmp(arg, "--version") == 0) {
            *action = HV_CONFIG_ACTION_VERSION;
            continue;
        }
        if (!g_str_has_prefix(arg, "--")) {
            g_set_error(error, HV_ERROR, HV_ECONFIG,
                        "unexpected argument \"%s\" (see haven --help)", arg);
            return false;
        }
        const char *eq = strchr(arg, '=');
        g_autofree char *flag =
            eq != NULL ? g_strndup(arg + 2, (gsize)(eq - arg - 2)) : g_strdup(arg + 2);
        const opt_row *row = hv_config_find_option(flag);
        if (row == NULL) {
            g_set_error(error, HV_ERROR, HV_ECONFIG, "unknown option --%s (see haven --help)",
                        flag);
            return false;
        }
        if (row->secret) {
            g_set_error(error, HV_ERROR, HV_ECONFIG,
                        "--%s cannot be given on the command line, where every user can see it "
                        "in ps: set %s in the environment instead, or %s in a configuration file "
                        "only its owner can read",
                        flag, row->env, row->name);
            return false;
        }
        const char *value = eq != NULL ? eq + 1 : NULL;
        if (value == NULL && row->type == OPT_BOOL) {
            value = "true"; /* "--insecure-public" alone */
        }
        if (value == NULL) {
            if (i + 1 >= argc) {
                g_set_error(error, HV_ERROR, HV_ECONFIG, "option --%s needs a value", flag);
                return false;
            }
            value = argv[++i];
        }
        flag_value fv = {row, value};
        g_array_append_val(flags, fv);
    }
    return true;
}

hv_config *
hv_config_load(int argc, char **argv, char **envp, hv_config_action *action, GError **error)
{
    g_autoptr(hv_config) cfg = g_new0(hv_config, 1);
    *action = HV_CONFIG_ACTION_RUN;
    g_autoptr(GArray) flags = g_array_new(FALSE, FALSE, sizeof(flag_value));
    if (!parse_args(argc, argv, action, flags, error)) {
        return NULL;
    }

    for (size_t i = 0; i < hv_config_n_options; i++) {
        if (!apply_option(cfg, &hv_config_options[i], hv_config_options[i].def,
                          HV_CONFIG_SOURCE_DEFAULT, NULL, error)) {
            return NULL;
        }
    }
    /* The file layer: the last --config flag names it, else HAVEN_CONFIG; none if neither. */
    const opt_row *config_row = hv_config_find_option("config");
    const char *path = env_lookup(envp, config_row->env);
    for (guint i = 0; i < flags->len; i++) {
        const flag_value *fv = &g_array_index(flags, flag_value, i);
        if (fv->row == config_row) {
            path = fv->value;
        }
    }
    if (path != NULL && *path != '\0' && !load_config_file(cfg, path, error)) {
        return NULL;
    }
    for (size_t i = 0; i < hv_config_n_options; i++) {
        const char *v = env_lookup(envp, hv_config_options[i].env);
        if (v != NULL && !apply_option(cfg, &hv_config_options[i], v, HV_CONFIG_SOURCE_ENVIRONMENT,
                                       NULL, error)) {
            return NULL;
        }
    }
    for (guint i = 0; i < flags->len; i++) {
        const flag_value *fv = &g_array_index(flags, flag_value, i);
        if (!apply_option(cfg, fv->row, fv->value, HV_CONFIG_SOURCE_FLAG, NULL, error)) {
            return NULL;
        }
    }
    if (!load_api_token(cfg, error)) {
        return NULL;
    }
    return g_steal_pointer(&cfg);
}

int
hv_config_value_source(const hv_config *cfg, const char *name)
{
    const opt_row *row = hv_config_find_option(name);
    return row != NULL ? cfg->sources[row - hv_config_options] : -1;
}

void
hv_config_free(hv_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < hv_config_n_options; i++) {
        if (hv_config_options[i].type != OPT_INT && hv_config_options[i].type != OPT_DURATION &&
            hv_config_options[i].type != OPT_BOOL) {
            char *v = *(char **)((char *)cfg + hv_config_options[i].offset);
            if (v != NULL && hv_config_options[i].secret) {
                memset(v, 0, strlen(v)); /* no copy of a secret left in freed memory */
            }
            g_free(v);
        }
    }
    g_free(cfg->listen_host);
    g_free(cfg);
}

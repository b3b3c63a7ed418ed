/* The option table and its parsers. Runs once on the main thread before anything else starts.
 *
 * Each row names an option once: its CLI flag (also its key in the configuration file),
 * environment variable, type, default, bounds and help text. Parsing, --help, --print-config
 * and the Markdown table in docs/CONFIG.md are all derived from the table, so they cannot drift
 * apart (a unit test compares the doc). The layers, lowest first: default, configuration file
 * (hv_config_apply_file_text, a pure function of the file's text), environment, flags.
 */
#include "config.h"

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

typedef enum {
    OPT_STRING,
    OPT_STRING_EMPTY, /* a string that may be empty */
    OPT_INT,
    OPT_DURATION,
    OPT_CHOICE,
    OPT_URL,
    OPT_WS_URL,
    OPT_LISTEN,
    OPT_BOOL,   /* "--flag" alone means true; values true/false, 1/0, yes/no, on/off */
    OPT_ORIGINS /* "", "*" or a comma list of exact origins (scheme://host[:port]) */
} opt_type;

typedef struct {
    const char *name; /* long flag without "--" */
    const char *env;
    opt_type type;
    const char *def;
    int64_t min, max;    /* OPT_INT / OPT_DURATION (ms) bounds */
    const char *choices; /* OPT_CHOICE: '|'-separated */
    /* A secret is printed as *** and read from the environment or a private configuration
     * file only: command-line flags are visible to every user in ps. */
    bool secret;
    size_t offset; /* into hv_config */
    const char *help;
} opt_row;

#define OFF(field) offsetof(hv_config, field)
#define DAY_MS     (86400000LL)

/* An API token shorter than this is too easy to guess; longer than the max would not fit the
 * header buffers comfortably. */
#define TOKEN_MIN_LEN 16
#define TOKEN_MAX_LEN 512

static const opt_row options[] = {
    {"config", "HAVEN_CONFIG", OPT_STRING_EMPTY, "", 0, 0, NULL, false, OFF(config_file),
     "Configuration file to read: one `name = value` a line, name being an option's flag name "
     "without the dashes (see docs/CONFIG.md). Its values override the defaults; HAVEN_* "
     "variables and flags override it. Empty: no file."},
    {"listen", "HAVEN_LISTEN", OPT_LISTEN, "127.0.0.1:8000", 0, 0, NULL, false, OFF(listen),
     "Address and port the HTTP server binds (host:port, or [v6addr]:port). Any address but "
     "loopback needs HAVEN_API_TOKEN, or --insecure-public."},
    {"api-token", "HAVEN_API_TOKEN", OPT_STRING_EMPTY, "", 0, 0, NULL, true, OFF(api_token),
     "Token every /api request and the viewer WebSocket must carry (Authorization: Bearer "
     "TOKEN, or ?token=TOKEN on GET and WebSocket requests); empty: no token. 16 to 512 "
     "visible ASCII characters. No flag (it would show in ps): the environment, or api-token in a "
     "configuration file that only its owner can read."},
    {"api-token-file", "HAVEN_API_TOKEN_FILE", OPT_STRING_EMPTY, "", 0, 0, NULL, false,
     OFF(api_token_file), "File whose first line is the API token (instead of HAVEN_API_TOKEN)."},
    {"insecure-public", "HAVEN_INSECURE_PUBLIC", OPT_BOOL, "false", 0, 0, NULL, false,
     OFF(insecure_public),
     "Allow listening on a non-loopback address without HAVEN_API_TOKEN: anyone who reaches the "
     "port can then start sessions, record and delete recordings."},
    {"cors-origins", "HAVEN_CORS_ORIGINS", OPT_ORIGINS, "", 0, 0, NULL, false, OFF(cors_origins),
     "Origins whose pages may call the API from a browser (CORS): a comma list of exact origins "
     "such as https://app.example:8443, or *; empty: CORS off, and cross-origin POST/DELETE "
     "requests are refused (403)."},
    {"db", "HAVEN_DB", OPT_STRING, "./haven.db", 0, 0, NULL, false, OFF(db_path),
     "SQLite database file (WAL mode); created and migrated at startup."},
    {"pumpfun-frontend-api", "HAVEN_PUMPFUN_FRONTEND_API", OPT_URL,
     "https://frontend-api-v3.pump.fun", 0, 0, NULL, false, OFF(pumpfun_frontend_api),
     "Base URL of pump.fun's coin catalogue (/coins/currently-live, /coins/{mint})."},
    {"pumpfun-livestream-api", "HAVEN_PUMPFUN_LIVESTREAM_API", OPT_URL,
     "https://livestream-api.pump.fun", 0, 0, NULL, false, OFF(pumpfun_livestream_api),
     "Base URL of pump.fun's livestream API (/livestream, /livestream/join)."},
    {"user-agent", "HAVEN_USER_AGENT", OPT_STRING,
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/131.0.0.0 Safari/537.36",
     0, 0, NULL, false, OFF(user_agent),
     "User-Agent sent upstream (Cloudflare challenges non-browser agents)."},
    {"catalog-ttl", "HAVEN_CATALOG_TTL", OPT_DURATION, "10s", 100, DAY_MS, NULL, false,
     OFF(catalog_ttl_ms),
     "How long a fetched live roster counts as fresh; older rosters are served while one "
     "refresh runs (stale-while-revalidate)."},
    {"roster-max", "HAVEN_ROSTER_MAX", OPT_INT, "1000", 1, 100000, NULL, false, OFF(roster_max),
     "Most live streams kept per roster refresh (pages are fetched until a short page or this "
     "cap)."},
    {"roster-page-size", "HAVEN_ROSTER_PAGE_SIZE", OPT_INT, "100", 1, 1000, NULL, false,
     OFF(roster_page_size), "Rows asked for per currently-live page."},
    {"upstream-connect-timeout", "HAVEN_UPSTREAM_CONNECT_TIMEOUT", OPT_DURATION, "5s", 100, 120000,
     NULL, false, OFF(upstream_connect_timeout_ms), "Connect timeout for every upstream request."},
    {"upstream-timeout", "HAVEN_UPSTREAM_TIMEOUT", OPT_DURATION, "15s", 100, 600000, NULL, false,
     OFF(upstream_timeout_ms), "Total timeout for every upstream request."},
    {"upstream-max-body", "HAVEN_UPSTREAM_MAX_BODY", OPT_INT, "33554432", 1024, 1073741824, NULL,
     false, OFF(upstream_max_body_bytes),
     "Largest upstream response body accepted, in bytes; larger answers fail the request."},
    {"snapshot-interval", "HAVEN_SNAPSHOT_INTERVAL", OPT_DURATION, "60s", 0, DAY_MS, NULL, false,
     OFF(snapshot_interval_ms),
     "Least time between two coin_snapshots rows for one coin (0 = every refresh)."},
    {"snapshot-retention", "HAVEN_SNAPSHOT_RETENTION", OPT_DURATION, "30d", 0, 3650 * DAY_MS, NULL,
     false, OFF(snapshot_retention_ms), "How long coin_snapshots history is kept (0 = forever)."},
    {"max-body", "HAVEN_MAX_BODY", OPT_INT, "65536", 1024, 16777216, NULL, false,
     OFF(max_body_bytes), "Largest HTTP request body accepted, in bytes (larger: 413)."},
    {"max-header", "HAVEN_MAX_HEADER", OPT_INT, "8192", 1024, 65535, NULL, false,
     OFF(max_header_bytes),
     "Largest request line plus headers accepted, in bytes; libwebsockets closes the connection "
     "of a larger request without an answer."},
    {"max-sessions", "HAVEN_MAX_SESSIONS", OPT_INT, "16", 1, 10000, NULL, false, OFF(max_sessions),
     "Most live sessions at once (joining, active or reconnecting); starting another answers "
     "503."},
    {"max-viewers-per-session", "HAVEN_MAX_VIEWERS_PER_SESSION", OPT_INT, "200", 1, 100000, NULL,
     false, OFF(max_viewers_per_session),
     "Most viewer WebSockets per live session; the upgrade of one more is answered 503."},
    {"max-viewers", "HAVEN_MAX_VIEWERS", OPT_INT, "1000", 1, 100000, NULL, false, OFF(max_viewers),
     "Most viewer WebSockets over all live sessions; the upgrade of one more is answered 503."},
    {"start-rate", "HAVEN_START_RATE", OPT_INT, "30", 0, 100000, NULL, false, OFF(start_rate),
     "Session start requests (POST /api/live-sessions/start) allowed per client IP address per "
     "minute, in bursts of up to the same number; more answer 429 with Retry-After. 0: no "
     "limit."},
    {"max-viewer-message", "HAVEN_MAX_VIEWER_MESSAGE", OPT_INT, "4096", 64, 1048576, NULL, false,
     OFF(max_viewer_message_bytes),
     "Largest message a viewer may send on its WebSocket, in bytes; a larger one closes the "
     "connection with 1009."},
    {"livekit-url", "HAVEN_LIVEKIT_URL", OPT_WS_URL, "wss://pump-prod-tg2x8veh.livekit.cloud", 0, 0,
     NULL, false, OFF(livekit_url),
     "LiveKit server that pump.fun streams run on (wss:// or ws://; /rtc is appended)."},
    {"ice-addresses", "HAVEN_ICE_ADDRESSES", OPT_STRING_EMPTY, "", 0, 0, NULL, false,
     OFF(ice_addresses),
     "Comma list of local IP addresses WebRTC (ICE) may use; empty means every interface. "
     "Loopback is only used when listed."},
    {"jpeg-quality", "HAVEN_JPEG_QUALITY", OPT_INT, "85", 1, 100, NULL, false, OFF(jpeg_quality),
     "JPEG quality of the video frames sent to viewers."},
    {"idle-timeout", "HAVEN_IDLE_TIMEOUT", OPT_DURATION, "5m", 0, DAY_MS, NULL, false,
     OFF(idle_timeout_ms),
     "A live session with no viewers and no recording stops after this long; 0: it runs until "
     "stopped."},
    {"livekit-connect-timeout", "HAVEN_LIVEKIT_CONNECT_TIMEOUT", OPT_DURATION, "15s", 500, 120000,
     NULL, false, OFF(livekit_connect_timeout_ms),
     "Time allowed to open the LiveKit signalling connection and get its JoinResponse; "
     "then again for the peer connection (ICE) to connect, else the session reconnects."},
    {"reconnect-give-up", "HAVEN_RECONNECT_GIVE_UP", OPT_DURATION, "60s", 1000, DAY_MS, NULL, false,
     OFF(reconnect_give_up_ms),
     "A session that cannot reconnect to its room for this long ends (status failed)."},
    {"streamer-grace", "HAVEN_STREAMER_GRACE", OPT_DURATION, "20s", 0, DAY_MS, NULL, false,
     OFF(streamer_grace_ms),
     "When the streamer leaves the room, the session waits this long for it to come back "
     "(OBS restarts, network changes) before it ends; 0 ends it at once."},
    {"audio-backlog", "HAVEN_AUDIO_BACKLOG", OPT_INT, "100", 4, 10000, NULL, false,
     OFF(audio_backlog_chunks),
     "Audio chunks (about 20 ms each) kept per format; a viewer further behind is "
     "disconnected."},
    {"gop-cache", "HAVEN_GOP_CACHE", OPT_INT, "8388608", 65536, 1073741824, NULL, false,
     OFF(gop_cache_bytes),
     "Bytes of encoded media kept per session, from the newest key frame on, so that encoded "
     "viewers (?mode=encoded) start at once; when the current GOP alone is bigger, a key frame "
     "is asked for and new encoded viewers wait for it."},
    {"web-dir", "HAVEN_WEB_DIR", OPT_STRING_EMPTY, "./web", 0, 0, NULL, false, OFF(web_dir),
     "Directory of the built-in web player, served at / (empty: no player; / then lists the "
     "API)."},
    {"recordings-dir", "HAVEN_RECORDINGS_DIR", OPT_STRING, "./recordings", 0, 0, NULL, false,
     OFF(recordings_dir),
     "Directory recordings are written to (created if missing); file names are "
     "<mint>_<UTC time>.<ext>."},
    {"record-format", "HAVEN_RECORD_FORMAT", OPT_CHOICE, "auto", 0, 0, "auto|mp4", false,
     OFF(record_format),
     "auto: keep the stream's codec (H.264/VP9 to .mp4, VP8 to .webm), no re-encoding. mp4: "
     "also turn VP8 into H.264 .mp4, which decodes and re-encodes every frame (costly)."},
    {"record-queue", "HAVEN_RECORD_QUEUE", OPT_INT, "16777216", 65536, 1073741824, NULL, false,
     OFF(record_queue_bytes),
     "Bytes of encoded media a recording may hold while the disk catches up; beyond it packets "
     "are dropped and counted, so a slow disk never stalls viewing."},
    {"log-level", "HAVEN_LOG_LEVEL", OPT_CHOICE, "info", 0, 0, "error|warning|info|debug", false,
     OFF(log_level), "Least severe log level printed."},
    {"log-format", "HAVEN_LOG_FORMAT", OPT_CHOICE, "text", 0, 0, "text|json", false,
     OFF(log_format), "Log line format: human-readable text or JSON lines."},
};
G_STATIC_ASSERT(G_N_ELEMENTS(options) <= HV_CONFIG_MAX_OPTIONS);

static const char *const source_names[] = {"default", "file", "environment", "flag"};

const char *
hv_config_source_name(hv_config_source source)
{
    return (size_t)source < G_N_ELEMENTS(source_names) ? source_names[source] : "unknown";
}

static const opt_row *
find_option(const char *flag)
{
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        if (strcmp(options[i].name, flag) == 0) {
            return &options[i];
        }
    }
    return NULL;
}

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
    cfg->sources[row - options] = (uint8_t)source;
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
        cfg->sources[find_option("api-token") - options] =
            cfg->sources[find_option("api-token-file") - options];
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
    const opt_row *row = find_option(key);
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
    size_t idx = (size_t)(row - options);
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
    int seen_on[G_N_ELEMENTS(options)] = {0};
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
        const opt_row *row = find_option(flag);
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

    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        if (!apply_option(cfg, &options[i], options[i].def, HV_CONFIG_SOURCE_DEFAULT, NULL,
                          error)) {
            return NULL;
        }
    }
    /* The file layer: the last --config flag names it, else HAVEN_CONFIG; none if neither. */
    const opt_row *config_row = find_option("config");
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
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        const char *v = env_lookup(envp, options[i].env);
        if (v != NULL &&
            !apply_option(cfg, &options[i], v, HV_CONFIG_SOURCE_ENVIRONMENT, NULL, error)) {
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
    const opt_row *row = find_option(name);
    return row != NULL ? cfg->sources[row - options] : -1;
}

void
hv_config_free(hv_config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        if (options[i].type != OPT_INT && options[i].type != OPT_DURATION &&
            options[i].type != OPT_BOOL) {
            char *v = *(char **)((char *)cfg + options[i].offset);
            if (v != NULL && options[i].secret) {
                memset(v, 0, strlen(v)); /* no copy of a secret left in freed memory */
            }
            g_free(v);
        }
    }
    g_free(cfg->listen_host);
    g_free(cfg);
}

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
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        const opt_row *r = &options[i];
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

void
hv_config_print(const hv_config *cfg, FILE *out)
{
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        const opt_row *r = &options[i];
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
            value = g_strdup(*(char *const *)slot);
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
    for (size_t i = 0; i < G_N_ELEMENTS(options); i++) {
        const opt_row *r = &options[i];
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

/* haven configuration: one option table drives parsing, --help, --print-config and
 * docs/CONFIG.md. Precedence: built-in default < configuration file (--config, HAVEN_CONFIG)
 * < HAVEN_* environment < command-line flag.
 *
 * The result is an immutable hv_config built once on the main thread at startup and passed
 * (transfer none) to every module; nothing reads the environment after that.
 */
#ifndef HV_CORE_CONFIG_H
#define HV_CORE_CONFIG_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit status for invalid configuration (sysexits EX_CONFIG). */
#define HV_EXIT_CONFIG           78
/* A configuration file larger than this is refused (it is a few hundred bytes in practice). */
#define HV_CONFIG_FILE_MAX_BYTES (1024 * 1024)
/* Room for the option table's rows in hv_config.sources (config.c checks it at compile time). */
#define HV_CONFIG_MAX_OPTIONS    64

/* Where an option's effective value came from, lowest precedence first. */
typedef enum {
    HV_CONFIG_SOURCE_DEFAULT,
    HV_CONFIG_SOURCE_FILE,
    HV_CONFIG_SOURCE_ENVIRONMENT,
    HV_CONFIG_SOURCE_FLAG,
} hv_config_source;

typedef struct hv_config {
    char *config_file; /* the configuration file read ("" = none) */
    char *listen;      /* "host:port" as given */
    char *listen_host; /* parsed from listen */
    int listen_port;
    char *db_path;
    char *node_id;                /* "" = <hostname>:<port> (several nodes on PostgreSQL) */
    char *node_url;               /* "" = http://<listen> */
    int64_t node_timeout_ms;      /* a node silent this long is dead */
    char *pumpfun_frontend_api;   /* base URL, no trailing slash */
    char *pumpfun_livestream_api; /* base URL, no trailing slash */
    char *user_agent;
    int64_t catalog_ttl_ms;
    int64_t roster_max;
    int64_t roster_page_size;
    int64_t upstream_connect_timeout_ms;
    int64_t upstream_timeout_ms;
    int64_t upstream_max_body_bytes;
    int64_t snapshot_interval_ms;
    int64_t snapshot_retention_ms;
    int64_t max_body_bytes;
    int64_t max_header_bytes; /* request line + headers; lws' per-request header buffer */
    char *livekit_url;        /* wss://... (ws:// for tests) */
    char *ice_addresses;      /* comma list of local IPs for ICE; "" = all */
    int64_t jpeg_quality;
    int64_t idle_timeout_ms;
    int64_t livekit_connect_timeout_ms;
    int64_t reconnect_give_up_ms;
    int64_t streamer_grace_ms;
    int64_t audio_backlog_chunks;
    int64_t gop_cache_bytes;
    char *web_dir;        /* the web player's files, served at / ("" = none) */
    char *recordings_dir; /* where recordings are written (created if missing) */
    char *record_format;  /* auto | mp4 */
    int64_t record_queue_bytes;
    char *log_level;  /* error | warning | info | debug */
    char *log_format; /* text | json */
    /* limits (docs/API.md, "Limits") */
    int64_t max_sessions;            /* live sessions joining, active or reconnecting */
    int64_t max_viewers_per_session; /* viewer WebSockets of one session */
    int64_t max_viewers;             /* viewer WebSockets of all sessions */
    int64_t start_rate;              /* session starts per client IP per minute; 0 = no limit */
    int64_t max_viewer_message_bytes;
    /* security */
    char *api_token;      /* "" = none; from HAVEN_API_TOKEN or the file below, never a flag */
    char *api_token_file; /* "" = none */
    bool insecure_public; /* serve a non-loopback address without a token */
    char *cors_origins;   /* "" = CORS off; "*" or a comma list of exact origins */
    /* hv_config_source of each option table row, in table order (for --print-config). */
    uint8_t sources[HV_CONFIG_MAX_OPTIONS];
} hv_config;

/* What the command line asked for besides configuration. */
typedef enum {
    HV_CONFIG_ACTION_RUN,
    HV_CONFIG_ACTION_HELP,
    HV_CONFIG_ACTION_PRINT_CONFIG,
    HV_CONFIG_ACTION_VERSION,
    HV_CONFIG_ACTION_PRINT_MARKDOWN, /* --print-config-markdown: the table in docs/CONFIG.md */
} hv_config_action;

/* Builds the configuration from defaults, the configuration file named by --config or
 * HAVEN_CONFIG (none unless named), envp (NULL-terminated "NAME=value" list; NULL means none)
 * and argv. Returns (transfer full) a config, or NULL with error set (HV_ERROR, HV_ECONFIG):
 * one line naming the offending option, where it came from (file:line for the file) and its
 * value (*** for a secret). */
hv_config *hv_config_load(int argc, char **argv, char **envp, hv_config_action *action,
                          GError **error);

/* Applies the text of a configuration file to cfg, as the "file" layer: one `name = value` a
 * line, name being an option's long flag name; blank lines and lines starting with '#' are
 * skipped; a value may be double-quoted ("...", escapes \" and \\) to keep blanks or '#'.
 * name (transfer none) is what messages call the file ("haven.conf" gives "haven.conf:12").
 * secrets_ok says whether the file may hold a secret option (api-token): true only when group
 * and others cannot read it. Pure: reads nothing but text[0, len), which need not be
 * NUL-terminated. Returns false with error set (HV_ECONFIG, one line) at the first problem:
 * a line without '=', an unknown or repeated option, an invalid value, a secret in a readable
 * file, bad quoting, a NUL byte, invalid UTF-8, more than HV_CONFIG_FILE_MAX_BYTES. cfg may
 * then hold some of the file's values; the caller frees it. */
bool hv_config_apply_file_text(hv_config *cfg, const char *name, const char *text, size_t len,
                               bool secrets_ok, GError **error);

/* Where the effective value of the option with this long flag name came from; -1 for a name
 * that is not in the table. */
int hv_config_value_source(const hv_config *cfg, const char *name);
/* "default", "file", "environment" or "flag". */
const char *hv_config_source_name(hv_config_source source);
void hv_config_free(hv_config *cfg);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_config, hv_config_free)

/* Serving the API beyond this machine without a token would let anyone on the network start
 * sessions, record and delete recordings. Returns false with error set (HV_ECONFIG, one line
 * naming the address and both ways out) when cfg listens on a non-loopback address without
 * api_token and without insecure_public. main.c calls it before anything binds, also for
 * --print-config; `haven record`, which binds nothing, does not. */
bool hv_config_check_exposure(const hv_config *cfg, GError **error);
/* True when host (as in HAVEN_LISTEN) is a loopback address: "localhost", 127.0.0.0/8, ::1
 * or ::ffff:127.x.y.z. Anything else (0.0.0.0, ::, other addresses, names) is not. */
bool hv_config_host_is_loopback(const char *host);

/* Writes `haven --help` (every option with its flag, environment variable and default). */
void hv_config_print_help(FILE *out, const char *argv0);
/* Writes the effective values, one "NAME=value  # source" line each (source as
 * hv_config_source_name says), secrets masked. */
void hv_config_print(const hv_config *cfg, FILE *out);
/* Writes the Markdown option table that docs/CONFIG.md embeds. */
void hv_config_print_markdown(FILE *out);

#endif

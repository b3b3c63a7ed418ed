/* haven configuration: one option table drives parsing, --help, --print-config and
 * docs/CONFIG.md. Precedence: built-in default < HAVEN_* environment < command-line flag.
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
#define HV_EXIT_CONFIG 78

typedef struct hv_config {
    char *listen;      /* "host:port" as given */
    char *listen_host; /* parsed from listen */
    int listen_port;
    char *db_path;
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
} hv_config;

/* What the command line asked for besides configuration. */
typedef enum {
    HV_CONFIG_ACTION_RUN,
    HV_CONFIG_ACTION_HELP,
    HV_CONFIG_ACTION_PRINT_CONFIG,
    HV_CONFIG_ACTION_VERSION,
    HV_CONFIG_ACTION_PRINT_MARKDOWN, /* --print-config-markdown: the table in docs/CONFIG.md */
} hv_config_action;

/* Builds the configuration from defaults, envp (NULL-terminated "NAME=value" list; NULL means
 * none) and argv. Returns (transfer full) a config, or NULL with error set (HV_ERROR,
 * HV_ECONFIG) naming the offending option and value. */
hv_config *hv_config_load(int argc, char **argv, char **envp, hv_config_action *action,
                          GError **error);
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
/* Writes the effective values, one "NAME=value" line each, secrets masked. */
void hv_config_print(const hv_config *cfg, FILE *out);
/* Writes the Markdown option table that docs/CONFIG.md embeds. */
void hv_config_print_markdown(FILE *out);

#endif

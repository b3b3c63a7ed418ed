/* config_options.c: the option table, haven's one list of settings (see config.c), and the
 * lookups on it. Data only; a leaf of core. */
#include "config-private.h"

#include <string.h>

const opt_row hv_config_options[] = {
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
     "The store: an SQLite database file (WAL mode), or a PostgreSQL URI "
     "(postgresql://user@host:port/db?...; several nodes may share one); created or migrated "
     "at startup. The password of a URI is never printed."},
    {"node-id", "HAVEN_NODE_ID", OPT_STRING_EMPTY, "", 0, 0, NULL, false, OFF(node_id),
     "This haven's name among several sharing one PostgreSQL store (HAVEN_DB); it must be unique "
     "and should stay the same across restarts, so a restarted node recovers its own "
     "recordings. Empty: <hostname>:<listen port>. Unused with SQLite."},
    {"node-url", "HAVEN_NODE_URL", OPT_STRING_EMPTY, "", 0, 0, NULL, false, OFF(node_url),
     "The base URL (http://host:port) other nodes use to reach this one: viewer WebSockets are "
     "proxied and recording downloads redirected to it. Empty: http://<listen>. Unused with "
     "SQLite."},
    {"node-timeout", "HAVEN_NODE_TIMEOUT", OPT_DURATION, "10s", 3000, 600000, NULL, false,
     OFF(node_timeout_ms),
     "A node whose heartbeat (every 2 s) is older than this is dead: the other nodes take its "
     "sessions over. Unused with SQLite."},
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
G_STATIC_ASSERT(G_N_ELEMENTS(hv_config_options) <= HV_CONFIG_MAX_OPTIONS);
const size_t hv_config_n_options = G_N_ELEMENTS(hv_config_options);

static const char *const source_names[] = {"default", "file", "environment", "flag"};

const char *
hv_config_source_name(hv_config_source source)
{
    return (size_t)source < G_N_ELEMENTS(source_names) ? source_names[source] : "unknown";
}

const opt_row *
hv_config_find_option(const char *flag)
{
    for (size_t i = 0; i < hv_config_n_options; i++) {
        if (strcmp(hv_config_options[i].name, flag) == 0) {
            return &hv_config_options[i];
        }
    }
    return NULL;
}

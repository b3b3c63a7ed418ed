/* Internals of the http module: one exchange per request, the response API the REST handlers
 * use, access control, routing, and query validation (pure, unit-tested).
 *
 * The files are layered, top to bottom; each calls only files on lower lines, so there is no
 * call cycle between them (docs/internals/http.md):
 *     server.c      lws callbacks, intake, writing answers out
 *     rest.c        routing (hv_http_dispatch), the discovery and session endpoints
 *     recordings.c, metrics.c, openapi.c, static.c, ws_viewer.c
 *                   the other handlers
 *     ws_proxy.c    the viewer WebSocket relayed to the session's owner node (ws_viewer.c's)
 *     access.c      admission: CORS, same-origin writes, API token, start rate limit
 *     response.c    the response API (hv_http_respond*)
 *     body_cache.c, fs.c, query.c, sessions.c
 *                   leaves
 */
#ifndef HV_HTTP_PRIVATE_H
#define HV_HTTP_PRIVATE_H

#include "http.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hv_http_exchange hv_http_exchange;
typedef struct hv_http_rate hv_http_rate; /* access.c */

/* ---- shared, pre-rendered answers (body_cache.c) ------------------------------------------ */

/* An immutable rendered answer with lws headroom and, optionally, a gzip copy: an hv_buf
 * (core/buf.h), refcounted. */
typedef struct hv_buf hv_http_body;
#define HV_HTTP_GZIP_MIN_BYTES 1024
#define HV_HTTP_BODY_CACHE_MAX 64

hv_http_body *hv_http_body_new(const char *data, size_t len, bool compress);
hv_http_body *hv_http_body_ref(hv_http_body *b);
void hv_http_body_unref(hv_http_body *b);
/* The bytes to send: the gzip copy when asked for and present, else the plain ones. */
const uint8_t *hv_http_body_data(const hv_http_body *b, bool gzip, size_t *len);
bool hv_http_body_has_gzip(const hv_http_body *b);

/* Answers built from one roster, dropped when a different roster is passed in. */
typedef struct hv_http_body_cache hv_http_body_cache;
hv_http_body_cache *hv_http_body_cache_new(void);
void hv_http_body_cache_free(hv_http_body_cache *c);
/* (transfer none, nullable) */
hv_http_body *hv_http_body_cache_get(hv_http_body_cache *c, hv_pf_roster *roster, const char *key);
/* body: (transfer full) */
void hv_http_body_cache_put(hv_http_body_cache *c, hv_pf_roster *roster, const char *key,
                            hv_http_body *body);
unsigned hv_http_body_cache_size(const hv_http_body_cache *c);

/* The server: server.c creates and owns it; response.c (the body cache) and access.c (the
 * CORS origins, the rate table) read it through hv_http_exchange.srv. */
struct lws_context;
struct hv_http_server {
    const hv_config *cfg;
    hv_http_deps deps;
    struct lws_context *ctx;
    void *foreign_loops[1];
    hv_http_body_cache *bodies;
    uint8_t *file_buf;  /* LWS_PRE + HV_HTTP_FILE_CHUNK: file chunks are read into it */
    GStrv cors;         /* HAVEN_CORS_ORIGINS split, or NULL: CORS off */
    hv_http_rate *rate; /* session starts per client, or NULL: no limit */
};

/* One request and its response. Owned by the connection; freed when the response has been
 * written or the connection closes, whichever comes first (the parked waiter is cancelled). */
struct hv_http_exchange {
    hv_http_server *srv;
    const hv_config *cfg;
    const hv_http_deps *deps;
    struct lws *wsi;
    char method[8];
    char *path;
    GPtrArray *query; /* "name=value" strings, URL-decoded, in request order */
    GByteArray *req_body;
    int64_t content_length; /* -1: none */
    /* response */
    bool in_dispatch; /* inside the request callback: answer is written without a poll trip */
    bool responded;
    bool headers_sent;
    bool close_after;
    int status;
    const char *content_type;
    GPtrArray *headers;   /* alternating name, value (owned) */
    GString *body;        /* LWS_PRE bytes of headroom, then the payload */
    hv_http_body *shared; /* or: a shared pre-rendered body (ref) */
    bool accepts_gzip;    /* the client sent Accept-Encoding: gzip */
    char *range;          /* the Range header, or NULL */
    char *if_none_match;  /* the If-None-Match header, or NULL */
    char *cors_origin;    /* the request's Origin when HAVEN_CORS_ORIGINS allows it, or NULL */
    /* parked on the catalog or on a starting live session */
    hv_pf_waiter *waiter;
    hv_live_op *live_op;
    hv_cluster_op *cluster_op;
    /* or: a file streamed in chunks as the socket takes them (hv_http_respond_file) */
    int file_fd;      /* -1: none */
    int64_t file_pos; /* next byte to send */
    int64_t file_end; /* one past the last byte to send */
    /* handler parameters */
    int64_t offset, limit;
    bool include_nsfw;
    char mint[64];
};

/* ---- responses (response.c) ------------------------------------------------------------- */
void hv_http_add_header(hv_http_exchange *ex, const char *name, const char *value);
/* Takes a copy of body. */
void hv_http_respond(hv_http_exchange *ex, int status, const char *content_type, const char *body,
                     size_t len);
/* (transfer full) json */
void hv_http_respond_json(hv_http_exchange *ex, int status, json_t *json);
/* {"detail": "<formatted text>"} */
void hv_http_respond_detail(hv_http_exchange *ex, int status, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
/* Answers with a shared body (a reference is taken); gzip when the client accepts it. */
void hv_http_respond_shared(hv_http_exchange *ex, int status, const char *content_type,
                            hv_http_body *body);
/* The server's cache of pre-rendered answers. */
hv_http_body_cache *hv_http_exchange_body_cache(hv_http_exchange *ex);
/* Answers with bytes [offset, offset + length) of fd, read (pread, HV_HTTP_FILE_CHUNK at a
 * time) and written as the socket takes them, so a file of any size costs one chunk of memory.
 * Content-Length is length; headers added before are sent too. fd: (transfer full). */
void hv_http_respond_file(hv_http_exchange *ex, int status, const char *content_type, int fd,
                          int64_t offset, int64_t length);
#define HV_HTTP_FILE_CHUNK (64 * 1024)
/* {"detail": errors} with status 422 (errors: transfer full, FastAPI's validation list). */
void hv_http_respond_validation(hv_http_exchange *ex, json_t *errors);
/* The seed's error shape {"success": false, "error": message} plus FastAPI's "detail". */
void hv_http_respond_session_error(hv_http_exchange *ex, int status, const char *message);
/* Starts a response whose body the caller appends to the returned string (after its LWS_PRE
 * bytes of headroom) and then sends with hv_http_send(): lets list answers concatenate
 * pre-rendered JSON without copies. */
GString *hv_http_begin(hv_http_exchange *ex, int status, const char *content_type);
/* Marks the answer complete; server.c writes it out. */
void hv_http_send(hv_http_exchange *ex);

/* ---- sessions.c: live-session answers, error statuses ------------------------------------- */

/* The HTTP status for an HV_E* code: the one mapping (404 not found, 502 bad upstream answer,
 * 503 try later, 504 upstream timeout, 500 haven's own failure...). */
int hv_http_status_for_error(int code);
/* (transfer full) The start answer: success, mint_id, room_name, participant_sid, session_id,
 * record_session, stream_info (the whole stream object). */
json_t *hv_http_session_started_json(hv_live_session *s);
/* (transfer full) The recording switch's answer: success, mint_id, recording, and where the
 * recording stands (active, status, recording_id, bytes, duration_seconds, ...). */
json_t *hv_http_recording_answer_json(hv_live_session *s, bool on);
/* (transfer full) {"count", "sessions": [...]} of the joined sessions. */
json_t *hv_http_active_json(hv_live *live, hv_cluster *cluster);
/* What a node publishes of a session for the others (hv_cluster_render_fn). */
json_t *hv_http_cluster_report(hv_live_session *s, void *user_data);

/* ---- request intake (server.c) ------------------------------------------------------------ */

/* True when an Accept-Encoding value allows gzip ("gzip", "gzip;q=0.5", "*"; not "q=0"). */
bool hv_http_accepts_gzip(const char *accept_encoding);

/* ---- viewer WebSocket (ws_viewer.c) ------------------------------------------------------ */
typedef struct hv_ws_viewer hv_ws_viewer;
struct lws;
bool hv_ws_path_matches(const char *path);
/* Whether one more viewer of the stream path names fits HAVEN_MAX_VIEWERS and
 * HAVEN_MAX_VIEWERS_PER_SESSION. Returns 0 when it does (or when path names no session: the
 * viewer is then told so after the upgrade), else 503 with why (the detail text) filled in. */
int hv_ws_admit(const hv_config *cfg, const hv_http_deps *deps, const char *path, char *why,
                size_t why_len);
/* Handles the WebSocket callback reasons for one connection; *slot is its viewer state. */
int hv_ws_callback(struct lws *wsi, int reason, hv_ws_viewer **slot, const hv_config *cfg,
                   const hv_http_deps *deps, void *in, size_t len);

/* ---- viewer WebSocket proxy (ws_proxy.c) -------------------------------------------------- */

/* A viewer whose mint's session another node owns is relayed to the owner's viewer socket
 * (issue 17; docs/internals/http.md). The request header marking such an upgrade: the owner
 * never proxies it again. */
#define HV_WS_PROXY_HEADER          "X-Haven-Proxied"
/* Toward the viewer: messages and bytes queued at most (the oldest video goes first). */
#define HV_WS_PROXY_MAX_MESSAGES    64
#define HV_WS_PROXY_MAX_BYTES       ((size_t)4 * 1024 * 1024)
/* Toward the owner (pings): queued at most, also while connecting; more closes with 1008. */
#define HV_WS_PROXY_UP_MAX_MESSAGES 16
#define HV_WS_PROXY_UP_MAX_BYTES    ((size_t)64 * 1024)
/* The upstream connect (lookup, TCP, upgrade) bound; then the viewer gets 1011. */
#define HV_WS_PROXY_CONNECT_MS      5000
/* Bytes in front of each queued message's payload (lws_write's LWS_PRE, asserted). */
#define HV_WS_PROXY_HEADROOM        32

/* A bounded queue of whole WebSocket messages with a drop rule. Pure (unit-tested). */
typedef struct hv_ws_proxy_queue hv_ws_proxy_queue;
typedef enum {
    HV_WS_PROXY_DROP_NONE,    /* nothing is dropped: over the bound, push fails */
    HV_WS_PROXY_DROP_JPEG,    /* every binary message is a video frame: the oldest goes first */
    HV_WS_PROXY_DROP_ENCODED, /* binary video (10-byte header, kind 1) goes first, with the frames
                               * after it up to the next key frame; then other binary messages */
} hv_ws_proxy_drop;
hv_ws_proxy_queue *hv_ws_proxy_queue_new(unsigned max_messages, size_t max_bytes,
                                         hv_ws_proxy_drop drop);
void hv_ws_proxy_queue_free(hv_ws_proxy_queue *q);
/* Appends a message (buf: transfer full; HV_WS_PROXY_HEADROOM bytes, then the payload), then
 * drops what the rule allows until the queue is within its bounds. Text is never dropped: false
 * when text alone exceeds them (the message stays queued; the caller closes the viewer). */
bool hv_ws_proxy_queue_push(hv_ws_proxy_queue *q, GByteArray *buf, bool binary);
/* (transfer full) The oldest message (with its headroom), or NULL. */
GByteArray *hv_ws_proxy_queue_pop(hv_ws_proxy_queue *q, bool *binary);
unsigned hv_ws_proxy_queue_length(const hv_ws_proxy_queue *q);
size_t hv_ws_proxy_queue_bytes(const hv_ws_proxy_queue *q); /* payload bytes queued */
uint64_t hv_ws_proxy_queue_dropped(const hv_ws_proxy_queue *q);

/* (transfer full) The owner's viewer socket URL: owner_base ("http://host:port" or ws://;
 * trailing slashes ignored) as ws://, then path, then args ("name=value", URL-decoded,
 * NULL-terminated, nullable) percent-encoded as a query. NULL for another scheme (https: the
 * proxy speaks plain ws:// between nodes). Pure. */
char *hv_ws_proxy_url(const char *owner_base, const char *path, const char *const *args);
/* Whether the upgrade request on wsi carries HV_WS_PROXY_HEADER (then it must not be proxied). */
bool hv_ws_proxy_request_is_proxied(struct lws *wsi);

typedef struct hv_ws_proxy hv_ws_proxy;
typedef struct {
    const char *url;           /* ws://owner/api/live-sessions/ws/live/<mint>?<query> */
    const char *authorization; /* nullable: the viewer's Authorization header, passed on */
    bool encoded;              /* ?mode=encoded: HV_WS_PROXY_DROP_ENCODED, else _JPEG */
    size_t max_viewer_message; /* HAVEN_MAX_VIEWER_MESSAGE (0: 4096): larger closes with 1009 */
    const char *mint;          /* log context */
    uint64_t viewer_id;        /* log context */
    /* 0: the defaults HV_WS_PROXY_MAX_MESSAGES, HV_WS_PROXY_MAX_BYTES, HV_WS_PROXY_CONNECT_MS */
    unsigned max_messages;
    size_t max_bytes;
    int connect_timeout_ms;
} hv_ws_proxy_params;
/* Starts relaying the established viewer WebSocket on viewer (a server connection) to
 * params->url. (transfer full: the viewer connection's, until hv_ws_proxy_free) or NULL + error
 * (a bad URL, no client context). Failures after this reach the viewer as a close (1011 owner
 * node unreachable, 1013 for the owner's 503). */
hv_ws_proxy *hv_ws_proxy_new(struct lws *viewer, const hv_ws_proxy_params *params, GError **error);
/* The viewer's SERVER_WRITEABLE and RECEIVE callbacks; return what the callback returns. */
int hv_ws_proxy_on_writable(hv_ws_proxy *p);
int hv_ws_proxy_on_receive(hv_ws_proxy *p, const void *in, size_t len);
/* The viewer connection closed (CLOSED): closes the upstream connection too. NULL-safe. */
void hv_ws_proxy_free(hv_ws_proxy *p);
/* Proxies in memory (proxied viewers, plus upstream connections still closing). */
unsigned hv_ws_proxy_live_count(void);
/* Destroys the shared client context (every upstream connection goes). Call after the server's
 * context is destroyed (its viewers closed), before exit. */
void hv_ws_proxy_shutdown(void);

/* ---- access control and request limits (access.c; pure parts unit-tested) ---------------- */

/* The answer to a request without the API token (docs/API.md). */
#define HV_HTTP_TOKEN_DETAIL "Missing or invalid API token"
/* Whether path needs the API token when one is set: /api and everything under /api/ (the
 * viewer WebSocket too), and /metrics. The web player's files and /healthz stay open. */
bool hv_http_path_needs_token(const char *path);
/* Compares a presented token with the configured one in time that depends only on the
 * configured token's length, so response times do not reveal how much of a guess was right.
 * given: nullable (false). */
bool hv_http_token_matches(const char *expected, const char *given);
/* The token of an "Authorization: Bearer <token>" value (scheme case-insensitive), pointing
 * into value, or NULL for any other value. */
const char *hv_http_bearer_token(const char *authorization);
/* Whether origin is in allow (a NULL-terminated list of exact origins, or {"*"}), compared
 * case-insensitively as browsers normalise scheme and host. allow: nullable (CORS off). */
bool hv_http_origin_allowed(const char *const *allow, const char *origin);
/* Whether origin ("http://127.0.0.1:8000") names the host the request was sent to (its Host
 * header): a page of this server itself. */
bool hv_http_same_origin(const char *origin, const char *host);
/* (transfer full) text with the value of every "token=" in it (also "access_token="), and any
 * JWT, cut to its first 6 characters and "…", for log lines that might carry a URL. Same rule
 * as hv_log_mask_secrets(), which the log writer applies to every line anyway. */
char *hv_http_mask_tokens(const char *text);
/* Whether the request on wsi carries the API token expected: in "Authorization: Bearer", or as
 * query_token (nullable), the "token" query parameter the caller accepts for a GET/HEAD (links
 * and <video src> cannot set headers) and a WebSocket upgrade. */
bool hv_http_request_has_token(struct lws *wsi, const char *expected, const char *query_token);
/* Decides whether a request may be dispatched, before its body is read, and removes "token="
 * from its query. Returns false when it has been answered already: a CORS preflight (204), a
 * cross-origin write (403), no API token (401), too many session starts (429). Sets
 * ex->cors_origin for an allowed Origin. */
bool hv_http_admit_request(hv_http_exchange *ex, struct lws *wsi);

/* Session starts per client: a token bucket per IP address holding up to per_minute starts and
 * refilled at per_minute per minute, in a table of at most max_clients addresses. When the table
 * is full, addresses whose bucket has refilled are forgotten first (they are as good as new),
 * then the one idle longest. Main thread only. */
#define HV_HTTP_RATE_CLIENTS 4096
hv_http_rate *hv_http_rate_new(int64_t per_minute, unsigned max_clients);
void hv_http_rate_free(hv_http_rate *r);
/* Takes one start for key at now_ms (monotonic). Returns 0 when allowed, else how many ms
 * until the next start would be (nothing is taken then). */
int64_t hv_http_rate_take(hv_http_rate *r, const char *key, int64_t now_ms);
unsigned hv_http_rate_size(const hv_http_rate *r);

/* ---- routing (rest.c) ------------------------------------------------------------------- */
void hv_http_dispatch(hv_http_exchange *ex);
/* The route table, for checks that every route is documented: route i's method ("GET") and
 * path pattern ("/api/recordings/{id}"); false past the last one. */
bool hv_http_route(size_t i, const char **method, const char **path);
/* The viewer WebSocket's path pattern, as GET /api lists it after "WS ". */
#define HV_HTTP_WS_ROUTE "/api/live-sessions/ws/live/{mint_id}"

/* ---- the API description (openapi.c) ----------------------------------------------------- */

/* src/http/openapi.json's bytes (NUL-terminated), embedded by tools/embed.py. */
extern const char hv_http_openapi_json[];
extern const size_t hv_http_openapi_json_len;
/* (transfer full, nullable) The parsed document with info.version set to version (nullable:
 * HAVEN_VERSION), or NULL with why in error. */
json_t *hv_http_openapi_load(const char *version, char *error, size_t error_len);
/* GET /openapi.json: the document, with an ETag; 304 for a matching If-None-Match. */
void hv_http_handle_openapi(hv_http_exchange *ex);

/* ---- recordings (recordings.c) ----------------------------------------------------------- */

/* GET /api/recordings (list), GET and DELETE /api/recordings/{id}, GET .../{id}/file. */
void hv_http_handle_recordings(hv_http_exchange *ex);
void hv_http_handle_recording(hv_http_exchange *ex, const char *id);
void hv_http_handle_recording_delete(hv_http_exchange *ex, const char *id);
void hv_http_handle_recording_file(hv_http_exchange *ex, const char *id);

typedef enum {
    HV_HTTP_RANGE_NONE,          /* no usable Range (absent, malformed, several): send all */
    HV_HTTP_RANGE_PARTIAL,       /* send [*first, *last] with 206 */
    HV_HTTP_RANGE_UNSATISFIABLE, /* 416, with a Content-Range that gives the size */
} hv_http_range;
/* Interprets a Range header value (nullable) for a representation of size bytes, as RFC 9110
 * section 14 says for one range: "bytes=a-b", "bytes=a-", "bytes=-n" (unit case-insensitive,
 * optional blanks around the range). A last position past the end is clamped; a suffix longer
 * than the file means all of it. Numbers too large for 64 bits count as "past the end". Pure. */
hv_http_range hv_http_parse_range(const char *header, int64_t size, int64_t *first, int64_t *last);

/* ---- GET /metrics (metrics.c): Prometheus text format ------------------------------------ */
void hv_http_handle_metrics(hv_http_exchange *ex);

/* ---- files confined to a directory (fs.c) ------------------------------------------------- */

/* Opens path for reading when it names a regular file inside root, both resolved with
 * realpath(), so ".." components and symlinks that lead outside are refused. Returns the file
 * descriptor (O_CLOEXEC) or -1 (errno set; EACCES when the file is outside root). */
int hv_http_open_inside(const char *root, const char *path);
/* Whether real lies strictly inside root (both already resolved with realpath()): below it,
 * and not root itself. Pure. */
bool hv_http_path_inside(const char *root, const char *real);

/* ---- the web player's files (static.c) --------------------------------------------------- */

/* Whether rel ("/js/app.js") is a name static.c would look up: plain characters, no hidden or
 * ".." segments, at most 256 bytes. */
bool hv_http_static_path_ok(const char *rel);
/* Answers with the file rel names inside HAVEN_WEB_DIR and returns true; false (nothing sent)
 * when there is no such servable file. */
bool hv_http_serve_static(hv_http_exchange *ex, const char *rel);

/* ---- query validation (query.c) --------------------------------------------------------- */

/* The value of the last "name=..." in query, or NULL. */
const char *hv_http_query_get(const GPtrArray *query, const char *name);
/* Reads an integer parameter (default def when absent) in [min, max]. On a bad value appends a
 * FastAPI-style error object to errors and returns false. */
bool hv_http_query_int(const GPtrArray *query, const char *name, int64_t def, int64_t min,
                       int64_t max, int64_t *out, json_t *errors);
/* Reads a boolean (true/false, 1/0, yes/no, on/off, any case). */
bool hv_http_query_bool(const GPtrArray *query, const char *name, bool def, bool *out,
                        json_t *errors);
/* The message of a value_error for a mint_id that is not a Solana address. */
#define HV_HTTP_MINT_ID_MESSAGE \
    "mint_id must be a Solana address: 32 to 44 base58 characters that decode to 32 bytes"
/* A FastAPI-style validation error entry: {"type","loc":[where,name],"msg","input"}. */
json_t *hv_http_validation_error(const char *where, const char *name, const char *type,
                                 const char *msg, const char *input);

#endif

/* livekit internals shared by the module's files and its tests: the signalling transport
 * (signal.c) and small helpers. Not for other modules.
 *
 * Main thread only, like the rest of the module.
 */
#ifndef HV_LIVEKIT_PRIVATE_H
#define HV_LIVEKIT_PRIVATE_H

#include "livekit-proto.h"
#include "livekit.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Signal protocol version announced in the query (spec §2.4). */
#define HV_LK_PROTOCOL_VERSION    17
/* Largest SignalResponse accepted; larger → HV_LK_PROTOCOL_ERROR. A JoinResponse lists every
 * participant of the room, about 100 bytes each (spec Appendix A.14): 16 MiB holds a room of
 * 50,000 with room to spare. The buffer exists only while such a message is reassembled. */
#define HV_LK_MAX_MESSAGE_BYTES   ((size_t)16 * 1024 * 1024)
/* Largest SignalRequest we send (an answer SDP is a few kB). */
#define HV_LK_MAX_REQUEST_BYTES   ((size_t)1024 * 1024)
/* Outgoing messages waiting for the socket, by count and by bytes; beyond either, a request is
 * refused with HV_EAGAIN. A burst of local candidates (hundreds on a host with many addresses)
 * fits; a connection that stops draining does not grow without bound. */
#define HV_LK_MAX_QUEUED_MESSAGES 2048
#define HV_LK_MAX_QUEUED_BYTES    ((size_t)2 * 1024 * 1024)
/* Queue slots local candidates may not take: a burst of candidates (a host with many
 * addresses) must leave room for the pings, answers and subscriptions that keep the room up. */
#define HV_LK_QUEUE_RESERVE       64
/* How long a closing connection may take to flush its last messages and the close frame. */
#define HV_LK_CLOSE_GRACE_S       3

/* (transfer full) The loggable form of a token: its first 8 characters and "…". */
char *hv_lk_token_redact(const char *token);

/* ---- the stage (stage.c): publishers, the streamer, the tracks to receive ------------------- */

typedef struct hv_lk_stage hv_lk_stage;

/* mint (nullable): the stream's mint, a hint for the host's identity. streamer (nullable): the
 * streamer an earlier connection of the same session chose; it keeps its place. */
hv_lk_stage *hv_lk_stage_new(const char *mint, const char *streamer);
void hv_lk_stage_free(hv_lk_stage *st);
/* Ourselves (from the JoinResponse): never a candidate. */
void hv_lk_stage_set_self(hv_lk_stage *st, const char *sid, const char *identity);
/* One participant snapshot (JoinResponse.other_participants or an update). */
void hv_lk_stage_apply(hv_lk_stage *st, const Livekit__ParticipantInfo *pi);
/* Whether identity is a participant the stage remembers (its trackless snapshots matter). */
bool hv_lk_stage_knows(const hv_lk_stage *st, const char *identity);

/* What hv_lk_stage_update() found. */
typedef struct {
    GPtrArray *subscribe;   /* (element-type char*, owned) track sids to subscribe */
    GPtrArray *unsubscribe; /* (element-type char*, owned) track sids to unsubscribe */
    bool changed;           /* the streamer or its chosen tracks changed: report them */
    char *left;             /* the streamer stopped publishing (or left): its identity */
} hv_lk_stage_delta;

/* Re-evaluates the streamer and its tracks after snapshots were applied. */
void hv_lk_stage_update(hv_lk_stage *st, hv_lk_stage_delta *out);
void hv_lk_stage_delta_clear(hv_lk_stage_delta *d);
/* The streamer's identity (NULL before the first choice) and participant sid (NULL while it
 * does not publish). */
const char *hv_lk_stage_streamer(const hv_lk_stage *st, const char **sid);
/* (transfer container: g_free) The chosen tracks, video (if any) first; the strings stay valid
 * until the next hv_lk_stage_apply(). */
hv_lk_track *hv_lk_stage_tracks(const hv_lk_stage *st, size_t *n);
/* The codecs of one of the streamer's tracks (MIME types, primary first); NULL if unknown. */
const char *const *hv_lk_stage_track_codecs(const hv_lk_stage *st, const char *track_sid);

/* ---- big rooms (wire.c) --------------------------------------------------------------------- */

/* Whether a trackless participant of this identity must still be decoded. */
typedef bool (*hv_lk_wire_keep_fn)(const char *identity, void *data);
/* For a large SignalResponse carrying join or update: (transfer full) a copy without the
 * ParticipantInfo entries that publish nothing and that keep() does not want, *dropped = how
 * many were left out. NULL (decode buf as it is) when the message is small, carries no such
 * list, drops nothing, or cannot be walked. */
GBytes *hv_lk_wire_filter_participants(const uint8_t *buf, size_t len, hv_lk_wire_keep_fn keep,
                                       void *data, size_t *dropped);

/* ---- the WebSocket transport (signal.c) --------------------------------------------------- */

/* One signalling WebSocket. It carries opaque binary messages; room.c gives them meaning.
 * Owned by its room; the lws connection may outlive hv_lk_signal_free() for a moment (flushing
 * and closing), during which no callback is made. */
typedef struct hv_lk_signal hv_lk_signal;

typedef struct {
    /* The upgrade succeeded (101). */
    void (*on_open)(void *user_data);
    /* One complete binary message (reassembled; at most HV_LK_MAX_MESSAGE_BYTES). buf is valid
     * during the call only. */
    void (*on_message)(const uint8_t *buf, size_t len, void *user_data);
    /* The connection failed or closed; called at most once, and nothing is called after it.
     * The owner must still call hv_lk_signal_free() (it may do so from inside this callback,
     * or from on_message). reason is one of CONNECT_FAILED, UNAUTHORIZED, SIGNAL_LOST,
     * PROTOCOL_ERROR. */
    void (*on_closed)(hv_lk_close_reason reason, const char *detail, void *user_data);
} hv_lk_signal_callbacks;

/* The parts of a LiveKit signalling URL (see hv_lk_signal_parse_url). */
typedef struct {
    bool tls;          /* wss */
    char *host;        /* without brackets for IPv6 */
    int port;          /* explicit or 443/80 */
    char *host_header; /* Host: value ("host", "host:port", "[v6]:port") */
    char *path;        /* "/…/rtc?access_token=…&protocol=17&…" */
} hv_lk_url;

/* Builds the /rtc URL of spec §2.1/2.2 from a project URL (ws, wss, http or https; any path
 * kept, then "/rtc") and a token. Returns false + error (HV_ERROR, HV_EINVAL) for another scheme
 * or no host. */
bool hv_lk_signal_parse_url(const char *url, const char *token, hv_lk_url *out, GError **error);
void hv_lk_url_clear(hv_lk_url *u);

/* Starts connecting (name lookup, TCP, TLS, upgrade) on the thread-default main context, which
 * must be the one every room of the process uses. Returns (transfer full) the signal, or NULL +
 * error (HV_ERROR: HV_EINVAL for a bad URL or another main context, HV_EIO when lws cannot
 * create its context); no callback is made for a failure returned here, and none is made from
 * inside this call: later failures arrive through on_closed. */
hv_lk_signal *hv_lk_signal_new(const char *url, const char *token, const hv_lk_signal_callbacks *cb,
                               void *user_data, GError **error);
/* Queues one binary message (copied). Returns 0, HV_EAGAIN when HV_LK_MAX_QUEUED_MESSAGES are
 * already waiting, HV_EINVAL when too large, or HV_ECLOSED after close. Messages queued before
 * the upgrade completes are sent once it does. */
int hv_lk_signal_send(hv_lk_signal *sig, const uint8_t *buf, size_t len);
/* How many messages wait to be sent (0 for NULL). */
unsigned hv_lk_signal_queued(const hv_lk_signal *sig);
/* Detaches the owner: no callback fires any more, from now on. flush: send what is queued
 * first; then close with 1000 (bounded by HV_LK_CLOSE_GRACE_S). A connection still opening is
 * abandoned. Safe from inside the signal's own callbacks. NULL-safe. */
void hv_lk_signal_free(hv_lk_signal *sig, bool flush);

/* Signals whose memory still exists (owned, or detached and closing). For tests and shutdown. */
unsigned hv_lk_signal_live_count(void);
/* Destroys the module's lws client context (created by the first hv_lk_signal_new). Call only
 * when no room exists; open connections are dropped. Optional at exit. */
void hv_lk_signal_shutdown(void);

#endif

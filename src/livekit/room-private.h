/* The room's state (room.c owns it; room_info.c reads it) and test hooks into the room state
 * machine: a room without a socket, fed scripted SignalResponse bytes, whose outgoing
 * SignalRequests are captured for inspection. Also the entry point a fuzzer uses. Main thread
 * only; not for other modules.
 */
#ifndef HV_LIVEKIT_ROOM_PRIVATE_H
#define HV_LIVEKIT_ROOM_PRIVATE_H

#include "livekit-private.h"

typedef enum {
    ROOM_CONNECTING, /* WebSocket opening */
    ROOM_OPEN,       /* WebSocket open, waiting for join */
    ROOM_JOINED,
    ROOM_CLOSED, /* failed, left or freed: nothing more happens */
} room_state;

struct hv_lk_room {
    hv_lk_room_callbacks cb;
    void *user_data;
    GMainContext *ctx; /* thread-default at creation; timers and idles attach here */
    char *token;       /* newest token */
    int64_t connect_timeout_ms;
    char *log_name; /* log context: room name (NULL until known) */
    char *log_mint; /* log context: the stream's mint (nullable) */
    room_state state;
    hv_lk_signal *signal; /* NULL when detached (tests) or closed */
    GPtrArray *sent;      /* detached rooms: captured SignalRequests (GBytes*) */
    hv_lk_join_info join;
    hv_lk_stage *stage;
    GSource *connect_timer;
    GSource *ping_timer;
    GSource *ping_timeout_timer;
    GSource *closed_idle;
    int64_t second_ms;  /* length of a protocol "second" (tests shorten it) */
    int64_t last_rx_ms; /* monotonic time of the last message */
    hv_lk_room_stats stats;
    hv_lk_close_reason close_reason;
    bool close_retryable;
    char *close_detail;
    int depth;  /* nesting of dispatches that may call back into the caller */
    bool freed; /* hv_lk_room_free() was called; release at depth 0 */
};

/* ICE servers of a JoinResponse as webrtcbin URIs (ice.c). */
char **hv_lk_ice_servers_to_gst(Livekit__ICEServer *const *servers, size_t n, GString *skipped);

/* A room in the "WebSocket open, waiting for join" state with no socket: nothing is sent on the
 * network; every SignalRequest the room would send is appended to hv_lk_room_sent(). cfg->url
 * is ignored; cfg->token and cfg->connect_timeout_ms apply (the join timeout). Callbacks behave
 * exactly as for hv_lk_room_new(). Returns (transfer full); free with hv_lk_room_free(). */
hv_lk_room *hv_lk_room_new_detached(const hv_lk_room_config *cfg, const hv_lk_room_callbacks *cb,
                                    void *user_data);

/* Feeds one serialized SignalResponse, as if it had arrived on the socket. Returns 0, HV_EPROTO
 * when it does not decode (the room then closes with HV_LK_PROTOCOL_ERROR), or HV_ECLOSED when
 * the room is closed. */
int hv_lk_room_handle_message(hv_lk_room *room, const uint8_t *buf, size_t len);

/* (transfer none) The serialized SignalRequests a detached room has sent, oldest first (GBytes*).
 * Tests may clear it with g_ptr_array_set_size(…, 0). NULL for a room with a socket. */
GPtrArray *hv_lk_room_sent(hv_lk_room *room);

/* Scales the protocol's seconds (ping_interval, ping_timeout) to unit_ms milliseconds each, so
 * tests can run the keepalive in a fraction of a second. Default 1000. Call before join. */
void hv_lk_room_set_second_ms(hv_lk_room *room, int64_t unit_ms);

/* Short names for logs and tests: "SIGNAL_LOST", … */
const char *hv_lk_close_reason_name(hv_lk_close_reason reason);

#endif

/* Test hooks into the room state machine (room.c): a room without a socket, fed scripted
 * SignalResponse bytes, whose outgoing SignalRequests are captured for inspection. Also the entry
 * point a fuzzer uses. Main thread only; not for other modules.
 */
#ifndef HV_LIVEKIT_ROOM_PRIVATE_H
#define HV_LIVEKIT_ROOM_PRIVATE_H

#include "livekit-private.h"

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

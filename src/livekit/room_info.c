/* room_info.c: what a room says about itself (token, tracks, streamer, state, counters) and
 * the test hooks that only read or set its fields. A leaf below room.c. Main thread only. */
#include "room-private.h"

const char *
hv_lk_close_reason_name(hv_lk_close_reason reason)
{
    switch (reason) {
    case HV_LK_CLOSED_BY_CALLER:
        return "CLOSED_BY_CALLER";
    case HV_LK_CONNECT_FAILED:
        return "CONNECT_FAILED";
    case HV_LK_CONNECT_TIMEOUT:
        return "CONNECT_TIMEOUT";
    case HV_LK_UNAUTHORIZED:
        return "UNAUTHORIZED";
    case HV_LK_SIGNAL_LOST:
        return "SIGNAL_LOST";
    case HV_LK_LEAVE_RECONNECT:
        return "LEAVE_RECONNECT";
    case HV_LK_LEAVE_DISCONNECT:
        return "LEAVE_DISCONNECT";
    case HV_LK_PROTOCOL_ERROR:
        return "PROTOCOL_ERROR";
    }
    return "UNKNOWN";
}

const char *
hv_lk_room_token(const hv_lk_room *room)
{
    g_return_val_if_fail(room != NULL, NULL);
    return room->token;
}

const char *const *
hv_lk_room_track_codecs(const hv_lk_room *room, const char *track_sid)
{
    g_return_val_if_fail(room != NULL && track_sid != NULL, NULL);
    return hv_lk_stage_track_codecs(room->stage, track_sid);
}

const char *
hv_lk_room_streamer_identity(const hv_lk_room *room)
{
    g_return_val_if_fail(room != NULL, NULL);
    return hv_lk_stage_streamer(room->stage, NULL);
}

bool
hv_lk_room_is_closed(const hv_lk_room *room)
{
    g_return_val_if_fail(room != NULL, true);
    return room->state == ROOM_CLOSED;
}

void
hv_lk_room_get_stats(const hv_lk_room *room, hv_lk_room_stats *out)
{
    g_return_if_fail(room != NULL && out != NULL);
    *out = room->stats;
}

GPtrArray *
hv_lk_room_sent(hv_lk_room *room)
{
    g_return_val_if_fail(room != NULL, NULL);
    return room->sent;
}

void
hv_lk_room_set_second_ms(hv_lk_room *room, int64_t unit_ms)
{
    g_return_if_fail(room != NULL && unit_ms > 0);
    room->second_ms = unit_ms;
}

/* The LiveKit room state machine (spec §4, §5, §6.1, §7, §10): join, the participant table,
 * choosing and subscribing to the streamer, server offers and candidates handed to the caller,
 * answers and candidates sent back, keepalive, token refresh, leave.
 *
 *   CONNECTING ──ws open──▶ OPEN ──join──▶ JOINED ──(any loss, leave, timeout, error)──▶ CLOSED
 *
 * Main thread only: everything runs on the thread-default GMainContext captured at creation
 * (lws delivers socket events there too). The room owns its signal (signal.c), its timers, the
 * stage (stage.c: the publishers, keyed by identity since SIDs change when a publisher
 * reconnects, the streamer and the tracks chosen from it) and copies of everything it reports.
 * Big rooms' participant lists are thinned at the wire level before decoding (wire.c). Every exit
 * goes through room_fail(), which closes the socket and delivers on_closed from an idle source,
 * never from inside the caller's own call.
 *
 * Re-entrancy: a callback may call hv_lk_room_free(). The room then stops processing (state
 * CLOSED) and its memory is released when the outermost dispatch unwinds (depth counter), so
 * nothing touches freed memory and no further callback fires.
 */
#include "room-private.h"

#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "livekit-proto.h"

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define HV_LK_DEFAULT_CONNECT_TIMEOUT_MS 15000
/* Used when the server leaves them out (the OSS server sends 5 / 15). */
#define HV_LK_DEFAULT_PING_INTERVAL_S    5
#define HV_LK_DEFAULT_PING_TIMEOUT_S     15
static void room_log(const hv_lk_room *room, GLogLevelFlags level, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static void room_fail(hv_lk_room *room, hv_lk_close_reason reason, bool retryable, const char *fmt,
                      ...) G_GNUC_PRINTF(4, 5);

/* ---- small helpers ------------------------------------------------------------------------- */

static void
room_log(const hv_lk_room *room, GLogLevelFlags level, const char *fmt, ...)
{
    hv_log_ctx ctx = {.mint = room->log_mint, .room = room->log_name};
    va_list ap;
    va_start(ap, fmt);
    hv_log_structured_va(G_LOG_DOMAIN, level, &ctx, fmt, ap);
    va_end(ap);
}

static const char *
enum_name(const ProtobufCEnumDescriptor *desc, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, value);
    return v != NULL ? v->name : "?";
}

static const char *
response_name(const Livekit__SignalResponse *msg)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &livekit__signal_response__descriptor, (unsigned)msg->message_case);
    return f != NULL ? f->name : "unknown";
}

static GSource *
room_timeout(hv_lk_room *room, int64_t ms, GSourceFunc fn)
{
    GSource *src = g_timeout_source_new((guint)CLAMP(ms, 0, (int64_t)G_MAXUINT));
    g_source_set_callback(src, fn, room, NULL);
    g_source_attach(src, room->ctx);
    return src;
}

static void
clear_source(GSource **src)
{
    if (*src != NULL) {
        g_source_destroy(*src);
        g_source_unref(*src);
        *src = NULL;
    }
}

static void
join_info_clear(hv_lk_join_info *j)
{
    g_free(j->room_name);
    g_free(j->room_sid);
    g_free(j->participant_sid);
    g_free(j->identity);
    g_strfreev(j->ice_servers);
    g_free(j->server_version);
    g_free(j->server_region);
    memset(j, 0, sizeof(*j));
}

static bool
retryable_for(hv_lk_close_reason reason)
{
    return reason != HV_LK_UNAUTHORIZED && reason != HV_LK_LEAVE_DISCONNECT &&
           reason != HV_LK_CLOSED_BY_CALLER;
}

/* ---- lifetime and the single exit path ----------------------------------------------------- */

static void
room_release(hv_lk_room *room)
{
    clear_source(&room->connect_timer);
    clear_source(&room->ping_timer);
    clear_source(&room->ping_timeout_timer);
    clear_source(&room->closed_idle);
    hv_lk_signal_free(room->signal, false);
    if (room->sent != NULL) {
        g_ptr_array_unref(room->sent);
    }
    join_info_clear(&room->join);
    hv_lk_stage_free(room->stage);
    g_free(room->close_detail);
    g_free(room->token);
    g_free(room->log_name);
    g_free(room->log_mint);
    g_main_context_unref(room->ctx);
    g_free(room);
}

/* Ends a dispatch that may have called the caller; releases the room if it was freed inside. */
static void
leave_dispatch(hv_lk_room *room)
{
    room->depth--;
    if (room->freed && room->depth == 0) {
        room_release(room);
    }
}

static gboolean
on_closed_idle(gpointer data)
{
    hv_lk_room *room = data;
    g_source_unref(room->closed_idle); /* the dispatch holds its own reference */
    room->closed_idle = NULL;
    room->depth++;
    if (room->cb.on_closed != NULL) {
        room->cb.on_closed(room->close_reason, room->close_retryable, room->close_detail,
                           room->user_data);
    }
    leave_dispatch(room);
    return G_SOURCE_REMOVE;
}

static void
room_fail(hv_lk_room *room, hv_lk_close_reason reason, bool retryable, const char *fmt, ...)
{
    if (room->state == ROOM_CLOSED) {
        return;
    }
    room->state = ROOM_CLOSED;
    va_list ap;
    va_start(ap, fmt);
    room->close_detail = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    room->close_reason = reason;
    room->close_retryable = retryable;
    room_log(room, G_LOG_LEVEL_MESSAGE, "closed: %s%s: %s", hv_lk_close_reason_name(reason),
             retryable ? " (retryable)" : "", room->close_detail);
    clear_source(&room->connect_timer);
    clear_source(&room->ping_timer);
    clear_source(&room->ping_timeout_timer);
    /* Close our side (1000); for a signal that reported its own end this only detaches it. */
    hv_lk_signal_free(room->signal, false);
    room->signal = NULL;
    room->closed_idle = g_idle_source_new();
    g_source_set_callback(room->closed_idle, on_closed_idle, room, NULL);
    g_source_attach(room->closed_idle, room->ctx);
}

/* ---- sending ------------------------------------------------------------------------------- */

static int
send_request(hv_lk_room *room, const Livekit__SignalRequest *req)
{
    size_t len = livekit__signal_request__get_packed_size(req);
    uint8_t *buf = g_malloc(len > 0 ? len : 1);
    livekit__signal_request__pack(req, buf);
    int rc = 0;
    if (room->sent != NULL) {
        g_ptr_array_add(room->sent, g_bytes_new_take(buf, len));
        buf = NULL;
    } else if (room->signal != NULL) {
        rc = hv_lk_signal_send(room->signal, buf, len);
    } else {
        rc = HV_ECLOSED;
    }
    g_free(buf);
    if (rc == 0) {
        room->stats.messages_out++;
    }
    return rc;
}

/* Sends one request while the room is live; a stuck socket ends the room. */
static void
room_send(hv_lk_room *room, const Livekit__SignalRequest *req)
{
    if (room->state == ROOM_CLOSED) {
        return;
    }
    bool trickle = req->message_case == LIVEKIT__SIGNAL_REQUEST__MESSAGE_TRICKLE;
    int rc = trickle && hv_lk_signal_queued(room->signal) >=
                            HV_LK_MAX_QUEUED_MESSAGES - HV_LK_QUEUE_RESERVE
                 ? HV_EAGAIN
                 : send_request(room, req);
    if (rc == HV_EAGAIN && trickle) {
        /* A burst of local candidates beyond the queue: ICE goes on with those already sent
         * (one working pair is enough); losing some is no reason to drop the room. */
        room_log(room, G_LOG_LEVEL_DEBUG, "send queue full: dropping a local candidate");
    } else if (rc == HV_EAGAIN) {
        room_fail(room, HV_LK_SIGNAL_LOST, true,
                  "send queue full (%d messages or %zu bytes waiting)", HV_LK_MAX_QUEUED_MESSAGES,
                  HV_LK_MAX_QUEUED_BYTES);
    } else if (rc == HV_EINVAL) {
        room_log(room, G_LOG_LEVEL_MESSAGE, "dropping an oversized request");
    }
}

static void
send_subscription(hv_lk_room *room, GPtrArray *sids, bool subscribe)
{
    Livekit__UpdateSubscription us = LIVEKIT__UPDATE_SUBSCRIPTION__INIT;
    us.n_track_sids = sids->len;
    us.track_sids = (char **)sids->pdata;
    us.subscribe = subscribe;
    Livekit__SignalRequest req = LIVEKIT__SIGNAL_REQUEST__INIT;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_SUBSCRIPTION;
    req.subscription = &us;
    room_log(room, G_LOG_LEVEL_DEBUG, "%s %u track(s)", subscribe ? "subscribing" : "unsubscribing",
             sids->len);
    room_send(room, &req);
}

/* ---- keepalive (spec §5) ------------------------------------------------------------------- */

static gboolean on_ping_timeout(gpointer data);

static gboolean
on_ping_timer(gpointer data)
{
    hv_lk_room *room = data;
    int64_t now = hv_wall_ms();
    Livekit__Ping ping = LIVEKIT__PING__INIT;
    ping.timestamp = now;
    ping.rtt = room->stats.rtt_ms > 0 ? room->stats.rtt_ms : 0;
    Livekit__SignalRequest req = LIVEKIT__SIGNAL_REQUEST__INIT;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING_REQ;
    req.ping_req = &ping;
    room_send(room, &req);
    /* The legacy ping too, as the JS SDK does, for servers older than ping_req. */
    Livekit__SignalRequest legacy = LIVEKIT__SIGNAL_REQUEST__INIT;
    legacy.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING;
    legacy.ping = now;
    room_send(room, &legacy);
    return G_SOURCE_CONTINUE; /* room_fail() destroys this source if the room closed */
}

static int64_t
ping_timeout_ms(const hv_lk_room *room)
{
    return (int64_t)room->join.ping_timeout_s * room->second_ms;
}

static gboolean
on_ping_timeout(gpointer data)
{
    hv_lk_room *room = data;
    g_source_unref(room->ping_timeout_timer); /* returning REMOVE destroys it */
    room->ping_timeout_timer = NULL;
    int64_t idle = hv_now_ms() - room->last_rx_ms;
    if (idle >= ping_timeout_ms(room)) {
        room_fail(room, HV_LK_SIGNAL_LOST, true, "no message from the server for %d s",
                  room->join.ping_timeout_s);
    } else {
        /* Something arrived meanwhile: wait for the rest of the timeout from that moment. */
        room->ping_timeout_timer =
            room_timeout(room, ping_timeout_ms(room) - idle, on_ping_timeout);
    }
    return G_SOURCE_REMOVE;
}

static void
start_keepalive(hv_lk_room *room)
{
    room->ping_timer =
        room_timeout(room, (int64_t)room->join.ping_interval_s * room->second_ms, on_ping_timer);
    room->ping_timeout_timer = room_timeout(room, ping_timeout_ms(room), on_ping_timeout);
}

/* ---- the streamer (spec §6.1; stage.c) ----------------------------------------------------- */

static void
notify_streamer(hv_lk_room *room)
{
    const char *sid = NULL;
    const char *identity = hv_lk_stage_streamer(room->stage, &sid);
    size_t n = 0;
    g_autofree hv_lk_track *tracks = hv_lk_stage_tracks(room->stage, &n);
    g_autoptr(GString) desc = g_string_new(NULL);
    for (size_t i = 0; i < n; i++) {
        g_string_append_printf(desc, "%s%s %s %s", i > 0 ? ", " : "", tracks[i].sid,
                               hv_lk_source_name(tracks[i].source),
                               tracks[i].mime_type[0] != '\0' ? tracks[i].mime_type : "?");
    }
    room_log(room, G_LOG_LEVEL_INFO, "streamer %s (%s), receiving %zu track(s): %s", identity, sid,
             n, desc->str);
    if (room->cb.on_streamer != NULL) {
        room->cb.on_streamer(sid, identity, tracks, n, room->user_data);
    }
}

/* Re-evaluates the streamer after the participant table changed: subscribe to what is newly
 * chosen, unsubscribe what no longer is, tell the caller. */
static void
update_streamer(hv_lk_room *room)
{
    hv_lk_stage_delta d;
    hv_lk_stage_update(room->stage, &d);
    if (d.unsubscribe->len > 0) {
        send_subscription(room, d.unsubscribe, false);
    }
    if (d.subscribe->len > 0 && room->state != ROOM_CLOSED) {
        send_subscription(room, d.subscribe, true);
    }
    if (room->state != ROOM_CLOSED && d.left != NULL) {
        room_log(room, G_LOG_LEVEL_INFO, "streamer %s left", d.left);
        if (room->cb.on_streamer_left != NULL) {
            room->cb.on_streamer_left(d.left, room->user_data);
        }
    }
    if (room->state != ROOM_CLOSED && d.changed) {
        notify_streamer(room);
    }
    hv_lk_stage_delta_clear(&d);
}

/* ---- handlers for each SignalResponse ------------------------------------------------------ */

static const char *
nonempty_or(const char *a, const char *b)
{
    return a != NULL && a[0] != '\0' ? a : (b != NULL ? b : "");
}

static void
handle_join(hv_lk_room *room, const Livekit__JoinResponse *jr)
{
    if (jr->alternative_url != NULL && jr->alternative_url[0] != '\0') {
        room_fail(room, HV_LK_LEAVE_RECONNECT, true, "server redirects to %s", jr->alternative_url);
        return;
    }
    hv_lk_join_info *j = &room->join;
    const Livekit__ServerInfo *si = jr->server_info;
    j->room_name = g_strdup(jr->room != NULL ? jr->room->name : "");
    j->room_sid = g_strdup(jr->room != NULL ? jr->room->sid : "");
    j->participant_sid = g_strdup(jr->participant != NULL ? jr->participant->sid : "");
    j->identity = g_strdup(jr->participant != NULL ? jr->participant->identity : "");
    g_autoptr(GString) skipped = g_string_new(NULL);
    j->ice_servers = hv_lk_ice_servers_to_gst(jr->ice_servers, jr->n_ice_servers, skipped);
    if (skipped->len > 0) {
        room_log(room, G_LOG_LEVEL_INFO,
                 "skipping ICE servers libnice cannot use (TLS, or an unknown scheme): %s",
                 skipped->str);
    }
    j->ping_interval_s = jr->ping_interval > 0 ? jr->ping_interval : HV_LK_DEFAULT_PING_INTERVAL_S;
    j->ping_timeout_s = jr->ping_timeout > 0 ? jr->ping_timeout : HV_LK_DEFAULT_PING_TIMEOUT_S;
    j->subscriber_primary = jr->subscriber_primary;
    j->server_protocol = si != NULL ? si->protocol : 0;
    j->server_version = g_strdup(nonempty_or(si != NULL ? si->version : NULL, jr->server_version));
    j->server_region = g_strdup(nonempty_or(si != NULL ? si->region : NULL, jr->server_region));
    if (j->room_name[0] != '\0') {
        g_free(room->log_name);
        room->log_name = g_strdup(j->room_name);
    }
    room->state = ROOM_JOINED;
    room->stats.joined = true;
    if (jr->room != NULL && jr->room->num_participants > 0) {
        room->stats.participants = jr->room->num_participants;
    } else {
        room->stats.participants = (uint32_t)MIN(
            jr->n_other_participants + room->stats.participants_skipped + 1, (uint64_t)G_MAXUINT32);
    }
    hv_lk_stage_set_self(room->stage, j->participant_sid, j->identity);
    clear_source(&room->connect_timer);
    start_keepalive(room);
    room_log(room, G_LOG_LEVEL_INFO,
             "joined as %s (%s), server %s protocol %d, %u participant(s) (%zu decoded), "
             "ping %d/%d s",
             j->identity, j->participant_sid, j->server_version, j->server_protocol,
             room->stats.participants, jr->n_other_participants, j->ping_interval_s,
             j->ping_timeout_s);
    if (!j->subscriber_primary) {
        room_log(room, G_LOG_LEVEL_MESSAGE, "server did not make the subscriber PC primary");
    }
    if (room->cb.on_joined != NULL) {
        room->cb.on_joined(j, room->user_data);
        if (room->state == ROOM_CLOSED) {
            return;
        }
    }
    for (size_t i = 0; i < jr->n_other_participants; i++) {
        hv_lk_stage_apply(room->stage, jr->other_participants[i]);
    }
    update_streamer(room);
}

static void
handle_offer(hv_lk_room *room, const Livekit__SessionDescription *sd)
{
    if (sd->sdp == NULL || sd->sdp[0] == '\0') {
        room_log(room, G_LOG_LEVEL_DEBUG, "ignoring an empty offer");
        return;
    }
    g_autoptr(GHashTable) map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (size_t i = 0; i < sd->n_mid_to_track_id; i++) {
        const Livekit__SessionDescription__MidToTrackIdEntry *e = sd->mid_to_track_id[i];
        if (e != NULL && e->key != NULL && e->value != NULL) {
            g_hash_table_replace(map, g_strdup(e->key), g_strdup(e->value));
        }
    }
    room_log(room, G_LOG_LEVEL_DEBUG, "offer id %u (%zu bytes, %u mapped mids)", sd->id,
             strlen(sd->sdp), g_hash_table_size(map));
    if (room->cb.on_offer != NULL) {
        room->cb.on_offer(sd->sdp, sd->id, map, room->user_data);
    }
}

static void
handle_trickle(hv_lk_room *room, const Livekit__TrickleRequest *tr)
{
    if (tr->target != LIVEKIT__SIGNAL_TARGET__SUBSCRIBER) {
        room_log(room, G_LOG_LEVEL_DEBUG, "ignoring a publisher-side candidate");
        return;
    }
    const char *text = tr->candidateinit != NULL ? tr->candidateinit : "";
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    const char *candidate = json_string_value(json_object_get(root, "candidate"));
    if (candidate == NULL || candidate[0] == '\0') {
        /* Lenient (spec §9.4-9): a candidate we cannot read is dropped, not fatal. */
        room_log(room, G_LOG_LEVEL_DEBUG, "ignoring an unreadable candidate");
        json_decref(root);
        return;
    }
    const char *mid = json_string_value(json_object_get(root, "sdpMid")); /* may be null */
    json_t *index = json_object_get(root, "sdpMLineIndex");
    json_int_t mline = json_is_integer(index) ? json_integer_value(index) : 0;
    if (mline < 0 || mline > G_MAXINT) {
        mline = 0;
    }
    if (room->cb.on_remote_candidate != NULL) {
        room->cb.on_remote_candidate(candidate, mid != NULL ? mid : "", (int)mline,
                                     room->user_data);
    }
    json_decref(root);
}

static void
handle_update(hv_lk_room *room, const Livekit__ParticipantUpdate *up)
{
    for (size_t i = 0; i < up->n_participants; i++) {
        hv_lk_stage_apply(room->stage, up->participants[i]);
    }
    update_streamer(room);
}

static void
handle_leave(hv_lk_room *room, const Livekit__LeaveRequest *lr)
{
    const char *why = enum_name(&livekit__disconnect_reason__descriptor, lr->reason);
    const char *action = enum_name(&livekit__leave_request__action__descriptor, lr->action);
    if (lr->action == LIVEKIT__LEAVE_REQUEST__ACTION__RESUME ||
        lr->action == LIVEKIT__LEAVE_REQUEST__ACTION__RECONNECT) {
        room_fail(room, HV_LK_LEAVE_RECONNECT, true, "server leave: %s, action %s", why, action);
    } else if (lr->can_reconnect) {
        /* A server older than protocol 13 has no action, only can_reconnect. */
        room_fail(room, HV_LK_LEAVE_RECONNECT, true, "server leave: %s, can reconnect", why);
    } else {
        room_fail(room, HV_LK_LEAVE_DISCONNECT, false, "server leave: %s, action %s", why, action);
    }
}

static void
handle_refresh_token(hv_lk_room *room, const char *token)
{
    if (token == NULL || token[0] == '\0') {
        return;
    }
    g_free(room->token);
    room->token = g_strdup(token);
    g_autofree char *shown = hv_lk_token_redact(token);
    room_log(room, G_LOG_LEVEL_DEBUG, "token refreshed (%s)", shown);
}

static void
handle_pong_resp(hv_lk_room *room, const Livekit__Pong *pong)
{
    if (pong->last_ping_timestamp <= 0) {
        return; /* not one of our pings; a far negative one would overflow the subtraction */
    }
    int64_t rtt = hv_wall_ms() - pong->last_ping_timestamp;
    if (rtt >= 0 && rtt < (int64_t)60 * 1000) {
        room->stats.rtt_ms = rtt;
    }
}

static void
handle_room_moved(hv_lk_room *room, const Livekit__RoomMovedResponse *rm)
{
    handle_refresh_token(room, rm->token);
    room_fail(room, HV_LK_LEAVE_RECONNECT, true, "moved to room %s",
              rm->room != NULL && rm->room->name != NULL ? rm->room->name : "?");
}

/* Informational messages: logged, nothing to do for a receiver. */
static void
handle_notice(hv_lk_room *room, const Livekit__SignalResponse *msg)
{
    switch (msg->message_case) {
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SUBSCRIPTION_RESPONSE: {
        const char *err =
            enum_name(&livekit__subscription_error__descriptor, msg->subscription_response->err);
        room_log(room, G_LOG_LEVEL_MESSAGE, "subscription to %s failed: %s",
                 msg->subscription_response->track_sid, err);
        if (room->cb.on_subscription_error != NULL) {
            room->cb.on_subscription_error(msg->subscription_response->track_sid, err,
                                           room->user_data);
        }
        break;
    }
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ROOM_UPDATE:
        if (msg->room_update->room != NULL && msg->room_update->room->num_participants > 0) {
            room->stats.participants = msg->room_update->room->num_participants;
        }
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SUBSCRIPTION_PERMISSION_UPDATE:
        room_log(room, G_LOG_LEVEL_MESSAGE, "permission for %s: %s",
                 msg->subscription_permission_update->track_sid,
                 msg->subscription_permission_update->allowed ? "allowed" : "denied");
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REQUEST_RESPONSE:
        if (msg->request_response->reason != LIVEKIT__REQUEST_RESPONSE__REASON__OK) {
            room_log(room, G_LOG_LEVEL_MESSAGE, "request %u refused: %s %s",
                     msg->request_response->request_id,
                     enum_name(&livekit__request_response__reason__descriptor,
                               msg->request_response->reason),
                     msg->request_response->message);
        }
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_STREAM_STATE_UPDATE:
        for (size_t i = 0; i < msg->stream_state_update->n_stream_states; i++) {
            const Livekit__StreamStateInfo *s = msg->stream_state_update->stream_states[i];
            room_log(room, G_LOG_LEVEL_DEBUG, "track %s %s", s->track_sid,
                     s->state == LIVEKIT__STREAM_STATE__PAUSED ? "paused" : "active");
        }
        break;
    default:
        room_log(room, G_LOG_LEVEL_DEBUG, "ignoring %s", response_name(msg));
        break;
    }
}

static void
dispatch(hv_lk_room *room, const Livekit__SignalResponse *msg)
{
    if (room->state != ROOM_JOINED) {
        /* Spec §2.5: the first message is join; a leave means the join was refused. */
        if (msg->message_case == LIVEKIT__SIGNAL_RESPONSE__MESSAGE_JOIN) {
            handle_join(room, msg->join);
        } else if (msg->message_case == LIVEKIT__SIGNAL_RESPONSE__MESSAGE_LEAVE) {
            handle_leave(room, msg->leave);
        } else if (msg->message_case != LIVEKIT__SIGNAL_RESPONSE__MESSAGE__NOT_SET) {
            room_fail(room, HV_LK_PROTOCOL_ERROR, true, "expected join first, got %s",
                      response_name(msg));
        }
        return;
    }
    switch (msg->message_case) {
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_OFFER:
        handle_offer(room, msg->offer);
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRICKLE:
        handle_trickle(room, msg->trickle);
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_UPDATE:
        handle_update(room, msg->update);
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_LEAVE:
        handle_leave(room, msg->leave);
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REFRESH_TOKEN:
        handle_refresh_token(room, msg->refresh_token);
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG_RESP:
        handle_pong_resp(room, msg->pong_resp);
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ROOM_MOVED:
        handle_room_moved(room, msg->room_moved);
        break;
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG:     /* liveness only */
    case LIVEKIT__SIGNAL_RESPONSE__MESSAGE__NOT_SET: /* a case newer than our .proto */
        break;
    default:
        handle_notice(room, msg);
        break;
    }
}

static bool
keep_participant(const char *identity, void *data)
{
    const hv_lk_room *room = data;
    return hv_lk_stage_knows(room->stage, identity);
}

int
hv_lk_room_handle_message(hv_lk_room *room, const uint8_t *buf, size_t len)
{
    g_return_val_if_fail(room != NULL, HV_EINVAL);
    if (room->state == ROOM_CLOSED) {
        return HV_ECLOSED;
    }
    room->stats.messages_in++;
    room->last_rx_ms = hv_now_ms(); /* any message proves the signal alive (spec §5) */
    size_t skipped = 0;
    g_autoptr(GBytes) thin =
        hv_lk_wire_filter_participants(buf, len, keep_participant, room, &skipped);
    if (thin != NULL) {
        room->stats.participants_skipped += skipped;
        room_log(room, G_LOG_LEVEL_DEBUG, "%zu-byte message: %zu silent participant(s) skipped",
                 len, skipped);
        buf = g_bytes_get_data(thin, &len);
    }
    Livekit__SignalResponse *msg = livekit__signal_response__unpack(NULL, len, buf);
    if (msg == NULL) {
        room_fail(room, HV_LK_PROTOCOL_ERROR, true, "undecodable SignalResponse (%zu bytes)", len);
        return HV_EPROTO;
    }
    room->depth++;
    dispatch(room, msg);
    livekit__signal_response__free_unpacked(msg, NULL);
    leave_dispatch(room);
    return 0;
}

/* ---- signal callbacks ---------------------------------------------------------------------- */

static void
on_signal_open(void *user_data)
{
    hv_lk_room *room = user_data;
    if (room->state == ROOM_CONNECTING) {
        room->state = ROOM_OPEN;
        room_log(room, G_LOG_LEVEL_DEBUG, "WebSocket open, waiting for join");
    }
}

static void
on_signal_message(const uint8_t *buf, size_t len, void *user_data)
{
    (void)hv_lk_room_handle_message(user_data, buf, len); /* failures close the room */
}

static void
on_signal_closed(hv_lk_close_reason reason, const char *detail, void *user_data)
{
    hv_lk_room *room = user_data;
    room_fail(room, reason, retryable_for(reason), "%s", detail);
}

static gboolean
on_connect_timeout(gpointer data)
{
    hv_lk_room *room = data;
    g_source_unref(room->connect_timer); /* returning REMOVE destroys it */
    room->connect_timer = NULL;
    if (room->state == ROOM_CONNECTING) {
        room_fail(room, HV_LK_CONNECT_TIMEOUT, true, "no WebSocket after %" G_GINT64_FORMAT " ms",
                  room->connect_timeout_ms);
    } else if (room->state == ROOM_OPEN) {
        room_fail(room, HV_LK_CONNECT_TIMEOUT, true,
                  "no JoinResponse within %" G_GINT64_FORMAT " ms", room->connect_timeout_ms);
    }
    return G_SOURCE_REMOVE;
}

/* ---- public -------------------------------------------------------------------------------- */

static hv_lk_room *
room_alloc(const hv_lk_room_config *cfg, const hv_lk_room_callbacks *cb, void *user_data)
{
    hv_lk_room *room = g_new0(hv_lk_room, 1);
    room->cb = *cb;
    room->user_data = user_data;
    room->ctx = g_main_context_ref_thread_default();
    room->token = g_strdup(cfg->token != NULL ? cfg->token : "");
    room->connect_timeout_ms =
        cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : HV_LK_DEFAULT_CONNECT_TIMEOUT_MS;
    room->stage = hv_lk_stage_new(cfg->log_mint, cfg->streamer_identity);
    room->second_ms = 1000;
    room->stats.rtt_ms = -1;
    room->last_rx_ms = hv_now_ms();
    hv_lk_token_info ti;
    if (hv_lk_token_decode(room->token, &ti, NULL) && ti.room[0] != '\0') {
        room->log_name = g_strdup(ti.room);
    }
    room->log_mint = g_strdup(cfg->log_mint);
    hv_lk_token_info_clear(&ti);
    room->connect_timer = room_timeout(room, room->connect_timeout_ms, on_connect_timeout);
    return room;
}

hv_lk_room *
hv_lk_room_new(const hv_lk_room_config *cfg, const hv_lk_room_callbacks *cb, void *user_data)
{
    g_return_val_if_fail(cfg != NULL && cb != NULL, NULL);
    hv_lk_room *room = room_alloc(cfg, cb, user_data);
    room->state = ROOM_CONNECTING;
    static const hv_lk_signal_callbacks signal_cb = {
        .on_open = on_signal_open,
        .on_message = on_signal_message,
        .on_closed = on_signal_closed,
    };
    g_autoptr(GError) error = NULL;
    room->signal = hv_lk_signal_new(cfg->url, room->token, &signal_cb, room, &error);
    if (room->signal == NULL) {
        /* A bad URL will not get better by retrying; anything else might. */
        room_fail(room, HV_LK_CONNECT_FAILED, error->code != HV_EINVAL, "%s", error->message);
    } else {
        room_log(room, G_LOG_LEVEL_DEBUG, "connecting to %s", cfg->url);
    }
    return room;
}

hv_lk_room *
hv_lk_room_new_detached(const hv_lk_room_config *cfg, const hv_lk_room_callbacks *cb,
                        void *user_data)
{
    g_return_val_if_fail(cfg != NULL && cb != NULL, NULL);
    hv_lk_room *room = room_alloc(cfg, cb, user_data);
    room->state = ROOM_OPEN;
    room->sent = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    return room;
}

void
hv_lk_room_free(hv_lk_room *room)
{
    if (room == NULL) {
        return;
    }
    g_return_if_fail(!room->freed);
    room->freed = true;
    if (room->state == ROOM_OPEN || room->state == ROOM_JOINED) {
        Livekit__LeaveRequest leave = LIVEKIT__LEAVE_REQUEST__INIT;
        leave.reason = LIVEKIT__DISCONNECT_REASON__CLIENT_INITIATED;
        leave.action = LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT;
        Livekit__SignalRequest req = LIVEKIT__SIGNAL_REQUEST__INIT;
        req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_LEAVE;
        req.leave = &leave;
        (void)send_request(room, &req); /* best effort: a full queue just closes */
    }
    room->state = ROOM_CLOSED;
    clear_source(&room->connect_timer);
    clear_source(&room->ping_timer);
    clear_source(&room->ping_timeout_timer);
    clear_source(&room->closed_idle);      /* no on_closed after free */
    hv_lk_signal_free(room->signal, true); /* flush the leave, close 1000 */
    room->signal = NULL;
    if (room->depth == 0) {
        room_release(room);
    }
}

void
hv_lk_room_send_answer(hv_lk_room *room, const char *sdp, uint32_t offer_id)
{
    g_return_if_fail(room != NULL && sdp != NULL);
    if (room->state != ROOM_JOINED) {
        return;
    }
    Livekit__SessionDescription sd = LIVEKIT__SESSION_DESCRIPTION__INIT;
    sd.type = (char *)"answer";
    sd.sdp = (char *)sdp;
    sd.id = offer_id;
    Livekit__SignalRequest req = LIVEKIT__SIGNAL_REQUEST__INIT;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_ANSWER;
    req.answer = &sd;
    room_log(room, G_LOG_LEVEL_DEBUG, "answer to offer %u (%zu bytes)", offer_id, strlen(sdp));
    room_send(room, &req);
}

void
hv_lk_room_send_candidate(hv_lk_room *room, const char *candidate, const char *sdp_mid,
                          int mline_index)
{
    g_return_if_fail(room != NULL && candidate != NULL);
    if (room->state != ROOM_JOINED) {
        return;
    }
    json_t *obj = json_object();
    json_object_set_new(obj, "candidate", json_string(candidate));
    if (sdp_mid != NULL) {
        json_object_set_new(obj, "sdpMid", json_string(sdp_mid));
    }
    json_object_set_new(obj, "sdpMLineIndex", json_integer(mline_index));
    char *text = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (text == NULL) {
        return; /* not UTF-8 */
    }
    Livekit__TrickleRequest tr = LIVEKIT__TRICKLE_REQUEST__INIT;
    tr.candidateinit = text;
    tr.target = LIVEKIT__SIGNAL_TARGET__SUBSCRIBER;
    tr.final = false;
    Livekit__SignalRequest req = LIVEKIT__SIGNAL_REQUEST__INIT;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_TRICKLE;
    req.trickle = &tr;
    room_send(room, &req);
    free(text); /* jansson allocates with malloc */
}

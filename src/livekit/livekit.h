/* livekit: a receive-only LiveKit signalling client (v0 path, protocol 17, subscriber primary),
 * following ../shared/docs/livekit-subscriber-protocol.md.
 *
 * One hv_lk_room is ONE signalling connection: WebSocket to <url>/rtc, JoinResponse, server
 * offers (handed to the caller, which owns the webrtcbin), answers and trickle back, participant
 * updates, explicit subscription to the streamer's tracks, ping/pong with the server's interval
 * and timeout, refresh_token, leave. It never reconnects by itself: on any loss it reports
 * on_closed with retryable=true, and the caller does a full reconnect (new token, new room, new
 * peer connection), as the spec's recovery policy requires for webrtcbin.
 *
 * Main thread only (the thread-default GMainContext at hv_lk_room_new); libwebsockets runs its
 * client on that GLib loop. Every callback runs on the main thread.
 */
#ifndef HV_LIVEKIT_H
#define HV_LIVEKIT_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hv_lk_room hv_lk_room;

/* ---- JWT (token.c) ------------------------------------------------------------------------ */

/* What haven needs from a LiveKit access token, decoded WITHOUT verifying the signature. */
typedef struct {
    char *identity;       /* "sub" */
    char *room;           /* video.room, e.g. "livestream:<mint>:<id>" */
    char *issuer;         /* "iss" */
    int64_t expires_at_s; /* "exp" (Unix seconds); 0 when absent */
    bool can_subscribe;
} hv_lk_token_info;

/* Decodes a JWT's payload. Returns false + error (HV_ERROR, HV_EINVAL) when it is not three
 * base64url parts with a JSON object payload. */
bool hv_lk_token_decode(const char *jwt, hv_lk_token_info *out, GError **error);
void hv_lk_token_info_clear(hv_lk_token_info *info);

/* ---- the room ----------------------------------------------------------------------------- */

typedef struct {
    char *room_name;
    char *room_sid;
    char *participant_sid; /* ours */
    char *identity;        /* ours */
    char **ice_servers;    /* NULL-terminated GStreamer URIs: "stun://h:p", "turn://u:p@h:p" */
    int ping_interval_s, ping_timeout_s;
    bool subscriber_primary;
    int server_protocol;
    char *server_version, *server_region;
} hv_lk_join_info;

/* TrackInfo.source. */
typedef enum {
    HV_LK_SOURCE_UNKNOWN = 0,
    HV_LK_SOURCE_CAMERA = 1,
    HV_LK_SOURCE_MICROPHONE = 2,
    HV_LK_SOURCE_SCREEN_SHARE = 3,
    HV_LK_SOURCE_SCREEN_SHARE_AUDIO = 4,
} hv_lk_source;

/* "camera", "microphone", "screen_share", "screen_share_audio", "unknown". */
const char *hv_lk_source_name(hv_lk_source source);

/* A remote participant's published track as the server describes it (TrackInfo). */
typedef struct {
    const char *sid;       /* TR_... */
    bool is_video;         /* false: audio */
    const char *mime_type; /* "video/VP8", "video/H264", "audio/opus", ... (may be "") */
    /* The codecs the publisher sends it in, as MIME types: mime_type first, then the backup
     * codecs of TrackInfo.codecs (e.g. "video/AV1", "video/VP8"). NULL-terminated, never NULL;
     * empty when the server names none. */
    const char *const *codecs;
    hv_lk_source source;
    int width, height; /* video, 0 if unknown */
    bool muted;
} hv_lk_track;

/* Why a room closed. */
typedef enum {
    HV_LK_CLOSED_BY_CALLER, /* reserved: hv_lk_room_free() never reports a close */
    HV_LK_CONNECT_FAILED,   /* WebSocket could not be opened (refused, DNS, TLS) */
    HV_LK_CONNECT_TIMEOUT,  /* no WebSocket, or no JoinResponse, within connect_timeout_ms */
    HV_LK_UNAUTHORIZED,     /* HTTP 401/403 on the upgrade: token invalid or expired */
    HV_LK_SIGNAL_LOST,      /* WebSocket closed/errored, or no message for ping_timeout */
    HV_LK_LEAVE_RECONNECT,  /* server leave with action RESUME or RECONNECT */
    HV_LK_LEAVE_DISCONNECT, /* server leave with action DISCONNECT (room closed, removed...) */
    HV_LK_PROTOCOL_ERROR,   /* undecodable message, or no JoinResponse in time */
} hv_lk_close_reason;

typedef struct {
    void (*on_joined)(const hv_lk_join_info *info, void *user_data);
    /* A subscriber-PC offer; mid_to_track_id maps transceiver mid → track sid (may be empty). */
    void (*on_offer)(const char *sdp, uint32_t offer_id, GHashTable *mid_to_track_id,
                     void *user_data);
    /* A remote ICE candidate for the subscriber PC ("candidate:..." line). */
    void (*on_remote_candidate)(const char *candidate, const char *sdp_mid, int mline_index,
                                void *user_data);
    /* The streamer was chosen, or the tracks haven receives from it changed (stage.c: the
     * host, never a guest on stage). tracks are the subscribed ones: its one video track (a
     * screen share before a camera), first, then every audio track. Valid during the call. */
    void (*on_streamer)(const char *participant_sid, const char *identity,
                        const hv_lk_track *tracks, size_t n_tracks, void *user_data);
    /* The streamer stopped publishing or left (DISCONNECTED, or no tracks any more). */
    void (*on_streamer_left)(const char *identity, void *user_data);
    /* The server could not subscribe us to a track: error is the SubscriptionError name
     * ("SE_CODEC_UNSUPPORTED", "SE_TRACK_NOTFOUND", ...). Optional. */
    void (*on_subscription_error)(const char *track_sid, const char *error, void *user_data);
    /* The signalling connection is gone for good; the room must be freed by the caller (not
     * from inside this callback: use an idle). retryable: a full reconnect makes sense. */
    void (*on_closed)(hv_lk_close_reason reason, bool retryable, const char *detail,
                      void *user_data);
} hv_lk_room_callbacks;

typedef struct {
    const char *url;            /* wss://host or ws://host (https/http accepted and converted) */
    const char *token;          /* JWT */
    int64_t connect_timeout_ms; /* WebSocket open + JoinResponse */
    /* (nullable, copied) the stream this room is for: log context, and a hint for finding the
     * host among the publishers (stage.c). */
    const char *log_mint;
    /* (nullable, copied) the streamer an earlier connection of the same session chose: it
     * stays the streamer whatever other publishers the room holds. */
    const char *streamer_identity;
} hv_lk_room_config;

/* Starts connecting. Returns (transfer full); failures are reported through on_closed. */
hv_lk_room *hv_lk_room_new(const hv_lk_room_config *cfg, const hv_lk_room_callbacks *cb,
                           void *user_data);
/* Sends leave (CLIENT_INITIATED, DISCONNECT) if connected and closes; on_closed is NOT called.
 * Frees the room. */
void hv_lk_room_free(hv_lk_room *room);

void hv_lk_room_send_answer(hv_lk_room *room, const char *sdp, uint32_t offer_id);
void hv_lk_room_send_candidate(hv_lk_room *room, const char *candidate, const char *sdp_mid,
                               int mline_index);
/* The newest token (the original, or the last refresh_token); (transfer none). */
const char *hv_lk_room_token(const hv_lk_room *room);
/* The codecs (MIME types, primary first, then backups) the streamer publishes one of its
 * tracks in; NULL for a track sid the room does not know. (transfer none; valid until the next
 * message is handled). */
const char *const *hv_lk_room_track_codecs(const hv_lk_room *room, const char *track_sid);
/* The streamer's identity, NULL before one was chosen. (transfer none) */
const char *hv_lk_room_streamer_identity(const hv_lk_room *room);
/* True once the room has closed: its on_closed is on its way (from an idle source) and says
 * why. A caller seeing another failure meanwhile (the peer connection dying because the server
 * just hung up) lets on_closed decide instead of acting on the symptom. */
bool hv_lk_room_is_closed(const hv_lk_room *room);

typedef struct {
    uint64_t messages_in, messages_out;
    int64_t rtt_ms; /* last ping round trip, -1 unknown */
    bool joined;
    /* Participants in the room as the server counts them (Room.num_participants of the join
     * and of room updates); 0 when the server does not say. */
    uint32_t participants;
    /* Participant snapshots of big rooms left undecoded (silent viewers; wire.c). */
    uint64_t participants_skipped;
} hv_lk_room_stats;
void hv_lk_room_get_stats(const hv_lk_room *room, hv_lk_room_stats *out);

#endif

/* LiveKit SignalResponses as a server sends them, built with protobuf-c from the .proto haven
 * decodes with: for the livekit unit and socket tests (tests/livekit), the livekit_signal fuzz
 * target and its seed-corpus generator (tests/fuzz). One copy of each builder.
 *
 * The *_msg structs hold a message and everything it points at, in the caller's storage (on its
 * stack): the returned SignalResponse is valid while the struct lives and the strings and arrays
 * passed in do. Participants are on the heap, with copies of their strings.
 */
#ifndef HV_TEST_LK_BUILDERS_H
#define HV_TEST_LK_BUILDERS_H

#include "livekit/livekit-proto.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* (transfer full) Any message, serialized. */
GBytes *hv_lkt_pack(const ProtobufCMessage *m);

/* ---- JoinResponse ---------------------------------------------------------------------------- */

#define HV_LKT_MAX_URLS 4

typedef struct {
    const char *room_sid;  /* NULL: "RM_test" */
    const char *room_name; /* NULL: "livestream:test:1" */
    /* Our own participant is always PA_self / b45e1821 (the fixture token's identity). */
    Livekit__ParticipantInfo **others; /* the other participants (borrowed) */
    size_t n_others;
    /* One ICE server with these STUN URLs, and one with these TURN URLs (user
     * "1700000000:user", credential "p@ss/w rd"); NULL-terminated, up to HV_LKT_MAX_URLS each;
     * NULL: no such server. */
    const char *const *stun;
    const char *const *turn;
    int32_t ping_interval, ping_timeout;
    const char *region;          /* ServerInfo 1.9.0, protocol 16, this region; NULL: none */
    const char *alternative_url; /* NULL: none */
} hv_lkt_join_spec;

typedef struct {
    Livekit__Room room;
    Livekit__ParticipantInfo self;
    char *stun_urls[HV_LKT_MAX_URLS], *turn_urls[HV_LKT_MAX_URLS];
    Livekit__ICEServer ice[2];
    Livekit__ICEServer *ices[2];
    Livekit__ServerInfo server;
    Livekit__JoinResponse join;
    Livekit__SignalResponse resp;
} hv_lkt_join_msg;

/* A join as livekit-server sends it: subscriber_primary, the spec's room, ICE servers, pings. */
const Livekit__SignalResponse *hv_lkt_join(hv_lkt_join_msg *m, const hv_lkt_join_spec *spec);

/* ---- participants ---------------------------------------------------------------------------- */

typedef struct {
    const char *sid;
    int type; /* LIVEKIT__TRACK_TYPE__* */
    uint32_t width, height;
    int source;         /* LIVEKIT__TRACK_SOURCE__*, 0 = unknown */
    const char *mime;   /* NULL: video/VP8 or audio/opus */
    const char *backup; /* a backup codec (TrackInfo.codecs[1]), or NULL */
    bool muted;
} hv_lkt_track;

/* (transfer full) A participant (state: LIVEKIT__PARTICIPANT_INFO__STATE__*) with n tracks;
 * free with hv_lkt_participant_free. */
Livekit__ParticipantInfo *hv_lkt_participant_new(const char *sid, const char *identity, int state,
                                                 uint32_t version, const hv_lkt_track *tracks,
                                                 size_t n);
void hv_lkt_participant_free(Livekit__ParticipantInfo *p);

/* ---- other responses ------------------------------------------------------------------------- */

typedef struct {
    Livekit__ParticipantUpdate update;
    Livekit__SignalResponse resp;
} hv_lkt_update_msg;

/* A ParticipantUpdate with these participants (borrowed). */
const Livekit__SignalResponse *hv_lkt_update(hv_lkt_update_msg *m, Livekit__ParticipantInfo **ps,
                                             size_t n);

#define HV_LKT_MAX_MIDS 4

typedef struct {
    Livekit__SessionDescription__MidToTrackIdEntry entry[HV_LKT_MAX_MIDS];
    Livekit__SessionDescription__MidToTrackIdEntry *entries[HV_LKT_MAX_MIDS];
    Livekit__SessionDescription sd;
    Livekit__SignalResponse resp;
} hv_lkt_offer_msg;

/* A subscriber offer; mids: mid, track id, mid, track id... NULL-terminated (up to
 * HV_LKT_MAX_MIDS pairs), or NULL. */
const Livekit__SignalResponse *hv_lkt_offer(hv_lkt_offer_msg *m, const char *sdp, uint32_t id,
                                            const char *const *mids);

typedef struct {
    Livekit__TrickleRequest trickle;
    Livekit__SignalResponse resp;
} hv_lkt_trickle_msg;

/* A trickled candidate (candidate_init JSON) for target (LIVEKIT__SIGNAL_TARGET__*). */
const Livekit__SignalResponse *hv_lkt_trickle(hv_lkt_trickle_msg *m, const char *json,
                                              Livekit__SignalTarget target);

typedef struct {
    Livekit__LeaveRequest leave;
    Livekit__SignalResponse resp;
} hv_lkt_leave_msg;

/* The server's leave (action: LIVEKIT__LEAVE_REQUEST__ACTION__*). */
const Livekit__SignalResponse *hv_lkt_leave(hv_lkt_leave_msg *m, int action, bool can_reconnect,
                                            Livekit__DisconnectReason reason);

typedef struct {
    Livekit__Pong pong;
    Livekit__SignalResponse resp;
} hv_lkt_pong_msg;

/* The answer to a ping_req (timestamps in ms). */
const Livekit__SignalResponse *hv_lkt_pong(hv_lkt_pong_msg *m, int64_t last_ping_timestamp,
                                           int64_t timestamp);

#endif

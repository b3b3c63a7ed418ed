/* Writes the seed corpus of the livekit_signal fuzz target: scripted LiveKit sessions, each a
 * flags byte and framed SignalResponses ("[u16 big-endian length][message]"; see
 * fuzz-livekit_signal.c), serialized with protobuf-c from the same .proto haven decodes with.
 * The scripts follow tests/livekit/test-livekit.c: join (with ICE servers and a streamer), offers
 * with mid maps, trickle, participant updates (streamer switch, leave, return with a new SID,
 * stale versions, many publishers), every leave action, token refresh, pongs, room moves, the
 * informational messages, protocol errors, and frees from inside each callback.
 *
 *     ninja -C build tests/fuzz/gen-livekit-corpus
 *     ./build/tests/fuzz/gen-livekit-corpus tests/fuzz/corpora/livekit_signal
 */
#include "../livekit/lk-builders.h"
#include "livekit/livekit-proto.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define F_JOIN   0x01
#define F_FREE   0x02
#define F_ANSWER 0x04
#define F_IDLE   0x08

static const char *out_dir;

static GByteArray *
script_new(uint8_t flags)
{
    GByteArray *s = g_byte_array_new();
    g_byte_array_append(s, &flags, 1);
    return s;
}

static void
add(GByteArray *s, const Livekit__SignalResponse *resp)
{
    g_autoptr(GBytes) b = hv_lkt_pack(&resp->base);
    gsize len = 0;
    const uint8_t *buf = g_bytes_get_data(b, &len);
    g_assert(len <= 0xffff);
    uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    g_byte_array_append(s, hdr, 2);
    g_byte_array_append(s, buf, (guint)len);
}

static void
add_raw(GByteArray *s, const void *data, size_t len)
{
    uint8_t hdr[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    g_byte_array_append(s, hdr, 2);
    g_byte_array_append(s, data, (guint)len);
}

static void
save(GByteArray *s, const char *name)
{
    g_autofree char *path = g_strdup_printf("%s/seed-%s", out_dir, name);
    g_autoptr(GError) error = NULL;
    if (!g_file_set_contents(path, (const char *)s->data, s->len, &error)) {
        g_error("%s", error->message);
    }
    g_byte_array_unref(s);
}

/* ---- message builders (lk-builders.c) ------------------------------------------------------- */

/* (transfer full) A publisher with H.264 video and Opus audio (video_sid NULL: no tracks). */
static Livekit__ParticipantInfo *
publisher_new(const char *sid, const char *identity, uint32_t version, uint32_t width,
              uint32_t height, const char *video_sid, const char *audio_sid)
{
    const hv_lkt_track tracks[] = {
        {.sid = video_sid,
         .type = LIVEKIT__TRACK_TYPE__VIDEO,
         .mime = "video/H264",
         .width = width,
         .height = height},
        {.sid = audio_sid, .type = LIVEKIT__TRACK_TYPE__AUDIO, .mime = "audio/opus"},
    };
    return hv_lkt_participant_new(sid, identity, LIVEKIT__PARTICIPANT_INFO__STATE__ACTIVE, version,
                                  tracks, video_sid != NULL ? 2 : 0);
}

static void
add_join(GByteArray *s, Livekit__ParticipantInfo **others, size_t n_others,
         const char *alternative_url)
{
    static const char *const stun[] = {"stun:stun.example.org:3478", "stuns:ignored:443", NULL};
    static const char *const turn[] = {"turn:turn.example.org:3478?transport=udp",
                                       "turns:turn.example.org:443?transport=tcp", NULL};
    hv_lkt_join_msg m;
    const hv_lkt_join_spec spec = {
        .room_name = "livestream:7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump:2421674",
        .others = others,
        .n_others = n_others,
        .stun = stun,
        .turn = turn,
        .ping_interval = 5,
        .ping_timeout = 15,
        .region = "test",
        .alternative_url = alternative_url};
    add(s, hv_lkt_join(&m, &spec));
}

static void
add_update(GByteArray *s, Livekit__ParticipantInfo **ps, size_t n)
{
    hv_lkt_update_msg m;
    add(s, hv_lkt_update(&m, ps, n));
}

static const char offer_sdp[] =
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0 1\r\na=msid-semantic: WMS\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n"
    "a=rtpmap:96 H264/90000\r\na=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\n"
    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77"
    ":88:99:AA:BB:CC:DD:EE:FF\r\na=setup:actpass\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendonly\r\n"
    "a=rtpmap:111 opus/48000/2\r\n";

static void
add_offer(GByteArray *s, uint32_t id, const char *sdp)
{
    static const char *const mids[] = {"0", "TR_video", "1", "TR_audio", NULL};
    hv_lkt_offer_msg m;
    add(s, hv_lkt_offer(&m, sdp, id, mids));
}

static void
add_trickle(GByteArray *s, const char *json, Livekit__SignalTarget target)
{
    hv_lkt_trickle_msg m;
    add(s, hv_lkt_trickle(&m, json, target));
}

static void
add_leave(GByteArray *s, Livekit__LeaveRequest__Action action, bool can_reconnect,
          Livekit__DisconnectReason reason)
{
    hv_lkt_leave_msg m;
    add(s, hv_lkt_leave(&m, action, can_reconnect, reason));
}

static void
add_simple(GByteArray *s, Livekit__SignalResponse *resp)
{
    add(s, resp);
}

/* The usual start: join with one streamer publishing video + audio. */
static void
add_join_with_streamer(GByteArray *s)
{
    Livekit__ParticipantInfo *pub =
        publisher_new("PA_streamer", "streamer-7k13", 1, 1280, 720, "TR_video", "TR_audio");
    Livekit__ParticipantInfo *others[] = {pub};
    add_join(s, others, 1, NULL);
    hv_lkt_participant_free(pub);
}

/* ---- the scripts ------------------------------------------------------------------------------
 */

static void
scripts_join(void)
{
    GByteArray *s = script_new(0);
    add_join_with_streamer(s);
    save(s, "join-streamer");

    s = script_new(F_IDLE);
    add_join(s, NULL, 0, NULL);
    save(s, "join-empty-room");

    s = script_new(F_IDLE);
    add_join(s, NULL, 0, "wss://other-region.livekit.cloud");
    save(s, "join-alternative-url");

    s = script_new(F_IDLE);
    add_leave(s, LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT, false,
              LIVEKIT__DISCONNECT_REASON__JOIN_FAILURE);
    save(s, "leave-before-join");

    s = script_new(F_IDLE);
    add_offer(s, 1, offer_sdp);
    save(s, "offer-before-join");

    s = script_new(F_IDLE);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    add_raw(s, garbage, sizeof(garbage));
    save(s, "undecodable");

    s = script_new(0);
    add_raw(s, "", 0); /* an empty message: no case set */
    add_join_with_streamer(s);
    save(s, "empty-then-join");
}

static void
scripts_offer_trickle(void)
{
    GByteArray *s = script_new(F_ANSWER | F_IDLE);
    add_join_with_streamer(s);
    add_offer(s, 1, offer_sdp);
    add_trickle(s,
                "{\"candidate\":\"candidate:1 1 udp 2130706431 10.0.0.1 50000 typ host\","
                "\"sdpMid\":\"0\",\"sdpMLineIndex\":0}",
                LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    add_trickle(s,
                "{\"candidate\":\"candidate:2 1 udp 1694498815 203.0.113.7 61000 typ srflx raddr "
                "10.0.0.1 rport 50000\",\"sdpMid\":\"1\",\"sdpMLineIndex\":1,"
                "\"usernameFragment\":\"abcd\"}",
                LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    add_trickle(s, "{\"candidate\":\"candidate:3 1 udp 1 10.0.0.2 1 typ host\"}",
                LIVEKIT__SIGNAL_TARGET__PUBLISHER);
    add_trickle(s, "{\"candidate\":\"\",\"sdpMid\":null}", LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    add_trickle(s, "not json", LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    add_trickle(s, "{\"candidate\":\"c\",\"sdpMLineIndex\":-3}",
                LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    add_offer(s, 2, offer_sdp); /* renegotiation */
    add_offer(s, 3, "");        /* ignored */
    save(s, "offer-trickle-answer");
}

static void
scripts_participants(void)
{
    /* streamer switch: a bigger publisher arrives, the first one stops, a viewer publishes */
    GByteArray *s = script_new(F_JOIN | F_IDLE);
    Livekit__ParticipantInfo *big =
        publisher_new("PA_big", "host-2", 1, 1920, 1080, "TR_v2", "TR_a2");
    Livekit__ParticipantInfo *viewer =
        publisher_new("PA_viewer", "viewer-123", 1, 3840, 2160, "TR_v3", "TR_a3");
    Livekit__ParticipantInfo *up1[] = {big, viewer};
    add_update(s, up1, 2);
    Livekit__ParticipantInfo *small =
        publisher_new("PA_streamer", "streamer-7k13", 2, 0, 0, NULL, NULL);
    Livekit__ParticipantInfo *up2[] = {small};
    add_update(s, up2, 1);
    big->state = LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED;
    Livekit__ParticipantInfo *up3[] = {big};
    add_update(s, up3, 1);
    save(s, "streamer-switch");
    hv_lkt_participant_free(big);
    hv_lkt_participant_free(viewer);
    hv_lkt_participant_free(small);

    /* the streamer leaves and comes back with a new SID; a late DISCONNECTED for the old one */
    s = script_new(F_JOIN | F_IDLE);
    Livekit__ParticipantInfo *gone =
        publisher_new("PA_streamer", "streamer-7k13", 4, 1280, 720, "TR_video", "TR_audio");
    gone->state = LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED;
    Livekit__ParticipantInfo *u1[] = {gone};
    add_update(s, u1, 1);
    Livekit__ParticipantInfo *back =
        publisher_new("PA_streamer2", "streamer-7k13", 1, 1280, 720, "TR_video2", "TR_audio2");
    Livekit__ParticipantInfo *u2[] = {back};
    add_update(s, u2, 1);
    Livekit__ParticipantInfo *late =
        publisher_new("PA_streamer", "streamer-7k13", 5, 1280, 720, "TR_video", "TR_audio");
    late->state = LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED;
    Livekit__ParticipantInfo *u3[] = {late};
    add_update(s, u3, 1);
    /* an older snapshot of the current session is ignored */
    Livekit__ParticipantInfo *old =
        publisher_new("PA_streamer2", "streamer-7k13", 0, 640, 360, "TR_old", "TR_old_a");
    old->version = 0;
    Livekit__ParticipantInfo *u4[] = {old};
    add_update(s, u4, 1);
    /* ourselves, and a participant without identity */
    Livekit__ParticipantInfo *self =
        publisher_new("PA_self", "b45e1821", 1, 640, 360, "TR_self", "TR_self_a");
    Livekit__ParticipantInfo *anon =
        publisher_new("PA_anon", "", 1, 640, 360, "TR_anon", "TR_anon_a");
    Livekit__ParticipantInfo *u5[] = {self, anon};
    add_update(s, u5, 2);
    save(s, "streamer-leaves-and-returns");
    Livekit__ParticipantInfo *done[] = {gone, back, late, old, self, anon};
    for (size_t i = 0; i < G_N_ELEMENTS(done); i++) {
        hv_lkt_participant_free(done[i]);
    }

    /* more publishers than the room keeps */
    s = script_new(F_JOIN);
    enum { N = 300 };
    static char sids[N][16], ids[N][24], vs[N][16], as[N][16];
    Livekit__ParticipantInfo *ps[N];
    for (int i = 0; i < N; i++) {
        g_snprintf(sids[i], sizeof(sids[i]), "PA_%03d", i);
        g_snprintf(ids[i], sizeof(ids[i]), "publisher-%03d", i);
        g_snprintf(vs[i], sizeof(vs[i]), "TR_v%03d", i);
        g_snprintf(as[i], sizeof(as[i]), "TR_a%03d", i);
        ps[i] = publisher_new(sids[i], ids[i], 1, (uint32_t)(i % 7) * 160, 90, vs[i], as[i]);
    }
    add_update(s, ps, N);
    save(s, "many-publishers");
    for (int i = 0; i < N; i++) {
        hv_lkt_participant_free(ps[i]);
    }
}

static void
scripts_leave(void)
{
    static const struct {
        const char *name;
        Livekit__LeaveRequest__Action action;
        bool can_reconnect;
        Livekit__DisconnectReason reason;
    } leaves[] = {
        {"leave-resume", LIVEKIT__LEAVE_REQUEST__ACTION__RESUME, false,
         LIVEKIT__DISCONNECT_REASON__SIGNAL_CLOSE},
        {"leave-reconnect", LIVEKIT__LEAVE_REQUEST__ACTION__RECONNECT, false,
         LIVEKIT__DISCONNECT_REASON__MIGRATION},
        {"leave-disconnect", LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT, false,
         LIVEKIT__DISCONNECT_REASON__ROOM_DELETED},
        {"leave-can-reconnect", LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT, true,
         LIVEKIT__DISCONNECT_REASON__SERVER_SHUTDOWN},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(leaves); i++) {
        GByteArray *s = script_new(F_JOIN | F_IDLE);
        add_leave(s, leaves[i].action, leaves[i].can_reconnect, leaves[i].reason);
        add_leave(s, leaves[i].action, leaves[i].can_reconnect, leaves[i].reason); /* closed */
        save(s, leaves[i].name);
    }
}

static void
scripts_misc(void)
{
    GByteArray *s = script_new(F_JOIN | F_IDLE);
    Livekit__SignalResponse r = LIVEKIT__SIGNAL_RESPONSE__INIT;
    r.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REFRESH_TOKEN;
    r.refresh_token = (char *)"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiNDVlMTgyMSIsImV4cCI6MTc5NTUzMzQwMH0"
                              ".c2lnbmF0dXJl";
    add_simple(s, &r);
    Livekit__SignalResponse pong = LIVEKIT__SIGNAL_RESPONSE__INIT;
    pong.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG;
    pong.pong = 1732460000000;
    add_simple(s, &pong);
    hv_lkt_pong_msg p;
    add(s, hv_lkt_pong(&p, 1732460000000, 1732460000050));
    save(s, "refresh-token-and-pongs");

    /* pong timestamps at the ends of int64 (the round trip is computed from them) */
    s = script_new(F_JOIN);
    static const int64_t stamps[] = {INT64_MIN, INT64_MAX, -1, 0};
    for (size_t i = 0; i < G_N_ELEMENTS(stamps); i++) {
        hv_lkt_pong_msg q;
        add(s, hv_lkt_pong(&q, stamps[i], stamps[G_N_ELEMENTS(stamps) - 1 - i]));
    }
    save(s, "pong-extreme-timestamps");

    s = script_new(F_JOIN | F_IDLE);
    Livekit__Room moved_room = LIVEKIT__ROOM__INIT;
    moved_room.name = (char *)"livestream:moved:2";
    Livekit__RoomMovedResponse rm = LIVEKIT__ROOM_MOVED_RESPONSE__INIT;
    rm.room = &moved_room;
    rm.token = (char *)"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtb3ZlZCJ9.c2ln";
    Livekit__SignalResponse mv = LIVEKIT__SIGNAL_RESPONSE__INIT;
    mv.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ROOM_MOVED;
    mv.room_moved = &rm;
    add_simple(s, &mv);
    save(s, "room-moved");
}

/* The informational messages, an answer (we never offer) and a oneof case newer than ours. */
static void
scripts_notices(void)
{
    GByteArray *s = script_new(F_JOIN);
    Livekit__SubscriptionResponse sub = LIVEKIT__SUBSCRIPTION_RESPONSE__INIT;
    sub.track_sid = (char *)"TR_video";
    sub.err = LIVEKIT__SUBSCRIPTION_ERROR__SE_TRACK_NOTFOUND;
    Livekit__SignalResponse a = LIVEKIT__SIGNAL_RESPONSE__INIT;
    a.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SUBSCRIPTION_RESPONSE;
    a.subscription_response = &sub;
    add_simple(s, &a);
    Livekit__SubscriptionPermissionUpdate perm = LIVEKIT__SUBSCRIPTION_PERMISSION_UPDATE__INIT;
    perm.participant_sid = (char *)"PA_streamer";
    perm.track_sid = (char *)"TR_audio";
    Livekit__SignalResponse b = LIVEKIT__SIGNAL_RESPONSE__INIT;
    b.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SUBSCRIPTION_PERMISSION_UPDATE;
    b.subscription_permission_update = &perm;
    add_simple(s, &b);
    Livekit__RequestResponse rr = LIVEKIT__REQUEST_RESPONSE__INIT;
    rr.request_id = 7;
    rr.reason = LIVEKIT__REQUEST_RESPONSE__REASON__NOT_ALLOWED;
    rr.message = (char *)"not allowed";
    Livekit__SignalResponse c = LIVEKIT__SIGNAL_RESPONSE__INIT;
    c.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REQUEST_RESPONSE;
    c.request_response = &rr;
    add_simple(s, &c);
    Livekit__StreamStateInfo st0 = LIVEKIT__STREAM_STATE_INFO__INIT;
    st0.participant_sid = (char *)"PA_streamer";
    st0.track_sid = (char *)"TR_video";
    st0.state = LIVEKIT__STREAM_STATE__PAUSED;
    Livekit__StreamStateInfo *sts[] = {&st0};
    Livekit__StreamStateUpdate ssu = LIVEKIT__STREAM_STATE_UPDATE__INIT;
    ssu.n_stream_states = 1;
    ssu.stream_states = sts;
    Livekit__SignalResponse d = LIVEKIT__SIGNAL_RESPONSE__INIT;
    d.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_STREAM_STATE_UPDATE;
    d.stream_state_update = &ssu;
    add_simple(s, &d);
    Livekit__SpeakerInfo sp = LIVEKIT__SPEAKER_INFO__INIT;
    sp.sid = (char *)"PA_streamer";
    sp.level = 0.5f;
    sp.active = true;
    Livekit__SpeakerInfo *sps[] = {&sp};
    Livekit__SpeakersChanged sc = LIVEKIT__SPEAKERS_CHANGED__INIT;
    sc.n_speakers = 1;
    sc.speakers = sps;
    Livekit__SignalResponse e = LIVEKIT__SIGNAL_RESPONSE__INIT;
    e.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SPEAKERS_CHANGED;
    e.speakers_changed = &sc;
    add_simple(s, &e);
    Livekit__TrackUnpublishedResponse tu = LIVEKIT__TRACK_UNPUBLISHED_RESPONSE__INIT;
    tu.track_sid = (char *)"TR_audio";
    Livekit__SignalResponse f = LIVEKIT__SIGNAL_RESPONSE__INIT;
    f.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRACK_UNPUBLISHED;
    f.track_unpublished = &tu;
    add_simple(s, &f);
    Livekit__Room upd_room = LIVEKIT__ROOM__INIT;
    upd_room.name = (char *)"livestream:7k13:2421674";
    upd_room.num_participants = 12;
    Livekit__RoomUpdate ru = LIVEKIT__ROOM_UPDATE__INIT;
    ru.room = &upd_room;
    Livekit__SignalResponse g = LIVEKIT__SIGNAL_RESPONSE__INIT;
    g.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ROOM_UPDATE;
    g.room_update = &ru;
    add_simple(s, &g);
    Livekit__TrackSubscribed ts = LIVEKIT__TRACK_SUBSCRIBED__INIT;
    ts.track_sid = (char *)"TR_video";
    Livekit__SignalResponse h = LIVEKIT__SIGNAL_RESPONSE__INIT;
    h.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRACK_SUBSCRIBED;
    h.track_subscribed = &ts;
    add_simple(s, &h);
    Livekit__MuteTrackRequest mute = LIVEKIT__MUTE_TRACK_REQUEST__INIT;
    mute.sid = (char *)"TR_audio";
    mute.muted = true;
    Livekit__SignalResponse m = LIVEKIT__SIGNAL_RESPONSE__INIT;
    m.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_MUTE;
    m.mute = &mute;
    add_simple(s, &m);
    Livekit__ReconnectResponse rc = LIVEKIT__RECONNECT_RESPONSE__INIT;
    rc.last_message_seq = 3;
    Livekit__SignalResponse n = LIVEKIT__SIGNAL_RESPONSE__INIT;
    n.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_RECONNECT;
    n.reconnect = &rc;
    add_simple(s, &n);
    /* an answer (we never offer) and a oneof case newer than our .proto (field 25) */
    Livekit__SessionDescription ans = LIVEKIT__SESSION_DESCRIPTION__INIT;
    ans.type = (char *)"answer";
    ans.sdp = (char *)"v=0\r\n";
    Livekit__SignalResponse o = LIVEKIT__SIGNAL_RESPONSE__INIT;
    o.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ANSWER;
    o.answer = &ans;
    add_simple(s, &o);
    static const uint8_t field25[] = {0xca, 0x01, 0x02, 0x08, 0x01};
    add_raw(s, field25, sizeof(field25));
    save(s, "notices");
}

static void
scripts_free_in_callbacks(void)
{
    static const char *const names[] = {"free-in-joined",        "free-in-offer",
                                        "free-in-candidate",     "free-in-streamer",
                                        "free-in-streamer-left", "free-in-closed"};
    for (unsigned which = 0; which < G_N_ELEMENTS(names); which++) {
        GByteArray *s = script_new((uint8_t)(F_FREE | F_ANSWER | F_IDLE | (which << 4)));
        add_join_with_streamer(s);
        add_offer(s, 1, offer_sdp);
        add_trickle(s, "{\"candidate\":\"candidate:1 1 udp 1 10.0.0.1 5000 typ host\"}",
                    LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
        Livekit__ParticipantInfo *gone =
            publisher_new("PA_streamer", "streamer-7k13", 9, 0, 0, NULL, NULL);
        gone->state = LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED;
        Livekit__ParticipantInfo *u[] = {gone};
        add_update(s, u, 1);
        hv_lkt_participant_free(gone);
        add_leave(s, LIVEKIT__LEAVE_REQUEST__ACTION__RECONNECT, false,
                  LIVEKIT__DISCONNECT_REASON__SIGNAL_CLOSE);
        save(s, names[which]);
    }
}

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    g_mkdir_with_parents(out_dir, 0755);
    scripts_join();
    scripts_offer_trickle();
    scripts_participants();
    scripts_leave();
    scripts_misc();
    scripts_notices();
    scripts_free_in_callbacks();
    return 0;
}

/* Fuzz target: LiveKit SignalResponse decoding (protobuf-c, src/livekit/proto) and the room state
 * machine fed with the decoded messages (src/livekit/room.c), through the same entry point the
 * socket uses (hv_lk_room_handle_message) on a detached room: no socket, the SignalRequests the
 * room sends are captured in memory.
 *
 * Input: one flags byte, then frames "[u16 big-endian length][SignalResponse bytes]" fed in
 * order (a length past the end takes the rest). Flags:
 *   0x01  feed a canned JoinResponse first (room joined, one publisher), so the fuzzer spends its
 *         time on the joined state
 *   0x02  free the room from inside a callback (re-entrancy): which one is (flags >> 4) & 7:
 *         0 joined, 1 offer, 2 candidate, 3 streamer, 4 streamer left, 5 closed
 *   0x04  answer offers and send candidates back from the callbacks, as the session does
 *   0x08  run the main context's ready sources after each message (delivers on_closed)
 * Oracles: no crash, no GLib critical, and every captured SignalRequest decodes.
 */
#include "../livekit/lk-builders.h"
#include "fuzz-common.h"
#include "livekit/livekit-proto.h"
#include "livekit/room-private.h"

#define F_JOIN         0x01
#define F_FREE         0x02
#define F_ANSWER       0x04
#define F_IDLE         0x08
#define FREE_IN(flags) (((flags) >> 4) & 7)

/* pump.fun's join answer fixture (tests/data/pumpfun/join-response.json): a viewer token. */
static const char token[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ2aWRlbyI6eyJyb29tSm9pbiI6dHJ1ZSwicm9vbUNyZWF0ZSI6Z"
    "mFsc2UsImNhblB1Ymxpc2giOmZhbHNlLCJjYW5TdWJzY3JpYmUiOnRydWUsImNhblB1Ymxpc2hEYXRhIjp0cnVlLCJy"
    "b29tIjoibGl2ZXN0cmVhbTo3azEza3NtOXlmV1lCcVZVcnZkRzV0bzFlY3k0QWhWS3kycXNuYlBlcHVtcDoyNDIxNjc0"
    "IiwiaGlkZGVuIjpmYWxzZX0sIm1ldGFkYXRhIjoie1wiYW5vblwiOnRydWUsXCJyb2xlXCI6XCJ2aWV3ZXJcIn0iLCJp"
    "c3MiOiJkZXZrZXkiLCJleHAiOjE3OTU1MzMzMDAsIm5iZiI6MCwic3ViIjoiYjQ1ZTE4MjEifQ.ZyDqvKNbe4djZxvwV"
    "GwnO6tk6pRhPV_9zJpOh9jP-EI";

static uint8_t *join_bytes;
static size_t join_len;

typedef struct {
    hv_lk_room *room; /* NULL once freed */
    unsigned flags;
} harness;

/* A JoinResponse like LiveKit Cloud's: us, one streamer with video + audio, STUN and TURN. */
static void
build_join(void)
{
    const hv_lkt_track tracks[] = {
        {.sid = "TR_video",
         .type = LIVEKIT__TRACK_TYPE__VIDEO,
         .mime = "video/H264",
         .width = 1280,
         .height = 720},
        {.sid = "TR_audio", .type = LIVEKIT__TRACK_TYPE__AUDIO, .mime = "audio/opus"},
    };
    Livekit__ParticipantInfo *streamer = hv_lkt_participant_new(
        "PA_streamer", "streamer-7k13", LIVEKIT__PARTICIPANT_INFO__STATE__ACTIVE, 3, tracks, 2);
    static const char *const stun[] = {"stun:stun.example.org:3478", NULL};
    static const char *const turn[] = {"turns:turn.example.org:443?transport=tcp", NULL};
    hv_lkt_join_msg m;
    const hv_lkt_join_spec spec = {
        .room_sid = "RM_fuzz",
        .room_name = "livestream:7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump:2421674",
        .others = &streamer,
        .n_others = 1,
        .stun = stun,
        .turn = turn,
        .ping_interval = 5,
        .ping_timeout = 15,
        .region = "fuzz"};
    GBytes *b = hv_lkt_pack(&hv_lkt_join(&m, &spec)->base);
    join_bytes = g_bytes_unref_to_data(b, &join_len);
    hv_lkt_participant_free(streamer);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_setup_logging();
    build_join();
    return 0;
}

static void
maybe_free(harness *h, unsigned which)
{
    if ((h->flags & F_FREE) && FREE_IN(h->flags) == which && h->room != NULL) {
        hv_lk_room_free(h->room);
        h->room = NULL;
    }
}

static void
on_joined(const hv_lk_join_info *info, void *ud)
{
    if (info->room_name == NULL || info->identity == NULL || info->ice_servers == NULL) {
        abort();
    }
    maybe_free(ud, 0);
}

static void
on_offer(const char *sdp, uint32_t offer_id, GHashTable *mid_to_track_id, void *ud)
{
    harness *h = ud;
    if (sdp == NULL || mid_to_track_id == NULL) {
        abort();
    }
    if ((h->flags & F_ANSWER) && h->room != NULL) {
        hv_lk_room_send_answer(h->room, sdp, offer_id);
    }
    maybe_free(h, 1);
}

static void
on_candidate(const char *candidate, const char *sdp_mid, int mline_index, void *ud)
{
    harness *h = ud;
    if (candidate == NULL || sdp_mid == NULL || mline_index < 0) {
        abort();
    }
    if ((h->flags & F_ANSWER) && h->room != NULL) {
        /* what webrtcbin would send back: our own candidate, same mid */
        hv_lk_room_send_candidate(h->room, candidate, sdp_mid, mline_index);
    }
    maybe_free(h, 2);
}

static void
on_streamer(const char *participant_sid, const char *identity, const hv_lk_track *tracks,
            size_t n_tracks, void *ud)
{
    if (participant_sid == NULL || identity == NULL || n_tracks == 0) {
        abort();
    }
    for (size_t i = 0; i < n_tracks; i++) {
        if (tracks[i].sid == NULL || tracks[i].mime_type == NULL || tracks[i].width < 0 ||
            tracks[i].height < 0) {
            abort();
        }
    }
    maybe_free(ud, 3);
}

static void
on_streamer_left(const char *identity, void *ud)
{
    if (identity == NULL) {
        abort();
    }
    maybe_free(ud, 4);
}

static void
on_closed(hv_lk_close_reason reason, bool retryable, const char *detail, void *ud)
{
    (void)reason;
    (void)retryable;
    if (detail == NULL) {
        abort();
    }
    maybe_free(ud, 5);
}

static const hv_lk_room_callbacks callbacks = {
    .on_joined = on_joined,
    .on_offer = on_offer,
    .on_remote_candidate = on_candidate,
    .on_streamer = on_streamer,
    .on_streamer_left = on_streamer_left,
    .on_closed = on_closed,
};

static void
run_ready_sources(void)
{
    for (int i = 0; i < 8 && g_main_context_iteration(NULL, FALSE); i++) {
    }
}

static void
check_sent(hv_lk_room *room)
{
    GPtrArray *sent = hv_lk_room_sent(room);
    for (guint i = 0; i < sent->len; i++) {
        gsize len = 0;
        const uint8_t *buf = g_bytes_get_data(g_ptr_array_index(sent, i), &len);
        Livekit__SignalRequest *req = livekit__signal_request__unpack(NULL, len, buf);
        if (req == NULL) {
            abort();
        }
        livekit__signal_request__free_unpacked(req, NULL);
    }
    g_ptr_array_set_size(sent, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    harness h = {.flags = data[0]};
    data++;
    size--;
    hv_lk_room_config cfg = {
        .url = "wss://fuzz.invalid", .token = token, .connect_timeout_ms = 15000};
    h.room = hv_lk_room_new_detached(&cfg, &callbacks, &h);
    if (h.flags & F_JOIN) {
        (void)hv_lk_room_handle_message(h.room, join_bytes, join_len);
    }
    const uint8_t *frame;
    size_t len;
    while (h.room != NULL && hv_fuzz_next_frame(&data, &size, &frame, &len)) {
        (void)hv_lk_room_handle_message(h.room, frame, len);
        if (h.room != NULL) {
            check_sent(h.room);
        }
        if (h.flags & F_IDLE) {
            run_ready_sources();
        }
    }
    if (h.room != NULL) {
        hv_lk_room_stats st;
        hv_lk_room_get_stats(h.room, &st);
        if (hv_lk_room_token(h.room) == NULL) {
            abort();
        }
        hv_lk_room_free(h.room);
    }
    /* Nothing of a freed room may still fire (its sources were destroyed). */
    run_ready_sources();
    return 0;
}

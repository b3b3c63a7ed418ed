/* Unit tests for the livekit module without a network: JWT decoding against the tests/data
 * fixture, the hand-written .proto against the spec's field numbers and worked examples,
 * tolerance of unknown oneof cases, the signalling URL, and the room state machine driven by
 * scripted SignalResponses on a detached room (no socket; sent requests are captured).
 *
 * Main thread; timers run on the default main context with shortened protocol seconds.
 */
#include "../common/fixture.h"
#include "livekit/room-private.h"
#include "lk-builders.h"

#include "core/error.h"
#include "core/util.h"
#include "livekit/livekit-proto.h"

#include <glib.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------------------------- */

static json_t *
load_json_fixture(const char *rel)
{
    g_autofree char *text = hv_test_read_fixture(rel, NULL);
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    g_assert_nonnull(root);
    return root;
}

static char *
fixture_token(void)
{
    json_t *root = load_json_fixture("pumpfun/join-response.json");
    char *token = g_strdup(json_string_value(json_object_get(root, "token")));
    json_decref(root);
    g_assert_nonnull(token);
    return token;
}

static int
feed(hv_lk_room *room, const Livekit__SignalResponse *resp)
{
    g_autoptr(GBytes) b = hv_lkt_pack(&resp->base);
    gsize len = 0;
    const uint8_t *data = g_bytes_get_data(b, &len);
    return hv_lk_room_handle_message(room, data, len);
}

static gboolean
on_wake(gpointer data)
{
    *(bool *)data = true;
    return G_SOURCE_REMOVE;
}

/* Runs the default main context until *flag or timeout_ms passes. */
static void
run_until(const bool *flag, int timeout_ms)
{
    bool timed_out = false;
    guint id = g_timeout_add(timeout_ms, on_wake, &timed_out);
    while (!*flag && !timed_out) {
        g_main_context_iteration(NULL, TRUE);
    }
    if (!timed_out) {
        g_source_remove(id);
    }
}

static void
run_for(int ms)
{
    bool never = false;
    run_until(&never, ms);
}

/* ---- a recorder for every callback ---------------------------------------------------------- */

typedef struct {
    int joined;
    char **ice_servers;
    int ping_interval_s, ping_timeout_s;
    char *identity, *participant_sid, *room_name, *server_version;
    int server_protocol;
    int offers;
    char *offer_sdp;
    uint32_t offer_id;
    GHashTable *offer_map; /* copy */
    int candidates;
    char *cand, *cand_mid;
    int cand_index;
    int streamers;
    char *streamer_identity, *streamer_sid;
    GPtrArray *streamer_tracks; /* "TR_x:video" strings of the last on_streamer */
    int lefts;
    char *left_identity;
    int sub_errors;
    char *sub_error; /* "TR_x:SE_..." of the last on_subscription_error */
    int closed;
    bool closed_flag;
    hv_lk_close_reason reason;
    bool retryable;
    char *detail;
    /* re-entrancy probes */
    hv_lk_room *room;
    bool free_in_offer;
    bool free_in_closed;
} recorder;

static void
recorder_clear(recorder *r)
{
    g_strfreev(r->ice_servers);
    g_free(r->identity);
    g_free(r->participant_sid);
    g_free(r->room_name);
    g_free(r->server_version);
    g_free(r->offer_sdp);
    if (r->offer_map != NULL) {
        g_hash_table_unref(r->offer_map);
    }
    g_free(r->cand);
    g_free(r->cand_mid);
    g_free(r->streamer_identity);
    g_free(r->streamer_sid);
    if (r->streamer_tracks != NULL) {
        g_ptr_array_unref(r->streamer_tracks);
    }
    g_free(r->left_identity);
    g_free(r->sub_error);
    g_free(r->detail);
    memset(r, 0, sizeof(*r));
}

static void
rec_joined(const hv_lk_join_info *info, void *ud)
{
    recorder *r = ud;
    r->joined++;
    g_strfreev(r->ice_servers);
    r->ice_servers = g_strdupv(info->ice_servers);
    r->ping_interval_s = info->ping_interval_s;
    r->ping_timeout_s = info->ping_timeout_s;
    g_free(r->identity);
    r->identity = g_strdup(info->identity);
    g_free(r->participant_sid);
    r->participant_sid = g_strdup(info->participant_sid);
    g_free(r->room_name);
    r->room_name = g_strdup(info->room_name);
    g_free(r->server_version);
    r->server_version = g_strdup(info->server_version);
    r->server_protocol = info->server_protocol;
}

static void
rec_offer(const char *sdp, uint32_t offer_id, GHashTable *map, void *ud)
{
    recorder *r = ud;
    r->offers++;
    g_free(r->offer_sdp);
    r->offer_sdp = g_strdup(sdp);
    r->offer_id = offer_id;
    if (r->offer_map != NULL) {
        g_hash_table_unref(r->offer_map);
    }
    r->offer_map = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GHashTableIter it;
    gpointer k = NULL;
    gpointer v = NULL;
    g_hash_table_iter_init(&it, map);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_hash_table_insert(r->offer_map, g_strdup(k), g_strdup(v));
    }
    if (r->free_in_offer) {
        hv_lk_room_free(r->room);
        r->room = NULL;
    }
}

static void
rec_candidate(const char *candidate, const char *mid, int index, void *ud)
{
    recorder *r = ud;
    r->candidates++;
    g_free(r->cand);
    r->cand = g_strdup(candidate);
    g_free(r->cand_mid);
    r->cand_mid = g_strdup(mid);
    r->cand_index = index;
}

static void
rec_streamer(const char *sid, const char *identity, const hv_lk_track *tracks, size_t n, void *ud)
{
    recorder *r = ud;
    r->streamers++;
    g_free(r->streamer_identity);
    r->streamer_identity = g_strdup(identity);
    g_free(r->streamer_sid);
    r->streamer_sid = g_strdup(sid);
    if (r->streamer_tracks != NULL) {
        g_ptr_array_unref(r->streamer_tracks);
    }
    r->streamer_tracks = g_ptr_array_new_with_free_func(g_free);
    for (size_t i = 0; i < n; i++) {
        g_ptr_array_add(r->streamer_tracks, g_strdup_printf("%s:%s:%dx%d", tracks[i].sid,
                                                            tracks[i].is_video ? "video" : "audio",
                                                            tracks[i].width, tracks[i].height));
        g_assert_nonnull(tracks[i].codecs);
        g_assert_cmpstr(tracks[i].codecs[0], ==, tracks[i].mime_type);
    }
}

static void
rec_sub_error(const char *track_sid, const char *error, void *ud)
{
    recorder *r = ud;
    r->sub_errors++;
    g_free(r->sub_error);
    r->sub_error = g_strdup_printf("%s:%s", track_sid, error);
}

static void
rec_left(const char *identity, void *ud)
{
    recorder *r = ud;
    r->lefts++;
    g_free(r->left_identity);
    r->left_identity = g_strdup(identity);
}

static void
rec_closed(hv_lk_close_reason reason, bool retryable, const char *detail, void *ud)
{
    recorder *r = ud;
    r->closed++;
    r->closed_flag = true;
    r->reason = reason;
    r->retryable = retryable;
    g_free(r->detail);
    r->detail = g_strdup(detail);
    if (r->free_in_closed) {
        hv_lk_room_free(r->room);
        r->room = NULL;
    }
}

static const hv_lk_room_callbacks rec_cb = {
    .on_joined = rec_joined,
    .on_offer = rec_offer,
    .on_remote_candidate = rec_candidate,
    .on_streamer = rec_streamer,
    .on_streamer_left = rec_left,
    .on_subscription_error = rec_sub_error,
    .on_closed = rec_closed,
};

/* A detached room for the stream mint (nullable) that keeps streamer (nullable). */
static hv_lk_room *
detached_room_for(recorder *r, const char *mint, const char *streamer)
{
    g_autofree char *token = fixture_token();
    hv_lk_room_config cfg = {.url = "wss://unused.invalid",
                             .token = token,
                             .connect_timeout_ms = 10000,
                             .log_mint = mint,
                             .streamer_identity = streamer};
    hv_lk_room *room = hv_lk_room_new_detached(&cfg, &rec_cb, r);
    r->room = room;
    return room;
}

static hv_lk_room *
detached_room(recorder *r)
{
    return detached_room_for(r, NULL, NULL);
}

/* ---- message builders (lk-builders.c) ------------------------------------------------------ */

/* Sends a join with the given other participants and ping settings. */
static void
feed_join(hv_lk_room *room, Livekit__ParticipantInfo **others, size_t n_others, int ping_interval,
          int ping_timeout)
{
    static const char *const stun[] = {"stun:stun.example.org:3478", "stuns:ignored:443", NULL};
    static const char *const turn[] = {"turn:turn.example.org:3478?transport=udp",
                                       "turns:turn.example.org:443?transport=tcp",
                                       "turn:turn.example.org:443?transport=tcp",
                                       "turn:turn.example.org:3478?transport=tcp", NULL};
    hv_lkt_join_msg m;
    const hv_lkt_join_spec spec = {.others = others,
                                   .n_others = n_others,
                                   .stun = stun,
                                   .turn = turn,
                                   .ping_interval = ping_interval,
                                   .ping_timeout = ping_timeout,
                                   .region = "test"};
    g_assert_cmpint(feed(room, hv_lkt_join(&m, &spec)), ==, 0);
}

static void
feed_update(hv_lk_room *room, Livekit__ParticipantInfo **ps, size_t n)
{
    hv_lkt_update_msg m;
    g_assert_cmpint(feed(room, hv_lkt_update(&m, ps, n)), ==, 0);
}

/* (transfer full) The i-th captured request, decoded. */
static Livekit__SignalRequest *
sent_at(hv_lk_room *room, guint i)
{
    GPtrArray *sent = hv_lk_room_sent(room);
    g_assert_cmpuint(i, <, sent->len);
    gsize len = 0;
    const uint8_t *data = g_bytes_get_data(g_ptr_array_index(sent, i), &len);
    Livekit__SignalRequest *req = livekit__signal_request__unpack(NULL, len, data);
    if (req == NULL) {
        g_error("request %u does not decode", i);
        return NULL;
    }
    return req;
}

static guint
count_sent(hv_lk_room *room, Livekit__SignalRequest__MessageCase which)
{
    guint n = 0;
    GPtrArray *sent = hv_lk_room_sent(room);
    for (guint i = 0; i < sent->len; i++) {
        Livekit__SignalRequest *req = sent_at(room, i);
        n += req->message_case == which;
        livekit__signal_request__free_unpacked(req, NULL);
    }
    return n;
}

/* Asserts that request i is a subscription of exactly the given sids (any order). */
static void
assert_subscription(hv_lk_room *room, guint i, bool subscribe, const char *const *sids, size_t n)
{
    Livekit__SignalRequest *req = sent_at(room, i);
    g_assert_cmpint(req->message_case, ==, LIVEKIT__SIGNAL_REQUEST__MESSAGE_SUBSCRIPTION);
    g_assert_cmpint(req->subscription->subscribe, ==, subscribe);
    g_assert_cmpuint(req->subscription->n_track_sids, ==, n);
    for (size_t k = 0; k < n; k++) {
        bool found = false;
        for (size_t j = 0; j < req->subscription->n_track_sids; j++) {
            found = found || strcmp(req->subscription->track_sids[j], sids[k]) == 0;
        }
        g_assert_true(found);
    }
    livekit__signal_request__free_unpacked(req, NULL);
}

/* ---- 1. tokens ----------------------------------------------------------------------------- */

static void
test_token_fixture(void)
{
    g_autofree char *token = fixture_token();
    json_t *claims = load_json_fixture("pumpfun/join-token-claims.json");
    json_t *payload = json_object_get(claims, "payload");
    hv_lk_token_info ti;
    g_autoptr(GError) error = NULL;
    g_assert_true(hv_lk_token_decode(token, &ti, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(ti.identity, ==, json_string_value(json_object_get(payload, "sub")));
    g_assert_cmpstr(ti.issuer, ==, json_string_value(json_object_get(payload, "iss")));
    g_assert_cmpstr(ti.room, ==,
                    json_string_value(json_object_get(json_object_get(payload, "video"), "room")));
    g_assert_cmpint(ti.expires_at_s, ==, json_integer_value(json_object_get(payload, "exp")));
    g_assert_true(ti.can_subscribe);
    g_assert_cmpstr(ti.identity, ==, "b45e1821");
    hv_lk_token_info_clear(&ti);
    json_decref(claims);

    g_autofree char *shown = hv_lk_token_redact(token);
    g_assert_cmpstr(shown, ==, "eyJhbGci…");
}

static void
test_token_garbage(void)
{
    static const char *const bad[] = {
        "",
        "abc",
        "a.b",
        "e30.e30.x.y",                         /* four parts */
        "e30..x",                              /* empty payload */
        "e30.e3$.x",                           /* not base64url */
        "e30.e30=.x",                          /* padding is not base64url */
        "e30.bm90IGpzb24.x",                   /* "not json" */
        "e30.WzEsMl0.x",                       /* [1,2]: not an object */
        "e30.e.x",                             /* one dangling character */
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4Ig", /* two parts */
    };
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        hv_lk_token_info ti;
        g_autoptr(GError) error = NULL;
        g_assert_false(hv_lk_token_decode(bad[i], &ti, &error));
        g_assert_error(error, HV_ERROR, HV_EINVAL);
        hv_lk_token_info_clear(&ti);
    }
    hv_lk_token_info ti;
    g_assert_false(hv_lk_token_decode(NULL, &ti, NULL));
    /* A minimal token: "{}" payload decodes, with empty claims and canSubscribe true. */
    g_assert_true(hv_lk_token_decode("e30.e30.sig", &ti, NULL));
    g_assert_cmpstr(ti.identity, ==, "");
    g_assert_cmpstr(ti.room, ==, "");
    g_assert_cmpint(ti.expires_at_s, ==, 0);
    g_assert_true(ti.can_subscribe);
    hv_lk_token_info_clear(&ti);
    /* canSubscribe false is honoured: {"video":{"canSubscribe":false}} */
    g_assert_true(
        hv_lk_token_decode("e30.eyJ2aWRlbyI6eyJjYW5TdWJzY3JpYmUiOmZhbHNlfX0.sig", &ti, NULL));
    g_assert_false(ti.can_subscribe);
    hv_lk_token_info_clear(&ti);
    /* An over-long token is refused without being read to the end. */
    g_autofree char *huge = g_strnfill(20000, 'e');
    g_assert_false(hv_lk_token_decode(huge, &ti, NULL));
    g_autofree char *shown = hv_lk_token_redact("short");
    g_assert_cmpstr(shown, ==, "…");
}

/* ---- 2. protobuf ----------------------------------------------------------------------------- */

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const char *field;
    unsigned number;
} field_number;

/* The spec's tables (§3.2–3.4), transcribed independently of the .proto. */
static const field_number spec_numbers[] = {
    {&livekit__signal_request__descriptor, "offer", 1},
    {&livekit__signal_request__descriptor, "answer", 2},
    {&livekit__signal_request__descriptor, "trickle", 3},
    {&livekit__signal_request__descriptor, "subscription", 6},
    {&livekit__signal_request__descriptor, "track_setting", 7},
    {&livekit__signal_request__descriptor, "leave", 8},
    {&livekit__signal_request__descriptor, "ping", 14},
    {&livekit__signal_request__descriptor, "ping_req", 16},
    {&livekit__signal_response__descriptor, "join", 1},
    {&livekit__signal_response__descriptor, "answer", 2},
    {&livekit__signal_response__descriptor, "offer", 3},
    {&livekit__signal_response__descriptor, "trickle", 4},
    {&livekit__signal_response__descriptor, "update", 5},
    {&livekit__signal_response__descriptor, "track_published", 6},
    {&livekit__signal_response__descriptor, "leave", 8},
    {&livekit__signal_response__descriptor, "mute", 9},
    {&livekit__signal_response__descriptor, "speakers_changed", 10},
    {&livekit__signal_response__descriptor, "room_update", 11},
    {&livekit__signal_response__descriptor, "stream_state_update", 13},
    {&livekit__signal_response__descriptor, "subscription_permission_update", 15},
    {&livekit__signal_response__descriptor, "refresh_token", 16},
    {&livekit__signal_response__descriptor, "track_unpublished", 17},
    {&livekit__signal_response__descriptor, "pong", 18},
    {&livekit__signal_response__descriptor, "reconnect", 19},
    {&livekit__signal_response__descriptor, "pong_resp", 20},
    {&livekit__signal_response__descriptor, "subscription_response", 21},
    {&livekit__signal_response__descriptor, "request_response", 22},
    {&livekit__signal_response__descriptor, "track_subscribed", 23},
    {&livekit__signal_response__descriptor, "room_moved", 24},
    {&livekit__join_response__descriptor, "room", 1},
    {&livekit__join_response__descriptor, "participant", 2},
    {&livekit__join_response__descriptor, "other_participants", 3},
    {&livekit__join_response__descriptor, "server_version", 4},
    {&livekit__join_response__descriptor, "ice_servers", 5},
    {&livekit__join_response__descriptor, "subscriber_primary", 6},
    {&livekit__join_response__descriptor, "alternative_url", 7},
    {&livekit__join_response__descriptor, "client_configuration", 8},
    {&livekit__join_response__descriptor, "server_region", 9},
    {&livekit__join_response__descriptor, "ping_timeout", 10},
    {&livekit__join_response__descriptor, "ping_interval", 11},
    {&livekit__join_response__descriptor, "server_info", 12},
    {&livekit__join_response__descriptor, "sif_trailer", 13},
    {&livekit__join_response__descriptor, "fast_publish", 15},
    {&livekit__reconnect_response__descriptor, "ice_servers", 1},
    {&livekit__reconnect_response__descriptor, "last_message_seq", 4},
    {&livekit__session_description__descriptor, "type", 1},
    {&livekit__session_description__descriptor, "sdp", 2},
    {&livekit__session_description__descriptor, "id", 3},
    {&livekit__session_description__descriptor, "mid_to_track_id", 4},
    {&livekit__trickle_request__descriptor, "candidateInit", 1},
    {&livekit__trickle_request__descriptor, "target", 2},
    {&livekit__trickle_request__descriptor, "final", 3},
    {&livekit__participant_update__descriptor, "participants", 1},
    {&livekit__participant_info__descriptor, "sid", 1},
    {&livekit__participant_info__descriptor, "identity", 2},
    {&livekit__participant_info__descriptor, "state", 3},
    {&livekit__participant_info__descriptor, "tracks", 4},
    {&livekit__participant_info__descriptor, "metadata", 5},
    {&livekit__participant_info__descriptor, "joined_at", 6},
    {&livekit__participant_info__descriptor, "name", 9},
    {&livekit__participant_info__descriptor, "version", 10},
    {&livekit__participant_info__descriptor, "region", 12},
    {&livekit__participant_info__descriptor, "is_publisher", 13},
    {&livekit__participant_info__descriptor, "kind", 14},
    {&livekit__participant_info__descriptor, "attributes", 15},
    {&livekit__participant_info__descriptor, "disconnect_reason", 16},
    {&livekit__participant_info__descriptor, "joined_at_ms", 17},
    {&livekit__track_info__descriptor, "sid", 1},
    {&livekit__track_info__descriptor, "type", 2},
    {&livekit__track_info__descriptor, "name", 3},
    {&livekit__track_info__descriptor, "muted", 4},
    {&livekit__track_info__descriptor, "width", 5},
    {&livekit__track_info__descriptor, "height", 6},
    {&livekit__track_info__descriptor, "simulcast", 7},
    {&livekit__track_info__descriptor, "disable_dtx", 8},
    {&livekit__track_info__descriptor, "source", 9},
    {&livekit__track_info__descriptor, "mime_type", 11},
    {&livekit__track_info__descriptor, "mid", 12},
    {&livekit__track_info__descriptor, "stereo", 14},
    {&livekit__track_info__descriptor, "disable_red", 15},
    {&livekit__track_info__descriptor, "encryption", 16},
    {&livekit__track_info__descriptor, "stream", 17},
    {&livekit__room__descriptor, "sid", 1},
    {&livekit__room__descriptor, "name", 2},
    {&livekit__room__descriptor, "empty_timeout", 3},
    {&livekit__room__descriptor, "max_participants", 4},
    {&livekit__room__descriptor, "creation_time", 5},
    {&livekit__room__descriptor, "turn_password", 6},
    {&livekit__room__descriptor, "metadata", 8},
    {&livekit__room__descriptor, "num_participants", 9},
    {&livekit__room__descriptor, "active_recording", 10},
    {&livekit__room__descriptor, "num_publishers", 11},
    {&livekit__room__descriptor, "departure_timeout", 14},
    {&livekit__room__descriptor, "creation_time_ms", 15},
    {&livekit__server_info__descriptor, "edition", 1},
    {&livekit__server_info__descriptor, "version", 2},
    {&livekit__server_info__descriptor, "protocol", 3},
    {&livekit__server_info__descriptor, "region", 4},
    {&livekit__server_info__descriptor, "node_id", 5},
    {&livekit__server_info__descriptor, "debug_info", 6},
    {&livekit__server_info__descriptor, "agent_protocol", 7},
    {&livekit__client_configuration__descriptor, "video", 1},
    {&livekit__client_configuration__descriptor, "screen", 2},
    {&livekit__client_configuration__descriptor, "resume_connection", 3},
    {&livekit__client_configuration__descriptor, "force_relay", 5},
    {&livekit__iceserver__descriptor, "urls", 1},
    {&livekit__iceserver__descriptor, "username", 2},
    {&livekit__iceserver__descriptor, "credential", 3},
    {&livekit__leave_request__descriptor, "can_reconnect", 1},
    {&livekit__leave_request__descriptor, "reason", 2},
    {&livekit__leave_request__descriptor, "action", 3},
    {&livekit__leave_request__descriptor, "regions", 4},
    {&livekit__update_subscription__descriptor, "track_sids", 1},
    {&livekit__update_subscription__descriptor, "subscribe", 2},
    {&livekit__update_subscription__descriptor, "participant_tracks", 3},
    {&livekit__participant_tracks__descriptor, "participant_sid", 1},
    {&livekit__participant_tracks__descriptor, "track_sids", 2},
    {&livekit__update_track_settings__descriptor, "track_sids", 1},
    {&livekit__update_track_settings__descriptor, "disabled", 3},
    {&livekit__update_track_settings__descriptor, "quality", 4},
    {&livekit__update_track_settings__descriptor, "width", 5},
    {&livekit__update_track_settings__descriptor, "height", 6},
    {&livekit__update_track_settings__descriptor, "fps", 7},
    {&livekit__update_track_settings__descriptor, "priority", 8},
    {&livekit__ping__descriptor, "timestamp", 1},
    {&livekit__ping__descriptor, "rtt", 2},
    {&livekit__pong__descriptor, "last_ping_timestamp", 1},
    {&livekit__pong__descriptor, "timestamp", 2},
    {&livekit__stream_state_info__descriptor, "state", 3},
    {&livekit__subscription_permission_update__descriptor, "allowed", 3},
    {&livekit__subscription_response__descriptor, "err", 2},
    {&livekit__request_response__descriptor, "message", 3},
    {&livekit__room_moved_response__descriptor, "token", 2},
    {&livekit__room_moved_response__descriptor, "other_participants", 4},
    {&livekit__speaker_info__descriptor, "level", 2},
    {&livekit__mute_track_request__descriptor, "muted", 2},
    {&livekit__track_published_response__descriptor, "track", 2},
};

static void
test_proto_field_numbers(void)
{
    for (size_t i = 0; i < G_N_ELEMENTS(spec_numbers); i++) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
            spec_numbers[i].desc, spec_numbers[i].field);
        if (f == NULL || f->id != spec_numbers[i].number) {
            g_error("%s.%s: expected field %u, got %d", spec_numbers[i].desc->name,
                    spec_numbers[i].field, spec_numbers[i].number, f != NULL ? (int)f->id : -1);
        }
    }
    /* Enum values the room relies on (spec §3.5). */
    g_assert_cmpint(LIVEKIT__SIGNAL_TARGET__SUBSCRIBER, ==, 1);
    g_assert_cmpint(LIVEKIT__TRACK_TYPE__VIDEO, ==, 1);
    g_assert_cmpint(LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED, ==, 3);
    g_assert_cmpint(LIVEKIT__LEAVE_REQUEST__ACTION__RECONNECT, ==, 2);
    g_assert_cmpint(LIVEKIT__DISCONNECT_REASON__CLIENT_INITIATED, ==, 1);
    g_assert_cmpint(LIVEKIT__DISCONNECT_REASON__AGENT_ERROR, ==, 16);
    g_assert_cmpint(LIVEKIT__VIDEO_QUALITY__HIGH, ==, 2);
}

static void
assert_bytes(GBytes *b, const uint8_t *want, size_t want_len)
{
    gsize len = 0;
    const uint8_t *data = g_bytes_get_data(b, &len);
    g_assert_cmpmem(data, len, want, want_len);
}

/* The worked examples of spec §3.1, byte for byte. */
static void
test_proto_worked_examples(void)
{
    Livekit__Ping ping = LIVEKIT__PING__INIT;
    ping.timestamp = 1700000000000;
    Livekit__SignalRequest req = LIVEKIT__SIGNAL_REQUEST__INIT;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING_REQ;
    req.ping_req = &ping;
    static const uint8_t ping_hex[] = {0x82, 0x01, 0x07, 0x08, 0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31};
    g_autoptr(GBytes) b1 = hv_lkt_pack(&req.base);
    assert_bytes(b1, ping_hex, sizeof(ping_hex));

    Livekit__LeaveRequest leave = LIVEKIT__LEAVE_REQUEST__INIT;
    leave.reason = LIVEKIT__DISCONNECT_REASON__CLIENT_INITIATED;
    leave.action = LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_LEAVE;
    req.leave = &leave;
    static const uint8_t leave_hex[] = {0x42, 0x02, 0x10, 0x01};
    g_autoptr(GBytes) b2 = hv_lkt_pack(&req.base);
    assert_bytes(b2, leave_hex, sizeof(leave_hex));

    char *sids[] = {(char *)"TR_abc"};
    Livekit__UpdateSubscription us = LIVEKIT__UPDATE_SUBSCRIPTION__INIT;
    us.n_track_sids = 1;
    us.track_sids = sids;
    us.subscribe = true;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_SUBSCRIPTION;
    req.subscription = &us;
    static const uint8_t sub_hex[] = {0x32, 0x0a, 0x0a, 0x06, 0x54, 0x52,
                                      0x5f, 0x61, 0x62, 0x63, 0x10, 0x01};
    g_autoptr(GBytes) b3 = hv_lkt_pack(&req.base);
    assert_bytes(b3, sub_hex, sizeof(sub_hex));

    Livekit__UpdateTrackSettings ts = LIVEKIT__UPDATE_TRACK_SETTINGS__INIT;
    ts.n_track_sids = 1;
    ts.track_sids = sids;
    ts.quality = LIVEKIT__VIDEO_QUALITY__HIGH;
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_TRACK_SETTING;
    req.track_setting = &ts;
    static const uint8_t ts_hex[] = {0x3a, 0x0a, 0x0a, 0x06, 0x54, 0x52,
                                     0x5f, 0x61, 0x62, 0x63, 0x20, 0x02};
    g_autoptr(GBytes) b4 = hv_lkt_pack(&req.base);
    assert_bytes(b4, ts_hex, sizeof(ts_hex));

    /* Envelope tag bytes of the responses (§3.1 table). */
    Livekit__SignalResponse resp = LIVEKIT__SIGNAL_RESPONSE__INIT;
    resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REFRESH_TOKEN;
    resp.refresh_token = (char *)"t";
    static const uint8_t rt_hex[] = {0x82, 0x01, 0x01, 't'};
    g_autoptr(GBytes) b5 = hv_lkt_pack(&resp.base);
    assert_bytes(b5, rt_hex, sizeof(rt_hex));
    resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG;
    resp.pong = 1;
    static const uint8_t pong_hex[] = {0x90, 0x01, 0x01};
    g_autoptr(GBytes) b6 = hv_lkt_pack(&resp.base);
    assert_bytes(b6, pong_hex, sizeof(pong_hex));
}

/* pack → unpack → pack must give the same bytes (and a non-trivial encoding). */
static void
roundtrip(const ProtobufCMessage *m)
{
    g_autoptr(GBytes) a = hv_lkt_pack(m);
    gsize len = 0;
    const uint8_t *data = g_bytes_get_data(a, &len);
    g_assert_cmpuint(len, >, 0);
    ProtobufCMessage *back = protobuf_c_message_unpack(m->descriptor, NULL, len, data);
    if (back == NULL) {
        g_error("%s does not decode", m->descriptor->name);
    }
    g_autoptr(GBytes) b = hv_lkt_pack(back);
    if (!g_bytes_equal(a, b)) {
        g_error("%s does not round-trip", m->descriptor->name);
    }
    protobuf_c_message_free_unpacked(back, NULL);
}

/* Sample messages used in both directions; the struct holds every piece they point to. */
typedef struct {
    Livekit__SessionDescription sd;
    Livekit__SessionDescription__MidToTrackIdEntry e1;
    Livekit__SessionDescription__MidToTrackIdEntry *entries[1];
    Livekit__TrickleRequest tr;
    Livekit__RegionInfo ri;
    Livekit__RegionInfo *ris[1];
    Livekit__RegionSettings rs;
    Livekit__LeaveRequest leave;
} shared_samples;

static void
shared_samples_init(shared_samples *x)
{
    livekit__session_description__init(&x->sd);
    x->sd.type = (char *)"answer";
    x->sd.sdp = (char *)"v=0\r\n";
    x->sd.id = 7;
    livekit__session_description__mid_to_track_id_entry__init(&x->e1);
    x->e1.key = (char *)"1";
    x->e1.value = (char *)"TR_v";
    x->entries[0] = &x->e1;
    x->sd.n_mid_to_track_id = 1;
    x->sd.mid_to_track_id = x->entries;
    livekit__trickle_request__init(&x->tr);
    x->tr.candidateinit = (char *)"{\"candidate\":\"candidate:1\"}";
    x->tr.target = LIVEKIT__SIGNAL_TARGET__SUBSCRIBER;
    x->tr.final = true;
    livekit__region_info__init(&x->ri);
    x->ri.region = (char *)"eu";
    x->ri.url = (char *)"wss://eu.example";
    x->ri.distance = 42;
    x->ris[0] = &x->ri;
    livekit__region_settings__init(&x->rs);
    x->rs.n_regions = 1;
    x->rs.regions = x->ris;
    livekit__leave_request__init(&x->leave);
    x->leave.can_reconnect = true;
    x->leave.reason = LIVEKIT__DISCONNECT_REASON__ROOM_DELETED;
    x->leave.action = LIVEKIT__LEAVE_REQUEST__ACTION__RESUME;
    x->leave.regions = &x->rs;
}

static void
test_proto_request_roundtrips(void)
{
    shared_samples rs_;
    shared_samples_init(&rs_);
    char *sids[] = {(char *)"TR_a", (char *)"TR_v"};
    Livekit__ParticipantTracks pt = LIVEKIT__PARTICIPANT_TRACKS__INIT;
    pt.participant_sid = (char *)"PA_x";
    pt.n_track_sids = 2;
    pt.track_sids = sids;
    Livekit__ParticipantTracks *pts[] = {&pt};
    Livekit__UpdateSubscription us = LIVEKIT__UPDATE_SUBSCRIPTION__INIT;
    us.n_track_sids = 2;
    us.track_sids = sids;
    us.subscribe = true;
    us.n_participant_tracks = 1;
    us.participant_tracks = pts;
    Livekit__UpdateTrackSettings ts = LIVEKIT__UPDATE_TRACK_SETTINGS__INIT;
    ts.n_track_sids = 1;
    ts.track_sids = sids;
    ts.disabled = true;
    ts.quality = LIVEKIT__VIDEO_QUALITY__MEDIUM;
    ts.width = 1280;
    ts.height = 720;
    ts.fps = 30;
    ts.priority = 1;
    Livekit__Ping ping = LIVEKIT__PING__INIT;
    ping.timestamp = 1700000000123;
    ping.rtt = 35;

    Livekit__SignalRequest req = LIVEKIT__SIGNAL_REQUEST__INIT;
    struct {
        Livekit__SignalRequest__MessageCase c;
        void *p;
    } reqs[] = {
        {LIVEKIT__SIGNAL_REQUEST__MESSAGE_OFFER, &rs_.sd},
        {LIVEKIT__SIGNAL_REQUEST__MESSAGE_ANSWER, &rs_.sd},
        {LIVEKIT__SIGNAL_REQUEST__MESSAGE_TRICKLE, &rs_.tr},
        {LIVEKIT__SIGNAL_REQUEST__MESSAGE_SUBSCRIPTION, &us},
        {LIVEKIT__SIGNAL_REQUEST__MESSAGE_TRACK_SETTING, &ts},
        {LIVEKIT__SIGNAL_REQUEST__MESSAGE_LEAVE, &rs_.leave},
        {LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING_REQ, &ping},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(reqs); i++) {
        req.message_case = reqs[i].c;
        req.offer = reqs[i].p; /* the oneof members share storage */
        roundtrip(&req.base);
        roundtrip(reqs[i].p);
    }
    req.message_case = LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING;
    req.ping = -5; /* negative int64: a 10-byte varint */
    roundtrip(&req.base);
}

/* Decoded values survive (spot checks on a join). */
static void
check_join_decodes(const Livekit__SignalResponse *resp)
{
    g_autoptr(GBytes) b = hv_lkt_pack(&resp->base);
    gsize len = 0;
    const uint8_t *data = g_bytes_get_data(b, &len);
    Livekit__SignalResponse *back = livekit__signal_response__unpack(NULL, len, data);
    if (back == NULL) {
        g_error("the join does not decode");
        return;
    }
    g_assert_cmpint(back->message_case, ==, LIVEKIT__SIGNAL_RESPONSE__MESSAGE_JOIN);
    g_assert_cmpint(back->join->ping_interval, ==, 5);
    g_assert_cmpint(back->join->ping_timeout, ==, 15);
    g_assert_cmpstr(back->join->other_participants[0]->tracks[1]->sid, ==, "TR_v");
    g_assert_cmpuint(back->join->other_participants[0]->tracks[1]->height, ==, 720);
    g_assert_cmpstr(back->join->participant->attributes[0]->value, ==, "v");
    g_assert_cmpint(back->join->client_configuration->force_relay, ==,
                    LIVEKIT__CLIENT_CONFIG_SETTING__ENABLED);
    livekit__signal_response__free_unpacked(back, NULL);
}

static void
test_proto_response_roundtrips(void)
{
    shared_samples rs_;
    shared_samples_init(&rs_);
    hv_lkt_track ts_specs[] = {
        {.sid = "TR_a", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0},
        {.sid = "TR_v", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1280, .height = 720}};
    Livekit__ParticipantInfo *pi = hv_lkt_participant_new(
        "PA_x", "creator", LIVEKIT__PARTICIPANT_INFO__STATE__ACTIVE, 3, ts_specs, 2);
    pi->kind = LIVEKIT__PARTICIPANT_INFO__KIND__INGRESS;
    pi->joined_at_ms = 1700000000000;
    pi->tracks[1]->simulcast = true;
    pi->tracks[1]->source = LIVEKIT__TRACK_SOURCE__CAMERA;
    Livekit__ParticipantInfo__AttributesEntry attr =
        LIVEKIT__PARTICIPANT_INFO__ATTRIBUTES_ENTRY__INIT;
    attr.key = (char *)"k";
    attr.value = (char *)"v";
    Livekit__ParticipantInfo__AttributesEntry *attrs[] = {&attr};
    pi->n_attributes = 1;
    pi->attributes = attrs;
    Livekit__Room room = LIVEKIT__ROOM__INIT;
    room.sid = (char *)"RM_x";
    room.name = (char *)"livestream:x";
    room.num_participants = 12;
    room.creation_time_ms = 1700000000000;
    Livekit__ICEServer ice = LIVEKIT__ICESERVER__INIT;
    char *urls[] = {(char *)"stun:h:3478"};
    ice.n_urls = 1;
    ice.urls = urls;
    Livekit__ICEServer *ices[] = {&ice};
    Livekit__VideoConfiguration vc = LIVEKIT__VIDEO_CONFIGURATION__INIT;
    vc.hardware_encoder = LIVEKIT__CLIENT_CONFIG_SETTING__ENABLED;
    Livekit__ClientConfiguration cc = LIVEKIT__CLIENT_CONFIGURATION__INIT;
    cc.video = &vc;
    cc.resume_connection = LIVEKIT__CLIENT_CONFIG_SETTING__DISABLED;
    cc.force_relay = LIVEKIT__CLIENT_CONFIG_SETTING__ENABLED;
    Livekit__ServerInfo si = LIVEKIT__SERVER_INFO__INIT;
    si.edition = LIVEKIT__SERVER_INFO__EDITION__Cloud;
    si.version = (char *)"1.9";
    si.protocol = 16;
    Livekit__ParticipantInfo *others[] = {pi};
    Livekit__JoinResponse jr = LIVEKIT__JOIN_RESPONSE__INIT;
    jr.room = &room;
    jr.participant = pi;
    jr.n_other_participants = 1;
    jr.other_participants = others;
    jr.n_ice_servers = 1;
    jr.ice_servers = ices;
    jr.subscriber_primary = true;
    jr.client_configuration = &cc;
    jr.ping_timeout = 15;
    jr.ping_interval = 5;
    jr.server_info = &si;
    Livekit__ReconnectResponse rr = LIVEKIT__RECONNECT_RESPONSE__INIT;
    rr.n_ice_servers = 1;
    rr.ice_servers = ices;
    rr.last_message_seq = 9;
    Livekit__ParticipantUpdate pu = LIVEKIT__PARTICIPANT_UPDATE__INIT;
    pu.n_participants = 1;
    pu.participants = others;
    Livekit__TrackPublishedResponse tp = LIVEKIT__TRACK_PUBLISHED_RESPONSE__INIT;
    tp.cid = (char *)"c";
    tp.track = pi->tracks[1];
    Livekit__RoomUpdate ru = LIVEKIT__ROOM_UPDATE__INIT;
    ru.room = &room;
    Livekit__RoomMovedResponse rm = LIVEKIT__ROOM_MOVED_RESPONSE__INIT;
    rm.room = &room;
    rm.token = (char *)"tok";
    rm.participant = pi;
    Livekit__SessionDescription offer = rs_.sd;
    offer.type = (char *)"offer";

    struct {
        Livekit__SignalResponse__MessageCase c;
        void *p;
    } resps[] = {
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_JOIN, &jr},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ANSWER, &rs_.sd},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_OFFER, &offer},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRICKLE, &rs_.tr},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_UPDATE, &pu},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRACK_PUBLISHED, &tp},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_LEAVE, &rs_.leave},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ROOM_UPDATE, &ru},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_RECONNECT, &rr},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_ROOM_MOVED, &rm},
    };
    Livekit__SignalResponse resp = LIVEKIT__SIGNAL_RESPONSE__INIT;
    for (size_t i = 0; i < G_N_ELEMENTS(resps); i++) {
        resp.message_case = resps[i].c;
        resp.join = resps[i].p;
        roundtrip(&resp.base);
        roundtrip(resps[i].p);
    }
    resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_JOIN;
    resp.join = &jr;
    check_join_decodes(&resp);

    pi->n_attributes = 0;
    pi->attributes = NULL;
    hv_lkt_participant_free(pi);
}

/* The small informational responses. */
static void
test_proto_notice_roundtrips(void)
{
    Livekit__MuteTrackRequest mute = LIVEKIT__MUTE_TRACK_REQUEST__INIT;
    mute.sid = (char *)"TR_v";
    mute.muted = true;
    Livekit__SpeakerInfo spk = LIVEKIT__SPEAKER_INFO__INIT;
    spk.sid = (char *)"PA_x";
    spk.level = 0.5f;
    spk.active = true;
    Livekit__SpeakerInfo *spks[] = {&spk};
    Livekit__SpeakersChanged sc = LIVEKIT__SPEAKERS_CHANGED__INIT;
    sc.n_speakers = 1;
    sc.speakers = spks;
    Livekit__StreamStateInfo ssi = LIVEKIT__STREAM_STATE_INFO__INIT;
    ssi.participant_sid = (char *)"PA_x";
    ssi.track_sid = (char *)"TR_v";
    ssi.state = LIVEKIT__STREAM_STATE__PAUSED;
    Livekit__StreamStateInfo *ssis[] = {&ssi};
    Livekit__StreamStateUpdate ssu = LIVEKIT__STREAM_STATE_UPDATE__INIT;
    ssu.n_stream_states = 1;
    ssu.stream_states = ssis;
    Livekit__SubscriptionPermissionUpdate spu = LIVEKIT__SUBSCRIPTION_PERMISSION_UPDATE__INIT;
    spu.participant_sid = (char *)"PA_x";
    spu.track_sid = (char *)"TR_v";
    spu.allowed = true;
    Livekit__TrackUnpublishedResponse tu = LIVEKIT__TRACK_UNPUBLISHED_RESPONSE__INIT;
    tu.track_sid = (char *)"TR_v";
    Livekit__Pong pong = LIVEKIT__PONG__INIT;
    pong.last_ping_timestamp = 1700000000123;
    pong.timestamp = 1700000000150;
    Livekit__SubscriptionResponse sr = LIVEKIT__SUBSCRIPTION_RESPONSE__INIT;
    sr.track_sid = (char *)"TR_v";
    sr.err = LIVEKIT__SUBSCRIPTION_ERROR__SE_CODEC_UNSUPPORTED;
    Livekit__RequestResponse rq = LIVEKIT__REQUEST_RESPONSE__INIT;
    rq.request_id = 4;
    rq.reason = LIVEKIT__REQUEST_RESPONSE__REASON__NOT_FOUND;
    rq.message = (char *)"nope";
    Livekit__TrackSubscribed tsub = LIVEKIT__TRACK_SUBSCRIBED__INIT;
    tsub.track_sid = (char *)"TR_v";
    struct {
        Livekit__SignalResponse__MessageCase c;
        void *p;
    } resps[] = {
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_MUTE, &mute},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SPEAKERS_CHANGED, &sc},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_STREAM_STATE_UPDATE, &ssu},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SUBSCRIPTION_PERMISSION_UPDATE, &spu},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRACK_UNPUBLISHED, &tu},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG_RESP, &pong},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SUBSCRIPTION_RESPONSE, &sr},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REQUEST_RESPONSE, &rq},
        {LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRACK_SUBSCRIBED, &tsub},
    };
    Livekit__SignalResponse resp = LIVEKIT__SIGNAL_RESPONSE__INIT;
    for (size_t i = 0; i < G_N_ELEMENTS(resps); i++) {
        resp.message_case = resps[i].c;
        resp.mute = resps[i].p; /* the oneof members share storage */
        roundtrip(&resp.base);
        roundtrip(resps[i].p);
    }
    resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REFRESH_TOKEN;
    resp.refresh_token = (char *)"eyJ.new.token";
    roundtrip(&resp.base);
    resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG;
    resp.pong = 1700000000000;
    roundtrip(&resp.base);
}

/* A oneof case we did not declare (25 media_sections_requirement, 31 a future one) decodes as
 * "not set"; unknown fields inside known messages are skipped, whatever their wire type. */
static void
test_proto_unknown_oneof(void)
{
    /* field 25, LEN 4: {num_audios: 1, num_videos: 2} */
    static const uint8_t unknown_case[] = {0xca, 0x01, 0x04, 0x08, 0x01, 0x10, 0x02};
    Livekit__SignalResponse *r =
        livekit__signal_response__unpack(NULL, sizeof(unknown_case), unknown_case);
    if (r == NULL) {
        g_error("tolerable input did not decode");
        return;
    }
    g_assert_cmpint(r->message_case, ==, LIVEKIT__SIGNAL_RESPONSE__MESSAGE__NOT_SET);
    livekit__signal_response__free_unpacked(r, NULL);

    /* field 31 as a varint, then a known pong (18 = 5) */
    static const uint8_t mixed[] = {0xf8, 0x01, 0x07, 0x90, 0x01, 0x05};
    r = livekit__signal_response__unpack(NULL, sizeof(mixed), mixed);
    if (r == NULL) {
        g_error("tolerable input did not decode");
        return;
    }
    g_assert_cmpint(r->message_case, ==, LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG);
    g_assert_cmpint(r->pong, ==, 5);
    livekit__signal_response__free_unpacked(r, NULL);

    /* A join carrying fields we skip: 14 (enabled_publish_codecs, LEN), 99 (fixed64), 98
     * (fixed32), then ping_interval 11 = 5. */
    static const uint8_t join_inner[] = {
        0x72, 0x03, 0x0a, 0x01, 'x',                /* 14: Codec{mime:"x"} */
        0x99, 0x06, 1,    2,    3,   4, 5, 6, 7, 8, /* 99: fixed64 */
        0x95, 0x06, 1,    2,    3,   4,             /* 98: fixed32 */
        0x58, 0x05,                                 /* 11: 5 */
    };
    uint8_t join[2 + sizeof(join_inner)];
    join[0] = 0x0a;
    join[1] = (uint8_t)sizeof(join_inner);
    memcpy(join + 2, join_inner, sizeof(join_inner));
    r = livekit__signal_response__unpack(NULL, sizeof(join), join);
    if (r == NULL) {
        g_error("tolerable input did not decode");
        return;
    }
    g_assert_cmpint(r->message_case, ==, LIVEKIT__SIGNAL_RESPONSE__MESSAGE_JOIN);
    g_assert_cmpint(r->join->ping_interval, ==, 5);
    livekit__signal_response__free_unpacked(r, NULL);

    /* Truncated input is an error, not a crash. */
    static const uint8_t truncated[] = {0x0a, 0x10, 0x58};
    g_assert_null(livekit__signal_response__unpack(NULL, sizeof(truncated), truncated));

    /* And a joined room ignores the unknown case without closing. */
    recorder r2 = {0};
    hv_lk_room *room = detached_room(&r2);
    feed_join(room, NULL, 0, 5, 15);
    g_assert_cmpint(hv_lk_room_handle_message(room, unknown_case, sizeof(unknown_case)), ==, 0);
    run_for(20);
    g_assert_cmpint(r2.closed, ==, 0);
    hv_lk_room_stats st;
    hv_lk_room_get_stats(room, &st);
    g_assert_cmpuint(st.messages_in, ==, 2);
    hv_lk_room_free(room);
    recorder_clear(&r2);
}

/* ---- URL --------------------------------------------------------------------------------------
 */

typedef struct {
    const char *url, *token;
    bool tls;
    int port;
    const char *host, *host_header, *path_prefix;
} url_case;

static void
test_signal_url(void)
{
    static const url_case cases[] = {
        {"wss://x.livekit.cloud", "a.b.c", true, 443, "x.livekit.cloud", "x.livekit.cloud",
         "/rtc?access_token=a.b.c&protocol=17&auto_subscribe=0&adaptive_stream=0"
         "&browser=Safari&version=" HAVEN_VERSION},
        {"https://h.example:8443/base", "t", true, 8443, "h.example", "h.example:8443",
         "/base/rtc?access_token=t&"},
        {"http://[::1]:7880/", "t", false, 7880, "::1", "[::1]:7880", "/rtc?"},
        {"ws://127.0.0.1:9/a/", "x+y/z", false, 9, "127.0.0.1", "127.0.0.1:9",
         "/a/rtc?access_token=x%2By%2Fz&"},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        const url_case *c = &cases[i];
        hv_lk_url u;
        g_autoptr(GError) error = NULL;
        g_assert_true(hv_lk_signal_parse_url(c->url, c->token, &u, &error));
        g_assert_no_error(error);
        g_assert_cmpint(u.tls, ==, c->tls);
        g_assert_cmpint(u.port, ==, c->port);
        g_assert_cmpstr(u.host, ==, c->host);
        g_assert_cmpstr(u.host_header, ==, c->host_header);
        if (!g_str_has_prefix(u.path, c->path_prefix)) {
            g_error("%s: path %s does not start with %s", c->url, u.path, c->path_prefix);
        }
        hv_lk_url_clear(&u);
    }
    static const char *const bad[] = {"", "ftp://x", "wss://", "not a url", "file:///x"};
    for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
        hv_lk_url u;
        g_autoptr(GError) e = NULL;
        g_assert_false(hv_lk_signal_parse_url(bad[i], "t", &u, &e));
        g_assert_error(e, HV_ERROR, HV_EINVAL);
    }
}

/* ---- 3. the state machine -------------------------------------------------------------------- */

static void
assert_join_recorded(const recorder *r)
{
    g_assert_cmpint(r->joined, ==, 1);
    g_assert_cmpstr(r->identity, ==, "b45e1821");
    g_assert_cmpstr(r->participant_sid, ==, "PA_self");
    g_assert_cmpstr(r->room_name, ==, "livestream:test:1");
    g_assert_cmpstr(r->server_version, ==, "1.9.0");
    g_assert_cmpint(r->server_protocol, ==, 16);
    g_assert_cmpint(r->ping_interval_s, ==, 5);
    g_assert_cmpint(r->ping_timeout_s, ==, 15);
}

static void
assert_ice_servers(const recorder *r)
{
    g_assert_nonnull(r->ice_servers);
    /* stuns:, turns: and TCP on 443 need TLS, which libnice cannot do: skipped. TURN over
     * plain TCP on another port stays. */
    g_assert_cmpuint(g_strv_length(r->ice_servers), ==, 3);
    g_assert_cmpstr(r->ice_servers[0], ==, "stun://stun.example.org:3478");
    g_assert_cmpstr(r->ice_servers[1], ==,
                    "turn://1700000000%3Auser:p%40ss%2Fw%20rd@turn.example.org:3478"
                    "?transport=udp");
    g_assert_cmpstr(r->ice_servers[2], ==,
                    "turn://1700000000%3Auser:p%40ss%2Fw%20rd@turn.example.org:3478"
                    "?transport=tcp");
}

static void
test_room_join(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    hv_lk_room_stats st;
    hv_lk_room_get_stats(room, &st);
    g_assert_false(st.joined);
    g_assert_cmpint(st.rtt_ms, ==, -1);
    feed_join(room, NULL, 0, 5, 15);
    assert_join_recorded(&r);
    assert_ice_servers(&r);
    hv_lk_room_get_stats(room, &st);
    g_assert_true(st.joined);
    g_assert_cmpuint(st.messages_in, ==, 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 0); /* nobody publishes: no subscription */
    hv_lk_room_free(room);
    g_assert_cmpint(r.closed, ==, 0);
    recorder_clear(&r);
}

static const hv_lkt_track viewer_tracks[] = {
    {.sid = "TR_wa", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0},
    {.sid = "TR_wv", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1920, .height = 1080}};
static const hv_lkt_track creator_tracks[] = {
    {.sid = "TR_ca", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0},
    {.sid = "TR_cv", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 640, .height = 360},
    {.sid = "TR_cd", .type = LIVEKIT__TRACK_TYPE__DATA, .width = 0, .height = 0}};
static const hv_lkt_track creator_tracks2[] = {
    {.sid = "TR_ca2", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0},
    {.sid = "TR_cv2", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1280, .height = 720}};
static const hv_lkt_track data_only[] = {
    {.sid = "TR_dd", .type = LIVEKIT__TRACK_TYPE__DATA, .width = 0, .height = 0}};

static void
test_room_streamer_choice(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    Livekit__ParticipantInfo *ps[] = {
        hv_lkt_participant_new("PA_w", "Viewer-42", 2, 1, viewer_tracks, 2),
        hv_lkt_participant_new("PA_c", "creator", 2, 1, creator_tracks, 3),
        hv_lkt_participant_new("PA_i", "idle", 1, 1, NULL, 0),
        hv_lkt_participant_new("PA_d", "bot", 2, 1, data_only, 1),
        hv_lkt_participant_new("PA_self", "b45e1821", 2, 1, viewer_tracks, 2), /* ourselves */
    };
    feed_join(room, ps, G_N_ELEMENTS(ps), 5, 15);
    g_assert_cmpint(r.streamers, ==, 1);
    g_assert_cmpstr(r.streamer_identity, ==, "creator");
    g_assert_cmpstr(r.streamer_sid, ==, "PA_c");
    g_assert_cmpuint(r.streamer_tracks->len, ==, 2);
    /* The video track first, then the audio tracks. */
    g_assert_cmpstr(g_ptr_array_index(r.streamer_tracks, 0), ==, "TR_cv:video:640x360");
    g_assert_cmpstr(g_ptr_array_index(r.streamer_tracks, 1), ==, "TR_ca:audio:0x0");
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 1);
    static const char *const want[] = {"TR_ca", "TR_cv"};
    assert_subscription(room, 0, true, want, 2);

    /* The same snapshot again changes nothing: no duplicate subscription, no new on_streamer. */
    feed_update(room, &ps[1], 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 1);
    g_assert_cmpint(r.streamers, ==, 1);
    /* A newer snapshot with the same tracks changes nothing either; an older one (lower
     * version, same sid) is ignored even though it lists no tracks. */
    Livekit__ParticipantInfo *newer =
        hv_lkt_participant_new("PA_c", "creator", 2, 3, creator_tracks, 3);
    feed_update(room, &newer, 1);
    Livekit__ParticipantInfo *stale = hv_lkt_participant_new("PA_c", "creator", 2, 2, NULL, 0);
    feed_update(room, &stale, 1);
    g_assert_cmpint(r.lefts, ==, 0);
    g_assert_cmpint(r.streamers, ==, 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 1);
    hv_lkt_participant_free(newer);
    hv_lkt_participant_free(stale);
    for (size_t i = 0; i < G_N_ELEMENTS(ps); i++) {
        hv_lkt_participant_free(ps[i]);
    }
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
test_room_larger_video_wins(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    static const hv_lkt_track small[] = {
        {.sid = "TR_s", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 320, .height = 240}};
    static const hv_lkt_track big[] = {
        {.sid = "TR_b", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1280, .height = 720},
        {.sid = "TR_ba", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0}};
    Livekit__ParticipantInfo *ps[] = {
        hv_lkt_participant_new("PA_s", "alice", 2, 1, small, 1),
        hv_lkt_participant_new("PA_b", "bob", 2, 1, big, 2),
    };
    feed_join(room, ps, 2, 5, 15);
    g_assert_cmpstr(r.streamer_identity, ==, "bob");
    static const char *const want[] = {"TR_b", "TR_ba"};
    assert_subscription(room, 0, true, want, 2);
    for (size_t i = 0; i < G_N_ELEMENTS(ps); i++) {
        hv_lkt_participant_free(ps[i]);
    }
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* A viewer publishes first; when the real streamer arrives the room switches: the viewer's
 * tracks are unsubscribed, the streamer's subscribed, and no on_streamer_left is reported. */
static void
test_room_prefers_non_viewer_later(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    Livekit__ParticipantInfo *w =
        hv_lkt_participant_new("PA_w", "viewer-1", 2, 1, viewer_tracks, 2);
    feed_join(room, &w, 1, 5, 15);
    g_assert_cmpstr(r.streamer_identity, ==, "viewer-1");
    static const char *const want_w[] = {"TR_wa", "TR_wv"};
    assert_subscription(room, 0, true, want_w, 2);
    Livekit__ParticipantInfo *c =
        hv_lkt_participant_new("PA_c", "creator", 2, 1, creator_tracks, 3);
    feed_update(room, &c, 1);
    g_assert_cmpint(r.streamers, ==, 2);
    g_assert_cmpstr(r.streamer_identity, ==, "creator");
    g_assert_cmpint(r.lefts, ==, 0);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 3);
    assert_subscription(room, 1, false, want_w, 2);
    static const char *const want_c[] = {"TR_ca", "TR_cv"};
    assert_subscription(room, 2, true, want_c, 2);
    hv_lkt_participant_free(w);
    hv_lkt_participant_free(c);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* The streamer reconnects (new participant sid, new track sids, no DISCONNECTED for the old
 * session as with protocol >= 12): resubscribed; a late DISCONNECTED for the old sid is ignored;
 * DISCONNECTED for the current sid → on_streamer_left. */
static void
test_room_resubscribe_and_left(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    Livekit__ParticipantInfo *c1 =
        hv_lkt_participant_new("PA_c1", "creator", 2, 4, creator_tracks, 3);
    feed_join(room, &c1, 1, 5, 15);
    g_assert_cmpint(r.streamers, ==, 1);
    Livekit__ParticipantInfo *c2 =
        hv_lkt_participant_new("PA_c2", "creator", 2, 1, creator_tracks2, 2); /* version restarts */
    feed_update(room, &c2, 1);
    g_assert_cmpint(r.streamers, ==, 2);
    g_assert_cmpstr(r.streamer_sid, ==, "PA_c2");
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 2);
    static const char *const want2[] = {"TR_ca2", "TR_cv2"};
    assert_subscription(room, 1, true, want2, 2);

    Livekit__ParticipantInfo *old_gone = hv_lkt_participant_new(
        "PA_c1", "creator", LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED, 5, NULL, 0);
    feed_update(room, &old_gone, 1);
    g_assert_cmpint(r.lefts, ==, 0);

    /* The streamer unpublishes its video: subscription list unchanged, on_streamer again. */
    Livekit__ParticipantInfo *c2b =
        hv_lkt_participant_new("PA_c2", "creator", 2, 2, creator_tracks2, 1);
    feed_update(room, &c2b, 1);
    g_assert_cmpint(r.streamers, ==, 3);
    g_assert_cmpuint(r.streamer_tracks->len, ==, 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 2);

    /* …then unpublishes everything: it has no tracks any more → left. */
    Livekit__ParticipantInfo *c2c = hv_lkt_participant_new("PA_c2", "creator", 2, 3, NULL, 0);
    feed_update(room, &c2c, 1);
    g_assert_cmpint(r.lefts, ==, 1);
    g_assert_cmpstr(r.left_identity, ==, "creator");

    /* Publishes again, then disconnects. */
    Livekit__ParticipantInfo *c2d =
        hv_lkt_participant_new("PA_c2", "creator", 2, 4, creator_tracks2, 2);
    feed_update(room, &c2d, 1);
    g_assert_cmpint(r.streamers, ==, 4);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 3);
    assert_subscription(room, 2, true, want2, 2);
    Livekit__ParticipantInfo *gone = hv_lkt_participant_new(
        "PA_c2", "creator", LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED, 5, NULL, 0);
    feed_update(room, &gone, 1);
    g_assert_cmpint(r.lefts, ==, 2);
    g_assert_cmpint(r.closed, ==, 0);

    Livekit__ParticipantInfo *all[] = {c1, c2, old_gone, c2b, c2c, c2d, gone};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        hv_lkt_participant_free(all[i]);
    }
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* Thousands of silent viewers are not remembered; publishers are capped; the choice works. */
static void
test_room_many_participants(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    enum { VIEWERS = 2000, PUBLISHERS = 300 };
    Livekit__ParticipantInfo **ps = g_new0(Livekit__ParticipantInfo *, VIEWERS + PUBLISHERS + 1);
    for (int i = 0; i < VIEWERS; i++) {
        g_autofree char *sid = g_strdup_printf("PA_v%d", i);
        g_autofree char *id = g_strdup_printf("anon-%d", i);
        ps[i] = hv_lkt_participant_new(sid, id, 2, 1, NULL, 0);
    }
    for (int i = 0; i < PUBLISHERS; i++) {
        g_autofree char *sid = g_strdup_printf("PA_p%d", i);
        g_autofree char *id = g_strdup_printf("viewer-cam-%03d", i);
        g_autofree char *tsid = g_strdup_printf("TR_p%d", i);
        hv_lkt_track t = {
            .sid = tsid, .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 320, .height = 240};
        ps[VIEWERS + i] = hv_lkt_participant_new(sid, id, 2, 1, &t, 1);
    }
    feed_join(room, ps, VIEWERS + PUBLISHERS, 5, 15);
    g_assert_cmpint(r.streamers, ==, 1);
    g_assert_cmpstr(r.streamer_identity, ==, "viewer-cam-000"); /* equal: smallest identity */
    g_assert_cmpint(r.closed, ==, 0);
    for (int i = 0; i < VIEWERS + PUBLISHERS; i++) {
        hv_lkt_participant_free(ps[i]);
    }
    g_free(ps);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* Camera + microphone, then a screen share with its audio: the screen share replaces the
 * camera (which is unsubscribed), both audio tracks are received; when the screen share ends
 * the camera comes back. A muted screen share does not count as live. */
static void
test_room_screen_share_preferred(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    static const hv_lkt_track cam[] = {{.sid = "TR_cam",
                                        .type = LIVEKIT__TRACK_TYPE__VIDEO,
                                        .width = 1280,
                                        .height = 720,
                                        .source = LIVEKIT__TRACK_SOURCE__CAMERA},
                                       {.sid = "TR_mic",
                                        .type = LIVEKIT__TRACK_TYPE__AUDIO,
                                        .width = 0,
                                        .height = 0,
                                        .source = LIVEKIT__TRACK_SOURCE__MICROPHONE}};
    static const hv_lkt_track both[] = {{.sid = "TR_cam",
                                         .type = LIVEKIT__TRACK_TYPE__VIDEO,
                                         .width = 1280,
                                         .height = 720,
                                         .source = LIVEKIT__TRACK_SOURCE__CAMERA},
                                        {.sid = "TR_mic",
                                         .type = LIVEKIT__TRACK_TYPE__AUDIO,
                                         .width = 0,
                                         .height = 0,
                                         .source = LIVEKIT__TRACK_SOURCE__MICROPHONE},
                                        {.sid = "TR_scr",
                                         .type = LIVEKIT__TRACK_TYPE__VIDEO,
                                         .width = 640,
                                         .height = 360,
                                         .source = LIVEKIT__TRACK_SOURCE__SCREEN_SHARE},
                                        {.sid = "TR_sca",
                                         .type = LIVEKIT__TRACK_TYPE__AUDIO,
                                         .width = 0,
                                         .height = 0,
                                         .source = LIVEKIT__TRACK_SOURCE__SCREEN_SHARE_AUDIO}};
    static const hv_lkt_track muted_screen[] = {
        {.sid = "TR_cam",
         .type = LIVEKIT__TRACK_TYPE__VIDEO,
         .width = 1280,
         .height = 720,
         .source = LIVEKIT__TRACK_SOURCE__CAMERA},
        {.sid = "TR_mic",
         .type = LIVEKIT__TRACK_TYPE__AUDIO,
         .width = 0,
         .height = 0,
         .source = LIVEKIT__TRACK_SOURCE__MICROPHONE},
        {.sid = "TR_scr",
         .type = LIVEKIT__TRACK_TYPE__VIDEO,
         .width = 640,
         .height = 360,
         .source = LIVEKIT__TRACK_SOURCE__SCREEN_SHARE,
         .mime = NULL,
         .backup = NULL,
         .muted = true},
        {.sid = "TR_sca",
         .type = LIVEKIT__TRACK_TYPE__AUDIO,
         .width = 0,
         .height = 0,
         .source = LIVEKIT__TRACK_SOURCE__SCREEN_SHARE_AUDIO}};
    Livekit__ParticipantInfo *p1 = hv_lkt_participant_new("PA_h", "host", 2, 1, cam, 2);
    feed_join(room, &p1, 1, 5, 15);
    static const char *const want1[] = {"TR_cam", "TR_mic"};
    assert_subscription(room, 0, true, want1, 2);

    Livekit__ParticipantInfo *p2 = hv_lkt_participant_new("PA_h", "host", 2, 2, both, 4);
    feed_update(room, &p2, 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 3);
    static const char *const drop_cam[] = {"TR_cam"};
    assert_subscription(room, 1, false, drop_cam, 1);
    static const char *const add_scr[] = {"TR_scr", "TR_sca"};
    assert_subscription(room, 2, true, add_scr, 2);
    g_assert_cmpint(r.streamers, ==, 2);
    g_assert_cmpuint(r.streamer_tracks->len, ==, 3);
    g_assert_cmpstr(g_ptr_array_index(r.streamer_tracks, 0), ==, "TR_scr:video:640x360");

    /* Muted screen share: the camera is the live picture again. */
    Livekit__ParticipantInfo *p3 = hv_lkt_participant_new("PA_h", "host", 2, 3, muted_screen, 4);
    feed_update(room, &p3, 1);
    g_assert_cmpstr(g_ptr_array_index(r.streamer_tracks, 0), ==, "TR_cam:video:1280x720");
    static const char *const add_cam[] = {"TR_cam"};
    static const char *const drop_scr[] = {"TR_scr"};
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 5);
    assert_subscription(room, 3, false, drop_scr, 1);
    assert_subscription(room, 4, true, add_cam, 1);

    /* The screen share ends: nothing more to do, the camera is already there. */
    Livekit__ParticipantInfo *p4 = hv_lkt_participant_new("PA_h", "host", 2, 4, cam, 2);
    feed_update(room, &p4, 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 5);
    g_assert_cmpuint(r.streamer_tracks->len, ==, 2);
    g_assert_cmpint(r.lefts, ==, 0);
    Livekit__ParticipantInfo *all[] = {p1, p2, p3, p4};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        hv_lkt_participant_free(all[i]);
    }
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* A guest on stage with a bigger picture never replaces the host: not while the host
 * publishes, not while it is away (switching cameras, restarting its ingress); the host coming
 * back is received again. */
static void
test_room_guest_never_replaces_host(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    static const hv_lkt_track host_t[] = {
        {.sid = "TR_hv", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1280, .height = 720},
        {.sid = "TR_ha", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0}};
    static const hv_lkt_track host_t2[] = {
        {.sid = "TR_hv2", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1280, .height = 720},
        {.sid = "TR_ha2", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0}};
    static const hv_lkt_track guest_t[] = {
        {.sid = "TR_gv", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1920, .height = 1080},
        {.sid = "TR_ga", .type = LIVEKIT__TRACK_TYPE__AUDIO, .width = 0, .height = 0}};
    Livekit__ParticipantInfo *h = hv_lkt_participant_new("PA_h", "host-1", 2, 1, host_t, 2);
    feed_join(room, &h, 1, 5, 15);
    g_assert_cmpstr(r.streamer_identity, ==, "host-1");
    Livekit__ParticipantInfo *g = hv_lkt_participant_new("PA_g", "guest-1", 2, 1, guest_t, 2);
    feed_update(room, &g, 1);
    g_assert_cmpint(r.streamers, ==, 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 1);
    /* The host unpublishes: left, and the guest is still not taken. */
    Livekit__ParticipantInfo *h0 = hv_lkt_participant_new("PA_h", "host-1", 2, 2, NULL, 0);
    feed_update(room, &h0, 1);
    g_assert_cmpint(r.lefts, ==, 1);
    g_assert_cmpint(r.streamers, ==, 1);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 1);
    /* It publishes new tracks: subscribed, reported. */
    Livekit__ParticipantInfo *h2 = hv_lkt_participant_new("PA_h", "host-1", 2, 3, host_t2, 2);
    feed_update(room, &h2, 1);
    g_assert_cmpint(r.streamers, ==, 2);
    g_assert_cmpstr(r.streamer_identity, ==, "host-1");
    static const char *const want2[] = {"TR_hv2", "TR_ha2"};
    assert_subscription(room, 1, true, want2, 2);
    g_assert_cmpuint(count_sent(room, LIVEKIT__SIGNAL_REQUEST__MESSAGE_SUBSCRIPTION), ==, 2);
    Livekit__ParticipantInfo *all[] = {h, g, h0, h2};
    for (size_t i = 0; i < G_N_ELEMENTS(all); i++) {
        hv_lkt_participant_free(all[i]);
    }
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* The host's identity holding the mint (or its first 8 characters), or an ingress
 * participant, wins over a bigger picture; an identity handed in by an earlier connection
 * keeps its place and is waited for. */
static void
test_room_host_hints(void)
{
    static const hv_lkt_track small[] = {
        {.sid = "TR_s", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 640, .height = 360}};
    static const hv_lkt_track big[] = {
        {.sid = "TR_b", .type = LIVEKIT__TRACK_TYPE__VIDEO, .width = 1920, .height = 1080}};
    const char *mint = "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump";
    recorder r = {0};
    hv_lk_room *room = detached_room_for(&r, mint, NULL);
    Livekit__ParticipantInfo *ps[] = {
        hv_lkt_participant_new("PA_a", "alice", 2, 1, big, 1),
        hv_lkt_participant_new("PA_h", "host-7k13ksm9", 2, 1, small, 1),
    };
    feed_join(room, ps, 2, 5, 15);
    g_assert_cmpstr(r.streamer_identity, ==, "host-7k13ksm9");
    hv_lk_room_free(room);
    recorder_clear(&r);

    room = detached_room(&r);
    ps[1]->kind = LIVEKIT__PARTICIPANT_INFO__KIND__INGRESS;
    g_free(ps[1]->identity);
    ps[1]->identity = g_strdup("ingress-xyz");
    feed_join(room, ps, 2, 5, 15);
    g_assert_cmpstr(r.streamer_identity, ==, "ingress-xyz");
    hv_lk_room_free(room);
    recorder_clear(&r);

    /* Handed in: "ingress-xyz" is not there yet, alice publishes: nobody is subscribed. */
    room = detached_room_for(&r, NULL, "ingress-xyz");
    feed_join(room, ps, 1, 5, 15);
    g_assert_cmpint(r.streamers, ==, 0);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 0);
    g_assert_cmpstr(hv_lk_room_streamer_identity(room), ==, "ingress-xyz");
    feed_update(room, &ps[1], 1);
    g_assert_cmpstr(r.streamer_identity, ==, "ingress-xyz");
    static const char *const want[] = {"TR_s"};
    assert_subscription(room, 0, true, want, 1);
    for (size_t i = 0; i < G_N_ELEMENTS(ps); i++) {
        hv_lkt_participant_free(ps[i]);
    }
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* A track's codecs (TrackInfo.mime_type, then the backups of TrackInfo.codecs) are reported and
 * can be looked up by sid; a failed subscription is reported. */
static void
test_room_track_codecs(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    static const hv_lkt_track t[] = {{.sid = "TR_v",
                                      .type = LIVEKIT__TRACK_TYPE__VIDEO,
                                      .width = 1280,
                                      .height = 720,
                                      .source = LIVEKIT__TRACK_SOURCE__CAMERA,
                                      .mime = "video/AV1",
                                      .backup = "video/VP8"},
                                     {.sid = "TR_a",
                                      .type = LIVEKIT__TRACK_TYPE__AUDIO,
                                      .width = 0,
                                      .height = 0,
                                      .source = LIVEKIT__TRACK_SOURCE__MICROPHONE}};
    Livekit__ParticipantInfo *p = hv_lkt_participant_new("PA_c", "creator", 2, 1, t, 2);
    feed_join(room, &p, 1, 5, 15);
    const char *const *codecs = hv_lk_room_track_codecs(room, "TR_v");
    g_assert_nonnull(codecs);
    g_assert_cmpuint(g_strv_length((char **)codecs), ==, 2);
    g_assert_cmpstr(codecs[0], ==, "video/AV1");
    g_assert_cmpstr(codecs[1], ==, "video/VP8");
    codecs = hv_lk_room_track_codecs(room, "TR_a");
    g_assert_cmpuint(g_strv_length((char **)codecs), ==, 1);
    g_assert_cmpstr(codecs[0], ==, "audio/opus");
    g_assert_null(hv_lk_room_track_codecs(room, "TR_unknown"));

    Livekit__SubscriptionResponse sr = LIVEKIT__SUBSCRIPTION_RESPONSE__INIT;
    sr.track_sid = (char *)"TR_v";
    sr.err = LIVEKIT__SUBSCRIPTION_ERROR__SE_CODEC_UNSUPPORTED;
    Livekit__SignalResponse resp = LIVEKIT__SIGNAL_RESPONSE__INIT;
    resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_SUBSCRIPTION_RESPONSE;
    resp.subscription_response = &sr;
    g_assert_cmpint(feed(room, &resp), ==, 0);
    g_assert_cmpint(r.sub_errors, ==, 1);
    g_assert_cmpstr(r.sub_error, ==, "TR_v:SE_CODEC_UNSUPPORTED");
    hv_lkt_participant_free(p);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* A JoinResponse of a room with 30,000 viewers (about 100 bytes each on the wire, as LiveKit
 * sends them) decodes without unpacking the viewers; the streamer among them is found, the
 * count is kept, and a big update with viewers leaving costs nothing either. */
static void
test_room_big_room(void)
{
    enum { VIEWERS = 30000 };
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    Livekit__ParticipantInfo **ps = g_new0(Livekit__ParticipantInfo *, VIEWERS + 2);
    for (int i = 0; i < VIEWERS; i++) {
        g_autofree char *sid = g_strdup_printf("PA_v%011d", i);
        g_autofree char *id = g_strdup_printf("%08x-viewer", (unsigned)i * 2654435761u);
        ps[i] = hv_lkt_participant_new(sid, id, 2, 1, NULL, 0);
        ps[i]->metadata = (char *)"{\"anon\":true,\"role\":\"viewer\"}";
        ps[i]->joined_at = 1700000000;
    }
    ps[VIEWERS] = hv_lkt_participant_new("PA_c", "creator", 2, 1, creator_tracks, 3);
    Livekit__JoinResponse probe = LIVEKIT__JOIN_RESPONSE__INIT;
    probe.n_other_participants = VIEWERS + 1;
    probe.other_participants = ps;
    size_t bytes = livekit__join_response__get_packed_size(&probe);
    g_test_message("JoinResponse with %d viewers: %zu bytes", VIEWERS, bytes);
    g_assert_cmpuint(bytes, >, (size_t)2 * 1024 * 1024);
    feed_join(room, ps, VIEWERS + 1, 5, 15);
    g_assert_cmpstr(r.streamer_identity, ==, "creator");
    hv_lk_room_stats st;
    hv_lk_room_get_stats(room, &st);
    g_assert_cmpuint(st.participants_skipped, ==, VIEWERS);
    g_assert_cmpuint(st.participants, ==, VIEWERS + 2);
    /* Everyone leaves but the streamer's DISCONNECTED must still be seen. */
    for (int i = 0; i < VIEWERS; i++) {
        ps[i]->state = LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED;
    }
    hv_lkt_participant_free(ps[VIEWERS]);
    ps[VIEWERS] = hv_lkt_participant_new(
        "PA_c", "creator", LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED, 2, NULL, 0);
    feed_update(room, ps, VIEWERS + 1);
    hv_lk_room_get_stats(room, &st);
    g_assert_cmpuint(st.participants_skipped, ==, 2 * VIEWERS);
    g_assert_cmpint(r.lefts, ==, 1);
    for (int i = 0; i <= VIEWERS; i++) {
        ps[i]->metadata = NULL;
        hv_lkt_participant_free(ps[i]);
    }
    g_free(ps);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
feed_offer(hv_lk_room *room, const char *sdp, uint32_t id)
{
    static const char *const mids[] = {"1", "TR_ca", "2", "TR_cv", NULL};
    hv_lkt_offer_msg m;
    g_assert_cmpint(feed(room, hv_lkt_offer(&m, sdp, id, mids)), ==, 0);
}

static void
test_room_offer_answer(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    /* An offer before join is a protocol violation (checked in test_room_malformed). */
    feed_join(room, NULL, 0, 5, 15);
    feed_offer(room, "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n", 42);
    g_assert_cmpint(r.offers, ==, 1);
    g_assert_cmpstr(r.offer_sdp, ==, "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\n");
    g_assert_cmpuint(r.offer_id, ==, 42);
    g_assert_cmpuint(g_hash_table_size(r.offer_map), ==, 2);
    g_assert_cmpstr(g_hash_table_lookup(r.offer_map, "1"), ==, "TR_ca");
    g_assert_cmpstr(g_hash_table_lookup(r.offer_map, "2"), ==, "TR_cv");

    hv_lk_room_send_answer(room, "v=0\r\nanswer\r\n", 42);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 1);
    Livekit__SignalRequest *req = sent_at(room, 0);
    g_assert_cmpint(req->message_case, ==, LIVEKIT__SIGNAL_REQUEST__MESSAGE_ANSWER);
    g_assert_cmpstr(req->answer->type, ==, "answer");
    g_assert_cmpstr(req->answer->sdp, ==, "v=0\r\nanswer\r\n");
    g_assert_cmpuint(req->answer->id, ==, 42);
    g_assert_cmpuint(req->answer->n_mid_to_track_id, ==, 0);
    livekit__signal_request__free_unpacked(req, NULL);
    hv_lk_room_stats st;
    hv_lk_room_get_stats(room, &st);
    g_assert_cmpuint(st.messages_out, ==, 1);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
feed_trickle(hv_lk_room *room, const char *json, int target)
{
    hv_lkt_trickle_msg m;
    g_assert_cmpint(feed(room, hv_lkt_trickle(&m, json, target)), ==, 0);
}

static void
test_room_trickle(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    feed_join(room, NULL, 0, 5, 15);
    feed_trickle(room,
                 "{\"candidate\":\"candidate:1 1 udp 2130706431 10.0.0.1 50000 typ host\","
                 "\"sdpMid\":\"0\",\"sdpMLineIndex\":0,\"usernameFragment\":null}",
                 LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    g_assert_cmpint(r.candidates, ==, 1);
    g_assert_cmpstr(r.cand, ==, "candidate:1 1 udp 2130706431 10.0.0.1 50000 typ host");
    g_assert_cmpstr(r.cand_mid, ==, "0");
    g_assert_cmpint(r.cand_index, ==, 0);
    /* null sdpMid, other index */
    feed_trickle(room,
                 "{\"candidate\":\"candidate:2 1 tcp 1 10.0.0.1 7881 typ host\","
                 "\"sdpMid\":null,\"sdpMLineIndex\":2}",
                 LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    g_assert_cmpint(r.candidates, ==, 2);
    g_assert_cmpstr(r.cand_mid, ==, "");
    g_assert_cmpint(r.cand_index, ==, 2);
    /* publisher-target candidates and unreadable JSON are ignored, not fatal */
    feed_trickle(room, "{\"candidate\":\"candidate:3\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}",
                 LIVEKIT__SIGNAL_TARGET__PUBLISHER);
    feed_trickle(room, "{not json", LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    feed_trickle(room, "{\"candidate\":\"\"}", LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    g_assert_cmpint(r.candidates, ==, 2);

    hv_lk_room_send_candidate(room, "candidate:9 1 udp 1 192.168.1.2 40000 typ host", "0", 0);
    Livekit__SignalRequest *req = sent_at(room, 0);
    g_assert_cmpint(req->message_case, ==, LIVEKIT__SIGNAL_REQUEST__MESSAGE_TRICKLE);
    g_assert_cmpint(req->trickle->target, ==, LIVEKIT__SIGNAL_TARGET__SUBSCRIBER);
    g_assert_false(req->trickle->final);
    json_error_t jerr;
    json_t *j = json_loads(req->trickle->candidateinit, 0, &jerr);
    g_assert_nonnull(j);
    g_assert_cmpstr(json_string_value(json_object_get(j, "candidate")), ==,
                    "candidate:9 1 udp 1 192.168.1.2 40000 typ host");
    g_assert_cmpstr(json_string_value(json_object_get(j, "sdpMid")), ==, "0");
    g_assert_true(json_is_integer(json_object_get(j, "sdpMLineIndex")));
    g_assert_cmpint(json_integer_value(json_object_get(j, "sdpMLineIndex")), ==, 0);
    json_decref(j);
    livekit__signal_request__free_unpacked(req, NULL);
    g_assert_cmpint(r.closed, ==, 0);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
test_room_refresh_token(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    g_autofree char *orig = fixture_token();
    g_assert_cmpstr(hv_lk_room_token(room), ==, orig);
    feed_join(room, NULL, 0, 5, 15);
    Livekit__SignalResponse resp = LIVEKIT__SIGNAL_RESPONSE__INIT;
    resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_REFRESH_TOKEN;
    resp.refresh_token = (char *)"eyJnew.payload.sig";
    g_assert_cmpint(feed(room, &resp), ==, 0);
    g_assert_cmpstr(hv_lk_room_token(room), ==, "eyJnew.payload.sig");
    resp.refresh_token = (char *)""; /* an empty one never replaces a token */
    g_assert_cmpint(feed(room, &resp), ==, 0);
    g_assert_cmpstr(hv_lk_room_token(room), ==, "eyJnew.payload.sig");
    hv_lk_room_free(room);
    recorder_clear(&r);
}

typedef struct {
    int action;
    bool can_reconnect;
    hv_lk_close_reason want;
    bool want_retryable;
} leave_case;

static void
run_leave_case(const leave_case *lc, bool before_join)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    if (!before_join) {
        feed_join(room, NULL, 0, 5, 15);
    }
    hv_lkt_leave_msg leave;
    const Livekit__SignalResponse *resp = hv_lkt_leave(&leave, lc->action, lc->can_reconnect,
                                                       LIVEKIT__DISCONNECT_REASON__ROOM_DELETED);
    g_assert_cmpint(feed(room, resp), ==, 0);
    /* on_closed never fires inside the caller's own call… */
    g_assert_cmpint(r.closed, ==, 0);
    /* …and nothing more is processed once closed. */
    g_assert_cmpint(feed(room, resp), ==, HV_ECLOSED);
    run_until(&r.closed_flag, 1000);
    g_assert_cmpint(r.closed, ==, 1);
    g_assert_cmpint(r.reason, ==, lc->want);
    g_assert_cmpint(r.retryable, ==, lc->want_retryable);
    g_assert_nonnull(strstr(r.detail, "ROOM_DELETED"));
    run_for(10);
    g_assert_cmpint(r.closed, ==, 1);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
test_room_leave(void)
{
    static const leave_case cases[] = {
        {LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT, false, HV_LK_LEAVE_DISCONNECT, false},
        {LIVEKIT__LEAVE_REQUEST__ACTION__RESUME, false, HV_LK_LEAVE_RECONNECT, true},
        {LIVEKIT__LEAVE_REQUEST__ACTION__RECONNECT, false, HV_LK_LEAVE_RECONNECT, true},
        /* a server older than protocol 13: no action, can_reconnect decides */
        {LIVEKIT__LEAVE_REQUEST__ACTION__DISCONNECT, true, HV_LK_LEAVE_RECONNECT, true},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        run_leave_case(&cases[i], false);
    }
    /* A leave as the first message: the join was refused. */
    run_leave_case(&cases[0], true);
}

static void
test_room_ping(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    hv_lk_room_set_second_ms(room, 20); /* ping every 20 ms, timeout 400 ms */
    feed_join(room, NULL, 0, 1, 20);
    int64_t before = hv_wall_ms();
    int64_t start = hv_now_ms();
    while (count_sent(room, LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING_REQ) < 3 &&
           hv_now_ms() - start < 5000) {
        run_for(20);
    }
    guint pings = count_sent(room, LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING_REQ);
    guint legacy = count_sent(room, LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING);
    g_assert_cmpuint(pings, >=, 3);
    g_assert_cmpuint(legacy, ==, pings);
    Livekit__SignalRequest *req = sent_at(room, 0);
    g_assert_cmpint(req->message_case, ==, LIVEKIT__SIGNAL_REQUEST__MESSAGE_PING_REQ);
    g_assert_cmpint(req->ping_req->timestamp, >=, before);
    g_assert_cmpint(req->ping_req->timestamp, <=, hv_wall_ms());
    g_assert_cmpint(req->ping_req->rtt, ==, 0);
    int64_t ts = req->ping_req->timestamp;
    livekit__signal_request__free_unpacked(req, NULL);

    hv_lkt_pong_msg pong;
    g_assert_cmpint(feed(room, hv_lkt_pong(&pong, ts, ts + 1)), ==, 0);
    hv_lk_room_stats st;
    hv_lk_room_get_stats(room, &st);
    g_assert_cmpint(st.rtt_ms, >=, 0);
    g_assert_cmpint(st.rtt_ms, <=, hv_wall_ms() - ts);
    g_assert_cmpint(r.closed, ==, 0);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
test_room_ping_timeout(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    hv_lk_room_set_second_ms(room, 20); /* timeout 10 → 200 ms */
    feed_join(room, NULL, 0, 1, 10);
    /* Messages keep it alive well past the timeout… */
    Livekit__SignalResponse pong = LIVEKIT__SIGNAL_RESPONSE__INIT;
    pong.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG;
    pong.pong = 1;
    int64_t start = hv_now_ms();
    while (hv_now_ms() - start < 400) {
        run_for(15);
        g_assert_cmpint(feed(room, &pong), ==, 0);
    }
    g_assert_cmpint(r.closed, ==, 0);
    /* …silence ends it. */
    int64_t silent_from = hv_now_ms();
    run_until(&r.closed_flag, 2000);
    g_assert_cmpint(r.closed, ==, 1);
    g_assert_cmpint(r.reason, ==, HV_LK_SIGNAL_LOST);
    g_assert_true(r.retryable);
    g_assert_cmpint(hv_now_ms() - silent_from, >=, 195);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
test_room_malformed(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    feed_join(room, NULL, 0, 5, 15);
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    g_assert_cmpint(hv_lk_room_handle_message(room, garbage, sizeof(garbage)), ==, HV_EPROTO);
    run_until(&r.closed_flag, 1000);
    g_assert_cmpint(r.reason, ==, HV_LK_PROTOCOL_ERROR);
    g_assert_true(r.retryable);
    hv_lk_room_free(room);
    recorder_clear(&r);

    /* Anything but join (or leave) first is a protocol error too. */
    room = detached_room(&r);
    feed_offer(room, "v=0\r\n", 1);
    g_assert_cmpint(r.offers, ==, 0);
    run_until(&r.closed_flag, 1000);
    g_assert_cmpint(r.reason, ==, HV_LK_PROTOCOL_ERROR);
    g_assert_nonnull(strstr(r.detail, "offer"));
    hv_lk_room_free(room);
    recorder_clear(&r);
}

static void
test_room_join_timeout(void)
{
    recorder r = {0};
    g_autofree char *token = fixture_token();
    hv_lk_room_config cfg = {
        .url = "wss://unused.invalid", .token = token, .connect_timeout_ms = 50};
    hv_lk_room *room = hv_lk_room_new_detached(&cfg, &rec_cb, &r);
    run_until(&r.closed_flag, 2000);
    g_assert_cmpint(r.reason, ==, HV_LK_CONNECT_TIMEOUT);
    g_assert_cmpstr(hv_lk_close_reason_name(r.reason), ==, "CONNECT_TIMEOUT");
    g_assert_nonnull(strstr(r.detail, "JoinResponse"));
    hv_lk_room_free(room);
    recorder_clear(&r);
}

/* Freeing from inside callbacks is safe: nothing fires afterwards, nothing is touched. */
static void
test_room_free_in_callbacks(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    feed_join(room, NULL, 0, 1, 20);
    r.free_in_offer = true;
    feed_offer(room, "v=0\r\n", 3);
    g_assert_cmpint(r.offers, ==, 1);
    g_assert_null(r.room);
    run_for(50);
    g_assert_cmpint(r.closed, ==, 0);
    recorder_clear(&r);

    room = detached_room(&r);
    r.free_in_closed = true;
    static const uint8_t garbage[] = {0xff};
    g_assert_cmpint(hv_lk_room_handle_message(room, garbage, sizeof(garbage)), ==, HV_EPROTO);
    run_until(&r.closed_flag, 1000);
    g_assert_cmpint(r.closed, ==, 1);
    g_assert_null(r.room);
    recorder_clear(&r);

    /* Freed while on_closed is pending: it never fires. */
    room = detached_room(&r);
    g_assert_cmpint(hv_lk_room_handle_message(room, garbage, sizeof(garbage)), ==, HV_EPROTO);
    hv_lk_room_free(room);
    run_for(30);
    g_assert_cmpint(r.closed, ==, 0);
    recorder_clear(&r);
}

/* Leaving: a detached room's free sends leave{CLIENT_INITIATED, DISCONNECT}; the bytes are the
 * spec's worked example (checked in test_proto_worked_examples), so only the call path is
 * exercised here. */
static void
test_room_nothing_after_close(void)
{
    recorder r = {0};
    hv_lk_room *room = detached_room(&r);
    feed_join(room, NULL, 0, 5, 15);
    static const uint8_t garbage[] = {0xff};
    (void)hv_lk_room_handle_message(room, garbage, sizeof(garbage));
    hv_lk_room_send_answer(room, "v=0\r\n", 1);
    hv_lk_room_send_candidate(room, "candidate:1", "0", 0);
    g_assert_cmpuint(hv_lk_room_sent(room)->len, ==, 0);
    run_until(&r.closed_flag, 1000);
    hv_lk_room_free(room);
    recorder_clear(&r);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/livekit/token/fixture", test_token_fixture);
    g_test_add_func("/livekit/token/garbage-rejected", test_token_garbage);
    g_test_add_func("/livekit/proto/field-numbers-match-spec", test_proto_field_numbers);
    g_test_add_func("/livekit/proto/worked-examples", test_proto_worked_examples);
    g_test_add_func("/livekit/proto/request-round-trips", test_proto_request_roundtrips);
    g_test_add_func("/livekit/proto/response-round-trips", test_proto_response_roundtrips);
    g_test_add_func("/livekit/proto/notice-round-trips", test_proto_notice_roundtrips);
    g_test_add_func("/livekit/proto/unknown-oneof-tolerated", test_proto_unknown_oneof);
    g_test_add_func("/livekit/signal/url", test_signal_url);
    g_test_add_func("/livekit/room/join", test_room_join);
    g_test_add_func("/livekit/room/streamer-prefers-non-viewer", test_room_streamer_choice);
    g_test_add_func("/livekit/room/streamer-larger-video", test_room_larger_video_wins);
    g_test_add_func("/livekit/room/streamer-switches-to-non-viewer",
                    test_room_prefers_non_viewer_later);
    g_test_add_func("/livekit/room/resubscribe-and-left", test_room_resubscribe_and_left);
    g_test_add_func("/livekit/room/many-participants", test_room_many_participants);
    g_test_add_func("/livekit/room/screen-share-preferred", test_room_screen_share_preferred);
    g_test_add_func("/livekit/room/guest-never-replaces-host", test_room_guest_never_replaces_host);
    g_test_add_func("/livekit/room/host-hints", test_room_host_hints);
    g_test_add_func("/livekit/room/track-codecs", test_room_track_codecs);
    g_test_add_func("/livekit/room/big-room", test_room_big_room);
    g_test_add_func("/livekit/room/offer-answer", test_room_offer_answer);
    g_test_add_func("/livekit/room/trickle", test_room_trickle);
    g_test_add_func("/livekit/room/refresh-token", test_room_refresh_token);
    g_test_add_func("/livekit/room/leave", test_room_leave);
    g_test_add_func("/livekit/room/ping", test_room_ping);
    g_test_add_func("/livekit/room/ping-timeout", test_room_ping_timeout);
    g_test_add_func("/livekit/room/malformed", test_room_malformed);
    g_test_add_func("/livekit/room/join-timeout", test_room_join_timeout);
    g_test_add_func("/livekit/room/free-in-callbacks", test_room_free_in_callbacks);
    g_test_add_func("/livekit/room/nothing-after-close", test_room_nothing_after_close);
    return g_test_run();
}

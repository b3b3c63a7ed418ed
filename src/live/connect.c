/* connect.c: a session's connection to the stream: the catalog answer → pump.fun's token (or
 * the refreshed LiveKit one) → the LiveKit room → the webrtcbin peer connection, the room's and
 * the media session's callbacks (tracks, the streamer leaving and coming back, frames into the
 * hub), what viewers need decoded, and the full reconnect with backoff until
 * HAVEN_RECONNECT_GIVE_UP. Main thread only. Calls lifecycle.c, recording.c, encoded.c,
 * tokens.c and idle.c, never session.c. */
#include "live/live-private.h"

#include "core/error.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/util.h"

#include <string.h>

/* Full-reconnect delays (the JS SDK's policy), then every 7 s until the give-up time. */
static const int64_t reconnect_delays_ms[] = {0, 300, 1200, 2700, 4800, 7000};

/* livekit-server gives a republished track a new m-line (haven announces a client it never
 * reuses dormant m-lines for: see signal.c), so every republish leaves two dormant ones in the
 * peer connection. Past this many, a fresh peer connection (a reconnect with the same LiveKit
 * token) starts over: the SDP and webrtcbin's transceivers stay bounded on a stream that runs
 * for days. */
#define MAX_MEDIA_LINES 64

static void open_room(hv_live_session *s, const char *token, bool refreshed);
static void mark_flowing(hv_live_session *s);

static void
parse_format_key(const char *key, int *rate, int *channels)
{
    *rate = 0;
    *channels = 0;
    (void)sscanf(key, "%d/%d", rate, channels);
}

static void
apply_needs(hv_live_session *s)
{
    if (s->media == NULL) {
        return;
    }
    hv_media_session_set_video_enabled(s->media, s->video_needed);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, s->audio_formats);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        int rate, channels;
        parse_format_key(key, &rate, &channels);
        hv_media_session_add_audio_format(s->media, rate, channels);
    }
}

static void
on_video_needed(bool needed, void *user_data)
{
    hv_live_session *s = user_data;
    s->video_needed = needed;
    if (s->media != NULL) {
        hv_media_session_set_video_enabled(s->media, needed);
    }
}

static void
on_viewers_changed(void *user_data)
{
    hv_live_update_idle_timer(user_data); /* viewers of either mode keep a session alive */
}

static void
on_audio_format_needed(int rate, int channels, bool needed, void *user_data)
{
    hv_live_session *s = user_data;
    g_autofree char *key = g_strdup_printf("%d/%d", rate, channels);
    if (needed) {
        g_hash_table_add(s->audio_formats, g_steal_pointer(&key));
        if (s->media != NULL) {
            hv_media_session_add_audio_format(s->media, rate, channels);
        }
    } else {
        g_hash_table_remove(s->audio_formats, key);
        if (s->media != NULL) {
            hv_media_session_remove_audio_format(s->media, rate, channels);
        }
    }
}

static gboolean
on_too_many_mlines(gpointer user_data)
{
    hv_live_session *s = user_data;
    s->mline_idle = 0;
    hv_live_reconnect(s, "too many dormant m-lines in the peer connection; starting a fresh one");
    return G_SOURCE_REMOVE;
}

static void
on_media_answer(const char *sdp, uint32_t offer_id, void *user_data)
{
    hv_live_session *s = user_data;
    if (s->room != NULL) {
        hv_lk_room_send_answer(s->room, sdp, offer_id);
    }
    hv_media_stats st;
    hv_media_session_get_stats(s->media, &st);
    if (st.media_lines > MAX_MEDIA_LINES && s->mline_idle == 0) {
        s->mline_idle = g_idle_add(on_too_many_mlines, s); /* not from inside media's call */
    }
}

static void
on_media_candidate(const char *candidate, const char *sdp_mid, int mline_index, void *user_data)
{
    hv_live_session *s = user_data;
    if (s->room != NULL) {
        hv_lk_room_send_candidate(s->room, candidate, sdp_mid, mline_index);
    }
}

static void
on_media_track(const char *mid, const char *track_sid, const char *kind, const char *codec,
               void *user_data)
{
    hv_live_session *s = user_data;
    HV_INFO(S_CTX(s), "receiving %s track %s (%s) on mid %s", kind, track_sid, codec, mid);
    /* webrtcbin adds a track's pad when its first RTP packet arrives: media flows, even when
     * nothing decodes it (no viewer yet, or a recording only). Without this, a session nobody
     * watches stayed "reconnecting" after a reconnect, and its ICE timer could fire. */
    mark_flowing(s);
    /* The recording takes the selected tracks: the one video, the primary audio. */
    bool video = g_strcmp0(kind, "video") == 0;
    const char *want = video ? s->video_track : s->audio_track;
    if (want == NULL || track_sid[0] == '\0' || strcmp(want, track_sid) == 0) {
        hv_live_rec_on_track(s, kind, codec);
    }
}

static void
mark_flowing(hv_live_session *s)
{
    if (s->media_timer != 0) {
        /* Decoded media proves the peer connection connected, whatever webrtcbin notified
         * (1.22 may not notify a state change that happened before its signal was connected). */
        g_source_remove(s->media_timer);
        s->media_timer = 0;
    }
    if (s->state == S_RECONNECTING) {
        s->state = S_ACTIVE;
        s->attempt = 0;
        HV_MESSAGE(S_CTX(s), "media flowing again after reconnect");
        if (s->db_id > 0) {
            (void)hv_store_update_live_session(s->live->store, s->db_id, "active", NULL, false,
                                               hv_wall_ms(), NULL);
        }
        hv_hub_channel_publish_event(s->channel, "{\"type\":\"resumed\"}");
    }
}

static void
on_media_video(hv_frame *jpeg, void *user_data)
{
    hv_live_session *s = user_data;
    mark_flowing(s);
    const hv_frame_info *fi = hv_frame_info_const(jpeg);
    if (fi->width != s->last_width || fi->height != s->last_height) {
        s->last_width = fi->width;
        s->last_height = fi->height;
        g_autofree char *ev = g_strdup_printf(
            "{\"type\":\"video_size\",\"width\":%d,\"height\":%d}", fi->width, fi->height);
        hv_hub_channel_publish_event(s->channel, ev);
    }
    /* The frame is the message (both hv_bufs): shared by reference, nothing copied. */
    hv_hub_channel_publish_video(s->channel, jpeg, fi->width, fi->height);
}

static void
on_media_audio(hv_frame *pcm, void *user_data)
{
    /* No mark_flowing here: the mixer sends silence while no track is there, so PCM proves
     * nothing about the peer connection (a track's first packet does: on_media_track). */
    hv_live_session *s = user_data;
    const hv_frame_info *fi = hv_frame_info_const(pcm);
    /* Encoded once per chunk and format, then shared by every viewer of that format. */
    hv_hub_msg *m = hv_hub_msg_new_audio_text(hv_frame_payload_const(pcm), hv_frame_len(pcm));
    hv_hub_channel_publish_audio(s->channel, fi->rate_hz, fi->channels, m);
    hv_hub_msg_unref(m);
}

static void
on_media_encoded(hv_frame *msg, void *user_data)
{
    hv_live_enc_on_frame(user_data, msg);
}

static void
on_media_state(hv_media_state state, const char *reason, void *user_data)
{
    hv_live_session *s = user_data;
    s->media_state = state;
    if (state == HV_MEDIA_CONNECTED && s->media_timer != 0) {
        g_source_remove(s->media_timer);
        s->media_timer = 0;
    }
    if (state == HV_MEDIA_FAILED && s->state != S_ENDED) {
        if (s->room != NULL && hv_lk_room_is_closed(s->room)) {
            /* The server hung up (a leave DISCONNECT, say) and took the peer connection with
             * it: the room's on_closed, already queued, says whether to end or reconnect.
             * Reconnecting here would free the room and lose that verdict. */
            HV_INFO(S_CTX(s), "peer connection failed after the room closed: %s",
                    reason != NULL ? reason : "unknown");
            return;
        }
        g_autofree char *why =
            g_strdup_printf("peer connection failed: %s", reason != NULL ? reason : "unknown");
        if (s->state == S_STARTING) {
            hv_live_fail_start(s, HV_EUPSTREAM, why);
        } else {
            hv_live_reconnect(s, why);
        }
    }
}

static void
record_session_row(hv_live_session *s)
{
    const hv_pf_stream *i = s->info;
    hv_store_session_row row = {
        .mint_id = s->mint,
        .coin_name = i->name,
        .coin_symbol = i->symbol,
        .coin_description = i->description,
        .image_uri = i->image_uri,
        .thumbnail = i->thumbnail,
        .creator = i->creator,
        .website = i->website,
        .twitter = i->twitter,
        .telegram = i->telegram,
        .market_cap = i->market_cap,
        .usd_market_cap = i->usd_market_cap,
        .num_participants = i->num_participants,
        .nsfw = i->nsfw,
        .room_name = s->room_name,
        .participant_sid = s->participant_sid,
        .record_session = s->record,
    };
    g_autoptr(GError) error = NULL;
    s->db_id = hv_store_insert_live_session(s->live->store, &row, hv_wall_ms(), &error);
    if (s->db_id < 0) {
        HV_WARNING(S_CTX(s), "%s", error->message);
    }
}

/* ICE that never connects (no candidate pair works, or none arrives) reports nothing: without
 * a bound the session would sit "active" without media, up to the server's one-minute join
 * timeout and its leave DISCONNECT (an "ended" session), or for ever. Like the JS SDK's
 * peerConnectionTimeout, the peer connection gets the connect timeout again after the join;
 * then the session reconnects, and gives up as failed after HAVEN_RECONNECT_GIVE_UP. */
static gboolean
on_media_timeout(gpointer user_data)
{
    hv_live_session *s = user_data;
    if (s->media_state == HV_MEDIA_NEW) {
        /* No offer with any m-line yet (the server may offer nothing until there is something
         * to subscribe to): there is no transport to connect, so nothing has failed. */
        return G_SOURCE_CONTINUE;
    }
    s->media_timer = 0;
    g_autofree char *why =
        g_strdup_printf("peer connection failed: ICE not connected within %" G_GINT64_FORMAT " ms",
                        s->live->cfg->livekit_connect_timeout_ms);
    hv_live_reconnect(s, why);
    return G_SOURCE_REMOVE;
}

static void
on_room_joined(const hv_lk_join_info *info, void *user_data)
{
    hv_live_session *s = user_data;
    g_free(s->room_name);
    s->room_name = g_strdup(info->room_name);
    g_free(s->participant_sid);
    s->participant_sid = g_strdup(info->participant_sid);
    hv_media_config mc = {
        .ice_servers = (const char *const *)info->ice_servers,
        .ice_addresses = s->live->cfg->ice_addresses,
        .jpeg_quality = (int)s->live->cfg->jpeg_quality,
        .log_mint = s->mint,
        .log_room = s->room_name,
        /* Always: the GOP cache stays warm so an encoded viewer starts at once. */
        .encoded = true,
        .encoded_ts_base_us = hv_live_enc_ts_base(s),
    };
    hv_media_callbacks cb = {
        .on_answer = on_media_answer,
        .on_local_candidate = on_media_candidate,
        .on_track = on_media_track,
        .on_video_frame = on_media_video,
        .on_audio_frame = on_media_audio,
        .on_encoded_frame = on_media_encoded,
        .on_state = on_media_state,
    };
    g_autoptr(GError) error = NULL;
    s->media_state = HV_MEDIA_NEW;
    s->media = hv_media_session_new(&mc, &cb, s, &error);
    if (s->media == NULL) {
        hv_live_fail_start(s, HV_EIO, error->message);
        return;
    }
    hv_media_session_select_tracks(s->media, s->video_track, s->audio_track);
    apply_needs(s);
    s->media_timer =
        g_timeout_add((guint)s->live->cfg->livekit_connect_timeout_ms, on_media_timeout, s);
    HV_MESSAGE(S_CTX(s), "joined room %s as %s", s->room_name, s->participant_sid);
    if (s->state == S_STARTING) {
        s->state = S_ACTIVE;
        record_session_row(s);
        hv_live_update_idle_timer(s);
        hv_live_answer_ops(s, NULL);
    }
}

static const char *const *
track_codecs(const char *track_sid, void *data)
{
    hv_live_session *s = data;
    return s->room != NULL ? hv_lk_room_track_codecs(s->room, track_sid) : NULL;
}

static void
on_room_offer(const char *sdp, uint32_t offer_id, GHashTable *mid_to_track_id, void *user_data)
{
    hv_live_session *s = user_data;
    if (s->media != NULL) {
        /* The codec each track is published in goes first in the answer's preferences. */
        hv_media_offer_info info = {mid_to_track_id, track_codecs, s};
        hv_media_session_set_offer(s->media, sdp, offer_id, &info);
    }
}

static void
on_room_candidate(const char *candidate, const char *sdp_mid, int mline_index, void *user_data)
{
    hv_live_session *s = user_data;
    if (s->media != NULL) {
        hv_media_session_add_candidate(s->media, candidate, sdp_mid, mline_index);
    }
}

/* Why a video track cannot be shown here (none of its codecs decodable), or NULL. */
static char *
unsupported_reason(const hv_lk_track *t)
{
    g_autoptr(GString) names = g_string_new(NULL);
    for (size_t i = 0; t->codecs[i] != NULL; i++) {
        if (hv_media_codec_decodable(t->codecs[i])) {
            return NULL;
        }
        const char *slash = strchr(t->codecs[i], '/');
        g_string_append_printf(names, "%s%s", i > 0 ? ", " : "",
                               slash != NULL ? slash + 1 : t->codecs[i]);
    }
    if (names->len == 0) {
        return NULL; /* the server did not say: try */
    }
    return g_strdup_printf("the stream's video is %s, which haven cannot decode (GStreamer 1.22 "
                           "has no depayloader for it)",
                           names->str);
}

/* The streamer's video cannot be shown: viewers are told once, /active says why. */
static void
set_video_unsupported(hv_live_session *s, char *reason)
{
    if (g_strcmp0(reason, s->video_unsupported) == 0) {
        g_free(reason);
        return;
    }
    g_free(s->video_unsupported);
    s->video_unsupported = reason;
    if (reason == NULL) {
        return;
    }
    HV_WARNING(S_CTX(s), "%s", reason);
    g_autoptr(json_t) ev = json_pack("{s:s, s:s, s:s}", "type", "unsupported_codec", "kind",
                                     "video", "reason", reason);
    g_autofree char *text = json_dumps(ev, JSON_COMPACT);
    hv_hub_channel_publish_event(s->channel, text);
}

static void
on_room_streamer(const char *participant_sid, const char *identity, const hv_lk_track *tracks,
                 size_t n_tracks, void *user_data)
{
    hv_live_session *s = user_data;
    g_free(s->streamer_identity);
    s->streamer_identity = g_strdup(identity);
    /* stage.c lists the one video track first, then every audio track; the recording takes a
     * microphone before screen audio. */
    const hv_lk_track *video = n_tracks > 0 && tracks[0].is_video ? &tracks[0] : NULL;
    const hv_lk_track *audio = NULL;
    s->audio_tracks = 0;
    for (size_t i = 0; i < n_tracks; i++) {
        if (!tracks[i].is_video) {
            s->audio_tracks++;
            if (audio == NULL || (tracks[i].source == HV_LK_SOURCE_MICROPHONE &&
                                  audio->source != HV_LK_SOURCE_MICROPHONE)) {
                audio = &tracks[i];
            }
        }
    }
    HV_MESSAGE(S_CTX(s), "streamer %s (%s): video %s (%s), %u audio track(s)", identity,
               participant_sid, video != NULL ? video->sid : "none",
               video != NULL ? hv_lk_source_name(video->source) : "-", s->audio_tracks);
    bool changed = g_strcmp0(s->video_track, video != NULL ? video->sid : NULL) != 0 ||
                   g_strcmp0(s->audio_track, audio != NULL ? audio->sid : NULL) != 0;
    g_free(s->video_track);
    s->video_track = g_strdup(video != NULL ? video->sid : NULL);
    g_free(s->audio_track);
    s->audio_track = g_strdup(audio != NULL ? audio->sid : NULL);
    s->video_source =
        video == NULL ? NULL
        : video->source == HV_LK_SOURCE_CAMERA || video->source == HV_LK_SOURCE_SCREEN_SHARE
            ? hv_lk_source_name(video->source)
            : "unknown";
    set_video_unsupported(s, video != NULL ? unsupported_reason(video) : NULL);
    if (s->media != NULL) {
        hv_media_session_select_tracks(s->media, s->video_track, s->audio_track);
    }
    if (s->streamer_timer != 0) {
        /* Back within the grace period: the new tracks are subscribed on this connection. */
        g_source_remove(s->streamer_timer);
        s->streamer_timer = 0;
        HV_MESSAGE(S_CTX(s), "streamer %s is back", identity);
        hv_hub_channel_publish_event(s->channel, "{\"type\":\"streamer_back\"}");
    }
    if (changed && s->rec != NULL) {
        /* Other tracks (a republish, a camera switch, a screen share): their timeline and
         * codec parameters are new, so the file ends and a new one starts on their first
         * keyframe. */
        HV_MESSAGE(S_CTX(s), "the streamer's tracks changed; the recording goes on in a new file");
        hv_live_rec_stop(s);
        s->video_codec[0] = '\0';
        s->audio_codec[0] = '\0';
    }
    hv_live_rec_on_streamer(s, tracks, n_tracks);
}

static void
on_room_subscription_error(const char *track_sid, const char *error, void *user_data)
{
    hv_live_session *s = user_data;
    if (g_strcmp0(track_sid, s->video_track) == 0 &&
        g_strcmp0(error, "SE_CODEC_UNSUPPORTED") == 0 && s->room != NULL) {
        const char *const *codecs = hv_lk_room_track_codecs(s->room, track_sid);
        g_autofree char *list = codecs != NULL ? g_strjoinv(", ", (char **)codecs) : NULL;
        set_video_unsupported(
            s, g_strdup_printf("the LiveKit server could not send the stream's video in a codec "
                               "haven decodes (published as %s)",
                               list != NULL && list[0] != '\0' ? list : "unknown"));
    }
}

static gboolean
on_streamer_grace_over(gpointer user_data)
{
    hv_live_session *s = user_data;
    s->streamer_timer = 0;
    hv_live_session_end(s, "ended", "the streamer left");
    return G_SOURCE_REMOVE;
}

/* A streamer that leaves often comes back within seconds (OBS restarted, a network change on
 * their side): the session, its viewers and its recording wait HAVEN_STREAMER_GRACE for that
 * before ending. The room stays joined meanwhile, so its participant updates say when the
 * streamer is back. */
static void
on_room_streamer_left(const char *identity, void *user_data)
{
    hv_live_session *s = user_data;
    int64_t grace = s->live->cfg->streamer_grace_ms;
    if (grace <= 0) {
        hv_live_session_end(s, "ended", "the streamer left");
        return;
    }
    if (s->streamer_timer != 0) {
        return; /* already waiting (it left again on a new connection) */
    }
    HV_MESSAGE(S_CTX(s), "streamer %s left; waiting %" G_GINT64_FORMAT " ms for it to come back",
               identity, grace);
    s->streamer_timer =
        g_timeout_add((guint)MIN(grace, (int64_t)G_MAXUINT), on_streamer_grace_over, s);
    g_autoptr(json_t) ev =
        json_pack("{s:s, s:I}", "type", "streamer_left", "grace_ms", (json_int_t)grace);
    g_autofree char *text = json_dumps(ev, JSON_COMPACT);
    hv_hub_channel_publish_event(s->channel, text);
}

static gboolean
on_retry_timer(gpointer user_data)
{
    hv_live_session *s = user_data;
    s->retry_timer = 0;
    hv_live_begin_join(s);
    return G_SOURCE_REMOVE;
}

/* Full reconnect (the only recovery webrtcbin allows): drop the room and the peer connection,
 * then after a backoff join again: with the newest LiveKit token while it is valid (same
 * identity, no pump.fun request), else with a fresh one from pump.fun. */
void
hv_live_reconnect(hv_live_session *s, const char *why)
{
    if (s->state == S_ENDED) {
        return;
    }
    int64_t now = hv_now_ms();
    if (s->state != S_RECONNECTING) {
        s->state = S_RECONNECTING;
        s->reconnect_since_ms = now;
        s->attempt = 0;
        if (s->db_id > 0) {
            (void)hv_store_update_live_session(s->live->store, s->db_id, "reconnecting", why, false,
                                               hv_wall_ms(), NULL);
        }
    }
    if (now - s->reconnect_since_ms > s->live->cfg->reconnect_give_up_ms) {
        g_autofree char *reason =
            g_strdup_printf("could not reconnect within %" G_GINT64_FORMAT " s: %s",
                            s->live->cfg->reconnect_give_up_ms / 1000, why);
        hv_live_session_end(s, "failed", reason);
        return;
    }
    hv_live_free_connection(s);
    s->reconnects++;
    hv_metrics_count("haven_reconnects_total", NULL, 1);
    size_t n = G_N_ELEMENTS(reconnect_delays_ms);
    int64_t delay = reconnect_delays_ms[MIN((size_t)s->attempt, n - 1)];
    s->attempt++;
    HV_MESSAGE(S_CTX(s), "reconnecting (attempt %d in %" G_GINT64_FORMAT " ms): %s", s->attempt,
               delay, why);
    g_autoptr(json_t) ev =
        json_pack("{s:s, s:i, s:s}", "type", "reconnecting", "attempt", s->attempt, "reason", why);
    g_autofree char *text = json_dumps(ev, JSON_COMPACT);
    hv_hub_channel_publish_event(s->channel, text);
    if (s->retry_timer != 0) {
        g_source_remove(s->retry_timer);
    }
    s->retry_timer = g_timeout_add((guint)delay, on_retry_timer, s);
}

static void
on_room_closed(hv_lk_close_reason reason, bool retryable, const char *detail, void *user_data)
{
    hv_live_session *s = user_data;
    g_autofree char *why = g_strdup_printf("LiveKit: %s", detail != NULL ? detail : "closed");
    if (s->state == S_STARTING) {
        /* A room that never answered is a gateway timeout; any other failure a bad gateway. */
        int code = reason == HV_LK_CONNECT_TIMEOUT ? HV_ETIMEDOUT : HV_EUPSTREAM;
        g_autofree char *msg =
            g_strdup_printf("Could not connect to the stream's LiveKit room for mint_id: %s (%s)",
                            s->mint, detail != NULL ? detail : "connection closed");
        hv_live_fail_start(s, code, msg);
        return;
    }
    if (reason == HV_LK_UNAUTHORIZED && s->room_on_refresh) {
        /* LiveKit refused the refresh token (revoked, or expired sooner than it said): ask
         * pump.fun for a new one. */
        HV_MESSAGE(S_CTX(s), "LiveKit refused the refreshed token (%s); asking pump.fun",
                   detail != NULL ? detail : "401");
        s->token_refused = true;
        hv_live_reconnect(s, why);
        return;
    }
    if (!retryable) {
        hv_live_session_end(s, reason == HV_LK_LEAVE_DISCONNECT ? "ended" : "failed", why);
        return;
    }
    hv_live_reconnect(s, why);
}

static void
on_token(const char *token, const GError *error, void *user_data)
{
    hv_live_session *s = user_data;
    s->join = NULL;
    if (token == NULL) {
        bool not_live = error != NULL && error->code == HV_ENOTFOUND;
        if (s->state == S_STARTING) {
            g_autofree char *msg =
                not_live
                    ? g_strdup_printf("Stream not found or not live for mint_id: %s", s->mint)
                    : g_strdup_printf("Failed to get livestream token for mint_id: %s", s->mint);
            hv_live_fail_start(s, not_live ? HV_ENOTFOUND : HV_EUPSTREAM, msg);
        } else if (not_live) {
            hv_live_session_end(s, "ended", "the stream is no longer live");
        } else {
            hv_live_reconnect(s, error != NULL ? error->message : "token request failed");
        }
        return;
    }
    s->pumpfun_joins++;
    open_room(s, token, false);
}

/* Opens the LiveKit room with token (pump.fun's, or the refresh token of an earlier room). */
static void
open_room(hv_live_session *s, const char *token, bool refreshed)
{
    hv_lk_token_info ti = {0};
    g_autoptr(GError) terr = NULL;
    if (hv_lk_token_decode(token, &ti, &terr)) {
        HV_INFO(S_CTX(s), "%s token for room %s, identity %s, expires %" G_GINT64_FORMAT,
                refreshed ? "LiveKit's refreshed" : "pump.fun's", ti.room, ti.identity,
                ti.expires_at_s);
    } else {
        HV_INFO(S_CTX(s), "token not decodable (%s); joining anyway", terr->message);
    }
    hv_lk_token_info_clear(&ti);
    hv_live_token_remember(s, token);
    hv_lk_room_config rc = {
        .url = s->live->cfg->livekit_url,
        .token = token,
        .connect_timeout_ms = s->live->cfg->livekit_connect_timeout_ms,
        .log_mint = s->mint,
        .streamer_identity = s->streamer_identity,
    };
    hv_lk_room_callbacks cb = {
        .on_joined = on_room_joined,
        .on_offer = on_room_offer,
        .on_remote_candidate = on_room_candidate,
        .on_streamer = on_room_streamer,
        .on_streamer_left = on_room_streamer_left,
        .on_subscription_error = on_room_subscription_error,
        .on_closed = on_room_closed,
    };
    s->room_on_refresh = refreshed;
    s->room = hv_lk_room_new(&rc, &cb, s);
}

void
hv_live_begin_join(hv_live_session *s)
{
    const char *token = hv_live_token_usable(s);
    if (token != NULL) {
        g_autofree char *copy = g_strdup(token);
        open_room(s, copy, true);
        return;
    }
    s->join = hv_pf_join_start(s->live->client, s->live->cfg->pumpfun_livestream_api, s->mint,
                               on_token, s);
}

const hv_hub_channel_callbacks hv_live_hub_callbacks = {
    .video_needed = on_video_needed,
    .audio_format_needed = on_audio_format_needed,
    .keyframe_wanted = hv_live_enc_keyframe_wanted,
    .viewers_changed = on_viewers_changed,
};

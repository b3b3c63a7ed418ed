/* report.c: what a session says about itself (hv_live_session_report), for the API's answers
 * and /metrics, which src/http renders. Main thread only. */
#include "live/live-private.h"

#include "core/util.h"

#include <string.h>

const hv_pf_stream *
hv_live_session_stream(hv_live_session *s)
{
    return s->info;
}

void
hv_live_session_report_get(hv_live_session *s, hv_live_session_report *out)
{
    memset(out, 0, sizeof(*out));
    hv_media_stats st = {0};
    if (s->media != NULL) {
        hv_media_session_get_stats(s->media, &st);
    }
    const hv_media_stats *b = &s->media_before; /* the peer connections before this one */
    hv_hub_viewer_stats sent;
    hv_hub_channel_get_totals(s->channel, &sent);
    hv_lk_room_stats rs = {0};
    if (s->room != NULL) {
        hv_lk_room_get_stats(s->room, &rs);
    }
    out->mint = s->mint;
    out->state = hv_live_state_name(s);
    out->joined = s->state == S_ACTIVE || s->state == S_RECONNECTING;
    out->session_id = s->db_id > 0 ? s->db_id : 0;
    out->room_name = s->room_name;
    out->participant_sid = s->participant_sid;
    out->streamer = s->streamer_identity;
    out->record_session = s->record;
    out->viewers = hv_hub_channel_viewer_count(s->channel);
    out->room_participants = rs.participants;
    out->started_wall_ms = s->started_wall_ms;
    out->uptime_ms = hv_now_ms() - s->started_ms;
    out->bytes_received = b->bytes_received + st.bytes_received;
    out->reconnects = s->reconnects;

    g_strlcpy(out->video.codec, st.video_codec, sizeof(out->video.codec));
    out->video.width = st.width;
    out->video.height = st.height;
    out->video.fps = st.fps;
    out->video.frames_received = b->video_frames_received + st.video_frames_received;
    out->video.frames_decoded = b->video_frames_decoded + st.video_frames_decoded;
    out->video.frames_encoded = b->video_frames_encoded + st.video_frames_encoded;
    out->video.frames_dropped_encoder = b->video_frames_dropped + st.video_frames_dropped;
    out->video.frames_sent = sent.video_sent;
    out->video.frames_dropped_viewer = sent.video_dropped;
    /* Which of the streamer's tracks is shown (a screen share before a camera), and why
     * nothing is when its codec cannot be decoded here. */
    out->video.source = s->video_source;
    out->video.track_sid = s->video_track;
    out->video.unsupported = s->video_unsupported;

    g_strlcpy(out->audio.codec, st.audio_codec, sizeof(out->audio.codec));
    out->audio.chunks_decoded = b->audio_chunks + st.audio_chunks;
    out->audio.sent = sent.audio_sent;
    out->audio.tracks = s->audio_tracks;

    hv_hub_channel_latency(s->channel, &out->latency.p50_ms, &out->latency.p99_ms,
                           &out->latency.samples);
    hv_live_rec_report(s, &out->recording);

    hv_hub_gop_stats g;
    hv_hub_channel_gop_stats(s->channel, &g);
    out->encoded.viewers = g.viewers;
    g_strlcpy(out->encoded.codec, s->enc_codec, sizeof(out->encoded.codec));
    out->encoded.gop_bytes = g.bytes;
    out->encoded.gop_entries = g.entries;
    out->encoded.gop_has_key_frame = g.has_key_frame;
}

static gint
cmp_mint(gconstpointer a, gconstpointer b)
{
    return strcmp(((const hv_live_session_report *)a)->mint,
                  ((const hv_live_session_report *)b)->mint);
}

GArray *
hv_live_reports(hv_live *live)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(hv_live_session_report));
    GHashTableIter it;
    gpointer value;
    g_hash_table_iter_init(&it, live->sessions);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        hv_live_session_report r;
        hv_live_session_report_get(value, &r);
        g_array_append_val(out, r);
    }
    g_array_sort(out, cmp_mint);
    return out;
}

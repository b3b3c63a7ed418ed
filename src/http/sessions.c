/* sessions.c: the live-session answers the API renders from what the live module reports
 * (hv_live_session_report), and the one table from haven's error codes to HTTP statuses. */
#include "http/http-private.h"

#include "core/error.h"
#include "core/util.h"

/* ---- errors → HTTP ---------------------------------------------------------------------- */

int
hv_http_status_for_error(int code)
{
    static const struct {
        int code;
        int status;
    } map[] = {
        {HV_EINVAL, 422},                    /* the request itself is wrong */
        {HV_ENOTFOUND, 404},                 /* no such stream / session */
        {HV_EAGAIN, 503},                    /* a limit, or an upstream that says try later */
        {HV_ERATELIMIT, 503},                /* pump.fun rate-limits */
        {HV_ECLOSED, 503},                   /* shutting down, or ended before it started */
        {HV_ETIMEDOUT, 504},                 /* an upstream never answered */
        {HV_EUPSTREAM, 502},                 /* an upstream answered badly */
        {HV_EPROTO, 502},     {HV_EIO, 500}, /* haven's own failure */
        {HV_ENOMEM, 500},     {HV_ECONFIG, 500},
    };
    for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
        if (map[i].code == code) {
            return map[i].status;
        }
    }
    return 500;
}

/* ---- the answers ---------------------------------------------------------------------------- */

static json_t *
string_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

json_t *
hv_http_session_started_json(hv_live_session *s)
{
    hv_live_session_report r;
    hv_live_session_report_get(s, &r);
    /* stream_info is the whole stream object of /api/pumpfun/stream/{mint} as the session
     * found it (the seed's five fields and the rest: usd_market_cap, thumbnail, ...). */
    const hv_pf_stream *stream = hv_live_session_stream(s);
    json_t *info = stream != NULL ? json_loadb(stream->json, stream->json_len, 0, NULL) : NULL;
    return json_pack("{s:b, s:s, s:o, s:o, s:I, s:b, s:o}", "success", 1, "mint_id", r.mint,
                     "room_name", string_or_null(r.room_name), "participant_sid",
                     string_or_null(r.participant_sid), "session_id", (json_int_t)r.session_id,
                     "record_session", r.record_session, "stream_info",
                     info != NULL ? info : json_object());
}

static json_t *
recording_json(const hv_live_recording_report *rec)
{
    return json_pack(
        "{s:b, s:s, s:o, s:I, s:f, s:I, s:o}", "active", rec->active, "status", rec->status,
        "recording_id", rec->recording_id > 0 ? json_integer(rec->recording_id) : json_null(),
        "bytes", (json_int_t)rec->bytes, "duration_seconds", (double)rec->duration_ms / 1000.0,
        "dropped_packets", (json_int_t)rec->dropped_packets, "error", string_or_null(rec->error));
}

json_t *
hv_http_recording_answer_json(hv_live_session *s, bool on)
{
    hv_live_session_report r;
    hv_live_session_report_get(s, &r);
    json_t *out = json_pack("{s:b, s:s, s:b}", "success", 1, "mint_id", r.mint, "recording", on);
    json_t *rec = recording_json(&r.recording);
    json_object_update(out, rec);
    json_decref(rec);
    return out;
}

static json_t *
session_json(const hv_live_session_report *r)
{
    char started[40];
    hv_format_iso8601(r->started_wall_ms, started, sizeof(started));
    json_t *video = json_pack(
        "{s:o, s:i, s:i, s:f, s:I, s:I, s:I, s:o, s:o, s:o}", "codec",
        string_or_null(r->video.codec), "width", r->video.width, "height", r->video.height, "fps",
        r->video.fps, "frames_decoded", (json_int_t)r->video.frames_decoded, "frames_encoded",
        (json_int_t)r->video.frames_encoded, "frames_dropped",
        (json_int_t)r->video.frames_dropped_encoder, "source", string_or_null(r->video.source),
        "track_sid", string_or_null(r->video.track_sid), "unsupported",
        string_or_null(r->video.unsupported));
    json_t *audio =
        json_pack("{s:o, s:I, s:I}", "codec", string_or_null(r->audio.codec), "chunks",
                  (json_int_t)r->audio.chunks_decoded, "tracks", (json_int_t)r->audio.tracks);
    /* RTP arrival → handed to a viewer's socket, over the last video sends */
    json_t *latency = json_pack("{s:f, s:f, s:i}", "p50", r->latency.p50_ms, "p99",
                                r->latency.p99_ms, "samples", (int)r->latency.samples);
    json_t *encoded =
        json_pack("{s:i, s:o, s:I, s:I, s:b}", "viewers", (int)r->encoded.viewers, "codec",
                  string_or_null(r->encoded.codec), "gop_bytes", (json_int_t)r->encoded.gop_bytes,
                  "gop_entries", (json_int_t)r->encoded.gop_entries, "gop_has_key_frame",
                  r->encoded.gop_has_key_frame);
    return json_pack("{s:s, s:I, s:s, s:o, s:o, s:o, s:b, s:i, s:o, s:o, s:s, s:f, s:I, s:I, "
                     "s:I, s:o, s:o, s:o}",
                     "mint_id", r->mint, "session_id", (json_int_t)r->session_id, "status",
                     r->state, "room_name", string_or_null(r->room_name), "participant_sid",
                     string_or_null(r->participant_sid), "streamer", string_or_null(r->streamer),
                     "record_session", r->record_session, "viewers", (int)r->viewers, "video",
                     video, "audio", audio, "started_at", started, "uptime_s",
                     (double)r->uptime_ms / 1000.0, "bytes_received", (json_int_t)r->bytes_received,
                     "reconnects", (json_int_t)r->reconnects, "room_participants",
                     (json_int_t)r->room_participants, "latency_ms", latency, "recording",
                     recording_json(&r->recording), "encoded", encoded);
}

/* With several nodes, every session names the node that runs it. */
static json_t *
with_node(json_t *o, hv_cluster *cluster)
{
    if (cluster != NULL) {
        json_object_set_new(o, "node_id", json_string(hv_cluster_node_id(cluster)));
        json_object_set_new(o, "node_url", json_string(hv_cluster_node_url(cluster)));
    }
    return o;
}

json_t *
hv_http_cluster_report(hv_live_session *s, void *user_data)
{
    hv_live_session_report r;
    hv_live_session_report_get(s, &r);
    return json_pack("{s:o, s:o}", "session", session_json(&r), "started",
                     hv_http_session_started_json(s));
}

json_t *
hv_http_active_json(hv_live *live, hv_cluster *cluster)
{
    g_autoptr(GArray) reports = hv_live_reports(live);
    json_t *sessions = json_array();
    for (guint i = 0; i < reports->len; i++) {
        const hv_live_session_report *r = &g_array_index(reports, hv_live_session_report, i);
        if (r->joined) {
            json_array_append_new(sessions, with_node(session_json(r), cluster));
        }
    }
    /* The other nodes' sessions as they published them (at most a heartbeat old). */
    json_t *remote = hv_cluster_remote_sessions(cluster);
    json_array_extend(sessions, remote);
    json_decref(remote);
    return json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(sessions), "sessions",
                     sessions);
}

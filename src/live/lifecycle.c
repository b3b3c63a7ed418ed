/* lifecycle.c: how a session's start is answered and how it ends: the answers to the start's
 * callers, the teardown of its room and peer connection (the counters kept, the LiveKit token
 * remembered), the end (row, viewers' "ended" event, metrics) and the freeing from an idle.
 * Main thread only. Calls only recording.c, tokens.c and the other modules. */
#include "live/live-private.h"

#include "core/error.h"
#include "core/json.h"
#include "core/metrics.h"
#include "core/util.h"

#include <string.h>

static const char *const state_names[] = {"starting", "active", "reconnecting", "ended"};

const char *
hv_live_state_name(const hv_live_session *s)
{
    return state_names[s->state];
}

/* error: NULL for success. */
void
hv_live_answer_ops(hv_live_session *s, const GError *error)
{
    GList *l;
    while ((l = g_queue_pop_head_link(&s->ops)) != NULL) {
        hv_live_op *op = l->data;
        if (op->answered != NULL) {
            *op->answered = true;
        }
        op->cb(error == NULL ? s : NULL, error, op->user_data);
        g_free(op);
    }
}

void
hv_live_free_connection(hv_live_session *s)
{
    hv_live_rec_stop(s); /* the file ends with this peer connection; the next one starts anew */
    if (s->media_timer != 0) {
        g_source_remove(s->media_timer);
        s->media_timer = 0;
    }
    s->video_codec[0] = '\0';
    s->audio_codec[0] = '\0';
    if (s->media != NULL) {
        hv_media_stats st;
        hv_media_session_get_stats(s->media, &st);
        s->media_before.bytes_received += st.bytes_received;
        s->media_before.video_frames_received += st.video_frames_received;
        s->media_before.video_frames_decoded += st.video_frames_decoded;
        s->media_before.video_frames_encoded += st.video_frames_encoded;
        s->media_before.video_frames_dropped += st.video_frames_dropped;
        s->media_before.audio_chunks += st.audio_chunks;
        hv_media_session_free(s->media);
        s->media = NULL;
    }
    if (s->room != NULL && !s->token_refused) {
        hv_live_token_remember(s, hv_lk_room_token(s->room));
    } else if (s->token_refused) {
        g_clear_pointer(&s->lk_token, g_free); /* LiveKit said no: pump.fun's turn */
        s->token_refused = false;
    }
    g_clear_pointer(&s->room, hv_lk_room_free);
    g_clear_pointer(&s->join, hv_pf_join_cancel);
}

void
hv_live_session_free(hv_live_session *s)
{
    g_autoptr(GError) ended =
        g_error_new_literal(HV_ERROR, HV_ECLOSED, "The session ended before it started");
    hv_live_answer_ops(s, ended);
    hv_live_free_connection(s);
    hv_live_rec_session_gone(s);
    hv_pf_waiter_cancel(s->info_waiter);
    if (s->retry_timer != 0) {
        g_source_remove(s->retry_timer);
    }
    if (s->idle_timer != 0) {
        g_source_remove(s->idle_timer);
    }
    if (s->streamer_timer != 0) {
        g_source_remove(s->streamer_timer);
    }
    if (s->teardown_idle != 0) {
        g_source_remove(s->teardown_idle);
    }
    if (s->mline_idle != 0) {
        g_source_remove(s->mline_idle);
    }
    hv_hub_channel_free(s->channel, s->end_reason);
    hv_pf_stream_unref(s->info);
    g_hash_table_destroy(s->audio_formats);
    g_free(s->room_name);
    g_free(s->participant_sid);
    g_free(s->streamer_identity);
    g_free(s->video_track);
    g_free(s->audio_track);
    g_free(s->video_unsupported);
    g_free(s->lk_token);
    g_free(s->end_reason);
    g_free(s);
}

static gboolean
on_teardown_idle(gpointer user_data)
{
    hv_live_session *s = user_data;
    s->teardown_idle = 0;
    g_hash_table_remove(s->live->sessions, s->mint); /* frees it */
    return G_SOURCE_REMOVE;
}

/* Ends a session: the row is closed, viewers get an "ended" event and are closed with reason,
 * and the session is freed from an idle (never inside a room/media callback). */
void
hv_live_session_end(hv_live_session *s, const char *status, const char *reason)
{
    if (s->state == S_ENDED) {
        return;
    }
    HV_MESSAGE(S_CTX(s), "session %s: %s", status, reason);
    g_autofree char *labels = hv_metrics_labels("status", status, NULL);
    hv_metrics_count("haven_sessions_ended_total", labels, 1);
    session_state was = s->state;
    s->state = S_ENDED;
    g_free(s->end_reason);
    s->end_reason = g_strdup(reason);
    if (s->db_id > 0) {
        g_autoptr(GError) error = NULL;
        if (!hv_store_update_live_session(s->live->store, s->db_id, status,
                                          strcmp(status, "failed") == 0 ? reason : NULL, true,
                                          hv_wall_ms(), &error)) {
            HV_WARNING(S_CTX(s), "%s", error->message);
        }
    }
    if (was != S_STARTING) {
        g_autoptr(json_t) ev =
            json_pack("{s:s, s:s, s:s}", "type", "ended", "status", status, "reason", reason);
        g_autofree char *text = json_dumps(ev, JSON_COMPACT);
        hv_hub_channel_publish_event(s->channel, text);
    }
    hv_live_free_connection(s);
    if (s->teardown_idle == 0) {
        s->teardown_idle = g_idle_add(on_teardown_idle, s);
    }
}

/* code: the HV_E* the start's callers get (see hv_live_start_cb), with error as message. */
void
hv_live_fail_start(hv_live_session *s, int code, const char *error)
{
    HV_MESSAGE(S_CTX(s), "start failed (%s): %s", hv_err_name(code), error);
    g_autoptr(GError) e = g_error_new_literal(HV_ERROR, code, error);
    hv_live_answer_ops(s, e);
    hv_live_session_end(s, "failed", error);
}

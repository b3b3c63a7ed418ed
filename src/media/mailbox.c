/* mailbox.c: how frames and counters cross from GStreamer's threads to the main thread.
 *
 * Frames go through a bounded mailbox: the newest JPEG only (an older one still waiting is
 * dropped and counted), at most HV_MEDIA_AUDIO_BACKLOG PCM chunks (the oldest goes), and encoded
 * frames in order up to HV_MEDIA_ENCODED_BACKLOG(_BYTES) (a new one beyond is refused), with at
 * most one wake-up of the main context in flight. Counters are written by streaming threads and
 * read by the main thread under STATS_LOCK; the frame rate is computed when read.
 */
#include "media/media-private.h"

/* ---- frame mailbox ---------------------------------------------------------------------- */

static gboolean
mailbox_drain(gpointer data)
{
    hv_media_session *s = data;
    g_mutex_lock(&s->mailbox_lock);
    hv_frame *video = s->mail_video;
    s->mail_video = NULL;
    GQueue audio = s->mail_audio;
    g_queue_init(&s->mail_audio);
    GQueue encoded = s->mail_encoded;
    g_queue_init(&s->mail_encoded);
    s->mail_encoded_bytes = 0;
    s->mail_wake_pending = false;
    g_mutex_unlock(&s->mailbox_lock);

    /* A callback may free the session: check before each one, but release every frame. */
    for (hv_frame *f = g_queue_pop_head(&encoded); f != NULL; f = g_queue_pop_head(&encoded)) {
        if (!hv_media_session_is_destroyed(s) && s->cb.on_encoded_frame != NULL) {
            s->cb.on_encoded_frame(f, s->user_data);
        }
        hv_frame_unref(f);
    }
    for (hv_frame *f = g_queue_pop_head(&audio); f != NULL; f = g_queue_pop_head(&audio)) {
        if (!hv_media_session_is_destroyed(s) && s->cb.on_audio_frame != NULL) {
            s->cb.on_audio_frame(f, s->user_data);
        }
        hv_frame_unref(f);
    }
    if (video != NULL) {
        if (!hv_media_session_is_destroyed(s) && s->cb.on_video_frame != NULL) {
            s->cb.on_video_frame(video, s->user_data);
        }
        hv_frame_unref(video);
    }
    return G_SOURCE_REMOVE;
}

void
hv_media_post_frame(hv_media_session *s, hv_frame *f)
{
    hv_frame *drop = NULL;
    bool wake = false;
    bool video = hv_frame_kind_of(f) == HV_FRAME_JPEG;
    g_mutex_lock(&s->mailbox_lock);
    if (video) {
        drop = s->mail_video; /* the main thread lagged: the newest JPEG wins */
        s->mail_video = f;
    } else {
        g_queue_push_tail(&s->mail_audio, f);
        if (g_queue_get_length(&s->mail_audio) > HV_MEDIA_AUDIO_BACKLOG) {
            drop = g_queue_pop_head(&s->mail_audio);
        }
    }
    if (!s->mail_wake_pending) {
        s->mail_wake_pending = true;
        wake = true;
    }
    g_mutex_unlock(&s->mailbox_lock);
    if (drop != NULL) {
        if (video) {
            hv_media_stats_dropped(s);
        }
        hv_frame_unref(drop);
    }
    if (wake) {
        hv_media_post(s, mailbox_drain, s, NULL);
    }
}

bool
hv_media_post_encoded(hv_media_session *s, hv_frame *f)
{
    bool wake = false;
    bool taken = false;
    size_t len = hv_frame_len(f);
    g_mutex_lock(&s->mailbox_lock);
    /* Unlike JPEGs, encoded frames depend on each other: none is replaced by a newer one. One
     * that does not fit is refused, and the caller resumes video at the next key frame. */
    if (g_queue_get_length(&s->mail_encoded) < HV_MEDIA_ENCODED_BACKLOG &&
        s->mail_encoded_bytes + len <= HV_MEDIA_ENCODED_BACKLOG_BYTES) {
        g_queue_push_tail(&s->mail_encoded, f);
        s->mail_encoded_bytes += len;
        taken = true;
        if (!s->mail_wake_pending) {
            s->mail_wake_pending = true;
            wake = true;
        }
    }
    g_mutex_unlock(&s->mailbox_lock);
    if (!taken) {
        hv_frame_unref(f);
    }
    if (wake) {
        hv_media_post(s, mailbox_drain, s, NULL);
    }
    return taken;
}

/* ---- stats ------------------------------------------------------------------------------ */

void
hv_media_stats_packet(hv_media_session *s, uint64_t payload_bytes, bool new_video_frame)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.bytes_received += payload_bytes;
    s->stats.video_frames_received += new_video_frame ? 1 : 0;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_decoded(hv_media_session *s, int64_t now_us)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.video_frames_decoded++;
    s->decode_us[s->decode_next] = now_us;
    s->decode_next = (s->decode_next + 1) % HV_MEDIA_FPS_RING;
    if (s->decode_count < HV_MEDIA_FPS_RING) {
        s->decode_count++;
    }
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_size(hv_media_session *s, int width, int height)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.width = width;
    s->stats.height = height;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_encoded(hv_media_session *s)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.video_frames_encoded++;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_dropped(hv_media_session *s)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.video_frames_dropped++;
    g_mutex_unlock(&s->stats_lock);
}

void
hv_media_stats_audio_chunk(hv_media_session *s)
{
    g_mutex_lock(&s->stats_lock);
    s->stats.audio_chunks++;
    g_mutex_unlock(&s->stats_lock);
}

/* Frames decoded per second over the last HV_MEDIA_FPS_WINDOW_US: (n - 1) intervals over the
 * span from the oldest to the newest decode in the window; 0 when the stream stalled. */
static double
fps_locked(const hv_media_session *s, int64_t now_us)
{
    int64_t oldest = 0;
    int64_t newest = 0;
    unsigned n = 0;
    for (unsigned i = 0; i < s->decode_count; i++) {
        unsigned idx = (s->decode_next + HV_MEDIA_FPS_RING - 1 - i) % HV_MEDIA_FPS_RING;
        int64_t t = s->decode_us[idx];
        if (t < now_us - HV_MEDIA_FPS_WINDOW_US) {
            break;
        }
        if (n == 0) {
            newest = t;
        }
        oldest = t;
        n++;
    }
    if (n < 2 || newest <= oldest) {
        return 0.0;
    }
    return (double)(n - 1) * G_USEC_PER_SEC / (double)(newest - oldest);
}

void
hv_media_session_get_stats(const hv_media_session *s, hv_media_stats *out)
{
    g_return_if_fail(s != NULL && out != NULL);
    hv_media_session *m = (hv_media_session *)s; /* the lock is the only thing written */
    g_mutex_lock(&m->stats_lock);
    *out = s->stats;
    out->fps = fps_locked(s, g_get_monotonic_time());
    g_mutex_unlock(&m->stats_lock);
    /* Main-thread state, read on the main thread. */
    out->media_lines = s->media_lines;
    out->audio_tracks = (unsigned)g_atomic_int_get(&m->audio_branches);
}

/* base.c: the media session as an object every other file of the module uses: its reference
 * count and memory, the destroyed flag, logging with its context, and posting work to the
 * owner's main context. Nothing here calls into the rest of the module. */
#include "media/media-private.h"

#include "core/log.h"

typedef struct {
    hv_media_session *s;
    GSourceFunc fn;
    void *data;
    GDestroyNotify destroy;
} post_job;

void
hv_media_log(const hv_media_session *s, GLogLevelFlags level, const char *fmt, ...)
{
    hv_log_ctx ctx = {.mint = s->log_mint, .room = s->log_room};
    va_list ap;
    va_start(ap, fmt);
    hv_log_structured_va(G_LOG_DOMAIN, level, &ctx, fmt, ap);
    va_end(ap);
}

hv_media_session *
hv_media_session_ref(hv_media_session *s)
{
    g_atomic_ref_count_inc(&s->ref);
    return s;
}

static void
free_memory(hv_media_session *s)
{
    hv_frame_unref(s->mail_video);
    g_queue_clear_full(&s->mail_audio, (GDestroyNotify)hv_frame_unref);
    g_queue_clear_full(&s->mail_encoded, (GDestroyNotify)hv_frame_unref);
    g_mutex_clear(&s->mailbox_lock);
    g_mutex_clear(&s->stats_lock);
    g_mutex_clear(&s->tap_lock);
    g_main_context_unref(s->ctx);
    g_free(s->log_mint);
    g_free(s->log_room);
    g_free(s);
}

void
hv_media_session_unref(hv_media_session *s)
{
    if (s != NULL && g_atomic_ref_count_dec(&s->ref)) {
        free_memory(s);
    }
}

bool
hv_media_session_is_destroyed(const hv_media_session *s)
{
    return g_atomic_int_get(&s->destroyed) != 0;
}

static gboolean
post_job_dispatch(gpointer p)
{
    post_job *j = p;
    if (!hv_media_session_is_destroyed(j->s)) {
        j->fn(j->data);
    }
    return G_SOURCE_REMOVE;
}

static void
post_job_free(gpointer p)
{
    post_job *j = p;
    if (j->destroy != NULL) {
        j->destroy(j->data);
    }
    hv_media_session_unref(j->s);
    g_free(j);
}

void
hv_media_post(hv_media_session *s, GSourceFunc fn, void *data, GDestroyNotify destroy)
{
    /* An explicit idle source, not g_main_context_invoke(): invoke would run fn right here when
     * this thread can acquire the context, i.e. on a GStreamer thread. */
    post_job *j = g_new(post_job, 1);
    j->s = hv_media_session_ref(s);
    j->fn = fn;
    j->data = data;
    j->destroy = destroy;
    GSource *src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    g_source_set_callback(src, post_job_dispatch, j, post_job_free);
    g_source_set_static_name(src, "hv-media-post");
    g_source_attach(src, s->ctx);
    g_source_unref(src);
}

/* test_sender: the offering side of the in-process loopback (see sender.h).
 *
 * Main thread: everything in this file except the webrtcbin signal/promise callbacks, which
 * run on webrtcbin's threads and only post jobs (idle sources holding a reference) to the
 * main context. Owns its pipeline and data channel.
 */
#include "sender.h"

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <nice/agent.h>
#include <string.h>

struct test_sender {
    gatomicrefcount ref;
    int destroyed; /* atomic */
    GMainContext *ctx;
    test_sender_callbacks cb;
    void *user_data;
    GstElement *pipeline;
    GstElement *webrtc;
    GObject *channel;
    guint offer_timer;
};

static test_sender *
sender_ref(test_sender *t)
{
    g_atomic_ref_count_inc(&t->ref);
    return t;
}

static void
sender_unref(gpointer p)
{
    test_sender *t = p;
    if (g_atomic_ref_count_dec(&t->ref)) {
        g_main_context_unref(t->ctx);
        g_free(t);
    }
}

typedef struct {
    test_sender *t;
    unsigned mline;
    char *text;
    GstWebRTCSessionDescription *desc;
} sender_job;

static void
sender_job_free(gpointer p)
{
    sender_job *j = p;
    g_free(j->text);
    if (j->desc != NULL) {
        gst_webrtc_session_description_free(j->desc);
    }
    sender_unref(j->t);
    g_free(j);
}

static void
post(test_sender *t, GSourceFunc fn, sender_job *j)
{
    GSource *src = g_idle_source_new();
    g_source_set_callback(src, fn, j, sender_job_free);
    g_source_attach(src, t->ctx);
    g_source_unref(src);
}

static sender_job *
job_new(test_sender *t)
{
    sender_job *j = g_new0(sender_job, 1);
    j->t = sender_ref(t);
    return j;
}

static gboolean
on_candidate_job(gpointer p)
{
    sender_job *j = p;
    if (!g_atomic_int_get(&j->t->destroyed) && j->t->cb.on_candidate != NULL) {
        j->t->cb.on_candidate(j->mline, j->text, j->t->user_data);
    }
    return G_SOURCE_REMOVE;
}

static void
on_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate, gpointer user_data)
{
    test_sender *t = user_data;
    sender_job *j = job_new(t);
    j->mline = mline;
    j->text = g_strdup(candidate);
    post(t, on_candidate_job, j);
}

static gboolean
on_offer_job(gpointer p)
{
    sender_job *j = p;
    test_sender *t = j->t;
    if (g_atomic_int_get(&t->destroyed) || j->desc == NULL) {
        return G_SOURCE_REMOVE;
    }
    g_signal_emit_by_name(t->webrtc, "set-local-description", j->desc, NULL);
    g_autofree char *text = gst_sdp_message_as_text(j->desc->sdp);
    if (t->cb.on_offer != NULL) {
        t->cb.on_offer(text, t->user_data);
    }
    return G_SOURCE_REMOVE;
}

static void
on_offer_created(GstPromise *promise, gpointer user_data)
{
    test_sender *t = user_data;
    sender_job *j = job_new(t);
    if (gst_promise_wait(promise) == GST_PROMISE_RESULT_REPLIED) {
        const GstStructure *reply = gst_promise_get_reply(promise);
        if (reply != NULL && gst_structure_has_field(reply, "offer")) {
            gst_structure_get(reply, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &j->desc, NULL);
        }
    }
    post(t, on_offer_job, j);
}

/* Offers once every webrtcbin sink pad has caps (webrtcbin builds m-lines from them). */
static gboolean
try_offer(gpointer p)
{
    test_sender *t = p;
    bool ready = true;
    GstIterator *it = gst_element_iterate_sink_pads(t->webrtc);
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        GstPad *pad = g_value_get_object(&v);
        GstCaps *caps = gst_pad_get_current_caps(pad);
        ready = ready && caps != NULL;
        if (caps != NULL) {
            gst_caps_unref(caps);
        }
        g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
    if (!ready) {
        return G_SOURCE_CONTINUE;
    }
    t->offer_timer = 0;
    GstPromise *promise =
        gst_promise_new_with_change_func(on_offer_created, sender_ref(t), sender_unref);
    g_signal_emit_by_name(t->webrtc, "create-offer", NULL, promise);
    gst_promise_unref(promise);
    return G_SOURCE_REMOVE;
}

void
test_sender_offer(test_sender *t)
{
    if (t->offer_timer == 0) {
        GSource *src = g_timeout_source_new(20);
        g_source_set_callback(src, try_offer, t, NULL);
        t->offer_timer = g_source_attach(src, t->ctx);
        g_source_unref(src);
    }
}

void
test_sender_set_answer(test_sender *t, const char *sdp)
{
    GstSDPMessage *msg = NULL;
    if (gst_sdp_message_new_from_text(sdp, &msg) != GST_SDP_OK) {
        g_error("sender: answer does not parse");
    }
    GstWebRTCSessionDescription *desc =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, msg);
    g_signal_emit_by_name(t->webrtc, "set-remote-description", desc, NULL);
    gst_webrtc_session_description_free(desc);
}

void
test_sender_add_candidate(test_sender *t, unsigned mline, const char *candidate)
{
    g_signal_emit_by_name(t->webrtc, "add-ice-candidate", mline, candidate);
}

static void
link_to_webrtc(test_sender *t, const char *desc)
{
    GError *error = NULL;
    GstElement *bin = gst_parse_bin_from_description(desc, TRUE, &error);
    if (bin == NULL) {
        g_error("sender: %s: %s", desc, error->message);
    }
    gst_bin_add(GST_BIN(t->pipeline), bin);
    if (!gst_element_link(bin, t->webrtc)) {
        g_error("sender: cannot link %s", desc);
    }
}

void
test_sender_add_audio(test_sender *t)
{
    link_to_webrtc(t, "audiotestsrc name=sndaudio2 is-live=true wave=sine freq=1250 volume=0.5 "
                      "! audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111");
    /* The new bin is the last child added. */
    GstIterator *it = gst_bin_iterate_elements(GST_BIN(t->pipeline));
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
        GstElement *e = g_value_get_object(&v);
        if (e != t->webrtc) {
            (void)gst_element_sync_state_with_parent(e);
        }
        g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
}

static void
restrict_to_loopback(GstElement *webrtc)
{
    GstObject *ice = NULL;
    NiceAgent *agent = NULL;
    g_object_get(webrtc, "ice-agent", &ice, NULL);
    g_object_get(ice, "agent", &agent, NULL);
    g_object_set(agent, "upnp", FALSE, NULL);
    NiceAddress addr;
    nice_address_init(&addr);
    nice_address_set_from_string(&addr, "127.0.0.1");
    nice_agent_add_local_address(agent, &addr);
    g_object_unref(agent);
    gst_object_unref(ice);
}

test_sender *
test_sender_new(const test_sender_config *cfg, const test_sender_callbacks *cb, void *user_data)
{
    test_sender *t = g_new0(test_sender, 1);
    g_atomic_ref_count_init(&t->ref);
    t->ctx = g_main_context_ref_thread_default();
    t->cb = *cb;
    t->user_data = user_data;
    t->pipeline = gst_pipeline_new("test-sender");
    t->webrtc = gst_element_factory_make("webrtcbin", "send");
    g_object_set(t->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, NULL);
    gst_bin_add(GST_BIN(t->pipeline), t->webrtc);
    restrict_to_loopback(t->webrtc);
    g_signal_connect_data(t->webrtc, "on-ice-candidate", G_CALLBACK(on_ice_candidate),
                          sender_ref(t), (GClosureNotify)(void (*)(void))sender_unref, 0);
    int kf = cfg->keyframe_interval > 0 ? cfg->keyframe_interval : 300;
    g_autofree char *raw = g_strdup_printf("videotestsrc name=sndvideo is-live=true pattern=ball ! "
                                           "video/x-raw,width=%d,height=%d,framerate=%d/1",
                                           cfg->width, cfg->height, cfg->fps);
    if (cfg->video != NULL && strcmp(cfg->video, "VP8") == 0) {
        g_autofree char *d = g_strdup_printf(
            "%s ! vp8enc deadline=1 keyframe-max-dist=%d ! rtpvp8pay pt=96", raw, kf);
        link_to_webrtc(t, d);
    } else if (cfg->video != NULL && strcmp(cfg->video, "H264") == 0) {
        g_autofree char *d = g_strdup_printf(
            "%s ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=%d ! "
            "video/x-h264,profile=constrained-baseline ! rtph264pay pt=102 config-interval=-1 "
            "aggregate-mode=zero-latency",
            raw, kf);
        link_to_webrtc(t, d);
    }
    if (cfg->audio) {
        link_to_webrtc(t, "audiotestsrc name=sndaudio is-live=true wave=sine freq=440 volume=0.5 ! "
                          "audioconvert ! audioresample ! opusenc ! rtpopuspay pt=111");
    }
    if (gst_element_set_state(t->pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        g_error("sender: pipeline does not start");
    }
    if (cfg->data_channel) {
        g_signal_emit_by_name(t->webrtc, "create-data-channel", "_reliable", NULL, &t->channel);
    }
    return t;
}

void
test_sender_free(test_sender *t)
{
    if (t == NULL) {
        return;
    }
    g_atomic_int_set(&t->destroyed, 1);
    if (t->offer_timer != 0) {
        GSource *src = g_main_context_find_source_by_id(t->ctx, t->offer_timer);
        if (src != NULL) {
            g_source_destroy(src);
        }
    }
    g_signal_handlers_disconnect_matched(t->webrtc, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, t);
    gst_element_set_state(t->pipeline, GST_STATE_NULL);
    g_clear_object(&t->channel);
    gst_object_unref(t->pipeline);
    sender_unref(t);
}

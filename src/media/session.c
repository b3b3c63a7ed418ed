/* session.c: one receive-only WebRTC peer connection (webrtcbin in its own pipeline): the
 * module's public functions.
 *
 * Owns the pipeline and webrtcbin, its ICE configuration (servers, the local address
 * restriction through the libnice agent) and the decoding switches. Threads: the public
 * functions and every user callback run on the main thread (the owner's GMainContext).
 * webrtcbin's promise callbacks and signals arrive on its own threads; they only copy what they
 * need into a job posted to the main context (an idle source holding a session reference).
 *
 * The files below it, each calling only files further down (no cycles): negotiate.c answers
 * the offers and reports the connection state; decode.c builds the per-pad branches; mixer.c
 * mixes the audio and serves the PCM formats; passthrough.c makes the encoded viewers' stream;
 * taps.c hands the selected tracks' packets to the taps and asks for keyframes; mailbox.c
 * carries frames and counters to the main thread; elements.c, codecs.c, frame.c and base.c
 * (the session object: references, posting, logging) are the leaves.
 */
#include "media/media-private.h"

#include "core/error.h"
#include "core/log.h"

#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <nice/agent.h>
#include <string.h>

static unsigned next_session_id = 1; /* atomic */

static void
closure_unref_session(gpointer data, GClosure *closure)
{
    hv_media_session_unref(data);
}

/* ---- state ------------------------------------------------------------------------------ */

typedef struct {
    hv_media_session *s;
    int ice; /* GstWebRTCICEConnectionState, or -1 */
    int pc;  /* GstWebRTCPeerConnectionState, or -1 */
} state_job;

static gboolean
on_state_job(gpointer p)
{
    state_job *j = p;
    hv_media_session *s = j->s;
    /* Either tells: against a LiveKit-like server (werift, pion) webrtcbin 1.22 never notifies
     * ice-connection-state at all, only connection-state (ICE and DTLS both connected). */
    if (j->ice == GST_WEBRTC_ICE_CONNECTION_STATE_CONNECTED ||
        j->ice == GST_WEBRTC_ICE_CONNECTION_STATE_COMPLETED ||
        j->pc == GST_WEBRTC_PEER_CONNECTION_STATE_CONNECTED) {
        hv_media_session_set_state(s, HV_MEDIA_CONNECTED);
    } else if (j->ice == GST_WEBRTC_ICE_CONNECTION_STATE_FAILED) {
        hv_media_session_fail(s, "ICE failed");
    } else if (j->pc == GST_WEBRTC_PEER_CONNECTION_STATE_FAILED) {
        hv_media_session_fail(s, "peer connection failed (DTLS)");
    } else {
        HV_MEDIA_DEBUG(s, "ice-connection-state %d, connection-state %d", j->ice, j->pc);
    }
    return G_SOURCE_REMOVE;
}

static void
on_webrtc_state_notify(GObject *webrtc, GParamSpec *pspec, gpointer user_data)
{
    hv_media_session *s = user_data;
    state_job *j = g_new(state_job, 1);
    j->s = s;
    j->ice = -1;
    j->pc = -1;
    if (strcmp(pspec->name, "ice-connection-state") == 0) {
        GstWebRTCICEConnectionState v;
        g_object_get(webrtc, "ice-connection-state", &v, NULL);
        j->ice = (int)v;
    } else {
        GstWebRTCPeerConnectionState v;
        g_object_get(webrtc, "connection-state", &v, NULL);
        j->pc = (int)v;
    }
    hv_media_post(s, on_state_job, j, g_free);
}

static gboolean
on_bus_message(GstBus *bus, GstMessage *msg, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        g_autoptr(GError) err = NULL;
        g_autofree char *dbg = NULL;
        gst_message_parse_error(msg, &err, &dbg);
        g_autofree char *reason =
            g_strdup_printf("pipeline error from %s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                            err != NULL ? err->message : "?");
        HV_MEDIA_DEBUG(s, "%s (%s)", reason, dbg != NULL ? dbg : "");
        hv_media_session_fail(s, reason);
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
        g_autoptr(GError) err = NULL;
        gst_message_parse_warning(msg, &err, NULL);
        HV_MEDIA_DEBUG(s, "pipeline warning from %s: %s", GST_OBJECT_NAME(GST_MESSAGE_SRC(msg)),
                       err != NULL ? err->message : "?");
    }
    return G_SOURCE_CONTINUE;
}

/* ---- webrtcbin signals (GStreamer threads) ---------------------------------------------- */

static void
on_webrtc_pad_added(GstElement *webrtc, GstPad *pad, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC && !hv_media_session_is_destroyed(s)) {
        hv_media_decode_pad_added(s, pad);
    }
}

static void
on_webrtc_pad_removed(GstElement *webrtc, GstPad *pad, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (GST_PAD_DIRECTION(pad) == GST_PAD_SRC) {
        hv_media_decode_pad_removed(s, pad);
    }
}

typedef struct {
    hv_media_session *s;
    GObject *channel; /* strong */
} channel_job;

static gboolean
on_data_channel_job(gpointer p)
{
    channel_job *j = p;
    HV_MEDIA_DEBUG(j->s, "data channel opened by the server; keeping it");
    g_ptr_array_add(j->s->data_channels, g_object_ref(j->channel));
    return G_SOURCE_REMOVE;
}

static void
channel_job_free(gpointer p)
{
    channel_job *j = p;
    g_object_unref(j->channel);
    g_free(j);
}

static void
on_webrtc_data_channel(GstElement *webrtc, GObject *channel, gpointer user_data)
{
    hv_media_session *s = user_data;
    channel_job *j = g_new(channel_job, 1);
    j->s = s;
    j->channel = g_object_ref(channel);
    hv_media_post(s, on_data_channel_job, j, channel_job_free);
}

/* ---- construction ----------------------------------------------------------------------- */

static bool
check_elements(GError **error)
{
    static const char *const required[] = {
        "webrtcbin",    "nicesrc", "dtlssrtpdec",  "sctpdec",       "jpegenc",
        "videoconvert", "appsink", "audioconvert", "audioresample", "tee",
        "capsfilter",   "queue",   "audiomixer",   "audiotestsrc",
    };
    for (size_t i = 0; i < G_N_ELEMENTS(required); i++) {
        if (!hv_media_have_element(required[i])) {
            g_set_error(error, HV_ERROR, HV_ENOTFOUND, "GStreamer element '%s' is missing",
                        required[i]);
            return false;
        }
    }
    return true;
}

static bool
configure_ice_servers(hv_media_session *s, const char *const *servers)
{
    bool have_stun = false;
    for (size_t i = 0; servers != NULL && servers[i] != NULL; i++) {
        const char *uri = servers[i];
        g_autofree char *fixed = NULL;
        /* Accept the RFC 7064 spelling ("stun:host:port") as well as GStreamer's. */
        static const char *const schemes[] = {"stun:", "turn:", "turns:"};
        for (size_t k = 0; k < G_N_ELEMENTS(schemes); k++) {
            size_t len = strlen(schemes[k]);
            if (g_str_has_prefix(uri, schemes[k]) && strncmp(uri + len, "//", 2) != 0) {
                fixed = g_strdup_printf("%s//%s", schemes[k], uri + len);
                uri = fixed;
            }
        }
        if (g_str_has_prefix(uri, "stun://")) {
            if (have_stun) {
                HV_MEDIA_DEBUG(s, "webrtcbin takes one STUN server; ignoring %s", uri);
                continue;
            }
            g_object_set(s->webrtc, "stun-server", uri, NULL);
            have_stun = true;
        } else if (g_str_has_prefix(uri, "turn://") || g_str_has_prefix(uri, "turns://")) {
            gboolean ok = FALSE;
            g_signal_emit_by_name(s->webrtc, "add-turn-server", uri, &ok);
            if (!ok) {
                HV_MEDIA_INFO(s, "webrtcbin refused a TURN server URI");
            }
        } else {
            HV_MEDIA_INFO(s, "ignoring ICE server with unknown scheme");
        }
    }
    return true;
}

/* Configures webrtcbin's libnice agent: no UPnP port mapping (a server must not ask the LAN's
 * router for mappings), and, when list is non-empty, only the listed local addresses. libnice
 * gathers on every non-loopback interface unless local addresses are added explicitly; once
 * one is added it uses only the added ones, which is also the only way to get loopback. */
static bool
configure_nice(hv_media_session *s, const char *list, GError **error)
{
    GstObject *ice = NULL;
    g_object_get(s->webrtc, "ice-agent", &ice, NULL);
    NiceAgent *agent = NULL;
    if (ice != NULL && g_object_class_find_property(G_OBJECT_GET_CLASS(ice), "agent") != NULL) {
        g_object_get(ice, "agent", &agent, NULL);
    }
    g_clear_object(&ice);
    if (agent == NULL) {
        if (list == NULL || list[0] == '\0') {
            return true;
        }
        g_set_error(error, HV_ERROR, HV_EINVAL,
                    "webrtcbin's ICE agent is not libnice; cannot restrict ICE addresses");
        return false;
    }
    g_object_set(agent, "upnp", FALSE, NULL);
    bool ok = true;
    g_auto(GStrv) parts = g_strsplit(list != NULL ? list : "", ",", -1);
    for (size_t i = 0; parts[i] != NULL && ok; i++) {
        const char *ip = g_strstrip(parts[i]);
        if (ip[0] == '\0') {
            continue;
        }
        NiceAddress addr;
        nice_address_init(&addr);
        if (!nice_address_set_from_string(&addr, ip)) {
            g_set_error(error, HV_ERROR, HV_EINVAL, "ICE address '%s' is not an IP address", ip);
            ok = false;
        } else if (!nice_agent_add_local_address(agent, &addr)) {
            g_set_error(error, HV_ERROR, HV_EINVAL, "libnice refused local address '%s'", ip);
            ok = false;
        } else {
            HV_MEDIA_DEBUG(s, "ICE may use %s", ip);
        }
    }
    g_object_unref(agent);
    return ok;
}

static void
connect_session(hv_media_session *s, const char *signal, GCallback cb)
{
    g_signal_connect_data(s->webrtc, signal, cb, hv_media_session_ref(s), closure_unref_session, 0);
}

/* Builds the pipeline (NULL state) with webrtcbin configured and connected. */
static bool
build_pipeline(hv_media_session *s, const hv_media_config *cfg, GError **error)
{
    g_autofree char *name = g_strdup_printf("hv-media-%u", s->id);
    s->pipeline = gst_pipeline_new(name);
    s->webrtc = gst_element_factory_make("webrtcbin", "webrtc");
    if (s->pipeline == NULL || s->webrtc == NULL) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "cannot create webrtcbin");
        if (s->webrtc != NULL) {
            gst_object_unref(gst_object_ref_sink(s->webrtc));
        }
        s->webrtc = NULL;
        return false;
    }
    gst_bin_add(GST_BIN(s->pipeline), s->webrtc);
    g_object_set(s->webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, NULL);
    if (!configure_ice_servers(s, cfg->ice_servers) ||
        !configure_nice(s, cfg->ice_addresses, error)) {
        return false;
    }
    connect_session(s, "on-ice-candidate", G_CALLBACK(hv_media_on_ice_candidate));
    connect_session(s, "on-new-transceiver", G_CALLBACK(hv_media_on_new_transceiver));
    connect_session(s, "pad-added", G_CALLBACK(on_webrtc_pad_added));
    connect_session(s, "pad-removed", G_CALLBACK(on_webrtc_pad_removed));
    connect_session(s, "on-data-channel", G_CALLBACK(on_webrtc_data_channel));
    connect_session(s, "notify::ice-connection-state", G_CALLBACK(on_webrtc_state_notify));
    connect_session(s, "notify::connection-state", G_CALLBACK(on_webrtc_state_notify));

    if (!hv_media_mixer_build(s, error)) {
        return false;
    }
    g_autoptr(GstBus) bus = gst_pipeline_get_bus(GST_PIPELINE(s->pipeline));
    s->bus_source = gst_bus_create_watch(bus);
    g_source_set_callback(s->bus_source, G_SOURCE_FUNC(on_bus_message), hv_media_session_ref(s),
                          (GDestroyNotify)hv_media_session_unref);
    g_source_attach(s->bus_source, s->ctx);
    return true;
}

static void session_teardown(hv_media_session *s);

hv_media_session *
hv_media_session_new(const hv_media_config *cfg, const hv_media_callbacks *cb, void *user_data,
                     GError **error)
{
    g_return_val_if_fail(cfg != NULL && cb != NULL, NULL);
    if (!gst_is_initialized() && !gst_init_check(NULL, NULL, error)) {
        return NULL;
    }
    if (!check_elements(error)) {
        return NULL;
    }
    hv_media_session *s = g_new0(hv_media_session, 1);
    g_atomic_ref_count_init(&s->ref);
    s->id = (unsigned)g_atomic_int_add(&next_session_id, 1);
    s->log_mint = g_strdup(cfg->log_mint);
    s->log_room = g_strdup(cfg->log_room);
    s->ctx = g_main_context_ref_thread_default();
    s->cb = *cb;
    s->user_data = user_data;
    s->jpeg_quality = CLAMP(cfg->jpeg_quality, 1, 100);
    g_mutex_init(&s->stats_lock);
    g_mutex_init(&s->mailbox_lock);
    g_mutex_init(&s->tap_lock);
    g_queue_init(&s->mail_audio);
    g_queue_init(&s->mail_encoded);
    s->branches = g_ptr_array_new();
    s->formats = g_array_new(FALSE, FALSE, sizeof(hv_media_audio_format));
    s->outputs = g_ptr_array_new();
    s->data_channels = g_ptr_array_new_with_free_func(g_object_unref);
    s->held_cands = g_ptr_array_new_with_free_func(hv_media_cand_free);
    s->mid_tracks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    if (!hv_media_codec_decodable("VP8") && !hv_media_codec_decodable("VP9") &&
        !hv_media_codec_decodable("H264") && !hv_media_codec_decodable("H265")) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND,
                    "no VP8, VP9, H.264 or H.265 decoder is installed");
    } else if (!hv_media_codec_decodable("OPUS")) {
        g_set_error(error, HV_ERROR, HV_ENOTFOUND, "opusdec or rtpopusdepay is missing");
    } else if (build_pipeline(s, cfg, error)) {
        if (cfg->encoded) {
            hv_media_pt_tap_start(s, cfg->encoded_ts_base_us);
        }
        if (gst_element_set_state(s->pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE) {
            g_autofree char *codecs = hv_media_codec_list();
            HV_MEDIA_DEBUG(s, "session created (%s)", codecs);
            return s;
        }
        g_set_error(error, HV_ERROR, HV_EIO, "the webrtcbin pipeline does not start");
    }
    session_teardown(s);
    return NULL;
}

/* Stops everything and drops the owner's reference. Safe on a half-built session. */
static void
session_teardown(hv_media_session *s)
{
    g_atomic_int_set(&s->destroyed, 1);
    if (s->bus_source != NULL) {
        g_source_destroy(s->bus_source);
        g_clear_pointer(&s->bus_source, g_source_unref);
    }
    if (s->webrtc != NULL) {
        g_signal_handlers_disconnect_matched(s->webrtc, G_SIGNAL_MATCH_DATA, 0, 0, NULL, NULL, s);
    }
    if (s->pipeline != NULL) {
        if (gst_element_set_state(s->pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_FAILURE) {
            HV_MEDIA_INFO(s, "pipeline did not stop cleanly");
        }
    }
    hv_media_decode_clear(s);
    hv_media_mixer_clear(s);
    /* After NULL: no streaming thread is inside a tap. */
    hv_media_session_set_tap(s, NULL, NULL);
    hv_media_pt_tap_stop(s);
    g_ptr_array_unref(s->branches);
    g_ptr_array_unref(s->outputs);
    g_array_unref(s->formats);
    g_ptr_array_unref(s->data_channels);
    g_ptr_array_unref(s->held_cands);
    g_hash_table_unref(s->mid_tracks);
    g_strfreev(s->answer_mids);
    g_strfreev(s->offer_mids);
    hv_media_offer_free(s->pending_offer);
    g_free(s->last_ufrag);
    g_free(s->video_track);
    g_free(s->tap_audio_track);
    if (s->pipeline != NULL) {
        gst_object_unref(s->pipeline);
    }
    s->pipeline = NULL;
    s->webrtc = NULL;
    hv_media_session_unref(s);
}

void
hv_media_session_free(hv_media_session *s)
{
    if (s == NULL) {
        return;
    }
    HV_MEDIA_DEBUG(s, "freeing session");
    session_teardown(s);
}

/* ---- decoding switches ------------------------------------------------------------------ */

void
hv_media_session_select_tracks(hv_media_session *s, const char *video_track,
                               const char *tap_audio_track)
{
    g_return_if_fail(s != NULL);
    if (g_strcmp0(s->video_track, video_track) == 0 &&
        g_strcmp0(s->tap_audio_track, tap_audio_track) == 0) {
        return;
    }
    g_free(s->video_track);
    s->video_track = g_strdup(video_track);
    g_free(s->tap_audio_track);
    s->tap_audio_track = g_strdup(tap_audio_track);
    if (!hv_media_session_is_destroyed(s)) {
        hv_media_decode_select(s);
    }
}

void
hv_media_session_set_video_enabled(hv_media_session *s, bool enabled)
{
    g_return_if_fail(s != NULL);
    /* The video branches' entry probes read this per packet; on the first packet after a
     * re-enable each asks for a keyframe (decode.c). */
    g_atomic_int_set(&s->video_enabled, enabled ? 1 : 0);
}

static int
find_format(const hv_media_session *s, int rate_hz, int channels)
{
    for (unsigned i = 0; i < s->formats->len; i++) {
        const hv_media_audio_format *f = &g_array_index(s->formats, hv_media_audio_format, i);
        if (f->rate_hz == rate_hz && f->channels == channels) {
            return (int)i;
        }
    }
    return -1;
}

void
hv_media_session_add_audio_format(hv_media_session *s, int rate_hz, int channels)
{
    g_return_if_fail(s != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    if (rate_hz < 8000 || rate_hz > 192000 || channels < 1 || channels > 8) {
        HV_MEDIA_INFO(s, "refusing audio format %d Hz / %d channels", rate_hz, channels);
        return;
    }
    int i = find_format(s, rate_hz, channels);
    if (i >= 0) {
        g_array_index(s->formats, hv_media_audio_format, i).users++;
        return;
    }
    if (s->formats->len >= HV_MEDIA_MAX_AUDIO_FORMATS) {
        HV_MEDIA_INFO(s, "too many audio formats; refusing %d Hz / %d channels", rate_hz, channels);
        return;
    }
    hv_media_audio_format f = {.rate_hz = rate_hz, .channels = channels, .users = 1};
    g_array_append_val(s->formats, f);
    g_atomic_int_inc(&s->audio_active);
    hv_media_mixer_add_output(s, rate_hz, channels);
}

void
hv_media_session_remove_audio_format(hv_media_session *s, int rate_hz, int channels)
{
    g_return_if_fail(s != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    int i = find_format(s, rate_hz, channels);
    if (i < 0) {
        HV_MEDIA_DEBUG(s, "remove of unknown audio format %d/%d", rate_hz, channels);
        return;
    }
    hv_media_audio_format *f = &g_array_index(s->formats, hv_media_audio_format, i);
    if (--f->users > 0) {
        return;
    }
    g_array_remove_index(s->formats, (unsigned)i);
    (void)g_atomic_int_dec_and_test(&s->audio_active);
    hv_media_mixer_remove_output(s, rate_hz, channels);
}

void
hv_media_session_request_keyframe(hv_media_session *s)
{
    g_return_if_fail(s != NULL);
    if (!hv_media_session_is_destroyed(s)) {
        hv_media_request_keyframe(s);
    }
}

/* negotiate.c: the offer → answer sequence and ICE candidates of the session's webrtcbin.
 *
 * The server makes every offer; haven only answers (protocol doc §4.3). Offers are applied one
 * at a time: set-remote-description, every audio/video transceiver made recvonly with codec
 * preferences (below), create-answer, the answer's H.264 parameters restored, then
 * set-local-description and on_answer. An offer arriving meanwhile waits in a one-slot queue
 * (a newer one replaces it). webrtcbin's promise callbacks run on its own threads; each step
 * only carries its result to the main thread (neg_step), where the next step starts.
 *
 * Codec preferences. livekit-server offers its whole codec table on every video m-line, VP8
 * first, whatever the track carries (Appendix A.12), and binds the track to the codec the answer
 * kept; webrtcbin 1.22 answers ONE codec per m-line, the first of the transceiver's preferences
 * that the offer has. So the preferences list, among what haven can decode, the codecs the
 * track is published in first (TrackInfo.mime_type, then its backup codecs), found through the
 * offer's mid_to_track_id or the m-line's msid, then the other decodable codecs in the offer's
 * order, then their RTX entries.
 *
 * Local candidates are held until the first answer is out (doc §4.5, §9.4 item 12), then
 * trickled in the order they came.
 */
#include "media/media-private.h"

#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>
#include <string.h>

/* ---- connection state ------------------------------------------------------------------ */

static const char *
state_name(hv_media_state st)
{
    switch (st) {
    case HV_MEDIA_NEW:
        return "new";
    case HV_MEDIA_CONNECTING:
        return "connecting";
    case HV_MEDIA_CONNECTED:
        return "connected";
    case HV_MEDIA_FAILED:
        return "failed";
    }
    return "?";
}

void
hv_media_session_fail(hv_media_session *s, const char *reason)
{
    if (s->state == HV_MEDIA_FAILED || hv_media_session_is_destroyed(s)) {
        return;
    }
    HV_MEDIA_INFO(s, "failed: %s", reason);
    s->state = HV_MEDIA_FAILED;
    s->negotiating = false;
    g_clear_pointer(&s->pending_offer, hv_media_offer_free);
    if (s->cb.on_state != NULL) {
        s->cb.on_state(HV_MEDIA_FAILED, reason, s->user_data);
    }
}

void
hv_media_session_set_state(hv_media_session *s, hv_media_state st)
{
    if (s->state == st || s->state == HV_MEDIA_FAILED || hv_media_session_is_destroyed(s)) {
        return;
    }
    HV_MEDIA_DEBUG(s, "state %s -> %s", state_name(s->state), state_name(st));
    s->state = st;
    if (s->cb.on_state != NULL) {
        s->cb.on_state(st, NULL, s->user_data);
    }
}

/* ---- local ICE candidates --------------------------------------------------------------- */

typedef struct {
    hv_media_session *s;
    unsigned mline;
    char *candidate;
} cand_job;

void
hv_media_cand_free(gpointer p)
{
    cand_job *j = p;
    g_free(j->candidate);
    g_free(j);
}

static void
deliver_local_candidate(hv_media_session *s, const cand_job *j)
{
    const char *mid = NULL;
    if (s->answer_mids != NULL && j->mline < g_strv_length(s->answer_mids)) {
        mid = s->answer_mids[j->mline];
    }
    if (s->cb.on_local_candidate != NULL) {
        s->cb.on_local_candidate(j->candidate, mid, (int)j->mline, s->user_data);
    }
}

static gboolean
on_local_candidate_job(gpointer p)
{
    cand_job *j = p;
    hv_media_session *s = j->s;
    if (s->answer_sent) {
        deliver_local_candidate(s, j);
        return G_SOURCE_REMOVE;
    }
    if (s->held_cands->len >= HV_MEDIA_MAX_PENDING_CANDS) {
        HV_MEDIA_DEBUG(s, "too many early local candidates; dropping %s", j->candidate);
        return G_SOURCE_REMOVE;
    }
    cand_job *copy = g_new(cand_job, 1);
    copy->s = s;
    copy->mline = j->mline;
    copy->candidate = g_strdup(j->candidate);
    g_ptr_array_add(s->held_cands, copy);
    return G_SOURCE_REMOVE;
}

void
hv_media_on_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate, gpointer user_data)
{
    hv_media_session *s = user_data;
    if (candidate == NULL || candidate[0] == '\0') {
        return;
    }
    cand_job *j = g_new(cand_job, 1);
    j->s = s;
    j->mline = mline;
    j->candidate = g_strdup(candidate);
    hv_media_post(s, on_local_candidate_job, j, hv_media_cand_free);
}

static void
flush_held_candidates(hv_media_session *s)
{
    g_autoptr(GPtrArray) held = s->held_cands;
    s->held_cands = g_ptr_array_new_with_free_func(hv_media_cand_free);
    for (unsigned i = 0; i < held->len && !hv_media_session_is_destroyed(s); i++) {
        deliver_local_candidate(s, g_ptr_array_index(held, i));
    }
}

void
hv_media_session_add_candidate(hv_media_session *s, const char *candidate, const char *sdp_mid,
                               int mline_index)
{
    g_return_if_fail(s != NULL && candidate != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    const char *c = candidate;
    if (g_str_has_prefix(c, "a=")) {
        c += 2;
    }
    g_autofree char *line = g_strstrip(g_strdup(c));
    /* webrtcbin keys candidates by m-line index only (it buffers those that arrive before the
     * remote description); the index is what LiveKit sends reliably (protocol doc §9.4 item
     * 9). Without one, the mid is looked up in the last applied offer. */
    for (size_t i = 0;
         mline_index < 0 && sdp_mid != NULL && s->offer_mids != NULL && s->offer_mids[i] != NULL;
         i++) {
        if (strcmp(s->offer_mids[i], sdp_mid) == 0) {
            mline_index = (int)i;
        }
    }
    if (line[0] == '\0' || mline_index < 0) {
        HV_MEDIA_DEBUG(s, "ignoring remote candidate '%s' (mline %d)", candidate, mline_index);
        return;
    }
    g_signal_emit_by_name(s->webrtc, "add-ice-candidate", (guint)mline_index, line);
}

/* ---- offers and what is known about their tracks ------------------------------------------ */

/* One offer to apply, with a hint per m-line. */
struct hv_media_offer {
    GstSDPMessage *sdp; /* NULL: the text did not parse */
    uint32_t id;
    hv_media_mline_hint *hints; /* one per m-line */
    unsigned n_hints;
};

void
hv_media_offer_free(hv_media_offer *o)
{
    if (o == NULL) {
        return;
    }
    for (unsigned i = 0; i < o->n_hints; i++) {
        g_free(o->hints[i].track_sid);
        g_strfreev(o->hints[i].prefer);
    }
    g_free(o->hints);
    if (o->sdp != NULL) {
        gst_sdp_message_free(o->sdp);
    }
    g_free(o);
}

/* The track id of an m-line's msid (a=msid:<stream> <track>, or the per-SSRC form): LiveKit's
 * stream id is "PA_xxx|TR_xxx" and its track id "TR_xxx" (Appendix A.3). (transfer full) */
static char *
msid_track(const GstSDPMedia *m)
{
    const char *v = gst_sdp_media_get_attribute_val(m, "msid");
    for (unsigned i = 0; v == NULL && i < gst_sdp_media_attributes_len(m); i++) {
        const GstSDPAttribute *a = gst_sdp_media_get_attribute(m, i);
        const char *at =
            a->value != NULL && g_strcmp0(a->key, "ssrc") == 0 ? strstr(a->value, " msid:") : NULL;
        v = at != NULL ? at + 6 : NULL;
    }
    if (v == NULL) {
        return NULL;
    }
    g_auto(GStrv) parts = g_strsplit(v, " ", 3);
    if (parts[0] != NULL && parts[1] != NULL && parts[1][0] != '\0') {
        return g_strdup(parts[1]);
    }
    const char *bar = parts[0] != NULL ? strchr(parts[0], '|') : NULL;
    return bar != NULL && bar[1] != '\0' ? g_strdup(bar + 1) : NULL;
}

/* "video/H264" → "H264": the encoding names of a track's codecs, in order. */
static char **
encodings_of(const char *const *mimes)
{
    GPtrArray *out = g_ptr_array_new();
    for (size_t i = 0; mimes != NULL && mimes[i] != NULL; i++) {
        const char *slash = strchr(mimes[i], '/');
        g_ptr_array_add(out, g_ascii_strup(slash != NULL ? slash + 1 : mimes[i], -1));
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

static hv_media_offer *
offer_new(const char *sdp, uint32_t id, const hv_media_offer_info *info)
{
    hv_media_offer *o = g_new0(hv_media_offer, 1);
    o->id = id;
    /* The SDP parser skips lines it does not know: garbage parses as an empty message. An
     * offer needs at least its version and origin lines (an offer without any m-line is
     * valid, and answered). */
    if (gst_sdp_message_new_from_text(sdp, &o->sdp) != GST_SDP_OK ||
        g_strcmp0(gst_sdp_message_get_version(o->sdp), "0") != 0 ||
        gst_sdp_message_get_origin(o->sdp) == NULL ||
        gst_sdp_message_get_origin(o->sdp)->sess_id == NULL) {
        if (o->sdp != NULL) {
            gst_sdp_message_free(o->sdp);
        }
        o->sdp = NULL;
        return o;
    }
    o->n_hints = gst_sdp_message_medias_len(o->sdp);
    o->hints = g_new0(hv_media_mline_hint, o->n_hints + 1);
    for (unsigned i = 0; i < o->n_hints; i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(o->sdp, i);
        const char *mid = gst_sdp_media_get_attribute_val(m, "mid");
        const char *mapped = info != NULL && info->mid_to_track_id != NULL && mid != NULL
                                 ? g_hash_table_lookup(info->mid_to_track_id, mid)
                                 : NULL;
        hv_media_mline_hint *h = &o->hints[i];
        h->track_sid = mapped != NULL ? g_strdup(mapped) : msid_track(m);
        const char *const *codecs =
            h->track_sid != NULL && info != NULL && info->track_codecs != NULL
                ? info->track_codecs(h->track_sid, info->data)
                : NULL;
        h->prefer = encodings_of(codecs);
    }
    return o;
}

/* ---- the negotiation steps ---------------------------------------------------------------- */

/* One step of the offer → answer sequence, carried from a promise callback (webrtcbin thread)
 * to the main thread. */
typedef struct {
    hv_media_session *s; /* strong */
    hv_media_offer *offer;
    GstWebRTCSessionDescription *answer;
    char *error; /* set when the step failed */
} neg_step;

static neg_step *
neg_step_new(hv_media_session *s, hv_media_offer *offer)
{
    neg_step *n = g_new0(neg_step, 1);
    n->s = hv_media_session_ref(s);
    n->offer = offer;
    return n;
}

static void
neg_step_free(gpointer p)
{
    neg_step *n = p;
    hv_media_offer_free(n->offer);
    if (n->answer != NULL) {
        gst_webrtc_session_description_free(n->answer);
    }
    g_free(n->error);
    hv_media_session_unref(n->s);
    g_free(n);
}

/* Moves the step's payload into a new step for the next stage (the promise keeps the old one
 * until it is freed). */
static neg_step *
neg_step_take(neg_step *n)
{
    neg_step *next = neg_step_new(n->s, n->offer);
    next->answer = n->answer;
    n->offer = NULL;
    n->answer = NULL;
    return next;
}

/* The promise's error text, or NULL when it was replied without an "error" field. */
static char *
promise_error(GstPromise *promise)
{
    GstPromiseResult res = gst_promise_wait(promise);
    if (res != GST_PROMISE_RESULT_REPLIED) {
        return g_strdup(res == GST_PROMISE_RESULT_INTERRUPTED ? "interrupted" : "expired");
    }
    const GstStructure *reply = gst_promise_get_reply(promise);
    if (reply == NULL || !gst_structure_has_field(reply, "error")) {
        return NULL;
    }
    GError *err = NULL;
    gst_structure_get(reply, "error", G_TYPE_ERROR, &err, NULL);
    char *text = g_strdup(err != NULL ? err->message : "unknown error");
    g_clear_error(&err);
    return text;
}

static void apply_offer(hv_media_session *s, hv_media_offer *offer);
static gboolean on_remote_set(gpointer p);
static gboolean on_answer_created(gpointer p);
static gboolean on_local_set(gpointer p);

static void
on_promise_remote_set(GstPromise *promise, gpointer user_data)
{
    neg_step *next = neg_step_take(user_data);
    next->error = promise_error(promise);
    hv_media_post(next->s, on_remote_set, next, neg_step_free);
}

static void
on_promise_answer_created(GstPromise *promise, gpointer user_data)
{
    neg_step *next = neg_step_take(user_data);
    next->error = promise_error(promise);
    const GstStructure *reply = NULL;
    if (next->error == NULL) {
        reply = gst_promise_get_reply(promise);
    }
    if (reply != NULL && gst_structure_has_field(reply, "answer")) {
        gst_structure_get(reply, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &next->answer,
                          NULL);
    }
    if (next->error == NULL && next->answer == NULL) {
        next->error = g_strdup("no answer in the reply");
    }
    hv_media_post(next->s, on_answer_created, next, neg_step_free);
}

static void
on_promise_local_set(GstPromise *promise, gpointer user_data)
{
    neg_step *next = neg_step_take(user_data);
    next->error = promise_error(promise);
    hv_media_post(next->s, on_local_set, next, neg_step_free);
}

/* ---- codec preferences -------------------------------------------------------------------- */

static gboolean
strip_rtcp_fb(GQuark field, GValue *value, gpointer user_data)
{
    return !g_str_has_prefix(g_quark_to_string(field), "rtcp-fb-");
}

/* Whether a payload type of this m-line can be depayloaded and decoded here. */
static bool
codec_usable(const char *media, const GstStructure *st)
{
    const char *enc = gst_structure_get_string(st, "encoding-name");
    const hv_media_codec *c = enc != NULL ? hv_media_codec_find(enc) : NULL;
    if (c == NULL || c->is_video != (strcmp(media, "video") == 0)) {
        return false;
    }
    if (strcmp(c->encoding, "H264") == 0) {
        /* Mode 0 (one NAL unit per packet, no fragmentation) is not what publishers send. */
        const char *mode = gst_structure_get_string(st, "packetization-mode");
        return mode != NULL && strcmp(mode, "1") == 0;
    }
    return true;
}

/* A payload type of the offer, as webrtcbin will intersect it. */
typedef struct {
    int pt;
    GstStructure *st; /* owned */
    char *encoding;   /* upper case */
    bool used;
} offer_codec;

static void
offer_codec_clear(gpointer p)
{
    offer_codec *c = p;
    gst_structure_free(c->st);
    g_free(c->encoding);
}

static GArray *
offer_codecs(const GstSDPMedia *m)
{
    GArray *out = g_array_new(FALSE, TRUE, sizeof(offer_codec));
    g_array_set_clear_func(out, offer_codec_clear);
    for (unsigned i = 0; i < gst_sdp_media_formats_len(m); i++) {
        int64_t pt = 0;
        if (!g_ascii_string_to_signed(gst_sdp_media_get_format(m, i), 10, 0, 127, &pt, NULL)) {
            continue;
        }
        GstCaps *caps = gst_sdp_media_get_caps_from_media(m, (int)pt);
        if (caps == NULL) {
            continue;
        }
        GstStructure *st = gst_structure_copy(gst_caps_get_structure(caps, 0));
        gst_caps_unref(caps);
        /* webrtcbin renames these the same way before intersecting; the offer's feedback
         * lines survive the intersection, so they are left out here. */
        gst_structure_set_name(st, "application/x-rtp");
        gst_structure_filter_and_map_in_place(st, strip_rtcp_fb, NULL);
        const char *enc = gst_structure_get_string(st, "encoding-name");
        offer_codec c = {(int)pt, st, g_ascii_strup(enc != NULL ? enc : "", -1), false};
        g_array_append_val(out, c);
    }
    return out;
}

static void
prefer_append(GstCaps *prefs, GArray *kept, offer_codec *c)
{
    c->used = true;
    g_array_append_val(kept, c->pt);
    gst_caps_append_structure(prefs, gst_structure_copy(c->st));
}

/* The m-line's decodable payload types that the answer may keep, then their RTX entries.
 * prefer: the encoding names the track is published in, primary first. When one of them is
 * offered and decodable, only its payload types are listed: webrtcbin 1.22 intersects the
 * offer with the preferences in zigzag order (gst_caps_intersect) and answers the first
 * structure of the result, so any other decodable codec that comes earlier in livekit-server's
 * table (VP8 always does) would win over the track's own codec even when listed after it.
 * Without a usable hint, every decodable codec in the offer's order. NULL when nothing is
 * usable. */
static GstCaps *
codec_preferences(const GstSDPMedia *m, char *const *prefer)
{
    const char *media = gst_sdp_media_get_media(m);
    g_autoptr(GArray) codecs = offer_codecs(m);
    g_autoptr(GArray) kept = g_array_new(FALSE, FALSE, sizeof(int));
    GstCaps *prefs = gst_caps_new_empty();
    for (size_t p = 0; prefer != NULL && prefer[p] != NULL && kept->len == 0; p++) {
        for (unsigned i = 0; i < codecs->len; i++) {
            offer_codec *c = &g_array_index(codecs, offer_codec, i);
            if (strcmp(c->encoding, prefer[p]) == 0 && codec_usable(media, c->st)) {
                prefer_append(prefs, kept, c);
            }
        }
    }
    bool hinted = kept->len > 0;
    for (unsigned i = 0; i < codecs->len && !hinted; i++) {
        offer_codec *c = &g_array_index(codecs, offer_codec, i);
        if (codec_usable(media, c->st)) {
            prefer_append(prefs, kept, c);
        }
    }
    unsigned n_kept = kept->len;
    for (unsigned k = 0; k < n_kept; k++) {
        for (unsigned i = 0; i < codecs->len; i++) {
            offer_codec *c = &g_array_index(codecs, offer_codec, i);
            const char *apt = gst_structure_get_string(c->st, "apt");
            int64_t v = -1;
            if (!c->used && strcmp(c->encoding, "RTX") == 0 && apt != NULL &&
                g_ascii_string_to_signed(apt, 10, 0, 127, &v, NULL) &&
                v == g_array_index(kept, int, k)) {
                c->used = true;
                gst_caps_append_structure(prefs, gst_structure_copy(c->st));
            }
        }
    }
    if (gst_caps_is_empty(prefs)) {
        gst_caps_unref(prefs);
        return NULL;
    }
    return prefs;
}

static void
configure_transceiver(hv_media_session *s, GstWebRTCRTPTransceiver *t, const GstSDPMedia *m,
                      unsigned mline, const hv_media_mline_hint *hint)
{
    g_autoptr(GstCaps) prefs = codec_preferences(m, hint != NULL ? hint->prefer : NULL);
    if (prefs == NULL) {
        HV_MEDIA_INFO(s, "m-line %u (%s): no codec we can decode; answering inactive", mline,
                      gst_sdp_media_get_media(m));
        g_object_set(t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE,
                     "codec-preferences", NULL, NULL);
        return;
    }
    g_autofree char *txt = gst_caps_to_string(prefs);
    HV_MEDIA_DEBUG(s, "m-line %u (track %s) codec preferences: %s", mline,
                   hint != NULL && hint->track_sid != NULL ? hint->track_sid : "?", txt);
    g_object_set(t, "direction", GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY, "do-nack", TRUE,
                 "codec-preferences", prefs, NULL);
}

static bool
is_media(const GstSDPMedia *m)
{
    const char *media = gst_sdp_media_get_media(m);
    return strcmp(media, "audio") == 0 || strcmp(media, "video") == 0;
}

/* After set-remote-description: every audio/video transceiver of an earlier negotiation becomes
 * recvonly with the codec preferences above (protocol doc §4.3 step 4). m-lines new in this
 * offer have no transceiver yet: webrtcbin 1.22 creates theirs inside create-answer, and
 * hv_media_on_new_transceiver configures them there. (Adding them here with add-transceiver
 * breaks renegotiation: create-answer then matches an unassociated transceiver against the src
 * pad of the m-line whose index is the transceiver's position in its list, an audio pad for a
 * video transceiver, say, and rejects the new m-line.) */
static void
configure_transceivers(hv_media_session *s, const hv_media_offer *o)
{
    unsigned n_media = gst_sdp_message_medias_len(o->sdp);
    GArray *arr = NULL;
    g_signal_emit_by_name(s->webrtc, "get-transceivers", &arr);
    for (unsigned i = 0; arr != NULL && i < arr->len; i++) {
        GstWebRTCRTPTransceiver *t = g_array_index(arr, GstWebRTCRTPTransceiver *, i);
        guint mline = G_MAXUINT;
        g_object_get(t, "mlineindex", &mline, NULL);
        if (mline >= n_media || !is_media(gst_sdp_message_get_media(o->sdp, mline))) {
            continue;
        }
        configure_transceiver(s, t, gst_sdp_message_get_media(o->sdp, mline), mline,
                              mline < o->n_hints ? &o->hints[mline] : NULL);
    }
    if (arr != NULL) {
        g_array_unref(arr);
    }
}

void
hv_media_on_new_transceiver(GstElement *webrtc, GstWebRTCRTPTransceiver *t, gpointer user_data)
{
    /* webrtcbin's thread, inside create-answer; the main thread waits for the answer and
     * leaves the offer alone meanwhile. */
    hv_media_session *s = user_data;
    const hv_media_offer *o = g_atomic_pointer_get(&s->answering);
    guint mline = G_MAXUINT;
    g_object_get(t, "mlineindex", &mline, NULL);
    if (o == NULL || mline >= o->n_hints || !is_media(gst_sdp_message_get_media(o->sdp, mline))) {
        return;
    }
    configure_transceiver(s, t, gst_sdp_message_get_media(o->sdp, mline), mline, &o->hints[mline]);
}

/* ---- the answer's H.264 parameters -------------------------------------------------------- */

/* The value of the m-line's "a=<key>:<pt> …" attribute for one payload type, or NULL; *index
 * gets its position. */
static const char *
pt_attribute(const GstSDPMedia *m, const char *key, const char *pt, unsigned *index)
{
    size_t n = strlen(pt);
    for (unsigned i = 0; i < gst_sdp_media_attributes_len(m); i++) {
        const GstSDPAttribute *a = gst_sdp_media_get_attribute(m, i);
        if (g_strcmp0(a->key, key) == 0 && a->value != NULL && strncmp(a->value, pt, n) == 0 &&
            a->value[n] == ' ') {
            if (index != NULL) {
                *index = i;
            }
            return a->value;
        }
    }
    return NULL;
}

/* RFC 6184 §8.2.2: an answerer that keeps an H.264 payload type keeps its parameters. webrtcbin
 * 1.22 writes "packetization-mode=1;level-asymmetry-allowed=1" without profile-level-id, which
 * pion needs to match the codec and stricter servers refuse (Appendix A.13): each H.264 payload
 * type of the answer takes the offer's fmtp line. Returns how many were fixed. */
static unsigned
fix_h264_fmtp(GstSDPMessage *answer, const GstSDPMessage *offer)
{
    unsigned fixed = 0;
    unsigned n = MIN(gst_sdp_message_medias_len(answer), gst_sdp_message_medias_len(offer));
    for (unsigned i = 0; i < n; i++) {
        /* The message owns its media; there is no non-const getter in the SDP API. */
        GstSDPMedia *am = (GstSDPMedia *)gst_sdp_message_get_media(answer, i);
        const GstSDPMedia *om = gst_sdp_message_get_media(offer, i);
        for (unsigned f = 0; f < gst_sdp_media_formats_len(am); f++) {
            const char *pt = gst_sdp_media_get_format(am, f);
            const char *rtpmap = pt_attribute(am, "rtpmap", pt, NULL);
            const char *want = pt_attribute(om, "fmtp", pt, NULL);
            if (rtpmap == NULL || want == NULL ||
                g_ascii_strncasecmp(rtpmap + strlen(pt) + 1, "H264/", 5) != 0 ||
                strstr(want, "profile-level-id") == NULL) {
                continue;
            }
            unsigned at = 0;
            const char *have = pt_attribute(am, "fmtp", pt, &at);
            if (have != NULL && strstr(have, "profile-level-id") != NULL) {
                continue;
            }
            if (have != NULL) {
                GstSDPAttribute attr;
                gst_sdp_attribute_set(&attr, "fmtp", want);
                gst_sdp_media_replace_attribute(am, at, &attr);
            } else {
                gst_sdp_media_add_attribute(am, "fmtp", want);
            }
            fixed++;
        }
    }
    return fixed;
}

/* ---- the sequence ------------------------------------------------------------------------- */

static gboolean
on_remote_set(gpointer p)
{
    neg_step *n = p;
    hv_media_session *s = n->s;
    if (n->error != NULL) {
        g_autofree char *reason =
            g_strdup_printf("set-remote-description refused offer %u: %s", n->offer->id, n->error);
        hv_media_session_fail(s, reason);
        return G_SOURCE_REMOVE;
    }
    configure_transceivers(s, n->offer);
    g_atomic_pointer_set(&s->answering, n->offer);
    GstPromise *promise = gst_promise_new_with_change_func(on_promise_answer_created,
                                                           neg_step_take(n), neg_step_free);
    g_signal_emit_by_name(s->webrtc, "create-answer", NULL, promise);
    gst_promise_unref(promise);
    return G_SOURCE_REMOVE;
}

static gboolean
on_answer_created(gpointer p)
{
    neg_step *n = p;
    hv_media_session *s = n->s;
    g_atomic_pointer_set(&s->answering, NULL);
    if (n->error != NULL) {
        g_autofree char *reason =
            g_strdup_printf("create-answer failed for offer %u: %s", n->offer->id, n->error);
        hv_media_session_fail(s, reason);
        return G_SOURCE_REMOVE;
    }
    unsigned fixed = fix_h264_fmtp(n->answer->sdp, n->offer->sdp);
    if (fixed > 0) {
        HV_MEDIA_DEBUG(s, "answer %u: profile-level-id restored on %u H.264 payload type(s)",
                       n->offer->id, fixed);
    }
    GstWebRTCSessionDescription *answer = n->answer;
    GstPromise *promise =
        gst_promise_new_with_change_func(on_promise_local_set, neg_step_take(n), neg_step_free);
    g_signal_emit_by_name(s->webrtc, "set-local-description", answer, promise);
    gst_promise_unref(promise);
    return G_SOURCE_REMOVE;
}

static gboolean
on_local_set(gpointer p)
{
    neg_step *n = p;
    hv_media_session *s = n->s;
    if (n->error != NULL) {
        g_autofree char *reason = g_strdup_printf("set-local-description failed for offer %u: %s",
                                                  n->offer->id, n->error);
        hv_media_session_fail(s, reason);
        return G_SOURCE_REMOVE;
    }
    if (s->state == HV_MEDIA_FAILED) {
        return G_SOURCE_REMOVE;
    }
    const GstSDPMessage *sdp = n->answer->sdp;
    unsigned n_media = gst_sdp_message_medias_len(sdp);
    g_strfreev(s->answer_mids);
    s->answer_mids = g_new0(char *, n_media + 1);
    for (unsigned i = 0; i < n_media; i++) {
        const char *mid = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(sdp, i), "mid");
        s->answer_mids[i] = g_strdup(mid != NULL ? mid : "");
    }
    g_autofree char *text = gst_sdp_message_as_text(sdp);
    s->negotiating = false;
    HV_MEDIA_DEBUG(s, "answer for offer %u ready (%u m-lines)", n->offer->id, n_media);
    hv_media_decode_select(s); /* the mids may name other tracks now */
    if (s->cb.on_answer != NULL) {
        s->cb.on_answer(text, n->offer->id, s->user_data);
    }
    if (hv_media_session_is_destroyed(s)) {
        return G_SOURCE_REMOVE;
    }
    if (s->state == HV_MEDIA_NEW && n_media > 0) {
        /* An answer without any m-line starts no transport: nothing to connect yet. */
        hv_media_session_set_state(s, HV_MEDIA_CONNECTING);
    }
    if (!s->answer_sent && !hv_media_session_is_destroyed(s)) {
        s->answer_sent = true;
        flush_held_candidates(s);
    }
    if (s->pending_offer != NULL && !hv_media_session_is_destroyed(s)) {
        hv_media_offer *next = s->pending_offer;
        s->pending_offer = NULL;
        apply_offer(s, next);
    }
    return G_SOURCE_REMOVE;
}

/* The ICE ufrag of an SDP (session level, else the first media's), or NULL. */
static char *
sdp_ufrag(const GstSDPMessage *msg)
{
    const char *u = gst_sdp_message_get_attribute_val(msg, "ice-ufrag");
    for (unsigned i = 0; u == NULL && i < gst_sdp_message_medias_len(msg); i++) {
        u = gst_sdp_media_get_attribute_val(gst_sdp_message_get_media(msg, i), "ice-ufrag");
    }
    return g_strdup(u);
}

/* Takes the offer. */
static void
apply_offer(hv_media_session *s, hv_media_offer *o)
{
    if (o->sdp == NULL) {
        g_autofree char *reason = g_strdup_printf("offer %u is not SDP", o->id);
        hv_media_offer_free(o);
        hv_media_session_fail(s, reason);
        return;
    }
    char *ufrag = sdp_ufrag(o->sdp);
    if (s->last_ufrag != NULL && ufrag != NULL && strcmp(ufrag, s->last_ufrag) != 0) {
        /* webrtcbin cannot restart ICE (protocol doc §4.3 step 2): the caller reconnects. */
        g_free(ufrag);
        g_autofree char *reason =
            g_strdup_printf("offer %u restarts ICE (new ufrag), which webrtcbin cannot do", o->id);
        hv_media_offer_free(o);
        hv_media_session_fail(s, reason);
        return;
    }
    if (ufrag != NULL) {
        g_free(s->last_ufrag);
        s->last_ufrag = ufrag;
    }
    unsigned n_media = gst_sdp_message_medias_len(o->sdp);
    g_strfreev(s->offer_mids);
    s->offer_mids = g_new0(char *, n_media + 1);
    g_hash_table_remove_all(s->mid_tracks);
    s->media_lines = 0;
    for (unsigned i = 0; i < n_media; i++) {
        const GstSDPMedia *m = gst_sdp_message_get_media(o->sdp, i);
        const char *mid = gst_sdp_media_get_attribute_val(m, "mid");
        s->offer_mids[i] = g_strdup(mid != NULL ? mid : "");
        s->media_lines += is_media(m) ? 1 : 0;
        if (mid != NULL && o->hints[i].track_sid != NULL) {
            g_hash_table_replace(s->mid_tracks, g_strdup(mid), g_strdup(o->hints[i].track_sid));
        }
    }
    HV_MEDIA_DEBUG(s, "applying offer %u (%u m-lines)", o->id, n_media);
    s->negotiating = true;
    GstSDPMessage *copy = NULL;
    gst_sdp_message_copy(o->sdp, &copy);
    GstWebRTCSessionDescription *desc =
        gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, copy);
    GstPromise *promise =
        gst_promise_new_with_change_func(on_promise_remote_set, neg_step_new(s, o), neg_step_free);
    g_signal_emit_by_name(s->webrtc, "set-remote-description", desc, promise);
    gst_promise_unref(promise);
    gst_webrtc_session_description_free(desc);
}

void
hv_media_session_set_offer(hv_media_session *s, const char *sdp, uint32_t offer_id,
                           const hv_media_offer_info *info)
{
    g_return_if_fail(s != NULL && sdp != NULL);
    if (hv_media_session_is_destroyed(s)) {
        return;
    }
    if (s->state == HV_MEDIA_FAILED) {
        HV_MEDIA_DEBUG(s, "ignoring offer %u: session failed", offer_id);
        return;
    }
    hv_media_offer *o = offer_new(sdp, offer_id, info);
    if (s->negotiating) {
        if (s->pending_offer != NULL) {
            HV_MEDIA_INFO(s, "offer %u replaces unanswered offer %u", offer_id,
                          s->pending_offer->id);
            hv_media_offer_free(s->pending_offer);
        }
        s->pending_offer = o;
        return;
    }
    apply_offer(s, o);
}

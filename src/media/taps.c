/* taps.c: the taps on the selected tracks' encoded media (the recorder's and the encoded
 * viewers'), and keyframe requests. Each slot's timeline is anchored on its own (see
 * tap_buffer). Setting a tap: main thread; handing buffers and caps to the taps: streaming
 * threads, each taking a reference on a tap's data for the call. */
#include "media/media-private.h"

#include <string.h>

/* The taps, each referenced for one call, or NULL (every one NULL for a branch no tap takes).
 * Returns whether any is set. */
bool
hv_media_taps_get(hv_media_branch *b, hv_media_tap out[HV_MEDIA_TAP_SLOTS],
                  void *data[HV_MEDIA_TAP_SLOTS])
{
    hv_media_session *s = b->s;
    bool any = false;
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        data[i] = NULL;
    }
    if (!hv_media_branch_tapped(b)) {
        return false;
    }
    g_mutex_lock(&s->tap_lock);
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        if (s->tap_data[i] != NULL) {
            data[i] = s->tap[i].ref(s->tap_data[i]);
            out[i] = s->tap[i];
            any = true;
        }
    }
    g_mutex_unlock(&s->tap_lock);
    return any;
}

void
hv_media_taps_release(hv_media_tap tap[HV_MEDIA_TAP_SLOTS], void *data[HV_MEDIA_TAP_SLOTS])
{
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        if (data[i] != NULL) {
            tap[i].unref(data[i]);
        }
    }
}

/* The running time handed to the tap: the first buffer of each stream after the tap was set
 * anchors it at its pipeline running time (both streams on one clock); from there it advances
 * by the sender's RTP timestamps, so it never jumps when the jitterbuffer or rtpbin's lip-sync
 * moves the pipeline timestamps. Without an RTP time meta, the pipeline's running time. */
static void
tap_buffer(hv_media_branch *b, int slot, const hv_media_tap *tap, void *data, GstBuffer *buf)
{
    GstClockTime pts = GST_BUFFER_PTS(buf);
    if (!b->have_segment || !GST_CLOCK_TIME_IS_VALID(pts)) {
        return;
    }
    guint64 rt = gst_segment_to_running_time(&b->segment, GST_FORMAT_TIME, pts);
    if (!GST_CLOCK_TIME_IS_VALID(rt)) {
        return;
    }
    GstReferenceTimestampMeta *meta =
        gst_buffer_get_reference_timestamp_meta(buf, hv_media_rtp_time_caps());
    unsigned gen = (unsigned)g_atomic_int_get(&b->s->tap_gen[slot]);
    if (meta != NULL) {
        int64_t rtp_ns = (int64_t)meta->timestamp;
        if (b->tap_gen[slot] != gen) {
            b->tap_gen[slot] = gen;
            b->anchor_rt[slot] = rt;
            b->anchor_rtp_ns[slot] = rtp_ns;
        }
        int64_t t = (int64_t)b->anchor_rt[slot] + (rtp_ns - b->anchor_rtp_ns[slot]);
        rt = t > 0 ? (guint64)t : 0;
    }
    tap->on_buffer(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, buf, rt, data);
}

/* After the depayloader: hands access units to the tap, then keeps them from the decoder
 * unless a viewer needs it. */
void
hv_media_taps_buffers(hv_media_branch *b, hv_media_tap tap[HV_MEDIA_TAP_SLOTS],
                      void *data[HV_MEDIA_TAP_SLOTS], GstBuffer *buf)
{
    for (int i = 0; i < HV_MEDIA_TAP_SLOTS; i++) {
        if (data[i] != NULL) {
            tap_buffer(b, i, &tap[i], data[i], buf);
        }
    }
}

/* A branch about to be selected: its current caps to the encoded viewers' tap, which goes on
 * across the switch (its caps event went by while no tap took it). The recorder's tap is not
 * told: the recording ends and a new one starts on the new tracks (live/recording.c). */
void
hv_media_taps_branch_selected(hv_media_session *s, hv_media_branch *b)
{
    if (b->depay_src == NULL || b->removed) {
        return;
    }
    g_autoptr(GstCaps) caps = gst_pad_get_current_caps(b->depay_src);
    if (caps == NULL) {
        return;
    }
    const int slot = HV_MEDIA_TAP_SLOT_VIEWERS;
    g_mutex_lock(&s->tap_lock);
    hv_media_tap tap = s->tap[slot];
    void *data = s->tap_data[slot] != NULL ? tap.ref(s->tap_data[slot]) : NULL;
    g_mutex_unlock(&s->tap_lock);
    if (data != NULL) {
        tap.on_caps(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, caps, data);
        tap.unref(data);
    }
}

void
hv_media_taps_send_caps(hv_media_session *s, const hv_media_tap *tap, void *data)
{
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *b = g_ptr_array_index(s->branches, i);
        if (!b->supported || b->depay_src == NULL || b->removed || !hv_media_branch_selected(b)) {
            continue;
        }
        GstCaps *caps = gst_pad_get_current_caps(b->depay_src);
        if (caps != NULL) {
            tap->on_caps(b->is_video ? HV_MEDIA_TAP_VIDEO : HV_MEDIA_TAP_AUDIO, caps, data);
            gst_caps_unref(caps);
        }
    }
}

void
hv_media_request_keyframe(hv_media_session *s)
{
    for (unsigned i = 0; i < s->branches->len; i++) {
        hv_media_branch *b = g_ptr_array_index(s->branches, i);
        if (b->is_video && b->supported && b->entry != NULL && hv_media_branch_selected(b)) {
            hv_media_request_keyframe_on(b->entry);
        }
    }
}

void
hv_media_set_tap_slot(hv_media_session *s, hv_media_tap_slot slot, const hv_media_tap *tap,
                      void *data)
{
    void *new_data = tap != NULL && data != NULL ? tap->ref(data) : NULL;
    g_mutex_lock(&s->tap_lock);
    hv_media_tap old = s->tap[slot];
    void *old_data = s->tap_data[slot];
    s->tap_data[slot] = new_data;
    if (new_data != NULL) {
        s->tap[slot] = *tap;
    }
    g_atomic_int_inc(&s->tap_gen[slot]);
    if (new_data != NULL) {
        g_atomic_int_or((guint *)&s->tap_active, 1u << slot);
    } else {
        g_atomic_int_and((guint *)&s->tap_active, ~(1u << slot));
    }
    g_mutex_unlock(&s->tap_lock);
    if (old_data != NULL) {
        old.unref(old_data);
    }
    if (new_data != NULL && !hv_media_session_is_destroyed(s)) {
        hv_media_taps_send_caps(s, tap, new_data);
        hv_media_request_keyframe(s);
    }
}

void
hv_media_session_set_tap(hv_media_session *s, const hv_media_tap *tap, void *data)
{
    g_return_if_fail(s != NULL);
    hv_media_set_tap_slot(s, HV_MEDIA_TAP_SLOT_RECORDER, tap, data);
}

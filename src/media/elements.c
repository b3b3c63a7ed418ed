/* elements.c: GStreamer helpers the branch, mixer and tap code share: element creation and
 * properties, appsinks, ghost pads, segments, keyframe requests, the reference-timestamp metas
 * haven puts on packets, and sample → frame. No state; any thread. */
#include "media/media-private.h"

#include <gst/app/gstappsink.h>
#include <gst/video/video.h>
#include <string.h>

/* A SEGMENT event in TIME format is copied into `into`; false for any other. */
bool
hv_media_copy_time_segment(GstEvent *ev, GstSegment *into)
{
    const GstSegment *seg = NULL;
    gst_event_parse_segment(ev, &seg);
    if (seg->format != GST_FORMAT_TIME) {
        return false;
    }
    gst_segment_copy_into(seg, into);
    return true;
}

void
hv_media_request_keyframe_on(GstPad *entry)
{
    /* Travels upstream into webrtcbin; rtpbin's session turns it into RTCP PLI. */
    GstEvent *ev = gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, 0);
    (void)gst_pad_push_event(entry, ev);
}

/* The arrival time travels on the buffers themselves, as a GstReferenceTimestampMeta with these
 * caps, put on each packet by the branch entry probe (decode.c): depayloaders, decoders,
 * videoconvert and jpegenc copy metas without tags, so the JPEG buffer at the appsink (and the
 * access unit a tap gets) still says when its first packet arrived, whatever the elements did
 * to its PTS. decode.c's (PTS, arrival) ring is the fallback for a buffer without the meta. */
GstCaps *
hv_media_arrival_caps(void)
{
    static GstCaps *caps = NULL;
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        caps = gst_caps_new_empty_simple("timestamp/x-haven-arrival");
        GST_MINI_OBJECT_FLAG_SET(caps, GST_MINI_OBJECT_FLAG_MAY_BE_LEAKED);
        g_once_init_leave(&once, 1);
    }
    return caps;
}

/* The sender's RTP timestamp, unwrapped to 64 bits and converted to ns, travels on the buffers
 * the same way: the tap builds each stream's timeline from it, so that jitterbuffer resyncs and
 * rtpbin's lip-sync corrections (jumps of hundreds of ms) never reach a recording. */
GstCaps *
hv_media_rtp_time_caps(void)
{
    static GstCaps *caps = NULL;
    static gsize once = 0;
    if (g_once_init_enter(&once)) {
        caps = gst_caps_new_empty_simple("timestamp/x-haven-rtp");
        GST_MINI_OBJECT_FLAG_SET(caps, GST_MINI_OBJECT_FLAG_MAY_BE_LEAKED);
        g_once_init_leave(&once, 1);
    }
    return caps;
}

GstElement *
hv_media_add_element(GstBin *bin, const char *factory)
{
    GstElement *e = gst_element_factory_make(factory, NULL);
    if (e != NULL) {
        gst_bin_add(bin, e);
    }
    return e;
}

void
hv_media_set_if_exists(GstElement *e, const char *prop, ...)
{
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop) == NULL) {
        return;
    }
    va_list ap;
    va_start(ap, prop);
    g_object_set_valist(G_OBJECT(e), prop, ap);
    va_end(ap);
}

void
hv_media_setup_appsink(GstElement *sink, unsigned max_buffers,
                       GstFlowReturn (*cb)(GstAppSink *, gpointer), gpointer data,
                       GDestroyNotify notify)
{
    g_object_set(sink, "sync", FALSE, "async", FALSE, "max-buffers", max_buffers, "drop", TRUE,
                 "enable-last-sample", FALSE, "emit-signals", FALSE, NULL);
    GstAppSinkCallbacks callbacks = {0};
    callbacks.new_sample = cb;
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &callbacks, data, notify);
}

bool
hv_media_add_ghost_sink(GstElement *bin, GstElement *first)
{
    GstPad *target = gst_element_get_static_pad(first, "sink");
    GstPad *ghost = gst_ghost_pad_new("sink", target);
    gst_object_unref(target);
    return ghost != NULL && gst_element_add_pad(bin, ghost);
}

/* One copy of the sample's buffer into a new frame with its pts and arrival stamp, or NULL. */
hv_frame *
hv_media_frame_from_sample(GstSample *sample, hv_frame_kind kind,
                           int64_t (*lookup)(void *ctx, GstClockTime pts), void *ctx)
{
    GstBuffer *buf = gst_sample_get_buffer(sample);
    GstMapInfo map;
    if (buf == NULL || !gst_buffer_map(buf, &map, GST_MAP_READ)) {
        return NULL;
    }
    hv_frame *f = hv_frame_new(kind, map.size);
    memcpy(hv_frame_payload(f), map.data, map.size);
    gst_buffer_unmap(buf, &map);

    hv_frame_info *info = hv_frame_info_of(f);
    GstClockTime pts = GST_BUFFER_PTS(buf);
    const GstSegment *seg = gst_sample_get_segment(sample);
    guint64 rt = GST_CLOCK_TIME_NONE;
    if (seg != NULL && GST_CLOCK_TIME_IS_VALID(pts)) {
        rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, pts);
    }
    info->pts_us = GST_CLOCK_TIME_IS_VALID(rt) ? (int64_t)(rt / GST_USECOND) : -1;
    int64_t arrival = -1;
    GstReferenceTimestampMeta *meta =
        gst_buffer_get_reference_timestamp_meta(buf, hv_media_arrival_caps());
    if (meta != NULL) {
        arrival = (int64_t)(meta->timestamp / GST_USECOND);
    } else if (lookup != NULL) {
        arrival = lookup(ctx, pts);
    }
    hv_buf_set_stamp_us(f, arrival >= 0 ? arrival : g_get_monotonic_time());
    return f;
}

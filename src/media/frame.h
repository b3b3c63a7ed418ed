/* hv_frame: one media unit (a JPEG, a PCM chunk, an encoded viewers' message) built on a
 * GStreamer thread and shared by every consumer (each viewer, a recorder) by reference, never
 * copied per consumer. A frame is an hv_buf (core/buf.h) whose metadata is its kind and
 * hv_frame_info: the hub sends it to viewers' sockets as it is, headroom included.
 *
 * Filled once by its maker (payload, info), then published; after the first hv_frame_ref()
 * nobody writes to it.
 */
#ifndef HV_MEDIA_FRAME_H
#define HV_MEDIA_FRAME_H

#include "core/buf.h"

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    HV_FRAME_JPEG,      /* one complete JPEG image */
    HV_FRAME_PCM_S16LE, /* interleaved signed 16-bit little-endian samples */
    HV_FRAME_ENCODED,   /* pass-through: the encoded viewers' binary message, header included
                         * (HV_FRAME_ENCODED_HEADER bytes, see docs/API.md), then one encoded
                         * frame or packet as the sender made it */
} hv_frame_kind;

/* The encoded viewers' message header: kind (1 video, 2 audio), flags (bit 0: key frame), then
 * the timestamp in microseconds, big-endian. */
#define HV_FRAME_ENCODED_HEADER   10
#define HV_FRAME_ENCODED_VIDEO    1
#define HV_FRAME_ENCODED_AUDIO    2
#define HV_FRAME_ENCODED_FLAG_KEY 0x01

typedef struct hv_buf hv_frame;

/* (transfer full) A frame with len bytes of payload (uninitialised) after the headroom; JPEG
 * and encoded frames are binary (HV_BUF_BINARY). */
hv_frame *hv_frame_new(hv_frame_kind kind, size_t len);
static inline hv_frame *
hv_frame_ref(hv_frame *f)
{
    return hv_buf_ref(f);
}
static inline void
hv_frame_unref(hv_frame *f) /* NULL-safe */
{
    hv_buf_unref(f);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_frame, hv_frame_unref)
static inline uint8_t *
hv_frame_payload(hv_frame *f)
{
    return hv_buf_data(f);
}
static inline const uint8_t *
hv_frame_payload_const(const hv_frame *f)
{
    return hv_buf_data_const(f);
}
static inline size_t
hv_frame_len(const hv_frame *f)
{
    return hv_buf_len(f);
}
hv_frame_kind hv_frame_kind_of(const hv_frame *f);

/* Metadata, set by the producer before publishing. When the source RTP packet arrived
 * (g_get_monotonic_time(), or when the decoder got the frame if that is unknown) is the
 * buffer's stamp: hv_buf_stamp_us(). */
typedef struct {
    int64_t pts_us;        /* media timestamp (running time of the stream) */
    int width, height;     /* video */
    int rate_hz, channels; /* audio */
    /* HV_FRAME_ENCODED: video or audio, key frame (every Opus packet is one), and the WebCodecs
     * codec string ("avc1.42E01F", "vp8", "opus"...); width/height are set on video key frames,
     * rate_hz/channels on audio. */
    bool encoded_video;
    bool key;
    char codec[40];
} hv_frame_info;
hv_frame_info *hv_frame_info_of(hv_frame *f);
const hv_frame_info *hv_frame_info_const(const hv_frame *f);

#endif

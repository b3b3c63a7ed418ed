/* hv_frame: one immutable, atomically refcounted media unit shared by every consumer (each
 * viewer, a recorder) by reference, never copied per consumer.
 *
 * A frame is built on a GStreamer thread (payload written once), then published; after the
 * first hv_frame_ref() nobody writes to it. The payload is preceded by HV_FRAME_HEADROOM bytes
 * that a WebSocket writer may use for framing (libwebsockets' LWS_PRE), so it can be sent
 * without a copy.
 */
#ifndef HV_MEDIA_FRAME_H
#define HV_MEDIA_FRAME_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HV_FRAME_HEADROOM 32 /* >= LWS_PRE (16 on Debian's libwebsockets 4.1) */

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

typedef struct hv_frame hv_frame;

/* (transfer full) A frame with len bytes of payload (uninitialised) after the headroom. */
hv_frame *hv_frame_new(hv_frame_kind kind, size_t len);
hv_frame *hv_frame_ref(hv_frame *f);
void hv_frame_unref(hv_frame *f); /* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_frame, hv_frame_unref)

uint8_t *hv_frame_payload(hv_frame *f);
const uint8_t *hv_frame_payload_const(const hv_frame *f);
size_t hv_frame_len(const hv_frame *f);
hv_frame_kind hv_frame_kind_of(const hv_frame *f);

/* Metadata, set by the producer before publishing. */
typedef struct {
    int64_t pts_us;        /* media timestamp (running time of the stream) */
    int64_t captured_us;   /* g_get_monotonic_time() when the source RTP packet arrived, or when
                            * the decoder got the frame if the arrival time is unknown */
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

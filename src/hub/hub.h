/* hub: fan-out of one stream's media to its viewers, with memory bounded whatever they do.
 *
 *  - Video: the channel keeps the latest frame; each viewer holds at most one pending frame.
 *    A newer frame replaces a pending one that was not sent yet (counted as dropped), so a slow
 *    viewer skips frames and never queues them.
 *  - Audio: one ring of the last N chunks per audio format, shared by every viewer of that
 *    format; a viewer is a cursor into it. A viewer more than N chunks behind is culled (closed
 *    with a reason) instead of buffering without limit.
 *  - Events (JSON text): a small bounded queue per viewer; overflowing it culls the viewer.
 *  - Encoded viewers (?mode=encoded) get the stream's own frames instead, from the GOP cache
 *    (see "encoded viewers" below).
 * Messages are immutable and refcounted, shared by every viewer: nothing is copied per viewer.
 *
 * Main thread only.
 */
#ifndef HV_HUB_H
#define HV_HUB_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* ---- messages ----------------------------------------------------------------------------- */

/* A message is an hv_buf (core/buf.h): binary when HV_BUF_BINARY is set, else text; its stamp
 * is when the media in it arrived (latency figures). A JPEG or encoded frame of the media
 * module is published as it is: it is already the message. */
typedef struct hv_buf hv_hub_msg;
#define HV_HUB_HEADROOM    HV_BUF_HEADROOM /* writable bytes in front of the data (LWS_PRE) */
#define HV_HUB_EVENT_QUEUE 16

/* (transfer full) A message holding a copy of data. */
hv_hub_msg *hv_hub_msg_new_copy(bool binary, const void *data, size_t len);
/* (transfer full) "audio:" followed by the base64 of pcm: the seed's audio text message. */
hv_hub_msg *hv_hub_msg_new_audio_text(const uint8_t *pcm, size_t len);
static inline hv_hub_msg *
hv_hub_msg_ref(hv_hub_msg *m)
{
    return hv_buf_ref(m);
}
static inline void
hv_hub_msg_unref(hv_hub_msg *m)
{
    hv_buf_unref(m);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_hub_msg, hv_hub_msg_unref)
static inline uint8_t *
hv_hub_msg_data(hv_hub_msg *m)
{
    return hv_buf_data(m);
}
static inline size_t
hv_hub_msg_len(const hv_hub_msg *m)
{
    return hv_buf_len(m);
}
static inline bool
hv_hub_msg_is_binary(const hv_hub_msg *m)
{
    return (hv_buf_flags(m) & HV_BUF_BINARY) != 0;
}
/* When the media behind the message arrived (monotonic µs); 0 = unknown. Set before
 * publishing. */
static inline void
hv_hub_msg_set_captured_us(hv_hub_msg *m, int64_t captured_us)
{
    hv_buf_set_stamp_us(m, captured_us);
}

/* ---- channels and viewers ----------------------------------------------------------------- */

typedef struct hv_hub_channel hv_hub_channel;
typedef struct hv_hub_viewer hv_hub_viewer;

/* Told when the set of things viewers need changes, so decoding runs only while needed. */
typedef struct {
    /* JPEG frames are needed (a JPEG viewer is connected); encoded viewers never need them. */
    void (*video_needed)(bool needed, void *user_data);
    void (*audio_format_needed)(int rate_hz, int channels, bool needed, void *user_data);
    /* Encoded viewers wait for a video key frame: ask the sender for one (RTCP PLI). At most
     * once a second. */
    void (*keyframe_wanted)(void *user_data);
    /* A viewer of either kind came or went (hv_hub_channel_viewer_count changed). */
    void (*viewers_changed)(void *user_data);
} hv_hub_channel_callbacks;

/* audio_backlog: chunks kept per audio format (a viewer further behind is culled). */
hv_hub_channel *hv_hub_channel_new(size_t audio_backlog, const hv_hub_channel_callbacks *cb,
                                   void *user_data);
/* Frees the channel; every viewer still attached is detached: its next() reports CLOSED with
 * reason (copied; NULL means "stream ended"). */
void hv_hub_channel_free(hv_hub_channel *ch, const char *reason);

/* msg: (transfer none) */
void hv_hub_channel_publish_video(hv_hub_channel *ch, hv_hub_msg *jpeg, int width, int height);
void hv_hub_channel_publish_audio(hv_hub_channel *ch, int rate_hz, int channels, hv_hub_msg *text);
/* Queues a JSON text event for every viewer. */
void hv_hub_channel_publish_event(hv_hub_channel *ch, const char *json);
unsigned hv_hub_channel_viewer_count(const hv_hub_channel *ch);
/* Latency from media arrival to the moment a video frame is handed to a viewer's socket, over
 * the last HV_HUB_LATENCY_SAMPLES sends: percentiles in ms, and how many samples. */
#define HV_HUB_LATENCY_SAMPLES 2048
void hv_hub_channel_latency(const hv_hub_channel *ch, double *p50_ms, double *p99_ms,
                            unsigned *samples);
void hv_hub_channel_video_size(const hv_hub_channel *ch, int *width, int *height);

/* wake(user_data) is called whenever the viewer has something new to send (idempotent for
 * the caller: it only asks its socket for a writable callback). */
hv_hub_viewer *hv_hub_viewer_new(hv_hub_channel *ch, int audio_rate_hz, int audio_channels,
                                 void (*wake)(void *user_data), void *user_data);
void hv_hub_viewer_free(hv_hub_viewer *v);
/* Queues a text message for this viewer only (e.g. the first "format" line). */
void hv_hub_viewer_push_text(hv_hub_viewer *v, const char *text);

typedef enum {
    HV_HUB_NOTHING, /* nothing to send now */
    HV_HUB_SEND,    /* *msg is (transfer full) the next message */
    HV_HUB_CULLED,  /* too far behind: close the connection; *reason says why */
    HV_HUB_CLOSED,  /* the channel is gone */
} hv_hub_next;
/* The next message to send, in priority order: events, audio (oldest first), video. */
hv_hub_next hv_hub_viewer_next(hv_hub_viewer *v, hv_hub_msg **msg, const char **reason);
bool hv_hub_viewer_has_pending(const hv_hub_viewer *v);

/* ---- encoded viewers (?mode=encoded) ------------------------------------------------------
 *
 * The channel keeps the encoded stream (video frames and audio packets as the media layer
 * made them, in arrival order) from the newest video key frame on: the GOP cache, at most
 * max_bytes. A new encoded viewer starts at that key frame, after the format message in force
 * there, so its first picture decodes at once. Entries before the newest key frame stay while
 * a viewer still needs them; the cache never holds more than max_bytes: over it, the oldest
 * entries go, and when that reaches the newest key frame the cache has no key frame left, a
 * key frame is asked for (keyframe_wanted) and new viewers wait for it. A viewer whose next
 * entry left the cache, or that is more than a GOP behind when a key frame comes, skips to the
 * newest key frame (or waits for the next one); so a slow viewer costs a cursor, never a
 * queue. Every message of a format is preceded, for each viewer, by that format message. */
#define HV_HUB_GOP_DEFAULT_BYTES (8u << 20)

void hv_hub_channel_set_gop_limit(hv_hub_channel *ch, size_t max_bytes);
/* The format message (JSON text, copied) of the encoded messages published from now on;
 * has_video: it names a video codec (a viewer waiting for a key frame then skips audio too, so
 * its first binary message is that key frame). */
void hv_hub_channel_set_encoded_format(hv_hub_channel *ch, const char *json, bool has_video);
/* msg: (transfer none) one encoded message (header included). */
void hv_hub_channel_publish_encoded(hv_hub_channel *ch, hv_hub_msg *msg, bool video, bool key);
/* An encoded viewer: its first message is the format in force where it starts. */
hv_hub_viewer *hv_hub_viewer_new_encoded(hv_hub_channel *ch, void (*wake)(void *user_data),
                                         void *user_data);
typedef struct {
    size_t bytes, entries, max_bytes;
    bool has_key_frame;
    unsigned viewers;    /* encoded viewers */
    uint64_t keys_asked; /* key frames asked for by the cache */
} hv_hub_gop_stats;
void hv_hub_channel_gop_stats(const hv_hub_channel *ch, hv_hub_gop_stats *out);

typedef struct {
    uint64_t video_sent, video_dropped, audio_sent, events_sent, bytes_sent;
} hv_hub_viewer_stats;
void hv_hub_viewer_get_stats(const hv_hub_viewer *v, hv_hub_viewer_stats *out);
/* The sum over every viewer the channel ever had, departed ones included (metrics). */
void hv_hub_channel_get_totals(const hv_hub_channel *ch, hv_hub_viewer_stats *out);

#endif

/* media-private.h: what session.c (webrtcbin, negotiation, ICE, delivery) and decode.c (one
 * depay/decode branch per webrtcbin src pad) share. Not for other modules.
 *
 * Threads: hv_media_session is refcounted. The owner's reference is dropped by
 * hv_media_session_free(); every signal handler, pad probe, appsink callback and posted job
 * that can outlive a call holds its own reference, so nothing dangles, and `destroyed` keeps
 * anything from reaching the owner's callbacks after free. Fields are grouped by who may touch
 * them: immutable after _new, atomics, main thread only, or guarded by a named lock.
 * Lock order: a thread never holds two of these locks at once.
 */
#ifndef HV_MEDIA_PRIVATE_H
#define HV_MEDIA_PRIVATE_H

#include "media/media.h"

#include <gst/gst.h>
#include <stdbool.h>
#include <stdint.h>

#define HV_MEDIA_MAX_AUDIO_FORMATS 8
#define HV_MEDIA_AUDIO_BACKLOG     64  /* PCM chunks waiting for the main thread, all formats */
#define HV_MEDIA_FPS_RING          256 /* decode times kept for the frame-rate estimate */
#define HV_MEDIA_FPS_WINDOW_US     (2 * G_USEC_PER_SEC)
#define HV_MEDIA_STAMPS            64 /* arrival stamps remembered per branch */
#define HV_MEDIA_MAX_PENDING_CANDS 64 /* local candidates held until the first answer is out */

typedef struct hv_media_branch hv_media_branch;

/* One requested PCM format and how many users asked for it (main thread only). */
typedef struct {
    int rate_hz;
    int channels;
    unsigned users;
} hv_media_audio_format;

struct hv_media_session {
    gatomicrefcount ref;
    int destroyed; /* atomic: set once by hv_media_session_free */
    unsigned id;   /* names the pipeline: hv-media-N */

    /* Immutable after _new; any thread may read. */
    char *log_mint, *log_room; /* log context (nullable); freed with the memory */
    GMainContext *ctx;         /* the owner's context: every callback runs there */
    GstElement *pipeline;
    GstElement *webrtc;
    int jpeg_quality;
    bool have_vp8, have_vp9, have_h264, have_opus;
    const char *h264_decoder; /* "avdec_h264" or "openh264dec" */

    /* Atomics read per buffer by streaming threads, written by the main thread. */
    int video_enabled;
    int audio_active; /* number of formats with users > 0 */

    /* Main thread only. */
    hv_media_callbacks cb;
    void *user_data;
    hv_media_state state;
    GSource *bus_source;
    GPtrArray *branches;      /* (element-type hv_media_branch) registered branches, one ref */
    GArray *formats;          /* (element-type hv_media_audio_format) */
    GPtrArray *data_channels; /* kept alive as the server expects (protocol doc §4.4) */
    bool negotiating;         /* an offer is between set-remote and set-local */
    char *pending_offer;      /* the next offer, applied when the current one is done */
    uint32_t pending_offer_id;
    char *last_ufrag;      /* ICE ufrag of the last applied offer (restart detection) */
    char **offer_mids;     /* a=mid per m-line of the last applied offer ("" if none) */
    bool answer_sent;      /* local candidates are held until the first answer is out */
    GPtrArray *held_cands; /* (element-type hv_media_cand) */
    char **answer_mids;    /* a=mid per m-line of the last answer, for on_local_candidate */

    /* TAP_LOCK guards the tap; streaming threads take a reference on tap_data per call. */
    GMutex tap_lock;
    hv_media_tap tap;
    void *tap_data;
    int tap_active; /* atomic: a tap is set (the entry probes let packets through) */
    int tap_gen;    /* atomic: bumped per tap set, so each stream anchors its timeline anew */

    /* STATS_LOCK guards stats and the decode-time ring. Streaming threads write, main reads. */
    GMutex stats_lock;
    hv_media_stats stats; /* fps is computed on read */
    int64_t decode_us[HV_MEDIA_FPS_RING];
    unsigned decode_next;
    unsigned decode_count;

    /* MAILBOX_LOCK guards the frames waiting for the main thread. The video slot holds only
     * the newest JPEG; audio is a queue of at most HV_MEDIA_AUDIO_BACKLOG chunks (oldest
     * dropped). One wake-up source is in flight at most. */
    GMutex mailbox_lock;
    hv_frame *mail_video;
    GQueue mail_audio;
    bool mail_wake_pending;
};

/* Logs with the session's mint and room as context fields. Never above debug on per-frame
 * paths. */
void hv_media_log(const hv_media_session *s, GLogLevelFlags level, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
#define HV_MEDIA_DEBUG(s, ...) hv_media_log((s), G_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define HV_MEDIA_INFO(s, ...)  hv_media_log((s), G_LOG_LEVEL_INFO, __VA_ARGS__)

/* ---- session.c, used by decode.c ----------------------------------------------------------- */

hv_media_session *hv_media_session_ref(hv_media_session *s);
void hv_media_session_unref(hv_media_session *s);
bool hv_media_session_is_destroyed(const hv_media_session *s);
/* Any thread: runs fn(data) on the owner's main context (never inline); destroy frees data
 * afterwards, also when the context is gone. */
void hv_media_post(hv_media_session *s, GSourceFunc fn, void *data, GDestroyNotify destroy);
/* Any thread: hands a finished frame (transfer full) to the main thread's mailbox. */
void hv_media_post_frame(hv_media_session *s, hv_frame *f);
/* Streaming threads: counters. */
/* One RTP packet: its payload bytes, and whether it starts a new video frame. */
void hv_media_stats_packet(hv_media_session *s, uint64_t payload_bytes, bool new_video_frame);
void hv_media_stats_decoded(hv_media_session *s, int64_t now_us);
void hv_media_stats_size(hv_media_session *s, int width, int height);
void hv_media_stats_encoded(hv_media_session *s);
void hv_media_stats_dropped(hv_media_session *s);
void hv_media_stats_audio_chunk(hv_media_session *s);

/* ---- decode.c ------------------------------------------------------------------------------ */

/* webrtcbin pad-added (streaming thread): builds and links the branch for pad, then posts its
 * registration (on_track, audio outputs) to the main thread. */
void hv_media_decode_pad_added(hv_media_session *s, GstPad *pad);
/* webrtcbin pad-removed (any thread): the branch of pad goes away on the main thread. */
void hv_media_decode_pad_removed(hv_media_session *s, GstPad *pad);
/* Main thread: re-enabling is detected per branch by its entry probe (which then asks for a
 * keyframe); these act on the registered branches. */
void hv_media_decode_request_keyframe(hv_media_session *s);
void hv_media_decode_add_output(hv_media_session *s, int rate_hz, int channels);
void hv_media_decode_remove_output(hv_media_session *s, int rate_hz, int channels);
/* Main thread, after the pipeline is in NULL: drops every branch and breaks its cycles. */
void hv_media_decode_clear(hv_media_session *s);
/* Main thread: hands the current caps of every branch to a newly set tap. */
void hv_media_decode_tap_caps(hv_media_session *s, const hv_media_tap *tap, void *data);

#endif

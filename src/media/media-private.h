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
/* Local candidates held until the first answer is out: a host with many addresses (and TCP
 * candidates for each) can have hundreds. */
#define HV_MEDIA_MAX_PENDING_CANDS 512
/* PCM format every audio track is brought to before the mixer. */
#define HV_MEDIA_MIX_RATE          48000
#define HV_MEDIA_MIX_CHANNELS      2
/* The mixer's output block: one PCM chunk for viewers. */
#define HV_MEDIA_MIX_BLOCK_MS      20
/* The mixer waits this long for late inputs; a track's timeline is re-anchored when its audio
 * arrives this far from it (decode.c, on_mix_probe). */
#define HV_MEDIA_MIX_SLACK_MS      60
#define HV_MEDIA_MIX_RESYNC_MS     120

/* Taps on the selected tracks' encoded media: the recorder's (hv_media_session_set_tap) and
 * the encoded viewers' (passthrough.c). Each keeps its own timeline anchor. */
typedef enum {
    HV_MEDIA_TAP_SLOT_RECORDER,
    HV_MEDIA_TAP_SLOT_VIEWERS,
    HV_MEDIA_TAP_SLOTS,
} hv_media_tap_slot;

/* Encoded frames the main thread has not taken yet: beyond either bound a video frame is
 * refused (the viewers' stream then resumes at the next key frame). */
#define HV_MEDIA_ENCODED_BACKLOG       512
#define HV_MEDIA_ENCODED_BACKLOG_BYTES (16u << 20)

typedef struct hv_media_branch hv_media_branch;
typedef struct hv_media_output hv_media_output;

/* A codec haven receives (codecs.c). */
typedef struct {
    const char *encoding; /* RTP encoding name, upper case: "VP8", "H264", "OPUS" */
    bool is_video;
    const char *depay;       /* depayloader */
    const char *parse;       /* parser between depayloader and decoder, or NULL */
    const char *decoders[2]; /* candidates, best first */
    const char *decoder;     /* the first installed one; NULL = not receivable here */
} hv_media_codec;

/* The codec for an encoding name or MIME type ("H264", "video/H264"), if every element it
 * needs is installed; NULL otherwise (and for AV1). */
const hv_media_codec *hv_media_codec_find(const char *name);
/* Whether a GStreamer element factory is installed. */
bool hv_media_have_element(const char *name);
/* (transfer full) "VP8=vp8dec VP9=vp9dec H264=avdec_h264 …", for logs. */
char *hv_media_codec_list(void);

typedef struct hv_media_offer hv_media_offer;

/* What the signalling layer said about one m-line of an offer. */
typedef struct {
    char *track_sid; /* the track it carries (mid_to_track_id, else a=msid); NULL if none */
    char **prefer;   /* encoding names the track is published in, primary first; NULL-terminated */
} hv_media_mline_hint;

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
    GstElement *mixer;   /* audiomixer: every audio track goes in, one PCM stream comes out */
    GstElement *mix_tee; /* after the mixer: one branch per requested PCM format */
    int jpeg_quality;

    /* Atomics read per buffer by streaming threads, written by the main thread. */
    int video_enabled;
    int audio_active;   /* number of formats with users > 0 */
    int audio_branches; /* registered audio branches (tracks in the mix) */

    /* Main thread only. */
    hv_media_callbacks cb;
    void *user_data;
    hv_media_state state;
    GSource *bus_source;
    GPtrArray *branches;           /* (element-type hv_media_branch) registered branches, one ref */
    GArray *formats;               /* (element-type hv_media_audio_format) */
    GPtrArray *outputs;            /* (element-type hv_media_output) PCM outputs on mix_tee */
    GPtrArray *data_channels;      /* kept alive as the server expects (protocol doc §4.4) */
    bool negotiating;              /* an offer is between set-remote and set-local */
    hv_media_offer *pending_offer; /* the next offer, applied when the current is done */
    /* Atomic: the offer create-answer is working on (for hv_media_on_new_transceiver), which
     * its negotiation step owns; NULL outside create-answer. */
    hv_media_offer *answering;
    GHashTable *mid_tracks; /* mid → track sid, from the last applied offer */
    unsigned media_lines;   /* audio/video m-lines of the last applied offer */
    char *video_track;      /* hv_media_session_select_tracks(), NULL = any */
    char *tap_audio_track;  /* likewise; NULL = the first audio track */
    char *last_ufrag;       /* ICE ufrag of the last applied offer (restart detection) */
    char **offer_mids;      /* a=mid per m-line of the last applied offer ("" if none) */
    bool answer_sent;       /* local candidates are held until the first answer is out */
    GPtrArray *held_cands;  /* (element-type hv_media_cand) */
    char **answer_mids;     /* a=mid per m-line of the last answer, for on_local_candidate */

    /* TAP_LOCK guards the taps; streaming threads take a reference on tap_data per call. */
    GMutex tap_lock;
    hv_media_tap tap[HV_MEDIA_TAP_SLOTS];
    void *tap_data[HV_MEDIA_TAP_SLOTS];
    int tap_active; /* atomic: bit (1 << slot) per slot with a tap (entry probes let packets in) */
    int tap_gen[HV_MEDIA_TAP_SLOTS]; /* atomic: bumped per tap set, so each stream anchors the
                                      * slot's timeline anew */
    /* The encoded viewers' tap (passthrough.c), NULL when cfg->encoded was false. */
    struct hv_media_pt_tap *pt_tap;

    /* Encoded frames waiting for the main thread (MAILBOX_LOCK): at most
     * HV_MEDIA_ENCODED_BACKLOG frames or HV_MEDIA_ENCODED_BACKLOG_BYTES. */
    GQueue mail_encoded;
    size_t mail_encoded_bytes;

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

/* ---- session.c, used by the other files ------------------------------------------------------ */

hv_media_session *hv_media_session_ref(hv_media_session *s);
void hv_media_session_unref(hv_media_session *s);
bool hv_media_session_is_destroyed(const hv_media_session *s);
/* Main thread: the one way into FAILED (reported once; later offers are ignored). */
void hv_media_session_fail(hv_media_session *s, const char *reason);
void hv_media_session_set_state(hv_media_session *s, hv_media_state st);
/* Any thread: runs fn(data) on the owner's main context (never inline); destroy frees data
 * afterwards, also when the context is gone. */
void hv_media_post(hv_media_session *s, GSourceFunc fn, void *data, GDestroyNotify destroy);
/* ---- negotiate.c ------------------------------------------------------------------------- */

void hv_media_offer_free(hv_media_offer *o);
/* Frees a held local candidate (the elements of held_cands). */
void hv_media_cand_free(gpointer p);
/* webrtcbin on-new-transceiver (its thread, inside create-answer): codec preferences and
 * direction for the transceiver of an m-line new in the offer. */
struct _GstWebRTCRTPTransceiver;
void hv_media_on_new_transceiver(GstElement *webrtc, struct _GstWebRTCRTPTransceiver *t,
                                 gpointer user_data);
/* webrtcbin on-ice-candidate (its thread): posts the candidate to the main thread. */
void hv_media_on_ice_candidate(GstElement *webrtc, guint mline, gchar *candidate,
                               gpointer user_data);

/* ---- mailbox.c ----------------------------------------------------------------------------- */

/* Any thread: hands a finished frame (transfer full) to the main thread's mailbox. */
void hv_media_post_frame(hv_media_session *s, hv_frame *f);
/* Any thread: hands an encoded frame (transfer full) to the main thread, in order; false (and
 * the frame released) when the mailbox is over its bounds. */
bool hv_media_post_encoded(hv_media_session *s, hv_frame *f);
/* Streaming threads: counters. */
/* One RTP packet: its payload bytes, and whether it starts a new video frame. */
void hv_media_stats_packet(hv_media_session *s, uint64_t payload_bytes, bool new_video_frame);
void hv_media_stats_decoded(hv_media_session *s, int64_t now_us);
void hv_media_stats_size(hv_media_session *s, int width, int height);
void hv_media_stats_encoded(hv_media_session *s);
void hv_media_stats_dropped(hv_media_session *s);
void hv_media_stats_audio_chunk(hv_media_session *s);

/* ---- decode.c ------------------------------------------------------------------------------ */

/* Main thread: the selection changed (or a branch registered): every branch's flags again. */
void hv_media_decode_select(hv_media_session *s);
/* Main thread, from _new: the mixer and its tee, in the pipeline (not yet playing). */
bool hv_media_decode_build_mixer(hv_media_session *s, GError **error);

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
/* Main thread, after the pipeline is in NULL: drops every branch and output. */
void hv_media_decode_clear(hv_media_session *s);
/* The caps naming the reference-timestamp meta of a packet's arrival (monotonic ns), which
 * the entry probe puts on every packet it lets in. (transfer none) */
GstCaps *hv_media_arrival_caps(void);
/* Main thread: hands the current caps of every selected branch to a newly set tap. */
void hv_media_decode_tap_caps(hv_media_session *s, const hv_media_tap *tap, void *data);

/* ---- session.c: taps ---------------------------------------------------------------------- */

/* Any thread but a streaming one inside the tap: sets (tap != NULL) or removes a slot's tap;
 * a new tap gets the current caps and a keyframe is asked for. */
void hv_media_set_tap_slot(hv_media_session *s, hv_media_tap_slot slot, const hv_media_tap *tap,
                           void *data);

/* ---- passthrough.c ------------------------------------------------------------------------ */

typedef enum {
    HV_MEDIA_PT_NONE,
    HV_MEDIA_PT_H264,
    HV_MEDIA_PT_H265,
    HV_MEDIA_PT_VP8,
    HV_MEDIA_PT_VP9,
} hv_media_pt_codec;

/* The codec of a depayloader's caps ("video/x-h264"...), HV_MEDIA_PT_NONE for others. */
hv_media_pt_codec hv_media_pt_codec_from_caps_name(const char *name);
/* The encoded viewers' message header (HV_FRAME_ENCODED_HEADER bytes) into out. */
void hv_media_pt_write_header(uint8_t *out, int kind, bool key, int64_t ts_us);

/* One video stream's converter (one thread at a time). Starts waiting for a key frame, in
 * Annex B until set_codec_data says the units are length-prefixed. */
typedef struct hv_media_pt_video hv_media_pt_video;
hv_media_pt_video *hv_media_pt_video_new(hv_media_pt_codec codec);
void hv_media_pt_video_free(hv_media_pt_video *pt);
hv_media_pt_codec hv_media_pt_video_codec(const hv_media_pt_video *pt);
/* avcC / hvcC: the NAL length size and the parameter sets in it. False when malformed. */
bool hv_media_pt_video_set_codec_data(hv_media_pt_video *pt, const uint8_t *cd, size_t len);
void hv_media_pt_video_set_annexb(hv_media_pt_video *pt);
/* A frame was lost on the way: video resumes at the next key frame. */
void hv_media_pt_video_lost(hv_media_pt_video *pt);
bool hv_media_pt_video_waiting(const hv_media_pt_video *pt);
/* (transfer full) The message for one access unit / frame, or NULL: a delta while waiting for
 * a key frame, a key frame without its parameter sets, or something unreadable (then it waits
 * for a key frame). */
hv_frame *hv_media_pt_video_frame(hv_media_pt_video *pt, const uint8_t *data, size_t len,
                                  int64_t ts_us);
/* The codec string ("" before the first key frame) and size of the last key frame. */
const char *hv_media_pt_video_format(const hv_media_pt_video *pt, int *width, int *height);
/* (transfer full) The message for one Opus packet. */
hv_frame *hv_media_pt_audio_frame(const uint8_t *data, size_t len, int64_t ts_us, int channels);

/* The encoded viewers' tap: feeds the selected tracks through the converters and posts the
 * frames (on_encoded_frame). Main thread. */
typedef struct hv_media_pt_tap hv_media_pt_tap;
void hv_media_pt_tap_start(hv_media_session *s, int64_t ts_base_us);
void hv_media_pt_tap_stop(hv_media_session *s);

#endif

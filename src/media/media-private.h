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

#include <gst/app/gstappsink.h>
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

/* ---- branches (decode.c owns them; the mixer and the taps read them) ------------------- */

typedef struct {
    GstClockTime pts;
    int64_t arrival_us;
} arrival_stamp;

/* Refcounted: the main list, the webrtcbin pad's qdata, each probe and appsink callback hold
 * references. The bin is owned by the pipeline; the branch only borrows pointers into it. */
struct hv_media_branch {
    gatomicrefcount ref;
    hv_media_session *s; /* strong */
    bool is_video;
    bool supported; /* false: the pad goes to a fakesink */
    char codec[16];
    char *mid;
    char *track_sid; /* main thread: the LiveKit track, from the offer ("" unknown) */
    /* Atomic: video: this track is the one decoded and tapped; audio: the one tapped. Starts
     * 0: nothing leaves the branch before the main thread registered and selected it. */
    int selected;

    /* Borrowed from the bin (owned by the pipeline); used by the main thread only while
     * registered && !removed, or by the threads running inside the bin. */
    GstElement *bin;
    GstPad *mix_pad;   /* audio: the mixer's request pad (strong), released at teardown */
    GstPad *entry;     /* the depayloader's sink pad */
    GstPad *depay_src; /* the depayloader's src pad: tap and decode gate */

    /* Entry probe only (the thread pushing out of the webrtcbin pad). */
    bool entry_enabled;
    GstClockTime entry_last_pts;
    int clock_rate; /* RTP clock rate from the pad caps (90000 video, 48000 Opus) */
    bool have_rtp_ts;
    uint32_t last_rtp_ts;
    int64_t ext_rtp_ts; /* unwrapped RTP timestamp of the newest packet */

    /* Depayloader src probe only (same thread as the entry probe). */
    GstSegment segment; /* for running times handed to the tap */
    bool have_segment;
    bool decode_gated; /* packets were kept from the decoder; video resumes on a keyframe */
    /* Per tap slot: the tap generation the anchor belongs to, and the anchor. */
    unsigned tap_gen[HV_MEDIA_TAP_SLOTS];
    GstClockTime anchor_rt[HV_MEDIA_TAP_SLOTS];
    int64_t anchor_rtp_ns[HV_MEDIA_TAP_SLOTS];
    bool gate_asked; /* a keyframe was requested for the resume */

    /* Decode timing (haven_video_decode_seconds): the decoder's sink probe notes when each
     * PTS went in, its src probe looks it up. TIMING_LOCK: a decoder may push from a thread of
     * its own. */
    GMutex timing_lock;
    arrival_stamp dec_in[8];
    unsigned dec_in_next;
    /* JPEG timing: jpegenc encodes within its sink pad's chain call, so both probes run on
     * the same thread one after the other. */
    int64_t jpeg_in_us;

    /* Audio into the mixer (the mix probe's thread only): the branch's own timeline, see
     * hv_media_mix_probe. */
    GstSegment mix_segment;
    bool mix_have_segment;
    bool mix_anchored;
    GstClockTime mix_next_rt; /* running time of the next sample into the mixer */

    /* STAMPS_LOCK: the entry probe writes, appsink callbacks read. */
    GMutex stamps_lock;
    arrival_stamp stamps[HV_MEDIA_STAMPS];
    unsigned stamps_next;
    unsigned stamps_count;

    /* Main thread only. */
    bool registered;
    bool removed;
};

/* One PCM format on the mixer's tee. Refcounted: s->outputs, the appsink callback and a
 * pending unlink hold references. */
struct hv_media_output {
    gatomicrefcount ref;
    hv_media_session *s; /* strong */
    int rate_hz;
    int channels;
    GstElement *bin; /* borrowed: owned by the pipeline */
    GstPad *tee_pad; /* strong: the request pad on s->mix_tee */
    bool removing;   /* main: an idle probe will unlink it; then it leaves s->outputs */
};

/* The branch is the selected video track, or the tapped audio track (atomic read). */
static inline bool
hv_media_branch_selected(hv_media_branch *b)
{
    return g_atomic_int_get(&b->selected) != 0;
}

/* A tap takes the branch's packets. */
static inline bool
hv_media_branch_tapped(hv_media_branch *b)
{
    return g_atomic_int_get(&b->s->tap_active) != 0 && hv_media_branch_selected(b);
}

/* Logs with the session's mint and room as context fields. Never above debug on per-frame
 * paths. */
void hv_media_log(const hv_media_session *s, GLogLevelFlags level, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
#define HV_MEDIA_DEBUG(s, ...) hv_media_log((s), G_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define HV_MEDIA_INFO(s, ...)  hv_media_log((s), G_LOG_LEVEL_INFO, __VA_ARGS__)

/* ---- base.c: the session object (used by every other file) ------------------------------- */

hv_media_session *hv_media_session_ref(hv_media_session *s);
void hv_media_session_unref(hv_media_session *s);
bool hv_media_session_is_destroyed(const hv_media_session *s);
/* Any thread: runs fn(data) on the owner's main context (never inline); destroy frees data
 * afterwards, also when the context is gone. */
void hv_media_post(hv_media_session *s, GSourceFunc fn, void *data, GDestroyNotify destroy);

/* ---- elements.c: GStreamer helpers (no state) ---------------------------------------------- */

/* A new element of factory added to bin, or NULL when it is not installed. */
GstElement *hv_media_add_element(GstBin *bin, const char *factory);
/* Sets a property (g_object_set style, one name/value pair) only if the element has it. */
void hv_media_set_if_exists(GstElement *e, const char *prop, ...);
/* A non-syncing appsink keeping at most max_buffers (dropping the oldest) that calls cb. */
void hv_media_setup_appsink(GstElement *sink, unsigned max_buffers,
                            GstFlowReturn (*cb)(GstAppSink *, gpointer), gpointer data,
                            GDestroyNotify notify);
/* A "sink" ghost pad on bin for first's sink pad. */
bool hv_media_add_ghost_sink(GstElement *bin, GstElement *first);
/* A SEGMENT event in TIME format is copied into `into`; false for any other. */
bool hv_media_copy_time_segment(GstEvent *ev, GstSegment *into);
/* Sends force-key-unit upstream from entry (rtpbin turns it into RTCP PLI). */
void hv_media_request_keyframe_on(GstPad *entry);
/* The caps naming the reference-timestamp meta of a packet's arrival (monotonic ns), which
 * the entry probe puts on every packet it lets in. (transfer none) */
GstCaps *hv_media_arrival_caps(void);
/* The caps of the sender's unwrapped RTP timestamp (ns) meta. (transfer none) */
GstCaps *hv_media_rtp_time_caps(void);
/* One copy of the sample's buffer into a new frame with its pts and arrival stamp (the buffer's
 * arrival meta, else lookup(ctx, pts) when given, else now); NULL when it cannot be mapped. */
hv_frame *hv_media_frame_from_sample(GstSample *sample, hv_frame_kind kind,
                                     int64_t (*lookup)(void *ctx, GstClockTime pts), void *ctx);

/* ---- negotiate.c ------------------------------------------------------------------------- */

/* Main thread: the one way into FAILED (reported once; later offers are ignored). */
void hv_media_session_fail(hv_media_session *s, const char *reason);
void hv_media_session_set_state(hv_media_session *s, hv_media_state st);

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

/* ---- decode.c: branches ------------------------------------------------------------------ */

/* Main thread: the selection changed (or a branch registered): every branch's flags again. */
void hv_media_decode_select(hv_media_session *s);
/* webrtcbin pad-added (streaming thread): builds and links the branch for pad, then posts its
 * registration (on_track, audio outputs) to the main thread. */
void hv_media_decode_pad_added(hv_media_session *s, GstPad *pad);
/* webrtcbin pad-removed (any thread): the branch of pad goes away on the main thread. */
void hv_media_decode_pad_removed(hv_media_session *s, GstPad *pad);
/* Main thread, after the pipeline is in NULL: drops every branch. */
void hv_media_decode_clear(hv_media_session *s);

/* ---- mixer.c: the audio mixer and its PCM outputs ------------------------------------------ */

/* Main thread, from _new: the mixer and its tee, in the pipeline (not yet playing). */
bool hv_media_mixer_build(hv_media_session *s, GError **error);
/* The PCM format every audio track is brought to before the mixer. (transfer full) */
GstCaps *hv_media_mix_caps(void);
/* The probe on an audio branch's output into the mixer: its own timeline (see mixer.c). */
GstPadProbeReturn hv_media_mix_probe(GstPad *pad, GstPadProbeInfo *info, gpointer user_data);
/* Streaming thread (pad-added): links the audio branch's src ghost to a new mixer pad. */
bool hv_media_mixer_link(hv_media_session *s, hv_media_branch *b);
/* Main thread: an output branch per (rate, channels) on the mixer's tee. */
void hv_media_mixer_add_output(hv_media_session *s, int rate_hz, int channels);
void hv_media_mixer_remove_output(hv_media_session *s, int rate_hz, int channels);
/* Main thread, after the pipeline is in NULL: drops every output. */
void hv_media_mixer_clear(hv_media_session *s);

/* ---- taps.c: taps and keyframe requests ---------------------------------------------------- */

/* Any thread but a streaming one inside the tap: sets (tap != NULL) or removes a slot's tap;
 * a new tap gets the current caps and a keyframe is asked for. */
void hv_media_set_tap_slot(hv_media_session *s, hv_media_tap_slot slot, const hv_media_tap *tap,
                           void *data);
/* Main thread: hands the current caps of every selected branch to a newly set tap. */
void hv_media_taps_send_caps(hv_media_session *s, const hv_media_tap *tap, void *data);
/* Main thread: a branch about to be selected hands its current caps to the encoded viewers'
 * tap (the recorder's is not told: its recording restarts on the new tracks). */
void hv_media_taps_branch_selected(hv_media_session *s, hv_media_branch *b);
/* Streaming threads (the depayloader probe): the taps that take b's packets, each referenced
 * for the call (data[i] NULL for empty slots); false when none. Release with _release. */
bool hv_media_taps_get(hv_media_branch *b, hv_media_tap out[HV_MEDIA_TAP_SLOTS],
                       void *data[HV_MEDIA_TAP_SLOTS]);
void hv_media_taps_release(hv_media_tap tap[HV_MEDIA_TAP_SLOTS], void *data[HV_MEDIA_TAP_SLOTS]);
/* One access unit to every tap got, with each slot's running time. */
void hv_media_taps_buffers(hv_media_branch *b, hv_media_tap tap[HV_MEDIA_TAP_SLOTS],
                           void *data[HV_MEDIA_TAP_SLOTS], GstBuffer *buf);
/* Main thread: asks the sender of the selected video track for a keyframe (RTCP PLI). */
void hv_media_request_keyframe(hv_media_session *s);

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

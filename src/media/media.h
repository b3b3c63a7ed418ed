/* media: one receive-only WebRTC peer connection (GStreamer 1.22 webrtcbin) that answers the
 * server's offers, depayloads and decodes what arrives, and hands out immutable frames: one
 * JPEG per decoded video frame and PCM chunks (S16LE) per requested audio format.
 *
 * Threads: the session is created, driven and freed on the main thread (the thread-default
 * GMainContext at hv_media_session_new). GStreamer's own threads only build hv_frame objects and
 * post them to the main context; every callback below runs on the main thread.
 */
#ifndef HV_MEDIA_H
#define HV_MEDIA_H

#include "media/frame.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hv_media_session hv_media_session;
/* GStreamer's types, for the tap below, without pulling GStreamer into every includer. */
struct _GstCaps;
struct _GstBuffer;

typedef enum {
    HV_MEDIA_NEW,
    HV_MEDIA_CONNECTING, /* an answer has been made; ICE/DTLS in progress */
    HV_MEDIA_CONNECTED,  /* ICE connected: media can flow */
    HV_MEDIA_FAILED,     /* set-remote-description refused, ICE failed, pipeline error */
} hv_media_state;

/* Every callback runs on the main thread; frames are (transfer none): take a ref to keep one. */
typedef struct {
    /* The SDP answer to send to the signalling server for the offer given to set_offer. */
    void (*on_answer)(const char *sdp, uint32_t offer_id, void *user_data);
    /* A local ICE candidate ("candidate:..." line without "a="), to trickle to the server. */
    void (*on_local_candidate)(const char *candidate, const char *sdp_mid, int mline_index,
                               void *user_data);
    /* A media track started: mid is the transceiver's mid, track_sid the LiveKit track it
     * carries ("" when the offer did not say), kind "audio" or "video", codec the encoding
     * name ("VP8", "VP9", "H264", "H265", "OPUS"). */
    void (*on_track)(const char *mid, const char *track_sid, const char *kind, const char *codec,
                     void *user_data);
    void (*on_video_frame)(hv_frame *jpeg, void *user_data);
    void (*on_audio_frame)(hv_frame *pcm, void *user_data);
    /* With cfg->encoded: one encoded viewers' message (HV_FRAME_ENCODED, header included), in
     * order; info says video or audio, key frame, codec string and size (see passthrough.c). */
    void (*on_encoded_frame)(hv_frame *msg, void *user_data);
    /* State changes; reason is set for HV_MEDIA_FAILED. */
    void (*on_state)(hv_media_state state, const char *reason, void *user_data);
} hv_media_callbacks;

typedef struct {
    /* ICE servers from the JoinResponse, as GStreamer URIs ("stun://host:port",
     * "turn://user:pass@host:port", "turns://..."); NULL-terminated, may be NULL. */
    const char *const *ice_servers;
    /* Comma list of local IP addresses ICE may use (HAVEN_ICE_ADDRESSES); NULL or "" = all.
     * Loopback (127.0.0.1) must work when listed: libnice skips it unless added explicitly. */
    const char *ice_addresses;
    int jpeg_quality; /* 1..100 */
    /* Also produce the encoded viewers' stream (on_encoded_frame) from the selected video
     * track and the tapped audio track, timestamps starting at encoded_ts_base_us plus the
     * pipeline's running time (so a later session can continue where an earlier one ended). */
    bool encoded;
    int64_t encoded_ts_base_us;
    /* Log context of the session's lines (nullable, copied): the stream and its room. */
    const char *log_mint;
    const char *log_room;
} hv_media_config;

/* Creates the pipeline with one webrtcbin (bundle-policy max-bundle) in PLAYING.
 * Returns (transfer full) or NULL + error when an element is missing. */
hv_media_session *hv_media_session_new(const hv_media_config *cfg, const hv_media_callbacks *cb,
                                       void *user_data, GError **error);
/* Stops the pipeline (state NULL) and frees everything; no callback runs afterwards. */
void hv_media_session_free(hv_media_session *s);

/* What the signalling layer knows about an offer's tracks (every field nullable). */
typedef struct {
    /* mid → track sid (char* → char*): SessionDescription.mid_to_track_id. An m-line it does
     * not name is looked up by the track id of its a=msid line (LiveKit's "PA_x|TR_y TR_y"). */
    GHashTable *mid_to_track_id;
    /* The codecs a track is published in, as MIME types, primary first then backups
     * ("video/AV1", "video/VP8"); NULL when unknown. Called during set_offer only. */
    const char *const *(*track_codecs)(const char *track_sid, void *data);
    void *data;
} hv_media_offer_info;

/* Applies a server offer: every audio/video transceiver becomes recvonly with codec
 * preferences limited to what can be decoded, the codec the track is published in FIRST
 * (webrtcbin 1.22 answers a single codec per m-line: the first preference the offer has, and
 * LiveKit offers its whole codec table, VP8 first, whatever the track carries); the
 * m=application (data channel) section is accepted; H.264 payload types keep the offer's
 * profile-level-id (RFC 6184 §8.2.2), which webrtcbin drops; then the answer is reported with
 * on_answer. An offer without any m-line is answered too. A later offer (renegotiation) is
 * handled the same way. A refused offer reports HV_MEDIA_FAILED with the reason (the caller
 * then reconnects). info: (nullable) used during the call only. */
void hv_media_session_set_offer(hv_media_session *s, const char *sdp, uint32_t offer_id,
                                const hv_media_offer_info *info);
/* A remote trickled candidate ("candidate:..." with or without "a="). */
void hv_media_session_add_candidate(hv_media_session *s, const char *candidate, const char *sdp_mid,
                                    int mline_index);

/* Which tracks feed viewers and the tap (by LiveKit track sid; NULL = any): video_track is the
 * one video track decoded (to JPEG) and tapped; every audio track is decoded and mixed into one
 * PCM stream, and tap_audio_track is the one whose packets the tap gets (NULL = the first).
 * A streamer with a camera and a screen share, or a microphone and screen audio, thus gives
 * viewers one picture and all the sound. */
void hv_media_session_select_tracks(hv_media_session *s, const char *video_track,
                                    const char *tap_audio_track);

/* Whether a codec (MIME type "video/AV1" or encoding name "H265") can be received here. */
bool hv_media_codec_decodable(const char *name);

/* Decoding runs only while something needs it: with video off, video RTP is dropped before the
 * decoder (no decode, no JPEG); likewise audio. Both start off. */
void hv_media_session_set_video_enabled(hv_media_session *s, bool enabled);
/* Audio outputs are per format: each (rate_hz, channels) pair that has at least one user gets
 * its own convert/resample branch. add/remove are counted; the branch exists while count > 0. */
void hv_media_session_add_audio_format(hv_media_session *s, int rate_hz, int channels);
void hv_media_session_remove_audio_format(hv_media_session *s, int rate_hz, int channels);
/* Asks the sender for a keyframe (RTCP PLI) on the video track. */
void hv_media_session_request_keyframe(hv_media_session *s);

/* ---- encoded-media tap (recording) ----
 *
 * A tap sees every depayloaded access unit of the selected tracks before any decoder: H.264 /
 * H.265 (as the depayloaders give them), VP8, VP9 frames and Opus packets, with the running
 * time of the session's pipeline, which
 * is one clock for audio and video (rtpbin maps RTP timestamps through RTCP). While a tap is
 * set, packets flow past the decode gates even when no viewer needs decoding. */
typedef enum { HV_MEDIA_TAP_VIDEO, HV_MEDIA_TAP_AUDIO } hv_media_tap_kind;
typedef struct {
    /* Streaming threads (and once from set_tap on the main thread, with the current caps). */
    void (*on_caps)(hv_media_tap_kind kind, struct _GstCaps *caps, void *data);
    /* Streaming threads: buf is (transfer none); running_time in ns. */
    void (*on_buffer)(hv_media_tap_kind kind, struct _GstBuffer *buf, uint64_t running_time,
                      void *data);
    /* data is referenced for every call from a streaming thread. */
    void *(*ref)(void *data);
    void (*unref)(void *data);
} hv_media_tap;
/* Sets (tap != NULL) or removes the session's one tap; the media session holds a reference on
 * data until it is replaced, removed or the session is freed. Setting a tap also asks the
 * sender for a keyframe. */
void hv_media_session_set_tap(hv_media_session *s, const hv_media_tap *tap, void *data);

typedef struct {
    uint64_t video_frames_received; /* RTP timestamps seen on video tracks, decoded or not */
    uint64_t video_frames_decoded;
    uint64_t video_frames_encoded; /* JPEGs produced */
    uint64_t video_frames_dropped; /* decoded frames skipped because JPEG encoding lagged */
    uint64_t audio_chunks;
    uint64_t bytes_received; /* RTP payload bytes */
    int width, height;       /* of the last decoded frame; 0 before the first */
    double fps;              /* decoded frames per second over the last few seconds */
    char video_codec[16], audio_codec[16];
    unsigned media_lines;  /* audio/video m-lines negotiated (dormant ones included) */
    unsigned audio_tracks; /* audio tracks being mixed */
} hv_media_stats;
void hv_media_session_get_stats(const hv_media_session *s, hv_media_stats *out);

#endif

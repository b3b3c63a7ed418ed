/* clang-format off */
/* record: writes a stream's encoded media to files without re-encoding, crash-safe.
 *
 * A recorder owns one GStreamer pipeline of its own, fed with the depayloaded access units the
 * live session's media pipeline taps off before any decoder (hv_media_tap):
 *
 *   video: appsrc ─ queue ─ [video parse] ────┐
 *                                             ├─ mp4mux | webmmux ─ filesink → <name>.mp4.part
 *   audio: appsrc ─ tee ─ queue ─ opusparse ──┘                              or <name>.webm.part
 *                    │
 *                    └─ queue ─ opusdec ─ audioconvert ─ audioresample ─ capsfilter (S16LE, 48 kHz)
 *                       ─ appsink → WAV writer (hv_wav) → <name>.wav.part
 *
 *   [video parse], by codec:
 *     H264             h264parse
 *     H265             h265parse ─ capsfilter (stream-format=hvc1)
 *     VP9              vp9parse
 *     VP8              nothing (into WebM)
 *     VP8, force_mp4   vp8dec ─ videoconvert ─ x264enc ─ h264parse (into MP4)
 *
 * The muxer cuts a fragment (MP4) or a cluster (WebM) every fragment_ms (1 s by default). Without
 * video there is no muxer and no opusparse branch: audio only goes to the WAV.
 *
 * VP8 goes to WebM (MP4 cannot carry it) unless force_mp4, which decodes and re-encodes it to
 * H.264 (the one costly case). Timeline: both kinds arrive stamped with a running time on the
 * media pipeline's clock, which the tap (src/media/taps.c) anchors at each stream's first
 * buffer after the tap was set and then advances by the sender's RTP timestamps (carried as a
 * reference-timestamp meta), so rtpbin's lip-sync jumps never reach the file; the recording
 * starts at the first video keyframe (the caller asks the sender for one; audio only: the first
 * packet) and every timestamp is shifted by that running time, so audio and video share t=0.
 * Audio before it is dropped; the WAV is padded with silence over gaps so it never drifts from
 * the video.
 *
 * Crash safety: files carry ".part" until a clean finish renames them; MP4 is fragmented so a
 * killed file plays up to its last fragment; the WAV header is rewritten every second.
 * hv_record_recover() finalizes such leftovers at startup.
 *
 * Threads: created, finished and freed on the main thread (the thread-default context at _new,
 * where the done callback runs). hv_recorder_push/set_caps are called from the media
 * pipeline's streaming threads; disk writes happen on the recorder pipeline's own threads,
 * behind appsrc queues bounded in bytes. A full queue drops (and counts) packets instead of
 * ever blocking the media pipeline, so a slow disk never disturbs viewing.
 */
/* clang-format on */
#ifndef HV_RECORD_H
#define HV_RECORD_H

#include <glib.h>
#include <gst/gst.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hv_recorder hv_recorder;

typedef enum { HV_RECORD_VIDEO, HV_RECORD_AUDIO } hv_record_kind;

typedef struct {
    const char *dir;       /* existing directory */
    const char *mint_id;   /* validated: becomes part of the file names */
    int64_t start_wall_ms; /* names the files (UTC) */
    /* Encoding names as the media module reports them: "H264", "H265", "VP8", "VP9"; "OPUS".
     * NULL = that kind is not recorded. */
    const char *video_codec;
    const char *audio_codec;
    bool force_mp4;      /* VP8: transcode to H.264 MP4 instead of WebM */
    int64_t queue_bytes; /* per kind */
    int fragment_ms;     /* MP4 fragment / WebM cluster length (<= 1000 for crash safety) */
} hv_recorder_config;

/* Final file paths and what goes into them; valid for the recorder's lifetime. */
typedef struct {
    const char *video_path; /* final name (the file is <video_path>.part while written); NULL */
    const char *audio_path; /* WAV; NULL without audio */
    const char *container;  /* "mp4" | "webm"; NULL without video */
    const char *stored_video_codec; /* codec inside the file */
} hv_recorder_files;

typedef struct {
    bool started;        /* the first keyframe (or audio-only: the first packet) went in */
    int64_t duration_ms; /* media time written so far */
    uint64_t bytes;      /* both files, as on disk now */
    uint64_t dropped;    /* packets dropped: queue full, or waiting for a keyframe after one */
    int width, height;   /* of the video in the file; 0 until known */
} hv_recorder_stats;

/* Runs once, on the main thread, when the files are final (renamed) or the recording failed.
 * error: NULL after a clean finish, else what went wrong (the files keep what was written and
 * are still renamed when they hold anything). */
typedef void (*hv_recorder_done_cb)(hv_recorder *r, const char *error, void *user_data);

/* Creates the .part files and starts the pipeline. Fails (no files left behind) when an element
 * is missing or a file cannot be created. */
hv_recorder *hv_recorder_new(const hv_recorder_config *cfg, hv_recorder_done_cb cb, void *user_data,
                             GError **error);

/* Streaming threads (any): caps of the encoded stream, then its buffers with their running
 * time in ns. buf is (transfer none). Ignored after finish or failure. */
void hv_recorder_set_caps(hv_recorder *r, hv_record_kind kind, GstCaps *caps);
void hv_recorder_push(hv_recorder *r, hv_record_kind kind, GstBuffer *buf,
                      GstClockTime running_time);

/* Main thread. Ends the recording: end-of-stream through the muxer, then the files are closed,
 * renamed and done_cb runs (at most timeout_ms later; a muxer that does not finish in time is
 * stopped and its file kept as written). Calling it again does nothing. */
void hv_recorder_finish(hv_recorder *r, int64_t timeout_ms);
bool hv_recorder_is_done(const hv_recorder *r);
/* Fails the recording at once with reason (e.g. the stream's codec changed). */
void hv_recorder_abort(hv_recorder *r, const char *reason);

void hv_recorder_get_files(const hv_recorder *r, hv_recorder_files *out);
void hv_recorder_get_stats(hv_recorder *r, hv_recorder_stats *out);

/* Refcounting: the tap holds a reference while a streaming thread is inside push. The owner
 * drops its reference (from _new) after done_cb ran; the recorder must be finished or aborted
 * before that. */
hv_recorder *hv_recorder_ref(hv_recorder *r);
void hv_recorder_unref(hv_recorder *r);

/* "<dir>/<mint>_<yyyymmddThhmmssZ>" (no extension), with "-2", "-3"... appended when a file of
 * that name already exists. (transfer full). */
char *hv_record_base_path(const char *dir, const char *mint_id, int64_t wall_ms);

/* A crash leftover finalized by hv_record_recover. */
typedef struct {
    char *path;          /* the final path, after renaming away ".part" */
    int64_t duration_ms; /* WAV: from its length; other files: -1 (unknown) */
    uint64_t bytes;
} hv_record_recovered;

/* Startup: renames every "*.part" in dir to its final name (repairing WAV headers) and returns
 * what it did, (element-type hv_record_recovered), free with g_ptr_array_unref. Files other than
 * haven's (names not ending in .mp4.part / .webm.part / .wav.part) are left alone. */
GPtrArray *hv_record_recover(const char *dir, GError **error);

#endif

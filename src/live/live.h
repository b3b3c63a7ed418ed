/* live: haven's live sessions. One session per mint joins the stream's LiveKit room as a
 * receive-only participant and feeds a hub channel that WebSocket viewers read from.
 *
 * A session: looks the stream up (catalog), asks pump.fun for a fresh viewer token, opens the
 * LiveKit signalling connection (livekit), answers its offers with a webrtcbin peer connection
 * (media), and publishes JPEG frames and PCM chunks to its channel (hub). Decoding runs only
 * while a viewer needs it. On a lost connection it does a full reconnect with a new token and
 * backoff, and gives up after HAVEN_RECONNECT_GIVE_UP. Every state change lands in
 * live_sessions. Starting a mint that has a session returns that session.
 *
 * Main thread only.
 */
#ifndef HV_LIVE_H
#define HV_LIVE_H

#include "core/config.h"
#include "hub/hub.h"
#include "pumpfun/pumpfun.h"
#include "store/store.h"

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hv_live hv_live;
typedef struct hv_live_session hv_live_session;
typedef struct hv_live_op hv_live_op;

/* cfg, client, catalog, store: (transfer none), must outlive the manager. Marks sessions a
 * previous run left active as interrupted. */
hv_live *hv_live_new(const hv_config *cfg, hv_pf_client *client, hv_pf_catalog *catalog,
                     hv_store *store);
/* Startup (the server, not `haven record`): finalizes what a crash left in the recordings
 * directory (.part files renamed, WAV headers fixed) and marks their rows "recovered"; files
 * without a row get one. Returns how many recordings were recovered. */
int hv_live_recover_recordings(hv_live *live);
/* Stops every session (viewers are told, rows updated); recordings then finish on their own
 * (hv_live_busy says when they are done). */
void hv_live_shutdown(hv_live *live);
/* True while a recording is still being finalized. */
bool hv_live_busy(hv_live *live);
/* Stops every session, finishes recordings still running at once (their files are kept as
 * written, still playable) and frees the manager. */
void hv_live_free(hv_live *live);

/* The answer to a start: the session (transfer none), or NULL and error, in the HV_ERROR
 * domain with a message meant for the client (the seed's wording):
 *   HV_ENOTFOUND   the stream is not live (or pump.fun does not know it);
 *   HV_EUPSTREAM   pump.fun's token request or the LiveKit room failed;
 *   HV_ETIMEDOUT   the LiveKit room never answered (HAVEN_LIVEKIT_CONNECT_TIMEOUT);
 *   HV_EAGAIN      pump.fun is unreachable or rate-limiting, or HAVEN_MAX_SESSIONS is reached;
 *   HV_ECLOSED     the session ended before it started;
 *   HV_EIO         haven itself failed (a media pipeline could not be built). */
typedef void (*hv_live_start_cb)(hv_live_session *session, const GError *error, void *user_data);
/* Starts (or returns the existing) session for a valid mint. The callback runs at once (and
 * NULL is returned) when the answer is known, otherwise later; cancel with hv_live_op_cancel.
 * A new session beyond HAVEN_MAX_SESSIONS is refused at once (HV_EAGAIN). record: a recording
 * is wanted; on an existing session it starts one (false never stops one). */
hv_live_op *hv_live_start(hv_live *live, const char *mint_id, bool record, hv_live_start_cb cb,
                          void *user_data);
void hv_live_op_cancel(hv_live_op *op);
/* The next recording of mint's session continues recording_id (one another node was writing
 * when it died): its row says so (continuation_of). 0 forgets it. */
void hv_live_note_continuation(hv_live *live, const char *mint_id, int64_t recording_id);
/* Stops a session: viewers are closed ("session stopped"), the row gets status "stopped".
 * Returns false when there is none. */
bool hv_live_stop(hv_live *live, const char *mint_id);

/* Turns recording on or off for a joined session (POST /api/live-sessions/{mint}/recording).
 * Idempotent. False with error: HV_ENOTFOUND when the mint has no session, HV_EIO when the
 * recording cannot be started (directory, database). The session's report then says where the
 * recording stands. */
bool hv_live_set_recording(hv_live *live, const char *mint_id, bool on, GError **error);

/* What `haven record` shows while recording a session's stream. */
typedef struct {
    bool recording;      /* a file is being written now */
    int64_t duration_ms; /* of the current file */
    uint64_t bytes;      /* all files of this session so far */
    uint64_t dropped;
    int files;         /* files finished so far (a reconnect starts a new one) */
    const char *path;  /* current (or last) video or audio file; valid until the next call */
    const char *error; /* last recording error, or NULL */
} hv_live_record_progress;
/* False when the mint has no session. */
bool hv_live_record_progress_get(hv_live *live, const char *mint_id, hv_live_record_progress *out);

/* Sessions joining, active or reconnecting (what HAVEN_MAX_SESSIONS bounds). */
unsigned hv_live_session_count(hv_live *live);
/* Viewers attached to every session's hub channel (what HAVEN_MAX_VIEWERS bounds). */
unsigned hv_live_viewer_count(hv_live *live);

/* Why the mint's session ended for idleness, if that happened less than 5 minutes ago; else
 * NULL. (transfer none: valid until the loop runs again) */
const char *hv_live_recent_end(hv_live *live, const char *mint_id);

/* (transfer none, nullable) The session for a mint, if it is joined (active or reconnecting). */
hv_live_session *hv_live_find(hv_live *live, const char *mint_id);
hv_hub_channel *hv_live_session_channel(hv_live_session *s);

/* (transfer none) The stream the session was started for, as pump.fun described it then. */
const hv_pf_stream *hv_live_session_stream(hv_live_session *s);

/* Where a session's recording stands. */
typedef struct {
    bool wanted;          /* record_session / the recording switch is on */
    bool active;          /* a file is being written */
    const char *status;   /* off | waiting_for_media | recording | failed */
    int64_t recording_id; /* the recordings row being written; 0 while waiting for the tracks */
    uint64_t bytes;
    int64_t duration_ms;
    uint64_t dropped_packets;
    const char *error; /* why the last recording failed, or NULL */
} hv_live_recording_report;

/* What the API (/api/live-sessions/active, the start answer) and /metrics show of a session.
 * Counters are summed over its reconnects. Strings are valid until the loop runs again. */
typedef struct {
    const char *mint;
    const char *state;  /* starting | active | reconnecting | ended */
    bool joined;        /* active or reconnecting: what /api/live-sessions/active lists */
    int64_t session_id; /* the live_sessions row, 0 before the join */
    const char *room_name, *participant_sid, *streamer; /* nullable */
    bool record_session;
    unsigned viewers; /* every viewer, JPEG and encoded */
    unsigned room_participants;
    int64_t started_wall_ms;
    int64_t uptime_ms;
    uint64_t bytes_received; /* RTP payload */
    uint64_t reconnects;
    struct {
        char codec[16]; /* "" unknown */
        int width, height;
        double fps;
        uint64_t frames_received; /* video frames (RTP timestamps) that arrived */
        uint64_t frames_decoded;
        uint64_t frames_encoded;         /* JPEGs made for viewers */
        uint64_t frames_dropped_encoder; /* decoded frames skipped because JPEG encoding lagged */
        uint64_t frames_sent;            /* video frames (JPEG or encoded) handed to viewer
                                          * sockets, every viewer counted */
        uint64_t frames_dropped_viewer;  /* frames a slow viewer skipped */
        const char *source;              /* "camera", "screen_share", ... or NULL */
        const char *track_sid;           /* nullable */
        const char *unsupported;         /* why it cannot be shown, or NULL */
    } video;
    struct {
        char codec[16];
        uint64_t chunks_decoded;
        uint64_t sent; /* audio messages handed to viewer sockets */
        unsigned tracks;
    } audio;
    struct {
        double p50_ms, p99_ms; /* RTP arrival → handed to a viewer's socket, last video sends */
        unsigned samples;
    } latency;
    hv_live_recording_report recording;
    struct {
        unsigned viewers; /* of viewers, those in mode=encoded */
        char codec[40];   /* WebCodecs codec string, "" before the first key frame */
        uint64_t gop_bytes, gop_entries;
        bool gop_has_key_frame;
    } encoded;
} hv_live_session_report;

void hv_live_session_report_get(hv_live_session *s, hv_live_session_report *out);
/* (transfer full) (element-type hv_live_session_report) every session, sorted by mint. */
GArray *hv_live_reports(hv_live *live);
/* Bytes written by every recording of this process (finished ones and those running now);
 * *running gets how many recorders are still writing or finishing. */
uint64_t hv_live_recording_bytes(hv_live *live, unsigned *running);

#endif

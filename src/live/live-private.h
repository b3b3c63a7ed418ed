/* live-private.h: what session.c (the session lifecycle) and recording.c (recordings of a
 * session) share. Main thread only, like the rest of the module. */
#ifndef HV_LIVE_PRIVATE_H
#define HV_LIVE_PRIVATE_H

#include "live.h"

#include "core/log.h"

#include "livekit/livekit.h"
#include "media/media.h"
#include "record/record.h"

typedef enum { S_STARTING, S_ACTIVE, S_RECONNECTING, S_ENDED } session_state;

typedef struct hv_live_rec hv_live_rec;

struct hv_live {
    const hv_config *cfg;
    /* lifecycle.c's hv_live_session_end, for idle.c's timer (a leaf calling up through it). */
    void (*end_session)(hv_live_session *s, const char *status, const char *reason);
    hv_pf_client *client;
    hv_pf_catalog *catalog;
    hv_store *store;
    GHashTable *sessions;        /* mint → hv_live_session* (owned) */
    GHashTable *recent_ends;     /* mint → why its session ended for idleness, for a while */
    GHashTable *continuations;   /* mint → recording id (gint64*) its next recording continues */
    GPtrArray *recordings;       /* (element-type hv_live_rec) running or finishing, owned */
    guint rec_update_timer;      /* refreshes the rows of running recordings */
    bool recovered;              /* the recordings directory was checked for crash leftovers */
    uint64_t rec_bytes_finished; /* bytes of every recording finished by this process */
};

/* A caller waiting for a session's start (hv_live_start). */
struct hv_live_op {
    hv_live_session *s;
    bool *answered; /* set while hv_live_start runs, to detect a synchronous answer */
    GList link;
    hv_live_start_cb cb;
    void *user_data;
};

struct hv_live_session {
    hv_live *live;
    char mint[64];
    session_state state;
    bool record; /* recording wanted: a recording runs whenever media flows */
    int64_t db_id;
    hv_pf_stream *info;
    hv_pf_waiter *info_waiter;
    hv_pf_join *join;
    hv_lk_room *room;
    bool room_on_refresh;   /* the room was opened with a LiveKit refresh token, not pump.fun's */
    bool token_refused;     /* LiveKit refused that token (401): forget it, ask pump.fun */
    char *lk_token;         /* the newest LiveKit token of the last room (refresh_token) */
    int64_t lk_token_exp_s; /* its expiry (Unix seconds), 0 unknown */
    uint64_t pumpfun_joins; /* tokens asked from pump.fun for this session */
    hv_media_session *media;
    hv_media_state media_state;
    hv_hub_channel *channel;
    char *room_name, *participant_sid, *streamer_identity;
    /* The streamer's tracks haven receives (stage.c's choice): one video, the audio mixed. */
    char *video_track, *audio_track; /* sids: decoded/tapped video, tapped audio (nullable) */
    const char *video_source;        /* "camera", "screen_share", ... (static) or NULL */
    unsigned audio_tracks;           /* audio tracks the streamer publishes */
    char *video_unsupported;         /* why the streamer's video cannot be shown, or NULL */
    GQueue ops;                      /* start callers waiting for STARTING to resolve */
    guint retry_timer, idle_timer, teardown_idle;
    guint mline_idle;     /* a reconnect for too many dormant m-lines is on its way */
    guint media_timer;    /* the peer connection must connect before it fires */
    guint streamer_timer; /* the streamer left: the session ends unless it is back before this */
    int attempt;
    int64_t reconnect_since_ms;
    int64_t started_ms, started_wall_ms;
    bool video_needed;
    GHashTable *audio_formats; /* "rate/channels" → count */
    int last_width, last_height;
    /* Encoded viewers (encoded.c): what the last format message said, and the newest
     * timestamp published (the next media session's timeline starts after it). */
    char enc_codec[40];
    int enc_width, enc_height, enc_channels;
    int64_t enc_last_ts_us;
    hv_media_stats media_before; /* counters of the peer connections before the current one */
    uint64_t reconnects;
    char *end_reason;

    /* Recording (recording.c). The tracks of the current media session and the kinds the
     * streamer publishes decide when a recording can start. */
    hv_live_rec *rec; /* the running recording, or NULL */
    char video_codec[16], audio_codec[16];
    bool expect_video, expect_audio;
    guint rec_wait_timer;
    char *rec_error; /* why the last recording failed, for the API */
    int64_t last_rec_id;
    uint64_t rec_bytes_done; /* bytes of this session's finished files */
    int rec_files_done;
    char *rec_last_path;
};

/* Log context of a session: its mint, room (once joined) and live_sessions row. */
#define S_CTX(s) \
    (&(const hv_log_ctx){.mint = (s)->mint, .room = (s)->room_name, .session = (s)->db_id})

/* ---- recording.c ---- */

/* The media session reported a track / the streamer's track list: may start the recording. */
void hv_live_rec_on_track(hv_live_session *s, const char *kind, const char *codec);
void hv_live_rec_on_streamer(hv_live_session *s, const hv_lk_track *tracks, size_t n);
/* Starts the recording if one is wanted and the tracks are known. */
void hv_live_rec_maybe_start(hv_live_session *s);
/* The media session is about to go (reconnect, end): its recording finishes into its files. */
void hv_live_rec_stop(hv_live_session *s);
/* The session is being freed. */
void hv_live_rec_session_gone(hv_live_session *s);
/* (transfer full) {"active", "recording_id", "status", "bytes", "duration_seconds", ...}. */
void hv_live_rec_report(hv_live_session *s, hv_live_recording_report *out);
/* Finishes every recording now (shutdown): done callbacks run before it returns. */
void hv_live_rec_abort_all(hv_live *live);

/* session.c: "starting", "active", "reconnecting", "ended". */
const char *hv_live_state_name(const hv_live_session *s);

/* ---- encoded.c: encoded viewers ---------------------------------------------------------- */

/* After the channel is made: the GOP bound and the first format message. */
void hv_live_enc_init(hv_live_session *s);
/* Where the next media session's encoded timeline starts. */
int64_t hv_live_enc_ts_base(const hv_live_session *s);
/* An encoded frame from the media session: a format message if something changed, then the
 * frame into the GOP cache. */
void hv_live_enc_on_frame(hv_live_session *s, hv_frame *f);
/* hub callback: a key frame for encoded viewers. */
void hv_live_enc_keyframe_wanted(void *user_data);

/* ---- lifecycle.c ---------------------------------------------------------------------------- */

/* Answers every caller waiting for the start: the session (error NULL) or the error. */
void hv_live_answer_ops(hv_live_session *s, const GError *error);
/* Frees the room and the peer connection (their counters kept, the LiveKit token remembered);
 * the running recording ends with them. */
void hv_live_free_connection(hv_live_session *s);
/* Everything a session owns (the sessions table's value destructor). */
void hv_live_session_free(hv_live_session *s);
/* Ends a session: the row is closed, viewers get an "ended" event and are closed with reason,
 * and the session is freed from an idle (never inside a room/media callback). */
void hv_live_session_end(hv_live_session *s, const char *status, const char *reason);
/* The start failed: its callers get code (see hv_live_start_cb) with error, and it ends. */
void hv_live_fail_start(hv_live_session *s, int code, const char *error);

/* ---- tokens.c ------------------------------------------------------------------------------- */

/* Keeps token as the session's newest LiveKit token, with its expiry. */
void hv_live_token_remember(hv_live_session *s, const char *token);
/* The remembered token while it has more than 30 s to live, else NULL. */
const char *hv_live_token_usable(const hv_live_session *s);

/* ---- idle.c --------------------------------------------------------------------------------- */

/* Arms or cancels the idle timer after anything that changes viewers or recording. */
void hv_live_update_idle_timer(hv_live_session *s);
/* The table of recent idle stops (mint → why), for hv_live_recent_end. */
GHashTable *hv_live_recent_ends_new(void);

/* ---- connect.c ------------------------------------------------------------------------------ */

/* The session's hub channel callbacks: decoding needs, key frames, viewer counts. */
extern const hv_hub_channel_callbacks hv_live_hub_callbacks;
/* The stream is live: get a token (or reuse LiveKit's) and open the room. */
void hv_live_begin_join(hv_live_session *s);
/* The connection was lost (why): viewers are told, and a full reconnect follows with backoff. */
void hv_live_reconnect(hv_live_session *s, const char *why);

#endif

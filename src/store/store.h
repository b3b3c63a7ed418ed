/* The store: haven's database, on SQLite (a file in WAL mode) or PostgreSQL (a libpq URI),
 * with versioned migrations. It caches every pump.fun coin seen, keeps participant/market-cap
 * history for trend charts, and records live sessions and recordings. Owned and used by the
 * main thread only; each call is short (one transaction) and blocks until the database answers
 * (PostgreSQL: within connect_timeout and a 10 s statement_timeout). docs/internals/store.md.
 */
#ifndef HV_STORE_H
#define HV_STORE_H

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct hv_store hv_store;

/* The schema version this build migrates databases to. */
int hv_store_latest_version(void);

/* Opens the database and applies pending migrations. path is a libpq URI starting with
 * "postgresql://" or "postgres://" (PostgreSQL; the database must exist), or else a SQLite file,
 * created if needed and put in WAL mode (":memory:" for tests). Fails with a clear message
 * (HV_EIO) when the file cannot be opened or the server cannot be reached, and (HV_EINVAL) when
 * the schema was written by a newer haven. Returns (transfer full) or NULL + error. */
hv_store *hv_store_open(const char *path, GError **error);
void hv_store_close(hv_store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_store, hv_store_close)

/* The schema version the database records (-1 when it cannot be read). */
int hv_store_schema_version(hv_store *store);
/* (transfer none) The path or URI the store was opened with, a URI's password as "***". */
const char *hv_store_path(const hv_store *store);

/* Upserts pump.fun coin objects (as pump.fun sends them: "mint", "name", reserves, ...; unknown
 * keys ignored, missing ones NULL) into pumpfun_coins in one transaction, and adds a
 * coin_snapshots row for each coin whose last snapshot is at least snapshot_interval_ms old.
 * now_wall_ms stamps first_seen / last_updated / taken_at. */
bool hv_store_upsert_coins(hv_store *store, json_t *const *coins, size_t n, int64_t now_wall_ms,
                           int64_t snapshot_interval_ms, GError **error);

/* Deletes coin_snapshots older than now_wall_ms - retention_ms. Returns rows deleted or -1. */
int64_t hv_store_prune_snapshots(hv_store *store, int64_t now_wall_ms, int64_t retention_ms,
                                 GError **error);

/* A coin's participant and market-cap history: (transfer full) array of {"t": ISO time,
 * "num_participants", "market_cap", "usd_market_cap"} (nulls where pump.fun sent none) taken at
 * or after since_wall_ms, the newest `limit` of them, oldest first. NULL + error on failure. */
json_t *hv_store_coin_history(hv_store *store, const char *mint_id, int64_t since_wall_ms,
                              int64_t limit, GError **error);

/* Proves the database takes writes (a small write in a transaction). */
bool hv_store_check_writable(hv_store *store, GError **error);

/* ---- live_sessions ---- */

/* What a live_sessions row records about the stream when it starts. Strings may be NULL. */
typedef struct {
    const char *mint_id, *coin_name, *coin_symbol, *coin_description, *image_uri, *thumbnail;
    const char *creator, *website, *twitter, *telegram;
    double market_cap, usd_market_cap;
    int64_t num_participants;
    bool nsfw;
    const char *room_name, *participant_sid;
    bool record_session;
} hv_store_session_row;

/* Inserts a row with status "active"; returns its id (> 0) or -1 + error. */
int64_t hv_store_insert_live_session(hv_store *store, const hv_store_session_row *row,
                                     int64_t now_wall_ms, GError **error);
/* Sets status (and error text, nullable); ended also sets end_time. */
bool hv_store_update_live_session(hv_store *store, int64_t id, const char *status,
                                  const char *error_text, bool ended, int64_t now_wall_ms,
                                  GError **error);
/* Marks rows left "active"/"reconnecting" by a previous run that did not stop cleanly as
 * "interrupted" with an end time. Returns how many. */
int64_t hv_store_recover_live_sessions(hv_store *store, int64_t now_wall_ms, GError **error);

/* ---- recordings ----
 *
 * One row per recorded file set (a video file and/or a WAV). Paths are absolute. status:
 * "recording" while written, then "finished" (clean end), "failed" (error; files keep what was
 * written) or "recovered" (found unfinished at startup and finalized). */
typedef struct {
    int64_t id;
    int64_t session_id; /* live_sessions.id, 0 when none */
    char *mint_id;
    char *video_path;         /* nullable: audio-only recording */
    char *audio_path;         /* nullable: the WAV */
    char *container;          /* "mp4" | "webm"; NULL without video */
    char *video_codec;        /* "H264", "VP8", "VP9" as received; nullable */
    char *audio_codec;        /* "OPUS"; nullable */
    char *stored_video_codec; /* codec in the file ("H264" when VP8 was transcoded) */
    int width, height;        /* 0 until known */
    int64_t start_ms;         /* wall clock, ms */
    int64_t end_ms;           /* 0 while recording */
    int64_t duration_ms;
    int64_t bytes;   /* all files together */
    int64_t dropped; /* packets dropped because the disk fell behind */
    char *status;
    char *error;             /* nullable */
    char *node_id;           /* nullable: the node that wrote it (set by the store on insert) */
    int64_t continuation_of; /* the recording (of another node) this file continues, 0 none */
} hv_store_recording;

void hv_store_recording_clear(hv_store_recording *r); /* frees the strings */
void hv_store_recording_free(hv_store_recording *r);  /* clear + g_free */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_store_recording, hv_store_recording_free)

/* Inserts r (id ignored) and returns the new id (> 0) or -1 + error. */
int64_t hv_store_insert_recording(hv_store *store, const hv_store_recording *r, GError **error);
/* Rewrites every column but id and session_id from r (by r->id). False + error if none. */
bool hv_store_update_recording(hv_store *store, const hv_store_recording *r, GError **error);
/* Fills out (caller clears) and returns true; false when no such row (error unset) or on error
 * (error set). */
bool hv_store_get_recording(hv_store *store, int64_t id, hv_store_recording *out, GError **error);
/* Newest first; mint_id / status filter when non-NULL. (element-type hv_store_recording),
 * free with g_ptr_array_unref. NULL + error on failure. */
GPtrArray *hv_store_list_recordings(hv_store *store, const char *mint_id, const char *status,
                                    int64_t limit, int64_t offset, GError **error);
/* The rows still "recording" that this process must recover at startup: every one on a single
 * node; with a node id (hv_store_set_node_id), this node's and those without a node. Oldest
 * first; (element-type hv_store_recording) or NULL + error. */
GPtrArray *hv_store_list_unfinished_recordings(hv_store *store, GError **error);
/* Rows counted by the same filters (for pagination totals); -1 + error. */
int64_t hv_store_count_recordings(hv_store *store, const char *mint_id, const char *status,
                                  GError **error);
/* Deletes the row; false when there was none (error unset) or on error (error set). */
bool hv_store_delete_recording(hv_store *store, int64_t id, GError **error);
/* live_sessions.recording_path for a session (the seed's schema): the newest file. */
bool hv_store_set_session_recording_path(hv_store *store, int64_t session_id, const char *path,
                                         GError **error);

/* ---- several nodes on one database (docs/internals/cluster.md) ----
 *
 * PostgreSQL only: on SQLite every call below fails with HV_EINVAL. Times are the database's
 * clock (ms), so that the nodes' clocks never have to agree. */

/* True when the store is PostgreSQL, which several havens may share. */
bool hv_store_is_shared(const hv_store *store);
/* The node this process is: stamped on the live_sessions and recordings rows it inserts, and
 * the scope of startup recovery (rows of other nodes are theirs to recover). NULL: a single
 * node, which owns every row. Copied. */
void hv_store_set_node_id(hv_store *store, const char *node_id);
/* (transfer none, nullable) */
const char *hv_store_node_id(const hv_store *store);

typedef struct {
    char *node_id, *url;
    int64_t age_ms;            /* since its last heartbeat */
    int64_t sessions, viewers; /* as its last heartbeat reported */
    int64_t leases;            /* session leases it owns now */
} hv_store_node;
void hv_store_node_free(hv_store_node *n);

/* One transaction: upserts node_id's row (heartbeat now, url, load) and extends every lease it
 * owns to now + lease_ms. */
bool hv_store_node_heartbeat(hv_store *store, const char *node_id, const char *url,
                             int64_t sessions, int64_t viewers, int64_t lease_ms, GError **error);
/* A clean exit: deletes node_id's row and ends its leases now (the others take them over). */
bool hv_store_node_leave(hv_store *store, const char *node_id, GError **error);
/* Nodes whose last heartbeat is at most max_age_ms old, least loaded first (leases owned, then
 * viewers, then id). (element-type hv_store_node) NULL + error on failure. */
GPtrArray *hv_store_live_nodes(hv_store *store, int64_t max_age_ms, GError **error);

typedef struct {
    char *mint_id, *owner;
    char *owner_url; /* nullable: NULL when the owner is not live (no fresh heartbeat) */
    char *state;     /* assigned | running | failed */
    bool record;
    bool expired;                /* lease_until has passed */
    int64_t recording_id;        /* the file the owner writes now, 0 none */
    int64_t continues_recording; /* the recording a taken-over session continues, 0 none */
    int64_t takeovers;
    int64_t updated_age_ms; /* since the owner last changed the row's state or report */
    int error_code;         /* HV_* of a failed start, 0 */
    char *error;            /* nullable */
    char *report;           /* nullable: the owner's JSON report of the session */
} hv_store_lease;
void hv_store_lease_free(hv_store_lease *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_store_lease, hv_store_lease_free)

/* Where mint's session runs: the unexpired lease if there is one; otherwise, in the same
 * transaction (placements are serialized across nodes), a new lease ("assigned", until now +
 * lease_ms) for the least loaded node whose heartbeat is at most node_max_age_ms old. When no
 * node is live, NULL + HV_EAGAIN. (transfer full) or NULL + error. */
hv_store_lease *hv_store_lease_place(hv_store *store, const char *mint_id, bool record,
                                     int64_t node_max_age_ms, int64_t lease_ms, GError **error);
/* Claims mint for node_id ("running") unless another unexpired lease exists; returns the lease
 * in force, ours or the other's. */
hv_store_lease *hv_store_lease_claim(hv_store *store, const char *mint_id, const char *node_id,
                                     bool record, int64_t lease_ms, GError **error);
/* (transfer full, nullable) mint's lease, NULL without error when there is none. */
hv_store_lease *hv_store_lease_get(hv_store *store, const char *mint_id, GError **error);
/* Leases owned by owner, or every lease when owner is NULL (element-type hv_store_lease). */
GPtrArray *hv_store_leases(hv_store *store, const char *owner, GError **error);
/* The owner's news about a session: state, report (JSON text, nullable), the recording being
 * written (0 none), and for "failed" the HV_* code and message. Only while owner holds it. */
bool hv_store_lease_update(hv_store *store, const char *mint_id, const char *owner,
                           const char *state, const char *report, int64_t recording_id,
                           int error_code, const char *error_text, GError **error);
/* Sets the record flag of mint's lease (whoever owns it). */
bool hv_store_lease_set_record(hv_store *store, const char *mint_id, bool record, GError **error);
/* Deletes mint's lease when owner holds it (owner NULL: whoever does). True when one went. */
bool hv_store_lease_release(hv_store *store, const char *mint_id, const char *owner,
                            GError **error);
/* Hands every expired lease to the least loaded live node (heartbeat at most node_max_age_ms
 * old), with a new lease_ms, "assigned", takeovers + 1 and continues_recording set to the
 * recording its owner was writing. Rows another node is taking over are skipped (SKIP LOCKED).
 * Returns how many were taken over, -1 + error. */
int64_t hv_store_leases_take_over(hv_store *store, int64_t node_max_age_ms, int64_t lease_ms,
                                  GError **error);

/* ---- the shared pump.fun roster: one node fetches it per TTL for all ---- */

typedef enum {
    HV_STORE_ROSTER_FRESH, /* *body_out holds a roster fetched less than ttl_ms ago */
    HV_STORE_ROSTER_FETCH, /* node_id holds the fetch lease now: fetch, then publish */
    HV_STORE_ROSTER_BUSY,  /* another node holds the lease: ask again shortly */
} hv_store_roster_state;
/* Reads the shared roster, or takes the right to fetch it (for lease_ms) when it is older than
 * ttl_ms and nobody else holds that right. body_out (transfer full) and fetched_at_ms_out (the
 * database's clock) are set with FRESH, and with BUSY when a stale roster exists. -1 + error. */
int hv_store_roster_claim(hv_store *store, const char *node_id, int64_t ttl_ms, int64_t lease_ms,
                          char **body_out, int64_t *fetched_at_ms_out, GError **error);
/* Stores a fetched roster (a JSON array of pump.fun coin objects) and ends node_id's lease. */
bool hv_store_roster_publish(hv_store *store, const char *node_id, const char *body,
                             GError **error);
/* Ends node_id's fetch lease without a roster (the fetch failed), so another may try. */
bool hv_store_roster_release(hv_store *store, const char *node_id, GError **error);

/* Row counts for health and tests: table must be one of haven's tables. -1 on error. */
int64_t hv_store_count(hv_store *store, const char *table);

#endif

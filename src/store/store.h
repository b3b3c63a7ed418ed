/* The store: haven's SQLite database (WAL mode), with versioned migrations. It caches every
 * pump.fun coin seen, keeps participant/market-cap history for trend charts, and records live
 * sessions. Owned and used by the main thread only; each call is short (one transaction).
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

/* Opens (creating if needed) the database at path (":memory:" for tests), sets WAL mode and
 * applies pending migrations. Fails with a clear message when the file cannot be opened or was
 * written by a newer haven. Returns (transfer full) or NULL + error. */
hv_store *hv_store_open(const char *path, GError **error);
void hv_store_close(hv_store *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_store, hv_store_close)

int hv_store_schema_version(hv_store *store);
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

/* Row counts for health and tests: table must be one of haven's tables. -1 on error. */
int64_t hv_store_count(hv_store *store, const char *table);

#endif

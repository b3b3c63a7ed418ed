/* Schema migrations, one numbered list for both engines, applied in order inside one
 * transaction each. The database records the last one applied: PRAGMA user_version on SQLite
 * (as before PostgreSQL was supported), a schema_version table on PostgreSQL. Append new
 * migrations; never edit one that has shipped.
 *
 * Each migration has a text per engine, creating the same tables, columns, constraints and
 * indexes. The PostgreSQL text spells SQLite's types the way they behave there: INTEGER (64-bit
 * in SQLite) is BIGINT, REAL is DOUBLE PRECISION, and "id INTEGER PRIMARY KEY" (the rowid) is
 * an identity column. The unit tests compare both engines' tables column by column.
 */
#include "store-private.h"

#include "core/error.h"

/* 001: pump.fun coin cache, snapshot history, live sessions (fields of the seed's
 * reference implementation), and a meta table for health checks. */
static const char migration_001_sqlite[] =
    "CREATE TABLE pumpfun_coins ("
    "  mint_id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT, symbol TEXT, description TEXT,"
    "  image_uri TEXT, metadata_uri TEXT, banner_uri TEXT, thumbnail TEXT, video_uri TEXT,"
    "  website TEXT, twitter TEXT, telegram TEXT, creator TEXT,"
    "  bonding_curve TEXT, associated_bonding_curve TEXT, raydium_pool TEXT, pump_swap_pool TEXT,"
    "  market_id TEXT, program TEXT, platform TEXT, token_program TEXT,"
    "  market_cap REAL, usd_market_cap REAL, ath_market_cap REAL, ath_market_cap_timestamp INTEGER,"
    "  virtual_sol_reserves INTEGER, virtual_token_reserves INTEGER,"
    "  real_sol_reserves INTEGER, real_token_reserves INTEGER, total_supply INTEGER,"
    "  complete INTEGER, hidden INTEGER, nsfw INTEGER, is_banned INTEGER, show_name INTEGER,"
    "  hide_banner INTEGER, inverted INTEGER, initialized INTEGER,"
    "  is_currently_live INTEGER, num_participants INTEGER, livestream_title TEXT,"
    "  livestream_ban_expiry INTEGER, livestream_downrank_score INTEGER, downrank_score INTEGER,"
    "  reply_count INTEGER, last_reply INTEGER,"
    "  created_timestamp INTEGER, last_trade_timestamp INTEGER, king_of_the_hill_timestamp INTEGER,"
    "  thumbnail_updated_at INTEGER, updated_at INTEGER,"
    "  username TEXT, profile_image TEXT,"
    "  raw_json TEXT NOT NULL,"
    "  first_seen INTEGER NOT NULL,"
    "  last_updated INTEGER NOT NULL"
    ");"
    "CREATE INDEX pumpfun_coins_live ON pumpfun_coins(is_currently_live, num_participants);"
    "CREATE TABLE coin_snapshots ("
    "  id INTEGER PRIMARY KEY,"
    "  mint_id TEXT NOT NULL,"
    "  taken_at INTEGER NOT NULL,"
    "  num_participants INTEGER,"
    "  market_cap REAL,"
    "  usd_market_cap REAL"
    ");"
    "CREATE INDEX coin_snapshots_mint_time ON coin_snapshots(mint_id, taken_at);"
    "CREATE INDEX coin_snapshots_time ON coin_snapshots(taken_at);"
    "CREATE TABLE live_sessions ("
    "  id INTEGER PRIMARY KEY,"
    "  mint_id TEXT NOT NULL,"
    "  coin_name TEXT, coin_symbol TEXT, coin_description TEXT,"
    "  image_uri TEXT, thumbnail TEXT, creator TEXT,"
    "  market_cap REAL, usd_market_cap REAL, num_participants INTEGER NOT NULL DEFAULT 0,"
    "  nsfw INTEGER NOT NULL DEFAULT 0, website TEXT, twitter TEXT, telegram TEXT,"
    "  room_name TEXT, participant_sid TEXT,"
    "  status TEXT NOT NULL DEFAULT 'active',"
    "  record_session INTEGER NOT NULL DEFAULT 0,"
    "  recording_path TEXT,"
    "  error TEXT,"
    "  start_time INTEGER NOT NULL,"
    "  end_time INTEGER,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX live_sessions_mint ON live_sessions(mint_id);"
    "CREATE INDEX live_sessions_status ON live_sessions(status);"
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT"
    ");";

/* 002: recordings. One row per recorded file set (video and/or WAV) of a live session; times
 * are wall-clock ms, paths absolute. */
static const char migration_002_sqlite[] =
    "CREATE TABLE recordings ("
    "  id INTEGER PRIMARY KEY,"
    "  session_id INTEGER REFERENCES live_sessions(id),"
    "  mint_id TEXT NOT NULL,"
    "  video_path TEXT, audio_path TEXT,"
    "  container TEXT, video_codec TEXT, audio_codec TEXT, stored_video_codec TEXT,"
    "  width INTEGER, height INTEGER,"
    "  start_time INTEGER NOT NULL,"
    "  end_time INTEGER,"
    "  duration_ms INTEGER,"
    "  bytes INTEGER,"
    "  dropped INTEGER NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL CHECK (status IN ('recording', 'finished', 'failed', 'recovered')),"
    "  error TEXT"
    ");"
    "CREATE INDEX recordings_mint ON recordings(mint_id);"
    "CREATE INDEX recordings_status ON recordings(status);"
    "CREATE INDEX recordings_start ON recordings(start_time);";

static const char migration_001_pg[] =
    "CREATE TABLE pumpfun_coins ("
    "  mint_id TEXT PRIMARY KEY NOT NULL,"
    "  name TEXT, symbol TEXT, description TEXT,"
    "  image_uri TEXT, metadata_uri TEXT, banner_uri TEXT, thumbnail TEXT, video_uri TEXT,"
    "  website TEXT, twitter TEXT, telegram TEXT, creator TEXT,"
    "  bonding_curve TEXT, associated_bonding_curve TEXT, raydium_pool TEXT, pump_swap_pool TEXT,"
    "  market_id TEXT, program TEXT, platform TEXT, token_program TEXT,"
    "  market_cap DOUBLE PRECISION, usd_market_cap DOUBLE PRECISION,"
    "  ath_market_cap DOUBLE PRECISION, ath_market_cap_timestamp BIGINT,"
    "  virtual_sol_reserves BIGINT, virtual_token_reserves BIGINT,"
    "  real_sol_reserves BIGINT, real_token_reserves BIGINT, total_supply BIGINT,"
    "  complete BIGINT, hidden BIGINT, nsfw BIGINT, is_banned BIGINT, show_name BIGINT,"
    "  hide_banner BIGINT, inverted BIGINT, initialized BIGINT,"
    "  is_currently_live BIGINT, num_participants BIGINT, livestream_title TEXT,"
    "  livestream_ban_expiry BIGINT, livestream_downrank_score BIGINT, downrank_score BIGINT,"
    "  reply_count BIGINT, last_reply BIGINT,"
    "  created_timestamp BIGINT, last_trade_timestamp BIGINT, king_of_the_hill_timestamp BIGINT,"
    "  thumbnail_updated_at BIGINT, updated_at BIGINT,"
    "  username TEXT, profile_image TEXT,"
    "  raw_json TEXT NOT NULL,"
    "  first_seen BIGINT NOT NULL,"
    "  last_updated BIGINT NOT NULL"
    ");"
    "CREATE INDEX pumpfun_coins_live ON pumpfun_coins(is_currently_live, num_participants);"
    "CREATE TABLE coin_snapshots ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  mint_id TEXT NOT NULL,"
    "  taken_at BIGINT NOT NULL,"
    "  num_participants BIGINT,"
    "  market_cap DOUBLE PRECISION,"
    "  usd_market_cap DOUBLE PRECISION"
    ");"
    "CREATE INDEX coin_snapshots_mint_time ON coin_snapshots(mint_id, taken_at);"
    "CREATE INDEX coin_snapshots_time ON coin_snapshots(taken_at);"
    "CREATE TABLE live_sessions ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  mint_id TEXT NOT NULL,"
    "  coin_name TEXT, coin_symbol TEXT, coin_description TEXT,"
    "  image_uri TEXT, thumbnail TEXT, creator TEXT,"
    "  market_cap DOUBLE PRECISION, usd_market_cap DOUBLE PRECISION,"
    "  num_participants BIGINT NOT NULL DEFAULT 0,"
    "  nsfw BIGINT NOT NULL DEFAULT 0, website TEXT, twitter TEXT, telegram TEXT,"
    "  room_name TEXT, participant_sid TEXT,"
    "  status TEXT NOT NULL DEFAULT 'active',"
    "  record_session BIGINT NOT NULL DEFAULT 0,"
    "  recording_path TEXT,"
    "  error TEXT,"
    "  start_time BIGINT NOT NULL,"
    "  end_time BIGINT,"
    "  created_at BIGINT NOT NULL,"
    "  updated_at BIGINT NOT NULL"
    ");"
    "CREATE INDEX live_sessions_mint ON live_sessions(mint_id);"
    "CREATE INDEX live_sessions_status ON live_sessions(status);"
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT"
    ");";

static const char migration_002_pg[] =
    "CREATE TABLE recordings ("
    "  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  session_id BIGINT REFERENCES live_sessions(id),"
    "  mint_id TEXT NOT NULL,"
    "  video_path TEXT, audio_path TEXT,"
    "  container TEXT, video_codec TEXT, audio_codec TEXT, stored_video_codec TEXT,"
    "  width BIGINT, height BIGINT,"
    "  start_time BIGINT NOT NULL,"
    "  end_time BIGINT,"
    "  duration_ms BIGINT,"
    "  bytes BIGINT,"
    "  dropped BIGINT NOT NULL DEFAULT 0,"
    "  status TEXT NOT NULL CHECK (status IN ('recording', 'finished', 'failed', 'recovered')),"
    "  error TEXT"
    ");"
    "CREATE INDEX recordings_mint ON recordings(mint_id);"
    "CREATE INDEX recordings_status ON recordings(status);"
    "CREATE INDEX recordings_start ON recordings(start_time);";

/* 003: several nodes on one database (PostgreSQL; docs/internals/cluster.md). The tables exist
 * on SQLite too, so that both engines have one schema, but a single haven never fills them. Times
 * are the database's clock in ms: nodes' clocks never meet. */
static const char migration_003_sqlite[] =
    "CREATE TABLE nodes ("
    "  node_id TEXT PRIMARY KEY NOT NULL,"
    "  url TEXT NOT NULL,"
    "  started_at INTEGER NOT NULL,"
    "  heartbeat_at INTEGER NOT NULL,"
    "  sessions INTEGER NOT NULL DEFAULT 0,"
    "  viewers INTEGER NOT NULL DEFAULT 0"
    ");"
    "CREATE TABLE session_leases ("
    "  mint_id TEXT PRIMARY KEY NOT NULL,"
    "  owner TEXT NOT NULL,"
    "  lease_until INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'assigned'"
    "    CHECK (state IN ('assigned', 'running', 'failed')),"
    "  record INTEGER NOT NULL DEFAULT 0,"
    "  recording_id INTEGER,"
    "  continues_recording INTEGER,"
    "  takeovers INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT, error_code INTEGER,"
    "  report TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX session_leases_owner ON session_leases(owner);"
    "CREATE TABLE roster_share ("
    "  id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),"
    "  body TEXT, fetched_at INTEGER, fetched_by TEXT,"
    "  lease_owner TEXT, lease_until INTEGER NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO roster_share (id) VALUES (1);"
    "ALTER TABLE recordings ADD COLUMN node_id TEXT;"
    "ALTER TABLE recordings ADD COLUMN continuation_of INTEGER;"
    "ALTER TABLE live_sessions ADD COLUMN node_id TEXT;"
    "CREATE INDEX recordings_node ON recordings(node_id);";

static const char migration_003_pg[] = "CREATE TABLE nodes ("
                                       "  node_id TEXT PRIMARY KEY NOT NULL,"
                                       "  url TEXT NOT NULL,"
                                       "  started_at BIGINT NOT NULL,"
                                       "  heartbeat_at BIGINT NOT NULL,"
                                       "  sessions BIGINT NOT NULL DEFAULT 0,"
                                       "  viewers BIGINT NOT NULL DEFAULT 0"
                                       ");"
                                       "CREATE TABLE session_leases ("
                                       "  mint_id TEXT PRIMARY KEY NOT NULL,"
                                       "  owner TEXT NOT NULL,"
                                       "  lease_until BIGINT NOT NULL,"
                                       "  state TEXT NOT NULL DEFAULT 'assigned'"
                                       "    CHECK (state IN ('assigned', 'running', 'failed')),"
                                       "  record BIGINT NOT NULL DEFAULT 0,"
                                       "  recording_id BIGINT,"
                                       "  continues_recording BIGINT,"
                                       "  takeovers BIGINT NOT NULL DEFAULT 0,"
                                       "  error TEXT, error_code BIGINT,"
                                       "  report TEXT,"
                                       "  created_at BIGINT NOT NULL,"
                                       "  updated_at BIGINT NOT NULL"
                                       ");"
                                       "CREATE INDEX session_leases_owner ON session_leases(owner);"
                                       "CREATE TABLE roster_share ("
                                       "  id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),"
                                       "  body TEXT, fetched_at BIGINT, fetched_by TEXT,"
                                       "  lease_owner TEXT, lease_until BIGINT NOT NULL DEFAULT 0"
                                       ");"
                                       "INSERT INTO roster_share (id) VALUES (1);"
                                       "ALTER TABLE recordings ADD COLUMN node_id TEXT;"
                                       "ALTER TABLE recordings ADD COLUMN continuation_of BIGINT;"
                                       "ALTER TABLE live_sessions ADD COLUMN node_id TEXT;"
                                       "CREATE INDEX recordings_node ON recordings(node_id);";

const hv_store_migration hv_store_migrations[] = {
    {1, "coins, snapshots, live sessions", migration_001_sqlite, migration_001_pg},
    {2, "recordings", migration_002_sqlite, migration_002_pg},
    {3, "nodes, session leases, shared roster", migration_003_sqlite, migration_003_pg},
};
const size_t hv_store_n_migrations = G_N_ELEMENTS(hv_store_migrations);

const char *
hv_store_migration_sql(const hv_store_migration *m, hv_store_engine_kind kind)
{
    return kind == HV_STORE_PG ? m->pg : m->sqlite;
}

int
hv_store_latest_version(void)
{
    return hv_store_migrations[hv_store_n_migrations - 1].version;
}

static bool
refuse_newer(int current, GError **error)
{
    g_set_error(error, HV_ERROR, HV_EINVAL,
                "database schema version %d is newer than this haven understands (%d); "
                "use a newer haven or another HAVEN_DB",
                current, hv_store_latest_version());
    return false;
}

/* Applies m in one transaction unless another process did meanwhile; *current follows. */
static bool
apply(hv_store_conn *conn, const hv_store_migration *m, int *current, GError **error)
{
    if (!hv_store_conn_begin(conn, error)) {
        return false;
    }
    /* Under the lock, the version again: another haven may have migrated since. */
    if (!hv_store_conn_lock_schema(conn, error) ||
        (*current = hv_store_conn_version(conn, error)) < 0) {
        g_prefix_error(error, "cannot read the schema version: ");
        hv_store_conn_rollback(conn);
        return false;
    }
    if (*current > hv_store_latest_version()) {
        hv_store_conn_rollback(conn);
        return refuse_newer(*current, error);
    }
    if (*current >= m->version) {
        hv_store_conn_rollback(conn);
        return true;
    }
    if (!hv_store_conn_exec(conn, hv_store_migration_sql(m, hv_store_conn_kind(conn)), error) ||
        !hv_store_conn_set_version(conn, m->version, m->name, error)) {
        g_prefix_error(error, "migration %03d (%s) failed: ", m->version, m->name);
        hv_store_conn_rollback(conn);
        return false;
    }
    if (!hv_store_conn_commit(conn, error)) {
        g_prefix_error(error, "migration %03d (%s) failed: ", m->version, m->name);
        hv_store_conn_rollback(conn);
        return false;
    }
    *current = m->version;
    g_info("database migrated to version %d (%s)", m->version, m->name);
    return true;
}

bool
hv_store_migrate(hv_store_conn *conn, GError **error)
{
    int current = hv_store_conn_version(conn, error);
    if (current < 0) {
        g_prefix_error(error, "cannot read the schema version: ");
        return false;
    }
    if (current > hv_store_latest_version()) {
        return refuse_newer(current, error);
    }
    for (size_t i = 0; i < hv_store_n_migrations; i++) {
        if (hv_store_migrations[i].version > current &&
            !apply(conn, &hv_store_migrations[i], &current, error)) {
            return false;
        }
    }
    return true;
}

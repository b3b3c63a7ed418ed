/* Schema migrations, applied in order inside one transaction each; PRAGMA user_version records
 * the last one applied. Append new migrations; never edit one that has shipped. */
#include "store-private.h"

/* 001: pump.fun coin cache, snapshot history, live sessions (fields of the seed's
 * reference implementation), and a meta table for health checks. */
static const char migration_001[] =
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
static const char migration_002[] =
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

const hv_store_migration hv_store_migrations[] = {
    {1, "coins, snapshots, live sessions", migration_001},
    {2, "recordings", migration_002},
};
const size_t hv_store_n_migrations = G_N_ELEMENTS(hv_store_migrations);

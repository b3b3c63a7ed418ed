/* Internals of the store module shared with its unit tests. */
#ifndef HV_STORE_PRIVATE_H
#define HV_STORE_PRIVATE_H

#include "engine.h"
#include "store.h"

/* One schema migration: the same version and tables on both engines, in each one's dialect. */
typedef struct {
    int version;
    const char *name;
    const char *sqlite; /* SQL text for SQLite */
    const char *pg;     /* SQL text for PostgreSQL */
} hv_store_migration;

extern const hv_store_migration hv_store_migrations[];
extern const size_t hv_store_n_migrations;

/* The text of m for an engine. */
const char *hv_store_migration_sql(const hv_store_migration *m, hv_store_engine_kind kind);
/* Applies the migrations conn's database lacks, one transaction each; refuses a database from a
 * newer haven (HV_EINVAL). */
bool hv_store_migrate(hv_store_conn *conn, GError **error);

/* Sets error to "what: " + cause's message, taking cause (or "what: unknown error" when cause
 * is NULL); returns false. */
bool hv_store_fail(GError **error, GError *cause, const char *what);

/* (transfer none) the store's connection. */
hv_store_conn *hv_store_db(hv_store *store);

#endif

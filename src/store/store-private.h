/* Internals of the store module shared with its unit tests. */
#ifndef HV_STORE_PRIVATE_H
#define HV_STORE_PRIVATE_H

#include "store.h"

#include <sqlite3.h>

typedef struct {
    int version;
    const char *name;
    const char *sql;
} hv_store_migration;

extern const hv_store_migration hv_store_migrations[];
extern const size_t hv_store_n_migrations;

sqlite3 *hv_store_db(hv_store *store);

#endif

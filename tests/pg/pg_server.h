/* A throwaway PostgreSQL server for tests (tests/pg/README.md).
 *
 * hv_test_pg_start() runs initdb in a new temporary directory and starts the server with
 * pg_ctl, listening only on a Unix socket in that directory (no TCP port), with a "haven"
 * superuser (trust authentication) and a "haven" database. The server programs come from
 * /usr/lib/postgresql/<newest>/bin (Debian's place; HAVEN_PG_BINDIR overrides it) or PATH.
 * When the tests run as root, the server runs as the "postgres" user (else "nobody"): initdb
 * refuses root.
 *
 * A guard process, started first, stops the server (pg_ctl stop -m immediate) and removes the
 * directory when the test program closes its end of a pipe: in hv_test_pg_stop(), or when the
 * program crashes, fails an assertion or is killed.
 */
#ifndef HV_TEST_PG_SERVER_H
#define HV_TEST_PG_SERVER_H

#include <glib.h>

typedef struct hv_test_pg hv_test_pg;

/* (transfer full) a running server, or NULL + error saying why (no PostgreSQL installed,
 * initdb or pg_ctl failed: with their output). */
hv_test_pg *hv_test_pg_start(GError **error);
/* Stops the server and removes its directory (waits for both). */
void hv_test_pg_stop(hv_test_pg *pg);

/* (transfer none) The directory holding the data, the socket and server.log. */
const char *hv_test_pg_dir(const hv_test_pg *pg);
/* (transfer full) The URI of a new, empty database called name (a plain identifier). */
char *hv_test_pg_new_database(hv_test_pg *pg, const char *name);
/* (transfer full) The URI of a new, empty schema called name in the "haven" database: the
 * URI's options put it first on search_path, so tables are created in it. Much quicker than
 * a database (no files copied); what each test case uses. */
char *hv_test_pg_new_schema(hv_test_pg *pg, const char *name);
/* (transfer full) The URI of database db, with extra query parameters (nullable, "a=b&c=d")
 * and user info (nullable, "user:password"). */
char *hv_test_pg_uri(const hv_test_pg *pg, const char *db, const char *userinfo,
                     const char *params);

#endif

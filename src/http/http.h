/* The HTTP server: libwebsockets 4.1 running on haven's GLib main loop (lws' glib event-lib
 * plugin), serving the REST API. Main thread only: lws calls back on the loop's thread, and
 * every handler either answers from memory or parks the request until the catalog answers.
 */
#ifndef HV_HTTP_H
#define HV_HTTP_H

#include "cluster/cluster.h"
#include "core/config.h"
#include "live/live.h"
#include "pumpfun/pumpfun.h"
#include "store/store.h"

#include <glib.h>

typedef struct hv_http_server hv_http_server;

/* What the handlers read from (transfer none; all must outlive the server). */
typedef struct {
    hv_pf_catalog *catalog;
    hv_store *store;
    hv_live *live;
    hv_cluster *cluster; /* nullable: no cluster (single node) */
    const char *version;
    int64_t started_wall_ms;
} hv_http_deps;

/* Binds cfg->listen and serves on loop's context. Returns (transfer full) or NULL + error. */
hv_http_server *hv_http_server_new(const hv_config *cfg, GMainLoop *loop, const hv_http_deps *deps,
                                   GError **error);
/* Closes every connection (parked requests are dropped) and frees the server. */
void hv_http_server_free(hv_http_server *srv);

#endif

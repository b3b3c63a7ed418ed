/* haven's entry point: parse the configuration, create the modules in dependency order, run
 * the GLib main loop, and tear everything down in reverse order on SIGINT/SIGTERM.
 *
 * Everything here runs on the main thread, which owns all state (see docs/ARCHITECTURE.md).
 */
#include "cli_record.h"
#include "cluster/cluster.h"
#include "core/config.h"
#include "core/error.h"
#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "live/live.h"
#include "pumpfun/pumpfun.h"
#include "store/store.h"

#include <glib-unix.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef HAVEN_VERSION
#define HAVEN_VERSION "0.0.0"
#endif

#define PRUNE_INTERVAL_S  3600
#define SHUTDOWN_DRAIN_MS 15000 /* longest wait for recordings to finish their files */

extern char **environ;

typedef struct {
    hv_config *cfg;
    GMainLoop *loop;
    hv_store *store;
    hv_pf_client *client;
    hv_pf_catalog *catalog;
    hv_live *live;
    hv_cluster *cluster; /* NULL: one node (SQLite) */
    int recordings_lock; /* several nodes: the recordings directory's lock, else -1 */
    hv_http_server *http;
    guint prune_id;
} app;

/* Every coin the catalog fetched goes into the store in one transaction. */
static void
on_catalog_coins(GPtrArray *streams, void *user_data)
{
    app *a = user_data;
    g_autofree json_t **coins = g_new(json_t *, streams->len);
    for (guint i = 0; i < streams->len; i++) {
        coins[i] = ((hv_pf_stream *)g_ptr_array_index(streams, i))->raw;
    }
    g_autoptr(GError) error = NULL;
    if (!hv_store_upsert_coins(a->store, coins, streams->len, hv_wall_ms(),
                               a->cfg->snapshot_interval_ms, &error)) {
        g_warning("could not store %u coin(s): %s", streams->len, error->message);
    }
}

/* Several nodes: one of them fetches the live roster per TTL for all (a lease in the shared
 * store); the others read what it stored. fetched_at is the database's clock, the age the
 * local wall clock's: nodes should run NTP. The lease lasts as long as other nodes wait before
 * fetching themselves (the upstream timeout). */
static hv_pf_share_answer
on_catalog_share_claim(int64_t ttl_ms, char **body_out, int64_t *age_ms_out, void *user_data)
{
    app *a = user_data;
    g_autoptr(GError) error = NULL;
    int64_t fetched_at = 0;
    int rc = hv_store_roster_claim(a->store, hv_store_node_id(a->store), ttl_ms,
                                   a->cfg->upstream_timeout_ms, body_out, &fetched_at, &error);
    if (rc < 0) {
        g_warning("shared roster: %s", error->message);
        return HV_PF_SHARE_ERROR;
    }
    if (*body_out != NULL) {
        *age_ms_out = MAX(hv_wall_ms() - fetched_at, 0);
    }
    return rc == HV_STORE_ROSTER_FRESH   ? HV_PF_SHARE_FRESH
           : rc == HV_STORE_ROSTER_FETCH ? HV_PF_SHARE_FETCH
                                         : HV_PF_SHARE_BUSY;
}

static void
on_catalog_share_publish(const char *body, bool ok, void *user_data)
{
    app *a = user_data;
    g_autoptr(GError) error = NULL;
    if (!(ok ? hv_store_roster_publish(a->store, hv_store_node_id(a->store), body, &error)
             : hv_store_roster_release(a->store, hv_store_node_id(a->store), &error))) {
        g_warning("shared roster: %s", error->message);
    }
}

static gboolean
on_prune_timer(gpointer user_data)
{
    app *a = user_data;
    g_autoptr(GError) error = NULL;
    int64_t n =
        hv_store_prune_snapshots(a->store, hv_wall_ms(), a->cfg->snapshot_retention_ms, &error);
    if (n < 0) {
        g_warning("pruning coin snapshots failed: %s", error->message);
    } else if (n > 0) {
        g_info("pruned %" G_GINT64_FORMAT " coin snapshot(s) past retention", n);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean
on_signal(gpointer user_data)
{
    app *a = user_data;
    g_info("shutting down");
    g_main_loop_quit(a->loop);
    return G_SOURCE_CONTINUE;
}

static void
app_teardown(app *a)
{
    /* Reverse order of creation: nothing is freed while something that uses it still runs.
     * Sessions end first, so viewers are told why; a short drain lets their close frames and
     * LiveKit leave messages go out before the server and the loop go away. */
    /* The other nodes take this one's sessions over at once. The cluster stays allocated (and
     * answers as a node that left) until the HTTP server, which asks it, is gone. */
    hv_cluster_leave(a->cluster);
    if (a->live != NULL) {
        /* Recordings finish their files (muxer end of stream, rename) on the loop: wait for
         * them, bounded, before anything they use goes away. */
        hv_live_shutdown(a->live);
        int64_t start = hv_now_ms();
        while (hv_now_ms() - start < 300 ||
               (hv_live_busy(a->live) && hv_now_ms() - start < SHUTDOWN_DRAIN_MS)) {
            if (!g_main_context_iteration(NULL, FALSE)) {
                g_usleep(5000);
            }
        }
        hv_live_free(a->live);
        a->live = NULL;
    }
    hv_http_server_free(a->http);
    hv_cluster_free(a->cluster);
    hv_pf_catalog_free(a->catalog);
    hv_pf_client_free(a->client);
    if (a->prune_id != 0) {
        g_source_remove(a->prune_id);
    }
    hv_store_close(a->store);
    if (a->recordings_lock >= 0) {
        close(a->recordings_lock);
    }
    if (a->loop != NULL) {
        g_main_loop_unref(a->loop);
    }
    hv_config_free(a->cfg);
}

int
main(int argc, char **argv)
{
    /* A file-size limit (ulimit -f) must fail a recording with an error, not kill haven. */
    (void)signal(SIGXFSZ, SIG_IGN);
    if (argc >= 2 && strcmp(argv[1], "record") == 0) {
        return hv_cli_record(argc, argv);
    }
    app a = {.recordings_lock = -1};
    g_autoptr(GError) error = NULL;
    hv_config_action action;
    a.cfg = hv_config_load(argc, argv, environ, &action, &error);
    if (a.cfg == NULL) {
        fprintf(stderr, "haven: %s\n", error->message);
        return HV_EXIT_CONFIG;
    }
    /* Before anything binds; --print-config shows only a configuration that would start. */
    if ((action == HV_CONFIG_ACTION_RUN || action == HV_CONFIG_ACTION_PRINT_CONFIG) &&
        !hv_config_check_exposure(a.cfg, &error)) {
        fprintf(stderr, "haven: %s\n", error->message);
        hv_config_free(a.cfg);
        return HV_EXIT_CONFIG;
    }
    switch (action) {
    case HV_CONFIG_ACTION_HELP:
        hv_config_print_help(stdout, "haven");
        hv_config_free(a.cfg);
        return 0;
    case HV_CONFIG_ACTION_PRINT_CONFIG:
        hv_config_print(a.cfg, stdout);
        hv_config_free(a.cfg);
        return 0;
    case HV_CONFIG_ACTION_PRINT_MARKDOWN:
        hv_config_print_markdown(stdout);
        hv_config_free(a.cfg);
        return 0;
    case HV_CONFIG_ACTION_VERSION:
        printf("haven %s\n", HAVEN_VERSION);
        hv_config_free(a.cfg);
        return 0;
    case HV_CONFIG_ACTION_RUN:
    default:
        break;
    }
    hv_log_init(a.cfg->log_level, g_strcmp0(a.cfg->log_format, "json") == 0);
    hv_log_add_secret(a.cfg->api_token); /* never printed in full, whatever a line carries */
    /* Frames (tens of KB) and lws' copies of partially sent messages are allocated and freed
     * all the time with many viewers; without this, glibc gives the memory back and every
     * reuse faults fresh pages in (6% of the CPU at 200 viewers in perf). */
    (void)mallopt(M_TRIM_THRESHOLD, 32 * 1024 * 1024);
    (void)mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);

    a.store = hv_store_open(a.cfg->db_path, &error);
    if (a.store == NULL) {
        g_critical("%s", error->message);
        app_teardown(&a);
        return 1;
    }
    on_prune_timer(&a);
    a.prune_id = g_timeout_add_seconds(PRUNE_INTERVAL_S, on_prune_timer, &a);

    a.loop = g_main_loop_new(NULL, FALSE);
    a.client = hv_pf_client_new(a.cfg);
    hv_pf_catalog_callbacks cb = {.on_coins = on_catalog_coins};
    if (hv_store_is_shared(a.store)) {
        /* Before hv_live_new: recovery at startup touches only this node's rows. */
        g_autofree char *node_id = hv_cluster_resolve_node_id(a.cfg);
        hv_store_set_node_id(a.store, node_id);
        a.recordings_lock = hv_cluster_lock_recordings_dir(a.cfg, node_id, &error);
        if (a.recordings_lock < 0) {
            g_critical("%s", error->message);
            app_teardown(&a);
            return 1;
        }
        cb.share_claim = on_catalog_share_claim;
        cb.share_publish = on_catalog_share_publish;
    }
    a.catalog = hv_pf_catalog_new(a.cfg, a.client, &cb, &a);
    a.live = hv_live_new(a.cfg, a.client, a.catalog, a.store);
    (void)hv_live_recover_recordings(a.live);
    a.cluster = hv_cluster_new(a.cfg, a.store, a.live, &error);
    if (a.cluster == NULL && error != NULL) {
        g_critical("%s", error->message);
        app_teardown(&a);
        return 1;
    }
    hv_http_deps deps = {
        .catalog = a.catalog,
        .store = a.store,
        .live = a.live,
        .cluster = a.cluster,
        .version = HAVEN_VERSION,
        .started_wall_ms = hv_wall_ms(),
    };
    a.http = hv_http_server_new(a.cfg, a.loop, &deps, &error);
    if (a.http == NULL) {
        g_critical("%s", error->message);
        app_teardown(&a);
        return 1;
    }
    guint sigint = g_unix_signal_add(SIGINT, on_signal, &a);
    guint sigterm = g_unix_signal_add(SIGTERM, on_signal, &a);
    g_message("haven %s listening on http://%s:%d (database %s, pump.fun %s)", HAVEN_VERSION,
              a.cfg->listen_host, a.cfg->listen_port, hv_store_path(a.store),
              a.cfg->pumpfun_frontend_api);
    if (a.cfg->api_token[0] != '\0') {
        g_message("the API and the viewer WebSocket need the API token (HAVEN_API_TOKEN)");
    } else if (!hv_config_host_is_loopback(a.cfg->listen_host)) {
        g_warning("serving %s without an API token (--insecure-public): anyone who can reach it "
                  "can start sessions, record and delete recordings",
                  a.cfg->listen);
    }

    g_main_loop_run(a.loop);

    g_source_remove(sigint);
    g_source_remove(sigterm);
    app_teardown(&a);
    g_message("stopped");
    return 0;
}

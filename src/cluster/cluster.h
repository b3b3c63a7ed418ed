/* cluster: several havens sharing one PostgreSQL database (docs/internals/cluster.md).
 *
 * Each haven is a node with an id and an advertised URL (HAVEN_NODE_ID, HAVEN_NODE_URL). Every
 * 2 s it writes a heartbeat row with its load and renews the leases of the sessions it owns.
 * A session (one mint) is owned by one node at a time through a row in session_leases: a start
 * on any node places it on the least loaded live node; the owner notices the row and joins the
 * stream; a node whose leases ran out (no heartbeat for HAVEN_NODE_TIMEOUT, default 10 s) loses
 * its sessions to the others, and a recording it was writing continues in a new file on the new
 * owner, marked as a continuation. Without PostgreSQL there is no cluster: hv_cluster_new
 * returns NULL and every function here is NULL-safe (a single node owns everything).
 *
 * Main thread only.
 */
#ifndef HV_CLUSTER_H
#define HV_CLUSTER_H

#include "core/config.h"
#include "live/live.h"
#include "store/store.h"

#include <glib.h>
#include <jansson.h>
#include <stdbool.h>

typedef struct hv_cluster hv_cluster;

/* This node's id: HAVEN_NODE_ID, else <hostname>:<listen port>. (transfer full) Set it on the
 * store (hv_store_set_node_id) before hv_live_new, whose startup recovery it scopes. */
char *hv_cluster_resolve_node_id(const hv_config *cfg);

/* NULL (and no error) when the store is not shared (SQLite): one node, no cluster. Otherwise
 * joins the cluster (a first heartbeat) and starts the timers. (transfer full) or NULL + error
 * when the database refuses the first heartbeat. cfg, store, live must outlive it. */
hv_cluster *hv_cluster_new(const hv_config *cfg, hv_store *store, hv_live *live, GError **error);
/* Leaves the cluster: the node's row goes and its leases expire at once, so the other nodes
 * take its sessions over within a heartbeat. Call before hv_live_shutdown. NULL-safe. */
void hv_cluster_leave(hv_cluster *c);
void hv_cluster_free(hv_cluster *c);

/* Several nodes on one machine must not share a recordings directory: startup recovery would
 * finish another node's files while it writes them. Takes an exclusive lock on
 * <recordings_dir>/.haven-node.lock (released when the process exits, however it exits) and
 * writes node_id into it. Returns the lock's fd (keep it open), or -1 + error naming the node
 * that holds it. */
int hv_cluster_lock_recordings_dir(const hv_config *cfg, const char *node_id, GError **error);

/* How a node publishes a session in its lease row (called every heartbeat for each session it
 * owns): (transfer full) {"session": an /api/live-sessions/active entry, "started": the start
 * answer}. The HTTP server sets it (it owns the JSON forms); without it nothing is published. */
typedef json_t *(*hv_cluster_render_fn)(hv_live_session *s, void *user_data);
void hv_cluster_set_renderer(hv_cluster *c, hv_cluster_render_fn render, void *user_data);

/* (transfer none) This node's id and URL; NULL when c is NULL. */
const char *hv_cluster_node_id(const hv_cluster *c);
const char *hv_cluster_node_url(const hv_cluster *c);

/* The base URL (http://host:port, no trailing slash) of the live node that owns mint's session
 * when that is another node; NULL when this node owns it, nobody does, or c is NULL.
 * (transfer full) */
char *hv_cluster_remote_owner_url(hv_cluster *c, const char *mint_id);

/* The base URL of a live node by id, (transfer full) or NULL when it is not live (or c NULL). */
char *hv_cluster_node_url_of(hv_cluster *c, const char *node_id);

/* A start through the cluster. The callback gets either the local session (remote == NULL), or,
 * when another node owns the session, the start answer that node published (remote, transfer
 * none: a JSON object as POST /api/live-sessions/start answers, plus "node_id"/"node_url"); or
 * an error in the HV_ERROR domain as hv_live_start's. */
typedef void (*hv_cluster_start_cb)(hv_live_session *local, json_t *remote, const GError *error,
                                    void *user_data);
typedef struct hv_cluster_op hv_cluster_op;
/* Places mint's session (an existing one wherever it runs, else on the least loaded live node)
 * and answers when it joined or failed. Returns NULL when the callback already ran. */
hv_cluster_op *hv_cluster_start(hv_cluster *c, const char *mint_id, bool record,
                                hv_cluster_start_cb cb, void *user_data);
void hv_cluster_op_cancel(hv_cluster_op *op);

/* (transfer full) The sessions other live nodes own, as they published them: an array of JSON
 * objects like /api/live-sessions/active's entries, each with "node_id" and "node_url". An empty
 * array when c is NULL. */
json_t *hv_cluster_remote_sessions(hv_cluster *c);

/* The recording switch of mint's session, wherever it runs: the lease remembers it and the
 * owner follows within a reconcile tick. Returns (transfer full) the owner's node id, or NULL
 * when no live node owns the session (or c is NULL). */
char *hv_cluster_set_record(hv_cluster *c, const char *mint_id, bool on);

/* Stops mint's session on the node that owns it (its lease is released; the owner stops the
 * session within a reconcile tick). False when no live node owns it. */
bool hv_cluster_stop_remote(hv_cluster *c, const char *mint_id);

#endif

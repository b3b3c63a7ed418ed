/* The cluster: this node's heartbeat, its leases, placements and takeovers
 * (docs/internals/cluster.md). The database holds what should run where (session_leases); each
 * node makes its own sessions match what it owns, on a reconcile tick:
 *
 *   a lease of ours with no session here   → start it (a placement or a takeover); a start that
 *                                             fails marks the lease "failed" for the starter
 *   a lease of ours whose session ended    → release it
 *   a session here with no lease of ours   → claim it; when another live node owns the mint,
 *                                             stop ours (this node was cut off and replaced)
 *
 * The heartbeat (every HEARTBEAT_MS) renews our leases, publishes each session's report in its
 * lease row (what other nodes list and answer starts with), and takes over the leases of nodes
 * whose heartbeat stopped. Every store call is one short transaction on the main loop.
 */
#include "cluster.h"

#include "core/error.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#define HEARTBEAT_MS       2000
#define RECONCILE_MS       500
#define REMOTE_POLL_MS     200
#define FAILED_LEASE_KEEP  30000 /* a failed start's row stays this long for its starter */
#define REMOTE_START_EXTRA 15000 /* beyond the LiveKit connect timeout */
/* While the database does not answer, a heartbeat is tried this often, and nothing else: each
 * try may block the loop for libpq's connect timeout (5 s). */
#define DOWN_RETRY_MS      10000

struct hv_cluster {
    const hv_config *cfg;
    hv_store *store;
    hv_live *live;
    char *node_id, *node_url;
    hv_cluster_render_fn render;
    void *render_data;
    guint heartbeat_id, reconcile_id;
    GHashTable *running;  /* mint → NULL: sessions this node runs for a lease of its own */
    GHashTable *starting; /* mint → lease_start* (owned) */
    GList *ops;           /* hv_cluster_op* waiting for another node's start */
    bool left;
    bool store_down;     /* last heartbeat failed: logged once until it works again */
    int64_t next_try_ms; /* store_down: the next heartbeat try (hv_now_ms) */
};

typedef struct {
    hv_cluster *c;
    char mint[64];
    hv_live_op *op;
} lease_start;

struct hv_cluster_op {
    hv_cluster *c;
    char mint[64];
    hv_cluster_start_cb cb;
    void *user_data;
    hv_live_op *local;
    guint poll_id;
    int64_t deadline_ms;
};

static void reconcile(hv_cluster *c);

/* ---- identity --------------------------------------------------------------------------- */

char *
hv_cluster_resolve_node_id(const hv_config *cfg)
{
    if (cfg->node_id[0] != '\0') {
        return g_strdup(cfg->node_id);
    }
    char host[256] = "";
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
        g_strlcpy(host, "haven", sizeof(host));
    }
    return g_strdup_printf("%s:%d", host, cfg->listen_port);
}

static char *
default_node_url(const hv_config *cfg)
{
    bool v6 = strchr(cfg->listen_host, ':') != NULL;
    const char *host = cfg->listen_host;
    /* A wildcard address is no address to reach: name the machine instead. */
    char name[256] = "";
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0) {
        if (gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0') {
            host = name;
            v6 = false;
        }
    }
    return g_strdup_printf("http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
                           cfg->listen_port);
}

int
hv_cluster_lock_recordings_dir(const hv_config *cfg, const char *node_id, GError **error)
{
    if (g_mkdir_with_parents(cfg->recordings_dir, 0755) != 0) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot create the recordings directory %s: %s",
                    cfg->recordings_dir, g_strerror(errno));
        return -1;
    }
    g_autofree char *path = g_build_filename(cfg->recordings_dir, ".haven-node.lock", NULL);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot open %s: %s", path, g_strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char holder[256] = "";
        ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        g_strchomp(holder);
        g_set_error(error, HV_ERROR, HV_EINVAL,
                    "the recordings directory %s is in use by node %s: give every node its own "
                    "HAVEN_RECORDINGS_DIR",
                    cfg->recordings_dir, holder[0] != '\0' ? holder : "(unknown)");
        close(fd);
        return -1;
    }
    g_autofree char *line = g_strdup_printf("%s\n", node_id);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, strlen(line), 0) < 0) {
        g_debug("cannot write %s: %s", path, g_strerror(errno)); /* the lock is what matters */
    }
    return fd;
}

const char *
hv_cluster_node_id(const hv_cluster *c)
{
    return c != NULL ? c->node_id : NULL;
}

const char *
hv_cluster_node_url(const hv_cluster *c)
{
    return c != NULL ? c->node_url : NULL;
}

void
hv_cluster_set_renderer(hv_cluster *c, hv_cluster_render_fn render, void *user_data)
{
    if (c != NULL) {
        c->render = render;
        c->render_data = user_data;
    }
}

/* ---- publishing ------------------------------------------------------------------------- */

/* (transfer full, nullable) s's report as JSON text, for its lease row. */
static char *
render_report(hv_cluster *c, hv_live_session *s)
{
    if (c->render == NULL) {
        return NULL;
    }
    json_t *j = c->render(s, c->render_data);
    char *text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

static void
publish(hv_cluster *c, const char *mint)
{
    hv_live_session *s = hv_live_find(c->live, mint);
    if (s == NULL) {
        return;
    }
    hv_live_session_report r;
    hv_live_session_report_get(s, &r);
    g_autofree char *report = render_report(c, s);
    g_autoptr(GError) error = NULL;
    if (!hv_store_lease_update(c->store, mint, c->node_id, "running", report,
                               r.recording.recording_id, 0, NULL, &error)) {
        g_warning("cluster: cannot publish %s: %s", mint, error->message);
    }
}

/* ---- our leases: starting what we own ------------------------------------------------------ */

static void
on_lease_started(hv_live_session *s, const GError *error, void *user_data)
{
    lease_start *ls = user_data;
    hv_cluster *c = ls->c;
    ls->op = NULL;
    g_autoptr(GError) db_error = NULL;
    if (s != NULL) {
        g_hash_table_add(c->running, g_strdup(ls->mint));
        g_info("cluster: %s joined here", ls->mint);
        publish(c, ls->mint);
    } else {
        g_info("cluster: %s did not start here: %s", ls->mint, error->message);
        if (!hv_store_lease_update(c->store, ls->mint, c->node_id, "failed", NULL, 0, error->code,
                                   error->message, &db_error)) {
            g_warning("cluster: %s: %s", ls->mint, db_error->message);
        }
    }
    g_hash_table_remove(c->starting, ls->mint); /* frees ls */
}

static void
lease_start_free(lease_start *ls)
{
    if (ls->op != NULL) {
        hv_live_op_cancel(ls->op);
    }
    g_free(ls);
}

static void
start_for_lease(hv_cluster *c, const hv_store_lease *l)
{
    lease_start *ls = g_new0(lease_start, 1);
    ls->c = c;
    g_strlcpy(ls->mint, l->mint_id, sizeof(ls->mint));
    g_hash_table_insert(c->starting, g_strdup(l->mint_id), ls);
    if (l->continues_recording > 0) {
        hv_live_note_continuation(c->live, l->mint_id, l->continues_recording);
    }
    g_info("cluster: starting %s here (%s%s)", l->mint_id,
           l->takeovers > 0 ? "taken over from a lost node" : "placed here",
           l->record ? ", recording" : "");
    ls->op = hv_live_start(c->live, l->mint_id, l->record, on_lease_started, ls);
}

/* One lease of ours against what runs here. */
static void
reconcile_lease(hv_cluster *c, const hv_store_lease *l)
{
    GError *error = NULL;
    if (strcmp(l->state, "failed") == 0) {
        if (l->updated_age_ms > FAILED_LEASE_KEEP) {
            (void)hv_store_lease_release(c->store, l->mint_id, c->node_id, NULL);
        }
        return;
    }
    if (g_hash_table_contains(c->starting, l->mint_id)) {
        return;
    }
    hv_live_session *s = hv_live_find(c->live, l->mint_id);
    if (s != NULL) {
        if (!g_hash_table_contains(c->running, l->mint_id)) {
            g_hash_table_add(c->running, g_strdup(l->mint_id));
            publish(c, l->mint_id);
        }
        hv_live_session_report r;
        hv_live_session_report_get(s, &r);
        /* The lease's record flag is the switch any node may turn (hv_cluster_set_record). A
         * recording that failed here turned itself off: the lease follows, no retry loop. */
        if (l->record && !r.recording.wanted && g_strcmp0(r.recording.status, "failed") == 0) {
            (void)hv_store_lease_set_record(c->store, l->mint_id, false, NULL);
            return;
        }
        if (l->record != r.recording.wanted &&
            !hv_live_set_recording(c->live, l->mint_id, l->record, &error)) {
            g_warning("cluster: %s: cannot turn recording %s: %s", l->mint_id,
                      l->record ? "on" : "off", error->message);
            g_clear_error(&error);
        }
        return;
    }
    if (g_hash_table_remove(c->running, l->mint_id)) {
        /* It ran here and ended (stopped, idle, the stream is over): the lease goes with it. */
        g_info("cluster: %s ended here; releasing its lease", l->mint_id);
        (void)hv_store_lease_release(c->store, l->mint_id, c->node_id, NULL);
        return;
    }
    start_for_lease(c, l);
}

/* Sessions running here without a lease of ours: claim them, or give way to the owner. */
static void
reconcile_local(hv_cluster *c, GHashTable *ours)
{
    g_autoptr(GArray) reports = hv_live_reports(c->live);
    for (guint i = 0; i < reports->len; i++) {
        const hv_live_session_report *r = &g_array_index(reports, hv_live_session_report, i);
        if (!r->joined || g_hash_table_contains(ours, r->mint)) {
            continue;
        }
        g_autoptr(GError) error = NULL;
        g_autoptr(hv_store_lease) l = hv_store_lease_claim(
            c->store, r->mint, c->node_id, r->record_session, c->cfg->node_timeout_ms, &error);
        if (l == NULL) {
            g_warning("cluster: cannot claim %s: %s", r->mint, error->message);
        } else if (strcmp(l->owner, c->node_id) == 0) {
            g_hash_table_add(c->running, g_strdup(r->mint));
            publish(c, r->mint);
        } else {
            g_warning("cluster: %s is owned by node %s now; stopping it here", r->mint, l->owner);
            g_hash_table_remove(c->running, r->mint);
            (void)hv_live_stop(c->live, r->mint);
        }
    }
}

static void
reconcile(hv_cluster *c)
{
    if (c->left || c->store_down) {
        return; /* the sessions here run on; the heartbeat finds out when the database is back */
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) leases = hv_store_leases(c->store, c->node_id, &error);
    if (leases == NULL) {
        g_debug("cluster: cannot read our leases: %s", error->message);
        return;
    }
    g_autoptr(GHashTable) ours = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < leases->len; i++) {
        const hv_store_lease *l = g_ptr_array_index(leases, i);
        g_hash_table_add(ours, l->mint_id);
        reconcile_lease(c, l);
    }
    /* Sessions we ran whose lease is gone (released by a stop on another node, or taken by
     * another node while we were cut off): stop them. */
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, c->running);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(ours, key)) {
            g_info("cluster: %s is no longer ours; stopping it here", (char *)key);
            (void)hv_live_stop(c->live, key);
            g_hash_table_iter_remove(&it);
        }
    }
    reconcile_local(c, ours);
}

static gboolean
on_reconcile(gpointer user_data)
{
    reconcile(user_data);
    return G_SOURCE_CONTINUE;
}

/* ---- heartbeat ---------------------------------------------------------------------------- */

static void
heartbeat(hv_cluster *c)
{
    g_autoptr(GError) error = NULL;
    if (c->store_down && hv_now_ms() < c->next_try_ms) {
        return;
    }
    if (!hv_store_node_heartbeat(c->store, c->node_id, c->node_url, hv_live_session_count(c->live),
                                 hv_live_viewer_count(c->live), c->cfg->node_timeout_ms, &error)) {
        if (!c->store_down) {
            g_warning("cluster: heartbeat failed: %s (the other nodes take this node's "
                      "sessions over after %" G_GINT64_FORMAT " ms without one)",
                      error->message, c->cfg->node_timeout_ms);
        }
        c->store_down = true;
        c->next_try_ms = hv_now_ms() + DOWN_RETRY_MS;
        return;
    }
    if (c->store_down) {
        g_message("cluster: heartbeat works again");
        c->store_down = false;
    }
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, c->running);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        publish(c, key);
    }
    int64_t taken = hv_store_leases_take_over(c->store, c->cfg->node_timeout_ms,
                                              c->cfg->node_timeout_ms, &error);
    if (taken < 0) {
        g_warning("cluster: takeover check failed: %s", error->message);
    } else if (taken > 0) {
        g_message("cluster: %" G_GINT64_FORMAT " session(s) of a lost node reassigned", taken);
        reconcile(c);
    }
}

static gboolean
on_heartbeat(gpointer user_data)
{
    heartbeat(user_data);
    return G_SOURCE_CONTINUE;
}

/* ---- lifecycle ---------------------------------------------------------------------------- */

hv_cluster *
hv_cluster_new(const hv_config *cfg, hv_store *store, hv_live *live, GError **error)
{
    if (!hv_store_is_shared(store)) {
        return NULL;
    }
    hv_cluster *c = g_new0(hv_cluster, 1);
    c->cfg = cfg;
    c->store = store;
    c->live = live;
    c->node_id = hv_store_node_id(store) != NULL ? g_strdup(hv_store_node_id(store))
                                                 : hv_cluster_resolve_node_id(cfg);
    c->node_url = cfg->node_url[0] != '\0' ? g_strdup(cfg->node_url) : default_node_url(cfg);
    /* No trailing slash: paths are appended. */
    size_t n = strlen(c->node_url);
    while (n > 0 && c->node_url[n - 1] == '/') {
        c->node_url[--n] = '\0';
    }
    c->running = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    c->starting =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)lease_start_free);
    if (!hv_store_node_heartbeat(store, c->node_id, c->node_url, 0, 0, cfg->node_timeout_ms,
                                 error)) {
        g_prefix_error(error, "cannot join the cluster: ");
        hv_cluster_free(c);
        return NULL;
    }
    c->heartbeat_id = g_timeout_add(HEARTBEAT_MS, on_heartbeat, c);
    c->reconcile_id = g_timeout_add(RECONCILE_MS, on_reconcile, c);
    g_message("cluster: node %s (%s) joined; a node silent for %" G_GINT64_FORMAT
              " ms is taken over",
              c->node_id, c->node_url, cfg->node_timeout_ms);
    return c;
}

static void
op_finish(hv_cluster_op *op, hv_live_session *local, json_t *remote, const GError *error)
{
    hv_cluster *c = op->c;
    c->ops = g_list_remove(c->ops, op);
    if (op->poll_id != 0) {
        g_source_remove(op->poll_id);
    }
    op->cb(local, remote, error, op->user_data);
    g_free(op);
}

void
hv_cluster_leave(hv_cluster *c)
{
    if (c == NULL || c->left) {
        return;
    }
    c->left = true;
    g_clear_handle_id(&c->heartbeat_id, g_source_remove);
    g_clear_handle_id(&c->reconcile_id, g_source_remove);
    g_autoptr(GError) error = NULL;
    if (!hv_store_node_leave(c->store, c->node_id, &error)) {
        g_warning("cluster: leaving: %s", error->message);
    } else {
        g_message("cluster: node %s left; its sessions go to the other nodes", c->node_id);
    }
    g_hash_table_remove_all(c->starting);
    while (c->ops != NULL) {
        hv_cluster_op *op = c->ops->data;
        if (op->local != NULL) {
            hv_live_op_cancel(op->local);
            op->local = NULL;
        }
        g_autoptr(GError) gone = g_error_new(HV_ERROR, HV_ECLOSED, "haven is shutting down");
        op_finish(op, NULL, NULL, gone);
    }
}

void
hv_cluster_free(hv_cluster *c)
{
    if (c == NULL) {
        return;
    }
    hv_cluster_leave(c);
    g_hash_table_destroy(c->starting);
    g_hash_table_destroy(c->running);
    g_free(c->node_id);
    g_free(c->node_url);
    g_free(c);
}

/* ---- what other nodes run ------------------------------------------------------------------ */

char *
hv_cluster_node_url_of(hv_cluster *c, const char *node_id)
{
    if (c == NULL || node_id == NULL) {
        return NULL;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) nodes = hv_store_live_nodes(c->store, c->cfg->node_timeout_ms, &error);
    for (guint i = 0; nodes != NULL && i < nodes->len; i++) {
        const hv_store_node *n = g_ptr_array_index(nodes, i);
        if (strcmp(n->node_id, node_id) == 0) {
            return g_strdup(n->url);
        }
    }
    return NULL;
}

char *
hv_cluster_remote_owner_url(hv_cluster *c, const char *mint_id)
{
    if (c == NULL || c->left || c->store_down) {
        return NULL;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_lease) l = hv_store_lease_get(c->store, mint_id, &error);
    if (l == NULL || l->expired || strcmp(l->owner, c->node_id) == 0 || l->owner_url == NULL) {
        return NULL;
    }
    return g_strdup(l->owner_url);
}

/* A published report part ("session" or "started") with the owner's fields added. */
static json_t *
remote_part(const hv_store_lease *l, const char *part)
{
    json_error_t jerr;
    g_autoptr(json_t) report = l->report != NULL ? json_loads(l->report, 0, &jerr) : NULL;
    json_t *p = json_object_get(report, part);
    if (!json_is_object(p)) {
        return NULL;
    }
    json_t *out = json_deep_copy(p);
    json_object_set_new(out, "node_id", json_string(l->owner));
    json_object_set_new(out, "node_url", json_string(l->owner_url));
    return out;
}

json_t *
hv_cluster_remote_sessions(hv_cluster *c)
{
    json_t *out = json_array();
    if (c == NULL || c->left || c->store_down) {
        return out;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) leases = hv_store_leases(c->store, NULL, &error);
    if (leases == NULL) {
        g_warning("cluster: cannot list the other nodes' sessions: %s", error->message);
        return out;
    }
    for (guint i = 0; i < leases->len; i++) {
        const hv_store_lease *l = g_ptr_array_index(leases, i);
        if (l->expired || l->owner_url == NULL || strcmp(l->owner, c->node_id) == 0 ||
            strcmp(l->state, "running") != 0) {
            continue;
        }
        json_t *s = remote_part(l, "session");
        if (s != NULL) {
            json_array_append_new(out, s);
        }
    }
    return out;
}

char *
hv_cluster_set_record(hv_cluster *c, const char *mint_id, bool on)
{
    if (c == NULL || c->left) {
        return NULL;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_lease) l = hv_store_lease_get(c->store, mint_id, &error);
    if (l == NULL || l->expired || strcmp(l->state, "failed") == 0 ||
        !hv_store_lease_set_record(c->store, mint_id, on, &error)) {
        if (error != NULL) {
            g_warning("cluster: recording switch of %s: %s", mint_id, error->message);
        }
        return NULL;
    }
    return g_strdup(l->owner);
}

bool
hv_cluster_stop_remote(hv_cluster *c, const char *mint_id)
{
    if (c == NULL || c->left) {
        return false;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_lease) l = hv_store_lease_get(c->store, mint_id, &error);
    if (l == NULL || l->expired || strcmp(l->owner, c->node_id) == 0 ||
        strcmp(l->state, "failed") == 0) {
        return false;
    }
    return hv_store_lease_release(c->store, mint_id, l->owner, NULL);
}

/* ---- starts ------------------------------------------------------------------------------- */

static void
on_local_started(hv_live_session *s, const GError *error, void *user_data)
{
    hv_cluster_op *op = user_data;
    op->local = NULL;
    if (s != NULL) {
        g_hash_table_add(op->c->running, g_strdup(op->mint));
        publish(op->c, op->mint);
    } else {
        (void)hv_store_lease_release(op->c->store, op->mint, op->c->node_id, NULL);
    }
    op_finish(op, s, NULL, error);
}

/* Polls the lease another node owns until it published its start, failed, or vanished. */
static gboolean
on_remote_poll(gpointer user_data)
{
    hv_cluster_op *op = user_data;
    hv_cluster *c = op->c;
    g_autoptr(GError) error = NULL;
    g_autoptr(hv_store_lease) l = hv_store_lease_get(c->store, op->mint, &error);
    if (l == NULL && error != NULL) {
        g_debug("cluster: waiting for %s: %s", op->mint, error->message);
    } else if (l == NULL) {
        op->poll_id = 0;
        g_autoptr(GError) gone =
            g_error_new(HV_ERROR, HV_ECLOSED, "The session ended before it started");
        op_finish(op, NULL, NULL, gone);
        return G_SOURCE_REMOVE;
    } else if (strcmp(l->state, "failed") == 0) {
        op->poll_id = 0;
        (void)hv_store_lease_release(c->store, op->mint, l->owner, NULL);
        g_autoptr(GError) failed =
            g_error_new_literal(HV_ERROR, l->error_code != 0 ? l->error_code : HV_EUPSTREAM,
                                l->error != NULL ? l->error : "the session did not start");
        op_finish(op, NULL, NULL, failed);
        return G_SOURCE_REMOVE;
    } else if (strcmp(l->state, "running") == 0 && strcmp(l->owner, c->node_id) == 0) {
        /* Taken over by this very node meanwhile: answer with the local session. */
        hv_live_session *s = hv_live_find(c->live, op->mint);
        if (s != NULL) {
            op->poll_id = 0;
            op_finish(op, s, NULL, NULL);
            return G_SOURCE_REMOVE;
        }
    } else if (strcmp(l->state, "running") == 0) {
        g_autoptr(json_t) started = remote_part(l, "started");
        if (started != NULL) {
            op->poll_id = 0;
            op_finish(op, NULL, started, NULL);
            return G_SOURCE_REMOVE;
        }
    }
    if (hv_now_ms() >= op->deadline_ms) {
        op->poll_id = 0;
        g_autoptr(GError) late =
            g_error_new(HV_ERROR, HV_ETIMEDOUT, "The node that owns the session did not start it");
        op_finish(op, NULL, NULL, late);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

hv_cluster_op *
hv_cluster_start(hv_cluster *c, const char *mint_id, bool record, hv_cluster_start_cb cb,
                 void *user_data)
{
    g_autoptr(GError) error = NULL;
    if (c->left || c->store_down) {
        g_autoptr(GError) gone =
            g_error_new(HV_ERROR, HV_EAGAIN, "%s",
                        c->left ? "haven is shutting down"
                                : "the cluster's database does not answer; try again later");
        cb(NULL, NULL, gone, user_data);
        return NULL;
    }
    g_autoptr(hv_store_lease) l = hv_store_lease_place(
        c->store, mint_id, record, c->cfg->node_timeout_ms, c->cfg->node_timeout_ms, &error);
    if (l == NULL) {
        g_prefix_error(&error, "cluster: ");
        if (error->code != HV_EAGAIN) {
            error->code = HV_EIO;
        }
        cb(NULL, NULL, error, user_data);
        return NULL;
    }
    hv_cluster_op *op = g_new0(hv_cluster_op, 1);
    op->c = c;
    g_strlcpy(op->mint, mint_id, sizeof(op->mint));
    op->cb = cb;
    op->user_data = user_data;
    c->ops = g_list_prepend(c->ops, op);
    if (strcmp(l->owner, c->node_id) == 0) {
        /* Ours: start it now rather than on the next reconcile tick. The callback may run
         * before hv_live_start returns, and then op is gone. */
        hv_live_op *local = hv_live_start(c->live, mint_id, record, on_local_started, op);
        if (local == NULL) {
            return NULL;
        }
        op->local = local;
        return op;
    }
    g_info("cluster: %s runs on node %s", mint_id, l->owner);
    op->deadline_ms = hv_now_ms() + c->cfg->livekit_connect_timeout_ms + REMOTE_START_EXTRA;
    op->poll_id = g_timeout_add(REMOTE_POLL_MS, on_remote_poll, op);
    return op;
}

void
hv_cluster_op_cancel(hv_cluster_op *op)
{
    if (op == NULL) {
        return;
    }
    if (op->local != NULL) {
        hv_live_op_cancel(op->local);
    }
    if (op->poll_id != 0) {
        g_source_remove(op->poll_id);
    }
    op->c->ops = g_list_remove(op->c->ops, op);
    g_free(op);
}

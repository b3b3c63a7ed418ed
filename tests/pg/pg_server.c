/* A throwaway PostgreSQL server for tests: see pg_server.h. */
#include "pg_server.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

struct hv_test_pg {
    char *bindir;
    char *dir;  /* the temporary directory: data/, server.log, the socket */
    char *host; /* dir, escaped for a URI query */
    GPid guard;
    int guard_fd; /* closing it tells the guard to stop the server */
    PGconn *admin;
};

/* The user the server programs run as: the current one, or an unprivileged one for root. */
typedef struct {
    bool switch_user;
    uid_t uid;
    gid_t gid;
    char name[64];
} run_as;

static GQuark
pg_error_quark(void)
{
    return g_quark_from_static_string("hv-test-pg");
}

static bool
is_executable(const char *dir, const char *prog)
{
    g_autofree char *p = g_build_filename(dir, prog, NULL);
    return g_file_test(p, G_FILE_TEST_IS_EXECUTABLE);
}

/* (transfer full) The directory with initdb and pg_ctl, or NULL. */
static char *
find_bindir(void)
{
    const char *env = g_getenv("HAVEN_PG_BINDIR");
    if (env != NULL && env[0] != '\0') {
        return g_strdup(env);
    }
    /* Debian: /usr/lib/postgresql/<major>/bin, not on PATH; the newest major wins. */
    char *best = NULL;
    int64_t best_major = -1;
    GDir *d = g_dir_open("/usr/lib/postgresql", 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *bin = g_build_filename("/usr/lib/postgresql", name, "bin", NULL);
        int64_t major = g_ascii_strtoll(name, NULL, 10);
        if (major > best_major && is_executable(bin, "initdb") && is_executable(bin, "pg_ctl")) {
            g_free(best);
            best = g_steal_pointer(&bin);
            best_major = major;
        }
    }
    if (d != NULL) {
        g_dir_close(d);
    }
    if (best != NULL) {
        return best;
    }
    g_autofree char *initdb = g_find_program_in_path("initdb");
    return initdb != NULL ? g_path_get_dirname(initdb) : NULL;
}

/* initdb and the server refuse to run as root: as root, pick "postgres" (Debian's server user)
 * or else "nobody". */
static bool
choose_user(run_as *who, GError **error)
{
    memset(who, 0, sizeof(*who));
    if (geteuid() != 0) {
        return true;
    }
    static const char *candidates[] = {"postgres", "nobody"};
    for (size_t i = 0; i < G_N_ELEMENTS(candidates); i++) {
        const struct passwd *pw = getpwnam(candidates[i]);
        if (pw != NULL && pw->pw_uid != 0) {
            who->switch_user = true;
            who->uid = pw->pw_uid;
            who->gid = pw->pw_gid;
            g_strlcpy(who->name, candidates[i], sizeof(who->name));
            return true;
        }
    }
    g_set_error(error, pg_error_quark(), 1,
                "running as root, and there is neither a postgres nor a nobody user to run "
                "initdb and the server as");
    return false;
}

/* In the child, before exec: become who (exit 126 when that fails, e.g. as root in a user
 * namespace that maps no other user). Async-signal-safe calls only. */
static void
child_run_as(gpointer data)
{
    const run_as *who = data;
    if (who->switch_user &&
        (setgroups(0, NULL) != 0 || setgid(who->gid) != 0 || setuid(who->uid) != 0)) {
        _exit(126);
    }
}

/* The guard also leaves our session, so that a test runner killing the test's process group
 * does not take it along before it has cleaned up. */
static void
child_guard(gpointer data)
{
    (void)setsid();
    child_run_as(data);
}

/* Runs argv as who and waits; false + error with its output when it fails. */
static bool
run(const run_as *who, const char *cwd, char **argv, GError **error)
{
    g_autofree char *out = NULL, *err = NULL;
    int status = 0;
    GError *spawn_error = NULL;
    if (!g_spawn_sync(cwd, argv, NULL, G_SPAWN_DEFAULT, child_run_as, (gpointer)who, &out, &err,
                      &status, &spawn_error)) {
        g_propagate_prefixed_error(error, spawn_error, "cannot run %s: ", argv[0]);
        return false;
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 126 && who->switch_user) {
        g_set_error(error, pg_error_quark(), 1,
                    "running as root but cannot switch to user %s (uid %u) for %s", who->name,
                    (unsigned)who->uid, argv[0]);
        return false;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, pg_error_quark(), 1, "%s failed (status %d):\n%s%s", argv[0], status,
                    out != NULL ? out : "", err != NULL ? err : "");
        return false;
    }
    return true;
}

static bool
start_guard(hv_test_pg *pg, const run_as *who, GError **error)
{
    g_autofree char *pg_ctl = g_build_filename(pg->bindir, "pg_ctl", NULL);
    g_autofree char *data = g_build_filename(pg->dir, "data", NULL);
    /* Waits for EOF on stdin, then stops the server (if it runs) and removes everything. */
    char *argv[] = {(char *)"/bin/sh",
                    (char *)"-c",
                    (char *)"cat >/dev/null 2>&1; "
                            "[ -f \"$2/postmaster.pid\" ] && "
                            "\"$1\" -D \"$2\" stop -m immediate -w -t 30 >/dev/null 2>&1; "
                            "rm -rf \"$3\"",
                    (char *)"hv-test-pg-guard",
                    pg_ctl,
                    data,
                    pg->dir,
                    NULL};
    return g_spawn_async_with_pipes(
        pg->dir, argv, NULL,
        G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL,
        child_guard, (gpointer)who, &pg->guard, &pg->guard_fd, NULL, NULL, error);
}

/* Makes the temporary directory (owned by who: the server writes there). */
static bool
make_dir(hv_test_pg *pg, const run_as *who, GError **error)
{
    /* A short parent: the socket path (dir + "/.s.PGSQL.5432") must fit in 107 bytes; and as
     * root, one the server's user can reach. */
    const char *parent = g_get_tmp_dir();
    if (who->switch_user || strlen(parent) > 60) {
        parent = "/tmp";
    }
    g_autofree char *tmpl = g_build_filename(parent, "haven-pg-XXXXXX", NULL);
    if (g_mkdtemp(tmpl) == NULL) {
        g_set_error(error, pg_error_quark(), 1, "cannot make a directory %s: %s", tmpl,
                    g_strerror(errno));
        return false;
    }
    pg->dir = g_steal_pointer(&tmpl);
    if (who->switch_user && chown(pg->dir, who->uid, who->gid) != 0) {
        int e = errno;
        g_set_error(error, pg_error_quark(), 1, "cannot give %s to user %s: %s%s", pg->dir,
                    who->name, g_strerror(e),
                    e == EINVAL ? " (root in a user namespace that maps no other user? initdb "
                                  "refuses to run as root: run the tests as a normal user)"
                                : "");
        return false;
    }
    pg->host = g_uri_escape_string(pg->dir, "/", FALSE);
    return true;
}

static bool
init_and_start(hv_test_pg *pg, const run_as *who, GError **error)
{
    g_autofree char *initdb = g_build_filename(pg->bindir, "initdb", NULL);
    g_autofree char *pg_ctl = g_build_filename(pg->bindir, "pg_ctl", NULL);
    g_autofree char *data = g_build_filename(pg->dir, "data", NULL);
    g_autofree char *log = g_build_filename(pg->dir, "server.log", NULL);
    char *init_argv[] = {initdb,          (char *)"-D",         data,
                         (char *)"-A",    (char *)"trust",      (char *)"-U",
                         (char *)"haven", (char *)"--no-sync",  (char *)"-E",
                         (char *)"UTF8",  (char *)"--locale=C", NULL};
    if (!run(who, pg->dir, init_argv, error)) {
        return false;
    }
    /* Only the Unix socket in dir (no TCP), no fsync. */
    g_autofree char *quoted_dir = g_shell_quote(pg->dir);
    g_autofree char *opts =
        g_strdup_printf("-k %s -c listen_addresses='' -F -c max_connections=20", quoted_dir);
    char *start_argv[] = {pg_ctl,          (char *)"-D", data,         (char *)"-l", log,
                          (char *)"-o",    opts,         (char *)"-w", (char *)"-t", (char *)"120",
                          (char *)"start", NULL};
    if (!run(who, pg->dir, start_argv, error)) {
        g_autofree char *text = NULL;
        if (g_file_get_contents(log, &text, NULL, NULL)) {
            g_prefix_error(error, "server.log:\n%s\n", text);
        }
        return false;
    }
    return true;
}

static bool
admin_exec(hv_test_pg *pg, const char *sql, GError **error)
{
    PGresult *res = PQexec(pg->admin, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        g_set_error(error, pg_error_quark(), 1, "%s: %s", sql, PQerrorMessage(pg->admin));
    }
    PQclear(res);
    return ok;
}

hv_test_pg *
hv_test_pg_start(GError **error)
{
    g_autoptr(GError) why = NULL;
    hv_test_pg *pg = g_new0(hv_test_pg, 1);
    pg->guard_fd = -1;
    pg->bindir = find_bindir();
    if (pg->bindir == NULL) {
        g_set_error(error, pg_error_quark(), 1,
                    "PostgreSQL's server programs (initdb, pg_ctl) are not installed: not in "
                    "/usr/lib/postgresql/*/bin nor on PATH (tools/install-deps.sh installs "
                    "postgresql-15; HAVEN_PG_BINDIR names another place)");
        hv_test_pg_stop(pg);
        return NULL;
    }
    run_as who;
    if (!choose_user(&who, &why) || !make_dir(pg, &who, &why) || !start_guard(pg, &who, &why) ||
        !init_and_start(pg, &who, &why)) {
        g_propagate_prefixed_error(error, g_steal_pointer(&why),
                                   "cannot start a test PostgreSQL (%s): ", pg->bindir);
        hv_test_pg_stop(pg);
        return NULL;
    }
    g_autofree char *uri = hv_test_pg_uri(pg, "postgres", NULL, "connect_timeout=10");
    pg->admin = PQconnectdb(uri);
    if (PQstatus(pg->admin) != CONNECTION_OK) {
        g_set_error(error, pg_error_quark(), 1, "cannot connect to the test PostgreSQL %s: %s", uri,
                    PQerrorMessage(pg->admin));
        hv_test_pg_stop(pg);
        return NULL;
    }
    if (!admin_exec(pg, "CREATE DATABASE haven", error)) {
        hv_test_pg_stop(pg);
        return NULL;
    }
    PQfinish(pg->admin);
    g_autofree char *haven_uri = hv_test_pg_uri(pg, "haven", NULL, "connect_timeout=10");
    pg->admin = PQconnectdb(haven_uri);
    if (PQstatus(pg->admin) != CONNECTION_OK) {
        g_set_error(error, pg_error_quark(), 1, "cannot connect to %s: %s", haven_uri,
                    PQerrorMessage(pg->admin));
        hv_test_pg_stop(pg);
        return NULL;
    }
    return pg;
}

void
hv_test_pg_stop(hv_test_pg *pg)
{
    if (pg == NULL) {
        return;
    }
    PQfinish(pg->admin);
    if (pg->guard_fd >= 0) {
        close(pg->guard_fd); /* the guard stops the server and removes the directory */
        int status = 0;
        while (waitpid(pg->guard, &status, 0) < 0 && errno == EINTR) {
        }
        g_spawn_close_pid(pg->guard);
    } else if (pg->dir != NULL) {
        (void)g_rmdir(pg->dir); /* empty: nothing was started in it */
    }
    g_free(pg->bindir);
    g_free(pg->dir);
    g_free(pg->host);
    g_free(pg);
}

const char *
hv_test_pg_dir(const hv_test_pg *pg)
{
    return pg->dir;
}

char *
hv_test_pg_uri(const hv_test_pg *pg, const char *db, const char *userinfo, const char *params)
{
    return g_strdup_printf("postgresql://%s%s/%s?host=%s&user=haven%s%s",
                           userinfo != NULL ? userinfo : "", userinfo != NULL ? "@" : "", db,
                           pg->host, params != NULL ? "&" : "", params != NULL ? params : "");
}

char *
hv_test_pg_new_database(hv_test_pg *pg, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *sql = g_strdup_printf("CREATE DATABASE %s", name);
    if (!admin_exec(pg, sql, &error)) {
        g_error("%s", error->message);
    }
    return hv_test_pg_uri(pg, name, NULL, NULL);
}

char *
hv_test_pg_new_schema(hv_test_pg *pg, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *sql = g_strdup_printf("CREATE SCHEMA %s", name);
    if (!admin_exec(pg, sql, &error)) {
        g_error("%s", error->message);
    }
    g_autofree char *options = g_strdup_printf("options=-csearch_path%%3D%s", name);
    return hv_test_pg_uri(pg, "haven", NULL, options);
}

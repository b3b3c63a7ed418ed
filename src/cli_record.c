/* cli_record.c: `haven record` (see cli_record.h). The same live-session code as the server
 * (catalog lookup, token, LiveKit room, reconnects, recorder), with an in-memory database and no
 * HTTP server. Main thread only. */
#include "cli_record.h"

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "live/live.h"
#include "pumpfun/pumpfun.h"
#include "store/store.h"

#include <glib-unix.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define EXIT_USAGE       64
#define PROGRESS_MS      500
#define DRAIN_TIMEOUT_MS 15000

extern char **environ;

typedef struct {
    hv_config *cfg;
    GMainLoop *loop;
    hv_store *store;
    hv_pf_client *client;
    hv_pf_catalog *catalog;
    hv_live *live;
    char mint[64];
    int64_t duration_ms; /* 0 = until stopped */
    int64_t started_ms;
    bool started, stopping, failed, tty;
    char *error;
    hv_live_record_progress last;
    char *last_path;
    int64_t last_plain_print_ms;
} cli;

static void
usage(FILE *out)
{
    fprintf(out,
            "usage: haven record MINT_ID [--duration SECONDS] [--out DIR] [haven options]\n"
            "\n"
            "Records one pump.fun stream to DIR (default: HAVEN_RECORDINGS_DIR) as it arrives,\n"
            "without re-encoding: <mint>_<UTC time>.mp4 or .webm, plus a .wav of the audio.\n"
            "Stops after SECONDS, at the end of the stream, or on Ctrl-C; files are finished\n"
            "cleanly in every case. Other options are haven's (see haven --help).\n");
}

static void
format_bytes(uint64_t b, char *buf, size_t len)
{
    if (b >= 1024 * 1024 * 1024) {
        g_snprintf(buf, len, "%.2f GB", (double)b / (1024.0 * 1024 * 1024));
    } else if (b >= 1024 * 1024) {
        g_snprintf(buf, len, "%.1f MB", (double)b / (1024.0 * 1024));
    } else {
        g_snprintf(buf, len, "%.0f kB", (double)b / 1024.0);
    }
}

static void
print_progress(cli *c, bool final)
{
    const hv_live_record_progress *p = &c->last;
    int64_t secs = (hv_now_ms() - c->started_ms) / 1000;
    char size[32];
    format_bytes(p->bytes, size, sizeof(size));
    double mbit =
        p->duration_ms > 0 ? (double)p->bytes * 8.0 / ((double)p->duration_ms * 1000.0) : 0.0;
    const char *state = p->recording ? "REC" : c->stopping ? "END" : "...";
    char line[256];
    g_snprintf(line, sizeof(line),
               "%s %02" G_GINT64_FORMAT ":%02" G_GINT64_FORMAT ":%02" G_GINT64_FORMAT
               "  %s  %.2f Mbit/s  dropped %" G_GUINT64_FORMAT,
               state, secs / 3600, secs / 60 % 60, secs % 60, size, mbit, p->dropped);
    if (p->files > 0) {
        /* A reconnect closes a file and starts the next. */
        size_t n = strlen(line);
        g_snprintf(line + n, sizeof(line) - n, "  files %d", p->files + (p->recording ? 1 : 0));
    }
    if (c->tty) {
        fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
    } else if (final || hv_now_ms() - c->last_plain_print_ms >= 10000) {
        c->last_plain_print_ms = hv_now_ms();
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

static void
begin_stop(cli *c, const char *why)
{
    if (c->stopping) {
        return;
    }
    c->stopping = true;
    if (c->tty) {
        fputc('\n', stderr);
    }
    fprintf(stderr, "haven record: %s; finishing the files...\n", why);
    (void)hv_live_stop(c->live, c->mint);
}

static gboolean
on_tick(gpointer user_data)
{
    cli *c = user_data;
    hv_live_record_progress p;
    if (hv_live_record_progress_get(c->live, c->mint, &p)) {
        c->last = p;
        if (p.path != NULL && g_strcmp0(p.path, c->last_path) != 0) {
            g_free(c->last_path);
            c->last_path = g_strdup(p.path);
        }
        if (p.error != NULL && c->error == NULL) {
            c->error = g_strdup(p.error);
        }
    } else if (c->started && !c->stopping) {
        c->stopping = true; /* the stream ended by itself */
        if (c->tty) {
            fputc('\n', stderr);
        }
        fprintf(stderr, "haven record: the stream ended\n");
    }
    if (!c->stopping) {
        print_progress(c, false);
        if (c->duration_ms > 0 && hv_now_ms() - c->started_ms >= c->duration_ms) {
            begin_stop(c, "duration reached");
        }
    }
    if (c->stopping && !hv_live_busy(c->live) && hv_live_find(c->live, c->mint) == NULL) {
        g_main_loop_quit(c->loop);
    }
    return G_SOURCE_CONTINUE;
}

static gboolean
on_signal(gpointer user_data)
{
    cli *c = user_data;
    if (c->stopping) {
        fprintf(stderr, "haven record: still finishing the files (Ctrl-C again is ignored)\n");
        return G_SOURCE_CONTINUE;
    }
    begin_stop(c, "interrupted");
    return G_SOURCE_CONTINUE;
}

static void
on_started(hv_live_session *session, const GError *error, void *user_data)
{
    cli *c = user_data;
    if (session == NULL) {
        fprintf(stderr, "haven record: %s\n", error->message);
        c->failed = true;
        g_main_loop_quit(c->loop);
        return;
    }
    c->started = true;
    c->started_ms = hv_now_ms();
}

static bool
parse_args(cli *c, int argc, char **argv, GPtrArray *cfg_args)
{
    const char *out = NULL;
    const char *mint = NULL;
    bool log_level_given = g_getenv("HAVEN_LOG_LEVEL") != NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *value = NULL;
        if (strcmp(a, "--duration") == 0 || strcmp(a, "--out") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "haven record: %s needs a value\n", a);
                return false;
            }
            value = argv[++i];
        } else if (g_str_has_prefix(a, "--duration=") || g_str_has_prefix(a, "--out=")) {
            value = strchr(a, '=') + 1;
        }
        if (value != NULL && g_str_has_prefix(a, "--duration")) {
            char *end = NULL;
            double secs = g_ascii_strtod(value, &end);
            if (end == value || *end != '\0' || !(secs > 0) || secs > 365.0 * 86400) {
                fprintf(stderr, "haven record: --duration must be a number of seconds > 0\n");
                return false;
            }
            c->duration_ms = (int64_t)(secs * 1000.0);
        } else if (value != NULL) {
            out = value;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (g_str_has_prefix(a, "--")) {
            log_level_given = log_level_given || g_str_has_prefix(a, "--log-level");
            g_ptr_array_add(cfg_args, g_strdup(a));
            /* "--name value": the value belongs to the option. */
            if (strchr(a, '=') == NULL && i + 1 < argc) {
                g_ptr_array_add(cfg_args, g_strdup(argv[++i]));
            }
        } else if (mint == NULL) {
            mint = a;
        } else {
            fprintf(stderr, "haven record: unexpected argument \"%s\"\n", a);
            return false;
        }
    }
    if (mint == NULL) {
        usage(stderr);
        return false;
    }
    if (!hv_mint_id_is_valid(mint)) {
        fprintf(stderr,
                "haven record: \"%s\" is not a mint id (32 to 44 base58 characters that "
                "decode to 32 bytes)\n",
                mint);
        return false;
    }
    g_strlcpy(c->mint, mint, sizeof(c->mint));
    /* Progress goes to stderr: routine log lines would break it up. */
    if (!log_level_given) {
        g_ptr_array_insert(cfg_args, 1, g_strdup("--log-level=warning"));
    }
    g_ptr_array_add(cfg_args, g_strdup("--db=:memory:"));
    if (out != NULL) {
        g_ptr_array_add(cfg_args, g_strdup_printf("--recordings-dir=%s", out));
    }
    return true;
}

int
hv_cli_record(int argc, char **argv)
{
    cli c = {0};
    g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(args, g_strdup(argv[0]));
    if (!parse_args(&c, argc, argv, args)) {
        return EXIT_USAGE;
    }
    g_autoptr(GError) error = NULL;
    hv_config_action action;
    c.cfg = hv_config_load((int)args->len, (char **)args->pdata, environ, &action, &error);
    if (c.cfg == NULL) {
        fprintf(stderr, "haven record: %s\n", error->message);
        return HV_EXIT_CONFIG;
    }
    hv_log_init(c.cfg->log_level, g_strcmp0(c.cfg->log_format, "json") == 0);
    lws_set_log_level(LLL_ERR, NULL); /* its notices would break the progress line */
    c.tty = isatty(STDERR_FILENO) == 1;
    c.store = hv_store_open(c.cfg->db_path, &error);
    if (c.store == NULL) {
        fprintf(stderr, "haven record: %s\n", error->message);
        hv_config_free(c.cfg);
        return 1;
    }
    if (hv_store_is_shared(c.store)) {
        /* A database other havens share: this process is a node of its own for its rows, so
         * its startup recovery leaves the running nodes' sessions alone. */
        char host[256] = "haven";
        (void)gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        g_autofree char *node_id = g_strdup_printf("%s:record:%d", host, (int)getpid());
        hv_store_set_node_id(c.store, node_id);
    }
    c.loop = g_main_loop_new(NULL, FALSE);
    c.client = hv_pf_client_new(c.cfg);
    hv_pf_catalog_callbacks ccb = {0};
    c.catalog = hv_pf_catalog_new(c.cfg, c.client, &ccb, &c);
    c.live = hv_live_new(c.cfg, c.client, c.catalog, c.store);
    c.started_ms = hv_now_ms();
    fprintf(stderr, "haven record: joining the stream of %s; recording into %s\n", c.mint,
            c.cfg->recordings_dir);
    hv_live_op *op = hv_live_start(c.live, c.mint, true, on_started, &c);
    guint tick = g_timeout_add(PROGRESS_MS, on_tick, &c);
    guint sigint = g_unix_signal_add(SIGINT, on_signal, &c);
    guint sigterm = g_unix_signal_add(SIGTERM, on_signal, &c);
    if (!c.failed) {
        g_main_loop_run(c.loop);
    }
    if (op != NULL && !c.started && !c.failed) {
        hv_live_op_cancel(op);
    }
    g_source_remove(tick);
    g_source_remove(sigint);
    g_source_remove(sigterm);

    int status = 0;
    if (!c.failed) {
        print_progress(&c, true);
        if (c.last_path != NULL && c.last.bytes > 0) {
            fprintf(stderr, "haven record: saved %s\n", c.last_path);
        }
        if (c.error != NULL) {
            fprintf(stderr, "haven record: recording error: %s\n", c.error);
            status = 1;
        } else if (c.last.bytes == 0) {
            fprintf(stderr, "haven record: nothing was recorded\n");
            status = 1;
        }
    } else {
        status = 1;
    }
    hv_live_free(c.live);
    hv_pf_catalog_free(c.catalog);
    hv_pf_client_free(c.client);
    hv_store_close(c.store);
    g_main_loop_unref(c.loop);
    hv_config_free(c.cfg);
    g_free(c.error);
    g_free(c.last_path);
    return status;
}

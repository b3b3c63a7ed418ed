/* Fuzz target: the configuration file parser (hv_config_apply_file_text, src/core/config.c).
 *
 * The input is the file's text, applied twice on top of the defaults, as hv_config_load does
 * for the file named by --config: once as a private file (mode 0600, the API token allowed)
 * and once as a readable one. Besides crashes and sanitizer findings, the oracles are: an
 * error is one line of valid UTF-8 that starts with "config file "; a readable file that loads also
 * loads as a private one (privacy only ever removes a refusal); what loaded prints (--print-config)
 * with the token masked.
 */
#include "core/config.h"
#include "fuzz-common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_setup_logging();
    return 0;
}

/* The defaults, as hv_config_load builds them with no environment and no flags. */
static hv_config *
defaults(void)
{
    char *argv[] = {(char *)"haven", NULL};
    hv_config_action action;
    g_autoptr(GError) error = NULL;
    hv_config *cfg = hv_config_load(1, argv, NULL, &action, &error);
    if (cfg == NULL) {
        abort();
    }
    return cfg;
}

static void
check_error(const GError *error)
{
    if (error == NULL || error->message == NULL || strchr(error->message, '\n') != NULL ||
        !g_utf8_validate(error->message, -1, NULL) ||
        !g_str_has_prefix(error->message, "config file ")) {
        abort();
    }
}

static void
check_loaded(const hv_config *cfg)
{
    if (cfg->listen_host == NULL || cfg->listen_port < 1 || cfg->listen_port > 65535) {
        abort();
    }
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (mem == NULL) {
        return;
    }
    hv_config_print(cfg, mem);
    if (fclose(mem) != 0) {
        abort();
    }
    /* A token from the file shows as *** (each line prints one option, so this is its line). */
    if (cfg->api_token[0] != '\0' && strstr(text, "HAVEN_API_TOKEN=***  # file\n") == NULL) {
        abort();
    }
    free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    g_autoptr(hv_config) priv = defaults();
    g_autoptr(GError) priv_error = NULL;
    bool priv_ok = hv_config_apply_file_text(priv, "fuzz.conf", text, size, true, &priv_error);
    if (priv_ok) {
        check_loaded(priv);
        if (priv_error != NULL) {
            abort();
        }
    } else {
        check_error(priv_error);
    }

    g_autoptr(hv_config) shared = defaults();
    g_autoptr(GError) shared_error = NULL;
    bool shared_ok =
        hv_config_apply_file_text(shared, "fuzz.conf", text, size, false, &shared_error);
    if (shared_ok) {
        if (!priv_ok) {
            abort();
        }
        check_loaded(shared);
    } else {
        check_error(shared_error);
    }
    return 0;
}

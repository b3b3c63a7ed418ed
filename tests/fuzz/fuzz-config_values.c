/* Fuzz target: configuration values (src/core/config.c and the helpers it uses in util.c).
 *
 * haven has no configuration FILE (yet): its configuration is the HAVEN_* environment and the
 * command-line flags, so this target fuzzes that path instead: every option value type the
 * table knows (durations, integers, URLs, WebSocket URLs, choices, listen addresses, strings),
 * through hv_config_load exactly as main() calls it. Then the LiveKit URL that loaded is turned
 * into the signalling URL as a session would (hv_lk_signal_parse_url), and the effective
 * configuration is printed (to memory). Each line is also fed to the value parsers directly.
 *
 * Input: lines. "NAME=value" lines whose NAME starts with HAVEN_ go to the environment, every
 * other line is one argv element ("--flag=value", "--flag", "value", "--help", ...). The API
 * token file and the configuration file options are dropped (loading them reads the file); the
 * configuration file's parser has its own target, config_file.
 */
#include "core/config.h"
#include "core/util.h"
#include "fuzz-common.h"
#include "livekit/livekit-private.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    hv_fuzz_setup_logging();
    return 0;
}

static void
fuzz_value_parsers(const char *v)
{
    int64_t n = 0;
    if (hv_parse_duration_ms(v, &n) && n < 0) {
        abort();
    }
    (void)hv_parse_int64(v, &n);
    uint8_t out[64];
    int len = hv_base58_decode(v, out, sizeof(out));
    if (len > (int)sizeof(out)) {
        abort();
    }
    if (hv_mint_id_is_valid(v) && (strlen(v) < 32 || strlen(v) > HV_MINT_MAX_LEN)) {
        abort();
    }
}

/* The options whose value hv_config_load reads a file from (the API token file, the
 * configuration file): left out, so the target never touches the disk. */
static bool
reads_a_file(const char *line)
{
    return g_str_has_prefix(line, "--api-token-file") ||
           g_str_has_prefix(line, "HAVEN_API_TOKEN_FILE=") || g_str_has_prefix(line, "--config") ||
           g_str_has_prefix(line, "HAVEN_CONFIG=");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_auto(GStrv) lines = hv_fuzz_lines(data, size);
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GPtrArray) envp = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)"haven");
    for (char **l = lines; *l != NULL; l++) {
        fuzz_value_parsers(*l);
        if (reads_a_file(*l)) {
            continue;
        }
        if (g_str_has_prefix(*l, "HAVEN_") && strchr(*l, '=') != NULL) {
            g_ptr_array_add(envp, *l);
        } else if (**l != '\0') {
            g_ptr_array_add(argv, *l);
        }
    }
    int argc = (int)argv->len;
    g_ptr_array_add(argv, NULL);
    g_ptr_array_add(envp, NULL);

    hv_config_action action;
    g_autoptr(GError) error = NULL;
    hv_config *cfg =
        hv_config_load(argc, (char **)argv->pdata, (char **)envp->pdata, &action, &error);
    if (cfg == NULL) {
        if (error == NULL || error->message == NULL) {
            abort();
        }
        return 0;
    }
    if (cfg->listen_host == NULL || cfg->listen_port < 1 || cfg->listen_port > 65535) {
        abort();
    }
    hv_lk_url url;
    g_autoptr(GError) url_error = NULL;
    if (hv_lk_signal_parse_url(cfg->livekit_url, "eyJhbGciOi.x.y", &url, &url_error)) {
        if (url.host == NULL || url.path == NULL || url.port <= 0 || url.port > 65535) {
            abort();
        }
    }
    hv_lk_url_clear(&url);
    char *text = NULL;
    size_t text_len = 0;
    FILE *mem = open_memstream(&text, &text_len);
    if (mem != NULL) {
        hv_config_print(cfg, mem);
        fclose(mem);
        free(text);
    }
    hv_config_free(cfg);
    return 0;
}

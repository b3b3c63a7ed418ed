/* The replay driver: runs every file of the given corpus directories (or the given files)
 * through LLVMFuzzerTestOneInput, in name order, as one TAP test. Linked instead of libFuzzer
 * into the fuzz targets of a normal build, so every CI run replays the committed corpora with
 * gcc (and under ASan/UBSan in a sanitizer build) without clang. A crash is a crash of this
 * process: meson reports the test failed, and the last "# replaying" line names the input.
 */
#include "fuzz-common.h"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
collect(const char *path, GPtrArray *files)
{
    if (!g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_ptr_array_add(files, g_strdup(path));
        return;
    }
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) dir = g_dir_open(path, 0, &error);
    if (dir == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", path, error->message);
        exit(1);
    }
    const char *name;
    while ((name = g_dir_read_name(dir)) != NULL) {
        if (name[0] != '.') {
            g_ptr_array_add(files, g_build_filename(path, name, NULL));
        }
    }
}

static int
by_name(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    LLVMFuzzerInitialize(&argc, &argv);
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    for (int i = 1; i < argc; i++) {
        g_autoptr(GPtrArray) here = g_ptr_array_new_with_free_func(g_free);
        collect(argv[i], here);
        g_ptr_array_sort(here, by_name);
        for (guint k = 0; k < here->len; k++) {
            g_ptr_array_add(files, g_strdup(g_ptr_array_index(here, k)));
        }
    }
    /* One TAP test per corpus: "N passed" counts targets, not inputs. A crash ends the
     * process; the last "# replaying" line names the input. */
    printf("1..1\n");
    for (guint i = 0; i < files->len; i++) {
        const char *path = g_ptr_array_index(files, i);
        char *data = NULL;
        gsize len = 0;
        g_autoptr(GError) error = NULL;
        if (!g_file_get_contents(path, &data, &len, &error)) {
            printf("not ok 1 - cannot read %s: %s\n", path, error->message);
            return 1;
        }
        printf("# replaying %s (%zu bytes)\n", path, (size_t)len);
        fflush(stdout);
        /* An exact-size copy, so ASan sees a read past the input's end. */
        uint8_t *copy = g_malloc(len > 0 ? len : 1);
        memcpy(copy, data, len);
        g_free(data);
        LLVMFuzzerTestOneInput(copy, len);
        g_free(copy);
    }
    printf("ok 1 - %u input(s) replayed\n", files->len);
    return 0;
}

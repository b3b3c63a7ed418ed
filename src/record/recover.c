/* recover.c: finalizing what a crash left in the recordings directory (see record.h). A
 * fragmented MP4 or a WebM cut short plays as it is, so it only needs its final name; a WAV also
 * needs the sizes in its header. */
#include "record/record.h"

#include "core/error.h"
#include "record/wav.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

static void
recovered_free(gpointer p)
{
    hv_record_recovered *rec = p;
    g_free(rec->path);
    g_free(rec);
}

GPtrArray *
hv_record_recover(const char *dir, GError **error)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, error);
    if (d == NULL) {
        return NULL;
    }
    GPtrArray *out = g_ptr_array_new_with_free_func(recovered_free);
    const char *name;
    while ((name = g_dir_read_name(d)) != NULL) {
        bool wav = g_str_has_suffix(name, ".wav.part");
        if (!wav && !g_str_has_suffix(name, ".mp4.part") && !g_str_has_suffix(name, ".webm.part")) {
            continue;
        }
        g_autofree char *part = g_build_filename(dir, name, NULL);
        if (!g_file_test(part, G_FILE_TEST_IS_REGULAR) ||
            g_file_test(part, G_FILE_TEST_IS_SYMLINK)) {
            continue;
        }
        g_autofree char *final = g_strndup(part, strlen(part) - strlen(".part"));
        int64_t duration_ms = -1;
        if (wav) {
            g_autoptr(GError) werr = NULL;
            if (!hv_wav_repair(part, &duration_ms, &werr)) {
                g_warning("recovering %s: %s", part, werr->message);
            }
        }
        if (g_file_test(final, G_FILE_TEST_EXISTS)) {
            g_warning("recovering %s: %s already exists; leaving it", part, final);
            continue;
        }
        if (g_rename(part, final) != 0) {
            g_warning("recovering %s: cannot rename: %s", part, g_strerror(errno));
            continue;
        }
        GStatBuf st;
        hv_record_recovered *rec = g_new0(hv_record_recovered, 1);
        rec->path = g_steal_pointer(&final);
        rec->duration_ms = duration_ms;
        rec->bytes = g_stat(rec->path, &st) == 0 ? (uint64_t)st.st_size : 0;
        g_ptr_array_add(out, rec);
    }
    return out;
}

/* Unit tests for the record module's file handling: the WAV writer (header, periodic size
 * rewrite, silence), repairing a WAV a crash left behind, recording file names, and the startup
 * recovery of ".part" leftovers. The recorder pipeline itself is tested end to end
 * (tests/integration/test_recording.py). */
#include "record/record.h"
#include "record/wav.h"

#include <glib/gstdio.h>
#include <string.h>

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static char *
tmp_dir(void)
{
    g_autoptr(GError) error = NULL;
    char *d = g_dir_make_tmp("hv-test-record-XXXXXX", &error);
    g_assert_no_error(error);
    return d;
}

static void
rm_rf(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d != NULL && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        (void)g_unlink(p);
    }
    (void)g_rmdir(dir);
}

static void
test_wav_header(void)
{
    uint8_t h[HV_WAV_HEADER_BYTES];
    hv_wav_header(h, 48000, 2, 1000);
    g_assert_cmpmem(h, 4, "RIFF", 4);
    g_assert_cmpuint(le32(h + 4), ==, 1036);
    g_assert_cmpmem(h + 8, 8, "WAVEfmt ", 8);
    g_assert_cmpuint(le32(h + 16), ==, 16);
    g_assert_cmpuint(h[20] | h[21] << 8, ==, 1); /* PCM */
    g_assert_cmpuint(h[22] | h[23] << 8, ==, 2); /* channels */
    g_assert_cmpuint(le32(h + 24), ==, 48000);
    g_assert_cmpuint(le32(h + 28), ==, 48000 * 4); /* byte rate */
    g_assert_cmpuint(h[32] | h[33] << 8, ==, 4);   /* block align */
    g_assert_cmpuint(h[34] | h[35] << 8, ==, 16);
    g_assert_cmpmem(h + 36, 4, "data", 4);
    g_assert_cmpuint(le32(h + 40), ==, 1000);
    /* Past the 32-bit RIFF limit the sizes saturate instead of wrapping. */
    hv_wav_header(h, 48000, 2, (uint64_t)5 << 30);
    g_assert_cmpuint(le32(h + 4), ==, 0xffffffffu);
    g_assert_cmpuint(le32(h + 40), ==, 0xffffffffu - 36);
}

static void
read_file(const char *path, uint8_t **data, gsize *len)
{
    g_autoptr(GError) error = NULL;
    g_assert_true(g_file_get_contents(path, (char **)data, len, &error));
    g_assert_no_error(error);
}

static void
test_wav_writer(void)
{
    g_autofree char *dir = tmp_dir();
    g_autofree char *path = g_build_filename(dir, "a.wav", NULL);
    g_autoptr(GError) error = NULL;
    hv_wav *w = hv_wav_open(path, 48000, 2, &error);
    g_assert_no_error(error);
    int16_t pcm[480 * 2];
    for (int i = 0; i < 480 * 2; i++) {
        pcm[i] = (int16_t)(i * 7);
    }
    g_assert_true(hv_wav_write(w, pcm, sizeof(pcm), &error));
    /* Before a sync the header still says 0: that is what a crash would leave. */
    g_autofree uint8_t *data = NULL;
    gsize len = 0;
    read_file(path, &data, &len);
    g_assert_cmpuint(len, ==, 44 + sizeof(pcm));
    g_assert_cmpuint(le32(data + 40), ==, 0);
    g_clear_pointer(&data, g_free);
    g_assert_true(hv_wav_sync(w, &error));
    read_file(path, &data, &len);
    g_assert_cmpuint(le32(data + 40), ==, sizeof(pcm));
    g_assert_cmpmem(data + 44, sizeof(pcm), pcm, sizeof(pcm));
    g_clear_pointer(&data, g_free);
    g_assert_true(hv_wav_write_silence(w, 10000, &error));
    g_assert_cmpuint(hv_wav_frames(w), ==, 10480);
    g_assert_cmpuint(hv_wav_bytes(w), ==, 44 + 10480 * 4);
    g_assert_true(hv_wav_close(w, &error));
    read_file(path, &data, &len);
    g_assert_cmpuint(len, ==, 44 + 10480 * 4);
    g_assert_cmpuint(le32(data + 40), ==, 10480 * 4);
    g_assert_cmpuint(le32(data + 4), ==, 36 + 10480 * 4);
    for (gsize i = 44 + sizeof(pcm); i < len; i++) {
        g_assert_cmpuint(data[i], ==, 0);
    }
    g_assert_null(hv_wav_open(path, 0, 2, &error));
    g_assert_nonnull(error);
    rm_rf(dir);
}

static void
test_wav_repair(void)
{
    g_autofree char *dir = tmp_dir();
    g_autofree char *path = g_build_filename(dir, "crash.wav", NULL);
    g_autoptr(GError) error = NULL;
    hv_wav *w = hv_wav_open(path, 48000, 1, &error);
    g_assert_true(hv_wav_sync(w, &error));
    g_assert_true(hv_wav_write_silence(w, 48000, &error)); /* 1 s, header still says 0 */
    g_assert_true(hv_wav_write(w, "x", 1, &error));        /* a torn half frame */
    /* Simulate a crash: drop the writer without its closing header update. */
    g_assert_true(hv_wav_close(w, &error));
    uint8_t zero[4] = {0};
    FILE *f = fopen(path, "r+b");
    g_assert_nonnull(f);
    fseek(f, 40, SEEK_SET);
    fwrite(zero, 1, 4, f);
    fclose(f);
    int64_t ms = -1;
    g_assert_true(hv_wav_repair(path, &ms, &error));
    g_assert_no_error(error);
    g_assert_cmpint(ms, ==, 1000);
    g_autofree uint8_t *data = NULL;
    gsize len = 0;
    read_file(path, &data, &len);
    g_assert_cmpuint(len, ==, 44 + 96000); /* the half frame is gone */
    g_assert_cmpuint(le32(data + 40), ==, 96000);
    /* Not a WAV: refused, untouched. */
    g_autofree char *other = g_build_filename(dir, "other.wav", NULL);
    g_assert_true(
        g_file_set_contents(other, "this is not a wav file at all, no no no no", -1, NULL));
    g_assert_false(hv_wav_repair(other, NULL, &error));
    g_assert_nonnull(error);
    rm_rf(dir);
}

static void
test_base_path(void)
{
    g_autofree char *dir = tmp_dir();
    const char *mint = "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump";
    /* 2026-11-25 01:02:03 UTC */
    int64_t ms = (int64_t)1795568523 * 1000;
    g_autofree char *p1 = hv_record_base_path(dir, mint, ms);
    g_autofree char *want = g_strdup_printf("%s/%s_20261125T010203Z", dir, mint);
    g_assert_cmpstr(p1, ==, want);
    /* A second recording in the same second gets its own name, also when only a .part or only
     * the WAV exists. */
    g_autofree char *f1 = g_strconcat(p1, ".wav.part", NULL);
    g_assert_true(g_file_set_contents(f1, "", 0, NULL));
    g_autofree char *p2 = hv_record_base_path(dir, mint, ms);
    g_autofree char *want2 = g_strconcat(want, "-2", NULL);
    g_assert_cmpstr(p2, ==, want2);
    g_autofree char *f2 = g_strconcat(p2, ".mp4", NULL);
    g_assert_true(g_file_set_contents(f2, "", 0, NULL));
    g_autofree char *p3 = hv_record_base_path(dir, mint, ms);
    g_assert_true(g_str_has_suffix(p3, "Z-3"));
    rm_rf(dir);
}

static void
test_recover(void)
{
    g_autofree char *dir = tmp_dir();
    g_autoptr(GError) error = NULL;
    g_autofree char *mp4 = g_build_filename(dir, "m_20260101T000000Z.mp4.part", NULL);
    g_autofree char *wav = g_build_filename(dir, "m_20260101T000000Z.wav.part", NULL);
    g_autofree char *txt = g_build_filename(dir, "notes.txt.part", NULL);
    g_autofree char *dup = g_build_filename(dir, "d.webm.part", NULL);
    g_autofree char *dup_final = g_build_filename(dir, "d.webm", NULL);
    g_autofree char *link = g_build_filename(dir, "l.mp4.part", NULL);
    g_assert_true(g_file_set_contents(mp4, "fragmented mp4 bytes", -1, NULL));
    hv_wav *w = hv_wav_open(wav, 48000, 2, &error);
    g_assert_true(hv_wav_write_silence(w, 24000, &error)); /* 0.5 s, header never synced */
    g_assert_true(hv_wav_close(w, &error));
    uint8_t h[HV_WAV_HEADER_BYTES];
    hv_wav_header(h, 48000, 2, 0);
    FILE *f = fopen(wav, "r+b");
    fwrite(h, 1, sizeof(h), f);
    fclose(f);
    g_assert_true(g_file_set_contents(txt, "x", -1, NULL));
    g_assert_true(g_file_set_contents(dup, "new", -1, NULL));
    g_assert_true(g_file_set_contents(dup_final, "old", -1, NULL));
    g_assert_cmpint(symlink("/etc/hostname", link), ==, 0);

    g_test_expect_message("hv-record", G_LOG_LEVEL_WARNING, "*already exists*");
    g_autoptr(GPtrArray) out = hv_record_recover(dir, &error);
    g_test_assert_expected_messages();
    g_assert_no_error(error);
    g_assert_cmpuint(out->len, ==, 2);
    bool saw_wav = false;
    for (unsigned i = 0; i < out->len; i++) {
        const hv_record_recovered *r = g_ptr_array_index(out, i);
        g_assert_false(g_str_has_suffix(r->path, ".part"));
        g_assert_true(g_file_test(r->path, G_FILE_TEST_IS_REGULAR));
        if (g_str_has_suffix(r->path, ".wav")) {
            saw_wav = true;
            g_assert_cmpint(r->duration_ms, ==, 500);
            g_assert_cmpuint(r->bytes, ==, 44 + 24000 * 4);
        } else {
            g_assert_cmpint(r->duration_ms, ==, -1);
        }
    }
    g_assert_true(saw_wav);
    /* Not ours, a symlink, and a name that would overwrite a finished file: left alone. */
    g_assert_true(g_file_test(txt, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(link, G_FILE_TEST_IS_SYMLINK));
    g_assert_true(g_file_test(dup, G_FILE_TEST_EXISTS));
    g_autofree char *old = NULL;
    g_assert_true(g_file_get_contents(dup_final, &old, NULL, NULL));
    g_assert_cmpstr(old, ==, "old");
    g_assert_null(hv_record_recover("/nonexistent/haven", &error));
    g_assert_nonnull(error);
    rm_rf(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/record/wav/header", test_wav_header);
    g_test_add_func("/record/wav/writer", test_wav_writer);
    g_test_add_func("/record/wav/repair", test_wav_repair);
    g_test_add_func("/record/base-path", test_base_path);
    g_test_add_func("/record/recover", test_recover);
    return g_test_run();
}

/* Test helpers shared by the unit-test programs: where the fixtures are (HAVEN_TEST_DATA, set by
 * meson test) and reading one whole. Header-only; each function aborts the test on failure. */
#ifndef HV_TEST_FIXTURE_H
#define HV_TEST_FIXTURE_H

#include <glib.h>

/* (transfer full) The path of a file under tests/data. */
static inline char *
hv_test_data_path(const char *rel)
{
    const char *root = g_getenv("HAVEN_TEST_DATA");
    if (root == NULL) {
        g_error("HAVEN_TEST_DATA is not set (run the tests with meson test)");
    }
    return g_build_filename(root, rel, NULL);
}

/* (transfer full) The contents of a file, NUL-terminated; len (nullable) gets its size. */
static inline char *
hv_test_read_file(const char *path, gsize *len)
{
    char *text = NULL;
    GError *error = NULL;
    if (!g_file_get_contents(path, &text, len, &error)) {
        g_error("cannot read %s: %s", path, error->message);
    }
    return text;
}

/* (transfer full) The contents of a file under tests/data. */
static inline char *
hv_test_read_fixture(const char *rel, gsize *len)
{
    g_autofree char *path = hv_test_data_path(rel);
    return hv_test_read_file(path, len);
}

#endif

/* Shared by the fuzz targets (tests/fuzz/fuzz-*.c): quiet logging that still turns a GLib
 * critical (a failed g_return_if_fail, i.e. a broken precondition reached from outside input)
 * into a crash, and small helpers to cut an input into parts. Header-only.
 *
 * A target must touch neither the network nor the disk: everything it needs is built in
 * memory in LLVMFuzzerInitialize (which the replay driver, standalone.c, calls too).
 */
#ifndef HV_FUZZ_COMMON_H
#define HV_FUZZ_COMMON_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Messages, info and debug lines are dropped (they cost time and say nothing here); warnings
 * are printed; criticals and errors abort, so libFuzzer records them as crashes. */
static GLogWriterOutput
hv_fuzz_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer user)
{
    (void)user;
    if ((level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) == 0) {
        return G_LOG_WRITER_HANDLED;
    }
    const char *domain = "", *message = "";
    for (gsize i = 0; i < n_fields; i++) {
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0) {
            domain = fields[i].value;
        } else if (strcmp(fields[i].key, "MESSAGE") == 0 && fields[i].length < 0) {
            message = fields[i].value;
        }
    }
    fprintf(stderr, "%s %s: %s\n", (level & G_LOG_LEVEL_WARNING) ? "WARNING" : "CRITICAL", domain,
            message);
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
        abort();
    }
    return G_LOG_WRITER_HANDLED;
}

static inline void
hv_fuzz_setup_logging(void)
{
    g_log_set_writer_func(hv_fuzz_log_writer, NULL, NULL);
}

/* A NUL-terminated copy of data[0, size) (transfer full; g_free). Inner NUL bytes stay, so C
 * string functions see the input up to its first NUL, as they would see a C string from lws. */
static inline char *
hv_fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = g_malloc(size + 1);
    if (size > 0) {
        memcpy(s, data, size);
    }
    s[size] = '\0';
    return s;
}

/* Splits data at '\n' into NUL-terminated lines (transfer full; g_strfreev). A line holding a
 * NUL byte ends there, as a C string would. */
static inline char **
hv_fuzz_lines(const uint8_t *data, size_t size)
{
    g_autofree char *text = hv_fuzz_strndup(data, size);
    GPtrArray *lines = g_ptr_array_new();
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            g_ptr_array_add(lines, g_strndup(text + start, i - start));
            start = i + 1;
        }
    }
    g_ptr_array_add(lines, NULL);
    return (char **)g_ptr_array_free(lines, FALSE);
}

/* Reads one frame "[u16 big-endian length][bytes]" from *data; a length running past the end
 * takes what is left. Returns false when nothing is left. */
static inline bool
hv_fuzz_next_frame(const uint8_t **data, size_t *size, const uint8_t **frame, size_t *len)
{
    if (*size == 0) {
        return false;
    }
    if (*size < 2) {
        *frame = *data;
        *len = *size;
        *data += *size;
        *size = 0;
        return true;
    }
    size_t n = ((size_t)(*data)[0] << 8) | (*data)[1];
    *data += 2;
    *size -= 2;
    if (n > *size) {
        n = *size;
    }
    *frame = *data;
    *len = n;
    *data += n;
    *size -= n;
    return true;
}

/* Decodes %XX escapes (and '+' as a space in query arguments) in place, as lws does before
 * the handlers see a path or an argument; a decoded NUL ends the string, as it would in lws. */
static inline void
hv_fuzz_url_decode(char *s, bool plus_is_space)
{
    char *out = s;
    for (char *p = s; *p != '\0'; p++) {
        if (*p == '%' && g_ascii_isxdigit(p[1]) && g_ascii_isxdigit(p[2])) {
            char c = (char)(g_ascii_xdigit_value(p[1]) * 16 + g_ascii_xdigit_value(p[2]));
            p += 2;
            if (c == '\0') {
                break;
            }
            *out++ = c;
        } else if (*p == '+' && plus_is_space) {
            *out++ = ' ';
        } else {
            *out++ = *p;
        }
    }
    *out = '\0';
}

#endif

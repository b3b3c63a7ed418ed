/* LeakSanitizer and GLib's quark table, for sanitizer builds only (compiled into every program
 * of such a build through hv_sanitizer_dep, see meson.build; empty otherwise).
 *
 * GLib keeps quarks in an array of 2048 slots, made by its library constructor. When the array
 * is full, quark_new() (gquark.c) allocates a bigger one, copies the pointers and drops the old
 * array without freeing it, on purpose: readers look quarks up without a lock and may still be
 * reading the old one ("This leaks the old quarks array"). GStreamer's registry interns
 * thousands of names, so every GStreamer program leaves one or two such arrays (16 KiB, 32 KiB)
 * that LeakSanitizer reports at exit.
 *
 * A suppression in lsan.supp cannot match them: GLib and GStreamer are built without frame
 * pointers, so the fast unwinder stops every such stack at g_malloc, and the slow unwinder
 * (fast_unwind_on_malloc=0) makes OpenSSL's loading of the CA bundle take 20 s under ASan,
 * longer than the LiveKit connect timeout. So this file recognises exactly those arrays as they
 * are allocated and tells LeakSanitizer to ignore them, and nothing else:
 *
 *   - an allocation of 8 * (n + 2048) bytes made while GLib holds exactly n quarks (quarks
 *     1 .. n-1 exist, quark n does not): that is quark_new() growing the table at n; GLib holds
 *     the quark lock meanwhile, so the count cannot change under the check;
 *   - the first array (n = 0, 16 KiB), made by GLib's constructor before main: an allocation of
 *     that size made before any quark exists and before main.
 *
 * Any other leak, GLib's or ours, is still reported. */
#include <stdbool.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HV_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define HV_ASAN 1
#endif

#ifdef HV_ASAN
#include <glib.h>
#include <sanitizer/lsan_interface.h>

/* From compiler-rt's sanitizer/allocator_interface.h, which gcc does not install; libasan
 * exports it. */
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));

#define QUARK_BLOCK_SIZE 2048 /* gquark.c */

static volatile bool before_main = true;

static void
on_malloc(const volatile void *ptr, size_t size)
{
    if (size < QUARK_BLOCK_SIZE * sizeof(char *) ||
        size % (QUARK_BLOCK_SIZE * sizeof(char *)) != 0) {
        return;
    }
    size_t n = size / sizeof(char *) - QUARK_BLOCK_SIZE;
    bool quark_table;
    if (n == 0) {
        quark_table = before_main && g_quark_to_string(1) == NULL;
    } else {
        /* g_quark_to_string() takes no lock and allocates nothing. */
        quark_table = n <= G_MAXUINT32 && g_quark_to_string((GQuark)(n - 1)) != NULL &&
                      g_quark_to_string((GQuark)n) == NULL;
    }
    if (quark_table) {
        __lsan_ignore_object((const void *)ptr);
    }
}

static void
on_free(const volatile void *ptr)
{
    (void)ptr;
}

/* Before any shared library's constructor, so that GLib's first array is seen too. */
static void
install_hooks(void)
{
    (void)__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}
__attribute__((section(".preinit_array"),
               used)) static void (*const hv_preinit)(void) = install_hooks;

/* The executable's constructors run after those of the libraries, just before main. */
__attribute__((constructor)) static void
main_is_next(void)
{
    before_main = false;
}
#endif

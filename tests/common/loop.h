/* Main-loop helpers shared by the test programs that drive lws or GLib sources on the default
 * context (the LiveKit signalling and the viewer proxy tests). Header-only. */
#ifndef HV_TEST_LOOP_H
#define HV_TEST_LOOP_H

#include <glib.h>
#include <stdbool.h>

typedef bool (*predicate)(void *data);

static inline gboolean
hv_test_on_wake(gpointer data)
{
    *(bool *)data = true;
    return G_SOURCE_REMOVE;
}

/* Iterates the default context until pred(data) holds or timeout_ms passes. */
static inline bool
wait_for(predicate pred, void *data, int timeout_ms)
{
    bool timed_out = false;
    guint id = g_timeout_add(timeout_ms, hv_test_on_wake, &timed_out);
    while (!pred(data) && !timed_out) {
        g_main_context_iteration(NULL, TRUE);
    }
    if (!timed_out) {
        g_source_remove(id);
    }
    return pred(data);
}

static inline bool
never(void *data)
{
    (void)data;
    return false;
}

/* Runs the default context for ms. */
static inline void
run_for(int ms)
{
    (void)wait_for(never, NULL, ms);
}

#endif

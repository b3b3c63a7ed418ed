/* Logging: GLib structured logging with one domain per module ("hv-<module>"), printed as
 * human-readable lines or JSON lines on stderr. Installed once on the main thread at startup;
 * the writer itself is thread-safe (GLib serialises calls to it).
 */
#ifndef HV_CORE_LOG_H
#define HV_CORE_LOG_H

#include <glib.h>
#include <stdbool.h>

/* level: "error" | "warning" | "info" | "debug"; json: JSON lines instead of text.
 * G_MESSAGES_DEBUG=hv-pumpfun,... still enables debug output for single domains. */
void hv_log_init(const char *level, bool json);

#endif

/* haven error codes: one table for internal return codes, GError codes and HTTP mapping.
 *
 * Internal functions return 0 or a negative HV_E* code; functions whose failure an operator
 * reads about take a GError ** in the HV_ERROR domain, with the same codes.
 */
#ifndef HV_CORE_ERROR_H
#define HV_CORE_ERROR_H

#include <glib.h>

#define HV_ERRNO_MAP(XX)                       \
    XX(EINVAL, "invalid argument")             \
    XX(ENOMEM, "out of memory")                \
    XX(EAGAIN, "try again later")              \
    XX(ENOTFOUND, "no such stream")            \
    XX(EPROTO, "protocol error from peer")     \
    XX(ETIMEDOUT, "timed out")                 \
    XX(EIO, "i/o error")                       \
    XX(ECLOSED, "object is shutting down")     \
    XX(EUPSTREAM, "upstream service failed")   \
    XX(ERATELIMIT, "rate limited by upstream") \
    XX(ECONFIG, "invalid configuration")

typedef enum {
    HV_OK = 0,
#define HV_ERR_ENUM(name, msg) HV_##name,
    HV_EFIRST_ = -100, /* codes count up from here so that they stay negative */
    HV_ERRNO_MAP(HV_ERR_ENUM)
#undef HV_ERR_ENUM
} hv_err;

#define HV_ERROR (hv_error_quark())
GQuark hv_error_quark(void);

/* A static English description of code (never NULL). */
const char *hv_strerror(int code);
/* The symbolic name of code, e.g. "ENOTFOUND" (never NULL). */
const char *hv_err_name(int code);

/* Defensive "cannot happen" check (SQLite's NEVER): asserts in debug builds, logs otherwise. */
#ifdef NDEBUG
#define HV_NEVER(x) ((x) ? (g_critical("HV_NEVER(%s) at %s:%d", #x, __FILE__, __LINE__), 1) : 0)
#else
#define HV_NEVER(x) ((x) ? (g_assert_not_reached(), 1) : 0)
#endif

#endif

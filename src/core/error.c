/* Error code names and descriptions, generated from HV_ERRNO_MAP. Pure, thread-safe. */
#include "error.h"

GQuark
hv_error_quark(void)
{
    return g_quark_from_static_string("hv-error-quark");
}

const char *
hv_strerror(int code)
{
    switch (code) {
    case HV_OK:
        return "success";
#define HV_ERR_MSG(name, msg) \
    case HV_##name:           \
        return msg;
        HV_ERRNO_MAP(HV_ERR_MSG)
#undef HV_ERR_MSG
    default:
        return "unknown error";
    }
}

const char *
hv_err_name(int code)
{
    switch (code) {
    case HV_OK:
        return "OK";
#define HV_ERR_NAME(name, msg) \
    case HV_##name:            \
        return #name;
        HV_ERRNO_MAP(HV_ERR_NAME)
#undef HV_ERR_NAME
    default:
        return "EUNKNOWN";
    }
}

/* g_autoptr() support for jansson values (header only: jansson's json_decref is inline). */
#ifndef HV_CORE_JSON_H
#define HV_CORE_JSON_H

#include <glib.h>
#include <jansson.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_t, json_decref)

#endif

/* The option table's row type, shared by config.c (parsing), config_options.c (the table)
 * and config_print.c (help, --print-config, docs). Not for other modules. */
#ifndef HV_CORE_CONFIG_PRIVATE_H
#define HV_CORE_CONFIG_PRIVATE_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    OPT_STRING,
    OPT_STRING_EMPTY, /* a string that may be empty */
    OPT_INT,
    OPT_DURATION,
    OPT_CHOICE,
    OPT_URL,
    OPT_WS_URL,
    OPT_LISTEN,
    OPT_BOOL,   /* "--flag" alone means true; values true/false, 1/0, yes/no, on/off */
    OPT_ORIGINS /* "", "*" or a comma list of exact origins (scheme://host[:port]) */
} opt_type;

typedef struct {
    const char *name; /* long flag without "--" */
    const char *env;
    opt_type type;
    const char *def;
    int64_t min, max;    /* OPT_INT / OPT_DURATION (ms) bounds */
    const char *choices; /* OPT_CHOICE: '|'-separated */
    /* A secret is printed as *** and read from the environment or a private configuration
     * file only: command-line flags are visible to every user in ps. */
    bool secret;
    size_t offset; /* into hv_config */
    const char *help;
} opt_row;

#define OFF(field) offsetof(hv_config, field)
#define DAY_MS     (86400000LL)

extern const opt_row hv_config_options[];
extern const size_t hv_config_n_options;
/* The row of a flag name ("listen"), or NULL. */
const opt_row *hv_config_find_option(const char *flag);

#endif

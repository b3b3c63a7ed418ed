/* Small pure helpers shared by every module: identifiers, durations, time. Thread-safe. */
#ifndef HV_CORE_UTIL_H
#define HV_CORE_UTIL_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A Solana mint address: base58 text that decodes to exactly 32 bytes (32..44 characters). */
#define HV_MINT_MAX_LEN 44
bool hv_mint_id_is_valid(const char *s);

/* Decodes base58 text into out (big-endian). Returns the decoded length, or -1 when s holds a
 * character outside the alphabet or the value does not fit in out_len bytes. */
int hv_base58_decode(const char *s, uint8_t *out, size_t out_len);

/* Parses a duration such as "10", "1.5s", "500ms", "2m", "1h", "30d" (a bare number means
 * seconds) into milliseconds. Returns false on malformed or negative input. */
bool hv_parse_duration_ms(const char *s, int64_t *out_ms);

/* Parses a whole decimal number; the entire string must be the number (no spaces, no sign
 * other than a leading '-'). */
bool hv_parse_int64(const char *s, int64_t *out);

/* v truncated to an integer, clamped to int64_t's range (NaN gives 0). Converting a double
 * outside that range with a cast is undefined behaviour; JSON numbers can be anything. */
int64_t hv_int64_from_double(double v);

/* Formats a finite double in the shortest form that reads back to the same value (as
 * JavaScript and Python print numbers): 4120.55, not 4120.5500000000002. Non-finite → "null". */
void hv_format_double(double v, char *buf, size_t len);

/* Monotonic clock in milliseconds (for ages and timers). */
int64_t hv_now_ms(void);
/* Wall clock in milliseconds since the Unix epoch (for stored metadata only). */
int64_t hv_wall_ms(void);
/* Formats a wall-clock time as "2026-11-24T15:00:00.123Z" into buf (>= 25 bytes). */
void hv_format_iso8601(int64_t wall_ms, char *buf, size_t len);

#endif

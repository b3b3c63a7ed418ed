/* hv_buf: haven's one kind of shared bytes. Immutable once published, atomically refcounted,
 * in one allocation: a small metadata block for the module that made it, HV_BUF_HEADROOM
 * writable bytes in front of the data (libwebsockets' LWS_PRE: a WebSocket or HTTP writer
 * frames it in place, without a copy), then the data.
 *
 * The media module's frames (hv_frame), the hub's messages (hv_hub_msg) and the HTTP server's
 * cached bodies (hv_http_body) are all hv_bufs: a JPEG or encoded frame made on a GStreamer
 * thread is the very message the hub hands to every viewer's socket.
 *
 * A buffer is filled by its maker (data, metadata, flags, stamp) before anyone else holds a
 * reference; after that nobody writes to it, and any thread may ref/unref it.
 */
#ifndef HV_CORE_BUF_H
#define HV_CORE_BUF_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HV_BUF_HEADROOM 32 /* >= LWS_PRE (16 on Debian's libwebsockets 4.1) */

typedef struct hv_buf hv_buf;

enum {
    HV_BUF_BINARY = 1u << 0, /* sent as a binary WebSocket message (else text) */
};

/* (transfer full) len bytes of data (uninitialised) and meta_size bytes of zeroed metadata. */
hv_buf *hv_buf_new(size_t len, size_t meta_size);
/* (transfer full) A buffer holding a copy of data, no metadata. */
hv_buf *hv_buf_new_copy(const void *data, size_t len);
hv_buf *hv_buf_ref(hv_buf *b);
void hv_buf_unref(hv_buf *b); /* NULL-safe */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(hv_buf, hv_buf_unref)

uint8_t *hv_buf_data(hv_buf *b); /* with HV_BUF_HEADROOM writable bytes before it */
const uint8_t *hv_buf_data_const(const hv_buf *b);
size_t hv_buf_len(const hv_buf *b);
/* The maker may shorten the data once it knows its real size (never lengthen it). */
void hv_buf_truncate(hv_buf *b, size_t len);
void *hv_buf_meta(hv_buf *b);
const void *hv_buf_meta_const(const hv_buf *b);

unsigned hv_buf_flags(const hv_buf *b);
void hv_buf_set_flags(hv_buf *b, unsigned flags);
/* When the media in the buffer arrived (g_get_monotonic_time() µs), for latency figures;
 * 0 = unknown. */
int64_t hv_buf_stamp_us(const hv_buf *b);
void hv_buf_set_stamp_us(hv_buf *b, int64_t stamp_us);
/* release(data) runs when the last reference goes (e.g. to drop buffers the metadata points
 * to). One per buffer. */
void hv_buf_set_release(hv_buf *b, GDestroyNotify release, gpointer data);

#endif

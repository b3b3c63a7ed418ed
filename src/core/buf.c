/* hv_buf (see buf.h): one allocation holding the header, the metadata (rounded up to 16
 * bytes), HV_BUF_HEADROOM spare bytes and the data. */
#include "core/buf.h"

#include <stdalign.h>
#include <string.h>

struct hv_buf {
    gatomicrefcount ref;
    unsigned flags;
    int64_t stamp_us;
    size_t len;
    size_t meta_size; /* rounded up to 16 */
    GDestroyNotify release;
    gpointer release_data;
    /* meta_size bytes of metadata, HV_BUF_HEADROOM bytes, then len bytes of data. Aligned so
     * the metadata and the data are too. */
    alignas(16) uint8_t bytes[];
};

G_STATIC_ASSERT(HV_BUF_HEADROOM % 16 == 0);

hv_buf *
hv_buf_new(size_t len, size_t meta_size)
{
    size_t meta = (meta_size + 15) & ~(size_t)15;
    g_return_val_if_fail(len <= G_MAXSIZE - sizeof(hv_buf) - HV_BUF_HEADROOM - meta, NULL);
    hv_buf *b = g_malloc(sizeof(*b) + meta + HV_BUF_HEADROOM + len);
    g_atomic_ref_count_init(&b->ref);
    b->flags = 0;
    b->stamp_us = 0;
    b->len = len;
    b->meta_size = meta;
    b->release = NULL;
    b->release_data = NULL;
    memset(b->bytes, 0, meta);
    return b;
}

hv_buf *
hv_buf_new_copy(const void *data, size_t len)
{
    hv_buf *b = hv_buf_new(len, 0);
    if (len > 0) {
        memcpy(hv_buf_data(b), data, len);
    }
    return b;
}

hv_buf *
hv_buf_ref(hv_buf *b)
{
    g_return_val_if_fail(b != NULL, NULL);
    g_atomic_ref_count_inc(&b->ref);
    return b;
}

void
hv_buf_unref(hv_buf *b)
{
    if (b != NULL && g_atomic_ref_count_dec(&b->ref)) {
        if (b->release != NULL) {
            b->release(b->release_data);
        }
        g_free(b);
    }
}

uint8_t *
hv_buf_data(hv_buf *b)
{
    return b->bytes + b->meta_size + HV_BUF_HEADROOM;
}

const uint8_t *
hv_buf_data_const(const hv_buf *b)
{
    return b->bytes + b->meta_size + HV_BUF_HEADROOM;
}

size_t
hv_buf_len(const hv_buf *b)
{
    return b->len;
}

void
hv_buf_truncate(hv_buf *b, size_t len)
{
    g_return_if_fail(len <= b->len);
    b->len = len;
}

void *
hv_buf_meta(hv_buf *b)
{
    return b->bytes;
}

const void *
hv_buf_meta_const(const hv_buf *b)
{
    return b->bytes;
}

unsigned
hv_buf_flags(const hv_buf *b)
{
    return b->flags;
}

void
hv_buf_set_flags(hv_buf *b, unsigned flags)
{
    b->flags = flags;
}

int64_t
hv_buf_stamp_us(const hv_buf *b)
{
    return b->stamp_us;
}

void
hv_buf_set_stamp_us(hv_buf *b, int64_t stamp_us)
{
    b->stamp_us = stamp_us;
}

void
hv_buf_set_release(hv_buf *b, GDestroyNotify release, gpointer data)
{
    b->release = release;
    b->release_data = data;
}

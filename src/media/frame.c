/* hv_frame: the immutable, atomically refcounted media unit (one JPEG or one PCM chunk).
 *
 * One allocation holds the header, HV_FRAME_HEADROOM spare bytes for a WebSocket writer's
 * framing (LWS_PRE) and the payload. A frame is filled on the GStreamer thread that produced it
 * and is read-only once published; after that any thread may ref/unref it, and the last unref
 * (on whichever thread) frees it. Nothing else is owned.
 */
#include "media/frame.h"

#include <stdalign.h>
#include <stddef.h>

struct hv_frame {
    gatomicrefcount ref;
    hv_frame_kind kind;
    size_t len;
    hv_frame_info info;
    /* HV_FRAME_HEADROOM bytes, then len bytes of payload. Aligned so the payload is too. */
    alignas(16) uint8_t bytes[];
};

G_STATIC_ASSERT(HV_FRAME_HEADROOM % 16 == 0);

hv_frame *
hv_frame_new(hv_frame_kind kind, size_t len)
{
    g_return_val_if_fail(len <= G_MAXSIZE - sizeof(hv_frame) - HV_FRAME_HEADROOM, NULL);
    hv_frame *f = g_malloc(sizeof(*f) + HV_FRAME_HEADROOM + len);
    g_atomic_ref_count_init(&f->ref);
    f->kind = kind;
    f->len = len;
    f->info = (hv_frame_info){0};
    return f;
}

hv_frame *
hv_frame_ref(hv_frame *f)
{
    g_return_val_if_fail(f != NULL, NULL);
    g_atomic_ref_count_inc(&f->ref);
    return f;
}

void
hv_frame_unref(hv_frame *f)
{
    if (f == NULL) {
        return;
    }
    if (g_atomic_ref_count_dec(&f->ref)) {
        g_free(f);
    }
}

uint8_t *
hv_frame_payload(hv_frame *f)
{
    return f->bytes + HV_FRAME_HEADROOM;
}

const uint8_t *
hv_frame_payload_const(const hv_frame *f)
{
    return f->bytes + HV_FRAME_HEADROOM;
}

size_t
hv_frame_len(const hv_frame *f)
{
    return f->len;
}

hv_frame_kind
hv_frame_kind_of(const hv_frame *f)
{
    return f->kind;
}

hv_frame_info *
hv_frame_info_of(hv_frame *f)
{
    return &f->info;
}

const hv_frame_info *
hv_frame_info_const(const hv_frame *f)
{
    return &f->info;
}

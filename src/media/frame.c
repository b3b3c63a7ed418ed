/* hv_frame (frame.h): an hv_buf whose metadata is the frame's kind and hv_frame_info. */
#include "media/frame.h"

typedef struct {
    hv_frame_kind kind;
    hv_frame_info info;
} frame_meta;

hv_frame *
hv_frame_new(hv_frame_kind kind, size_t len)
{
    hv_frame *f = hv_buf_new(len, sizeof(frame_meta));
    ((frame_meta *)hv_buf_meta(f))->kind = kind;
    if (kind == HV_FRAME_JPEG || kind == HV_FRAME_ENCODED) {
        hv_buf_set_flags(f, HV_BUF_BINARY);
    }
    return f;
}

hv_frame_kind
hv_frame_kind_of(const hv_frame *f)
{
    return ((const frame_meta *)hv_buf_meta_const(f))->kind;
}

hv_frame_info *
hv_frame_info_of(hv_frame *f)
{
    return &((frame_meta *)hv_buf_meta(f))->info;
}

const hv_frame_info *
hv_frame_info_const(const hv_frame *f)
{
    return &((const frame_meta *)hv_buf_meta_const(f))->info;
}

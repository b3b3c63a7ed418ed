/* msg.c: the hub's messages (hub.h): copies and the seed's "audio:" text. */
#include "hub/hub-private.h"

#include <string.h>

hv_hub_msg *
hv_hub_msg_new_copy(bool binary, const void *data, size_t len)
{
    hv_hub_msg *m = hv_buf_new_copy(data, len);
    hv_buf_set_flags(m, binary ? HV_BUF_BINARY : 0);
    return m;
}

hv_hub_msg *
hv_hub_msg_new_audio_text(const uint8_t *pcm, size_t len)
{
    static const char prefix[] = "audio:";
    size_t b64_max = (len / 3 + 1) * 4 + 4;
    hv_hub_msg *m = hv_buf_new(sizeof(prefix) - 1 + b64_max, 0);
    uint8_t *data = hv_buf_data(m);
    memcpy(data, prefix, sizeof(prefix) - 1);
    gint state = 0, save = 0;
    char *out = (char *)data + sizeof(prefix) - 1;
    gsize n = g_base64_encode_step(pcm, len, FALSE, out, &state, &save);
    n += g_base64_encode_close(FALSE, out + n, &state, &save);
    hv_buf_truncate(m, sizeof(prefix) - 1 + n);
    return m;
}

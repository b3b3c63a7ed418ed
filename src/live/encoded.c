/* encoded.c: a session's encoded viewers (?mode=encoded): the media session's encoded frames go
 * into the hub's GOP cache, with a format message whenever the codec, the picture size or the
 * audio channels change. Main thread only.
 *
 * Timestamps stay monotonic across reconnects: each new media session starts its encoded
 * timeline after the last timestamp published (hv_live_enc_ts_base), so a viewer's decoder
 * never sees time go back.
 */
#include "live/live-private.h"

#include "core/json.h"
#include "core/metrics.h"

#include <jansson.h>
#include <string.h>

/* The format message for what the session publishes now. */
static void
publish_format(hv_live_session *s)
{
    g_autoptr(json_t) video = json_null();
    if (s->enc_codec[0] != '\0') {
        json_decref(video);
        video = json_pack("{s:s, s:i, s:i, s:n}", "codec", s->enc_codec, "width", s->enc_width,
                          "height", s->enc_height, "description");
    }
    g_autoptr(json_t) audio = json_null();
    if (s->enc_channels > 0) {
        json_decref(audio);
        audio = json_pack("{s:s, s:i, s:i}", "codec", "opus", "sample_rate", 48000, "channels",
                          s->enc_channels);
    }
    g_autoptr(json_t) fmt =
        json_pack("{s:s, s:s, s:s, s:O, s:O}", "type", "format", "mode", "encoded", "mint_id",
                  s->mint, "video", video, "audio", audio);
    g_autofree char *text = json_dumps(fmt, JSON_COMPACT);
    hv_hub_channel_set_encoded_format(s->channel, text, s->enc_codec[0] != '\0');
}

void
hv_live_enc_init(hv_live_session *s)
{
    hv_hub_channel_set_gop_limit(s->channel, (size_t)s->live->cfg->gop_cache_bytes);
    publish_format(s);
}

int64_t
hv_live_enc_ts_base(const hv_live_session *s)
{
    /* The new pipeline's running time is added to this, and it is above zero by the time
     * the first packet arrives. */
    return s->enc_last_ts_us > 0 ? s->enc_last_ts_us + 1 : 0;
}

void
hv_live_enc_on_frame(hv_live_session *s, hv_frame *f)
{
    const hv_frame_info *fi = hv_frame_info_const(f);
    bool changed = false;
    if (fi->encoded_video && fi->key &&
        (strcmp(fi->codec, s->enc_codec) != 0 || fi->width != s->enc_width ||
         fi->height != s->enc_height)) {
        g_strlcpy(s->enc_codec, fi->codec, sizeof(s->enc_codec));
        s->enc_width = fi->width;
        s->enc_height = fi->height;
        changed = true;
        HV_INFO(S_CTX(s), "encoded viewers: video %s %dx%d", fi->codec, fi->width, fi->height);
    } else if (!fi->encoded_video && fi->channels != s->enc_channels) {
        s->enc_channels = fi->channels;
        changed = true;
    }
    if (changed) {
        publish_format(s);
    }
    if (fi->pts_us > s->enc_last_ts_us) {
        s->enc_last_ts_us = fi->pts_us;
    }
    /* The frame, header included, is the message (both hv_bufs): shared, never copied. */
    hv_hub_channel_publish_encoded(s->channel, f, fi->encoded_video, fi->key);
}

void
hv_live_enc_keyframe_wanted(void *user_data)
{
    hv_live_session *s = user_data;
    if (s->media != NULL) {
        hv_media_session_request_keyframe(s->media);
    }
}

/* passthrough.c: the encoded stream for encoded viewers (?mode=encoded, docs/API.md).
 *
 * What the depayloaders give (H.264/H.265 access units, length-prefixed with an avcC/hvcC
 * codec_data or in Annex B; VP8/VP9 frames; Opus packets) becomes the viewers' binary
 * messages: a 10-byte header (kind, flags, timestamp in µs, big-endian), then
 *   - H.264/H.265: the access unit in Annex B (4-byte start codes, no access unit delimiters),
 *     with the newest parameter sets (VPS,) SPS, PPS in front of every key frame, so a browser's
 *     VideoDecoder can start at any key frame without a description;
 *   - VP8/VP9: the frame as is; Opus: the packet as is.
 * Each video key frame also says its WebCodecs codec string and picture size, from its SPS
 * (GStreamer's codecparsers) or frame header, so viewers get a new format message when either
 * changes. After a loss (hv_media_pt_video_lost, or a frame that cannot be read) video resumes
 * at the next key frame, so a viewer's decoder never sees a broken reference chain.
 *
 * The converter (hv_media_pt_video) is plain code on bytes, used by one streaming thread at a
 * time; the tap below feeds it from the session's selected tracks and posts the frames to the
 * main thread.
 */
#include "media/media-private.h"

#include <gst/codecparsers/gsth264parser.h>
#include <gst/codecparsers/gsth265parser.h>
#include <gst/codecparsers/gstvp9parser.h>
#include <string.h>

enum { PS_VPS, PS_SPS, PS_PPS, PS_COUNT };

struct hv_media_pt_video {
    hv_media_pt_codec codec;
    unsigned nal_len;     /* bytes of each NAL unit's length prefix; 0: Annex B start codes */
    GBytes *ps[PS_COUNT]; /* the newest parameter sets, NAL units without start codes */
    GBytes *format_sps;   /* the SPS the format below was read from */
    char codec_str[40];   /* "" until the first key frame */
    int width, height;
    bool need_key;       /* drop video until the next key frame */
    GstH265Parser *h265; /* for the H.265 SPS (it wants its VPS first) */
    GstVp9Parser *vp9;
};

typedef struct {
    const uint8_t *p;
    size_t n;
} nal_unit;

/* ---- helpers ----------------------------------------------------------------------------- */

void
hv_media_pt_write_header(uint8_t *out, int kind, bool key, int64_t ts_us)
{
    uint64_t ts = ts_us > 0 ? (uint64_t)ts_us : 0;
    out[0] = (uint8_t)kind;
    out[1] = key ? HV_FRAME_ENCODED_FLAG_KEY : 0;
    for (int i = 0; i < 8; i++) {
        out[2 + i] = (uint8_t)(ts >> (56 - 8 * i));
    }
}

hv_media_pt_codec
hv_media_pt_codec_from_caps_name(const char *name)
{
    static const struct {
        const char *caps;
        hv_media_pt_codec codec;
    } map[] = {{"video/x-h264", HV_MEDIA_PT_H264},
               {"video/x-h265", HV_MEDIA_PT_H265},
               {"video/x-vp8", HV_MEDIA_PT_VP8},
               {"video/x-vp9", HV_MEDIA_PT_VP9}};
    for (size_t i = 0; name != NULL && i < G_N_ELEMENTS(map); i++) {
        if (strcmp(name, map[i].caps) == 0) {
            return map[i].codec;
        }
    }
    return HV_MEDIA_PT_NONE;
}

static bool
is_h26x(const hv_media_pt_video *pt)
{
    return pt->codec == HV_MEDIA_PT_H264 || pt->codec == HV_MEDIA_PT_H265;
}

/* The parameter-set slot of a NAL unit (PS_COUNT: not one), whether it starts a key frame
 * (IDR / IRAP), and whether it is an access unit delimiter. */
static int
nal_kind(const hv_media_pt_video *pt, const nal_unit *u, bool *key, bool *aud)
{
    *key = *aud = false;
    if (u->n == 0) {
        return PS_COUNT;
    }
    if (pt->codec == HV_MEDIA_PT_H264) {
        int type = u->p[0] & 0x1f;
        *key = type == 5;
        *aud = type == 9;
        return type == 7 ? PS_SPS : type == 8 ? PS_PPS : PS_COUNT;
    }
    int type = (u->p[0] >> 1) & 0x3f;
    *key = type >= 16 && type <= 21;
    *aud = type == 35;
    return type == 32 ? PS_VPS : type == 33 ? PS_SPS : type == 34 ? PS_PPS : PS_COUNT;
}

/* Splits an access unit into NAL units (length-prefixed or Annex B). False when malformed. */
static bool
split_nals(const hv_media_pt_video *pt, const uint8_t *d, size_t len, GArray *out)
{
    if (pt->nal_len > 0) {
        size_t i = 0;
        while (i < len) {
            if (len - i < pt->nal_len) {
                return false;
            }
            size_t n = 0;
            for (unsigned k = 0; k < pt->nal_len; k++) {
                n = (n << 8) | d[i + k];
            }
            i += pt->nal_len;
            if (n > len - i) {
                return false;
            }
            nal_unit u = {d + i, n};
            g_array_append_val(out, u);
            i += n;
        }
        return true;
    }
    /* Annex B: units start after 00 00 01 (or 00 00 00 01) and end where the next one starts;
     * trailing zero bytes belong to the next start code. */
    size_t start = SIZE_MAX;
    size_t i = 0;
    while (i + 3 <= len) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 1) {
            if (start != SIZE_MAX) {
                size_t end = i;
                while (end > start && d[end - 1] == 0) {
                    end--;
                }
                nal_unit u = {d + start, end - start};
                g_array_append_val(out, u);
            }
            start = i + 3;
            i += 3;
        } else {
            i++;
        }
    }
    if (start == SIZE_MAX) {
        return false;
    }
    nal_unit u = {d + start, len - start};
    g_array_append_val(out, u);
    return true;
}

/* Up to max bytes of a NAL unit's payload after its header, emulation prevention removed. */
static size_t
rbsp_prefix(const nal_unit *u, size_t header, uint8_t *out, size_t max)
{
    size_t n = 0;
    unsigned zeros = 0;
    for (size_t i = header; i < u->n && n < max; i++) {
        if (zeros >= 2 && u->p[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = u->p[i] == 0 ? zeros + 1 : 0;
        out[n++] = u->p[i];
    }
    return n;
}

static uint32_t
reverse_bits32(uint32_t x)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i++) {
        r = (r << 1) | ((x >> i) & 1);
    }
    return r;
}

/* ---- formats from parameter sets and frame headers ------------------------------------------ */

static bool
format_h264(hv_media_pt_video *pt, const nal_unit *sps_nal)
{
    if (sps_nal->n < 4) {
        return false;
    }
    GstH264NalUnit nalu = {0};
    nalu.type = GST_H264_NAL_SPS;
    nalu.data = (guint8 *)sps_nal->p;
    nalu.size = (guint)sps_nal->n;
    nalu.header_bytes = 1;
    nalu.valid = TRUE;
    GstH264SPS sps;
    memset(&sps, 0, sizeof(sps));
    if (gst_h264_parse_sps(&nalu, &sps) != GST_H264_PARSER_OK) {
        return false;
    }
    pt->width = sps.frame_cropping_flag ? sps.crop_rect_width : sps.width;
    pt->height = sps.frame_cropping_flag ? sps.crop_rect_height : sps.height;
    gst_h264_sps_clear(&sps);
    /* RFC 6381: avc1.PPCCLL, profile_idc, the constraint flags byte, level_idc. */
    g_snprintf(pt->codec_str, sizeof(pt->codec_str), "avc1.%02X%02X%02X", sps_nal->p[1],
               sps_nal->p[2], sps_nal->p[3]);
    return true;
}

static bool
format_h265(hv_media_pt_video *pt, const nal_unit *vps_nal, const nal_unit *sps_nal)
{
    GstH265NalUnit nalu = {0};
    nalu.header_bytes = 2;
    nalu.valid = TRUE;
    if (vps_nal != NULL) {
        GstH265VPS vps;
        memset(&vps, 0, sizeof(vps));
        nalu.type = GST_H265_NAL_VPS;
        nalu.data = (guint8 *)vps_nal->p;
        nalu.size = (guint)vps_nal->n;
        (void)gst_h265_parser_parse_vps(pt->h265, &nalu, &vps);
    }
    GstH265SPS sps;
    memset(&sps, 0, sizeof(sps));
    nalu.type = GST_H265_NAL_SPS;
    nalu.data = (guint8 *)sps_nal->p;
    nalu.size = (guint)sps_nal->n;
    if (gst_h265_parser_parse_sps(pt->h265, &nalu, &sps, FALSE) != GST_H265_PARSER_OK) {
        return false;
    }
    pt->width = sps.conformance_window_flag ? sps.crop_rect_width : sps.width;
    pt->height = sps.conformance_window_flag ? sps.crop_rect_height : sps.height;
    /* ISO/IEC 14496-15 E.3, from the SPS's profile_tier_level as coded: byte 0 is
     * vps id / max sub-layers / nesting, then space(2) tier(1) profile(5), 32 compatibility
     * flags, 48 constraint bits, level_idc. */
    uint8_t b[13];
    if (rbsp_prefix(sps_nal, 2, b, sizeof(b)) < sizeof(b)) {
        return false;
    }
    static const char *const spaces[] = {"", "A", "B", "C"};
    uint32_t compat =
        ((uint32_t)b[2] << 24) | ((uint32_t)b[3] << 16) | ((uint32_t)b[4] << 8) | b[5];
    GString *s = g_string_new(NULL);
    g_string_printf(s, "hvc1.%s%u.%X.%c%u", spaces[b[1] >> 6], b[1] & 0x1f, reverse_bits32(compat),
                    (b[1] & 0x20) != 0 ? 'H' : 'L', b[12]);
    int last = 5; /* constraint bytes b[6..11], trailing zero bytes left out */
    while (last >= 0 && b[6 + last] == 0) {
        last--;
    }
    for (int i = 0; i <= last; i++) {
        g_string_append_printf(s, ".%X", b[6 + i]);
    }
    g_strlcpy(pt->codec_str, s->str, sizeof(pt->codec_str));
    g_string_free(s, TRUE);
    return true;
}

/* VP9 level (the codec string's LL) for a picture size: the smallest level whose maximum
 * picture size fits it (VP9 bitstream spec, Annex A). */
static int
vp9_level(int width, int height)
{
    static const struct {
        int64_t max_samples;
        int level;
    } levels[] = {{36864, 10},  {73728, 11},   {122880, 20},  {245760, 21},  {552960, 30},
                  {983040, 31}, {2228224, 40}, {8912896, 50}, {35651584, 60}};
    int64_t samples = (int64_t)width * height;
    for (size_t i = 0; i < G_N_ELEMENTS(levels); i++) {
        if (samples <= levels[i].max_samples) {
            return levels[i].level;
        }
    }
    return 62;
}

/* VP8/VP9: whether the frame is a key frame, and the format from its header if it is. */
static bool
vpx_frame(hv_media_pt_video *pt, const uint8_t *d, size_t len, bool *key)
{
    *key = false;
    if (pt->codec == HV_MEDIA_PT_VP8) {
        /* RFC 6386 9.1: frame tag bit 0 is 0 for key frames, which carry the start code
         * 9d 01 2a and 14-bit width and height. */
        if (len < 10) {
            return false;
        }
        *key = (d[0] & 1) == 0;
        if (*key) {
            if (d[3] != 0x9d || d[4] != 0x01 || d[5] != 0x2a) {
                return false;
            }
            pt->width = (d[6] | (d[7] << 8)) & 0x3fff;
            pt->height = (d[8] | (d[9] << 8)) & 0x3fff;
            g_strlcpy(pt->codec_str, "vp8", sizeof(pt->codec_str));
        }
        return true;
    }
    GstVp9FrameHdr hdr;
    memset(&hdr, 0, sizeof(hdr));
    if (gst_vp9_parser_parse_frame_header(pt->vp9, &hdr, d, len) != GST_VP9_PARSER_OK) {
        return false;
    }
    *key = !hdr.show_existing_frame && hdr.frame_type == GST_VP9_KEY_FRAME;
    if (*key) {
        pt->width = (int)hdr.width;
        pt->height = (int)hdr.height;
        unsigned depth = pt->vp9->bit_depth > 0 ? pt->vp9->bit_depth : 8;
        g_snprintf(pt->codec_str, sizeof(pt->codec_str), "vp09.%02u.%02d.%02u", hdr.profile,
                   vp9_level(pt->width, pt->height), depth);
    }
    return true;
}

/* ---- the converter ---------------------------------------------------------------------- */

hv_media_pt_video *
hv_media_pt_video_new(hv_media_pt_codec codec)
{
    hv_media_pt_video *pt = g_new0(hv_media_pt_video, 1);
    pt->codec = codec;
    pt->nal_len = 0;
    pt->need_key = true;
    if (codec == HV_MEDIA_PT_H265) {
        pt->h265 = gst_h265_parser_new();
    } else if (codec == HV_MEDIA_PT_VP9) {
        pt->vp9 = gst_vp9_parser_new();
    }
    return pt;
}

void
hv_media_pt_video_free(hv_media_pt_video *pt)
{
    if (pt == NULL) {
        return;
    }
    for (int i = 0; i < PS_COUNT; i++) {
        g_clear_pointer(&pt->ps[i], g_bytes_unref);
    }
    g_clear_pointer(&pt->format_sps, g_bytes_unref);
    if (pt->h265 != NULL) {
        gst_h265_parser_free(pt->h265);
    }
    if (pt->vp9 != NULL) {
        gst_vp9_parser_free(pt->vp9);
    }
    g_free(pt);
}

hv_media_pt_codec
hv_media_pt_video_codec(const hv_media_pt_video *pt)
{
    return pt->codec;
}

static void
keep_ps(hv_media_pt_video *pt, int slot, const nal_unit *u)
{
    if (pt->ps[slot] != NULL && g_bytes_get_size(pt->ps[slot]) == u->n &&
        memcmp(g_bytes_get_data(pt->ps[slot], NULL), u->p, u->n) == 0) {
        return;
    }
    g_clear_pointer(&pt->ps[slot], g_bytes_unref);
    pt->ps[slot] = g_bytes_new(u->p, u->n);
}

bool
hv_media_pt_video_set_codec_data(hv_media_pt_video *pt, const uint8_t *cd, size_t len)
{
    if (pt->codec == HV_MEDIA_PT_H264) {
        /* avcC (ISO/IEC 14496-15 5.3.3.1): version, profile, compat, level, 6 bits + length
         * size - 1, 3 bits + SPS count, SPSs (u16 length + bytes), PPS count, PPSs. */
        if (len < 7 || cd[0] != 1) {
            return false;
        }
        pt->nal_len = (cd[4] & 3) + 1u;
        size_t i = 5;
        for (int pass = 0; pass < 2; pass++) {
            if (i >= len) {
                return false;
            }
            unsigned count = pass == 0 ? (cd[i] & 0x1f) : cd[i];
            i++;
            for (unsigned k = 0; k < count; k++) {
                if (len - i < 2) {
                    return false;
                }
                size_t n = ((size_t)cd[i] << 8) | cd[i + 1];
                i += 2;
                if (n > len - i) {
                    return false;
                }
                nal_unit u = {cd + i, n};
                keep_ps(pt, pass == 0 ? PS_SPS : PS_PPS, &u);
                i += n;
            }
        }
        return true;
    }
    if (pt->codec == HV_MEDIA_PT_H265) {
        /* hvcC (ISO/IEC 14496-15 8.3.3.1): 22 bytes (length size - 1 in byte 21), then arrays
         * of NAL units by type. */
        if (len < 23 || cd[0] != 1) {
            return false;
        }
        pt->nal_len = (cd[21] & 3) + 1u;
        unsigned arrays = cd[22];
        size_t i = 23;
        for (unsigned a = 0; a < arrays; a++) {
            if (len - i < 3) {
                return false;
            }
            unsigned count = ((unsigned)cd[i + 1] << 8) | cd[i + 2];
            i += 3;
            for (unsigned k = 0; k < count; k++) {
                if (len - i < 2) {
                    return false;
                }
                size_t n = ((size_t)cd[i] << 8) | cd[i + 1];
                i += 2;
                if (n > len - i) {
                    return false;
                }
                nal_unit u = {cd + i, n};
                bool key = false, aud = false;
                int slot = nal_kind(pt, &u, &key, &aud);
                if (slot < PS_COUNT) {
                    keep_ps(pt, slot, &u);
                }
                i += n;
            }
        }
        return true;
    }
    return false;
}

void
hv_media_pt_video_set_annexb(hv_media_pt_video *pt)
{
    pt->nal_len = 0;
}

void
hv_media_pt_video_lost(hv_media_pt_video *pt)
{
    pt->need_key = true;
}

bool
hv_media_pt_video_waiting(const hv_media_pt_video *pt)
{
    return pt->need_key;
}

/* A new frame with the header written and info set; the payload after the header is the
 * caller's to fill. */
static hv_frame *
new_video_frame(hv_media_pt_video *pt, size_t payload, bool key, int64_t ts_us)
{
    hv_frame *f = hv_frame_new(HV_FRAME_ENCODED, HV_FRAME_ENCODED_HEADER + payload);
    hv_media_pt_write_header(hv_frame_payload(f), HV_FRAME_ENCODED_VIDEO, key, ts_us);
    hv_frame_info *info = hv_frame_info_of(f);
    info->pts_us = ts_us;
    info->encoded_video = true;
    info->key = key;
    g_strlcpy(info->codec, pt->codec_str, sizeof(info->codec));
    info->width = pt->width;
    info->height = pt->height;
    return f;
}

/* H.264/H.265 access unit → Annex B, parameter sets in front of a key frame. */
static hv_frame *
h26x_frame(hv_media_pt_video *pt, const uint8_t *d, size_t len, int64_t ts_us)
{
    g_autoptr(GArray) nals = g_array_sized_new(FALSE, FALSE, sizeof(nal_unit), 16);
    if (!split_nals(pt, d, len, nals)) {
        return NULL;
    }
    bool key = false;
    for (guint i = 0; i < nals->len; i++) {
        nal_unit *u = &g_array_index(nals, nal_unit, i);
        bool k = false, aud = false;
        int slot = nal_kind(pt, u, &k, &aud);
        key = key || k;
        if (slot < PS_COUNT) {
            keep_ps(pt, slot, u);
        }
    }
    if (!key && pt->need_key) {
        return NULL;
    }
    const int first_ps = pt->codec == HV_MEDIA_PT_H265 ? PS_VPS : PS_SPS;
    if (key) {
        for (int i = first_ps; i < PS_COUNT; i++) {
            if (pt->ps[i] == NULL) {
                return NULL; /* not decodable without them: wait for a key frame that has them */
            }
        }
        GBytes *sps = pt->ps[PS_SPS];
        if (pt->format_sps == NULL || !g_bytes_equal(pt->format_sps, sps)) {
            nal_unit s = {g_bytes_get_data(sps, NULL), g_bytes_get_size(sps)};
            nal_unit v = {0};
            if (pt->ps[PS_VPS] != NULL) {
                v = (nal_unit){g_bytes_get_data(pt->ps[PS_VPS], NULL),
                               g_bytes_get_size(pt->ps[PS_VPS])};
            }
            bool ok = pt->codec == HV_MEDIA_PT_H264
                          ? format_h264(pt, &s)
                          : format_h265(pt, pt->ps[PS_VPS] != NULL ? &v : NULL, &s);
            if (!ok) {
                return NULL;
            }
            g_clear_pointer(&pt->format_sps, g_bytes_unref);
            pt->format_sps = g_bytes_ref(sps);
        }
    }
    /* The size: on a key frame the stored parameter sets, then every unit but delimiters and
     * the in-band parameter sets (already among the stored ones, which are their newest). */
    size_t size = 0;
    if (key) {
        for (int i = first_ps; i < PS_COUNT; i++) {
            size += 4 + g_bytes_get_size(pt->ps[i]);
        }
    }
    for (guint i = 0; i < nals->len; i++) {
        nal_unit *u = &g_array_index(nals, nal_unit, i);
        bool k = false, aud = false;
        int slot = nal_kind(pt, u, &k, &aud);
        if (!aud && u->n > 0 && !(key && slot < PS_COUNT)) {
            size += 4 + u->n;
        }
    }
    hv_frame *f = new_video_frame(pt, size, key, ts_us);
    uint8_t *out = hv_frame_payload(f) + HV_FRAME_ENCODED_HEADER;
    static const uint8_t start[4] = {0, 0, 0, 1};
    if (key) {
        for (int i = first_ps; i < PS_COUNT; i++) {
            size_t n = 0;
            const uint8_t *p = g_bytes_get_data(pt->ps[i], &n);
            memcpy(out, start, 4);
            memcpy(out + 4, p, n);
            out += 4 + n;
        }
    }
    for (guint i = 0; i < nals->len; i++) {
        nal_unit *u = &g_array_index(nals, nal_unit, i);
        bool k = false, aud = false;
        int slot = nal_kind(pt, u, &k, &aud);
        if (!aud && u->n > 0 && !(key && slot < PS_COUNT)) {
            memcpy(out, start, 4);
            memcpy(out + 4, u->p, u->n);
            out += 4 + u->n;
        }
    }
    if (key) {
        pt->need_key = false;
    }
    return f;
}

hv_frame *
hv_media_pt_video_frame(hv_media_pt_video *pt, const uint8_t *data, size_t len, int64_t ts_us)
{
    if (len == 0) {
        return NULL;
    }
    if (is_h26x(pt)) {
        hv_frame *f = h26x_frame(pt, data, len, ts_us);
        if (f == NULL) {
            pt->need_key = true;
        }
        return f;
    }
    if (pt->codec != HV_MEDIA_PT_VP8 && pt->codec != HV_MEDIA_PT_VP9) {
        return NULL;
    }
    bool key = false;
    if (!vpx_frame(pt, data, len, &key) || (!key && pt->need_key)) {
        pt->need_key = true;
        return NULL;
    }
    if (key) {
        pt->need_key = false;
    }
    hv_frame *f = new_video_frame(pt, len, key, ts_us);
    memcpy(hv_frame_payload(f) + HV_FRAME_ENCODED_HEADER, data, len);
    return f;
}

const char *
hv_media_pt_video_format(const hv_media_pt_video *pt, int *width, int *height)
{
    *width = pt->width;
    *height = pt->height;
    return pt->codec_str;
}

hv_frame *
hv_media_pt_audio_frame(const uint8_t *data, size_t len, int64_t ts_us, int channels)
{
    hv_frame *f = hv_frame_new(HV_FRAME_ENCODED, HV_FRAME_ENCODED_HEADER + len);
    uint8_t *out = hv_frame_payload(f);
    /* Every Opus packet decodes on its own: each is a key frame for WebCodecs. */
    hv_media_pt_write_header(out, HV_FRAME_ENCODED_AUDIO, true, ts_us);
    memcpy(out + HV_FRAME_ENCODED_HEADER, data, len);
    hv_frame_info *info = hv_frame_info_of(f);
    info->pts_us = ts_us;
    info->key = true;
    info->rate_hz = 48000; /* Opus always decodes at 48 kHz (RFC 7587) */
    info->channels = channels;
    g_strlcpy(info->codec, "opus", sizeof(info->codec));
    return f;
}

/* ---- the encoded viewers' tap (streaming threads; start/stop on the main thread) ------------ */

struct hv_media_pt_tap {
    gatomicrefcount ref;
    hv_media_session *s; /* strong; the session drops the tap (and so this) at teardown */
    int64_t ts_base_us;
    /* LOCK: the video converter, replaced when the selected track's caps change. A switch of
     * track may briefly have two streaming threads here. */
    GMutex lock;
    hv_media_pt_video *video;
    int audio_channels; /* atomic */
    int asked_key;      /* atomic: a key frame was asked for since video last flowed */
};

static void *
pt_tap_ref(void *data)
{
    hv_media_pt_tap *t = data;
    g_atomic_ref_count_inc(&t->ref);
    return t;
}

static void
pt_tap_unref(void *data)
{
    hv_media_pt_tap *t = data;
    if (g_atomic_ref_count_dec(&t->ref)) {
        hv_media_pt_video_free(t->video);
        g_mutex_clear(&t->lock);
        hv_media_session_unref(t->s);
        g_free(t);
    }
}

static gboolean
on_pt_keyframe_wanted(gpointer data)
{
    hv_media_session *s = data;
    if (!hv_media_session_is_destroyed(s)) {
        hv_media_request_keyframe(s);
    }
    return G_SOURCE_REMOVE;
}

/* Video is waiting for a key frame: ask the sender for one, once until video flows again. */
static void
pt_want_key(hv_media_pt_tap *t)
{
    if (g_atomic_int_compare_and_exchange(&t->asked_key, 0, 1)) {
        hv_media_post(t->s, on_pt_keyframe_wanted, hv_media_session_ref(t->s),
                      (GDestroyNotify)hv_media_session_unref);
    }
}

static void
pt_tap_caps(hv_media_tap_kind kind, GstCaps *caps, void *data)
{
    hv_media_pt_tap *t = data;
    const GstStructure *st = caps != NULL ? gst_caps_get_structure(caps, 0) : NULL;
    if (st == NULL) {
        return;
    }
    if (kind == HV_MEDIA_TAP_AUDIO) {
        int channels = 0;
        if (!gst_structure_get_int(st, "channels", &channels) || channels < 1 || channels > 2) {
            channels = 2; /* what the SDP's opus/48000/2 says; the decoder copes with either */
        }
        g_atomic_int_set(&t->audio_channels, channels);
        return;
    }
    hv_media_pt_codec codec = hv_media_pt_codec_from_caps_name(gst_structure_get_name(st));
    g_mutex_lock(&t->lock);
    /* New caps: maybe another track, or new parameter sets. Either way video resumes at the
     * next key frame, which then carries whatever the caps changed. */
    if (t->video == NULL || hv_media_pt_video_codec(t->video) != codec) {
        hv_media_pt_video_free(t->video);
        t->video = codec != HV_MEDIA_PT_NONE ? hv_media_pt_video_new(codec) : NULL;
    }
    if (t->video != NULL) {
        hv_media_pt_video_lost(t->video);
        const char *format = gst_structure_get_string(st, "stream-format");
        const GValue *cd = gst_structure_get_value(st, "codec_data");
        GstBuffer *cdb =
            cd != NULL && G_VALUE_HOLDS(cd, GST_TYPE_BUFFER) ? gst_value_get_buffer(cd) : NULL;
        GstMapInfo map;
        if (format != NULL && strcmp(format, "byte-stream") != 0 && cdb != NULL &&
            gst_buffer_map(cdb, &map, GST_MAP_READ)) {
            if (!hv_media_pt_video_set_codec_data(t->video, map.data, map.size)) {
                HV_MEDIA_DEBUG(t->s, "encoded viewers: unreadable codec_data in %s", format);
            }
            gst_buffer_unmap(cdb, &map);
        } else {
            hv_media_pt_video_set_annexb(t->video);
        }
    }
    g_mutex_unlock(&t->lock);
}

static void
pt_tap_buffer(hv_media_tap_kind kind, GstBuffer *buf, uint64_t running_time, void *data)
{
    hv_media_pt_tap *t = data;
    GstMapInfo map;
    if (!gst_buffer_map(buf, &map, GST_MAP_READ)) {
        return;
    }
    int64_t ts_us = t->ts_base_us + (int64_t)(running_time / GST_USECOND);
    /* For the latency figures: when the packet arrived (the entry probe's stamp, if the
     * depayloader kept it), else now, a depayload later. */
    GstReferenceTimestampMeta *meta =
        gst_buffer_get_reference_timestamp_meta(buf, hv_media_arrival_caps());
    int64_t arrival =
        meta != NULL ? (int64_t)(meta->timestamp / GST_USECOND) : g_get_monotonic_time();
    if (kind == HV_MEDIA_TAP_AUDIO) {
        int channels = g_atomic_int_get(&t->audio_channels);
        hv_frame *a =
            hv_media_pt_audio_frame(map.data, map.size, ts_us, channels > 0 ? channels : 2);
        hv_buf_set_stamp_us(a, arrival);
        (void)hv_media_post_encoded(t->s, a);
        gst_buffer_unmap(buf, &map);
        return;
    }
    g_mutex_lock(&t->lock);
    hv_frame *f =
        t->video != NULL ? hv_media_pt_video_frame(t->video, map.data, map.size, ts_us) : NULL;
    bool waiting = t->video != NULL && hv_media_pt_video_waiting(t->video);
    g_mutex_unlock(&t->lock);
    gst_buffer_unmap(buf, &map);
    if (f != NULL) {
        hv_buf_set_stamp_us(f, arrival);
        if (hv_media_post_encoded(t->s, f)) {
            g_atomic_int_set(&t->asked_key, 0);
            return;
        }
        /* The main thread is behind: this frame is lost, so the ones after it cannot be
         * decoded either. */
        g_mutex_lock(&t->lock);
        if (t->video != NULL) {
            hv_media_pt_video_lost(t->video);
        }
        g_mutex_unlock(&t->lock);
        waiting = true;
    }
    if (waiting) {
        pt_want_key(t);
    }
}

static const hv_media_tap pt_tap = {pt_tap_caps, pt_tap_buffer, pt_tap_ref, pt_tap_unref};

void
hv_media_pt_tap_start(hv_media_session *s, int64_t ts_base_us)
{
    if (s->pt_tap != NULL) {
        return;
    }
    hv_media_pt_tap *t = g_new0(hv_media_pt_tap, 1);
    g_atomic_ref_count_init(&t->ref);
    t->s = hv_media_session_ref(s);
    t->ts_base_us = ts_base_us;
    g_mutex_init(&t->lock);
    s->pt_tap = t;
    hv_media_set_tap_slot(s, HV_MEDIA_TAP_SLOT_VIEWERS, &pt_tap, t);
}

void
hv_media_pt_tap_stop(hv_media_session *s)
{
    hv_media_pt_tap *t = s->pt_tap;
    if (t == NULL) {
        return;
    }
    s->pt_tap = NULL;
    hv_media_set_tap_slot(s, HV_MEDIA_TAP_SLOT_VIEWERS, NULL, NULL);
    pt_tap_unref(t);
}

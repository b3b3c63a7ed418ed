/* Unit tests of the encoded viewers' converter (src/media/passthrough.c) on real bitstreams:
 * GStreamer's encoders make H.264, H.265, VP8 and VP9 streams here, the converter turns them
 * into the viewers' messages, and GStreamer's decoders then decode what it made, from a key
 * frame in the middle of the stream, as a browser joining late would. */
#include "media/media-private.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <string.h>

typedef struct {
    GPtrArray *units; /* GBytes, one access unit / frame each */
    GBytes *codec_data;
} encoded;

static void
encoded_clear(encoded *e)
{
    g_ptr_array_unref(e->units);
    if (e->codec_data != NULL) {
        g_bytes_unref(e->codec_data);
    }
}

static bool
have(const char *element)
{
    GstElementFactory *f = gst_element_factory_find(element);
    if (f == NULL) {
        return false;
    }
    gst_object_unref(f);
    return true;
}

/* Runs "videotestsrc ! <size> ! ENCODE ! appsink" and keeps every buffer and the codec_data. */
static bool
encode(const char *encode_chain, int width, int height, int frames, encoded *out)
{
    g_autofree char *desc = g_strdup_printf(
        "videotestsrc num-buffers=%d pattern=ball ! video/x-raw,format=I420,width=%d,height=%d,"
        "framerate=30/1 ! %s ! appsink name=sink sync=false",
        frames, width, height, encode_chain);
    g_autoptr(GError) error = NULL;
    GstElement *pipe = gst_parse_launch(desc, &error);
    g_assert_no_error(error);
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    out->units = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    out->codec_data = NULL;
    g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
    for (;;) {
        GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 20 * GST_SECOND);
        if (sample == NULL) {
            break;
        }
        GstCaps *caps = gst_sample_get_caps(sample);
        const GValue *cd = gst_structure_get_value(gst_caps_get_structure(caps, 0), "codec_data");
        if (cd != NULL && out->codec_data == NULL) {
            GstBuffer *b = gst_value_get_buffer(cd);
            GstMapInfo m;
            gst_buffer_map(b, &m, GST_MAP_READ);
            out->codec_data = g_bytes_new(m.data, m.size);
            gst_buffer_unmap(b, &m);
        }
        GstBuffer *buf = gst_sample_get_buffer(sample);
        GstMapInfo m;
        gst_buffer_map(buf, &m, GST_MAP_READ);
        g_ptr_array_add(out->units, g_bytes_new(m.data, m.size));
        gst_buffer_unmap(buf, &m);
        gst_sample_unref(sample);
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipe);
    return out->units->len == (guint)frames;
}

static hv_frame *
convert(hv_media_pt_video *pt, GBytes *unit, int64_t ts)
{
    size_t n = 0;
    const uint8_t *p = g_bytes_get_data(unit, &n);
    return hv_media_pt_video_frame(pt, p, n, ts);
}

static const uint8_t *
body(hv_frame *f, size_t *len)
{
    *len = hv_frame_len(f) - HV_FRAME_ENCODED_HEADER;
    return hv_frame_payload(f) + HV_FRAME_ENCODED_HEADER;
}

/* NAL unit types of an Annex B access unit, in order; asserts 4-byte start codes. */
static GArray *
nal_types(hv_frame *f, bool h265)
{
    size_t len = 0;
    const uint8_t *d = body(f, &len);
    GArray *types = g_array_new(FALSE, FALSE, sizeof(int));
    g_assert_cmpuint(len, >, 5);
    g_assert_true(d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 1);
    for (size_t i = 0; i + 4 < len; i++) {
        if (d[i] == 0 && d[i + 1] == 0 && d[i + 2] == 0 && d[i + 3] == 1) {
            int t = h265 ? (d[i + 4] >> 1) & 0x3f : d[i + 4] & 0x1f;
            g_array_append_val(types, t);
            i += 3;
        }
    }
    return types;
}

static bool
has_type(GArray *types, int t)
{
    for (guint i = 0; i < types->len; i++) {
        if (g_array_index(types, int, i) == t) {
            return true;
        }
    }
    return false;
}

static GstPadProbeReturn
on_decoded(GstPad *pad, GstPadProbeInfo *info, gpointer data)
{
    (void)pad;
    (void)info;
    g_atomic_int_inc((int *)data);
    return GST_PAD_PROBE_OK;
}

/* Feeds the messages' payloads to "appsrc ! DECODE_CHAIN ! fakesink" and counts the decoded
 * frames; an error on the bus fails the test. */
static int
decode_count(const char *caps_str, const char *decode_chain, GPtrArray *frames)
{
    g_autofree char *desc = g_strdup_printf(
        "appsrc name=src format=time caps=\"%s\" ! %s ! fakesink name=sink sync=false", caps_str,
        decode_chain);
    g_autoptr(GError) error = NULL;
    GstElement *pipe = gst_parse_launch(desc, &error);
    g_assert_no_error(error);
    GstElement *src = gst_bin_get_by_name(GST_BIN(pipe), "src");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(pipe), "sink");
    GstPad *pad = gst_element_get_static_pad(sink, "sink");
    int count = 0;
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_decoded, &count, NULL);
    gst_object_unref(pad);
    g_assert_cmpint(gst_element_set_state(pipe, GST_STATE_PLAYING), !=, GST_STATE_CHANGE_FAILURE);
    for (guint i = 0; i < frames->len; i++) {
        hv_frame *f = g_ptr_array_index(frames, i);
        size_t len = 0;
        const uint8_t *d = body(f, &len);
        GstBuffer *b = gst_buffer_new_memdup(d, len);
        GST_BUFFER_PTS(b) = (GstClockTime)hv_frame_info_of(f)->pts_us * GST_USECOND;
        g_assert_cmpint(gst_app_src_push_buffer(GST_APP_SRC(src), b), ==, GST_FLOW_OK);
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src));
    GstBus *bus = gst_element_get_bus(pipe);
    GstMessage *msg =
        gst_bus_timed_pop_filtered(bus, 30 * GST_SECOND, GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
    g_assert_nonnull(msg);
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        g_autoptr(GError) err = NULL;
        gst_message_parse_error(msg, &err, NULL);
        g_error("decoding what the converter made: %s", err->message);
    }
    gst_message_unref(msg);
    gst_object_unref(bus);
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(src);
    gst_object_unref(sink);
    gst_object_unref(pipe);
    return count;
}

static void
check_header(hv_frame *f, int kind, bool key, int64_t ts)
{
    const uint8_t *h = hv_frame_payload(f);
    g_assert_cmpint(h[0], ==, kind);
    g_assert_cmpint(h[1], ==, key ? 1 : 0);
    uint64_t t = 0;
    for (int i = 0; i < 8; i++) {
        t = (t << 8) | h[2 + i];
    }
    g_assert_cmpint((int64_t)t, ==, ts);
    g_assert_cmpint(hv_frame_info_of(f)->key, ==, key);
}

/* ---- H.264 ------------------------------------------------------------------------------- */

/* Converts a whole stream; returns the frames from the second key frame on (a late joiner's
 * view) in *late, and checks the parameter sets of every key frame and no delta has them. */
static GPtrArray *
convert_all(hv_media_pt_video *pt, encoded *e, bool h265, int *keys, GPtrArray **late)
{
    GPtrArray *all = g_ptr_array_new_with_free_func((GDestroyNotify)hv_frame_unref);
    *late = g_ptr_array_new_with_free_func((GDestroyNotify)hv_frame_unref);
    *keys = 0;
    for (guint i = 0; i < e->units->len; i++) {
        int64_t ts = 1000000 + (int64_t)i * 33333;
        hv_frame *f = convert(pt, g_ptr_array_index(e->units, i), ts);
        g_assert_nonnull(f);
        bool key = hv_frame_info_of(f)->key;
        check_header(f, HV_FRAME_ENCODED_VIDEO, key, ts);
        g_autoptr(GArray) types = nal_types(f, h265);
        int sps = h265 ? 33 : 7, pps = h265 ? 34 : 8;
        if (key) {
            (*keys)++;
            /* VPS, SPS, PPS first, in that order, then the picture. */
            int first = 0;
            if (h265) {
                g_assert_cmpint(g_array_index(types, int, first++), ==, 32);
            }
            g_assert_cmpint(g_array_index(types, int, first), ==, sps);
            g_assert_cmpint(g_array_index(types, int, first + 1), ==, pps);
        } else {
            g_assert_false(has_type(types, sps) || has_type(types, pps));
        }
        g_assert_false(has_type(types, h265 ? 35 : 9)); /* no access unit delimiters */
        if (*keys >= 2) {
            g_ptr_array_add(*late, hv_frame_ref(f));
        }
        g_ptr_array_add(all, f);
    }
    return all;
}

static void
test_h264(gconstpointer data)
{
    const char *stream_format = data;
    if (!have("x264enc") || !have("avdec_h264")) {
        g_test_skip("x264enc or avdec_h264 missing");
        return;
    }
    /* 322x182: not a multiple of 16, so the SPS crops and the size must come from the crop. */
    g_autofree char *chain = g_strdup_printf(
        "x264enc key-int-max=10 tune=zerolatency speed-preset=ultrafast ! h264parse "
        "config-interval=0 ! video/x-h264,stream-format=%s,alignment=au",
        stream_format);
    encoded e;
    g_assert_true(encode(chain, 322, 182, 30, &e));
    hv_media_pt_video *pt = hv_media_pt_video_new(HV_MEDIA_PT_H264);
    if (strcmp(stream_format, "avc") == 0) {
        g_assert_nonnull(e.codec_data);
        size_t n = 0;
        const uint8_t *cd = g_bytes_get_data(e.codec_data, &n);
        g_assert_true(hv_media_pt_video_set_codec_data(pt, cd, n));
    }
    int keys = 0;
    GPtrArray *late = NULL;
    GPtrArray *all = convert_all(pt, &e, false, &keys, &late);
    g_assert_cmpint(keys, ==, 3);
    int w = 0, h = 0;
    const char *codec = hv_media_pt_video_format(pt, &w, &h);
    g_assert_cmpint(w, ==, 322);
    g_assert_cmpint(h, ==, 182);
    g_assert_true(g_str_has_prefix(codec, "avc1."));
    g_assert_cmpuint(strlen(codec), ==, 11);
    /* profile_idc, constraint flags and level_idc are the SPS's: compare with the first SPS. */
    hv_frame *first = g_ptr_array_index(all, 0);
    size_t len = 0;
    const uint8_t *d = body(first, &len);
    g_autofree char *want = g_strdup_printf("avc1.%02X%02X%02X", d[5], d[6], d[7]);
    g_assert_cmpstr(codec, ==, want);
    g_assert_cmpstr(hv_frame_info_of(first)->codec, ==, want);
    /* A late joiner decodes every frame from the second key frame on, with no description. */
    int decoded = decode_count("video/x-h264,stream-format=byte-stream,alignment=au",
                               "h264parse ! avdec_h264", late);
    g_assert_cmpint(decoded, ==, (int)late->len);
    g_ptr_array_unref(late);
    g_ptr_array_unref(all);
    hv_media_pt_video_free(pt);
    encoded_clear(&e);
}

static void
test_h264_waits_for_a_key_frame(void)
{
    if (!have("x264enc")) {
        g_test_skip("x264enc missing");
        return;
    }
    encoded e;
    g_assert_true(encode("x264enc key-int-max=10 tune=zerolatency speed-preset=ultrafast ! "
                         "h264parse ! video/x-h264,stream-format=byte-stream,alignment=au",
                         160, 120, 25, &e));
    hv_media_pt_video *pt = hv_media_pt_video_new(HV_MEDIA_PT_H264);
    /* Joining at frame 3: nothing until the key frame at 10. */
    for (guint i = 3; i < 10; i++) {
        g_assert_null(convert(pt, g_ptr_array_index(e.units, i), i));
        g_assert_true(hv_media_pt_video_waiting(pt));
    }
    hv_frame *f = convert(pt, g_ptr_array_index(e.units, 10), 10);
    g_assert_nonnull(f);
    g_assert_true(hv_frame_info_of(f)->key);
    hv_frame_unref(f);
    f = convert(pt, g_ptr_array_index(e.units, 11), 11);
    g_assert_nonnull(f);
    g_assert_false(hv_frame_info_of(f)->key);
    hv_frame_unref(f);
    /* A loss: deltas are held back until the next key frame. */
    hv_media_pt_video_lost(pt);
    for (guint i = 12; i < 20; i++) {
        g_assert_null(convert(pt, g_ptr_array_index(e.units, i), i));
    }
    f = convert(pt, g_ptr_array_index(e.units, 20), 20);
    g_assert_nonnull(f);
    g_assert_true(hv_frame_info_of(f)->key);
    hv_frame_unref(f);
    hv_media_pt_video_free(pt);
    encoded_clear(&e);
}

static void
test_malformed_input(void)
{
    hv_media_pt_video *pt = hv_media_pt_video_new(HV_MEDIA_PT_H264);
    static const uint8_t junk[] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0x00, 0x00};
    g_assert_null(hv_media_pt_video_frame(pt, junk, sizeof(junk), 0));
    /* avcC with a length larger than what follows. */
    static const uint8_t bad_cd[] = {1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0x00, 0x40, 0x67};
    g_assert_false(hv_media_pt_video_set_codec_data(pt, bad_cd, sizeof(bad_cd)));
    /* Length-prefixed units that overrun the buffer. */
    static const uint8_t cd[] = {1, 0x42, 0xc0, 0x1f, 0xff, 0xe0, 0x00};
    g_assert_true(hv_media_pt_video_set_codec_data(pt, cd, sizeof(cd)));
    static const uint8_t overrun[] = {0, 0, 0, 9, 0x65, 1, 2};
    g_assert_null(hv_media_pt_video_frame(pt, overrun, sizeof(overrun), 0));
    /* An IDR without any SPS/PPS known: not decodable, so not sent. */
    static const uint8_t idr[] = {0, 0, 0, 3, 0x65, 0x88, 0x84};
    g_assert_null(hv_media_pt_video_frame(pt, idr, sizeof(idr), 0));
    hv_media_pt_video_free(pt);
    hv_media_pt_video *vp8 = hv_media_pt_video_new(HV_MEDIA_PT_VP8);
    g_assert_null(hv_media_pt_video_frame(vp8, junk, 3, 0));
    hv_media_pt_video_free(vp8);
    hv_media_pt_video *vp9 = hv_media_pt_video_new(HV_MEDIA_PT_VP9);
    g_assert_null(hv_media_pt_video_frame(vp9, junk, sizeof(junk), 0));
    hv_media_pt_video_free(vp9);
}

/* ---- H.265 ------------------------------------------------------------------------------- */

static void
test_h265(void)
{
    if (!have("x265enc") || !have("avdec_h265")) {
        g_test_skip("x265enc or avdec_h265 missing");
        return;
    }
    encoded e;
    g_assert_true(encode("x265enc key-int-max=10 tune=zerolatency speed-preset=ultrafast ! "
                         "h265parse config-interval=0 ! "
                         "video/x-h265,stream-format=hvc1,alignment=au",
                         322, 182, 30, &e));
    hv_media_pt_video *pt = hv_media_pt_video_new(HV_MEDIA_PT_H265);
    g_assert_nonnull(e.codec_data);
    size_t n = 0;
    const uint8_t *cd = g_bytes_get_data(e.codec_data, &n);
    g_assert_true(hv_media_pt_video_set_codec_data(pt, cd, n));
    int keys = 0;
    GPtrArray *late = NULL;
    GPtrArray *all = convert_all(pt, &e, true, &keys, &late);
    g_assert_cmpint(keys, ==, 3);
    int w = 0, h = 0;
    const char *codec = hv_media_pt_video_format(pt, &w, &h);
    g_assert_cmpint(w, ==, 322);
    g_assert_cmpint(h, ==, 182);
    /* Main profile (x265's default for 8-bit 4:2:0), Main tier: hvc1.1.6.L<level>.<constraints>,
     * the level being the hvcC's general_level_idc (byte 12). */
    g_autofree char *prefix = g_strdup_printf("hvc1.1.6.L%u", cd[12]);
    g_assert_true(g_str_has_prefix(codec, prefix));
    int decoded = decode_count("video/x-h265,stream-format=byte-stream,alignment=au",
                               "h265parse ! avdec_h265", late);
    g_assert_cmpint(decoded, ==, (int)late->len);
    g_ptr_array_unref(late);
    g_ptr_array_unref(all);
    hv_media_pt_video_free(pt);
    encoded_clear(&e);
}

/* ---- VP8 / VP9 --------------------------------------------------------------------------- */

static void
test_vpx(gconstpointer data)
{
    bool vp9 = GPOINTER_TO_INT(data) == 9;
    const char *enc = vp9 ? "vp9enc" : "vp8enc";
    const char *dec = vp9 ? "vp9dec" : "vp8dec";
    if (!have(enc) || !have(dec)) {
        g_test_skip("libvpx elements missing");
        return;
    }
    g_autofree char *chain = g_strdup_printf("%s keyframe-max-dist=10 deadline=1 cpu-used=8", enc);
    encoded e;
    g_assert_true(encode(chain, 322, 182, 30, &e));
    hv_media_pt_video *pt = hv_media_pt_video_new(vp9 ? HV_MEDIA_PT_VP9 : HV_MEDIA_PT_VP8);
    g_autoptr(GPtrArray) late = g_ptr_array_new_with_free_func((GDestroyNotify)hv_frame_unref);
    int keys = 0;
    for (guint i = 0; i < e.units->len; i++) {
        hv_frame *f = convert(pt, g_ptr_array_index(e.units, i), 5 + i);
        g_assert_nonnull(f);
        bool key = hv_frame_info_of(f)->key;
        check_header(f, HV_FRAME_ENCODED_VIDEO, key, 5 + i);
        /* The frame goes as it came. */
        size_t len = 0, in_len = 0;
        const uint8_t *out = body(f, &len);
        const uint8_t *in = g_bytes_get_data(g_ptr_array_index(e.units, i), &in_len);
        g_assert_cmpmem(out, len, in, in_len);
        keys += key;
        if (keys >= 2) {
            g_ptr_array_add(late, hv_frame_ref(f));
        }
        hv_frame_unref(f);
    }
    g_assert_cmpint(keys, ==, 3);
    int w = 0, h = 0;
    const char *codec = hv_media_pt_video_format(pt, &w, &h);
    g_assert_cmpint(w, ==, 322);
    g_assert_cmpint(h, ==, 182);
    /* 322x182 = 58604 samples: VP9 level 1.1 */
    g_assert_cmpstr(codec, ==, vp9 ? "vp09.00.11.08" : "vp8");
    g_autofree char *caps =
        g_strdup_printf("video/x-%s,width=322,height=182,framerate=30/1", vp9 ? "vp9" : "vp8");
    g_autofree char *chain_dec = vp9 ? g_strdup("vp9parse ! vp9dec") : g_strdup("vp8dec");
    int decoded = decode_count(caps, have("vp9parse") || !vp9 ? chain_dec : dec, late);
    g_assert_cmpint(decoded, ==, (int)late->len);
    hv_media_pt_video_free(pt);
    encoded_clear(&e);
}

static void
test_audio_and_header(void)
{
    static const uint8_t opus[] = {0xfc, 0xff, 0xfe};
    hv_frame *f = hv_media_pt_audio_frame(opus, sizeof(opus), 0x0102030405060708LL, 2);
    check_header(f, HV_FRAME_ENCODED_AUDIO, true, 0x0102030405060708LL);
    const uint8_t *h = hv_frame_payload(f);
    static const uint8_t want[] = {2, 1, 1, 2, 3, 4, 5, 6, 7, 8, 0xfc, 0xff, 0xfe};
    g_assert_cmpmem(h, hv_frame_len(f), want, sizeof(want));
    g_assert_cmpstr(hv_frame_info_of(f)->codec, ==, "opus");
    g_assert_cmpint(hv_frame_info_of(f)->channels, ==, 2);
    g_assert_cmpint(hv_frame_info_of(f)->rate_hz, ==, 48000);
    hv_frame_unref(f);
    g_assert_cmpint(hv_media_pt_codec_from_caps_name("video/x-h264"), ==, HV_MEDIA_PT_H264);
    g_assert_cmpint(hv_media_pt_codec_from_caps_name("video/x-av1"), ==, HV_MEDIA_PT_NONE);
}

int
main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/passthrough/h264/avc-with-codec-data", "avc", test_h264);
    g_test_add_data_func("/passthrough/h264/byte-stream-parameter-sets-once", "byte-stream",
                         test_h264);
    g_test_add_func("/passthrough/h264/waits-for-a-key-frame", test_h264_waits_for_a_key_frame);
    g_test_add_func("/passthrough/h265/hvc1", test_h265);
    g_test_add_data_func("/passthrough/vp8", GINT_TO_POINTER(8), test_vpx);
    g_test_add_data_func("/passthrough/vp9", GINT_TO_POINTER(9), test_vpx);
    g_test_add_func("/passthrough/malformed", test_malformed_input);
    g_test_add_func("/passthrough/audio-and-header", test_audio_and_header);
    return g_test_run();
}

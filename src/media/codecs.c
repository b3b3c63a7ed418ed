/* codecs.c: the codecs haven can receive, and the GStreamer elements for each.
 *
 * One table says, per RTP encoding name, which depayloader, parser and decoder a branch needs.
 * Whether the elements exist is checked once per process (the registry does not change while
 * haven runs). AV1 is deliberately absent: Debian 12's GStreamer 1.22 has no rtpav1depay, so an
 * AV1 track can only be received through a backup codec its publisher also sends.
 */
#include "media/media-private.h"

#include <string.h>

static hv_media_codec codec_table[] = {
    {"VP8", true, "rtpvp8depay", NULL, {"vp8dec", NULL}, NULL},
    {"VP9", true, "rtpvp9depay", NULL, {"vp9dec", NULL}, NULL},
    {"H264", true, "rtph264depay", "h264parse", {"avdec_h264", "openh264dec"}, NULL},
    {"H265", true, "rtph265depay", "h265parse", {"avdec_h265", NULL}, NULL},
    {"OPUS", false, "rtpopusdepay", NULL, {"opusdec", NULL}, NULL},
};

bool
hv_media_have_element(const char *name)
{
    GstElementFactory *f = gst_element_factory_find(name);
    if (f == NULL) {
        return false;
    }
    gst_object_unref(f);
    return true;
}

/* Fills in each entry's decoder (the first installed one), or leaves it NULL. */
static void
probe_elements(void)
{
    static gsize once = 0;
    if (!g_once_init_enter(&once)) {
        return;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(codec_table); i++) {
        hv_media_codec *c = &codec_table[i];
        if (!hv_media_have_element(c->depay) ||
            (c->parse != NULL && !hv_media_have_element(c->parse))) {
            continue;
        }
        for (size_t k = 0; k < G_N_ELEMENTS(c->decoders) && c->decoders[k] != NULL; k++) {
            if (hv_media_have_element(c->decoders[k])) {
                c->decoder = c->decoders[k];
                break;
            }
        }
    }
    g_once_init_leave(&once, 1);
}

/* "video/H264" → "H264"; an encoding name stays as it is. */
static const char *
encoding_of(const char *name)
{
    const char *slash = name != NULL ? strchr(name, '/') : NULL;
    return slash != NULL ? slash + 1 : name;
}

const hv_media_codec *
hv_media_codec_find(const char *name)
{
    probe_elements();
    const char *enc = encoding_of(name);
    for (size_t i = 0; enc != NULL && i < G_N_ELEMENTS(codec_table); i++) {
        if (g_ascii_strcasecmp(codec_table[i].encoding, enc) == 0) {
            return codec_table[i].decoder != NULL ? &codec_table[i] : NULL;
        }
    }
    return NULL;
}

bool
hv_media_codec_decodable(const char *name)
{
    return hv_media_codec_find(name) != NULL;
}

char *
hv_media_codec_list(void)
{
    probe_elements();
    GString *out = g_string_new(NULL);
    for (size_t i = 0; i < G_N_ELEMENTS(codec_table); i++) {
        const hv_media_codec *c = &codec_table[i];
        g_string_append_printf(out, "%s%s=%s", i > 0 ? " " : "", c->encoding,
                               c->decoder != NULL ? c->decoder : "no");
    }
    return g_string_free(out, FALSE);
}

/* Unit tests for the hub: latest-frame-wins video, shared audio rings with per-viewer cursors,
 * culling of lagging viewers, bounded events, format bookkeeping, and the audio text encoding.
 */
#include "hub/hub.h"

#include <string.h>

typedef struct {
    int wakes;
} waker;

static void
on_wake(void *user_data)
{
    ((waker *)user_data)->wakes++;
}

typedef struct {
    int video_on, video_off;
    GHashTable *formats; /* "rate/ch" → count of "needed" minus "not needed" */
} needs;

static void
on_video_needed(bool needed, void *user_data)
{
    needs *n = user_data;
    if (needed) {
        n->video_on++;
    } else {
        n->video_off++;
    }
}

static void
on_audio_needed(int rate, int channels, bool needed, void *user_data)
{
    needs *n = user_data;
    g_autofree char *key = g_strdup_printf("%d/%d", rate, channels);
    int c = GPOINTER_TO_INT(g_hash_table_lookup(n->formats, key));
    g_hash_table_replace(n->formats, g_steal_pointer(&key), GINT_TO_POINTER(c + (needed ? 1 : -1)));
}

static hv_hub_msg *
video(int i)
{
    char buf[16];
    g_snprintf(buf, sizeof(buf), "jpeg-%d", i);
    return hv_hub_msg_new_copy(true, buf, strlen(buf));
}

static void
test_latest_video_wins(void)
{
    hv_hub_channel *ch = hv_hub_channel_new(8, NULL, NULL);
    waker w = {0};
    hv_hub_viewer *v = hv_hub_viewer_new(ch, 44100, 1, on_wake, &w);
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_NOTHING);
    /* a stalled viewer: 100 frames arrive, it keeps exactly one pending (the newest) */
    for (int i = 0; i < 100; i++) {
        g_autoptr(hv_hub_msg) f = video(i);
        hv_hub_channel_publish_video(ch, f, 640, 360);
    }
    g_assert_cmpint(w.wakes, ==, 100);
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_SEND);
    g_assert_cmpmem(hv_hub_msg_data(m), hv_hub_msg_len(m), "jpeg-99", 7);
    g_assert_true(hv_hub_msg_is_binary(m));
    hv_hub_msg_unref(m);
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_NOTHING);
    hv_hub_viewer_stats st;
    hv_hub_viewer_get_stats(v, &st);
    g_assert_cmpuint(st.video_sent, ==, 1);
    g_assert_cmpuint(st.video_dropped, ==, 99);
    int w_, h_;
    hv_hub_channel_video_size(ch, &w_, &h_);
    g_assert_cmpint(w_, ==, 640);
    g_assert_cmpint(h_, ==, 360);

    /* a viewer joining later starts with the latest frame, not a black screen */
    waker w2 = {0};
    hv_hub_viewer *late = hv_hub_viewer_new(ch, 44100, 1, on_wake, &w2);
    g_assert_cmpint(hv_hub_viewer_next(late, &m, &reason), ==, HV_HUB_SEND);
    g_assert_cmpmem(hv_hub_msg_data(m), hv_hub_msg_len(m), "jpeg-99", 7);
    hv_hub_msg_unref(m);
    hv_hub_viewer_free(late);
    hv_hub_viewer_free(v);
    /* with nobody watching, decoding stops: a later viewer must not get the stale frame */
    hv_hub_viewer *again = hv_hub_viewer_new(ch, 44100, 1, on_wake, &w2);
    g_assert_cmpint(hv_hub_viewer_next(again, &m, &reason), ==, HV_HUB_NOTHING);
    hv_hub_viewer_free(again);
    hv_hub_channel_free(ch, NULL);
}

static void
test_frames_are_shared_not_copied(void)
{
    hv_hub_channel *ch = hv_hub_channel_new(8, NULL, NULL);
    waker w = {0};
    hv_hub_viewer *a = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    hv_hub_viewer *b = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    hv_hub_msg *f = video(1);
    hv_hub_channel_publish_video(ch, f, 2, 2);
    hv_hub_msg *ma = NULL, *mb = NULL;
    const char *reason = NULL;
    g_assert_cmpint(hv_hub_viewer_next(a, &ma, &reason), ==, HV_HUB_SEND);
    g_assert_cmpint(hv_hub_viewer_next(b, &mb, &reason), ==, HV_HUB_SEND);
    g_assert_true(ma == f && mb == f); /* the very same object */
    hv_hub_msg_unref(ma);
    hv_hub_msg_unref(mb);
    hv_hub_msg_unref(f);
    hv_hub_viewer_free(a);
    hv_hub_viewer_free(b);
    hv_hub_channel_free(ch, NULL);
}

static void
test_audio_ring_and_cull(void)
{
    hv_hub_channel *ch = hv_hub_channel_new(4, NULL, NULL);
    waker w = {0};
    hv_hub_viewer *fast = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    hv_hub_viewer *slow = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    hv_hub_viewer *other = hv_hub_viewer_new(ch, 44100, 1, on_wake, &w);
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    for (int i = 0; i < 6; i++) {
        char pcm[4] = {(char)i, 0, 0, 0};
        g_autoptr(hv_hub_msg) t = hv_hub_msg_new_audio_text((const uint8_t *)pcm, 4);
        hv_hub_channel_publish_audio(ch, 48000, 2, t);
        /* the fast viewer keeps up, in order */
        g_assert_cmpint(hv_hub_viewer_next(fast, &m, &reason), ==, HV_HUB_SEND);
        g_autofree char *expect = NULL;
        g_autofree char *b64 = g_base64_encode((const guchar *)pcm, 4);
        expect = g_strconcat("audio:", b64, NULL);
        g_assert_cmpmem(hv_hub_msg_data(m), hv_hub_msg_len(m), expect, strlen(expect));
        g_assert_false(hv_hub_msg_is_binary(m));
        hv_hub_msg_unref(m);
    }
    /* the slow one never read: 6 chunks behind a ring of 4 → culled, with a reason */
    g_assert_cmpint(hv_hub_viewer_next(slow, &m, &reason), ==, HV_HUB_CULLED);
    g_assert_nonnull(strstr(reason, "audio backlog"));
    /* a viewer of another format got none of it */
    g_assert_cmpint(hv_hub_viewer_next(other, &m, &reason), ==, HV_HUB_NOTHING);
    hv_hub_viewer_free(slow);
    hv_hub_viewer_free(other);
    hv_hub_viewer_free(fast);
    hv_hub_channel_free(ch, NULL);
}

static void
test_audio_within_backlog_is_delivered_in_order(void)
{
    hv_hub_channel *ch = hv_hub_channel_new(4, NULL, NULL);
    waker w = {0};
    hv_hub_viewer *v = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    for (int i = 0; i < 4; i++) {
        g_autoptr(hv_hub_msg) t = hv_hub_msg_new_copy(false, &"abcd"[i], 1);
        hv_hub_channel_publish_audio(ch, 48000, 2, t);
    }
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    for (int i = 0; i < 4; i++) {
        g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_SEND);
        g_assert_cmpint(hv_hub_msg_data(m)[0], ==, "abcd"[i]);
        hv_hub_msg_unref(m);
    }
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_NOTHING);
    hv_hub_viewer_free(v);
    hv_hub_channel_free(ch, NULL);
}

static void
test_priority_and_events(void)
{
    hv_hub_channel *ch = hv_hub_channel_new(8, NULL, NULL);
    waker w = {0};
    hv_hub_viewer *v = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    g_autoptr(hv_hub_msg) f = video(7);
    hv_hub_channel_publish_video(ch, f, 1, 1);
    g_autoptr(hv_hub_msg) a = hv_hub_msg_new_copy(false, "audio:AA==", 10);
    hv_hub_channel_publish_audio(ch, 48000, 2, a);
    hv_hub_viewer_push_text(v, "{\"type\":\"format\"}");
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    /* events first, then audio, then video */
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_SEND);
    g_assert_cmpmem(hv_hub_msg_data(m), hv_hub_msg_len(m), "{\"type\":\"format\"}", 17);
    hv_hub_msg_unref(m);
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_SEND);
    g_assert_true(m == a);
    hv_hub_msg_unref(m);
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_SEND);
    g_assert_true(m == f);
    hv_hub_msg_unref(m);
    /* the event queue is bounded: overflowing it culls */
    for (int i = 0; i < HV_HUB_EVENT_QUEUE + 1; i++) {
        hv_hub_channel_publish_event(ch, "{\"type\":\"reconnecting\"}");
    }
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_CULLED);
    g_assert_nonnull(strstr(reason, "event queue"));
    hv_hub_viewer_free(v);
    hv_hub_channel_free(ch, NULL);
}

static void
test_needs_and_close(void)
{
    needs n = {0};
    n.formats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    hv_hub_channel_callbacks cb = {on_video_needed, on_audio_needed, NULL, NULL};
    hv_hub_channel *ch = hv_hub_channel_new(8, &cb, &n);
    waker w = {0};
    hv_hub_viewer *a = hv_hub_viewer_new(ch, 44100, 1, on_wake, &w);
    hv_hub_viewer *b = hv_hub_viewer_new(ch, 44100, 1, on_wake, &w);
    hv_hub_viewer *c = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    g_assert_cmpint(n.video_on, ==, 1);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(n.formats, "44100/1")), ==, 1);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(n.formats, "48000/2")), ==, 1);
    g_assert_cmpuint(hv_hub_channel_viewer_count(ch), ==, 3);
    hv_hub_viewer_free(a);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(n.formats, "44100/1")), ==, 1);
    hv_hub_viewer_free(b);
    g_assert_cmpint(GPOINTER_TO_INT(g_hash_table_lookup(n.formats, "44100/1")), ==, 0);
    g_assert_cmpint(n.video_off, ==, 0);
    /* the channel goes away under a viewer: it is told, and can still be freed */
    int before = w.wakes;
    hv_hub_channel_free(ch, "session stopped");
    g_assert_cmpint(w.wakes, ==, before + 1);
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    g_assert_cmpint(hv_hub_viewer_next(c, &m, &reason), ==, HV_HUB_CLOSED);
    g_assert_cmpstr(reason, ==, "session stopped");
    hv_hub_viewer_free(c);
    g_hash_table_destroy(n.formats);
}

static void
test_latency_accounting(void)
{
    hv_hub_channel *ch = hv_hub_channel_new(8, NULL, NULL);
    waker w = {0};
    hv_hub_viewer *v = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    double p50 = -1, p99 = -1;
    unsigned n = 99;
    hv_hub_channel_latency(ch, &p50, &p99, &n);
    g_assert_cmpuint(n, ==, 0);
    for (int i = 1; i <= 100; i++) {
        g_autoptr(hv_hub_msg) f = video(i);
        /* arrived i ms ago */
        hv_hub_msg_set_captured_us(f, g_get_monotonic_time() - i * 1000);
        hv_hub_channel_publish_video(ch, f, 1, 1);
        hv_hub_msg *m = NULL;
        const char *reason = NULL;
        g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_SEND);
        hv_hub_msg_unref(m);
    }
    hv_hub_channel_latency(ch, &p50, &p99, &n);
    g_assert_cmpuint(n, ==, 100);
    g_assert_cmpfloat(p50, >=, 50.0);
    g_assert_cmpfloat(p50, <, 60.0);
    g_assert_cmpfloat(p99, >=, 99.0);
    g_assert_cmpfloat(p99, <, 110.0);
    hv_hub_viewer_free(v);
    hv_hub_channel_free(ch, NULL);
}

/* ---- encoded viewers: the GOP cache ------------------------------------------------------- */

typedef struct {
    int keys_wanted;
} key_counter;

static void
on_key_wanted(void *user_data)
{
    ((key_counter *)user_data)->keys_wanted++;
}

/* An encoded message: its text says what it is ("K1", "d3", "a2"), padded to len bytes. */
static hv_hub_msg *
enc(const char *name, size_t len)
{
    g_autofree char *buf = g_malloc0(len > strlen(name) ? len : strlen(name));
    memcpy(buf, name, strlen(name));
    return hv_hub_msg_new_copy(true, buf, len > strlen(name) ? len : strlen(name));
}

static void
publish(hv_hub_channel *ch, const char *name, size_t len)
{
    g_autoptr(hv_hub_msg) m = enc(name, len);
    hv_hub_channel_publish_encoded(ch, m, name[0] != 'a', name[0] == 'K');
}

/* The next message's name ("K1", or the format's "type" text), or "" when nothing is due. */
static char *
next_name(hv_hub_viewer *v)
{
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    hv_hub_next r = hv_hub_viewer_next(v, &m, &reason);
    if (r != HV_HUB_SEND) {
        return g_strdup(r == HV_HUB_NOTHING ? "" : "closed");
    }
    const char *d = (const char *)hv_hub_msg_data(m);
    size_t n = strnlen(d, hv_hub_msg_len(m));
    char *out = hv_hub_msg_is_binary(m) ? g_strndup(d, n) : g_strdup_printf("fmt:%.*s", (int)n, d);
    hv_hub_msg_unref(m);
    return out;
}

static void
expect_sequence(hv_hub_viewer *v, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        g_autofree char *got = next_name(v);
        g_assert_cmpstr(got, ==, names[i]);
    }
}

static void
test_encoded_starts_at_the_key_frame(void)
{
    key_counter k = {0};
    needs n = {0};
    n.formats = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    hv_hub_channel_callbacks cb = {on_video_needed, on_audio_needed, on_key_wanted, NULL};
    hv_hub_channel *ch = hv_hub_channel_new(8, &cb, &n);
    (void)k;
    hv_hub_channel_set_encoded_format(ch, "F1", true);
    publish(ch, "a0", 10); /* before any key frame */
    publish(ch, "d0", 10);
    publish(ch, "K1", 100);
    publish(ch, "d1", 10);
    publish(ch, "a1", 10);
    publish(ch, "d2", 10);
    waker w = {0};
    hv_hub_viewer *v = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    /* Encoded viewers need no decoding: no JPEG, no PCM format. */
    g_assert_cmpint(n.video_on, ==, 0);
    g_assert_cmpuint(g_hash_table_size(n.formats), ==, 0);
    g_assert_cmpuint(hv_hub_channel_viewer_count(ch), ==, 1);
    const char *const want[] = {"fmt:F1", "K1", "d1", "a1", "d2", "", NULL};
    expect_sequence(v, want);
    /* Live from here, and the messages are the published ones, not copies. */
    g_autoptr(hv_hub_msg) d3 = enc("d3", 10);
    hv_hub_channel_publish_encoded(ch, d3, true, false);
    g_assert_cmpint(w.wakes, >=, 1);
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    g_assert_cmpint(hv_hub_viewer_next(v, &m, &reason), ==, HV_HUB_SEND);
    g_assert_true(hv_hub_msg_data(m) == hv_hub_msg_data(d3));
    hv_hub_msg_unref(m);
    /* Before the key frame nobody needs anything: the cache dropped it. */
    hv_hub_gop_stats g;
    hv_hub_channel_gop_stats(ch, &g);
    g_assert_cmpuint(g.entries, ==, 5); /* K1 d1 a1 d2 d3 */
    g_assert_true(g.has_key_frame);
    g_assert_cmpuint(g.viewers, ==, 1);
    hv_hub_viewer_stats st;
    hv_hub_viewer_get_stats(v, &st);
    g_assert_cmpuint(st.video_sent, ==, 4);
    g_assert_cmpuint(st.audio_sent, ==, 1);
    /* A JPEG viewer alongside: decoding starts for it alone. */
    hv_hub_viewer *j = hv_hub_viewer_new(ch, 48000, 2, on_wake, &w);
    g_assert_cmpint(n.video_on, ==, 1);
    hv_hub_viewer_free(j);
    g_assert_cmpint(n.video_off, ==, 1);
    hv_hub_viewer_free(v);
    g_assert_cmpuint(hv_hub_channel_viewer_count(ch), ==, 0);
    hv_hub_channel_free(ch, NULL);
    g_hash_table_unref(n.formats);
}

static void
test_encoded_waits_for_a_key_frame(void)
{
    key_counter k = {0};
    hv_hub_channel_callbacks cb = {NULL, NULL, on_key_wanted, NULL};
    hv_hub_channel *ch = hv_hub_channel_new(8, &cb, &k);
    hv_hub_channel_set_encoded_format(ch, "F0", false); /* nothing known yet */
    waker w = {0};
    hv_hub_viewer *v = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    g_assert_cmpint(k.keys_wanted, ==, 1); /* no key frame cached: one is asked for */
    hv_hub_viewer *v2 = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    g_assert_cmpint(k.keys_wanted, ==, 1); /* at most once a second */
    /* A stream without video yet: audio flows to a waiting viewer. */
    publish(ch, "a0", 10);
    /* Then the video is known: deltas and audio are held back until the key frame, so the
     * first binary message after that format is the key frame. */
    hv_hub_channel_set_encoded_format(ch, "F1", true);
    publish(ch, "d0", 10);
    publish(ch, "a1", 10);
    publish(ch, "K1", 100);
    publish(ch, "a2", 10);
    const char *const want[] = {"fmt:F0", "a0", "fmt:F1", "K1", "a2", "", NULL};
    expect_sequence(v, want);
    expect_sequence(v2, want);
    hv_hub_viewer_stats st;
    hv_hub_viewer_get_stats(v, &st);
    g_assert_cmpuint(st.video_dropped, ==, 1); /* d0 */
    hv_hub_viewer_free(v);
    hv_hub_viewer_free(v2);
    hv_hub_channel_free(ch, NULL);
}

static void
test_encoded_format_changes(void)
{
    hv_hub_channel *ch = hv_hub_channel_new(8, NULL, NULL);
    hv_hub_channel_set_encoded_format(ch, "F1", true);
    publish(ch, "K1", 100);
    waker w = {0};
    hv_hub_viewer *a = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    publish(ch, "d1", 10);
    hv_hub_channel_set_encoded_format(ch, "F2", true); /* a republish in another codec */
    publish(ch, "K2", 100);
    publish(ch, "d2", 10);
    const char *const for_a[] = {"fmt:F1", "K1", "d1", "fmt:F2", "K2", "d2", "", NULL};
    expect_sequence(a, for_a);
    hv_hub_viewer *b = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    const char *const for_b[] = {"fmt:F2", "K2", "d2", "", NULL};
    expect_sequence(b, for_b);
    hv_hub_viewer_free(a);
    hv_hub_viewer_free(b);
    hv_hub_channel_free(ch, NULL);
}

static void
test_encoded_slow_viewer_skips_and_memory_is_bounded(void)
{
    key_counter k = {0};
    hv_hub_channel_callbacks cb = {NULL, NULL, on_key_wanted, NULL};
    hv_hub_channel *ch = hv_hub_channel_new(8, &cb, &k);
    hv_hub_channel_set_encoded_format(ch, "F", true);
    waker w = {0};
    publish(ch, "K1", 100);
    hv_hub_viewer *stalled = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    hv_hub_viewer *reader = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    g_autofree char *first = next_name(stalled); /* takes the format, then reads nothing */
    for (int gop = 1; gop <= 50; gop++) {
        if (gop > 1) {
            g_autofree char *key = g_strdup_printf("K%d", gop);
            publish(ch, key, 100);
        }
        for (int i = 0; i < 9; i++) {
            g_autofree char *name = g_strdup_printf("d%d.%d", gop, i);
            publish(ch, name, 10);
        }
        /* the reader keeps up */
        for (;;) {
            g_autofree char *got = next_name(reader);
            if (got[0] == '\0') {
                break;
            }
        }
        hv_hub_gop_stats g;
        hv_hub_channel_gop_stats(ch, &g);
        /* At most the GOP a stalled viewer is in and the current one: not 50 GOPs. */
        g_assert_cmpuint(g.entries, <=, 20);
    }
    /* The stalled viewer skipped ahead, key frame to key frame, never more than a GOP behind
     * the newest one: no broken reference chain, no backlog. */
    const char *const want[] = {"K49", "d49.0", NULL};
    expect_sequence(stalled, want);
    hv_hub_viewer_stats st;
    hv_hub_viewer_get_stats(stalled, &st);
    g_assert_cmpuint(st.video_dropped, >, 400);
    hv_hub_viewer_get_stats(reader, &st);
    g_assert_cmpuint(st.video_dropped, ==, 0);
    g_assert_cmpuint(st.video_sent, ==, 500);
    g_assert_cmpint(k.keys_wanted, ==, 0);
    hv_hub_viewer_free(stalled);
    hv_hub_viewer_free(reader);
    hv_hub_channel_free(ch, NULL);
}

static void
test_encoded_byte_bound(void)
{
    key_counter k = {0};
    hv_hub_channel_callbacks cb = {NULL, NULL, on_key_wanted, NULL};
    hv_hub_channel *ch = hv_hub_channel_new(8, &cb, &k);
    hv_hub_channel_set_gop_limit(ch, 1000);
    hv_hub_channel_set_encoded_format(ch, "F", true);
    waker w = {0};
    publish(ch, "K1", 400);
    hv_hub_viewer *v = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    g_autofree char *fmt = next_name(v);
    g_autofree char *k1 = next_name(v);
    g_assert_cmpstr(k1, ==, "K1");
    /* The GOP grows past the bound: its oldest entries go, the key frame first, and a key frame
     * is asked for; the cache never holds more than the bound. */
    for (int i = 0; i < 10; i++) {
        g_autofree char *name = g_strdup_printf("d%d", i);
        publish(ch, name, 100);
        hv_hub_gop_stats g;
        hv_hub_channel_gop_stats(ch, &g);
        g_assert_cmpuint(g.bytes, <=, 1000);
    }
    hv_hub_gop_stats g;
    hv_hub_channel_gop_stats(ch, &g);
    g_assert_false(g.has_key_frame);
    g_assert_cmpint(k.keys_wanted, ==, 1);
    /* The viewer has K1: it goes on decoding what is still cached... */
    const char *const d0[] = {"d0", NULL};
    expect_sequence(v, d0);
    /* ...until its next frame leaves the cache: then it waits for the next key frame, and so
     * does a new viewer. */
    for (int i = 10; i < 15; i++) {
        g_autofree char *name = g_strdup_printf("d%d", i);
        publish(ch, name, 100);
    }
    hv_hub_viewer *late = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    const char *const nothing[] = {"", NULL};
    expect_sequence(v, nothing);
    const char *const late_fmt[] = {"fmt:F", "", NULL};
    expect_sequence(late, late_fmt);
    publish(ch, "K2", 400);
    publish(ch, "d20", 100);
    const char *const resumed[] = {"K2", "d20", "", NULL};
    expect_sequence(v, resumed);
    expect_sequence(late, resumed);
    hv_hub_viewer_free(v);
    hv_hub_viewer_free(late);
    /* Closing the channel closes its encoded viewers too. */
    hv_hub_viewer *x = hv_hub_viewer_new_encoded(ch, on_wake, &w);
    hv_hub_channel_free(ch, "bye");
    g_autofree char *f2 = next_name(x); /* the queued format */
    hv_hub_msg *m = NULL;
    const char *reason = NULL;
    g_assert_cmpint(hv_hub_viewer_next(x, &m, &reason), ==, HV_HUB_CLOSED);
    g_assert_cmpstr(reason, ==, "bye");
    hv_hub_viewer_free(x);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hub/viewer/latest-video-wins", test_latest_video_wins);
    g_test_add_func("/hub/viewer/frames-shared-not-copied", test_frames_are_shared_not_copied);
    g_test_add_func("/hub/viewer/audio-ring-and-cull", test_audio_ring_and_cull);
    g_test_add_func("/hub/viewer/audio-in-order", test_audio_within_backlog_is_delivered_in_order);
    g_test_add_func("/hub/viewer/priority-and-events", test_priority_and_events);
    g_test_add_func("/hub/channel/needs-and-close", test_needs_and_close);
    g_test_add_func("/hub/channel/latency", test_latency_accounting);
    g_test_add_func("/hub/encoded/starts-at-the-key-frame", test_encoded_starts_at_the_key_frame);
    g_test_add_func("/hub/encoded/waits-for-a-key-frame", test_encoded_waits_for_a_key_frame);
    g_test_add_func("/hub/encoded/format-changes", test_encoded_format_changes);
    g_test_add_func("/hub/encoded/slow-viewer-skips-memory-bounded",
                    test_encoded_slow_viewer_skips_and_memory_is_bounded);
    g_test_add_func("/hub/encoded/byte-bound", test_encoded_byte_bound);
    return g_test_run();
}

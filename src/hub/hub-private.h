/* Private to the hub: the structures hub.c (messages, channels, JPEG/PCM viewers) and
 * encoded.c (the GOP cache and encoded viewers) share. Main thread only, like the hub. */
#ifndef HV_HUB_PRIVATE_H
#define HV_HUB_PRIVATE_H

#include "hub/hub.h"

typedef struct {
    int rate_hz, channels;
    hv_hub_msg **slots; /* audio_backlog entries, slot = seq % backlog */
    uint64_t head;      /* sequence number of the next chunk */
    unsigned users;
} audio_ring;

/* One entry of the GOP cache: an encoded message and the format message it belongs to. */
typedef struct {
    hv_hub_msg *msg;
    hv_hub_msg *format; /* strong */
    bool video;
    bool key;
    bool format_has_video;
} hv_hub_gop_entry;

/* The encoded stream from the newest video key frame on (encoded.c): a ring of entries with
 * consecutive sequence numbers, first_seq being buf[head]'s. */
typedef struct {
    hv_hub_gop_entry *buf;
    size_t cap, head, count;
    uint64_t first_seq;
    bool have_key;
    uint64_t key_seq; /* the newest video key frame in the ring, when have_key */
    size_t bytes, max_bytes;
    hv_hub_msg *format; /* the format message of what is published now (strong) */
    bool format_has_video;
    int64_t key_asked_us; /* when a key frame was last asked for */
    uint64_t keys_asked;
} hv_hub_gop;

struct hv_hub_channel {
    size_t backlog;
    hv_hub_channel_callbacks cb;
    void *user_data;
    hv_hub_msg *latest_video;
    int width, height;
    GPtrArray *rings;   /* audio_ring* */
    GList *viewers;     /* hv_hub_viewer* (not owned) */
    unsigned n_viewers; /* every viewer */
    unsigned n_jpeg;    /* JPEG/PCM viewers: decoding runs for them only */
    unsigned n_encoded; /* encoded viewers */
    hv_hub_gop gop;
    float latency_ms[HV_HUB_LATENCY_SAMPLES]; /* ring of the last sends' latencies */
    unsigned latency_n, latency_next;
    hv_hub_viewer_stats departed; /* the stats of viewers that left, summed */
};

struct hv_hub_viewer {
    hv_hub_channel *ch; /* NULL once the channel is gone */
    audio_ring *ring;
    uint64_t cursor;
    hv_hub_msg *pending_video;
    GQueue events; /* hv_hub_msg* */
    const char *cull_reason;
    char *closed_reason; /* set when the channel went away */
    void (*wake)(void *user_data);
    void *user_data;
    hv_hub_viewer_stats stats;
    /* Encoded viewers (encoded.c): the next entry to send, waiting for a key frame, and the
     * format message last sent (strong). */
    bool encoded;
    bool enc_waiting;
    uint64_t enc_cursor;
    hv_hub_msg *enc_format;
};

/* notify.c */
void hv_hub_cull(hv_hub_viewer *v, const char *reason, const char *metric_reason);
void hv_hub_wake(hv_hub_viewer *v);
void hv_hub_viewers_changed(hv_hub_channel *ch);
/* Notes the latency of a video message handed to a viewer's socket. */
void hv_hub_note_latency(hv_hub_channel *ch, const hv_hub_msg *m);

/* encoded.c */
void hv_hub_gop_clear(hv_hub_channel *ch);
bool hv_hub_encoded_has_pending(const hv_hub_viewer *v);
/* The next encoded entry (or format) for v: (transfer full), NULL when nothing is due; counts
 * it in v's stats but for bytes_sent (the caller's). */
hv_hub_msg *hv_hub_encoded_next(hv_hub_viewer *v);

#endif

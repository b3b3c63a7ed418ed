/* test_sender: an in-process WebRTC offerer for the media tests and bench-decode.
 *
 * A webrtcbin pipeline with live test sources (videotestsrc ball → VP8 or H.264, audiotestsrc
 * sine → Opus) and optionally a data channel, so its offer looks like a LiveKit subscriber
 * offer (audio/video m-lines + m=application). ICE is restricted to 127.0.0.1. Everything
 * reported to the caller runs on the thread-default main context of test_sender_new().
 */
#ifndef HV_TEST_SENDER_H
#define HV_TEST_SENDER_H

#include <glib.h>
#include <stdbool.h>

typedef struct test_sender test_sender;

typedef struct {
    const char *video; /* "VP8", "H264" or NULL for none */
    int width, height, fps;
    int keyframe_interval; /* frames between forced keyframes (big: PLI is needed) */
    bool audio;
    bool data_channel;
} test_sender_config;

typedef struct {
    void (*on_offer)(const char *sdp, void *user_data);
    void (*on_candidate)(unsigned mline, const char *candidate, void *user_data);
} test_sender_callbacks;

test_sender *test_sender_new(const test_sender_config *cfg, const test_sender_callbacks *cb,
                             void *user_data);
/* Stops the pipeline; nothing is reported afterwards. */
void test_sender_free(test_sender *t);
/* Creates an offer (once every source has caps) and reports it with on_offer. */
void test_sender_offer(test_sender *t);
void test_sender_set_answer(test_sender *t, const char *sdp);
void test_sender_add_candidate(test_sender *t, unsigned mline, const char *candidate);
/* Adds an Opus track (a 1250 Hz tone; the first audio track is 440 Hz) to a running sender
 * (then call test_sender_offer to renegotiate). */
void test_sender_add_audio(test_sender *t);

#endif

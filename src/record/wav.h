/* wav: a crash-tolerant WAV (RIFF, PCM S16LE) writer. The header's sizes are rewritten every
 * time hv_wav_sync() runs and on close, so a file cut short by a crash is at most one sync
 * interval behind its header; hv_wav_repair() fixes the sizes of such a file from its length.
 *
 * Not thread-safe: one thread writes (the recorder's audio thread); nothing else touches it.
 */
#ifndef HV_RECORD_WAV_H
#define HV_RECORD_WAV_H

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

#define HV_WAV_HEADER_BYTES 44

typedef struct hv_wav hv_wav;

/* Creates (truncating) path and writes a header for rate_hz / channels, 16-bit. */
hv_wav *hv_wav_open(const char *path, int rate_hz, int channels, GError **error);
/* Appends whole frames (len must be a multiple of channels * 2). */
bool hv_wav_write(hv_wav *w, const void *data, size_t len, GError **error);
/* Appends frames of silence. */
bool hv_wav_write_silence(hv_wav *w, uint64_t frames, GError **error);
/* Rewrites the RIFF and data sizes in the header for what has been written so far. */
bool hv_wav_sync(hv_wav *w, GError **error);
/* Syncs and closes; w is freed even on error. */
bool hv_wav_close(hv_wav *w, GError **error);

uint64_t hv_wav_frames(const hv_wav *w); /* frames written */
uint64_t hv_wav_bytes(const hv_wav *w);  /* file size, header included */
int hv_wav_rate(const hv_wav *w);
int hv_wav_channels(const hv_wav *w);

/* Fills the 44-byte header for data_bytes of PCM (sizes saturate at the 4 GiB RIFF limit). */
void hv_wav_header(uint8_t out[HV_WAV_HEADER_BYTES], int rate_hz, int channels,
                   uint64_t data_bytes);
/* Fixes the RIFF and data sizes of a WAV file haven wrote (a 44-byte canonical header) from the
 * file's length, dropping a trailing partial frame. On success *duration_ms is the audio's
 * length. Fails (HV_EINVAL) when the file is not such a WAV. */
bool hv_wav_repair(const char *path, int64_t *duration_ms, GError **error);

#endif

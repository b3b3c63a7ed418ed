/* wav.c: see wav.h. Writes go straight to the file descriptor (no stdio buffering to lose on a
 * crash beyond what the kernel holds); the header is patched with pwrite so the append offset
 * never moves. */
#include "record/wav.h"

#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* RIFF sizes are 32-bit: a file past 4 GiB keeps growing but its header says "maximum", which
 * players treat as "read to the end". */
#define RIFF_MAX 0xffffffffu

struct hv_wav {
    int fd;
    char *path;
    int rate_hz;
    int channels;
    uint64_t data_bytes;
};

static void
put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void
put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t
get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void
hv_wav_header(uint8_t out[HV_WAV_HEADER_BYTES], int rate_hz, int channels, uint64_t data_bytes)
{
    uint32_t data32 =
        data_bytes > RIFF_MAX - (HV_WAV_HEADER_BYTES - 8) ? RIFF_MAX - 36 : (uint32_t)data_bytes;
    uint16_t block = (uint16_t)(channels * 2);
    memcpy(out, "RIFF", 4);
    put_le32(out + 4, data32 + 36);
    memcpy(out + 8, "WAVEfmt ", 8);
    put_le32(out + 16, 16);
    put_le16(out + 20, 1); /* PCM */
    put_le16(out + 22, (uint16_t)channels);
    put_le32(out + 24, (uint32_t)rate_hz);
    put_le32(out + 28, (uint32_t)rate_hz * block);
    put_le16(out + 32, block);
    put_le16(out + 34, 16);
    memcpy(out + 36, "data", 4);
    put_le32(out + 40, data32);
}

static bool
write_all(int fd, const void *data, size_t len, const char *path, GError **error)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            g_set_error(error, HV_ERROR, HV_EIO, "cannot write %s: %s", path, g_strerror(e));
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

hv_wav *
hv_wav_open(const char *path, int rate_hz, int channels, GError **error)
{
    if (rate_hz <= 0 || channels <= 0 || channels > 8) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "unsupported WAV format: %d Hz, %d channel(s)",
                    rate_hz, channels);
        return NULL;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot create %s: %s", path, g_strerror(errno));
        return NULL;
    }
    uint8_t header[HV_WAV_HEADER_BYTES];
    hv_wav_header(header, rate_hz, channels, 0);
    if (!write_all(fd, header, sizeof(header), path, error)) {
        close(fd);
        return NULL;
    }
    hv_wav *w = g_new0(hv_wav, 1);
    w->fd = fd;
    w->path = g_strdup(path);
    w->rate_hz = rate_hz;
    w->channels = channels;
    return w;
}

bool
hv_wav_write(hv_wav *w, const void *data, size_t len, GError **error)
{
    if (!write_all(w->fd, data, len, w->path, error)) {
        return false;
    }
    w->data_bytes += len;
    return true;
}

bool
hv_wav_write_silence(hv_wav *w, uint64_t frames, GError **error)
{
    static const uint8_t zeros[8192];
    uint64_t bytes = frames * (uint64_t)w->channels * 2;
    while (bytes > 0) {
        size_t n = bytes < sizeof(zeros) ? (size_t)bytes : sizeof(zeros);
        if (!hv_wav_write(w, zeros, n, error)) {
            return false;
        }
        bytes -= n;
    }
    return true;
}

bool
hv_wav_sync(hv_wav *w, GError **error)
{
    uint8_t header[HV_WAV_HEADER_BYTES];
    hv_wav_header(header, w->rate_hz, w->channels, w->data_bytes);
    if (pwrite(w->fd, header, sizeof(header), 0) != (ssize_t)sizeof(header)) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot update the header of %s: %s", w->path,
                    g_strerror(errno));
        return false;
    }
    return true;
}

bool
hv_wav_close(hv_wav *w, GError **error)
{
    if (w == NULL) {
        return true;
    }
    bool ok = hv_wav_sync(w, error);
    if (fsync(w->fd) != 0 && ok) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot flush %s: %s", w->path, g_strerror(errno));
        ok = false;
    }
    if (close(w->fd) != 0 && ok) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot close %s: %s", w->path, g_strerror(errno));
        ok = false;
    }
    g_free(w->path);
    g_free(w);
    return ok;
}

uint64_t
hv_wav_frames(const hv_wav *w)
{
    return w->data_bytes / ((uint64_t)w->channels * 2);
}

uint64_t
hv_wav_bytes(const hv_wav *w)
{
    return w->data_bytes + HV_WAV_HEADER_BYTES;
}

int
hv_wav_rate(const hv_wav *w)
{
    return w->rate_hz;
}

int
hv_wav_channels(const hv_wav *w)
{
    return w->channels;
}

bool
hv_wav_repair(const char *path, int64_t *duration_ms, GError **error)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot open %s: %s", path, g_strerror(errno));
        return false;
    }
    uint8_t h[HV_WAV_HEADER_BYTES];
    struct stat st;
    bool ok = false;
    if (fstat(fd, &st) != 0 || pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
        memcmp(h, "RIFF", 4) != 0 || memcmp(h + 8, "WAVEfmt ", 8) != 0 || get_le32(h + 16) != 16 ||
        get_le16(h + 20) != 1 || get_le16(h + 34) != 16 || memcmp(h + 36, "data", 4) != 0) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "%s is not a 16-bit PCM WAV written by haven",
                    path);
        goto out;
    }
    int channels = get_le16(h + 22);
    int rate = (int)get_le32(h + 24);
    if (channels <= 0 || rate <= 0) {
        g_set_error(error, HV_ERROR, HV_EINVAL, "%s has an invalid format header", path);
        goto out;
    }
    uint64_t frame = (uint64_t)channels * 2;
    uint64_t data = (uint64_t)st.st_size - HV_WAV_HEADER_BYTES;
    data -= data % frame;
    if (ftruncate(fd, (off_t)(data + HV_WAV_HEADER_BYTES)) != 0) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot trim %s: %s", path, g_strerror(errno));
        goto out;
    }
    hv_wav_header(h, rate, channels, data);
    if (pwrite(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h) || fsync(fd) != 0) {
        g_set_error(error, HV_ERROR, HV_EIO, "cannot rewrite the header of %s: %s", path,
                    g_strerror(errno));
        goto out;
    }
    if (duration_ms != NULL) {
        *duration_ms = (int64_t)(data / frame * 1000 / (uint64_t)rate);
    }
    ok = true;
out:
    close(fd);
    return ok;
}

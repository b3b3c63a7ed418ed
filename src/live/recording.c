/* recording.c: a live session's recordings (see live.h, record.h). Main thread only.
 *
 * A session that wants recording gets a recorder whenever its peer connection delivers media:
 * once the tracks the streamer publishes have all appeared (or 2 s after the first one), a
 * recorder is created, its row inserted, and the media session's tap pointed at it. A reconnect
 * replaces the peer connection, and with it the file: the old recorder finishes, a new one
 * starts when media flows again. Finishing recorders stay in live->recordings until their done
 * callback has written the final row, so shutdown can wait for them.
 */
#include "live-private.h"

#include "core/json.h"
#include "core/util.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define TRACK_WAIT_MS       2000
#define FINISH_TIMEOUT_MS   10000
#define ROW_UPDATE_INTERVAL 5 /* s: rows of running recordings are refreshed this often */

struct hv_live_rec {
    hv_live *live;
    hv_live_session *session; /* weak: cleared when the session is freed */
    hv_recorder *recorder;    /* owned */
    hv_store_recording row;
};

/* Log context of a recording: mint, room and session while the session lives, and the row. */
#define REC_CTX(e)                                                                      \
    (&(const hv_log_ctx){.mint = (e)->row.mint_id,                                      \
                         .room = (e)->session != NULL ? (e)->session->room_name : NULL, \
                         .session = (e)->session != NULL ? (e)->session->db_id : 0,     \
                         .recording = (e)->row.id})

/* ---- the tap: media streaming threads → recorder ------------------------------------------ */

static void
tap_caps(hv_media_tap_kind kind, GstCaps *caps, void *data)
{
    hv_recorder_set_caps(data, kind == HV_MEDIA_TAP_VIDEO ? HV_RECORD_VIDEO : HV_RECORD_AUDIO,
                         caps);
}

static void
tap_buffer(hv_media_tap_kind kind, GstBuffer *buf, uint64_t running_time, void *data)
{
    hv_recorder_push(data, kind == HV_MEDIA_TAP_VIDEO ? HV_RECORD_VIDEO : HV_RECORD_AUDIO, buf,
                     running_time);
}

static void *
tap_ref(void *data)
{
    return hv_recorder_ref(data);
}

static void
tap_unref(void *data)
{
    hv_recorder_unref(data);
}

static const hv_media_tap recorder_tap = {tap_caps, tap_buffer, tap_ref, tap_unref};

/* ---- rows --------------------------------------------------------------------------------- */

static void
fill_stats(hv_live_rec *e)
{
    hv_recorder_stats st;
    hv_recorder_get_stats(e->recorder, &st);
    e->row.duration_ms = st.duration_ms;
    e->row.bytes = (int64_t)st.bytes;
    e->row.dropped = (int64_t)st.dropped;
    e->row.width = st.width;
    e->row.height = st.height;
}

static gboolean
on_row_update(gpointer user_data)
{
    hv_live *live = user_data;
    for (unsigned i = 0; i < live->recordings->len; i++) {
        hv_live_rec *e = g_ptr_array_index(live->recordings, i);
        if (e->row.id > 0 && !hv_recorder_is_done(e->recorder)) {
            fill_stats(e);
            (void)hv_store_update_recording(live->store, &e->row, NULL);
        }
    }
    if (live->recordings->len == 0) {
        live->rec_update_timer = 0;
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static void
publish(hv_live_session *s, const char *status, const hv_live_rec *e, const char *error)
{
    if (s == NULL || s->channel == NULL) {
        return;
    }
    g_autoptr(json_t) ev = json_pack("{s:s, s:s, s:I, s:s?}", "type", "recording", "status", status,
                                     "recording_id", (json_int_t)e->row.id, "error", error);
    g_autofree char *text = json_dumps(ev, JSON_COMPACT);
    hv_hub_channel_publish_event(s->channel, text);
}

static void
rec_free(hv_live_rec *e)
{
    hv_store_recording_clear(&e->row);
    hv_recorder_unref(e->recorder);
    g_free(e);
}

static void
on_recorder_done(hv_recorder *r, const char *error, void *user_data)
{
    hv_live_rec *e = user_data;
    hv_live *live = e->live;
    hv_live_session *s = e->session;
    fill_stats(e);
    e->row.end_ms = hv_wall_ms();
    g_free(e->row.status);
    e->row.status = g_strdup(error == NULL ? "finished" : "failed");
    g_free(e->row.error);
    e->row.error = g_strdup(error);
    g_autoptr(GError) derr = NULL;
    if (e->row.id > 0 && !hv_store_update_recording(live->store, &e->row, &derr)) {
        HV_WARNING(REC_CTX(e), "recording %" G_GINT64_FORMAT ": %s", e->row.id, derr->message);
    }
    if (error == NULL) {
        HV_MESSAGE(REC_CTX(e),
                   "recording %" G_GINT64_FORMAT " finished: %s%s%s (%.1f s, %" G_GINT64_FORMAT
                   " bytes)",
                   e->row.id, e->row.video_path != NULL ? e->row.video_path : "",
                   e->row.video_path != NULL && e->row.audio_path != NULL ? " + " : "",
                   e->row.audio_path != NULL ? e->row.audio_path : "",
                   (double)e->row.duration_ms / 1000.0, e->row.bytes);
    } else {
        HV_WARNING(REC_CTX(e), "recording %" G_GINT64_FORMAT " failed: %s", e->row.id, error);
    }
    live->rec_bytes_finished += (uint64_t)MAX(e->row.bytes, 0);
    if (s != NULL) {
        s->rec_bytes_done += (uint64_t)e->row.bytes;
        s->rec_files_done++;
        if (s->rec == e) {
            /* Failed by itself (disk full, write error): stop recording this session, keep
             * the session going. */
            s->rec = NULL;
            if (s->media != NULL) {
                hv_media_session_set_tap(s->media, NULL, NULL);
            }
            if (error != NULL) {
                g_free(s->rec_error);
                s->rec_error = g_strdup(error);
                s->record = false;
                hv_live_update_idle_timer(s);
            }
        }
        publish(s, error == NULL ? "finished" : "failed", e, error);
    }
    (void)g_ptr_array_remove(live->recordings, e);
    rec_free(e);
}

/* ---- start and stop ----------------------------------------------------------------------- */

static void
rec_fail_start(hv_live_session *s, const char *why)
{
    HV_WARNING(S_CTX(s), "cannot record: %s", why);
    g_free(s->rec_error);
    s->rec_error = g_strdup(why);
    s->record = false;
    hv_live_update_idle_timer(s);
}

static void
rec_start(hv_live_session *s)
{
    hv_live *live = s->live;
    const hv_config *cfg = live->cfg;
    if (g_mkdir_with_parents(cfg->recordings_dir, 0755) != 0) {
        g_autofree char *why = g_strdup_printf("cannot create the recordings directory %s: %s",
                                               cfg->recordings_dir, g_strerror(errno));
        rec_fail_start(s, why);
        return;
    }
    g_autofree char *dir = g_canonicalize_filename(cfg->recordings_dir, NULL);
    int64_t now = hv_wall_ms();
    hv_recorder_config rc = {
        .dir = dir,
        .mint_id = s->mint,
        .start_wall_ms = now,
        .video_codec = s->video_codec[0] != '\0' ? s->video_codec : NULL,
        .audio_codec = s->audio_codec[0] != '\0' ? s->audio_codec : NULL,
        .force_mp4 = g_strcmp0(cfg->record_format, "mp4") == 0,
        .queue_bytes = cfg->record_queue_bytes,
        .fragment_ms = 1000,
    };
    hv_live_rec *e = g_new0(hv_live_rec, 1);
    e->live = live;
    e->session = s;
    g_autoptr(GError) error = NULL;
    e->recorder = hv_recorder_new(&rc, on_recorder_done, e, &error);
    if (e->recorder == NULL) {
        g_free(e);
        rec_fail_start(s, error->message);
        return;
    }
    hv_recorder_files files;
    hv_recorder_get_files(e->recorder, &files);
    e->row.session_id = s->db_id > 0 ? s->db_id : 0;
    e->row.mint_id = g_strdup(s->mint);
    e->row.video_path = g_strdup(files.video_path);
    e->row.audio_path = g_strdup(files.audio_path);
    e->row.container = g_strdup(files.container);
    e->row.video_codec = g_strdup(rc.video_codec);
    e->row.audio_codec = g_strdup(rc.audio_codec);
    e->row.stored_video_codec = g_strdup(files.stored_video_codec);
    e->row.start_ms = now;
    e->row.status = g_strdup("recording");
    const int64_t *continues = g_hash_table_lookup(live->continuations, s->mint);
    e->row.continuation_of = continues != NULL ? *continues : 0;
    e->row.id = hv_store_insert_recording(live->store, &e->row, &error);
    if (e->row.id > 0) {
        g_hash_table_remove(live->continuations, s->mint); /* only the first file continues */
    }
    if (e->row.id < 0) {
        HV_WARNING(S_CTX(s), "recording row: %s", error->message);
        g_clear_error(&error);
        e->row.id = 0;
    }
    const char *path = files.video_path != NULL ? files.video_path : files.audio_path;
    if (s->db_id > 0) {
        (void)hv_store_set_session_recording_path(live->store, s->db_id, path, NULL);
    }
    g_free(s->rec_last_path);
    s->rec_last_path = g_strdup(path);
    s->last_rec_id = e->row.id;
    g_clear_pointer(&s->rec_error, g_free);
    s->rec = e;
    g_ptr_array_add(live->recordings, e);
    if (live->rec_update_timer == 0) {
        live->rec_update_timer = g_timeout_add_seconds(ROW_UPDATE_INTERVAL, on_row_update, live);
    }
    HV_MESSAGE(REC_CTX(e), "recording %" G_GINT64_FORMAT " to %s (%s%s%s)", e->row.id, path,
               rc.video_codec != NULL ? rc.video_codec : "",
               rc.video_codec != NULL && rc.audio_codec != NULL ? " + " : "",
               rc.audio_codec != NULL ? rc.audio_codec : "");
    /* Sets the tap and asks the sender for a keyframe: the file starts on it. */
    hv_media_session_set_tap(s->media, &recorder_tap, e->recorder);
    publish(s, "started", e, NULL);
}

static gboolean
on_track_wait(gpointer user_data)
{
    hv_live_session *s = user_data;
    s->rec_wait_timer = 0;
    if (s->record && s->rec == NULL && s->media != NULL &&
        (s->video_codec[0] != '\0' || s->audio_codec[0] != '\0')) {
        HV_MESSAGE(S_CTX(s), "not every published track arrived; recording what there is");
        rec_start(s);
    }
    return G_SOURCE_REMOVE;
}

void
hv_live_rec_maybe_start(hv_live_session *s)
{
    if (!s->record || s->rec != NULL || s->media == NULL || s->state == S_ENDED) {
        return;
    }
    bool have_v = s->video_codec[0] != '\0';
    bool have_a = s->audio_codec[0] != '\0';
    if (!have_v && !have_a) {
        return;
    }
    bool known = s->expect_video || s->expect_audio;
    bool complete =
        known ? (!s->expect_video || have_v) && (!s->expect_audio || have_a) : have_v && have_a;
    if (!complete) {
        if (s->rec_wait_timer == 0) {
            s->rec_wait_timer = g_timeout_add(TRACK_WAIT_MS, on_track_wait, s);
        }
        return;
    }
    if (s->rec_wait_timer != 0) {
        g_source_remove(s->rec_wait_timer);
        s->rec_wait_timer = 0;
    }
    rec_start(s);
}

void
hv_live_rec_on_track(hv_live_session *s, const char *kind, const char *codec)
{
    bool video = g_strcmp0(kind, "video") == 0;
    g_strlcpy(video ? s->video_codec : s->audio_codec, codec != NULL ? codec : "",
              sizeof(s->video_codec));
    hv_live_rec_maybe_start(s);
}

void
hv_live_rec_on_streamer(hv_live_session *s, const hv_lk_track *tracks, size_t n)
{
    s->expect_video = false;
    s->expect_audio = false;
    for (size_t i = 0; i < n; i++) {
        if (tracks[i].is_video) {
            s->expect_video = true;
        } else {
            s->expect_audio = true;
        }
    }
    hv_live_rec_maybe_start(s);
}

void
hv_live_rec_stop(hv_live_session *s)
{
    if (s->rec_wait_timer != 0) {
        g_source_remove(s->rec_wait_timer);
        s->rec_wait_timer = 0;
    }
    hv_live_rec *e = s->rec;
    if (e == NULL) {
        return;
    }
    s->rec = NULL;
    if (s->media != NULL) {
        hv_media_session_set_tap(s->media, NULL, NULL);
    }
    publish(s, "stopping", e, NULL);
    hv_recorder_finish(e->recorder, FINISH_TIMEOUT_MS);
}

void
hv_live_rec_session_gone(hv_live_session *s)
{
    hv_live_rec_stop(s);
    hv_live *live = s->live;
    for (unsigned i = 0; i < live->recordings->len; i++) {
        hv_live_rec *e = g_ptr_array_index(live->recordings, i);
        if (e->session == s) {
            e->session = NULL;
        }
    }
    g_clear_pointer(&s->rec_error, g_free);
    g_clear_pointer(&s->rec_last_path, g_free);
}

void
hv_live_rec_abort_all(hv_live *live)
{
    while (live->recordings->len > 0) {
        hv_live_rec *e = g_ptr_array_index(live->recordings, 0);
        /* The done callback removes e; a recorder that never started leaves no files. */
        hv_recorder_abort(e->recorder, "haven stopped before the recording could finish");
    }
}

void
hv_live_rec_report(hv_live_session *s, hv_live_recording_report *out)
{
    out->wanted = s->record;
    out->active = s->rec != NULL;
    out->status = s->rec != NULL         ? "recording"
                  : s->record            ? "waiting_for_media"
                  : s->rec_error != NULL ? "failed"
                                         : "off";
    hv_recorder_stats st = {0};
    if (s->rec != NULL) {
        hv_recorder_get_stats(s->rec->recorder, &st);
    }
    out->recording_id = s->rec != NULL && s->rec->row.id > 0 ? s->rec->row.id : 0;
    out->bytes = st.bytes;
    out->duration_ms = st.duration_ms;
    out->dropped_packets = st.dropped;
    out->error = s->rec_error;
}

bool
hv_live_record_progress_get(hv_live *live, const char *mint_id, hv_live_record_progress *out)
{
    memset(out, 0, sizeof(*out));
    hv_live_session *s = g_hash_table_lookup(live->sessions, mint_id);
    if (s == NULL) {
        return false;
    }
    out->bytes = s->rec_bytes_done;
    out->files = s->rec_files_done;
    out->path = s->rec_last_path;
    out->error = s->rec_error;
    if (s->rec != NULL) {
        hv_recorder_stats st;
        hv_recorder_get_stats(s->rec->recorder, &st);
        out->recording = st.started;
        out->duration_ms = st.duration_ms;
        out->bytes += st.bytes;
        out->dropped = st.dropped;
    }
    return true;
}

uint64_t
hv_live_recording_bytes(hv_live *live, unsigned *running)
{
    uint64_t bytes = live->rec_bytes_finished;
    *running = 0;
    for (guint i = 0; i < live->recordings->len; i++) {
        hv_live_rec *e = g_ptr_array_index(live->recordings, i);
        hv_recorder_stats st;
        hv_recorder_get_stats(e->recorder, &st);
        bytes += st.bytes;
        *running += hv_recorder_is_done(e->recorder) ? 0 : 1;
    }
    return bytes;
}

/* ---- crash recovery ------------------------------------------------------------------------ */

static int64_t
file_mtime_ms(const char *path)
{
    GStatBuf st;
    return path != NULL && g_stat(path, &st) == 0 ? (int64_t)st.st_mtime * 1000 : 0;
}

static int64_t
file_bytes(const char *path)
{
    GStatBuf st;
    return path != NULL && g_stat(path, &st) == 0 ? (int64_t)st.st_size : 0;
}

/* "<mint>_<yyyymmddThhmmssZ>[-n].<ext>" → mint and start time; false for other names. */
static bool
parse_recording_name(const char *path, char **mint, int64_t *start_ms)
{
    g_autofree char *base = g_path_get_basename(path);
    char *us = strchr(base, '_');
    if (us == NULL) {
        return false;
    }
    *us = '\0';
    if (!hv_mint_id_is_valid(base)) {
        return false;
    }
    int y, mo, d, h, mi, se;
    if (sscanf(us + 1, "%4d%2d%2dT%2d%2d%2dZ", &y, &mo, &d, &h, &mi, &se) != 6) {
        return false;
    }
    g_autoptr(GDateTime) t = g_date_time_new_utc(y, mo, d, h, mi, se);
    if (t == NULL) {
        return false;
    }
    *mint = g_strdup(base);
    *start_ms = g_date_time_to_unix(t) * 1000;
    return true;
}

static char *
strip_ext(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot != NULL ? g_strndup(path, (gsize)(dot - path)) : g_strdup(path);
}

int
hv_live_recover_recordings(hv_live *live)
{
    const char *dir = live->cfg->recordings_dir;
    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        return 0;
    }
    g_autofree char *absdir = g_canonicalize_filename(dir, NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) files = hv_record_recover(absdir, &error);
    if (files == NULL) {
        g_warning("cannot check %s for unfinished recordings: %s", absdir, error->message);
        return 0;
    }
    /* Durations known from repaired WAVs, by base path. */
    g_autoptr(GHashTable) wav_ms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_autoptr(GHashTable) unclaimed = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (unsigned i = 0; i < files->len; i++) {
        const hv_record_recovered *f = g_ptr_array_index(files, i);
        g_hash_table_add(unclaimed, g_strdup(f->path));
        if (f->duration_ms >= 0) {
            g_hash_table_insert(wav_ms, strip_ext(f->path), GINT_TO_POINTER(f->duration_ms + 1));
        }
    }
    int recovered = 0;
    g_autoptr(GPtrArray) rows = hv_store_list_unfinished_recordings(live->store, &error);
    if (rows == NULL) {
        g_warning("cannot read unfinished recordings: %s", error->message);
        g_clear_error(&error);
    }
    for (unsigned i = 0; rows != NULL && i < rows->len; i++) {
        hv_store_recording *r = g_ptr_array_index(rows, i);
        const char *any = r->video_path != NULL ? r->video_path : r->audio_path;
        g_autofree char *base = any != NULL ? strip_ext(any) : NULL;
        gpointer ms = base != NULL ? g_hash_table_lookup(wav_ms, base) : NULL;
        if (r->video_path != NULL) {
            g_hash_table_remove(unclaimed, r->video_path);
        }
        if (r->audio_path != NULL) {
            g_hash_table_remove(unclaimed, r->audio_path);
        }
        r->bytes = file_bytes(r->video_path) + file_bytes(r->audio_path);
        r->end_ms = MAX(file_mtime_ms(r->video_path), file_mtime_ms(r->audio_path));
        if (ms != NULL) {
            r->duration_ms = GPOINTER_TO_INT(ms) - 1;
        } else if (r->end_ms > r->start_ms) {
            r->duration_ms = r->end_ms - r->start_ms;
        }
        g_free(r->status);
        r->status = g_strdup("recovered");
        g_free(r->error);
        r->error = g_strdup("haven stopped without finishing this recording (recovered at "
                            "startup: playable up to the last written second)");
        if (hv_store_update_recording(live->store, r, &error)) {
            recovered++;
        } else {
            g_warning("recording %" G_GINT64_FORMAT ": %s", r->id, error->message);
            g_clear_error(&error);
        }
    }
    /* Leftovers no row knows of (the row was lost, or another haven wrote them): one row per
     * base name, so a video file and its WAV stay together. */
    g_autoptr(GHashTable) by_base = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                                          (GDestroyNotify)hv_store_recording_free);
    GHashTableIter it;
    gpointer key;
    g_hash_table_iter_init(&it, unclaimed);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        const char *path = key;
        char *mint = NULL;
        int64_t start_ms = 0;
        if (!parse_recording_name(path, &mint, &start_ms)) {
            g_free(mint);
            continue;
        }
        char *base = strip_ext(path);
        hv_store_recording *r = g_hash_table_lookup(by_base, base);
        if (r == NULL) {
            r = g_new0(hv_store_recording, 1);
            r->mint_id = mint;
            r->start_ms = start_ms;
            r->status = g_strdup("recovered");
            r->error = g_strdup("found unfinished at startup, with no record of it");
            g_hash_table_insert(by_base, base, r);
        } else {
            g_free(mint);
            g_free(base);
        }
        if (g_str_has_suffix(path, ".wav")) {
            r->audio_path = g_strdup(path);
            r->audio_codec = g_strdup("OPUS");
        } else {
            r->video_path = g_strdup(path);
            r->container = g_strdup(g_str_has_suffix(path, ".webm") ? "webm" : "mp4");
        }
    }
    g_hash_table_iter_init(&it, by_base);
    gpointer value;
    while (g_hash_table_iter_next(&it, &key, &value)) {
        hv_store_recording *r = value;
        gpointer ms = g_hash_table_lookup(wav_ms, key);
        r->bytes = file_bytes(r->video_path) + file_bytes(r->audio_path);
        r->end_ms = MAX(file_mtime_ms(r->video_path), file_mtime_ms(r->audio_path));
        r->duration_ms = ms != NULL ? GPOINTER_TO_INT(ms) - 1 : MAX(0, r->end_ms - r->start_ms);
        if (hv_store_insert_recording(live->store, r, &error) > 0) {
            recovered++;
        } else {
            g_warning("recovered recording %s: %s", (char *)key, error->message);
            g_clear_error(&error);
        }
    }
    if (recovered > 0 || files->len > 0) {
        g_message("recovered %d recording(s) left unfinished by a previous run (%u file(s) "
                  "renamed in %s)",
                  recovered, files->len, absdir);
    }
    return recovered;
}

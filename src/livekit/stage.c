/* stage.c: who is on stage in a LiveKit room, which of them is the streamer, and which of the
 * streamer's tracks haven receives (spec §6.1; pump.fun's rules in pumpfun-api.md §5).
 *
 * Pure logic over participant snapshots: no I/O, no callbacks. room.c feeds it every
 * ParticipantInfo it receives and turns each hv_lk_stage_update() into subscriptions and
 * on_streamer / on_streamer_left calls.
 *
 * The streamer. pump.fun rooms hold the host and sometimes guests on stage, each publishing
 * camera and microphone; nothing in the protocol says who the host is. The host score ranks
 * identities: one without "viewer" (guests and viewers carry it in every public sighting) beats
 * one with it; one that holds the mint (or its first 8 characters), or an ingress participant
 * (RTMP/WHIP: how OBS streams arrive), gets one point more. The first choice takes the best
 * score, then the largest video. After that the choice is sticky: a publisher only replaces
 * the streamer with a strictly better score, never because the streamer stopped publishing,
 * so a guest on stage never takes over while the host switches cameras, restarts its ingress
 * or reconnects. An earlier connection's streamer identity can be handed in to keep it across
 * reconnects.
 *
 * The tracks. Video: one track, a live (unmuted) screen share before a camera, then the larger
 * picture. Audio: every audio track (microphone, screen-share audio), mixed by the media layer.
 *
 * Memory: only publishers are remembered (a room may hold tens of thousands of silent
 * viewers), at most HV_LK_MAX_PUBLISHERS of them, plus the streamer.
 */
#include "livekit-private.h"

#include <string.h>

/* Publishers remembered per room (the streamer is one of them; others are candidates). */
#define HV_LK_MAX_PUBLISHERS 256

typedef struct {
    char *sid;
    char *mime_type;
    char **codecs; /* primary first, then backups; never NULL */
    bool is_video;
    hv_lk_source source;
    int width, height;
    bool muted;
} lk_track;

typedef struct {
    char *sid;
    char *identity;
    uint32_t version;
    bool ingress;
    GPtrArray *tracks; /* lk_track*, owned: audio and video only */
} lk_participant;

struct hv_lk_stage {
    char *mint;
    char *self_sid, *self_identity;
    GHashTable *participants; /* identity → lk_participant*: remote publishers */
    char *streamer;           /* identity of the streamer, NULL before the first choice */
    int streamer_score;       /* its host score when chosen */
    char *streamer_sid;       /* the participant session whose tracks were requested */
    bool publishing;          /* the streamer had tracks at the last update */
    char *signature;          /* streamer sid + chosen tracks, to notice changes */
    GHashTable *requested;    /* track sids subscribed (set) */
    GPtrArray *chosen;        /* lk_track* (borrowed from the streamer's participant) */
};

static int host_score(const hv_lk_stage *st, const char *identity, bool ingress);

static void
track_free(gpointer p)
{
    lk_track *t = p;
    g_free(t->sid);
    g_free(t->mime_type);
    g_strfreev(t->codecs);
    g_free(t);
}

static void
participant_free(gpointer p)
{
    lk_participant *pa = p;
    g_free(pa->sid);
    g_free(pa->identity);
    g_ptr_array_unref(pa->tracks);
    g_free(pa);
}

const char *
hv_lk_source_name(hv_lk_source source)
{
    switch (source) {
    case HV_LK_SOURCE_CAMERA:
        return "camera";
    case HV_LK_SOURCE_MICROPHONE:
        return "microphone";
    case HV_LK_SOURCE_SCREEN_SHARE:
        return "screen_share";
    case HV_LK_SOURCE_SCREEN_SHARE_AUDIO:
        return "screen_share_audio";
    case HV_LK_SOURCE_UNKNOWN:
        break;
    }
    return "unknown";
}

hv_lk_stage *
hv_lk_stage_new(const char *mint, const char *streamer)
{
    hv_lk_stage *st = g_new0(hv_lk_stage, 1);
    st->mint = g_strdup(mint);
    st->participants = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, participant_free);
    st->requested = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    st->chosen = g_ptr_array_new();
    if (streamer != NULL && streamer[0] != '\0') {
        st->streamer = g_strdup(streamer);
        st->streamer_score = host_score(st, streamer, false);
    }
    return st;
}

void
hv_lk_stage_free(hv_lk_stage *st)
{
    if (st == NULL) {
        return;
    }
    g_free(st->mint);
    g_free(st->self_sid);
    g_free(st->self_identity);
    g_hash_table_unref(st->participants);
    g_free(st->streamer);
    g_free(st->streamer_sid);
    g_free(st->signature);
    g_hash_table_unref(st->requested);
    g_ptr_array_unref(st->chosen);
    g_free(st);
}

void
hv_lk_stage_set_self(hv_lk_stage *st, const char *sid, const char *identity)
{
    g_free(st->self_sid);
    st->self_sid = g_strdup(sid);
    g_free(st->self_identity);
    st->self_identity = g_strdup(identity);
}

/* ---- snapshots ------------------------------------------------------------------------------ */

static char **
track_codecs(const Livekit__TrackInfo *ti)
{
    GPtrArray *out = g_ptr_array_new();
    if (ti->mime_type != NULL && ti->mime_type[0] != '\0') {
        g_ptr_array_add(out, g_strdup(ti->mime_type));
    }
    for (size_t i = 0; i < ti->n_codecs; i++) {
        const char *m = ti->codecs[i] != NULL ? ti->codecs[i]->mime_type : NULL;
        bool seen = m == NULL || m[0] == '\0';
        for (guint k = 0; k < out->len && !seen; k++) {
            seen = g_ascii_strcasecmp(g_ptr_array_index(out, k), m) == 0;
        }
        if (!seen) {
            g_ptr_array_add(out, g_strdup(m));
        }
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

static lk_participant *
participant_from_info(const Livekit__ParticipantInfo *pi)
{
    lk_participant *p = g_new0(lk_participant, 1);
    p->sid = g_strdup(pi->sid);
    p->identity = g_strdup(pi->identity);
    p->version = pi->version;
    p->ingress = pi->kind == LIVEKIT__PARTICIPANT_INFO__KIND__INGRESS;
    p->tracks = g_ptr_array_new_with_free_func(track_free);
    for (size_t i = 0; i < pi->n_tracks; i++) {
        const Livekit__TrackInfo *ti = pi->tracks[i];
        if (ti == NULL || ti->sid == NULL || ti->sid[0] == '\0' ||
            (ti->type != LIVEKIT__TRACK_TYPE__AUDIO && ti->type != LIVEKIT__TRACK_TYPE__VIDEO)) {
            continue;
        }
        lk_track *t = g_new0(lk_track, 1);
        t->sid = g_strdup(ti->sid);
        t->mime_type = g_strdup(ti->mime_type != NULL ? ti->mime_type : "");
        t->codecs = track_codecs(ti);
        t->is_video = ti->type == LIVEKIT__TRACK_TYPE__VIDEO;
        t->source = (int)ti->source >= 0 && (int)ti->source <= (int)HV_LK_SOURCE_SCREEN_SHARE_AUDIO
                        ? (hv_lk_source)ti->source
                        : HV_LK_SOURCE_UNKNOWN;
        t->width = (int)MIN(ti->width, (uint32_t)G_MAXINT);
        t->height = (int)MIN(ti->height, (uint32_t)G_MAXINT);
        t->muted = ti->muted;
        g_ptr_array_add(p->tracks, t);
    }
    return p;
}

bool
hv_lk_stage_knows(const hv_lk_stage *st, const char *identity)
{
    return identity != NULL && (g_hash_table_contains(st->participants, identity) ||
                                g_strcmp0(identity, st->streamer) == 0);
}

void
hv_lk_stage_apply(hv_lk_stage *st, const Livekit__ParticipantInfo *pi)
{
    if (pi == NULL || pi->identity == NULL || pi->identity[0] == '\0') {
        return;
    }
    if (g_strcmp0(pi->sid, st->self_sid) == 0 || g_strcmp0(pi->identity, st->self_identity) == 0) {
        return; /* ourselves */
    }
    if (g_strcmp0(pi->identity, st->streamer) == 0) {
        g_ptr_array_set_size(st->chosen, 0); /* borrows from the snapshot about to go */
    }
    lk_participant *cur = g_hash_table_lookup(st->participants, pi->identity);
    bool same_sid = cur != NULL && g_strcmp0(cur->sid, pi->sid) == 0;
    if (pi->state == LIVEKIT__PARTICIPANT_INFO__STATE__DISCONNECTED) {
        /* Only the session we know: a late DISCONNECTED for an older SID of a publisher that
         * already came back must not remove the new one. */
        if (same_sid) {
            g_hash_table_remove(st->participants, pi->identity);
        }
        return;
    }
    if (same_sid && pi->version != 0 && pi->version < cur->version) {
        return; /* older snapshot than the one we hold */
    }
    lk_participant *p = participant_from_info(pi);
    if (p->tracks->len == 0) {
        participant_free(p);
        if (cur != NULL) {
            g_hash_table_remove(st->participants, pi->identity);
        }
        return;
    }
    if (cur == NULL && g_hash_table_size(st->participants) >= HV_LK_MAX_PUBLISHERS &&
        g_strcmp0(pi->identity, st->streamer) != 0) {
        participant_free(p);
        return;
    }
    g_hash_table_replace(st->participants, g_strdup(pi->identity), p);
}

/* ---- the choice ----------------------------------------------------------------------------- */

static bool
contains_ci(const char *haystack, const char *needle)
{
    g_autofree char *h = g_ascii_strdown(haystack, -1);
    g_autofree char *n = g_ascii_strdown(needle, -1);
    return strstr(h, n) != NULL;
}

/* 0..2: see the comment at the top. */
static int
host_score(const hv_lk_stage *st, const char *identity, bool ingress)
{
    int score = contains_ci(identity, "viewer") ? 0 : 1;
    bool has_mint = false;
    if (st->mint != NULL && strlen(st->mint) >= 8) {
        char prefix[9];
        g_strlcpy(prefix, st->mint, sizeof(prefix));
        has_mint = strstr(identity, st->mint) != NULL || strstr(identity, prefix) != NULL;
    }
    return score + (has_mint || ingress ? 1 : 0);
}

static int64_t
largest_video_area(const lk_participant *p)
{
    int64_t best = 0;
    for (guint i = 0; i < p->tracks->len; i++) {
        const lk_track *t = g_ptr_array_index(p->tracks, i);
        if (t->is_video && (int64_t)t->width * t->height > best) {
            best = (int64_t)t->width * t->height;
        }
    }
    return best;
}

/* > 0 when a is the better first choice: host score, then the larger video, then the smaller
 * identity (deterministic). */
static int
compare_candidates(const hv_lk_stage *st, const lk_participant *a, const lk_participant *b)
{
    int sa = host_score(st, a->identity, a->ingress);
    int sb = host_score(st, b->identity, b->ingress);
    if (sa != sb) {
        return sa - sb;
    }
    int64_t aa = largest_video_area(a);
    int64_t ab = largest_video_area(b);
    if (aa != ab) {
        return aa > ab ? 1 : -1;
    }
    return strcmp(b->identity, a->identity);
}

static lk_participant *
best_candidate(const hv_lk_stage *st)
{
    lk_participant *best = NULL;
    GHashTableIter it;
    gpointer value = NULL;
    g_hash_table_iter_init(&it, st->participants);
    while (g_hash_table_iter_next(&it, NULL, &value)) {
        lk_participant *p = value;
        if (best == NULL || compare_candidates(st, p, best) > 0) {
            best = p;
        }
    }
    return best;
}

/* Video rank: a live screen share, then a live camera, then any other live video, then muted
 * ones in the same order. */
static int
video_rank(const lk_track *t)
{
    int base = t->source == HV_LK_SOURCE_SCREEN_SHARE ? 3
               : t->source == HV_LK_SOURCE_CAMERA     ? 2
                                                      : 1;
    return base + (t->muted ? 0 : 4);
}

static void
choose_tracks(hv_lk_stage *st, const lk_participant *p)
{
    g_ptr_array_set_size(st->chosen, 0);
    if (p == NULL) {
        return;
    }
    const lk_track *video = NULL;
    for (guint i = 0; i < p->tracks->len; i++) {
        const lk_track *t = g_ptr_array_index(p->tracks, i);
        if (!t->is_video) {
            continue;
        }
        if (video == NULL || video_rank(t) > video_rank(video) ||
            (video_rank(t) == video_rank(video) &&
             (int64_t)t->width * t->height > (int64_t)video->width * video->height)) {
            video = t;
        }
    }
    if (video != NULL) {
        g_ptr_array_add(st->chosen, (gpointer)video);
    }
    for (guint i = 0; i < p->tracks->len; i++) {
        lk_track *t = g_ptr_array_index(p->tracks, i);
        if (!t->is_video) {
            g_ptr_array_add(st->chosen, t);
        }
    }
}

static char *
chosen_signature(const hv_lk_stage *st, const lk_participant *p)
{
    GString *s = g_string_new(p != NULL ? p->sid : "");
    for (guint i = 0; i < st->chosen->len; i++) {
        const lk_track *t = g_ptr_array_index(st->chosen, i);
        g_string_append_printf(s, "|%s%s", t->sid, t->muted ? "(m)" : "");
    }
    return g_string_free(s, FALSE);
}

static bool
has_track(const lk_participant *p, const char *sid)
{
    for (guint i = 0; p != NULL && i < p->tracks->len; i++) {
        if (strcmp(((const lk_track *)g_ptr_array_index(p->tracks, i))->sid, sid) == 0) {
            return true;
        }
    }
    return false;
}

void
hv_lk_stage_delta_clear(hv_lk_stage_delta *d)
{
    if (d->subscribe != NULL) {
        g_ptr_array_unref(d->subscribe);
    }
    if (d->unsubscribe != NULL) {
        g_ptr_array_unref(d->unsubscribe);
    }
    g_free(d->left);
    memset(d, 0, sizeof(*d));
}

/* Unsubscribes everything requested that p still publishes (the rest is gone already). */
static void
release_requested(hv_lk_stage *st, const lk_participant *p, hv_lk_stage_delta *out)
{
    GHashTableIter it;
    gpointer key = NULL;
    g_hash_table_iter_init(&it, st->requested);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (has_track(p, key)) {
            g_ptr_array_add(out->unsubscribe, g_strdup(key));
        }
        g_hash_table_iter_remove(&it);
    }
}

void
hv_lk_stage_update(hv_lk_stage *st, hv_lk_stage_delta *out)
{
    memset(out, 0, sizeof(*out));
    out->subscribe = g_ptr_array_new_with_free_func(g_free);
    out->unsubscribe = g_ptr_array_new_with_free_func(g_free);

    lk_participant *cur =
        st->streamer != NULL ? g_hash_table_lookup(st->participants, st->streamer) : NULL;
    if (cur != NULL) {
        st->streamer_score = host_score(st, cur->identity, cur->ingress); /* it may be ingress */
    }
    lk_participant *best = best_candidate(st);
    if (best != NULL &&
        (st->streamer == NULL ||
         (best != cur && host_score(st, best->identity, best->ingress) > st->streamer_score))) {
        /* A first choice, or a better host than the current streamer: switch. The old one
         * keeps publishing (or is gone): no "left" for it. */
        release_requested(st, cur, out);
        g_free(st->streamer);
        st->streamer = g_strdup(best->identity);
        st->streamer_score = host_score(st, best->identity, best->ingress);
        g_clear_pointer(&st->streamer_sid, g_free);
        st->publishing = false;
        cur = best;
    }
    if (cur == NULL) {
        /* The streamer is not publishing (left, unpublished everything, not there yet). */
        g_ptr_array_set_size(st->chosen, 0);
        g_hash_table_remove_all(st->requested);
        g_clear_pointer(&st->signature, g_free);
        g_clear_pointer(&st->streamer_sid, g_free);
        if (st->publishing) {
            st->publishing = false;
            out->left = g_strdup(st->streamer);
        }
        return;
    }
    if (g_strcmp0(st->streamer_sid, cur->sid) != 0) {
        /* A new session of the streamer: its track sids are all new. */
        g_free(st->streamer_sid);
        st->streamer_sid = g_strdup(cur->sid);
        g_hash_table_remove_all(st->requested);
    }
    st->publishing = true;
    choose_tracks(st, cur);
    g_autoptr(GHashTable) want = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < st->chosen->len; i++) {
        const lk_track *t = g_ptr_array_index(st->chosen, i);
        g_hash_table_add(want, t->sid);
        if (!g_hash_table_contains(st->requested, t->sid)) {
            g_ptr_array_add(out->subscribe, g_strdup(t->sid));
            g_hash_table_add(st->requested, g_strdup(t->sid));
        }
    }
    /* Tracks no longer chosen: a camera once a screen share is live. Tracks that went away
     * are forgotten, so a sid that comes back is requested again. */
    GHashTableIter it;
    gpointer key = NULL;
    g_hash_table_iter_init(&it, st->requested);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(want, key)) {
            if (has_track(cur, key)) {
                g_ptr_array_add(out->unsubscribe, g_strdup(key));
            }
            g_hash_table_iter_remove(&it);
        }
    }
    g_autofree char *sig = chosen_signature(st, cur);
    if (g_strcmp0(sig, st->signature) != 0) {
        g_free(st->signature);
        st->signature = g_steal_pointer(&sig);
        out->changed = true;
    }
}

const char *
hv_lk_stage_streamer(const hv_lk_stage *st, const char **sid)
{
    if (sid != NULL) {
        *sid = st->streamer_sid;
    }
    return st->streamer;
}

hv_lk_track *
hv_lk_stage_tracks(const hv_lk_stage *st, size_t *n)
{
    hv_lk_track *tracks = g_new0(hv_lk_track, st->chosen->len + 1);
    for (guint i = 0; i < st->chosen->len; i++) {
        const lk_track *t = g_ptr_array_index(st->chosen, i);
        tracks[i] = (hv_lk_track){
            .sid = t->sid,
            .is_video = t->is_video,
            .mime_type = t->mime_type,
            .codecs = (const char *const *)t->codecs,
            .source = t->source,
            .width = t->width,
            .height = t->height,
            .muted = t->muted,
        };
    }
    *n = st->chosen->len;
    return tracks;
}

const char *const *
hv_lk_stage_track_codecs(const hv_lk_stage *st, const char *track_sid)
{
    lk_participant *p =
        st->streamer != NULL ? g_hash_table_lookup(st->participants, st->streamer) : NULL;
    for (guint i = 0; p != NULL && i < p->tracks->len; i++) {
        const lk_track *t = g_ptr_array_index(p->tracks, i);
        if (strcmp(t->sid, track_sid) == 0) {
            return (const char *const *)t->codecs;
        }
    }
    return NULL;
}

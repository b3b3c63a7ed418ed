/* LiveKit SignalResponse builders shared by the livekit tests and the livekit fuzz target
 * (lk-builders.h). */
#include "lk-builders.h"

#include <string.h>

GBytes *
hv_lkt_pack(const ProtobufCMessage *m)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = g_malloc(len > 0 ? len : 1);
    protobuf_c_message_pack(m, buf);
    return g_bytes_new_take(buf, len);
}

/* Copies a NULL-terminated list of up to HV_LKT_MAX_URLS URLs into out; returns how many. */
static size_t
copy_urls(char **out, const char *const *urls)
{
    size_t n = 0;
    while (urls != NULL && urls[n] != NULL) {
        g_assert(n < HV_LKT_MAX_URLS);
        out[n] = (char *)urls[n];
        n++;
    }
    return n;
}

const Livekit__SignalResponse *
hv_lkt_join(hv_lkt_join_msg *m, const hv_lkt_join_spec *spec)
{
    memset(m, 0, sizeof(*m));
    livekit__room__init(&m->room);
    m->room.sid = (char *)(spec->room_sid != NULL ? spec->room_sid : "RM_test");
    m->room.name = (char *)(spec->room_name != NULL ? spec->room_name : "livestream:test:1");
    livekit__participant_info__init(&m->self);
    m->self.sid = (char *)"PA_self";
    m->self.identity = (char *)"b45e1821";
    livekit__join_response__init(&m->join);
    size_t n_ice = 0;
    size_t n = copy_urls(m->stun_urls, spec->stun);
    if (n > 0) {
        Livekit__ICEServer *s = &m->ice[n_ice];
        livekit__iceserver__init(s);
        s->n_urls = n;
        s->urls = m->stun_urls;
        m->ices[n_ice++] = s;
    }
    n = copy_urls(m->turn_urls, spec->turn);
    if (n > 0) {
        Livekit__ICEServer *s = &m->ice[n_ice];
        livekit__iceserver__init(s);
        s->n_urls = n;
        s->urls = m->turn_urls;
        s->username = (char *)"1700000000:user";
        s->credential = (char *)"p@ss/w rd";
        m->ices[n_ice++] = s;
    }
    if (spec->region != NULL) {
        livekit__server_info__init(&m->server);
        m->server.version = (char *)"1.9.0";
        m->server.protocol = 16;
        m->server.region = (char *)spec->region;
        m->join.server_info = &m->server;
    }
    m->join.room = &m->room;
    m->join.participant = &m->self;
    m->join.n_other_participants = spec->n_others;
    m->join.other_participants = spec->others;
    m->join.n_ice_servers = n_ice;
    m->join.ice_servers = n_ice > 0 ? m->ices : NULL;
    m->join.subscriber_primary = true;
    m->join.ping_interval = spec->ping_interval;
    m->join.ping_timeout = spec->ping_timeout;
    if (spec->alternative_url != NULL) {
        m->join.alternative_url = (char *)spec->alternative_url;
    }
    livekit__signal_response__init(&m->resp);
    m->resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_JOIN;
    m->resp.join = &m->join;
    return &m->resp;
}

Livekit__ParticipantInfo *
hv_lkt_participant_new(const char *sid, const char *identity, int state, uint32_t version,
                       const hv_lkt_track *tracks, size_t n)
{
    Livekit__ParticipantInfo *p = g_new0(Livekit__ParticipantInfo, 1);
    livekit__participant_info__init(p);
    p->sid = g_strdup(sid);
    p->identity = g_strdup(identity);
    p->state = state;
    p->version = version;
    p->n_tracks = n;
    p->tracks = g_new0(Livekit__TrackInfo *, n + 1);
    for (size_t i = 0; i < n; i++) {
        Livekit__TrackInfo *t = g_new0(Livekit__TrackInfo, 1);
        livekit__track_info__init(t);
        t->sid = g_strdup(tracks[i].sid);
        t->type = tracks[i].type;
        t->width = tracks[i].width;
        t->height = tracks[i].height;
        t->source = tracks[i].source;
        t->muted = tracks[i].muted;
        t->mime_type = g_strdup(tracks[i].mime != NULL                         ? tracks[i].mime
                                : tracks[i].type == LIVEKIT__TRACK_TYPE__VIDEO ? "video/VP8"
                                                                               : "audio/opus");
        if (tracks[i].backup != NULL) {
            const char *mimes[] = {t->mime_type, tracks[i].backup};
            t->n_codecs = 2;
            t->codecs = g_new0(Livekit__SimulcastCodecInfo *, 2);
            for (size_t k = 0; k < 2; k++) {
                t->codecs[k] = g_new0(Livekit__SimulcastCodecInfo, 1);
                livekit__simulcast_codec_info__init(t->codecs[k]);
                t->codecs[k]->mime_type = g_strdup(mimes[k]);
            }
        }
        p->tracks[i] = t;
    }
    return p;
}

void
hv_lkt_participant_free(Livekit__ParticipantInfo *p)
{
    if (p == NULL) {
        return;
    }
    for (size_t i = 0; i < p->n_tracks; i++) {
        for (size_t k = 0; k < p->tracks[i]->n_codecs; k++) {
            g_free(p->tracks[i]->codecs[k]->mime_type);
            g_free(p->tracks[i]->codecs[k]);
        }
        g_free(p->tracks[i]->codecs);
        g_free(p->tracks[i]->sid);
        g_free(p->tracks[i]->mime_type);
        g_free(p->tracks[i]);
    }
    g_free(p->tracks);
    g_free(p->sid);
    g_free(p->identity);
    g_free(p);
}

const Livekit__SignalResponse *
hv_lkt_update(hv_lkt_update_msg *m, Livekit__ParticipantInfo **ps, size_t n)
{
    livekit__participant_update__init(&m->update);
    m->update.n_participants = n;
    m->update.participants = ps;
    livekit__signal_response__init(&m->resp);
    m->resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_UPDATE;
    m->resp.update = &m->update;
    return &m->resp;
}

const Livekit__SignalResponse *
hv_lkt_offer(hv_lkt_offer_msg *m, const char *sdp, uint32_t id, const char *const *mids)
{
    size_t n = 0;
    while (mids != NULL && mids[2 * n] != NULL) {
        g_assert(n < HV_LKT_MAX_MIDS && mids[2 * n + 1] != NULL);
        livekit__session_description__mid_to_track_id_entry__init(&m->entry[n]);
        m->entry[n].key = (char *)mids[2 * n];
        m->entry[n].value = (char *)mids[2 * n + 1];
        m->entries[n] = &m->entry[n];
        n++;
    }
    livekit__session_description__init(&m->sd);
    m->sd.type = (char *)"offer";
    m->sd.sdp = (char *)sdp;
    m->sd.id = id;
    m->sd.n_mid_to_track_id = n;
    m->sd.mid_to_track_id = n > 0 ? m->entries : NULL;
    livekit__signal_response__init(&m->resp);
    m->resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_OFFER;
    m->resp.offer = &m->sd;
    return &m->resp;
}

const Livekit__SignalResponse *
hv_lkt_trickle(hv_lkt_trickle_msg *m, const char *json, Livekit__SignalTarget target)
{
    livekit__trickle_request__init(&m->trickle);
    m->trickle.candidateinit = (char *)json;
    m->trickle.target = target;
    livekit__signal_response__init(&m->resp);
    m->resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_TRICKLE;
    m->resp.trickle = &m->trickle;
    return &m->resp;
}

const Livekit__SignalResponse *
hv_lkt_leave(hv_lkt_leave_msg *m, int action, bool can_reconnect, Livekit__DisconnectReason reason)
{
    livekit__leave_request__init(&m->leave);
    m->leave.action = action;
    m->leave.can_reconnect = can_reconnect;
    m->leave.reason = reason;
    livekit__signal_response__init(&m->resp);
    m->resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_LEAVE;
    m->resp.leave = &m->leave;
    return &m->resp;
}

const Livekit__SignalResponse *
hv_lkt_pong(hv_lkt_pong_msg *m, int64_t last_ping_timestamp, int64_t timestamp)
{
    livekit__pong__init(&m->pong);
    m->pong.last_ping_timestamp = last_ping_timestamp;
    m->pong.timestamp = timestamp;
    livekit__signal_response__init(&m->resp);
    m->resp.message_case = LIVEKIT__SIGNAL_RESPONSE__MESSAGE_PONG_RESP;
    m->resp.pong_resp = &m->pong;
    return &m->resp;
}

// Room model: one synthetic streamer (publisher of a video and an audio
// track), one synthetic viewer without tracks, and the real clients
// (Sessions). Only the streamer's tracks carry media.
import crypto from 'node:crypto';
import {
  ParticipantInfo, ParticipantInfo_State, ParticipantInfo_Kind, ParticipantPermission, TrackInfo, TrackType,
  TrackSource, VideoLayer, VideoQuality, SimulcastCodecInfo, Room as RoomProto, TimedVersion, DisconnectReason,
  AudioTrackFeature,
} from '@livekit/protocol';
import { PUBLISHER_CODECS } from './codecs.js';

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
// LiveKit ids are a prefix plus 12 base62 characters (guid.New).
export function guid(prefix) {
  const bytes = crypto.randomBytes(12);
  let s = prefix;
  for (const b of bytes) s += B62[b % 62];
  return s;
}

const nowSec = () => BigInt(Math.floor(Date.now() / 1000));
const timedVersion = () => new TimedVersion({ unixMicro: BigInt(Date.now()) * 1000n, ticks: 0 });

// "livestream:<mint>:<streamId>" → mint; anything else → the room name.
function mintOf(roomName) {
  const parts = roomName.split(':');
  return parts.length >= 3 && parts[0] === 'livestream' ? parts[1] : roomName;
}

export class Room {
  constructor(sfu, name) {
    this.sfu = sfu;
    this.name = name;
    this.sid = guid('RM_');
    this.createdAtMs = Date.now();
    this.sessions = new Set();
    this.streamer = null; // {sid, identity, state, version, joinedAtMs, tracks[], disconnectReason}
    this.streamerIdentity = `host-${mintOf(name).slice(0, 8)}`;
    this.viewer = {
      sid: guid('PA_'),
      identity: `${crypto.randomBytes(4).toString('hex')}-viewer-guest`,
      state: ParticipantInfo_State.ACTIVE,
      version: 1,
      joinedAtMs: Date.now(),
      tracks: [],
    };
    this.publishTimer = null;
    this.streamerJoin(sfu.config.publish_delay_ms, { silent: true });
  }

  log(...a) { this.sfu.log(`[room ${this.name}]`, ...a); }

  // --- protobuf views -------------------------------------------------------

  roomProto() {
    return new RoomProto({
      sid: this.sid,
      name: this.name,
      emptyTimeout: 300,
      departureTimeout: 20,
      creationTime: BigInt(Math.floor(this.createdAtMs / 1000)),
      creationTimeMs: BigInt(this.createdAtMs),
      numParticipants: this.sessions.size + 1 + (this.streamer && this.streamer.state !== ParticipantInfo_State.DISCONNECTED ? 1 : 0),
      numPublishers: this.streamer && this.streamer.tracks.length ? 1 : 0,
      version: timedVersion(),
    });
  }

  trackProto(t) {
    const { width, height, codec } = this.sfu.opts;
    if (t.kind === 'video') {
      const layer = new VideoLayer({ quality: VideoQuality.HIGH, width, height, bitrate: this.sfu.opts.bitrateKbps * 1000, ssrc: 0 });
      return new TrackInfo({
        sid: t.sid, type: TrackType.VIDEO, name: 'camera', width, height, simulcast: false,
        source: TrackSource.CAMERA, layers: [layer], mimeType: PUBLISHER_CODECS[codec].mime, mid: t.pubMid, stream: 'camera',
        codecs: [new SimulcastCodecInfo({ mimeType: PUBLISHER_CODECS[codec].mime, mid: t.pubMid, cid: t.cid, layers: [layer] })],
        version: t.version,
      });
    }
    return new TrackInfo({
      sid: t.sid, type: TrackType.AUDIO, name: 'microphone', source: TrackSource.MICROPHONE,
      mimeType: PUBLISHER_CODECS.opus.mime, mid: t.pubMid, stream: 'camera', stereo: true, disableRed: true,
      audioFeatures: [AudioTrackFeature.TF_STEREO],
      codecs: [new SimulcastCodecInfo({ mimeType: PUBLISHER_CODECS.opus.mime, mid: t.pubMid, cid: t.cid })],
      version: t.version,
    });
  }

  syntheticProto(p, { publisher }) {
    return new ParticipantInfo({
      sid: p.sid,
      identity: p.identity,
      name: p.identity,
      state: p.state,
      tracks: p.tracks.map((t) => this.trackProto(t)),
      metadata: publisher ? JSON.stringify({ role: 'host' }) : JSON.stringify({ anon: true, role: 'viewer' }),
      joinedAt: BigInt(Math.floor(p.joinedAtMs / 1000)),
      joinedAtMs: BigInt(p.joinedAtMs),
      version: p.version,
      permission: new ParticipantPermission({ canSubscribe: true, canPublish: publisher, canPublishData: true }),
      region: 'fake',
      isPublisher: p.tracks.length > 0,
      kind: ParticipantInfo_Kind.STANDARD,
      disconnectReason: p.disconnectReason || DisconnectReason.UNKNOWN_REASON,
    });
  }

  streamerProto() { return this.streamer ? this.syntheticProto(this.streamer, { publisher: true }) : null; }

  // Everyone a given session should see in JoinResponse.other_participants.
  othersFor(session) {
    const out = [];
    if (this.streamer && this.streamer.state !== ParticipantInfo_State.DISCONNECTED) out.push(this.streamerProto());
    out.push(this.syntheticProto(this.viewer, { publisher: false }));
    for (const s of this.sessions) if (s !== session && !s.hidden) out.push(s.selfProto());
    return out;
  }

  findTrack(trackSid) {
    if (!this.streamer) return null;
    const t = this.streamer.tracks.find((x) => x.sid === trackSid);
    return t ? { ...t, publisherSid: this.streamer.sid } : null;
  }

  publishedTracks() {
    if (!this.streamer) return [];
    return this.streamer.tracks.map((t) => ({ ...t, publisherSid: this.streamer.sid }));
  }

  // --- membership -------------------------------------------------------------

  addSession(s) { this.sessions.add(s); }

  removeSession(s) {
    if (!this.sessions.delete(s)) return;
    this.broadcast([s.selfProto()], s);
  }

  broadcast(infos, except) {
    for (const s of this.sessions) if (s !== except) s.sendParticipantUpdate(infos);
  }

  // --- the synthetic streamer -----------------------------------------------------

  streamerJoin(publishDelayMs, { silent = false } = {}) {
    if (this.streamer && this.streamer.state !== ParticipantInfo_State.DISCONNECTED) this.streamerLeave();
    // A rejoining publisher gets a new SID and new track SIDs (doc §6.1):
    // clients must match it by identity and resubscribe.
    this.streamer = {
      sid: guid('PA_'), identity: this.streamerIdentity, state: ParticipantInfo_State.ACTIVE,
      version: 1, joinedAtMs: Date.now(), tracks: [],
    };
    this.log(`streamer ${this.streamer.identity} joined as ${this.streamer.sid} (publish delay ${publishDelayMs} ms)`);
    if (publishDelayMs > 0) {
      if (!silent) this.broadcast([this.streamerProto()]);
      const st = this.streamer;
      this.publishTimer = setTimeout(() => {
        this.publishTimer = null;
        if (this.streamer === st) this.publish();
      }, publishDelayMs);
    } else {
      this.publish({ silent });
    }
  }

  publish({ silent = false } = {}) {
    const st = this.streamer;
    const mk = (kind, pubMid) => ({ sid: guid('TR_'), kind, pubMid, cid: crypto.randomUUID(), version: timedVersion() });
    st.tracks = [mk('video', '0'), mk('audio', '1')];
    st.version++;
    this.log(`streamer published ${st.tracks.map((t) => `${t.kind}=${t.sid}`).join(' ')}`);
    if (silent) return;
    // The full ParticipantInfo arrives before any offer that carries the track
    // (Appendix A.4): broadcast first, then let auto-subscribers renegotiate.
    this.broadcast([this.streamerProto()]);
    for (const s of this.sessions) s.onTracksPublished(this.publishedTracks());
  }

  streamerLeave() {
    const st = this.streamer;
    if (!st || st.state === ParticipantInfo_State.DISCONNECTED) return false;
    if (this.publishTimer) { clearTimeout(this.publishTimer); this.publishTimer = null; }
    const gone = st.tracks.map((t) => t.sid);
    if (gone.length) {
      // Unpublish first (participant update without the tracks, m-lines go
      // recvonly), then the participant itself disconnects.
      st.tracks = [];
      st.version++;
      this.broadcast([this.streamerProto()]);
      for (const s of this.sessions) s.onTracksUnpublished(gone);
    }
    st.state = ParticipantInfo_State.DISCONNECTED;
    st.disconnectReason = DisconnectReason.CLIENT_INITIATED;
    st.version++;
    this.broadcast([this.streamerProto()]);
    this.log(`streamer ${st.sid} left`);
    return true;
  }

  close() {
    if (this.publishTimer) clearTimeout(this.publishTimer);
  }
}

// Room model: the synthetic streamer (camera + microphone, optionally a
// screen share), guests on stage (more publishers), one synthetic viewer
// without tracks, optionally thousands of silent synthetic viewers (big
// rooms), and the real clients (Sessions). Every publisher's tracks carry the
// shared media sources of lib/media.js.
import crypto from 'node:crypto';
import {
  ParticipantInfo, ParticipantInfo_State, ParticipantInfo_Kind, ParticipantPermission, TrackInfo, TrackType,
  TrackSource, VideoLayer, VideoQuality, SimulcastCodecInfo, Room as RoomProto, TimedVersion, DisconnectReason,
  AudioTrackFeature, JoinResponse,
} from '@livekit/protocol';
import { PUBLISHER_VIDEO, PUBLISHER_AUDIO, SCREEN_VIDEO } from './codecs.js';

const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
// LiveKit ids are a prefix plus 12 base62 characters (guid.New).
export function guid(prefix) {
  const bytes = crypto.randomBytes(12);
  let s = prefix;
  for (const b of bytes) s += B62[b % 62];
  return s;
}

const timedVersion = () => new TimedVersion({ unixMicro: BigInt(Date.now()) * 1000n, ticks: 0 });
const present = (p) => !!p && p.state !== ParticipantInfo_State.DISCONNECTED;

// "livestream:<mint>:<streamId>" → mint; anything else → the room name.
function mintOf(roomName) {
  const parts = roomName.split(':');
  return parts.length >= 3 && parts[0] === 'livestream' ? parts[1] : roomName;
}

// The kinds of track a synthetic publisher can have. `media` names the
// MediaHub source whose RTP the track carries.
const TRACK_SPECS = {
  camera: { kind: 'video', source: TrackSource.CAMERA, name: 'camera', stream: 'camera', media: 'camera' },
  microphone: { kind: 'audio', source: TrackSource.MICROPHONE, name: 'microphone', stream: 'camera', media: 'microphone' },
  screen: { kind: 'video', source: TrackSource.SCREEN_SHARE, name: 'screen', stream: 'screen', media: 'screen', width: 640, height: 360 },
  screen_audio: { kind: 'audio', source: TrackSource.SCREEN_SHARE_AUDIO, name: 'screen_audio', stream: 'screen', media: 'screen_audio' },
};
export const SCREEN_SPECS = ['screen', 'screen_audio'];

// N silent viewers as the repeated JoinResponse.other_participants field,
// encoded once per room (Appendix A.14). protobuf-es needs about 0.5 s to
// encode 30,000 ParticipantInfo, far too slow per join; so one viewer is
// encoded by @livekit/protocol with placeholder ids, and each copy gets
// random ids of the same length written over the placeholders (same length,
// so every length prefix stays right). Returns the bytes to splice into a
// JoinResponse right after its own other_participants (Session.start).
export function extraViewersBlock(n, joinedAtMs) {
  if (n <= 0) return null;
  const SID = 'PA_############';
  const ID = '@@@@@@@@';
  const tpl = new ParticipantInfo({
    sid: SID, identity: `${ID}-viewer`, name: `${ID}-viewer`, state: ParticipantInfo_State.ACTIVE,
    metadata: JSON.stringify({ anon: true, role: 'viewer' }),
    joinedAt: BigInt(Math.floor(joinedAtMs / 1000)), joinedAtMs: BigInt(joinedAtMs), version: 1,
    permission: new ParticipantPermission({ canSubscribe: true }), kind: ParticipantInfo_Kind.STANDARD,
  });
  // Field 3 of JoinResponse: tag, length, then the ParticipantInfo.
  const entry = Buffer.from(new JoinResponse({ otherParticipants: [tpl] }).toBinary());
  const sidAt = entry.indexOf(SID.slice(3)) - 3;
  const idAt = [];
  for (let i = entry.indexOf(ID); i >= 0; i = entry.indexOf(ID, i + 1)) idAt.push(i);
  const block = Buffer.alloc(entry.length * n);
  const rnd = crypto.randomBytes(16 * n);
  const seen = new Set();
  for (let i = 0; i < n; i++) {
    const off = i * entry.length;
    entry.copy(block, off);
    for (let k = 0; k < 12; k++) block[off + sidAt + 3 + k] = B62.charCodeAt(rnd[i * 16 + k] % 62);
    // Identities must be unique in a room; 32 random bits collide now and
    // then among 30,000.
    let hex = rnd.toString('hex', i * 16 + 12, i * 16 + 16);
    while (seen.has(hex)) hex = crypto.randomBytes(4).toString('hex');
    seen.add(hex);
    for (const at of idAt) block.write(hex, off + at, 'latin1');
  }
  return { count: n, bytes: block, entryBytes: entry.length };
}

export class Room {
  constructor(sfu, name) {
    this.sfu = sfu;
    this.name = name;
    this.sid = guid('RM_');
    this.createdAtMs = Date.now();
    this.sessions = new Set();
    this.streamer = null; // participant, see newParticipant()
    this.streamerIdentity = `host-${mintOf(name).slice(0, 8)}`;
    this.guests = new Map(); // identity -> participant
    this.viewer = this.newParticipant(`${crypto.randomBytes(4).toString('hex')}-viewer-guest`, 'viewer');
    // Screen share of the streamer: the default for new rooms (CLI
    // --screen-share, or /__sfu/streamer/screen without a room).
    this.screen = { ...sfu.screenDefault };
    this.extras = extraViewersBlock(sfu.config.extra_participants, this.createdAtMs);
    this.timers = new Set();
    this.publishTimer = null;
    this.streamerJoin(sfu.config.publish_delay_ms, { silent: true });
  }

  log(...a) { this.sfu.log(`[room ${this.name}]`, ...a); }

  later(ms, fn) {
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
    return t;
  }

  // --- protobuf views -------------------------------------------------------

  publishers() { return [this.streamer, ...this.guests.values()].filter(present); }

  roomProto() {
    const pubs = this.publishers();
    return new RoomProto({
      sid: this.sid,
      name: this.name,
      emptyTimeout: 300,
      departureTimeout: 20,
      creationTime: BigInt(Math.floor(this.createdAtMs / 1000)),
      creationTimeMs: BigInt(this.createdAtMs),
      numParticipants: this.sessions.size + 1 + pubs.length + (this.extras?.count || 0),
      numPublishers: pubs.filter((p) => p.tracks.length).length,
      version: timedVersion(),
    });
  }

  trackProto(t) {
    if (t.kind === 'video') {
      const layer = new VideoLayer({ quality: VideoQuality.HIGH, width: t.width, height: t.height, bitrate: t.bitrate, ssrc: 0 });
      return new TrackInfo({
        sid: t.sid, type: TrackType.VIDEO, name: t.name, width: t.width, height: t.height, simulcast: false,
        source: t.source, layers: [layer], mimeType: t.mime, mid: t.pubMid, stream: t.stream,
        // The primary codec, then the backups (SimulcastCodecInfo), like the
        // JS SDK's AV1 + VP8 backup publication.
        codecs: t.codecs.map((c, i) => new SimulcastCodecInfo(i === 0
          ? { mimeType: c.mime, mid: t.pubMid, cid: t.cid, layers: [layer] }
          : { mimeType: c.mime, layers: [layer] })),
        version: t.version,
      });
    }
    return new TrackInfo({
      sid: t.sid, type: TrackType.AUDIO, name: t.name, source: t.source,
      mimeType: t.mime, mid: t.pubMid, stream: t.stream, stereo: true, disableRed: true,
      audioFeatures: [AudioTrackFeature.TF_STEREO],
      codecs: [new SimulcastCodecInfo({ mimeType: t.mime, mid: t.pubMid, cid: t.cid })],
      version: t.version,
    });
  }

  participantProto(p) {
    const publisher = p.role !== 'viewer';
    return new ParticipantInfo({
      sid: p.sid,
      identity: p.identity,
      name: p.identity,
      state: p.state,
      tracks: p.tracks.map((t) => this.trackProto(t)),
      metadata: JSON.stringify(p.role === 'viewer' ? { anon: true, role: 'viewer' } : { role: p.role === 'streamer' ? 'host' : 'guest' }),
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

  streamerProto() { return this.streamer ? this.participantProto(this.streamer) : null; }

  // Everyone a given session should see in JoinResponse.other_participants,
  // except the extra viewers (their bytes are spliced in, see extras).
  othersFor(session) {
    const out = this.publishers().map((p) => this.participantProto(p));
    out.push(this.participantProto(this.viewer));
    for (const s of this.sessions) if (s !== session && !s.hidden) out.push(s.selfProto());
    return out;
  }

  findTrack(trackSid) {
    for (const p of this.publishers()) {
      const t = p.tracks.find((x) => x.sid === trackSid);
      if (t) return { ...t, publisherSid: p.sid };
    }
    return null;
  }

  publishedTracks() {
    return this.publishers().flatMap((p) => p.tracks.map((t) => ({ ...t, publisherSid: p.sid })));
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

  // --- synthetic publishers -------------------------------------------------------

  newParticipant(identity, role) {
    return {
      sid: guid('PA_'), identity, role, state: ParticipantInfo_State.ACTIVE, version: 1, joinedAtMs: Date.now(),
      tracks: [], nextPubMid: 0, disconnectReason: undefined,
    };
  }

  // A new track of one of the TRACK_SPECS kinds. Video tracks of kind
  // `camera` carry the --codec publisher codec (guests announce their own
  // size); the screen share is VP8; audio is Opus.
  newTrack(p, spec, { width, height } = {}) {
    const base = TRACK_SPECS[spec];
    const video = spec === 'camera' ? PUBLISHER_VIDEO[this.sfu.opts.codec] : spec === 'screen' ? SCREEN_VIDEO : null;
    const codec = video || PUBLISHER_AUDIO;
    return {
      ...base,
      spec,
      sid: guid('TR_'),
      mime: codec.mime,
      codecs: codec.codecs,
      width: width ?? base.width ?? this.sfu.opts.width,
      height: height ?? base.height ?? this.sfu.opts.height,
      bitrate: spec === 'screen' ? 500000 : this.sfu.opts.bitrateKbps * 1000,
      pubMid: String(p.nextPubMid++),
      cid: crypto.randomUUID(),
      version: timedVersion(),
    };
  }

  // Publish: the full ParticipantInfo (version bumped) reaches every client
  // before any offer that carries the tracks (Appendix A.4); then subscribed
  // (auto-subscribing) clients renegotiate.
  publishTracks(p, tracks, { silent = false } = {}) {
    p.tracks.push(...tracks);
    p.version++;
    this.log(`${p.identity} published ${tracks.map((t) => `${t.name}=${t.sid}`).join(' ')}`);
    if (silent) return;
    this.broadcast([this.participantProto(p)]);
    const withSid = tracks.map((t) => ({ ...t, publisherSid: p.sid }));
    for (const s of this.sessions) s.onTracksPublished(withSid);
  }

  // Unpublish: an update without the tracks, then the subscribers' m-lines go
  // recvonly without msid/ssrc (Appendix A.8).
  unpublishTracks(p, sids) {
    if (!sids.length) return;
    p.tracks = p.tracks.filter((t) => !sids.includes(t.sid));
    p.version++;
    this.log(`${p.identity} unpublished ${sids.join(' ')}`);
    this.broadcast([this.participantProto(p)]);
    for (const s of this.sessions) s.onTracksUnpublished(sids);
  }

  participantLeave(p) {
    if (!present(p)) return false;
    this.unpublishTracks(p, p.tracks.map((t) => t.sid));
    p.state = ParticipantInfo_State.DISCONNECTED;
    p.disconnectReason = DisconnectReason.CLIENT_INITIATED;
    p.version++;
    this.broadcast([this.participantProto(p)]);
    this.log(`${p.identity} ${p.sid} left`);
    return true;
  }

  // --- the streamer -----------------------------------------------------------------

  streamerJoin(publishDelayMs, { silent = false } = {}) {
    if (present(this.streamer)) this.streamerLeave();
    // A rejoining publisher gets a new SID and new track SIDs (doc §6.1):
    // clients must match it by identity and resubscribe.
    this.streamer = this.newParticipant(this.streamerIdentity, 'streamer');
    this.log(`streamer ${this.streamer.identity} joined as ${this.streamer.sid} (publish delay ${publishDelayMs} ms)`);
    if (publishDelayMs > 0) {
      if (!silent) this.broadcast([this.streamerProto()]);
      const st = this.streamer;
      this.publishTimer = this.later(publishDelayMs, () => {
        this.publishTimer = null;
        if (this.streamer === st) this.publish();
      });
    } else {
      this.publish({ silent });
    }
  }

  streamerSpecs() {
    return ['camera', 'microphone', ...(this.screen.on ? ['screen', ...(this.screen.audio ? ['screen_audio'] : [])] : [])];
  }

  publish({ silent = false } = {}) {
    const st = this.streamer;
    this.publishTracks(st, this.streamerSpecs().map((spec) => this.newTrack(st, spec)), { silent });
  }

  streamerLeave() {
    if (this.publishTimer) { clearTimeout(this.publishTimer); this.timers.delete(this.publishTimer); this.publishTimer = null; }
    return this.participantLeave(this.streamer);
  }

  // Screen share on/off (with or without its audio). The media sources must
  // already run (sfu.js awaits MediaHub.ensure). Before the streamer's
  // delayed publication, or while it is away, only the setting changes.
  setScreen(on, audio) {
    this.screen = { on, audio };
    const st = this.streamer;
    if (!present(st) || this.publishTimer) return;
    const want = on ? ['screen', ...(audio ? ['screen_audio'] : [])] : [];
    this.unpublishTracks(st, st.tracks.filter((t) => SCREEN_SPECS.includes(t.spec) && !want.includes(t.spec)).map((t) => t.sid));
    const add = want.filter((spec) => !st.tracks.some((t) => t.spec === spec));
    if (add.length) this.publishTracks(st, add.map((spec) => this.newTrack(st, spec)));
  }

  // The SAME streamer (same PA_ sid) unpublishes its tracks of these kinds,
  // then publishes new ones (new TR_ sids) of the same kind, source and codec
  // after delayMs. Returns false when there is nothing to republish.
  republish(kinds, delayMs) {
    const st = this.streamer;
    if (!present(st) || this.publishTimer) return false;
    const gone = st.tracks.filter((t) => kinds.includes(t.kind));
    if (!gone.length) return false;
    this.unpublishTracks(st, gone.map((t) => t.sid));
    this.later(delayMs, () => {
      if (this.streamer !== st || !present(st)) return;
      this.publishTracks(st, gone.map((t) => this.newTrack(st, t.spec, { width: t.width, height: t.height })));
    });
    return true;
  }

  // --- guests on stage ----------------------------------------------------------------

  // A second publisher: joins (an update without tracks), then publishes a
  // camera of the given size and a microphone (a second update), like a
  // browser guest does.
  guestJoin(identity, width, height) {
    if (present(this.guests.get(identity))) throw new Error(`guest ${identity} is already on stage`);
    if (identity === this.streamerIdentity) throw new Error(`${identity} is the streamer's identity`);
    const g = this.newParticipant(identity, 'guest');
    this.guests.set(identity, g);
    this.broadcast([this.participantProto(g)]);
    this.publishTracks(g, [this.newTrack(g, 'camera', { width, height }), this.newTrack(g, 'microphone')]);
    return g;
  }

  guestLeave(identity) {
    const g = this.guests.get(identity);
    if (!present(g)) throw new Error(`no guest ${identity} on stage`);
    this.participantLeave(g);
    this.guests.delete(identity);
  }

  close() {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

// One signalling session = one joined client with its SUBSCRIBER peer
// connection (v0 "subscriber primary", doc §1/§4). The SFU always offers; the
// client only answers. All SignalResponses are built with @livekit/protocol.
import crypto from 'node:crypto';
import { RTCPeerConnection, MediaStreamTrack, RTCRtpCodecParameters } from 'werift';
import {
  SignalRequest, SignalResponse, JoinResponse, SessionDescription, TrickleRequest, ParticipantInfo,
  ParticipantInfo_State, ParticipantInfo_Kind, ParticipantPermission, ParticipantUpdate, LeaveRequest,
  LeaveRequest_Action, DisconnectReason, Pong, ServerInfo, ServerInfo_Edition, SignalTarget, SubscriptionResponse,
  SubscriptionError, RoomUpdate, ConnectionQualityUpdate, ConnectionQualityInfo, ConnectionQuality,
  SpeakersChanged, SpeakerInfo, ClientConfiguration, ICEServer,
} from '@livekit/protocol';
import { bindCodec, keptCodecs, parseSdpMedia, rewriteOfferSdp, serverCodecConfig, HEADER_EXTENSIONS } from './codecs.js';
import { guid } from './room.js';
import { refreshToken } from './jwt.js';

export const SERVER_VERSION = '1.9.0-fake';
export const PROTOCOL_VERSION = 17;

const isLoopbackV4 = (a) => typeof a === 'string' && /^127\.\d+\.\d+\.\d+$/.test(a);
const randomSsrc = () => (crypto.randomBytes(4).readUInt32BE(0) || 1) >>> 0;

// A down track starts a new RTP stream: new SSRC, and sequence numbers and
// timestamps from a random start (Appendix A.8 "fresh sequence space").
// Without this, werift's replaceTrack would continue the old numbering.
// A new werift sender already has random SSRCs (and is routed by them).
function freshRtpStream(sender, { newSsrc = true } = {}) {
  if (newSsrc) {
    sender.ssrc = randomSsrc();
    sender.rtxSsrc = randomSsrc();
  }
  sender.sequenceNumber = undefined;
  sender.timestamp = undefined;
  sender.rtpContinuityPending = false;
  sender.seqOffset = crypto.randomInt(0, 0x10000);
  sender.timestampOffset = crypto.randomBytes(4).readUInt32BE(0);
  sender.packetCount = 0;
  sender.octetCount = 0;
  sender.rtpCache = [];
}

// The JoinResponse as one SignalResponse, with the room's extra viewers
// (Room.extras, pre-encoded) spliced in after the other participants: fields
// 1-3 (room, participant, other_participants), the extra entries of field 3,
// then fields 4-15. Field order stays ascending, as protobuf-es and Go write
// it; the bytes equal what toBinary() would give with all participants in
// the message, without re-encoding thousands of them per join.
function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n >>>= 7; }
  out.push(n);
  return Buffer.from(out);
}
export function encodeJoin(fields, extras) {
  if (!extras) return new SignalResponse({ message: { case: 'join', value: new JoinResponse(fields) } }).toBinary();
  const { room, participant, otherParticipants, ...rest } = fields;
  const head = new JoinResponse({ room, participant, otherParticipants }).toBinary();
  const tail = new JoinResponse(rest).toBinary();
  const join = Buffer.concat([head, extras.bytes, tail]);
  return Buffer.concat([Buffer.from([0x0a]), varint(join.length), join]); // SignalResponse field 1 (join)
}

// Offers a WebRTC receiver must refuse (fault injection, /__sfu/offer and the
// reject_offers config key):
// * garbage: not SDP at all (no line of it parses);
// * no-fingerprint: valid SDP without any a=fingerprint (DTLS cannot be keyed);
// * kind-swap: every media m-line keeps its mid but changes kind (audio <->
//   video), i.e. an m-line reused with a different kind (RFC 8829 5.10).
export const SPOIL_MODES = ['garbage', 'no-fingerprint', 'kind-swap'];
export function spoilOffer(sdp, mode) {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  switch (mode) {
    case 'garbage':
      return 'this is not an SDP offer\r\n';
    case 'no-fingerprint':
      return `${lines.filter((l) => !l.startsWith('a=fingerprint:')).join('\r\n')}\r\n`;
    case 'kind-swap':
      return `${lines.map((l) => l.replace(/^m=(audio|video) /, (_, k) => `m=${k === 'audio' ? 'video' : 'audio'} `)).join('\r\n')}\r\n`;
    default:
      throw new Error(`unknown offer fault ${mode}`);
  }
}

// werift configuration that keeps every ICE packet on 127.0.0.1:
// * iceUseIpv4/iceUseIpv6 false: werift does not enumerate the machine's
//   interfaces at all (that's the only thing those flags control);
// * iceAdditionalHostAddresses ['127.0.0.1']: the single host candidate;
// * iceInterfaceAddresses udp4 127.0.0.1: the UDP socket binds to loopback;
// * iceServers []: werift's default is a public Google STUN server;
// * no ICE-TCP, and iceFilterCandidatePair refuses any pair whose remote
//   address is not 127.x, so a client that also offers LAN candidates never
//   gets a connectivity check sent there.
export function loopbackPeerConfig(codecs) {
  return {
    codecs,
    headerExtensions: HEADER_EXTENSIONS,
    iceServers: [],
    iceUseIpv4: false,
    iceUseIpv6: false,
    iceAdditionalHostAddresses: ['127.0.0.1'],
    iceInterfaceAddresses: { udp4: '127.0.0.1' },
    iceUseTcp: false,
    iceFilterCandidatePair: (pair) => isLoopbackV4(pair.remoteCandidate?.host),
    bundlePolicy: 'max-bundle',
  };
}

export class Session {
  constructor(sfu, ws, { room, claims, token, params, remote }) {
    this.sfu = sfu;
    this.ws = ws;
    this.room = room;
    this.claims = claims;
    this.token = token;
    this.params = params;
    this.remote = remote;
    this.sid = guid('PA_');
    this.identity = claims.sub;
    this.hidden = !!claims.video?.hidden;
    this.protocol = Number.parseInt(params.protocol, 10);
    const bool = (v) => v === '1' || v === 'true';
    // auto_subscribe defaults to true when absent (doc §2.2).
    this.autoSubscribe = params.auto_subscribe === undefined ? true : bool(params.auto_subscribe);
    this.adaptiveStream = bool(params.adaptive_stream);
    // Transceiver (m-line) reuse: protocol > 3 and not Safari (doc §2.4, §9.4).
    this.reuseTransceivers = this.protocol > 3 && String(params.browser || '').toLowerCase() !== 'safari';
    this.state = ParticipantInfo_State.JOINED;
    this.version = 1;
    this.joinedAtMs = Date.now();
    // Offer ids start at a random 1..256 like localOfferId (doc §4.6).
    this.offerId = crypto.randomInt(0, 256);
    this.pendingOffer = null;
    this.negotiating = false;
    this.negotiationNeeded = false;
    this.offersSent = 0;
    this.answers = 0;
    this.subs = new Map(); // trackSid -> subscription
    this.idle = []; // transceivers whose track went away (candidates for reuse)
    this.remoteCandidateQueue = [];
    this.localCandidateQueue = [];
    this.heldCandidate = null;
    this.timers = new Set();
    this.intervals = new Set();
    this.closed = false;
    this.rtpOut = { video: 0, audio: 0 };
    this.dcState = {};
    this.pcState = 'new';
    this.iceState = 'new';
    this.history = [];
    // Fault injection (sfu.js /__sfu/config): fixed for the session's lifetime.
    // iceBlackhole: no candidate goes either way, so ICE can never connect.
    // rejectOffers: every offer is made one that webrtcbin must refuse.
    this.iceBlackhole = !!sfu.config.ice_blackhole;
    this.rejectOffers = sfu.config.reject_offers || '';
    // data_channels false: no _reliable/_lossy, so an offer without tracks
    // has no m-line at all and "established" means just "PC connected".
    this.dataChannels = sfu.config.data_channels !== false;
  }

  log(...a) { this.sfu.log(`[${this.identity} ${this.sid}]`, ...a); }
  get stats() { return this.sfu.stats; }
  get config() { return this.sfu.config; }

  later(ms, fn) {
    if (this.closed) return null;
    const t = setTimeout(() => { this.timers.delete(t); if (!this.closed) fn(); }, ms);
    this.timers.add(t);
    return t;
  }

  every(ms, fn) {
    if (this.closed) return null;
    const t = setInterval(() => { if (!this.closed) fn(); }, ms);
    this.intervals.add(t);
    return t;
  }

  // --- outgoing ------------------------------------------------------------------

  send(kase, value) {
    this.sendBytes(kase, new SignalResponse({ message: { case: kase, value } }).toBinary());
  }

  sendBytes(kase, bytes) {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(bytes, { binary: true });
    this.stats.messages_sent[kase] = (this.stats.messages_sent[kase] || 0) + 1;
  }

  selfProto() {
    const v = this.claims.video || {};
    return new ParticipantInfo({
      sid: this.sid,
      identity: this.identity,
      name: this.claims.name || '',
      state: this.closed ? ParticipantInfo_State.DISCONNECTED : this.state,
      metadata: this.claims.metadata || '',
      joinedAt: BigInt(Math.floor(this.joinedAtMs / 1000)),
      joinedAtMs: BigInt(this.joinedAtMs),
      version: this.version,
      permission: new ParticipantPermission({
        // Omitted grants default to true for canSubscribe/canPublish/canPublishData (doc §8).
        canSubscribe: v.canSubscribe !== false,
        canPublish: v.canPublish !== false,
        canPublishData: v.canPublishData !== false,
        hidden: !!v.hidden,
      }),
      region: 'fake',
      kind: ParticipantInfo_Kind.STANDARD,
      clientProtocol: Number.parseInt(this.params.client_protocol || '0', 10) || 0,
    });
  }

  sendParticipantUpdate(infos) {
    this.send('update', new ParticipantUpdate({ participants: infos }));
  }

  sendLeave(action, reason, { close = true } = {}) {
    this.log(`leave -> action ${LeaveRequest_Action[action]} reason ${DisconnectReason[reason]}`);
    this.stats.leaves_sent++;
    this.send('leave', new LeaveRequest({ canReconnect: action !== LeaveRequest_Action.DISCONNECT, reason, action }));
    if (close) {
      // Leave, then a normal close (doc §2.5 "leave followed by close 1000").
      try { this.ws.close(1000, 'leave'); } catch { /* already closed */ }
      this.close(`server leave ${LeaveRequest_Action[action]}`);
    }
  }

  // --- lifecycle ---------------------------------------------------------------------

  async start() {
    const room = this.room;
    // A fresh codec table per PC: werift annotates the objects it is given.
    this.pc = new RTCPeerConnection(loopbackPeerConfig(serverCodecConfig()));
    this.watchPeerConnection();

    // One binary message however big (30,000 extra viewers make ~3 MB): ws
    // has no send-side size limit; maxPayload only limits what we receive.
    const join = encodeJoin({
      room: room.roomProto(),
      participant: this.selfProto(),
      otherParticipants: room.othersFor(this),
      serverVersion: SERVER_VERSION,
      // Only announced: werift itself keeps using no ICE server.
      iceServers: (this.config.ice_servers || []).map((s) => new ICEServer({ urls: s.urls, username: s.username || '', credential: s.credential || '' })),
      subscriberPrimary: true,
      clientConfiguration: new ClientConfiguration({}),
      serverRegion: 'fake',
      pingTimeout: this.config.ping_timeout,
      pingInterval: this.config.ping_interval,
      serverInfo: new ServerInfo({
        edition: ServerInfo_Edition.Standard, version: SERVER_VERSION, protocol: PROTOCOL_VERSION,
        region: 'fake', nodeId: this.sfu.nodeId,
      }),
      fastPublish: false,
    }, room.extras);
    this.sendBytes('join', join);
    this.stats.last_join_bytes = join.length;
    this.log(`join sent: ${join.length} bytes, ${room.extras?.count || 0} extra viewers, ${Date.now() - this.joinedAtMs} ms after the upgrade`);
    this.stats.joins++;
    room.broadcast([this.selfProto()], this);

    // The server creates _reliable and _lossy on the subscriber PC
    // (transportmanager.go createDataChannelsForSubscriber); in-band DCEP.
    const channels = this.dataChannels ? [['_reliable', { ordered: true }], ['_lossy', { ordered: false, maxRetransmits: 0 }]] : [];
    for (const [label, opts] of channels) {
      const dc = this.pc.createDataChannel(label, opts);
      this.dcState[label] = dc.readyState;
      dc.stateChanged.subscribe((st) => {
        this.dcState[label] = st;
        this.log(`data channel ${label} ${st}`);
        if (st === 'open') this.checkEstablished();
      });
      dc.onMessage.subscribe(() => { this.stats.data_messages_received++; });
    }

    // "Fast start" (protocol > 7): tracks an auto-subscriber can get are in the
    // very first offer. Otherwise they come in the next one.
    const initial = this.autoSubscribe ? room.publishedTracks() : [];
    if (this.protocol > 7) for (const t of initial) await this.attach(t);
    await this.negotiate();
    if (this.protocol <= 7 && initial.length) this.subscribe(initial.map((t) => t.sid), true, { record: false });

    this.sendParticipantUpdate([this.selfProto()]);
    this.send('roomUpdate', new RoomUpdate({ room: room.roomProto() }));
    // refresh_token about half a second after join, then periodically (Appendix A.9).
    this.later(500, () => this.sendRefreshToken());
    this.every(this.config.token_refresh_s * 1000, () => this.sendRefreshToken());
    // WebSocket-level pings every 10 s, like wsprotocol.go pingWorker.
    this.every(10000, () => { try { this.ws.ping(); } catch { /* closed */ } });
    if (this.protocol > 4) this.every(5000, () => this.sendConnectionQuality());
    // A participant that never reaches ACTIVE is removed after the join timeout.
    this.later(this.config.join_timeout_s * 1000, () => {
      if (this.state !== ParticipantInfo_State.ACTIVE) {
        this.stats.join_timeouts++;
        this.sendLeave(LeaveRequest_Action.DISCONNECT, DisconnectReason.JOIN_FAILURE);
      }
    });
  }

  sendRefreshToken() {
    const tok = refreshToken(this.claims, this.sfu.secretFor(this.claims.iss), { ttlSec: this.config.refresh_ttl_s ?? undefined });
    this.sfu.noteToken(tok); // for /__sfu/revoke
    this.stats.refresh_tokens_sent++;
    this.send('refreshToken', tok);
  }

  sendConnectionQuality() {
    const updates = [new ConnectionQualityInfo({ participantSid: this.sid, quality: ConnectionQuality.EXCELLENT, score: 4.5 })];
    for (const p of this.room.publishers()) {
      updates.push(new ConnectionQualityInfo({ participantSid: p.sid, quality: ConnectionQuality.EXCELLENT, score: 4.5 }));
    }
    this.send('connectionQuality', new ConnectionQualityUpdate({ updates }));
  }

  watchPeerConnection() {
    const pc = this.pc;
    pc.iceConnectionStateChange.subscribe((s) => {
      this.iceState = s;
      this.history.push([Date.now(), `ice:${s}`]);
      if (s === 'connected' && !this.iceConnectedAt) this.iceConnectedAt = Date.now();
    });
    pc.connectionStateChange.subscribe((s) => {
      this.history.push([Date.now(), `pc:${s}`]);
      if (!this.transportNegotiated && (s === 'connected' || s === 'failed')) {
        // Before any m-line was negotiated (data_channels false, nothing
        // subscribed) werift reports "connected" or "failed" for a PC without
        // a single transport. Neither means anything yet.
        this.log(`subscriber pc ${s} ignored: no m-line negotiated yet`);
        return;
      }
      this.pcState = s;
      this.log(`subscriber pc ${s}`);
      if (s === 'connected' && this.state !== ParticipantInfo_State.ACTIVE) {
        // The primary PC connected: the participant becomes ACTIVE (doc §1).
        this.state = ParticipantInfo_State.ACTIVE;
        this.version++;
        this.sendParticipantUpdate([this.selfProto()]);
        this.room.broadcast([this.selfProto()], this);
        this.requestKeyframes();
        if (this.dataChannels) this.armDataChannelCheck();
        this.checkEstablished();
        if (this.room.streamer?.tracks.some((t) => t.kind === 'audio')) {
          this.send('speakersChanged', new SpeakersChanged({ speakers: [new SpeakerInfo({ sid: this.room.streamer.sid, level: 0.3, active: true })] }));
        }
      }
      if (s === 'failed' && !this.closed) {
        // Transport failure → leave RESUME (participant.go onAnyTransportFailed).
        this.stats.transport_failures++;
        this.sendLeave(LeaveRequest_Action.RESUME, DisconnectReason.STATE_MISMATCH);
      }
    });
    pc.onIceCandidate.subscribe((c) => this.onLocalCandidate(c));
  }

  // The subscriber transport is "fully established" only when connected AND
  // both data channels are open; otherwise, max(10 s, 3 × ICE time) capped at
  // 20 s after ICE connected, the server declares it failed (doc §4.3).
  armDataChannelCheck() {
    const iceMs = (this.iceConnectedAt || Date.now()) - (this.firstOfferAt || this.joinedAtMs);
    const wait = Math.min(20000, Math.max(10000, 3 * iceMs));
    this.later(wait, () => {
      if (!this.established()) {
        this.stats.data_channel_timeouts++;
        this.log('data channels not open in time: transport failed');
        this.sendLeave(LeaveRequest_Action.RESUME, DisconnectReason.STATE_MISMATCH);
      }
    });
  }

  established() {
    return this.pcState === 'connected' && (!this.dataChannels || (this.dcState._reliable === 'open' && this.dcState._lossy === 'open'));
  }

  // A keyframe from each video source this session is subscribed to.
  requestKeyframes() {
    for (const media of new Set([...this.subs.values()].filter((x) => x.kind === 'video').map((x) => x.media))) this.sfu.hub.requestKeyframe(media);
  }

  checkEstablished() {
    if (this.established() && !this.establishedAt) {
      this.establishedAt = Date.now();
      this.log('subscriber transport fully established');
    }
  }

  close(why) {
    if (this.closed) return;
    this.log(`closing: ${why}`);
    this.closed = true;
    this.closedAt = Date.now();
    this.closeReason = why;
    for (const t of this.timers) clearTimeout(t);
    for (const t of this.intervals) clearInterval(t);
    for (const sub of this.subs.values()) sub.removeSink();
    try { this.pc?.close(); } catch { /* ignore */ }
    this.room.removeSession(this);
    this.sfu.sessionClosed(this);
  }

  // --- ICE ----------------------------------------------------------------------------------

  // Server candidates go out as trickle (target SUBSCRIBER), only after the
  // offer they belong to, the last one flagged final (Appendix A.6). One
  // candidate is held back so that the end-of-gathering event can mark it.
  onLocalCandidate(c) {
    if (this.iceBlackhole) return;
    if (!c || !c.candidate) {
      if (this.heldCandidate) { this.localCandidateQueue.push({ ...this.heldCandidate, final: true }); this.heldCandidate = null; }
      this.flushLocalCandidates();
      return;
    }
    if (this.heldCandidate) this.localCandidateQueue.push(this.heldCandidate);
    this.heldCandidate = { init: { candidate: c.candidate, sdpMid: c.sdpMid ?? '0', sdpMLineIndex: c.sdpMLineIndex ?? 0, usernameFragment: null }, final: false };
    this.flushLocalCandidates();
  }

  flushLocalCandidates() {
    if (!this.transportOffered) return;
    for (const q of this.localCandidateQueue.splice(0)) {
      this.stats.server_candidates++;
      this.send('trickle', new TrickleRequest({ candidateInit: JSON.stringify(q.init), target: SignalTarget.SUBSCRIBER, final: q.final }));
    }
  }

  async handleTrickle(t) {
    this.stats.client_candidates++;
    if (this.iceBlackhole) {
      this.stats.client_candidates_blackholed++;
      return;
    }
    if (t.target !== SignalTarget.SUBSCRIBER) {
      // A receive-only client has no publisher PC; nothing to add it to.
      this.stats.client_candidates_ignored++;
      this.log(`ignoring trickle for target ${t.target}`);
      return;
    }
    let init;
    try { init = JSON.parse(t.candidateInit); } catch {
      this.stats.client_candidates_ignored++;
      this.log(`bad candidateInit ${t.candidateInit}`);
      return;
    }
    const cand = typeof init?.candidate === 'string' ? init.candidate : '';
    if (!cand) return; // end-of-candidates marker
    const f = cand.replace(/^candidate:/, '').split(/\s+/);
    if (f.length < 8 || !isLoopbackV4(f[4]) || f[2].toLowerCase() !== 'udp') {
      // Loopback-only fixture: LAN/IPv6/mDNS/TCP candidates are never used.
      this.stats.client_candidates_ignored++;
      this.log(`ignoring non-loopback/non-UDP candidate ${cand}`);
      return;
    }
    const c = {
      candidate: cand,
      sdpMid: typeof init.sdpMid === 'string' ? init.sdpMid : undefined,
      sdpMLineIndex: Number.isInteger(init.sdpMLineIndex) ? init.sdpMLineIndex : 0,
    };
    if (!this.pc.remoteDescription) {
      // pion queues candidates that arrive before the answer; so do we.
      this.remoteCandidateQueue.push(c);
      return;
    }
    await this.addRemoteCandidate(c);
  }

  async addRemoteCandidate(c) {
    try {
      await this.pc.addIceCandidate(c);
      this.stats.client_candidates_added++;
    } catch (e) {
      this.stats.client_candidates_ignored++;
      this.log(`addIceCandidate failed: ${e.message}`);
    }
  }

  // --- negotiation --------------------------------------------------------------------

  tracksByMid() {
    const m = new Map();
    for (const sub of this.subs.values()) {
      const mid = sub.transceiver.mid;
      if (mid != null) m.set(String(mid), { trackSid: sub.trackSid, streamId: `${sub.publisherSid}|${sub.trackSid}` });
    }
    return m;
  }

  // Renegotiations are debounced (~150 ms, negotiationFrequency) and never
  // overlap: a change while an offer is outstanding waits for its answer
  // (doc §4.3/§4.6).
  scheduleNegotiation(ms = 150) {
    if (this.negTimerPending) return;
    this.negTimerPending = true;
    this.later(ms, () => { this.negTimerPending = false; this.negotiate(); });
  }

  async negotiate() {
    if (this.closed) return;
    if (this.pendingOffer || this.negotiating) { this.negotiationNeeded = true; return; }
    this.negotiating = true;
    this.negotiationNeeded = false;
    try {
      // Every media m-line of every offer lists the server's whole codec
      // table in its fixed order (Appendix A.12), also a reused or already
      // negotiated one. werift would otherwise re-offer only what the last
      // answer kept on that m-line.
      for (const tr of this.pc.getTransceivers()) tr.codecs = [];
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      if (this.closed) return;
      // The first offer with an m-line (the very first one, unless
      // data_channels is false) starts ICE: no candidates, they follow as
      // trickle once it is sent. Later offers: the current local description,
      // which carries the candidates inline with a=end-of-candidates
      // (Appendix A.6).
      const first = !this.transportOffered;
      const raw = first ? offer.sdp : this.pc.localDescription.sdp;
      const tracksByMid = this.tracksByMid();
      let sdp = rewriteOfferSdp(raw, { stripCandidates: first || this.iceBlackhole, tracksByMid, sessionVersion: this.offersSent });
      // Only tracks this offer sends may be bound by its answer: a
      // subscription that arrived after the offer was made waits for the next.
      const offered = parseSdpMedia(sdp);
      for (const sub of this.subs.values()) {
        const sec = offered.get(String(sub.transceiver.mid));
        if (sec && ['sendrecv', 'sendonly'].includes(sec.direction) && tracksByMid.get(String(sub.transceiver.mid))?.trackSid === sub.trackSid) sub.offered = true;
      }
      if (this.rejectOffers) sdp = spoilOffer(sdp, this.rejectOffers);
      const midToTrackId = {};
      for (const [mid, info] of tracksByMid) midToTrackId[mid] = info.trackSid;
      const id = ++this.offerId;
      this.pendingOffer = { id, sentAt: Date.now() };
      this.lastOfferSdp = sdp;
      this.sfu.lastOffer = { id, sdp, mid_to_track_id: midToTrackId };
      if (!this.firstOfferAt) this.firstOfferAt = Date.now();
      this.log(`offer id=${id} mids=${JSON.stringify(midToTrackId)}`);
      this.send('offer', new SessionDescription({ type: 'offer', sdp, id, midToTrackId }));
      this.offersSent++;
      this.stats.offers++;
      if (/\r\nm=/.test(sdp)) this.transportOffered = true;
      this.flushLocalCandidates();
      // Unanswered for 15 s while connected → full reconnect (negotiationFailedTimeout).
      const pending = this.pendingOffer;
      this.later(this.config.negotiation_timeout_s * 1000, () => {
        if (this.pendingOffer === pending && this.pcState === 'connected') {
          this.stats.negotiation_timeouts++;
          this.sendLeave(LeaveRequest_Action.RECONNECT, DisconnectReason.STATE_MISMATCH);
        }
      });
    } catch (e) {
      this.stats.internal_errors++;
      this.log(`negotiate failed: ${e.stack || e}`);
    } finally {
      this.negotiating = false;
    }
  }

  async handleAnswer(sd) {
    this.stats.answers++;
    this.answers++;
    if (sd.type !== 'answer') {
      this.stats.answer_errors++;
      this.log(`answer message with type ${sd.type}`);
      return;
    }
    const pending = this.pendingOffer;
    if (!pending) {
      // pion would reject it (wrong signalling state); the server only logs.
      this.stats.answers_unexpected++;
      this.log('answer without an outstanding offer: ignored');
      return;
    }
    if (sd.id !== 0 && sd.id !== pending.id) {
      // handleRemoteAnswerReceived only warns on a non-zero mismatch; id 0
      // means "unknown" (gst-plugins-rs, Rust SDK).
      this.stats.answer_id_mismatches++;
      this.log(`answer id ${sd.id} does not match offer id ${pending.id} (accepted, like the real server)`);
    }
    if (sd.id === 0) this.stats.answer_id_zero++;
    // Stop forwarding while werift re-binds senders, so no packet goes out
    // with the codec werift picks before we re-select the publisher's.
    for (const sub of this.subs.values()) sub.bound = false;
    // Inline candidates get the same loopback/UDP filter as trickled ones;
    // notably werift would resolve a ".local" host by multicast DNS.
    const answerSdp = sd.sdp.split(/\r?\n/).filter((l) => {
      if (!l.startsWith('a=candidate:')) return true;
      if (this.iceBlackhole) { this.stats.client_candidates_blackholed++; return false; }
      const f = l.slice(12).split(/\s+/);
      const keep = f.length >= 8 && isLoopbackV4(f[4]) && f[2].toLowerCase() === 'udp';
      if (!keep) this.stats.client_candidates_ignored++;
      return keep;
    }).join('\r\n');
    try {
      await this.pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
    } catch (e) {
      // A bad answer is a negotiation failure → full reconnect.
      this.stats.answer_errors++;
      this.log(`setRemoteDescription(answer) failed: ${e.message}`);
      this.sendLeave(LeaveRequest_Action.RECONNECT, DisconnectReason.STATE_MISMATCH);
      return;
    }
    if (this.closed) return;
    this.lastAnswerSdp = sd.sdp;
    this.sfu.lastAnswer = { id: sd.id, sdp: sd.sdp };
    this.pendingOffer = null;
    for (const c of this.remoteCandidateQueue.splice(0)) await this.addRemoteCandidate(c);
    // Binding reads the answer as the client wrote it, not werift's view of
    // it: werift pairs offer and answer codecs by MIME type only.
    const answerMedia = parseSdpMedia(sd.sdp);
    if ([...answerMedia.values()].some((x) => x.port !== 0)) this.transportNegotiated = true;
    for (const section of answerMedia.values()) {
      if (section.kind === 'video' && section.port !== 0) this.stats.h264_answers_without_plid += keptCodecs(section).h264WithoutPlid;
    }
    this.bindSubscriptions(answerMedia);
    if (this.negotiationNeeded) this.scheduleNegotiation();
  }

  // Bind each subscribed track to one of its codecs the answer kept on its
  // m-line (codecs.js bindCodec: primary, then backups; exact fmtp, then
  // MIME); if none, SE_CODEC_UNSUPPORTED (Appendix A.5, A.12, A.13). werift
  // would send with the first negotiated codec, so the sender's codec is set
  // explicitly.
  bindSubscriptions(answerMedia) {
    for (const sub of this.subs.values()) {
      if (!sub.offered) continue;
      const tr = sub.transceiver;
      const sending = ['sendonly', 'sendrecv'].includes(tr.currentDirection);
      const section = answerMedia.get(String(tr.mid));
      const bound = sending && section && section.port !== 0 ? bindCodec(section, sub.codecs) : null;
      if (!bound) {
        if (!sub.failed) {
          sub.failed = true;
          this.stats.subscription_errors++;
          this.log(`subscription ${sub.trackSid}: answer kept none of ${sub.codecs.map((c) => c.mime).join(', ')} (direction ${tr.currentDirection})`);
          this.send('subscriptionResponse', new SubscriptionResponse({ trackSid: sub.trackSid, err: SubscriptionError.SE_CODEC_UNSUPPORTED }));
        }
        continue;
      }
      const { codec, want, backup, rtxPt } = bound;
      // werift's own object for that payload type when it has one (it may
      // carry state), else one built from the answer's rtpmap/fmtp.
      const params = (tr.codecs || []).find((c) => c.payloadType === codec.pt && c.mimeType.toLowerCase() === codec.mime.toLowerCase())
        || new RTCRtpCodecParameters({ mimeType: codec.mime, clockRate: codec.clockRate, channels: codec.channels, payloadType: codec.pt, parameters: codec.fmtp || undefined });
      const s = tr.sender;
      s.codec = params;
      s.sendPrimaryCodec = params;
      s.redRedundantPayloadType = undefined;
      s.rtxPayloadType = rtxPt;
      if (s.track) s.track.codec = params;
      const wasBound = sub.everBound;
      const label = `${codec.mime}/${codec.pt}`;
      const changed = sub.codec !== label;
      sub.bound = true;
      sub.everBound = true;
      sub.codec = label;
      sub.backup = backup;
      // A codec we have no RTP for (AV1: GStreamer 1.22 has no rtpav1pay):
      // bound, but nothing is sent.
      sub.sendable = want.sendable;
      if (changed) {
        this.log(`track ${sub.trackSid} bound to ${label}${backup ? ' (backup codec)' : ''} on mid ${tr.mid}${want.sendable ? '' : ': no RTP for this codec, sending nothing'}`);
        if (!want.sendable) this.stats.unsendable_binds++;
      }
      // New subscriber: ask the publisher for a keyframe (doc §9.3, A.11).
      if (!wasBound && sub.kind === 'video') this.sfu.hub.requestKeyframe(sub.media);
    }
  }

  // --- subscriptions -------------------------------------------------------------------------

  async attach(t) {
    const kind = t.kind;
    const track = new MediaStreamTrack({ kind });
    let tr = this.reuseTransceivers ? this.idle.find((x) => x.kind === kind) : undefined;
    if (tr) {
      // m-line reuse (Appendix A.8): same mid, new SSRC, fresh stream.
      this.idle.splice(this.idle.indexOf(tr), 1);
      if (tr.sender.rtcpCancel?.signal.aborted) tr.sender.rtcpCancel = new AbortController(); // SRs resume on the first packet
      freshRtpStream(tr.sender);
      this.pc.router?.registerRtpSender?.(tr.sender); // RTCP (PLI/NACK) routing by the new SSRC
      await tr.sender.replaceTrack(track);
      tr.setDirection(this.sfu.opts.mediaDirection);
      this.stats.transceivers_reused++;
    } else {
      // Media m-lines are sendrecv from the server side (Appendix A.5);
      // --media-direction sendonly switches that.
      tr = this.pc.addTransceiver(track, { direction: this.sfu.opts.mediaDirection });
      freshRtpStream(tr.sender, { newSsrc: false });
      this.watchRtcp(tr);
    }
    tr.sender.trackId = t.sid;
    track.id = t.sid;
    tr.sender.streamIds = [`${t.publisherSid}|${t.sid}`];
    const sub = {
      trackSid: t.sid, kind, publisherSid: t.publisherSid, transceiver: tr, track,
      source: t.name, media: t.media, codecs: t.codecs,
      bound: false, everBound: false, failed: false, disabled: false, codec: null, backup: false, sendable: false, offered: false,
    };
    sub.removeSink = this.sfu.hub.addSink(t.media, (buf) => {
      if (!sub.bound || !sub.sendable || sub.disabled || this.closed) return;
      const s = tr.sender;
      if (typeof s.canSendRtp === 'function' && !s.canSendRtp()) return;
      track.writeRtp(buf);
      this.rtpOut[kind]++;
      this.stats.rtp_packets_forwarded[kind]++;
      // A video frame is a run of packets with one RTP timestamp: counting timestamp changes
      // gives the frame rate the source actually delivered (tests compare viewers against it).
      if (kind === 'video' && buf.length >= 8) {
        const ts = buf.readUInt32BE(4);
        if (ts !== sub.lastTs) {
          sub.lastTs = ts;
          this.stats.video_frames_forwarded++;
        }
      }
    });
    this.subs.set(t.sid, sub);
    return sub;
  }

  async detach(trackSid) {
    const sub = this.subs.get(trackSid);
    if (!sub) return false;
    sub.removeSink();
    this.subs.delete(trackSid);
    const tr = sub.transceiver;
    // The m-line stays, recvonly from the server side, without msid/ssrc
    // (Appendix A.8); the client's answer turns it inactive.
    try { await tr.sender.replaceTrack(null); } catch (e) { this.log(`replaceTrack(null): ${e.message}`); }
    // Stop werift's sender reports for the idle m-line. A real down track
    // sends none once unbound, and a report carrying the next SSRC before the
    // offer announcing it makes webrtcbin 1.22 lose the new stream.
    tr.sender.rtcpRunning = false;
    tr.sender.rtcpCancel?.abort();
    tr.sender.streamIds = [];
    tr.setDirection('recvonly');
    this.idle.push(tr);
    return true;
  }

  // RTCP is taken straight from the (bundled) DTLS transport: werift's router
  // may hand a PLI to a receiver instead of our sender when the PLI's sender
  // SSRC appears in the client's answer.
  watchRtcp(tr) {
    const dtls = tr.sender.dtlsTransport || tr.receiver.dtlsTransport;
    if (!dtls || this.rtcpWatched?.has(dtls)) return;
    (this.rtcpWatched ||= new WeakSet()).add(dtls);
    dtls.onRtcp.subscribe((pkt) => {
      // PSFB (206) with FMT 1 (PLI) or 4 (FIR) for one of our video SSRCs:
      // forward a keyframe request to the encoder.
      if (pkt?.type !== 206 || (pkt.feedback?.count !== 1 && pkt.feedback?.count !== 4)) return;
      // FIR names its target in the FCI entries (RFC 5104), PLI in media SSRC.
      const media = pkt.feedback.count === 4 ? pkt.feedback.fir?.[0]?.ssrc : pkt.feedback.mediaSsrc;
      const targets = [...this.subs.values()].filter((x) => x.kind === 'video' && (media === undefined || x.transceiver.sender.ssrc === media));
      this.stats.plis_received++;
      for (const source of new Set(targets.map((x) => x.media))) this.sfu.hub.requestKeyframe(source);
    });
  }

  async subscribe(trackSids, subscribe, { record = true } = {}) {
    if (record) {
      this.stats.subscriptions.push({ identity: this.identity, participant_sid: this.sid, track_sids: trackSids, subscribe, at_ms: Date.now() });
      if (this.stats.subscriptions.length > 200) this.stats.subscriptions.shift();
    }
    let changed = false;
    for (const sid of trackSids) {
      if (subscribe) {
        if (this.subs.has(sid)) continue; // repeating a subscription is harmless
        const t = this.room.findTrack(sid);
        if (!t) {
          this.log(`subscribe to unknown track ${sid}`);
          this.send('subscriptionResponse', new SubscriptionResponse({ trackSid: sid, err: SubscriptionError.SE_TRACK_NOTFOUND }));
          continue;
        }
        await this.attach(t);
        changed = true;
      } else if (await this.detach(sid)) {
        changed = true;
      }
    }
    if (changed) this.scheduleNegotiation();
  }

  onTracksPublished(tracks) {
    if (this.closed || !this.autoSubscribe) return;
    this.subscribe(tracks.map((t) => t.sid), true, { record: false });
  }

  onTracksUnpublished(trackSids) {
    if (this.closed) return;
    const mine = trackSids.filter((s) => this.subs.has(s));
    if (mine.length) this.subscribe(mine, false, { record: false });
  }

  handleTrackSetting(ts) {
    this.stats.track_settings.push({ identity: this.identity, track_sids: ts.trackSids, disabled: ts.disabled, quality: ts.quality, width: ts.width, height: ts.height, fps: ts.fps, at_ms: Date.now() });
    if (this.stats.track_settings.length > 200) this.stats.track_settings.shift();
    for (const sid of ts.trackSids) {
      const sub = this.subs.get(sid);
      if (!sub) continue;
      const wasDisabled = sub.disabled;
      sub.disabled = ts.disabled;
      if (wasDisabled && !ts.disabled && sub.kind === 'video') this.sfu.hub.requestKeyframe(sub.media);
    }
  }

  // Sends one offer (id + 1) that webrtcbin must refuse, built from the last
  // offer this session sent (see spoilOffer). Nothing else changes: the SFU
  // keeps its own negotiation state, as if the offer had been lost.
  sendSpoiledOffer(mode) {
    if (this.closed || !this.lastOfferSdp) return false;
    const sdp = spoilOffer(this.lastOfferSdp, mode);
    const id = ++this.offerId;
    this.log(`spoiled offer (${mode}) id=${id}`);
    this.stats.spoiled_offers++;
    this.send('offer', new SessionDescription({ type: 'offer', sdp, id, midToTrackId: {} }));
    return true;
  }

  // --- incoming ------------------------------------------------------------------------------

  async onMessage(data, isBinary) {
    if (this.closed) return;
    if (!isBinary) {
      // The real server would switch to JSON for this client; clients must
      // always send binary (doc §3.1).
      this.stats.bad_frames++;
      this.log('text frame ignored');
      return;
    }
    let req;
    try {
      req = SignalRequest.fromBinary(new Uint8Array(data));
    } catch (e) {
      this.stats.bad_frames++;
      this.log(`undecodable SignalRequest: ${e.message}`);
      return;
    }
    const { case: kase, value } = req.message;
    this.stats.messages_received[kase || 'unknown'] = (this.stats.messages_received[kase || 'unknown'] || 0) + 1;
    switch (kase) {
      case 'answer': await this.handleAnswer(value); break;
      case 'trickle': await this.handleTrickle(value); break;
      case 'subscription': {
        const sids = [...value.trackSids];
        for (const pt of value.participantTracks) sids.push(...pt.trackSids);
        await this.subscribe([...new Set(sids)], value.subscribe);
        break;
      }
      case 'trackSetting': this.handleTrackSetting(value); break;
      case 'pingReq':
        this.stats.pings++;
        this.stats.ping_reqs++;
        this.lastRtt = Number(value.rtt);
        this.send('pongResp', new Pong({ lastPingTimestamp: value.timestamp, timestamp: BigInt(Date.now()) }));
        break;
      case 'ping':
        this.stats.pings++;
        this.stats.legacy_pings++;
        this.send('pong', BigInt(Date.now()));
        break;
      case 'leave':
        this.stats.leaves_received++;
        this.log(`client leave reason ${DisconnectReason[value.reason]} action ${LeaveRequest_Action[value.action]}`);
        this.close('client leave');
        // The client closes the socket; make sure it does not linger.
        setTimeout(() => { try { this.ws.close(1000); } catch { /* closed */ } }, 1000).unref();
        break;
      case 'offer':
        // A receive-only client never publishes; a publisher offer is outside
        // what this fake supports.
        this.stats.publisher_offers++;
        this.log('publisher offer ignored (fake SFU has no publisher PC)');
        break;
      default:
        this.log(`ignored request ${kase}`);
    }
  }
}

#!/usr/bin/env node
// Self-check of the fake SFU with an independent receive-only LiveKit client
// (werift + @livekit/protocol), written from the protocol doc rather than
// from sfu.js. Run it inside a loopback-only network namespace:
//
//   unshare -n sh -c 'ip link set lo up; node selftest.js --codec vp8'
//
// Without --url it starts sfu.js itself (same --codec) and stops it at the end.
// Options: --codec vp8|h264, --url http://127.0.0.1:PORT (use a running
// sfu.js), --width/--height (expected size), --seconds N (media window),
// --print-sdp (print the subscription offer), --verbose.
// Prints one line per check and "N passed, M failed"; exits 0 iff M == 0.
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { RTCPeerConnection, RTCRtpCodecParameters } from 'werift';
import {
  SignalRequest, SignalResponse, SessionDescription, TrickleRequest, SignalTarget, UpdateSubscription, Ping,
  LeaveRequest_Action, DisconnectReason, ParticipantInfo_State, TrackType, SubscriptionError,
} from '@livekit/protocol';

const HERE = path.dirname(fileURLToPath(import.meta.url));

// --- options -------------------------------------------------------------------------------------

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const CODEC = opt('--codec', 'vp8');
const SECONDS = Number(opt('--seconds', '5'));
// Expected picture size: passed to the sfu.js this script starts, and
// compared with the TrackInfo (give the same values as the SFU's with --url).
const WIDTH = Number(opt('--width', '1280'));
const HEIGHT = Number(opt('--height', '720'));
const VERBOSE = args.includes('--verbose');
const PRINT_SDP = args.includes('--print-sdp');
let BASE = opt('--url', null); // http://127.0.0.1:PORT of an already running sfu.js
const MIN_VIDEO = 100;
const MIN_AUDIO = 150;

const log = (...a) => { if (VERBOSE) process.stderr.write(`[selftest] ${a.join(' ')}\n`); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let passed = 0;
let failed = 0;
function check(name, cond, detail = '') {
  if (cond) { passed++; process.stdout.write(`ok   ${name}${detail ? ` (${detail})` : ''}\n`); } else { failed++; process.stdout.write(`FAIL ${name}${detail ? ` (${detail})` : ''}\n`); }
  return !!cond;
}

// --- token ----------------------------------------------------------------------------------------

function jwt(payload, secret = 'secret') {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const data = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(payload)}`;
  return `${data}.${crypto.createHmac('sha256', secret).update(data).digest('base64url')}`;
}

function viewerToken(room, { sub = crypto.randomBytes(4).toString('hex'), exp = Math.floor(Date.now() / 1000) + 900, secret } = {}) {
  return jwt({
    video: { roomJoin: true, roomCreate: false, canPublish: false, canSubscribe: true, canPublishData: true, room, hidden: false },
    metadata: '{"anon":true,"role":"viewer"}', iss: 'devkey', exp, nbf: 0, sub,
  }, secret);
}

function decodeJwt(tok) {
  const [h, p, s] = tok.split('.');
  const ok = crypto.createHmac('sha256', 'secret').update(`${h}.${p}`).digest('base64url') === s;
  return { claims: JSON.parse(Buffer.from(p, 'base64url').toString()), signatureOk: ok };
}

const randomMint = () => {
  const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let s = '';
  for (const b of crypto.randomBytes(40)) s += B58[b % 58];
  return `${s}pump`;
};

// --- HTTP helpers -------------------------------------------------------------------------------

function httpReq(method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(p, BASE);
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(u, { method, headers: { ...headers, ...(data ? { 'Content-Type': 'application/json' } : {}) } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}
const control = async (p, body = {}) => JSON.parse((await httpReq('POST', p, body)).body);
const stats = async () => JSON.parse((await httpReq('GET', '/__sfu/stats')).body);

// Try a WebSocket upgrade and report the HTTP status of a refusal (or 101).
function upgradeStatus(query, headers = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${BASE.replace(/^http/, 'ws')}/rtc?${query}`, { headers });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: body.trim() }));
    });
    ws.on('open', () => { ws.terminate(); resolve({ status: 101 }); });
    ws.on('error', () => {});
  });
}

// --- the client ------------------------------------------------------------------------------------

const LOOPBACK_PC = (videoCodecs) => ({
  iceServers: [],
  iceUseIpv4: false,
  iceUseIpv6: false,
  iceAdditionalHostAddresses: ['127.0.0.1'],
  iceInterfaceAddresses: { udp4: '127.0.0.1' },
  iceUseTcp: false,
  bundlePolicy: 'max-bundle',
  codecs: {
    // What a receiver that can decode VP8, H.264 (pm=1) and Opus would keep.
    video: videoCodecs || [
      new RTCRtpCodecParameters({ mimeType: 'video/VP8', clockRate: 90000, payloadType: 96, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }),
      new RTCRtpCodecParameters({ mimeType: 'video/H264', clockRate: 90000, payloadType: 108, parameters: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f', rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }),
    ],
    audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
  },
});

function isKeyframe(codec, payload) {
  if (payload.length < 3) return false;
  if (codec === 'vp8') {
    const b0 = payload[0];
    let i = 1;
    if (b0 & 0x80) {
      const x = payload[1];
      i = 2;
      if (x & 0x80) i += (payload[2] & 0x80) ? 2 : 1;
      if (x & 0x40) i++;
      if (x & 0x30) i++;
    }
    return (b0 & 0x10) !== 0 && (b0 & 0x07) === 0 && (payload[i] & 0x01) === 0;
  }
  const t = payload[0] & 0x1f;
  if (t === 5) return true;
  if (t === 28) return (payload[1] & 0x80) !== 0 && (payload[1] & 0x1f) === 5;
  if (t === 24) {
    for (let i = 1; i + 2 < payload.length;) {
      const n = payload.readUInt16BE(i);
      if ((payload[i + 2] & 0x1f) === 5) return true;
      i += 2 + n;
    }
  }
  return false;
}

class Client {
  constructor(name, token, query, { videoCodecs } = {}) {
    this.name = name;
    this.videoCodecs = videoCodecs;
    this.token = token;
    this.query = query;
    this.messages = [];
    this.waiters = [];
    this.offers = [];
    this.candidateQueue = [];
    this.answersSent = 0;
    this.serverTrickles = [];
    this.rtp = {}; // trackSid -> {count, pt:Set, keyframes}
    this.midToTrack = {};
    this.dataChannels = {};
    this.closed = null;
    this.offerChain = Promise.resolve();
  }

  connect() {
    const url = `${BASE.replace(/^http/, 'ws')}/rtc?access_token=${this.token}&${this.query}`;
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'nodebuffer';
    this.ws.on('message', (d, isBinary) => this.onMessage(d, isBinary));
    this.ws.on('close', (code) => { this.closed = { code, at: Date.now() }; this.wake(); });
    this.ws.on('error', (e) => log(`${this.name} ws error ${e.message}`));
    return new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('unexpected-response', (_q, res) => reject(new Error(`upgrade refused ${res.statusCode}`)));
    });
  }

  send(kase, value) {
    this.ws.send(new SignalRequest({ message: { case: kase, value } }).toBinary());
  }

  wake() { for (const w of this.waiters.splice(0)) w(); }

  // Resolve with the first recorded message (from index `from`) matching pred.
  async waitFor(pred, timeoutMs, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = from; i < this.messages.length; i++) if (pred(this.messages[i])) return this.messages[i];
      if (Date.now() >= deadline) return null;
      await new Promise((r) => { this.waiters.push(r); setTimeout(r, Math.min(100, deadline - Date.now())); });
    }
  }

  onMessage(data, isBinary) {
    if (!isBinary) { this.textFrames = (this.textFrames || 0) + 1; return; }
    const msg = SignalResponse.fromBinary(new Uint8Array(data));
    const { case: kase, value } = msg.message;
    this.messages.push({ kase, value, at: Date.now() });
    log(`${this.name} <- ${kase}`);
    if (kase === 'join') this.setupPc(value);
    if (kase === 'offer') this.offerChain = this.offerChain.then(() => this.answer(value)).catch((e) => { this.answerError = e; log(`answer failed ${e.stack}`); });
    if (kase === 'trickle') this.onServerTrickle(value);
    this.wake();
  }

  setupPc() {
    this.pc = new RTCPeerConnection(LOOPBACK_PC(this.videoCodecs));
    this.pc.onIceCandidate.subscribe((c) => {
      if (!c?.candidate) return;
      const init = JSON.stringify({ candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex });
      if (this.answersSent === 0) this.candidateQueue.push(init); else this.sendTrickle(init);
    });
    this.pc.ondatachannel = ({ channel }) => {
      this.dataChannels[channel.label] = channel.readyState;
      channel.stateChanged.subscribe((s) => { this.dataChannels[channel.label] = s; });
    };
    this.pc.connectionStateChange.subscribe((s) => { this.pcState = s; if (s === 'connected') this.connectedAt = Date.now(); log(`${this.name} pc ${s}`); });
  }

  // werift fires ontrack once per transceiver; when the SFU reuses an m-line
  // with a new SSRC it adds another track object to the same receiver. Hook
  // every receiver track after each offer instead.
  hookTracks() {
    this.hooked ||= new WeakSet();
    for (const transceiver of this.pc.getTransceivers()) {
      for (const track of transceiver.receiver?.tracks || []) {
        if (this.hooked.has(track)) continue;
        this.hooked.add(track);
        track.onReceiveRtp.subscribe((rtp) => {
          const sid = this.midToTrack[transceiver.mid] || `mid:${transceiver.mid}`;
          const r = this.rtp[sid] || (this.rtp[sid] = { count: 0, pts: new Set(), keyframes: 0, kind: transceiver.kind, ssrcs: new Set(), first: Date.now() });
          r.count++;
          r.pts.add(rtp.header.payloadType);
          r.ssrcs.add(rtp.header.ssrc);
          r.lastSsrc = rtp.header.ssrc;
          if (transceiver.kind === 'video' && isKeyframe(CODEC, rtp.payload)) r.keyframes++;
        });
      }
    }
  }

  sendTrickle(init) {
    this.send('trickle', new TrickleRequest({ candidateInit: init, target: SignalTarget.SUBSCRIBER }));
  }

  onServerTrickle(t) {
    this.serverTrickles.push(t);
    if (t.target !== SignalTarget.SUBSCRIBER) return;
    const init = JSON.parse(t.candidateInit);
    this.pc.addIceCandidate({ candidate: init.candidate, sdpMid: init.sdpMid, sdpMLineIndex: init.sdpMLineIndex }).catch((e) => log(`addIceCandidate ${e.message}`));
  }

  async answer(offer) {
    this.offers.push(offer);
    Object.assign(this.midToTrack, offer.midToTrackId);
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offer.sdp });
    this.hookTracks();
    // Receive-only: every media transceiver answers recvonly (doc §4.3).
    for (const t of this.pc.getTransceivers()) if (t.kind === 'audio' || t.kind === 'video') t.setDirection('recvonly');
    const ans = await this.pc.createAnswer();
    await this.pc.setLocalDescription(ans);
    this.lastAnswerSdp = this.pc.localDescription.sdp;
    this.send('answer', new SessionDescription({ type: 'answer', sdp: this.lastAnswerSdp, id: offer.id }));
    this.answersSent++;
    for (const c of this.candidateQueue.splice(0)) this.sendTrickle(c);
  }

  count(kind) {
    return Object.values(this.rtp).filter((r) => r.kind === kind).reduce((a, r) => a + r.count, 0);
  }

  close() {
    try { this.ws.terminate(); } catch { /* closed */ }
    try { this.pc?.close(); } catch { /* closed */ }
  }
}

const mediaSections = (sdp) => sdp.split(/\r\n(?=m=)/).slice(1);

// --- the test ------------------------------------------------------------------------------------

async function startSfu() {
  const child = spawn(process.execPath, [path.join(HERE, 'sfu.js'), '--port', '0', '--codec', CODEC, '--width', String(WIDTH), '--height', String(HEIGHT), ...(VERBOSE ? ['--verbose'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const t = setTimeout(() => reject(new Error('sfu.js did not print LISTENING within 30 s')), 30000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /^LISTENING (\d+)$/m.exec(out);
      if (m) { clearTimeout(t); resolve(Number(m[1])); }
    });
    child.on('exit', (c) => reject(new Error(`sfu.js exited early with ${c}`)));
  });
  return { child, port };
}

async function main() {
  let sfu = null;
  if (!BASE) {
    sfu = await startSfu();
    BASE = `http://127.0.0.1:${sfu.port}`;
  }
  log(`sfu at ${BASE}`);
  const mint = randomMint();
  const room = `livestream:${mint}:${2000000 + crypto.randomInt(1000)}`;
  const q = 'protocol=17&auto_subscribe=0&adaptive_stream=0&sdk=c&version=selftest';

  // 1. Refusals before the upgrade (doc §2.5, §8).
  check('plain GET /rtc is 404', (await httpReq('GET', '/rtc')).status === 404);
  const good = viewerToken(room);
  const v = await httpReq('GET', `/rtc/validate?access_token=${good}&${q}`);
  check('/rtc/validate with a good token', v.status === 200 && v.body === 'success', `${v.status} ${v.body}`);
  let r = await upgradeStatus(`access_token=${viewerToken(room, { secret: 'wrong' })}&${q}`);
  check('bad signature refused with 401', r.status === 401, `${r.status} ${r.body}`);
  r = await upgradeStatus(`access_token=${viewerToken(room, { exp: Math.floor(Date.now() / 1000) - 3600 })}&${q}`);
  check('expired token refused with 401', r.status === 401, `${r.status} ${r.body}`);
  r = await upgradeStatus(`access_token=${good}&protocol=2&auto_subscribe=0`);
  check('protocol=2 refused with 400', r.status === 400, `${r.status} ${r.body}`);
  r = await upgradeStatus(q, { Authorization: 'Token abc' });
  check('Authorization without Bearer refused with 401', r.status === 401, `${r.status}`);

  // 2. Join and the first offer.
  const sub = crypto.randomBytes(4).toString('hex');
  const a = new Client('A', viewerToken(room, { sub }), q);
  await a.connect();
  const join = await a.waitFor((m) => true, 5000);
  check('first message is join', join?.kase === 'join', join?.kase);
  const jr = join.value;
  check('join: subscriber_primary, ping 5/15, protocol 17, no ICE servers',
    jr.subscriberPrimary && jr.pingInterval === 5 && jr.pingTimeout === 15 && jr.serverInfo?.protocol === 17 && jr.iceServers.length === 0,
    `primary=${jr.subscriberPrimary} ping=${jr.pingInterval}/${jr.pingTimeout} proto=${jr.serverInfo?.protocol}`);
  check('join: room name from the token, identity = sub', jr.room?.name === room && jr.participant?.identity === sub && jr.participant.sid.startsWith('PA_'));
  // Pick the publisher like haven: has tracks, identity without "viewer".
  const pickStreamer = (list) => list.find((p) => p.tracks.length > 0 && !/viewer/i.test(p.identity));
  let streamer = pickStreamer(jr.otherParticipants);
  const viewer = jr.otherParticipants.find((p) => /viewer/i.test(p.identity));
  check('join: a streamer with video+audio and a viewer without tracks', streamer && viewer && viewer.tracks.length === 0
    && streamer.state === ParticipantInfo_State.ACTIVE && streamer.tracks.length === 2,
  streamer ? `${streamer.identity} ${streamer.sid}` : 'none');
  const vTrack = streamer.tracks.find((t) => t.type === TrackType.VIDEO);
  const aTrack = streamer.tracks.find((t) => t.type === TrackType.AUDIO);
  const wantMime = CODEC === 'vp8' ? 'video/VP8' : 'video/H264';
  check(`video TrackInfo: mime, ${WIDTH}x${HEIGHT}, no simulcast`, vTrack.mimeType === wantMime && vTrack.width === WIDTH && vTrack.height === HEIGHT && !vTrack.simulcast, `${vTrack.mimeType} ${vTrack.width}x${vTrack.height}`);
  check('audio TrackInfo: audio/opus', aTrack.mimeType === 'audio/opus');

  const offer1 = (await a.waitFor((m) => m.kase === 'offer', 5000))?.value;
  check('first offer arrives', !!offer1);
  const secs1 = mediaSections(offer1.sdp);
  check('first offer: only the data-channel section, no candidates',
    secs1.length === 1 && secs1[0].startsWith('m=application') && /webrtc-datachannel/.test(secs1[0]) && !/a=candidate:/.test(offer1.sdp)
    && Object.keys(offer1.midToTrackId).length === 0);
  const finalTrickle = await a.waitFor((m) => m.kase === 'trickle' && m.value.final, 5000);
  check('server trickles its candidates (target SUBSCRIBER, last one final)', finalTrickle && finalTrickle.value.target === SignalTarget.SUBSCRIBER
    && /"usernameFragment":null/.test(finalTrickle.value.candidateInit) && / 127\.0\.0\.1 /.test(finalTrickle.value.candidateInit), finalTrickle?.value.candidateInit);
  const refresh = await a.waitFor((m) => m.kase === 'refreshToken', 3000);
  const rt = refresh && decodeJwt(refresh.value);
  check('refresh_token: HS256, same room and identity', rt && rt.signatureOk && rt.claims.video.room === room && rt.claims.sub === sub);

  // 3. Subscribe to the streamer → second offer with the media m-lines.
  const before = a.messages.length;
  a.send('subscription', new UpdateSubscription({ trackSids: [vTrack.sid, aTrack.sid], subscribe: true }));
  const offer2 = (await a.waitFor((m) => m.kase === 'offer', 5000, before))?.value;
  check('subscription answered by a new offer with id + 1', offer2 && offer2.id === offer1.id + 1, offer2 && `${offer1.id} -> ${offer2.id}`);
  if (PRINT_SDP && offer2) process.stdout.write(`----- offer id=${offer2.id} mid_to_track_id=${JSON.stringify(offer2.midToTrackId)}\n${offer2.sdp}-----\n`);
  const secs2 = mediaSections(offer2.sdp);
  const vSec = secs2.find((s) => s.startsWith('m=video'));
  const aSec = secs2.find((s) => s.startsWith('m=audio'));
  const midOf = (s) => /a=mid:(\S+)/.exec(s)?.[1];
  check('offer: m=application first, then video and audio', secs2[0].startsWith('m=application') && vSec && aSec);
  check('offer: mid_to_track_id maps the media mids', offer2.midToTrackId[midOf(vSec)] === vTrack.sid && offer2.midToTrackId[midOf(aSec)] === aTrack.sid, JSON.stringify(offer2.midToTrackId));
  const sid = streamer.sid;
  check('offer: msid and per-SSRC lines carry PA|TR', vSec.includes(`a=msid:${sid}|${vTrack.sid} ${vTrack.sid}`)
    && new RegExp(`a=ssrc:\\d+ msid:${sid}\\|${vTrack.sid} ${vTrack.sid}`).test(vSec) && /a=ssrc-group:FID \d+ \d+/.test(vSec)
    && aSec.includes(`a=msid:${sid}|${aTrack.sid} ${aTrack.sid}`));
  check('offer: sendrecv, actpass, BUNDLE, remb/fir/nack/pli, opus sprop-stereo', /a=sendrecv/.test(vSec) && /a=setup:actpass/.test(vSec)
    && /a=group:BUNDLE/.test(offer2.sdp) && /goog-remb/.test(vSec) && /ccm fir/.test(vSec) && /nack pli/.test(vSec) && /sprop-stereo=1/.test(aSec));
  check('later offer carries its candidates inline', /a=candidate:/.test(offer2.sdp) && /a=end-of-candidates/.test(offer2.sdp));

  // 4. Media.
  const t0 = Date.now();
  while (Date.now() - t0 < 10000 && !(a.count('video') > 0 && a.count('audio') > 0)) await sleep(50);
  check('subscriber PC connected, both data channels open', a.pcState === 'connected' && a.dataChannels._reliable === 'open' && a.dataChannels._lossy === 'open', `${a.pcState} ${JSON.stringify(a.dataChannels)}`);
  const active = await a.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.identity === sub && p.state === ParticipantInfo_State.ACTIVE), 3000);
  check('own participant becomes ACTIVE', !!active);
  const v0 = a.count('video');
  const a0 = a.count('audio');
  await sleep(SECONDS * 1000);
  const videoN = a.count('video') - v0;
  const audioN = a.count('audio') - a0;
  const vStats = a.rtp[vTrack.sid] || { pts: new Set(), keyframes: 0 };
  check(`video packets in ${SECONDS} s >= ${MIN_VIDEO}`, videoN >= MIN_VIDEO, `${videoN}`);
  check(`audio packets in ${SECONDS} s >= ${MIN_AUDIO}`, audioN >= MIN_AUDIO, `${audioN}`);
  const wantPt = CODEC === 'vp8' ? 96 : 108;
  check(`video PT is ${wantPt} and keyframes arrive`, vStats.pts.size === 1 && vStats.pts.has(wantPt) && vStats.keyframes >= 1, `pts=${[...vStats.pts]} keyframes=${vStats.keyframes}`);
  check('audio PT is 111', a.rtp[aTrack.sid]?.pts.has(111));

  // 5. Keepalive.
  const ts = BigInt(Date.now());
  let mark = a.messages.length;
  a.send('pingReq', new Ping({ timestamp: ts, rtt: 0n }));
  a.send('ping', ts);
  const pong = await a.waitFor((m) => m.kase === 'pongResp', 2000, mark);
  const legacy = await a.waitFor((m) => m.kase === 'pong', 2000, mark);
  check('ping_req answered by pong_resp echoing the timestamp', pong && pong.value.lastPingTimestamp === ts && pong.value.timestamp > 0n);
  check('legacy ping answered by pong', legacy && legacy.value > 0n);

  // 6. PLI reaches the SFU (forwarded to the encoder as a keyframe request).
  const vRecv = a.pc.getTransceivers().find((t) => t.mid === midOf(vSec));
  await vRecv.receiver.sendRtcpPLI(vStats.lastSsrc);
  await sleep(300);
  let st = await stats();
  check('PLI from the client is counted', st.plis_received >= 1, `plis_received=${st.plis_received}`);
  check('stats: joins/answers/candidates/pings/subscriptions/rtp',
    st.joins >= 1 && st.answers >= 2 && st.client_candidates >= 1 && st.pings >= 2 && st.subscriptions.some((s) => s.identity === sub && s.subscribe)
    && st.rtp_packets_forwarded.video > 0 && st.rtp_packets_forwarded.audio > 0 && st.query.some((x) => x.protocol === '17' && x.auto_subscribe === '0'),
  `answers=${st.answers} cands=${st.client_candidates} pings=${st.pings} fwd=${JSON.stringify(st.rtp_packets_forwarded)}`);
  check('stats: no internal errors, answer ids matched', st.internal_errors === 0 && st.answer_id_mismatches === 0, `internal_errors=${st.internal_errors}`);

  // 7. The streamer leaves and comes back with new SIDs; the m-lines are reused.
  mark = a.messages.length;
  await control('/__sfu/streamer/leave');
  const gone = await a.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.sid === sid && p.state === ParticipantInfo_State.DISCONNECTED), 3000, mark);
  check('streamer leave: update with state DISCONNECTED', !!gone);
  const offer3 = (await a.waitFor((m) => m.kase === 'offer', 3000, mark))?.value;
  const secs3 = offer3 ? mediaSections(offer3.sdp) : [];
  check('streamer leave: new offer turns the media m-lines recvonly without msid', offer3 && secs3.filter((s) => /^m=(audio|video)/.test(s)).every((s) => /a=recvonly/.test(s) && !/a=msid:/.test(s) && !/a=ssrc:/.test(s))
    && Object.keys(offer3.midToTrackId).length === 0);
  await sleep(800);
  const vAfter = a.count('video');
  await sleep(1000);
  check('streamer leave: RTP stops', a.count('video') - vAfter <= 2, `${a.count('video') - vAfter} packets after leave`);

  mark = a.messages.length;
  await control('/__sfu/streamer/join');
  const back = await a.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => pickStreamer([p])), 3000, mark);
  const streamer2 = back && pickStreamer(back.value.participants);
  check('streamer join: same identity, new SID, new track SIDs', streamer2 && streamer2.identity === streamer.identity && streamer2.sid !== sid
    && streamer2.tracks.every((t) => t.sid !== vTrack.sid && t.sid !== aTrack.sid), streamer2 && `${streamer2.sid}`);
  mark = a.messages.length;
  a.send('subscription', new UpdateSubscription({ trackSids: streamer2.tracks.map((t) => t.sid), subscribe: true }));
  const offer4 = (await a.waitFor((m) => m.kase === 'offer', 3000, mark))?.value;
  const v2 = streamer2.tracks.find((t) => t.type === TrackType.VIDEO);
  const secs4 = offer4 ? mediaSections(offer4.sdp) : [];
  const vSec4 = secs4.find((s) => s.startsWith('m=video') && /a=sendrecv/.test(s));
  check('resubscribe: the same video mid is reused with a new SSRC (Appendix A.8)', vSec4 && midOf(vSec4) === midOf(vSec) && offer4.midToTrackId[midOf(vSec)] === v2.sid
    && /a=ssrc:(\d+)/.exec(vSec4)[1] !== /a=ssrc:(\d+)/.exec(vSec)[1] && secs4.length === secs2.length);
  const vBefore = a.count('video');
  await sleep(2500);
  check('resubscribe: video flows again', a.count('video') - vBefore >= 20, `${a.count('video') - vBefore} packets in 2.5 s`);
  log(`after resubscribe: client rtp ${JSON.stringify(Object.fromEntries(Object.entries(a.rtp).map(([k, x]) => [k, { count: x.count, ssrcs: [...x.ssrcs] }])))}`);
  log(`after resubscribe: server ${JSON.stringify((await stats()).pc_states)}`);

  // 8. /__sfu/drop: the socket just dies, no leave.
  mark = a.messages.length;
  await control('/__sfu/drop');
  const t1 = Date.now();
  while (!a.closed && Date.now() - t1 < 3000) await sleep(20);
  check('drop: WebSocket closed without a leave', a.closed && !a.messages.slice(mark).some((m) => m.kase === 'leave'), a.closed ? `code ${a.closed.code}` : 'still open');
  a.close();
  st = await stats();
  check('drop: no clients left', st.clients === 0);

  // 9. The refreshed token joins; /__sfu/leave sends action + reason, then closes.
  const b = new Client('B', refresh.value, q);
  await b.connect();
  const bj = await b.waitFor((m) => true, 5000);
  check('refreshed token joins (same identity)', bj?.kase === 'join' && bj.value.participant.identity === sub);
  await b.waitFor((m) => m.kase === 'offer', 3000);
  mark = b.messages.length;
  await control('/__sfu/leave', { action: 'RESUME', reason: 'ROOM_DELETED' });
  const lv = await b.waitFor((m) => m.kase === 'leave', 3000, mark);
  const t2 = Date.now();
  while (!b.closed && Date.now() - t2 < 3000) await sleep(20);
  check('leave control: action RESUME, reason ROOM_DELETED, can_reconnect, then close', lv && lv.value.action === LeaveRequest_Action.RESUME
    && lv.value.reason === DisconnectReason.ROOM_DELETED && lv.value.canReconnect && b.closed);
  b.close();

  // 10. Resume is refused the way a server without the session does it.
  const c = new Client('C', viewerToken(room), `${q}&reconnect=1&sid=PA_unknown&reconnect_reason=1`);
  await c.connect();
  const cl = await c.waitFor((m) => true, 3000);
  check('resume: first message leave{STATE_MISMATCH, RECONNECT}', cl?.kase === 'leave' && cl.value.action === LeaveRequest_Action.RECONNECT && cl.value.reason === DisconnectReason.STATE_MISMATCH);
  c.close();

  // 11. Publish late: a new room whose streamer publishes after a delay.
  check('config publish_delay_ms', (await control('/__sfu/config', { publish_delay_ms: 1500 })).ok);
  const room2 = `livestream:${randomMint()}:2424242`;
  const d = new Client('D', viewerToken(room2), q);
  await d.connect();
  const dj = (await d.waitFor((m) => m.kase === 'join', 5000))?.value;
  const late = dj && dj.otherParticipants.find((p) => !/viewer/i.test(p.identity));
  check('publish late: streamer announced without tracks', late && late.tracks.length === 0);
  const pub = await d.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.identity === late.identity && p.tracks.length === 2), 4000);
  check('publish late: tracks arrive in an update after the delay', pub && pub.at - d.messages[0].at >= 1200, pub && `${pub.at - d.messages[0].at} ms`);
  d.close();
  await control('/__sfu/config', { publish_delay_ms: 0 });

  // 12. Refusal switch.
  await control('/__sfu/config', { refuse: true });
  r = await upgradeStatus(`access_token=${viewerToken(room)}&${q}`);
  check('config refuse: upgrade answered 503', r.status === 503, `${r.status}`);
  await control('/__sfu/config', { refuse: false });

  // 13. auto_subscribe=1 (the web app's setting) with browser=Safari: tracks
  // are in the first offer ("fast start"), and after a streamer rejoin the
  // new tracks get new m-lines instead of reused ones.
  const e = new Client('E', viewerToken(room), 'protocol=17&auto_subscribe=1&browser=Safari');
  await e.connect();
  const eo = (await e.waitFor((m) => m.kase === 'offer', 5000))?.value;
  check('auto_subscribe=1: first offer already has audio and video', eo && mediaSections(eo.sdp).length === 3 && Object.keys(eo.midToTrackId).length === 2);
  const te = Date.now();
  while (Date.now() - te < 8000 && !(e.count('video') > 30 && e.count('audio') > 10)) await sleep(50);
  check('auto_subscribe=1: media flows without a subscription request', e.count('video') > 30 && e.count('audio') > 10, `video ${e.count('video')} audio ${e.count('audio')}`);
  mark = e.messages.length;
  await control('/__sfu/streamer/join'); // rejoin = leave + join
  const eo2 = await e.waitFor((m) => m.kase === 'offer' && Object.keys(m.value.midToTrackId).length === 2, 5000, mark);
  check('browser=Safari: rejoined tracks get new m-lines (no reuse)', eo2 && mediaSections(eo2.value.sdp).length === 5
    && Object.keys(eo2.value.midToTrackId).every((mid) => !(mid in eo.midToTrackId)), eo2 && JSON.stringify(eo2.value.midToTrackId));
  const ve = e.count('video');
  await sleep(2000);
  check('browser=Safari: video flows on the new m-line', e.count('video') - ve >= 20, `${e.count('video') - ve} packets in 2 s`);
  e.close();

  // 14. A client that cannot take the publisher's codec gets
  // subscription_response{SE_CODEC_UNSUPPORTED} (Appendix A.5).
  const f = new Client('F', viewerToken(room), q, { videoCodecs: [new RTCRtpCodecParameters({ mimeType: 'video/VP9', clockRate: 90000, payloadType: 98 })] });
  await f.connect();
  const fj = (await f.waitFor((m) => m.kase === 'join', 5000))?.value;
  const fv = pickStreamer(fj.otherParticipants).tracks.find((t) => t.type === TrackType.VIDEO);
  await f.waitFor((m) => m.kase === 'offer', 3000);
  f.send('subscription', new UpdateSubscription({ trackSids: [fv.sid], subscribe: true }));
  const fe = await f.waitFor((m) => m.kase === 'subscriptionResponse', 5000);
  check('codec the answer lacks: subscription_response SE_CODEC_UNSUPPORTED', fe && fe.value.trackSid === fv.sid && fe.value.err === SubscriptionError.SE_CODEC_UNSUPPORTED);
  f.send('subscription', new UpdateSubscription({ trackSids: ['TR_doesnotexist'], subscribe: true }));
  const fn = await f.waitFor((m) => m.kase === 'subscriptionResponse' && m.value.trackSid === 'TR_doesnotexist', 3000);
  check('unknown track: subscription_response SE_TRACK_NOTFOUND', fn && fn.value.err === SubscriptionError.SE_TRACK_NOTFOUND);
  f.close();

  st = await stats();
  check('stats at the end: no internal errors', st.internal_errors === 0, `internal_errors=${st.internal_errors}`);
  process.stdout.write(`codec ${CODEC}: video ${videoN} packets, audio ${audioN} packets in ${SECONDS} s\n`);

  if (sfu) {
    sfu.child.kill('SIGTERM');
    const code = await new Promise((res) => sfu.child.on('exit', (cde) => res(cde)));
    check('sfu.js exits 0 on SIGTERM', code === 0, `exit ${code}`);
  }
}

main().catch((e) => {
  failed++;
  process.stdout.write(`FAIL selftest crashed: ${e.stack || e}\n`);
}).finally(() => {
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exit(failed === 0 ? 0 : 1);
});

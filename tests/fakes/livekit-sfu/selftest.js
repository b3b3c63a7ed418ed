#!/usr/bin/env node
// Self-check of the fake SFU with an independent receive-only LiveKit client
// (werift + @livekit/protocol), written from the protocol doc rather than
// from sfu.js. Run it inside a loopback-only network namespace:
//
//   unshare -n sh -c 'ip link set lo up; node selftest.js --codec vp8'
//
// Without --url it starts sfu.js itself (same --codec) and stops it at the end.
// Options: --codec vp8|h264|vp9|h265|av1|av1-only, --url http://127.0.0.1:PORT
// (use a running sfu.js started with that --codec), --width/--height (expected
// size), --seconds N (media window), --print-sdp (print the subscription
// offer), --verbose.
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
  LeaveRequest_Action, DisconnectReason, ParticipantInfo_State, ParticipantInfo_Kind, TrackType, TrackSource, SubscriptionError,
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

// The server's video table as the doc gives it (Appendix A.12), written
// down here independently of lib/codecs.js: [mime, pt, fmtp, rtx pt].
const H264F = (pm, plid) => `level-asymmetry-allowed=1;packetization-mode=${pm};profile-level-id=${plid}`;
const SERVER_VIDEO_TABLE = [
  ['video/VP8', 96, '', 97], ['video/VP9', 98, 'profile-id=0', 99], ['video/VP9', 100, 'profile-id=1', 101],
  ['video/H264', 125, H264F(0, '42e01f'), 126], ['video/H264', 108, H264F(1, '42e01f'), 109], ['video/H264', 123, H264F(1, '640032'), 124],
  ['video/H264', 39, H264F(0, '4d001f'), 40], ['video/H264', 106, H264F(1, '4d001f'), 107], ['video/AV1', 35, '', 36], ['video/H265', 116, '', 117],
];
const VIDEO_PT_ORDER = SERVER_VIDEO_TABLE.flatMap(([, pt, , rtx]) => [pt, rtx]);
const AUDIO_PT_ORDER = [111, 63, 0, 8];

// The client's werift PC knows every payload type of the server's table, so
// it can receive whatever one codec its answer keeps; what it keeps is
// decided when the answer is written (Client.mungeAnswer), like webrtcbin
// 1.22, which answers one codec per m-line.
const LOOPBACK_PC = () => ({
  iceServers: [],
  iceUseIpv4: false,
  iceUseIpv6: false,
  iceAdditionalHostAddresses: ['127.0.0.1'],
  iceInterfaceAddresses: { udp4: '127.0.0.1' },
  iceUseTcp: false,
  bundlePolicy: 'max-bundle',
  codecs: {
    video: SERVER_VIDEO_TABLE.flatMap(([mimeType, payloadType, fmtp, rtx]) => [
      new RTCRtpCodecParameters({ mimeType, clockRate: 90000, payloadType, parameters: fmtp || undefined, rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }] }),
      new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000, payloadType: rtx, parameters: `apt=${payloadType}` }),
    ]),
    audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111 })],
  },
});

// The publisher codec per --codec: TrackInfo mime, codecs[] and the PT our
// answer should get media on (null: none).
const CODECS = {
  vp8: { mime: 'video/VP8', codecs: ['video/VP8'], pt: 96, format: 'vp8' },
  h264: { mime: 'video/H264', codecs: ['video/H264'], pt: 108, format: 'h264' },
  vp9: { mime: 'video/VP9', codecs: ['video/VP9'], pt: 98, format: 'vp9' },
  h265: { mime: 'video/H265', codecs: ['video/H265'], pt: 116, format: 'h265' },
  av1: { mime: 'video/AV1', codecs: ['video/AV1', 'video/VP8'], pt: 96, format: 'vp8' },
  'av1-only': { mime: 'video/AV1', codecs: ['video/AV1'], pt: null, format: null },
};
const FORMAT_OF_PT = { 96: 'vp8', 98: 'vp9', 108: 'h264', 116: 'h265' };

function isKeyframe(format, payload) {
  if (payload.length < 3) return false;
  if (format === 'vp8') {
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
  if (format === 'vp9') {
    // Payload descriptor: P (inter-picture predicted) clear, B (start of frame) set.
    return (payload[0] & 0x40) === 0 && (payload[0] & 0x08) !== 0;
  }
  if (format === 'h265') {
    const irap = (t) => t >= 16 && t <= 21;
    const t = (payload[0] >> 1) & 0x3f;
    if (t === 49) return (payload[2] & 0x80) !== 0 && irap(payload[2] & 0x3f);
    if (t === 48) {
      for (let i = 2; i + 2 < payload.length;) {
        const n = payload.readUInt16BE(i);
        if (irap((payload[i + 2] >> 1) & 0x3f)) return true;
        i += 2 + n;
      }
      return false;
    }
    return irap(t);
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

// One media section of an SDP: payload types of the m= line, rtpmap names
// and fmtp lines by PT.
function parseSection(sec) {
  const lines = sec.split(/\r\n/);
  const pts = lines[0].split(' ').slice(3).map(Number);
  const name = new Map();
  const fmtp = new Map();
  for (const l of lines) {
    let m;
    if ((m = /^a=rtpmap:(\d+) ([^/]+)/.exec(l))) name.set(Number(m[1]), m[2]);
    if ((m = /^a=fmtp:(\d+) (.*)$/.exec(l))) fmtp.set(Number(m[1]), m[2]);
  }
  return { lines, pts, name, fmtp, kind: lines[0].slice(2).split(' ')[0], mid: /a=mid:(\S+)/.exec(sec)?.[1] };
}

// Video codecs this client can take, in its default order (no AV1: like
// haven, it has no AV1 depayloader).
const CLIENT_VIDEO = ['video/VP8', 'video/H264', 'video/VP9', 'video/H265'];

class Client {
  // answer: 'track-first' answers each video m-line with the first codec of
  //   the track's TrackInfo.codecs it supports (what a webrtcbin client must
  //   do, Appendix A.12), else its default order; 'first-offered' keeps the
  //   m-line's first codec, whatever the track carries.
  // videoPrefs: instead, the first of these MIME types the m-line offers.
  // stripPlid: write the kept H.264 fmtp the way webrtcbin 1.22 does, without
  //   profile-level-id (Appendix A.13).
  constructor(name, token, query, { answer = 'track-first', videoPrefs = null, stripPlid = false } = {}) {
    this.name = name;
    this.answerMode = answer;
    this.videoPrefs = videoPrefs;
    this.stripPlid = stripPlid;
    this.tracks = new Map(); // track sid -> TrackInfo (from join and updates)
    this.token = token;
    this.claimsSub = decodeJwt(token).claims.sub;
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
    this.connectStarted = Date.now();
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'nodebuffer';
    this.ws.on('message', (d, isBinary) => { this.lastFrameBytes = d.length; this.onMessage(d, isBinary); });
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
    this.messages.push({ kase, value, at: Date.now(), bytes: data.length });
    log(`${this.name} <- ${kase}`);
    const participants = kase === 'join' ? value.otherParticipants : kase === 'update' ? value.participants : [];
    for (const p of participants) for (const t of p.tracks) this.tracks.set(t.sid, t);
    if (kase === 'join') this.setupPc(value);
    if (kase === 'offer') this.offerChain = this.offerChain.then(() => this.answer(value)).catch((e) => { this.answerError = e; log(`answer failed ${e.stack}`); });
    if (kase === 'trickle') this.onServerTrickle(value);
    this.wake();
  }

  setupPc() {
    this.pc = new RTCPeerConnection(LOOPBACK_PC());
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
          if (transceiver.kind === 'video' && isKeyframe(FORMAT_OF_PT[rtp.header.payloadType], rtp.payload)) {
            r.keyframes++;
            r.firstKeyframe ??= Date.now();
          }
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
    this.lastAnswerSdp = this.mungeAnswer(this.pc.localDescription.sdp, offer);
    this.send('answer', new SessionDescription({ type: 'answer', sdp: this.lastAnswerSdp, id: offer.id }));
    this.answersSent++;
    for (const c of this.candidateQueue.splice(0)) this.sendTrickle(c);
  }

  // Which codec to keep on a video m-line (see the constructor).
  chooseVideo(sec, trackInfo) {
    const has = (mime) => sec.pts.filter((pt) => `video/${sec.name.get(pt)}`.toLowerCase() === mime.toLowerCase());
    const pick = (mime) => {
      const pts = has(mime);
      // Our H.264 decoder wants packetization-mode=1, constrained baseline.
      if (mime.toLowerCase() === 'video/h264') return pts.find((pt) => /packetization-mode=1/.test(sec.fmtp.get(pt)) && /42e01f/i.test(sec.fmtp.get(pt)));
      return pts[0];
    };
    if (this.answerMode === 'first-offered') return sec.pts[0];
    const prefs = this.videoPrefs || [
      ...(trackInfo ? trackInfo.codecs.map((c) => c.mimeType).filter((m) => CLIENT_VIDEO.some((x) => x.toLowerCase() === m.toLowerCase())) : []),
      ...CLIENT_VIDEO,
    ];
    for (const mime of prefs) {
      const pt = pick(mime);
      if (pt !== undefined) return pt;
    }
    return undefined;
  }

  // Keep one codec (and its RTX) per video m-line, like webrtcbin 1.22.
  mungeAnswer(sdp, offer) {
    const [head, ...secs] = sdp.split(/\r\n(?=m=)/);
    const out = [head];
    for (const raw of secs) {
      const sec = parseSection(raw);
      if (sec.kind !== 'video' || sec.lines[0].split(' ')[1] === '0') { out.push(raw); continue; }
      const pt = this.chooseVideo(sec, this.tracks.get(offer.midToTrackId[sec.mid]));
      if (pt === undefined) { out.push(raw); continue; }
      const rtx = sec.pts.find((x) => /^rtx$/i.test(sec.name.get(x) || '') && sec.fmtp.get(x) === `apt=${pt}`);
      const keep = new Set([pt, rtx].filter((x) => x !== undefined));
      const lines = [];
      for (const l of sec.lines) {
        if (l.startsWith('m=')) { lines.push([...l.split(' ').slice(0, 3), ...keep].join(' ')); continue; }
        const m = /^a=(rtpmap|fmtp|rtcp-fb):(\d+)/.exec(l);
        if (m && !keep.has(Number(m[2]))) continue;
        if (this.stripPlid && m?.[1] === 'fmtp' && Number(m[2]) === pt && /^H264$/i.test(sec.name.get(pt))) {
          lines.push(`a=fmtp:${pt} packetization-mode=1;level-asymmetry-allowed=1`);
          continue;
        }
        lines.push(l);
      }
      out.push(lines.join('\r\n'));
    }
    return out.join('\r\n');
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

// Every video m-line carries the server's whole table in its fixed order,
// every audio m-line Opus, RED, PCMU, PCMA (Appendix A.12).
function tableProblems(offers) {
  const bad = [];
  for (const o of offers) {
    for (const raw of mediaSections(o.sdp)) {
      const sec = parseSection(raw);
      if (sec.kind === 'video') {
        const fmtpOk = SERVER_VIDEO_TABLE.every(([mime, pt, fmtp, rtx]) => `video/${sec.name.get(pt)}` === mime && (sec.fmtp.get(pt) || '') === fmtp
          && sec.fmtp.get(rtx) === `apt=${pt}`);
        if (sec.pts.join(' ') !== VIDEO_PT_ORDER.join(' ') || !fmtpOk) bad.push(`offer ${o.id} mid ${sec.mid}: ${sec.pts.join(' ')}`);
      } else if (sec.kind === 'audio' && sec.pts.join(' ') !== AUDIO_PT_ORDER.join(' ')) {
        bad.push(`offer ${o.id} audio mid ${sec.mid}: ${sec.pts.join(' ')}`);
      }
    }
  }
  return bad;
}

async function main() {
  let sfu = null;
  if (!BASE) {
    sfu = await startSfu();
    BASE = `http://127.0.0.1:${sfu.port}`;
  }
  log(`sfu at ${BASE}`);
  const PUB = CODECS[CODEC];
  if (!PUB) throw new Error(`unknown --codec ${CODEC}`);
  // av1-only: no client of ours can take the video, so media checks fall
  // back to audio.
  const VIDEO_OK = PUB.pt !== null;
  const MK = VIDEO_OK ? 'video' : 'audio';
  const mint = randomMint();
  const room = `livestream:${mint}:${2000000 + crypto.randomInt(1000)}`;
  const newRoom = () => `livestream:${randomMint()}:${2000000 + crypto.randomInt(1000)}`;
  const q = 'protocol=17&auto_subscribe=0&adaptive_stream=0&sdk=c&version=selftest';
  // Pick the publisher like haven: has tracks, identity without "viewer".
  const pickStreamer = (list) => list.find((p) => p.tracks.length > 0 && /^host-/.test(p.identity));
  const midOf = (sec) => /a=mid:(\S+)/.exec(sec)?.[1];
  const ssrcOf = (sec) => /a=ssrc:(\d+)/.exec(sec)?.[1];
  const subErr = (c, sid, from = 0) => c.waitFor((m) => m.kase === 'subscriptionResponse' && m.value.trackSid === sid, 5000, from);
  const pcSub = (st, identity, sid) => st.pc_states.filter((x) => x.identity === identity && !x.closed).flatMap((x) => x.subscribed).find((x) => x.track_sid === sid);
  const until = async (cond, ms) => { const t0 = Date.now(); while (!cond() && Date.now() - t0 < ms) await sleep(50); return cond(); };

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
  let streamer = pickStreamer(jr.otherParticipants);
  const viewer = jr.otherParticipants.find((p) => /viewer/i.test(p.identity));
  check('join: a streamer with video+audio and a viewer without tracks', streamer && viewer && viewer.tracks.length === 0
    && streamer.state === ParticipantInfo_State.ACTIVE && streamer.tracks.length === 2,
  streamer ? `${streamer.identity} ${streamer.sid}` : 'none');
  const vTrack = streamer.tracks.find((t) => t.type === TrackType.VIDEO);
  const aTrack = streamer.tracks.find((t) => t.type === TrackType.AUDIO);
  check(`video TrackInfo: ${PUB.mime}, codecs [${PUB.codecs.join(', ')}], ${WIDTH}x${HEIGHT}, no simulcast, CAMERA`,
    vTrack.mimeType === PUB.mime && vTrack.codecs.map((c) => c.mimeType).join() === PUB.codecs.join() && vTrack.width === WIDTH && vTrack.height === HEIGHT
    && !vTrack.simulcast && vTrack.source === TrackSource.CAMERA, `${vTrack.mimeType} [${vTrack.codecs.map((c) => c.mimeType)}] ${vTrack.width}x${vTrack.height}`);
  check('audio TrackInfo: audio/opus, MICROPHONE', aTrack.mimeType === 'audio/opus' && aTrack.source === TrackSource.MICROPHONE);

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
  // 15 min token: max(10 min, remaining lifetime) keeps its exp.
  check('refresh_token: valid for max(10 min, remaining lifetime)', rt && rt.claims.exp === decodeJwt(a.token).claims.exp, rt && `${rt.claims.exp - rt.claims.iat} s`);

  // 3. Subscribe to the streamer → second offer with the media m-lines.
  const before = a.messages.length;
  a.send('subscription', new UpdateSubscription({ trackSids: [vTrack.sid, aTrack.sid], subscribe: true }));
  const offer2 = (await a.waitFor((m) => m.kase === 'offer', 5000, before))?.value;
  check('subscription answered by a new offer with id + 1', offer2 && offer2.id === offer1.id + 1, offer2 && `${offer1.id} -> ${offer2.id}`);
  if (PRINT_SDP && offer2) process.stdout.write(`----- offer id=${offer2.id} mid_to_track_id=${JSON.stringify(offer2.midToTrackId)}\n${offer2.sdp}-----\n`);
  const secs2 = mediaSections(offer2.sdp);
  const vSec = secs2.find((s) => s.startsWith('m=video'));
  const aSec = secs2.find((s) => s.startsWith('m=audio'));
  check('offer: m=application first, then video and audio', secs2[0].startsWith('m=application') && vSec && aSec);
  check('offer: mid_to_track_id maps the media mids', offer2.midToTrackId[midOf(vSec)] === vTrack.sid && offer2.midToTrackId[midOf(aSec)] === aTrack.sid, JSON.stringify(offer2.midToTrackId));
  const sid = streamer.sid;
  check('offer: msid and per-SSRC lines carry PA|TR', vSec.includes(`a=msid:${sid}|${vTrack.sid} ${vTrack.sid}`)
    && new RegExp(`a=ssrc:\\d+ msid:${sid}\\|${vTrack.sid} ${vTrack.sid}`).test(vSec) && /a=ssrc-group:FID \d+ \d+/.test(vSec)
    && aSec.includes(`a=msid:${sid}|${aTrack.sid} ${aTrack.sid}`));
  check('offer: sendrecv, actpass, BUNDLE, remb/fir/nack/pli, opus sprop-stereo', /a=sendrecv/.test(vSec) && /a=setup:actpass/.test(vSec)
    && /a=group:BUNDLE/.test(offer2.sdp) && /goog-remb/.test(vSec) && /ccm fir/.test(vSec) && /nack pli/.test(vSec) && /sprop-stereo=1/.test(aSec));
  let bad = tableProblems([offer2]);
  check(`offer: video m-line has the whole table in the fixed order (VP8, VP9 x2, H.264 125/108/123/39/106, AV1, H.265, each + RTX) for a ${PUB.mime} track`,
    bad.length === 0, bad.join('; ') || parseSection(vSec).pts.join(' '));
  check('later offer carries its candidates inline', /a=candidate:/.test(offer2.sdp) && /a=end-of-candidates/.test(offer2.sdp));
  if (!VIDEO_OK) {
    const e = await subErr(a, vTrack.sid);
    check('AV1 without a backup: the video subscription fails with SE_CODEC_UNSUPPORTED', e && e.value.err === SubscriptionError.SE_CODEC_UNSUPPORTED);
  }

  // 4. Media.
  const t0 = Date.now();
  while (Date.now() - t0 < 10000 && !((!VIDEO_OK || a.count('video') > 0) && a.count('audio') > 0)) await sleep(50);
  check('subscriber PC connected, both data channels open', a.pcState === 'connected' && a.dataChannels._reliable === 'open' && a.dataChannels._lossy === 'open', `${a.pcState} ${JSON.stringify(a.dataChannels)}`);
  const active = await a.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.identity === sub && p.state === ParticipantInfo_State.ACTIVE), 3000);
  check('own participant becomes ACTIVE', !!active);
  const v0 = a.count('video');
  const a0 = a.count('audio');
  await sleep(SECONDS * 1000);
  const videoN = a.count('video') - v0;
  const audioN = a.count('audio') - a0;
  const vStats = a.rtp[vTrack.sid] || { pts: new Set(), keyframes: 0 };
  if (VIDEO_OK) {
    check(`video packets in ${SECONDS} s >= ${MIN_VIDEO}`, videoN >= MIN_VIDEO, `${videoN}`);
    check(`video PT is ${PUB.pt} and keyframes arrive`, vStats.pts.size === 1 && vStats.pts.has(PUB.pt) && vStats.keyframes >= 1, `pts=${[...vStats.pts]} keyframes=${vStats.keyframes}`);
    // Keyframes come every 2 s; one well within that means the keyframe
    // request on subscribe/connect reached the encoder (Appendix A.11).
    const kfMs = vStats.firstKeyframe - vStats.first;
    check('the first keyframe follows the first video packet within 700 ms (keyframe request reached the encoder)', kfMs <= 700, `${kfMs} ms`);
  } else {
    check('AV1 without a backup: no video packets', a.count('video') === 0, `${a.count('video')}`);
  }
  check(`audio packets in ${SECONDS} s >= ${MIN_AUDIO}`, audioN >= MIN_AUDIO, `${audioN}`);
  check('audio PT is 111', a.rtp[aTrack.sid]?.pts.has(111));
  let st = await stats();
  const boundV = pcSub(st, sub, vTrack.sid);
  if (CODEC === 'av1') {
    check('AV1 with a VP8 backup: bound to the backup (video/VP8/96)', boundV?.codec === 'video/VP8/96' && boundV.backup === true && boundV.sendable, JSON.stringify(boundV));
  } else if (VIDEO_OK) {
    check(`stats: video bound to ${PUB.mime}/${PUB.pt}`, boundV?.codec === `${PUB.mime}/${PUB.pt}` && !boundV.backup, JSON.stringify(boundV));
  }

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
  await vRecv.receiver.sendRtcpPLI(vStats.lastSsrc || 1);
  await sleep(300);
  st = await stats();
  check('PLI from the client is counted', st.plis_received >= 1, `plis_received=${st.plis_received}`);
  check('stats: joins/answers/candidates/pings/subscriptions/rtp',
    st.joins >= 1 && st.answers >= 2 && st.client_candidates >= 1 && st.pings >= 2 && st.subscriptions.some((s) => s.identity === sub && s.subscribe)
    && st.rtp_packets_forwarded[MK] > 0 && st.rtp_packets_forwarded.audio > 0 && st.query.some((x) => x.protocol === '17' && x.auto_subscribe === '0'),
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
  const mAfter = a.count(MK);
  await sleep(1000);
  check('streamer leave: RTP stops', a.count(MK) - mAfter <= 2, `${a.count(MK) - mAfter} ${MK} packets after leave`);

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
    && ssrcOf(vSec4) !== ssrcOf(vSec) && secs4.length === secs2.length);
  const mBefore = a.count(MK);
  await sleep(2500);
  check(`resubscribe: ${MK} flows again`, a.count(MK) - mBefore >= 20, `${a.count(MK) - mBefore} packets in 2.5 s`);
  bad = tableProblems(a.offers);
  check('every offer so far (re-offers, recvonly and reused m-lines too) lists the whole codec table in order', bad.length === 0, bad.join('; '));
  log(`after resubscribe: client rtp ${JSON.stringify(Object.fromEntries(Object.entries(a.rtp).map(([k, x]) => [k, { count: x.count, ssrcs: [...x.ssrcs] }])))}`);

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
  const room2 = newRoom();
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
  await until(() => (!VIDEO_OK || e.count('video') > 30) && e.count('audio') > 10, 8000);
  check('auto_subscribe=1: media flows without a subscription request', (!VIDEO_OK || e.count('video') > 30) && e.count('audio') > 10, `video ${e.count('video')} audio ${e.count('audio')}`);
  mark = e.messages.length;
  await control('/__sfu/streamer/join'); // rejoin = leave + join
  const eo2 = await e.waitFor((m) => m.kase === 'offer' && Object.keys(m.value.midToTrackId).length === 2, 5000, mark);
  check('browser=Safari: rejoined tracks get new m-lines (no reuse)', eo2 && mediaSections(eo2.value.sdp).length === 5
    && Object.keys(eo2.value.midToTrackId).every((mid) => !(mid in eo.midToTrackId)), eo2 && JSON.stringify(eo2.value.midToTrackId));
  const me = e.count(MK);
  await sleep(2000);
  check(`browser=Safari: ${MK} flows on the new m-line`, e.count(MK) - me >= 20, `${e.count(MK) - me} packets in 2 s`);
  e.close();

  // 14. A client that cannot take the publisher's codec gets
  // subscription_response{SE_CODEC_UNSUPPORTED} (Appendix A.5).
  const other = ['video/VP9', 'video/H265'].find((m) => !PUB.codecs.includes(m));
  const f = new Client('F', viewerToken(room), q, { videoPrefs: [other] });
  await f.connect();
  const fj = (await f.waitFor((m) => m.kase === 'join', 5000))?.value;
  const fv = pickStreamer(fj.otherParticipants).tracks.find((t) => t.type === TrackType.VIDEO);
  await f.waitFor((m) => m.kase === 'offer', 3000);
  f.send('subscription', new UpdateSubscription({ trackSids: [fv.sid], subscribe: true }));
  const fe = await subErr(f, fv.sid);
  check(`codec the answer lacks (${other} only): subscription_response SE_CODEC_UNSUPPORTED`, fe && fe.value.err === SubscriptionError.SE_CODEC_UNSUPPORTED);
  f.send('subscription', new UpdateSubscription({ trackSids: ['TR_doesnotexist'], subscribe: true }));
  const fn = await subErr(f, 'TR_doesnotexist');
  check('unknown track: subscription_response SE_TRACK_NOTFOUND', fn && fn.value.err === SubscriptionError.SE_TRACK_NOTFOUND);
  f.close();

  // 15. Codec binding (Appendix A.12, A.13).
  {
    const rm = newRoom();
    // A webrtcbin-like client that keeps the m-line's first codec (VP8)
    // whatever the track carries.
    const g = new Client('G', viewerToken(rm), q, { answer: 'first-offered' });
    await g.connect();
    const gv = pickStreamer((await g.waitFor((m) => m.kase === 'join', 5000)).value.otherParticipants).tracks.find((t) => t.type === TrackType.VIDEO);
    await g.waitFor((m) => m.kase === 'offer', 3000);
    let from = g.messages.length;
    g.send('subscription', new UpdateSubscription({ trackSids: [gv.sid], subscribe: true }));
    const vp8ok = PUB.codecs.includes('video/VP8');
    if (vp8ok) {
      await until(() => g.count('video') > 10, 6000);
      check('client keeping the first offered codec (VP8): bound, media flows', g.count('video') > 10 && !g.messages.some((m) => m.kase === 'subscriptionResponse'), `${g.count('video')} packets`);
    } else {
      const ge = await subErr(g, gv.sid, from);
      check(`client keeping the first offered codec (VP8) for a ${PUB.mime} track: SE_CODEC_UNSUPPORTED`, ge && ge.value.err === SubscriptionError.SE_CODEC_UNSUPPORTED);
    }
    g.close();
    // H.264 kept without profile-level-id, as webrtcbin 1.22 writes it.
    const h = new Client('H', viewerToken(rm), q, { videoPrefs: ['video/H264'], stripPlid: true });
    await h.connect();
    await h.waitFor((m) => m.kase === 'offer', 5000);
    const before264 = (await stats()).h264_answers_without_plid;
    from = h.messages.length;
    h.send('subscription', new UpdateSubscription({ trackSids: [gv.sid], subscribe: true }));
    const he = await subErr(h, gv.sid, from);
    st = await stats();
    check('H.264 answer without profile-level-id: not kept, SE_CODEC_UNSUPPORTED, counted in h264_answers_without_plid',
      he && he.value.err === SubscriptionError.SE_CODEC_UNSUPPORTED && st.h264_answers_without_plid > before264, `h264_answers_without_plid=${st.h264_answers_without_plid}`);
    h.close();
    if (CODEC === 'av1') {
      // A client that keeps AV1 itself: bound, but the fake has no AV1 RTP.
      const k = new Client('K', viewerToken(rm), q, { videoPrefs: ['video/AV1'] });
      await k.connect();
      await k.waitFor((m) => m.kase === 'offer', 5000);
      k.send('subscription', new UpdateSubscription({ trackSids: [gv.sid], subscribe: true }));
      await sleep(2500);
      st = await stats();
      const kb = pcSub(st, k.claimsSub, gv.sid) || st.pc_states.filter((x) => !x.closed).flatMap((x) => x.subscribed).find((x) => x.track_sid === gv.sid && x.codec === 'video/AV1/35');
      check('answer keeping AV1: bound to video/AV1/35, nothing sent, counted in unsendable_binds', kb && kb.codec === 'video/AV1/35' && !kb.sendable && k.count('video') === 0 && st.unsendable_binds >= 1,
        `${JSON.stringify(kb)} packets=${k.count('video')}`);
      k.close();
    }
  }

  // 16. Screen share: a second video track (SCREEN_SHARE) and its audio.
  {
    const rm = newRoom();
    const s1 = new Client('S', viewerToken(rm), q);
    await s1.connect();
    const sj = (await s1.waitFor((m) => m.kase === 'join', 5000)).value;
    const host = pickStreamer(sj.otherParticipants);
    await s1.waitFor((m) => m.kase === 'offer', 3000);
    let from = s1.messages.length;
    check('screen on: control ok', (await control('/__sfu/streamer/screen', { on: true, room: rm })).ok);
    const up = await s1.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.sid === host.sid && p.tracks.length === 4), 20000, from);
    const host2 = up && up.value.participants.find((p) => p.sid === host.sid);
    const sv = host2?.tracks.find((t) => t.source === TrackSource.SCREEN_SHARE);
    const sa = host2?.tracks.find((t) => t.source === TrackSource.SCREEN_SHARE_AUDIO);
    check('screen on: update (same streamer, version bumped) with a SCREEN_SHARE video 640x360 VP8 "screen" and a SCREEN_SHARE_AUDIO opus track',
      sv && sa && sv.type === TrackType.VIDEO && sv.width === 640 && sv.height === 360 && sv.mimeType === 'video/VP8' && sv.name === 'screen' && sv.stream === 'screen'
      && sa.type === TrackType.AUDIO && sa.mimeType === 'audio/opus' && host2.version > host.version, host2 && host2.tracks.map((t) => `${t.name}:${t.source}`).join(' '));
    from = s1.messages.length;
    s1.send('subscription', new UpdateSubscription({ trackSids: [sv.sid, sa.sid], subscribe: true }));
    const so = (await s1.waitFor((m) => m.kase === 'offer', 5000, from))?.value;
    check('screen share: subscribing adds a video and an audio m-line', so && Object.values(so.midToTrackId).includes(sv.sid) && Object.values(so.midToTrackId).includes(sa.sid));
    await until(() => s1.rtp[sv.sid]?.count > 15 && s1.rtp[sa.sid]?.count > 25, 10000);
    const svr = s1.rtp[sv.sid];
    check('screen share: VP8 (PT 96) with keyframes, and audio, flow', svr && svr.count > 15 && svr.pts.has(96) && svr.keyframes >= 1 && s1.rtp[sa.sid]?.count > 25,
      `video ${svr?.count} keyframes ${svr?.keyframes} audio ${s1.rtp[sa.sid]?.count}`);
    st = await stats();
    check('stats.media.sources: screen 640x360@15 and screen_audio 1250 Hz running', st.media.sources.screen.running && st.media.sources.screen.width === 640
      && st.media.sources.screen_audio.running && st.media.sources.screen_audio.freq_hz === 1250 && st.media.sources.microphone.freq_hz === 440);
    from = s1.messages.length;
    await control('/__sfu/streamer/screen', { on: false, room: rm });
    const off = await s1.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.sid === host.sid && p.tracks.length === 2), 3000, from);
    const oo = (await s1.waitFor((m) => m.kase === 'offer', 3000, from))?.value;
    const screenMids = Object.entries(so.midToTrackId).filter(([, t]) => t === sv.sid || t === sa.sid).map(([m]) => m);
    const ooSecs = oo ? mediaSections(oo.sdp).filter((x) => screenMids.includes(midOf(x))) : [];
    check('screen off: update without the screen tracks, then their m-lines recvonly without msid/ssrc', off && ooSecs.length === 2
      && ooSecs.every((x) => /a=recvonly/.test(x) && !/a=msid:/.test(x) && !/a=ssrc:/.test(x)));
    s1.close();
  }

  // 17. A guest on stage: a second publisher the client must not take.
  {
    const rm = newRoom();
    const h1 = new Client('GU', viewerToken(rm), q);
    await h1.connect();
    await h1.waitFor((m) => m.kase === 'offer', 5000);
    const from = h1.messages.length;
    const gid = `guest-${crypto.randomBytes(4).toString('hex')}`;
    const gr = await control('/__sfu/guest/join', { identity: gid, width: 1920, height: 1080, room: rm });
    const gup = await h1.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.identity === gid && p.tracks.length === 2), 3000, from);
    const gp = gup?.value.participants.find((p) => p.identity === gid);
    const gcam = gp?.tracks.find((t) => t.type === TrackType.VIDEO);
    check('guest join: announced (ACTIVE, STANDARD, own PA_ sid), then a 1920x1080 camera and a microphone', gr.ok && gp && gp.sid.startsWith('PA_')
      && gp.state === ParticipantInfo_State.ACTIVE && gp.kind === ParticipantInfo_Kind.STANDARD && gcam.width === 1920 && gcam.height === 1080
      && gcam.source === TrackSource.CAMERA && h1.messages.slice(from).some((m) => m.kase === 'update' && m.value.participants.some((p) => p.identity === gid && p.tracks.length === 0)),
    gp && `${gp.sid} ${gcam?.width}x${gcam?.height}`);
    // Someone with auto_subscribe=1 gets the guest's tracks as well.
    const h2 = new Client('GV', viewerToken(rm), 'protocol=17&auto_subscribe=1');
    await h2.connect();
    const h2j = (await h2.waitFor((m) => m.kase === 'join', 5000)).value;
    const h2o = (await h2.waitFor((m) => m.kase === 'offer', 5000))?.value;
    check('guest: in a later JoinResponse and Room.num_participants; an auto-subscriber gets its tracks too',
      h2j.otherParticipants.some((p) => p.identity === gid) && h2j.room.numParticipants === 5 && h2o && gp.tracks.every((t) => Object.values(h2o.midToTrackId).includes(t.sid)),
    `num_participants=${h2j.room.numParticipants} mids=${JSON.stringify(h2o?.midToTrackId)}`);
    h2.close();
    st = await stats();
    check('stats: the guest in rooms[].guests; no subscription of the first client names a guest track',
      st.rooms.find((x) => x.name === rm)?.guests.some((x) => x.identity === gid && x.tracks.length === 2)
      && !st.subscriptions.some((x) => x.identity === h1.claimsSub && x.track_sids.some((t) => gp.tracks.some((y) => y.sid === t)))); 
    const from2 = h1.messages.length;
    await control('/__sfu/guest/leave', { identity: gid, room: rm });
    const gl = await h1.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.identity === gid && p.state === ParticipantInfo_State.DISCONNECTED), 3000, from2);
    check('guest leave: update with state DISCONNECTED', !!gl);
    h1.close();
  }

  // 18. Republish: the same streamer (same PA_ sid) unpublishes and publishes
  // a new video track; the client resubscribes on the same signalling
  // connection and the dormant mid is reused with a new SSRC.
  {
    const rm = newRoom();
    const i1 = new Client('R', viewerToken(rm), q);
    await i1.connect();
    const host = pickStreamer((await i1.waitFor((m) => m.kase === 'join', 5000)).value.otherParticipants);
    await i1.waitFor((m) => m.kase === 'offer', 3000);
    let from = i1.messages.length;
    i1.send('subscription', new UpdateSubscription({ trackSids: host.tracks.map((t) => t.sid), subscribe: true }));
    const ro = (await i1.waitFor((m) => m.kase === 'offer', 5000, from))?.value;
    const rv = host.tracks.find((t) => t.type === TrackType.VIDEO);
    const ra = host.tracks.find((t) => t.type === TrackType.AUDIO);
    const rvSec = mediaSections(ro.sdp).find((x) => ro.midToTrackId[midOf(x)] === rv.sid);
    const raSec = mediaSections(ro.sdp).find((x) => ro.midToTrackId[midOf(x)] === ra.sid);
    await until(() => i1.count(MK) > 20, 8000);
    const upgrades0 = (await stats()).upgrades;
    from = i1.messages.length;
    const rr = await control('/__sfu/streamer/republish', { kinds: ['video'], delay_ms: 300, room: rm });
    const unpub = await i1.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.sid === host.sid && p.tracks.length === 1), 3000, from);
    const dormant = (await i1.waitFor((m) => m.kase === 'offer', 3000, from))?.value;
    const dSec = dormant && mediaSections(dormant.sdp).find((x) => midOf(x) === midOf(rvSec));
    const repub = await i1.waitFor((m) => m.kase === 'update' && m.value.participants.some((p) => p.sid === host.sid && p.tracks.length === 2), 3000, from);
    const nv = repub?.value.participants.find((p) => p.sid === host.sid).tracks.find((t) => t.type === TrackType.VIDEO);
    check('republish: same PA_ sid unpublishes the video (update, then its m-line recvonly), then a new video TR_ sid after delay_ms',
      rr.republished === 1 && unpub && dSec && /a=recvonly/.test(dSec) && !/a=ssrc:/.test(dSec) && nv && nv.sid !== rv.sid
      && nv.mimeType === PUB.mime && nv.source === TrackSource.CAMERA && repub.at - unpub.at >= 250, nv && `${rv.sid} -> ${nv.sid}, ${repub.at - unpub.at} ms`);
    from = i1.messages.length;
    i1.send('subscription', new UpdateSubscription({ trackSids: [nv.sid], subscribe: true }));
    const no = (await i1.waitFor((m) => m.kase === 'offer', 5000, from))?.value;
    const nSec = no && mediaSections(no.sdp).find((x) => no.midToTrackId[midOf(x)] === nv.sid);
    const naSec = no && mediaSections(no.sdp).find((x) => midOf(x) === midOf(raSec));
    check('republish: resubscribing by sid reuses the dormant video mid with a new SSRC; audio untouched', nSec && midOf(nSec) === midOf(rvSec)
      && ssrcOf(nSec) !== ssrcOf(rvSec) && naSec && ssrcOf(naSec) === ssrcOf(raSec) && mediaSections(no.sdp).length === mediaSections(ro.sdp).length,
    nSec && `mid ${midOf(nSec)} ssrc ${ssrcOf(rvSec)} -> ${ssrcOf(nSec)}`);
    if (VIDEO_OK) {
      const newSsrc = Number(ssrcOf(nSec));
      await until(() => i1.rtp[nv.sid]?.ssrcs.has(newSsrc) && i1.rtp[nv.sid].count > 20, 6000);
      check('republish: video flows on the new SSRC', i1.rtp[nv.sid]?.ssrcs.has(newSsrc) && i1.rtp[nv.sid].count > 20, `${i1.rtp[nv.sid]?.count} packets`);
    }
    st = await stats();
    check('republish: no new signalling connection (stats.upgrades unchanged), stats.republishes counted', st.upgrades === upgrades0 && st.republishes >= 1,
      `upgrades ${upgrades0} -> ${st.upgrades}, republishes ${st.republishes}`);
    i1.close();
    // browser=Safari: no reuse, the republished tracks get new m-lines.
    const j1 = new Client('RS', viewerToken(rm), 'protocol=17&auto_subscribe=1&browser=Safari');
    await j1.connect();
    const jo = (await j1.waitFor((m) => m.kase === 'offer', 5000))?.value;
    from = j1.messages.length;
    await control('/__sfu/streamer/republish', { kinds: ['video', 'audio'], delay_ms: 300, room: rm });
    const jo2 = await j1.waitFor((m) => m.kase === 'offer' && Object.keys(m.value.midToTrackId).length === 2, 5000, from);
    const fps = new Set([...jo2.value.sdp.matchAll(/a=fingerprint:(.*)/g)].map((m) => m[1].trim()));
    check('republish with browser=Safari: one DTLS fingerprint on every m-line of the offer', fps.size === 1, [...fps].join(' | '));
    check('republish with browser=Safari: the new tracks get new m-lines', jo2 && mediaSections(jo2.value.sdp).length === 5
      && Object.keys(jo2.value.midToTrackId).every((mid) => !(mid in jo.midToTrackId)), jo2 && JSON.stringify(jo2.value.midToTrackId));
    j1.close();
  }

  // 19. A big room: 30,000 silent viewers in JoinResponse.other_participants (A.14).
  {
    check('config extra_participants 30000', (await control('/__sfu/config', { extra_participants: 30000 })).ok);
    const rm = newRoom();
    const l = new Client('BIG', viewerToken(rm), q);
    const tc = Date.now();
    await l.connect();
    const lj = await l.waitFor((m) => m.kase === 'join', 10000);
    const ms = lj && lj.at - tc;
    const others = lj?.value.otherParticipants || [];
    const extra = others.filter((p) => /^[0-9a-f]{8}-viewer$/.test(p.identity));
    const x = extra[extra.length - 1];
    check('big room: JoinResponse with 30,000 extra viewers decodes (one binary message)', extra.length === 30000 && lj.value.room.numParticipants === 30003
      && new Set(extra.map((p) => p.sid)).size === 30000 && new Set(extra.map((p) => p.identity)).size === 30000,
    `${lj?.bytes} bytes, ${others.length} others, num_participants ${lj?.value.room.numParticipants}, ${ms} ms`);
    check('big room: the extra viewers look real (PA_ sid, name, ACTIVE, viewer metadata, canSubscribe, joined_at, ~100 bytes each)', x && /^PA_[0-9A-Za-z]{12}$/.test(x.sid)
      && x.name === x.identity && x.state === ParticipantInfo_State.ACTIVE && x.metadata === '{"anon":true,"role":"viewer"}' && x.permission?.canSubscribe
      && x.joinedAt > 0n && x.joinedAtMs > 0n && x.version >= 1 && x.kind === ParticipantInfo_Kind.STANDARD && lj.bytes / 30000 > 90 && lj.bytes / 30000 < 120);
    const lo = await l.waitFor((m) => m.kase === 'offer', 5000);
    check('big room: the session goes on (first offer arrives)', !!lo);
    st = await stats();
    check('stats.last_join_bytes is the JoinResponse size', Math.abs(st.last_join_bytes - lj.bytes) === 0, `${st.last_join_bytes}`);
    process.stdout.write(`big room: JoinResponse ${lj?.bytes} bytes for 30000 extra viewers, join after ${ms} ms\n`);
    l.close();
    await control('/__sfu/config', { extra_participants: 0 });
  }

  // 20. No server data channels: an offer without any m-line.
  {
    await control('/__sfu/config', { data_channels: false });
    const rm = newRoom();
    const n1 = new Client('NODC', viewerToken(rm), q);
    await n1.connect();
    const host = pickStreamer((await n1.waitFor((m) => m.kase === 'join', 5000)).value.otherParticipants);
    const no = (await n1.waitFor((m) => m.kase === 'offer', 5000))?.value;
    check('data_channels false: first offer has no m-line, still v=/o=/s=/t= (valid SDP)', no && mediaSections(no.sdp).length === 0
      && /^v=0\r\no=\S+ \d+ \d+ IN IP4 \S+\r\ns=\S*\r\nt=0 0\r\n/.test(no.sdp), no && JSON.stringify(no.sdp));
    const from = n1.messages.length;
    n1.send('subscription', new UpdateSubscription({ trackSids: host.tracks.map((t) => t.sid), subscribe: true }));
    const no2 = (await n1.waitFor((m) => m.kase === 'offer', 5000, from))?.value;
    check('data_channels false: the subscription offer has the media m-lines and no m=application', no2 && mediaSections(no2.sdp).length === 2
      && !/m=application/.test(no2.sdp));
    const no2At = n1.messages.findIndex((m) => m.value === no2);
    const fin = await n1.waitFor((m) => m.kase === 'trickle' && m.value.final, 5000, from);
    check('data_channels false: that offer starts ICE like a first offer: no candidates inline, trickles only after it, the last one final',
      !/a=candidate:/.test(no2.sdp) && !n1.messages.slice(from, no2At).some((m) => m.kase === 'trickle') && fin && n1.messages.indexOf(fin) > no2At);
    await until(() => n1.count(MK) > 20, 8000);
    st = await stats();
    const ps = st.pc_states.find((x) => x.identity === n1.claimsSub && !x.closed);
    check('data_channels false: media flows, "established" = PC connected', n1.count(MK) > 20 && ps?.established && Object.keys(ps.data_channels).length === 0,
      `${n1.count(MK)} packets, ${JSON.stringify(ps && { established: ps.established, dc: ps.data_channels })}`);
    n1.close();
    await control('/__sfu/config', { data_channels: true });
  }

  // 21. ICE servers announced in the JoinResponse; refresh token lifetime.
  {
    const ice = [{ urls: ['turns:turn.example.com:443?transport=tcp'], username: 'u', credential: 'c' }];
    await control('/__sfu/config', { ice_servers: ice, refresh_ttl_s: 120 });
    const m1 = new Client('ICE', viewerToken(room), q);
    await m1.connect();
    const mj = (await m1.waitFor((m) => m.kase === 'join', 5000))?.value;
    const is = mj?.iceServers || [];
    check('ice_servers: sent as JoinResponse.ice_servers', is.length === 1 && is[0].urls.join() === ice[0].urls.join() && is[0].username === 'u' && is[0].credential === 'c');
    const mr = await m1.waitFor((m) => m.kase === 'refreshToken', 3000);
    const mc = mr && decodeJwt(mr.value).claims;
    check('refresh_ttl_s 120: refresh tokens valid for 120 s', mc && mc.exp - mc.iat === 120, mc && `${mc.exp - mc.iat} s`);
    m1.close();
    await control('/__sfu/config', { ice_servers: [], refresh_ttl_s: null });
  }

  // 22. /__sfu/revoke: earlier tokens (pump.fun's and refresh tokens) get 401.
  {
    const tok = viewerToken(room);
    const o1 = new Client('REV', tok, q);
    await o1.connect();
    const or = await o1.waitFor((m) => m.kase === 'refreshToken', 3000);
    o1.close();
    check('revoke: control ok', (await control('/__sfu/revoke')).ok);
    const r1 = await upgradeStatus(`access_token=${tok}&${q}`);
    const r2 = await upgradeStatus(`access_token=${or?.value}&${q}`);
    const r3 = await upgradeStatus(`access_token=${viewerToken(room)}&${q}`);
    check('revoke: the earlier token and the refresh token get 401 "token revoked", a new token joins',
      r1.status === 401 && r1.body === 'token revoked' && r2.status === 401 && r2.body === 'token revoked' && r3.status === 101, `${r1.status} ${r1.body} / ${r2.status} / ${r3.status}`);
  }

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

#!/usr/bin/env node
// Fake LiveKit SFU for haven's tests: v0 signalling (/rtc, binary protobuf via
// @livekit/protocol), one SUBSCRIBER peer connection per client (werift), real
// VP8/VP9/H.264/H.265 + Opus from gst-launch-1.0 (or, with --pattern flash, from
// one hv-flashbeep process: flashes and beeps in sync). Loopback only. See README.md.
import fs from 'node:fs';
import http from 'node:http';
import { resolve as resolvePath } from 'node:path';
import { WebSocketServer } from 'ws';
import { LeaveRequest, LeaveRequest_Action, DisconnectReason, SignalResponse } from '@livekit/protocol';
import crypto from 'node:crypto';
import { verifyHS256 } from './lib/jwt.js';
import { MediaHub } from './lib/media.js';
import { Room, guid } from './lib/room.js';
import { VIDEO_CODEC_NAMES } from './lib/codecs.js';
import { Session, SPOIL_MODES } from './lib/session.js';

const USAGE = `usage: node sfu.js [--port 0] [--host 127.0.0.1] [--codec vp8|h264|vp9|h265|av1|av1-only]
       [--width 1280] [--height 720] [--fps 30] [--bitrate-kbps 2000] [--keyframe-interval 60]
       [--pattern smpte|ball|flash|<videotestsrc pattern>] [--flashbeep PATH]
       [--media-direction sendrecv|sendonly] [--screen-share] [--extra-participants 0]
       [--ping-interval 5] [--ping-timeout 15] [--publish-delay-ms 0]
       [--token-refresh-s 300] [--join-timeout-s 60] [--negotiation-timeout-s 15]
       [--api-key devkey] [--api-secret secret] [--verbose]
--pattern flash: white flash + 1 kHz beep at every whole second, in sync, from
  one hv-flashbeep process (--flashbeep PATH, default $HAVEN_FLASHBEEP; built as
  build/tests/tools/hv-flashbeep). Measure a recording with hv-avprobe.`;

function parseArgs(argv) {
  const o = {
    port: 0, host: '127.0.0.1', codec: 'vp8', width: 1280, height: 720, fps: 30, bitrateKbps: 2000,
    keyframeInterval: 60, pattern: 'smpte', mediaDirection: 'sendrecv', pingInterval: 5, pingTimeout: 15,
    publishDelayMs: 0, tokenRefreshS: 300, joinTimeoutS: 60, negotiationTimeoutS: 15,
    apiKey: 'devkey', apiSecret: 'secret', verbose: false, flashbeep: process.env.HAVEN_FLASHBEEP || null,
    screenShare: false, extraParticipants: 0,
  };
  const ints = {
    '--port': 'port', '--width': 'width', '--height': 'height', '--fps': 'fps', '--bitrate-kbps': 'bitrateKbps',
    '--keyframe-interval': 'keyframeInterval', '--ping-interval': 'pingInterval', '--ping-timeout': 'pingTimeout',
    '--publish-delay-ms': 'publishDelayMs', '--token-refresh-s': 'tokenRefreshS', '--join-timeout-s': 'joinTimeoutS',
    '--negotiation-timeout-s': 'negotiationTimeoutS', '--extra-participants': 'extraParticipants',
  };
  const strs = {
    '--host': 'host', '--codec': 'codec', '--pattern': 'pattern', '--media-direction': 'mediaDirection', '--api-key': 'apiKey', '--api-secret': 'apiSecret',
    '--flashbeep': 'flashbeep',
  };
  const die = (msg) => { process.stderr.write(`sfu.js: ${msg}\n${USAGE}\n`); process.exit(2); };
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    let v;
    if (a.includes('=')) [a, v] = [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)];
    if (a === '--verbose' || a === '-v') { o.verbose = true; continue; }
    if (a === '--screen-share') { o.screenShare = true; continue; }
    if (a === '--help' || a === '-h') { process.stdout.write(`${USAGE}\n`); process.exit(0); }
    if (!(a in ints) && !(a in strs)) die(`unknown option ${a}`);
    if (v === undefined) { v = argv[++i]; if (v === undefined) die(`${a} needs a value`); }
    if (a in ints) {
      if (!/^\d+$/.test(v)) die(`${a} needs a non-negative integer`);
      o[ints[a]] = Number(v);
    } else {
      o[strs[a]] = v;
    }
  }
  if (!VIDEO_CODEC_NAMES.includes(o.codec)) die(`--codec must be one of ${VIDEO_CODEC_NAMES.join(', ')}`);
  if (!['sendrecv', 'sendonly'].includes(o.mediaDirection)) die('--media-direction must be sendrecv or sendonly');
  // Loopback only, like tests/fakes/fake_pumpfun.py: the media path is
  // 127.0.0.1-only anyway, so a wildcard listener would only be a hazard.
  if (!/^127\.\d+\.\d+\.\d+$/.test(o.host) && o.host !== '::1' && o.host !== 'localhost') die(`--host must be a loopback address, not ${o.host}`);
  if (o.width < 16 || o.height < 16 || o.fps < 1) die('bad --width/--height/--fps');
  if (o.pingInterval < 1 || o.pingTimeout < 1) die('ping interval/timeout must be >= 1');
  if (o.pattern === 'flash') {
    if (!o.flashbeep) die('--pattern flash needs the hv-flashbeep program: pass --flashbeep PATH or set HAVEN_FLASHBEEP (build it with ninja -C build tests/tools/hv-flashbeep)');
    // Absolute, so the check and the spawn (setpriv execvp) find the same file.
    o.flashbeep = resolvePath(o.flashbeep);
    try {
      fs.accessSync(o.flashbeep, fs.constants.X_OK);
    } catch {
      die(`--flashbeep ${o.flashbeep}: not an executable file`);
    }
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...a) => { if (opts.verbose) process.stderr.write(`[sfu ${new Date().toISOString().slice(11, 23)}] ${a.join(' ')}\n`); };

function defaultConfig() {
  return {
    publish_delay_ms: opts.publishDelayMs,
    refuse: false,
    ping_interval: opts.pingInterval,
    ping_timeout: opts.pingTimeout,
    token_refresh_s: opts.tokenRefreshS,
    join_timeout_s: opts.joinTimeoutS,
    negotiation_timeout_s: opts.negotiationTimeoutS,
    // Fault injection, for sessions that join afterwards (README "Control API").
    ice_blackhole: false,
    reject_offers: '',
    token_leeway_s: 60,
    // For rooms created / sessions joining afterwards (README "Control API").
    extra_participants: opts.extraParticipants,
    data_channels: true,
    ice_servers: [],
    refresh_ttl_s: null, // null: LiveKit's max(10 min, remaining lifetime)
  };
}

function freshStats() {
  return {
    clients: 0, joins: 0, answers: 0, client_candidates: 0, subscriptions: [], pings: 0, leaves_received: 0,
    rtp_packets_forwarded: { video: 0, audio: 0 }, video_frames_forwarded: 0, query: [], pc_states: [],
    // extras
    upgrades: 0, rejected_upgrades: {}, resumes_refused: 0, offers: 0, answer_id_mismatches: 0, answer_id_zero: 0,
    answers_unexpected: 0, answer_errors: 0, server_candidates: 0, client_candidates_added: 0,
    client_candidates_ignored: 0, ping_reqs: 0, legacy_pings: 0, leaves_sent: 0, refresh_tokens_sent: 0,
    subscription_errors: 0, track_settings: [], plis_received: 0, transceivers_reused: 0, join_timeouts: 0,
    negotiation_timeouts: 0, data_channel_timeouts: 0, transport_failures: 0, bad_frames: 0, publisher_offers: 0,
    data_messages_received: 0, drops: 0, duplicate_identity_evictions: 0, internal_errors: 0,
    messages_sent: {}, messages_received: {},
    client_candidates_blackholed: 0, spoiled_offers: 0, tokens: [],
    h264_answers_without_plid: 0, unsendable_binds: 0, republishes: 0, last_join_bytes: 0, revocations: 0,
  };
}

// Token signatures, for /__sfu/revoke: the tokens seen at an upgrade or
// /rtc/validate, and the refresh tokens issued.
const tokenKey = (tok) => String(tok).split('.')[2] || String(tok);
function freshTokenState() {
  return { seen: new Set(), revoked: new Set(), revokedBeforeS: null };
}

const sfu = {
  opts,
  log,
  config: defaultConfig(),
  stats: freshStats(),
  nodeId: guid('ND_'),
  rooms: new Map(),
  sessions: new Set(),
  closedSessions: [],
  lastOffer: null,
  lastAnswer: null,
  hub: null,
  // Screen share for rooms created afterwards (CLI --screen-share, or
  // /__sfu/streamer/screen without a room).
  screenDefault: { on: opts.screenShare, audio: true },
  tokens: freshTokenState(),
  secretFor: (iss) => (iss === opts.apiKey ? opts.apiSecret : undefined),
  noteToken(tok) { this.tokens.seen.add(tokenKey(tok)); },
  // Revoked: seen or issued before the last /__sfu/revoke, or carrying an
  // iat from an earlier second (tokens minted elsewhere).
  isRevoked(tok, claims) {
    const t = this.tokens;
    return t.revoked.has(tokenKey(tok)) || (t.revokedBeforeS !== null && typeof claims.iat === 'number' && claims.iat < t.revokedBeforeS);
  },
  revokeAll() {
    const t = this.tokens;
    for (const k of t.seen) t.revoked.add(k);
    t.seen.clear();
    t.revokedBeforeS = Math.floor(Date.now() / 1000);
  },
  sessionClosed(s) {
    this.sessions.delete(s);
    this.closedSessions.push(s);
    if (this.closedSessions.length > 20) this.closedSessions.shift();
    this.stats.clients = this.sessions.size;
  },
};

// --- HTTP helpers --------------------------------------------------------------------------

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendText(res, status, text, extra = {}) {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...extra });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(''));
  });
}

// Refused upgrade: an HTTP status and a plain-text body instead of 101
// (doc §2.5 HandleError).
function rejectUpgrade(socket, status, message) {
  sfu.stats.rejected_upgrades[status] = (sfu.stats.rejected_upgrades[status] || 0) + 1;
  log(`upgrade refused ${status}: ${message}`);
  const body = `${message}\n`;
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\n`
    + `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

// The checks /rtc and /rtc/validate share (rtcservice.go validateInternal).
function validateConnect(req, url) {
  const params = Object.fromEntries(url.searchParams);
  let token = params.access_token;
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    if (!auth.startsWith('Bearer ')) return { status: 401, message: 'invalid authorization header. Must start with Bearer ' };
    token = auth.slice(7);
  }
  const v = verifyHS256(token, { [opts.apiKey]: opts.apiSecret }, undefined, sfu.config.token_leeway_s);
  if (v.status) return v;
  // A test hook, not a LiveKit feature (README "Control API").
  if (sfu.isRevoked(token, v.claims)) return { status: 401, message: 'token revoked' };
  const protocol = Number.parseInt(params.protocol ?? '', 10);
  if (!Number.isFinite(protocol) || protocol < 3) {
    // The real server accepts old protocols with legacy behaviour; this fake
    // refuses them because a subscriber-primary client must announce >= 3.
    return { status: 400, message: `protocol ${params.protocol ?? '(missing)'} not supported by this fake SFU (need >= 3)` };
  }
  return { claims: v.claims, token, params };
}

function recordQuery(url, req) {
  const q = Object.fromEntries(url.searchParams);
  sfu.stats.query.push(q);
  if (sfu.stats.query.length > 50) sfu.stats.query.shift();
  log(`${req.method} ${url.pathname} ${JSON.stringify({ ...q, access_token: q.access_token ? '…' : undefined })}`);
}

// --- control API ------------------------------------------------------------------------------

const ACTIONS = { DISCONNECT: LeaveRequest_Action.DISCONNECT, RESUME: LeaveRequest_Action.RESUME, RECONNECT: LeaveRequest_Action.RECONNECT };

function enumValue(enumObj, v, name) {
  if (typeof v === 'number' && enumObj[v] !== undefined) return v;
  if (typeof v === 'string' && typeof enumObj[v.toUpperCase()] === 'number') return enumObj[v.toUpperCase()];
  throw new Error(`bad ${name}: ${JSON.stringify(v)}`);
}

function roomsFor(body) {
  if (body.room === undefined) return [...sfu.rooms.values()];
  const r = sfu.rooms.get(body.room);
  if (!r) throw new Error(`unknown room ${body.room}`);
  return [r];
}

function pcStates() {
  const view = (s) => ({
    sid: s.sid, identity: s.identity, room: s.room.name, closed: s.closed, close_reason: s.closeReason || null,
    connection_state: s.pcState, ice_connection_state: s.iceState, data_channels: { ...s.dcState },
    established: !!s.establishedAt, offers: s.offersSent, answers: s.answers, rtp_out: { ...s.rtpOut },
    subscribed: [...s.subs.values()].map((x) => ({
      track_sid: x.trackSid, kind: x.kind, participant_sid: x.publisherSid, source: x.source, mid: x.transceiver.mid,
      bound: x.bound, codec: x.codec, backup: x.backup, sendable: x.sendable, disabled: x.disabled,
    })),
  });
  return [...sfu.closedSessions.map(view), ...[...sfu.sessions].map(view)];
}

function statsView() {
  const st = sfu.stats;
  return {
    ...st,
    clients: sfu.sessions.size,
    pc_states: pcStates(),
    config: sfu.config,
    codec: opts.codec,
    overlay: sfu.hub.overlay,
    media: {
      packets_in: { ...sfu.hub.packetsIn }, keyframe_requests: sfu.hub.keyframeRequests, plis_sent_to_encoder: sfu.hub.plisSent,
      pattern: opts.pattern, sources: sfu.hub.sourcesView(),
    },
    rooms: [...sfu.rooms.values()].map((r) => {
      const pub = (p) => p && {
        sid: p.sid, identity: p.identity, state: p.state, version: p.version,
        tracks: p.tracks.map((t) => ({ sid: t.sid, kind: t.kind, source: t.name, mime: t.mime, width: t.kind === 'video' ? t.width : undefined, height: t.kind === 'video' ? t.height : undefined })),
      };
      return {
        name: r.name, sid: r.sid, sessions: r.sessions.size, streamer: pub(r.streamer), guests: [...r.guests.values()].map(pub),
        viewer: { sid: r.viewer.sid, identity: r.viewer.identity }, extra_participants: r.extras?.count || 0, screen: { ...r.screen },
      };
    }),
    last_offer: sfu.lastOffer,
    last_answer: sfu.lastAnswer,
  };
}

const CONFIG_KEYS = {
  publish_delay_ms: 'int', refuse: 'bool', ping_interval: 'pos', ping_timeout: 'pos',
  token_refresh_s: 'pos', join_timeout_s: 'pos', negotiation_timeout_s: 'pos',
  ice_blackhole: 'bool', reject_offers: 'spoil', token_leeway_s: 'int',
  extra_participants: 'int', data_channels: 'bool', ice_servers: 'ice', refresh_ttl_s: 'pos|null',
};

// JoinResponse.ice_servers entries: {urls: [..], username?, credential?}.
function checkIceServers(v) {
  const isStr = (x) => typeof x === 'string';
  if (!Array.isArray(v)) throw new Error('ice_servers must be an array');
  return v.map((s) => {
    if (typeof s !== 'object' || s === null) throw new Error('ice_servers entries must be objects');
    const urls = isStr(s.urls) ? [s.urls] : s.urls;
    if (!Array.isArray(urls) || !urls.length || !urls.every(isStr)) throw new Error('ice_servers[].urls must be a non-empty array of strings');
    if ((s.username !== undefined && !isStr(s.username)) || (s.credential !== undefined && !isStr(s.credential))) throw new Error('ice_servers[].username/credential must be strings');
    return { urls, username: s.username ?? '', credential: s.credential ?? '' };
  });
}

const isSize = (v) => Number.isInteger(v) && v >= 16 && v <= 7680;

async function control(req, res, path) {
  let body = {};
  if (req.method === 'POST') {
    const raw = await readBody(req);
    if (raw.trim()) {
      try { body = JSON.parse(raw); } catch { return sendJson(res, 400, { ok: false, error: 'body is not JSON' }); }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return sendJson(res, 400, { ok: false, error: 'body must be a JSON object' });
    }
  }
  const ok = () => sendJson(res, 200, { ok: true });
  try {
    const route = `${req.method} ${path}`;
    switch (route) {
      case 'GET /__sfu/stats': return sendJson(res, 200, statsView());
      case 'POST /__sfu/drop': {
        // Abrupt: TCP reset of the signalling socket, no leave.
        sfu.stats.drops++;
        for (const s of [...sfu.sessions]) { s.ws.terminate(); s.close('dropped by /__sfu/drop'); }
        return ok();
      }
      case 'POST /__sfu/leave': {
        const action = body.action === undefined ? LeaveRequest_Action.DISCONNECT : enumValue(ACTIONS, body.action, 'action');
        const reason = body.reason === undefined ? DisconnectReason.SERVER_SHUTDOWN : enumValue(DisconnectReason, body.reason, 'reason');
        const rooms = new Set(roomsFor(body));
        for (const s of [...sfu.sessions]) if (rooms.has(s.room)) s.sendLeave(action, reason);
        return ok();
      }
      case 'POST /__sfu/offer': {
        // One offer webrtcbin must refuse, to every session (of the room).
        const mode = body.sdp ?? 'garbage';
        if (!SPOIL_MODES.includes(mode)) throw new Error(`sdp must be one of ${SPOIL_MODES.join(', ')}`);
        const rooms = new Set(roomsFor(body));
        let sent = 0;
        for (const s of [...sfu.sessions]) if (rooms.has(s.room) && s.sendSpoiledOffer(mode)) sent++;
        return sendJson(res, 200, { ok: true, sent });
      }
      case 'POST /__sfu/streamer/leave': {
        for (const r of roomsFor(body)) r.streamerLeave();
        return ok();
      }
      case 'POST /__sfu/streamer/join': {
        const delay = body.publish_delay_ms ?? sfu.config.publish_delay_ms;
        if (!Number.isInteger(delay) || delay < 0) throw new Error('publish_delay_ms must be an integer >= 0');
        for (const r of roomsFor(body)) r.streamerJoin(delay);
        return ok();
      }
      case 'POST /__sfu/streamer/screen': {
        if (typeof body.on !== 'boolean') throw new Error('on must be a boolean');
        if (body.audio !== undefined && typeof body.audio !== 'boolean') throw new Error('audio must be a boolean');
        const audio = body.audio ?? true;
        const rooms = roomsFor(body);
        // The screen share's pipelines start the first time they are needed;
        // the tracks are announced only once their RTP flows.
        if (body.on) {
          await sfu.hub.ensure('screen');
          if (audio) await sfu.hub.ensure('screen_audio');
        }
        if (body.room === undefined) sfu.screenDefault = { on: body.on, audio };
        for (const r of rooms) r.setScreen(body.on, audio);
        return ok();
      }
      case 'POST /__sfu/streamer/republish': {
        const kinds = body.kinds ?? ['video', 'audio'];
        if (!Array.isArray(kinds) || !kinds.length || !kinds.every((k) => k === 'video' || k === 'audio')) throw new Error('kinds must be a non-empty array of "video"/"audio"');
        const delay = body.delay_ms ?? 300;
        if (!Number.isInteger(delay) || delay < 0) throw new Error('delay_ms must be an integer >= 0');
        let republished = 0;
        for (const r of roomsFor(body)) if (r.republish(kinds, delay)) republished++;
        sfu.stats.republishes += republished;
        return sendJson(res, 200, { ok: true, republished });
      }
      case 'POST /__sfu/guest/join': {
        const identity = body.identity ?? `guest-${crypto.randomBytes(4).toString('hex')}`;
        if (typeof identity !== 'string' || !identity) throw new Error('identity must be a non-empty string');
        const width = body.width ?? 1280;
        const height = body.height ?? 720;
        if (!isSize(width) || !isSize(height)) throw new Error('width and height must be integers from 16 to 7680');
        const rooms = roomsFor(body);
        if (!rooms.length) throw new Error('no room yet (a room exists once a client joined it)');
        // Check every room first, so a refusal changes nothing.
        for (const r of rooms) if (r.guests.has(identity) || identity === r.streamerIdentity) throw new Error(`${identity} is already in room ${r.name}`);
        const joined = rooms.map((r) => {
          const g = r.guestJoin(identity, width, height);
          return { room: r.name, sid: g.sid, tracks: g.tracks.map((t) => ({ sid: t.sid, kind: t.kind })) };
        });
        return sendJson(res, 200, { ok: true, identity, joined });
      }
      case 'POST /__sfu/guest/leave': {
        if (typeof body.identity !== 'string') throw new Error('identity must be a string');
        const rooms = roomsFor(body).filter((r) => r.guests.has(body.identity));
        if (!rooms.length) throw new Error(`no guest ${body.identity} on stage`);
        for (const r of rooms) r.guestLeave(body.identity);
        return ok();
      }
      case 'POST /__sfu/revoke': {
        sfu.revokeAll();
        sfu.stats.revocations++;
        return ok();
      }
      case 'POST /__sfu/config': {
        const next = { ...sfu.config };
        for (const [k, v] of Object.entries(body)) {
          const type = CONFIG_KEYS[k];
          if (!type) throw new Error(`unknown config key ${k}`);
          if (type === 'bool' && typeof v !== 'boolean') throw new Error(`${k} must be a boolean`);
          if (type === 'int' && !(Number.isInteger(v) && v >= 0)) throw new Error(`${k} must be an integer >= 0`);
          if (type === 'pos' && !(Number.isInteger(v) && v >= 1)) throw new Error(`${k} must be an integer >= 1`);
          if (type === 'pos|null' && !(v === null || (Number.isInteger(v) && v >= 1))) throw new Error(`${k} must be null or an integer >= 1`);
          if (type === 'spoil' && !(v === '' || SPOIL_MODES.includes(v))) throw new Error(`${k} must be "" or one of ${SPOIL_MODES.join(', ')}`);
          next[k] = type === 'ice' ? checkIceServers(v) : v;
        }
        sfu.config = next;
        log(`config ${JSON.stringify(sfu.config)}`);
        return ok();
      }
      case 'POST /__sfu/reset': {
        for (const s of [...sfu.sessions]) { s.ws.terminate(); s.close('reset'); }
        for (const r of sfu.rooms.values()) r.close();
        sfu.rooms.clear();
        sfu.closedSessions = [];
        sfu.config = defaultConfig();
        sfu.stats = freshStats();
        sfu.screenDefault = { on: opts.screenShare, audio: true };
        sfu.tokens = freshTokenState();
        sfu.lastOffer = null;
        sfu.lastAnswer = null;
        return ok();
      }
      default:
        return sendJson(res, 404, { ok: false, error: `unknown control ${route}` });
    }
  } catch (e) {
    return sendJson(res, 400, { ok: false, error: e.message });
  }
}

// --- signalling ---------------------------------------------------------------------------------

const wss = new WebSocketServer({
  noServer: true,
  // The real server accepts permessage-deflate (upgrader EnableCompression).
  perMessageDeflate: true,
  maxPayload: 4 * 1024 * 1024,
});

function onConnection(ws, { claims, token, params }, req) {
  const roomName = claims.video.room;
  if (params.reconnect === '1' || params.reconnect === 'true') {
    // Resume is not implemented: answer like a server that no longer has the
    // session (doc §7.1): leave{STATE_MISMATCH, RECONNECT}, then close.
    sfu.stats.resumes_refused++;
    log(`resume refused for ${claims.sub} sid=${params.sid}`);
    const leave = new SignalResponse({ message: { case: 'leave', value: new LeaveRequest({ canReconnect: true, reason: DisconnectReason.STATE_MISMATCH, action: LeaveRequest_Action.RECONNECT }) } });
    ws.send(leave.toBinary(), { binary: true }, () => ws.close(1000));
    return;
  }
  let room = sfu.rooms.get(roomName);
  if (!room) {
    room = new Room(sfu, roomName);
    sfu.rooms.set(roomName, room);
  }
  // Same identity twice: the older session is evicted (doc §7.2, §9.4 #13).
  for (const old of [...room.sessions]) {
    if (old.identity === claims.sub) {
      sfu.stats.duplicate_identity_evictions++;
      old.sendLeave(LeaveRequest_Action.DISCONNECT, DisconnectReason.DUPLICATE_IDENTITY);
    }
  }
  const session = new Session(sfu, ws, { room, claims, token, params, remote: req.socket.remoteAddress });
  room.addSession(session);
  sfu.sessions.add(session);
  sfu.stats.clients = sfu.sessions.size;
  // Serialize message handling per session: offers/answers must be
  // processed strictly in order (doc §4.3).
  let chain = Promise.resolve();
  ws.on('message', (data, isBinary) => {
    chain = chain.then(() => session.onMessage(data, isBinary)).catch((e) => {
      sfu.stats.internal_errors++;
      process.stderr.write(`sfu.js: error handling message: ${e.stack || e}\n`);
    });
  });
  ws.on('close', (code) => session.close(`websocket closed (${code})`));
  ws.on('error', (e) => log(`ws error: ${e.message}`));
  chain = chain.then(() => session.start()).catch((e) => {
    sfu.stats.internal_errors++;
    process.stderr.write(`sfu.js: session start failed: ${e.stack || e}\n`);
    try { ws.terminate(); } catch { /* closed */ }
    session.close('start failed');
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://fake-sfu');
  const path = url.pathname;
  if (path.startsWith('/__sfu/')) return control(req, res, path);
  if (path === '/rtc/validate' || path === '/rtc/validate/') {
    recordQuery(url, req);
    const v = validateConnect(req, url);
    const cors = { 'Access-Control-Allow-Origin': '*' };
    if (v.status) return sendText(res, v.status, `${v.message}\n`, cors);
    sfu.noteToken(v.token);
    return sendText(res, 200, 'success', cors);
  }
  // A plain (non-upgrade) request to /rtc is a 404 on the real server too.
  return sendText(res, 404, '404 page not found\n');
});

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  const url = new URL(req.url, 'http://fake-sfu');
  if (url.pathname !== '/rtc' && url.pathname !== '/rtc/') return rejectUpgrade(socket, 404, '404 page not found');
  sfu.stats.upgrades++;
  recordQuery(url, req);
  if (sfu.config.refuse) return rejectUpgrade(socket, 503, 'no available nodes (refused by /__sfu/config)');
  const v = validateConnect(req, url);
  if (v.status) return rejectUpgrade(socket, v.status, v.message);
  sfu.noteToken(v.token);
  sfu.stats.tokens.push({ sub: v.claims.sub, exp: v.claims.exp, room: v.claims.video.room, at_s: Math.floor(Date.now() / 1000) });
  if (sfu.stats.tokens.length > 50) sfu.stats.tokens.shift();
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, v, req));
});

// --- process lifecycle ------------------------------------------------------------------------

process.on('uncaughtException', (e) => {
  sfu.stats.internal_errors++;
  process.stderr.write(`sfu.js: uncaught exception: ${e.stack || e}\n`);
});
process.on('unhandledRejection', (e) => {
  sfu.stats.internal_errors++;
  process.stderr.write(`sfu.js: unhandled rejection: ${e?.stack || e}\n`);
});

let shuttingDown = false;
function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  log('shutting down');
  for (const s of [...sfu.sessions]) { try { s.ws.terminate(); } catch { /* closed */ } s.close('shutdown'); }
  sfu.hub?.stop();
  server.close();
  // Give gst-launch a moment to exit on SIGTERM (MediaHub SIGKILLs after 1 s).
  const deadline = Date.now() + 1500;
  const wait = () => ((sfu.hub?.children.length && Date.now() < deadline) ? setTimeout(wait, 50) : process.exit(code));
  wait();
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
process.on('exit', () => sfu.hub?.stop());

async function main() {
  sfu.hub = new MediaHub({ ...opts, log });
  sfu.hub.on('error', (e) => {
    process.stderr.write(`sfu.js: media source failed: ${e.message}\n`);
    shutdown(1);
  });
  try {
    await sfu.hub.start();
    if (opts.screenShare) await Promise.all([sfu.hub.ensure('screen'), sfu.hub.ensure('screen_audio')]);
  } catch (e) {
    process.stderr.write(`sfu.js: could not start media sources: ${e.message}\n`);
    shutdown(1);
    return;
  }
  log(`media running: ${opts.codec} ${opts.width}x${opts.height}@${opts.fps} pattern=${opts.pattern} overlay=${sfu.hub.overlay || 'none'}`);
  server.listen(opts.port, opts.host, () => {
    process.stdout.write(`LISTENING ${server.address().port}\n`);
  });
  server.on('error', (e) => {
    process.stderr.write(`sfu.js: listen failed: ${e.message}\n`);
    shutdown(1);
  });
}

main();

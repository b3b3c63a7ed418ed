// Viewer load for bench/live.sh: opens N WebSocket viewers on one haven session, split over
// worker processes, and measures each viewer over one window common to all of them.
// Usage: node bench/viewers.mjs ws://127.0.0.1:PORT/api/live-sessions/ws/live/MINT N SECONDS
//          [--mode jpeg|encoded] [--workers K] [--warmup S] [--haven-pid PID] [--sfu-pids P,Q]
//          [--metrics URL]
// Prints one JSON line:
//   {"viewers": N, "mode": ..., "fps": [...], "bytes_per_s": [...], "closed": n, "not_ready": n,
//    "seconds": s, "haven_cpu": %, "client_cpu": %, "machine_busy": %, "metrics": {...}, ...}
// fps is, per viewer, its video messages per second over the window: JPEG mode every binary
// message, encoded mode the binary messages of kind 1 (byte 0). bytes_per_s counts every
// message's payload (text included). The window starts once every viewer has its first video
// message, plus --warmup seconds (3) so that the GOP burst of encoded viewers is behind it.
// With --haven-pid the window's haven CPU (/proc/PID/stat, % of one core) is reported (and that
// of its main thread, the event loop that writes to every viewer's socket), with
// --metrics the deltas of haven's /metrics session counters over the window. client_cpu is the
// workers' CPU over the window (% of one core, summed), sfu_cpu that of --sfu-pids (the fake
// SFU and its encoders), machine_busy that of the whole machine (all cores, other jobs too).
// Loopback only.
import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const self = fileURLToPath(import.meta.url);
const here = path.dirname(self);
const require = createRequire(path.join(here, '../tests/fakes/livekit-sfu/package.json'));

function loopbackOnly(u) {
  const h = new URL(u).hostname;
  if (!/^127\.\d+\.\d+\.\d+$/.test(h) && h !== 'localhost' && h !== '[::1]') {
    process.stderr.write(`viewers.mjs: ${u}: not a loopback address\n`);
    process.exit(2);
  }
}

// --- the two clients ----------------------------------------------------------------------------
// Both call h.open(), h.message(isBinary, firstByte, payloadBytes) per message and h.close(),
// and return something with terminate(). `ws` is the WebSocket package the fake SFU uses; `raw`
// is a minimal RFC 6455 client on a bare socket that only parses frame headers and the first
// payload byte, reading into one buffer shared by the worker's sockets (no allocation per read
// or per message), so that the client costs as little CPU as possible.
function wsClient(url, h) {
  const WebSocket = require('ws');
  const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
  ws.binaryType = 'nodebuffer';
  ws.on('open', () => h.open());
  ws.on('message', (data, isBinary) => h.message(isBinary, data.length > 0 ? data[0] : -1, data.length));
  ws.on('close', () => h.close());
  ws.on('error', () => {});
  return ws;
}

const readBuffer = Buffer.allocUnsafe(1 << 20);

function rawClient(url, h) {
  const u = new URL(url);
  const key = crypto.randomBytes(16).toString('base64');
  const accept = crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  let handshake = ''; // the HTTP answer until its end, then null
  let closed = false;
  // Frame parser state.
  const hb = Buffer.alloc(14);
  let hn = 0; // header bytes collected
  let need = 2; // header bytes needed
  let inPayload = false;
  let rem = 0; // payload bytes left in this frame
  let fin = false;
  let control = false;
  let msgBinary = false;
  let msgLen = 0;
  let firstByte = -1;
  let wantFirst = false;

  const close = () => {
    if (closed) return;
    closed = true;
    sock.destroy();
    h.close();
  };
  const frameDone = () => {
    inPayload = false;
    hn = 0;
    need = 2;
    if (fin && !control) h.message(msgBinary, firstByte, msgLen);
  };
  const parse = (buf, p, end) => {
    while (p < end) {
      if (!inPayload) {
        hb[hn++] = buf[p++];
        if (hn === 2) need = 2 + ((hb[1] & 0x7f) === 126 ? 2 : (hb[1] & 0x7f) === 127 ? 8 : 0) + (hb[1] & 0x80 ? 4 : 0);
        if (hn < need) continue;
        fin = (hb[0] & 0x80) !== 0;
        const op = hb[0] & 0x0f;
        const l7 = hb[1] & 0x7f;
        const len = l7 === 126 ? hb.readUInt16BE(2) : l7 === 127 ? hb.readUInt32BE(2) * 2 ** 32 + hb.readUInt32BE(6) : l7;
        control = op >= 8;
        if (op === 8) { close(); return; }
        if (op === 1 || op === 2) {
          msgBinary = op === 2;
          msgLen = 0;
          firstByte = -1;
          wantFirst = true;
        }
        if (!control) msgLen += len;
        inPayload = true;
        rem = len;
        if (rem === 0) frameDone();
        continue;
      }
      const take = Math.min(rem, end - p);
      if (wantFirst && !control) {
        firstByte = buf[p];
        wantFirst = false;
      }
      p += take;
      rem -= take;
      if (rem === 0) frameDone();
    }
  };
  const onread = (nread, buf) => {
    if (closed) return false;
    if (handshake === null) {
      parse(buf, 0, nread);
      return true;
    }
    handshake += buf.toString('latin1', 0, nread);
    const eoh = handshake.indexOf('\r\n\r\n');
    if (eoh < 0) {
      if (handshake.length > 16384) close();
      return true;
    }
    const head = handshake.slice(0, eoh);
    const rest = Buffer.from(handshake.slice(eoh + 4), 'latin1');
    handshake = null;
    if (!/^HTTP\/1\.1 101 /.test(head) || !head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`)) {
      close();
      return false;
    }
    h.open();
    parse(rest, 0, rest.length);
    return true;
  };
  const sock = net.connect({ host: u.hostname, port: Number(u.port), onread: { buffer: readBuffer, callback: onread } });
  sock.on('connect', () => {
    sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n`
      + `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  });
  sock.on('close', close);
  sock.on('error', () => {});
  return { terminate: () => { closed = true; sock.destroy(); } };
}

// --- worker: opens its share of the viewers, counts, answers the parent ------------------------
function worker() {
  const { url, n, encoded, concurrency, client } = JSON.parse(process.env.HV_VIEWERS_WORKER);
  const open = client === 'ws' ? wsClient : rawClient;
  const video = new Float64Array(n); // video messages in the window
  const bytes = new Float64Array(n); // payload bytes in the window (all messages)
  const ready = new Uint8Array(n); // got its first video message
  let nReady = 0;
  let closed = 0;
  let measuring = false;
  let opened = 0;
  let pending = 0;
  const sockets = [];

  const openNext = () => {
    while (pending < concurrency && opened < n) {
      const i = opened++;
      pending++;
      let settled = false;
      const settle = () => { if (!settled) { settled = true; pending--; openNext(); } };
      sockets.push(open(url, {
        open: settle,
        message: (isBinary, first, len) => {
          const isVideo = isBinary && (!encoded || first === 1);
          if (measuring) {
            bytes[i] += len;
            if (isVideo) video[i]++;
          } else if (isVideo && !ready[i]) {
            ready[i] = 1;
            nReady++;
          }
        },
        close: () => { closed++; settle(); },
      }));
    }
  };
  openNext();

  let t0 = 0n;
  let cpu0 = null;
  process.on('message', (m) => {
    if (m.cmd === 'status') {
      process.send({ cmd: 'status', opened, ready: nReady, closed });
    } else if (m.cmd === 'start') {
      video.fill(0);
      bytes.fill(0);
      cpu0 = process.cpuUsage();
      t0 = process.hrtime.bigint();
      measuring = true;
    } else if (m.cmd === 'stop') {
      measuring = false;
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu = process.cpuUsage(cpu0);
      process.send({
        cmd: 'result',
        fps: Array.from(video, (c) => c / secs),
        bytes_per_s: Array.from(bytes, (b) => b / secs),
        closed,
        not_ready: n - nReady,
        seconds: secs,
        cpu_s: (cpu.user + cpu.system) / 1e6,
        cpu_user_s: cpu.user / 1e6,
      });
    } else if (m.cmd === 'exit') {
      for (const ws of sockets) ws.terminate();
      setTimeout(() => process.exit(0), 100);
    }
  });
}

// --- parent -------------------------------------------------------------------------------------
function procTicks(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch {
    return NaN;
  }
}

function machineTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] || 0);
  return { busy: f.reduce((a, b) => a + b, 0) - idle, all: f.reduce((a, b) => a + b, 0) };
}

function get(u) {
  return new Promise((resolve, reject) => {
    http.get(u, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

// haven_session_* counters of the (only) session: {name_without_prefix_and_suffix: value}.
async function metrics(u) {
  if (!u) return null;
  const out = {};
  for (const line of (await get(u)).split('\n')) {
    const m = /^haven_session_(\w+?)(?:_total)?\{([^}]*)\} (\S+)$/.exec(line);
    if (!m) continue;
    const stage = /stage="(\w+)"/.exec(m[2]);
    out[stage ? `${m[1]}_${stage[1]}` : m[1]] = (out[stage ? `${m[1]}_${stage[1]}` : m[1]] || 0) + Number(m[3]);
  }
  return out;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function parent() {
  const args = process.argv.slice(2);
  const pos = [];
  const opt = { mode: 'jpeg', workers: 0, warmup: 3, havenPid: 0, sfuPids: [], metrics: '', concurrency: 32, readyTimeout: 60, client: 'raw' };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--mode') opt.mode = args[++i];
    else if (a === '--workers') opt.workers = Number(args[++i]);
    else if (a === '--warmup') opt.warmup = Number(args[++i]);
    else if (a === '--haven-pid') opt.havenPid = Number(args[++i]);
    else if (a === '--sfu-pids') opt.sfuPids = args[++i].split(/[ ,]+/).filter(Boolean).map(Number);
    else if (a === '--metrics') opt.metrics = args[++i];
    else if (a === '--client') opt.client = args[++i];
    else if (a === '--ready-timeout') opt.readyTimeout = Number(args[++i]);
    else pos.push(a);
  }
  const [url0, nArg, secondsArg] = pos;
  const n = Number(nArg);
  const seconds = Number(secondsArg);
  if (!url0 || !(n >= 1) || !(seconds > 0) || !['jpeg', 'encoded'].includes(opt.mode) || !['raw', 'ws'].includes(opt.client)) {
    process.stderr.write('usage: node bench/viewers.mjs WS_URL N SECONDS [--mode jpeg|encoded] [--workers K] '
      + '[--client raw|ws] [--warmup S] [--haven-pid PID] [--sfu-pids P,Q] [--metrics URL]\n');
    process.exit(2);
  }
  loopbackOnly(url0);
  if (opt.metrics) loopbackOnly(opt.metrics);
  const encoded = opt.mode === 'encoded';
  const url = encoded ? `${url0}${url0.includes('?') ? '&' : '?'}mode=encoded` : url0;
  // One worker per 250 viewers, at most 4 (2 cores here: more would only add switching).
  const k = Math.max(1, Math.min(n, opt.workers || Math.min(4, Math.ceil(n / 250))));
  const workers = [];
  for (let w = 0; w < k; w++) {
    const share = Math.floor(n / k) + (w < n % k ? 1 : 0);
    const child = fork(self, ['--worker'], {
      env: { ...process.env, HV_VIEWERS_WORKER: JSON.stringify({ url, n: share, encoded, concurrency: opt.concurrency, client: opt.client }) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    workers.push(child);
  }
  const ask = (cmd, want) => Promise.all(workers.map((c) => new Promise((resolve) => {
    const on = (m) => { if (m.cmd === want) { c.off('message', on); resolve(m); } };
    c.on('message', on);
    c.send({ cmd });
  })));

  // Every viewer open and with its first video message (or closed, or the timeout).
  const tJoin = Date.now();
  let st;
  for (;;) {
    st = await ask('status', 'status');
    const ready = st.reduce((a, s) => a + s.ready, 0);
    const closed = st.reduce((a, s) => a + s.closed, 0);
    if (ready + closed >= n || Date.now() - tJoin > opt.readyTimeout * 1000) break;
    await sleep(100);
  }
  const joinSeconds = (Date.now() - tJoin) / 1000;
  await sleep(opt.warmup * 1000);

  const hz = 100; // USER_HZ: /proc stat ticks
  const m0 = await metrics(opt.metrics);
  const h0 = opt.havenPid ? procTicks(opt.havenPid) : NaN;
  const hm0 = opt.havenPid ? procTicks(`${opt.havenPid}/task/${opt.havenPid}`) : NaN;
  const s0 = opt.sfuPids.reduce((a, p) => a + (procTicks(p) || 0), 0);
  const c0 = machineTicks();
  const tw0 = process.hrtime.bigint();
  workers.forEach((c) => c.send({ cmd: 'start' }));
  await sleep(seconds * 1000);
  const results = ask('stop', 'result');
  const tw1 = process.hrtime.bigint();
  const h1 = opt.havenPid ? procTicks(opt.havenPid) : NaN;
  const hm1 = opt.havenPid ? procTicks(`${opt.havenPid}/task/${opt.havenPid}`) : NaN;
  const s1 = opt.sfuPids.reduce((a, p) => a + (procTicks(p) || 0), 0);
  const c1 = machineTicks();
  const m1 = await metrics(opt.metrics);
  const rs = await results;
  const win = Number(tw1 - tw0) / 1e9;
  const delta = {};
  if (m0 && m1) for (const key of Object.keys(m1)) delta[key] = (m1[key] - (m0[key] || 0)) / win;

  const out = {
    viewers: n,
    mode: opt.mode,
    workers: k,
    client: opt.client,
    seconds: win,
    join_seconds: joinSeconds,
    fps: rs.flatMap((r) => r.fps),
    bytes_per_s: rs.flatMap((r) => r.bytes_per_s),
    closed: rs.reduce((a, r) => a + r.closed, 0),
    not_ready: rs.reduce((a, r) => a + r.not_ready, 0),
    haven_cpu: opt.havenPid ? ((h1 - h0) / hz / win) * 100 : null,
    haven_main_cpu: opt.havenPid ? ((hm1 - hm0) / hz / win) * 100 : null, // its main thread (the event loop)
    sfu_cpu: opt.sfuPids.length ? ((s1 - s0) / hz / win) * 100 : null,
    client_cpu: (rs.reduce((a, r) => a + r.cpu_s, 0) / win) * 100,
    client_cpu_user: (rs.reduce((a, r) => a + r.cpu_user_s, 0) / win) * 100,
    client_cpu_max_worker: Math.max(...rs.map((r) => (r.cpu_s / r.seconds) * 100)),
    machine_busy: ((c1.busy - c0.busy) / (c1.all - c0.all)) * 100 * os.cpus().length,
    metrics_per_s: m0 ? delta : null, // haven's session counters, per second over the window
    loadavg: os.loadavg(),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  workers.forEach((c) => c.send({ cmd: 'exit' }));
  await sleep(300);
  process.exit(0);
}

if (process.argv[2] === '--worker') worker();
else parent();

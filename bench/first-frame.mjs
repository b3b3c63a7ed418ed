// Time to first frame for bench/live.sh: JOINS viewers join a running haven session one after
// the other; each is timed from its WebSocket `open` event to its first video message (JPEG
// mode: the first binary message; encoded mode: the first binary message of kind 1, which must
// be a key frame), then closed. With --watch, one viewer of the same mode watches throughout
// (so haven is already decoding, for JPEG); without it nobody else watches, and each join waits
// GAP_MS (default 1000..2000 ms, spread over the GOP) after the previous one closed, so that
// haven has stopped decoding.
// Usage: node bench/first-frame.mjs WS_URL JOINS [--mode jpeg|encoded] [--watch] [--gap-ms MS]
// Prints one JSON line: {"mode", "watch", "ms": [...], "connect_ms": [...], "not_key": n,
// "failed": n}. Loopback only.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/fakes/livekit-sfu/package.json'));
const WebSocket = require('ws');

const args = process.argv.slice(2);
const pos = [];
let mode = 'jpeg';
let watch = false;
let gapMs = -1;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--mode') mode = args[++i];
  else if (args[i] === '--watch') watch = true;
  else if (args[i] === '--gap-ms') gapMs = Number(args[++i]);
  else pos.push(args[i]);
}
const [url0, joinsArg] = pos;
const joins = Number(joinsArg);
const h = url0 ? new URL(url0).hostname : '';
if (!/^127\.\d+\.\d+\.\d+$/.test(h) || !(joins >= 1) || !['jpeg', 'encoded'].includes(mode)) {
  process.stderr.write('usage: node bench/first-frame.mjs ws://127.0.0.1:PORT/... JOINS [--mode jpeg|encoded] [--watch] [--gap-ms MS]\n');
  process.exit(2);
}
const encoded = mode === 'encoded';
const url = encoded ? `${url0}${url0.includes('?') ? '&' : '?'}mode=encoded` : url0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6;

// One viewer: resolves {connect, first, key} (ms) at its first video message, or null.
function join(keep = false, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const t0 = now();
    let tOpen = 0;
    let done = false;
    const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
    ws.binaryType = 'nodebuffer';
    const finish = (v) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!keep || v === null) ws.terminate();
      resolve(v && { ...v, ws });
    };
    const timer = setTimeout(() => finish(null), timeoutMs);
    ws.on('open', () => { tOpen = now(); });
    ws.on('message', (data, isBinary) => {
      if (!isBinary || (encoded && data[0] !== 1)) return;
      finish({ connect: tOpen - t0, first: now() - tOpen, key: !encoded || (data[1] & 1) === 1 });
    });
    ws.on('close', () => finish(null));
    ws.on('error', () => finish(null));
  });
}

let watcher = null;
if (watch) {
  watcher = await join(true);
  await sleep(1500);
}
const ms = [];
const connectMs = [];
let notKey = 0;
let failed = 0;
for (let j = 0; j < joins; j++) {
  // Spread the joins over the stream's GOP (2 s at the fake SFU's default), nobody watching:
  // long enough for haven to stop decoding in between.
  await sleep(gapMs >= 0 ? gapMs : 1000 + Math.random() * 1000);
  const r = await join();
  if (r === null) { failed++; continue; }
  ms.push(r.first);
  connectMs.push(r.connect);
  if (!r.key) notKey++;
}
if (watcher) watcher.ws.terminate();
process.stdout.write(`${JSON.stringify({ mode, watch, watcher_ok: watch ? watcher !== null : null, ms, connect_ms: connectMs, not_key: notKey, failed })}\n`);
setTimeout(() => process.exit(0), 100);

// Viewer load for bench/live.sh: opens N WebSocket viewers on one haven session and reports,
// per viewer, the JPEG frames per second received over a measuring window.
// Usage: node bench/viewers.mjs ws://127.0.0.1:PORT/api/live-sessions/ws/live/MINT N SECONDS
// Prints one JSON line: {"viewers": N, "fps": [...], "closed": n}. Loopback only.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/fakes/livekit-sfu/package.json'));
const WebSocket = require('ws');

const [url, nArg, secondsArg] = process.argv.slice(2);
const n = Number(nArg);
const seconds = Number(secondsArg);
const warmupMs = 3000;
const counts = new Array(n).fill(0);
let closed = 0;
let measuring = false;
const sockets = [];

for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data, isBinary) => {
    if (isBinary && measuring) counts[i]++;
  });
  ws.on('close', () => { closed++; });
  ws.on('error', () => {});
  sockets.push(ws);
}

setTimeout(() => {
  measuring = true;
  setTimeout(() => {
    measuring = false;
    const fps = counts.map((c) => c / seconds);
    process.stdout.write(`${JSON.stringify({ viewers: n, fps, closed })}\n`);
    for (const ws of sockets) ws.terminate();
    setTimeout(() => process.exit(0), 200);
  }, seconds * 1000);
}, warmupMs);

#!/usr/bin/env node
// The seed's own browser client, `PumpFunStreamPlayer`, run unmodified against haven, as a
// third-party developer would run it.
//
// Usage: node tests/browser/seed-player.test.mjs PATH_TO_HAVEN [SCREENSHOT_DIR]
//
// The class is extracted from the product spec when the test runs (never copied into the
// repository): ../shared/seed/pumpfun-integration-guide.md next to the repository, or
// HAVEN_SEED_GUIDE; its "Frontend Integration" section's React example holds
// `class PumpFunStreamPlayer { ... }`, taken from that line to its matching closing brace.
// Without ../shared next to the checkout (CI clones the repository alone) the test skips; a
// HAVEN_SEED_GUIDE naming a missing file, or a guide without the class, fails it.
//
// What runs, all on 127.0.0.1: the fake pump.fun API, the fake LiveKit SFU (H.264 1280x720
// 30 fps bars and a 440 Hz Opus tone) and the real haven on port 8000, because the class
// hard-codes `ws://localhost:8000/api/live-sessions/ws/live/${mintId}` (`make test` runs this
// in a loopback-only network namespace, where 8000 is free; a taken port fails the test). A
// small dev server written here, on another port, is the third party's site: it serves a page
// with a canvas and the extracted class, and proxies `/api/...` (only those) to haven keeping
// the browser's Origin and Host headers, as Vite's dev proxy does by default; the class's
// fetch() calls use relative URLs, so they go through it. Headless Chromium loads that page (an
// origin other than haven's), and the test calls the class's own methods with page.evaluate:
// getAvailableStreams(false) and getPopularStreams() (checked against haven's API),
// setCanvas() + startStream(mint, false), the canvas changing and not black, playAudioFrame
// called ~50 times a second (a spy on the instance that calls the original), and
// stopStream(mint) (socket closed, no session left in /api/live-sessions/active).
//
// Prints TAP. Skips (1..0 # SKIP) when Chromium, node_modules or the guide is missing.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import {
  ROOT, loadChromium, skip, sleep, diag, assert, meanAbsDiff, waitFor, freePort, checkPortFree,
  run, startFakes, startHaven, apiCall, launchChromium, keepOnLoopback, watchPage, step, runSteps,
} from './lib.mjs';

const HAVEN = path.resolve(process.argv[2] || path.join(ROOT, 'build', 'src', 'haven'));
const BUILD = path.dirname(path.dirname(HAVEN));
const SHOTS = path.resolve(process.argv[3] || process.env.HAVEN_SCREENSHOTS_DIR ||
                           path.join(BUILD, 'meson-logs', 'screenshots'));
const GUIDE = path.resolve(process.env.HAVEN_SEED_GUIDE ||
                           path.join(ROOT, '..', 'shared', 'seed', 'pumpfun-integration-guide.md'));
const AUDIO_CHUNKS_PER_S = 50; // haven sends 20 ms PCM chunks
const SEED_AUDIO_BYTES_PER_S = 44100 * 2; // the class plays every chunk as 44.1 kHz mono s16le

// Skips (1..0 # SKIP) when Chromium or node_modules is missing.
const chromium = loadChromium();

// The guide lives outside the repository. A checkout without ../shared next to it (CI clones
// the repository alone) skips; a HAVEN_SEED_GUIDE that names a missing file fails (step 1).
if (!process.env.HAVEN_SEED_GUIDE && !fs.existsSync(GUIDE)) {
  skip(`the seed guide is not at ${GUIDE} (no ../shared next to this checkout); ` +
       'set HAVEN_SEED_GUIDE to pumpfun-integration-guide.md to run this test');
}

// ---------------------------------------------------------------------------------------------
// Extracting the class from the guide.

// Index of the '}' matching the '{' at src[open]: braces are counted outside strings, comments
// and template text (a template's `${ ... }` counts as code).
function matchingBrace(src, open) {
  const stack = []; // 'code' for a '{' (or '${'), 'tmpl' inside a template literal
  for (let i = open; i < src.length; i++) {
    const c = src[i];
    const top = stack[stack.length - 1];
    if (top === 'tmpl') {
      if (c === '\\') i++;
      else if (c === '`') stack.pop();
      else if (c === '$' && src[i + 1] === '{') { stack.push('code'); i++; }
      continue;
    }
    if (c === '/' && src[i + 1] === '/') { i = src.indexOf('\n', i); if (i < 0) return -1; continue; }
    if (c === '/' && src[i + 1] === '*') { i = src.indexOf('*/', i + 2); if (i < 0) return -1; i++; continue; }
    if (c === '\'' || c === '"') {
      for (i++; i < src.length && src[i] !== c && src[i] !== '\n'; i++) if (src[i] === '\\') i++;
      continue;
    }
    if (c === '`') stack.push('tmpl');
    else if (c === '{') stack.push('code');
    else if (c === '}') {
      stack.pop();
      if (stack.length === 0) return i;
    }
  }
  return -1;
}

// Returns {source, line} of `class PumpFunStreamPlayer { ... }` from the React example's code
// block in the guide's "Frontend Integration" section, or throws saying what is missing.
function extractSeedPlayer(guidePath) {
  if (!fs.existsSync(guidePath)) {
    throw new Error(`the seed guide is not found at ${guidePath}: this test runs the class ` +
                    'PumpFunStreamPlayer from its "Frontend Integration" section and needs the file ' +
                    '(../shared/seed/pumpfun-integration-guide.md next to the repository, or set ' +
                    'HAVEN_SEED_GUIDE to its path)');
  }
  const text = fs.readFileSync(guidePath, 'utf8');
  const section = text.search(/^## Frontend Integration\s*$/m);
  if (section < 0) throw new Error(`${guidePath}: no "## Frontend Integration" section`);
  const fence = /^```(?:javascript|js|jsx)\s*$/m.exec(text.slice(section));
  if (!fence) throw new Error(`${guidePath}: no javascript code block in "Frontend Integration"`);
  const blockStart = section + fence.index + fence[0].length;
  const blockEnd = text.indexOf('\n```', blockStart);
  if (blockEnd < 0) throw new Error(`${guidePath}: the React example's code block is not closed`);
  const block = text.slice(blockStart, blockEnd);
  const m = /^class PumpFunStreamPlayer \{/m.exec(block);
  if (!m) throw new Error(`${guidePath}: no line "class PumpFunStreamPlayer {" in the React example`);
  const open = m.index + m[0].length - 1;
  const close = matchingBrace(block, open);
  if (close < 0) throw new Error(`${guidePath}: no closing brace for class PumpFunStreamPlayer in the React example`);
  const marker = block.indexOf('// React Component Example');
  if (marker >= 0 && marker < close) {
    throw new Error(`${guidePath}: the class's closing brace found by counting is after "// React Component Example"`);
  }
  const source = block.slice(m.index, close + 1);
  const line = text.slice(0, blockStart + m.index).split('\n').length;
  // Check it in Node before the browser gets it: it compiles and has the methods the test calls.
  let cls;
  try {
    cls = vm.runInNewContext(`${source}\nPumpFunStreamPlayer`, {}, { filename: 'PumpFunStreamPlayer.js' });
  } catch (e) {
    throw new Error(`${guidePath}:${line}: the extracted class does not compile: ${e.message}`);
  }
  const methods = ['getAvailableStreams', 'getPopularStreams', 'startStream', 'stopStream', 'setCanvas',
                   'connectWebSocket', 'handleStreamData', 'displayVideoFrame', 'playAudioFrame'];
  const missing = methods.filter((k) => typeof cls.prototype[k] !== 'function');
  if (missing.length) throw new Error(`${guidePath}:${line}: the extracted class has no ${missing.join(', ')}`);
  return { source, line, lines: source.split('\n').length };
}

// ---------------------------------------------------------------------------------------------
// The third party's dev server: the page, the class, and a proxy for /api/... to haven.

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Pump.fun Live Streams (seed PumpFunStreamPlayer)</title>
<link rel="icon" href="data:,">
</head>
<body>
<h1>Pump.fun Live Streams</h1>
<canvas id="player" width="640" height="480" style="border: 1px solid #ccc; background: #000"></canvas>
<script src="/seed-player.js"></script>
</body>
</html>
`;

// Serves / and /seed-player.js; proxies /api/... to 127.0.0.1:havenPort with the browser's own
// headers (Host and Origin kept, as Vite's proxy does without changeOrigin). Every request is
// pushed to `log` ({method, url, origin, host, status, body} for proxied ones).
function startDevServer({ port, havenPort, script, log }) {
  const server = http.createServer((req, res) => {
    const entry = { method: req.method, url: req.url, origin: req.headers.origin ?? null,
                    host: req.headers.host ?? null, proxied: false, status: null, body: null };
    log.push(entry);
    if (req.url.startsWith('/api/')) {
      entry.proxied = true;
      const preq = http.request({
        host: '127.0.0.1', port: havenPort, method: req.method, path: req.url, headers: req.headers,
      }, (pres) => {
        entry.status = pres.statusCode;
        res.writeHead(pres.statusCode, pres.statusMessage, pres.headers);
        const chunks = [];
        pres.on('data', (d) => { if (chunks.length < 64) chunks.push(d); });
        pres.on('end', () => {
          if (entry.status >= 300 || req.method !== 'GET') entry.body = Buffer.concat(chunks).toString('utf8').slice(0, 600);
        });
        pres.pipe(res);
      });
      preq.on('error', (e) => {
        entry.status = 502;
        entry.body = `proxy error: ${e.message}`;
        if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'text/plain' });
        res.end(entry.body);
      });
      req.pipe(preq);
      return;
    }
    const send = (status, type, body) => {
      entry.status = status;
      res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(body);
    };
    if (req.method === 'GET' && (req.url === '/' || req.url === '/index.html')) return send(200, 'text/html; charset=utf-8', PAGE_HTML);
    if (req.method === 'GET' && req.url === '/seed-player.js') return send(200, 'text/javascript; charset=utf-8', script);
    return send(404, 'text/plain', 'not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => { run.servers.push(server); resolve(server); });
  });
}

// ---------------------------------------------------------------------------------------------
// State shared by the steps.

const S = {
  seed: null, wsPort: null, fake: null, sfu: null, base: null, havenLog: null,
  dev: null, devBase: null, devLog: [],
  page: null, pageErrors: [], consoleErrors: [], consoleLog: [], blocked: [],
  sfw: [], nsfw: [], mint: null,
};

const api = (pathname, opts = {}) => apiCall(S.base, pathname, opts);
const mints = (rows) => (Array.isArray(rows) ? rows.map((r) => r && r.mint_id) : rows);

// The dev server's entries for requests matching `re` since `from` (an index into S.devLog).
const devRequests = (re, from = 0) => S.devLog.slice(from).filter((e) => re.test(`${e.method} ${e.url}`));

const fmtReq = (e) => `${e.method} ${e.url} (Origin ${e.origin || '-'}, Host ${e.host}) -> ${e.status}` +
  (e.body && e.status >= 300 ? ` ${e.body}` : '');

// Luminance of the page's canvas, every 8th pixel, read with getImageData in the page.
async function sampleCanvas() {
  return S.page.evaluate(() => {
    const c = document.getElementById('player');
    const ctx = c.getContext('2d');
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const lum = [];
    let sum = 0;
    let max = 0;
    for (let y = 0; y < c.height; y += 8) {
      for (let x = 0; x < c.width; x += 8) {
        const i = (y * c.width + x) * 4;
        const v = 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
        lum.push(v);
        sum += v;
        if (v > max) max = v;
      }
    }
    return { width: c.width, height: c.height, mean: sum / lum.length, max, lum };
  });
}

// What the spies on the instance counted so far.
const spies = () => S.page.evaluate(() => ({ ...window.__seedSpy, now: performance.now() }));

// ---------------------------------------------------------------------------------------------
// Steps (lib.mjs runs them as TAP). A critical step stops the run when it fails.

step('extract class PumpFunStreamPlayer from the seed guide', async () => {
  S.seed = extractSeedPlayer(GUIDE);
  const ws = /new WebSocket\(`ws:\/\/localhost:(\d+)\/api\/live-sessions\/ws\/live\/\$\{mintId\}`\)/.exec(S.seed.source);
  assert(ws, 'the extracted class does not open `ws://localhost:PORT/api/live-sessions/ws/live/${mintId}`');
  S.wsPort = Number(ws[1]);
  diag(`${GUIDE}:${S.seed.line}: ${S.seed.lines} lines, ${S.seed.source.length} characters; ` +
       `its WebSocket URL is ws://localhost:${S.wsPort}/api/live-sessions/ws/live/\${mintId}`);
}, true);

step(`start the fake pump.fun, the fake SFU and haven on 127.0.0.1:8000 (the class's port)`, async () => {
  run.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'haven-browser-seed-'));
  await checkPortFree(S.wsPort, `the seed's PumpFunStreamPlayer connects to ws://localhost:${S.wsPort}, ` +
                      'so haven must listen there: run the test in a network namespace of its own ' +
                      "(make test does; or: unshare -n sh -c 'ip link set lo up; node ...')");
  ({ fake: S.fake, sfu: S.sfu } = await startFakes({ codec: 'h264', width: 1280, height: 720, fps: 30 }));
  const haven = await startHaven(HAVEN, { port: S.wsPort, fake: S.fake, sfu: S.sfu });
  S.base = haven.base;
  S.havenLog = haven.log;
  diag(`fake pump.fun :${S.fake.port}, fake SFU :${S.sfu.port}, haven ${S.base}, temp ${run.tmp}`);
}, true);

step('the fixture roster has SFW and NSFW live streams (from the API)', async () => {
  const sfw = await api('/api/pumpfun/live?limit=50&include_nsfw=false');
  const all = await api('/api/pumpfun/live?limit=50&include_nsfw=true');
  assert(sfw.status === 200 && all.status === 200, `live: ${sfw.status} ${all.status}`);
  S.sfw = mints(sfw.body);
  S.nsfw = all.body.filter((r) => r.nsfw).map((r) => r.mint_id);
  diag(`${S.sfw.length} SFW + ${S.nsfw.length} NSFW live streams`);
  assert(S.sfw.length >= 1, 'no SFW live stream in the fixture');
  assert(S.nsfw.length >= 1, 'no NSFW live stream in the fixture (the include_nsfw=false check would prove nothing)');
}, true);

step('a dev server on another port serves the page and the class, and proxies /api/ to haven', async () => {
  const port = await freePort();
  const script = `// class PumpFunStreamPlayer, extracted at test time from ${GUIDE} (line ${S.seed.line}), unmodified\n` +
                 `${S.seed.source}\nwindow.PumpFunStreamPlayer = PumpFunStreamPlayer;\n`;
  S.dev = await startDevServer({ port, havenPort: S.wsPort, script, log: S.devLog });
  S.devBase = `http://127.0.0.1:${port}`;
  const page = await fetch(`${S.devBase}/`);
  assert(page.status === 200 && /<canvas/.test(await page.text()), `dev server GET / answered ${page.status}`);
  const viaProxy = await fetch(`${S.devBase}/api/pumpfun/stats`);
  assert(viaProxy.status === 200, `GET /api/pumpfun/stats through the proxy answered ${viaProxy.status}`);
  const other = await fetch(`${S.devBase}/healthz`);
  assert(other.status === 404, `the dev server must proxy only /api/...: GET /healthz answered ${other.status}`);
  diag(`dev server ${S.devBase} (haven is ${S.base}, the class's WebSocket goes to ws://localhost:${S.wsPort})`);
}, true);

step('launch headless Chromium and load the page (another origin than haven)', async () => {
  const browser = await launchChromium(chromium, { mapRules: ['MAP localhost 127.0.0.1'] });
  diag(`browser ${browser.version()}`);
  const context = await browser.newContext({ viewport: { width: 900, height: 700 }, deviceScaleFactor: 1 });
  await keepOnLoopback(context, S.blocked);
  S.page = await context.newPage();
  watchPage(S.page, S);
  S.page.on('console', (m) => { if (m.type() !== 'error') S.consoleLog.push(`${m.type()}: ${m.text()}`); });
  await S.page.goto(`${S.devBase}/`, { waitUntil: 'load' });
  const info = await S.page.evaluate(() => {
    window.player = new window.PumpFunStreamPlayer();
    return { origin: location.origin, type: typeof window.PumpFunStreamPlayer,
             playing: window.player.isPlaying, canvas: !!document.getElementById('player') };
  });
  diag(`page origin ${info.origin}`);
  assert(info.type === 'function', `PumpFunStreamPlayer is ${info.type} in the page`);
  assert(info.canvas, 'no canvas in the page');
  assert(info.playing === false, 'a new PumpFunStreamPlayer has isPlaying !== false');
  assert(info.origin !== S.base && info.origin !== `http://localhost:${S.wsPort}`,
         `the page's origin ${info.origin} is haven's`);
}, true);

step('getAvailableStreams(false) returns the non-NSFW live streams (as haven lists them)', async () => {
  const from = S.devLog.length;
  const got = await S.page.evaluate(() => window.player.getAvailableStreams(false));
  const want = await api('/api/pumpfun/live?limit=50&include_nsfw=false');
  for (const e of devRequests(/\/api\//, from)) diag(`proxied: ${fmtReq(e)}`);
  const reqs = devRequests(/^GET \/api\/pumpfun\/live\?limit=50&include_nsfw=false$/, from);
  assert(reqs.length === 1, `the page's request did not reach the dev server's proxy (${reqs.length} seen)`);
  assert(Array.isArray(got), `getAvailableStreams(false) returned ${JSON.stringify(got).slice(0, 300)}`);
  diag(`getAvailableStreams(false): ${got.length} stream(s)`);
  assert(JSON.stringify(mints(got)) === JSON.stringify(mints(want.body)),
         `mints ${JSON.stringify(mints(got))} != haven's ${JSON.stringify(mints(want.body))}`);
  assert(got.every((r) => r.nsfw === false), 'an NSFW row in getAvailableStreams(false)');
  assert(!got.some((r) => S.nsfw.includes(r.mint_id)), 'an NSFW mint in getAvailableStreams(false)');
  for (const k of ['mint_id', 'name', 'symbol', 'num_participants', 'thumbnail']) {
    assert(got.every((r) => k in r), `a row of getAvailableStreams(false) has no ${k} (the React example shows it)`);
  }
});

step('getPopularStreams() returns what haven lists as popular', async () => {
  const from = S.devLog.length;
  const got = await S.page.evaluate(() => window.player.getPopularStreams());
  const want = await api('/api/pumpfun/popular?limit=20');
  for (const e of devRequests(/\/api\//, from)) diag(`proxied: ${fmtReq(e)}`);
  assert(Array.isArray(got), `getPopularStreams() returned ${JSON.stringify(got).slice(0, 300)}`);
  assert(got.length >= 1, 'getPopularStreams() returned no stream');
  diag(`getPopularStreams(): ${got.length} stream(s), participants ${got.map((r) => r.num_participants).join(', ')}`);
  assert(JSON.stringify(mints(got)) === JSON.stringify(mints(want.body)),
         `mints ${JSON.stringify(mints(got))} != haven's ${JSON.stringify(mints(want.body))}`);
});

step('setCanvas(canvas) + startStream(mint, false): success, stream_info for the mint, socket open', async () => {
  S.mint = S.sfw[0];
  const from = S.devLog.length;
  // Spies on the instance, each calling the original method.
  await S.page.evaluate(() => {
    const p = window.player;
    const s = { audioCalls: 0, audioBytes: 0, frames: 0, texts: [] };
    window.__seedSpy = s;
    const playAudioFrame = p.playAudioFrame;
    p.playAudioFrame = function (b64) {
      s.audioCalls++;
      s.audioBytes += (b64.length * 3) / 4 - (b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0);
      return playAudioFrame.call(this, b64);
    };
    const displayVideoFrame = p.displayVideoFrame;
    p.displayVideoFrame = function (blob) {
      s.frames++;
      return displayVideoFrame.call(this, blob);
    };
    const handleStreamData = p.handleStreamData;
    p.handleStreamData = function (event) {
      if (typeof event.data === 'string' && !event.data.startsWith('audio:') && s.texts.length < 20) {
        s.texts.push(event.data.slice(0, 300));
      }
      return handleStreamData.call(this, event);
    };
  });
  let out;
  try {
    out = await S.page.evaluate(async (mint) => {
      const p = window.player;
      p.setCanvas(document.getElementById('player'));
      try {
        const result = await p.startStream(mint, false);
        return { result, isPlaying: p.isPlaying, wsUrl: p.ws && p.ws.url };
      } catch (e) {
        return { error: String(e && e.message || e) };
      }
    }, S.mint);
  } finally {
    for (const e of devRequests(/\/api\//, from)) diag(`proxied: ${fmtReq(e)}`);
  }
  assert(!out.error, `startStream threw: ${out.error}`);
  const r = out.result;
  diag(`startStream: ${JSON.stringify(r).slice(0, 600)}`);
  assert(r && r.success === true, `startStream result has success ${r && r.success}`);
  assert(r.stream_info && typeof r.stream_info === 'object', 'startStream result has no stream_info object');
  assert(r.stream_info.mint_id === S.mint, `stream_info.mint_id ${r.stream_info.mint_id}, want ${S.mint}`);
  assert(out.isPlaying === true, 'isPlaying is not true after startStream');
  assert(out.wsUrl === `ws://localhost:${S.wsPort}/api/live-sessions/ws/live/${S.mint}`, `socket URL ${out.wsUrl}`);
  await waitFor(() => S.page.evaluate(() => window.player.ws && window.player.ws.readyState === 1),
                10000, 'the class\'s WebSocket to open (readyState 1)');
}, true);

step('play: the canvas changes between two samples 1 s apart and is not black', async () => {
  await waitFor(async () => (await spies()).frames > 0, 30000, 'a JPEG frame handed to displayVideoFrame');
  await sleep(1000);
  const f1 = await spies();
  const a = await sampleCanvas();
  await sleep(1000);
  const b = await sampleCanvas();
  const f2 = await spies();
  const diff = meanAbsDiff(a.lum, b.lum);
  const fps = (f2.frames - f1.frames) / ((f2.now - f1.now) / 1000);
  diag(`canvas ${a.width}x${a.height}: mean luminance ${a.mean.toFixed(1)} / ${b.mean.toFixed(1)}, ` +
       `max ${a.max.toFixed(0)} / ${b.max.toFixed(0)}, mean change ${diff.toFixed(2)}; ` +
       `${fps.toFixed(1)} JPEG frames/s handed to displayVideoFrame`);
  assert(a.max > 0 && b.max > 0, 'the canvas is all black');
  assert(a.mean > 30 && b.mean > 30, `canvas too dark (mean luminance ${a.mean.toFixed(1)}, ${b.mean.toFixed(1)})`);
  assert(diff > 0.5, `canvas did not change between two samples 1 s apart (mean change ${diff.toFixed(2)})`);
  fs.mkdirSync(SHOTS, { recursive: true });
  await S.page.screenshot({ path: path.join(SHOTS, 'seed-player.png') });
  diag(`screenshot ${path.join(SHOTS, 'seed-player.png')}`);
});

step('play: playAudioFrame is called ~50 times a second (20 ms chunks), 44.1 kHz mono as the class plays it', async () => {
  await waitFor(async () => (await spies()).audioCalls > 0, 15000, 'a call to playAudioFrame');
  // Counted over 10 s after the first 2: the page handles messages in bursts when the machine
  // is busy, and ±15 % over 10 s leaves 1.5 s for that.
  await sleep(2000);
  const a = await spies();
  await sleep(10000);
  const b = await spies();
  const secs = (b.now - a.now) / 1000;
  const rate = (b.audioCalls - a.audioCalls) / secs;
  const bytesRate = (b.audioBytes - a.audioBytes) / secs;
  const ctx = await S.page.evaluate(() => {
    const c = window.player.audioContext;
    return c ? { state: c.state, sampleRate: c.sampleRate } : null;
  });
  diag(`playAudioFrame: ${b.audioCalls - a.audioCalls} calls in ${secs.toFixed(2)} s = ${rate.toFixed(1)}/s, ` +
       `${Math.round(bytesRate)} PCM bytes/s (${((b.audioBytes - a.audioBytes) / Math.max(1, b.audioCalls - a.audioCalls)).toFixed(0)} per chunk); ` +
       `AudioContext ${JSON.stringify(ctx)}`);
  diag(`text messages other than audio: ${JSON.stringify(b.texts)}`);
  // Every check is made, then all that failed are reported together.
  const problems = [];
  if (!(Math.abs(rate / AUDIO_CHUNKS_PER_S - 1) <= 0.15)) {
    problems.push(`${rate.toFixed(1)} chunks/s, want ${AUDIO_CHUNKS_PER_S} ±15 % (20 ms chunks)`);
  }
  if (!(Math.abs(bytesRate / SEED_AUDIO_BYTES_PER_S - 1) <= 0.15)) {
    problems.push(`${Math.round(bytesRate)} PCM bytes/s, but the class plays them as 44.1 kHz mono s16 ` +
                  `(${SEED_AUDIO_BYTES_PER_S} bytes/s) ±15 %`);
  }
  if (!(ctx && ctx.state === 'running')) problems.push(`the class's AudioContext is ${JSON.stringify(ctx)}, want running`);
  const audioErrors = S.consoleErrors.filter((c) => /Error playing audio/.test(c));
  if (audioErrors.length) problems.push(`playAudioFrame logged ${audioErrors.length} error(s): ${audioErrors[0]}`);
  assert(problems.length === 0, problems.join('; '));
});

step('stopStream(mint): success, isPlaying false, socket closed, no session in haven', async () => {
  const from = S.devLog.length;
  let out;
  try {
    out = await S.page.evaluate(async (mint) => {
      const p = window.player;
      window.__seedWs = p.ws;
      try {
        const result = await p.stopStream(mint);
        return { result, isPlaying: p.isPlaying, ws: p.ws };
      } catch (e) {
        return { error: String(e && e.message || e) };
      }
    }, S.mint);
  } finally {
    for (const e of devRequests(/\/api\//, from)) diag(`proxied: ${fmtReq(e)}`);
  }
  assert(!out.error, `stopStream threw: ${out.error}`);
  diag(`stopStream: ${JSON.stringify(out.result)}`);
  assert(out.result && out.result.success === true, `stopStream result has success ${out.result && out.result.success}`);
  assert(out.isPlaying === false, 'isPlaying is not false after stopStream');
  assert(out.ws === null, 'player.ws is not null after stopStream');
  await waitFor(() => S.page.evaluate(() => window.__seedWs && window.__seedWs.readyState === 3),
                10000, 'the class\'s WebSocket to be closed (readyState 3)');
  const active = await api('/api/live-sessions/active');
  diag(`/api/live-sessions/active: ${JSON.stringify(active.body).slice(0, 300)}`);
  assert(active.status === 200, `/api/live-sessions/active answered ${active.status}`);
  const sessions = active.body.sessions || [];
  assert(!sessions.some((s) => s.mint_id === S.mint), `haven still lists a session for ${S.mint}`);
  assert(sessions.length === 0 && active.body.count === 0, `haven lists ${sessions.length} session(s)`);
  const s1 = await spies();
  await sleep(1000);
  const s2 = await spies();
  assert(s2.audioCalls === s1.audioCalls && s2.frames === s1.frames,
         `media still arriving after stop (audio ${s1.audioCalls} -> ${s2.audioCalls}, frames ${s1.frames} -> ${s2.frames})`);
});

step('no uncaught errors in the page; every /api/ request went through the dev server', async () => {
  if (S.blocked.length) diag(`${S.blocked.length} request(s) to other hosts were blocked, e.g. ${[...new Set(S.blocked)].slice(0, 3).join(' ')}`);
  for (const c of S.consoleErrors.slice(0, 20)) diag(`console.error: ${c}`);
  // Other console output, but the warning about this test's own getImageData reads.
  const other = S.consoleLog.filter((x) => !/^log: (WebSocket|Stream started)/.test(x) && !/willReadFrequently/.test(x));
  for (const c of other.slice(0, 10)) diag(`console ${c}`);
  const seen = S.consoleLog.filter((x) => /^log: (WebSocket|Stream started)/.test(x));
  diag(`the class logged: ${JSON.stringify([...new Set(seen)])}`);
  const proxied = S.devLog.filter((e) => e.proxied);
  diag(`${proxied.length} request(s) proxied to haven: ${[...new Set(proxied.map((e) => `${e.method} ${e.url.split('?')[0]} ${e.status}`))].join(', ')}`);
  assert(proxied.every((e) => e.status !== null && e.status < 400), `a proxied request failed: ${proxied.filter((e) => !(e.status < 400)).map(fmtReq).join('; ')}`);
  assert(S.pageErrors.length === 0, `uncaught errors:\n${S.pageErrors.join('\n')}`);
});

// ---------------------------------------------------------------------------------------------

runSteps({ pageErrors: () => S.pageErrors });

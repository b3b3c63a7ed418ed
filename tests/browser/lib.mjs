// What the browser tests share (player.test.mjs, seed-player.test.mjs): skipping when Chromium or
// node_modules is missing, TAP steps and their runner, free ports, starting the fake pump.fun
// API, the fake LiveKit SFU and the real haven binary on 127.0.0.1, launching Debian's Chromium
// kept on loopback, and the end of a run (children stopped, haven's log checked for a sanitizer
// report, the temporary directory removed).
//
// Network: `make test` runs the tests inside a loopback-only namespace. Even outside one, the
// browser is kept on 127.0.0.1: every request to another host is aborted (and listed), host
// resolution is mapped to nothing (but what a test maps on purpose), and background networking
// and component updates are off.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const CHROMIUM = process.env.HAVEN_CHROMIUM || '/usr/bin/chromium';
export const FAKE = path.join(ROOT, 'tests', 'fakes', 'fake_pumpfun.py');
export const SFU = path.join(ROOT, 'tests', 'fakes', 'livekit-sfu', 'sfu.js');
export const WEB = path.join(ROOT, 'web');

// A sanitized run (tests/sanitizers): haven gets the sanitizer options, and its log is checked
// for a report when it has stopped (see cleanup).
const SANITIZER_ENV = Object.fromEntries(
  ['ASAN_OPTIONS', 'LSAN_OPTIONS', 'UBSAN_OPTIONS', 'G_SLICE', 'HAVEN_TEST_SANITIZED']
    .filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
const SANITIZER_REPORT = /^(==\d+==ERROR: \w+Sanitizer|SUMMARY: \w+Sanitizer|.*: runtime error: )/m;

// ---------------------------------------------------------------------------------------------
// Skip only when the browser or the npm package is missing.

export function skip(reason) {
  console.log(`1..0 # SKIP ${reason}`);
  process.exit(0);
}

// Returns playwright-core's `chromium`, or skips the test when Chromium or the package is missing.
export function loadChromium() {
  if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} not installed (tools/install-deps.sh installs chromium)`);
  try {
    const require = createRequire(path.join(HERE, 'package.json'));
    return require('playwright-core').chromium;
  } catch (e) {
    skip('tests/browser/node_modules missing (tools/install-deps.sh runs npm ci there)');
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Helpers

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export const diag = (text) => {
  for (const line of String(text).split('\n')) console.log(`# ${line}`);
};

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

export function sameSet(a, b) {
  const sa = new Set(a);
  return sa.size === new Set(b).size && [...new Set(b)].every((x) => sa.has(x)) && a.length === b.length;
}

export function setDiff(a, b) {
  const sb = new Set(b);
  const sa = new Set(a);
  return `missing ${JSON.stringify(b.filter((x) => !sa.has(x)))}, unexpected ${JSON.stringify(a.filter((x) => !sb.has(x)))}`;
}

export function meanAbsDiff(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

export async function waitFor(fn, timeoutMs, what, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
                      (last instanceof Error ? ` (last error: ${last.message})` : ''));
    }
    await sleep(intervalMs);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Resolves when 127.0.0.1:port can be bound now; rejects with a clear message when it is taken.
export function checkPortFree(port, why) {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', (e) => reject(new Error(
      `127.0.0.1:${port} is not free (${e.code || e.message}); ${why}`)));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve()));
  });
}

// ---------------------------------------------------------------------------------------------
// Children: the fakes and haven. Everything started here is stopped by cleanup().

const children = [];

// Starts a child that prints `LISTENING <port>` on stdout once ready; returns {proc, port}.
export function startListening(cmd, args, name, timeoutMs) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(proc);
    let out = '';
    let err = '';
    proc.stderr.on('data', (d) => { err = (err + d).slice(-4000); });
    const timer = setTimeout(() => reject(new Error(`${name} did not print LISTENING within ${timeoutMs} ms: ${err}`)), timeoutMs);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /^LISTENING (\d+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout.resume();
        resolve({ proc, port: Number(m[1]), stderr: () => err });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening: ${err}`));
    });
  });
}

export async function stopChild(proc, timeoutMs = 10000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

// State of the run that cleanup() needs; the tests fill in tmp and browser.
// oldHavenLogs: logs of havens a test stopped and replaced (checked for a sanitizer report too).
export const run = { tmp: null, havenLog: null, oldHavenLogs: [], browser: null, sanitizerReport: null, servers: [] };

// The fake pump.fun API (fixture roster) and the fake LiveKit SFU (H.264 1280x720 30 fps
// scrolling bars and a 440 Hz Opus tone by default).
export async function startFakes({ codec = 'h264', width = 1280, height = 720, fps = 30 } = {}) {
  const fake = await startListening('python3', [FAKE, '--port', '0'], 'fake pump.fun', 15000);
  const sfu = await startListening('node', [SFU, '--port', '0', '--codec', codec, '--width', String(width),
                                            '--height', String(height), '--fps', String(fps)], 'fake SFU', 60000);
  return { fake, sfu };
}

// The real haven on 127.0.0.1:port against the fakes, with a database and recordings directory
// in run.tmp and its log in run.tmp/haven.log; waits for /healthz. Returns {proc, base, log}.
export async function startHaven(havenPath, { port, fake, sfu, env = {} }) {
  const base = `http://127.0.0.1:${port}`;
  const logPath = path.join(run.tmp, 'haven.log');
  run.havenLog = logPath;
  const log = fs.openSync(logPath, 'w');
  const fakeUrl = `http://127.0.0.1:${fake.port}`;
  const proc = spawn(havenPath, [], {
    stdio: ['ignore', log, log],
    env: {
      PATH: process.env.PATH || '/usr/bin:/bin',
      HAVEN_LISTEN: `127.0.0.1:${port}`,
      HAVEN_DB: path.join(run.tmp, 'haven.db'),
      HAVEN_RECORDINGS_DIR: path.join(run.tmp, 'recordings'),
      HAVEN_PUMPFUN_FRONTEND_API: fakeUrl,
      HAVEN_PUMPFUN_LIVESTREAM_API: fakeUrl,
      HAVEN_LIVEKIT_URL: `ws://127.0.0.1:${sfu.port}`,
      HAVEN_ICE_ADDRESSES: '127.0.0.1',
      HAVEN_LOG_LEVEL: 'debug',
      ...env,
      ...SANITIZER_ENV,
    },
  });
  fs.closeSync(log);
  children.push(proc);
  await waitFor(async () => {
    if (proc.exitCode !== null) throw new Error(`haven exited with ${proc.exitCode}`);
    const r = await fetch(`${base}/healthz`).catch(() => null);
    return r && (r.status === 200 || r.status === 503);
  }, 15000, 'haven /healthz');
  return { proc, base, log: logPath };
}

// GET/POST to haven (or any base URL); the body parsed as JSON when it is JSON.
export async function apiCall(base, pathname, opts = {}) {
  const res = await fetch(base + pathname, opts);
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, headers: res.headers, body };
}

export async function fakeControl(fake, what, payload) {
  const res = await fetch(`http://127.0.0.1:${fake.port}/__fake/${what}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload || {}),
  });
  assert(res.status === 200, `fake control ${what}: ${res.status} ${await res.text()}`);
}

// The last lines of haven's log, for a failure's diagnostics.
export function havenLogTail(n = 40) {
  if (!run.havenLog || !fs.existsSync(run.havenLog)) return '';
  return fs.readFileSync(run.havenLog, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
}

// ---------------------------------------------------------------------------------------------
// Chromium

// Host resolution: every name to nothing but 127.0.0.1. A test that must reach `localhost`
// passes 'MAP localhost 127.0.0.1' in mapRules (rules are tried in order, exclusions first).
export const NO_HOSTS = 'MAP * ~NOTFOUND, EXCLUDE 127.0.0.1';

// `args`: more command-line switches for this test's browser.
export async function launchChromium(chromium, { mapRules = [], args = [] } = {}) {
  run.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: [
      '--headless=new',
      '--no-sandbox', // root in a container; the pages are our own, served from loopback
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-domain-reliability',
      '--disable-client-side-phishing-detection',
      '--no-first-run',
      '--no-pings',
      '--disable-dev-shm-usage',
      `--host-resolver-rules=${[...mapRules, NO_HOSTS].join(', ')}`,
      ...args,
    ],
  });
  return run.browser;
}

// Keeps a context's pages on loopback: a request to any other host is aborted and its URL
// pushed to `blocked` (e.g. the fixture's thumbnails on example.com).
// `hosts`: more names the test maps to 127.0.0.1 itself (launchChromium's mapRules).
export async function keepOnLoopback(context, blocked, { hosts = [] } = {}) {
  await context.route('**/*', (route) => {
    const url = route.request().url();
    let host = '';
    try { host = new URL(url).hostname; } catch { /* not a URL we route */ }
    if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]' || hosts.includes(host)) return route.continue();
    blocked.push(url);
    return route.abort('blockedbyclient');
  });
}

// Collects a page's uncaught errors (and crash) and console.error lines.
export function watchPage(page, { pageErrors, consoleErrors }) {
  page.on('pageerror', (e) => pageErrors.push(String(e && e.stack || e)));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('crash', () => pageErrors.push('page crashed'));
}

// ---------------------------------------------------------------------------------------------
// The web player (web/): window.havenPlayer and the canvas, read in the page.

// A snapshot of window.havenPlayer (null without a player), with the page's performance.now().
export async function playerState(page) {
  return page.evaluate(() => {
    const p = window.havenPlayer;
    if (!p) return null;
    const badge = document.querySelector('[data-testid="player-mode"]');
    return {
      mint: p.mint, status: p.status, mode: p.mode, codec: p.codec, modeReason: p.modeReason,
      sockets: [...(p.sockets || [])], openedAt: p.openedAt, socketAt: p.socketAt, firstFrameAt: p.firstFrameAt,
      frames: p.frames, lastFrameAt: p.lastFrameAt, framesReceived: p.framesReceived,
      framesDropped: p.framesDropped, decodeErrors: p.decodeErrors, latencyMs: p.latencyMs,
      width: p.width, height: p.height,
      syncedToAudio: p.syncedToAudio,
      audio: p.audio ? { ...p.audio } : null,
      badge: badge ? { text: badge.textContent, mode: badge.getAttribute('data-mode') } : null,
      now: performance.now(),
    };
  });
}

// Draws the player canvas onto a small 2D canvas and returns its luminance values.
export async function sampleCanvas(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid="player-canvas"]');
    if (!c || !c.width || !c.height) return null;
    const w = 96;
    const h = 54;
    const o = document.createElement('canvas');
    o.width = w;
    o.height = h;
    const ctx = o.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(c, 0, 0, w, h);
    const d = ctx.getImageData(0, 0, w, h).data;
    const lum = [];
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) {
      const y = 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
      lum.push(y);
      sum += y;
    }
    return { width: c.width, height: c.height, mean: sum / lum.length, lum };
  });
}

// Checks that a stream plays in the open player: frames counted, canvas non-black and moving,
// at least minFps pictures drawn per second. Returns the measurements (fps drawn and received,
// ms from opening the player and from opening its last socket to the first picture).
export async function checkPlaying(page, mint, { minFps = 5, timeoutMs = 30000 } = {}) {
  const p0 = await waitFor(async () => {
    const p = await playerState(page);
    return p && p.mint === mint && p.frames > 0 ? p : null;
  }, timeoutMs, `window.havenPlayer.frames > 0 for ${mint}`);
  await sleep(1000);
  const a = await sampleCanvas(page);
  assert(a, 'player canvas missing or zero-sized');
  const s1 = await playerState(page);
  await sleep(1500);
  const b = await sampleCanvas(page);
  const s2 = await playerState(page);
  const secs = (s2.now - s1.now) / 1000;
  const fps = (s2.frames - s1.frames) / secs;
  const receivedFps = (s2.framesReceived - s1.framesReceived) / secs;
  const diff = meanAbsDiff(a.lum, b.lum);
  const m = {
    fps, receivedFps,
    firstFrameMs: s2.firstFrameAt - s2.openedAt,
    firstFrameAfterSocketMs: s2.firstFrameAt - s2.socketAt,
    state: s2,
  };
  diag(`${mint} [${s2.mode}${s2.codec ? ` ${s2.codec}` : ''}]: canvas ${a.width}x${a.height}, mean luminance ` +
       `${a.mean.toFixed(1)} / ${b.mean.toFixed(1)}, mean change ${diff.toFixed(2)}, frames ${p0.frames} -> ` +
       `${s2.frames} (${fps.toFixed(1)} fps drawn, ${receivedFps.toFixed(1)} received, dropped ${s2.framesDropped}, ` +
       `decode errors ${s2.decodeErrors}); first picture ${m.firstFrameMs.toFixed(0)} ms after opening the player, ` +
       `${m.firstFrameAfterSocketMs.toFixed(0)} ms after its last socket (${s2.sockets.join(' -> ')})`);
  assert(a.mean > 30 && b.mean > 30, `canvas too dark (mean luminance ${a.mean.toFixed(1)}, ${b.mean.toFixed(1)})`);
  assert(diff > 0.5, `canvas did not change between two samples 1.5 s apart (mean change ${diff.toFixed(2)})`);
  assert(s2.frames > s1.frames, `havenPlayer.frames did not increase (${s1.frames} -> ${s2.frames})`);
  assert(fps >= minFps, `only ${fps.toFixed(1)} frames/s counted (want >= ${minFps})`);
  return m;
}

// Checks the player's sound over `seconds`: the announced rate, chunks scheduled, their loudness
// (the fake SFU's tone), and scheduledSeconds growing with the wall clock (±tolerance). Returns
// the ratio.
export async function checkAudio(page, { seconds = 6, tolerance = 0.15, sampleRate = 48000 } = {}) {
  await waitFor(async () => { const p = await playerState(page); return p && p.audio && p.audio.chunks > 0; },
                15000, 'havenPlayer.audio.chunks > 0');
  await sleep(1000);
  const a = await playerState(page);
  await sleep(seconds * 1000);
  const b = await playerState(page);
  const wall = (b.now - a.now) / 1000;
  const sched = b.audio.scheduledSeconds - a.audio.scheduledSeconds;
  diag(`audio [${b.mode}] ${JSON.stringify(b.audio)}; scheduled ${sched.toFixed(3)} s in ${wall.toFixed(3)} s ` +
       `(ratio ${(sched / wall).toFixed(3)}), chunks +${b.audio.chunks - a.audio.chunks}, ` +
       `dropped +${(b.audio.dropped ?? 0) - (a.audio.dropped ?? 0)}`);
  assert(b.audio.sampleRate === sampleRate, `audio.sampleRate ${b.audio.sampleRate}, want ${sampleRate}`);
  assert(b.audio.channels >= 1, `audio.channels ${b.audio.channels}`);
  assert(b.audio.contextRate > 0, `audio.contextRate ${b.audio.contextRate}`);
  assert(b.audio.chunks > a.audio.chunks, `no audio chunk scheduled in ${seconds} s`);
  // The fakes' tone is a sine at 0.3 of full scale: RMS about 0.21 (not silence, not noise).
  assert(b.audio.level > 0.1 && b.audio.level < 0.35, `audio.level (RMS) ${b.audio.level}, want the tone's ~0.21`);
  assert(Math.abs(sched / wall - 1) <= tolerance, `scheduled ${sched.toFixed(3)} s of audio in ${wall.toFixed(3)} s`);
  return sched / wall;
}

// haven's GET /api/live-sessions/active entry for a mint (null when it has none).
export async function activeSession(base, mint) {
  const r = await apiCall(base, '/api/live-sessions/active');
  assert(r.status === 200, `/api/live-sessions/active answered ${r.status}`);
  return (r.body.sessions || []).find((x) => x.mint_id === mint) || null;
}

// Records the page's WebSockets, in order: {url, openedAt, closedAt, messages: [{at, msg}]} with
// the first JSON text messages parsed (times are Date.now()).
export function watchSockets(page, list) {
  page.on('websocket', (ws) => {
    const entry = { url: ws.url(), openedAt: Date.now(), closedAt: null, messages: [] };
    list.push(entry);
    ws.on('framereceived', (f) => {
      if (typeof f.payload !== 'string' || !f.payload.startsWith('{') || entry.messages.length >= 50) return;
      try { entry.messages.push({ at: Date.now(), msg: JSON.parse(f.payload) }); } catch { /* not JSON */ }
    });
    ws.on('close', () => { entry.closedAt = Date.now(); });
  });
}

// ---------------------------------------------------------------------------------------------
// TAP steps. A step marked critical stops the run when it fails; the rest are reported not ok.

const steps = [];
export const step = (name, fn, critical = false) => steps.push({ name, fn, critical });

export async function cleanup() {
  if (run.browser) await run.browser.close().catch(() => {});
  for (const s of run.servers) {
    await new Promise((r) => {
      try { s.closeAllConnections?.(); s.close(() => r()); } catch { r(); }
    });
  }
  const stopWait = process.env.HAVEN_TEST_SANITIZED ? 30000 : 10000;
  for (const p of children.reverse()) await stopChild(p, stopWait).catch(() => {});
  // haven has exited (SIGTERM): a sanitizer report in its log (an error while running, leaks at
  // exit) fails the run.
  for (const log of [...run.oldHavenLogs, run.havenLog]) {
    if (!log || !fs.existsSync(log)) continue;
    const text = fs.readFileSync(log, 'utf8');
    const m = SANITIZER_REPORT.exec(text);
    if (m) {
      run.sanitizerReport = text.slice(Math.max(0, text.lastIndexOf('\n', m.index) + 1)).slice(0, 6000);
      diag(`sanitizer report from haven (${path.basename(log)}):\n${run.sanitizerReport}`);
    }
  }
  if (run.tmp && !process.env.HAVEN_KEEP_TMP) fs.rmSync(run.tmp, { recursive: true, force: true });
}

// Runs the steps as TAP, then afterSteps(failed), then cleanup; exits 1 on any failure or a
// sanitizer report. pageErrors() lists the page errors so far (printed after a failed step).
export async function runSteps({ afterSteps = async () => {}, pageErrors = () => [], stepTimeoutMs = 90000 } = {}) {
  process.on('SIGTERM', async () => { await cleanup(); process.exit(1); });
  process.on('SIGINT', async () => { await cleanup(); process.exit(1); });
  try {
    console.log(`1..${steps.length}`);
    let failed = 0;
    let aborted = false;
    for (let i = 0; i < steps.length; i++) {
      const { name, fn, critical } = steps[i];
      if (aborted) {
        console.log(`not ok ${i + 1} - ${name}`);
        diag('not run: an earlier critical step failed');
        failed++;
        continue;
      }
      const t0 = Date.now();
      let timer;
      try {
        await Promise.race([fn(), new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`step timed out after ${stepTimeoutMs / 1000} s`)), stepTimeoutMs);
        })]);
        console.log(`ok ${i + 1} - ${name} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
      } catch (e) {
        failed++;
        console.log(`not ok ${i + 1} - ${name}`);
        diag(e && e.stack ? e.stack : String(e));
        const errs = pageErrors();
        if (errs.length) diag(`page errors so far:\n${errs.join('\n')}`);
        if (critical) aborted = true;
      } finally {
        clearTimeout(timer);
      }
    }
    if (failed) {
      const tail = havenLogTail(40);
      if (tail) diag(`last lines of haven's log:\n${tail}`);
    }
    await afterSteps(failed);
    await cleanup();
    process.exit(failed || run.sanitizerReport ? 1 : 0);
  } catch (e) {
    diag(e && e.stack ? e.stack : String(e));
    await cleanup();
    process.exit(1);
  }
}

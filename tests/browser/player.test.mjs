#!/usr/bin/env node
// haven's built-in web player (web/) driven in Debian's Chromium through playwright-core.
//
// Usage: node tests/browser/player.test.mjs PATH_TO_HAVEN [SCREENSHOT_DIR]
//
// Starts the fake pump.fun API (tests/fakes/fake_pumpfun.py), the fake LiveKit SFU
// (tests/fakes/livekit-sfu/sfu.js, H.264 1280x720 30 fps scrolling bars + 440 Hz Opus tone) and
// the real haven binary serving web/ (HAVEN_WEB_DIR), with a temp database and recordings
// directory, all on 127.0.0.1. Then a headless /usr/bin/chromium walks the issue's "Done when":
// the grid shows the fixture's live streams, the NSFW toggle and search filter them, a stream
// plays (changing, non-black canvas; audio scheduled at 48 kHz in real time), recording is
// toggled on and off, the player stops, and the recording is listed as finished.
//
// Prints TAP. Skips (1..0 # SKIP) only when Chromium or node_modules are missing, which
// tools/install-deps.sh prevents. Screenshots of the grid and the player go to SCREENSHOT_DIR
// (default <build>/meson-logs/screenshots, <build> being two levels above PATH_TO_HAVEN); with
// HAVEN_UPDATE_SCREENSHOTS=1 they are also copied to docs/screenshots/.
//
// Network: `make test` runs this inside a loopback-only namespace. Even outside one, the
// browser is kept on 127.0.0.1: every request to another host is aborted (and listed), host
// resolution is mapped to nothing, and background networking and component updates are off.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const HAVEN = path.resolve(process.argv[2] || path.join(ROOT, 'build', 'src', 'haven'));
const BUILD = path.dirname(path.dirname(HAVEN));
const SHOTS = path.resolve(process.argv[3] || process.env.HAVEN_SCREENSHOTS_DIR ||
                           path.join(BUILD, 'meson-logs', 'screenshots'));
const CHROMIUM = process.env.HAVEN_CHROMIUM || '/usr/bin/chromium';
const FAKE = path.join(ROOT, 'tests', 'fakes', 'fake_pumpfun.py');
const SFU = path.join(ROOT, 'tests', 'fakes', 'livekit-sfu', 'sfu.js');
const WEB = path.join(ROOT, 'web');
const FPS = 30;
// A sanitized run (tests/sanitizers): haven gets the sanitizer options, and its log is checked
// for a report when it has stopped (see cleanup).
const SANITIZER_ENV = Object.fromEntries(
  ['ASAN_OPTIONS', 'LSAN_OPTIONS', 'UBSAN_OPTIONS', 'G_SLICE', 'HAVEN_TEST_SANITIZED']
    .filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
const SANITIZER_REPORT = /^(==\d+==ERROR: \w+Sanitizer|SUMMARY: \w+Sanitizer|.*: runtime error: )/m;
let sanitizerReport = null;

// ---------------------------------------------------------------------------------------------
// Skip only when the browser or the npm package is missing.

function skip(reason) {
  console.log(`1..0 # SKIP ${reason}`);
  process.exit(0);
}
if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} not installed (tools/install-deps.sh installs chromium)`);
let chromium;
try {
  const require = createRequire(path.join(HERE, 'package.json'));
  ({ chromium } = require('playwright-core'));
} catch (e) {
  skip('tests/browser/node_modules missing (tools/install-deps.sh runs npm ci there)');
}

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const diag = (text) => {
  for (const line of String(text).split('\n')) console.log(`# ${line}`);
};

function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

function sameSet(a, b) {
  const sa = new Set(a);
  return sa.size === new Set(b).size && [...new Set(b)].every((x) => sa.has(x)) && a.length === b.length;
}

function setDiff(a, b) {
  const sb = new Set(b);
  const sa = new Set(a);
  return `missing ${JSON.stringify(b.filter((x) => !sa.has(x)))}, unexpected ${JSON.stringify(a.filter((x) => !sb.has(x)))}`;
}

async function waitFor(fn, timeoutMs, what, intervalMs = 100) {
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

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const children = [];

// Starts a child that prints `LISTENING <port>` on stdout once ready; returns {proc, port}.
function startListening(cmd, args, name, timeoutMs) {
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

async function stopChild(proc, timeoutMs = 10000) {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(t);
}

// ---------------------------------------------------------------------------------------------
// State shared by the steps.

const S = {
  tmp: null, fake: null, sfu: null, haven: null, havenLog: null, base: null,
  browser: null, page: null,
  pageErrors: [], consoleErrors: [], blocked: [], requests: [],
  sfw: [], nsfw: [], allLive: [], rows: new Map(),
  mint: null, recordingId: null,
};

async function api(pathname, opts = {}) {
  const res = await fetch(S.base + pathname, opts);
  const text = await res.text();
  let body = null;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, headers: res.headers, body };
}

async function fakeControl(what, payload) {
  const res = await fetch(`http://127.0.0.1:${S.fake.port}/__fake/${what}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload || {}),
  });
  assert(res.status === 200, `fake control ${what}: ${res.status} ${await res.text()}`);
}

const q = (id) => `[data-testid="${id}"]`;

async function cardMints() {
  return S.page.$$eval(q('stream-card'), (els) => els.map((e) => e.getAttribute('data-mint')));
}

async function gridIdle(timeoutMs = 15000) {
  await S.page.waitForFunction(() => {
    const g = document.querySelector('[data-testid="grid"]');
    return g && g.getAttribute('aria-busy') !== 'true';
  }, null, { timeout: timeoutMs });
}

// Waits until the cards' mints equal `want` (as a set); returns them.
async function expectCards(want, what, timeoutMs = 10000) {
  let got = [];
  try {
    await waitFor(async () => { got = await cardMints(); return sameSet(got, want); }, timeoutMs, what);
  } catch (e) {
    throw new Error(`${what}: cards ${setDiff(got, want)}`);
  }
  return got;
}

async function player() {
  return S.page.evaluate(() => {
    const p = window.havenPlayer;
    if (!p) return null;
    return { mint: p.mint, frames: p.frames, lastFrameAt: p.lastFrameAt,
             audio: p.audio ? { ...p.audio } : null, now: performance.now() };
  });
}

// Draws the player canvas onto a small 2D canvas and returns its luminance values.
async function sampleCanvas() {
  return S.page.evaluate(() => {
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

function meanAbsDiff(a, b) {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

// Checks that a stream plays in the open player: frames counted, canvas non-black and moving.
async function checkPlaying(mint) {
  const p0 = await waitFor(async () => {
    const p = await player();
    return p && p.mint === mint && p.frames > 0 ? p : null;
  }, 30000, `window.havenPlayer.frames > 0 for ${mint}`);
  await sleep(1000);
  const a = await sampleCanvas();
  assert(a, 'player canvas missing or zero-sized');
  const f1 = (await player()).frames;
  const t1 = Date.now();
  await sleep(1500);
  const b = await sampleCanvas();
  const f2 = (await player()).frames;
  const fps = (f2 - f1) / ((Date.now() - t1) / 1000);
  const diff = meanAbsDiff(a.lum, b.lum);
  diag(`${mint}: canvas ${a.width}x${a.height}, mean luminance ${a.mean.toFixed(1)} / ${b.mean.toFixed(1)}, ` +
       `mean change ${diff.toFixed(2)}, frames ${p0.frames} -> ${f2} (${fps.toFixed(1)} fps drawn)`);
  assert(a.mean > 30 && b.mean > 30, `canvas too dark (mean luminance ${a.mean.toFixed(1)}, ${b.mean.toFixed(1)})`);
  assert(diff > 0.5, `canvas did not change between two samples 1.5 s apart (mean change ${diff.toFixed(2)})`);
  assert(f2 > f1, `havenPlayer.frames did not increase (${f1} -> ${f2})`);
  assert(fps >= 5, `only ${fps.toFixed(1)} frames/s counted`);
}

// ---------------------------------------------------------------------------------------------
// Steps. A step marked critical stops the run when it fails; the rest are reported not ok.

const steps = [];
const step = (name, fn, critical = false) => steps.push({ name, fn, critical });

step('start the fake pump.fun, the fake SFU and haven serving web/', async () => {
  S.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'haven-browser-'));
  S.fake = await startListening('python3', [FAKE, '--port', '0'], 'fake pump.fun', 15000);
  S.sfu = await startListening('node', [SFU, '--port', '0', '--codec', 'h264', '--width', '1280',
                                        '--height', '720', '--fps', String(FPS)], 'fake SFU', 60000);
  const port = await freePort();
  S.base = `http://127.0.0.1:${port}`;
  S.havenLog = path.join(S.tmp, 'haven.log');
  const log = fs.openSync(S.havenLog, 'w');
  const fakeUrl = `http://127.0.0.1:${S.fake.port}`;
  S.haven = spawn(HAVEN, [], {
    stdio: ['ignore', log, log],
    env: {
      PATH: process.env.PATH || '/usr/bin:/bin',
      HAVEN_LISTEN: `127.0.0.1:${port}`,
      HAVEN_DB: path.join(S.tmp, 'haven.db'),
      HAVEN_RECORDINGS_DIR: path.join(S.tmp, 'recordings'),
      HAVEN_WEB_DIR: WEB,
      HAVEN_PUMPFUN_FRONTEND_API: fakeUrl,
      HAVEN_PUMPFUN_LIVESTREAM_API: fakeUrl,
      HAVEN_LIVEKIT_URL: `ws://127.0.0.1:${S.sfu.port}`,
      HAVEN_ICE_ADDRESSES: '127.0.0.1',
      HAVEN_SNAPSHOT_INTERVAL: '0', // a history point per roster refresh, for the chart
      HAVEN_LOG_LEVEL: 'debug',
      ...SANITIZER_ENV,
    },
  });
  fs.closeSync(log);
  children.push(S.haven);
  await waitFor(async () => {
    if (S.haven.exitCode !== null) throw new Error(`haven exited with ${S.haven.exitCode}`);
    const r = await fetch(`${S.base}/healthz`).catch(() => null);
    return r && (r.status === 200 || r.status === 503);
  }, 15000, 'haven /healthz');
  diag(`fake pump.fun :${S.fake.port}, fake SFU :${S.sfu.port}, haven ${S.base}, temp ${S.tmp}`);
}, true);

step('GET / serves the page (HTML)', async () => {
  const r = await fetch(`${S.base}/`);
  const type = r.headers.get('content-type') || '';
  const body = await r.text();
  assert(r.status === 200, `GET / answered ${r.status}: ${body.slice(0, 200)}`);
  assert(/text\/html/.test(type), `GET / content-type ${type}`);
  assert(/<html|<!doctype html/i.test(body), 'GET / body is not HTML');
}, true);

step('the fixture roster has SFW and NSFW live streams (from the API)', async () => {
  const sfw = await api('/api/pumpfun/live?include_nsfw=false&limit=100');
  const all = await api('/api/pumpfun/live?include_nsfw=true&limit=100');
  assert(sfw.status === 200 && all.status === 200, `live: ${sfw.status} ${all.status}`);
  for (const r of all.body) S.rows.set(r.mint_id, r);
  S.sfw = sfw.body.map((r) => r.mint_id);
  S.allLive = all.body.map((r) => r.mint_id);
  S.nsfw = all.body.filter((r) => r.nsfw).map((r) => r.mint_id);
  diag(`${S.sfw.length} SFW + ${S.nsfw.length} NSFW live streams`);
  assert(S.sfw.length >= 2, 'fewer than 2 SFW live streams in the fixture');
  assert(S.nsfw.length >= 1, 'no NSFW live stream in the fixture');
  assert(sfw.body.every((r) => !r.nsfw), 'include_nsfw=false returned an NSFW row');
}, true);

step('launch headless Chromium (playwright-core, Debian chromium)', async () => {
  S.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 60000,
    args: [
      '--headless=new',
      '--no-sandbox', // root in a container; the page is our own, served from loopback
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
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    ],
  });
  diag(`browser ${S.browser.version()}`);
  const context = await S.browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  // Keep the page on loopback; remember what it tried to reach elsewhere (e.g. thumbnails).
  await context.route('**/*', (route) => {
    const url = route.request().url();
    let host = '';
    try { host = new URL(url).hostname; } catch { /* not a URL we route */ }
    if (host === '127.0.0.1' || host === 'localhost' || host === '[::1]') return route.continue();
    S.blocked.push(url);
    return route.abort('blockedbyclient');
  });
  // Delay the live list a little so that the loading state can be seen.
  await context.route(/\/api\/pumpfun\/(live|popular)/, async (route) => {
    await sleep(400);
    return route.fallback();
  });
  // Record every value the grid's aria-busy takes, from the first paint on.
  await context.addInitScript(() => {
    window.__busySeen = [];
    const note = () => {
      const g = document.querySelector('[data-testid="grid"]');
      if (g) window.__busySeen.push(g.getAttribute('aria-busy'));
    };
    new MutationObserver(note).observe(document, {
      subtree: true, childList: true, attributes: true, attributeFilter: ['aria-busy'],
    });
  });
  S.page = await context.newPage();
  S.page.on('pageerror', (e) => S.pageErrors.push(String(e && e.stack || e)));
  S.page.on('console', (m) => { if (m.type() === 'error') S.consoleErrors.push(m.text()); });
  S.page.on('crash', () => S.pageErrors.push('page crashed'));
  S.page.on('request', (r) => S.requests.push({ req: r, url: r.url(), at: Date.now() }));
  S.page.on('response', (r) => {
    const rq = S.requests.find((x) => x.req === r.request());
    if (rq) rq.status = r.status();
  });
}, true);

step('load / : the grid shows exactly the SFW live streams, loading state first', async () => {
  await S.page.goto(`${S.base}/`, { waitUntil: 'domcontentloaded' });
  await S.page.waitForSelector(q('grid'), { timeout: 15000 });
  await gridIdle();
  await expectCards(S.sfw, 'grid on load');
  const busy = await S.page.evaluate(() => window.__busySeen);
  assert(busy.includes('true'), `grid never had aria-busy="true" while loading (seen: ${JSON.stringify(busy)})`);
  const flags = await S.page.$$eval(q('stream-card'), (els) => els.map((e) => e.getAttribute('data-nsfw')));
  assert(flags.every((f) => f === 'false'), `SFW cards must have data-nsfw="false": ${JSON.stringify(flags)}`);
  assert(!(await S.page.isChecked(q('nsfw-toggle'))), 'NSFW toggle is on by default');
  const hash = await S.page.evaluate(() => location.hash);
  assert(hash === '' || hash === '#/' || hash === '#', `unexpected hash on / : ${hash}`);
  await S.page.waitForTimeout(500); // let thumbnails settle for the picture
  fs.mkdirSync(SHOTS, { recursive: true });
  await S.page.screenshot({ path: path.join(SHOTS, 'grid.png') });
}, true);

step('stats, tabs and refresh', async () => {
  const stats = (await api('/api/pumpfun/stats')).body;
  const text = (await S.page.textContent(q('stats'))) || '';
  diag(`stats: ${JSON.stringify(text.trim())}`);
  assert([stats.total_live_streams, stats.sfw_streams].some((n) => text.includes(String(n))),
         `[data-testid=stats] shows neither ${stats.total_live_streams} nor ${stats.sfw_streams}: ${text}`);
  await S.page.click(q('tab-popular'));
  await gridIdle();
  const popular = (await api('/api/pumpfun/popular?include_nsfw=false&limit=50')).body.map((r) => r.mint_id);
  const got = await expectCards(popular, 'popular tab');
  assert(JSON.stringify(got) === JSON.stringify(popular),
         `popular tab order ${JSON.stringify(got)} != API order ${JSON.stringify(popular)}`);
  await S.page.click(q('tab-live'));
  await gridIdle();
  await expectCards(S.sfw, 'live tab');
  const before = Date.now();
  await S.page.click(q('refresh'));
  await waitFor(() => S.requests.some((r) => r.at >= before && /\/api\/pumpfun\/(live|popular)/.test(r.url)),
                5000, 'a live-list request after clicking refresh');
  await gridIdle();
  await expectCards(S.sfw, 'grid after refresh');
});

step('NSFW toggle shows the NSFW streams and hides them again', async () => {
  await S.page.click(q('nsfw-toggle'));
  await gridIdle();
  await expectCards(S.allLive, 'grid with NSFW on');
  for (const m of S.nsfw) {
    const flag = await S.page.getAttribute(`${q('stream-card')}[data-mint="${m}"]`, 'data-nsfw');
    assert(flag === 'true', `NSFW card ${m} has data-nsfw=${flag}`);
  }
  await S.page.click(q('nsfw-toggle'));
  await gridIdle();
  await expectCards(S.sfw, 'grid with NSFW off again');
});

step('search filters the grid; no match shows the empty state', async () => {
  // A name that only one row's searchable text contains.
  const texts = S.sfw.map((m) => {
    const r = S.rows.get(m);
    return [r.name, r.symbol, r.mint_id, r.livestream_title, r.description].filter(Boolean).join(' ').toLowerCase();
  });
  const pick = S.sfw.find((m) => {
    const name = (S.rows.get(m).name || '').toLowerCase();
    return name && texts.filter((t) => t.includes(name)).length === 1;
  });
  assert(pick, 'no SFW stream with a unique name to search for');
  const term = S.rows.get(pick).name;
  await S.page.fill(q('search'), term);
  await expectCards([pick], `search "${term}"`);
  await S.page.fill(q('search'), 'zzzz-no-such-stream-zzzz');
  await expectCards([], 'search with no match');
  assert(await S.page.isVisible(q('empty')), '[data-testid=empty] not visible with no match');
  await S.page.fill(q('search'), '');
  await expectCards(S.sfw, 'search cleared');
  assert(!(await S.page.isVisible(q('empty'))), '[data-testid=empty] still visible with cards shown');
});

step('banner: shown while pump.fun fails (stale roster), gone when it recovers', async () => {
  // haven keeps serving the last good roster, marked stale, once it is older than the catalog
  // TTL (10 s) and pump.fun fails; the page says so in the banner.
  await fakeControl('fault', { route: 'currently-live', fault: '500' });
  try {
    await waitFor(async () => {
      await S.page.click(q('refresh'));
      await sleep(1500);
      return S.page.isVisible(q('banner'));
    }, 30000, '[data-testid=banner] visible while pump.fun answers 500', 0);
    diag(`banner: ${JSON.stringify(((await S.page.textContent(q('banner'))) || '').trim())}`);
    await expectCards(S.sfw, 'grid while stale'); // still served from the last good roster
  } finally {
    // The recovered roster has a new viewer count for the stream opened next, so its history
    // chart gets a second, different snapshot (HAVEN_SNAPSHOT_INTERVAL=0).
    const m = S.sfw[0];
    await fakeControl('roster', { set: { [m]: { num_participants: S.rows.get(m).num_participants + 257 } } });
    await fakeControl('fault', { route: 'currently-live', fault: 'none' });
  }
  await waitFor(async () => {
    await S.page.click(q('refresh'));
    await sleep(1500);
    return !(await S.page.isVisible(q('banner')));
  }, 20000, '[data-testid=banner] hidden after pump.fun recovers', 0);
});

step('open a stream from its card: #/watch/<mint>, changing non-black frames', async () => {
  S.mint = S.sfw[0];
  await S.page.click(`${q('stream-card')}[data-mint="${S.mint}"]`);
  await waitFor(async () => (await S.page.evaluate(() => location.hash)) === `#/watch/${S.mint}`,
                5000, `hash #/watch/${S.mint}`);
  await S.page.waitForSelector(q('player-canvas'), { timeout: 10000 });
  await checkPlaying(S.mint);
  for (const id of ['player-status', 'player-stats', 'player-fps', 'volume', 'mute', 'player-stop',
                    'record-toggle', 'history-chart']) {
    assert(await S.page.$(q(id)), `[data-testid=${id}] missing in the player`);
  }
  const fpsText = (await S.page.textContent(q('player-fps'))) || '';
  diag(`player-fps ${JSON.stringify(fpsText.trim())}, status ${JSON.stringify(((await S.page.textContent(q('player-status'))) || '').trim())}`);
  assert(/[1-9]/.test(fpsText), `[data-testid=player-fps] shows no frame rate: ${fpsText}`);
}, true);

step('audio: 48 kHz PCM scheduled at wall-clock rate (±15 % over 6 s)', async () => {
  await waitFor(async () => { const p = await player(); return p && p.audio && p.audio.chunks > 0; },
                15000, 'havenPlayer.audio.chunks > 0');
  await sleep(1000);
  const a = await player();
  await sleep(6000);
  const b = await player();
  const wall = (b.now - a.now) / 1000;
  const sched = b.audio.scheduledSeconds - a.audio.scheduledSeconds;
  diag(`audio ${JSON.stringify(b.audio)}; scheduled ${sched.toFixed(3)} s in ${wall.toFixed(3)} s ` +
       `(ratio ${(sched / wall).toFixed(3)}), chunks +${b.audio.chunks - a.audio.chunks}, ` +
       `dropped +${(b.audio.dropped ?? 0) - (a.audio.dropped ?? 0)}`);
  assert(b.audio.sampleRate === 48000, `audio.sampleRate ${b.audio.sampleRate}, want 48000`);
  assert(b.audio.channels >= 1, `audio.channels ${b.audio.channels}`);
  assert(b.audio.contextRate > 0, `audio.contextRate ${b.audio.contextRate}`);
  assert(b.audio.chunks > a.audio.chunks, 'no audio chunk arrived in 6 s');
  assert(Math.abs(sched / wall - 1) <= 0.15, `scheduled ${sched.toFixed(3)} s of audio in ${wall.toFixed(3)} s`);
});

step('history chart loads GET /api/pumpfun/history/<mint>', async () => {
  const re = new RegExp(`/api/pumpfun/history/${S.mint}`);
  const r = await waitFor(() => S.requests.find((x) => re.test(x.url) && x.status !== undefined),
                          10000, 'a history request from the page');
  assert(r.status === 200, `history answered ${r.status}`);
  assert(await S.page.isVisible(q('history-chart')), '[data-testid=history-chart] not visible');
  const points = (await api(`/api/pumpfun/history/${S.mint}`)).body.points || [];
  diag(`history: ${points.length} point(s): ${points.map((p) => p.num_participants).join(', ')}`);
  if (points.length >= 2) {
    await S.page.waitForSelector(`${q('history-chart')} svg`, { timeout: 5000 });
  }
  await S.page.waitForTimeout(300);
  await S.page.screenshot({ path: path.join(SHOTS, 'player.png') });
});

step('record toggle: on for 4 s, then off; the recording is finished', async () => {
  assert((await S.page.getAttribute(q('record-toggle'), 'aria-pressed')) === 'false',
         'record-toggle should start with aria-pressed="false"');
  await S.page.click(q('record-toggle'));
  await waitFor(async () => (await S.page.getAttribute(q('record-toggle'), 'aria-pressed')) === 'true',
                10000, 'record-toggle aria-pressed="true"');
  const rec = await waitFor(async () => {
    const r = await api(`/api/recordings?mint_id=${S.mint}&status=recording`);
    return r.body.recordings && r.body.recordings[0];
  }, 15000, 'a recording in status "recording"');
  S.recordingId = rec.id;
  await sleep(4000);
  await S.page.click(q('record-toggle'));
  await waitFor(async () => (await S.page.getAttribute(q('record-toggle'), 'aria-pressed')) === 'false',
                10000, 'record-toggle aria-pressed="false"');
  const done = await waitFor(async () => {
    const r = await api(`/api/recordings/${S.recordingId}`);
    return r.body.status === 'finished' ? r.body : null;
  }, 20000, `recording ${S.recordingId} finished`);
  diag(`recording ${done.id}: ${done.container} ${done.video_codec} ${done.width}x${done.height}, ` +
       `${done.duration_seconds} s, ${done.bytes} bytes`);
  assert(done.duration_seconds >= 2, `recording only ${done.duration_seconds} s long`);
});

step('stop: the player stops receiving frames', async () => {
  await S.page.click(q('player-stop'));
  await sleep(1500);
  const a = await player();
  await sleep(1500);
  const b = await player();
  diag(`after stop: havenPlayer ${a ? `frames ${a.frames} -> ${b && b.frames}` : 'gone'}, hash ${await S.page.evaluate(() => location.hash)}`);
  assert(!a || !b || a.frames === b.frames, `frames still increasing after stop (${a && a.frames} -> ${b && b.frames})`);
});

step('#/recordings lists the recording as finished; nav back to the streams', async () => {
  await S.page.click(q('nav-recordings'));
  await waitFor(async () => (await S.page.evaluate(() => location.hash)) === '#/recordings',
                5000, 'hash #/recordings');
  const row = `${q('recording-row')}[data-id="${S.recordingId}"]`;
  await S.page.waitForSelector(row, { timeout: 10000 });
  const status = ((await S.page.textContent(`${row} ${q('recording-status')}`)) || '').trim();
  const rowHtml = await S.page.$eval(row, (e) => e.outerHTML);
  diag(`row ${S.recordingId}: status ${JSON.stringify(status)}`);
  assert(/finished/i.test(status), `recording-status is ${JSON.stringify(status)}, want finished`);
  assert(rowHtml.includes(S.mint), `recording row ${S.recordingId} does not reference ${S.mint}`);
  await S.page.click(q('nav-streams'));
  await waitFor(async () => ['', '#', '#/'].includes(await S.page.evaluate(() => location.hash)),
                5000, 'hash #/');
  await gridIdle();
  await expectCards(S.sfw, 'grid after nav-streams');
});

step('deep link #/watch/<another mint> plays too (any live mint is joinable)', async () => {
  const other = S.nsfw[0] || S.sfw[1];
  await S.page.goto(`${S.base}/#/watch/${other}`);
  await S.page.waitForSelector(q('player-canvas'), { timeout: 10000 });
  await checkPlaying(other);
  await S.page.click(q('player-stop'));
});

step('no uncaught errors in the page', async () => {
  if (S.blocked.length) {
    diag(`${S.blocked.length} request(s) to other hosts were blocked, e.g. ${[...new Set(S.blocked)].slice(0, 3).join(' ')}`);
  }
  // Blocked remote thumbnails each log "Failed to load resource"; count those, print the rest.
  const blockedLoads = S.consoleErrors.filter((c) => /ERR_BLOCKED_BY_CLIENT/.test(c));
  if (blockedLoads.length) diag(`${blockedLoads.length} console error(s) for the blocked requests`);
  for (const c of S.consoleErrors.filter((x) => !blockedLoads.includes(x)).slice(0, 20)) diag(`console.error: ${c}`);
  assert(S.pageErrors.length === 0, `uncaught errors:\n${S.pageErrors.join('\n')}`);
});

// ---------------------------------------------------------------------------------------------

async function cleanup() {
  if (S.browser) await S.browser.close().catch(() => {});
  const stopWait = process.env.HAVEN_TEST_SANITIZED ? 30000 : 10000;
  for (const p of children.reverse()) await stopChild(p, stopWait).catch(() => {});
  // haven has exited (SIGTERM): a sanitizer report in its log (an error while running, leaks at
  // exit) fails the run.
  if (S.havenLog && fs.existsSync(S.havenLog)) {
    const text = fs.readFileSync(S.havenLog, 'utf8');
    const m = SANITIZER_REPORT.exec(text);
    if (m) {
      sanitizerReport = text.slice(Math.max(0, text.lastIndexOf('\n', m.index) + 1)).slice(0, 6000);
      diag(`sanitizer report from haven:\n${sanitizerReport}`);
    }
  }
  if (S.tmp && !process.env.HAVEN_KEEP_TMP) fs.rmSync(S.tmp, { recursive: true, force: true });
}

process.on('SIGTERM', async () => { await cleanup(); process.exit(1); });
process.on('SIGINT', async () => { await cleanup(); process.exit(1); });

async function main() {
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
    try {
      await Promise.race([fn(), sleep(90000).then(() => { throw new Error('step timed out after 90 s'); })]);
      console.log(`ok ${i + 1} - ${name} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
    } catch (e) {
      failed++;
      console.log(`not ok ${i + 1} - ${name}`);
      diag(e && e.stack ? e.stack : String(e));
      if (S.pageErrors.length) diag(`page errors so far:\n${S.pageErrors.join('\n')}`);
      if (critical) aborted = true;
    }
  }
  if (failed && S.havenLog && fs.existsSync(S.havenLog)) {
    const lines = fs.readFileSync(S.havenLog, 'utf8').trimEnd().split('\n');
    diag(`last lines of haven's log:\n${lines.slice(-40).join('\n')}`);
  }
  for (const f of ['grid.png', 'player.png']) {
    const src = path.join(SHOTS, f);
    if (!fs.existsSync(src)) continue;
    diag(`screenshot ${src}`);
    if (process.env.HAVEN_UPDATE_SCREENSHOTS === '1' && !failed) {
      const dst = path.join(ROOT, 'docs', 'screenshots', f);
      fs.mkdirSync(path.dirname(dst), { recursive: true });
      fs.copyFileSync(src, dst);
      diag(`updated ${path.relative(ROOT, dst)}`);
    }
  }
  await cleanup();
  process.exit(failed || sanitizerReport ? 1 : 0);
}

main().catch(async (e) => {
  diag(e && e.stack ? e.stack : String(e));
  await cleanup();
  process.exit(1);
});

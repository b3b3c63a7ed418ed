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
// The player plays the card's stream in the encoded mode (WebCodecs decodes H.264 and Opus in the
// page; haven decodes nothing, codec changes and haven's reconnects are followed) and a deep link
// with ?mode=jpeg in JPEG mode; tests/browser/player-fallback.test.mjs covers the fallback.
//
// Prints TAP. Skips (1..0 # SKIP) only when Chromium or node_modules are missing, which
// tools/install-deps.sh prevents. Screenshots of the grid and the player go to SCREENSHOT_DIR
// (default <build>/meson-logs/screenshots, <build> being two levels above PATH_TO_HAVEN); with
// HAVEN_UPDATE_SCREENSHOTS=1 they are also copied to docs/screenshots/.
//
// Network: `make test` runs this inside a loopback-only namespace. Even outside one, the
// browser is kept on 127.0.0.1: every request to another host is aborted (and listed), host
// resolution is mapped to nothing, and background networking and component updates are off.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ROOT, WEB, loadChromium, sleep, diag, assert, sameSet, setDiff, waitFor, freePort,
  run, startFakes, startHaven, apiCall, fakeControl as fakeControlOf, launchChromium, keepOnLoopback,
  watchPage, watchSockets, playerState, checkPlaying, checkAudio, activeSession, step, runSteps,
} from './lib.mjs';

const HAVEN = path.resolve(process.argv[2] || path.join(ROOT, 'build', 'src', 'haven'));
const BUILD = path.dirname(path.dirname(HAVEN));
const SHOTS = path.resolve(process.argv[3] || process.env.HAVEN_SCREENSHOTS_DIR ||
                           path.join(BUILD, 'meson-logs', 'screenshots'));
const FPS = 30;
const HAVEN_ENV = {
  HAVEN_WEB_DIR: WEB,
  HAVEN_SNAPSHOT_INTERVAL: '0', // a history point per roster refresh, for the chart
};
// Pictures drawn per second that count as playing: a tenth of the source's rate, because the
// 2-core machine runs the fake's encoder, haven and Chromium at once (and often other work).
const MIN_FPS = FPS / 10;

// Skips (1..0 # SKIP) when Chromium or node_modules is missing.
const chromium = loadChromium();

// ---------------------------------------------------------------------------------------------
// State shared by the steps.

const S = {
  tmp: null, fake: null, sfu: null, haven: null, havenLog: null, base: null, port: 0,
  browser: null, page: null,
  pageErrors: [], consoleErrors: [], blocked: [], requests: [], sockets: [],
  sfw: [], nsfw: [], allLive: [], rows: new Map(),
  mint: null, recordingId: null,
};

const api = (pathname, opts = {}) => apiCall(S.base, pathname, opts);
const fakeControl = (what, payload) => fakeControlOf(S.fake, what, payload);

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

const player = () => playerState(S.page);

// ---------------------------------------------------------------------------------------------
// Steps (lib.mjs runs them as TAP). A critical step stops the run when it fails.

step('start the fake pump.fun, the fake SFU and haven serving web/', async () => {
  S.tmp = run.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'haven-browser-'));
  ({ fake: S.fake, sfu: S.sfu } = await startFakes({ codec: 'h264', width: 1280, height: 720, fps: FPS }));
  S.port = await freePort();
  const haven = await startHaven(HAVEN, { port: S.port, fake: S.fake, sfu: S.sfu, env: HAVEN_ENV });
  S.haven = haven.proc;
  S.havenLog = haven.log;
  S.base = haven.base;
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
  S.browser = await launchChromium(chromium);
  diag(`browser ${S.browser.version()}`);
  const context = await S.browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 });
  // Keep the page on loopback; remember what it tried to reach elsewhere (e.g. thumbnails).
  await keepOnLoopback(context, S.blocked);
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
  watchPage(S.page, S);
  watchSockets(S.page, S.sockets);
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

step('open a stream from its card: #/watch/<mint>, changing non-black frames, encoded mode (WebCodecs)', async () => {
  S.mint = S.sfw[0];
  const firstSocket = S.sockets.length;
  await S.page.click(`${q('stream-card')}[data-mint="${S.mint}"]`);
  await waitFor(async () => (await S.page.evaluate(() => location.hash)) === `#/watch/${S.mint}`,
                5000, `hash #/watch/${S.mint}`);
  await S.page.waitForSelector(q('player-canvas'), { timeout: 10000 });
  const m = await checkPlaying(S.page, S.mint, { minFps: MIN_FPS });
  // 127.0.0.1 is a secure context: WebCodecs exists and decodes H.264, so the player asked haven
  // for the encoded stream and decodes it itself, with no JPEG socket.
  const st = m.state;
  const urls = S.sockets.slice(firstSocket).map((x) => x.url);
  diag(`mode ${st.mode}, codec ${st.codec}, badge ${JSON.stringify(st.badge)}, sockets ${JSON.stringify(urls)}, ` +
       `video paced by the audio clock: ${st.syncedToAudio}, latency ${st.latencyMs} ms`);
  assert(st.mode === 'encoded', `havenPlayer.mode is ${st.mode} (${st.modeReason}), want encoded`);
  assert(/^avc1\.[0-9A-F]{6}$/i.test(st.codec || ''), `havenPlayer.codec ${st.codec}, want avc1.PPCCLL`);
  assert(st.badge && st.badge.mode === 'encoded' && st.badge.text === `WebCodecs (${st.codec})`,
         `[data-testid=player-mode] ${JSON.stringify(st.badge)}, want "WebCodecs (${st.codec})" with data-mode="encoded"`);
  assert((await S.page.getAttribute('section.player', 'data-mode')) === 'encoded', 'section.player data-mode is not encoded');
  assert(urls.length === 1 && /[?&]mode=encoded(&|$)/.test(urls[0]), `sockets opened: ${JSON.stringify(urls)}, want one ?mode=encoded`);
  assert(JSON.stringify(st.sockets) === '["encoded"]', `havenPlayer.sockets ${JSON.stringify(st.sockets)}`);
  const fmt = S.sockets[firstSocket].messages.map((x) => x.msg).find((x) => x.type === 'format' && x.video);
  assert(fmt && fmt.mode === 'encoded' && fmt.video.codec === st.codec,
         `the socket's format message ${JSON.stringify(fmt)} does not announce ${st.codec}`);
  for (const id of ['player-status', 'player-stats', 'player-fps', 'volume', 'mute', 'player-stop',
                    'record-toggle', 'history-chart']) {
    assert(await S.page.$(q(id)), `[data-testid=${id}] missing in the player`);
  }
  const fpsText = (await S.page.textContent(q('player-fps'))) || '';
  diag(`player-fps ${JSON.stringify(fpsText.trim())}, status ${JSON.stringify(((await S.page.textContent(q('player-status'))) || '').trim())}`);
  assert(/[1-9]/.test(fpsText), `[data-testid=player-fps] shows no frame rate: ${fpsText}`);
}, true);

step('encoded mode: haven decodes nothing for the encoded viewer (GET /api/live-sessions/active)', async () => {
  const a = await activeSession(S.base, S.mint);
  assert(a, `no active session for ${S.mint}`);
  const p1 = await player();
  await sleep(3000);
  const b = await activeSession(S.base, S.mint);
  const p2 = await player();
  diag(`active: viewers ${b.viewers}, encoded ${JSON.stringify(b.encoded)}, video.frames_decoded ` +
       `${a.video && a.video.frames_decoded} -> ${b.video && b.video.frames_decoded}, frames_encoded ` +
       `${b.video && b.video.frames_encoded}; the page drew ${p2.frames - p1.frames} pictures meanwhile`);
  assert(b.encoded && b.encoded.viewers === 1, `encoded.viewers ${JSON.stringify(b.encoded)}, want 1`);
  assert(b.viewers === 1, `viewers ${b.viewers}, want 1`);
  assert(b.video && b.video.frames_decoded === 0 && a.video.frames_decoded === 0,
         `video.frames_decoded ${a.video && a.video.frames_decoded} -> ${b.video && b.video.frames_decoded}, want 0 (only an encoded viewer watches)`);
  assert(b.video.frames_encoded === 0, `video.frames_encoded ${b.video.frames_encoded}, want 0`);
  assert(p2.frames > p1.frames, `the page drew no picture in those 3 s (${p1.frames} -> ${p2.frames})`);
});

step('audio (encoded mode: Opus decoded in the page): 48 kHz scheduled at wall-clock rate (±15 % over 6 s)', async () => {
  await checkAudio(S.page, { seconds: 6 });
  const st = await player();
  assert(st.mode === 'encoded', `havenPlayer.mode is ${st.mode}, want encoded`);
});

// The fake SFU's control API (tests/fakes/livekit-sfu/README.md, "Control API").
async function sfuControl(what, payload) {
  const res = await fetch(`http://127.0.0.1:${S.sfu.port}/__sfu/${what}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(payload || {}),
  });
  assert(res.status === 200, `SFU control ${what}: ${res.status} ${await res.text()}`);
}

// Waits until the encoded player shows `codec` pictures of width × height, and they keep coming.
async function expectPictures(codecRe, width, height, what) {
  const p = await waitFor(async () => {
    const st = await player();
    return st && codecRe.test(st.codec || '') && st.width === width && st.height === height ? st : null;
  }, 30000, what);
  await sleep(1000);
  const q2 = await player();
  assert(q2.frames > p.frames && codecRe.test(q2.codec || ''), `${what}: frames ${p.frames} -> ${q2.frames}, codec ${q2.codec}`);
  return q2;
}

step('encoded mode follows the stream: a screen share (VP8 640x360) and back reconfigure the decoder; haven\'s reconnect resumes', async () => {
  const sock = S.sockets[S.sockets.length - 1];
  const before = S.sockets.length;
  const a = await player();
  try {
    await sfuControl('streamer/screen', { on: true });
    const b = await expectPictures(/^vp8$/, 640, 360, 'VP8 640x360 pictures after the screen share started');
    diag(`screen share: codec ${b.codec}, ${b.width}x${b.height}, badge ${JSON.stringify(b.badge)}, decode errors ${b.decodeErrors}`);
    assert(b.badge.text === 'WebCodecs (vp8)', `badge ${JSON.stringify(b.badge)}`);
  } finally {
    await sfuControl('streamer/screen', { on: false });
  }
  const c = await expectPictures(/^avc1\./, 1280, 720, 'H.264 1280x720 pictures after the screen share ended');
  const formats = sock.messages.filter((x) => x.msg.type === 'format' && x.msg.video).map((x) => `${x.msg.video.codec} ${x.msg.video.width}x${x.msg.video.height}`);
  diag(`back to ${c.codec} ${c.width}x${c.height}; format messages on the socket: ${formats.join(', ')}`);
  assert(formats.length >= 3, `expected format messages for H.264, VP8, H.264: ${formats.join(', ')}`);
  // haven loses the SFU (every client WebSocket dropped) and rejoins: the viewer socket stays.
  await sfuControl('drop');
  await waitFor(() => sock.messages.some((x) => x.msg.type === 'resumed'), 30000, 'a resumed event on the viewer socket');
  const d = await player();
  await sleep(2000);
  const e = await player();
  const events = sock.messages.filter((x) => x.msg.type !== 'format').map((x) => x.msg.type);
  diag(`after the SFU drop: events ${JSON.stringify(events)}, frames ${d.frames} -> ${e.frames}, status ${e.status}, ` +
       `decode errors ${e.decodeErrors}, frames dropped ${a.framesDropped} -> ${e.framesDropped}`);
  assert(events.includes('reconnecting'), 'no reconnecting event');
  assert(e.frames - d.frames >= 10, `only ${e.frames - d.frames} pictures in 2 s after haven resumed`);
  assert(e.mode === 'encoded' && S.sockets.length === before && !sock.closedAt,
         `the viewer socket changed (mode ${e.mode}, ${S.sockets.length - before} new socket(s))`);
  assert(e.status === 'playing', `status ${e.status}`);
});

step('haven killed and started again: the encoded player reconnects, starts the session again and plays', async () => {
  const before = S.sockets.length;
  const p0 = await player();
  const killedAt = Date.now();
  const exited = new Promise((r) => S.haven.once('exit', r));
  S.haven.kill('SIGKILL');   // no close frame: the browser sees 1006
  await exited;
  // Its log is kept for the sanitizer-report check; the new haven writes haven.log.
  const oldLog = path.join(S.tmp, 'haven-killed.log');
  fs.renameSync(S.havenLog, oldLog);
  run.oldHavenLogs.push(oldLog);
  await sleep(1500);
  const haven = await startHaven(HAVEN, { port: S.port, fake: S.fake, sfu: S.sfu, env: HAVEN_ENV });
  S.haven = haven.proc;
  S.havenLog = haven.log;
  // The new haven has no session: the socket is closed with 4404, and the player posts start
  // again before it reconnects.
  const p1 = await waitFor(async () => {
    const st = await player();
    return st && st.status === 'playing' && st.frames > p0.frames + 30 && st.lastFrameAt > st.now - 1000 ? st : null;
  }, 45000, 'pictures again after haven came back');
  const socks = S.sockets.slice(before);
  const starts = S.requests.filter((r) => r.at > killedAt && /\/api\/live-sessions\/start$/.test(r.url));
  diag(`after the restart: sockets ${JSON.stringify(socks.map((x) => x.url.replace(/^.*\/ws\/live\/[^?]+/, '')))}, ` +
       `start posted ${starts.length} time(s) (${starts.map((r) => r.status).join(', ')}), status ${p1.status}, ` +
       `frames ${p0.frames} -> ${p1.frames}, havenPlayer.sockets ${JSON.stringify(p1.sockets)}`);
  assert(socks.length >= 2, `only ${socks.length} socket(s) after the restart (want the refused one and the working one)`);
  assert(socks.every((x) => /[?&]mode=encoded(&|$)/.test(x.url)), 'a reconnect left the encoded mode');
  assert(starts.some((r) => r.status === 200), `no successful POST /api/live-sessions/start after the restart (${starts.map((r) => r.status)})`);
  assert(p1.mode === 'encoded' && p1.sockets.every((m) => m === 'encoded'), `mode ${p1.mode}, sockets ${JSON.stringify(p1.sockets)}`);
  const s = await activeSession(S.base, S.mint);
  assert(s && s.encoded && s.encoded.viewers === 1, `the new session's encoded.viewers ${JSON.stringify(s && s.encoded)}`);
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

// Opens #/watch/<mint><query> from the grid (same document) and waits for its first picture;
// returns the player's state then.
async function reopen(mint, query = '') {
  await S.page.evaluate(() => { location.hash = '#/'; });
  await S.page.waitForSelector(q('grid'), { timeout: 10000 });
  await S.page.evaluate((hash) => { location.hash = hash; }, `#/watch/${mint}${query}`);
  return waitFor(async () => {
    const st = await player();
    return st && st.mint === mint && st.firstFrameAt != null ? st : null;
  }, 20000, `a first picture in #/watch/${mint}${query}`);
}

step('time to the first picture on a running session: encoded (the GOP burst) and JPEG', async () => {
  const times = { encoded: [], jpeg: [] };
  for (let i = 0; i < 2; i++) {
    for (const [mode, query] of [['encoded', ''], ['jpeg', '?mode=jpeg']]) {
      const st = await reopen(S.mint, query);
      assert(st.mode === mode, `#/watch/${S.mint}${query} plays in ${st.mode} mode`);
      times[mode].push(st.firstFrameAt - st.socketAt);
    }
  }
  const fmtMs = (xs) => xs.map((x) => `${x.toFixed(0)} ms`).join(', ');
  diag(`first picture after the socket opened: encoded ${fmtMs(times.encoded)}; JPEG ${fmtMs(times.jpeg)}`);
  // The burst starts with the cached key frame: no wait for the next one (every 2 s here).
  const best = Math.min(...times.encoded);
  assert(best < 1500, `encoded mode took ${best.toFixed(0)} ms to its first picture on a running session`);
  const st = await reopen(S.mint);   // the next steps use the encoded player again
  assert(st.mode === 'encoded', `back in ${st.mode} mode`);
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

step('deep link #/watch/<another mint>?mode=jpeg plays in JPEG mode (haven decodes; JPEG + PCM)', async () => {
  const other = S.nsfw[0] || S.sfw[1];
  const firstSocket = S.sockets.length;
  await S.page.goto(`${S.base}/#/watch/${other}?mode=jpeg`);
  await S.page.waitForSelector(q('player-canvas'), { timeout: 10000 });
  const m = await checkPlaying(S.page, other, { minFps: MIN_FPS });
  const st = m.state;
  const urls = S.sockets.slice(firstSocket).map((x) => x.url);
  diag(`mode ${st.mode} (${st.modeReason}), badge ${JSON.stringify(st.badge)}, sockets ${JSON.stringify(urls)}`);
  assert(st.mode === 'jpeg' && st.codec === null, `havenPlayer.mode ${st.mode} codec ${st.codec}, want jpeg and null`);
  assert(st.badge && st.badge.mode === 'jpeg' && st.badge.text === 'JPEG', `[data-testid=player-mode] ${JSON.stringify(st.badge)}, want "JPEG"`);
  assert(urls.length === 1 && !/mode=encoded/.test(urls[0]) && /audio_rate=48000/.test(urls[0]),
         `sockets opened: ${JSON.stringify(urls)}, want one JPEG-mode socket`);
  const fmt = S.sockets[firstSocket].messages.map((x) => x.msg).find((x) => x.type === 'format');
  assert(fmt && fmt.video && fmt.video.format === 'jpeg' && fmt.audio.format === 's16le', `format message ${JSON.stringify(fmt)}`);
  await checkAudio(S.page, { seconds: 4 });
  // haven decodes for this viewer now.
  const a = await activeSession(S.base, other);
  await sleep(2000);
  const b = await activeSession(S.base, other);
  diag(`active: viewers ${b.viewers}, encoded ${JSON.stringify(b.encoded)}, video.frames_decoded ${a.video.frames_decoded} -> ${b.video.frames_decoded}`);
  assert(b.encoded && b.encoded.viewers === 0, `encoded.viewers ${JSON.stringify(b.encoded)}, want 0`);
  assert(b.video.frames_decoded > a.video.frames_decoded, `video.frames_decoded did not grow for a JPEG viewer (${a.video.frames_decoded} -> ${b.video.frames_decoded})`);
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

runSteps({
  pageErrors: () => S.pageErrors,
  afterSteps: async (failed) => {
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
  },
});

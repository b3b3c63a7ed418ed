#!/usr/bin/env node
// The web player's fallback from the encoded mode (WebCodecs) to JPEG mode, in Debian's Chromium
// through playwright-core.
//
// Usage: node tests/browser/player-fallback.test.mjs PATH_TO_HAVEN
//
// Starts the fake pump.fun API, the fake LiveKit SFU streaming H.265 (640x360, 15 fps: x265 is
// the fake's heaviest encoder) and a 440 Hz Opus tone, and the real haven serving web/, all on
// 127.0.0.1. Chromium's WebCodecs decodes H.264, VP8, VP9 and Opus but not H.265 (Linux builds
// decode HEVC only through platform decoders; the platform HEVC path is switched off here so that
// the answer does not depend on the machine), so:
//
//   1. the player opens the encoded socket first, sees `hvc1…` in the format message, is refused
//      by VideoDecoder.isConfigSupported(), and reconnects in JPEG mode, which plays (canvas,
//      sound), shown as "JPEG"; haven decodes for it (frames_decoded grows, encoded.viewers 0);
//   2. reopening the stream on the same page goes straight to JPEG (the refusal is remembered);
//   3. `?mode=encoded` (no fallback) turns the refusal into an error;
//   4. a page that is not a secure context (http://haven.test, mapped to 127.0.0.1) has no
//      WebCodecs at all and plays in JPEG mode from the start.
//
// Prints TAP; skips (1..0 # SKIP) only when Chromium or node_modules is missing.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ROOT, WEB, loadChromium, sleep, diag, assert, waitFor, freePort, run, startFakes, startHaven, apiCall,
  launchChromium, keepOnLoopback, watchPage, watchSockets, playerState, checkPlaying, checkAudio,
  activeSession, step, runSteps,
} from './lib.mjs';

const HAVEN = path.resolve(process.argv[2] || path.join(ROOT, 'build', 'src', 'haven'));
const FPS = 15;
const MIN_FPS = FPS / 10;         // drawn pictures per second: the machine runs x265 and haven's H.265 decoder
const INSECURE_HOST = 'haven.test';

const chromium = loadChromium();

const S = {
  fake: null, sfu: null, base: null, port: 0, mint: null, browser: null, page: null,
  pageErrors: [], consoleErrors: [], blocked: [], sockets: [], codec: null,
};

const q = (id) => `[data-testid="${id}"]`;
const player = (page = S.page) => playerState(page);

// Opens #/watch/<mint><query> in the page (same document: the page's module state is kept).
async function openPlayer(page, query = '') {
  await page.evaluate(() => { location.hash = '#/'; });
  await page.waitForSelector(q('grid'), { timeout: 10000 });
  await page.evaluate((h) => { location.hash = h; }, `#/watch/${S.mint}${query}`);
  await page.waitForSelector(q('player-canvas'), { timeout: 10000 });
}

step('start the fake pump.fun, the fake SFU (H.265 640x360) and haven serving web/', async () => {
  run.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'haven-browser-fallback-'));
  ({ fake: S.fake, sfu: S.sfu } = await startFakes({ codec: 'h265', width: 640, height: 360, fps: FPS }));
  S.port = await freePort();
  const haven = await startHaven(HAVEN, { port: S.port, fake: S.fake, sfu: S.sfu, env: { HAVEN_WEB_DIR: WEB } });
  S.base = haven.base;
  const live = await apiCall(S.base, '/api/pumpfun/live?include_nsfw=false&limit=10');
  assert(live.status === 200 && live.body.length > 0, `live: ${live.status}`);
  S.mint = live.body[0].mint_id;
  diag(`fake pump.fun :${S.fake.port}, fake SFU :${S.sfu.port}, haven ${S.base}, stream ${S.mint}, temp ${run.tmp}`);
}, true);

step('launch headless Chromium; on 127.0.0.1 WebCodecs exists, decodes H.264 and refuses H.265', async () => {
  S.browser = await launchChromium(chromium, {
    mapRules: [`MAP ${INSECURE_HOST} 127.0.0.1`],
    args: ['--disable-features=PlatformHEVCDecoderSupport'],
  });
  diag(`browser ${S.browser.version()}`);
  const context = await S.browser.newContext({ viewport: { width: 1280, height: 800 } });
  await keepOnLoopback(context, S.blocked);
  S.page = await context.newPage();
  watchPage(S.page, S);
  watchSockets(S.page, S.sockets);
  await S.page.goto(`${S.base}/`, { waitUntil: 'domcontentloaded' });
  const env = await S.page.evaluate(async () => ({
    secure: window.isSecureContext,
    webcodecs: typeof VideoDecoder === 'function' && typeof AudioDecoder === 'function',
    avc1: (await VideoDecoder.isConfigSupported({ codec: 'avc1.42C01F', codedWidth: 640, codedHeight: 360 })).supported,
    hvc1: (await VideoDecoder.isConfigSupported({ codec: 'hvc1.1.6.L93.B0', codedWidth: 640, codedHeight: 360 })).supported,
  }));
  diag(`127.0.0.1: ${JSON.stringify(env)}`);
  assert(env.secure && env.webcodecs, `no WebCodecs on ${S.base}: ${JSON.stringify(env)}`);
  assert(env.avc1 === true, 'this Chromium cannot decode H.264 with WebCodecs');
  assert(env.hvc1 === false, 'this Chromium decodes H.265 with WebCodecs: the fallback cannot be tested with an H.265 stream');
}, true);

step('H.265 stream: encoded socket first, WebCodecs refuses hvc1, the player reconnects in JPEG mode and plays', async () => {
  const first = S.sockets.length;
  await openPlayer(S.page);
  // The H.265 session is slow to start on a busy machine (x265 in the fake, haven's decoder).
  const m = await checkPlaying(S.page, S.mint, { minFps: MIN_FPS, timeoutMs: 60000 });
  const st = m.state;
  const socks = S.sockets.slice(first);
  diag(`sockets: ${socks.map((x) => `${x.url.replace(/^.*\/ws\/live\/[^?]+/, '')} (open ${x.closedAt ? `${x.closedAt - x.openedAt} ms` : 'still'})`).join(', ')}`);
  diag(`mode ${st.mode}: ${st.modeReason}; badge ${JSON.stringify(st.badge)}; havenPlayer.sockets ${JSON.stringify(st.sockets)}`);
  assert(socks.length === 2, `${socks.length} socket(s) opened, want 2 (encoded, then JPEG): ${socks.map((x) => x.url).join(' ')}`);
  const [enc, jpeg] = socks;
  assert(/[?&]mode=encoded(&|$)/.test(enc.url), `first socket is not the encoded mode: ${enc.url}`);
  assert(!/mode=encoded/.test(jpeg.url) && /audio_rate=48000/.test(jpeg.url), `second socket is not the JPEG mode: ${jpeg.url}`);
  const fmt = enc.messages.find((x) => x.msg.type === 'format' && x.msg.video);
  assert(fmt, `the encoded socket never announced its video: ${JSON.stringify(enc.messages.map((x) => x.msg))}`);
  S.codec = fmt.msg.video.codec;
  assert(/^(hvc1|hev1)\./.test(S.codec), `video codec ${S.codec}, want hvc1/hev1`);
  assert(enc.closedAt, 'the encoded socket was not closed');
  diag(`format ${JSON.stringify(fmt.msg.video)} -> JPEG socket ${jpeg.openedAt - fmt.at} ms later`);
  assert(jpeg.openedAt - fmt.at < 5000, `the JPEG socket came ${jpeg.openedAt - fmt.at} ms after the H.265 format message`);
  const refused = await S.page.evaluate(async (v) => (await VideoDecoder.isConfigSupported({
    codec: v.codec, codedWidth: v.width, codedHeight: v.height })).supported, fmt.msg.video);
  assert(refused === false, `isConfigSupported(${S.codec}) says ${refused}`);
  assert(st.mode === 'jpeg' && st.codec === null, `havenPlayer.mode ${st.mode} codec ${st.codec}, want jpeg`);
  assert(JSON.stringify(st.sockets) === '["encoded","jpeg"]', `havenPlayer.sockets ${JSON.stringify(st.sockets)}`);
  assert(st.modeReason.includes(S.codec), `havenPlayer.modeReason does not name ${S.codec}: ${st.modeReason}`);
  assert(st.badge && st.badge.mode === 'jpeg' && st.badge.text === 'JPEG', `[data-testid=player-mode] ${JSON.stringify(st.badge)}`);
  const title = await S.page.getAttribute(q('player-mode'), 'title');
  assert(title && title.includes(S.codec), `[data-testid=player-mode] title does not say why: ${title}`);
  assert((await S.page.getAttribute(q('player-status'), 'data-state')) === 'playing', 'player-status is not playing');
}, true);

step('the JPEG fallback has sound, and haven decodes for it (GET /api/live-sessions/active)', async () => {
  await checkAudio(S.page, { seconds: 5, tolerance: 0.2 });
  const a = await activeSession(S.base, S.mint);
  await sleep(2000);
  const b = await activeSession(S.base, S.mint);
  diag(`active: viewers ${b.viewers}, encoded ${JSON.stringify(b.encoded)}, video ${b.video.codec} frames_decoded ${a.video.frames_decoded} -> ${b.video.frames_decoded}`);
  assert(b.video.codec === 'H265', `video.codec ${b.video.codec}`);
  assert(b.viewers === 1, `viewers ${b.viewers}, want 1`);
  assert(b.encoded && b.encoded.viewers === 0, `encoded.viewers ${JSON.stringify(b.encoded)}, want 0 after the fallback`);
  assert(b.video.frames_decoded > a.video.frames_decoded, `frames_decoded ${a.video.frames_decoded} -> ${b.video.frames_decoded}`);
});

step('reopening the stream on the same page goes straight to JPEG (the refusal is remembered)', async () => {
  const first = S.sockets.length;
  await openPlayer(S.page);
  const m = await checkPlaying(S.page, S.mint, { minFps: MIN_FPS, timeoutMs: 30000 });
  const urls = S.sockets.slice(first).map((x) => x.url);
  diag(`sockets ${JSON.stringify(urls)}; ${m.state.modeReason}`);
  assert(m.state.mode === 'jpeg' && JSON.stringify(m.state.sockets) === '["jpeg"]',
         `mode ${m.state.mode}, havenPlayer.sockets ${JSON.stringify(m.state.sockets)}, want JPEG only`);
  assert(urls.length === 1 && !/mode=encoded/.test(urls[0]), `sockets opened: ${JSON.stringify(urls)}`);
});

step('#/watch/<mint>?mode=encoded: no fallback, the refused codec is an error', async () => {
  const first = S.sockets.length;
  await openPlayer(S.page, '?mode=encoded');
  await S.page.waitForSelector(`${q('player-status')}[data-state="error"]`, { timeout: 30000 });
  const text = (await S.page.textContent(q('player-status'))) || '';
  const st = await player();
  const urls = S.sockets.slice(first).map((x) => x.url);
  diag(`status ${JSON.stringify(text)}, sockets ${JSON.stringify(urls)}`);
  assert(text.includes('WebCodecs cannot decode') && text.includes(S.codec), `player-status ${JSON.stringify(text)}`);
  assert(JSON.stringify(st.sockets) === '["encoded"]' && urls.length === 1 && /mode=encoded/.test(urls[0]),
         `sockets ${JSON.stringify(urls)}, want the encoded one only`);
  assert(st.frames === 0, `${st.frames} frames drawn`);
  await sleep(1500);
  assert(S.sockets.length === first + 1, 'a socket was opened after the error');
  assert(S.sockets[first].closedAt, 'the encoded socket was left open after the error');
});

step(`a page without WebCodecs (http://${INSECURE_HOST}, not a secure context) plays in JPEG mode from the start`, async () => {
  const context = await S.browser.newContext({ viewport: { width: 1280, height: 800 } });
  await keepOnLoopback(context, S.blocked, { hosts: [INSECURE_HOST] });
  const page = await context.newPage();
  watchPage(page, S);
  const sockets = [];
  watchSockets(page, sockets);
  await page.goto(`http://${INSECURE_HOST}:${S.port}/#/watch/${S.mint}`, { waitUntil: 'domcontentloaded' });
  const env = await page.evaluate(() => ({ secure: window.isSecureContext, VideoDecoder: typeof window.VideoDecoder }));
  diag(`${INSECURE_HOST}: ${JSON.stringify(env)}`);
  assert(env.secure === false && env.VideoDecoder === 'undefined', `http://${INSECURE_HOST} has WebCodecs: ${JSON.stringify(env)}`);
  const m = await checkPlaying(page, S.mint, { minFps: MIN_FPS, timeoutMs: 30000 });
  diag(`mode ${m.state.mode}: ${m.state.modeReason}; sockets ${JSON.stringify(sockets.map((x) => x.url))}`);
  assert(m.state.mode === 'jpeg' && JSON.stringify(m.state.sockets) === '["jpeg"]', `mode ${m.state.mode}, sockets ${JSON.stringify(m.state.sockets)}`);
  assert(/WebCodecs is not available/.test(m.state.modeReason), `modeReason ${m.state.modeReason}`);
  assert(sockets.length === 1 && !/mode=encoded/.test(sockets[0].url), `sockets ${JSON.stringify(sockets.map((x) => x.url))}`);
  assert(m.state.badge && m.state.badge.text === 'JPEG', `[data-testid=player-mode] ${JSON.stringify(m.state.badge)}`);
  await context.close();
});

step('no uncaught errors in the pages', async () => {
  const blockedLoads = S.consoleErrors.filter((c) => /ERR_BLOCKED_BY_CLIENT/.test(c));
  for (const c of S.consoleErrors.filter((x) => !blockedLoads.includes(x)).slice(0, 20)) diag(`console.error: ${c}`);
  assert(S.pageErrors.length === 0, `uncaught errors:\n${S.pageErrors.join('\n')}`);
});

runSteps({ pageErrors: () => S.pageErrors, stepTimeoutMs: 120000 });

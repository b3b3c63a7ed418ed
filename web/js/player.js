// The player (#/watch/<mint>): starts the session, shows video on a canvas, plays the audio,
// and shows live stats, recording controls, stream info and a history chart.
//
// Mode (web/README.md): where WebCodecs exists, the player asks haven for the stream's own
// encoded frames (?mode=encoded) and decodes them itself; when the browser refuses the stream's
// codec it reconnects in JPEG mode (haven decodes and sends JPEG + PCM), and keeps JPEG for that
// stream while the page is open. `#/watch/<mint>?mode=jpeg` forces JPEG, `?mode=encoded` forces
// the encoded mode (an error instead of the fallback). The mode is shown next to the status.
import { api, post } from './api.js';
import { LiveConnection } from './connection.js';
import { PcmPlayer } from './audio.js';
import { FrameRenderer, webCodecsAvailable } from './video.js';
import { EncodedPipeline } from './encoded.js';
import { renderHistory } from './chart.js';
import { h, fill, safeUrl, isAbort } from './dom.js';
import * as fmt from './format.js';

const ACTIVE_POLL_MS = 3000;
const HISTORY_POLL_MS = 60_000;
const HISTORY_HOURS = 24;

function stored(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v == null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

function store(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* private mode: not kept */ }
}

// Streams whose codec WebCodecs refused on this page (mint → why): reopening one goes straight to
// JPEG mode instead of trying the encoded mode again.
const refused = new Map();

const MODE_PREFS = ['auto', 'jpeg', 'encoded'];

/** The mode to connect in: {mode: 'encoded'|'jpeg'|null (cannot play), reason}. */
function chooseMode(pref, mint) {
  if (pref === 'jpeg') return { mode: 'jpeg', reason: 'JPEG mode requested (?mode=jpeg)' };
  if (!webCodecsAvailable()) {
    const reason = 'WebCodecs is not available in this page (it needs a secure context: https, localhost or 127.0.0.1)';
    return { mode: pref === 'encoded' ? null : 'jpeg', reason };
  }
  if (pref !== 'encoded' && refused.has(mint)) return { mode: 'jpeg', reason: refused.get(mint) };
  return { mode: 'encoded', reason: '' };
}

export function mountPlayer(root, mint, params = new URLSearchParams()) {
  if (!fmt.isMint(mint)) {
    root.append(h('section', { class: 'player' },
      h('h1', {}, 'Not a mint id'),
      h('p', { 'data-testid': 'player-status', 'data-state': 'error' }, `error: “${mint}” is not a valid mint id`),
      h('p', {}, h('a', { href: '#/' }, '← Back to streams'))));
    return null;
  }

  const aborter = new AbortController();
  const signal = aborter.signal;
  let conn = null;
  let sessionReady = false;
  let volume = Number(stored('haven.volume', 0.8));
  let muted = stored('haven.muted', false) === true;
  const modePref = MODE_PREFS.includes(params.get('mode')) ? params.get('mode') : 'auto';
  let pipeline = null;   // encoded mode's decoders

  // What the browser test reads: updated in place by the renderer and the audio player.
  const hp = {
    mint,
    status: 'connecting',
    mode: null,            // 'encoded' (WebCodecs) or 'jpeg'
    codec: null,           // encoded mode: the video codec string in force (null until known)
    modeReason: '',        // why JPEG (requested, no WebCodecs, codec refused)
    openedAt: performance.now(),
    socketAt: null,        // performance.now() when the current WebSocket was opened
    sockets: [],           // the mode of every WebSocket opened, in order ('encoded', 'jpeg')
    firstFrameAt: null,    // performance.now() of the first picture drawn
    frames: 0,
    lastFrameAt: null,
    framesReceived: 0,
    framesDropped: 0,
    decodeErrors: 0,
    width: null,
    height: null,
    latencyMs: null,
    audio: {
      sampleRate: null, channels: null, contextRate: null, state: null,
      chunks: 0, scheduledSeconds: 0, startedAt: null, dropped: 0, trimmed: 0, underruns: 0, bufferedMs: null, level: null,
    },
  };
  window.havenPlayer = hp;

  // ---- DOM ----------------------------------------------------------------------------------
  const title = h('h1', { class: 'player-title', id: 'player-title' }, h('span', { class: 'title-name' }, fmt.shortMint(mint)));
  const status = h('p', { class: 'status', 'data-testid': 'player-status', 'data-state': 'connecting', role: 'status' }, 'connecting');
  const modeEl = h('span', { class: 'mode-badge', 'data-testid': 'player-mode', 'data-mode': '' }, '');
  const canvas = h('canvas', { 'data-testid': 'player-canvas', width: 1280, height: 720, role: 'img', 'aria-label': 'Live video' });
  const overlayText = h('p', { class: 'overlay-text' }, 'Connecting…');
  const overlayActions = h('div', { class: 'overlay-actions' });
  const overlay = h('div', { class: 'stage-overlay', 'data-testid': 'player-overlay' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), overlayText, overlayActions);
  const unlockBtn = h('button', { type: 'button', class: 'btn btn-primary unlock', 'data-testid': 'audio-unlock', hidden: true, onclick: () => audio.unlock() },
    'Click to enable sound');
  const stage = h('div', { class: 'stage' }, canvas, overlay, unlockBtn);

  const muteBtn = h('button', { type: 'button', class: 'btn btn-toggle', 'data-testid': 'mute', 'aria-keyshortcuts': 'm', 'aria-pressed': 'false', onclick: toggleMute },
    h('span', { class: 'speaker', 'aria-hidden': 'true' }), 'Mute');
  const volumeInput = h('input', {
    type: 'range', min: 0, max: 100, step: 1, value: Math.round(volume * 100),
    'data-testid': 'volume', 'aria-label': 'Volume', class: 'volume',
  });
  volumeInput.addEventListener('input', () => {
    volume = Number(volumeInput.value) / 100;
    audio.setVolume(volume);
    store('haven.volume', volume);
    if (muted && volume > 0) setMuted(false);
    audio.unlock();
  });
  const recBtn = h('button', { type: 'button', class: 'btn btn-rec', 'data-testid': 'record-toggle', 'aria-pressed': 'false', disabled: true, onclick: toggleRecording },
    h('span', { class: 'rec-dot', 'aria-hidden': 'true' }), h('span', { class: 'btn-label' }, 'Record'));
  const recInfo = h('span', { class: 'rec-info', 'data-testid': 'record-info', 'aria-live': 'polite' });
  const fsBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'fullscreen', 'aria-keyshortcuts': 'f', onclick: toggleFullscreen }, 'Fullscreen');
  const stopBtn = h('button', { type: 'button', class: 'btn btn-danger', 'data-testid': 'player-stop', onclick: stop }, 'Stop');

  const stat = (label, testid, extra = {}) => {
    const dd = h('dd', { 'data-testid': testid, ...extra }, '—');
    return [h('div', { class: 'pstat' }, h('dt', {}, label), dd), dd];
  };
  const [fpsBox, fpsEl] = stat('FPS', 'player-fps');
  const [resBox, resEl] = stat('Resolution', 'player-resolution');
  const [latBox, latEl] = stat('Latency', 'player-latency', { title: 'Time from a frame’s arrival to its drawing' });
  const [viewBox, viewersEl] = stat('Viewers', 'player-viewers', { title: 'Viewers of this stream on haven' });
  const [audBox, audioEl] = stat('Audio', 'player-audio');
  const [bufBox, bufferEl] = stat('Audio buffer', 'player-buffer', { title: 'Sound queued ahead of what is playing' });

  const info = h('div', { class: 'stream-info', 'data-testid': 'stream-info' }, h('p', { class: 'muted' }, 'Loading stream details…'));
  const chart = h('div', { class: 'chart-box', 'data-testid': 'history-chart', 'data-state': 'loading' }, h('p', { class: 'chart-empty' }, 'Loading history…'));

  const section = h('section', { class: 'player', 'aria-labelledby': 'player-title' },
    h('div', { class: 'player-head' },
      h('a', { class: 'back', href: '#/' }, '← Streams'),
      title,
      status,
      modeEl),
    h('div', { class: 'player-layout' },
      h('div', { class: 'player-main' },
        stage,
        h('div', { class: 'controls', role: 'group', 'aria-label': 'Player controls' },
          h('div', { class: 'control-group' }, muteBtn, volumeInput),
          h('div', { class: 'control-group' }, recBtn, recInfo),
          h('div', { class: 'control-group control-end' }, fsBtn, stopBtn)),
        h('dl', { class: 'pstats', 'data-testid': 'player-stats' }, fpsBox, resBox, latBox, viewBox, audBox, bufBox)),
      h('aside', { class: 'player-side', 'aria-label': 'Stream details' },
        info,
        h('section', { class: 'chart-card', 'aria-labelledby': 'chart-title' },
          h('h2', { id: 'chart-title' }, `Last ${HISTORY_HOURS} hours`),
          chart))));
  root.append(section);

  // ---- media --------------------------------------------------------------------------------
  const renderer = new FrameRenderer(canvas, hp, {
    onSize: (w, hgt) => { resEl.textContent = `${w}×${hgt}`; },
  });
  const audio = new PcmPlayer(hp.audio, {
    volume, muted,
    onState: (st) => {
      // Browsers start audio only after a user gesture; offer one when they hold it back.
      unlockBtn.hidden = st !== 'suspended' && st !== 'interrupted';
      renderMute();
    },
  });
  renderMute();

  function setMuted(on) {
    muted = on;
    audio.setMuted(on);
    store('haven.muted', on);
    renderMute();
  }

  function toggleMute() {
    audio.unlock();
    setMuted(!muted);
  }

  // A toggle keeps one name ("Mute"); aria-pressed (and its pressed look) says whether it is on.
  function renderMute() {
    muteBtn.setAttribute('aria-pressed', muted ? 'true' : 'false');
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen?.();
    else stage.requestFullscreen?.().catch(() => {});
  }

  function onKey(ev) {
    if (ev.target.closest?.('input, textarea, select') || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === 'm' || ev.key === 'M') toggleMute();
    else if (ev.key === 'f' || ev.key === 'F') toggleFullscreen();
  }
  document.addEventListener('keydown', onKey);

  // ---- connection ---------------------------------------------------------------------------
  function setStatus({ state, text, detail }) {
    hp.status = text;
    status.textContent = text;
    status.dataset.state = state;
    status.title = detail || '';
    overlay.dataset.state = state;
    if (state === 'playing') {
      overlay.hidden = true;
    } else if (state === 'connecting' || state === 'reconnecting') {
      // Keep the last picture visible while reconnecting; the status line says what happens.
      overlay.hidden = hp.frames > 0;
      overlayText.textContent = text === 'connecting' ? 'Connecting…' : text;
      overlayActions.replaceChildren();
    } else {
      overlay.hidden = false;
      overlayText.textContent = state === 'ended' ? `Stream ended: ${detail}` : detail;
      overlayActions.replaceChildren(
        h('button', { type: 'button', class: 'btn btn-primary', onclick: restart }, 'Try again'),
        h('a', { class: 'btn', href: '#/' }, 'Back to streams'));
    }
    if (state === 'ended' || state === 'error') recBtn.disabled = true;
  }

  // ---- mode ---------------------------------------------------------------------------------
  function showMode(mode, reason = '', codec = null) {
    hp.mode = mode;
    hp.codec = mode === 'encoded' ? codec : null;
    hp.modeReason = reason;
    section.dataset.mode = mode;
    modeEl.dataset.mode = mode;
    modeEl.textContent = mode === 'encoded' ? (codec ? `WebCodecs (${codec})` : 'WebCodecs') : 'JPEG';
    modeEl.title = mode === 'encoded'
      ? 'The stream’s own frames, decoded in this browser (WebCodecs)'
      : `JPEG frames and PCM decoded by haven${reason ? ` — ${reason}` : ''}`;
  }

  function startPipeline() {
    pipeline?.close();
    pipeline = new EncodedPipeline({
      renderer, audio, stats: hp,
      onVideo: ({ codec, width, height }) => {
        showMode('encoded', '', codec);
        if (width && height) resEl.textContent = `${width}×${height}`;
      },
      onUnsupported: fallBack,
      onMedia: () => conn?.mediaFlowing(),
    });
  }

  function stopPipeline() {
    pipeline?.close();
    pipeline = null;
  }

  // WebCodecs refused the stream's codec: JPEG mode, at once, and for this stream from now on.
  function fallBack(reason) {
    stopPipeline();
    if (modePref === 'encoded') {
      conn?.finish('error', reason);
      return;
    }
    refused.set(mint, reason);
    showMode('jpeg', reason);
    conn?.switchMode('jpeg', reason);
  }

  function connect() {
    const choice = chooseMode(modePref, mint);
    if (!choice.mode) {
      setStatus({ state: 'error', text: `error: ${choice.reason}`, detail: choice.reason });
      return;
    }
    showMode(choice.mode, choice.reason);
    conn = new LiveConnection(mint, {
      onStatus: setStatus,
      onSocket: (mode) => {
        hp.socketAt = performance.now();
        hp.sockets.push(mode);
        // Every socket starts over: a format message, then (encoded) the burst from a key frame.
        if (mode === 'encoded') {
          if (!pipeline) startPipeline();
          pipeline.reset();
        } else {
          stopPipeline();
        }
      },
      onChunk: (chunk, t) => pipeline?.chunk(chunk, t),
      onSession: (data) => {
        sessionReady = true;
        recBtn.disabled = false;
        if (data?.record_session) showRecording({ active: true, status: 'waiting_for_media' });
        pollActive();
      },
      onFormat: (msg) => {
        if (msg.mode === 'encoded') {
          pipeline?.format(msg);
          return;
        }
        if (conn?.mode === 'encoded') {
          // A haven without the encoded mode answers ?mode=encoded in JPEG mode.
          fallBack('this haven does not offer the encoded mode');
          return;
        }
        const a = msg.audio || {};
        audio.configure(Number(a.rate) || 44100, Number(a.channels) || 1);
        const v = msg.video || {};
        if (v.width && v.height) resEl.textContent = `${v.width}×${v.height}`;
      },
      onFrame: (blob, t) => renderer.push(blob, t),
      onAudio: (b64) => audio.push(b64),
      onEvent: (msg) => {
        if (msg.type === 'video_size' && msg.width && msg.height) resEl.textContent = `${msg.width}×${msg.height}`;
        else if (msg.type === 'recording') onRecordingEvent(msg);
        else if (msg.type === 'reconnecting' || msg.type === 'resumed') {
          audio.reset();
          // haven rejoins the room: the frames after this do not continue the old ones.
          if (msg.type === 'reconnecting') pipeline?.discontinuity();
        }
      },
    }, { mode: choice.mode });
    conn.open();
  }

  function restart() {
    conn?.close();
    audio.reset();
    overlay.hidden = false;
    connect();
  }

  async function stop() {
    stopBtn.disabled = true;
    conn?.close();
    try {
      await post('/api/live-sessions/stop', { mint_id: mint });
    } catch (err) {
      // 404: the session was already gone, which is what Stop wants anyway.
      if (err.status !== 404) console.warn('stop failed:', err.message);
    }
    location.hash = '#/';
  }

  const onOnline = () => conn?.retryNow();
  window.addEventListener('online', onOnline);

  // ---- recording ----------------------------------------------------------------------------
  let recording = { active: false, status: 'off' };

  function showRecording(rec) {
    recording = { ...recording, ...rec };
    const on = recording.active === true;
    recBtn.setAttribute('aria-pressed', on ? 'true' : 'false');
    recBtn.dataset.status = recording.status || 'off';
    let text = '';
    if (recording.status === 'recording') {
      text = `REC ${fmt.duration(recording.duration_seconds)} · ${fmt.bytes(recording.bytes)}`;
    } else if (recording.status === 'waiting_for_media') {
      text = 'REC · waiting for media…';
    } else if (recording.status === 'failed') {
      text = `Recording failed${recording.error ? `: ${recording.error}` : ''}`;
    } else if (recording.message) {
      text = recording.message;
    }
    recInfo.textContent = text;
    recInfo.dataset.status = recording.status || 'off';
  }

  async function toggleRecording() {
    const action = recording.active ? 'stop' : 'start';
    recBtn.disabled = true;
    recBtn.setAttribute('aria-busy', 'true');
    try {
      const { data } = await post(`/api/live-sessions/${encodeURIComponent(mint)}/recording`, { action }, { signal });
      showRecording({ active: data.recording === true, status: data.status || (data.recording ? 'recording' : 'off'), recording_id: data.recording_id, message: '' });
      pollActive();
    } catch (err) {
      if (isAbort(err)) return;
      showRecording({ message: `Recording: ${err.message}` });
    } finally {
      recBtn.disabled = !sessionReady || conn?.done;
      recBtn.removeAttribute('aria-busy');
    }
  }

  function onRecordingEvent(msg) {
    if (msg.status === 'started') showRecording({ active: true, status: 'recording', recording_id: msg.recording_id, message: '' });
    else if (msg.status === 'failed') showRecording({ status: 'failed', error: msg.error });
    pollActive();   // the active list has the truth (bytes, duration, a new file after a reconnect)
  }

  // ---- polling ------------------------------------------------------------------------------
  let polling = false;
  async function pollActive() {
    if (polling) return;
    polling = true;
    try {
      const { data } = await api('/api/live-sessions/active', { signal });
      const session = (data?.sessions || []).find((x) => x.mint_id === mint);
      viewersEl.textContent = session ? fmt.int(session.viewers) : '—';
      if (session) {
        sessionReady = true;
        if (session.recording) showRecording({ ...session.recording, message: recording.message });
      }
    } catch (err) {
      if (!isAbort(err)) viewersEl.textContent = '—';
    } finally {
      polling = false;
    }
  }

  async function loadHistory() {
    try {
      const { data } = await api(`/api/pumpfun/history/${encodeURIComponent(mint)}`, { query: { hours: HISTORY_HOURS }, signal });
      renderHistory(chart, data?.points, { hours: HISTORY_HOURS });
    } catch (err) {
      if (isAbort(err)) return;
      if (err.status === 404) renderHistory(chart, [], { hours: HISTORY_HOURS });
      else {
        chart.dataset.state = 'error';
        chart.replaceChildren(h('p', { class: 'chart-empty' }, `History unavailable: ${err.message}`));
      }
    }
  }

  async function loadInfo() {
    try {
      const { data } = await api(`/api/pumpfun/stream/${encodeURIComponent(mint)}`, { signal });
      showInfo(data);
    } catch (err) {
      if (isAbort(err)) return;
      info.replaceChildren(h('p', { class: 'muted' }, `Stream details unavailable: ${err.message}`));
    }
  }

  function showInfo(st) {
    const name = st.name || fmt.shortMint(mint);
    fill(title, h('span', { class: 'title-name' }, name), st.symbol ? h('span', { class: 'title-symbol' }, `$${st.symbol}`) : null,
      st.nsfw ? h('span', { class: 'badge badge-nsfw' }, 'NSFW') : null);
    document.title = `${name} — haven`;
    canvas.setAttribute('aria-label', `Live video of ${name}`);
    const links = [['Website', st.website], ['Twitter', st.twitter], ['Telegram', st.telegram]]
      .map(([label, url]) => [label, safeUrl(url)])
      .filter(([, url]) => url)
      .map(([label, url]) => h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, label));
    const copyBtn = h('button', { type: 'button', class: 'btn btn-small', onclick: async () => {
      try { await navigator.clipboard.writeText(mint); copyBtn.textContent = 'Copied'; } catch { copyBtn.textContent = 'Copy failed'; }
      setTimeout(() => { copyBtn.textContent = 'Copy'; }, 1500);
    } }, 'Copy');
    fill(info,
      st.livestream_title ? h('p', { class: 'live-title' }, st.livestream_title) : null,
      st.description ? h('p', { class: 'description' }, st.description) : null,
      h('dl', { class: 'facts' },
        h('div', {}, h('dt', {}, 'Market cap'), h('dd', {}, `${fmt.usd(st.usd_market_cap)}`, st.market_cap != null ? h('span', { class: 'muted' }, ` · ${fmt.compact(st.market_cap)} SOL`) : null)),
        h('div', {}, h('dt', {}, 'Watching on pump.fun'), h('dd', {}, fmt.int(st.num_participants))),
        h('div', {}, h('dt', {}, 'Live'), h('dd', {}, st.is_currently_live === false ? 'No' : 'Yes')),
        h('div', {}, h('dt', {}, 'Mint'), h('dd', { class: 'mint' }, h('code', { title: mint }, fmt.shortMint(mint)), ' ', copyBtn))),
      links.length ? h('p', { class: 'links' }, links) : null);
  }

  // ---- stats line ---------------------------------------------------------------------------
  let lastFrames = 0;
  let lastTick = performance.now();
  function tick() {
    const now = performance.now();
    const fps = ((hp.frames - lastFrames) * 1000) / (now - lastTick);
    lastFrames = hp.frames;
    lastTick = now;
    fpsEl.textContent = hp.frames ? fps.toFixed(fps < 10 ? 1 : 0) : '—';
    latEl.textContent = hp.latencyMs != null ? `${hp.latencyMs} ms` : '—';
    const a = hp.audio;
    if (a.sampleRate) {
      const ch = a.channels === 2 ? 'stereo' : a.channels === 1 ? 'mono' : `${a.channels} ch`;
      audioEl.textContent = `${a.sampleRate / 1000} kHz ${ch}`;
      bufferEl.textContent = a.state === 'running' ? `${Math.round(audio.buffered * 1000)} ms` : a.state === 'suspended' ? 'sound blocked' : '—';
    }
  }

  connect();
  loadInfo();
  loadHistory();
  const timers = [
    setInterval(tick, 1000),
    setInterval(pollActive, ACTIVE_POLL_MS),
    setInterval(loadHistory, HISTORY_POLL_MS),
  ];

  return () => {
    aborter.abort();
    timers.forEach(clearInterval);
    conn?.close();
    stopPipeline();
    renderer.close();
    audio.close();
    document.removeEventListener('keydown', onKey);
    window.removeEventListener('online', onOnline);
    if (document.fullscreenElement) document.exitFullscreen?.().catch(() => {});
    if (window.havenPlayer === hp) delete window.havenPlayer;
    document.title = 'haven';
  };
}

// One viewer connection to a live session: POST /api/live-sessions/start (retried like the seed's
// startStreamWithRetry: 3 tries, waiting 1 s, then 2 s, between them, for errors a retry can fix),
// then the viewer WebSocket, reconnected with exponential backoff (1 s, 2 s, 4 s … 30 s, at most
// MAX_ATTEMPTS in a row). Close code 4404 means haven has no session any more (restart), 4410
// that it stopped it for idleness: either way the session is started again before reconnecting. A 1000 close is the session's
// end (an `ended` event says why) and is final.
//
// Two modes (docs/API.md): `jpeg` (the default: binary messages are JPEG images, audio comes as
// "audio:<base64>" s16le text) and `encoded` (?mode=encoded: binary messages are the stream's own
// encoded frames behind a 10-byte header, decoded in the page with WebCodecs). The player picks
// the mode; switchMode() reconnects in the other one at once (WebCodecs refused the codec).
import { apiToken, post } from './api.js';
import { sleep, isAbort } from './dom.js';

const START_TRIES = 3;
const MAX_ATTEMPTS = 10;
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30_000;
const PING_MS = 5000;      // haven answers "pong": proves the connection is alive
const STALL_MS = 20_000;   // nothing at all (not even a pong) for this long = dead connection

export const AUDIO_RATE = 48000;   // the stream's own format: haven does not resample
export const AUDIO_CHANNELS = 2;

// Encoded mode's media header: kind (1 video, 2 audio), flags (bit 0 key), uint64 µs timestamp.
export const KIND_VIDEO = 1;
export const KIND_AUDIO = 2;
const HEADER_BYTES = 10;

export class LiveConnection {
  /**
   * handlers: onStatus({state, text, detail}) with state connecting|playing|reconnecting|ended|error,
   * onSession(startAnswer), onFormat(msg), onFrame(blob, arrivedAt), onAudio(base64), onEvent(msg),
   * onSocket(mode) (a new socket: the media that follows starts over, with a format message),
   * onChunk({kind, key, timestamp, data}, arrivedAt) (encoded mode; data is a Uint8Array).
   * mode: 'jpeg' or 'encoded'. In encoded mode the state turns to `playing` when the player
   * calls mediaFlowing() (something was decoded), not on the first message.
   */
  constructor(mint, handlers, { mode = 'jpeg' } = {}) {
    this.mint = mint;
    this.h = handlers;
    this.mode = mode;
    this.ws = null;
    this.attempt = 0;       // reconnect attempts since media last flowed
    this.timer = 0;
    this.retry = null;      // the pending reconnect, so `online` can run it early
    this.pingTimer = 0;
    this.closed = false;    // closed by us (stop, leaving the page)
    this.done = false;      // ended or failed for good
    this.aborter = new AbortController();
  }

  status(state, text = state, detail = '') {
    this.state = state;
    this.h.onStatus?.({ state, text, detail });
  }

  async open() {
    this.status('connecting');
    try {
      await this.startSession(START_TRIES);
    } catch (err) {
      if (!isAbort(err)) this.finish('error', err.message);
      return;
    }
    this.connect();
  }

  async startSession(tries) {
    for (let attempt = 1; ; attempt++) {
      try {
        const { data } = await post('/api/live-sessions/start', { mint_id: this.mint }, { signal: this.aborter.signal });
        this.h.onSession?.(data);
        return data;
      } catch (err) {
        if (isAbort(err)) throw err;
        // 404 (not live) and 422 (bad mint) will not change by asking again.
        const retryable = err.status === 0 || err.status === 429 || err.status >= 500;
        if (!retryable || attempt >= tries) throw err;
        this.status('connecting', `connecting (retry ${attempt} of ${tries - 1})`, err.message);
        await sleep(BASE_DELAY_MS * attempt, this.aborter.signal);
      }
    }
  }

  connect() {
    if (this.closed || this.done) return;
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const encoded = this.mode === 'encoded';
    const url = `${scheme}//${location.host}/api/live-sessions/ws/live/${encodeURIComponent(this.mint)}` +
      (encoded ? '?mode=encoded' : `?audio_rate=${AUDIO_RATE}&audio_channels=${AUDIO_CHANNELS}`) +
      (apiToken ? `&token=${encodeURIComponent(apiToken)}` : '');   // browsers cannot set headers here
    const ws = new WebSocket(url);
    // JPEG: createImageBitmap takes the Blob as it is; encoded: the header is read from the bytes.
    ws.binaryType = encoded ? 'arraybuffer' : 'blob';
    this.ws = ws;
    this.h.onSocket?.(this.mode);
    this.ended = null;
    this.mediaSeen = false;
    this.lastMessageAt = performance.now();
    ws.onmessage = (ev) => { if (this.ws === ws) this.onMessage(ev); };
    ws.onclose = (ev) => { if (this.ws === ws) this.onClose(ev); };
    clearInterval(this.pingTimer);
    this.pingTimer = setInterval(() => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (performance.now() - this.lastMessageAt > STALL_MS) {
        // No media, event or pong for a long time: the path is dead even if TCP has not noticed.
        this.ws = null;
        ws.close(4000, 'stalled');
        this.onClose({ code: 4000, reason: 'no data from haven' });
        return;
      }
      ws.send('ping');
    }, PING_MS);
  }

  onMessage(ev) {
    const now = performance.now();
    this.lastMessageAt = now;
    const data = ev.data;
    if (typeof data !== 'string') {
      if (this.mode === 'encoded') {
        if (data.byteLength < HEADER_BYTES) return;   // not a media message: ignore it
        const head = new DataView(data, 0, HEADER_BYTES);
        this.h.onChunk?.({
          kind: head.getUint8(0),
          key: (head.getUint8(1) & 1) === 1,
          timestamp: Number(head.getBigUint64(2)),   // µs; exact below 2^53 (285 years)
          data: new Uint8Array(data, HEADER_BYTES),
        }, now);
        return;
      }
      this.media();
      this.h.onFrame?.(data, now);
      return;
    }
    if (data.startsWith('audio:')) {
      this.media();
      this.h.onAudio?.(data.slice(6));
      return;
    }
    if (data === 'pong') return;
    let msg;
    try { msg = JSON.parse(data); } catch { return; }
    switch (msg?.type) {
      case 'reconnecting':
        // haven lost the stream's room and is rejoining; our socket stays open.
        this.status('reconnecting', `reconnecting (attempt ${msg.attempt ?? '?'})`, msg.reason || 'stream connection lost');
        break;
      case 'streamer_left':
        // The streamer left the room; haven waits grace_ms for them to come back.
        this.status('reconnecting', 'streamer left', `waiting up to ${Math.round((msg.grace_ms ?? 0) / 1000)} s for the streamer to come back`);
        break;
      case 'resumed':
        this.status('playing');
        break;
      case 'ended':
        this.ended = msg;
        break;
      default:
        break;
    }
    this.h.onEvent?.(msg);
    if (msg?.type === 'format') this.h.onFormat?.(msg);
  }

  /** Encoded mode: the player decoded something (the connection cannot tell from the bytes). */
  mediaFlowing() {
    if (this.ws) this.media();
  }

  media() {
    if (this.mediaSeen) return;
    this.mediaSeen = true;
    this.attempt = 0;   // media flows again: the next outage starts the backoff from 1 s
    this.status('playing');
  }

  onClose(ev) {
    clearInterval(this.pingTimer);
    this.ws = null;
    if (this.closed || this.done) return;
    if (ev.code === 1000) {
      this.finish('ended', this.ended?.reason || ev.reason || 'stream ended');
      return;
    }
    if (ev.code === 1008 && !/too slow/i.test(ev.reason || '')) {
      this.finish('error', ev.reason || 'haven refused the connection');
      return;
    }
    const why = ev.reason || (ev.code === 1006 ? 'connection lost' : `closed (${ev.code})`);
    this.scheduleReconnect(ev.code === 4404 || ev.code === 4410, why);
  }

  scheduleReconnect(needStart, why) {
    this.attempt++;
    if (this.attempt > MAX_ATTEMPTS) {
      this.finish('error', `gave up after ${MAX_ATTEMPTS} reconnect attempts (${why})`);
      return;
    }
    const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (this.attempt - 1));
    this.status('reconnecting', `reconnecting (attempt ${this.attempt})`, `${why}; next try in ${delay / 1000} s`);
    this.retry = async () => {
      this.retry = null;
      clearTimeout(this.timer);
      if (this.closed || this.done) return;
      if (needStart) {
        try {
          await this.startSession(1);
        } catch (err) {
          if (isAbort(err)) return;
          if (err.status === 404 || err.status === 422) this.finish('ended', err.message);
          else this.scheduleReconnect(true, err.message);
          return;
        }
      }
      this.connect();
    };
    this.timer = setTimeout(this.retry, delay);
  }

  /**
   * Reconnects at once in another mode (WebCodecs cannot decode the stream's codec: JPEG). Not a
   * reconnect attempt: nothing failed, the session is still there.
   */
  switchMode(mode, why = '') {
    if (this.closed || this.done || mode === this.mode) return;
    this.mode = mode;
    clearTimeout(this.timer);
    this.retry = null;
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;   // its close event is ours, not a failure to react to
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, `switching to ${mode}`);
    this.status('connecting', 'connecting', why);
    this.connect();
  }

  /** The network came back (window `online`): do not wait out the backoff. */
  retryNow() {
    this.retry?.();
  }

  finish(state, reason) {
    this.done = true;
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    const ws = this.ws;   // still open when the player gives up (WebCodecs refused a forced mode)
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'player gave up');
    this.status(state, `${state}: ${reason}`, reason);
  }

  close() {
    this.closed = true;
    this.aborter.abort();
    clearTimeout(this.timer);
    clearInterval(this.pingTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'viewer left');
  }
}

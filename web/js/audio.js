// PCM player: haven's "audio:<base64>" chunks (s16le, interleaved, in the rate and channel count
// the format line announced) scheduled back to back on an AudioContext timeline.
//
// Chunks arrive every ~20 ms with network jitter. Playing each one "now" (as the seed's example
// does) gives clicks, overlaps and gaps, so they are queued instead: the first chunk starts LEAD
// seconds ahead and each next chunk starts exactly where the previous one ends. If the queue runs
// dry we restart it LEAD ahead; if it grows past MAX_AHEAD (the sender's clock runs faster than
// the sound card's, or a burst arrived) we drop chunks until it is back to CATCH_UP_TO.
// Smaller excess is trimmed too: if even the shortest queue seen over TRIM_WINDOW was more than
// LEAD + TRIM_SLACK, that extra never protected against jitter and only delays the sound behind
// the picture (video is drawn as soon as it is decoded), so it is skipped once.

const LEAD = 0.15;         // seconds queued ahead when (re)starting: absorbs network jitter
const MIN_AHEAD = 0.03;    // less than this queued = underrun (a chunk must never start in the past)
const MAX_AHEAD = 1.0;     // more than this queued = we are behind live: start dropping
const CATCH_UP_TO = 0.3;   // ...until this much is queued again (hysteresis: one skip, not many)
const TRIM_WINDOW = 2.0;   // seconds over which the smallest queue is measured
const TRIM_SLACK = 0.1;    // tolerated queue above LEAD before trimming

function decodeBase64(text) {
  if (typeof Uint8Array.fromBase64 === 'function') return Uint8Array.fromBase64(text);
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export class PcmPlayer {
  /**
   * stats: the object exposed as window.havenPlayer.audio; updated in place.
   * onState(state): called when the AudioContext is created or changes state
   *   ("suspended" means the browser wants a user gesture before it plays sound).
   */
  constructor(stats, { volume = 0.8, muted = false, onState } = {}) {
    this.stats = stats;
    this.volume = volume;
    this.muted = muted;
    this.onState = onState;
    this.ctx = null;
    this.gain = null;
    this.rate = 0;
    this.channels = 0;
    this.anchor = 0;        // context time where the current run of contiguous chunks started
    this.frames = 0;        // sample frames scheduled since anchor (integer: no float drift)
    this.catchingUp = false;
    this.winStart = 0;      // latency trim: start and minimum queue of the current window
    this.winMin = Infinity;
    this.trim = 0;          // seconds of audio still to skip
  }

  /** The format line announced rate/channels; make sure a context exists for them. */
  configure(rate, channels) {
    this.rate = rate;
    this.channels = channels;
    Object.assign(this.stats, { sampleRate: rate, channels });
    if (!this.ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      // A context at the stream's own rate plays the chunks without resampling each one
      // separately (which can click at chunk edges); the browser resamples once, at the output.
      try {
        this.ctx = new AC({ sampleRate: rate, latencyHint: 'interactive' });
      } catch {
        this.ctx = new AC({ latencyHint: 'interactive' });
      }
      this.gain = this.ctx.createGain();
      this.gain.gain.value = this.muted ? 0 : this.volume;
      this.gain.connect(this.ctx.destination);
      this.stats.contextRate = this.ctx.sampleRate;
      this.ctx.addEventListener('statechange', () => this._state());
      // Allowed without a click when the page already had a user gesture (the card click).
      this.ctx.resume().catch(() => {});
    }
    this.reset();
    this._state();
  }

  _state() {
    if (!this.ctx) return;
    this.stats.state = this.ctx.state;
    if (this.ctx.state === 'running') this.reset();   // time was frozen: restart the queue
    this.onState?.(this.ctx.state);
  }

  /** Must be called from a user gesture (click) when the context is suspended. */
  unlock() {
    return this.ctx ? this.ctx.resume().catch(() => {}) : Promise.resolve();
  }

  /** Forget the queue position: the next chunk starts LEAD from now (after reconnects). */
  reset() {
    this.anchor = 0;
    this.frames = 0;
    this.catchingUp = false;
    this.winStart = 0;
    this.winMin = Infinity;
    this.trim = 0;
  }

  get nextTime() {
    return this.anchor + this.frames / this.rate;
  }

  /** Seconds of audio queued ahead of what is playing now. */
  get buffered() {
    if (!this.ctx || !this.rate || this.anchor === 0) return 0;
    return Math.max(0, this.nextTime - this.ctx.currentTime);
  }

  push(base64) {
    const ctx = this.ctx;
    if (!ctx || !this.rate) return;
    if (ctx.state !== 'running') {
      // A suspended context's clock stands still; queueing would only pile up stale sound.
      this.stats.dropped++;
      return;
    }
    const bytes = decodeBase64(base64);
    const ch = this.channels;
    const count = Math.floor(bytes.length / (2 * ch));
    if (count === 0) return;

    const now = ctx.currentTime;
    let ahead = this.anchor ? this.nextTime - now : -1;
    if (ahead < MIN_AHEAD) {
      if (this.anchor) this.stats.underruns++;
      // Start on a whole sample frame of the context so back-to-back chunks line up exactly.
      this.anchor = Math.ceil((now + LEAD) * ctx.sampleRate) / ctx.sampleRate;
      this.frames = 0;
      this.catchingUp = false;
      this.winStart = now;
      this.winMin = Infinity;
      this.trim = 0;
      ahead = LEAD;
    } else if (ahead > MAX_AHEAD || this.catchingUp) {
      this.catchingUp = ahead > CATCH_UP_TO;
      if (this.catchingUp) {
        this.stats.dropped++;
        return;
      }
    } else {
      this.winMin = Math.min(this.winMin, ahead);
      if (now - this.winStart >= TRIM_WINDOW) {
        if (this.winMin > LEAD + TRIM_SLACK) this.trim = this.winMin - LEAD;
        this.winStart = now;
        this.winMin = Infinity;
      }
      if (this.trim > 0) {
        this.trim -= count / this.rate;
        this.stats.dropped++;
        this.stats.trimmed++;
        return;
      }
    }

    const buffer = ctx.createBuffer(ch, count, this.rate);
    // Explicit little-endian reads: correct whatever the platform's byte order.
    const view = new DataView(bytes.buffer, bytes.byteOffset, count * 2 * ch);
    for (let c = 0; c < ch; c++) {
      const out = buffer.getChannelData(c);
      for (let i = 0, off = c * 2; i < count; i++, off += 2 * ch) out[i] = view.getInt16(off, true) / 32768;
    }
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.gain);
    src.start(this.nextTime);
    this.frames += count;

    const st = this.stats;
    st.bufferedMs = Math.round((this.nextTime - now) * 1000);
    st.chunks++;
    st.scheduledSeconds += count / this.rate;
    if (st.startedAt == null) st.startedAt = performance.now();
  }

  setVolume(volume) {
    this.volume = volume;
    this._applyGain();
  }

  setMuted(muted) {
    this.muted = muted;
    this._applyGain();
  }

  _applyGain() {
    if (!this.gain) return;
    // A short ramp instead of a jump: no click when muting mid-waveform.
    const target = this.muted ? 0 : this.volume;
    this.gain.gain.cancelScheduledValues(this.ctx.currentTime);
    this.gain.gain.setTargetAtTime(target, this.ctx.currentTime, 0.015);
  }

  close() {
    const ctx = this.ctx;
    this.ctx = null;
    if (ctx && ctx.state !== 'closed') ctx.close().catch(() => {});
  }
}

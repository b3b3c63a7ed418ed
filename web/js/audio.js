// Sound → an AudioContext timeline, in either mode.
//
// JPEG mode: haven's "audio:<base64>" chunks (s16le, interleaved, in the rate and channel count
// the format line announced). Encoded mode (OpusChunkDecoder): the stream's own Opus packets go
// through a WebCodecs AudioDecoder, and its AudioData, converted to float planes, takes the same
// way as JPEG mode's PCM: one scheduler, one jitter buffer, the same numbers below.
//
// Chunks arrive every ~20 ms with network jitter. Playing each one "now" (as the seed's example
// does) gives clicks, overlaps and gaps, so they are queued instead: the first chunk starts LEAD
// seconds ahead and each next chunk starts exactly where the previous one ends. If the queue runs
// dry we restart it LEAD ahead; if it grows past MAX_AHEAD (the sender's clock runs faster than
// the sound card's, or a burst arrived) we drop chunks until it is back to CATCH_UP_TO.
// Smaller excess is trimmed too: if even the shortest queue seen over TRIM_WINDOW was more than
// LEAD + TRIM_SLACK, that extra never protected against jitter and only delays the sound behind
// the picture (video is drawn as soon as it is decoded), so it is skipped once.
//
// Encoded mode also has the packets' timestamps (µs, the stream's clock). A packet's lateness is
// its arrival time minus its timestamp; the live packets are the least late. One that arrived
// more than STALE_MS later than that is not played: a new viewer's burst starts at the last key
// frame, up to seconds back, and its sound would only delay the live sound (the decoder is
// asynchronous, so by the time the burst's packets come out of it the live ones have arrived and
// show how late they are). And a short hole in the timestamps (lost packets, Opus DTX) becomes
// silence of the same length while the queue runs, so the sound keeps its place on the stream's
// clock instead of moving up.

const LEAD = 0.15;         // seconds queued ahead when (re)starting: absorbs network jitter
const MIN_AHEAD = 0.03;    // less than this queued = underrun (a chunk must never start in the past)
const MAX_AHEAD = 1.0;     // more than this queued = we are behind live: start dropping
const CATCH_UP_TO = 0.3;   // ...until this much is queued again (hysteresis: one skip, not many)
const TRIM_WINDOW = 2.0;   // seconds over which the smallest queue is measured
const TRIM_SLACK = 0.1;    // tolerated queue above LEAD before trimming
const GAP_MIN_US = 2000;   // timestamp holes shorter than this are rounding, not missing sound
const GAP_MAX_US = 500_000;  // longer holes are a discontinuity: no silence, the queue restarts
const STALE_MS = 400;      // encoded: a packet that arrived this much later than live ones is dropped
const LATENESS_WINDOW_MS = 3000;   // the least lateness is taken over the last two such windows
const AUDIO_QUEUE_MAX = 50;  // encoded: Opus packets waiting in the decoder (about 1 s)

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
    this.expectTs = null;   // encoded mode: µs where the last scheduled chunk ends
    this.clockTs = null;    // encoded mode: a stream timestamp (µs) and the context time it plays at
    this.clockAt = 0;
    this.level = null;      // RMS of the sound scheduled, smoothed
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
    this.expectTs = null;
    this.clockTs = null;
  }

  get nextTime() {
    return this.anchor + this.frames / this.rate;
  }

  /** Seconds of audio queued ahead of what is playing now. */
  get buffered() {
    if (!this.ctx || !this.rate || this.anchor === 0) return 0;
    return Math.max(0, this.nextTime - this.ctx.currentTime);
  }

  /** JPEG mode: one "audio:" chunk's base64 (s16le, interleaved, the announced format). */
  push(base64) {
    if (!this._playable()) return;
    const bytes = decodeBase64(base64);
    const ch = this.channels;
    const count = Math.floor(bytes.length / (2 * ch));
    if (count === 0) return;
    this._schedule(count, ch, this.rate, (buffer) => {
      // Explicit little-endian reads: correct whatever the platform's byte order.
      const view = new DataView(bytes.buffer, bytes.byteOffset, count * 2 * ch);
      for (let c = 0; c < ch; c++) {
        const out = buffer.getChannelData(c);
        for (let i = 0, off = c * 2; i < count; i++, off += 2 * ch) out[i] = view.getInt16(off, true) / 32768;
      }
    });
  }

  /**
   * Encoded mode: one AudioData from the AudioDecoder, and the stream timestamp (µs) of the packet
   * it came from. The caller closes it.
   */
  pushAudioData(data, ts = data.timestamp) {
    if (!this._playable()) return;
    const count = data.numberOfFrames;
    const ch = data.numberOfChannels;
    const rate = data.sampleRate;
    if (!count || !ch || !rate) return;
    let gapUs = 0;
    if (this.expectTs != null) {
      gapUs = ts - this.expectTs;
      if (gapUs <= -(count * 1e6) / rate) {
        // Wholly before what is already queued (a repeat): playing it would shift the sound.
        this.stats.dropped++;
        return;
      }
      if (gapUs < GAP_MIN_US || gapUs > GAP_MAX_US) gapUs = 0;
    }
    const start = this._schedule(count, ch, rate, (buffer) => copyPlanes(data, buffer, ch, count), gapUs);
    this.expectTs = ts + Math.round((count * 1e6) / rate);
    if (start != null) {
      this.clockTs = ts;
      this.clockAt = start;
    }
  }

  /**
   * Encoded mode: the performance.now() time at which the sound of stream time `ts` (µs) is
   * heard, from the last chunk scheduled; null while no sound is scheduled (none yet, suspended).
   */
  playoutAt(ts) {
    const ctx = this.ctx;
    if (!ctx || ctx.state !== 'running' || this.clockTs == null || this.buffered <= 0) return null;
    const at = this.clockAt + (ts - this.clockTs) / 1e6;   // context time
    // What the speakers output now, in both clocks (includes the output latency).
    const out = typeof ctx.getOutputTimestamp === 'function' ? ctx.getOutputTimestamp() : null;
    if (out && out.performanceTime > 0) return out.performanceTime + (at - out.contextTime) * 1000;
    return performance.now() + (at - ctx.currentTime) * 1000;
  }

  /** Encoded mode: packets were skipped on purpose; what comes next is not a hole to fill. */
  discontinuity() {
    this.expectTs = null;
  }

  _playable() {
    const ctx = this.ctx;
    if (!ctx || !this.rate) return false;
    if (ctx.state !== 'running') {
      // A suspended context's clock stands still; queueing would only pile up stale sound.
      this.stats.dropped++;
      return false;
    }
    return true;
  }

  /**
   * Queues `count` sample frames (`fill(buffer)` writes them into a fresh AudioBuffer) where the
   * previous chunk ends, after `gapUs` of silence. Jitter buffer: see the top of this file.
   * Returns the context time the chunk starts at, or null when it was dropped.
   */
  _schedule(count, ch, rate, fill, gapUs = 0) {
    const ctx = this.ctx;
    // The queue position counts frames at this.rate (the context's, for the announced format).
    const frames = rate === this.rate ? count : Math.round((count * this.rate) / rate);
    const now = ctx.currentTime;
    let ahead = this.anchor ? this.nextTime - now : -1;
    let restarted = false;
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
      restarted = true;
    } else if (ahead > MAX_AHEAD || this.catchingUp) {
      this.catchingUp = ahead > CATCH_UP_TO;
      if (this.catchingUp) {
        this.stats.dropped++;
        this.stats.caughtUp = (this.stats.caughtUp || 0) + 1;
        return null;
      }
    } else {
      this.winMin = Math.min(this.winMin, ahead);
      if (now - this.winStart >= TRIM_WINDOW) {
        if (this.winMin > LEAD + TRIM_SLACK) this.trim = this.winMin - LEAD;
        this.winStart = now;
        this.winMin = Infinity;
      }
      if (this.trim > 0) {
        this.trim -= frames / this.rate;
        this.stats.dropped++;
        this.stats.trimmed++;
        return null;
      }
    }
    // A hole in the stream's timestamps while sound is queued: leave it silent, so what follows
    // keeps its place. (A restarted queue starts LEAD from now anyway.)
    if (gapUs > 0 && !restarted) {
      this.frames += Math.round((gapUs * this.rate) / 1e6);
      this.stats.gaps = (this.stats.gaps || 0) + 1;
    }

    const buffer = ctx.createBuffer(ch, count, rate);
    fill(buffer);
    // Loudness of what is scheduled (RMS of the first channel, smoothed): silence vs sound.
    const d = buffer.getChannelData(0);
    let sum = 0;
    for (let i = 0; i < count; i++) sum += d[i] * d[i];
    const rms = Math.sqrt(sum / count);
    this.level = this.level == null ? rms : this.level * 0.9 + rms * 0.1;
    const src = ctx.createBufferSource();
    src.buffer = buffer;
    src.connect(this.gain);
    const start = this.nextTime;
    src.start(start);
    this.frames += frames;

    const st = this.stats;
    st.bufferedMs = Math.round((this.nextTime - now) * 1000);
    st.level = Math.round(this.level * 1000) / 1000;
    st.chunks++;
    st.scheduledSeconds += count / rate;
    if (st.startedAt == null) st.startedAt = performance.now();
    return start;
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

// AudioData → the AudioBuffer's float channels. copyTo converts to f32-planar where the browser
// can (WebCodecs requires it); otherwise the decoder's own interleaved f32/s16 is split here.
function copyPlanes(data, buffer, ch, count) {
  try {
    for (let c = 0; c < ch; c++) data.copyTo(buffer.getChannelData(c), { planeIndex: c, format: 'f32-planar' });
    return;
  } catch { /* no conversion: read the native format below */ }
  const fmt = data.format;
  if (fmt === 'f32-planar') {
    for (let c = 0; c < ch; c++) data.copyTo(buffer.getChannelData(c), { planeIndex: c });
    return;
  }
  const planar = fmt.endsWith('-planar');
  for (let c = 0; c < ch; c++) {
    const plane = planar ? c : 0;
    const bytes = data.allocationSize({ planeIndex: plane });
    const raw = new ArrayBuffer(bytes);
    data.copyTo(raw, { planeIndex: plane });
    const out = buffer.getChannelData(c);
    const step = planar ? 1 : ch;
    const first = planar ? 0 : c;
    if (fmt.startsWith('f32')) {
      const src = new Float32Array(raw);
      for (let i = 0; i < count; i++) out[i] = src[first + i * step];
    } else if (fmt.startsWith('s16')) {
      const src = new Int16Array(raw);
      for (let i = 0; i < count; i++) out[i] = src[first + i * step] / 32768;
    } else if (fmt.startsWith('s32')) {
      const src = new Int32Array(raw);
      for (let i = 0; i < count; i++) out[i] = src[first + i * step] / 2147483648;
    } else {   // u8
      const src = new Uint8Array(raw);
      for (let i = 0; i < count; i++) out[i] = (src[first + i * step] - 128) / 128;
    }
  }
}

/** AudioDecoder configuration for an encoded-mode format message's `audio`. */
export function audioConfig(audio) {
  return { codec: audio.codec || 'opus', sampleRate: Number(audio.sample_rate) || 48000, numberOfChannels: Number(audio.channels) || 2 };
}

// Encoded mode: Opus packets → WebCodecs AudioDecoder → PcmPlayer.pushAudioData.
export class OpusChunkDecoder {
  /** player: the PcmPlayer; stats: window.havenPlayer.audio; onOutput(): sound was decoded. */
  constructor(player, stats, { onOutput } = {}) {
    this.player = player;
    this.stats = stats;
    this.onOutput = onOutput;
    this.decoder = null;
    this.config = null;
    // Timestamps and lateness of the packets in the decoder, oldest first. Chromium's AudioData
    // timestamps count the samples decoded from the first packet on, so after a lost packet they
    // lag behind the stream's; one Opus packet gives one AudioData, in order, so the packet's own
    // is taken.
    this.inputs = [];
    this.skipped = false;      // packets were skipped before the next one decoded
    this._forgetLateness();
    this.closed = false;
  }

  /** False when the decoder refuses the configuration. */
  configure(config) {
    if (this.closed) return false;
    this.config = config;
    return this._open();
  }

  _open() {
    this._discard();
    const decoder = new AudioDecoder({
      output: (data) => this._output(decoder, data),
      error: (err) => this._error(decoder, err),
    });
    try {
      decoder.configure(this.config);
    } catch (err) {
      console.warn('AudioDecoder.configure refused', this.config, err?.message || err);
      decoder.close();
      return false;
    }
    this.decoder = decoder;
    this.inputs = [];
    return true;
  }

  _discard() {
    const old = this.decoder;
    this.decoder = null;
    this.inputs = [];
    if (old && old.state !== 'closed') {
      try { old.close(); } catch { /* already closed */ }
    }
  }

  /** A new socket: what is queued belongs to the old one. */
  reset() {
    this._forgetLateness();
    this.inputs = [];
    if (this.decoder && this.decoder.state === 'configured') {
      try {
        this.decoder.reset();
        this.decoder.configure(this.config);
      } catch {
        this._open();
      }
    }
  }

  /** The stream's clock may have jumped against ours (haven rejoined the room, a new socket). */
  _forgetLateness() {
    this.lateMin = Infinity;       // least lateness in the current window (ms)
    this.latePrevMin = Infinity;   // ... and in the previous one
    this.lateSince = 0;
  }

  _lateness(lateness, now) {
    if (now - this.lateSince > LATENESS_WINDOW_MS) {
      this.latePrevMin = this.lateMin;
      this.lateMin = Infinity;
      this.lateSince = now;
    }
    if (lateness < this.lateMin) this.lateMin = lateness;
  }

  discontinuity() {
    this._forgetLateness();
  }

  push(chunk, arrivedAt = performance.now()) {
    if (this.closed || !this.decoder || this.decoder.state !== 'configured') return;
    const lateness = arrivedAt - chunk.timestamp / 1000;
    this._lateness(lateness, arrivedAt);
    if (this.decoder.decodeQueueSize > AUDIO_QUEUE_MAX) {
      // Every Opus packet decodes on its own: skipping one is a short gap, not a hole to keep.
      this.stats.dropped++;
      this.stats.queueFull = (this.stats.queueFull || 0) + 1;
      this.skipped = true;
      return;
    }
    try {
      this.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp: chunk.timestamp, data: chunk.data }));
      this.inputs.push({ ts: chunk.timestamp, lateness, afterSkip: this.skipped });
      this.skipped = false;
      if (this.inputs.length > 4 * AUDIO_QUEUE_MAX) this.inputs.shift();   // outputs went missing
    } catch (err) {
      this.stats.decodeErrors = (this.stats.decodeErrors || 0) + 1;
      console.warn('audio chunk refused:', err?.message || err);
    }
  }

  _output(decoder, data) {
    try {
      if (this.closed || decoder !== this.decoder) return;
      const input = this.inputs.shift();
      const ts = input ? input.ts : data.timestamp;
      if (input?.afterSkip) this.player.discontinuity();
      // Decoding is asynchronous: by the time a burst's old packets come out, the newest ones
      // have arrived, and the old ones are skipped.
      const least = Math.min(this.lateMin, this.latePrevMin);
      if (input && input.lateness - least > STALE_MS) {
        this.stats.dropped++;
        this.stats.stale = (this.stats.stale || 0) + 1;
        this.player.discontinuity();
        return;
      }
      this.player.pushAudioData(data, ts);
      this.onOutput?.();
    } finally {
      data.close();
    }
  }

  _error(decoder, err) {
    if (this.closed || decoder !== this.decoder) return;
    this.stats.decodeErrors = (this.stats.decodeErrors || 0) + 1;
    console.warn('audio decoder error, reconfiguring:', err?.message || err);
    this._open();
  }

  close() {
    this.closed = true;
    this._discard();
  }
}

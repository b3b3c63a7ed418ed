// Video → canvas, in either mode.
//
// JPEG mode: frames are decoded with createImageBitmap (off the main thread) and only the newest
// decoded frame is kept; drawing happens on requestAnimationFrame, so a burst of frames, a slow
// decoder or a hidden tab never builds a backlog: stale frames are dropped.
//
// Encoded mode (VideoChunkDecoder): the stream's own H.264/H.265/VP8/VP9 frames go through a
// WebCodecs VideoDecoder; its VideoFrames take the same way to the canvas (drawn on an animation
// frame, every one not drawn closed at once so the decoder never runs out of frames). Their
// timestamps are on the audio's clock, so while sound plays each frame waits until the sound of
// the same instant is heard (lip sync; it also evens out frames that arrive in clumps), at most
// MAX_HELD frames; without sound a frame is drawn as soon as it is decoded, as in JPEG mode. The
// decode queue is bounded: when the decoder falls behind, deltas are dropped until the next key
// frame.

const MAX_IN_FLIGHT = 2;   // decodes running at once; one more waits in `pending` (newest only)
const MAX_HELD = 12;       // decoded frames waiting for their time (0.4 s at 30 fps)

export class FrameRenderer {
  /**
   * stats: the object exposed as window.havenPlayer (frames, lastFrameAt, … updated in place).
   * onSize(width, height): the canvas was resized to a new frame size.
   */
  constructor(canvas, stats, { onSize } = {}) {
    this.canvas = canvas;
    this.g = canvas.getContext('2d', { alpha: false });
    this.stats = stats;
    this.onSize = onSize;
    this.seq = 0;          // arrival order of frames
    this.newest = 0;       // seq of the newest frame decoded (ready or drawn)
    this.inFlight = 0;
    this.pending = null;   // {blob, arrivedAt, seq}: waits for a decode slot
    this.ready = [];       // [{image, arrivedAt, dueAt}]: decoded, oldest first, wait to be drawn
    this.raf = 0;
    this.latency = null;   // ms from message arrival to draw, smoothed
    this.rgba = null;      // VideoFrame → RGBA pixels (see _drawVideoFrame); null: not tried yet
    this.converting = false;
    this.closed = false;
    this.draw = this.draw.bind(this);
  }

  push(blob, arrivedAt = performance.now()) {
    if (this.closed) return;
    this.stats.framesReceived++;
    const frame = { blob, arrivedAt, seq: ++this.seq };
    if (this.inFlight >= MAX_IN_FLIGHT) {
      if (this.pending) this.stats.framesDropped++;   // replaced by a newer one before decoding
      this.pending = frame;
      return;
    }
    this.decode(frame);
  }

  async decode({ blob, arrivedAt, seq }) {
    this.inFlight++;
    let bitmap = null;
    try {
      bitmap = await createImageBitmap(blob);
    } catch {
      this.stats.decodeErrors++;   // a broken JPEG: skip it, keep the last good picture
    }
    this.inFlight--;
    if (bitmap) {
      if (this.closed || seq < this.newest) {
        // An older frame finished after a newer one: never draw backwards in time.
        bitmap.close();
        if (!this.closed) this.stats.framesDropped++;
      } else {
        this.newest = seq;
        this.present(bitmap, arrivedAt);
      }
    }
    if (this.pending && !this.closed && this.inFlight < MAX_IN_FLIGHT) {
      const next = this.pending;
      this.pending = null;
      this.decode(next);
    }
  }

  /**
   * A decoded picture (ImageBitmap or VideoFrame, both closeable) to draw on the first animation
   * frame at or after dueAt (performance.now() time; 0: the next one). When several are due, the
   * newest is drawn and the others are closed. The renderer owns the picture from here.
   */
  present(image, arrivedAt, dueAt = 0) {
    if (this.closed) {
      image.close();
      return;
    }
    const q = this.ready;
    q.push({ image, arrivedAt, dueAt });
    // Never more than MAX_HELD waiting: the oldest is due now (drawn, or skipped by a newer one).
    if (q.length > MAX_HELD) q[q.length - MAX_HELD - 1].dueAt = 0;
    for (let i = q.length - 2; i >= 0 && q[i].dueAt > dueAt; i--) q[i].dueAt = dueAt;   // keep order
    if (!this.raf) this.raf = requestAnimationFrame(this.draw);
  }

  draw() {
    this.raf = 0;
    if (this.closed || this.converting) return;
    const q = this.ready;
    const now = performance.now();
    let i = -1;
    while (i + 1 < q.length && q[i + 1].dueAt <= now) i++;
    if (i < 0) {
      if (q.length) this.raf = requestAnimationFrame(this.draw);
      return;
    }
    for (let k = 0; k < i; k++) {
      q[k].image.close();   // overtaken by a newer picture before it could be drawn
      this.stats.framesDropped++;
    }
    const frame = q[i];
    q.splice(0, i + 1);
    const { image } = frame;
    if (typeof VideoFrame === 'function' && image instanceof VideoFrame && this.rgba !== false) {
      this._drawVideoFrame(frame);
      return;
    }
    if (q.length) this.raf = requestAnimationFrame(this.draw);
    // A VideoFrame's picture size is its display size; an ImageBitmap's is width × height.
    const w = image.displayWidth ?? image.width;
    const hgt = image.displayHeight ?? image.height;
    this._size(w, hgt);
    this.g.drawImage(image, 0, 0, w, hgt);
    image.close();
    this._drawn(frame, now);
  }

  /**
   * A VideoFrame through VideoFrame.copyTo(RGBA) and putImageData: drawImage(VideoFrame) converts
   * YUV on the main thread several times slower (tens of ms per 720p frame without a GPU), which
   * delays everything else the page does, the sound included. Browsers whose copyTo cannot
   * convert fall back to drawImage.
   */
  async _drawVideoFrame(frame) {
    const { image } = frame;
    const rect = image.visibleRect;
    const w = rect ? rect.width : image.displayWidth;
    const hgt = rect ? rect.height : image.displayHeight;
    this.converting = true;
    try {
      if (!this.rgba || this.rgba.length !== w * hgt * 4) this.rgba = new Uint8ClampedArray(w * hgt * 4);
      await image.copyTo(this.rgba, { format: 'RGBA', colorSpace: 'srgb' });
    } catch (err) {
      this.rgba = false;   // no conversion here: drawImage from now on
      console.info('VideoFrame.copyTo(RGBA) unavailable, drawing frames with drawImage:', err?.message || err);
    } finally {
      this.converting = false;
    }
    if (this.closed) {
      image.close();
      return;
    }
    if (this.rgba) {
      image.close();
      this._size(w, hgt);
      this.g.putImageData(new ImageData(this.rgba, w, hgt), 0, 0);
      this._drawn(frame, performance.now());
    } else {
      this.ready.unshift(frame);   // drawn by draw() with drawImage
    }
    if (this.ready.length && !this.raf) this.raf = requestAnimationFrame(this.draw);
  }

  // The canvas is sized to the frame; CSS (object-fit: contain) letterboxes it in the stage.
  _size(w, hgt) {
    const c = this.canvas;
    if (c.width !== w || c.height !== hgt) {
      c.width = w;
      c.height = hgt;
      this.onSize?.(w, hgt);
    }
  }

  _drawn(frame, now) {
    const c = this.canvas;
    const st = this.stats;
    st.frames++;
    st.lastFrameAt = now;
    if (st.firstFrameAt == null) st.firstFrameAt = now;
    st.width = c.width;
    st.height = c.height;
    const delay = now - frame.arrivedAt;
    this.latency = this.latency == null ? delay : this.latency * 0.9 + delay * 0.1;
    st.latencyMs = Math.round(this.latency);
  }

  close() {
    this.closed = true;
    if (this.raf) cancelAnimationFrame(this.raf);
    this.raf = 0;
    for (const f of this.ready) f.image.close();
    this.ready = [];
    this.rgba = null;
    this.pending = null;
  }
}

// ---- encoded mode -------------------------------------------------------------------------------

// Decode requests queued in the VideoDecoder. A new viewer's burst (the GOP so far, up to a few
// seconds of frames at once) may queue more for a moment; the decoder is behind only when the
// queue stays long (QUEUE_SOFT for QUEUE_SOFT_MS) or gets very long (QUEUE_HARD).
const QUEUE_SOFT = 8;
const QUEUE_SOFT_MS = 1500;
const QUEUE_HARD = 240;
const ARRIVALS_KEPT = 512;   // timestamp → arrival time, for the latency figure

/** Whether the page can decode the stream itself (WebCodecs exists only in secure contexts). */
export function webCodecsAvailable() {
  return typeof window.VideoDecoder === 'function' && typeof window.EncodedVideoChunk === 'function' &&
    typeof window.AudioDecoder === 'function' && typeof window.EncodedAudioChunk === 'function';
}

/** VideoDecoder configuration for an encoded-mode format message's `video`. */
export function videoConfig(video) {
  const config = { codec: video.codec, optimizeForLatency: true };
  if (video.width > 0 && video.height > 0) {
    config.codedWidth = video.width;
    config.codedHeight = video.height;
  }
  return config;
}

export class VideoChunkDecoder {
  /**
   * renderer: the FrameRenderer that draws the VideoFrames. stats: window.havenPlayer (frames
   * received, dropped, decode errors…). onOutput(): a frame was decoded (media flows).
   * clock(timestampUs): the performance.now() time at which the sound of that stream instant is
   * heard, or null (no sound playing): when to draw the frame.
   */
  constructor(renderer, stats, { onOutput, clock } = {}) {
    this.renderer = renderer;
    this.stats = stats;
    this.onOutput = onOutput;
    this.clock = clock;
    this.decoder = null;
    this.config = null;       // the VideoDecoder configuration in force
    this.needKey = true;      // deltas are useless until a key frame: after (re)configuring, errors, drops
    this.overSince = 0;       // when the queue went above QUEUE_SOFT
    this.arrivals = new Map();
    this.lastOutputTs = -Infinity;
    this.closed = false;
  }

  /**
   * Configures (or reconfigures, on a new codec or size) the decoder; the next chunk must be a key
   * frame. False when the decoder refuses the configuration.
   */
  configure(config) {
    if (this.closed) return false;
    this.config = config;
    return this._open();
  }

  _open() {
    this._discard();
    const decoder = new VideoDecoder({
      output: (frame) => this._output(decoder, frame),
      error: (err) => this._error(decoder, err),
    });
    try {
      decoder.configure(this.config);
    } catch (err) {
      console.warn('VideoDecoder.configure refused', this.config, err?.message || err);
      decoder.close();
      return false;
    }
    this.decoder = decoder;
    this.needKey = true;
    this.overSince = 0;
    this.lastOutputTs = -Infinity;
    return true;
  }

  _discard() {
    const old = this.decoder;
    this.decoder = null;
    this.arrivals.clear();
    if (old && old.state !== 'closed') {
      try { old.close(); } catch { /* already closed */ }
    }
  }

  /** A new socket or a stream discontinuity: drop what is queued and wait for a key frame. */
  reset() {
    this.needKey = true;
    this.arrivals.clear();
    if (this.decoder && this.decoder.state === 'configured') {
      try {
        this.decoder.reset();                 // drops queued work; back to 'unconfigured'
        this.decoder.configure(this.config);
      } catch {
        this._open();
      }
    }
    this.lastOutputTs = -Infinity;
  }

  /** One encoded frame: {key, timestamp (µs), data}. */
  push(chunk, arrivedAt) {
    if (this.closed) return;
    const st = this.stats;
    st.framesReceived++;
    if (!this.decoder || this.decoder.state !== 'configured') {
      st.framesDropped++;
      this.needKey = true;
      return;
    }
    if (chunk.key) {
      this.needKey = false;
    } else if (this.needKey) {
      st.framesDropped++;
      return;
    } else {
      // Bounded queue: a decoder that stays behind skips to the next key frame rather than
      // showing ever older pictures (the reference chain needs every delta up to it).
      const q = this.decoder.decodeQueueSize;
      const now = performance.now();
      if (q > QUEUE_SOFT) {
        if (!this.overSince) this.overSince = now;
      } else {
        this.overSince = 0;
      }
      if (q > QUEUE_HARD || (this.overSince && now - this.overSince > QUEUE_SOFT_MS)) {
        this.needKey = true;
        this.overSince = 0;
        st.framesDropped++;
        st.queueDrops = (st.queueDrops || 0) + 1;
        return;
      }
    }
    if (this.arrivals.size >= ARRIVALS_KEPT) this.arrivals.clear();
    this.arrivals.set(chunk.timestamp, arrivedAt);
    try {
      this.decoder.decode(new EncodedVideoChunk({
        type: chunk.key ? 'key' : 'delta',
        timestamp: chunk.timestamp,
        data: chunk.data,
      }));
    } catch (err) {
      // A chunk the decoder cannot take in its state (a delta first after a reset): wait for a key.
      st.decodeErrors++;
      this.needKey = true;
      console.warn('video chunk refused:', err?.message || err);
    }
  }

  _output(decoder, frame) {
    const arrivedAt = this.arrivals.get(frame.timestamp);
    this.arrivals.delete(frame.timestamp);
    if (this.closed || decoder !== this.decoder || frame.timestamp < this.lastOutputTs) {
      // From a decoder we replaced, or older than a frame already shown: never draw backwards.
      frame.close();
      return;
    }
    this.lastOutputTs = frame.timestamp;
    const now = performance.now();
    let due = this.clock?.(frame.timestamp) ?? null;
    // A time far off means the clocks disagree (a jump): draw at once rather than freeze.
    if (due != null && (due - now > 1000 || due - now < -1000)) due = null;
    this.stats.syncedToAudio = due != null;
    this.renderer.present(frame, arrivedAt ?? now, due ?? 0);
    this.onOutput?.();
  }

  _error(decoder, err) {
    if (this.closed || decoder !== this.decoder) return;
    // The decoder is closed now (a corrupt frame, a lost reference): start a new one and wait
    // for the next key frame.
    this.stats.decodeErrors++;
    console.warn('video decoder error, reconfiguring:', err?.message || err);
    this._open();
  }

  get queueSize() {
    return this.decoder ? this.decoder.decodeQueueSize : 0;
  }

  close() {
    this.closed = true;
    this._discard();
  }
}

// JPEG frames → canvas. Frames are decoded with createImageBitmap (off the main thread) and only
// the newest decoded frame is kept; drawing happens on requestAnimationFrame, so a burst of
// frames, a slow decoder or a hidden tab never builds a backlog: stale frames are dropped.

const MAX_IN_FLIGHT = 2;   // decodes running at once; one more waits in `pending` (newest only)

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
    this.ready = null;     // {bitmap, arrivedAt}: decoded, waits for the next animation frame
    this.raf = 0;
    this.latency = null;   // ms from message arrival to draw, smoothed
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
        if (this.ready) { this.ready.bitmap.close(); this.stats.framesDropped++; }
        this.ready = { bitmap, arrivedAt };
        this.newest = seq;
        if (!this.raf) this.raf = requestAnimationFrame(this.draw);
      }
    }
    if (this.pending && !this.closed && this.inFlight < MAX_IN_FLIGHT) {
      const next = this.pending;
      this.pending = null;
      this.decode(next);
    }
  }

  draw() {
    this.raf = 0;
    const frame = this.ready;
    if (!frame || this.closed) return;
    this.ready = null;
    const { bitmap } = frame;
    const c = this.canvas;
    // The canvas is sized to the frame; CSS (object-fit: contain) letterboxes it in the stage.
    if (c.width !== bitmap.width || c.height !== bitmap.height) {
      c.width = bitmap.width;
      c.height = bitmap.height;
      this.onSize?.(bitmap.width, bitmap.height);
    }
    this.g.drawImage(bitmap, 0, 0);
    bitmap.close();
    const now = performance.now();
    const st = this.stats;
    st.frames++;
    st.lastFrameAt = now;
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
    this.ready?.bitmap.close();
    this.ready = null;
    this.pending = null;
  }
}

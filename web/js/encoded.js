// Encoded mode (?mode=encoded): the stream's own frames, decoded in the page with WebCodecs.
//
// The connection hands over the format messages and the media chunks in arrival order. A format
// message whose video or audio differs from the configuration in force is checked with
// VideoDecoder/AudioDecoder.isConfigSupported() first; that answer is asynchronous, so whatever
// arrives meanwhile (the new viewer's burst: the key frame and everything since) waits in order
// and is fed after it, and the first picture still comes from the burst's key frame. A refused
// configuration is reported with onUnsupported(reason): the player goes back to JPEG mode.
// A format with `video: null` (haven has not seen a key frame yet) configures nothing: the next
// format message brings the codec.
import { VideoChunkDecoder, videoConfig } from './video.js';
import { OpusChunkDecoder, audioConfig } from './audio.js';
import { KIND_VIDEO, KIND_AUDIO } from './connection.js';

const WAITING_MAX = 2000;   // messages kept while a configuration is being checked

async function supported(Decoder, config) {
  try {
    const answer = await Decoder.isConfigSupported(config);
    return answer?.supported === true;
  } catch {
    return false;   // a config it cannot even parse
  }
}

export class EncodedPipeline {
  /**
   * renderer: FrameRenderer; audio: PcmPlayer; stats: window.havenPlayer.
   * onVideo({codec, width, height}): a video configuration is in force.
   * onUnsupported(reason): WebCodecs refused the stream's codec; nothing more is decoded.
   * onMedia(): a picture or sound came out of a decoder.
   */
  constructor({ renderer, audio, stats, onVideo, onUnsupported, onMedia }) {
    this.stats = stats;
    this.pcm = audio;
    this.onVideo = onVideo;
    this.onUnsupported = onUnsupported;
    // Frames are drawn when their sound is heard (both carry the stream's clock).
    this.video = new VideoChunkDecoder(renderer, stats, { onOutput: onMedia, clock: (ts) => audio.playoutAt(ts) });
    this.sound = new OpusChunkDecoder(audio, stats.audio, { onOutput: onMedia });
    this.videoKey = '';       // the video configuration in force, as JSON
    this.audioKey = '';
    this.busy = false;        // a configuration check is running; messages wait in `waiting`
    this.waiting = [];
    this.overflowed = false;
    this.gen = 0;             // bumped by reset(): answers for an older socket are ignored
    this.dead = false;        // refused or closed
  }

  /** A format message (type "format", mode "encoded"). */
  format(msg) {
    this._take({ format: msg });
  }

  /** A media message: {kind, key, timestamp, data}. */
  chunk(chunk, arrivedAt) {
    this._take({ chunk, arrivedAt });
  }

  /** haven lost the stream and rejoins: what follows does not continue what came before. */
  discontinuity() {
    this._take({ gap: true });
  }

  /** A new socket: the media starts over (format message, then the burst from a key frame). */
  reset() {
    this.gen++;
    this.waiting = [];
    this.overflowed = false;
    this.video.reset();
    this.sound.reset();
    this.pcm.reset();
  }

  _take(item) {
    if (this.dead) return;
    if (!this.busy) {
      this._run(item);
      return;
    }
    if (this.waiting.length >= WAITING_MAX && item.chunk) {
      // Keep formats; for media, one marker: deltas after a hole are useless until a key frame.
      if (!this.overflowed) this.waiting.push({ gap: true });
      this.overflowed = true;
      return;
    }
    this.waiting.push(item);
  }

  _run(item) {
    if (item.chunk) {
      const c = item.chunk;
      if (c.kind === KIND_VIDEO) this.video.push(c, item.arrivedAt);
      else if (c.kind === KIND_AUDIO) this.sound.push(c, item.arrivedAt);
      return;
    }
    if (item.gap) {
      this.video.needKey = true;
      this.sound.discontinuity();
      this.pcm.discontinuity();
      return;
    }
    const work = this._configure(item.format);
    if (!work) return;
    this.busy = true;
    const gen = this.gen;
    work.then((apply) => {
      if (this.dead) return;
      try {
        if (gen === this.gen) apply();
      } finally {
        this.busy = false;
      }
      this._drain();
    });
  }

  _drain() {
    while (!this.busy && !this.dead && this.waiting.length) {
      const item = this.waiting.shift();
      if (item.gap) this.overflowed = false;
      this._run(item);
    }
  }

  /**
   * Null when the format changes nothing; else a promise of the function that applies it (run
   * only if the socket is still the same), after the checks.
   */
  _configure(msg) {
    const v = msg.video && msg.video.codec ? videoConfig(msg.video) : null;
    const a = msg.audio && msg.audio.codec ? audioConfig(msg.audio) : null;
    const vKey = v ? JSON.stringify(v) : '';
    const aKey = a ? JSON.stringify(a) : '';
    const newVideo = v && vKey !== this.videoKey;
    const newAudio = a && aKey !== this.audioKey;
    if (!newVideo && !newAudio) return null;
    return Promise.all([
      newVideo ? supported(VideoDecoder, v) : true,
      newAudio ? supported(AudioDecoder, a) : true,
    ]).then(([videoOk, audioOk]) => () => {
      // The next video chunk after a format that changed the video is a key frame (docs/API.md).
      if (videoOk && newVideo) videoOk = this.video.configure(v);
      if (audioOk && newAudio) audioOk = this.sound.configure(a);
      if (!videoOk || !audioOk) {
        const what = !videoOk ? `${v.codec} ${msg.video.width}x${msg.video.height}` : `${a.codec} audio`;
        this.dead = true;
        this.onUnsupported?.(`WebCodecs cannot decode ${what} in this browser`);
        return;
      }
      if (newVideo) {
        this.videoKey = vKey;
        this.onVideo?.({ codec: v.codec, width: msg.video.width, height: msg.video.height });
      }
      if (newAudio) {
        this.pcm.configure(a.sampleRate, a.numberOfChannels);
        this.audioKey = aKey;
      }
    });
  }

  close() {
    this.dead = true;
    this.waiting = [];
    this.video.close();
    this.sound.close();
  }
}

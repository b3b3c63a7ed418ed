// The synthetic publishers' media: gst-launch-1.0 pipelines that send RTP to
// UDP sockets on 127.0.0.1, fanned out to every subscribed werift track. There
// are four named sources: `camera` (the --codec encoder) and `microphone` (a
// 440 Hz tone) run from the start; `screen` (VP8 640x360@15, a bouncing ball)
// and `screen_audio` (a 1250 Hz tone) start the first time a screen share
// needs them and then keep running. Every publisher (streamer, guests, in
// every room) shares them. With --pattern flash both branches run in ONE hv-flashbeep
// process instead (tests/tools/flashbeep.c): the picture flashes and the sound
// beeps at every whole second, on one clock, so a recording's A/V offset can be
// measured with hv-avprobe. Keyframe requests (RTCP PLI from a subscriber) are forwarded
// to the video pipeline's rtpbin, whose rtpsession turns a PLI for its own
// SSRC into an upstream force-key-unit event, so the encoder emits a keyframe
// at once (Appendix A.11) instead of at the next periodic one.
import dgram from 'node:dgram';
import fs from 'node:fs';
import { spawn, spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PUBLISHER_VIDEO, PUBLISHER_AUDIO, SCREEN_VIDEO } from './codecs.js';

const LOOPBACK = '127.0.0.1';

function hasElement(name) {
  return spawnSync('gst-inspect-1.0', ['--exists', name], { stdio: 'ignore' }).status === 0;
}

function bindUdp() {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, LOOPBACK, () => resolve(s));
  });
}

// A free UDP port for gst's udpsrc, which binds it itself a moment later.
// Picked at random below the kernel's ephemeral range: the WebRTC stacks of the
// test suites running in parallel bind ephemeral ports all the time, never
// these (a port 0 bind gives one if none is found there).
function ephemeralLow() {
  try {
    return parseInt(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0], 10) || 32768;
  } catch {
    return 32768;
  }
}

function bindUdpPort(port) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => { s.close(); resolve(null); });
    s.bind(port, LOOPBACK, () => resolve(s));
  });
}

async function freeUdpPort() {
  const high = Math.min(ephemeralLow(), 65536);
  const low = Math.max(1024, high - 12000);
  for (let i = 0; i < 50; i++) {
    const s = await bindUdpPort(low + Math.floor(Math.random() * (high - low)));
    if (s) {
      const { port } = s.address();
      await new Promise((r) => s.close(r));
      return port;
    }
  }
  const s = await bindUdp();
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

const randomSsrc = () => (Math.floor(Math.random() * 0xfffffff0) + 1) >>> 0;

// One gst-launch description from gst-launch-style argv tokens, the way
// gst_parse_launchv() joins them: spaces outside double quotes are
// backslash-escaped, so every token stays one token (e.g. font-desc="Sans, 32"
// keeps its quoted space, a bare value with a space keeps it escaped).
export function toDescription(tokens) {
  return tokens.map((tok) => {
    let out = '';
    let inQuotes = false;
    for (let i = 0; i < tok.length; i++) {
      const c = tok[i];
      if (c === '"' && (!inQuotes || tok[i - 1] !== '\\')) inQuotes = !inQuotes;
      if (c === ' ' && !inQuotes) out += '\\';
      out += c;
    }
    return out;
  }).join(' ');
}

// What each source is made of. `camera` follows the CLI; the screen share is
// small and cheap on purpose, and looks different (a ball, not bars) so a
// person looking at a recording can tell the two video tracks apart.
function sourceSpecs(opts) {
  const camera = PUBLISHER_VIDEO[opts.codec];
  return {
    camera: {
      kind: 'video', encoder: camera.encoder, pt: camera.pt, width: opts.width, height: opts.height, fps: opts.fps,
      bitrateKbps: opts.bitrateKbps, keyframeInterval: opts.keyframeInterval, pattern: opts.pattern, overlay: true,
    },
    microphone: { kind: 'audio', freq: 440 },
    // cpu-used=16, one thread: ~3 % of a core instead of ~15 % (cpu-used=8,
    // two threads) for a mostly black picture; quality does not matter here.
    screen: {
      kind: 'video', encoder: SCREEN_VIDEO.encoder, pt: SCREEN_VIDEO.pt, width: 640, height: 360, fps: 15,
      bitrateKbps: 500, keyframeInterval: 30, pattern: 'ball', overlay: false, cpuUsed: 16, threads: 1,
    },
    screen_audio: { kind: 'audio', freq: 1250 },
  };
}
export const SOURCE_NAMES = ['camera', 'microphone', 'screen', 'screen_audio'];

export class MediaHub extends EventEmitter {
  constructor(opts) {
    super();
    this.opts = opts; // {codec, width, height, fps, bitrateKbps, keyframeInterval, pattern, flashbeep, log}
    this.flash = opts.pattern === 'flash';
    this.children = [];
    this.stopping = false;
    this.overlay = null;
    const specs = sourceSpecs(opts);
    this.sources = new Map(SOURCE_NAMES.map((name) => [name, {
      name, ...specs[name], ssrc: randomSsrc(), sock: null, rtcpPort: null, ready: null,
      packetsIn: 0, sinks: new Set(), keyframeRequests: 0, plisSent: 0, lastPli: 0,
    }]));
  }

  // Totals kept under their historical names (stats.media).
  get packetsIn() { return { video: this.sources.get('camera').packetsIn, audio: this.sources.get('microphone').packetsIn }; }
  get keyframeRequests() { return [...this.sources.values()].reduce((n, s) => n + s.keyframeRequests, 0); }
  get plisSent() { return [...this.sources.values()].reduce((n, s) => n + s.plisSent, 0); }

  sourcesView() {
    const out = {};
    for (const s of this.sources.values()) {
      out[s.name] = {
        kind: s.kind, running: !!s.sock, packets_in: s.packetsIn, keyframe_requests: s.keyframeRequests, plis_sent: s.plisSent,
        ...(s.kind === 'video' ? { encoder: s.encoder, width: s.width, height: s.height, fps: s.fps } : { freq_hz: this.flash && s.name === 'microphone' ? null : s.freq }),
      };
    }
    return out;
  }

  encoderTokens(src) {
    const { encoder, pt, bitrateKbps, keyframeInterval } = src;
    const ssrc = `ssrc=${src.ssrc}`;
    switch (encoder) {
      case 'vp8':
        // Realtime VP8: deadline=1, cpu-used=8, no look-ahead (lag-in-frames=0,
        // otherwise vp8enc buffers 25 frames).
        return ['vp8enc', 'deadline=1', `cpu-used=${src.cpuUsed ?? 8}`, `keyframe-max-dist=${keyframeInterval}`, `target-bitrate=${bitrateKbps * 1000}`,
          'end-usage=cbr', 'lag-in-frames=0', `threads=${src.threads ?? 2}`,
          '!', 'rtpvp8pay', `pt=${pt}`, 'mtu=1200', 'picture-id-mode=15-bit', ssrc];
      case 'vp9':
        // Realtime VP9 (profile 0). cpu-used=8 keeps 1280x720@30 at about half
        // a core on the 2-core test machine (6: ~72 %, 7: ~65 %, 8 and 9: ~47 %,
        // README "Media"), leaving room for the client's decoder.
        return ['vp9enc', 'deadline=1', 'cpu-used=8', `keyframe-max-dist=${keyframeInterval}`, `target-bitrate=${bitrateKbps * 1000}`,
          'end-usage=cbr', 'lag-in-frames=0', 'threads=2', 'row-mt=true',
          '!', 'rtpvp9pay', `pt=${pt}`, 'mtu=1200', 'picture-id-mode=15-bit', ssrc];
      case 'h264':
        // Constrained baseline, packetization-mode=1 (profile-level-id 42e01f),
        // SPS/PPS before every IDR (config-interval=-1) so a late joiner can
        // decode from the first keyframe it gets.
        return ['x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', `key-int-max=${keyframeInterval}`, `bitrate=${bitrateKbps}`,
          '!', 'video/x-h264,profile=constrained-baseline,stream-format=byte-stream',
          '!', 'rtph264pay', `pt=${pt}`, 'mtu=1200', 'config-interval=-1', 'aggregate-mode=zero-latency', ssrc];
      case 'h265':
        // open-gop=0: every periodic keyframe is an IDR, as WebRTC H.265
        // senders make them (x265's default would make them CRA pictures).
        // VPS/SPS/PPS precede every IDR (config-interval=-1).
        return ['x265enc', 'tune=zerolatency', 'speed-preset=ultrafast', `key-int-max=${keyframeInterval}`, `bitrate=${bitrateKbps}`,
          'option-string=open-gop=0',
          '!', 'video/x-h265,stream-format=byte-stream',
          '!', 'rtph265pay', `pt=${pt}`, 'mtu=1200', 'config-interval=-1', ssrc];
      default:
        throw new Error(`unknown encoder ${encoder}`);
    }
  }

  videoPipeline(src, rtpPort, rtcpInPort) {
    const { width, height, fps, pattern } = src;
    const flash = this.flash && src.name === 'camera';
    let tokens;
    let caps = `video/x-raw,width=${width},height=${height},framerate=${fps}/1`;
    if (flash) {
      // hv-flashbeep paints this source's frames white/black from their PTS;
      // it only handles I420, hence the forced format.
      tokens = ['videotestsrc', 'name=flashsrc', 'is-live=true', 'pattern=black'];
      caps = `video/x-raw,format=I420,width=${width},height=${height},framerate=${fps}/1`;
    } else if (pattern === 'smpte') {
      // Scrolling bars: a moving picture with a realistic bitrate (a bouncing
      // ball on black compresses to ~150 kbit/s, ~30 packets/s).
      tokens = ['videotestsrc', 'is-live=true', 'pattern=smpte', 'horizontal-speed=4'];
    } else {
      tokens = ['videotestsrc', 'is-live=true', `pattern=${pattern}`];
    }
    const overlay = [];
    // A visible wall clock (clockoverlay) or running time (timeoverlay) lets a
    // person judge latency and freezes; both live in gstreamer1.0-x (pango),
    // which may not be installed. Not in flash mode: text on the frame would
    // move the mean luma the flash detector measures.
    if (src.overlay && !flash) {
      if (hasElement('clockoverlay')) {
        this.overlay = 'clockoverlay';
        overlay.push('!', 'clockoverlay', 'time-format="%H:%M:%S"', 'halignment=right', 'valignment=top', 'font-desc="Sans, 32"');
      } else if (hasElement('timeoverlay')) {
        this.overlay = 'timeoverlay';
        overlay.push('!', 'timeoverlay', 'halignment=right', 'valignment=top', 'font-desc="Sans, 32"');
      }
    }
    return [
      'rtpbin', `name=rb_${src.name}`,
      // The leaky queue drops raw frames when the encoder falls behind (the
      // machine is shared with builds): latency stays bounded instead of
      // turning into a burst of late frames.
      ...tokens, '!', caps, ...overlay, '!', 'queue', 'max-size-buffers=2', 'max-size-bytes=0', 'max-size-time=0', 'leaky=downstream',
      // 8-bit 4:2:0, as every WebRTC and OBS encoder sends: without it x265enc (and vp9enc)
      // pick a 4:4:4 12-bit format from videotestsrc, a profile no real stream has.
      '!', 'videoconvert', '!', 'video/x-raw,format=I420', '!', ...this.encoderTokens(src), '!', `rb_${src.name}.send_rtp_sink_0`,
      `rb_${src.name}.send_rtp_src_0`, '!', 'udpsink', `host=${LOOPBACK}`, `port=${rtpPort}`, 'sync=false', 'async=false',
      'udpsrc', `address=${LOOPBACK}`, `port=${rtcpInPort}`, 'caps=application/x-rtcp', '!', `rb_${src.name}.recv_rtcp_sink_0`,
    ];
  }

  audioPipeline(src, rtpPort) {
    const tokens = this.flash && src.name === 'microphone'
      // hv-flashbeep writes the beeps into this silence; it needs interleaved
      // S16LE. 10 ms buffers keep the beep onset's buffer small.
      ? ['audiotestsrc', 'name=beepsrc', 'is-live=true', 'wave=silence', 'samplesperbuffer=480',
        '!', 'audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2']
      : ['audiotestsrc', 'is-live=true', 'wave=sine', `freq=${src.freq}`, 'volume=0.3',
        '!', 'audio/x-raw,rate=48000,channels=2'];
    return [
      ...tokens, '!', 'audioconvert', '!', 'audioresample',
      '!', 'opusenc', 'bitrate=64000',
      '!', 'rtpopuspay', `pt=${PUBLISHER_AUDIO.pt}`, `ssrc=${src.ssrc}`,
      '!', 'udpsink', `host=${LOOPBACK}`, `port=${rtpPort}`, 'sync=false', 'async=false',
    ];
  }

  // gst-launch-1.0 with the pipeline as argv tokens.
  spawnGst(name, args) {
    this.opts.log(`spawn ${name}: gst-launch-1.0 -q ${args.join(' ')}`);
    return this.spawnMedia(name, 'gst-launch-1.0', ['-q', ...args]);
  }

  // hv-flashbeep with both branches in one description (one process, one
  // clock: the flash and the beep are generated in sync).
  spawnFlashbeep(name, tokens) {
    const description = toDescription(tokens);
    this.opts.log(`spawn ${name}: ${this.opts.flashbeep} '${description}'`);
    return this.spawnMedia(name, this.opts.flashbeep, [description]);
  }

  spawnMedia(name, program, args) {
    // setpriv --pdeathsig: the pipeline dies with us even if we are SIGKILLed,
    // instead of encoding into a closed port forever.
    const useSetpriv = fs.existsSync('/usr/bin/setpriv');
    const cmd = useSetpriv ? '/usr/bin/setpriv' : program;
    const argv = useSetpriv ? ['--pdeathsig', 'TERM', '--', program, ...args] : args;
    const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.mediaName = name;
    let stderr = '';
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); this.opts.log(`[${name}] ${String(d).trimEnd()}`); });
    child.on('exit', (code, signal) => {
      this.children = this.children.filter((c) => c !== child);
      if (!this.stopping) this.emit('error', new Error(`${name} pipeline exited (code ${code}, signal ${signal}): ${stderr.trim()}`));
    });
    child.on('error', (err) => { if (!this.stopping) this.emit('error', err); });
    this.children.push(child);
    return child;
  }

  // Socket and RTCP port of a source, before its pipeline is spawned.
  async open(src) {
    src.sock = await bindUdp();
    src.sock.on('message', (m) => this.onRtp(src, m));
    if (src.kind === 'video') src.rtcpPort = await freeUdpPort();
  }

  // Resolves once the sources delivered their first RTP packet; rejects after
  // timeoutMs or when a pipeline dies first.
  waitFirstPackets(srcs, timeoutMs, what) {
    const firstPacket = (src) => new Promise((resolve) => {
      const check = () => (src.packetsIn > 0 || this.stopping ? resolve() : setTimeout(check, 20));
      check();
    });
    let timer;
    let onError;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no RTP from ${what} within timeout`)), timeoutMs); });
    const failed = new Promise((_, reject) => { onError = reject; this.once('error', onError); });
    return Promise.race([Promise.all(srcs.map(firstPacket)), timeout, failed]).finally(() => {
      clearTimeout(timer);
      this.off('error', onError);
    });
  }

  // camera and microphone, at startup (in flash mode, one hv-flashbeep).
  async start(timeoutMs = 20000) {
    const camera = this.sources.get('camera');
    const mic = this.sources.get('microphone');
    await this.open(camera);
    await this.open(mic);
    const video = this.videoPipeline(camera, camera.sock.address().port, camera.rtcpPort);
    const audio = this.audioPipeline(mic, mic.sock.address().port);
    if (this.flash) {
      this.spawnFlashbeep('flashbeep', [...video, ...audio]);
    } else {
      this.spawnGst('camera', video);
      this.spawnGst('microphone', audio);
    }
    camera.ready = this.waitFirstPackets([camera, mic], timeoutMs, this.flash ? 'hv-flashbeep' : 'gst-launch');
    mic.ready = camera.ready;
    await camera.ready;
  }

  // Start a source the first time it is needed (the screen share's), and
  // keep it running. Resolves when its RTP flows.
  ensure(name, timeoutMs = 20000) {
    const src = this.sources.get(name);
    if (!src) return Promise.reject(new Error(`unknown media source ${name}`));
    if (!src.ready) {
      src.ready = (async () => {
        await this.open(src);
        const port = src.sock.address().port;
        this.spawnGst(name, src.kind === 'video' ? this.videoPipeline(src, port, src.rtcpPort) : this.audioPipeline(src, port));
        await this.waitFirstPackets([src], timeoutMs, `the ${name} pipeline`);
      })();
    }
    return src.ready;
  }

  onRtp(src, buf) {
    if (buf.length < 12 || (buf[0] >> 6) !== 2) return;
    const pt = buf[1] & 0x7f;
    if (pt >= 72 && pt <= 76) return; // RTCP on the RTP port (not expected)
    src.packetsIn++;
    for (const sink of src.sinks) sink(buf);
  }

  addSink(name, fn) {
    const src = this.sources.get(name);
    src.sinks.add(fn);
    return () => src.sinks.delete(fn);
  }

  // Throttled like a real SFU's PLI forwarding so a client that floods PLIs
  // doesn't turn the stream into all-keyframes. The PLI goes into the
  // source's rtpbin, which asks its encoder for a keyframe.
  requestKeyframe(name = 'camera') {
    const src = this.sources.get(name);
    if (!src || src.kind !== 'video') return;
    src.keyframeRequests++;
    const now = Date.now();
    if (now - src.lastPli < 300 || !src.sock) return;
    src.lastPli = now;
    const pli = Buffer.alloc(12);
    pli[0] = 0x81; // V=2, FMT=1 (PLI)
    pli[1] = 206; // PSFB
    pli.writeUInt16BE(2, 2);
    pli.writeUInt32BE(1, 4); // sender SSRC: arbitrary
    pli.writeUInt32BE(src.ssrc, 8);
    src.sock.send(pli, src.rtcpPort, LOOPBACK);
    src.plisSent++;
  }

  stop() {
    this.stopping = true;
    for (const c of this.children) {
      try { c.kill('SIGTERM'); } catch { /* already gone */ }
    }
    const kill = this.children.slice();
    if (kill.length) setTimeout(() => kill.forEach((c) => { try { c.kill('SIGKILL'); } catch { /* gone */ } }), 1000).unref();
    for (const s of this.sources.values()) {
      try { s.sock?.close(); } catch { /* closed */ }
    }
  }
}

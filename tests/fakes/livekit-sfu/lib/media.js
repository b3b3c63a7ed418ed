// The synthetic publisher's media: two gst-launch-1.0 pipelines (video, audio)
// that send RTP to UDP sockets on 127.0.0.1, fanned out to every subscribed
// werift track. With --pattern flash both branches run in ONE hv-flashbeep
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
import { PUBLISHER_CODECS } from './codecs.js';

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

// A free UDP port for gst's udpsrc. Closing then reusing the port is racy in
// theory, but nothing else binds ephemeral loopback ports in the test netns.
async function freeUdpPort() {
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

export class MediaHub extends EventEmitter {
  constructor(opts) {
    super();
    this.opts = opts; // {codec, width, height, fps, bitrateKbps, keyframeInterval, pattern, flashbeep, log}
    this.flash = opts.pattern === 'flash';
    this.sinks = { video: new Set(), audio: new Set() };
    this.children = [];
    this.packetsIn = { video: 0, audio: 0 };
    this.keyframeRequests = 0;
    this.plisSent = 0;
    this.lastPli = 0;
    this.stopping = false;
    this.videoSsrc = randomSsrc();
    this.audioSsrc = randomSsrc();
    this.overlay = null;
  }

  videoPipeline(rtpPort, rtcpInPort) {
    const { codec, width, height, fps, bitrateKbps, keyframeInterval, pattern } = this.opts;
    let src;
    let caps = `video/x-raw,width=${width},height=${height},framerate=${fps}/1`;
    if (this.flash) {
      // hv-flashbeep paints this source's frames white/black from their PTS;
      // it only handles I420, hence the forced format.
      src = ['videotestsrc', 'name=flashsrc', 'is-live=true', 'pattern=black'];
      caps = `video/x-raw,format=I420,width=${width},height=${height},framerate=${fps}/1`;
    } else if (pattern === 'smpte') {
      // Scrolling bars: a moving picture with a realistic bitrate (a bouncing
      // ball on black compresses to ~150 kbit/s, ~30 packets/s).
      src = ['videotestsrc', 'is-live=true', 'pattern=smpte', 'horizontal-speed=4'];
    } else {
      src = ['videotestsrc', 'is-live=true', `pattern=${pattern}`];
    }
    const overlay = [];
    // A visible wall clock (clockoverlay) or running time (timeoverlay) lets a
    // person judge latency and freezes; both live in gstreamer1.0-x (pango),
    // which may not be installed. Not in flash mode: text on the frame would
    // move the mean luma the flash detector measures.
    if (this.flash) {
      this.overlay = null;
    } else if (hasElement('clockoverlay')) {
      this.overlay = 'clockoverlay';
      overlay.push('!', 'clockoverlay', 'time-format="%H:%M:%S"', 'halignment=right', 'valignment=top', 'font-desc="Sans, 32"');
    } else if (hasElement('timeoverlay')) {
      this.overlay = 'timeoverlay';
      overlay.push('!', 'timeoverlay', 'halignment=right', 'valignment=top', 'font-desc="Sans, 32"');
    }
    const pt = PUBLISHER_CODECS[codec].pt;
    let enc;
    if (codec === 'vp8') {
      // Realtime VP8: deadline=1, cpu-used=8, no look-ahead (lag-in-frames=0,
      // otherwise vp8enc buffers 25 frames).
      enc = ['vp8enc', 'deadline=1', 'cpu-used=8', `keyframe-max-dist=${keyframeInterval}`, `target-bitrate=${bitrateKbps * 1000}`,
        'end-usage=cbr', 'lag-in-frames=0', 'threads=2',
        '!', 'rtpvp8pay', `pt=${pt}`, 'mtu=1200', 'picture-id-mode=15-bit', `ssrc=${this.videoSsrc}`];
    } else {
      // Constrained baseline, packetization-mode=1 (profile-level-id 42e01f),
      // SPS/PPS before every IDR (config-interval=-1) so a late joiner can
      // decode from the first keyframe it gets.
      enc = ['x264enc', 'tune=zerolatency', 'speed-preset=ultrafast', `key-int-max=${keyframeInterval}`, `bitrate=${bitrateKbps}`,
        '!', 'video/x-h264,profile=constrained-baseline,stream-format=byte-stream',
        '!', 'rtph264pay', `pt=${pt}`, 'mtu=1200', 'config-interval=-1', 'aggregate-mode=zero-latency', `ssrc=${this.videoSsrc}`];
    }
    return [
      'rtpbin', 'name=rb',
      // The leaky queue drops raw frames when the encoder falls behind (the
      // machine is shared with builds): latency stays bounded instead of
      // turning into a burst of late frames.
      ...src, '!', caps, ...overlay, '!', 'queue', 'max-size-buffers=2', 'max-size-bytes=0', 'max-size-time=0', 'leaky=downstream',
      '!', 'videoconvert', '!', ...enc, '!', 'rb.send_rtp_sink_0',
      'rb.send_rtp_src_0', '!', 'udpsink', `host=${LOOPBACK}`, `port=${rtpPort}`, 'sync=false', 'async=false',
      'udpsrc', `address=${LOOPBACK}`, `port=${rtcpInPort}`, 'caps=application/x-rtcp', '!', 'rb.recv_rtcp_sink_0',
    ];
  }

  audioPipeline(rtpPort) {
    const src = this.flash
      // hv-flashbeep writes the beeps into this silence; it needs interleaved
      // S16LE. 10 ms buffers keep the beep onset's buffer small.
      ? ['audiotestsrc', 'name=beepsrc', 'is-live=true', 'wave=silence', 'samplesperbuffer=480',
        '!', 'audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2']
      : ['audiotestsrc', 'is-live=true', 'wave=sine', 'freq=440', 'volume=0.3',
        '!', 'audio/x-raw,rate=48000,channels=2'];
    return [
      ...src, '!', 'audioconvert', '!', 'audioresample',
      '!', 'opusenc', 'bitrate=64000',
      '!', 'rtpopuspay', `pt=${PUBLISHER_CODECS.opus.pt}`, `ssrc=${this.audioSsrc}`,
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

  async start(timeoutMs = 20000) {
    this.videoSock = await bindUdp();
    this.audioSock = await bindUdp();
    this.rtcpPort = await freeUdpPort();
    this.videoSock.on('message', (m) => this.onRtp('video', m));
    this.audioSock.on('message', (m) => this.onRtp('audio', m));
    const firstPacket = (kind) => new Promise((resolve) => {
      const check = () => (this.packetsIn[kind] > 0 ? resolve() : setTimeout(check, 20));
      check();
    });
    const video = this.videoPipeline(this.videoSock.address().port, this.rtcpPort);
    const audio = this.audioPipeline(this.audioSock.address().port);
    if (this.flash) {
      this.spawnFlashbeep('flashbeep', [...video, ...audio]);
    } else {
      this.spawnGst('video', video);
      this.spawnGst('audio', audio);
    }
    const source = this.flash ? 'hv-flashbeep' : 'gst-launch';
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`no RTP from ${source} within timeout`)), timeoutMs); });
    const failed = new Promise((_, reject) => this.once('error', reject));
    try {
      await Promise.race([Promise.all([firstPacket('video'), firstPacket('audio')]), timeout, failed]);
    } finally {
      clearTimeout(timer);
    }
  }

  onRtp(kind, buf) {
    if (buf.length < 12 || (buf[0] >> 6) !== 2) return;
    const pt = buf[1] & 0x7f;
    if (pt >= 72 && pt <= 76) return; // RTCP on the RTP port (not expected)
    this.packetsIn[kind]++;
    for (const sink of this.sinks[kind]) sink(buf);
  }

  addSink(kind, fn) {
    this.sinks[kind].add(fn);
    return () => this.sinks[kind].delete(fn);
  }

  // Throttled like a real SFU's PLI forwarding so a client that floods PLIs
  // doesn't turn the stream into all-keyframes.
  requestKeyframe() {
    this.keyframeRequests++;
    const now = Date.now();
    if (now - this.lastPli < 300 || !this.videoSock) return;
    this.lastPli = now;
    const pli = Buffer.alloc(12);
    pli[0] = 0x81; // V=2, FMT=1 (PLI)
    pli[1] = 206; // PSFB
    pli.writeUInt16BE(2, 2);
    pli.writeUInt32BE(1, 4); // sender SSRC: arbitrary
    pli.writeUInt32BE(this.videoSsrc, 8);
    this.videoSock.send(pli, this.rtcpPort, LOOPBACK);
    this.plisSent++;
  }

  stop() {
    this.stopping = true;
    for (const c of this.children) {
      try { c.kill('SIGTERM'); } catch { /* already gone */ }
    }
    const kill = this.children.slice();
    if (kill.length) setTimeout(() => kill.forEach((c) => { try { c.kill('SIGKILL'); } catch { /* gone */ } }), 1000).unref();
    try { this.videoSock?.close(); } catch { /* closed */ }
    try { this.audioSock?.close(); } catch { /* closed */ }
  }
}

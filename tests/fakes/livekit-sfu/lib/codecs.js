// The SFU's codec table, the synthetic publishers' codecs, codec binding after
// an answer, and the SDP touch-ups that make werift's offers look like
// LiveKit's (doc §9.1, Appendix A.3, A.5, A.12, A.13).
import { RTCRtpCodecParameters } from 'werift';

// Feedback LiveKit announces towards subscribers with send-side BWE off (the
// OSS default): REMB, FIR, NACK, PLI for video; NACK for Opus.
const VIDEO_FB = [
  { type: 'goog-remb' },
  { type: 'ccm', parameter: 'fir' },
  { type: 'nack' },
  { type: 'nack', parameter: 'pli' },
];
const h264fmtp = (pm, plid) => `level-asymmetry-allowed=1;packetization-mode=${pm};profile-level-id=${plid}`;

// [mime, pt, fmtp, rtxPt] in the server's payload-type numbering, which is
// global on a real LiveKit node (livekit/protocol codecs.go), in the order
// livekit-server offers them on EVERY subscriber video m-line, whatever codec
// the track carries (Appendix A.12). The order is fixed: a client must pick the
// track's codec itself (webrtcbin 1.22 answers the first of its
// codec-preferences the offer has), it cannot rely on it coming first.
const VIDEO_TABLE = [
  ['video/VP8', 96, undefined, 97],
  ['video/VP9', 98, 'profile-id=0', 99],
  ['video/VP9', 100, 'profile-id=1', 101],
  ['video/H264', 125, h264fmtp(0, '42e01f'), 126],
  ['video/H264', 108, h264fmtp(1, '42e01f'), 109],
  ['video/H264', 123, h264fmtp(1, '640032'), 124],
  ['video/H264', 39, h264fmtp(0, '4d001f'), 40],
  ['video/H264', 106, h264fmtp(1, '4d001f'), 107],
  ['video/AV1', 35, undefined, 36],
  ['video/H265', 116, undefined, 117],
];

// The synthetic publisher's video, per --codec. `codecs` is what the track
// announces (TrackInfo.codecs: the primary, then backups) with the fmtp the
// publisher negotiated for it; `sendable` says whether we have RTP for it.
// `encoder` is the gst-launch encoder of the camera source and `pt` the PT it
// stamps (werift rewrites the PT per subscriber anyway).
const H264_FMTP = h264fmtp(1, '42e01f'); // x264 constrained baseline, rtph264pay = mode 1
const VP8 = { mime: 'video/VP8', fmtp: '', sendable: true };
const AV1 = { mime: 'video/AV1', fmtp: '', sendable: false }; // GStreamer 1.22 has no rtpav1pay
export const PUBLISHER_VIDEO = {
  vp8: { mime: 'video/VP8', codecs: [VP8], encoder: 'vp8', pt: 96 },
  h264: { mime: 'video/H264', codecs: [{ mime: 'video/H264', fmtp: H264_FMTP, sendable: true }], encoder: 'h264', pt: 108 },
  vp9: { mime: 'video/VP9', codecs: [{ mime: 'video/VP9', fmtp: 'profile-id=0', sendable: true }], encoder: 'vp9', pt: 98 },
  h265: { mime: 'video/H265', codecs: [{ mime: 'video/H265', fmtp: '', sendable: true }], encoder: 'h265', pt: 116 },
  // The JS SDK publishes AV1 with a VP8 backup codec: the media we have is
  // the backup's, from the VP8 encoder.
  av1: { mime: 'video/AV1', codecs: [AV1, VP8], encoder: 'vp8', pt: 96 },
  // AV1 without a backup: a client that cannot take AV1 gets nothing. The
  // camera source still runs (VP8) but is never forwarded.
  'av1-only': { mime: 'video/AV1', codecs: [AV1], encoder: 'vp8', pt: 96 },
};
export const VIDEO_CODEC_NAMES = Object.keys(PUBLISHER_VIDEO);
// Screen share is always VP8 (its own small encoder).
export const SCREEN_VIDEO = PUBLISHER_VIDEO.vp8;
export const PUBLISHER_AUDIO = { mime: 'audio/opus', codecs: [{ mime: 'audio/opus', fmtp: 'minptime=10;useinbandfec=1', sendable: true }], pt: 111 };

function videoCodecs() {
  const out = [];
  for (const [mimeType, payloadType, parameters, rtxPt] of VIDEO_TABLE) {
    out.push(new RTCRtpCodecParameters({ mimeType, clockRate: 90000, payloadType, parameters, rtcpFeedback: VIDEO_FB }));
    out.push(new RTCRtpCodecParameters({ mimeType: 'video/rtx', clockRate: 90000, payloadType: rtxPt, parameters: `apt=${payloadType}` }));
  }
  return out;
}

function audioCodecs() {
  return [
    // sprop-stereo=1: Appendix A.5 (the publisher sends stereo Opus).
    new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48000, channels: 2, payloadType: 111, parameters: 'minptime=10;useinbandfec=1;sprop-stereo=1', rtcpFeedback: [{ type: 'nack' }] }),
    new RTCRtpCodecParameters({ mimeType: 'audio/red', clockRate: 48000, channels: 2, payloadType: 63, parameters: '111/111' }),
    new RTCRtpCodecParameters({ mimeType: 'audio/PCMU', clockRate: 8000, channels: 1, payloadType: 0 }),
    new RTCRtpCodecParameters({ mimeType: 'audio/PCMA', clockRate: 8000, channels: 1, payloadType: 8 }),
  ];
}

// The PC-wide codec list in the server's fixed order. Configuring the PC
// instead of calling setCodecPreferences: werift matches preferences by MIME
// type only, which would collapse the five H.264 entries into one. (werift
// writes the configured list as given, duplicates of a MIME type included;
// Session.negotiate makes it do so on every m-line of every offer.)
export function serverCodecConfig() {
  return { video: videoCodecs(), audio: audioCodecs() };
}

// Header extensions LiveKit puts on subscriber m-lines (doc §9.1). werift only
// writes abs-send-time itself; the others are announced but never sent, which
// is also what LiveKit does for non-SVC VP8/H.264. werift assigns the ids
// itself (1, 2, 3 in this order).
export const HEADER_EXTENSIONS = {
  video: [
    { id: 1, uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time' },
    { id: 2, uri: 'https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension' },
    { id: 3, uri: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time' },
  ],
  // LiveKit also announces abs-capture-time on audio. werift numbers
  // extensions by position across audio+video, so the same URI would get two
  // different ids inside one BUNDLE group; it is left out here.
  audio: [],
};

// --- binding after the answer ----------------------------------------------------

// fmtp as a parameter map: "a=1;b=2" and "b=2; a=1" are the same line to
// pion's fmtp matcher, so they are here.
function fmtpMap(fmtp) {
  const m = new Map();
  for (const part of (fmtp || '').split(';')) {
    const i = part.indexOf('=');
    const k = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
    if (k) m.set(k, i < 0 ? '' : part.slice(i + 1).trim().toLowerCase());
  }
  return m;
}
function fmtpEqual(a, b) {
  const x = fmtpMap(a);
  const y = fmtpMap(b);
  return x.size === y.size && [...x].every(([k, v]) => y.get(k) === v);
}
const mimeEq = (a, b) => a.toLowerCase() === b.toLowerCase();

// The media sections of an SDP (the answer) by mid: the payload types of the
// m= line in their order, with rtpmap and fmtp of each.
export function parseSdpMedia(sdp) {
  const out = new Map();
  let cur = null;
  for (const l of sdp.split(/\r?\n/)) {
    const m = /^m=(\w+) (\d+) \S+ ?(.*)$/.exec(l);
    if (m) {
      cur = { kind: m[1], port: Number(m[2]), pts: m[3].split(' ').filter(Boolean).map(Number), rtpmap: new Map(), fmtp: new Map(), mid: null, direction: 'sendrecv' };
      continue;
    }
    if (!cur) continue;
    let a;
    if ((a = /^a=mid:(\S+)/.exec(l))) { cur.mid = a[1]; out.set(a[1], cur); } else if ((a = /^a=rtpmap:(\d+) ([^/]+)\/(\d+)(?:\/(\d+))?/.exec(l))) {
      cur.rtpmap.set(Number(a[1]), { name: a[2], clockRate: Number(a[3]), channels: a[4] ? Number(a[4]) : undefined });
    } else if ((a = /^a=fmtp:(\d+) (.*)$/.exec(l))) cur.fmtp.set(Number(a[1]), a[2].trim());
    else if ((a = /^a=(sendrecv|sendonly|recvonly|inactive)$/.exec(l))) cur.direction = a[1];
  }
  return out;
}

// The codecs an answer kept on one m-line: the payload types of its m= line
// (Appendix A.12). An H.264 payload type without profile-level-id counts as
// not kept: RFC 6184 8.2.2 makes the answerer keep the offer's parameters or
// drop the payload type, and pion's H.264 fmtp match needs it on both sides
// (Appendix A.13). Returns {kept, h264WithoutPlid}.
export function keptCodecs(section) {
  const kept = [];
  let h264WithoutPlid = 0;
  for (const pt of section.pts) {
    const map = section.rtpmap.get(pt);
    if (!map) continue; // a dynamic PT without rtpmap means nothing
    const mime = `${section.kind}/${map.name}`;
    if (/\/(rtx|red|ulpfec|flexfec-03)$/i.test(mime)) continue;
    const fmtp = section.fmtp.get(pt) || '';
    if (mimeEq(mime, 'video/H264') && !fmtpMap(fmtp).has('profile-level-id')) { h264WithoutPlid++; continue; }
    kept.push({ mime, pt, fmtp, clockRate: map.clockRate, channels: map.channels });
  }
  return { kept, h264WithoutPlid };
}

// Bind a track to one codec the answer kept, like livekit-server's down track
// (Appendix A.5, A.12): the track's primary codec, then each backup in turn;
// for each, first a kept codec whose fmtp equals the publisher's, then one of
// the same MIME type. Our H.264 is packetization-mode 1, which a mode-0
// payload type cannot carry. Returns {codec, rtxPt, backup} or null.
export function bindCodec(section, trackCodecs) {
  const { kept } = keptCodecs(section);
  for (const [i, want] of trackCodecs.entries()) {
    const same = kept.filter((c) => mimeEq(c.mime, want.mime));
    const codec = same.find((c) => fmtpEqual(c.fmtp, want.fmtp))
      || same.find((c) => !mimeEq(want.mime, 'video/H264') || fmtpMap(c.fmtp).get('packetization-mode') === '1');
    if (codec) return { codec, want, backup: i > 0, rtxPt: rtxFor(section, codec.pt) };
  }
  return null;
}

function rtxFor(section, pt) {
  return section.pts.find((x) => /^rtx$/i.test(section.rtpmap.get(x)?.name || '') && Number((/apt=(\d+)/.exec(section.fmtp.get(x) || '') || [])[1]) === pt);
}

// Rewrite the SDP werift generated into LiveKit's shape, without changing
// anything werift relies on (SSRCs, mids, codecs stay as negotiated):
// * per-SSRC lines become cname/msid/mslabel/label with the packed stream id
//   "PA_xxx|TR_xxx" (Appendix A.3, pion's writer);
// * m-lines without a track (recvonly/inactive) lose a=msid/a=ssrc
//   (Appendix A.8);
// * the first offer carries no candidates (Appendix A.6).
// * the o= line's session version grows with every offer (RFC 3264 §8;
//   werift keeps it at 0), and media sections announce a=rtcp-rsize like
//   pion does.
export function rewriteOfferSdp(sdp, { stripCandidates, tracksByMid, sessionVersion = 0 }) {
  const lines = sdp.split(/\r?\n/).filter((l) => l.length > 0);
  const sections = [];
  let cur = { head: true, lines: [] };
  sections.push(cur);
  for (const l of lines) {
    if (l.startsWith('m=')) { cur = { head: false, lines: [] }; sections.push(cur); }
    cur.lines.push(l);
  }
  const out = [];
  for (const s of sections) {
    if (s.head) {
      for (const l of s.lines) {
        const o = /^o=(\S+) (\S+) \d+ (.*)$/.exec(l);
        out.push(o ? `o=${o[1]} ${o[2]} ${sessionVersion} ${o[3]}` : l);
      }
      continue;
    }
    const kind = s.lines[0].slice(2).split(' ')[0];
    const mid = (s.lines.find((l) => l.startsWith('a=mid:')) || '').slice(6);
    const dir = (s.lines.find((l) => /^a=(sendrecv|sendonly|recvonly|inactive)$/.test(l)) || 'a=sendrecv').slice(2);
    const info = tracksByMid.get(mid);
    const sending = dir === 'sendrecv' || dir === 'sendonly';
    for (const l of s.lines) {
      // werift re-offers with the DTLS role it ended up with (passive); pion,
      // and so LiveKit, offers actpass every time (Appendix A.5). The role
      // itself can't change mid-session, so this is text only.
      if (l === 'a=setup:passive' || l === 'a=setup:active') { out.push('a=setup:actpass'); continue; }
      if (stripCandidates && (l.startsWith('a=candidate:') || l === 'a=end-of-candidates')) continue;
      if (kind === 'audio' || kind === 'video') {
        if (l === 'a=rtcp-mux') { out.push(l, 'a=rtcp-rsize'); continue; }
        const trackLine = l.startsWith('a=ssrc:') || l.startsWith('a=ssrc-group:') || l.startsWith('a=msid:');
        if (trackLine && (!sending || !info)) continue;
        if (trackLine && l.startsWith('a=msid:')) {
          out.push(`a=msid:${info.streamId} ${info.trackSid}`);
          continue;
        }
        if (trackLine && l.startsWith('a=ssrc:')) {
          const m = /^a=ssrc:(\d+) cname:/.exec(l);
          if (!m) continue; // werift writes only cname lines; we emit our own set
          const ssrc = m[1];
          out.push(`a=ssrc:${ssrc} cname:${info.streamId}`);
          out.push(`a=ssrc:${ssrc} msid:${info.streamId} ${info.trackSid}`);
          out.push(`a=ssrc:${ssrc} mslabel:${info.streamId}`);
          out.push(`a=ssrc:${ssrc} label:${info.trackSid}`);
          continue;
        }
      }
      out.push(l);
    }
  }
  return out.join('\r\n') + '\r\n';
}

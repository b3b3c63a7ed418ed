// The SFU's codec table and the SDP touch-ups that make werift's offers look
// like LiveKit's (doc §9.1, Appendix A.3/A.5).
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
// global on a real LiveKit node (livekit/protocol codecs.go).
const VIDEO_TABLE = [
  ['video/VP8', 96, undefined, 97],
  ['video/VP9', 98, 'profile-id=0', 99],
  ['video/VP9', 100, 'profile-id=1', 101],
  ['video/H264', 125, h264fmtp(0, '42e01f'), 126],
  ['video/H264', 108, h264fmtp(1, '42e01f'), 109],
  ['video/H264', 104, h264fmtp(0, '42001f'), 105],
  ['video/H264', 102, h264fmtp(1, '42001f'), 103],
  ['video/H264', 39, h264fmtp(0, '4d001f'), 40],
  ['video/H264', 106, h264fmtp(1, '4d001f'), 107],
  ['video/H264', 123, h264fmtp(1, '640032'), 124],
  ['video/AV1', 35, undefined, 36],
  ['video/H265', 116, undefined, 117],
];

// What our synthetic publisher sends, and the PT gst-launch stamps on it.
export const PUBLISHER_CODECS = {
  vp8: { mime: 'video/VP8', pt: 96 },
  h264: { mime: 'video/H264', pt: 108 },
  opus: { mime: 'audio/opus', pt: 111 },
};

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

// The PC-wide codec list, publisher codec (and its RTX) first on each kind,
// like LiveKit's configureSenderCodecs. Ordering the PC configuration instead
// of calling setCodecPreferences: werift matches preferences by MIME type
// only, which would collapse the seven H.264 entries into one.
export function serverCodecConfig(videoPt, audioPt = 111) {
  const order = (all, pt) => {
    const primary = all.filter((c) => c.payloadType === pt || (isRtx(c) && aptOf(c) === pt));
    return [...primary, ...all.filter((c) => !primary.includes(c))];
  };
  return { video: order(videoCodecs(), videoPt), audio: order(audioCodecs(), audioPt) };
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

const fmtpOf = (c) => c.parameters || '';
const isRtx = (c) => c.mimeType.toLowerCase().endsWith('/rtx');
const aptOf = (c) => Number((/apt=(\d+)/.exec(fmtpOf(c)) || [])[1]);

// After the answer: choose the negotiated codec to forward on. LiveKit binds
// the down track to the publisher's codec if the answer kept it (Appendix
// A.5); otherwise the subscription fails with SE_CODEC_UNSUPPORTED.
export function pickNegotiatedCodec(negotiated, publisherMime) {
  const want = publisherMime.toLowerCase();
  const same = negotiated.filter((c) => c.mimeType.toLowerCase() === want);
  if (want === 'video/h264') {
    // Our x264 stream is packetization-mode=1; a pm=0 m-line can't carry it.
    return same.find((c) => /packetization-mode=1/.test(fmtpOf(c)) && /42e01f/i.test(fmtpOf(c)))
      || same.find((c) => /packetization-mode=1/.test(fmtpOf(c)));
  }
  return same[0];
}

export function rtxFor(negotiated, pt) {
  return negotiated.find((c) => isRtx(c) && aptOf(c) === pt);
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

// HS256 JWTs as LiveKit uses them (doc §8). Node's crypto is enough; a JWT
// library would only hide the few checks the real server makes, which the
// fake must reproduce on purpose (401 vs 400, 1 min leeway, exp required).
import crypto from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function signHS256(payload, secret) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(payload));
  const sig = crypto.createHmac('sha256', secret).update(`${header}.${body}`).digest();
  return `${header}.${body}.${b64url(sig)}`;
}

// Mirrors livekit auth/verifier.go + service/auth.go closely enough for a
// client to see the same status codes: every token problem is 401, a token
// that is valid but lacks identity/room is 400. Returns {claims} or
// {status, message}.
export function verifyHS256(token, keys, nowSec = Math.floor(Date.now() / 1000), leewaySec = 60) {
  const fail = (status, message) => ({ status, message });
  if (typeof token !== 'string' || token.length === 0) return fail(401, 'no authorization header or access_token found');
  const parts = token.split('.');
  if (parts.length !== 3) return fail(401, 'invalid token: malformed');
  let header, claims;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return fail(401, 'invalid token: malformed');
  }
  if (header.alg !== 'HS256') return fail(401, `invalid token: unsupported signing algorithm ${header.alg}`);
  const secret = keys[claims.iss];
  if (secret === undefined) return fail(401, 'invalid API key');
  const expect = crypto.createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== expect.length || !crypto.timingSafeEqual(got, expect)) {
    return fail(401, 'invalid token: signature is invalid');
  }
  if (typeof claims.exp !== 'number') return fail(401, 'invalid token: missing exp');
  if (claims.exp + leewaySec < nowSec) return fail(401, 'invalid token: token is expired');
  if (typeof claims.nbf === 'number' && claims.nbf - leewaySec > nowSec) return fail(401, 'invalid token: token not valid yet');
  const video = claims.video || {};
  if (video.roomJoin !== true) return fail(401, 'no permissions to access the room');
  if (!claims.sub) return fail(400, 'participant identity cannot be empty');
  if (!video.room) return fail(400, 'room name cannot be empty');
  return { claims };
}

// Token shaped like pump.fun's join token (fixtures/pumpfun/join-token-claims.json).
export function mintViewerToken({ room, identity, secret = 'secret', apiKey = 'devkey', ttlSec = 900, nowSec = Math.floor(Date.now() / 1000) }) {
  return signHS256({
    video: { roomJoin: true, roomCreate: false, canPublish: false, canSubscribe: true, canPublishData: true, room, hidden: false },
    metadata: JSON.stringify({ anon: true, role: 'viewer' }),
    iss: apiKey,
    exp: nowSec + ttlSec,
    nbf: 0,
    sub: identity,
  }, secret);
}

// refresh_token: same grants, valid for max(10 min, remaining lifetime of the
// original) like roommanager.go refreshToken, or for ttlSec when given (the
// refresh_ttl_s test knob). iat records the issue time (/__sfu/revoke).
export function refreshToken(claims, secret, { ttlSec, nowSec = Math.floor(Date.now() / 1000) } = {}) {
  const ttl = ttlSec ?? Math.max(600, (claims.exp || 0) - nowSec);
  return signHS256({ ...claims, iat: nowSec, exp: nowSec + ttl }, secret);
}

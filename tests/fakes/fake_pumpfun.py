#!/usr/bin/python3
"""Fake of pump.fun's public HTTP APIs for haven's offline tests.

One server stands in for both pump.fun hosts (frontend-api-v3 and
livestream-api) plus the LiveKit /settings/regions call; haven's tests point
every base URL at it.  Behaviour follows docs/pumpfun-api.md sections 1-4 and
6-8, driven by the fixtures in tests/data/pumpfun/.

Standard library only (Python 3.11).  See tests/fakes/README.md for the
routes, fault kinds and the /__fake/ control API.

Usage:
    /usr/bin/python3 tests/fakes/fake_pumpfun.py [--host 127.0.0.1] [--port 0]
                                                 [--data DIR] [--verbose]
Prints exactly one line "LISTENING <port>" to stdout once the socket listens.
"""

import argparse
import base64
import gzip
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

ROUTES = ("currently-live", "coin", "livestream", "join", "regions")
FAULT_ROUTES = ROUTES + ("*",)
FAULT_KINDS = ("403", "429", "504", "530", "500", "malformed", "empty",
               "slow", "reset", "none")
JOIN_OFFLINE_MODES = ("no-token", "not-live")
# Keys present on roster rows but not on the single-coin response (see coin.json).
LIVE_ONLY_KEYS = ("thumbnail", "thumbnail_updated_at", "livestream_title",
                  "downrank_score")
JSON_CT = "application/json; charset=utf-8"
LOG_MAX = 500                 # request log is bounded to the last N requests
SYNTHETIC_MAX = 10000
SYNTHETIC_ID_BASE = 2000000   # livestream id of synthetic row i = base + i
SLOW_DEFAULT_MS = 1000        # "slow" without delay_ms waits this long
DEFAULT_EXP_SECONDS = 900     # join token lifetime (about 15 min, doc section 2)
JWT_KEY = b"secret"           # LiveKit's public local-dev key pair devkey/secret
NOW_MS = 1795532400000        # fixture "now": 2026-11-24T15:00:00Z
MAX_BODY = 1 << 20            # request bodies larger than this are refused
MALFORMED_FALLBACK = b'[{"mint": "abc", "name":'


def dumps(obj):
    """Compact JSON, as the real API sends it."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# --------------------------------------------------------------------------
# base58 and synthetic identifiers
# --------------------------------------------------------------------------
B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
B58_INDEX = {c: i for i, c in enumerate(B58)}


def b58encode(data):
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(B58[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(text):
    n = 0
    for ch in text:
        n = n * 58 + B58_INDEX[ch]          # KeyError on a non-base58 char
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


# A 44-char base58 string ending in "pump" is x = q * 58^4 + PUMP with
# 58^43 <= x < 2^256.  Since 58^43 > 2^248 the top byte of x is non-zero, so
# the 32-byte big-endian form has no leading zero bytes ("1" prefixes) and
# encodes to exactly 44 digits whose last four are "pump".  Every id is still
# round-trip checked at generation time.
_PUMP = 0
for _c in "pump":
    _PUMP = _PUMP * 58 + B58_INDEX[_c]
_Q_LO = -(-(58 ** 43 - _PUMP) // 58 ** 4)   # ceil
_Q_HI = (2 ** 256 - 1 - _PUMP) // 58 ** 4   # inclusive


def synthetic_mint(i, taken):
    ctr = 0
    while True:
        h = int.from_bytes(hashlib.sha256(f"haven-fake-mint:{i}:{ctr}".encode()).digest(), "big")
        x = (_Q_LO + h % (_Q_HI - _Q_LO + 1)) * 58 ** 4 + _PUMP
        raw = x.to_bytes(32, "big")
        mint = b58encode(raw)
        if (len(mint) == 44 and mint.endswith("pump") and b58decode(mint) == raw
                and mint not in taken):
            return mint
        ctr += 1


def synthetic_key(tag):
    """A random-looking 32-byte base58 address (43-44 chars)."""
    return b58encode(hashlib.sha256(tag.encode()).digest())


def synthetic_cid(tag):
    """A CIDv0 (sha2-256 multihash, base58, 'Qm...') that points at nothing."""
    return b58encode(b"\x12\x20" + hashlib.sha256(tag.encode()).digest())


def make_synthetic(n, tmpl_row, tmpl_info):
    """N synthetic live rows plus their /livestream objects.

    Viewer counts run N..1 by index, then the row order is shuffled
    deterministically so callers must sort.  Every 5th index is nsfw."""
    rows, infos, taken = [], {}, set()
    for i in range(n):
        mint = synthetic_mint(i, taken)
        taken.add(mint)
        sid = SYNTHETIC_ID_BASE + i
        viewers = n - i
        thumb_ms = NOW_MS - 60000 - i
        thumb = f"https://example.com/livestream-thumbnails/{sid}/{thumb_ms}.jpeg"
        creator = synthetic_key(f"creator:{i}")
        title = f"synthetic stream {i}"
        row = dict(tmpl_row)                      # same keys, same key order
        row.update({
            "mint": mint,
            "name": f"Synthetic Coin {i}",
            "symbol": f"SYN{i}",
            "description": f"Synthetic livestream row {i} generated by fake_pumpfun.",
            "image_uri": "https://ipfs.io/ipfs/" + synthetic_cid(f"image:{i}"),
            "metadata_uri": "https://ipfs.io/ipfs/" + synthetic_cid(f"meta:{i}"),
            "bonding_curve": synthetic_key(f"bc:{i}"),
            "associated_bonding_curve": synthetic_key(f"abc:{i}"),
            "creator": creator,
            "created_timestamp": int(tmpl_row["created_timestamp"]) - i * 1000,
            "nsfw": (i + 1) % 5 == 0,
            "is_banned": False,
            "is_currently_live": True,
            "livestream_ban_expiry": 0,
            "livestream_downrank_score": 0,
            "thumbnail": thumb,
            "thumbnail_updated_at": thumb_ms,
            "num_participants": viewers,
            "livestream_title": title,
            "downrank_score": 0,
        })
        info = dict(tmpl_info)
        info.update({
            "id": sid, "supabaseId": sid, "mintId": mint, "creatorAddress": creator,
            "numParticipants": viewers, "isLive": True, "thumbnail": thumb,
            "thumbnailUpdatedAt": thumb_ms, "downrankScore": 0, "title": title,
        })
        rows.append(row)
        infos[mint] = info
    random.Random(f"haven-fake-shuffle:{n}").shuffle(rows)
    return rows, infos


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
class Fixtures:
    """Everything read from the data directory, loaded once at start-up."""

    def __init__(self, root):
        def load(rel):
            with open(os.path.join(root, rel), "rb") as f:
                return f.read()

        self.rows = json.loads(load("currently-live.json"))
        self.info = json.loads(load("livestream-info-by-mint.json"))
        claims = json.loads(load("join-token-claims.json"))["payload"]
        self.claims_video = claims["video"]
        self.claims_metadata = claims["metadata"]
        self.claims_iss = claims.get("iss", "devkey")
        self.regions = dumps(json.loads(load("livekit-regions.json")))
        # errors/: file name -> (status, body bytes, content type, headers)
        self.errors = {}
        for e in json.loads(load("errors/index.json")):
            ctype = e.get("content_type")
            if ctype == "application/json":
                ctype = JSON_CT
            self.errors[e["file"]] = (int(e["status"]), load("errors/" + e["file"]),
                                      ctype, dict(e.get("headers") or {}))
        for need in ("cloudflare-403-challenge.html", "rate-limited-429.json",
                     "cloudflare-504.txt", "cloudflare-1016.txt", "coin-not-found.json",
                     "join-bad-request.json", "join-no-token.json", "join-not-live.json"):
            if need not in self.errors:
                raise ValueError(f"errors/index.json has no entry for {need}")
        # Template for synthetic rows: the first ordinary live on-curve row.
        live = [r for r in self.rows if self.info.get(r["mint"]) and r.get("is_currently_live")]
        pick = [r for r in live if not r.get("complete") and not r.get("nsfw")] or live
        self.tmpl_row = pick[0]
        self.tmpl_info = self.info[pick[0]["mint"]]

    def error(self, name):
        status, body, ctype, headers = self.errors[name]
        return status, body, ctype, dict(headers)


# --------------------------------------------------------------------------
# shared mutable state (one lock)
# --------------------------------------------------------------------------
class State:
    def __init__(self, fx):
        self.fx = fx
        self.lock = threading.Lock()
        with self.lock:
            self.reset_locked()

    def reset_locked(self):
        self.faults = {}          # route key -> {"kind", "delay_ms", "count", "retry_after"}
        self.counts = {k: 0 for k in ROUTES + ("other", "total")}
        self.log = deque(maxlen=LOG_MAX)
        self.join_offline = "no-token"
        self.exp_seconds = DEFAULT_EXP_SECONDS
        self.commit_roster_locked(*self.build_roster())

    def build_roster(self, gen=None):
        """Fresh (coins, info, roster): the fixture rows, or the synthetic rows
        `gen` from make_synthetic() if given.  `coins` knows every row (the
        coin endpoint keeps answering for rows no longer in the roster);
        `info` maps mint -> /livestream object or None."""
        fixture = [dict(r) for r in self.fx.rows]
        coins = {r["mint"]: r for r in fixture}
        info = dict(self.fx.info)
        roster = fixture
        if gen:
            rows, infos = gen
            coins.update((r["mint"], r) for r in rows)
            info.update(infos)
            roster = rows
        return coins, info, roster

    def commit_roster_locked(self, coins, info, roster):
        self.coins, self.info, self.roster = coins, info, roster
        self.roster_mints = {r["mint"] for r in roster}

    def live_info_locked(self, mint):
        """The /livestream object if the mint is live now, else None."""
        if mint not in self.roster_mints:
            return None
        return self.info.get(mint)

    def arrive(self, method, path, route, headers):
        """Count and log a pump.fun request on arrival; pick its fault."""
        with self.lock:
            self.counts[route] += 1
            self.counts["total"] += 1
            fault = None
            if route != "other":
                for key in (route, "*"):
                    f = self.faults.get(key)
                    if f is None:
                        continue
                    if f["count"] is not None:
                        f["count"] -= 1
                        if f["count"] <= 0:
                            del self.faults[key]
                    fault = dict(f)
                    break
            entry = {"method": method, "path": path, "route": route, "status": None,
                     "fault": fault["kind"] if fault else None, "headers": headers}
            self.log.append(entry)
            return entry, fault

    def set_status(self, entry, status):
        with self.lock:
            entry["status"] = status


class BadRequest(Exception):
    pass


def int_param(query, name, default):
    vals = query.get(name)
    if not vals or vals[-1].strip() == "":
        return default
    v = vals[-1].strip()
    if not re.fullmatch(r"[+-]?\d{1,18}", v):
        raise BadRequest(f"{name} must be an integer number")
    return int(v)


def json_error(status, message, error):
    return status, dumps({"message": message, "error": error, "statusCode": status}), JSON_CT, {}


def wants_gzip(accept_encoding):
    for part in (accept_encoding or "").split(","):
        bits = [b.strip() for b in part.split(";")]
        if bits[0].lower() not in ("gzip", "x-gzip"):
            continue
        q = 1.0
        for b in bits[1:]:
            if b.lower().startswith("q="):
                try:
                    q = float(b[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive; every response has Content-Length

    # Responses carry "Server: cloudflare" like the real edge.
    def version_string(self):
        return "cloudflare"

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("%s - - [%s] %s\n" % (self.address_string(),
                                                 self.log_date_time_string(), fmt % args))

    @property
    def state(self):
        return self.server.state

    # All methods go through one dispatcher; unknown method+path -> 404 JSON.
    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    # ---- request plumbing ------------------------------------------------
    def read_body(self):
        """Read the request body (Content-Length or chunked) so keep-alive
        stays in sync.  Raises BadRequest on nonsense framing."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            out = bytearray()
            while True:
                line = self.rfile.readline(65537)
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    self.close_connection = True
                    raise BadRequest("bad chunked encoding")
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                if len(out) + size > MAX_BODY:
                    self.close_connection = True
                    raise BadRequest("body too large")
                out += self.rfile.read(size)
                self.rfile.readline()
        cl = self.headers.get("Content-Length")
        if not cl:
            return b""
        try:
            n = int(cl)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self.close_connection = True
            raise BadRequest("bad Content-Length")
        return self.rfile.read(n)

    def send(self, resp, entry=None):
        status, body, ctype, extra = resp
        headers = {}
        if ctype:
            headers["Content-Type"] = ctype
        for k, v in extra.items():
            if k.lower() != "server":            # already sent by send_response
                headers[k] = v
        if body and wants_gzip(self.headers.get("Accept-Encoding")):
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
            headers["Vary"] = "Accept-Encoding"
        headers["Content-Length"] = str(len(body))
        if entry is not None:
            self.state.set_status(entry, status)
        try:
            # 530 is Cloudflare-specific; give it a reason phrase anyway.
            self.send_response(status, "Origin DNS Error" if status == 530 else None)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if body:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def drop_connection(self):
        """Close the TCP connection without answering (RST via SO_LINGER 0,
        done by FakeServer.shutdown_request in this same thread)."""
        self.close_connection = True
        self.server.tls.reset = True

    def dispatch(self):
        url = urlsplit(self.path)
        path = url.path
        if path == "/__fake" or path.startswith("/__fake/"):
            return self.control(path)
        route = classify(self.command, path)
        headers = {}
        for k, v in self.headers.items():
            lk = k.lower()
            headers[lk] = headers[lk] + ", " + v if lk in headers else v
        entry, fault = self.state.arrive(self.command, self.path, route, headers)
        try:
            body = self.read_body()
        except BadRequest as e:
            return self.send(json_error(400, str(e), "Bad Request"), entry)
        kind = fault["kind"] if fault else None
        delay = fault.get("delay_ms") if fault else None
        if kind == "slow" and delay is None:
            delay = SLOW_DEFAULT_MS
        if delay:
            time.sleep(delay / 1000.0)
        if kind == "reset":
            self.state.set_status(entry, 0)
            return self.drop_connection()
        if kind in (None, "slow"):
            resp = self.normal(route, path, parse_qs(url.query, keep_blank_values=True), body)
        else:
            resp = self.fault_response(fault, route, path, url, body)
        self.send(resp, entry)

    # ---- faults ---------------------------------------------------------
    def fault_response(self, fault, route, path, url, body):
        fx = self.state.fx
        kind = fault["kind"]
        if kind == "403":
            return fx.error("cloudflare-403-challenge.html")
        if kind == "429":
            status, b, ctype, headers = fx.error("rate-limited-429.json")
            if fault.get("retry_after") is not None:
                headers = {k: v for k, v in headers.items() if k.lower() != "retry-after"}
                headers["retry-after"] = str(fault["retry_after"])
            return status, b, ctype, headers
        if kind == "504":
            return fx.error("cloudflare-504.txt")
        if kind == "530":
            return fx.error("cloudflare-1016.txt")
        if kind == "500":
            return 500, dumps({"message": "Internal server error", "statusCode": 500}), JSON_CT, {}
        if kind == "empty":
            return 200, b"", "application/json", {}
        if kind == "malformed":
            normal = self.normal(route, path, parse_qs(url.query, keep_blank_values=True), body)[1]
            cut = normal[: int(len(normal) * 0.4)] if len(normal) >= 10 else MALFORMED_FALLBACK
            return 200, cut, JSON_CT, {}
        raise AssertionError(kind)

    # ---- pump.fun routes ------------------------------------------------
    def normal(self, route, path, query, body):
        try:
            if route == "currently-live":
                return self.currently_live(query)
            if route == "coin":
                return self.coin(unquote(path.split("/", 2)[2]))
            if route == "livestream":
                return self.livestream(query)
            if route == "join":
                return self.join(body)
            if route == "regions":
                return self.regions()
        except BadRequest as e:
            return json_error(400, str(e), "Bad Request")
        return json_error(404, f"Cannot {self.command} {path}", "Not Found")

    def currently_live(self, query):
        offset = int_param(query, "offset", 0)
        limit = int_param(query, "limit", 60)
        if offset < 0:
            raise BadRequest("offset must not be less than 0")
        limit = max(1, min(1000, limit))
        include_nsfw = (query.get("includeNsfw") or ["false"])[-1] == "true"
        st = self.state
        with st.lock:   # shallow-copy the page: rows may be edited concurrently
            rows = [r for r in st.roster if include_nsfw or not r.get("nsfw")]
            page = [dict(r) for r in rows[offset:offset + limit]]
        return 200, dumps(page), JSON_CT, {}

    def coin(self, mint):
        st = self.state
        with st.lock:
            row = st.coins.get(mint)
            if row is not None:
                coin = {k: v for k, v in row.items()
                        if k not in LIVE_ONLY_KEYS and k != "num_participants"}
                coin["num_participants"] = 0     # as in coin.json
                return 200, dumps(coin), JSON_CT, {}
        return st.fx.error("coin-not-found.json")

    def livestream(self, query):
        mint = (query.get("mintId") or [""])[-1]
        if not mint:
            raise BadRequest("mintId is required")
        st = self.state
        with st.lock:
            info = st.live_info_locked(mint)
            if info is not None:
                return 200, dumps(info), JSON_CT, {}
        return 200, b"", None, {}     # offline: 200, zero-length body, no type

    def join(self, body):
        st = self.state
        try:
            req = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            req = None
        mint = req.get("mintId") if isinstance(req, dict) else None
        if not isinstance(mint, str) or not mint:
            return st.fx.error("join-bad-request.json")
        with st.lock:
            info = st.live_info_locked(mint)
            offline_mode, exp_seconds = st.join_offline, st.exp_seconds
        if info is None:
            name = "join-not-live.json" if offline_mode == "not-live" else "join-no-token.json"
            return st.fx.error(name)
        return 201, dumps({"token": self.mint_token(mint, info["id"], exp_seconds),
                           "role": "viewer"}), JSON_CT, {}

    def mint_token(self, mint, stream_id, exp_seconds):
        """Fresh HS256 JWT on every call, shaped like join-token-claims.json."""
        fx = self.state.fx
        video = dict(fx.claims_video)
        video["room"] = f"livestream:{mint}:{stream_id}"
        claims = {"video": video, "metadata": fx.claims_metadata, "iss": fx.claims_iss,
                  "exp": int(time.time()) + int(exp_seconds), "nbf": 0,
                  "sub": secrets.token_hex(4)}
        signing = b64url(dumps({"alg": "HS256", "typ": "JWT"})) + b"." + b64url(dumps(claims))
        sig = hmac.new(JWT_KEY, signing, hashlib.sha256).digest()
        return (signing + b"." + b64url(sig)).decode("ascii")

    def regions(self):
        auth = self.headers.get("Authorization") or ""
        if not re.match(r"(?i)bearer\s+\S", auth):
            return json_error(401, "Unauthorized", "Unauthorized")
        return 200, self.state.fx.regions, JSON_CT, {}

    # ---- control API ----------------------------------------------------
    def control(self, path):
        def ok(extra=None):
            d = {"ok": True}
            d.update(extra or {})
            return 200, dumps(d), JSON_CT, {}

        def bad(msg, status=400):
            return status, dumps({"ok": False, "error": msg}), JSON_CT, {}

        try:
            raw = self.read_body()
        except BadRequest as e:
            return self.send(bad(str(e)))
        st = self.state
        if self.command == "GET" and path == "/__fake/stats":
            with st.lock:
                stats = {"requests": dict(st.counts),
                         "log": [dict(e, headers=dict(e["headers"])) for e in st.log]}
            return self.send((200, dumps(stats), JSON_CT, {}))
        if self.command != "POST" or path not in ("/__fake/fault", "/__fake/reset",
                                                  "/__fake/roster", "/__fake/join"):
            return self.send(bad(f"Cannot {self.command} {path}", 404))
        try:
            req = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError):
            return self.send(bad("body is not JSON"))
        if not isinstance(req, dict):
            return self.send(bad("body must be a JSON object"))
        handler = {"/__fake/fault": self.ctl_fault, "/__fake/reset": self.ctl_reset,
                   "/__fake/roster": self.ctl_roster, "/__fake/join": self.ctl_join}[path]
        try:
            handler(req)
        except BadRequest as e:
            return self.send(bad(str(e)))
        return self.send(ok())

    def ctl_fault(self, req):
        route = req.get("route")
        kind = req.get("fault")
        if isinstance(kind, int) and not isinstance(kind, bool):
            kind = str(kind)
        if route not in FAULT_ROUTES:
            raise BadRequest(f"unknown route {route!r}; expected one of {list(FAULT_ROUTES)}")
        if kind not in FAULT_KINDS:
            raise BadRequest(f"unknown fault {kind!r}; expected one of {list(FAULT_KINDS)}")

        def opt_int(name, minimum):
            v = req.get(name)
            if v is None:
                return None
            if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
                raise BadRequest(f"{name} must be an integer >= {minimum}")
            return v

        delay_ms, count = opt_int("delay_ms", 0), opt_int("count", 1)
        retry_after = req.get("retry_after")
        if retry_after is not None and not isinstance(retry_after, (int, str)):
            raise BadRequest("retry_after must be an integer or a string")
        with self.state.lock:
            if kind == "none":
                self.state.faults.pop(route, None)
            else:
                self.state.faults[route] = {"kind": kind, "delay_ms": delay_ms,
                                            "count": count, "retry_after": retry_after}

    def ctl_reset(self, req):
        with self.state.lock:
            self.state.reset_locked()

    def ctl_roster(self, req):
        synthetic, remove, sets = req.get("synthetic"), req.get("remove"), req.get("set")
        if synthetic is not None and (not isinstance(synthetic, int) or isinstance(synthetic, bool)
                                      or not 0 <= synthetic <= SYNTHETIC_MAX):
            raise BadRequest(f"synthetic must be an integer 0..{SYNTHETIC_MAX}")
        if remove is not None and (not isinstance(remove, list)
                                   or not all(isinstance(m, str) for m in remove)):
            raise BadRequest("remove must be a list of mint strings")
        if sets is not None and (not isinstance(sets, dict)
                                 or not all(isinstance(v, dict) for v in sets.values())):
            raise BadRequest("set must be an object mint -> object of fields")
        # Synthetic rows are generated outside the lock (10000 rows ~ 0.5 s).
        st = self.state
        gen = make_synthetic(synthetic, st.fx.tmpl_row, st.fx.tmpl_info) if synthetic else None
        with st.lock:
            # Build the new roster in locals first so a bad request changes nothing.
            if synthetic is not None:
                coins, info, roster = st.build_roster(gen)
            else:
                coins, info, roster = st.coins, st.info, st.roster
            if remove:
                gone = set(remove)
                roster = [r for r in roster if r["mint"] not in gone]
            by_mint = {r["mint"]: r for r in roster}
            if sets:
                unknown = [m for m in sets if m not in by_mint]
                if unknown:
                    raise BadRequest(f"set: mints not in the current roster: {unknown}")
                for m, fields in sets.items():
                    by_mint[m].update(fields)
            st.commit_roster_locked(coins, info, roster)

    def ctl_join(self, req):
        offline, exp = req.get("offline"), req.get("exp_seconds")
        if offline is not None and offline not in JOIN_OFFLINE_MODES:
            raise BadRequest(f"offline must be one of {list(JOIN_OFFLINE_MODES)}")
        if exp is not None and (not isinstance(exp, int) or isinstance(exp, bool)):
            raise BadRequest("exp_seconds must be an integer")
        with self.state.lock:
            if offline is not None:
                self.state.join_offline = offline
            if exp is not None:
                self.state.exp_seconds = exp


def classify(method, path):
    """Map method + path to a route key ("other" if none)."""
    if method == "GET":
        if path == "/coins/currently-live":
            return "currently-live"
        if re.fullmatch(r"/coins(?:-v2)?/[^/]+", path):
            return "coin"
        if path == "/livestream":
            return "livestream"
        if path == "/settings/regions":
            return "regions"
    elif method == "POST" and path == "/livestream/join":
        return "join"
    return "other"


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, handler, state, verbose):
        self.state = state
        self.verbose = verbose
        self.tls = threading.local()
        super().__init__(addr, handler)

    def server_bind(self):
        # Skip HTTPServer.server_bind's getfqdn() (a reverse DNS lookup).
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def shutdown_request(self, request):
        # Runs in the handler's thread after it returns; a "reset" fault asked
        # for an abortive close (RST) instead of the usual FIN.
        if getattr(self.tls, "reset", False):
            self.tls.reset = False
            try:
                request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            self.close_request(request)
            return
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return                      # client went away; not interesting
        super().handle_error(request, client_address)


class FakeServer6(FakeServer):
    address_family = socket.AF_INET6


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Fake pump.fun HTTP APIs for haven's tests.")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port (0 = pick a free one)")
    ap.add_argument("--data", default=os.path.join(here, "..", "data", "pumpfun"),
                    help="fixture directory (default ../data/pumpfun next to this script)")
    ap.add_argument("--verbose", action="store_true", help="log requests to stderr")
    args = ap.parse_args(argv)
    if args.host in ("", "0.0.0.0", "::", "[::]"):
        ap.error("refusing to bind a wildcard address; give a specific host such as 127.0.0.1")
    try:
        state = State(Fixtures(args.data))
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"fake_pumpfun: cannot load fixtures from {args.data}: {e}", file=sys.stderr)
        return 2
    cls = FakeServer6 if ":" in args.host else FakeServer
    server = cls((args.host, args.port), Handler, state, args.verbose)

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns, so not from this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"LISTENING {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Writes the seed corpora of the text-based fuzz targets (the livekit_signal seeds come from
gen-livekit-corpus.c). Deterministic: run it again and nothing changes.

    python3 tests/fuzz/gen-seeds.py            # from the repository root

Each seed is a real-looking input: pump.fun's answers from tests/data/pumpfun, requests from
docs/API.md, the LiveKit token of tests/data/pumpfun/join-response.json, the configuration of
docs/CONFIG.md. Files found by fuzzing (merged by tools/fuzz.sh) live next to them, named by
their SHA-1 as libFuzzer names them; this script never deletes those.
"""
import base64
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPORA = os.path.join(ROOT, "tests", "fuzz", "corpora")
DATA = os.path.join(ROOT, "tests", "data", "pumpfun")

MINT = "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump"        # live in the fake roster
MINT2 = "4odAMtm92RnFU3V3kLb9ZdJSUsraFCas1vx9CxVxpump"       # live in the fake roster
NSFW = "CjgM7MPSTLzA6mmRbTWvg3M5tz5KggBKgWZtW9Fbpump"        # live, nsfw
OFFLINE = "EsM78cQ5JHeRorCkvNNNaCX2i6QmdkyRT2fwRSdypump"     # valid, not in the fake roster


def write(target, name, data):
    d = os.path.join(CORPORA, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def pumpfun_json():
    for sub in ("", "errors"):
        d = os.path.join(DATA, sub)
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    write("pumpfun_json", (sub + "-" if sub else "") + name, f.read())
    live = json.load(open(os.path.join(DATA, "currently-live.json")))
    coin = dict(live[0])
    write("pumpfun_json", "coin-data-wrapper.json", json.dumps({"data": coin}))
    write("pumpfun_json", "coin-array-wrapper.json", json.dumps([coin]))
    odd = dict(coin, num_participants=-5, market_cap="12", usd_market_cap=1e308,
               created_timestamp=1.7e12, last_trade_timestamp=None, name=None,
               nsfw="yes", is_currently_live=1)
    write("pumpfun_json", "coin-odd-types.json", json.dumps([odd, {"mint_id": MINT2}, 42, None]))
    write("pumpfun_json", "livestream-live.json", json.dumps(
        {"id": 2421674, "mintId": MINT, "isLive": True, "numParticipants": 231,
         "thumbnail": "https://t.example/x.jpg", "title": "zero-g snacks"}))
    write("pumpfun_json", "retry-after.txt", "120\n[]")
    write("pumpfun_json", "join-token.json", json.dumps({"token": "eyJhbGciOi.eyJzdWIiOiJ4In0.sig"}))
    write("pumpfun_json", "nul-in-string.json",
          b'[{"mint":"' + MINT.encode() + b'","name":"a\\u0000b","description":"\xc3\xa9t\xc3\xa9"}]')


def jwt():
    tok = json.load(open(os.path.join(DATA, "join-response.json")))["token"]
    write("jwt", "pumpfun-join-token", tok)

    def b64(obj):
        raw = obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    head = b64({"alg": "HS256", "typ": "JWT"})
    cases = {
        "minimal": {"sub": "b45e1821", "exp": 1795533300},
        "no-video": {"sub": "x", "iss": "devkey"},
        "cannot-subscribe": {"sub": "x", "video": {"room": "r", "canSubscribe": False}},
        "video-not-object": {"sub": "x", "video": "room"},
        "exp-real": {"sub": "x", "exp": 1795533300.75},
        "exp-huge": {"sub": "x", "exp": 1e300},
        "exp-negative": {"sub": "x", "exp": -1e19},
        "strings-not-strings": {"sub": 5, "iss": None, "video": {"room": ["r"]}},
        "unicode": {"sub": "vi\u00e9wer-\u2603", "video": {"room": "livestream:\u00e9:1"}},
    }
    for name, payload in cases.items():
        write("jwt", name, head + "." + b64(payload) + ".c2lnbmF0dXJl")
    write("jwt", "duplicate-keys", head + "." + b64(b'{"sub":"a","sub":"b"}') + ".c2ln")
    write("jwt", "payload-array", head + "." + b64([1, 2]) + ".c2ln")
    write("jwt", "payload-not-json", head + "." + b64(b"not json") + ".c2ln")
    write("jwt", "two-parts", head + "." + b64({"sub": "x"}))
    write("jwt", "four-parts", head + ".a.b.c")
    write("jwt", "padded", head + "." + base64.urlsafe_b64encode(b'{"sub":"x"}').decode() + ".c2ln")
    write("jwt", "bad-length", head + ".abcde.c2ln")
    write("jwt", "empty-parts", "..")


def http_route():
    reqs = {
        "root": "GET /",
        "api-index": "GET /api",
        "healthz": "GET /healthz",
        "healthz-degraded": "GET /healthz\nX-Fuzz-Upstream: none",
        "live": "GET /api/pumpfun/live?offset=0&limit=60&include_nsfw=true\nAccept-Encoding: gzip, deflate, br",
        "live-sfw": "GET /api/pumpfun/live?limit=2&include_nsfw=false&offset=1",
        "live-bad": "GET /api/pumpfun/live?offset=-1&limit=abc&include_nsfw=maybe",
        "live-big": "GET /api/pumpfun/live?offset=99999999999999999999&limit=101",
        "live-stale": "GET /api/pumpfun/live\nX-Fuzz-Upstream: stale",
        "live-error": "GET /api/pumpfun/live\nX-Fuzz-Upstream: error\nX-Fuzz-Upstream-Body: {\"oops\": tru",
        "live-429": "GET /api/pumpfun/live?limit=5\nX-Fuzz-Upstream: 429",
        "live-encoded": "GET /api/pumpfun/live?li%6dit=1%30&include_nsfw=%74rue&offset=+1",
        "popular": "GET /api/pumpfun/popular?limit=20&include_nsfw=0\nAccept-Encoding: gzip;q=0",
        "stats": "GET /api/pumpfun/stats",
        "stats-none": "GET /api/pumpfun/stats\nX-Fuzz-Upstream: none",
        "stream": "GET /api/pumpfun/stream/" + MINT,
        "stream-unknown": "GET /api/pumpfun/stream/" + OFFLINE,
        "stream-invalid": "GET /api/pumpfun/stream/0OIl" + MINT[4:],
        "stream-error": "GET /api/pumpfun/stream/" + NSFW + "\nX-Fuzz-Upstream: error\nX-Fuzz-Upstream-Body: <html>",
        "validate": "GET /api/pumpfun/validate/" + MINT2,
        "validate-none": "GET /api/pumpfun/validate/" + MINT2 + "\nX-Fuzz-Upstream: none",
        "history": "GET /api/pumpfun/history/" + MINT + "?hours=24",
        "history-bad": "GET /api/pumpfun/history/" + MINT + "?hours=0",
        "sessions-active": "GET /api/live-sessions/active",
        "session-start": "POST /api/live-sessions/start\n\n{\"mint_id\": \"" + MINT + "\", \"record_session\": true}",
        "session-stop": "POST /api/live-sessions/stop\n\n{\"mint_id\": \"" + OFFLINE + "\"}",
        "session-recording": "POST /api/live-sessions/" + MINT + "/recording\n\n{\"action\": \"start\"}",
        "session-start-get": "GET /api/live-sessions/start",
        "recordings": "GET /api/recordings?mint_id=" + MINT + "&status=finished&limit=50&offset=0",
        "recordings-bad": "GET /api/recordings?status=bogus&limit=0&mint_id=x",
        "recording": "GET /api/recordings/7",
        "recording-bad-id": "GET /api/recordings/seven",
        "recording-file": "GET /api/recordings/7/file?kind=audio\nRange: bytes=0-1023",
        "recording-file-head": "HEAD /api/recordings/12/file\nRange: bytes=-500",
        "recording-delete": "DELETE /api/recordings/3",
        "recording-put": "PUT /api/recordings/3",
        "options": "OPTIONS /api/pumpfun/live\nOrigin: https://app.example",
        "patch": "PATCH /api/live-sessions/stop",
        "not-found": "GET /api/nothing/here",
        "static": "GET /js/app.js",
        "static-traversal": "GET /../../etc/passwd",
        "static-encoded": "GET /%2e%2e/secret",
        "token-query": "GET /api/pumpfun/live?token=s3cret-token-value&limit=3\nAuthorization: Bearer s3cret-token",
        "token-header": "GET /api/live-sessions/active\nAuthorization: bearer\ts3cret-token\nOrigin: http://127.0.0.1:8000\nHost: 127.0.0.1:8000",
        "range-odd": "GET /api/recordings/1/file\nRange: bytes=5-2, 7-9",
    }
    for name, text in reqs.items():
        write("http_route", name, text)


def http_json_body():
    bodies = {
        "start": '0{"mint_id": "%s", "record_session": false}' % MINT,
        "start-record": '0{"mint_id": "%s", "record_session": true}' % MINT2,
        "start-record-null": '0{"mint_id": "%s", "record_session": null}' % MINT,
        "start-record-string": '0{"mint_id": "%s", "record_session": "yes"}' % MINT,
        "start-offline": '0{"mint_id": "%s"}' % OFFLINE,
        "start-invalid-mint": '0{"mint_id": "not-a-mint"}',
        "start-mint-number": '0{"mint_id": 12345}',
        "start-missing": '0{}',
        "start-array": '0["%s"]' % MINT,
        "start-empty": '0',
        "start-garbage": '0{"mint_id": "%s"' % MINT,
        "start-nul": '0{"mint_id": "%s\\u0000x"}' % MINT,
        "stop": '1{"mint_id": "%s"}' % MINT,
        "stop-offline": '1{"mint_id": "%s"}' % OFFLINE,
        "stop-extra": '1{"mint_id": "%s", "mint_id": "%s", "x": [1, {"y": null}]}' % (OFFLINE, MINT),
        "recording-start": '2{"action": "start"}',
        "recording-stop": '2{"action": "stop"}',
        "recording-bad-action": '2{"action": "pause"}',
        "recording-action-number": '2{"action": 1}',
        "recording-no-body": '2',
        "recording-invalid-mint": '3{"action": "start"}',
        "recording-invalid-both": '3[1, 2]',
        "recording-no-session": '4{"action": "stop"}',
        "deep": '0' + '[' * 2000 + ']' * 2000,
    }
    for name, text in bodies.items():
        write("http_json_body", name, text)


def ws(uri, ops):
    out = uri.encode() + b"\n"
    for op in ops:
        if isinstance(op, tuple):
            kind, payload = op
            payload = payload.encode() if isinstance(payload, str) else payload
            out += bytes([kind]) + struct.pack(">H", len(payload)) + payload
        else:
            out += bytes([op])
    return out

RECV_FINAL = 0x04
WRITABLE = 0x01
PUBLISH = 0x02
END = 0x03


def ws_viewer_text():
    base = "/api/live-sessions/ws/live/"
    seeds = {
        "ping": ws(base + MINT + "?audio_rate=48000&audio_channels=2",
                   [WRITABLE, (RECV_FINAL, "ping"), WRITABLE]),
        "defaults": ws(base + MINT2, [WRITABLE, PUBLISH, WRITABLE, WRITABLE]),
        "fragments": ws(base + MINT + "?audio_rate=44100",
                        [(0x08, "pi"), (0x00, "n"), (RECV_FINAL, "g"), WRITABLE | 0x04]),
        "ignored-text": ws(base + MINT, [(RECV_FINAL, '{"type":"hello"}'), (RECV_FINAL, "pong"),
                                         WRITABLE]),
        "too-big": ws(base + MINT, [(0x00, "x" * 4000), (RECV_FINAL, "y" * 200)]),
        "no-session": ws(base + OFFLINE, [WRITABLE, (RECV_FINAL, "ping")]),
        "invalid-mint": ws(base + "not-a-mint", [WRITABLE]),
        "bad-rate": ws(base + MINT + "?audio_rate=7999", [WRITABLE]),
        "bad-rate-text": ws(base + MINT + "?audio_rate=48k&audio_channels=2", [WRITABLE]),
        "bad-channels": ws(base + MINT + "?audio_channels=3", [WRITABLE]),
        "encoded-args": ws(base + MINT + "?audio%5Frate=96000&audio_channels=%32", [WRITABLE]),
        "long-arg-first": ws(base + MINT + "?x=" + "a" * 80 + "&audio_rate=8000", [WRITABLE]),
        "session-ends": ws(base + MINT + "?audio_rate=48000&audio_channels=2",
                           [WRITABLE, PUBLISH, END, WRITABLE, (RECV_FINAL, "ping")]),
        "write-fails": ws(base + MINT, [PUBLISH, WRITABLE | 0x08]),
        "long-uri": ws(base + MINT + "?pad=" + "p" * 300, [WRITABLE]),
        "token-arg": ws(base + MINT + "?token=s3cret&audio_rate=16000", [WRITABLE, PUBLISH, WRITABLE]),
    }
    for name, data in seeds.items():
        write("ws_viewer_text", name, data)


def config_values():
    seeds = {
        "defaults": "",
        "flags": "--listen=127.0.0.1:9000\n--catalog-ttl=1.5s\n--roster-max=500\n--log-level=debug",
        "env": "HAVEN_LISTEN=[::1]:8000\nHAVEN_IDLE_TIMEOUT=2m\nHAVEN_LIVEKIT_URL=ws://127.0.0.1:7880/",
        "durations": "--snapshot-retention=30d\n--snapshot-interval=0\n--upstream-timeout=500ms\n--reconnect-give-up=1h",
        "bad-duration": "--catalog-ttl=1e3",
        "bad-duration-2": "--idle-timeout=.5.s",
        "huge-duration": "HAVEN_SNAPSHOT_RETENTION=99999999999999999999d",
        "bad-int": "--roster-max=12abc",
        "int-overflow": "--max-body=99999999999999999999",
        "urls": "--pumpfun-frontend-api=https://frontend-api-v3.pump.fun///\n--livekit-url=wss://pump-prod.livekit.cloud/base/path",
        "bad-url": "--pumpfun-livestream-api=ftp://x",
        "ws-url-odd": "--livekit-url=http://[::1]:99999/x?y#z",
        "ws-url-userinfo": "--livekit-url=wss://user:pw@host.example:443",
        "choices": "--record-format=mp4\n--log-format=json",
        "bad-choice": "--record-format=mkv",
        "listen-v6": "--listen\n[fe80::1%eth0]:8000",
        "listen-bad": "--listen=localhost",
        "listen-port-0": "--listen=127.0.0.1:0",
        "empty-string": "--db=",
        "missing-value": "--db",
        "unknown": "--nope=1",
        "positional": "serve",
        "help": "--help\n--print-config",
        "limits": "--max-body=1024\n--audio-backlog=4\n--jpeg-quality=100",
        "mint": MINT,
        "security": "HAVEN_API_TOKEN=s3cret\n--listen=0.0.0.0:8000\n--cors-origins=https://a.example,https://b.example",
    }
    for name, text in seeds.items():
        write("config_values", name, text)


if __name__ == "__main__":
    pumpfun_json()
    jwt()
    http_route()
    http_json_body()
    ws_viewer_text()
    config_values()

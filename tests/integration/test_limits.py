#!/usr/bin/env python3
"""End-to-end tests of haven's limits and access control (issue 6, items 4 and 5): the real
haven binary against the fake pump.fun API and, for live sessions, the fake LiveKit SFU, all on
127.0.0.1 inside the loopback-only namespace `make test` creates.

Usage: test_limits.py PATH_TO_HAVEN. Prints TAP. Every limit is checked on both sides: refused
with the documented status and body just over it, accepted at or under it. Nothing here binds a
non-loopback address: the check that refuses one runs before haven binds anything, which is what
the exit-78 test proves (it holds the port on loopback itself).
"""
import base64
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BINARY, ENDED, MINT, MINT2, ROOT, SLOW, Haven, Sfu,  # noqa: E402
                     base_env, free_port, request)
from wsclient import Closed, WebSocket  # noqa: E402

WEB = os.path.join(ROOT, "web")
TOKEN = "haven-test-token-Qx7PbN2rV9s4TkZ8"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}")  # a JWT (pump.fun's LiveKit token) not cut short


def run_haven(args, env=None, timeout=10):
    return subprocess.run([BINARY] + args, capture_output=True, text=True,
                          timeout=timeout * SLOW, env=base_env(env))


def config_lines(out):
    """The NAME=value lines of --print-config, without their "  # source" comments."""
    return [line.rsplit("  # ", 1)[0] for line in out.stdout.splitlines()]


def post(h, path, body, headers=None):
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, head, raw = request(h.port, "POST", path, data, hdrs, timeout=30 * SLOW)
    return status, head, json.loads(raw) if raw else None


def ws_handshake(port, path, headers=None):
    """Sends a WebSocket upgrade; returns (status, headers, body) of the answer (101: no body)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10 * SLOW)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed during the handshake: {buf!r}")
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, v in
                (line.split(":", 1) for line in lines[1:])}
        n = int(hdrs.get("content-length", "0")) if status != 101 else 0
        while len(rest) < n:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, hdrs, rest[:n]
    finally:
        sock.close()


def viewer_path(mint, token=None):
    return f"/api/live-sessions/ws/live/{mint}" + (f"?token={token}" if token else "")


def wait_viewers(h, mint, n, token=None, timeout=10):
    """Waits until /active reports n viewers for mint (viewers leave asynchronously)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + timeout * SLOW
    seen = None
    while time.monotonic() < deadline:
        status, _, raw = request(h.port, "GET", "/api/live-sessions/active", headers=headers)
        assert status == 200, status
        for s in json.loads(raw)["sessions"]:
            if s["mint_id"] == mint:
                seen = s["viewers"]
        if seen == n:
            return
        time.sleep(0.1)
    raise AssertionError(f"{mint}: {seen} viewers, expected {n}")


def assert_secret_not_logged(h, secret):
    text = h.log_text()
    assert secret not in text, "the API token appears in haven's log"
    leaked = JWT.findall(text)
    assert not leaked, f"a JWT appears in haven's log: {leaked[0][:12]}…"


fake = harness.shared_fake()


# ---- configuration: defaults, exposure check ------------------------------------------------

def test_defaults_are_loopback_and_limits():
    out = run_haven(["--print-config"])
    assert out.returncode == 0, out.stderr
    for line in ("HAVEN_LISTEN=127.0.0.1:8000", "HAVEN_API_TOKEN=", "HAVEN_INSECURE_PUBLIC=false",
                 "HAVEN_CORS_ORIGINS=", "HAVEN_MAX_BODY=65536", "HAVEN_MAX_HEADER=8192",
                 "HAVEN_MAX_SESSIONS=16", "HAVEN_MAX_VIEWERS_PER_SESSION=200",
                 "HAVEN_MAX_VIEWERS=1000", "HAVEN_START_RATE=30",
                 "HAVEN_MAX_VIEWER_MESSAGE=4096"):
        assert line in config_lines(out), (line, out.stdout)


def test_public_address_without_token_exits_78_before_binding():
    # We hold the port on loopback: had haven tried to bind 0.0.0.0 on it, it would have failed
    # with "cannot listen" (exit 1), not the configuration message.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        for args, env in (([f"--listen=0.0.0.0:{port}"], {}),
                          ([], {"HAVEN_LISTEN": f"0.0.0.0:{port}"}),
                          ([f"--listen=[::]:{port}"], {}),
                          ([f"--listen=0.0.0.0:{port}", "--insecure-public=false"],
                           {"HAVEN_INSECURE_PUBLIC": "1"})):
            started = time.monotonic()
            out = run_haven(args, env)
            took = time.monotonic() - started
            assert out.returncode == 78, (args, env, out.returncode, out.stderr)
            lines = out.stderr.strip().splitlines()
            assert len(lines) == 1, out.stderr
            assert "refusing to listen on" in lines[0] and str(port) in lines[0], lines[0]
            assert "HAVEN_API_TOKEN" in lines[0] and "--insecure-public" in lines[0], lines[0]
            assert took < 5 * SLOW, took
    # Port 0 is no port haven can announce: refused as a bad value, still exit 78.
    out = run_haven(["--listen", "0.0.0.0:0"])
    assert out.returncode == 78 and "listen" in out.stderr, out.stderr


def test_insecure_public_and_token_pass_the_config_check():
    port = free_port()
    out = run_haven([f"--listen=0.0.0.0:{port}", "--insecure-public", "--print-config"])
    assert out.returncode == 0, out.stderr
    assert "HAVEN_INSECURE_PUBLIC=true" in config_lines(out)
    assert "HAVEN_INSECURE_PUBLIC=true  # flag" in out.stdout.splitlines()
    out = run_haven(["--print-config"], {"HAVEN_LISTEN": f"0.0.0.0:{port}",
                                         "HAVEN_INSECURE_PUBLIC": "yes"})
    assert out.returncode == 0, out.stderr
    out = run_haven([f"--listen=0.0.0.0:{port}", "--print-config"], {"HAVEN_API_TOKEN": TOKEN})
    assert out.returncode == 0, out.stderr
    assert "HAVEN_API_TOKEN=***  # environment" in out.stdout.splitlines(), out.stdout
    assert TOKEN not in out.stdout + out.stderr
    # A weak token is refused without being shown; a flag cannot carry it (ps shows flags).
    out = run_haven(["--print-config"], {"HAVEN_API_TOKEN": "short-token"})
    assert out.returncode == 78 and "short-token" not in out.stderr, out.stderr
    assert "16 to 512" in out.stderr, out.stderr
    out = run_haven([f"--api-token={TOKEN}", "--print-config"])
    assert out.returncode == 78 and TOKEN not in out.stderr, out.stderr


def test_config_file_layers_and_exit_78_before_binding():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen(1)
        port = held.getsockname()[1]
        conf = os.path.join(tmp, "haven.conf")

        def write(text, mode):
            with open(conf, "w") as f:
                f.write(text)
            os.chmod(conf, mode)

        # defaults < file < environment < flags, each value's source shown by --print-config
        write(f"# test\nlisten = 127.0.0.1:{port}\nmax-sessions = 3\nmax-viewers = 5\n"
              "max-body = 2048\n", 0o644)
        out = run_haven(["--print-config", "--max-viewers=7"],
                        {"HAVEN_CONFIG": conf, "HAVEN_MAX_BODY": "4096"})
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        for line in (f"HAVEN_LISTEN=127.0.0.1:{port}  # file", "HAVEN_MAX_SESSIONS=3  # file",
                     "HAVEN_MAX_BODY=4096  # environment", "HAVEN_MAX_VIEWERS=7  # flag",
                     "HAVEN_START_RATE=30  # default", f"HAVEN_CONFIG={conf}  # environment"):
            assert line in lines, (line, out.stdout)
        # an invalid value in the file: exit 78 with one line naming file:line, key and value,
        # before binding (the port is held: binding it would fail with exit 1 instead)
        write(f"listen = 127.0.0.1:{port}\n\nidle-timeout = soon\n", 0o644)
        out = run_haven(["--config", conf])
        assert out.returncode == 78, (out.returncode, out.stderr)
        err = out.stderr.strip().splitlines()
        assert len(err) == 1, out.stderr
        assert f"{conf}:3" in err[0] and 'idle-timeout="soon"' in err[0], err[0]
        # a missing file
        out = run_haven(["--config", os.path.join(tmp, "missing.conf")])
        assert out.returncode == 78 and "cannot read config file" in out.stderr, out.stderr
        # the token: refused from a file others can read, accepted from a private one
        write(f"listen = 0.0.0.0:{port}\napi-token = {TOKEN}\n", 0o640)
        out = run_haven(["--config", conf, "--print-config"])
        assert out.returncode == 78 and TOKEN not in out.stderr, out.stderr
        assert "chmod 600" in out.stderr, out.stderr
        os.chmod(conf, 0o600)
        out = run_haven(["--config", conf, "--print-config"])
        assert out.returncode == 0, out.stderr
        assert "HAVEN_API_TOKEN=***  # file" in out.stdout.splitlines(), out.stdout
        assert TOKEN not in out.stdout + out.stderr


# ---- the API token --------------------------------------------------------------------------

def test_token_is_enforced_on_loopback_and_never_logged():
    fake.reset()
    h = Haven(BINARY, fake, env={"HAVEN_API_TOKEN": TOKEN, "HAVEN_WEB_DIR": WEB})
    try:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/api/pumpfun/live", "/api", "/api/live-sessions/active",
                     "/api/recordings"):
            status, head, raw = request(h.port, "GET", path)
            assert status == 401, (path, status)
            assert json.loads(raw) == {"detail": "Missing or invalid API token"}, raw
            assert head.get("www-authenticate") == "Bearer", head
            status, _, _ = request(h.port, "GET", path, headers=bearer)
            assert status == 200, (path, status)
        for bad in ({"Authorization": f"Bearer {TOKEN}x"},
                    {"Authorization": f"Bearer {TOKEN[:-1]}"},
                    {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}):
            status, _, _ = request(h.port, "GET", "/api/pumpfun/live", headers=bad)
            assert status == 401, (bad, status)
        # ?token= works on GET (downloads, <video src>), not on writes
        status, _, _ = request(h.port, "GET", f"/api/pumpfun/live?limit=2&token={TOKEN}")
        assert status == 200, status
        status, _, _ = request(h.port, "GET", "/api/pumpfun/live?token=wrong-token-wrong-token")
        assert status == 401, status
        status, _, _ = request(h.port, "GET", f"/api/recordings/999/file?kind=video&token={TOKEN}")
        assert status == 404, status
        status, _, _ = post(h, f"/api/live-sessions/start?token={TOKEN}", {"mint_id": "x"})
        assert status == 401, status
        status, _, body = post(h, "/api/live-sessions/start", {"mint_id": "x"}, bearer)
        assert status == 422, (status, body)
        status, _, _ = request(h.port, "DELETE", "/api/recordings/1")
        assert status == 401, status
        # a refused POST is answered before its body is looked at
        status, head, _ = post(h, "/api/live-sessions/start", b"x" * 100)
        assert status == 401 and head.get("connection") == "close", (status, head)
        # the player's files and /healthz stay open
        for path in ("/", "/js/api.js", "/healthz"):
            status, _, _ = request(h.port, "GET", path)
            assert status == 200, (path, status)
        # the viewer WebSocket: refused in plain HTTP before the upgrade, accepted with the token
        status, head, body = ws_handshake(h.port, viewer_path(MINT))
        assert status == 401 and json.loads(body) == {"detail": "Missing or invalid API token"}
        assert head.get("www-authenticate") == "Bearer", head
        status, _, _ = ws_handshake(h.port, viewer_path(MINT, "wrong-token-wrong-token"))
        assert status == 401, status
        status, _, _ = ws_handshake(h.port, viewer_path(MINT), bearer)
        assert status == 101, status
        ws = WebSocket("127.0.0.1", h.port, viewer_path(MINT, TOKEN))
        try:
            ws.recv()
            raise AssertionError("expected a close: there is no session")
        except Closed as c:
            assert c.code == 4404, (c.code, c.reason)
        finally:
            ws.sock.close()
        assert h.stop() == 0
        assert_secret_not_logged(h, TOKEN)
    finally:
        h.cleanup()


# ---- CORS and cross-origin writes -----------------------------------------------------------

def test_cors_is_off_by_default():
    fake.reset()
    h = Haven(BINARY, fake)
    try:
        evil = {"Origin": "http://evil.example"}
        status, head, _ = request(h.port, "GET", "/api/pumpfun/live", headers=evil)
        assert status == 200 and not [k for k in head if k.startswith("access-control-")], head
        status, head, _ = request(h.port, "OPTIONS", "/api/live-sessions/start",
                                  headers=dict(evil, **{"Access-Control-Request-Method": "POST"}))
        assert status == 405 and "access-control-allow-origin" not in head, (status, head)
        # A "simple" cross-origin POST would run without a preflight: refused.
        status, _, body = post(h, "/api/live-sessions/start", {"mint_id": MINT}, evil)
        assert status == 403 and "http://evil.example" in body["detail"], (status, body)
        status, _, _ = request(h.port, "DELETE", "/api/recordings/1", headers=evil)
        assert status == 403, status
        # The player's own page (same origin) and clients without Origin go on as before.
        same = {"Origin": f"http://127.0.0.1:{h.port}"}
        status, _, body = post(h, "/api/live-sessions/start", {"mint_id": "x"}, same)
        assert status == 422, (status, body)
        status, _, body = post(h, "/api/live-sessions/start", {"mint_id": "x"})
        assert status == 422, (status, body)
    finally:
        h.cleanup()


def test_cors_allow_list_and_preflight():
    fake.reset()
    allowed = "https://app.example:8443"
    h = Haven(BINARY, fake, env={"HAVEN_CORS_ORIGINS": f"{allowed}, http://localhost:3000",
                                 "HAVEN_API_TOKEN": TOKEN})
    try:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, head, _ = request(h.port, "GET", "/api/pumpfun/live",
                                  headers=dict(bearer, Origin=allowed))
        assert status == 200 and head.get("access-control-allow-origin") == allowed, head
        assert "Origin" in head.get("vary", ""), head
        assert "Retry-After" in head.get("access-control-expose-headers", ""), head
        # an error answer carries them too, so the page can read why
        status, head, _ = request(h.port, "GET", "/api/pumpfun/live", headers={"Origin": allowed})
        assert status == 401 and head.get("access-control-allow-origin") == allowed, head
        for other in ("https://app.example", "http://evil.example", "null"):
            status, head, _ = request(h.port, "GET", "/api/pumpfun/live",
                                      headers=dict(bearer, Origin=other))
            assert status == 200, status
            assert not [k for k in head if k.startswith("access-control-")], (other, head)
        # the preflight needs no token (browsers send none with it)
        pre = {"Origin": allowed, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization, content-type"}
        status, head, raw = request(h.port, "OPTIONS", "/api/live-sessions/start", headers=pre)
        assert status == 204 and raw == b"", (status, raw)
        assert head.get("access-control-allow-origin") == allowed, head
        assert "POST" in head.get("access-control-allow-methods", ""), head
        allow_headers = head.get("access-control-allow-headers", "").lower()
        assert "authorization" in allow_headers and "content-type" in allow_headers, head
        status, head, _ = request(h.port, "OPTIONS", "/api/live-sessions/start",
                                  headers=dict(pre, Origin="http://evil.example"))
        assert status != 204 and "access-control-allow-origin" not in head, (status, head)
        # an allowed origin may write (with the token)
        status, head, body = post(h, "/api/live-sessions/start", {"mint_id": "x"},
                                  dict(bearer, Origin=allowed))
        assert status == 422 and head.get("access-control-allow-origin") == allowed, body
    finally:
        h.cleanup()


# ---- request sizes --------------------------------------------------------------------------

def test_body_and_header_sizes():
    fake.reset()
    h = Haven(BINARY, fake, env={"HAVEN_MAX_BODY": "1024", "HAVEN_MAX_HEADER": "2048"})
    try:
        def body_of(size):
            b = json.dumps({"mint_id": "x", "pad": ""}).encode()
            return json.dumps({"mint_id": "x", "pad": "p" * (size - len(b))}).encode()
        status, _, body = post(h, "/api/live-sessions/start", body_of(1024))
        assert status == 422, (status, body)  # at the limit: read and validated
        status, head, body = post(h, "/api/live-sessions/start", body_of(1025))
        assert status == 413 and body == {"detail": "Request body is larger than 1024 bytes"}, body
        assert head.get("connection") == "close", head
        # headers: well under the limit is served; over it, lws closes without an answer
        status, _, _ = request(h.port, "GET", "/healthz", headers={"X-Pad": "p" * 1200})
        assert status == 200, status
        sock = socket.create_connection(("127.0.0.1", h.port), timeout=10 * SLOW)
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 4000 +
                         b"\r\n\r\n")
            try:
                answer = sock.recv(65536)
            except ConnectionResetError:
                answer = b""
            assert answer == b"", f"expected the connection closed, got {answer[:80]!r}"
        finally:
            sock.close()
        status, _, _ = request(h.port, "GET", "/healthz")
        assert status == 200, status
    finally:
        h.cleanup()


# ---- session starts per client ---------------------------------------------------------------

def test_session_start_rate_per_client():
    fake.reset()
    h = Haven(BINARY, fake, env={"HAVEN_START_RATE": "60"})  # a burst of 60, then one a second
    try:
        # Invalid starts count too (they are refused before anything else is looked at).
        for i in range(60):
            status, _, body = post(h, "/api/live-sessions/start", {"mint_id": "x"})
            assert status == 422, (i, status, body)
        status, head, body = post(h, "/api/live-sessions/start", {"mint_id": "x"})
        assert status == 429, (status, body)
        assert head.get("retry-after") == "1", head
        assert body["success"] is False and body["error"] == body["detail"], body
        assert body["error"].startswith("Too many session starts from 127.0.0.1 (limit 60 per "
                                        "minute)"), body
        # other endpoints are not limited
        status, _, _ = request(h.port, "GET", "/api/live-sessions/active")
        assert status == 200
        time.sleep(1.1)
        status, _, body = post(h, "/api/live-sessions/start", {"mint_id": "x"})
        assert status == 422, (status, body)
        status, _, _ = post(h, "/api/live-sessions/start", {"mint_id": "x"})
        assert status == 429, status
    finally:
        h.cleanup()


# ---- live sessions and viewers (fake SFU) ----------------------------------------------------

def test_session_and_viewer_limits_and_viewer_message_size():
    fake.reset()
    sfu = Sfu(width=320, height=240, fps=15)
    h = Haven(BINARY, fake, env={"HAVEN_LIVEKIT_URL": sfu.url, "HAVEN_ICE_ADDRESSES": "127.0.0.1",
                                 "HAVEN_MAX_SESSIONS": "1", "HAVEN_MAX_VIEWERS_PER_SESSION": "2",
                                 "HAVEN_MAX_VIEWERS": "3", "HAVEN_MAX_VIEWER_MESSAGE": "100",
                                 "HAVEN_API_TOKEN": TOKEN})
    viewers = []
    try:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        status, _, first = post(h, "/api/live-sessions/start", {"mint_id": MINT}, bearer)
        assert status == 200 and first["success"] is True, first
        limit = "Too many live sessions (limit 1)"
        status, head, body = post(h, "/api/live-sessions/start", {"mint_id": MINT2}, bearer)
        assert status == 503, (status, body)
        assert body == {"success": False, "error": limit, "detail": limit}, body
        # the session that exists still answers
        status, _, again = post(h, "/api/live-sessions/start", {"mint_id": MINT}, bearer)
        assert status == 200 and again["session_id"] == first["session_id"], again

        # viewers per session: 2
        for _ in range(2):
            viewers.append(WebSocket("127.0.0.1", h.port, viewer_path(MINT, TOKEN)))
        wait_viewers(h, MINT, 2, TOKEN)
        status, _, body = ws_handshake(h.port, viewer_path(MINT, TOKEN))
        assert status == 503, status
        assert json.loads(body) == {
            "detail": "Too many viewers of this stream (limit 2 per session); try again later"}
        viewers.pop().close()
        wait_viewers(h, MINT, 1, TOKEN)
        viewers.append(WebSocket("127.0.0.1", h.port, viewer_path(MINT, TOKEN)))
        wait_viewers(h, MINT, 2, TOKEN)

        # viewers in total: 3, over two sessions (stop one to start the other: limit 1)
        status, _, _ = post(h, "/api/live-sessions/stop", {"mint_id": MINT}, bearer)
        assert status == 200
        for v in viewers:
            v.sock.close()
        viewers.clear()
        status, _, second = post(h, "/api/live-sessions/start", {"mint_id": MINT2}, bearer)
        assert status == 200 and second["success"] is True, second
        for _ in range(2):
            viewers.append(WebSocket("127.0.0.1", h.port, viewer_path(MINT2, TOKEN)))
        wait_viewers(h, MINT2, 2, TOKEN)

        # a viewer's message: 100 bytes is read (and ignored), 101 closes with 1009
        v = viewers[0]
        v.send_text("x" * 100)
        v.send_text("ping")
        deadline = time.monotonic() + 10 * SLOW
        while True:
            assert time.monotonic() < deadline, "no pong after a 100-byte message"
            kind, data = v.recv()
            if kind == "text" and data == "pong":
                break
        v.send_text("y" * 101)
        code = None
        deadline = time.monotonic() + 10 * SLOW
        while code is None and time.monotonic() < deadline:
            try:
                v.recv()
            except Closed as c:
                code, reason = c.code, c.reason
        assert (code, reason) == (1009, "message too big (limit 100 bytes)"), (code, reason)
        viewers.pop(0).sock.close()
        wait_viewers(h, MINT2, 1, TOKEN)
        assert_secret_not_logged(h, TOKEN)
    finally:
        for v in viewers:
            v.sock.close()
        h.cleanup()
        sfu.stop()


def test_total_viewer_limit():
    fake.reset()
    sfu = Sfu(width=320, height=240, fps=15)
    h = Haven(BINARY, fake, env={"HAVEN_LIVEKIT_URL": sfu.url, "HAVEN_ICE_ADDRESSES": "127.0.0.1",
                                 "HAVEN_MAX_VIEWERS_PER_SESSION": "2", "HAVEN_MAX_VIEWERS": "3"})
    viewers = []
    try:
        for mint in (MINT, MINT2):
            status, _, body = post(h, "/api/live-sessions/start", {"mint_id": mint})
            assert status == 200 and body["success"] is True, body
        for mint in (MINT, MINT, MINT2):
            viewers.append(WebSocket("127.0.0.1", h.port, viewer_path(mint)))
        wait_viewers(h, MINT, 2)
        wait_viewers(h, MINT2, 1)
        status, _, body = ws_handshake(h.port, viewer_path(MINT2))
        assert status == 503, status
        assert json.loads(body) == {"detail": "Too many viewers (limit 3); try again later"}
        # a viewer of a mint without a session is not counted: it is told so after the upgrade
        status, _, _ = ws_handshake(h.port, viewer_path(ENDED))
        assert status == 101, status
        viewers.pop().close()
        wait_viewers(h, MINT2, 0)
        viewers.append(WebSocket("127.0.0.1", h.port, viewer_path(MINT2)))
        wait_viewers(h, MINT2, 1)
        text = h.log_text()
        leaked = JWT.findall(text)
        assert not leaked, f"a JWT appears in haven's log: {leaked[0][:12]}…"
    finally:
        for v in viewers:
            v.sock.close()
        h.cleanup()
        sfu.stop()


if __name__ == "__main__":
    harness.main(globals())

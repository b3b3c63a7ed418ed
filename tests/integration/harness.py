"""Helpers for haven's end-to-end tests: start the fake pump.fun API and the real haven binary
on loopback, talk HTTP to both, and report results as TAP.

Only the standard library is used. Every process started here is stopped when the test ends,
and every socket is on 127.0.0.1.
"""
import atexit
import contextlib
import glob
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FAKE = os.path.join(ROOT, "tests", "fakes", "fake_pumpfun.py")
PYTHON = sys.executable or "/usr/bin/python3"

# Mints of the fake's fixture roster (tests/data/pumpfun/currently-live.json).
MINT = "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump"   # live
MINT2 = "4odAMtm92RnFU3V3kLb9ZdJSUsraFCas1vx9CxVxpump"  # live too
MINT3 = "AKPXNJKPrDtn3pXykeGfmxXWjEJpJekPRRr5NJmfpump"  # live too
ENDED = "3db3seiWSQSmKUeNWD87dN5AcYG2mLa12FHC4D2zpump"  # in the roster, not live


def arg(i, *default):
    """The test program's i-th argument (tests/meson.build passes the built programs' paths),
    or ROOT/default... when it is run by hand without one."""
    return sys.argv[i] if len(sys.argv) > i else os.path.join(ROOT, *default)


# The haven binary under test: every test program's first argument.
BINARY = arg(1, "build", "src", "haven")

# Set by tools/run-tests.sh (the 'asan' test setup) when haven and the test tools are built with
# AddressSanitizer + UndefinedBehaviorSanitizer. Only timing and memory thresholds that the
# sanitizers legitimately change are relaxed under it (each test prints when it does); every
# functional assertion stays as it is.
SANITIZED = os.environ.get("HAVEN_TEST_SANITIZED", "") not in ("", "0")
# Waits for processes to start and stop are this much longer in a sanitized build.
SLOW = 3 if SANITIZED else 1
# Frame-rate floors of the media tests: the fake source must send SOURCE_FLOOR of its nominal
# rate, and a viewer (or a recording) get VIEWER_FLOOR of what the source really sent. The
# source's rate is a precondition, not haven's doing: the fake's encoder shares the machine's
# 2 cores with haven (and with anything else running), so it is only asked to be a real
# stream; the viewer's share of it is what is about haven. A sanitized build needs two to three
# times the CPU, so both are lower there (the tests print which apply).
SOURCE_FLOOR, VIEWER_FLOOR = (0.2, 0.6) if SANITIZED else (0.5, 0.9)
# The fake SFU's picture for the tests that do not look at its size (pass **SMALL to Sfu or
# live): a quarter of the 1280x720 default's pixels, so a quarter of the encoding (the fake's)
# and decoding and JPEG encoding (haven's) CPU. The suites run in parallel on 2 cores; what
# checks 1280x720, frame rates against it or memory per frame keeps the default.
SMALL = {"width": 640, "height": 360}
# What a child process needs to see of our environment: the sanitizer options (suppressions,
# leak detection, halting on UBSan) and GLib's allocator switch. Everything else is set per test.
PASS_ENV = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "G_SLICE", "HAVEN_TEST_SANITIZED")
SANITIZER_REPORT = re.compile(
    r"^(==\d+==ERROR: \w+Sanitizer|SUMMARY: \w+Sanitizer|.*: runtime error: )", re.M)


# Sanitizer reports found while a test ran (see note_sanitizer_report); run_tap fails the test.
# Cleanup code records them instead of raising, so that the cleanups after it still run.
_reports = []


def note_sanitizer_report(text):
    """Fails the running test (in run_tap) with this sanitizer report, without raising now."""
    _reports.append(text)


def _unreported_at_exit():
    # A report found after the last test (a haven stopped by the script's own cleanup): the
    # test program must still fail.
    if _reports:
        for text in _reports:
            for line in text.splitlines():
                print(f"# {line}", flush=True)
        sys.stdout.flush()
        os._exit(1)


atexit.register(_unreported_at_exit)


def import_debian(name):
    """Imports a module from one of Debian's python3-* packages (the test dependencies
    tools/install-deps.sh installs). meson's python3 may be another Python (pyenv's) that cannot
    see them: then the running test script starts again under Debian's /usr/bin/python3."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        debian = "/usr/bin/python3"
        if os.path.exists(debian) and \
                os.path.realpath(sys.executable) != os.path.realpath(debian):
            sys.stdout.flush()
            os.execv(debian, [debian] + sys.argv)
        raise


def base_env(extra=None):
    """PATH and the sanitizer variables, plus extra: the environment for a haven process."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env.update({k: os.environ[k] for k in PASS_ENV if k in os.environ})
    env.update(extra or {})
    return env


def sanitizer_report(text):
    """The sanitizer report in a process's output (from its first line on), or None."""
    m = SANITIZER_REPORT.search(text or "")
    if m is None:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    # A report starts with a line of '=' (ASan, LSan) or the runtime-error line (UBSan).
    banner = text.rfind("=================================================================", 0,
                        m.start())
    if banner != -1 and m.start() - banner < 200:
        start = banner
    return text[start:start + 6000]


def assert_no_sanitizer_report(text, what="haven"):
    """For a process run to completion with its output captured."""
    report = sanitizer_report(text)
    assert report is None, f"sanitizer report from {what}:\n{report}"


def report_env(report_dir):
    """Our environment with the sanitizers writing their reports to files in report_dir
    (<report_dir>/report.<pid>) instead of stderr: for instrumented programs whose stderr
    nobody reads (hv-flashbeep under the fake SFU). A no-op outside a sanitized run."""
    env = os.environ.copy()
    if SANITIZED:
        for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
            opts = env.get(var, "")
            env[var] = (opts + ":" if opts else "") + "log_path=" + os.path.join(report_dir,
                                                                                "report")
    return env


def reports_in(report_dir):
    """Texts of the sanitizer reports written to report_dir by report_env's processes."""
    out = []
    for path in sorted(glob.glob(os.path.join(report_dir, "report.*"))):
        with open(path, errors="replace") as f:
            out.append(f"{path}:\n{f.read()[:6000]}")
    return out


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A free TCP port on 127.0.0.1 for a server the test starts (haven). Picked at random
    below the kernel's ephemeral range, where no connect() takes one meanwhile (the suites run
    in parallel, with many connections); a port 0 bind gives one if none is found there."""
    import random
    high = min(_ephemeral_low(), 65536)
    for _ in range(50):
        port = random.randrange(max(1024, high - 12000), high)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=30):
    """One HTTP request on a new connection; returns (status, headers, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


class Fake:
    """The fake pump.fun API (tests/fakes/fake_pumpfun.py) in a child process."""

    def __init__(self):
        self.proc = subprocess.Popen([PYTHON, FAKE, "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"fake pump.fun did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def control(self, path, payload=None):
        body = json.dumps(payload or {}).encode()
        status, _, data = request(self.port, "POST", f"/__fake/{path}", body,
                                  {"Content-Type": "application/json"})
        if status != 200:
            raise RuntimeError(f"fake control {path} failed: {status} {data!r}")

    def fault(self, route, fault, **kw):
        self.control("fault", dict(route=route, fault=fault, **kw))

    def reset(self):
        self.control("reset")

    def roster(self, **kw):
        self.control("roster", kw)

    def stats(self):
        status, _, data = request(self.port, "GET", "/__fake/stats")
        assert status == 200
        return json.loads(data)

    def count(self, route):
        return self.stats()["requests"][route]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Haven:
    """The real haven binary, pointed at a fake, with its own database in a temp dir."""

    def __init__(self, binary, fake, env=None, args=None, wait=True):
        self.dir = tempfile.mkdtemp(prefix="haven-test-")
        self.db = os.path.join(self.dir, "haven.db")
        self.log_path = os.path.join(self.dir, "haven.log")
        self.checked = False
        # The port free_port() found can be taken before haven binds it (by another test
        # program's connection: the suites run in parallel). Then haven exits at once saying
        # so, and starts again on another port.
        for attempt in range(3):
            self.port = free_port()
            full_env = base_env({
                "HAVEN_DB": self.db,
                "HAVEN_LISTEN": f"127.0.0.1:{self.port}",
                "HAVEN_PUMPFUN_FRONTEND_API": fake.url if fake else "http://127.0.0.1:9",
                "HAVEN_PUMPFUN_LIVESTREAM_API": fake.url if fake else "http://127.0.0.1:9",
                "HAVEN_LOG_LEVEL": "debug",
            })
            full_env.update(env or {})
            self.log = open(self.log_path, "w")
            self.proc = subprocess.Popen([binary] + (args or []), env=full_env, stdout=self.log,
                                         stderr=subprocess.STDOUT)
            if not wait:
                return
            try:
                self.wait_ready()
                return
            except RuntimeError:
                taken = (self.proc.poll() is not None and "HAVEN_LISTEN" not in (env or {})
                         and "cannot listen on" in self.log_text())
                if not taken or attempt == 2:
                    raise
                self.log.close()
                self.check_sanitizers()
                self.checked = False

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haven exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                status, _, _ = request(self.port, "GET", "/healthz", timeout=2)
                if status in (200, 503):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("haven did not start listening:\n" + self.log_text())

    def get(self, path, **kw):
        return request(self.port, "GET", path, **kw)

    def get_json(self, path, expect=200):
        status, headers, data = self.get(path)
        assert status == expect, f"GET {path}: {status} {data[:300]!r}"
        return json.loads(data), headers

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("haven did not exit within %d s of %s" % (timeout * SLOW,
                                                                               sig))
        self.log.close()
        self.check_sanitizers()
        return self.proc.returncode

    def check_sanitizers(self):
        """Fails the test (see run_tap) if a sanitizer reported anything in haven's output: a
        memory error or UBSan while running, leaks at exit. Once per process; never raises."""
        if self.checked:
            return
        self.checked = True
        report = sanitizer_report(self.log_text())
        if report is not None:
            note_sanitizer_report(f"sanitizer report from haven (pid {self.proc.pid}, exit "
                                  f"{self.proc.returncode}):\n{report}")

    def cleanup(self):
        """Never raises: the cleanups after it (fakes, other processes) must still run."""
        try:
            if self.proc.poll() is None:
                if SANITIZED:
                    # Stop as in production (SIGTERM), so that LeakSanitizer checks the exit.
                    self.proc.send_signal(signal.SIGTERM)
                    try:
                        self.proc.wait(20 * SLOW)
                    except subprocess.TimeoutExpired:
                        note_sanitizer_report(f"haven (pid {self.proc.pid}) did not exit within "
                                              f"{20 * SLOW} s of SIGTERM; killed")
                self.proc.kill()
                self.proc.wait()
            self.check_sanitizers()
        finally:
            if not self.log.closed:
                self.log.close()
            shutil.rmtree(self.dir, ignore_errors=True)


def selected(tests):
    """The (name, fn) pairs HAVEN_TEST_ONLY and HAVEN_TEST_SKIP leave: each a comma-separated
    list of parts of test function names. tests/meson.build runs a long test program as
    several meson tests this way, so that its cases spread over the cores."""
    def parts(var):
        return [p.strip() for p in os.environ.get(var, "").split(",") if p.strip()]
    only, skip = parts("HAVEN_TEST_ONLY"), parts("HAVEN_TEST_SKIP")
    return [(name, fn) for name, fn in tests
            if (not only or any(p in fn.__name__ for p in only))
            and not any(p in fn.__name__ for p in skip)]


_fake = None


def shared_fake():
    """The test program's fake pump.fun API: started on first use, stopped by main()."""
    global _fake
    if _fake is None:
        _fake = Fake()
    return _fake


def main(tests, setup=None, cleanup=None):
    """A test program's main: runs `tests` (a module's globals(), whose test_* functions run in
    the order they are defined, or a list of (name, fn) pairs) as TAP after setup(), then
    cleanup() and the shared fake's stop, whatever happened; exits with the TAP status."""
    if isinstance(tests, dict):
        tests = [(name, fn) for name, fn in list(tests.items())
                 if name.startswith("test_") and callable(fn)]
    rc = 1
    try:
        if setup is not None:
            try:
                setup()
            except Exception as e:  # no test can run without it: say why, once
                print(f"Bail out! setting up failed: {e!r}", flush=True)
                for line in traceback.format_exc().splitlines():
                    print(f"# {line}", flush=True)
                sys.exit(1)
        rc = run_tap(selected(tests))
    finally:
        if cleanup is not None:
            cleanup()
        if _fake is not None:
            _fake.stop()
    sys.exit(rc)


def run_tap(tests):
    """Runs (name, fn) pairs, printing TAP. Returns the process exit status."""
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        started = time.monotonic()
        try:
            fn()
            error = None
        except Exception:  # report every failure kind, then go on with the next test
            error = traceback.format_exc()
        # Sanitizer reports from the processes this test ran (recorded by their cleanups).
        reports, _reports[:] = list(_reports), []
        if error is None and not reports:
            print(f"ok {i} - {name} ({time.monotonic() - started:.2f}s)", flush=True)
        else:
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for text in ([error] if error else []) + reports:
                for line in text.splitlines():
                    print(f"# {line}", flush=True)
    return 1 if failed else 0


class Sfu:
    """The fake LiveKit SFU (tests/fakes/livekit-sfu) in a child process, with its control API.
    Sanitizer reports of the instrumented programs it runs (hv-flashbeep) go to files, since
    nobody reads their stderr; stop() fails the test (run_tap) if there are any."""

    PATH = os.path.join(ROOT, "tests", "fakes", "livekit-sfu", "sfu.js")

    def __init__(self, codec="vp8", extra=None, width=1280, height=720, fps=30):
        self.report_dir = tempfile.mkdtemp(prefix="haven-sfu-reports-")
        self.proc = subprocess.Popen(["node", self.PATH, "--port", "0", "--codec", codec,
                                      "--width", str(width), "--height", str(height),
                                      "--fps", str(fps)] + (extra or []),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     env=report_env(self.report_dir))
        line = self.proc.stdout.readline().strip()
        if not line.startswith("LISTENING "):
            raise RuntimeError(f"fake SFU did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}"

    def control(self, path, payload=None):
        status, _, data = request(self.port, "POST", f"/__sfu/{path}",
                                  json.dumps(payload or {}).encode(),
                                  {"Content-Type": "application/json"})
        assert status == 200, (path, status, data)
        return json.loads(data)

    def stats(self):
        status, _, data = request(self.port, "GET", "/__sfu/stats")
        assert status == 200, (status, data)
        return json.loads(data)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        for text in reports_in(self.report_dir):
            note_sanitizer_report("sanitizer report from a program under the fake SFU: " + text)
        shutil.rmtree(self.report_dir, ignore_errors=True)


# ---- live sessions: what a viewer sees -------------------------------------------------------

def post(h, path, body, headers=None):
    """A JSON POST to haven; returns (status, decoded answer)."""
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    status, _, data = request(h.port, "POST", path, json.dumps(body).encode(), hdrs,
                              timeout=30 * SLOW)
    return status, json.loads(data)


def active(h, mint=MINT):
    """mint's entry in GET /api/live-sessions/active, or None."""
    body, _ = h.get_json("/api/live-sessions/active")
    return next((s for s in body["sessions"] if s["mint_id"] == mint), None)


def wait_until(pred, timeout, what):
    """Polls pred until it returns something true, and returns that; fails with `what` after
    timeout seconds (SLOW times that in a sanitized build)."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * SLOW} s waiting for {what}")
        time.sleep(0.05)


def print_log_tail(h, lines=40):
    """haven's last log lines as TAP comments: the first thing to read when a case fails."""
    try:
        for line in h.log_text().splitlines()[-lines:]:
            print(f"# haven: {line}", flush=True)
    except OSError:  # the log may already be gone; the failure itself matters
        pass


def haven_for(sfu, env=None, **kw):
    """The haven under test against the shared fake pump.fun API and sfu (None: no SFU), its
    ICE on loopback; kw as Haven's (binary: another program, e.g. a wrapper)."""
    full = {"HAVEN_ICE_ADDRESSES": "127.0.0.1"}
    if sfu is not None:
        full["HAVEN_LIVEKIT_URL"] = sfu.url
    full.update(env or {})
    return Haven(kw.pop("binary", None) or BINARY, shared_fake(), env=full, **kw)


@contextlib.contextmanager
def live(codec="vp8", env=None, sfu_extra=None, sfu_config=None, start=True, record=None,
         log_lines=40, haven_args=None, binary=None, **sfu_kw):
    """A fresh fake SFU (codec, sfu_extra, config; sfu_kw: width, height, fps) and haven (env),
    the shared fake reset, and a session of MINT started unless start is False (record: its
    record_session): yields (haven, sfu, the start answer or None). When the body fails,
    haven's last log lines are printed; haven and the SFU are stopped whatever happens."""
    fake = shared_fake()
    fake.reset()
    sfu = Sfu(codec, sfu_extra, **sfu_kw)
    h = None
    try:
        if sfu_config:
            sfu.control("config", sfu_config)
        h = haven_for(sfu, env, args=haven_args, binary=binary)
        try:
            started = None
            if start:
                req = {"mint_id": MINT}
                if record is not None:
                    req["record_session"] = record
                status, started = post(h, "/api/live-sessions/start", req)
                assert status == 200 and started["success"] is True, started
            yield h, sfu, started
        except Exception:
            print_log_tail(h, log_lines)
            raise
    finally:
        if h is not None:
            h.cleanup()
        sfu.stop()


def note_floors(fps):
    """Says which frame-rate floors apply when they are not the normal build's."""
    if SANITIZED:
        print(f"# sanitized build: frame-rate floors {SOURCE_FLOOR:.0%} of {fps} fps for the "
              f"source, {VIEWER_FLOOR:.0%} of the source for a viewer (normal build: 50%, 90%)",
              flush=True)


def jpeg_size(data):
    """(width, height) from a JPEG's SOF marker; asserts the SOI/EOI markers."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9", "not a complete JPEG"
    i = 2
    while i + 9 < len(data):
        assert data[i] == 0xFF, "broken JPEG marker chain"
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            h, w = struct.unpack(">HH", data[i + 5:i + 9])
            return w, h
        i += 2 + length
    raise AssertionError("no SOF marker")


class Viewer:
    """A viewer that reads in a thread and counts what arrives: frames (arrival time, JPEG size,
    hash), decoded PCM bytes (with the raw PCM kept when keep_pcm), and events."""

    def __init__(self, h, mint=MINT, query="", read=True, keep_pcm=False):
        from wsclient import WebSocket
        self.keep_pcm = keep_pcm
        self.pcm = bytearray()
        self.ws = WebSocket("127.0.0.1", h.port, f"/api/live-sessions/ws/live/{mint}{query}")
        self.frames = []        # (arrival time, size, hash)
        self.audio_bytes = []   # (arrival time, decoded bytes)
        self.events = []
        self.closed = None
        self.lock = threading.RLock()  # events_of() may run in a wait_for() predicate
        if read:
            self.thread = threading.Thread(target=self.run, daemon=True)
            self.thread.start()

    def run(self):
        import base64
        import hashlib
        from wsclient import Closed
        try:
            while True:
                kind, data = self.ws.recv()
                now = time.monotonic()
                with self.lock:
                    if kind == "binary":
                        self.frames.append((now, jpeg_size(data), hashlib.sha1(data).digest()))
                    elif data.startswith("audio:"):
                        pcm = base64.b64decode(data[6:])
                        self.audio_bytes.append((now, len(pcm)))
                        if self.keep_pcm:
                            self.pcm += pcm
                    else:
                        self.events.append(json.loads(data) if data.startswith("{") else data)
        except Closed as c:
            self.closed = (c.code, c.reason)
        except (OSError, ConnectionError) as e:
            self.closed = ("error", str(e))

    def rate(self, items, start, end, weight=lambda x: 1):
        with self.lock:
            n = sum(weight(x) for x in items if start <= x[0] < end)
        return n / (end - start)

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if pred(self):
                    return True
            time.sleep(0.05)
        return False

    def frames_after(self, t):
        """How many frames arrived after monotonic time t."""
        with self.lock:
            return sum(1 for f in self.frames if f[0] > t)

    def events_of(self, kind):
        with self.lock:
            return events_of(self, kind)

    def close(self):
        self.ws.close()


def events_of(v, kind):
    """The viewer's JSON events of one type."""
    return [e for e in v.events if isinstance(e, dict) and e.get("type") == kind]


def frame_counter(h, query="", read=True, mint=MINT):
    """A viewer that only counts JPEG frames (wsclient.FrameCounter)."""
    from wsclient import FrameCounter
    return FrameCounter(h.port, mint, query, read)


def session_rows(h):
    """live_sessions rows of a haven's database: (status, end_time, room, participant, error)."""
    import sqlite3
    db = sqlite3.connect(h.db)
    try:
        return db.execute("SELECT status, end_time, room_name, participant_sid, error "
                          "FROM live_sessions ORDER BY id").fetchall()
    finally:
        db.close()


def db_rows(db_path, sql, *args):
    """Rows of a query on a haven database, as dicts."""
    import sqlite3
    db = sqlite3.connect(db_path)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(sql, args)]
    finally:
        db.close()


# ---- recordings --------------------------------------------------------------------------------

def discover(path):
    """gst-discoverer-1.0's verbose report of a media file, and the duration it finds there."""
    out = subprocess.run(["gst-discoverer-1.0", "-v", path], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", text)
    assert m, text
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    return text, duration


def rss_kb(pid):
    """A process's resident set size (kB) from /proc."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0

"""Helpers for haven's end-to-end tests: start the fake pump.fun API and the real haven binary
on loopback, talk HTTP to both, and report results as TAP.

Only the standard library is used. Every process started here is stopped when the test ends,
and every socket is on 127.0.0.1.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FAKE = os.path.join(ROOT, "tests", "fakes", "fake_pumpfun.py")
PYTHON = sys.executable or "/usr/bin/python3"


def free_port():
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
        self.port = free_port()
        self.db = os.path.join(self.dir, "haven.db")
        self.log_path = os.path.join(self.dir, "haven.log")
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HAVEN_DB": self.db,
            "HAVEN_LISTEN": f"127.0.0.1:{self.port}",
            "HAVEN_PUMPFUN_FRONTEND_API": fake.url if fake else "http://127.0.0.1:9",
            "HAVEN_PUMPFUN_LIVESTREAM_API": fake.url if fake else "http://127.0.0.1:9",
            "HAVEN_LOG_LEVEL": "debug",
        }
        full_env.update(env or {})
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary] + (args or []), env=full_env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
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
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("haven did not exit within %d s of %s" % (timeout, sig))
        self.log.close()
        return self.proc.returncode

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_tap(tests):
    """Runs (name, fn) pairs, printing TAP. Returns the process exit status."""
    print(f"1..{len(tests)}", flush=True)
    failed = 0
    for i, (name, fn) in enumerate(tests, 1):
        started = time.monotonic()
        try:
            fn()
            print(f"ok {i} - {name} ({time.monotonic() - started:.2f}s)", flush=True)
        except Exception:  # report every failure kind, then go on with the next test
            failed += 1
            print(f"not ok {i} - {name}", flush=True)
            for line in traceback.format_exc().splitlines():
                print(f"# {line}", flush=True)
    return 1 if failed else 0

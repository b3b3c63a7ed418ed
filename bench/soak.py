#!/usr/bin/env python3
"""The soak's driver (see soak.sh): viewer churn, sampling, verdict and the SVG curve.

Viewers: a pool of up to 8 viewer threads; every 2-5 s one joins (reading frames and audio, half
of them at 48 kHz stereo, half at the default format) or leaves (closing its socket, sometimes
abruptly without a close frame). Every few minutes one viewer stalls (stops reading) until haven
drops it. Samples: VmRSS and the number of entries in /proc/PID/fd, every --interval seconds.
Verdict: after a 3-minute warm-up, RSS grows by less than 8 MiB from the first to the last fifth
of the samples, the fds besides one socket per connected viewer vary by at most 4, the log has
no CRITICAL/ERROR lines, and the
recording is still running.
"""
import argparse
import csv
import json
import os
import random
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from wsclient import Closed, WebSocket  # noqa: E402

WARMUP_S = 180


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def get_metrics(port):
    """GET /metrics as {sample name with labels: value}: scraped every sample, so a soak also
    runs the metrics page for its whole length."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def get_json(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


class Viewer(threading.Thread):
    def __init__(self, port, mint, query, stall_after=None):
        super().__init__(daemon=True)
        self.port, self.mint, self.query, self.stall_after = port, mint, query, stall_after
        self.stop = False
        self.frames = 0
        self.closed = None
        self.ws = None

    def run(self):
        try:
            self.ws = WebSocket("127.0.0.1", self.port,
                                f"/api/live-sessions/ws/live/{self.mint}{self.query}")
            start = time.monotonic()
            while not self.stop:
                if self.stall_after and time.monotonic() - start > self.stall_after:
                    time.sleep(0.5)  # stalled: read nothing, haven must drop us
                    continue
                kind, _ = self.ws.recv()
                if kind == "binary":
                    self.frames += 1
        except Closed as c:
            self.closed = c.code
        except OSError:
            self.closed = "socket"

    def leave(self, abrupt):
        self.stop = True
        try:
            if abrupt:
                self.ws.sock.close()  # vanish without a close frame
            else:
                self.ws.close()
        except Exception:
            pass


def svg(samples, path, title):
    """Two stacked line charts (RSS MiB, fds) over minutes, written by hand: no dependencies."""
    W, H, M = 900, 520, 60
    t = [s[0] / 60 for s in samples]
    rss = [s[1] / 1024 for s in samples]
    fd = [s[2] for s in samples]
    fd_base = [s[2] - max(s[3], 0) for s in samples]
    tmax = max(t[-1], 1e-6)

    def chart(y0, h, vals, label, color, unit):
        lo, hi = min(vals), max(vals)
        pad = max((hi - lo) * 0.2, 1.0)
        lo, hi = max(0.0, lo - pad), hi + pad
        sx = lambda v: M + (W - 2 * M) * v / tmax
        sy = lambda v: y0 + h - h * (v - lo) / (hi - lo)
        pts = " ".join(f"{sx(a):.1f},{sy(b):.1f}" for a, b in zip(t, vals))
        out = [f'<text x="{M}" y="{y0 - 8}" font-size="14" fill="#ddd">{label}</text>',
               f'<rect x="{M}" y="{y0}" width="{W - 2 * M}" height="{h}" fill="none" stroke="#555"/>',
               f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>']
        for k in range(5):
            v = lo + (hi - lo) * k / 4
            out.append(f'<text x="{M - 6}" y="{sy(v) + 4:.1f}" font-size="11" fill="#aaa" '
                       f'text-anchor="end">{v:.1f}{unit}</text>')
        wx = sx(WARMUP_S / 60)
        out.append(f'<line x1="{wx:.1f}" y1="{y0}" x2="{wx:.1f}" y2="{y0 + h}" stroke="#777" '
                   f'stroke-dasharray="4 4"/>')
        return out

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
             f'font-family="sans-serif"><rect width="100%" height="100%" fill="#111"/>',
             f'<text x="{M}" y="24" font-size="16" fill="#eee">{title}</text>']
    parts += chart(60, 170, rss, "RSS (MiB)", "#4fd1c5", "")
    parts += chart(290, 170, fd_base, "open file descriptors besides viewer sockets "
                   "(dashed line: end of warm-up)", "#b794f4", "")
    for k in range(0, int(tmax) + 1, max(1, int(tmax) // 10 or 1)):
        x = M + (W - 2 * M) * k / tmax
        parts.append(f'<text x="{x:.1f}" y="{H - 20}" font-size="11" fill="#aaa" '
                     f'text-anchor="middle">{k} min</text>')
    parts.append('</svg>')
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--mint", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--recordings", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--interval", type=float, default=10)
    ap.add_argument("--svg", required=True)
    a = ap.parse_args()
    rnd = random.Random(1)
    viewers = []
    joins = leaves = abrupt = stalls = 0
    metrics, scrapes, scrape_errors = {}, 0, 0
    samples = []
    start = time.monotonic()
    end = start + a.minutes * 60
    next_sample = start
    next_churn = start + 2
    next_stall = start + 120
    while time.monotonic() < end:
        now = time.monotonic()
        if now >= next_sample:
            try:
                act = get_json(a.port, "/api/live-sessions/active")["sessions"]
                nview = act[0]["viewers"] if act else 0
            except OSError:
                nview = -1
            samples.append((now - start, rss_kib(a.pid), fds(a.pid), nview))
            try:
                metrics = get_metrics(a.port)
                scrapes += 1
            except OSError:
                scrape_errors += 1
            next_sample += a.interval
            el = int(now - start)
            print(f"soak: {el // 60:02d}:{el % 60:02d} rss {samples[-1][1] / 1024:.1f} MiB, "
                  f"fds {samples[-1][2]}, viewers {samples[-1][3]}",
                  file=sys.stderr, flush=True)
        if now >= next_churn:
            viewers = [v for v in viewers if v.is_alive()]
            if len(viewers) < 2 or (len(viewers) < 8 and rnd.random() < 0.5):
                q = "?audio_rate=48000&audio_channels=2" if rnd.random() < 0.5 else ""
                stall = None
                if now >= next_stall:
                    stall, next_stall, stalls = 5, now + 240, stalls + 1
                v = Viewer(a.port, a.mint, q, stall)
                v.start()
                viewers.append(v)
                joins += 1
            else:
                v = viewers.pop(rnd.randrange(len(viewers)))
                ab = rnd.random() < 0.3
                v.leave(ab)
                leaves += 1
                abrupt += ab
            next_churn = now + rnd.uniform(2, 5)
        time.sleep(0.2)
    for v in viewers:
        v.leave(False)
    active = get_json(a.port, "/api/live-sessions/active")
    rec = active["sessions"][0]["recording"] if active["sessions"] else None
    with open(a.log) as f:
        log = f.read()
    # The text format's levels: CRIT, ERROR, WARN, INFO, DEBUG (docs/OPERATIONS.md "Logs").
    bad = [l for l in log.splitlines() if " CRIT " in l or " ERROR " in l]
    warnings = [l for l in log.splitlines() if " WARN " in l]
    csv_path = os.path.splitext(a.svg)[0] + ".csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["seconds", "rss_kib", "fds", "viewers"])
        w.writerows(samples)
    post = [s for s in samples if s[0] >= WARMUP_S] or samples
    k = max(1, len(post) // 5)
    first = sum(s[1] for s in post[:k]) / k
    last = sum(s[1] for s in post[-k:]) / k
    growth_mib = (last - first) / 1024
    # Each connected viewer is one socket: what must stay flat is the fds besides those.
    base = [s[2] - s[3] for s in post if s[3] >= 0]
    fd_lo, fd_hi = min(base), max(base)
    title = (f"haven soak: {a.minutes:g} min, recording on, {joins} viewer joins / {leaves} "
             f"leaves; RSS after warm-up {first / 1024:.1f} → {last / 1024:.1f} MiB, "
             f"fds besides viewer sockets {fd_lo}–{fd_hi}")
    svg(samples, a.svg, title)
    ok = (growth_mib < 8 and fd_hi - fd_lo <= 4 and not bad and rec is not None
          and rec["status"] == "recording" and scrape_errors == 0)
    print(f"soak: {a.minutes:g} min, {len(samples)} samples every {a.interval:g} s; viewers: "
          f"{joins} joined, {leaves} left ({abrupt} abruptly), {stalls} stalled")
    print(f"soak: RSS after the {WARMUP_S // 60}-min warm-up: first fifth {first / 1024:.1f} MiB, "
          f"last fifth {last / 1024:.1f} MiB (growth {growth_mib:+.2f} MiB), max "
          f"{max(s[1] for s in samples) / 1024:.1f} MiB")
    print(f"soak: open fds after warm-up, besides one socket per connected viewer: "
          f"{fd_lo}..{fd_hi} (all fds {min(s[2] for s in post)}..{max(s[2] for s in post)})")
    print(f"soak: log: {len(bad)} error line(s), {len(warnings)} warning(s)"
          + ("".join("\n  " + l for l in (bad + warnings)[:10])))
    print(f"soak: recording: {json.dumps(rec)}")
    m = f'{{mint="{a.mint}"}}'
    print(f"soak: /metrics scraped {scrapes} times ({scrape_errors} failed); at the end: "
          + ", ".join(f"{k} {metrics.get(k, float('nan')):.0f}" for k in (
              f"haven_session_video_frames_received_total{m}",
              f"haven_session_video_frames_sent_total{m}",
              'haven_viewers_culled_total{reason="audio_backlog"}',
              "haven_reconnects_total", "haven_recording_written_bytes_total",
              "process_open_fds")))
    print(f"soak: curve {a.svg}, samples {csv_path}")
    print(f"soak: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The measuring half of bench/record.sh (which starts the fakes and haven in a loopback-only
network namespace and then runs this). Standard library only; every request goes to 127.0.0.1.

Usage: record_bench.py PORT HAVEN_PID SFU_PID RECORDINGS_DIR HAVEN_LOG WORK_DIR

Phases, all on the same haven process and the same 1280x720 30 fps H.264 stream:
  a  session joined, no viewers, not recording: the cost of receiving;
  b  the same session with recording on (POST /api/live-sessions/{mint}/recording start);
  c  recording stopped again, same session (a check that the cost returns to a);
  then the MP4 that phase b wrote is decoded and re-encoded with x264 (speed-preset medium, the
  Node recorder's ffmpeg/libx264 default, and veryfast) as fast as it can go, and the CPU that
  took, per second of media, is set against recording's.
Phases a, b, c are sampled in BENCH_WINDOWS windows over BENCH_SECONDS each; each re-encode runs
BENCH_REENCODE_RUNS times; medians are reported.
"""
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

sys.stdout.reconfigure(line_buffering=True)

MINT = "7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump"
TARGET = 20.0  # recording must cost <= 1/20 of re-encoding

PORT, HAVEN_PID, SFU_PID = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
REC_DIR, HAVEN_LOG, WORK = sys.argv[4], sys.argv[5], sys.argv[6]
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
WINDOWS = int(os.environ.get("BENCH_WINDOWS", "5"))
RUNS = int(os.environ.get("BENCH_REENCODE_RUNS", "3"))
HZ = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def fail(msg):
    log("FAILED: " + msg)
    tail = haven_log_problems()
    if tail:
        log("haven log (warnings/errors):\n" + "\n".join(tail[-30:]))
    sys.exit(1)


def request(method, path, body=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=data,
                     headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


def session():
    status, body = request("GET", "/api/live-sessions/active")
    if status != 200:
        fail(f"GET /api/live-sessions/active: {status} {body}")
    for s in body.get("sessions", []):
        if s.get("mint_id") == MINT:
            return s
    return None


def cpu_seconds():
    """haven's utime + stime, all threads, in seconds."""
    with open(f"/proc/{HAVEN_PID}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # fields 14 and 15 of the full line


def thread_cpu():
    """{thread name: cpu seconds} over haven's threads (names as GStreamer sets them)."""
    out = {}
    for tid in os.listdir(f"/proc/{HAVEN_PID}/task"):
        try:
            with open(f"/proc/{HAVEN_PID}/task/{tid}/stat") as f:
                line = f.read()
        except OSError:
            continue
        name = line[line.index("(") + 1:line.rindex(")")]
        fields = line.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / HZ
    return out


def haven_alive():
    try:
        os.kill(HAVEN_PID, 0)
        return True
    except ProcessLookupError:
        return False


def haven_log_problems():
    try:
        with open(HAVEN_LOG, errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [ln for ln in lines if re.search(r"warn|error|critical|fail", ln, re.I)]


def wait_for(what, pred, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not haven_alive():
            fail(f"haven exited while waiting for {what}")
        last = session()
        if pred(last):
            return last
        time.sleep(0.2)
    fail(f"no {what} within {timeout:.0f} s; session: {json.dumps(last)}")


def sample(name):
    """CPU of haven as % of one core in WINDOWS windows of SECONDS/WINDOWS each."""
    per = SECONDS / WINDOWS
    out = []
    th0, ts0 = thread_cpu(), time.monotonic()
    for i in range(WINDOWS):
        t0, c0 = time.monotonic(), cpu_seconds()
        time.sleep(per)
        t1, c1 = time.monotonic(), cpu_seconds()
        out.append((c1 - c0) / (t1 - t0) * 100.0)
    th1, ts1 = thread_cpu(), time.monotonic()
    busy = sorted(((th1[k] - th0.get(k, 0.0)) / (ts1 - ts0) * 100, k) for k in th1)[::-1]
    log(f"phase {name}: windows " + ", ".join(f"{v:.2f}" for v in out) + " % of one core; "
        "busiest threads: " + ", ".join(f"{k} {v:.2f}%" for v, k in busy[:6] if v > 0))
    return out


def discover_seconds(path):
    out = subprocess.run(["gst-discoverer-1.0", path], capture_output=True, text=True,
                         timeout=120)
    m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", out.stdout)
    if out.returncode != 0 or not m:
        fail(f"gst-discoverer-1.0 {path}: {out.stdout[-500:]} {out.stderr[-500:]}")
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def have_element(name):
    return subprocess.run(["gst-inspect-1.0", "--exists", name]).returncode == 0


def reencode(src, preset, kbps, decoder, audio_enc, dst):
    """Decodes src and re-encodes it with x264enc at `preset`, as fast as it goes. Returns
    (cpu seconds of the child, user, sys, wall seconds)."""
    audio = ["d.audio_0", "!", "queue", "!", "opusdec", "!", "audioconvert", "!",
             "audioresample", "!"] + audio_enc + ["!", "queue", "!", "m."]
    argv = ["gst-launch-1.0", "-q", "filesrc", f"location={src}", "!", "qtdemux", "name=d",
            "d.video_0", "!", "queue", "!", "h264parse", "!", decoder, "!", "videoconvert", "!",
            "x264enc", f"speed-preset={preset}", f"bitrate={kbps}", "!", "h264parse", "!",
            "queue", "!", "mp4mux", "name=m", "!", "filesink", f"location={dst}"] + audio
    log(f"re-encode ({preset}): {' '.join(argv)}")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not os.path.exists(dst) or os.path.getsize(dst) == 0:
        fail(f"re-encode ({preset}) failed with {proc.returncode}: {err[-800:]}")
    return ru.ru_utime + ru.ru_stime, ru.ru_utime, ru.ru_stime, wall


def main():
    # --- phase a: joined, no viewers, not recording -------------------------------------------
    status, body = request("POST", "/api/live-sessions/start",
                           {"mint_id": MINT, "record_session": False})
    if status != 200 or not isinstance(body, dict) or body.get("success") is not True:
        fail(f"POST /api/live-sessions/start: {status} {body}")
    s = wait_for("video from the fake SFU",
                 lambda s: s and s["status"] == "active" and s["video"]["codec"]
                 and s["bytes_received"] > 0, 60)
    log(f"joined: video {s['video']['codec']}, audio {s['audio']['codec']}, "
        f"{s['bytes_received']} bytes received")
    b0 = s["bytes_received"]
    time.sleep(3)  # settle: ICE/DTLS done, jitter buffers full
    s = session()
    if s["bytes_received"] <= b0:
        fail("media stopped arriving before phase a")
    if s["recording"]["status"] != "off":
        fail(f"recording is {s['recording']['status']} with record_session false")
    a = sample("a (receive only)")
    s = session()
    if s["viewers"] != 0 or s["video"]["frames_decoded"] != 0:
        log(f"note: viewers {s['viewers']}, frames_decoded {s['video']['frames_decoded']} in a")

    # --- phase b: recording on --------------------------------------------------------------
    status, body = request("POST", f"/api/live-sessions/{MINT}/recording", {"action": "start"})
    if status != 200 or not isinstance(body, dict) or body.get("recording") is not True:
        fail(f"POST /api/live-sessions/{MINT}/recording start: {status} {body}")
    wait_for("recording with media in it",
             lambda s: s and s["recording"]["status"] == "recording"
             and s["recording"]["duration_seconds"] > 0, 30)
    time.sleep(2)  # settle: past the first keyframe, files open, queues steady
    b = sample("b (receive + record)")
    s = session()
    rec = s["recording"]
    if rec["status"] != "recording":
        fail(f"recording ended during phase b: {json.dumps(rec)}")
    if s["video"]["frames_decoded"] != 0:
        log(f"note: frames_decoded {s['video']['frames_decoded']} while recording (expected 0)")
    dropped = rec.get("dropped_packets", 0)

    # --- phase c: recording stopped, same session: back to (a)? -------------------------------
    status, body = request("POST", f"/api/live-sessions/{MINT}/recording", {"action": "stop"})
    if status != 200 or not isinstance(body, dict) or body.get("recording") is not False:
        fail(f"POST /api/live-sessions/{MINT}/recording stop: {status} {body}")
    wait_for("recording off", lambda s: s and s["recording"]["status"] == "off", 30)
    time.sleep(2)
    c = sample("c (receive only, after recording)")

    status, body = request("POST", "/api/live-sessions/stop", {"mint_id": MINT})
    if status != 200:
        fail(f"POST /api/live-sessions/stop: {status} {body}")
    deadline = time.monotonic() + 30
    row = None
    while time.monotonic() < deadline:
        status, body = request("GET", "/api/recordings")
        rows = body.get("recordings", []) if status == 200 else []
        if rows and rows[0]["status"] != "recording":
            row = rows[0]
            break
        time.sleep(0.2)
    if row is None or row["status"] != "finished":
        fail(f"recording did not finish: {json.dumps(row)}")
    if row["container"] != "mp4" or not row["files"]["video"]:
        fail(f"expected an MP4: {json.dumps(row)}")
    mp4 = os.path.join(REC_DIR, row["files"]["video"]["name"])

    # Quiet the machine for the re-encode: the SFU's own x264 encoder stops with it.
    try:
        os.kill(SFU_PID, signal.SIGTERM)
    except ProcessLookupError:
        pass
    time.sleep(1)

    # --- the re-encode of the same stream ------------------------------------------------------
    media_s = discover_seconds(mp4)
    video_bytes = os.path.getsize(mp4)
    kbps = max(100, round(video_bytes * 8 / media_s / 1000))
    decoder = "avdec_h264" if have_element("avdec_h264") else (
        "openh264dec" if have_element("openh264dec") else None)
    if decoder is None or not have_element("x264enc"):
        fail("need avdec_h264 (gstreamer1.0-libav) or openh264dec, and x264enc (plugins-ugly)")
    if have_element("avenc_aac"):
        audio_enc, audio_name = ["avenc_aac"], "AAC (avenc_aac)"
    else:
        audio_enc, audio_name = ["opusenc"], "Opus (opusenc)"
    runs = {"medium": [], "veryfast": []}
    for i in range(RUNS):  # alternated, so drift hits both presets alike
        for preset in runs:
            cpu, user, sys_, wall = reencode(mp4, preset, kbps, decoder, audio_enc,
                                             os.path.join(WORK, f"reencode-{preset}.mp4"))
            runs[preset].append((cpu / media_s * 100.0, wall))
            log(f"re-encode ({preset}) run {i + 1}/{RUNS}: {cpu:.2f} s CPU (user {user:.2f}, "
                f"sys {sys_:.2f}) in {wall:.2f} s wall for {media_s:.2f} s of media "
                f"= {cpu / media_s * 100.0:.1f}% of one core")
    results = {p: (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r))
               for p, r in runs.items()}
    spread = {p: (min(x[0] for x in r), max(x[0] for x in r)) for p, r in runs.items()}

    # --- the table ------------------------------------------------------------------------------
    am, bm, cm = statistics.median(a), statistics.median(b), statistics.median(c)
    rec_only = bm - am
    # Noise: half the spread of the two phases' windows, as a rough bound on b - a.
    noise = (max(a) - min(a) + max(b) - min(b)) / 2
    med, fast = results["medium"][0], results["veryfast"][0]
    problems = haven_log_problems()

    def ratio(x, y):
        return x / y if y > 0 else float("inf")

    def verdict(r):
        return "PASS" if r >= TARGET else "FAIL"

    print(f"bench: recording vs re-encoding, H.264 1280x720 30 fps from the fake SFU, "
          f"{os.cpu_count()} cores, one run; haven phases {WINDOWS} x {SECONDS / WINDOWS:.0f} s "
          f"(medians), CPU = utime+stime of /proc/PID/stat as % of one core")
    print(f"  {'phase':<52} {'CPU % of one core':>18}  windows (min-max)")
    print(f"  {'(a) joined, no viewers, not recording (receive)':<52} {am:>17.2f}%"
          f"  {min(a):.2f}-{max(a):.2f}")
    print(f"  {'(b) joined, no viewers, recording (recording-only)':<52} {bm:>17.2f}%"
          f"  {min(b):.2f}-{max(b):.2f}")
    print(f"  {'(c) recording stopped again (check: back to a?)':<52} {cm:>17.2f}%"
          f"  {min(c):.2f}-{max(c):.2f}")
    print(f"  {'(b - a) recording itself':<52} {rec_only:>17.2f}%"
          f"  window noise ~ +/-{noise:.2f}")
    print(f"  {'re-encode, x264 medium (reference: ffmpeg default)':<52} {med:>17.2f}%"
          f"  {spread['medium'][0]:.1f}-{spread['medium'][1]:.1f} over {RUNS} runs, "
          f"{media_s / results['medium'][1]:.2f}x real time")
    print(f"  {'re-encode, x264 veryfast':<52} {fast:>17.2f}%"
          f"  {spread['veryfast'][0]:.1f}-{spread['veryfast'][1]:.1f} over {RUNS} runs, "
          f"{media_s / results['veryfast'][1]:.2f}x real time")
    print(f"  re-encode = {decoder} ! videoconvert ! x264enc bitrate={kbps} + opusdec ! "
          f"{audio_name}, on the MP4 of (b), SFU stopped; CPU time / media time")
    print(f"  recorded: {media_s:.1f} s of media, {video_bytes / 1e6:.1f} MB MP4 "
          f"({kbps} kbps), {dropped} packets dropped while recording")
    print(f"  ratios (target: recording <= 1/{TARGET:.0f} of re-encoding, i.e. ratio >= "
          f"{TARGET:.0f}):")
    rows = []
    for label, enc in (("medium", med), ("veryfast", fast)):
        for rdef, rv in (("b (strict: recording-only session)", bm), ("b - a (recording itself)",
                                                                      rec_only)):
            if rv <= 0:
                print(f"    re-encode {label:<8} / {rdef:<36}: n/a (b - a <= 0: below the "
                      f"measurement noise)")
                rows.append((label, rdef, None))
                continue
            r = ratio(enc, rv)
            rows.append((label, rdef, r))
            print(f"    re-encode {label:<8} / {rdef:<36}: {r:7.1f}x  {verdict(r)}")
    if rec_only > 0 and rec_only < noise:
        print(f"    note: b - a ({rec_only:.2f}%) is within the window noise (~{noise:.2f}%); "
              f"its ratios are only a rough indication")
    print(f"  re-encode excludes receiving; (a + re-encode) / b = "
          f"{ratio(am + med, bm):.1f}x (medium), {ratio(am + fast, bm):.1f}x (veryfast)")
    if problems:
        print(f"  haven log: {len(problems)} warning/error lines, e.g.: {problems[0][:160]}")
    else:
        print("  haven log: no warnings or errors")
    strict = ratio(med, bm)
    print(f"summary: recording-only session (b) costs {bm:.2f}% of one core vs {med:.1f}% to "
          f"re-encode with x264 medium ({fast:.1f}% veryfast): {strict:.1f}x cheaper -> "
          f"{verdict(strict)} against the 1/{TARGET:.0f} target (strict definition b; "
          f"b - a = {rec_only:.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

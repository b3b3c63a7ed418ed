#!/usr/bin/env python3
"""The measuring half of bench/record.sh (which starts the fakes and haven in a loopback-only
network namespace and then runs this). Standard library only; every request goes to 127.0.0.1.

Usage: record_bench.py PORT HAVEN_PID SFU_PID RECORDINGS_DIR HAVEN_LOG WORK_DIR

Phases, all on the same haven process and the same 1280x720 30 fps H.264 stream:
  a  session joined, no viewers, not recording: the cost of receiving;
  b  the same session with recording on (POST /api/live-sessions/{mint}/recording start);
  c  recording stopped again, same session (a check that the cost returns to a);
  then the MP4 that phase b wrote is decoded and re-encoded as fast as it can go, and the CPU
  that took, per second of media, is set against recording's:
  ref  as the reference implementation (Haven Player) does: VP9 through libvpx at its "best"
       preset (cpu-used=0, CQ 20, 8 Mbit/s, libvpx "good" deadline, row-mt, threads = cores)
       into WebM with Opus audio. It runs far slower than real time, so only the first
       BENCH_REF_SECONDS (default 10) of media are encoded, BENCH_REF_RUNS times (default 2);
  x264 medium (the Node recorder's ffmpeg/libx264 default) and veryfast, on the whole file, as
       context: what a cheaper re-encoder would cost. Each runs BENCH_REENCODE_RUNS times.
Phases a, b, c are sampled in BENCH_WINDOWS windows over BENCH_SECONDS each; medians are reported.
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
REF_RUNS = int(os.environ.get("BENCH_REF_RUNS", "2"))
REF_SECONDS = float(os.environ.get("BENCH_REF_SECONDS", "10"))
# The reference implementation's encoder, as close as GStreamer's vp9enc (libvpx) gets to it.
# Haven Player's ParticipantRecorder (Haven-hvn/python-sdks livekit-rtc/livekit/rtc/recorder.py,
# video_quality "best", Haven's default) opens PyAV's libvpx-vp9 with
# {"crf": "20", "cpu-used": "0", "row-mt": "1", "bitrate": "8000000"} at 8 Mbit/s
# (webrtc_recording_service.py: video_bitrate "8M"). Everything else is the ffmpeg/libvpx default,
# which vp9enc does not always share, so those are spelt out:
#   deadline=1000000   libvpx "good" (VPX_DL_GOOD_QUALITY = 1000000 us), ffmpeg's default; in
#                      vp9enc 0 = best, 1 = realtime, any other value = good with that deadline
#   threads            PyAV sets thread_count = 0, which ffmpeg's libvpxenc turns into
#                      av_cpu_count(), so one thread per core (vp9enc's own default is 8)
#   auto-alt-ref=true arnr-maxframes=7 arnr-strength=5   libvpx's VP9 defaults (ffmpeg leaves
#                      them alone; vp9enc's defaults turn alt-ref frames and their filter off)
#   static-threshold=0 ffmpeg's default (vp9enc's is 1)
#   lag-in-frames 25, tile-columns 6, keyframe-max-dist 128: vp9enc's defaults equal libvpx's
# end-usage=cq with cq-level=20 and target-bitrate=8000000 is crf=20 with an 8 Mbit/s ceiling.
# ("bitrate" is not an ffmpeg option name, "b" is, so PyAV may well have left bit_rate at 0 and
# libvpx in pure constant-quality mode; the ceiling only matters if the output gets near it, and
# the bench logs the output's bitrate to show it does not.)
REF_THREADS = os.cpu_count() or 1
REF_VP9 = ["vp9enc", "cpu-used=0", "end-usage=cq", "cq-level=20", "target-bitrate=8000000",
           "deadline=1000000", f"threads={REF_THREADS}", "row-mt=true", "auto-alt-ref=true",
           "arnr-maxframes=7", "arnr-strength=5", "static-threshold=0"]
REF_LABEL = "re-encode as the reference implementation does (VP9 cpu-used=0 cq 20 8 Mbit/s)"
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


def discover(path):
    """(duration in seconds, video frame rate or None) of a media file."""
    out = subprocess.run(["gst-discoverer-1.0", path], capture_output=True, text=True,
                         timeout=120)
    m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", out.stdout)
    if out.returncode != 0 or not m:
        fail(f"gst-discoverer-1.0 {path}: {out.stdout[-500:]} {out.stderr[-500:]}")
    f = re.search(r"Frame rate: (\d+)/(\d+)", out.stdout)
    fps = int(f.group(1)) / int(f.group(2)) if f and int(f.group(1)) and int(f.group(2)) else None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)), fps


def buffer_pts(path, demux, pad, limit, decoder=None):
    """Presentation times (s) of the buffers on `pad` of `demux` in `path` (after `decoder` if
    one is given) that get past identity eos-after=limit + 1, which is how reencode_reference
    cuts its input: so len() of the answer is what that cut lets through."""
    argv = ["gst-launch-1.0", "-v", "filesrc", f"location={path}", "!", demux, "name=d",
            f"d.{pad}", "!"] + ([decoder, "!"] if decoder else []) + [
            "identity", f"eos-after={limit + 1}", "!", "fakesink", "silent=false"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        fail(f"{' '.join(argv)}: {out.stdout[-300:]} {out.stderr[-300:]}")
    pts = []
    for m in re.finditer(r"last-message = chain .*?pts: (\d+):(\d+):([\d.]+)", out.stdout):
        pts.append(int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)))
    return pts


def have_element(name):
    return subprocess.run(["gst-inspect-1.0", "--exists", name]).returncode == 0


def run_child(name, argv, dst):
    """Runs one gst-launch re-encode to completion. Returns (cpu seconds of the child, user,
    sys, wall seconds)."""
    log(f"re-encode ({name}): {' '.join(argv)}")
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not os.path.exists(dst) or os.path.getsize(dst) == 0:
        fail(f"re-encode ({name}) failed with {proc.returncode}: {err[-800:]}")
    return ru.ru_utime + ru.ru_stime, ru.ru_utime, ru.ru_stime, wall


def reencode(src, preset, kbps, decoder, audio_enc, dst):
    """Decodes src and re-encodes it with x264enc at `preset`, as fast as it goes."""
    audio = ["d.audio_0", "!", "queue", "!", "opusdec", "!", "audioconvert", "!",
             "audioresample", "!"] + audio_enc + ["!", "queue", "!", "m."]
    argv = ["gst-launch-1.0", "-q", "filesrc", f"location={src}", "!", "qtdemux", "name=d",
            "d.video_0", "!", "queue", "!", "h264parse", "!", decoder, "!", "videoconvert", "!",
            "x264enc", f"speed-preset={preset}", f"bitrate={kbps}", "!", "h264parse", "!",
            "queue", "!", "mp4mux", "name=m", "!", "filesink", f"location={dst}"] + audio
    return run_child(preset, argv, dst)


def reencode_reference(src, frames, audio_buffers, decoder, dst):
    """Decodes the first `frames` video frames and `audio_buffers` Opus packets of src and
    re-encodes them as the reference implementation does (REF_VP9 into WebM, Opus audio), as
    fast as it goes. identity eos-after=N lets N - 1 buffers through (GStreamer 1.22), hence
    the + 1; the caller counts what the same cut lets through (buffer_pts)."""
    audio = ["d.audio_0", "!", "queue", "!", "identity", f"eos-after={audio_buffers + 1}", "!",
             "opusdec", "!", "audioconvert", "!", "audioresample", "!", "opusenc", "!",
             "queue", "!", "m."]
    argv = ["gst-launch-1.0", "-q", "filesrc", f"location={src}", "!", "qtdemux", "name=d",
            "d.video_0", "!", "queue", "!", "identity", f"eos-after={frames + 1}", "!",
            "h264parse", "!", decoder, "!", "videoconvert", "!"] + REF_VP9 + [
            "!", "queue", "!", "webmmux", "name=m", "!", "filesink", f"location={dst}"] + audio
    return run_child("reference VP9", argv, dst)


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
    media_s, fps = discover(mp4)
    video_bytes = os.path.getsize(mp4)
    kbps = max(100, round(video_bytes * 8 / media_s / 1000))
    decoder = "avdec_h264" if have_element("avdec_h264") else (
        "openh264dec" if have_element("openh264dec") else None)
    if decoder is None or not have_element("x264enc"):
        fail("need avdec_h264 (gstreamer1.0-libav) or openh264dec, and x264enc (plugins-ugly)")
    if not all(have_element(e) for e in ("vp9enc", "vp9dec", "webmmux", "opusenc")):
        fail("need vp9enc, vp9dec, webmmux and opusenc (gstreamer1.0-plugins-good/-base) for the "
             "reference re-encode")
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

    # --- the re-encode as the reference implementation does it: the first REF_SECONDS only -----
    if fps is None:
        fps = 30.0
        log("note: no frame rate in the MP4's caps; assuming the SFU's 30 fps")
    frames = max(1, min(round(REF_SECONDS * fps), int(media_s * fps) - 1))
    span = frames / fps
    # Cut the audio at the same point: count the Opus packets that start before the last video
    # frame's end (packets are >= 2.5 ms, so this many are always enough to look at).
    v0 = buffer_pts(mp4, "qtdemux", "video_0", 1)
    apts = buffer_pts(mp4, "qtdemux", "audio_0", int(span / 0.0025) + 8)
    if not v0 or not apts:
        fail(f"could not read the first buffers of {mp4}")
    audio_buffers = max(1, sum(1 for t in apts if t < v0[0] + span))
    # The frames the encoder gets: the same cut, without the encoder. Media time is these.
    cut = buffer_pts(mp4, "qtdemux", "video_0", frames)
    if len(cut) != frames:
        log(f"note: identity eos-after={frames + 1} let {len(cut)} frames through, not {frames}; "
            f"using {len(cut)} for the media time")
    if not cut:
        fail(f"the reference cut of {mp4} let no video through")
    ref_media = len(cut) / fps
    ref_dst = os.path.join(WORK, "reencode-reference.webm")
    ref_runs = []
    for i in range(REF_RUNS):
        cpu, user, sys_, wall = reencode_reference(mp4, frames, audio_buffers, decoder, ref_dst)
        if i == 0:  # check the output once: the pipeline is the same every run
            shown = buffer_pts(ref_dst, "matroskademux", "video_0", frames + 50, "vp9dec")
            out_a = buffer_pts(ref_dst, "matroskademux", "audio_0", audio_buffers + 50)
            if not shown:
                fail("the reference re-encode wrote no video a decoder can show")
            ref_mbps = os.path.getsize(ref_dst) * 8 / ref_media / 1e6
            log(f"reference re-encode: {len(cut)} frames in ({ref_media:.2f} s at {fps:g} fps, "
                f"pts {cut[0]:.3f}-{cut[-1]:.3f} s), {len(shown)} decoded from the WebM (libvpx "
                f"may add a last alt-ref frame at the end of the stream: "
                f"{', '.join(f'{t:.3f}' for t in shown[-2:])}), {len(out_a)} Opus packets out "
                f"(last at {(max(out_a) if out_a else 0):.2f} s); "
                f"{os.path.getsize(ref_dst) / 1e6:.2f} MB = {ref_mbps:.2f} Mbit/s with audio "
                f"(the 8 Mbit/s ceiling of CQ binds only near that)")
        ref_runs.append((cpu / ref_media * 100.0, wall))
        log(f"re-encode (reference VP9) run {i + 1}/{REF_RUNS}: {cpu:.2f} s CPU (user "
            f"{user:.2f}, sys {sys_:.2f}) in {wall:.2f} s wall for {ref_media:.2f} s of media "
            f"= {cpu / ref_media * 100.0:.1f}% of one core, {ref_media / wall:.3f}x real time")
    ref = statistics.median(x[0] for x in ref_runs)
    ref_wall = statistics.median(x[1] for x in ref_runs)
    ref_xrt = ref_media / ref_wall

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

    w = len(REF_LABEL)
    print(f"bench: recording vs re-encoding, H.264 1280x720 30 fps from the fake SFU, "
          f"{os.cpu_count()} cores, one run; haven phases {WINDOWS} x {SECONDS / WINDOWS:.0f} s "
          f"(medians), CPU = utime+stime of /proc/PID/stat as % of one core")
    print(f"  {'phase':<{w}} {'CPU % of one core':>18}  windows (min-max) / runs")
    print(f"  {'(a) joined, no viewers, not recording (receive)':<{w}} {am:>17.2f}%"
          f"  {min(a):.2f}-{max(a):.2f}")
    print(f"  {'(b) joined, no viewers, recording (recording-only)':<{w}} {bm:>17.2f}%"
          f"  {min(b):.2f}-{max(b):.2f}")
    print(f"  {'(c) recording stopped again (check: back to a?)':<{w}} {cm:>17.2f}%"
          f"  {min(c):.2f}-{max(c):.2f}")
    print(f"  {'(b - a) recording itself':<{w}} {rec_only:>17.2f}%"
          f"  window noise ~ +/-{noise:.2f}")
    print(f"  {REF_LABEL:<{w}} {ref:>17.2f}%"
          f"  {min(x[0] for x in ref_runs):.1f}-{max(x[0] for x in ref_runs):.1f} over "
          f"{REF_RUNS} runs of the first {ref_media:.1f} s, {ref_xrt:.2f}x real time")
    print(f"  {'re-encode, x264 medium (ffmpeg default preset; cheaper)':<{w}} {med:>17.2f}%"
          f"  {spread['medium'][0]:.1f}-{spread['medium'][1]:.1f} over {RUNS} runs, "
          f"{media_s / results['medium'][1]:.2f}x real time")
    print(f"  {'re-encode, x264 veryfast (cheaper still)':<{w}} {fast:>17.2f}%"
          f"  {spread['veryfast'][0]:.1f}-{spread['veryfast'][1]:.1f} over {RUNS} runs, "
          f"{media_s / results['veryfast'][1]:.2f}x real time")
    print(f"  reference = {decoder} ! videoconvert ! {' '.join(REF_VP9)} ! webmmux + opusdec ! "
          f"opusenc, first {frames} frames of the MP4 of (b); x264 = {decoder} ! videoconvert ! "
          f"x264enc bitrate={kbps} ! mp4mux + opusdec ! {audio_name}, whole MP4; SFU stopped; "
          f"CPU time / media time")
    print(f"  recorded: {media_s:.1f} s of media, {video_bytes / 1e6:.1f} MB MP4 "
          f"({kbps} kbps), {dropped} packets dropped while recording")
    print(f"  ratios (target: recording <= 1/{TARGET:.0f} of re-encoding, i.e. ratio >= "
          f"{TARGET:.0f}):")
    groups = ((REF_LABEL + ":", (("reference VP9", ref),)),
              ("context, what a cheaper re-encoder would cost (x264):",
               (("x264 medium", med), ("x264 veryfast", fast))))
    for heading, encs in groups:
        print(f"    {heading}")
        for label, enc in encs:
            for rdef, rv in (("b (strict: recording-only session)", bm),
                             ("b - a (recording itself)", rec_only)):
                if rv <= 0:
                    print(f"      {label:<13} / {rdef:<36}: n/a (b - a <= 0: below the "
                          f"measurement noise)")
                    continue
                r = ratio(enc, rv)
                print(f"      {label:<13} / {rdef:<36}: {r:8.1f}x  {verdict(r)}")
    if rec_only > 0 and rec_only < noise:
        print(f"    note: b - a ({rec_only:.2f}%) is within the window noise (~{noise:.2f}%); "
              f"its ratios are only a rough indication")
    print(f"  re-encode excludes receiving; (a + re-encode) / b = "
          f"{ratio(am + ref, bm):.1f}x (reference VP9), {ratio(am + med, bm):.1f}x (x264 medium), "
          f"{ratio(am + fast, bm):.1f}x (x264 veryfast)")
    if problems:
        print(f"  haven log: {len(problems)} warning/error lines, e.g.: {problems[0][:160]}")
    else:
        print("  haven log: no warnings or errors")
    strict_ref, strict = ratio(ref, bm), ratio(med, bm)
    print(f"summary: a recording-only session (b) costs {bm:.2f}% of one core. Re-encoding as the "
          f"reference implementation does (VP9 cpu-used=0 cq 20 8 Mbit/s) costs {ref:.0f}% "
          f"({ref_xrt:.2f}x real time): {strict_ref:.1f}x cheaper -> {verdict(strict_ref)}; "
          f"re-encoding with x264 medium costs {med:.1f}% ({fast:.1f}% veryfast): {strict:.1f}x "
          f"cheaper -> {verdict(strict)}; target 1/{TARGET:.0f}, strict definition b "
          f"(b - a = {rec_only:.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""End-to-end tests of recording: the real haven binary, the fake pump.fun API and the fake
LiveKit SFU, inside the loopback-only namespace `make test` creates.

Usage: test_recording.py HAVEN HV_AVPROBE HV_FLASHBEEP. Prints TAP. What is checked is what an
archivist gets: files named <mint>_<UTC>.{mp4,webm,wav} that GStreamer's discoverer reads with
the stream's codecs and size and the recorded duration; a SIGKILLed recording that still plays
to within 2 s of the kill and is recovered and listed at the next start; audio and video
together within 40 ms from start to end on a source that flashes and beeps at once; a write
error that stops the recording but not the session; `haven record` on the command line.
"""
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BINARY, MINT, ROOT, SANITIZED, SLOW, SMALL, SOURCE_FLOOR,  # noqa: E402
                     Haven, Sfu, Viewer, active, assert_no_sanitizer_report, base_env, discover,
                     post)

AVPROBE = harness.arg(2, "build", "tests", "tools", "hv-avprobe")
FLASHBEEP = harness.arg(3, "build", "tests", "tools", "hv-flashbeep")
NAME_RE = re.compile(MINT + r"_\d{8}T\d{6}Z\.(mp4|webm|wav)$")
AV_SECONDS = int(os.environ.get("HAVEN_TEST_AV_SECONDS", "120"))

fake = harness.shared_fake()


def note_floors():
    harness.note_floors(30)


def avprobe(path):
    env = None
    if SANITIZED:
        # Its own suppressions (GStreamer's qtdemux leaks a GstCaps per Opus track), which need
        # whole stacks: see tests/sanitizers/lsan-avprobe.supp.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":fast_unwind_on_malloc=0"
        env["LSAN_OPTIONS"] = ("suppressions=" + os.path.join(ROOT, "tests", "sanitizers",
                                                              "lsan-avprobe.supp") +
                               ":print_suppressions=0")
    out = subprocess.run([AVPROBE, path], capture_output=True, text=True, timeout=300, env=env)
    assert_no_sanitizer_report(out.stderr, "hv-avprobe")
    assert out.returncode == 0 and out.stdout.strip(), f"hv-avprobe {path}: {out.stderr}"
    return json.loads(out.stdout)


def start(codec="h264", env=None, sfu_extra=None, record=True, haven_args=None, binary=None,
          **sfu_kw):
    fake.reset()
    sfu = Sfu(codec, sfu_extra, **sfu_kw)
    rec_dir = tempfile.mkdtemp(prefix="haven-rec-")
    full = {"HAVEN_RECORDINGS_DIR": rec_dir}
    full.update(env or {})
    h = harness.haven_for(sfu, full, args=haven_args, binary=binary)
    status, body = post(h, "/api/live-sessions/start", {"mint_id": MINT, "record_session": record})
    assert status == 200 and body["success"] is True and body["record_session"] is record, body
    return h, sfu, rec_dir


def wait_recording(h, timeout=20):
    """Waits until the file has media in it; returns the monotonic time recording began."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s = active(h)
        rec = s and s["recording"]
        if rec and rec["status"] == "recording" and rec["duration_seconds"] > 0:
            return time.monotonic() - rec["duration_seconds"]
        time.sleep(0.1)
    raise AssertionError(f"no recording within {timeout} s: {active(h)}")


def recordings(h, **query):
    q = "&".join(f"{k}={v}" for k, v in query.items())
    body, _ = h.get_json("/api/recordings" + (f"?{q}" if q else ""))
    return body["recordings"]


def wait_status(h, rec_id, statuses, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body, _ = h.get_json(f"/api/recordings/{rec_id}")
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"recording {rec_id} still {body['status']}")


def files_in(d):
    return sorted(os.listdir(d))


def wav_seconds(path):
    with wave.open(path) as w:
        assert w.getsampwidth() == 2 and w.getframerate() == 48000, (w.getsampwidth(),
                                                                      w.getframerate())
        return w.getnframes() / w.getframerate(), w.getnchannels()


def check_codec(codec, container, stored, env=None, seconds=12.0):
    # At 640x360 (SMALL): the file must keep the source's size, whatever it is, and a quarter
    # of the pixels is a quarter of the encoding (the fake's, and haven's for the forced MP4).
    h, sfu, d = start(codec, env=env, **SMALL)
    try:
        began = wait_recording(h)
        sent0 = sfu.stats()["video_frames_forwarded"]
        time.sleep(seconds)
        stopped = time.monotonic()
        sent = sfu.stats()["video_frames_forwarded"] - sent0
        status, _ = post(h, "/api/live-sessions/stop", {"mint_id": MINT})
        assert status == 200
        recorded = stopped - began
        rows = recordings(h)
        assert len(rows) == 1, rows
        rec = wait_status(h, rows[0]["id"], {"finished", "failed"})
        assert rec["status"] == "finished", rec
        assert rec["container"] == container and rec["stored_video_codec"] == stored, rec
        assert (rec["width"], rec["height"]) == (SMALL["width"], SMALL["height"]), rec
        names = files_in(d)
        assert len(names) == 2 and all(NAME_RE.search(n) for n in names), names
        video = os.path.join(d, rec["files"]["video"]["name"])
        audio = os.path.join(d, rec["files"]["audio"]["name"])
        assert video.endswith("." + container) and audio.endswith(".wav")
        text, duration = discover(video)
        want_video = {"H264": "H.264", "H265": "H.265", "VP8": "VP8"}[stored]
        assert want_video in text and "Opus" in text, text
        if stored == "H265":
            # The 'hvc1' sample entry (parameter sets in the sample description).
            with open(video, "rb") as f:
                assert b"hvc1" in f.read(), "no hvc1 sample entry"
        assert f"Width: {SMALL['width']}" in text and f"Height: {SMALL['height']}" in text, text
        probe = avprobe(video)
        media_s = probe["video"]["last_s"] - probe["video"]["first_s"]
        wav_s, channels = wav_seconds(audio)
        print(f"# {codec} → {container}/{stored}: recorded {recorded:.2f} s, discoverer "
              f"{duration:.2f} s, video frames {probe['video']['frames']} spanning {media_s:.2f} s, "
              f"WAV {wav_s:.2f} s ({channels} ch), {rec['bytes']} bytes, "
              f"dropped {rec['dropped_packets']}; the fake SFU sent {sent} frames meanwhile",
              flush=True)
        assert abs(duration - recorded) <= 0.05 * recorded, (duration, recorded)
        assert abs(media_s - recorded) <= 0.05 * recorded, (media_s, recorded)
        assert abs(wav_s - recorded) <= 0.05 * recorded, (wav_s, recorded)
        note_floors()
        assert sent >= SOURCE_FLOOR * 30 * recorded, f"the fake source only sent {sent} frames"
        # Every frame the SFU sent is in the file, but for up to a second before the first
        # keyframe (the file starts on one) and the last ones in flight at the stop.
        assert probe["video"]["frames"] >= 0.95 * sent - 35, (probe["video"], sent)
        # The API serves the same bytes as the file on disk.
        status, headers, data = h.get(rec["files"]["video"]["url"], timeout=60)
        with open(video, "rb") as f:
            assert status == 200 and data == f.read()
        # live_sessions.recording_path, as in the seed's schema.
        db = sqlite3.connect(h.db)
        (path,) = db.execute("SELECT recording_path FROM live_sessions WHERE mint_id = ?",
                             (MINT,)).fetchone()
        db.close()
        assert path == video, (path, video)
    finally:
        h.cleanup()
        sfu.stop()


def test_h264_mp4():
    check_codec("h264", "mp4", "H264")


def test_h265_mp4():
    # H.265 (WHIP ingress passes it through) is remuxed to MP4 as 'hvc1', not re-encoded.
    check_codec("h265", "mp4", "H265")


def test_vp8_webm():
    check_codec("vp8", "webm", "VP8")


def test_republish_continues_in_a_new_file():
    """The streamer republishes its camera and microphone (a camera switch, an ingress
    restart): no reconnect, the file ends and the recording goes on in a new one, which plays."""
    h, sfu, d = start("h264", **SMALL)
    try:
        wait_recording(h)
        time.sleep(2)
        upgrades = sfu.stats()["upgrades"]
        sfu.control("streamer/republish", {"kinds": ["video", "audio"], "delay_ms": 300})
        deadline = time.monotonic() + 20
        rows = []
        while time.monotonic() < deadline:
            rows = recordings(h)
            if len(rows) == 2 and active(h)["recording"]["duration_seconds"] > 2:
                break
            time.sleep(0.2)
        assert len(rows) == 2, rows
        assert sfu.stats()["upgrades"] == upgrades, "the republish reconnected"
        assert active(h)["reconnects"] == 0
        post(h, "/api/live-sessions/stop", {"mint_id": MINT})
        for r in rows:
            rec = wait_status(h, r["id"], {"finished", "failed"})
            assert rec["status"] == "finished", rec
            text, duration = discover(os.path.join(d, rec["files"]["video"]["name"]))
            print(f"# recording {rec['id']}: {duration:.2f} s", flush=True)
            assert "H.264" in text and duration >= 1.5, (duration, text)
    finally:
        h.cleanup()
        sfu.stop()


def test_vp8_forced_mp4():
    # The one case that re-encodes (HAVEN_RECORD_FORMAT=mp4): VP8 becomes H.264 in an MP4.
    check_codec("vp8", "mp4", "H264", env={"HAVEN_RECORD_FORMAT": "mp4"}, seconds=8.0)


def test_toggle_while_viewing():
    """POST .../recording starts and stops a recording on a running session; the viewer sees
    no gap."""
    h, sfu, d = start("h264", record=False, **SMALL)
    try:
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 15)
        assert active(h)["recording"]["status"] == "off"
        status, body = post(h, f"/api/live-sessions/{MINT}/recording", {"action": "start"})
        assert status == 200 and body["recording"] is True, body
        wait_recording(h)
        time.sleep(3)
        t0 = time.monotonic()
        time.sleep(3)
        fps = v.rate(v.frames, t0, time.monotonic())
        status, body = post(h, f"/api/live-sessions/{MINT}/recording", {"action": "stop"})
        assert status == 200 and body["recording"] is False, body
        rows = recordings(h)
        rec = wait_status(h, rows[0]["id"], {"finished", "failed"})
        assert rec["status"] == "finished" and rec["duration_seconds"] >= 5, rec
        assert active(h)["recording"]["status"] == "off"
        print(f"# viewer at {fps:.1f} fps while recording", flush=True)
        assert fps >= 20, fps
        # Stopping twice is harmless; the session goes on.
        status, body = post(h, f"/api/live-sessions/{MINT}/recording", {"action": "stop"})
        assert status == 200 and body["recording"] is False
        n = len(v.frames)
        assert v.wait_for(lambda s: len(s.frames) > n + 10, 5), "viewing stopped"
    finally:
        h.cleanup()
        sfu.stop()


def test_sigkill_recovery():
    """SIGKILL mid-recording: the .part MP4 plays to within 2 s of the kill; the next start
    renames the files, fixes the WAV header and lists the recording as recovered."""
    h, sfu, d = start("h264", **SMALL)
    h2 = None
    try:
        began = wait_recording(h)
        time.sleep(10)
        killed = time.monotonic()
        h.proc.send_signal(signal.SIGKILL)
        h.proc.wait()
        names = files_in(d)
        assert len(names) == 2 and all(n.endswith(".part") for n in names), names
        mp4 = os.path.join(d, [n for n in names if n.endswith(".mp4.part")][0])
        probe = avprobe(mp4)
        played = probe["video"]["last_s"]
        print(f"# killed after {killed - began:.2f} s of recording; the partial MP4 plays "
              f"{played:.2f} s (decoder: {probe['error'] or 'no error'})", flush=True)
        assert played >= (killed - began) - 2.0, (played, killed - began)
        # Restart on the same database and directory.
        h2 = Haven(BINARY, fake, env={"HAVEN_DB": h.db, "HAVEN_RECORDINGS_DIR": d,
                                      "HAVEN_LIVEKIT_URL": sfu.url})
        names = files_in(d)
        assert len(names) == 2 and all(NAME_RE.search(n) for n in names), names
        rows = recordings(h2)
        assert len(rows) == 1 and rows[0]["status"] == "recovered", rows
        rec = rows[0]
        assert rec["files"]["video"] and rec["files"]["audio"], rec
        wav_s, _ = wav_seconds(os.path.join(d, rec["files"]["audio"]["name"]))
        assert wav_s >= (killed - began) - 2.0, wav_s
        assert rec["duration_seconds"] >= (killed - began) - 2.0, rec
        assert recordings(h2, status="recovered")[0]["id"] == rec["id"]
        assert "recovered" in h2.log_text()
        # The session the kill interrupted is marked so too.
        db = sqlite3.connect(h.db)
        (st,) = db.execute("SELECT status FROM live_sessions").fetchone()
        db.close()
        assert st == "interrupted", st
    finally:
        if h2 is not None:
            h2.cleanup()
        h.cleanup()
        sfu.stop()


def test_av_offset():
    """A source that flashes white and beeps at every whole second: in the file, each beep
    starts within 40 ms of its flash, at the start and at the end of a long recording."""
    h, sfu, d = start("h264", sfu_extra=["--pattern", "flash", "--flashbeep", FLASHBEEP], **SMALL)
    try:
        wait_recording(h)
        time.sleep(AV_SECONDS)
        post(h, "/api/live-sessions/stop", {"mint_id": MINT})
        rec = wait_status(h, recordings(h)[0]["id"], {"finished", "failed"}, timeout=30)
        assert rec["status"] == "finished", rec
        video = avprobe(os.path.join(d, rec["files"]["video"]["name"]))
        wav = avprobe(os.path.join(d, rec["files"]["audio"]["name"]))
        # An onset needs 300 ms of quiet before it to be detected: skip the file's first 0.5 s.
        pairs = [p for p in video["pairs"] if p["flash"] >= 0.5]
        flashes = [f for f in video["flashes"] if f >= 0.5]
        n = len(flashes)
        assert n >= 0.9 * AV_SECONDS and len(pairs) >= 0.9 * n, (n, len(pairs))
        first = [p["offset_ms"] for p in pairs[:5]]
        last = [p["offset_ms"] for p in pairs[-5:]]
        # The WAV against the video's flashes: the same timeline, t=0 at the first keyframe.
        wav_off = []
        for f in flashes[:5] + flashes[-5:]:
            near = [b for b in wav["beeps"] if abs(b - f) < 0.5]
            assert near, f"no beep in the WAV near the flash at {f:.2f} s"
            wav_off.append((near[0] - f) * 1000)
        worst = max(abs(x) for x in first + last + wav_off)
        print(f"# {AV_SECONDS} s: {n} flashes; audio - video offset (ms) at the start "
              f"{[round(x, 1) for x in first]}, at the end {[round(x, 1) for x in last]}, "
              f"WAV {[round(x, 1) for x in wav_off]}; worst {worst:.1f} ms", flush=True)
        assert worst <= 40.0, worst
    finally:
        h.cleanup()
        sfu.stop()


def test_write_error_keeps_session():
    """A recording that cannot write (file size limit: EFBIG, as a full disk gives ENOSPC)
    fails with the error in the API and the database; viewing goes on."""
    limit = 3 * 1024 * 1024
    h, sfu, d = start("h264", binary="/usr/bin/prlimit",
                      haven_args=[f"--fsize={limit}", "--", BINARY])
    try:
        v = Viewer(h)
        rows = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = recordings(h)
            if rows and rows[0]["status"] == "failed":
                break
            time.sleep(0.2)
        assert rows and rows[0]["status"] == "failed", rows
        err = rows[0]["error"]
        print(f"# recording error: {err}", flush=True)
        assert err and ("large" in err or "space" in err or "write" in err.lower()), err
        s = active(h)
        assert s is not None and s["recording"]["status"] == "failed", s
        assert s["recording"]["error"] == err
        n = len(v.frames)
        assert v.wait_for(lambda x: len(x.frames) > n + 20, 10), "viewing stopped with the error"
        db = sqlite3.connect(h.db)
        (st, e) = db.execute("SELECT status, error FROM recordings").fetchone()
        db.close()
        assert st == "failed" and e == err
    finally:
        h.cleanup()
        sfu.stop()


def test_sigterm_finalizes():
    """SIGTERM with a recording running: haven exits only after the files are final."""
    h, sfu, d = start("vp8", **SMALL)
    try:
        wait_recording(h)
        time.sleep(4)
        assert h.stop(signal.SIGTERM, timeout=20) == 0
        names = files_in(d)
        assert len(names) == 2 and all(NAME_RE.search(n) for n in names), names
        db = sqlite3.connect(h.db)
        rows = db.execute("SELECT status, duration_ms FROM recordings").fetchall()
        db.close()
        assert len(rows) == 1 and rows[0][0] == "finished" and rows[0][1] >= 3000, rows
        _, duration = discover(os.path.join(d, [n for n in names if n.endswith(".webm")][0]))
        assert duration >= 3.0, duration
    finally:
        h.cleanup()
        sfu.stop()


def run_cli(sfu, out, extra, stop_after=None):
    env = base_env({"HAVEN_PUMPFUN_FRONTEND_API": fake.url,
                    "HAVEN_PUMPFUN_LIVESTREAM_API": fake.url,
                    "HAVEN_LIVEKIT_URL": sfu.url, "HAVEN_ICE_ADDRESSES": "127.0.0.1"})
    p = subprocess.Popen([BINARY, "record", MINT, "--out", out] + extra, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if stop_after is not None:
        time.sleep(stop_after)
        p.send_signal(signal.SIGINT)
    out_text, err_text = p.communicate(timeout=60 * SLOW)
    assert_no_sanitizer_report(err_text, "haven record")
    return p.returncode, err_text


def test_cli_record():
    """`haven record MINT --duration S --out DIR`, and Ctrl-C: progress on one line, clean
    files, exit 0; a bad mint is a usage error."""
    fake.reset()
    sfu = Sfu("h264", **SMALL)
    try:
        out = tempfile.mkdtemp(prefix="haven-cli-")
        t0 = time.monotonic()
        code, err = run_cli(sfu, out, ["--duration", "6"])
        took = time.monotonic() - t0
        print("# " + err.strip().replace("\n", "\n# "), flush=True)
        assert code == 0, err
        names = files_in(out)
        assert len(names) == 2 and all(NAME_RE.search(n) for n in names), names
        assert re.search(r"REC 00:00:0\d\s+[\d.]+ (kB|MB)\s+[\d.]+ Mbit/s\s+dropped \d+", err), err
        assert "duration reached" in err and took < 30
        _, duration = discover(os.path.join(out, [n for n in names if n.endswith(".mp4")][0]))
        assert 3.0 <= duration <= 6.5, duration
        out2 = tempfile.mkdtemp(prefix="haven-cli-")
        code, err = run_cli(sfu, out2, [], stop_after=6)
        assert code == 0 and "interrupted" in err, err
        names = files_in(out2)
        assert len(names) == 2 and not any(n.endswith(".part") for n in names), names
        p = subprocess.run([BINARY, "record", "not-a-mint"], capture_output=True, text=True)
        assert_no_sanitizer_report(p.stderr, "haven record")
        assert p.returncode == 64 and "not a mint id" in p.stderr, p.stderr
    finally:
        sfu.stop()


if __name__ == "__main__":
    harness.main([
        ("H.264 stream → MP4 + WAV, durations and codecs as recorded", test_h264_mp4),
        ("H.265 stream → MP4 (hvc1) + WAV, no re-encoding", test_h265_mp4),
        ("VP8 stream → WebM + WAV, no re-encoding", test_vp8_webm),
        ("republish: no reconnect, the recording goes on in a new file",
         test_republish_continues_in_a_new_file),
        ("HAVEN_RECORD_FORMAT=mp4: VP8 → H.264 MP4", test_vp8_forced_mp4),
        ("recording toggled on a viewed session", test_toggle_while_viewing),
        ("SIGKILL: partial MP4 plays, next start recovers it", test_sigkill_recovery),
        ("write error stops the recording, not the session", test_write_error_keeps_session),
        ("SIGTERM finalizes recordings", test_sigterm_finalizes),
        ("haven record on the command line", test_cli_record),
        (f"A/V offset ≤ 40 ms over {AV_SECONDS} s (flash + beep source)", test_av_offset),
    ])

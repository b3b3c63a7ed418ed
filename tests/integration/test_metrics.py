#!/usr/bin/python3
"""End-to-end tests of GET /metrics (issue 7): the real haven binary against the fake pump.fun
API and the fake LiveKit SFU, on 127.0.0.1 inside the loopback-only namespace `make test`
creates.

Usage: test_metrics.py PATH_TO_HAVEN. Prints TAP. Every page is parsed with the Prometheus
project's own parser (Debian's python3-prometheus-client, hence /usr/bin/python3), so a
malformed line fails the test. For every metric the issue names, the test checks that it
appears, then makes the matching event happen and checks that it moved: upstream requests and
errors, cache age, sessions by state, viewers, frames received/decoded/encoded/sent/dropped,
the JPEG encode and decode histograms, audio chunks culled, reconnects, recordings by state and
bytes written, RSS and open fds.
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import MINT, SLOW, haven_for, import_debian, live, post, request  # noqa: E402
from harness import frame_counter as Viewer  # noqa: E402

# The Prometheus project's own parser (Debian's python3-prometheus-client).
text_string_to_metric_families = import_debian(
    "prometheus_client.parser").text_string_to_metric_families

TOKEN = "haven-metrics-token-Z3v8Qp1LmN6x"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Every family GET /metrics must always show (labelled per-session ones have samples only while
# a session exists; the catalog age only after the first roster fetch).
FAMILIES = {
    "haven_build_info": "gauge",
    "haven_sessions": "gauge",
    "haven_viewers": "gauge",
    "haven_session_viewers": "gauge",
    "haven_session_encoded_viewers": "gauge",
    "haven_session_gop_cache_bytes": "gauge",
    "haven_session_video_frames_received": "counter",
    "haven_session_video_frames_decoded": "counter",
    "haven_session_video_frames_encoded": "counter",
    "haven_session_video_frames_sent": "counter",
    "haven_session_video_frames_dropped": "counter",
    "haven_session_audio_chunks_decoded": "counter",
    "haven_session_audio_chunks_sent": "counter",
    "haven_session_received_bytes": "counter",
    "haven_session_reconnects": "counter",
    "haven_upstream_requests": "counter",
    "haven_upstream_errors": "counter",
    "haven_sessions_started": "counter",
    "haven_sessions_ended": "counter",
    "haven_reconnects": "counter",
    "haven_viewers_culled": "counter",
    "haven_audio_chunks_culled": "counter",
    "haven_jpeg_encode_seconds": "histogram",
    "haven_video_decode_seconds": "histogram",
    "haven_catalog_age_seconds": "gauge",
    "haven_catalog_live_streams": "gauge",
    "haven_coins_cached": "gauge",
    "haven_recordings": "gauge",
    "haven_recordings_running": "gauge",
    "haven_recording_written_bytes": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_cpu_seconds": "counter",
    "process_start_time_seconds": "gauge",
}


class Page:
    """One scrape, parsed by prometheus_client: families by name, samples by (name, labels)."""

    def __init__(self, h, headers=None):
        status, head, raw = request(h.port, "GET", "/metrics", headers=headers or {})
        assert status == 200, (status, raw[:200])
        assert head.get("content-type") == CONTENT_TYPE, head
        self.text = raw.decode()
        self.families = {}
        self.samples = {}
        for fam in text_string_to_metric_families(self.text):
            assert fam.name not in self.families, f"family {fam.name} appears twice"
            self.families[fam.name] = fam
            for s in fam.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def get(self, name, **labels):
        """The sample's value, or None when the page does not have it."""
        return self.samples.get((name, tuple(sorted(labels.items()))))

    def value(self, name, **labels):
        v = self.get(name, **labels)
        assert v is not None, f"no sample {name}{labels} in /metrics"
        return v

    def series(self, name):
        return {k[1]: v for k, v in self.samples.items() if k[0] == name}


def wait_metric(h, pred, timeout, what):
    deadline = time.monotonic() + timeout * SLOW
    page = None
    while time.monotonic() < deadline:
        page = Page(h)
        if pred(page):
            return page
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout * SLOW} s")


fake = harness.shared_fake()


def start_haven(sfu=None, env=None):
    return haven_for(sfu, env)


def with_session(fn, env=None, **sfu_kw):
    with live("h264", env, fps=30, log_lines=30, **sfu_kw) as (h, sfu, _):
        fn(h, sfu)


# ---- tests -----------------------------------------------------------------------------------

def test_every_family_is_there_with_its_type():
    fake.reset()
    h = start_haven()
    try:
        page = Page(h)
        for name, kind in FAMILIES.items():
            fam = page.families.get(name)
            assert fam is not None, f"family {name} missing from /metrics"
            assert fam.type == kind, (name, fam.type, kind)
            assert fam.documentation, f"{name} has no HELP text"
        version = json.loads(h.get("/api")[2])["version"]
        assert page.value("haven_build_info", version=version) == 1
        for state in ("starting", "active", "reconnecting", "ended"):
            assert page.value("haven_sessions", state=state) == 0
        for reason in ("audio_backlog", "event_queue"):
            assert page.value("haven_viewers_culled_total", reason=reason) == 0
        for status in ("stopped", "ended", "failed"):
            assert page.value("haven_sessions_ended_total", status=status) == 0
        for state in ("recording", "finished", "failed", "recovered"):
            assert page.value("haven_recordings", state=state) == 0
        assert page.value("haven_reconnects_total") == 0
        assert page.value("haven_audio_chunks_culled_total") == 0
        assert page.value("haven_recording_written_bytes_total") == 0
        # No roster fetched yet: no age, rather than a made-up one.
        assert page.get("haven_catalog_age_seconds") is None
        assert page.value("haven_jpeg_encode_seconds_count") == 0
        assert page.value("haven_video_decode_seconds_bucket", le="+Inf") == 0
        # HEAD answers the same headers without a body; writes are refused.
        status, head, raw = request(h.port, "HEAD", "/metrics")
        assert status == 200 and raw == b"" and head.get("content-type") == CONTENT_TYPE
        status, _, _ = request(h.port, "POST", "/metrics", b"", {})
        assert status == 405
    finally:
        h.cleanup()


def test_process_rss_and_fds_match_proc():
    fake.reset()
    h = start_haven()
    try:
        page = Page(h)
        with open(f"/proc/{h.proc.pid}/status") as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{h.proc.pid}/fd"))
        got_rss = page.value("process_resident_memory_bytes")
        got_fds = page.value("process_open_fds")
        print(f"# RSS {got_rss / 1e6:.1f} MB (proc: {rss / 1e6:.1f} MB), fds {got_fds:.0f} "
              f"(proc: {fds})", flush=True)
        assert abs(got_rss - rss) <= 0.2 * rss, (got_rss, rss)
        assert abs(got_fds - fds) <= 3, (got_fds, fds)
        # Opening viewer-less connections moves the fd count.
        import socket
        held = [socket.create_connection(("127.0.0.1", h.port)) for _ in range(5)]
        try:
            wait_metric(h, lambda p: p.value("process_open_fds") >= got_fds + 5, 5,
                        "five more connections in process_open_fds")
        finally:
            for s in held:
                s.close()
        assert page.value("process_start_time_seconds") <= time.time()
        # CPU time as /proc says (ticks of 10 ms: a fresh, idle haven may have used none yet).
        with open(f"/proc/{h.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        got_cpu = Page(h).value("process_cpu_seconds_total")
        assert cpu <= got_cpu <= cpu + 0.5, (got_cpu, cpu)
    finally:
        h.cleanup()


def test_upstream_requests_errors_and_cache_age():
    fake.reset()
    h = start_haven(env={"HAVEN_CATALOG_TTL": "500ms"})
    try:
        ok = {"endpoint": "/coins/currently-live", "status": "200"}
        before = Page(h).get("haven_upstream_requests_total", **ok) or 0
        status, _, _ = request(h.port, "GET", "/api/pumpfun/live")
        assert status == 200
        page = Page(h)
        assert page.value("haven_upstream_requests_total", **ok) >= before + 1
        assert page.value("haven_catalog_live_streams") > 0
        assert page.value("haven_coins_cached") > 0
        age = page.value("haven_catalog_age_seconds")
        assert 0 <= age < 5, age
        time.sleep(1.0)
        assert Page(h).value("haven_catalog_age_seconds") >= age + 0.9
        # A coin lookup: its endpoint label has the mint replaced, so labels stay few.
        status, _, _ = request(h.port, "GET", f"/api/pumpfun/stream/{MINT}")
        series = Page(h).series("haven_upstream_requests_total")
        assert not any(MINT in dict(k).get("endpoint", "") for k in series), series
        # pump.fun answering 500: the status and an error with reason "http".
        fake.fault("currently-live", "500", count=5)
        err = {"endpoint": "/coins/currently-live", "reason": "http"}
        errors0 = Page(h).get("haven_upstream_errors_total", **err) or 0
        time.sleep(0.6)  # the roster is stale now: the next request refreshes it
        request(h.port, "GET", "/api/pumpfun/live")
        page = wait_metric(
            h, lambda p: (p.get("haven_upstream_errors_total", **err) or 0) > errors0, 10,
            "haven_upstream_errors_total{reason=http} after a 500")
        assert page.value("haven_upstream_requests_total", endpoint="/coins/currently-live",
                          status="500") >= 1
    finally:
        h.cleanup()


def test_session_frames_histograms_and_viewers_move():
    def body_fn(h, sfu):
        page = wait_metric(h, lambda p: p.get("haven_sessions", state="active") == 1, 15,
                           "session active")
        assert page.value("haven_sessions_started_total") == 1
        assert page.value("haven_viewers") == 0
        # Nobody watches: frames arrive but are not decoded.
        idle = wait_metric(
            h, lambda p: (p.get("haven_session_video_frames_received_total", mint=MINT) or 0) > 30,
            15, "frames received with no viewer")
        decoded_idle = idle.value("haven_session_video_frames_decoded_total", mint=MINT)
        v = Viewer(h, query="?audio_rate=48000&audio_channels=1")
        page = wait_metric(h, lambda p: p.get("haven_viewers") == 1, 10, "one viewer")
        assert page.value("haven_session_viewers", mint=MINT) == 1
        deadline = time.monotonic() + 15 * SLOW
        while v.frames < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert v.frames >= 20, v.frames
        a = Page(h)
        time.sleep(2.0)
        b = Page(h)
        moved = {}
        for name in ("haven_session_video_frames_received_total",
                     "haven_session_video_frames_decoded_total",
                     "haven_session_video_frames_encoded_total",
                     "haven_session_video_frames_sent_total",
                     "haven_session_audio_chunks_decoded_total",
                     "haven_session_audio_chunks_sent_total",
                     "haven_session_received_bytes_total"):
            moved[name] = b.value(name, mint=MINT) - a.value(name, mint=MINT)
            assert moved[name] > 0, f"{name} did not move while a viewer watched"
        print("# over 2 s: " + ", ".join(f"{k.replace('haven_session_', '')} +{v:.0f}"
                                          for k, v in moved.items()), flush=True)
        assert b.value("haven_session_video_frames_decoded_total", mint=MINT) > decoded_idle
        # The frames a viewer counted are the frames haven says it sent (give or take those in
        # flight between the scrape and the socket).
        assert abs(b.value("haven_session_video_frames_sent_total", mint=MINT) - v.frames) <= 5
        for hist in ("haven_jpeg_encode_seconds", "haven_video_decode_seconds"):
            n_a = a.value(f"{hist}_count")
            n_b = b.value(f"{hist}_count")
            assert n_b > n_a, f"{hist} did not move"
            assert b.value(f"{hist}_bucket", le="+Inf") == n_b
            assert b.value(f"{hist}_sum") > 0
            mean_ms = (b.value(f"{hist}_sum") - a.value(f"{hist}_sum")) / (n_b - n_a) * 1000
            print(f"# {hist}: {n_b - n_a:.0f} observations, mean {mean_ms:.2f} ms", flush=True)
            assert 0 < mean_ms < 1000, mean_ms
        for stage in ("encoder", "viewer"):
            assert b.get("haven_session_video_frames_dropped_total", mint=MINT,
                         stage=stage) is not None
        v.ws.close()
        wait_metric(h, lambda p: p.get("haven_viewers") == 0, 10, "viewer gone")
        # Stopping: the session's series go, the ended counter moves.
        status, _ = post(h, "/api/live-sessions/stop", {"mint_id": MINT})
        assert status == 200
        page = wait_metric(
            h, lambda p: p.get("haven_session_viewers", mint=MINT) is None, 10, "session gone")
        assert page.value("haven_sessions_ended_total", status="stopped") == 1
        assert page.value("haven_sessions", state="active") == 0
    with_session(body_fn, **harness.SMALL)


def test_slow_viewer_is_culled_and_counted():
    def body_fn(h, sfu):
        fast = Viewer(h)
        slow = Viewer(h, read=False)
        page = wait_metric(
            h, lambda p: (p.get("haven_viewers_culled_total", reason="audio_backlog") or 0) >= 1,
            30, "the stalled viewer culled for its audio backlog")
        chunks = page.value("haven_audio_chunks_culled_total")
        dropped = page.value("haven_session_video_frames_dropped_total", mint=MINT,
                             stage="viewer")
        print(f"# culled: {chunks:.0f} audio chunks never delivered, {dropped:.0f} frames "
              f"skipped for the slow viewer", flush=True)
        assert chunks > 50, chunks  # more than the backlog behind
        assert dropped > 0
        assert fast.closed is None and fast.frames > 0
        slow.ws.sock.close()
        fast.ws.close()
    # A second of audio: the stalled viewer's socket buffers fill up with JPEGs within a
    # few seconds, then its video is skipped and its audio falls that far behind.
    with_session(body_fn, env={"HAVEN_AUDIO_BACKLOG": "50"})


def test_reconnects_are_counted():
    def body_fn(h, sfu):
        wait_metric(h, lambda p: p.get("haven_sessions", state="active") == 1, 15, "active")
        sfu.control("drop")
        page = wait_metric(h, lambda p: p.value("haven_reconnects_total") >= 1, 15,
                           "haven_reconnects_total after a dropped signalling connection")
        assert page.value("haven_session_reconnects_total", mint=MINT) >= 1
        wait_metric(h, lambda p: p.get("haven_sessions", state="active") == 1, 20,
                    "active again")
    with_session(body_fn, **harness.SMALL)


def test_recordings_by_state_and_bytes_written():
    def body_fn(h, sfu):
        wait_metric(h, lambda p: p.get("haven_sessions", state="active") == 1, 15, "active")
        status, body = post(h, f"/api/live-sessions/{MINT}/recording", {"action": "start"})
        assert status == 200 and body["recording"] is True, body
        page = wait_metric(h, lambda p: p.value("haven_recordings", state="recording") == 1 and
                           p.value("haven_recording_written_bytes_total") > 0, 20,
                           "a running recording with bytes on disk")
        assert page.value("haven_recordings_running") == 1
        first = page.value("haven_recording_written_bytes_total")
        later = wait_metric(h, lambda p: p.value("haven_recording_written_bytes_total") >
                            first, 10, "bytes written growing")
        status, body = post(h, f"/api/live-sessions/{MINT}/recording", {"action": "stop"})
        assert status == 200
        page = wait_metric(h, lambda p: p.value("haven_recordings", state="finished") == 1, 20,
                           "the recording finished")
        assert page.value("haven_recordings", state="recording") == 0
        assert page.value("haven_recordings_running") == 0
        final = page.value("haven_recording_written_bytes_total")
        assert final >= later.value("haven_recording_written_bytes_total")
        # The counter is the files' size: what the recordings API reports for them.
        recs = json.loads(h.get("/api/recordings")[2])["recordings"]
        on_disk = sum(r["bytes"] for r in recs)
        print(f"# recording: {final:.0f} bytes counted, {on_disk} bytes in the rows", flush=True)
        assert final == on_disk, (final, on_disk)
    rec_dir = tempfile.mkdtemp(prefix="haven-metrics-rec-")
    try:
        with_session(body_fn, env={"HAVEN_RECORDINGS_DIR": rec_dir}, **harness.SMALL)
    finally:
        shutil.rmtree(rec_dir, ignore_errors=True)


def test_metrics_need_the_api_token():
    fake.reset()
    h = start_haven(env={"HAVEN_API_TOKEN": TOKEN})
    try:
        status, head, raw = request(h.port, "GET", "/metrics")
        assert status == 401 and head.get("www-authenticate") == "Bearer", (status, head)
        assert json.loads(raw) == {"detail": "Missing or invalid API token"}
        Page(h, headers={"Authorization": f"Bearer {TOKEN}"})
        status, _, _ = request(h.port, "GET", f"/metrics?token={TOKEN}")
        assert status == 200
        # /healthz stays open for load balancers.
        assert request(h.port, "GET", "/healthz")[0] == 200
    finally:
        h.cleanup()


if __name__ == "__main__":
    harness.main(globals())

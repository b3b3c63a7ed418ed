#!/usr/bin/env python3
"""What a client written from the seed guide (../shared/seed/pumpfun-integration-guide.md) relies
on (issue 14), end to end against the real haven binary, the fake pump.fun API and the fake
LiveKit SFU, on loopback only:

- `record_session: true` on a session that already runs starts its recording, and the answer
  says whether the session records;
- session lifetime: the default idle timeout leaves minutes between start and the WebSocket,
  `HAVEN_IDLE_TIMEOUT=0` means "until stopped", and a viewer that comes after an idle stop is
  told so (close 4410), not given a plain 4404;
- `stream_info` in the start answer is the whole stream object.

(`/api/pumpfun/validate` on a malformed id and `stats.top_stream` are in test_discovery.py; the
seed's own PumpFunStreamPlayer class runs in Chromium in tests/browser/seed-player.test.mjs.)

Usage: test_seed_client.py PATH_TO_HAVEN. Prints TAP.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ENDED, MINT, active, live, post, wait_until  # noqa: E402
from wsclient import Closed, WebSocket  # noqa: E402


def run(fn, env=None):
    """fn(h, sfu) against a fresh haven and SFU; haven's log tail is printed when it fails."""
    full = {"HAVEN_RECORDINGS_DIR": tempfile.mkdtemp(prefix="haven-rec-")}
    full.update(env or {})
    with live("vp8", full, start=False, **harness.SMALL) as (h, sfu, _):
        fn(h, sfu)


def close_of(h, mint):
    """Opens a viewer WebSocket and returns (code, reason) of the close haven sends at once."""
    ws = WebSocket("127.0.0.1", h.port, f"/api/live-sessions/ws/live/{mint}")
    try:
        msg = ws.recv()
        raise AssertionError(f"expected a close, got {msg!r}")
    except Closed as c:
        return c.code, c.reason
    finally:
        ws.close()


def start(h, record=None):
    body = {"mint_id": MINT}
    if record is not None:
        body["record_session"] = record
    status, answer = post(h, "/api/live-sessions/start", body)
    assert status == 200 and answer["success"] is True, (status, answer)
    return answer


# ---- record_session on a session that already runs -------------------------------------------

def test_record_session_true_on_a_running_session_starts_its_recording():
    def body(h, sfu):
        first = start(h)
        assert first["record_session"] is False, first
        assert active(h)["recording"]["status"] == "off"
        # The same mint again, now asking for a recording: same session, and it records.
        again = start(h, record=True)
        assert again["session_id"] == first["session_id"], (first, again)
        assert again["record_session"] is True, again
        wait_until(lambda: active(h)["recording"]["status"] == "recording"
                   and active(h)["recording"]["bytes"] > 0, 20, "the recording to be written")
        rows, _ = h.get_json(f"/api/recordings?mint_id={MINT}")
        assert len(rows["recordings"]) == 1 and rows["recordings"][0]["status"] == "recording", \
            rows
        # Asking without record_session (or with false) leaves the recording alone, and the
        # answer still says the session records.
        for rec in (None, False):
            third = start(h, record=rec)
            assert third["record_session"] is True and third["session_id"] == first["session_id"]
        assert active(h)["recording"]["status"] == "recording"
        rows, _ = h.get_json(f"/api/recordings?mint_id={MINT}")
        assert len(rows["recordings"]) == 1, rows
    run(body)


# ---- session lifetime -------------------------------------------------------------------------

def test_default_idle_timeout_leaves_minutes_between_start_and_websocket():
    def body(h, sfu):
        started = start(h)
        # The guide's flow: start with curl, open the WebSocket "later": the session waits
        # minutes for its first viewer, who then gets media.
        # haven says when it would stop the session: 300 s by default.
        wait_until(lambda: "stopping in" in h.log_text(), 5, "the idle timer's log line")
        assert "no viewer and no recording: stopping in 300 s" in h.log_text()
        time.sleep(5)
        a = active(h)
        assert a is not None and a["session_id"] == started["session_id"], a
        v = harness.Viewer(h, MINT)
        assert v.wait_for(lambda s: len(s.frames) > 0, 15), "no frame for the late viewer"
        v.ws.close()
    run(body)


def test_idle_timeout_zero_runs_until_stopped_and_4404_after_a_stop():
    def body(h, sfu):
        started = start(h)
        v = harness.Viewer(h, MINT)
        assert v.wait_for(lambda s: len(s.frames) > 0, 15)
        v.ws.close()
        # No viewer, no recording, HAVEN_IDLE_TIMEOUT=0: it runs until stopped.
        time.sleep(4)
        a = active(h)
        assert a is not None and a["session_id"] == started["session_id"], a
        status, _ = post(h, "/api/live-sessions/stop", {"mint_id": MINT})
        assert status == 200
        # Stopped by a client, not for idleness: the plain 4404.
        code, reason = close_of(h, MINT)
        assert code == 4404 and MINT in reason, (code, reason)
    run(body, env={"HAVEN_IDLE_TIMEOUT": "0"})


def test_a_viewer_after_an_idle_stop_is_told_why():
    def body(h, sfu):
        start(h, record=True)
        # A recording keeps the session alive without viewers.
        time.sleep(2.5)
        assert active(h) is not None, "a recording session was stopped as idle"
        status, answer = post(h, f"/api/live-sessions/{MINT}/recording", {"action": "stop"})
        assert status == 200 and answer["recording"] is False, answer
        # Now neither a viewer nor a recording: it stops after HAVEN_IDLE_TIMEOUT.
        wait_until(lambda: active(h) is None, 10, "the idle stop")
        code, reason = close_of(h, MINT)
        assert code == 4410, (code, reason)
        assert "idle timeout" in reason and "start it again" in reason, reason
        assert "without viewers or a recording" in reason, reason
        # A mint that never had a session still gets 4404.
        code, reason = close_of(h, ENDED)
        assert code == 4404 and ENDED in reason, (code, reason)
        # Starting it again makes it watchable again.
        start(h)
        v = harness.Viewer(h, MINT)
        assert v.wait_for(lambda s: len(s.frames) > 0, 15), "no frame after starting it again"
        assert v.closed is None
        v.ws.close()
        # That session stopped by a client: the old idle stop is not its story any more.
        time.sleep(0.5)
        status, _ = post(h, "/api/live-sessions/stop", {"mint_id": MINT})
        assert status == 200
        code, reason = close_of(h, MINT)
        assert code == 4404 and MINT in reason, (code, reason)
    run(body, env={"HAVEN_IDLE_TIMEOUT": "1500ms"})


# ---- full objects -----------------------------------------------------------------------------

def test_stream_info_is_the_whole_stream_object():
    def body(h, sfu):
        stream, _ = h.get_json(f"/api/pumpfun/stream/{MINT}")
        for answer in (start(h), start(h)):   # a new session and the running one
            info = answer["stream_info"]
            assert set(info) == set(stream), set(info) ^ set(stream)
            for key in ("mint_id", "name", "symbol", "num_participants", "market_cap",
                        "usd_market_cap", "thumbnail", "image_uri", "creator", "nsfw"):
                assert info[key] == stream[key], (key, info[key], stream[key])
            assert isinstance(info["usd_market_cap"], (int, float)) and info["thumbnail"]
    run(body)


if __name__ == "__main__":
    harness.main(globals())

#!/usr/bin/env python3
"""End-to-end tests of haven against livekit-server's behaviours (issue 13): the real haven
binary, the fake pump.fun API and the fake LiveKit SFU, which reproduces each behaviour of
Appendix A of the LiveKit subscriber-protocol notes, so that a test fails when haven gets one
wrong:

* the whole codec table offered on every video m-line, VP8 first, whatever the track carries
  (A.12): VP8, H.264, VP9 and H.265 tracks all play at the source's rate;
* an H.264 answer keeps profile-level-id (A.13: the fake refuses the payload type otherwise);
* AV1: a VP8 backup plays, an AV1-only track is reported as unsupported;
* republishing (a camera switch, an ingress restart) costs no signalling reconnect;
* camera + screen share: one picture; microphone + screen audio: mixed; a guest on stage never
  replaces the host;
* a dropped connection reconnects with LiveKit's refresh token (no pump.fun join); a refused one
  falls back to pump.fun;
* a room of 30,000 participants (A.14); offers without media; a burst of local candidates; TURN
  servers that need TLS.

Usage: test_conformance.py PATH_TO_HAVEN. Prints TAP. Loopback only.
"""
import array
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (SANITIZED, SMALL, SOURCE_FLOOR, VIEWER_FLOOR, Viewer,  # noqa: E402
                     active, events_of, live, rss_kb)

FPS = 30

# livekit-server's video table in its order, each codec followed by its RTX (Appendix A.12).
SERVER_VIDEO_ORDER = ["96", "97", "98", "99", "100", "101", "125", "126", "108", "109", "123",
                      "124", "39", "40", "106", "107", "35", "36", "116", "117"]
# What the answer must keep for each publisher codec.
ANSWER_PT = {"vp8": "96", "h264": "108", "vp9": "98", "h265": "116"}

fake = harness.shared_fake()


def with_session(fn, codec="vp8", env=None, sfu_extra=None, sfu_config=None, **sfu_kw):
    with live(codec, env, sfu_extra, sfu_config, fps=FPS, **sfu_kw,
              log_lines=int(os.environ.get("HAVEN_TEST_LOG_LINES", "60"))) as (h, sfu, _):
        fn(h, sfu)


def media_lines(sdp, kind):
    """[(formats, {pt: fmtp}, attributes)] of the SDP's m-lines of one kind."""
    out = []
    cur = None
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if line.startswith("m="):
            parts = line[2:].split()
            cur = (parts[3:], {}, []) if parts[0] == kind else None
            if cur is not None:
                out.append(cur)
        elif cur is not None and line.startswith("a="):
            cur[2].append(line[2:])
            if line.startswith("a=fmtp:"):
                pt, _, params = line[7:].partition(" ")
                cur[1][pt] = params
    return out


def measure(v, sfu, seconds=5.0):
    """(viewer fps, source fps, frame sizes) over the next few seconds."""
    time.sleep(1.0)  # let the decoder settle after the first keyframe
    t0 = time.monotonic()
    sent0 = sfu.stats()["video_frames_forwarded"]
    time.sleep(seconds)
    sent1 = sfu.stats()["video_frames_forwarded"]
    t1 = time.monotonic()
    with v.lock:
        sizes = {f[1] for f in v.frames if t0 <= f[0] < t1}
    return v.rate(v.frames, t0, t1), (sent1 - sent0) / (t1 - t0), sizes


def check_rates(codec, fps, source_fps):
    print(f"# {codec}: viewer {fps:.1f} fps of a {source_fps:.1f} fps source (nominal {FPS})",
          flush=True)
    if SANITIZED:
        print(f"# sanitized build: floors {SOURCE_FLOOR:.0%} / {VIEWER_FLOOR:.0%} (normal build: "
              "50%, 90%)", flush=True)
    assert source_fps >= SOURCE_FLOOR * FPS, f"the fake source only sent {source_fps:.1f} fps"
    assert fps >= VIEWER_FLOOR * source_fps, \
        f"{fps:.1f} fps < {VIEWER_FLOOR:.0%} of the source's {source_fps:.1f}"


# ---- codecs -----------------------------------------------------------------------------------

def check_codec(codec):
    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 0, 20), f"no {codec} frame within 20 s"
        st = sfu.stats()
        offered = media_lines(st["last_offer"]["sdp"], "video")
        assert offered, "no video m-line offered"
        assert offered[0][0] == SERVER_VIDEO_ORDER, f"offer order {offered[0][0]}"
        answered = media_lines(st["last_answer"]["sdp"], "video")
        assert answered[0][0][0] == ANSWER_PT[codec], f"answer kept {answered[0][0]}"
        if codec == "h264":
            fmtp = answered[0][1].get("108", "")
            assert "profile-level-id=42e01f" in fmtp, f"H.264 answer fmtp: {fmtp!r}"
            assert st.get("h264_answers_without_plid", 0) == 0
        fps, source_fps, sizes = measure(v, sfu)
        assert sizes == {(1280, 720)}, sizes
        check_rates(codec, fps, source_fps)
        a = active(h)
        assert a["video"]["codec"] == codec.upper(), a["video"]
        assert a["video"]["source"] == "camera" and a["video"]["unsupported"] is None, a["video"]
        v.ws.close()
    with_session(body, codec=codec, sfu_extra=["--codec", codec])


def test_vp8_track_in_the_full_codec_table():
    check_codec("vp8")


def test_h264_track_in_the_full_codec_table_keeps_profile_level_id():
    check_codec("h264")


def test_vp9_track_in_the_full_codec_table():
    check_codec("vp9")


def test_h265_track_in_the_full_codec_table():
    check_codec("h265")


def test_av1_with_a_vp8_backup_plays_and_av1_only_is_reported():
    def backup(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 20), "the VP8 backup did not play"
        a = active(h)
        assert a["video"]["codec"] == "VP8" and a["video"]["unsupported"] is None, a["video"]
        assert not events_of(v, "unsupported_codec"), v.events
        v.ws.close()
    with_session(backup, codec="vp8", sfu_extra=["--codec", "av1"], **SMALL)

    def only(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: events_of(s, "unsupported_codec"), 15), v.events
        ev = events_of(v, "unsupported_codec")[0]
        assert ev["kind"] == "video" and "AV1" in ev["reason"], ev
        a = active(h)
        assert a["video"]["unsupported"] and "AV1" in a["video"]["unsupported"], a["video"]
        # Audio still plays.
        assert v.wait_for(lambda s: len(s.audio_bytes) > 20, 10), "no audio"
        assert not v.frames
        v.ws.close()
    with_session(only, codec="vp8", sfu_extra=["--codec", "av1-only"], **SMALL)


# ---- republishing and tracks -------------------------------------------------------------------

def test_republish_brings_video_back_within_3s_without_a_reconnect():
    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 20)
        upgrades = sfu.stats()["upgrades"]
        joins = fake.count("join")
        for kinds in (["video"], ["video", "audio"]):
            at = time.monotonic()
            sfu.control("streamer/republish", {"kinds": kinds, "delay_ms": 300})
            assert v.wait_for(lambda s: any(f[0] > at + 0.4 for f in s.frames), 3.0 + 0.3), \
                f"no video within 3 s of the republish of {kinds}"
            back = min(f[0] for f in v.frames if f[0] > at + 0.4) - (at + 0.3)
            print(f"# republish {kinds}: video back {back * 1000:.0f} ms after the new tracks",
                  flush=True)
        st = sfu.stats()
        assert st["republishes"] == 2, st["republishes"]
        assert st["upgrades"] == upgrades, "a republish reconnected the signalling connection"
        assert fake.count("join") == joins, "a republish asked pump.fun for a token"
        assert not events_of(v, "reconnecting"), v.events
        assert active(h)["reconnects"] == 0
        # Audio came back too.
        n = len(v.audio_bytes)
        assert v.wait_for(lambda s: len(s.audio_bytes) > n + 20, 5), "no audio after republish"
        v.ws.close()
    with_session(body, codec="h264", sfu_extra=["--codec", "h264"], **SMALL)


def test_screen_share_is_the_one_picture_and_camera_comes_back():
    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 20)
        assert active(h)["video"]["source"] == "camera"
        sfu.control("streamer/screen", {"on": True, "audio": False})
        at = time.monotonic()
        assert v.wait_for(lambda s: any(f[0] > at and f[1] == (640, 360) for f in s.frames),
                          10), "the screen share never showed"
        first = min(f[0] for f in v.frames if f[0] > at and f[1] == (640, 360))
        time.sleep(3)
        with v.lock:
            after = [f[1] for f in v.frames if f[0] > first + 0.5]
        # One source: no camera frame once the screen share is on (no flicker between them).
        assert after and set(after) == {(640, 360)}, set(after)
        a = active(h)
        assert a["video"]["source"] == "screen_share", a["video"]
        # Only one video track is received: the camera was unsubscribed.
        subs = sfu.stats()["subscriptions"]
        assert any(not e["subscribe"] for e in subs), subs
        sfu.control("streamer/screen", {"on": False})
        at = time.monotonic()
        assert v.wait_for(lambda s: any(f[0] > at and f[1] == (1280, 720) for f in s.frames),
                          10), "the camera did not come back"
        assert active(h)["video"]["source"] == "camera"
        v.ws.close()
    with_session(body, codec="vp8")


def goertzel(samples, freq, rate=48000):
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + coeff * s1 - s2
        s2, s1 = s1, s0
    return (s1 * s1 + s2 * s2 - coeff * s1 * s2) / (len(samples) ** 2)


def test_two_audio_tracks_are_mixed_not_interleaved():
    def body(h, sfu):
        v = Viewer(h, query="?audio_rate=48000&audio_channels=2", keep_pcm=True)
        assert v.wait_for(lambda s: len(s.audio_bytes) > 50, 20)
        sfu.control("streamer/screen", {"on": True, "audio": True})
        assert v.wait_for(lambda s: active(h)["audio"]["tracks"] == 2, 10), active(h)["audio"]
        time.sleep(2)
        with v.lock:
            v.pcm.clear()
        t0 = time.monotonic()
        time.sleep(3)
        t1 = time.monotonic()
        with v.lock:
            pcm = bytes(v.pcm)
        rate = len(pcm) / 4 / (t1 - t0)
        print(f"# two audio tracks: {rate:.0f} Hz of PCM (announced 48000)", flush=True)
        assert abs(rate - 48000) <= 0.03 * 48000, rate
        left = array.array("h", pcm)[0::2]
        # Every 20 ms window holds both tones: mixed, not chunks of one then the other.
        weak = 0
        for w in range(0, min(len(left), 48000) - 960, 960):
            win = [x / 32768 for x in left[w:w + 960]]
            p440, p1250, p800 = (goertzel(win, f) for f in (440, 1250, 800))
            if not (p440 > 20 * p800 and p1250 > 20 * p800):
                weak += 1
        print(f"# windows missing a tone: {weak} of {min(len(left), 48000) // 960}", flush=True)
        assert weak <= 2, f"{weak} windows miss one of the two tones"
        v.ws.close()
    with_session(body, codec="vp8", **SMALL)


def test_a_guest_on_stage_never_replaces_the_host():
    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 20)
        host = active(h)["streamer"]
        sfu.control("guest/join", {"identity": "guest-1a2b3c4d", "width": 1920, "height": 1080})
        time.sleep(3)
        assert active(h)["streamer"] == host
        # The host switches cameras meanwhile: still the host.
        sfu.control("streamer/republish", {"kinds": ["video"], "delay_ms": 300})
        at = time.monotonic()
        assert v.wait_for(lambda s: any(f[0] > at + 0.4 for f in s.frames), 5)
        time.sleep(1)
        with v.lock:
            sizes = {f[1] for f in v.frames}
        assert sizes == {(1280, 720)}, sizes
        assert active(h)["streamer"] == host
        guest_subs = [e for e in sfu.stats()["subscriptions"]
                      if e["subscribe"] and any(t in guest_tracks(sfu) for t in e["track_sids"])]
        assert not guest_subs, guest_subs
        v.ws.close()
    with_session(body, codec="vp8")


def guest_tracks(sfu):
    out = set()
    for room in sfu.stats().get("rooms", []):
        for g in room.get("guests", []) if isinstance(room, dict) else []:
            out.update(t["sid"] if isinstance(t, dict) else t for t in g.get("tracks", []))
    return out


# ---- tokens ----------------------------------------------------------------------------------

def test_reconnect_uses_the_livekit_token_not_a_pumpfun_join():
    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 0, 20)
        time.sleep(1)  # the server's refresh_token arrives 0.5 s after the join
        joins = fake.count("join")
        sfu.control("drop")
        at = time.monotonic()
        assert v.wait_for(lambda s: any(f[0] > at + 0.3 for f in s.frames), 15), v.events
        assert fake.count("join") == joins, "the reconnect asked pump.fun for a token"
        toks = sfu.stats()["tokens"]
        assert len(toks) >= 2 and len({t["sub"] for t in toks}) == 1, toks
        # LiveKit refuses the token (revoked): pump.fun is asked, and the session recovers.
        sfu.control("revoke")
        sfu.control("drop")
        # Frames still in flight can arrive after the drop (a sanitized haven is slow): wait
        # for the join first, then for frames of the new connection.
        harness.wait_until(lambda: fake.count("join") >= joins + 1, 20,
                           "a pump.fun join after LiveKit refused the token")
        at = time.monotonic()
        assert v.wait_for(lambda s: any(f[0] > at + 0.3 for f in s.frames), 20), v.events
        assert fake.count("join") == joins + 1, fake.count("join")
        v.ws.close()
    with_session(body, codec="vp8", **SMALL)


# ---- big rooms, odd offers, candidates, TURN --------------------------------------------------

def joined_rss(extra):
    """haven's RSS (kB) once a session in a room with `extra` silent participants plays."""
    result = {}

    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 30, 30), "no frames in the big room"
        time.sleep(2)
        result["rss"] = rss_kb(h.proc.pid)
        result["participants"] = active(h)["room_participants"]
        v.ws.close()
    with_session(body, codec="vp8", sfu_extra=["--extra-participants", str(extra)], **SMALL)
    return result


def test_a_room_of_30000_participants_joins_within_20_mb():
    small = joined_rss(0)
    big = joined_rss(30000)
    growth = (big["rss"] - small["rss"]) / 1024
    print(f"# RSS with 0 / 30000 other participants: {small['rss']} / {big['rss']} kB "
          f"(growth {growth:.1f} MB); room participants {big['participants']}", flush=True)
    assert big["participants"] >= 30000, big
    # The bound is 20 MB. Decoding every participant would cost about 11 MB (measured
    # with the wire-level filter off); with it, next to nothing: 8 MB leaves room for the noise
    # between two runs and still catches that regression. ASan's quarantine adds its own.
    bound = 8 + (16 if SANITIZED else 0)
    assert growth < bound, f"RSS grew {growth:.1f} MB for 30,000 participants"


def test_offers_without_media_are_answered_and_do_not_fail():
    def body(h, sfu):
        # The streamer publishes after the connect timeout: until then the only offer has no
        # m-line at all; nothing has failed.
        time.sleep(4.5)
        a = active(h)
        assert a is not None and a["status"] == "active" and a["reconnects"] == 0, a
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 20), "no frames once tracks came"
        assert active(h)["reconnects"] == 0
        v.ws.close()
    with_session(body, codec="vp8", env={"HAVEN_LIVEKIT_CONNECT_TIMEOUT": "2s"},
                 sfu_config={"data_channels": False, "publish_delay_ms": 6000}, **SMALL)


def test_a_burst_of_local_candidates_does_not_fail_the_room():
    addresses = ",".join(f"127.0.{i // 200}.{i % 200 + 1}" for i in range(300))

    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 30), "no frames"
        st = sfu.stats()
        print(f"# client candidates: {st['client_candidates']}", flush=True)
        assert st["client_candidates"] > 64, st["client_candidates"]
        assert active(h)["reconnects"] == 0
        v.ws.close()
    with_session(body, codec="vp8", env={"HAVEN_ICE_ADDRESSES": addresses}, **SMALL)


def test_turn_servers_that_need_tls_are_skipped_with_one_line():
    def body(h, sfu):
        v = Viewer(h)
        assert v.wait_for(lambda s: len(s.frames) > 10, 20), "no frames"
        lines = [line for line in h.log_text().splitlines() if "skipping ICE servers" in line]
        assert len(lines) == 1, lines
        assert "turns:turn.example.invalid:443" in lines[0], lines[0]
        v.ws.close()
    with_session(body, codec="vp8", sfu_config={"ice_servers": [
        {"urls": ["turns:turn.example.invalid:443?transport=tcp",
                  "turn:turn.example.invalid:443?transport=tcp"],
         "username": "u", "credential": "c"}]}, **SMALL)


if __name__ == "__main__":
    harness.main(globals())

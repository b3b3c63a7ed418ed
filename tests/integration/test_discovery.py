#!/usr/bin/env python3
"""End-to-end tests of stream discovery: the real haven binary against the fake pump.fun API.

Usage: test_discovery.py PATH_TO_HAVEN. Prints TAP. Each test states what a user of the API
would see: the fixture roster through every endpoint, every bad-input error, the stale path
when pump.fun fails, the error answers when nothing is cached, single-flight under load, the
SQLite cache, and the command line.
"""
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (BINARY, ROOT, SLOW, Haven, assert_no_sanitizer_report,  # noqa: E402
                     base_env, request)

FIXTURE = json.load(open(os.path.join(ROOT, "tests", "data", "pumpfun", "currently-live.json")))
LIVE = [r for r in FIXTURE if r["is_currently_live"]]
SFW = [r for r in LIVE if not r["nsfw"]]
ENDED = next(r for r in FIXTURE if not r["is_currently_live"])
UNKNOWN_MINT = "11111111111111111111111111111111"  # valid base58, 32 zero bytes
STREAM_KEYS = ["mint_id", "name", "symbol", "description", "image_uri", "thumbnail", "creator",
               "market_cap", "usd_market_cap", "num_participants", "is_currently_live", "nsfw",
               "website", "twitter", "telegram", "created_timestamp", "last_trade_timestamp"]

fake = harness.shared_fake()
haven = None  # one warm instance shared by the read-only tests


def fresh(env=None, args=None):
    """A new haven with an empty cache (for cold-start and failure tests)."""
    return Haven(BINARY, fake, env=env, args=args)


def shared():
    global haven
    if haven is None:
        haven = Haven(BINARY, fake)
    fake.reset()
    return haven


# ---- the discovery endpoints ------------------------------------------------------------

def test_live_lists_every_live_stream_with_all_fields():
    h = shared()
    streams, headers = h.get_json("/api/pumpfun/live")
    assert [s["mint_id"] for s in streams] == [r["mint"] for r in LIVE]
    for s, r in zip(streams, LIVE):
        assert list(s.keys())[:len(STREAM_KEYS)] == STREAM_KEYS, s.keys()
        assert s["name"] == r["name"] and s["symbol"] == r["symbol"]
        assert s["num_participants"] == r["num_participants"]
        assert s["market_cap"] == r["market_cap"] and s["usd_market_cap"] == r["usd_market_cap"]
        assert s["is_currently_live"] is True and s["nsfw"] == r["nsfw"]
        assert s["twitter"] == r.get("twitter") and s["telegram"] == r.get("telegram")
        assert s["created_timestamp"] == r["created_timestamp"]
        assert s["last_trade_timestamp"] == r.get("last_trade_timestamp")
    assert headers["content-type"] == "application/json"
    assert headers["x-haven-cache"] == "fresh" and int(headers["age"]) >= 0


def test_live_filters_nsfw_and_pages():
    h = shared()
    sfw, _ = h.get_json("/api/pumpfun/live?include_nsfw=false")
    assert [s["mint_id"] for s in sfw] == [r["mint"] for r in SFW]
    page, _ = h.get_json("/api/pumpfun/live?offset=2&limit=3")
    assert [s["mint_id"] for s in page] == [r["mint"] for r in LIVE[2:5]]
    past, _ = h.get_json("/api/pumpfun/live?offset=500")
    assert past == []
    for v in ("False", "0", "no", "off"):
        rows, _ = h.get_json(f"/api/pumpfun/live?include_nsfw={v}")
        assert len(rows) == len(SFW), v


def test_list_answers_are_gzipped_for_clients_that_ask():
    import gzip
    h = shared()
    _, plain_headers, plain = h.get("/api/pumpfun/live")
    assert "content-encoding" not in plain_headers
    status, headers, body = h.get("/api/pumpfun/live", headers={"Accept-Encoding": "gzip, br"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    assert gzip.decompress(body) == plain and len(body) < len(plain)
    _, h2, b2 = h.get("/api/pumpfun/live", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in h2 and b2 == plain
    # Different parameters are different answers, also when cached.
    _, _, small = h.get("/api/pumpfun/live?limit=2", headers={"Accept-Encoding": "gzip"})
    assert len(json.loads(gzip.decompress(small) if small[:2] == b"\x1f\x8b" else small)) == 2


def test_keep_alive_connections_under_load():
    import http.client
    h = shared()
    errors = []

    def client():
        try:
            conn = http.client.HTTPConnection("127.0.0.1", h.port, timeout=10)
            for i in range(40):
                conn.request("GET", f"/api/pumpfun/live?limit={1 + i % 11}")
                resp = conn.getresponse()
                rows = json.loads(resp.read())
                assert resp.status == 200 and len(rows) == 1 + i % 11
            conn.close()
        except Exception as e:  # collected and reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [], errors[:3]
    # Clients that vanish mid-answer leave the server healthy.
    import socket
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", h.port))
        s.sendall(b"GET /api/pumpfun/live?limit=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    assert h.get("/healthz")[0] == 200 and h.proc.poll() is None


def test_popular_sorted_by_participants():
    h = shared()
    rows, _ = h.get_json("/api/pumpfun/popular")
    counts = [r["num_participants"] for r in rows]
    assert counts == sorted((r["num_participants"] for r in LIVE), reverse=True)[:20]
    rows, _ = h.get_json("/api/pumpfun/popular?limit=3")
    assert [r["mint_id"] for r in rows] == [r["mint"] for r in
                                           sorted(LIVE, key=lambda r: -r["num_participants"])[:3]]


def test_stats():
    h = shared()
    stats, _ = h.get_json("/api/pumpfun/stats")
    top = max(LIVE, key=lambda r: r["num_participants"])
    top_stream = stats.pop("top_stream")
    assert stats == {
        "total_live_streams": len(LIVE),
        "total_participants": sum(r["num_participants"] for r in LIVE),
        "nsfw_streams": len(LIVE) - len(SFW),
        "sfw_streams": len(SFW),
    }, stats
    # The three documented fields, and the rest of the stream object: clients of the original
    # implementation read usd_market_cap and thumbnail from it.
    assert (top_stream["mint_id"], top_stream["name"], top_stream["num_participants"]) == (
        top["mint"], top["name"], top["num_participants"]), top_stream
    assert top_stream["usd_market_cap"] == top["usd_market_cap"], top_stream
    assert top_stream["thumbnail"] == top["thumbnail"], top_stream
    whole, _ = h.get_json(f"/api/pumpfun/stream/{top['mint']}")
    assert top_stream == whole, (top_stream, whole)


def test_stream_and_validate():
    h = shared()
    r = LIVE[3]
    s, _ = h.get_json(f"/api/pumpfun/stream/{r['mint']}")
    assert s["mint_id"] == r["mint"] and s["is_currently_live"] is True
    v, _ = h.get_json(f"/api/pumpfun/validate/{r['mint']}")
    assert v == {"mint_id": r["mint"], "is_valid": True, "is_live": True}
    # Not in the live roster, but pump.fun knows the coin: looked up on its own.
    s, _ = h.get_json(f"/api/pumpfun/stream/{ENDED['mint']}")
    assert s["mint_id"] == ENDED["mint"] and s["is_currently_live"] is False
    assert s["name"] == ENDED["name"] and s["num_participants"] == 0
    v, _ = h.get_json(f"/api/pumpfun/validate/{ENDED['mint']}")
    assert v == {"mint_id": ENDED["mint"], "is_valid": True, "is_live": False}
    # Unknown to pump.fun.
    body, _ = h.get_json(f"/api/pumpfun/stream/{UNKNOWN_MINT}", expect=404)
    assert body == {"detail": f"Stream not found for mint_id: {UNKNOWN_MINT}"}
    v, _ = h.get_json(f"/api/pumpfun/validate/{UNKNOWN_MINT}")
    assert v == {"mint_id": UNKNOWN_MINT, "is_valid": False, "is_live": False}


def test_validate_answers_a_malformed_id_with_is_valid_false():
    # The route exists to say whether an id is good: a malformed one is a 200 with
    # is_valid: false and the id as given, and pump.fun is not asked.
    fake.reset()
    h = fresh()
    try:
        for given, path in (("abc", "abc"), ("0" * 44, "0" * 44), ("x" * 45, "x" * 45),
                            ("1" * 31, "1" * 31), ("é" * 8, "%C3%A9" * 8),
                            ("not a mint", "not%20a%20mint")):
            status, _, data = h.get(f"/api/pumpfun/validate/{path}")
            assert status == 200, (path, status, data)
            assert json.loads(data) == {"mint_id": given, "is_valid": False, "is_live": False}
        req = fake.stats()["requests"]
        assert (req["coin"], req["livestream"]) == (0, 0), req
        # Invalid UTF-8 comes back as valid JSON text (U+FFFD), never as broken bytes.
        status, _, data = h.get("/api/pumpfun/validate/%FF%FEab")
        assert status == 200 and json.loads(data)["is_valid"] is False, (status, data)
        assert json.loads(data)["mint_id"].endswith("ab")
    finally:
        h.cleanup()


def test_lookup_beyond_the_roster_uses_coin_and_livestream_endpoints():
    fake.reset()
    h = fresh()
    try:
        s, _ = h.get_json(f"/api/pumpfun/stream/{ENDED['mint']}")
        assert s["mint_id"] == ENDED["mint"]
        req = fake.stats()["requests"]
        # One coin and one livestream request, and no roster fetch for a single lookup.
        assert (req["coin"], req["livestream"], req["currently-live"]) == (1, 1, 0), req
        # Within the TTL the answer (and a "not found") comes from the lookup cache.
        h.get_json(f"/api/pumpfun/stream/{ENDED['mint']}")
        h.get_json(f"/api/pumpfun/stream/{UNKNOWN_MINT}", expect=404)
        h.get_json(f"/api/pumpfun/stream/{UNKNOWN_MINT}", expect=404)
        req = fake.stats()["requests"]
        assert (req["coin"], req["livestream"]) == (2, 2), req
    finally:
        h.cleanup()


# ---- bad input --------------------------------------------------------------------------

def expect_422(h, path, where, name):
    status, _, data = h.get(path)
    assert status == 422, (path, status, data)
    detail = json.loads(data)["detail"]
    assert any(d["loc"] == [where, name] for d in detail), (path, detail)
    assert all(isinstance(d["msg"], str) and d["msg"] for d in detail)


def test_bad_parameters_give_422_naming_the_parameter():
    h = shared()
    for q in ("limit=0", "limit=101", "limit=abc", "limit=", "limit=1.5", "limit=-1"):
        expect_422(h, f"/api/pumpfun/live?{q}", "query", "limit")
    for q in ("offset=-1", "offset=x", "offset=99999999999999999999"):
        expect_422(h, f"/api/pumpfun/live?{q}", "query", "offset")
    expect_422(h, "/api/pumpfun/live?include_nsfw=maybe", "query", "include_nsfw")
    for q in ("limit=0", "limit=51", "limit=many"):
        expect_422(h, f"/api/pumpfun/popular?{q}", "query", "limit")
    for bad in ("abc", "0" * 44, "O" * 44, "x" * 45, "1" * 31, "z" * 44, "%C3%A9" * 8):
        expect_422(h, f"/api/pumpfun/stream/{bad}", "path", "mint_id")
        expect_422(h, f"/api/pumpfun/history/{bad}", "path", "mint_id")
    status, _, data = h.get("/api/pumpfun/live?limit=101&offset=-5")
    assert len(json.loads(data)["detail"]) == 2
    assert h.get("/api/pumpfun/live?limit=100")[0] == 200


def test_routes_methods_and_body_limits():
    h = shared()
    for path in ("/nope", "/api/pumpfun", "/api/pumpfun/live/", "/api/pumpfun/stream/",
                 "/api/pumpfun/stream/a/b"):
        status, _, data = h.get(path)
        assert status == 404 and json.loads(data) == {"detail": "Not Found"}, (path, status)
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, data = request(h.port, method, "/api/pumpfun/live", body=b"{}",
                                        headers={"Content-Type": "application/json"})
        assert status == 405, (method, status)
        assert "GET" in headers["allow"] and json.loads(data)["detail"] == "Method Not Allowed"
    big = b"x" * (64 * 1024 + 1)
    status, _, data = request(h.port, "POST", "/api/pumpfun/live", body=big)
    assert status == 413 and "65536" in json.loads(data)["detail"]
    # The server is still healthy afterwards.
    assert h.get("/api/pumpfun/stats")[0] == 200


def test_healthz_reports_db_and_upstream():
    h = shared()
    h.get_json("/api/pumpfun/live")
    health, _ = h.get_json("/healthz")
    assert health["status"] == "ok"
    assert health["pid"] == h.proc.pid and health["uptime_s"] >= 0
    assert health["db"]["writable"] is True and health["db"]["schema_version"] >= 1
    assert health["db"]["coins_cached"] >= len(LIVE)
    assert health["upstream"]["last_success"]["age_s"] >= 0
    assert health["catalog"]["live_streams"] == len(LIVE)


# ---- upstream behaviour -----------------------------------------------------------------

def test_upstream_requests_look_like_a_browser():
    h = fresh()
    try:
        fake.reset()
        h.get_json("/api/pumpfun/live")
        entry = next(e for e in fake.stats()["log"] if e["route"] == "currently-live")
        hdr = entry["headers"]
        assert "Mozilla/5.0" in hdr["user-agent"] and "Chrome" in hdr["user-agent"]
        assert hdr["origin"] == "https://pump.fun" and hdr["referer"] == "https://pump.fun/"
        assert "gzip" in hdr["accept-encoding"]
        assert "includeNsfw=true" in entry["path"] and "limit=100" in entry["path"]
    finally:
        h.cleanup()


def test_roster_pages_through_everything_up_to_the_cap():
    fake.reset()
    fake.roster(synthetic=250)
    h = fresh()
    try:
        stats, _ = h.get_json("/api/pumpfun/stats")
        assert stats["total_live_streams"] == 250, stats
        assert fake.count("currently-live") == 3  # 100 + 100 + 50
        popular, _ = h.get_json("/api/pumpfun/popular?limit=50")
        counts = [p["num_participants"] for p in popular]
        assert counts == list(range(250, 200, -1)), counts[:5]
        # A stream on the third page is served from the roster, not looked up alone.
        last, _ = h.get_json("/api/pumpfun/live?offset=249&limit=1")
        before = fake.count("coin")
        h.get_json(f"/api/pumpfun/stream/{last[0]['mint_id']}")
        assert fake.count("coin") == before
    finally:
        h.cleanup()
    fake.reset()
    fake.roster(synthetic=250)
    h = fresh(env={"HAVEN_ROSTER_MAX": "120"})
    try:
        stats, _ = h.get_json("/api/pumpfun/stats")
        assert stats["total_live_streams"] == 120, stats
        assert fake.count("currently-live") == 2
    finally:
        h.cleanup()
        fake.reset()


def test_single_flight_under_concurrent_load():
    fake.reset()
    fake.fault("currently-live", "slow", delay_ms=700)
    h = fresh()
    try:
        results = []
        lock = threading.Lock()

        def client():
            status, _, data = h.get("/api/pumpfun/live?limit=5")
            with lock:
                results.append((status, len(json.loads(data)) if status == 200 else data))

        threads = [threading.Thread(target=client) for _ in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 200
        assert all(r == (200, 5) for r in results), set(map(str, results))
        assert fake.count("currently-live") == 1, fake.stats()["requests"]
    finally:
        h.cleanup()
        fake.reset()


def test_single_flight_for_one_mint_lookup():
    fake.reset()
    fake.fault("coin", "slow", delay_ms=500)
    h = fresh()
    try:
        statuses = []
        threads = [threading.Thread(target=lambda: statuses.append(
            h.get(f"/api/pumpfun/stream/{ENDED['mint']}")[0])) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert statuses == [200] * 50, statuses
        assert fake.count("coin") == 1 and fake.count("livestream") == 1
    finally:
        h.cleanup()
        fake.reset()


FAILURES = [
    # (fault kind, extra fault args, expected status with nothing cached, text in the detail)
    ("403", {}, 502, "Cloudflare challenge"),
    ("429", {"retry_after": 1}, 503, "429"),
    ("504", {}, 502, "error code: 504"),
    ("530", {}, 502, "530"),
    ("500", {}, 502, "HTTP 500"),
    ("malformed", {}, 502, "malformed JSON"),
    ("empty", {}, 502, "empty body"),
    ("slow", {"delay_ms": 3000}, 503, "timed out"),
    ("reset", {}, 503, "currently-live"),
]


def test_nothing_cached_and_upstream_failing_gives_502_or_503():
    for kind, extra, expect, text in FAILURES:
        fake.reset()
        fake.fault("currently-live", kind, **extra)
        h = fresh(env={"HAVEN_UPSTREAM_TIMEOUT": "1s"})
        try:
            status, headers, data = h.get("/api/pumpfun/live")
            assert status == expect, (kind, status, data)
            body = json.loads(data)
            assert text in body["upstream_error"], (kind, body)
            assert "pump.fun" in body["detail"] and text in headers["x-haven-upstream-error"]
            if expect == 503:
                # When haven will ask again: the first backoff is 1 s (429 here says 1 s too).
                assert 1 <= int(headers["retry-after"]) <= 2, (kind, headers.get("retry-after"))
            else:
                assert "retry-after" not in headers, kind
            # Backoff: a second request right away fails fast without another upstream call.
            count = fake.count("currently-live")
            assert h.get("/api/pumpfun/stats")[0] == expect
            assert fake.count("currently-live") == count, kind
            health, _ = h.get_json("/healthz")
            assert health["status"] == "degraded"
            assert text in health["upstream"]["last_failure"]["error"], health
        finally:
            h.cleanup()
    fake.reset()


def test_stale_roster_served_when_upstream_fails():
    fake.reset()
    h = fresh(env={"HAVEN_CATALOG_TTL": "300ms", "HAVEN_UPSTREAM_TIMEOUT": "1s"})
    try:
        fresh_rows, headers = h.get_json("/api/pumpfun/live")
        assert headers["x-haven-cache"] == "fresh"
        for kind, extra, _, text in FAILURES:
            fake.reset()
            fake.fault("currently-live", kind, **extra)
            time.sleep(0.35)  # past the TTL
            # This answer comes from the cache at once while one refresh runs behind it.
            started = time.monotonic()
            rows, headers = h.get_json("/api/pumpfun/live")
            assert time.monotonic() - started < 0.5, kind
            assert rows == fresh_rows and headers["x-haven-cache"] == "stale", (kind, headers)
            deadline = time.monotonic() + 5
            while "x-haven-upstream-error" not in headers and time.monotonic() < deadline:
                time.sleep(0.1)
                rows, headers = h.get_json("/api/pumpfun/live")
            assert rows == fresh_rows, kind
            assert text in headers["x-haven-upstream-error"], (kind, headers)
            assert headers["x-haven-cache"] == "stale" and int(headers["age"]) >= 0
            stats, sh = h.get_json("/api/pumpfun/stats")
            assert stats["total_live_streams"] == len(LIVE) and sh["x-haven-cache"] == "stale"
            # pump.fun recovers: after the backoff the next refresh brings fresh data again.
            fake.reset()
            deadline = time.monotonic() + 8
            while headers["x-haven-cache"] != "fresh" and time.monotonic() < deadline:
                time.sleep(0.2)
                rows, headers = h.get_json("/api/pumpfun/live")
            assert headers["x-haven-cache"] == "fresh", (kind, headers)
            assert "x-haven-upstream-error" not in headers
    finally:
        h.cleanup()
        fake.reset()


def test_refresh_picks_up_roster_changes():
    fake.reset()
    h = fresh(env={"HAVEN_CATALOG_TTL": "200ms"})
    try:
        h.get_json("/api/pumpfun/live")
        gone = LIVE[0]["mint"]
        fake.roster(remove=[gone], set={LIVE[1]["mint"]: {"num_participants": 99999}})
        time.sleep(0.25)
        h.get_json("/api/pumpfun/live")  # stale answer; triggers the refresh
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            rows, _ = h.get_json("/api/pumpfun/live")
            if gone not in [r["mint_id"] for r in rows]:
                break
            time.sleep(0.05)
        assert gone not in [r["mint_id"] for r in rows]
        top, _ = h.get_json("/api/pumpfun/popular?limit=1")
        assert top[0]["mint_id"] == LIVE[1]["mint"] and top[0]["num_participants"] == 99999
    finally:
        h.cleanup()
        fake.reset()


# ---- the SQLite cache -------------------------------------------------------------------

def test_coins_cached_in_sqlite_with_history():
    fake.reset()
    h = fresh(env={"HAVEN_SNAPSHOT_INTERVAL": "0"})
    try:
        h.get_json("/api/pumpfun/live")
        h.get_json(f"/api/pumpfun/stream/{ENDED['mint']}")
        db = sqlite3.connect(h.db)
        try:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA user_version").fetchone()[0] >= 1
            n = db.execute("SELECT count(*) FROM pumpfun_coins").fetchone()[0]
            assert n == len(LIVE) + 1, n
            row = db.execute("SELECT name, virtual_token_reserves, num_participants, first_seen, "
                             "last_updated, raw_json FROM pumpfun_coins WHERE mint_id = ?",
                             (LIVE[0]["mint"],)).fetchone()
            assert row[0] == LIVE[0]["name"]
            assert row[1] == LIVE[0]["virtual_token_reserves"]
            assert row[2] == LIVE[0]["num_participants"]
            assert row[3] == row[4] and json.loads(row[5])["mint"] == LIVE[0]["mint"]
            # Interval 0: one snapshot per coin per upsert (the roster stores all 12 fixture
            # rows, the single lookup stores the ended coin once more).
            snaps = db.execute("SELECT count(*) FROM coin_snapshots").fetchone()[0]
            assert snaps == len(FIXTURE) + 1, snaps
            cols = {r[1] for r in db.execute("PRAGMA table_info(live_sessions)")}
            assert {"mint_id", "room_name", "participant_sid", "status", "record_session",
                    "recording_path", "start_time", "end_time"} <= cols
        finally:
            db.close()
    finally:
        h.cleanup()


def test_coin_history_for_the_chart():
    fake.reset()
    h = fresh(env={"HAVEN_SNAPSHOT_INTERVAL": "0", "HAVEN_CATALOG_TTL": "1s"})
    try:
        mint = LIVE[0]["mint"]
        h.get_json("/api/pumpfun/live")
        time.sleep(1.2)
        h.get_json("/api/pumpfun/live")  # stale: answered, and one refresh starts
        deadline = time.monotonic() + 5
        while True:
            body, _ = h.get_json(f"/api/pumpfun/history/{mint}?hours=1")
            if len(body["points"]) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert body["mint_id"] == mint and body["hours"] == 1, body
        pts = body["points"]
        assert len(pts) >= 2, pts
        assert [p["t"] for p in pts] == sorted(p["t"] for p in pts)  # oldest first
        assert pts[-1]["num_participants"] == LIVE[0]["num_participants"]
        assert abs(pts[-1]["usd_market_cap"] - LIVE[0]["usd_market_cap"]) < 1e-6
        body, _ = h.get_json(f"/api/pumpfun/history/{UNKNOWN_MINT}")
        assert body["points"] == []
        h.get_json(f"/api/pumpfun/history/{mint}?hours=0", expect=422)
        h.get_json("/api/pumpfun/history/not-a-mint", expect=422)
    finally:
        h.cleanup()


def test_web_player_files_and_nothing_else():
    import tempfile
    web = tempfile.mkdtemp(prefix="haven-web-")
    os.makedirs(os.path.join(web, "js"))
    with open(os.path.join(web, "index.html"), "w") as f:
        f.write("<!doctype html><title>haven</title>")
    with open(os.path.join(web, "js", "app.js"), "w") as f:
        f.write("export const x = 1;")
    with open(os.path.join(web, ".secret.js"), "w") as f:
        f.write("hidden")
    os.symlink("/etc/passwd", os.path.join(web, "passwd.txt"))
    h = fresh(env={"HAVEN_WEB_DIR": web})
    try:
        status, headers, body = h.get("/")
        assert status == 200 and headers["content-type"].startswith("text/html"), headers
        assert body == b"<!doctype html><title>haven</title>"
        status, headers, body = h.get("/js/app.js")
        assert status == 200 and headers["content-type"].startswith("text/javascript")
        assert headers["x-content-type-options"] == "nosniff"
        # (libwebsockets collapses "/js/../x" and "//" before haven sees the path;
        # a ".." that would climb out of the root is refused either way.)
        for path in ("/.secret.js", "/passwd.txt", "/../etc/passwd", "/../../etc/passwd",
                     "/%2e%2e/etc/passwd", "/missing.js", "/index.html.bak",
                     "/api/nope.js"):
            status, _, body = h.get(path)
            assert status == 404 and b"root:" not in body, (path, status)
        index, _ = h.get_json("/api")
        assert "GET /api/pumpfun/history/{mint_id}" in index["endpoints"]
    finally:
        h.cleanup()
    # Without a player, / lists the API.
    h = fresh(env={"HAVEN_WEB_DIR": ""})
    try:
        index, _ = h.get_json("/")
        assert index["name"] == "haven" and "GET /api" in index["endpoints"]
    finally:
        h.cleanup()


# ---- command line and lifecycle ---------------------------------------------------------

def test_help_lists_every_option_with_env_and_default():
    out = subprocess.run([BINARY, "--help"], capture_output=True, text=True, timeout=10 * SLOW)
    assert_no_sanitizer_report(out.stderr)
    assert out.returncode == 0
    for env, default in (("HAVEN_LISTEN", "127.0.0.1:8000"), ("HAVEN_DB", "./haven.db"),
                         ("HAVEN_PUMPFUN_FRONTEND_API", "https://frontend-api-v3.pump.fun"),
                         ("HAVEN_PUMPFUN_LIVESTREAM_API", "https://livestream-api.pump.fun"),
                         ("HAVEN_CATALOG_TTL", "10s")):
        assert f"env {env}, default {default}" in out.stdout, env
    assert "--listen" in out.stdout


def test_invalid_configuration_exits_78_with_one_message():
    for env, args, text in (({"HAVEN_LISTEN": "nope"}, [], "HAVEN_LISTEN"),
                            ({}, ["--roster-max", "0"], "roster-max"),
                            ({}, ["--bogus"], "--bogus"),
                            ({"HAVEN_CATALOG_TTL": "soon"}, [], "HAVEN_CATALOG_TTL")):
        out = subprocess.run([BINARY] + args, capture_output=True, text=True, timeout=10 * SLOW,
                             env=base_env(env))
        assert_no_sanitizer_report(out.stderr)
        assert out.returncode == 78, (env, args, out.returncode)
        assert text in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_unusable_database_fails_fast():
    out = subprocess.run([BINARY], capture_output=True, text=True, timeout=10 * SLOW,
                         env=base_env({"HAVEN_DB": "/nonexistent-dir/haven.db",
                                       "HAVEN_LISTEN": "127.0.0.1:1"}))
    assert_no_sanitizer_report(out.stderr)
    assert out.returncode == 1 and "/nonexistent-dir/haven.db" in out.stderr, out.stderr


def test_sigterm_stops_cleanly_with_a_request_parked():
    fake.reset()
    fake.fault("currently-live", "slow", delay_ms=3000)
    h = fresh()
    try:
        def parked():
            try:
                h.get("/api/pumpfun/live", timeout=10)
            except OSError:
                pass  # the connection is closed by the shutdown; that is expected

        t = threading.Thread(target=parked)
        t.start()
        time.sleep(0.3)
        assert h.stop() == 0
        t.join(10)
        assert "stopped" in h.log_text()
    finally:
        h.cleanup()
        fake.reset()


def cleanup():
    if haven is not None:
        haven.cleanup()


if __name__ == "__main__":
    harness.main(globals(), cleanup=cleanup)

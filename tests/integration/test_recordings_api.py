#!/usr/bin/env python3
"""End-to-end tests of the recordings API: the real haven binary serving recordings that this
test lists in the database and writes to HAVEN_RECORDINGS_DIR itself (the recorder is tested
elsewhere).

Usage: test_recordings_api.py PATH_TO_HAVEN. Prints TAP. A first haven run creates the schema;
the test then adds rows (status finished/failed/recovered only: rows left "recording" belong to
crash recovery at startup) and files of known pseudo-random content, some of them outside the
recordings directory or reached through symlinks, and starts haven again to check listing,
filters, paging, every 422, downloads byte for byte, Range requests, that nothing outside the
directory is ever served or deleted, deletion, and the live-session recording switch.
"""
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import BINARY, ROOT, Haven, request  # noqa: E402

FIXTURE = json.load(open(os.path.join(ROOT, "tests", "data", "pumpfun", "currently-live.json")))
LIVE = [r["mint"] for r in FIXTURE if r["is_currently_live"]]
ENDED = next(r["mint"] for r in FIXTURE if not r["is_currently_live"])
MINT_A, MINT_B, MINT_C = LIVE[0], LIVE[1], LIVE[2]
T0 = 1795532400000  # 2026-11-24T15:00:00Z, in ms
RECORDING_KEYS = ["id", "session_id", "mint_id", "status", "error", "container", "video_codec",
                  "audio_codec", "stored_video_codec", "width", "height", "start_time",
                  "end_time", "duration_seconds", "bytes", "dropped_packets", "node_id",
                  "continuation_of", "files"]
STATUSES = ("recording", "finished", "failed", "recovered")

fake = harness.shared_fake()
work = tempfile.mkdtemp(prefix="haven-test-recordings-")
REC_DIR = os.path.join(work, "recordings")
OUTSIDE_DIR = os.path.join(work, "outside")
DB = os.path.join(work, "haven.db")
os.makedirs(REC_DIR)
os.makedirs(OUTSIDE_DIR)
haven = None
CONTENT = {}  # path -> bytes written
ROWS = {}     # name -> id


def data(seed, size):
    return random.Random(seed).randbytes(size)


def write(path, content):
    with open(path, "wb") as f:
        f.write(content)
    CONTENT[path] = content
    return path


def rec_name(mint, start_ms, ext):
    import time
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(start_ms // 1000))
    return os.path.join(REC_DIR, f"{mint}_{stamp}.{ext}")


def insert(db, name, mint, start, status="finished", video=None, audio=None, **cols):
    row = dict(mint_id=mint, start_time=start, status=status, video_path=video, audio_path=audio)
    row.update(cols)
    keys = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    cur = db.execute(f"INSERT INTO recordings ({keys}) VALUES ({marks})", list(row.values()))
    ROWS[name] = cur.lastrowid


def prepare():
    """Creates the schema with one haven run, then the rows and the files."""
    global haven
    env = {"HAVEN_DB": DB, "HAVEN_RECORDINGS_DIR": REC_DIR}
    first = Haven(BINARY, fake, env=env)
    try:
        assert first.stop() == 0
    finally:
        first.cleanup()
    db = sqlite3.connect(DB)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] >= 2
        # A: a finished VP8 recording turned into H.264 mp4, with its WAV.
        t = T0
        insert(db, "a", MINT_A, t, "finished",
               video=write(rec_name(MINT_A, t, "mp4"), data(1, 1 << 20)),
               audio=write(rec_name(MINT_A, t, "wav"), data(2, 256 * 1024 + 44)),
               container="mp4", video_codec="VP8", audio_codec="OPUS", stored_video_codec="H264",
               width=1280, height=720, end_time=t + 61500, duration_ms=61500,
               bytes=(1 << 20) + 256 * 1024 + 44, dropped=3)
        # B: a failed webm recording of another mint.
        t = T0 + 60000
        insert(db, "b", MINT_B, t, "failed",
               video=write(rec_name(MINT_B, t, "webm"), data(3, 300000)),
               audio=write(rec_name(MINT_B, t, "wav"), data(4, 5000)),
               container="webm", video_codec="VP8", audio_codec="OPUS", stored_video_codec="VP8",
               end_time=t + 2000, duration_ms=2000, bytes=305000, error="disk full")
        # C: audio only, recovered after a crash.
        t = T0 + 120000
        insert(db, "c", MINT_A, t, "recovered",
               audio=write(rec_name(MINT_A, t, "wav"), data(5, 1000)), audio_codec="OPUS",
               end_time=t + 1000, duration_ms=1000, bytes=1000)
        # Rows whose paths must never be served: a system file, "..", a symlink leading out, a
        # symlinked directory, and a file that is gone.
        secret = write(os.path.join(OUTSIDE_DIR, "secret.mp4"), data(6, 4096))
        insert(db, "passwd", MINT_C, T0 + 1000, "failed", video="/etc/passwd", container="mp4")
        insert(db, "dotdot", MINT_C, T0 + 2000, "failed",
               video=os.path.join(REC_DIR, "..", "outside", "secret.mp4"), container="mp4")
        link = os.path.join(REC_DIR, f"{MINT_C}_20261124T150003Z.mp4")
        os.symlink(secret, link)
        insert(db, "symlink", MINT_C, T0 + 3000, "failed", video=link, container="mp4")
        os.symlink(OUTSIDE_DIR, os.path.join(REC_DIR, "elsewhere"))
        insert(db, "linkdir", MINT_C, T0 + 4000, "failed",
               video=os.path.join(REC_DIR, "elsewhere", "secret.mp4"), container="mp4")
        insert(db, "missing", MINT_C, T0 + 5000, "finished",
               video=os.path.join(REC_DIR, f"{MINT_C}_20261124T150005Z.mp4"), container="mp4")
        # A recording whose file still has its ".part" name (written once haven runs: at startup
        # haven finalizes the .part files it finds), an empty file, and a file that grows.
        final = os.path.join(REC_DIR, f"{MINT_C}_20261124T150006Z.mp4")
        insert(db, "part", MINT_C, T0 + 6000, "failed", video=final, container="mp4")
        insert(db, "empty", MINT_C, T0 + 7000, "finished",
               video=write(os.path.join(REC_DIR, f"{MINT_C}_20261124T150007Z.mp4"), b""),
               container="mp4")
        insert(db, "growing", MINT_C, T0 + 8000, "finished",
               video=write(os.path.join(REC_DIR, f"{MINT_C}_20261124T150008Z.mp4"),
                           data(8, 10000)), container="mp4")
        db.commit()
    finally:
        db.close()
    haven = Haven(BINARY, fake, env={"HAVEN_DB": DB, "HAVEN_RECORDINGS_DIR": REC_DIR})
    write(final + ".part", data(7, 70000))


def get(path, **kw):
    return request(haven.port, "GET", path, **kw)


def get_json(path, expect=200):
    status, headers, body = get(path)
    assert status == expect, (path, status, body[:300])
    return json.loads(body), headers


def expect_422(method, path, where, name, body=None):
    status, _, data_ = request(haven.port, method, path, body=body,
                               headers={"Content-Type": "application/json"} if body else None)
    assert status == 422, (path, status, data_[:300])
    detail = json.loads(data_)["detail"]
    assert any(e["loc"] == [where, name] for e in detail), (path, detail)
    return detail


def sql(statement, *args):
    db = sqlite3.connect(DB, timeout=10)
    try:
        db.execute(statement, args)
        db.commit()
    finally:
        db.close()


def all_ids():
    """Every row's id, newest first (the API's order)."""
    db = sqlite3.connect(DB, timeout=10)
    try:
        return [r[0] for r in db.execute("SELECT id FROM recordings "
                                         "ORDER BY start_time DESC, id DESC")]
    finally:
        db.close()


# ---- listing -----------------------------------------------------------------------------

def test_list_newest_first_with_every_field():
    body, headers = get_json("/api/recordings")
    assert list(body) == ["recordings", "total", "limit", "offset"], list(body)
    assert (body["total"], body["limit"], body["offset"]) == (len(ROWS), 50, 0), body
    assert [r["id"] for r in body["recordings"]] == all_ids()
    assert headers["content-type"] == "application/json"
    a = next(r for r in body["recordings"] if r["id"] == ROWS["a"])
    assert list(a) == RECORDING_KEYS, list(a)
    video, audio = rec_name(MINT_A, T0, "mp4"), rec_name(MINT_A, T0, "wav")
    assert a == {
        "id": ROWS["a"], "session_id": None, "mint_id": MINT_A, "status": "finished",
        "error": None, "container": "mp4", "video_codec": "VP8", "audio_codec": "OPUS",
        "stored_video_codec": "H264", "width": 1280, "height": 720,
        "start_time": "2026-11-24T15:00:00.000Z", "end_time": "2026-11-24T15:01:01.500Z",
        "duration_seconds": 61.5, "bytes": (1 << 20) + 256 * 1024 + 44, "dropped_packets": 3,
        "node_id": None, "continuation_of": None,  # one node (SQLite)
        "files": {
            "video": {"name": os.path.basename(video), "bytes": 1 << 20,
                      "url": f"/api/recordings/{ROWS['a']}/file?kind=video",
                      "content_type": "video/mp4"},
            "audio": {"name": os.path.basename(audio), "bytes": 256 * 1024 + 44,
                      "url": f"/api/recordings/{ROWS['a']}/file?kind=audio",
                      "content_type": "audio/wav"}}}, a
    b = next(r for r in body["recordings"] if r["id"] == ROWS["b"])
    assert b["files"]["video"]["content_type"] == "video/webm" and b["error"] == "disk full"
    c = next(r for r in body["recordings"] if r["id"] == ROWS["c"])
    assert c["files"]["video"] is None and c["files"]["audio"]["bytes"] == 1000
    assert c["width"] is None and c["height"] is None and c["container"] is None
    # Files that cannot be served show no size.
    for name in ("passwd", "dotdot", "symlink", "linkdir", "missing"):
        r = next(r for r in body["recordings"] if r["id"] == ROWS[name])
        assert r["files"]["video"]["bytes"] is None, (name, r["files"])
    part = next(r for r in body["recordings"] if r["id"] == ROWS["part"])
    assert part["files"]["video"]["bytes"] == 70000


def test_list_filters_and_pages():
    ids = all_ids()
    body, _ = get_json(f"/api/recordings?mint_id={MINT_A}")
    assert [r["id"] for r in body["recordings"]] == [ROWS["c"], ROWS["a"]] and body["total"] == 2
    body, _ = get_json("/api/recordings?status=failed")
    assert {r["status"] for r in body["recordings"]} == {"failed"}
    assert body["total"] == 6 == len(body["recordings"])
    body, _ = get_json(f"/api/recordings?mint_id={MINT_A}&status=recovered")
    assert [r["id"] for r in body["recordings"]] == [ROWS["c"]] and body["total"] == 1
    body, _ = get_json(f"/api/recordings?mint_id={LIVE[5]}&status=finished")
    assert body == {"recordings": [], "total": 0, "limit": 50, "offset": 0}
    body, _ = get_json("/api/recordings?status=recording")
    assert body["total"] == 0
    pages = []
    for offset in range(0, len(ids) + 3, 3):
        body, _ = get_json(f"/api/recordings?limit=3&offset={offset}")
        assert body["total"] == len(ids) and body["limit"] == 3 and body["offset"] == offset
        pages += [r["id"] for r in body["recordings"]]
    assert pages == ids
    body, _ = get_json("/api/recordings?limit=500&offset=1000")
    assert body["recordings"] == [] and body["total"] == len(ids)
    body, _ = get_json("/api/recordings?limit=1&offset=1")
    assert [r["id"] for r in body["recordings"]] == ids[1:2]


def test_list_rejects_bad_parameters_with_422():
    for q in ("limit=0", "limit=501", "limit=abc", "limit=", "limit=-1", "limit=1.5"):
        expect_422("GET", f"/api/recordings?{q}", "query", "limit")
    for q in ("offset=-1", "offset=x", "offset=99999999999999999999"):
        expect_422("GET", f"/api/recordings?{q}", "query", "offset")
    for bad in ("abc", "", "0" * 44, MINT_A + "x"):
        detail = expect_422("GET", f"/api/recordings?mint_id={bad}", "query", "mint_id")
        assert detail[0]["type"] == "value_error" and detail[0]["input"] == bad
    for bad in ("paused", "FINISHED", ""):
        detail = expect_422("GET", f"/api/recordings?status={bad}", "query", "status")
        assert detail[0]["type"] == "enum" and detail[0]["input"] == bad
    detail = expect_422("GET", "/api/recordings?limit=0&offset=-1&mint_id=x&status=y",
                        "query", "limit")
    assert sorted(e["loc"][1] for e in detail) == ["limit", "mint_id", "offset", "status"]
    assert get("/api/recordings?limit=500")[0] == 200


# ---- one recording -----------------------------------------------------------------------

def test_get_one_and_404_and_422():
    one, _ = get_json(f"/api/recordings/{ROWS['b']}")
    listed, _ = get_json(f"/api/recordings?mint_id={MINT_B}")
    assert one == listed["recordings"][0]
    for missing in ("999999", "0", "-1"):
        body, _ = get_json(f"/api/recordings/{missing}", expect=404)
        assert body == {"detail": "Recording not found"}
        body, _ = get_json(f"/api/recordings/{missing}/file", expect=404)
        assert body == {"detail": "Recording not found"}
    for bad in ("abc", "1.5", "1e3", "0x10", "99999999999999999999"):
        detail = expect_422("GET", f"/api/recordings/{bad}", "path", "id")
        assert detail[0]["type"] == "int_parsing", detail
        expect_422("GET", f"/api/recordings/{bad}/file", "path", "id")
        expect_422("DELETE", f"/api/recordings/{bad}", "path", "id")
    for path in ("/api/recordings/", f"/api/recordings/{ROWS['a']}/", "/api/recordings/1/files",
                 "/api/recordings/1/file/x"):
        assert get(path)[0] == 404, path


def test_methods_and_allow():
    for method, path, allowed in (
            ("POST", "/api/recordings", {"GET", "HEAD"}),
            ("PUT", f"/api/recordings/{ROWS['a']}", {"GET", "HEAD", "DELETE"}),
            ("POST", f"/api/recordings/{ROWS['a']}", {"GET", "HEAD", "DELETE"}),
            ("DELETE", f"/api/recordings/{ROWS['a']}/file", {"GET", "HEAD"}),
            ("GET", f"/api/live-sessions/{MINT_A}/recording", {"POST"}),
            ("GET", "/api/live-sessions/start", {"POST"}),
            ("GET", "/api/live-sessions/stop", {"POST"}),
            ("POST", "/api/live-sessions/active", {"GET", "HEAD"})):
        status, headers, body = request(haven.port, method, path, body=b"{}")
        assert status == 405, (method, path, status)
        assert set(headers["allow"].split(", ")) == allowed, (path, headers["allow"])
        assert json.loads(body) == {"detail": "Method Not Allowed"}
    index, _ = get_json("/api")
    for e in ("GET /api/recordings", "GET /api/recordings/{id}", "DELETE /api/recordings/{id}",
              "GET /api/recordings/{id}/file", "POST /api/live-sessions/{mint_id}/recording",
              "GET /api/pumpfun/stream/{mint_id}"):
        assert e in index["endpoints"], (e, index["endpoints"])


# ---- downloads ---------------------------------------------------------------------------

def test_download_is_byte_exact_with_headers():
    for kind, path, ctype in (("video", rec_name(MINT_A, T0, "mp4"), "video/mp4"),
                              ("audio", rec_name(MINT_A, T0, "wav"), "audio/wav")):
        status, headers, body = get(f"/api/recordings/{ROWS['a']}/file?kind={kind}")
        assert status == 200 and body == CONTENT[path], (kind, status, len(body))
        assert headers["content-type"] == ctype
        assert headers["content-length"] == str(len(CONTENT[path]))
        assert headers["accept-ranges"] == "bytes"
        assert headers["content-disposition"] == \
            f'attachment; filename="{os.path.basename(path)}"'
    # kind defaults to video; webm is served as such
    status, headers, body = get(f"/api/recordings/{ROWS['b']}/file")
    assert status == 200 and headers["content-type"] == "video/webm"
    assert body == CONTENT[rec_name(MINT_B, T0 + 60000, "webm")]
    # an audio-only recording has no video file
    status, _, body = get(f"/api/recordings/{ROWS['c']}/file?kind=video")
    assert status == 404 and json.loads(body) == {"detail": "Recording file not found"}
    for bad in ("both", "", "VIDEO"):
        expect_422("GET", f"/api/recordings/{ROWS['a']}/file?kind={bad}", "query", "kind")
    # HEAD: the headers of the download, no body
    status, headers, body = request(haven.port, "HEAD", f"/api/recordings/{ROWS['a']}/file")
    assert status == 200 and body == b"" and headers["content-length"] == str(1 << 20)
    assert headers["accept-ranges"] == "bytes"


def test_downloads_on_one_keep_alive_connection():
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", haven.port, timeout=30)
    try:
        video = CONTENT[rec_name(MINT_A, T0, "mp4")]
        for i in range(3):
            conn.request("GET", f"/api/recordings/{ROWS['a']}/file")
            resp = conn.getresponse()
            assert resp.status == 200 and resp.read() == video
            conn.request("GET", f"/api/recordings/{ROWS['a']}/file",
                         headers={"Range": f"bytes={i}-{i + 9}"})
            resp = conn.getresponse()
            assert resp.status == 206 and resp.read() == video[i:i + 10]
            conn.request("GET", f"/api/recordings/{ROWS['a']}")
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["id"] == ROWS["a"]
    finally:
        conn.close()


def test_range_requests():
    path = rec_name(MINT_A, T0, "mp4")
    content = CONTENT[path]
    size = len(content)
    url = f"/api/recordings/{ROWS['a']}/file"
    for rng, first, last in (("bytes=0-0", 0, 0), ("bytes=100-199", 100, 199),
                             ("bytes=1000-", 1000, size - 1), ("bytes=-500", size - 500, size - 1),
                             (f"bytes=-{size + 100}", 0, size - 1),
                             (f"bytes={size - 1}-{size * 2}", size - 1, size - 1),
                             ("bytes=5-99999999999999999999", 5, size - 1),
                             ("bytes= 7-8 ", 7, 8), ("Bytes=9-9", 9, 9)):
        status, headers, body = get(url, headers={"Range": rng})
        assert status == 206, (rng, status)
        assert headers["content-range"] == f"bytes {first}-{last}/{size}", (rng, headers)
        assert headers["content-length"] == str(last - first + 1)
        assert headers["accept-ranges"] == "bytes" and headers["content-type"] == "video/mp4"
        assert body == content[first:last + 1], rng
    for rng in (f"bytes={size}-", f"bytes={size + 5}-{size + 10}", "bytes=-0",
                "bytes=99999999999999999999-"):
        status, headers, body = get(url, headers={"Range": rng})
        assert status == 416, (rng, status)
        assert headers["content-range"] == f"bytes */{size}" and headers["accept-ranges"] == "bytes"
        assert "content-disposition" not in headers
    # malformed or several ranges: ignored, the whole file
    for rng in ("bytes=0-5,10-20", "bytes=5-1", "bytes=abc", "items=0-5", "bytes=", "bytes=-",
                "bytes=1 - 2"):
        status, headers, body = get(url, headers={"Range": rng})
        assert status == 200 and body == content and "content-range" not in headers, rng
    # audio too; an empty file has no satisfiable range but downloads (empty) without one
    wav = CONTENT[rec_name(MINT_A, T0, "wav")]
    status, headers, body = get(f"{url}?kind=audio", headers={"Range": "bytes=0-43"})
    assert status == 206 and body == wav[:44] and headers["content-type"] == "audio/wav"
    empty = f"/api/recordings/{ROWS['empty']}/file"
    status, headers, body = get(empty)
    assert status == 200 and body == b"" and headers["content-length"] == "0"
    status, headers, _ = get(empty, headers={"Range": "bytes=0-"})
    assert status == 416 and headers["content-range"] == "bytes */0"


def test_growing_file_is_served_at_its_size_now():
    path = os.path.join(REC_DIR, f"{MINT_C}_20261124T150008Z.mp4")
    url = f"/api/recordings/{ROWS['growing']}/file"
    status, _, body = get(url)
    assert status == 200 and body == CONTENT[path]
    more = data(9, 5000)
    with open(path, "ab") as f:
        f.write(more)
    status, headers, body = get(url)
    assert status == 200 and body == CONTENT[path] + more
    status, headers, body = get(url, headers={"Range": "bytes=-5000"})
    assert status == 206 and body == more
    assert headers["content-range"] == f"bytes 10000-14999/15000"
    one, _ = get_json(f"/api/recordings/{ROWS['growing']}")
    assert one["files"]["video"]["bytes"] == 15000


def test_part_file_is_served_until_renamed():
    final = os.path.join(REC_DIR, f"{MINT_C}_20261124T150006Z.mp4")
    status, headers, body = get(f"/api/recordings/{ROWS['part']}/file")
    assert status == 200 and body == CONTENT[final + ".part"]
    assert headers["content-disposition"] == f'attachment; filename="{os.path.basename(final)}"'


def test_files_outside_the_directory_are_never_served():
    secret = CONTENT[os.path.join(OUTSIDE_DIR, "secret.mp4")]
    for name in ("passwd", "dotdot", "symlink", "linkdir", "missing"):
        for extra in ({}, {"Range": "bytes=0-10"}):
            status, _, body = get(f"/api/recordings/{ROWS[name]}/file", headers=extra)
            assert status == 404, (name, status)
            assert json.loads(body) == {"detail": "Recording file not found"}, (name, body[:100])
            assert b"root:" not in body and secret[:16] not in body
        status, _, body = request(haven.port, "HEAD", f"/api/recordings/{ROWS[name]}/file")
        assert status == 404, (name, status)
    assert haven.proc.poll() is None


# ---- deleting ----------------------------------------------------------------------------

def test_delete_refuses_a_recording_in_progress_then_removes_files_and_row():
    video, audio = rec_name(MINT_A, T0, "mp4"), rec_name(MINT_A, T0, "wav")
    rid = ROWS["a"]
    # Only set now: a "recording" row present at startup would be recovered by haven.
    sql("UPDATE recordings SET status = 'recording', end_time = NULL WHERE id = ?", rid)
    status, _, body = request(haven.port, "DELETE", f"/api/recordings/{rid}")
    assert status == 409, status
    assert json.loads(body) == {"detail": "Recording is in progress; stop it first"}
    assert os.path.exists(video) and os.path.exists(audio)
    one, _ = get_json(f"/api/recordings/{rid}")
    assert one["status"] == "recording" and one["end_time"] is None
    body, _ = get_json("/api/recordings?status=recording")
    assert [r["id"] for r in body["recordings"]] == [rid]
    # a recording in progress downloads at its current size
    status, _, got = get(f"/api/recordings/{rid}/file")
    assert status == 200 and got == CONTENT[video]

    sql("UPDATE recordings SET status = 'finished' WHERE id = ?", rid)
    status, _, body = request(haven.port, "DELETE", f"/api/recordings/{rid}")
    assert status == 200 and json.loads(body) == {"success": True, "deleted": rid}, body
    assert not os.path.exists(video) and not os.path.exists(audio)
    get_json(f"/api/recordings/{rid}", expect=404)
    status, _, body = request(haven.port, "DELETE", f"/api/recordings/{rid}")
    assert status == 404 and json.loads(body) == {"detail": "Recording not found"}
    body, _ = get_json("/api/recordings")
    assert rid not in [r["id"] for r in body["recordings"]]
    assert body["total"] == len(all_ids())
    # a missing file is no obstacle
    status, _, _ = request(haven.port, "DELETE", f"/api/recordings/{ROWS['missing']}")
    assert status == 200


def test_delete_never_touches_files_outside_the_directory():
    secret = os.path.join(OUTSIDE_DIR, "secret.mp4")
    link = os.path.join(REC_DIR, f"{MINT_C}_20261124T150003Z.mp4")
    for name in ("passwd", "dotdot", "linkdir"):
        status, _, body = request(haven.port, "DELETE", f"/api/recordings/{ROWS[name]}")
        assert status == 200 and json.loads(body)["deleted"] == ROWS[name], (name, body)
        assert os.path.exists(secret), name
    assert os.path.exists("/etc/passwd")
    # a symlink inside the directory is removed itself; what it points to stays
    status, _, _ = request(haven.port, "DELETE", f"/api/recordings/{ROWS['symlink']}")
    assert status == 200
    assert not os.path.lexists(link) and os.path.exists(secret)
    assert open(secret, "rb").read() == CONTENT[secret]
    # a .part left by a failed recording goes with it
    final = os.path.join(REC_DIR, f"{MINT_C}_20261124T150006Z.mp4")
    status, _, _ = request(haven.port, "DELETE", f"/api/recordings/{ROWS['part']}")
    assert status == 200 and not os.path.exists(final + ".part")


# ---- live sessions: the recording switch --------------------------------------------------

def post(path, payload=None, raw=None):
    body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None
                                        else None)
    status, _, data_ = request(haven.port, "POST", path, body=body,
                               headers={"Content-Type": "application/json"} if body else None)
    return status, json.loads(data_)


def test_recording_switch_validates_and_needs_a_session():
    for action in ("start", "stop"):
        status, body = post(f"/api/live-sessions/{MINT_A}/recording", {"action": action})
        msg = f"No active session for mint_id: {MINT_A}"
        assert status == 404 and body == {"success": False, "error": msg, "detail": msg}, body
    for payload, kind in (({"action": "pause"}, "enum"), ({"action": 1}, "enum"),
                          ({"action": None}, "enum"), ({}, "missing")):
        status, body = post(f"/api/live-sessions/{MINT_A}/recording", payload)
        assert status == 422, (payload, status)
        assert body["detail"][0]["loc"] == ["body", "action"], body
        assert body["detail"][0]["type"] == kind, (payload, body)
    for raw in (b"", b"[]", b"not json"):
        status, body = post(f"/api/live-sessions/{MINT_A}/recording", raw=raw)
        assert status == 422 and body["detail"][0]["loc"][0] == "body", (raw, body)
    status, body = post("/api/live-sessions/nope/recording", {"action": "start"})
    assert status == 422 and body["detail"][0]["loc"] == ["path", "mint_id"], body
    status, body = post("/api/live-sessions/nope/recording", {"action": "x"})
    assert status == 422 and len(body["detail"]) == 2, body


def test_session_endpoints_still_work_and_record_session_is_accepted():
    body, _ = get_json("/api/live-sessions/active")
    assert body == {"count": 0, "sessions": []}
    status, body = post("/api/live-sessions/stop", {"mint_id": MINT_A})
    assert status == 404 and body["error"] == f"No active session for mint_id: {MINT_A}"
    # record_session: true is no longer refused with 501; this stream is not live, so 404.
    status, body = post("/api/live-sessions/start", {"mint_id": ENDED, "record_session": True})
    assert status == 404, (status, body)
    assert body["error"] == f"Stream not found or not live for mint_id: {ENDED}"
    status, body = post("/api/live-sessions/start", {"mint_id": ENDED, "record_session": "yes"})
    assert status == 422 and body["detail"][0]["loc"] == ["body", "record_session"]
    health, _ = get_json("/healthz")
    assert health["db"]["schema_version"] >= 2 and health["status"] in ("ok", "degraded")


def test_sigterm_stops_cleanly():
    assert haven.stop() == 0
    assert "CRITICAL" not in haven.log_text()


def cleanup():
    if haven is not None:
        haven.cleanup()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    # No test can run without the data: a failing prepare() bails out, saying why, once.
    harness.main(globals(), setup=prepare, cleanup=cleanup)

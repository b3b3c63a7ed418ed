#!/usr/bin/env python3
"""Report lines for bench/live.sh from the JSON of bench/viewers.mjs and bench/first-frame.mjs.

  live_report.py jpeg-step FILE                 one JPEG fan-out step
  live_report.py enc-step FILE IDLE_CPU         one encoded fan-out step (IDLE_CPU: haven, 0 viewers)
  live_report.py ttff FILE LABEL                one time-to-first-frame series
  live_report.py summary DIR IDLE ONE ENC_IDLE  medians and ratios of the whole run
"""
import glob
import json
import os
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def kb(x):
    return f"{x / 1000:.0f} kB/s"


def src_fps(r, key):
    m = r.get("metrics_per_s") or {}
    return m.get(key, float("nan"))


def full_rate(r, src):
    return sum(1 for f in r["fps"] if f >= 0.9 * src)


def cpu_line(r):
    return (f"haven {r['haven_cpu']:.0f}% (main thread {r['haven_main_cpu']:.0f}%), clients {r['client_cpu']:.0f}% "
            f"({r['workers']} proc, busiest {r['client_cpu_max_worker']:.0f}%), "
            f"SFU {r['sfu_cpu']:.0f}%, machine {r['machine_busy']:.0f}% of {os.cpu_count() * 100}%")


def jpeg_step(path):
    r = load(path)
    src = src_fps(r, "video_frames_decoded")
    print(f"  {r['viewers']:4d} JPEG viewers      : {full_rate(r, src)} at full rate (>= 90% of "
          f"{src:.1f} decoded fps), median {med(r['fps']):.1f} fps, min {min(r['fps']):.1f}, "
          f"closed {r['closed']}, {kb(med(r['bytes_per_s']))} per viewer")
    print(f"                            CPU: {cpu_line(r)}")


def enc_step(path, idle):
    r = load(path)
    m = r.get("metrics_per_s") or {}
    src = src_fps(r, "video_frames_received")
    n = r["viewers"]
    per = (r["haven_cpu"] - idle) / n
    print(f"  {n:4d} encoded viewers   : {full_rate(r, src)} at full rate (>= 90% of {src:.1f} "
          f"fps received by haven), median {med(r['fps']):.1f} fps, min {min(r['fps']):.1f}, "
          f"closed {r['closed']}, not started {r['not_ready']}, {kb(med(r['bytes_per_s']))} per "
          f"viewer (joined in {r['join_seconds']:.1f} s)")
    print(f"                            haven sent {m.get('video_frames_sent', 0) / n:.1f} fps per "
          f"viewer, skipped {m.get('video_frames_dropped_viewer', 0):.1f} frames/s in all, decoded "
          f"{m.get('video_frames_decoded', 0):.1f} fps; haven CPU per viewer "
          f"{per:.3f}% of one core ((haven - {idle:.1f}%) / {n})")
    print(f"                            CPU: {cpu_line(r)}")


def ttff(path, label):
    r = load(path)
    ms = r["ms"]
    extra = f", {r['not_key']} not a key frame" if r["mode"] == "encoded" else ""
    if ms:
        print(f"  first frame, {label:<16}: median {med(ms):.1f} ms, min {min(ms):.1f}, max "
              f"{max(ms):.1f} over {len(ms)} joins (failed {r['failed']}{extra}; "
              f"connect median {med(r['connect_ms']):.1f} ms)")
    else:
        print(f"  first frame, {label:<16}: no join got a frame (failed {r['failed']})")


def summary(d, idle, one, enc_idle):
    idle, one, enc_idle = float(idle), float(one), float(enc_idle)
    print("summary (medians from this run; ratios)")
    # A JPEG viewer's bytes: the 1-viewer step if there was one (its window comes after the
    # decoder's start), else the CPU measurement's viewer.
    one_path = os.path.join(d, "jpeg-1.json")
    jpeg_one = load(one_path if os.path.exists(one_path) else os.path.join(d, "one.json"))
    enc = sorted((load(p) for p in glob.glob(os.path.join(d, "enc-*.json"))),
                 key=lambda r: r["viewers"])
    enc_one = next((r for r in enc if r["viewers"] == 1), None)
    bj = med(jpeg_one["bytes_per_s"])
    if enc_one:
        be = med(enc_one["bytes_per_s"])
        print(f"  bytes per viewer          : JPEG {kb(bj)}, encoded {kb(be)}: encoded = "
              f"{be / bj:.2f} x JPEG (JPEG / encoded = {bj / be:.1f})")
    dj = one - idle
    print(f"  haven CPU, 0 -> 1 JPEG    : {idle:.1f}% -> {one:.1f}% of one core "
          f"(x{one / idle if idle else float('nan'):.1f}; decode + JPEG {dj:.1f}%)")
    for r in enc:
        src = src_fps(r, "video_frames_received")
        per = (r["haven_cpu"] - enc_idle) / r["viewers"]
        eq = f", one JPEG session = {dj / per:.0f} encoded viewers" if per > 0 else ""
        print(f"  encoded x {r['viewers']:<4d}           : {full_rate(r, src)}/{r['viewers']} at "
              f"full rate; haven {enc_idle:.1f}% -> {r['haven_cpu']:.1f}% (x"
              f"{r['haven_cpu'] / enc_idle if enc_idle else float('nan'):.1f}), "
              f"{per:.3f}% per viewer{eq}; clients {r['client_cpu']:.0f}%")
    t = {k: load(os.path.join(d, f"ttff-{k}.json")) for k in
         ("jpeg-idle", "jpeg-watch", "encoded-idle", "encoded-watch")
         if os.path.exists(os.path.join(d, f"ttff-{k}.json"))}
    if len(t) == 4 and all(v["ms"] for v in t.values()):
        ji, jw = med(t["jpeg-idle"]["ms"]), med(t["jpeg-watch"]["ms"])
        ei, ew = med(t["encoded-idle"]["ms"]), med(t["encoded-watch"]["ms"])
        print(f"  first frame (median)      : JPEG {ji:.1f} ms alone / {jw:.1f} ms watched; "
              f"encoded {ei:.1f} / {ew:.1f} ms; JPEG / encoded = "
              f"{ji / ei if ei else float('inf'):.1f} (alone), "
              f"{jw / ew if ew else float('inf'):.1f} (watched)")
    big = enc[-1] if enc else None
    if big:
        src = src_fps(big, "video_frames_received")
        ok = full_rate(big, src) == big["viewers"] and big["viewers"] >= 1000
        print(f"  target 1000 encoded viewers at full rate: "
              f"{'met' if ok else 'NOT met'} ({full_rate(big, src)}/{big['viewers']})")
    if "encoded-idle" in t and t["encoded-idle"]["ms"]:
        worst = max(med(t["encoded-idle"]["ms"]), med(t["encoded-watch"]["ms"]))
        print(f"  target first frame < 300 ms (encoded): {'met' if worst < 300 else 'NOT met'} "
              f"(worse median {worst:.1f} ms)")


if __name__ == "__main__":
    cmd, *a = sys.argv[1:]
    {"jpeg-step": jpeg_step, "enc-step": lambda p, i: enc_step(p, float(i)), "ttff": ttff,
     "summary": summary}[cmd](*a)

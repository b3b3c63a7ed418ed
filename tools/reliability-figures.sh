#!/bin/sh
# Prints the figures docs/RELIABILITY.md refers to, from what is in the tree and the build
# directories now, so the document never quotes a hand-copied number:
#
#   tools/reliability-figures.sh [SECTION...]     sections: tests run fuzz options soak
#                                                 (default: all, in that order)
#   tests    test programs per Meson suite (build/meson-info), the programs each `make test`
#            stage runs, and test cases in the C and Python sources
#   run      the last `make test`: checks passed/failed per stage as tools/test-summary.py
#            counts them (the stage's joined Meson test log), sanitizer and valgrind findings,
#            stage times (build/meson-logs/run-tests), checks per end-to-end program
#   fuzz     fuzz targets, corpus inputs per target (tests/fuzz/corpora), and the last
#            `make fuzz` run per target (tests/fuzz/RESULTS.md, written by tools/fuzz.sh)
#   options  defaults of the limits RELIABILITY.md lists (src/core/config_options.c)
#   soak     the last `make soak` (docs/soak.csv and the title of docs/soak.svg, written by
#            bench/soak.py)
#
# Reads files only: no network, no build, no test run; well under a second. Python 3 standard
# library. BUILD and HAVEN_ASAN_BUILD name the build directories as for tools/run-tests.sh.
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export ROOT
exec python3 - "$@" <<'PYTHON'
import datetime
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.environ["ROOT"]
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
ASAN_BUILD = os.path.join(ROOT, os.environ.get("HAVEN_ASAN_BUILD", "build-asan"))
SECTIONS = ["tests", "run", "fuzz", "options", "soak"]


def rel(path):
    r = os.path.relpath(path, ROOT)
    return path if r.startswith("..") else r


def mtime(path):
    t = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M UTC")


def git(*args):
    try:
        out = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def read_log(path):
    """The entries of a Meson testlog.json (one JSON object a line), or None."""
    try:
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return None


# TAP lines exactly as tools/test-summary.py counts them.
def tap(entry):
    out = entry.get("stdout") or ""
    ok = len(re.findall(r"^ok \d+(?! .*# SKIP)", out, re.M))
    skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M))
    bad = len(re.findall(r"^not ok \d+.*$", out, re.M))
    return ok, bad, skip


def short_name(entry):
    return entry.get("name", "?").split(" / ")[-1]


# ---- tests ----------------------------------------------------------------------------------

def section_tests():
    print("== tests: what is defined")
    intro = os.path.join(BUILD, "meson-info", "intro-tests.json")
    try:
        with open(intro, encoding="utf-8") as f:
            tests = json.load(f)
    except (OSError, ValueError):
        print(f"  {rel(intro)} missing: configure the build first (make build)")
        tests = None
    if tests is not None:
        suites = {}
        for t in tests:
            for s in t["suite"]:
                suites.setdefault(s.split(":")[-1], []).append(t["name"])
        print(f"  test programs: {len(tests)} ({rel(intro)})")
        for s in sorted(suites):
            print(f"    {s:<12} {len(suites[s]):>3}")

        def count(keep):
            return sum(1 for t in tests
                       if keep({s.split(':')[-1] for s in t["suite"]}))
        # The stages of tools/run-tests.sh: normal every suite; asan every suite but lint and
        # fakes; valgrind the unit suite.
        print("  programs per `make test` stage:")
        print(f"    normal       {len(tests):>3}")
        print(f"    asan         {count(lambda s: not s & {'lint', 'fakes'}):>3}")
        print(f"    valgrind     {count(lambda s: 'unit' in s):>3}")
    c_cases = 0
    c_files = 0
    for d in ("unit", "livekit", "media"):
        top = os.path.join(ROOT, "tests", d)
        for name in sorted(os.listdir(top)) if os.path.isdir(top) else []:
            if name.startswith("test-") and name.endswith(".c"):
                with open(os.path.join(top, name), encoding="utf-8") as f:
                    n = len(re.findall(r"\bg_test_add(?:_func|_data_func|_vtable)?\s*\(",
                                       f.read()))
                c_cases += n
                c_files += 1
    py_cases = 0
    py_files = 0
    top = os.path.join(ROOT, "tests", "integration")
    for name in sorted(os.listdir(top)) if os.path.isdir(top) else []:
        if name.startswith("test_") and name.endswith(".py"):
            with open(os.path.join(top, name), encoding="utf-8") as f:
                py_cases += len(re.findall(r"^\s*(?:async\s+)?def test_\w+", f.read(), re.M))
            py_files += 1
    print(f"  test cases in the sources: C (g_test_add*) {c_cases} in {c_files} files; "
          f"Python (def test_*) {py_cases} in {py_files} files")


# ---- run ------------------------------------------------------------------------------------

SANITIZER = re.compile(r"ERROR: (?:AddressSanitizer|LeakSanitizer)|runtime error:|"
                       r"SUMMARY: UndefinedBehaviorSanitizer")


def summary_line(path):
    try:
        out = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "test-summary.py"),
                              path], capture_output=True, text=True, timeout=10)
        lines = out.stdout.strip().splitlines()
        return lines[-1] if lines else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def valgrind_findings(entries):
    errors = 0
    lost = 0
    for e in entries:
        text = (e.get("stdout") or "") + (e.get("stderr") or "")
        errors += sum(int(n) for n in re.findall(r"ERROR SUMMARY: (\d+) errors", text))
        for kind in ("definitely", "indirectly", "possibly"):
            lost += sum(int(n.replace(",", ""))
                        for n in re.findall(kind + r" lost: ([\d,]+) bytes", text))
    return errors, lost


def section_run():
    print("== run: the last `make test` (tools/run-tests.sh)")
    stages = [("normal", os.path.join(BUILD, "meson-logs", "testlog.json")),
              ("asan", os.path.join(ASAN_BUILD, "meson-logs", "testlog-asan.json")),
              ("valgrind", os.path.join(BUILD, "meson-logs", "testlog-valgrind.json"))]
    normal = None
    for stage, path in stages:
        entries = read_log(path)
        if entries is None:
            print(f"  {stage:<9} {rel(path)} missing: no complete run (or one in progress)")
            continue
        results = {}
        for e in entries:
            results[e.get("result", "?")] = results.get(e.get("result", "?"), 0) + 1
        res = ", ".join(f"{k} {v}" for k, v in sorted(results.items()))
        print(f"  {stage:<9} {summary_line(path)} (checks); {len(entries)} programs: {res}; "
              f"log {rel(path)} of {mtime(path)}")
        if stage == "normal":
            normal = entries
        if stage == "asan":
            hits = [short_name(e) for e in entries
                    if SANITIZER.search((e.get("stdout") or "") + (e.get("stderr") or ""))]
            print(f"            sanitizer reports: {len(hits)} programs"
                  + (f" ({', '.join(hits)})" if hits else ""))
        if stage == "valgrind":
            errors, lost = valgrind_findings(entries)
            print(f"            valgrind: {errors} errors, {lost} bytes lost "
                  "(definitely + indirectly + possibly)")
    status_dir = os.path.join(BUILD, "meson-logs", "run-tests")
    times = []
    if os.path.isdir(status_dir):
        for name in sorted(os.listdir(status_dir)):
            if name.endswith(".status"):
                with open(os.path.join(status_dir, name), encoding="utf-8") as f:
                    parts = f.read().split()
                if len(parts) >= 2:
                    times.append(f"{name[:-7]} {parts[0]} in {parts[1]} s")
    if times:
        print(f"  stage times ({rel(status_dir)}, {mtime(status_dir)}): " + "; ".join(times))
    if normal:
        fuzz = [e for e in normal if "fuzz" in e.get("name", "").split(" / ")[0]]
        if fuzz:
            ok = sum(1 for e in fuzz if e.get("result") == "OK")
            print(f"  fuzz corpus replay (normal): {ok} of {len(fuzz)} targets OK")
        e2e = [e for e in normal
               if e.get("name", "").split(" / ")[0] in ("haven:integration", "haven:fakes")]
        if e2e:
            print("  end-to-end programs (normal): checks ok / not ok, result")
            for e in sorted(e2e, key=short_name):
                ok, bad, _ = tap(e)
                print(f"    {short_name(e):<20} {ok:>3} / {bad:<3} {e.get('result', '?')}")


# ---- fuzz -----------------------------------------------------------------------------------

def section_fuzz():
    print("== fuzz")
    fuzz_dir = os.path.join(ROOT, "tests", "fuzz")
    targets = sorted(n[len("fuzz-"):-2] for n in os.listdir(fuzz_dir)
                     if n.startswith("fuzz-") and n.endswith(".c"))
    total = 0
    rows = []
    for t in targets:
        n = 0
        for _, _, files in os.walk(os.path.join(fuzz_dir, "corpora", t)):
            n += len(files)
        total += n
        rows.append((t, n))
    print(f"  targets: {len(targets)}; corpus inputs replayed by every `make test`: {total}")
    for t, n in rows:
        print(f"    {t:<16} {n:>5}")
    try:
        with open(os.path.join(ROOT, "tools", "fuzz.sh"), encoding="utf-8") as f:
            m = re.search(r"FUZZ_SECONDS:-(\d+)", f.read())
        if m:
            print(f"  `make fuzz` seconds per target by default (FUZZ_SECONDS): {m.group(1)}")
    except OSError:
        pass
    results = os.path.join(fuzz_dir, "RESULTS.md")
    try:
        with open(results, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        print(f"  {rel(results)} missing: no `make fuzz` run recorded")
        return
    m = re.search(r"with\s+(.*?clang version [\d.]+)", text)
    head = None
    lines = []
    for line in text.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        if head is None:
            head = cells
            continue
        lines.append(dict(zip(head, cells)))
    crashes = sum(int(r.get("Crashes", "0").replace(",", "") or 0) for r in lines)
    print(f"  last `make fuzz` per target ({rel(results)}"
          + (f"; {m.group(1)}" if m else "") + f"): crashes in total {crashes}")
    print(f"    {'target':<16} {'date (UTC)':<17} {'seconds':>7} {'executions':>12} "
          f"{'corpus':>6} {'crashes':>7}")
    for r in lines:
        print(f"    {r.get('Target', '?'):<16} {r.get('Date (UTC)', '?'):<17} "
              f"{r.get('Seconds', '?'):>7} {r.get('Executions', '?'):>12} "
              f"{r.get('Corpus', '?'):>6} {r.get('Crashes', '?'):>7}")


# ---- options --------------------------------------------------------------------------------

LIMITS = ["HAVEN_MAX_SESSIONS", "HAVEN_MAX_VIEWERS_PER_SESSION", "HAVEN_MAX_VIEWERS",
          "HAVEN_START_RATE", "HAVEN_MAX_BODY", "HAVEN_MAX_HEADER", "HAVEN_MAX_VIEWER_MESSAGE",
          "HAVEN_LISTEN", "HAVEN_STREAMER_GRACE"]


def section_options():
    path = os.path.join(ROOT, "src", "core", "config_options.c")
    print(f"== options: defaults ({rel(path)})")
    with open(path, encoding="utf-8") as f:
        rows = dict(re.findall(r'\{\s*"[^"]+",\s*"(HAVEN_[A-Z0-9_]+)",\s*OPT_\w+,\s*"([^"]*)"',
                               f.read()))
    for name in LIMITS:
        print(f"  {name:<30} {rows.get(name, '(not in the table)')}")


# ---- soak -----------------------------------------------------------------------------------

def section_soak():
    csv_path = os.path.join(ROOT, "docs", "soak.csv")
    print(f"== soak: the last `make soak` ({rel(csv_path)})")
    try:
        with open(csv_path, encoding="utf-8") as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        print("  no samples: run `make soak`")
        return
    samples = [tuple(float(x) for x in r.split(",")) for r in rows if r.strip()]
    if not samples:
        print("  no samples: run `make soak`")
        return
    warmup = 180
    try:
        with open(os.path.join(ROOT, "bench", "soak.py"), encoding="utf-8") as f:
            m = re.search(r"^WARMUP_S = (\d+)", f.read(), re.M)
        warmup = int(m.group(1)) if m else warmup
    except OSError:
        pass
    commit = git("log", "-1", "--format=%h %cs", "--", "docs/soak.csv")
    if commit:
        print(f"  committed with {commit}")
    steps = [b[0] - a[0] for a, b in zip(samples, samples[1:])]
    print(f"  {len(samples)} samples over {samples[-1][0] / 60:.1f} min, every "
          f"{statistics.median(steps) if steps else 0:.0f} s")
    # As bench/soak.py judges them: the samples after the warm-up, their first and last fifth.
    post = [s for s in samples if s[0] >= warmup] or samples
    k = max(1, len(post) // 5)
    first = sum(s[1] for s in post[:k]) / k / 1024
    last = sum(s[1] for s in post[-k:]) / k / 1024
    print(f"  RSS after the {warmup} s warm-up: first fifth {first:.1f} MiB, last fifth "
          f"{last:.1f} MiB (growth {last - first:+.2f} MiB); max "
          f"{max(s[1] for s in samples) / 1024:.1f} MiB")
    base = [int(s[2] - s[3]) for s in post if s[3] >= 0]
    print(f"  open fds after the warm-up besides one socket per viewer: {min(base)}..{max(base)}"
          f" (all fds {int(min(s[2] for s in post))}..{int(max(s[2] for s in post))})")
    svg = os.path.join(ROOT, "docs", "soak.svg")
    try:
        with open(svg, encoding="utf-8") as f:
            m = re.search(r"(\d+) viewer joins / (\d+) leaves", f.read())
        if m:
            print(f"  viewers: {m.group(1)} joins, {m.group(2)} leaves ({rel(svg)})")
    except OSError:
        pass


def main(argv):
    wanted = argv or SECTIONS
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        print(f"reliability-figures: unknown section {' '.join(unknown)} "
              f"(sections: {' '.join(SECTIONS)})", file=sys.stderr)
        return 2
    head = git("describe", "--always", "--dirty")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"reliability-figures: tree at {head or 'unknown commit'}, {now}")
    for s in wanted:
        globals()["section_" + s]()
    return 0


sys.exit(main(sys.argv[1:]))
PYTHON

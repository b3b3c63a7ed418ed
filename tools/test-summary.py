#!/usr/bin/env python3
"""Prints 'N passed, N failed' for one or more Meson test logs, counting TAP subtests where a
test speaks TAP.

Usage: test-summary.py [TESTLOG.json ...] (default build/meson-logs/testlog.json). `make test`
writes three: the normal run (build/meson-logs/testlog.json), the ASan+UBSan run
(build-asan/meson-logs/testlog-asan.json) and the valgrind run
(build/meson-logs/testlog-valgrind.json); .ci/run passes all three. A log that is missing or
unreadable counts as one failure (its stage did not run to the end).

Meson's own summary counts whole test programs; CI wants one line that counts every check, so
the last line printed is the only one of that form. Exits 1 when anything failed or when no
test ran at all.
"""
import json
import re
import sys


def count(path, names):
    """(passed, failed, skipped) in one Meson testlog.json; appends to names what failed
    (a test's name, with its failing TAP lines)."""
    passed = failed = skipped = 0
    try:
        lines = open(path, encoding="utf-8").read().splitlines()
    except OSError as e:
        print(f"test-summary: cannot read {path}: {e}", file=sys.stderr)
        return 0, 1, 0
    for line in lines:
        if not line.strip():
            continue
        t = json.loads(line)
        result = t.get("result", "")
        out = t.get("stdout") or ""
        tap_ok = len(re.findall(r"^ok \d+(?! .*# SKIP)", out, re.M))
        tap_skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M))
        fails = re.findall(r"^not ok \d+.*$", out, re.M)
        tap_fail = len(fails)
        name = t.get("name", "?")
        names.extend(f"{name}: {f}" for f in fails)
        if tap_ok + tap_fail + tap_skip > 0:
            passed += tap_ok
            failed += tap_fail
            skipped += tap_skip
            # A program that crashed or timed out after some subtests (or passed them all and
            # then failed: a leak report at exit, a valgrind error) still counts as a failure.
            if result not in ("OK", "EXPECTEDFAIL", "SKIP") and tap_fail == 0:
                failed += 1
                names.append(f"{name}: {result} after its subtests")
        elif result in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif result == "SKIP":
            skipped += 1
        else:
            failed += 1
            names.append(f"{name}: {result}")
    return passed, failed, skipped


paths = sys.argv[1:] or ["build/meson-logs/testlog.json"]
passed = failed = skipped = 0
for path in paths:
    names = []
    p, f, s = count(path, names)
    if len(paths) > 1:
        print(f"test-summary: {path}: ok {p}, not ok {f}" + (f", skipped {s}" if s else ""))
    for n in names:
        print(f"test-summary:   failed: {n}")
    passed += p
    failed += f
    skipped += s

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)

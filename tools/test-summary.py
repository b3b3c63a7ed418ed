#!/usr/bin/env python3
"""Prints 'N passed, N failed' for a Meson run, counting TAP subtests where a test speaks TAP.

Meson's own summary counts whole test programs; CI wants one line that counts every check.
Exits 1 when anything failed or when no test ran at all.
"""
import json
import re
import sys

path = sys.argv[1] if len(sys.argv) > 1 else "build/meson-logs/testlog.json"
passed = failed = skipped = 0
try:
    lines = open(path, encoding="utf-8").read().splitlines()
except OSError as e:
    print(f"test-summary: cannot read {path}: {e}", file=sys.stderr)
    print("0 passed, 1 failed")
    sys.exit(1)

for line in lines:
    if not line.strip():
        continue
    t = json.loads(line)
    result = t.get("result", "")
    out = t.get("stdout") or ""
    tap_ok = len(re.findall(r"^ok \d+(?! .*# SKIP)", out, re.M))
    tap_skip = len(re.findall(r"^ok \d+.*# SKIP", out, re.M))
    tap_fail = len(re.findall(r"^not ok \d+", out, re.M))
    if tap_ok + tap_fail + tap_skip > 0:
        passed += tap_ok
        failed += tap_fail
        skipped += tap_skip
        # A program that crashed or timed out after some subtests still counts as a failure.
        if result not in ("OK", "EXPECTEDFAIL", "SKIP") and tap_fail == 0:
            failed += 1
    elif result in ("OK", "EXPECTEDFAIL"):
        passed += 1
    elif result == "SKIP":
        skipped += 1
    else:
        failed += 1

line = f"{passed} passed, {failed} failed"
if skipped:
    line += f", {skipped} skipped"
print(line)
sys.exit(1 if failed or passed == 0 else 0)

#!/bin/sh
# Fuzzes haven's parsers of outside input with libFuzzer (tests/fuzz/README.md).
#
#   tools/fuzz.sh [TARGET...]        default: every target, one after the other
#   FUZZ_SECONDS=600                 time per target
#   FUZZ_BUILD=build-fuzz            the clang build directory
#
# Builds the targets with clang -fsanitize=fuzzer,address,undefined in FUZZ_BUILD (installing
# clang first if needed), runs each for FUZZ_SECONDS on one core with the committed corpus
# (tests/fuzz/corpora/<target>) as seeds and tests/fuzz/dicts/<target>.dict if there is one,
# merges inputs that add coverage back into that corpus
# (-merge=1), minimizes any crash, prints per target the time, executions, exec/s, coverage,
# corpus size and crashes, and records them in tests/fuzz/RESULTS.md. Exit status 1 when a
# target crashed.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BUILD=${FUZZ_BUILD:-build-fuzz}
SECONDS_PER=${FUZZ_SECONDS:-600}
ALL="http_route http_json_body ws_viewer_text pumpfun_json livekit_signal jwt config_values config_file"
TARGETS=${*:-$ALL}

sh tools/install-deps.sh
sh tools/install-fuzz-deps.sh

if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" --buildtype=debugoptimized \
        -Db_sanitize=address,undefined -Db_lundef=false \
        "-Dc_args=-fsanitize=fuzzer-no-link -fno-sanitize-recover=undefined"
fi
exes=""
for t in $TARGETS; do
    case " $ALL " in
    *" $t "*) exes="$exes tests/fuzz/fuzz-$t" ;;
    *) echo "fuzz: unknown target $t (targets: $ALL)" >&2; exit 2 ;;
    esac
done
# shellcheck disable=SC2086
ninja -C "$BUILD" $exes

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
RUN="$BUILD/fuzz-run"
mkdir -p "$RUN"
failed=0
printf '%-16s %8s %12s %9s %10s %8s %8s %8s\n' target seconds executions exec/s cov ft corpus crashes
for t in $TARGETS; do
    exe="$BUILD/tests/fuzz/fuzz-$t"
    corpus="tests/fuzz/corpora/$t"
    work="$RUN/$t"
    rm -rf "$work"
    mkdir -p "$work/new" "$work/artifacts"
    dict=""
    if [ -f "tests/fuzz/dicts/$t.dict" ]; then
        dict="-dict=tests/fuzz/dicts/$t.dict"
    fi
    start=$(date +%s)
    set +e
    # shellcheck disable=SC2086
    "$exe" -max_total_time="$SECONDS_PER" -print_final_stats=1 -timeout=25 $dict \
        -artifact_prefix="$work/artifacts/" "$work/new" "$corpus" >"$work/fuzz.log" 2>&1
    rc=$?
    set -e
    secs=$(($(date +%s) - start))
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$work/fuzz.log" | tail -n 1)
    [ -n "$execs" ] || execs=0
    last=$(grep -E '^#[0-9]+.*cov: ' "$work/fuzz.log" | tail -n 1 || true)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
    crashes=$(find "$work/artifacts" -type f | wc -l)
    if [ "$crashes" -gt 0 ]; then
        failed=1
        for a in "$work"/artifacts/*; do
            case "$a" in *minimized*) continue ;; esac
            "$exe" -minimize_crash=1 -max_total_time=60 \
                -exact_artifact_path="$a.minimized" "$a" >"$a.minimize.log" 2>&1 || true
            echo "fuzz: $t: crash $a (minimized: $a.minimized); log: $work/fuzz.log" >&2
        done
    fi
    # Keep what adds coverage (never a crashing input: merge skips those).
    "$exe" -merge=1 "$corpus" "$work/new" >"$work/merge.log" 2>&1 || true
    files=$(find "$corpus" -type f | wc -l)
    rate=$((execs / (secs > 0 ? secs : 1)))
    printf '%-16s %8s %12s %9s %10s %8s %8s %8s\n' "$t" "$secs" "$execs" "$rate" "${cov:-?}" \
        "${ft:-?}" "$files" "$crashes"
    python3 - "$t" "$secs" "$execs" "$rate" "${cov:-?}" "${ft:-?}" "$files" "$crashes" "$rc" \
        "$SECONDS_PER" <<'PY'
import datetime, os, re, subprocess, sys
t, secs, execs, rate, cov, ft, files, crashes, rc, budget = sys.argv[1:]
path = "tests/fuzz/RESULTS.md"
rows = {}
if os.path.exists(path):
    for line in open(path):
        m = re.match(r"^\| `([a-z_]+)` \|", line)
        if m:
            rows[m.group(1)] = line.rstrip("\n")
date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
rows[t] = (f"| `{t}` | {date} | {secs} | {int(execs):,} | {int(rate):,} | {cov} | {ft} | {files} "
           f"| {crashes} |")
try:
    clang = subprocess.run(["clang", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
except OSError:
    clang = "clang"
order = "http_route http_json_body ws_viewer_text pumpfun_json livekit_signal jwt config_values config_file".split()
with open(path, "w") as f:
    f.write("# Fuzzing results\n\n")
    f.write("Written by `tools/fuzz.sh` (`make fuzz`): the last run of each target, one target at a "
            "time on one core, with\n" + clang + ", `-fsanitize=fuzzer,address,undefined`.\n\n")
    f.write("    make fuzz                                  # every target, FUZZ_SECONDS=600 each\n")
    f.write("    FUZZ_SECONDS=600 tools/fuzz.sh http_route  # one target\n\n")
    f.write("Executions: libFuzzer's `stat::number_of_executed_units`. Coverage: `cov` (edges) and "
            "`ft` (features) of the\nlast status line. Corpus: files in `tests/fuzz/corpora/<target>` "
            "after the run's `-merge=1`. Crashes:\nartifacts of the run (a run stops at its first "
            "crash; findings and their fixes are listed in README.md).\n\n")
    f.write("| Target | Date (UTC) | Seconds | Executions | Exec/s | cov | ft | Corpus | Crashes |\n")
    f.write("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    for name in order + sorted(set(rows) - set(order)):
        if name in rows:
            f.write(rows[name] + "\n")
PY
    if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        echo "fuzz: $t exited with $rc; see $work/fuzz.log" >&2
        failed=1
    fi
done
exit $failed

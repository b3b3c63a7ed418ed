#!/bin/sh
# Runs the whole offline suite three ways (tests/sanitizers/README.md):
#   normal    every suite in BUILD (as built by `make build`);
#   asan      every suite but lint and fakes (the fake SFU's self-test runs no haven code) in an
#             AddressSanitizer + UndefinedBehaviorSanitizer build
#             (ASAN_BUILD, set up here on first use) with the 'asan' test setup: leak checks,
#             UBSan findings fatal, suppressions in tests/sanitizers/lsan.supp;
#   valgrind  the unit suite of BUILD under valgrind's memcheck (the 'valgrind' test setup).
# Each writes its own Meson test log (testlog.json, testlog-asan.json, testlog-valgrind.json);
# tools/test-summary.py counts them together. HAVEN_TEST_STAGES picks stages (default all three).
#
# In that order, but not one after the other (on 2 cores the suite is mostly waiting: for
# streams to play, timeouts to pass, processes to start):
#   1. the builds (BUILD, then ASAN_BUILD);
#   2. the unit, media, LiveKit-socket, fuzz-replay, install and lint suites of the normal and
#      ASan stages, and the valgrind stage, at the same time: short, and some of them time
#      things, so before the end-to-end tests load the machine;
#   3. the end-to-end suites (integration, fakes) of the normal stage, HAVEN_TEST_JOBS tests at
#      once (default 3): each picks free ports and has its own haven, fakes and files; the tests
#      that measure frame rates or audio against the wall clock are `is_parallel : false` in
#      tests/meson.build, so Meson runs each of them alone;
#   4. then those of the ASan stage, HAVEN_TEST_ASAN_JOBS at once (default 2: a sanitized
#      haven needs two to three times the CPU).
# Phases 3 and 4 do not overlap: Meson's is_parallel holds only within one `meson test`, and
# two loaded stages at once on 2 cores miss the frame-rate floors.
# Each stage's two parts are joined into its test log. HAVEN_TEST_SERIAL=1 runs the parts of
# phase 2 one after the other too.
#
# Everything that opens sockets runs inside a loopback-only network namespace, so no test can
# reach another address even by mistake: the script re-runs itself inside one.
set -eu
BUILD=${1:-build}
ASAN_BUILD=${HAVEN_ASAN_BUILD:-build-asan}
STAGES=${HAVEN_TEST_STAGES:-normal asan valgrind}
JOBS=${HAVEN_TEST_JOBS:-3}
ASAN_JOBS=${HAVEN_TEST_ASAN_JOBS:-2}
SERIAL=${HAVEN_TEST_SERIAL:-}

if [ -z "${HAVEN_TEST_NETNS:-}" ]; then
    export HAVEN_TEST_NETNS=1
    inner='ip link set lo up && exec sh "$0" "$@"'
    if unshare -n true 2>/dev/null; then
        exec unshare -n sh -c "$inner" "$0" "$@"
    elif unshare -rn true 2>/dev/null; then
        exec unshare -rn sh -c "$inner" "$0" "$@"
    fi
    echo "run-tests: cannot create a network namespace; running on the host (tests bind 127.0.0.1 only)" >&2
fi

has_stage() {
    case " $STAGES " in *" $1 "*) return 0 ;; esac
    return 1
}
for s in $STAGES; do
    case $s in
    normal | asan | valgrind) ;;
    *)
        echo "run-tests: unknown stage '$s' (normal, asan, valgrind)" >&2
        exit 1
        ;;
    esac
done

OUT=$BUILD/meson-logs/run-tests
mkdir -p "$OUT"
rm -f "$OUT"/*
rc=0
report=""
T0=$(date +%s)

note() {  # note NAME STATUS SECONDS: one line of the final report
    report="$report
run-tests: $1 $2 in $3 s"
    [ "$2" = ok ] || rc=1
}

stage() {  # stage NAME COMMAND...: runs one stage in the foreground, records its status and time
    name=$1
    shift
    echo "run-tests: ---- $name: $*"
    t0=$(date +%s)
    if "$@"; then st=ok; else st=FAILED; fi
    note "$name" $st $(($(date +%s) - t0))
    [ $st = ok ]
}

# stage_bg NAME COMMAND...: starts a stage in the background, its output to $OUT/NAME.txt;
# stages_wait collects them (prints their output and records their status and time, in the
# order they were started). With HAVEN_TEST_SERIAL, stage_bg runs it to the end at once.
started=""
stage_bg() {
    name=$1
    shift
    echo "run-tests: ---- $name: $*"
    (
        t0=$(date +%s)
        if "$@" > "$OUT/$name.txt" 2>&1; then st=ok; else st=FAILED; fi
        echo "$st $(($(date +%s) - t0)) $(($(date +%s) - T0))" > "$OUT/$name.status"
    ) &
    started="$started $name"
    if [ -n "$SERIAL" ]; then
        wait
    fi
}
stages_wait() {
    wait
    for name in $started; do
        echo "run-tests: ---- $name: output"
        cat "$OUT/$name.txt"
        st=FAILED secs=0 end=0
        [ -f "$OUT/$name.status" ] && read -r st secs end < "$OUT/$name.status"
        echo "run-tests: ---- $name: $st in $secs s (ended $end s after the start)"
        note "$name" "$st" "$secs"
    done
    started=""
}

asan_build() {
    # -Db_lundef=false: the sanitizer runtimes are linked into executables, not libraries.
    # meson.build adds -fno-sanitize-recover=undefined (Meson adds -fno-omit-frame-pointer).
    if [ ! -f "$ASAN_BUILD/build.ninja" ]; then
        meson setup "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false || return 1
    elif ! grep -q '"name": "b_sanitize", "value": "address,undefined"' \
            "$ASAN_BUILD/meson-info/intro-buildoptions.json" 2>/dev/null; then
        meson configure "$ASAN_BUILD" -Db_sanitize=address,undefined -Db_lundef=false || return 1
    fi
    ninja -C "$ASAN_BUILD"
}

E2E="--suite integration --suite fakes"
NOT_E2E="--no-suite integration --no-suite fakes"

normal_tests() {  # normal_tests PART MESON-OPTIONS...
    part=$1
    shift
    meson test -C "$BUILD" --no-rebuild --print-errorlogs --logbase "testlog-$part" "$@"
}

asan_tests() {  # asan_tests PART MESON-OPTIONS...
    part=$1
    shift
    # The A/V-offset recording test runs 30 s instead of 120 s here: its 120 s are about drift,
    # which the normal run measures; what ASan needs is the code paths, which 30 s exercise.
    HAVEN_TEST_AV_SECONDS=${HAVEN_TEST_AV_SECONDS_ASAN:-30} \
        meson test -C "$ASAN_BUILD" --no-rebuild --setup asan --no-suite lint \
        --no-suite fakes --print-errorlogs --logbase "testlog-$part" "$@"
}

join_logs() {  # join_logs DIR NAME PARTS...: DIR/meson-logs/NAME.json = the parts' logs
    dir=$1/meson-logs
    name=$2
    shift 2
    : > "$dir/$name.json.tmp"
    for p in "$@"; do
        if [ -f "$dir/$p.json" ]; then
            cat "$dir/$p.json" >> "$dir/$name.json.tmp"
        else
            echo "run-tests: no $dir/$p.json" >&2
            return 1
        fi
    done
    mv "$dir/$name.json.tmp" "$dir/$name.json"
}

# ---- 1. builds --------------------------------------------------------------------------------
normal_ok=1
asan_ok=1
if has_stage normal || has_stage valgrind; then
    rm -f "$BUILD/meson-logs/testlog.json" "$BUILD/meson-logs/testlog-valgrind.json"
    stage build ninja -C "$BUILD" || normal_ok=""
fi
if has_stage asan; then
    rm -f "$ASAN_BUILD/meson-logs/testlog-asan.json"
    stage asan-build asan_build || asan_ok=""
fi

# ---- 2. the short suites and valgrind -------------------------------------------------------
if has_stage normal && [ -n "$normal_ok" ]; then
    stage_bg normal-unit normal_tests unit $NOT_E2E --num-processes 1
fi
if has_stage asan && [ -n "$asan_ok" ]; then
    stage_bg asan-unit asan_tests unit --no-suite integration --num-processes 1
fi
if has_stage valgrind && [ -n "$normal_ok" ]; then
    stage_bg valgrind meson test -C "$BUILD" --no-rebuild --setup valgrind --suite unit \
        --print-errorlogs --num-processes 2
fi
stages_wait

# ---- 3. the end-to-end suites, normal ----------------------------------------------------------
if has_stage normal && [ -n "$normal_ok" ]; then
    stage_bg normal-e2e normal_tests e2e $E2E --num-processes "$JOBS"
    stages_wait
fi

# ---- 4. the end-to-end suites, ASan -------------------------------------------------------------
if has_stage asan && [ -n "$asan_ok" ]; then
    stage_bg asan-e2e asan_tests e2e $E2E --num-processes "$ASAN_JOBS"
    stages_wait
fi

if has_stage normal; then
    join_logs "$BUILD" testlog testlog-unit testlog-e2e || note normal-log FAILED 0
fi
if has_stage asan; then
    join_logs "$ASAN_BUILD" testlog-asan testlog-unit-asan testlog-e2e-asan ||
        note asan-log FAILED 0
fi
echo "$report
run-tests: all in $(($(date +%s) - T0)) s"
exit $rc

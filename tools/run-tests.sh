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
# Everything that opens sockets runs inside a loopback-only network namespace, so no test can
# reach another address even by mistake: the script re-runs itself inside one.
set -eu
BUILD=${1:-build}
ASAN_BUILD=${HAVEN_ASAN_BUILD:-build-asan}
STAGES=${HAVEN_TEST_STAGES:-normal asan valgrind}

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

rc=0
report=""
stage() {  # stage NAME COMMAND...: runs one stage, records its status and time
    name=$1
    shift
    echo "run-tests: ---- $name: $*"
    t0=$(date +%s)
    if "$@"; then st=0; else st=1; rc=1; fi
    report="$report
run-tests: $name $([ $st = 0 ] && echo ok || echo FAILED) in $(($(date +%s) - t0)) s"
    return $st
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

asan_tests() {
    # The A/V-offset recording test runs 30 s instead of 120 s here: its 120 s are about drift,
    # which the normal run measures; what ASan needs is the code paths, which 30 s exercise.
    HAVEN_TEST_AV_SECONDS=${HAVEN_TEST_AV_SECONDS_ASAN:-30} \
        meson test -C "$ASAN_BUILD" --setup asan --no-suite lint --no-suite fakes --print-errorlogs \
        --num-processes 2
}

for s in $STAGES; do
    case $s in
    normal)
        rm -f "$BUILD/meson-logs/testlog.json"
        stage normal meson test -C "$BUILD" --print-errorlogs --num-processes 2 || :
        ;;
    asan)
        rm -f "$ASAN_BUILD/meson-logs/testlog-asan.json"
        { stage asan-build asan_build && stage asan asan_tests; } || :
        ;;
    valgrind)
        rm -f "$BUILD/meson-logs/testlog-valgrind.json"
        stage valgrind meson test -C "$BUILD" --setup valgrind --suite unit --print-errorlogs \
            --num-processes 2 || :
        ;;
    *)
        echo "run-tests: unknown stage '$s' (normal, asan, valgrind)" >&2
        rc=1
        ;;
    esac
done
echo "$report"
exit $rc

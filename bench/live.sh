#!/bin/sh
# Live-session bench: a 1280x720 30 fps stream from the fake LiveKit SFU (H.264 by default, as
# pump.fun's RTMP streams arrive; CODEC=vp8 for VP8), through haven, to WebSocket viewers.
# Reports, from one run:
#   - CPU of decode + JPEG: haven's CPU per second of video with one viewer (decoding on) minus
#     with none (decoding off), as % of one core, and the ratio of the two;
#   - latency from RTP arrival to the WebSocket send (haven's own p50/p99, /api/live-sessions/active);
#   - JPEG viewers at full rate: for N viewers (STEPS), how many receive >= 90% of the decoded
#     frame rate;
#   - time to first frame, JPEG and encoded (?mode=encoded), with another viewer watching and
#     with nobody watching: median over JOINS sequential joins, WebSocket open -> first video;
#   - encoded viewers at full rate: for N encoded viewers (ENC_STEPS), how many receive >= 90% of
#     the video frame rate haven receives from the SFU, and haven's CPU per encoded viewer
#     ((CPU with N - CPU with none) / N);
#   - bytes per second per viewer, JPEG and encoded (WebSocket payloads, all messages).
# Each fan-out step also reports the CPU of haven, of the viewer processes (bench/viewers.mjs,
# split over up to 4 processes), of the fake SFU and of the whole machine over its window, so
# that one can tell whether haven or the client was the limit. Everything runs inside a
# loopback-only network namespace.
# Usage: bench/live.sh [build]   (HAVEN_BIN=path runs that binary instead of build/src/haven)
# Environment: CODEC, SECONDS_PER_STEP (8), STEPS ("1 50 100 200"), ENC_STEPS ("1 100 500
# 1000"), JOINS (10), ENC_WORKERS (viewer processes; default one per 250 viewers, at most 4).
set -eu
BUILD=${1:-build}
if [ -z "${HAVEN_BENCH_IN_NETNS:-}" ]; then
    export HAVEN_BENCH_IN_NETNS=1
    if unshare -n true 2>/dev/null; then
        exec unshare -n sh -c "ip link set lo up && sh '$0' '$BUILD'"
    fi
    echo "bench: no network namespace available; running on the host loopback" >&2
fi
CODEC=${CODEC:-h264}
SECONDS_PER_STEP=${SECONDS_PER_STEP:-8}
STEPS=${STEPS-"1 50 100 200"}
ENC_STEPS=${ENC_STEPS-"1 100 500 1000"}
JOINS=${JOINS:-10}
ENC_WORKERS=${ENC_WORKERS:-0}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
HAVEN_BIN=${HAVEN_BIN:-"$ROOT/$BUILD/src/haven"}
# 1000 viewers need 1000+ descriptors in haven and across the viewer processes.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 8192 ]; then ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"; fi
WORK=$(mktemp -d)
cleanup() {
    for p in ${HAVEN_PID:-} ${SFU_PID:-} ${FAKE_PID:-}; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
MINT=7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump

wait_line() { i=0; until grep -q LISTENING "$1" 2>/dev/null; do i=$((i+1)); [ $i -lt 200 ] || exit 1; sleep 0.1; done; }
python3 "$ROOT/tests/fakes/fake_pumpfun.py" --port 0 > "$WORK/fake.out" &
FAKE_PID=$!
node "$ROOT/tests/fakes/livekit-sfu/sfu.js" --port 0 --codec "$CODEC" --width 1280 --height 720 --fps 30 > "$WORK/sfu.out" 2>/dev/null &
SFU_PID=$!
wait_line "$WORK/fake.out"; wait_line "$WORK/sfu.out"
FAKE_PORT=$(awk '{print $2}' "$WORK/fake.out"); SFU_PORT=$(awk '{print $2}' "$WORK/sfu.out")
PORT=18998
HAVEN_DB="$WORK/haven.db" HAVEN_LISTEN="127.0.0.1:$PORT" HAVEN_LOG_LEVEL=warning \
HAVEN_PUMPFUN_FRONTEND_API="http://127.0.0.1:$FAKE_PORT" HAVEN_PUMPFUN_LIVESTREAM_API="http://127.0.0.1:$FAKE_PORT" \
HAVEN_LIVEKIT_URL="ws://127.0.0.1:$SFU_PORT" HAVEN_ICE_ADDRESSES=127.0.0.1 HAVEN_IDLE_TIMEOUT=10m \
HAVEN_MAX_VIEWERS=${HAVEN_MAX_VIEWERS:-4000} HAVEN_MAX_VIEWERS_PER_SESSION=${HAVEN_MAX_VIEWERS_PER_SESSION:-4000} \
    "$HAVEN_BIN" 2> "$WORK/haven.log" &
HAVEN_PID=$!
i=0; until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
curl -fsS -m 30 -X POST -d "{\"mint_id\":\"$MINT\"}" "http://127.0.0.1:$PORT/api/live-sessions/start" >/dev/null
WS="ws://127.0.0.1:$PORT/api/live-sessions/ws/live/$MINT"
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$HAVEN_PID/stat"; }
active() { curl -fsS "http://127.0.0.1:$PORT/api/live-sessions/active"; }
# The fake SFU and the GStreamer encoders it runs (its children), for the CPU lines.
sfu_pids() { echo "$SFU_PID $(pgrep -P "$SFU_PID" | tr '\n' ' ')"; }
viewers() { # N SECONDS [viewers.mjs options]
    n=$1; s=$2; shift 2
    node "$ROOT/bench/viewers.mjs" "$WS" "$n" "$s" --haven-pid "$HAVEN_PID" --sfu-pids "$(sfu_pids)" \
        --metrics "http://127.0.0.1:$PORT/metrics" "$@"
}
idle_cpu() { # haven's CPU with no viewer over SECONDS_PER_STEP, % of one core
    c0=$(cpu_ticks); sleep "$SECONDS_PER_STEP"; c1=$(cpu_ticks)
    awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$SECONDS_PER_STEP" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }'
}
report() { python3 "$ROOT/bench/live_report.py" "$@"; }
json() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$1"; }

echo "bench: live session, $CODEC 1280x720 30 fps from the fake SFU, $(nproc) cores shared by the SFU's encoder, haven and the viewers"
echo "  load average at start     : $(cut -d' ' -f1-3 /proc/loadavg)"

# CPU with no viewer (media arrives, decoding off) and with one viewer (decode + JPEG on).
sleep 2
IDLE=$(idle_cpu)
viewers 1 "$SECONDS_PER_STEP" > "$WORK/one.json"
ONE=$(json "$WORK/one.json" '"%.1f" % r["haven_cpu"]')
SRC_FPS=$(json "$WORK/one.json" '"%.1f" % r["metrics_per_s"]["video_frames_decoded"]')
LAT=$(active | python3 -c 'import json,sys; l=json.load(sys.stdin)["sessions"][0]["latency_ms"]; print("p50 %.1f ms, p99 %.1f ms over %d frames" % (l["p50"], l["p99"], l["samples"]))')

echo "  decoded frame rate        : $SRC_FPS fps"
echo "  haven CPU, no viewer      : $IDLE% of one core (receive only; decoding off)"
echo "  haven CPU, one viewer     : $ONE% of one core (receive + decode + JPEG + send)"
awk -v a="$ONE" -v b="$IDLE" 'BEGIN { printf "  decode + JPEG             : %.1f%% of one core (difference; target <= 25%%)\n", a - b }'
echo "  JPEG bytes per viewer     : $(json "$WORK/one.json" '"%.0f kB/s (%.1f fps)" % (r["bytes_per_s"][0] / 1000, r["fps"][0])')"
echo "  latency RTP -> WS send    : $LAT (target p99 < 50 ms)"
for n in $STEPS; do
    viewers "$n" "$SECONDS_PER_STEP" > "$WORK/jpeg-$n.json"
    report jpeg-step "$WORK/jpeg-$n.json"
done
LAT=$(active | python3 -c 'import json,sys; l=json.load(sys.stdin)["sessions"][0]["latency_ms"]; print("p50 %.1f ms, p99 %.1f ms" % (l["p50"], l["p99"]))')
echo "  latency after the load    : $LAT (last 2048 sends)"

# Time to first frame: JOINS sequential joins each, nobody else watching / one viewer watching.
if [ "$JOINS" -gt 0 ]; then
    sleep 2
    for mode in jpeg encoded; do
        node "$ROOT/bench/first-frame.mjs" "$WS" "$JOINS" --mode "$mode" > "$WORK/ttff-$mode-idle.json"
        report ttff "$WORK/ttff-$mode-idle.json" "$mode, alone"
        node "$ROOT/bench/first-frame.mjs" "$WS" "$JOINS" --mode "$mode" --watch > "$WORK/ttff-$mode-watch.json"
        report ttff "$WORK/ttff-$mode-watch.json" "$mode, watched"
    done
fi

# Encoded fan-out: haven's CPU with no viewer again (the baseline of the per-viewer figure), then
# N encoded viewers per step.
ENC_IDLE=$IDLE
if [ -n "$ENC_STEPS" ]; then
    sleep 2
    ENC_IDLE=$(idle_cpu)
    echo "  haven CPU, no viewer      : $ENC_IDLE% of one core (again, before the encoded steps; load $(cut -d' ' -f1-3 /proc/loadavg))"
    for n in $ENC_STEPS; do
        viewers "$n" "$SECONDS_PER_STEP" --mode encoded --workers "$ENC_WORKERS" > "$WORK/enc-$n.json"
        report enc-step "$WORK/enc-$n.json" "$ENC_IDLE"
        if ! kill -0 "$HAVEN_PID" 2>/dev/null; then echo "bench: haven exited" >&2; tail -20 "$WORK/haven.log" >&2; exit 1; fi
        sleep 2
    done
fi
echo "  load average at end       : $(cut -d' ' -f1-3 /proc/loadavg)"
report summary "$WORK" "$IDLE" "$ONE" "$ENC_IDLE"

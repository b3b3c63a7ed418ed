#!/bin/sh
# Live-session bench: a 1280x720 30 fps stream from the fake LiveKit SFU (H.264 by default, as
# pump.fun's RTMP streams arrive; CODEC=vp8 for VP8), through haven, to WebSocket viewers.
# Reports, from one run:
#   - CPU of decode + JPEG: haven's CPU per second of video with one viewer (decoding on) minus
#     with none (decoding off), as % of one core, and the ratio of the two;
#   - latency from RTP arrival to the WebSocket send (haven's own p50/p99, /api/live-sessions/active);
#   - viewers at full rate: for N viewers, how many receive >= 90% of the decoded frame rate.
# Everything runs inside a loopback-only network namespace. Usage: bench/live.sh [build]
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
STEPS=${STEPS:-"1 50 100 200"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
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
    "$ROOT/$BUILD/src/haven" 2> "$WORK/haven.log" &
HAVEN_PID=$!
i=0; until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
curl -fsS -m 30 -X POST -d "{\"mint_id\":\"$MINT\"}" "http://127.0.0.1:$PORT/api/live-sessions/start" >/dev/null
WS="ws://127.0.0.1:$PORT/api/live-sessions/ws/live/$MINT"
HZ=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$HAVEN_PID/stat"; }
active() { curl -fsS "http://127.0.0.1:$PORT/api/live-sessions/active"; }
frames() { active | python3 -c 'import json,sys; s=json.load(sys.stdin)["sessions"][0]; print(s["video"]["frames_decoded"])'; }

# CPU with no viewer (media arrives, decoding off) and with one viewer (decode + JPEG on).
sleep 2
c0=$(cpu_ticks); sleep "$SECONDS_PER_STEP"; c1=$(cpu_ticks)
IDLE=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$SECONDS_PER_STEP" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
node "$ROOT/bench/viewers.mjs" "$WS" 1 "$((SECONDS_PER_STEP + 4))" > "$WORK/one.json" &
VP=$!
sleep 4
c0=$(cpu_ticks); f0=$(frames); sleep "$SECONDS_PER_STEP"; c1=$(cpu_ticks); f1=$(frames)
wait $VP
ONE=$(awk -v a="$c0" -v b="$c1" -v hz="$HZ" -v s="$SECONDS_PER_STEP" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
SRC_FPS=$(awk -v a="$f0" -v b="$f1" -v s="$SECONDS_PER_STEP" 'BEGIN { printf "%.1f", (b - a) / s }')
LAT=$(active | python3 -c 'import json,sys; l=json.load(sys.stdin)["sessions"][0]["latency_ms"]; print("p50 %.1f ms, p99 %.1f ms over %d frames" % (l["p50"], l["p99"], l["samples"]))')

echo "bench: live session, $CODEC 1280x720 30 fps from the fake SFU, $(nproc) cores shared by the SFU's encoder, haven and the viewers"
echo "  decoded frame rate        : $SRC_FPS fps"
echo "  haven CPU, no viewer      : $IDLE% of one core (receive only; decoding off)"
echo "  haven CPU, one viewer     : $ONE% of one core (receive + decode + JPEG + send)"
awk -v a="$ONE" -v b="$IDLE" 'BEGIN { printf "  decode + JPEG             : %.1f%% of one core (difference; target <= 25%%)\n", a - b }'
echo "  latency RTP -> WS send    : $LAT (target p99 < 50 ms)"
for n in $STEPS; do
    f0=$(frames)
    node "$ROOT/bench/viewers.mjs" "$WS" "$n" "$SECONDS_PER_STEP" > "$WORK/v.json"
    f1=$(frames)
    python3 - "$WORK/v.json" "$f0" "$f1" "$SECONDS_PER_STEP" <<'PY'
import json, statistics, sys
r = json.load(open(sys.argv[1]))
src = (int(sys.argv[3]) - int(sys.argv[2])) / (float(sys.argv[4]) + 3)  # decoded fps over the run
fps = r["fps"]
full = sum(1 for f in fps if f >= 0.9 * src)
print(f"  {r['viewers']:4d} viewers           : {full} at full rate (>= 90% of {src:.1f} fps), "
      f"median {statistics.median(fps):.1f} fps, min {min(fps):.1f}, closed {r['closed']}")
PY
done
LAT=$(active | python3 -c 'import json,sys; l=json.load(sys.stdin)["sessions"][0]["latency_ms"]; print("p50 %.1f ms, p99 %.1f ms" % (l["p50"], l["p99"]))')
echo "  latency after the load    : $LAT (last 2048 sends)"

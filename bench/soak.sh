#!/bin/sh
# Soak: one live session (H.264 1280x720 30 fps from the fake SFU) with recording on, and
# WebSocket viewers joining and leaving every few seconds, for SOAK_MINUTES (default 30).
# Samples haven's RSS and open file descriptors every SOAK_INTERVAL seconds (default 10), counts
# warnings/errors in its log, and writes the curve as an SVG (default docs/soak.svg) plus the
# raw samples (CSV next to it). Passes when RSS and fds are flat after the warm-up and the log has
# no errors. Everything runs inside a loopback-only network namespace.
# Usage: bench/soak.sh [build]   (make soak)
set -eu
BUILD=${1:-build}
if [ -z "${HAVEN_BENCH_IN_NETNS:-}" ]; then
    export HAVEN_BENCH_IN_NETNS=1
    if unshare -n true 2>/dev/null; then
        exec unshare -n sh -c "ip link set lo up && sh '$0' '$BUILD'"
    fi
    echo "soak: no network namespace available; running on the host loopback" >&2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cleanup() {
    for p in ${HAVEN_PID:-} ${SFU_PID:-} ${FAKE_PID:-}; do kill "$p" 2>/dev/null || true; done
    sleep 1
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
MINT=7k13ksm9yfWYBqVUrvdG5to1ecy4AhVKy2qsnbPepump

wait_line() { i=0; until grep -q LISTENING "$1" 2>/dev/null; do i=$((i+1)); [ $i -lt 200 ] || exit 1; sleep 0.1; done; }
python3 "$ROOT/tests/fakes/fake_pumpfun.py" --port 0 > "$WORK/fake.out" &
FAKE_PID=$!
node "$ROOT/tests/fakes/livekit-sfu/sfu.js" --port 0 --codec h264 --width 1280 --height 720 --fps 30 > "$WORK/sfu.out" 2>/dev/null &
SFU_PID=$!
wait_line "$WORK/fake.out"; wait_line "$WORK/sfu.out"
FAKE_PORT=$(awk '{print $2}' "$WORK/fake.out"); SFU_PORT=$(awk '{print $2}' "$WORK/sfu.out")
PORT=18997
mkdir -p "$WORK/rec"
HAVEN_DB="$WORK/haven.db" HAVEN_LISTEN="127.0.0.1:$PORT" HAVEN_LOG_LEVEL=info \
HAVEN_PUMPFUN_FRONTEND_API="http://127.0.0.1:$FAKE_PORT" HAVEN_PUMPFUN_LIVESTREAM_API="http://127.0.0.1:$FAKE_PORT" \
HAVEN_LIVEKIT_URL="ws://127.0.0.1:$SFU_PORT" HAVEN_ICE_ADDRESSES=127.0.0.1 \
HAVEN_RECORDINGS_DIR="$WORK/rec" HAVEN_CATALOG_TTL=5s \
    "$ROOT/$BUILD/src/haven" 2> "$WORK/haven.log" &
HAVEN_PID=$!
i=0; until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
curl -fsS -m 30 -X POST -d "{\"mint_id\":\"$MINT\",\"record_session\":true}" \
    "http://127.0.0.1:$PORT/api/live-sessions/start" >/dev/null
python3 "$ROOT/bench/soak.py" --port "$PORT" --pid "$HAVEN_PID" --mint "$MINT" \
    --log "$WORK/haven.log" --recordings "$WORK/rec" \
    --minutes "${SOAK_MINUTES:-30}" --interval "${SOAK_INTERVAL:-10}" \
    --svg "${SOAK_SVG:-$ROOT/docs/soak.svg}"

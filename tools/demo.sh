#!/bin/sh
# `make demo`: haven with the test fakes behind it, so the whole product can be tried offline in
# a browser. Starts the fake pump.fun API (tests/fakes/fake_pumpfun.py, the fixture roster), the
# fake LiveKit SFU (tests/fakes/livekit-sfu: a 1280x720 30 fps scrolling colour-bar picture and a
# 440 Hz tone, H.264 by default, CODEC=vp8 for VP8) and haven, all bound to 127.0.0.1 on this
# machine's loopback (not in a namespace: your browser has to reach it). Prints the player's
# URL; Ctrl-C stops all three.
#
# Usage: tools/demo.sh [BUILD_DIR] [LISTEN] [haven options...]
#   LISTEN defaults to 127.0.0.1:8000 and must be a loopback address.
# The database, recordings and logs go to a temporary directory, printed at start and deleted on
# exit (KEEP=1 keeps it).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
LISTEN=${2:-127.0.0.1:8000}
[ $# -gt 2 ] && shift 2 || set --
CODEC=${CODEC:-h264}
cd "$ROOT"
HAVEN="$BUILD/src/haven"
if [ ! -x "$HAVEN" ]; then
    echo "demo: $HAVEN is not built; run \`make demo\` (it builds first)" >&2
    exit 1
fi
case "$LISTEN" in
127.*:* | localhost:* | "[::1]":*) ;;
*)
    echo "demo: LISTEN=$LISTEN is not a loopback address; the demo binds 127.0.0.1 only" >&2
    exit 2
    ;;
esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/haven-demo.XXXXXX")
PIDS=""
cleanup() {
    trap - EXIT INT TERM
    [ -n "$PIDS" ] && echo "demo: stopping haven and the fakes"
    for p in $PIDS; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $PIDS; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then
        echo "demo: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Waits for `LISTENING <port>` in $1 (the stdout of process $2); prints the port.
wait_listening() {
    i=0
    until grep -q '^LISTENING ' "$1" 2>/dev/null; do
        if ! kill -0 "$2" 2>/dev/null; then
            echo "demo: $3 exited before listening:" >&2
            tail -n 20 "$4" >&2 || true
            exit 1
        fi
        i=$((i + 1))
        if [ $i -gt 600 ]; then
            echo "demo: $3 did not start within 60 s" >&2
            exit 1
        fi
        sleep 0.1
    done
    awk '/^LISTENING /{print $2; exit}' "$1"
}

echo "demo: starting the fake pump.fun API and the fake LiveKit SFU ($CODEC)..."
python3 tests/fakes/fake_pumpfun.py --host 127.0.0.1 --port 0 >"$WORK/fake.out" 2>"$WORK/fake.log" &
FAKE_PID=$!
PIDS="$FAKE_PID"
node tests/fakes/livekit-sfu/sfu.js --host 127.0.0.1 --port 0 --codec "$CODEC" \
    --width 1280 --height 720 --fps 30 --pattern smpte >"$WORK/sfu.out" 2>"$WORK/sfu.log" &
SFU_PID=$!
PIDS="$PIDS $SFU_PID"
FAKE_PORT=$(wait_listening "$WORK/fake.out" "$FAKE_PID" "the fake pump.fun API" "$WORK/fake.log")
SFU_PORT=$(wait_listening "$WORK/sfu.out" "$SFU_PID" "the fake LiveKit SFU" "$WORK/sfu.log")
FAKE="http://127.0.0.1:$FAKE_PORT"

echo "demo: starting haven on $LISTEN..."
HAVEN_LISTEN="$LISTEN" HAVEN_DB="$WORK/haven.db" HAVEN_RECORDINGS_DIR="$WORK/recordings" \
    HAVEN_WEB_DIR="$ROOT/web" HAVEN_PUMPFUN_FRONTEND_API="$FAKE" \
    HAVEN_PUMPFUN_LIVESTREAM_API="$FAKE" HAVEN_LIVEKIT_URL="ws://127.0.0.1:$SFU_PORT" \
    HAVEN_ICE_ADDRESSES=127.0.0.1 "$HAVEN" "$@" >"$WORK/haven.log" 2>&1 &
HAVEN_PID=$!
PIDS="$HAVEN_PID $PIDS"
URL="http://$LISTEN"
i=0
until curl -sg --noproxy '*' -m 2 -o /dev/null "$URL/healthz"; do
    if ! kill -0 "$HAVEN_PID" 2>/dev/null; then
        echo "demo: haven exited (is $LISTEN already in use? try \`make demo LISTEN=127.0.0.1:9000\`):" >&2
        tail -n 20 "$WORK/haven.log" >&2 || true
        exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 150 ]; then
        echo "demo: haven did not answer on $URL within 15 s" >&2
        exit 1
    fi
    sleep 0.1
done

# What the fixture roster holds, as haven reports it.
ROSTER=$(curl -sg --noproxy '*' -m 15 --compressed "$URL/api/pumpfun/stats" | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
    print("{} live streams, {} of them NSFW".format(s["total_live_streams"], s["nsfw_streams"]))
except Exception:
    print("the fixture roster")' || echo "the fixture roster")

cat <<EOF

  haven demo: open $URL/

  pump.fun  fake API ($FAKE): $ROSTER (tests/data/pumpfun)
  LiveKit   fake SFU (ws://127.0.0.1:$SFU_PORT): every live stream in the roster is joinable and
            plays the same test picture, $CODEC 1280x720 30 fps scrolling colour bars with a
            440 Hz tone; thumbnails in the fixture point at example.com and will not load offline
  data      $WORK (database, recordings/, logs: deleted on exit, KEEP=1 keeps it)

  Ctrl-C stops haven and both fakes.

EOF

# Runs until Ctrl-C, or until haven exits by itself (haven also stops cleanly on SIGINT).
status=0
wait "$HAVEN_PID" || status=$?
if [ "$status" -ne 0 ]; then
    echo "demo: haven exited with status $status; last lines of its log:" >&2
    tail -n 20 "$WORK/haven.log" >&2 || true
fi
exit "$status"

#!/bin/sh
# Recording bench: what a recording-only session costs haven, next to what decoding and
# re-encoding the same stream costs, side by side in one run. The reference implementation
# (Haven Player) decodes every frame and re-encodes it with libvpx VP9 at its "best" preset
# (cpu-used=0, crf 20, 8 Mbit/s, row-mt) inside its event loop, which runs slower than real time
# (its stop timeout allows 1-2x the recording's duration for the encoder to catch up). The stream
# is H.264 1280x720 30 fps from the fake LiveKit SFU. Target: recording costs <= 1/20 of
# re-encoding.
#   (a) haven joined to the stream, no viewers, not recording: the cost of receiving;
#   (b) the same session with recording on (POST /api/live-sessions/{mint}/recording): the
#       recording-only session; b - a is recording's own cost;
#   (c) recording stopped again, same session: a check that the cost goes back to (a);
#   re-encode as the reference implementation does, the comparison that counts: the first
#       BENCH_REF_SECONDS (default 10) of the MP4 that (b) wrote, cut by frame count
#       (identity eos-after), through qtdemux ! h264parse ! avdec_h264 ! videoconvert !
#       vp9enc cpu-used=0 end-usage=cq cq-level=20 target-bitrate=8000000 deadline=1000000
#       (libvpx "good", ffmpeg's default) threads=<cores> row-mt=true auto-alt-ref=true
#       arnr-maxframes=7 arnr-strength=5 static-threshold=0 (ffmpeg/libvpx defaults where
#       vp9enc's differ) ! webmmux, audio opusdec ! opusenc; BENCH_REF_RUNS runs (default 2);
#   re-encode with x264, as context (what a cheaper re-encoder would cost): the whole MP4
#       through the same decoder ! x264enc (speed-preset medium, ffmpeg's default, and
#       veryfast; bitrate = the recording's) ! mp4mux, audio opusdec ! avenc_aac;
#       BENCH_REENCODE_RUNS runs of each preset (default 3), alternated.
#   Every re-encode runs as fast as it goes with the SFU stopped; its CPU time (getrusage of
#   the child) per second of media is the % of one core needed to keep up in real time, and
#   media time / wall time is how much faster than real time it ran (below 1 = slower).
# haven's CPU is utime+stime from /proc/PID/stat (all threads), sampled in BENCH_WINDOWS windows
# over BENCH_SECONDS per phase (defaults 5 and 30); medians are reported, with the ratios and
# PASS/FAIL for both definitions of recording's cost, b (the strict one: "a recording-only
# session") and b - a, the reference VP9 re-encode first, then x264. Per-window values, the
# busiest haven threads, the exact gst-launch lines and a check of the reference cut (frames
# and Opus packets written, output bitrate) go to stderr. The same haven process and the same
# stream serve every phase. Everything runs inside a loopback-only network namespace.
# Takes about 5 minutes on 2 cores.
# Usage: make bench-record, or bench/record.sh [build]   (BENCH_SECONDS=60 bench/record.sh,
#        BENCH_REF_RUNS=1 BENCH_REF_SECONDS=5 for a quicker reference row)
set -eu
BUILD=${1:-build}
if [ -z "${HAVEN_BENCH_IN_NETNS:-}" ]; then
    export HAVEN_BENCH_IN_NETNS=1
    if unshare -n true 2>/dev/null; then
        exec unshare -n sh -c "ip link set lo up && sh '$0' '$BUILD'"
    fi
    echo "bench: no network namespace available; running on the host loopback" >&2
fi
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cleanup() {
    for p in ${HAVEN_PID:-} ${SFU_PID:-} ${FAKE_PID:-}; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
mkdir -p "$WORK/recordings"

wait_line() { i=0; until grep -q LISTENING "$1" 2>/dev/null; do i=$((i+1)); [ $i -lt 200 ] || exit 1; sleep 0.1; done; }
python3 "$ROOT/tests/fakes/fake_pumpfun.py" --port 0 > "$WORK/fake.out" &
FAKE_PID=$!
node "$ROOT/tests/fakes/livekit-sfu/sfu.js" --port 0 --codec h264 --width 1280 --height 720 --fps 30 > "$WORK/sfu.out" 2>/dev/null &
SFU_PID=$!
wait_line "$WORK/fake.out"; wait_line "$WORK/sfu.out"
FAKE_PORT=$(awk '{print $2}' "$WORK/fake.out"); SFU_PORT=$(awk '{print $2}' "$WORK/sfu.out")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
HAVEN_DB="$WORK/haven.db" HAVEN_LISTEN="127.0.0.1:$PORT" HAVEN_LOG_LEVEL=warning \
HAVEN_PUMPFUN_FRONTEND_API="http://127.0.0.1:$FAKE_PORT" HAVEN_PUMPFUN_LIVESTREAM_API="http://127.0.0.1:$FAKE_PORT" \
HAVEN_LIVEKIT_URL="ws://127.0.0.1:$SFU_PORT" HAVEN_ICE_ADDRESSES=127.0.0.1 HAVEN_IDLE_TIMEOUT=10m \
HAVEN_RECORDINGS_DIR="$WORK/recordings" \
    "$ROOT/$BUILD/src/haven" > "$WORK/haven.log" 2>&1 &
HAVEN_PID=$!
i=0; until curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null; do i=$((i+1)); [ $i -lt 100 ] || exit 1; sleep 0.1; done
python3 "$ROOT/bench/record_bench.py" "$PORT" "$HAVEN_PID" "$SFU_PID" "$WORK/recordings" "$WORK/haven.log" "$WORK"

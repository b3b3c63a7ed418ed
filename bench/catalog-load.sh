#!/bin/sh
# Load test of the cached live list: GET /api/pumpfun/live?limit=60 served from the catalog
# cache (a 500-stream synthetic roster, TTL long enough that no refresh happens mid-run).
#
# Runs wrk ROUNDS times (default 5 × 5 s, 2 threads, 64 connections) against the list and
# against GET / (a tiny constant answer: the server's own floor), inside a loopback-only
# network namespace, and prints the medians and their ratio. Usage: bench/catalog-load.sh [build]
set -eu
BUILD=${1:-build}
if [ -z "${HAVEN_BENCH_IN_NETNS:-}" ]; then
    export HAVEN_BENCH_IN_NETNS=1
    if unshare -n true 2>/dev/null; then
        exec unshare -n sh -c "ip link set lo up && sh '$0' '$BUILD'"
    fi
    echo "bench: no network namespace available; running on the host loopback" >&2
fi
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-64}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cleanup() {
    [ -n "${HAVEN_PID:-}" ] && kill "$HAVEN_PID" 2>/dev/null || true
    [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
[ -n "${BENCH_DEBUG:-}" ] && trap "cat \"\$WORK/haven.log\"; cleanup" EXIT

python3 "$ROOT/tests/fakes/fake_pumpfun.py" --port 0 > "$WORK/fake.out" &
FAKE_PID=$!
while ! grep -q LISTENING "$WORK/fake.out" 2>/dev/null; do sleep 0.05; done
FAKE_PORT=$(awk '{print $2}' "$WORK/fake.out")
curl -fsS -X POST -d '{"synthetic": 500}' "http://127.0.0.1:$FAKE_PORT/__fake/roster" >/dev/null

PORT=18999
HAVEN_DB="$WORK/haven.db" HAVEN_LISTEN="127.0.0.1:$PORT" HAVEN_LOG_LEVEL=warning \
HAVEN_PUMPFUN_FRONTEND_API="http://127.0.0.1:$FAKE_PORT" \
HAVEN_PUMPFUN_LIVESTREAM_API="http://127.0.0.1:$FAKE_PORT" HAVEN_CATALOG_TTL=1h \
    "$ROOT/$BUILD/src/haven" 2> "$WORK/haven.log" &
HAVEN_PID=$!
i=0
until curl -fsS "http://127.0.0.1:$PORT/api/pumpfun/live?limit=60" -o "$WORK/warm.json"; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$WORK/haven.log"; exit 1; }; sleep 0.1
done
BYTES=$(wc -c < "$WORK/warm.json")

# run URL → prints "req_per_s p99_ms" for one wrk round
run() {
    wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$1" > "$WORK/wrk.txt"
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { bad = $NF }
        END { if (bad > 0) { print "non-2xx answers: " bad > "/dev/stderr"; exit 1 } printf "%s %s\n", rps, p99 }
    ' "$WORK/wrk.txt"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: > "$WORK/live"; : > "$WORK/floor"
r=0
while [ $r -lt "$ROUNDS" ]; do
    run "http://127.0.0.1:$PORT/api/pumpfun/live?limit=60" >> "$WORK/live"
    run "http://127.0.0.1:$PORT/" >> "$WORK/floor"
    r=$((r + 1))
done
LIVE_RPS=$(cut -d' ' -f1 "$WORK/live" | median)
LIVE_P99=$(cut -d' ' -f2 "$WORK/live" | median)
FLOOR_RPS=$(cut -d' ' -f1 "$WORK/floor" | median)
FLOOR_P99=$(cut -d' ' -f2 "$WORK/floor" | median)
UPSTREAM=$(curl -fsS "http://127.0.0.1:$FAKE_PORT/__fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"]["currently-live"])')

echo "bench: GET /api/pumpfun/live?limit=60 from cache ($BYTES-byte answers), wrk -t2 -c$CONNS, $ROUNDS rounds of $DURATION on $(nproc) cores"
echo "  live list : median $LIVE_RPS req/s, median p99 $LIVE_P99 ms"
echo "  GET /     : median $FLOOR_RPS req/s, median p99 $FLOOR_P99 ms  (server floor)"
awk -v a="$LIVE_RPS" -v b="$FLOOR_RPS" 'BEGIN { printf "  ratio     : live list serves %.2f of the floor rate\n", a / b }'
echo "  upstream  : $UPSTREAM currently-live request(s) to pump.fun during the whole run"
awk -v r="$LIVE_RPS" -v p="$LIVE_P99" 'BEGIN {
    ok = (r >= 10000 && p < 5); printf "  target    : >= 10000 req/s with p99 < 5 ms: %s\n", ok ? "met" : "NOT met" }'

#!/bin/sh
# Load test of the cached live list: GET /api/pumpfun/live?limit=60 served from the catalog
# cache (a 500-stream synthetic roster, TTL long enough that no refresh happens mid-run).
#
# Each of ROUNDS rounds (default 5 × 5 s, wrk with 2 threads and 32 connections) loads, in turn:
#   - the list as browsers ask for it (Accept-Encoding: gzip; haven keeps a gzip copy),
#   - the list uncompressed (about 45 KB an answer: the loopback copy dominates),
#   - GET /api, a tiny constant answer: the server's own floor,
# inside a loopback-only network namespace, and prints the medians and their ratios.
# Usage: bench/catalog-load.sh [build]
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
CONNS=${CONNS:-32}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
cleanup() {
    [ -n "${HAVEN_PID:-}" ] && kill "$HAVEN_PID" 2>/dev/null || true
    [ -n "${FAKE_PID:-}" ] && kill "$FAKE_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

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
until curl -fs "http://127.0.0.1:$PORT/api/pumpfun/live?limit=60" -o "$WORK/warm.json"; do
    i=$((i + 1)); [ $i -lt 100 ] || { cat "$WORK/haven.log"; exit 1; }; sleep 0.1
done
BYTES=$(wc -c < "$WORK/warm.json")

# run URL [wrk args] → prints "req_per_s p99_ms" for one wrk round
run() {
    url=$1
    shift
    wrk -t2 -c"$CONNS" -d"$DURATION" --latency "$@" "$url" > "$WORK/wrk.txt"
    awk '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /Requests\/sec/ { rps = $2 }
        $1 == "99%" { p99 = ms($2) }
        /Non-2xx/ { bad = $NF }
        END { if (bad > 0) { print "non-2xx answers: " bad > "/dev/stderr"; exit 1 } printf "%s %s\n", rps, p99 }
    ' "$WORK/wrk.txt"
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

: > "$WORK/gzip"; : > "$WORK/plain"; : > "$WORK/floor"
LIST="http://127.0.0.1:$PORT/api/pumpfun/live?limit=60"
r=0
while [ $r -lt "$ROUNDS" ]; do
    run "$LIST" -H "Accept-Encoding: gzip" >> "$WORK/gzip"
    run "$LIST" >> "$WORK/plain"
    run "http://127.0.0.1:$PORT/api" >> "$WORK/floor"
    r=$((r + 1))
done
col() { cut -d' ' -f"$2" "$WORK/$1" | median; }
GZ_BYTES=$(curl -fsS -H 'Accept-Encoding: gzip' "$LIST" | wc -c)
UPSTREAM=$(curl -fsS "http://127.0.0.1:$FAKE_PORT/__fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"]["currently-live"])')

echo "bench: GET /api/pumpfun/live?limit=60 from the cache (500-stream roster), wrk -t2 -c$CONNS, median of $ROUNDS rounds of $DURATION, $(nproc) cores shared by wrk and haven"
printf "  list, gzip ($GZ_BYTES B)     : %10s req/s   p99 %6s ms\n" "$(col gzip 1)" "$(col gzip 2)"
printf "  list, plain ($BYTES B)    : %10s req/s   p99 %6s ms\n" "$(col plain 1)" "$(col plain 2)"
printf "  GET /api (floor)          : %10s req/s   p99 %6s ms\n" "$(col floor 1)" "$(col floor 2)"
awk -v g="$(col gzip 1)" -v p="$(col plain 1)" -v f="$(col floor 1)" 'BEGIN {
    printf "  ratios                    : gzip/floor %.2f, plain/floor %.2f, gzip/plain %.2f\n", g / f, p / f, g / p }'
echo "  upstream                  : $UPSTREAM currently-live request(s) to the fake pump.fun in the whole run"
awk -v r="$(col gzip 1)" -v p="$(col gzip 2)" 'BEGIN {
    printf "  target (>= 10000 req/s, p99 < 5 ms), browser-style requests: %s\n", (r >= 10000 && p < 5) ? "met" : "NOT met" }'
awk -v r="$(col plain 1)" -v p="$(col plain 2)" 'BEGIN {
    printf "  target, uncompressed requests: %s\n", (r >= 10000 && p < 5) ? "met" : "NOT met" }'

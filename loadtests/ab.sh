#!/usr/bin/env bash
# A/B (/C...) of Jangteo server binaries in one run (embedded engine), for
# measuring one change at a time: open rooms at stepped rates, each binary
# run twice, alternated (A B A B), with the server's CPU time per delivery
# (`--cpu-pid`) next to the latencies; the server pinned to CPU 0 and the
# generator to CPU 1 as in compare.sh. Prints the report; read the ratios
# between A and B within the run, not the absolute times.
#
#   loadtests/ab.sh /tmp/jangteo-before target/release/jangteo
#   SCENARIO=idle loadtests/ab.sh A B   # server RSS per idle connection
#   RATES=1000,2000,3000 STEP=6s ROOMS=20 MEMBERS=50 loadtests/ab.sh A B
#   SPREAD=1 loadtests/ab.sh A B              # publishers spread over the send interval (jangteo-load --spread)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ $# -ge 2 ] || { echo "usage: ab.sh BINARY_A BINARY_B [BINARY_C...]" >&2; exit 2; }
ROOMS=${ROOMS:-20}
MEMBERS=${MEMBERS:-50}
RATES=${RATES:-500,1000,2000,3000}
STEP=${STEP:-6s}
SIZE=${SIZE:-90}
ROUNDS=${ROUNDS:-2}
# rooms: open rooms at stepped rates; idle: CONNS idle connections of 200
# users held, server RSS per connection (compare.sh's connect scenario).
SCENARIO=${SCENARIO:-rooms}
CONNS=${CONNS:-19000}
WORK=$(mktemp -d)
RESULTS=$WORK/results.jsonl
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN="taskset -c 0"; LOAD_PIN="taskset -c 1"
else
  SERVER_PIN=""; LOAD_PIN=""
fi
[ -x target/release/jangteo-load ] || cargo build --release --locked -p jangteo-loadtests
LOAD="$LOAD_PIN $ROOT/target/release/jangteo-load"
PORT=9070

run() { # label binary round
  local dir=$WORK/$1-$3
  mkdir -p "$dir"
  env JANGTEO_LISTEN=127.0.0.1:$PORT JANGTEO_DATA_DIR="$dir" JANGTEO_LOG=warn JANGTEO_WORKERS=1 \
    JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 \
    JANGTEO_WS_FRAMES_PER_SEC=1000000 JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000 \
    JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 $SERVER_PIN "$2" serve >"$dir.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.1
  done
  echo "== $1 (round $3)"
  local before; before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  if [ "$SCENARIO" = idle ]; then
    $LOAD connect --target jangteo --url "http://127.0.0.1:$PORT" --connections "$CONNS" --users 200 \
      --server-pid "$pid" --hold 3s --json \
      | sed "s/\"target\":\"jangteo\"/\"target\":\"$1-r$3\"/" >>"$RESULTS" \
      || echo "!! $1: connect had errors"
  else
    $LOAD open-rooms --target jangteo --url "http://127.0.0.1:$PORT" --rooms "$ROOMS" --members "$MEMBERS" \
      --publishers 1 --rate "$RATES" --duration "$STEP" --size "$SIZE" ${SPREAD:+--spread} --cpu-pid "$pid" --json \
      | sed "s/\"target\":\"jangteo\"/\"target\":\"$1-r$3\"/" >>"$RESULTS" \
      || echo "!! $1: open-rooms reported a correctness failure"
  fi
  local after; after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  echo "$1 round $3: server CPU $(( (after - before) / $(getconf CLK_TCK) )).$(( (after - before) % $(getconf CLK_TCK) )) s (seeding included)" | tee -a "$WORK/cpu"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

LABELS=(A B C D E F G H)
for round in $(seq 1 "$ROUNDS"); do
  i=0
  for bin in "$@"; do
    run "${LABELS[$i]}" "$bin" "$round"
    i=$((i + 1))
  done
done
"$ROOT/target/release/jangteo-load" report "$RESULTS"
echo
cat "$WORK/cpu"

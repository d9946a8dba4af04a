#!/usr/bin/env bash
# Run the same load scenarios against Jangteo (embedded engine, every
# message persisted) and the peer servers, on this machine, in one run, and
# write the run to a file of its own under docs/benchmarks/ (never over an
# earlier one; docs/BENCHMARKS.md is the hand-kept story that links them).
# Loopback only; every run is bounded in time.
#
#   loadtests/compare.sh                 # defaults below
#   RATES=1000,2000 STEP=5s loadtests/compare.sh
#
# Server on CPU 0, generator on CPU 1 (taskset) when the machine has two;
# PIN=0 turns pinning off.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

ROOMS=${ROOMS:-50}
MEMBERS=${MEMBERS:-20}
PUBLISHERS=${PUBLISHERS:-1}
RATES=${RATES:-100,500,1000,2000,4000,8000}
STEP=${STEP:-8s}
SIZE=${SIZE:-100}
# The per-process file descriptor limit here is 20,000 (root cannot raise
# it), for the server and the generator alike: 19,000 is what fits.
CONNS=${CONNS:-19000}
CONN_USERS=${CONN_USERS:-200}
ACK_RATE=${ACK_RATE:-5000}
FEED_RATE=${FEED_RATE:-500}
OUT=${OUT:-docs/benchmarks/compare-$(date -u +%Y%m%d-%H%M%S)-$(git rev-parse --short HEAD 2>/dev/null || echo unknown).md}
WORK=$(mktemp -d)
RESULTS=$WORK/results.jsonl
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if [ "${PIN:-1}" != 0 ] && command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN="taskset -c 0"; LOAD_PIN="taskset -c 1"; PINNED="server on CPU 0, generator on CPU 1"
else
  SERVER_PIN=""; LOAD_PIN=""; PINNED="not pinned (PIN=0, or taskset or a second CPU missing)"
fi

echo "== building (release)"
cargo build --release --locked -p jangteo -p jangteo-loadtests
LOAD="$LOAD_PIN $ROOT/target/release/jangteo-load"

echo "== installing peers from npm"
npm install --prefix loadtests/peers --no-audit --no-fund --loglevel=error >/dev/null
NODE_BIN=$(command -v node)
BUN_BIN=$ROOT/loadtests/peers/node_modules/.bin/bun

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "server on port $1 did not start" >&2
  return 1
}

PID=""
start() { # name port cmd...
  local name=$1 port=$2; shift 2
  echo "== $name"
  $SERVER_PIN "$@" >"$WORK/$name.log" 2>&1 &
  PID=$!
  wait_port "$port"
}
stop() {
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
}

rooms_run() { # target port
  $LOAD open-rooms --target "$1" --url "http://127.0.0.1:$2" --rooms "$ROOMS" --members "$MEMBERS" \
    --publishers "$PUBLISHERS" --rate "$RATES" --duration "$STEP" --size "$SIZE" --cpu-pid "$PID" --json >>"$RESULTS" \
    || echo "!! $1: open-rooms reported a correctness failure" | tee -a "$WORK/failures"
}
connect_run() { # target port
  $LOAD connect --target "$1" --url "http://127.0.0.1:$2" --connections "$CONNS" --users "$CONN_USERS" \
    --server-pid "$PID" --hold 3s --json >>"$RESULTS" || echo "!! $1: connect had errors" | tee -a "$WORK/failures"
}

JANGTEO_ENV=(JANGTEO_LISTEN=127.0.0.1:9000 JANGTEO_DATA_DIR="$WORK/jangteo" JANGTEO_LOG=warn JANGTEO_WORKERS=1
  JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000
  JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000
  JANGTEO_CHAT_DIRECT_SEND_RATE=100000 JANGTEO_CHAT_DIRECT_SEND_BURST=100000
  JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 JANGTEO_LISTINGS_PER_HOUR=1000000)

start jangteo 9000 env "${JANGTEO_ENV[@]}" "$ROOT/target/release/jangteo" serve
rooms_run jangteo 9000
# Ack latency at a fixed rate (one step).
$LOAD open-rooms --target jangteo --url http://127.0.0.1:9000 --rooms "$ROOMS" --members 2 --publishers 2 \
  --rate "$ACK_RATE" --duration "$STEP" --size "$SIZE" --json | sed 's/"scenario":"open-rooms"/"scenario":"ack-latency"/' >>"$RESULTS" || true
JT_LOAD_MAIL_DIR="$WORK/jangteo/outbox-mail" $LOAD feed --url http://127.0.0.1:9000 --rate "$FEED_RATE" --duration "$STEP" --json >>"$RESULTS" || true
connect_run jangteo 9000
stop

# For reference: the same ack-latency run with synchronous=NORMAL (acked =
# safe from a process crash, not from power loss).
start jangteo-normal 9000 env "${JANGTEO_ENV[@]}" JANGTEO_DATA_DIR="$WORK/jangteo-normal" JANGTEO_SQLITE_SYNCHRONOUS=normal \
  "$ROOT/target/release/jangteo" serve
$LOAD open-rooms --target jangteo --url http://127.0.0.1:9000 --rooms "$ROOMS" --members 2 --publishers 2 \
  --rate "$ACK_RATE" --duration "$STEP" --size "$SIZE" --json | sed 's/"scenario":"open-rooms"/"scenario":"ack-latency (synchronous=NORMAL)"/' >>"$RESULTS" || true
stop

# The distributed engine (MySQL/MariaDB + MongoDB + Redis + Kafka), one
# node, when scripts/services.sh has its services up.
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if up 3306 && up 6379 && up 27017 && up 9092 && command -v mysql >/dev/null; then
  DB=jt_bench_$$
  mysql -h 127.0.0.1 -u root -e "CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
  start jangteo-distributed 9000 env "${JANGTEO_ENV[@]}" JANGTEO_DATA_DIR="$WORK/jangteo-distributed" \
    JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB" JANGTEO_MONGODB_URL="mongodb://127.0.0.1:27017/$DB" \
    JANGTEO_REDIS_URL=redis://127.0.0.1:6379 JANGTEO_REDIS_PREFIX="$DB:" \
    JANGTEO_KAFKA_BROKERS=127.0.0.1:9092 JANGTEO_KAFKA_TOPIC_PREFIX="$DB." \
    "$ROOT/target/release/jangteo" serve
  wait_ready() { for _ in $(seq 1 100); do curl -fs http://127.0.0.1:9000/ready >/dev/null && return 0; sleep 0.2; done; return 1; }
  wait_ready || echo "!! jangteo-distributed: not ready" | tee -a "$WORK/failures"
  $LOAD open-rooms --target jangteo --url http://127.0.0.1:9000 --rooms "$ROOMS" --members "$MEMBERS" \
    --publishers "$PUBLISHERS" --rate "$RATES" --duration "$STEP" --size "$SIZE" --json \
    | sed 's/"target":"jangteo"/"target":"jangteo-distributed"/' >>"$RESULTS" \
    || echo "!! jangteo-distributed: open-rooms reported a correctness failure" | tee -a "$WORK/failures"
  $LOAD open-rooms --target jangteo --url http://127.0.0.1:9000 --rooms "$ROOMS" --members 2 --publishers 2 \
    --rate "$ACK_RATE" --duration "$STEP" --size "$SIZE" --json \
    | sed 's/"scenario":"open-rooms"/"scenario":"ack-latency"/; s/"target":"jangteo"/"target":"jangteo-distributed"/' >>"$RESULTS" || true
  stop
  mysql -h 127.0.0.1 -u root -e "DROP DATABASE $DB" || true
else
  echo "== distributed engine skipped: scripts/services.sh up starts MySQL, Redis, MongoDB and Kafka"
fi

start socketio 9001 "$NODE_BIN" loadtests/peers/socketio.js 9001
rooms_run socketio 9001
connect_run socketio 9001
stop

start bun 9002 "$BUN_BIN" loadtests/peers/bun.ts 9002
rooms_run bun 9002
connect_run bun 9002
stop

start broadcast 9003 "$ROOT/target/release/peer-broadcast" 127.0.0.1:9003
rooms_run broadcast 9003
connect_run broadcast 9003
stop

echo "== writing $OUT"
{
  cat <<HEADER
# compare.sh run, $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)

Written by \`loadtests/compare.sh\` on $(date -u +%Y-%m-%d) from one run on one machine, so
the ratios compare like with like; absolute numbers on a shared 2-core box are noise.

- Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/{print $2}') GiB RAM, Linux $(uname -r)
- Placement: $PINNED
- Open rooms: $ROOMS rooms x $MEMBERS members (one WebSocket each), $PUBLISHERS publisher(s) per room,
  $SIZE-byte messages, open-loop steps of $STEP at $RATES messages/s sent (each delivered to $MEMBERS members)
- Jangteo: release build, embedded engine (SQLite, WAL, synchronous=FULL: **every message is on disk before
  its ack and delivery**), 1 HTTP worker, per-user send rate limit lifted for the test.
  \`jangteo-distributed\` (when the services are up): one node on MySQL/MariaDB + MongoDB-wire (journaled
  writes) + Redis + Kafka (every message also published for other nodes); the services share the machine
- Peers do what they can: no persistence, no auth, no receipts, no badges, no seq numbers; they ack and
  broadcast. socket.io 4 on Node $(node --version), Bun $("$BUN_BIN" --version) pub/sub, and a minimal
  tokio + tungstenite broadcast server (\`peer-broadcast\`)
- Latency is measured from the intended (scheduled) send time to arrival at each member, so queueing
  is not hidden; correctness (lost, duplicated, out of order) is checked per receiver

HEADER
  "$ROOT/target/release/jangteo-load" report "$RESULTS"
  if [ -s "$WORK/failures" ]; then echo; echo "**Failures in this run:**"; sed 's/^/- /' "$WORK/failures"; fi
  echo
  echo "Raw results (JSON lines):"
  echo
  echo '```'
  cat "$RESULTS"
  echo '```'
} >"$WORK/BENCHMARKS.md"
mkdir -p "$(dirname "$OUT")"
cp "$WORK/BENCHMARKS.md" "$OUT"
echo "done: $OUT"
[ ! -s "$WORK/failures" ]

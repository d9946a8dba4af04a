#!/usr/bin/env bash
# The same open-rooms steps against the engines in one run, so the ratios
# compare like with like: embedded (SQLite), MySQL/MariaDB + Redis, the
# whole distributed engine (MySQL/MariaDB + Redis + MongoDB + Kafka), one
# node each; and MySQL/MariaDB + Redis + Kafka on two nodes, each room's
# members spread over both (so most deliveries cross Kafka), both nodes on
# the one server core. Needs `scripts/services.sh up`. Loopback only,
# bounded in time.
#
# CPU per delivery counts the whole system: the node(s) and, for the engines
# that use them, MariaDB, Redis, tansu (Kafka) and the MongoDB-wire server
# over the same step. The last row ("idle node") measures what a node pays
# for another node's chat events when none of its users is in those rooms:
# all members on node A, node B holding 10 idle users of its own, B's CPU
# over the step (divide by the step's sends for the cost per event).
#
#   loadtests/engines.sh
#   RATES=100,400 ROOMS=50 MEMBERS=20 STEP=8s loadtests/engines.sh
#   ROWS=two-nodes,idle-node JANGTEO_BIN=/tmp/other loadtests/engines.sh   # some rows, another build
set -euo pipefail
cd "$(dirname "$0")/.."
ROOMS=${ROOMS:-20}
MEMBERS=${MEMBERS:-10}
RATES=${RATES:-100,200,400,800}
STEP=${STEP:-5s}
ROWS=${ROWS:-embedded,mysql-redis,distributed,two-nodes,idle-node}
BIN=${JANGTEO_BIN:-target/release/jangteo}
has() { case ",$ROWS," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
cargo build --release --locked -p jangteo -p jangteo-loadtests
for port in 3306 6379 27017 9092; do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nothing on 127.0.0.1:$port: run scripts/services.sh up" >&2; exit 1; }
done
PIN_SERVER=(); PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SERVER=(taskset -c 0); PIN_LOAD=(taskset -c 1); fi
ENV=(JANGTEO_LOG=warn JANGTEO_WORKERS=1 JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000
  JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000
  JANGTEO_CHAT_DIRECT_SEND_RATE=100000 JANGTEO_CHAT_DIRECT_SEND_BURST=100000
  JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000)
start() { # name port settings...
  local name=$1 port=$2; shift 2
  env "${ENV[@]}" JANGTEO_LISTEN=127.0.0.1:$port JANGTEO_DATA_DIR="$W/$name-$port" JANGTEO_NODE_ID="$name-$port" "$@" \
    "${PIN_SERVER[@]}" "$BIN" serve >"$W/$name-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
}
# PIDs whose CPU counts, per row (set before `load`).
CPU=()
svc() { pgrep -x mariadbd; pgrep -x redis-server; pgrep -f "tansu broker" | head -1; pgrep -f secantusd | head -1; }
load() { # name url [--also url]...
  local name=$1 url=$2; shift 2
  local cpu=()
  for p in "${CPU[@]}"; do cpu+=(--cpu-pid "$p"); done
  # A correctness failure is reported in the table (lost, dup, errors and
  # their kinds below it), not the end of the run.
  if ! "${PIN_LOAD[@]}" target/release/jangteo-load open-rooms --target jangteo --url "$url" "$@" "${cpu[@]}" \
    --rooms "$ROOMS" --members "$MEMBERS" --publishers 1 --rate "$RATES" --duration "$STEP" --size 100 --json \
    | sed "s/\"target\":\"jangteo\"/\"target\":\"$name\"/" >>"$W/results.jsonl"; then
    echo "$name: the generator reported a failure (see the table)" >&2
  fi
  kill -9 "${PIDS[@]}"
  PIDS=()
}
PIDS=()
run() { # name port settings...
  start "$@"
  CPU=("${PIDS[@]}")
  case $1 in mysql-redis) CPU+=($(pgrep -x mariadbd) $(pgrep -x redis-server)) ;; distributed) CPU+=($(svc)) ;; esac
  load "$1" "http://127.0.0.1:$2"
}
DB=jt_engines_$$
mysql -h 127.0.0.1 -u root -e "CREATE DATABASE ${DB}_a CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; CREATE DATABASE ${DB}_b CHARACTER SET utf8mb4 COLLATE utf8mb4_bin; CREATE DATABASE ${DB}_c CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
has embedded && run embedded 9100
has mysql-redis && run mysql-redis 9101 JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/${DB}_a" \
  JANGTEO_REDIS_URL=redis://127.0.0.1:6379 JANGTEO_REDIS_PREFIX="${DB}_a:"
# The MongoDB-wire test server timed alone with a plain client, in the same
# run, so the distributed row can say how much of it is that server.
VENV=${JANGTEO_CACHE:-$HOME/.cache/jangteo}/secantus-venv
PROBE="not run"
if has distributed; then
PROBE=$("$VENV/bin/python" loadtests/mongo-probe.py "mongodb://127.0.0.1:27017/${DB}_probe" 2>&1 | tail -1) \
  || PROBE="probe failed: $PROBE"
run distributed 9102 JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/${DB}_b" \
  JANGTEO_REDIS_URL=redis://127.0.0.1:6379 JANGTEO_REDIS_PREFIX="${DB}_b:" \
  JANGTEO_MONGODB_URL="mongodb://127.0.0.1:27017/${DB}_b" \
  JANGTEO_KAFKA_BROKERS=127.0.0.1:9092 JANGTEO_KAFKA_TOPIC_PREFIX="${DB}_b."
fi
TWO=(JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/${DB}_c" JANGTEO_REDIS_URL=redis://127.0.0.1:6379
  JANGTEO_REDIS_PREFIX="${DB}_c:" JANGTEO_KAFKA_BROKERS=127.0.0.1:9092 JANGTEO_KAFKA_TOPIC_PREFIX="${DB}_c.")
if has two-nodes; then
start two-nodes 9103 "${TWO[@]}"
start two-nodes 9104 "${TWO[@]}"
CPU=("${PIDS[@]}" $(pgrep -x mariadbd) $(pgrep -x redis-server) $(pgrep -f "tansu broker" | head -1))
load two-nodes http://127.0.0.1:9103 --also http://127.0.0.1:9104
fi
# A node that only reads the other's events.
if has idle-node; then
start idle-node 9105 "${TWO[@]}"
start idle-node 9106 "${TWO[@]}"
IDLE=${PIDS[1]}
"${PIN_LOAD[@]}" target/release/jangteo-load connect --target jangteo --url http://127.0.0.1:9106 \
  --connections 10 --users 10 --hold 600s --json >/dev/null 2>&1 &
HOLDER=$!
sleep 3
CPU=("$IDLE")
load idle-node http://127.0.0.1:9105
kill "$HOLDER" 2>/dev/null || true
fi
mysql -h 127.0.0.1 -u root -e "DROP DATABASE ${DB}_a; DROP DATABASE ${DB}_b; DROP DATABASE ${DB}_c" || true
target/release/jangteo-load report "$W/results.jsonl"
echo
echo "Errors by kind, per row:"
grep -o '"target":"[^"]*"\|"error_kinds":{[^}]*}' "$W/results.jsonl" | paste - - || true
echo
echo "MongoDB-wire server alone, plain client (loadtests/mongo-probe.py), same run:"
echo "$PROBE"

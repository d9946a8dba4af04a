#!/usr/bin/env bash
# Where the machine's CPU goes while two nodes (MySQL/MariaDB + Redis +
# Kafka, messages in MariaDB) serve open rooms with each room's members
# spread over both: each node's and each service's share of a core over
# the middle of the run, read from /proc, then the generator's report.
# Both nodes on CPU 0, the generator on CPU 1, the services wherever the
# kernel puts them. Needs `scripts/services.sh up`. Loopback only.
#
#   loadtests/cpu-share.sh                # 1,000 sends/s x 10 members
#   RATE=500 loadtests/cpu-share.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-1000}
BIN=${BIN:-target/release/jangteo}
for port in 3306 6379 9092; do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nothing on 127.0.0.1:$port: run scripts/services.sh up" >&2; exit 1; }
done
[ -x target/release/jangteo-load ] || cargo build --release --locked -p jangteo-loadtests
PIN_SERVER=(); PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SERVER=(taskset -c 0); PIN_LOAD=(taskset -c 1); fi
W=$(mktemp -d); DB=jt_cpu_$$
trap 'kill $(jobs -p) 2>/dev/null || true; mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS $DB" || true; rm -rf "$W"' EXIT
mysql -h 127.0.0.1 -u root -e "CREATE DATABASE $DB CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
ENV=(JANGTEO_LOG=warn JANGTEO_WORKERS=1 JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1
  JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000
  JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000 JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000
  JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/$DB" JANGTEO_REDIS_URL=redis://127.0.0.1:6379
  JANGTEO_REDIS_PREFIX="$DB:" JANGTEO_KAFKA_BROKERS=127.0.0.1:9092 JANGTEO_KAFKA_TOPIC_PREFIX="$DB.")
NODES=()
for port in 9103 9104; do
  env "${ENV[@]}" JANGTEO_LISTEN=127.0.0.1:$port JANGTEO_DATA_DIR="$W/$port" JANGTEO_NODE_ID="node-$port" \
    "${PIN_SERVER[@]}" "$BIN" serve >"$W/$port.log" 2>&1 &
  NODES+=($!)
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 0.2; done
done
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
WHO=("node-9103:${NODES[0]}" "node-9104:${NODES[1]}")
# One process per service: the database under whichever name it runs.
for names in "mariadbd mysqld" tansu redis-server secantusd-py; do
  for svc in $names; do
    pid=$(pgrep -o -x "$svc" || pgrep -o -f "bin/$svc" || true)
    if [ -n "$pid" ]; then WHO+=("$svc:$pid"); break; fi
  done
done
"${PIN_LOAD[@]}" target/release/jangteo-load open-rooms --target jangteo --url http://127.0.0.1:9103 \
  --also http://127.0.0.1:9104 --rooms 20 --members 10 --publishers 1 --rate "$RATE" --duration 10s \
  --warmup 2s --size 100 >"$W/load.txt" 2>&1 &
LOAD=$!
sleep 4
declare -A BEFORE
for w in "${WHO[@]}"; do BEFORE[$w]=$(ticks "${w#*:}"); done
sleep 6
HZ=$(getconf CLK_TCK)
echo "| process | share of one core |"
echo "|---|---|"
for w in "${WHO[@]}"; do
  echo "| ${w%%:*} | $(( ($(ticks "${w#*:}") - BEFORE[$w]) * 100 / (6 * HZ) ))% |"
done
wait "$LOAD"
cat "$W/load.txt"

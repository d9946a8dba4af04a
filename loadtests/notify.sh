#!/usr/bin/env bash
# Keyword alerts under load, the same steps on each engine in one run:
# SUBSCRIBERS users save a keyword and each hold a chat WebSocket; SELLERS
# users post listings whose title contains it at stepped open-loop RATES
# (listings/s, STEP each). Reports events/s turned into live `notification`
# frames, lost / duplicated frames and the delay from each listing's
# intended post to its frame (p50/p99), then checks every subscriber's
# unread count (exactly one notification per listing).
#
# Engines: embedded (SQLite), MariaDB + Redis (one node), and, when Kafka
# (127.0.0.1:9092) and MongoDB-wire (127.0.0.1:27017) answer, the
# distributed engine with two nodes (subscribers and sellers alternate).
# Needs MariaDB and Redis (scripts/services.sh up). Servers listen on free
# loopback ports; everything is bounded (about a minute per engine).
#
#   loadtests/notify.sh
#   RATES=20,40 STEP=3s SUBSCRIBERS=50 loadtests/notify.sh
#   BUILD=0 loadtests/notify.sh            # use the binaries already in target/release
set -euo pipefail
cd "$(dirname "$0")/.."
SUBSCRIBERS=${SUBSCRIBERS:-20}
SELLERS=${SELLERS:-4}
RATES=${RATES:-10,20,40,80}
STEP=${STEP:-5s}
GRACE=${GRACE:-3s}
W=$(mktemp -d)
DB=jt_notify_$$
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  mysql -h 127.0.0.1 -u root -e "DROP DATABASE IF EXISTS ${DB}_m; DROP DATABASE IF EXISTS ${DB}_d" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
if [ "${BUILD:-1}" != 0 ]; then
  cargo build --release --locked -p jangteo -p jangteo-loadtests
fi
BIN=target/release
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in 3306 6379; do
  up "$port" || { echo "nothing on 127.0.0.1:$port: run scripts/services.sh up" >&2; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Cheap password hashing and no sign-up limit (every account comes from
# 127.0.0.1); nothing about notifications is changed. Not pinned: the
# server, its store and the generator share both cores.
ENV=(JANGTEO_LOG=warn JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1
  JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_LOGIN_MAX_FAILURES=1000000 JANGTEO_LISTINGS_PER_HOUR=1000000
  JANGTEO_KEYWORD_ALERTS_PER_SELLER_PER_HOUR=1000000 JANGTEO_MAX_UNPAID_ORDERS=1000000 JANGTEO_MAX_UNPAID_UNITS=100000000)
URLS=()
start() { # name settings... (appends the node's URL to URLS)
  local name=$1 port; shift
  port=$(free_port)
  # Accounts verify their address with the link the node writes.
  export JT_LOAD_MAIL_DIR="${JT_LOAD_MAIL_DIR:+$JT_LOAD_MAIL_DIR:}$W/$name/outbox-mail"
  env "${ENV[@]}" JANGTEO_LISTEN="127.0.0.1:$port" JANGTEO_DATA_DIR="$W/$name" "$@" \
    "$BIN/jangteo" serve >"$W/$name.log" 2>&1 &
  for _ in $(seq 150); do
    if curl -fs "http://127.0.0.1:$port/ready" >/dev/null; then URLS+=("http://127.0.0.1:$port"); return 0; fi
    sleep 0.2
  done
  echo "server $name did not start:" >&2; tail -20 "$W/$name.log" >&2; return 1
}
stop_all() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; URLS=(); }
FAILED=()
notify() { # engine name; uses URLS
  local name=$1 also=()
  for u in "${URLS[@]:1}"; do also+=(--also "$u"); done
  echo "== $name (${#URLS[@]} node(s))"
  if ! "$BIN/jangteo-load" notify --url "${URLS[0]}" "${also[@]}" --subscribers "$SUBSCRIBERS" \
      --sellers "$SELLERS" --rates "$RATES" --step "$STEP" --grace "$GRACE" --json \
      2>"$W/$name.err" | sed "s/\"target\":\"jangteo\"/\"target\":\"$name\"/" >>"$W/results.jsonl"; then
    FAILED+=("$name")
  fi
  if [ -s "$W/$name.err" ]; then cat "$W/$name.err" >&2; fi
  if grep -qi "panic\|ERROR" "$W"/$name*.log 2>/dev/null; then
    echo "-- server log of $name (errors):" >&2; grep -hi "panic\|ERROR" "$W"/$name*.log | head -20 >&2
  fi
}

start embedded
notify embedded
stop_all

mysql -h 127.0.0.1 -u root -e "CREATE DATABASE ${DB}_m CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
start mysql JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/${DB}_m" \
  JANGTEO_REDIS_URL=redis://127.0.0.1:6379 JANGTEO_REDIS_PREFIX="${DB}_m:"
notify mysql-redis
stop_all

if up 9092 && up 27017; then
  mysql -h 127.0.0.1 -u root -e "CREATE DATABASE ${DB}_d CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
  DIST=(JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/${DB}_d"
    JANGTEO_REDIS_URL=redis://127.0.0.1:6379 JANGTEO_REDIS_PREFIX="${DB}_d:"
    JANGTEO_MONGODB_URL="mongodb://127.0.0.1:27017/${DB}_d"
    JANGTEO_KAFKA_BROKERS=127.0.0.1:9092 JANGTEO_KAFKA_TOPIC_PREFIX="${DB}_d.")
  start distributed-a "${DIST[@]}"
  start distributed-b "${DIST[@]}"
  notify distributed
  stop_all
else
  echo "== distributed engine skipped: Kafka (127.0.0.1:9092) or MongoDB-wire (127.0.0.1:27017) not answering"
fi

"$BIN/jangteo-load" report "$W/results.jsonl"
if [ ${#FAILED[@]} -gt 0 ]; then
  echo "!! failed: ${FAILED[*]}" >&2
  exit 1
fi

#!/usr/bin/env bash
# The distributed engine's backing services on one machine, for tests and
# for trying a cluster without Docker:
#
#   scripts/services.sh up       start whatever is not running (installs first)
#   scripts/services.sh down     stop what this script started
#   scripts/services.sh status   which ports answer
#
# - MariaDB/MySQL on 127.0.0.1:3306 and Redis on 127.0.0.1:6379 are expected
#   to be provided by the machine; `up` starts them with the local binaries
#   if they are installed but stopped, and fails if they are missing.
# - Kafka on 127.0.0.1:9092: the Kafka-compatible broker `tansu` (crates.io),
#   in-memory storage. Installed once with cargo into $JANGTEO_CACHE.
# - MongoDB on 127.0.0.1:27017: the MongoDB-wire server `SecantusDB` (PyPI),
#   in a venv in $JANGTEO_CACHE, data under $JANGTEO_SERVICES_DIR.
#
# docker-compose.yml runs the real thing (MySQL 8, MongoDB 7, Redis 7, Kafka)
# on the same ports.
set -euo pipefail

CACHE=${JANGTEO_CACHE:-$HOME/.cache/jangteo}
STATE=${JANGTEO_SERVICES_DIR:-${TMPDIR:-/tmp}/jangteo-services}
# The versions the tests were proven with; override to try another.
TANSU_VERSION=${TANSU_VERSION:-0.6.0}
SECANTUS_VERSION=${SECANTUS_VERSION:-0.7.0b3}
TANSU=$CACHE/tansu/bin/tansu
VENV=$CACHE/secantus-venv

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2 tries=${3:-100}
  for _ in $(seq "$tries"); do
    answers "$port" && return 0
    sleep 0.2
  done
  echo "!!! $name did not start on 127.0.0.1:$port (log: $STATE/$name.log)" >&2
  tail -20 "$STATE/$name.log" >&2 || true
  return 1
}

ensure_mariadb() {
  answers 3306 && return 0
  if command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; then
    echo "== starting MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
    wait_port 3306 mariadb 150
  else
    echo "!!! no MySQL/MariaDB on 127.0.0.1:3306 and none installed" >&2
    return 1
  fi
}

ensure_redis() {
  answers 6379 && return 0
  if command -v redis-server >/dev/null; then
    echo "== starting Redis"
    mkdir -p "$STATE/redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" \
      --appendonly no --dir "$STATE/redis" --logfile "$STATE/redis.log"
    wait_port 6379 redis
  else
    echo "!!! no Redis on 127.0.0.1:6379 and none installed" >&2
    return 1
  fi
}

install_tansu() {
  [ -x "$TANSU" ] && return 0
  echo "== installing tansu (Kafka-compatible broker) with cargo; takes several minutes once"
  mkdir -p "$CACHE"
  # Its own temporary target dir: a CI run exports CARGO_TARGET_DIR, and
  # sharing it would lock the project's build out while tansu builds.
  env -u CARGO_TARGET_DIR "${JANGTEO_CARGO:-cargo}" install tansu --locked --features dynostore,postgres --version "$TANSU_VERSION" \
    --root "$CACHE/tansu" >"$CACHE/tansu-install.log" 2>&1 || {
    tail -30 "$CACHE/tansu-install.log" >&2
    return 1
  }
}

ensure_kafka() {
  # The binary is needed even when a broker already answers: the cluster
  # tests start brokers of their own to pause and restart.
  install_tansu
  answers 9092 && return 0
  echo "== starting tansu on 127.0.0.1:9092"
  mkdir -p "$STATE"
  nohup "$TANSU" broker \
    --listener-url tcp://127.0.0.1:9092 \
    --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine memory://tansu/ >"$STATE/kafka.log" 2>&1 &
  echo $! >"$STATE/kafka.pid"
  wait_port 9092 kafka
}

install_secantus() {
  [ -x "$VENV/bin/secantusd-py" ] && return 0
  echo "== installing SecantusDB (MongoDB-wire server) into $VENV"
  mkdir -p "$CACHE"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "SecantusDB==$SECANTUS_VERSION"
}

ensure_mongodb() {
  answers 27017 && return 0
  install_secantus
  echo "== starting SecantusDB on 127.0.0.1:27017"
  mkdir -p "$STATE/mongo"
  nohup "$VENV/bin/secantusd-py" --host 127.0.0.1 --port 27017 \
    --storage-path "$STATE/mongo" >"$STATE/mongodb.log" 2>&1 &
  echo $! >"$STATE/mongodb.pid"
  wait_port 27017 mongodb
}

stop() {
  local name=$1 pid
  if [ -f "$STATE/$name.pid" ]; then
    pid=$(cat "$STATE/$name.pid")
    kill "$pid" 2>/dev/null || true
    # Wait (bounded) until it is gone: a server still closing answers on
    # its port, and an `up` right after would take it for a live one.
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    # Still there after 10 s: end it (only if it is still ours to end).
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -f "$STATE/$name.pid"
    echo "stopped $name"
  fi
}

status() {
  local rc=0
  for pair in mysql:3306 redis:6379 kafka:9092 mongodb:27017; do
    if answers "${pair#*:}"; then
      echo "${pair%%:*} up (127.0.0.1:${pair#*:})"
    else
      echo "${pair%%:*} DOWN (127.0.0.1:${pair#*:})"
      rc=1
    fi
  done
  return $rc
}

case "${1:-status}" in
  up)
    ensure_mariadb
    ensure_redis
    ensure_kafka
    ensure_mongodb
    status
    ;;
  down)
    stop kafka
    stop mongodb
    ;;
  status) status ;;
  # The pieces: MariaDB and Redis only (nothing to install), and Kafka
  # alone for fault tests that stop and restart it.
  sql-up) ensure_mariadb && ensure_redis ;;
  kafka-up) ensure_kafka ;;
  kafka-down) stop kafka ;;
  install) install_tansu && install_secantus ;;
  *)
    echo "usage: $0 up|down|status|install|sql-up|kafka-up|kafka-down" >&2
    exit 2
    ;;
esac

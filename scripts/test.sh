#!/usr/bin/env bash
# The test command from the README. Three passes:
#
# 1. the workspace's tests (`cargo nextest run --workspace`): unit, CLI and the HTTP/WebSocket acceptance
#    suite on the embedded engine (SQLite, in-process cache, limits, bus),
#    the web client in headless Chromium (tests/web.rs; the browser comes
#    from scripts/browser.sh), plus the multi-process cluster and fault
#    tests (tests/cluster.rs) on the services below.
# 2. The acceptance suite and the browser tests on MySQL/MariaDB + Redis.
# 3. The acceptance suite and the browser tests on the whole distributed
#    engine (MySQL/MariaDB, Redis, MongoDB, Kafka) with two nodes per test:
#    API requests and WebSocket connections take turns between the nodes.
#
# Services come from scripts/services.sh (MariaDB 3306 and Redis 6379 from
# the machine; Kafka 9092 = tansu and MongoDB 27017 = SecantusDB, installed
# on first use). Override with JT_TEST_MYSQL_URL, JT_TEST_REDIS_URL,
# JT_TEST_MONGODB_URL, JT_TEST_KAFKA_BROKERS. In CI (CI=true) every service
# is required: a missing one fails the run. Locally, passes that need a
# missing service are skipped with a loud message.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS=0

MYSQL_URL=${JT_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
REDIS_URL=${JT_TEST_REDIS_URL:-redis://127.0.0.1:6379}
MONGODB_URL=${JT_TEST_MONGODB_URL:-mongodb://127.0.0.1:27017}
KAFKA=${JT_TEST_KAFKA_BROKERS:-127.0.0.1:9092}
hostport() { local u=${1#*://}; u=${u#*@}; u=${u%%/*}; echo "${u%%,*}"; }
answers() { local hp; hp=$(hostport "$1"); (exec 3<>"/dev/tcp/${hp%%:*}/${hp##*:}") 2>/dev/null; }

# JT_PASSES picks passes (default all three, in order; CI runs pass 2,
# which needs nothing installed, while tansu still builds, then "1 3").
PASSES=" ${JT_PASSES:-1 2 3} "
wants() { [[ "$PASSES" == *" $1 "* ]]; }

if { wants 1 || wants 3; } && [ -z "${JT_TEST_KAFKA_BROKERS:-}${JT_TEST_MONGODB_URL:-}" ]; then
  if ! scripts/services.sh up; then
    if [ "${CI:-}" = true ]; then
      echo "!!! services did not come up; CI requires them" >&2
      exit 1
    fi
    echo "!!! some services are missing: the passes that need them will be skipped !!!"
    export JT_SKIP_CLUSTER=1
  fi
elif wants 2 && ! scripts/services.sh sql-up && [ "${CI:-}" = true ]; then
  echo "!!! MariaDB or Redis did not come up; CI requires them" >&2
  exit 1
fi

# Leftovers of earlier runs (databases, keys) go first.
mh=$(hostport "$MYSQL_URL")
if command -v mysql >/dev/null && answers "$MYSQL_URL"; then
  mysql -h "${mh%%:*}" -P "${mh##*:}" -u root -N -e \
    "SELECT CONCAT('DROP DATABASE ', schema_name, ';') FROM information_schema.schemata WHERE schema_name LIKE 'jt\\_%'" \
    | mysql -h "${mh%%:*}" -P "${mh##*:}" -u root || true
fi
if command -v redis-cli >/dev/null && answers "$REDIS_URL"; then
  rh=$(hostport "$REDIS_URL")
  redis-cli -h "${rh%%:*}" -p "${rh##*:}" --scan --pattern 'jt:*' | xargs -r -n 500 redis-cli -h "${rh%%:*}" -p "${rh##*:}" del >/dev/null || true
fi
VENV=${JANGTEO_CACHE:-$HOME/.cache/jangteo}/secantus-venv
if [ -x "$VENV/bin/python" ] && answers "$MONGODB_URL"; then
  "$VENV/bin/python" - "$MONGODB_URL" <<'PY' || true
import sys, pymongo
c = pymongo.MongoClient(sys.argv[1], serverSelectionTimeoutMS=3000)
for name in c.list_database_names():
    if name.startswith("jt_"):
        c.drop_database(name)
PY
fi

# cargo-nextest (on the machine) runs every test in its own process and the
# test binaries side by side, which keeps the three passes short; plain
# `cargo test` where it is missing. (The crate has no doctests.)
# Every pass selects the whole workspace (passes 2 and 3 then pick their
# test binaries): with one package selected, cargo resolves the
# dependencies' features differently and rebuilt part of them (90 s).
run_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --locked --no-fail-fast "$@"
  else
    cargo test --locked "$@"
  fi
}

pass1() {
  echo "== [${SECONDS} s] pass 1: workspace tests (embedded engine; tests/cluster.rs on the services)"
  run_tests --workspace "$@"
}

pass2() {
  if [ "${CI:-}" != true ] && ! { answers "$MYSQL_URL" && answers "$REDIS_URL"; }; then
    echo "!!! SKIPPED: the acceptance suite on MySQL/MariaDB + Redis (no server at $MYSQL_URL or $REDIS_URL; CI requires both) !!!"
    return 0
  fi
  echo "== [${SECONDS} s] pass 2: acceptance suite on MySQL/MariaDB ($MYSQL_URL) + Redis ($REDIS_URL)"
  JT_TEST_MYSQL_URL=$MYSQL_URL JT_TEST_REDIS_URL=$REDIS_URL run_tests --workspace --test api --test web "$@"
}

pass3() {
  if [ "${CI:-}" != true ] && ! { answers "$MYSQL_URL" && answers "$REDIS_URL" && answers "$MONGODB_URL" && answers "$KAFKA"; }; then
    echo "!!! SKIPPED: the acceptance suite on the distributed engine (no MySQL/MariaDB, Redis, MongoDB at $MONGODB_URL or Kafka at $KAFKA; CI requires them all) !!!"
    return 0
  fi
  echo "== [${SECONDS} s] pass 3: acceptance suite on MySQL + Redis + MongoDB ($MONGODB_URL) + Kafka ($KAFKA), two nodes per test"
  JT_TEST_MYSQL_URL=$MYSQL_URL JT_TEST_REDIS_URL=$REDIS_URL JT_TEST_MONGODB_URL=$MONGODB_URL \
    JT_TEST_KAFKA_BROKERS=$KAFKA JT_TEST_NODES=2 \
    run_tests --workspace --test api --test web "$@"
}

for n in 1 2 3; do
  if wants "$n"; then "pass$n" "$@"; fi
done
echo "== [${SECONDS} s] passes done:$PASSES"

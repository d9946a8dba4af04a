#!/usr/bin/env bash
# The test command from the README: unit, integration (HTTP/WebSocket against
# a real server on a random port) and CLI tests for the whole workspace on
# the embedded engine (SQLite, in-process cache and limits), then the same
# HTTP/WebSocket acceptance suite on MySQL/MariaDB + Redis.
#
# JT_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306): each test gets its
# own database. JT_TEST_REDIS_URL (default redis://127.0.0.1:6379): each test
# gets its own key prefix. In CI (CI=true) both servers are required: a
# missing one fails the run. Locally the run is skipped, loudly, if either
# does not answer.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked "$@"

MYSQL_URL=${JT_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306}
REDIS_URL=${JT_TEST_REDIS_URL:-redis://127.0.0.1:6379}
hostport() { local u=${1#*://}; u=${u#*@}; echo "${u%%/*}"; }
answers() { local hp; hp=$(hostport "$1"); (exec 3<>"/dev/tcp/${hp%%:*}/${hp##*:}") 2>/dev/null; }
if [ "${CI:-}" != true ] && ! { answers "$MYSQL_URL" && answers "$REDIS_URL"; }; then
  echo "!!! SKIPPED: the acceptance suite on MySQL/MariaDB + Redis (no server at $MYSQL_URL or $REDIS_URL; CI requires both) !!!"
  exit 0
fi
echo "== acceptance suite on MySQL/MariaDB ($MYSQL_URL) + Redis ($REDIS_URL)"
mh=$(hostport "$MYSQL_URL")
if command -v mysql >/dev/null; then
  # Drop the databases of earlier runs.
  mysql -h "${mh%%:*}" -P "${mh##*:}" -u root -N -e \
    "SELECT CONCAT('DROP DATABASE ', schema_name, ';') FROM information_schema.schemata WHERE schema_name LIKE 'jt\\_%'" \
    | mysql -h "${mh%%:*}" -P "${mh##*:}" -u root || true
fi
if command -v redis-cli >/dev/null; then
  rh=$(hostport "$REDIS_URL")
  redis-cli -h "${rh%%:*}" -p "${rh##*:}" --scan --pattern 'jt:*' | xargs -r -n 500 redis-cli -h "${rh%%:*}" -p "${rh##*:}" del >/dev/null || true
fi
JT_TEST_MYSQL_URL=$MYSQL_URL JT_TEST_REDIS_URL=$REDIS_URL cargo test --workspace --locked --test api "$@"

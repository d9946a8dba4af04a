#!/usr/bin/env bash
# A short, bounded load run against a freshly started server (CI): the
# correctness counters (lost, duplicated, out of order) must be zero, or
# jangteo-load exits non-zero and so does this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-debug}
# In debug, the same selection as the tests' build (the workspace, every
# target), so the dependencies built for the tests are reused, not rebuilt
# with other features.
if [ "$PROFILE" = release ]; then cargo build --release --locked -p jangteo -p jangteo-loadtests; else cargo build --locked --workspace --all-targets; fi
BIN=${CARGO_TARGET_DIR:-target}/$PROFILE
DATA=$(mktemp -d)
LOG=$DATA/server.log
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT
JANGTEO_LISTEN=127.0.0.1:0 JANGTEO_DATA_DIR="$DATA" JANGTEO_LOG=info NO_COLOR=1 \
  JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000 \
  JANGTEO_CHAT_SEND_RATE=1000 JANGTEO_CHAT_SEND_BURST=1000 JANGTEO_CHAT_DIRECT_SEND_RATE=1000 JANGTEO_CHAT_DIRECT_SEND_BURST=1000 \
  JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 JANGTEO_LISTINGS_PER_HOUR=1000000 \
  "$BIN/jangteo" serve >"$LOG" 2>&1 &
SERVER=$!
ADDR=""
for _ in $(seq 1 100); do
  ADDR=$(grep -o 'listening on http://[0-9.:]*' "$LOG" | head -1 | sed 's|listening on ||') || true
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || { echo "server did not start"; cat "$LOG"; exit 1; }
echo "load smoke against $ADDR"
# The feed's seller verifies its address with the link the server writes.
export JT_LOAD_MAIL_DIR="$DATA/outbox-mail"
"$BIN/jangteo-load" open-rooms --url "$ADDR" --rooms 4 --members 5 --publishers 2 --rate 100,200 --duration 2s --drain 2s
"$BIN/jangteo-load" direct --url "$ADDR" --pairs 5 --rate 100 --duration 2s --drain 2s
"$BIN/jangteo-load" feed --url "$ADDR" --rate 50 --duration 2s --listings 30
echo "load smoke: passed"

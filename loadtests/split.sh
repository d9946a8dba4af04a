#!/usr/bin/env bash
# Where a server's CPU per delivery goes: user space or the kernel. One
# open-rooms step (20 rooms x 50 members, spread publishers) against
# Jangteo and Bun, one after the other, with the server's user and system
# time read from /proc/PID/stat over a window inside the step. The kernel's
# share is mostly the TCP send of each frame (and, on loopback, the
# receiver's side of it), the same work for any server; the user share is
# ours to make smaller (docs/BENCHMARKS.md, "Where the rest of the CPU goes").
#
#   loadtests/split.sh                      # 1,000 sends/s = 50,000 deliveries/s
#   RATE=2000 loadtests/split.sh            # 100,000 deliveries/s
#   JANGTEO_BIN=/tmp/other loadtests/split.sh
#
# Server on CPU 0, generator on CPU 1. Prints to stdout only.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RATE=${RATE:-1000}
WINDOW=${WINDOW:-4}
JANGTEO_BIN=${JANGTEO_BIN:-$ROOT/target/release/jangteo}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ulimit -n 65536 2>/dev/null || true
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN="taskset -c 0"; LOAD_PIN="taskset -c 1"
else
  SERVER_PIN=""; LOAD_PIN=""
fi
[ -x "$ROOT/target/release/jangteo-load" ] && [ -x "$JANGTEO_BIN" ] \
  || cargo build --release --locked -p jangteo -p jangteo-loadtests >/dev/null
npm install --prefix loadtests/peers --no-audit --no-fund --loglevel=error >/dev/null
HZ=$(getconf CLK_TCK)

one() { # target port cmd...
  local target=$1 port=$2; shift 2
  $SERVER_PIN "$@" >"$WORK/$target.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  # One step of WINDOW + 8 s. Connecting 1,000 clients, waiting for a
  # quiet server and the 1 s warm-up take under 4 s here, so a window that
  # starts 5 s in lies inside the step.
  $LOAD_PIN "$ROOT/target/release/jangteo-load" open-rooms --target "$target" --url "http://127.0.0.1:$port" \
    --rooms 20 --members 50 --publishers 1 --rate "$RATE" --duration "$((WINDOW + 8))s" --warmup 1s \
    --size 90 --spread --cpu-pid "$pid" --json >"$WORK/$target.json" &
  local load=$!
  sleep 5
  local a b
  read -r -a a < <(awk '{print $14, $15}' "/proc/$pid/stat")
  sleep "$WINDOW"
  read -r -a b < <(awk '{print $14, $15}' "/proc/$pid/stat")
  wait "$load" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  awk -v t="$target" -v u=$((b[0] - a[0])) -v s=$((b[1] - a[1])) -v hz="$HZ" -v d=$((RATE * 50 * WINDOW)) \
    'BEGIN { printf "| %s | %.1f | %.1f | %.1f |\n", t, u / hz * 1e6 / d, s / hz * 1e6 / d, (u + s) / hz * 1e6 / d }'
}

echo "Deliveries/s: $((RATE * 50)); window ${WINDOW} s; clock ticks of ${HZ} Hz, so +-$(awk -v hz="$HZ" -v d=$((RATE * 50 * WINDOW)) 'BEGIN { printf "%.2f", 1e6 / hz / d }') µs per tick"
echo
echo "| server | user µs per delivery | system µs per delivery | total |"
echo "|---|---|---|---|"
one bun 9002 "$ROOT/loadtests/peers/node_modules/.bin/bun" loadtests/peers/bun.ts 9002
one jangteo 9000 env JANGTEO_LISTEN=127.0.0.1:9000 JANGTEO_DATA_DIR="$WORK/data" \
  JANGTEO_LOG=warn JANGTEO_WORKERS=1 JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 \
  JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000 \
  JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000 JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 \
  "$JANGTEO_BIN" serve

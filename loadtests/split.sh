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
WINDOW=${WINDOW:-6}
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
  # The generator measures the server's user and system time itself over
  # the step (after the 1 s warm-up), once the server is quiet and, for
  # Jangteo, its outbox has drained the sign-ups' verification emails
  # (until 2026-12-07 a fixed window here overlapped that drain).
  $LOAD_PIN "$ROOT/target/release/jangteo-load" open-rooms --target "$target" --url "http://127.0.0.1:$port" \
    --rooms 20 --members 50 --publishers 1 --rate "$RATE" --duration "${WINDOW}s" --warmup 1s \
    --size 90 --spread --cpu-pid "$pid" --json >"$WORK/$target.json" || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 - "$target" "$WORK/$target.json" <<'PY'
import json, sys
target, path = sys.argv[1], sys.argv[2]
s = json.load(open(path))["steps"][-1]
total, user = s["cpu_us_per_delivery"], s.get("cpu_user_us_per_delivery", 0.0)
print(f"| {target} | {user:.1f} | {total - user:.1f} | {total:.1f} |")
PY
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

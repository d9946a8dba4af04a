#!/usr/bin/env bash
# The ack-latency step of compare.sh (20 rooms x 2 members, 2 publishers
# each) against one or more server binaries, alternated, with the group
# commit's own figures from /metrics (commits, mean commit time), so a
# change to the commit path is measured where it acts. Embedded engine,
# server on CPU 0, generator on CPU 1. Loopback only, bounded in time.
#
#   loadtests/commit.sh /tmp/jangteo-before target/release/jangteo
#   RATE=2000 ROUNDS=1 loadtests/commit.sh target/release/jangteo
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: commit.sh BINARY [BINARY...]" >&2; exit 2; }
RATE=${RATE:-5000}
ROUNDS=${ROUNDS:-2}
PORT=9077
[ -x target/release/jangteo-load ] || cargo build --release --locked -p jangteo-loadtests
PIN_SERVER=(); PIN_LOAD=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then PIN_SERVER=(taskset -c 0); PIN_LOAD=(taskset -c 1); fi
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
metric() { curl -s "http://127.0.0.1:$PORT/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
printf '| binary | round | commits | mean commit ms | ack p50 ms | ack p99 ms |\n|---|---|---|---|---|---|\n'
for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    rm -rf "$W/data"
    env JANGTEO_LISTEN=127.0.0.1:$PORT JANGTEO_DATA_DIR="$W/data" JANGTEO_LOG=warn JANGTEO_WORKERS=1 \
      JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 \
      JANGTEO_WS_FRAMES_PER_SEC=1000000 JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000 \
      JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 "${PIN_SERVER[@]}" "$bin" serve >"$W/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.1; done
    "${PIN_LOAD[@]}" target/release/jangteo-load open-rooms --target jangteo --url "http://127.0.0.1:$PORT" \
      --rooms 20 --members 2 --publishers 2 --rate "$RATE" --duration 8s --size 90 --json >"$W/load.json"
    n=$(metric jangteo_chat_commit_seconds_count); s=$(metric jangteo_chat_commit_seconds_sum)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$bin" "$round" "$n" "$s" "$W/load.json" <<'PY'
import json, sys
bin_, rnd, n, s, path = sys.argv[1:]
rep = json.load(open(path))
step = rep["steps"][-1]
print(f"| {bin_} | {rnd} | {int(float(n))} | {1000 * float(s) / max(float(n), 1):.1f} | {step['ack_p50_ms']:.1f} | {step['ack_p99_ms']:.1f} |")
PY
  done
done

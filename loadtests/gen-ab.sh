#!/usr/bin/env bash
# The generator's own cost: two jangteo-load binaries (A = before, B =
# after) against one server, alternated in one run, so a change to the
# generator is judged like with like. Per run: delivered/s, latency, and the
# generator's CPU seconds (user + system) per 100,000 deliveries, which is
# what decides how many deliveries/s one generator core can take.
#
#   loadtests/gen-ab.sh GEN_A GEN_B
#   env: TARGET (broadcast; or bun with the peers installed by compare.sh),
#        ROOMS (20), MEMBERS (50), RATES (400,800,1600), STEP (6s), ROUNDS (2)
# Server on CPU 0, generator on CPU 1 when there are two.
set -euo pipefail
cd "$(dirname "$0")/.."
A=${1:?generator binary A (before)}
B=${2:?generator binary B (after)}
TARGET=${TARGET:-broadcast}
ROOMS=${ROOMS:-20}
MEMBERS=${MEMBERS:-50}
RATES=${RATES:-400,800,1600}
STEP=${STEP:-6s}
ROUNDS=${ROUNDS:-2}
SERVER_PIN=""; LOAD_PIN=""
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN="taskset -c 0"; LOAD_PIN="taskset -c 1"
fi
PORT=9013
work=$(mktemp -d)
case "$TARGET" in
  broadcast) cargo build --release --locked -p jangteo-loadtests --bin peer-broadcast >/dev/null 2>&1
             $SERVER_PIN target/release/peer-broadcast "127.0.0.1:$PORT" >"$work/server.log" 2>&1 & ;;
  bun)       $SERVER_PIN loadtests/peers/node_modules/.bin/bun loadtests/peers/bun.ts "$PORT" >"$work/server.log" 2>&1 & ;;
  *) echo "TARGET is broadcast or bun" >&2; exit 2 ;;
esac
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done

echo "| round | generator | rate msg/s | delivered/s | p50 ms | p99 ms | lost | dup | generator CPU s per 100k deliveries |"
echo "|---|---|---|---|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  for which in A B; do
    bin=$A; [ "$which" = B ] && bin=$B
    /usr/bin/time -f "%U %S" -o "$work/time" $LOAD_PIN "$bin" open-rooms --target "$TARGET" \
      --url "http://127.0.0.1:$PORT" --rooms "$ROOMS" --members "$MEMBERS" --rate "$RATES" \
      --duration "$STEP" --json >"$work/run.json" 2>"$work/run.err" || true
    python3 - "$work/run.json" "$work/time" "$round" "$which" <<'PY'
import json, sys
run = json.load(open(sys.argv[1]))
user, system = map(float, open(sys.argv[2]).read().split()[-2:])
delivered = sum(s["delivered"] for s in run["steps"]) or 1
cpu = (user + system) / delivered * 100_000
for s in run["steps"]:
    print(f"| {sys.argv[3]} | {sys.argv[4]} | {s['rate']:.0f} | {s['delivered_per_sec']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | {run['lost']} | {run['duplicated']} | {cpu:.2f} |")
PY
  done
done

#!/usr/bin/env bash
# What a message's latency is made of, on the server side: one scenario
# against a release build (embedded engine, synchronous=FULL), with the
# server's own histograms scraped before and after and their difference
# printed as quantiles:
#   chat_durable_seconds       submission to the committer -> end of the commit
#                              that stored the write (queue wait + commit)
#   chat_commit_seconds        one group commit
#   chat_commit_batch_size     writes per group commit
#   sqlite_checkpoint_seconds  one background WAL checkpoint
# next to the generator's delivery and ack percentiles.
#
#   loadtests/tail.sh                          # ack: 50 rooms x 2, 5,000 sends/s
#   SCENARIO=rooms RATE=500 loadtests/tail.sh   # 20 rooms x 50 at 25,000 deliveries/s
#   ROUNDS=2 loadtests/tail.sh /tmp/before target/release/jangteo   # A/B, alternated
#   SPREAD=1 loadtests/tail.sh                  # publishers spread over the interval (jangteo-load --spread)
#
# Also counts the server's context switches per message sent (every thread
# of the process): on a machine shared with other work they are far
# steadier than a p99. Prints to stdout only (nothing is written over):
# paste what matters into docs/BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SCENARIO=${SCENARIO:-ack}
RATE=${RATE:-}
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-1}
[ $# -ge 1 ] || set -- "$ROOT/target/release/jangteo"
PORT=${PORT:-9010}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP_LOG:-}" ] && cp "$WORK/server.log" "$KEEP_LOG"; rm -rf "$WORK"' EXIT
ulimit -n 65536 2>/dev/null || true
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN=${SERVER_PIN-"taskset -c 0"}; LOAD_PIN=${LOAD_PIN-"taskset -c 1"}
else
  SERVER_PIN=""; LOAD_PIN=""
fi
[ -x "$ROOT/target/release/jangteo-load" ] && [ -x "$1" ] \
  || cargo build --release --locked -p jangteo -p jangteo-loadtests >/dev/null
case $SCENARIO in
  ack) args=(--rooms 50 --members 2 --publishers 2 --rate "${RATE:-5000}") ;;
  rooms) args=(--rooms 20 --members 50 --publishers 1 --rate "${RATE:-500}") ;;
  bigroom) args=(--rooms 1 --members 1500 --publishers 1 --rate "${RATE:-60}") ;;
  *) echo "unknown SCENARIO $SCENARIO" >&2; exit 2 ;;
esac

one() { # binary
  local bin=$1
  env JANGTEO_LISTEN=127.0.0.1:$PORT JANGTEO_DATA_DIR="$WORK/data-$RANDOM" \
    JANGTEO_LOG=warn JANGTEO_WORKERS=1 JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 \
    JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000 \
    JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000 JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 \
    $SERVER_PIN "$bin" serve >"$WORK/server.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

  # Context switches of every server thread (steady where latency is not:
  # each is a hand-off between threads on the server's one core).
  switches() { cat /proc/$PID/task/*/status 2>/dev/null | awk '/ctxt_switches/ {n += $2} END {print n + 0}'; }
  scrape() { curl -fsS "http://127.0.0.1:$PORT/metrics" >"$1"; switches >"$1.switches"; }
  # The generator scrapes nothing; the first scrape is taken once every member
  # is connected and joined (the seeding writes are not in the difference).
  $LOAD_PIN "$ROOT/target/release/jangteo-load" open-rooms --target jangteo --url "http://127.0.0.1:$PORT" \
    "${args[@]}" --duration "$DURATION" --warmup 1s --size 90 ${SPREAD:+--spread} --cpu-pid "$PID" --json >"$WORK/run.json" &
  LOADPID=$!
  # Seeding and joining come first; wait for the first message to be committed.
  until grep -q '^jangteo_chat_messages_total [1-9]' <(curl -fsS "http://127.0.0.1:$PORT/metrics" 2>/dev/null); do
    kill -0 $LOADPID 2>/dev/null || break
    sleep 0.2
  done
  scrape "$WORK/before"
  wait $LOADPID || true
  scrape "$WORK/after"

  report
  kill "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.1; done
}

report() {
python3 - "$WORK/before" "$WORK/after" "$WORK/run.json" <<'PY'
import json, re, sys
switches = int(open(sys.argv[2] + ".switches").read()) - int(open(sys.argv[1] + ".switches").read())

def hist(path):
    out = {}
    for line in open(path):
        m = re.match(r'^jangteo_(\w+)_bucket\{le="([^"]+)"\} (\S+)$', line)
        if m:
            out.setdefault(m.group(1), []).append((float(m.group(2)), float(m.group(3))))
    return out

before, after = hist(sys.argv[1]), hist(sys.argv[2])

def quantile(buckets, q):
    total = buckets[-1][1]
    if total == 0:
        return None
    want = q * total
    prev_le, prev_n = 0.0, 0.0
    for le, n in buckets:
        if n >= want:
            if le == float("inf"):
                return prev_le
            span = n - prev_n
            return prev_le + (le - prev_le) * ((want - prev_n) / span if span else 0)
        prev_le, prev_n = le, n
    return prev_le

print("| histogram (server) | count | p50 | p90 | p99 | p99.9 | share above 4 ms |")
print("|---|---|---|---|---|---|---|")
for name, unit in [("chat_durable_seconds", "ms"), ("chat_commit_seconds", "ms"),
                   ("chat_commit_batch_size", ""), ("sqlite_checkpoint_seconds", "ms")]:
    a = after.get(name, [])
    b = dict(before.get(name, []))
    diff = [(le, n - b.get(le, 0)) for le, n in a]
    if not diff or diff[-1][1] == 0:
        print(f"| {name} | 0 | | | | | |")
        continue
    scale = 1000 if unit == "ms" else 1
    qs = [quantile(diff, q) for q in (0.5, 0.9, 0.99, 0.999)]
    above = ""
    if unit == "ms":
        under = next((n for le, n in diff if le >= 0.004), diff[-1][1])
        above = f"{100 * (1 - under / diff[-1][1]):.2f}%"
    print(f"| {name} | {int(diff[-1][1])} | " + " | ".join(f"{q * scale:.2f}{unit}" for q in qs) + f" | {above} |")
r = json.loads(open(sys.argv[3]).read().strip().splitlines()[-1])
sent = sum(s["sent"] for s in r["steps"])
if sent:
    print(f"\nServer context switches per message sent: {switches / sent:.1f} ({switches} over the run)")
print()
print("| generator | sends/s | delivered/s | p50 ms | p99 ms | p99.9 ms | ack p50 ms | ack p99 ms | CPU µs/delivery |")
print("|---|---|---|---|---|---|---|---|---|")
for s in r["steps"]:
    print(f"| {r['scenario']} | {s['rate']:.0f} | {s['delivered_per_sec']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
          f"{s['p999_ms']:.2f} | {s['ack_p50_ms']:.2f} | {s['ack_p99_ms']:.2f} | {s['cpu_us_per_delivery']:.1f} |")
PY
}

for round in $(seq 1 "$ROUNDS"); do
  for bin in "$@"; do
    echo
    echo "### $bin (round $round)"
    echo
    one "$bin"
  done
done

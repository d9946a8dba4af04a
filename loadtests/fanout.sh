#!/usr/bin/env bash
# The fan-out comparison of issue #34, in one run on this machine: Jangteo
# (embedded engine, every message on disk before its ack and delivery)
# against Bun pub/sub, socket.io and the minimal tokio broadcast server,
# with the CPU time per delivery of each server next to its latencies.
#
#   loadtests/fanout.sh                          # everything below
#   SCENARIOS=rooms,bigroom TARGETS=jangteo,bun loadtests/fanout.sh
#   JANGTEO_BIN=/tmp/jangteo-before loadtests/fanout.sh   # another build
#   SPREAD=0 loadtests/fanout.sh                 # publishers in bursts (the shape of the runs before 2026-12-07 07:30)
#
# Publishers are spread evenly over their send interval (jangteo-load
# --spread), as an independent generator whose publishers start when they
# connect would be; SPREAD=0 starts all of them at the same instant, so
# that every publisher sends at once once per interval (bursts: a harsher
# and less realistic shape, and the generator's own floor rises with it).
#
# Scenarios:
#   rooms    20 open rooms x 50 members, one publisher per room, stepped
#            from 500 to 8,000 sends/s (25,000 to 400,000 deliveries/s)
#   ack      50 rooms x 2 members, 2 publishers each, 5,000 sends/s: the
#            ack latency (the commit path)
#   bigroom  1 room x 1,500 members, 60 sends/s (90,000 deliveries/s)
#   storm    200 rooms x 50 members (10,000 connections), 200 sends/s; the
#            server restarts 6 s in; every connection comes back (Jangteo:
#            resumes, checked gap- and duplicate-free)
#
# Server on CPU 0, generator on CPU 1. Each run is written to its own file
# under docs/benchmarks/ (never over an earlier one); the file's name is
# printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SCENARIOS=${SCENARIOS:-rooms,ack,bigroom,storm}
TARGETS=${TARGETS:-jangteo,bun,socketio,broadcast}
RATES=${RATES:-500,1000,2000,4000,8000}
STEP=${STEP:-6s}
SIZE=${SIZE:-90}
SPREAD=${SPREAD:-1}
if [ "$SPREAD" = 1 ]; then PHASE_ARG=(--spread); PHASES="spread over the send interval"
else PHASE_ARG=(); PHASES="in bursts (all at once, once per interval)"; fi
JANGTEO_BIN=${JANGTEO_BIN:-$ROOT/target/release/jangteo}
OUT_DIR=${OUT_DIR:-docs/benchmarks}
WORK=$(mktemp -d)
RESULTS=$WORK/results.jsonl
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
  SERVER_PIN="taskset -c 0"; LOAD_PIN="taskset -c 1"; PINNED="server on CPU 0, generator on CPU 1"
else
  SERVER_PIN=""; LOAD_PIN=""; PINNED="not pinned (taskset or a second CPU missing)"
fi
has() { case ",$1," in *",$2,"*) return 0 ;; *) return 1 ;; esac; }

# Both packages in one build: built alone, each would rebuild the shared
# dependencies with its own features.
cargo build --release --locked -p jangteo -p jangteo-loadtests >/dev/null
npm install --prefix loadtests/peers --no-audit --no-fund --loglevel=error >/dev/null
LOAD="$LOAD_PIN $ROOT/target/release/jangteo-load"
BUN_BIN=$ROOT/loadtests/peers/node_modules/.bin/bun

PID=""
start() { # name port cmd...
  local name=$1 port=$2; shift 2
  $SERVER_PIN "$@" >"$WORK/$name.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start" >&2
  return 1
}
stop() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

# One scenario against the server on $2 (already started), labelled $1.
scenario() { # scenario target port
  local label=$1 target=$2 port=$3 args
  case $label in
    rooms) args=(--rooms 20 --members 50 --publishers 1 --rate "$RATES") ;;
    ack) args=(--rooms 50 --members 2 --publishers 2 --rate 5000) ;;
    bigroom) args=(--rooms 1 --members 1500 --publishers 1 --rate 60) ;;
  esac
  echo "== $target: $label"
  $LOAD open-rooms --target "$target" --url "http://127.0.0.1:$port" "${args[@]}" --duration "$STEP" \
    --size "$SIZE" "${PHASE_ARG[@]}" --cpu-pid "$PID" --json \
    | sed "s/\"scenario\":\"open-rooms\"/\"scenario\":\"$label\"/" >>"$RESULTS" \
    || echo "!! $target $label: a correctness failure" | tee -a "$WORK/failures"
}

# The storm: the server is restarted by a script the generator runs (stop
# the running one, start the same command again, wait for its port).
storm_run() { # target port cmd...
  local target=$1 port=$2; shift 2
  local dir=$WORK/storm-$target
  mkdir -p "$dir"
  {
    echo '#!/usr/bin/env bash'
    echo "pid=\$(cat $dir/pid); kill -TERM \$pid"
    echo "while [ -e /proc/\$pid ] && [ \"\$(awk '{print \$3}' /proc/\$pid/stat 2>/dev/null)\" != Z ]; do sleep 0.05; done"
    # ... and until nothing listens on the port any more (a server whose
    # process is gone may still hold it a moment; a new one would not bind).
    echo "while (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; do sleep 0.05; done"
    echo "$SERVER_PIN $(printf '%q ' "$@") >>$dir/server.log 2>&1 &"
    echo "echo \$! >$dir/pid"
    echo "for _ in \$(seq 1 400); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && exit 0; sleep 0.05; done; exit 1"
  } >"$dir/restart.sh"
  start "$target-storm" "$port" "$@"
  echo "$PID" >"$dir/pid"
  echo "== $target: storm"
  $LOAD storm --target "$target" --url "http://127.0.0.1:$port" --rooms 200 --members 50 --rate 200 \
    --duration 20s --restart-after 6s --restart "bash $dir/restart.sh" --size "$SIZE" --json >>"$RESULTS" \
    || echo "!! $target storm: a correctness failure or a connection that never came back" | tee -a "$WORK/failures"
  kill "$(cat "$dir/pid")" 2>/dev/null || true
  stop
  sleep 1
}

run_all() { # target port cmd...
  local target=$1 port=$2; shift 2
  for s in ${SCENARIOS//,/ }; do
    if [ "$s" = storm ]; then
      # Bun for the comparison (the others cannot resume either).
      case $target in jangteo | bun) storm_run "$target" "$port" "$@" ;; esac
      continue
    fi
    # A fresh server process per scenario (Jangteo keeps its data
    # directory: earlier scenarios' users and rooms stay in the database).
    start "$target-$s" "$port" "$@"
    scenario "$s" "$target" "$port"
    stop
  done
}

if has "$TARGETS" jangteo; then
  run_all jangteo 9000 env JANGTEO_LISTEN=127.0.0.1:9000 JANGTEO_DATA_DIR="$WORK/jangteo-$RANDOM" \
    JANGTEO_LOG=warn JANGTEO_WORKERS=1 JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 \
    JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000 \
    JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000 JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 \
    JANGTEO_LISTINGS_PER_HOUR=1000000 "$JANGTEO_BIN" serve
fi
has "$TARGETS" bun && run_all bun 9002 "$BUN_BIN" loadtests/peers/bun.ts 9002
has "$TARGETS" socketio && run_all socketio 9001 "$(command -v node)" loadtests/peers/socketio.js 9001
has "$TARGETS" broadcast && run_all broadcast 9003 "$ROOT/target/release/peer-broadcast" 127.0.0.1:9003

mkdir -p "$OUT_DIR"
REV=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src loadtests 2>/dev/null || REV="$REV-dirty"
OUT=$OUT_DIR/fanout-$(date -u +%Y%m%d-%H%M%S)-$REV.md
{
  echo "# Fan-out run $(date -u '+%Y-%m-%d %H:%M') UTC, commit $REV"
  echo
  echo "Written by \`loadtests/fanout.sh\` (scenarios: $SCENARIOS; step $STEP; $SIZE-byte bodies; publishers $PHASES)."
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), Linux $(uname -r); $PINNED."
  echo "Jangteo binary: \`$JANGTEO_BIN\` (embedded engine, synchronous=FULL). CPU per delivery = the server"
  echo "process's user + system time over the step / deliveries of the step."
  echo
  "$ROOT/target/release/jangteo-load" report "$RESULTS"
  if [ -s "$WORK/failures" ]; then echo; echo "**Failures in this run:**"; sed 's/^/- /' "$WORK/failures"; fi
  echo
  echo '<details><summary>Raw results (JSON lines)</summary>'
  echo
  echo '```'
  cat "$RESULTS"
  echo '```'
  echo '</details>'
} >"$OUT"
echo "written: $OUT"
[ ! -s "$WORK/failures" ]

#!/usr/bin/env bash
# Where a server's CPU per delivery goes, per thread: one open-rooms run
# (20 rooms x 50 members, spread publishers) against a Jangteo binary, and
# each thread's user and system time over 6 s of steady load (after the
# outbox has drained the sign-ups' emails), from /proc/PID/task/*/stat,
# with the commits and messages of the same 6 s from /metrics and each
# thread's context switches per message. Steadier than a whole-process
# figure for telling the fan-out (actix thread) from the commits
# (chat-committer) in an A/B (docs/BENCHMARKS.md, fourth stop).
#
#   loadtests/threads.sh                         # target/release/jangteo, 1,000 sends/s
#   loadtests/threads.sh /tmp/other 2000         # another binary, 100,000 deliveries/s
#
# Server on CPU 0, generator on CPU 1. Prints to stdout only.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${1:-$ROOT/target/release/jangteo}; RATE=${2:-1000}
[ -x "$ROOT/target/release/jangteo-load" ] && [ -x "$BIN" ] \
  || cargo build --release --locked -p jangteo -p jangteo-loadtests >/dev/null
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
env JANGTEO_LISTEN=127.0.0.1:9000 JANGTEO_DATA_DIR="$W/data" \
  JANGTEO_LOG=warn JANGTEO_WORKERS=1 JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1 \
  JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_WS_FRAMES_PER_SEC=1000000 \
  JANGTEO_CHAT_SEND_RATE=100000 JANGTEO_CHAT_SEND_BURST=100000 JANGTEO_WS_MAX_CONNECTIONS_PER_USER=1000000 \
  taskset -c 0 $BIN serve > $W/log 2>&1 &
PID=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/9000) 2>/dev/null && break; sleep 0.1; done
taskset -c 1 $ROOT/target/release/jangteo-load open-rooms --target jangteo --url http://127.0.0.1:9000 \
    --rooms 20 --members 50 --publishers 1 --rate $RATE --duration 16s --warmup 1s --size 90 --spread --json > $W/load.json 2>$W/load.err &
L=$!
m() { curl -s http://127.0.0.1:9000/metrics | awk -v k="$1" '$1==k {print $2}'; }
# Steady traffic: the generator sends only after the outbox has drained,
# so two seconds in a row at half the rate or more mean the step runs.
prev=0; steady=0
for _ in $(seq 1 90); do
  sleep 1
  c=$(m jangteo_chat_messages_total); c=${c%.*}; c=${c:-0}
  if [ "$c" -gt $((prev + RATE / 2)) ]; then steady=$((steady + 1)); else steady=0; fi
  prev=$c
  [ "$steady" -ge 2 ] && break
done
[ "$steady" -ge 2 ] || { echo "no steady traffic within 90 s" >&2; exit 1; }
sleep 2
cs() { for t in /proc/$PID/task/*; do n=$(cat $t/comm); v=$(awk '/^voluntary_ctxt/ {print $2}' $t/status); i=$(awk '/^nonvoluntary_ctxt/ {print $2}' $t/status); echo "$n	$v	$i"; done | awk -F"\t" '{v[$1]+=$2; i[$1]+=$3} END {for (k in v) print k"\t"v[k]"\t"i[k]}' | sort; }
snap() { for t in /proc/$PID/task/*; do awk '{c=$0; sub(/^[^(]*\(/,"",c); n=substr(c,1,index(c,")")-1); sub(/^[^)]*\) /,"",c); split(c,f," "); print n"\t"f[12]"\t"f[13]}' $t/stat; done | awk -F"\t" '{u[$1]+=$2; s[$1]+=$3} END {for (k in u) print k"\t"u[k]"\t"s[k]}' | sort; }
cs > $W/ca; snap > $W/a; c0=$(m jangteo_chat_messages_total); k0=$(m jangteo_chat_commit_seconds_count)
sleep 6
cs > $W/cb; snap > $W/b; c1=$(m jangteo_chat_messages_total); k1=$(m jangteo_chat_commit_seconds_count)
msgs=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%d", b - a }')
commits=$(awk -v a="$k0" -v b="$k1" 'BEGIN { printf "%d", b - a }')
echo "messages $msgs commits $commits (per commit $(awk -v m="$msgs" -v c="$commits" 'BEGIN { printf "%.2f", c ? m / c : 0 }'))"
join -t"$(printf "\t")" $W/a $W/b | awk -F"\t" -v d=$((msgs*50)) '{u=($4-$2)*10000/d; s=($5-$3)*10000/d; tu+=u; ts+=s; printf "%-18s user %.2f sys %.2f\n", $1, u, s} END {printf "%-18s user %.2f sys %.2f total %.2f µs/delivery\n", "ALL", tu, ts, tu+ts}'
join -t"$(printf "\t")" $W/ca $W/cb | awk -F"\t" -v m=$msgs '{printf "%-18s voluntary %.2f involuntary %.2f switches per message\n", $1, ($4-$2)/m, ($5-$3)/m}'
wait $L
kill $PID; wait $PID 2>/dev/null

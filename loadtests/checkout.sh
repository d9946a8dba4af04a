#!/usr/bin/env bash
# Orders/s under contention, the same race on each engine in one run:
# BUYERS buyers order one unit each, all at once, of an option with UNITS in
# stock. Engines: embedded (SQLite, one node), MySQL/MariaDB + Redis (one
# node), and MySQL/MariaDB + Redis with two nodes (buyers alternate). Every
# run must end with exactly UNITS orders and stock 0, or the script fails.
# Needs MariaDB and Redis (scripts/services.sh up). Loopback only, bounded.
#
# Then whole checkouts (order + sandbox confirm) at stepped open-loop rates
# (PAY_RATES checkouts/s, PAY_STEP each) on the same three engines: paid/s,
# p50/p99 from each checkout's intended start, failures (must be 0).
#
#   loadtests/checkout.sh                  # 1000 buyers, 100 units, 3 rounds
#   BUYERS=300 UNITS=50 ROUNDS=1 PROFILE=debug loadtests/checkout.sh
#   PAY_RATES=10,20 PAY_STEP=3s ROUNDS=1 loadtests/checkout.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${BUYERS:-1000}
UNITS=${UNITS:-100}
ROUNDS=${ROUNDS:-3}
PROFILE=${PROFILE:-release}
PAY_RATES=${PAY_RATES:-25,50,100,200}
PAY_STEP=${PAY_STEP:-10s}
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
if [ "$PROFILE" = release ]; then
  cargo build --release --locked -p jangteo -p jangteo-loadtests
  BIN=target/release
else
  cargo build --locked -p jangteo -p jangteo-loadtests
  BIN=target/debug
fi
for port in 3306 6379; do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "nothing on 127.0.0.1:$port: run scripts/services.sh up" >&2; exit 1; }
done
# Both cores serve: the race is about the store, not the generator.
# Orders expire 20 s after they are placed; each race then waits for every
# unit to come back (exactly UNITS again, or the run fails).
ENV=(JANGTEO_LOG=warn JANGTEO_ARGON2_MEMORY_KIB=64 JANGTEO_ARGON2_ITERATIONS=1
  JANGTEO_SIGNUP_MAX_PER_ADDRESS=1000000 JANGTEO_LOGIN_MAX_FAILURES=1000000 JANGTEO_LISTINGS_PER_HOUR=1000000
  JANGTEO_ORDER_PAYMENT_WINDOW_SECS=20 JANGTEO_MAX_UNPAID_ORDERS=1000000 JANGTEO_MAX_UNPAID_UNITS=100000000)
ADMIN=(--admin-email race-admin@load.test --admin-password race-admin-password)
make_admin() { # data_dir [database_url]
  local extra=()
  [ -n "${2:-}" ] && extra=(--database-url "$2")
  env "${ENV[@]}" "$BIN/jangteo" create-admin --email race-admin@load.test --nickname 경주관리자 \
    --password race-admin-password --data-dir "$1" "${extra[@]}" >/dev/null
}
start() { # name port settings...
  local name=$1 port=$2; shift 2
  # Accounts verify their address with the link the node writes.
  export JT_LOAD_MAIL_DIR="${JT_LOAD_MAIL_DIR:+$JT_LOAD_MAIL_DIR:}$W/$name/outbox-mail"
  env "${ENV[@]}" JANGTEO_LISTEN=127.0.0.1:$port JANGTEO_DATA_DIR="$W/$name" "$@" \
    "$BIN/jangteo" serve >"$W/$name-$port.log" 2>&1 &
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/ready" >/dev/null && return 0; sleep 0.2; done
  echo "server $name did not start:" >&2; tail -20 "$W/$name-$port.log" >&2; return 1
}
race() { # name url [--also url]...
  local name=$1; shift
  "$BIN/jangteo-load" checkout --url "$@" --buyers "$BUYERS" --units "$UNITS" "${ADMIN[@]}" \
    --seed-concurrency 64 --expiry-wait 90s --json | sed "s/\"target\":\"jangteo\"/\"target\":\"$name\"/" >>"$W/results.jsonl"
  tail -1 "$W/results.jsonl"
}
pay() { # name url [--also url]...
  local name=$1; shift
  # Failed checkouts at overload are reported in the table, not fatal;
  # a broken stock invariant is.
  "$BIN/jangteo-load" pay --url "$@" --buyers 200 --rates "$PAY_RATES" --step "$PAY_STEP" "${ADMIN[@]}" \
    --seed-concurrency 64 --json 2>"$W/pay-$name.err" | sed "s/\"target\":\"jangteo\"/\"target\":\"$name\"/" >>"$W/pay.jsonl" || true
  if grep -q "invariant broken" "$W/pay-$name.err"; then cat "$W/pay-$name.err" >&2; exit 1; fi
  tail -"$(echo "$PAY_RATES" | tr ',' '\n' | wc -l)" "$W/pay.jsonl"
}
DB=jt_checkout_$$
mysql -h 127.0.0.1 -u root -e "CREATE DATABASE ${DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
MYSQL=(JANGTEO_DATABASE_URL="mysql://root@127.0.0.1:3306/${DB}" JANGTEO_REDIS_URL=redis://127.0.0.1:6379 JANGTEO_REDIS_PREFIX="${DB}:")

make_admin "$W/embedded"
start embedded 9200
mkdir -p "$W/mysql"
make_admin "$W/mysql" "mysql://root@127.0.0.1:3306/${DB}"
start mysql 9201 "${MYSQL[@]}"
start mysql 9202 "${MYSQL[@]}"
for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  race embedded http://127.0.0.1:9200
  race mysql-1-node http://127.0.0.1:9201
  race mysql-2-nodes http://127.0.0.1:9201 --also http://127.0.0.1:9202
done
echo "== checkouts with payment"
pay embedded http://127.0.0.1:9200
pay mysql-1-node http://127.0.0.1:9201
pay mysql-2-nodes http://127.0.0.1:9201 --also http://127.0.0.1:9202
mysql -h 127.0.0.1 -u root -e "DROP DATABASE ${DB}" || true
python3 - "$W/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["target"], []).append(r)
base = statistics.median(r["attempts_per_sec"] for r in by["embedded"])
print("\n| engine | nodes | buyers | units | placed | out_of_stock | attempts/s (median) | vs embedded | p50 ms | p99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|")
for name, rs in by.items():
    med = statistics.median(r["attempts_per_sec"] for r in rs)
    p50 = statistics.median(r["p50_ms"] for r in rs)
    p99 = statistics.median(r["p99_ms"] for r in rs)
    r0 = rs[0]
    print(f"| {name} | {r0['nodes']} | {r0['buyers']} | {r0['units']} | {r0['placed']} | {r0['out_of_stock']} | {med:.0f} | {med/base:.2f}x | {p50:.0f} | {p99:.0f} |")
PY
python3 - "$W/pay.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = {r["rate"]: r["paid_per_sec"] for r in rows if r["target"] == "embedded"}
print("\n| engine | nodes | offered checkouts/s | paid | failed | paid/s | vs embedded | p50 ms | p99 ms | failures |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    b = base.get(r["rate"]) or 1
    why = ", ".join(f"{k}: {v}" for k, v in r.get("failures", {}).items()) or "-"
    print(f"| {r['target']} | {r['nodes']} | {r['rate']} | {r['paid']} | {r['failed']} | {r['paid_per_sec']:.1f} | {r['paid_per_sec']/b:.2f}x | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {why} |")
best = {}
for r in rows:
    if r["p99_ms"] <= 250 and r["failed"] == 0:
        best[r["target"]] = max(best.get(r["target"], 0), r["paid_per_sec"])
print("\nHighest paid checkouts/s with p99 <= 250 ms: " + ", ".join(f"{k} {v:.0f}" for k, v in best.items()))
PY

#!/usr/bin/env bash
# Runs the benchmarks reported in docs/benchmarks.md against a fresh store
# each time. Everything listens on loopback, every run is bounded in time,
# and the server is stopped by its PID.
#
#   bench/run.sh [sqlite|postgres] [seconds]
#
# postgres uses $SWITCHBOARD_TEST_POSTGRES_URL (a schema "sbbench" is
# created and dropped in it).
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${1:-sqlite}"
secs="${2:-15}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/switchboard" ./cmd/switchboard
sb="$work/switchboard"

fresh_store() {
  if [ "$engine" = postgres ]; then
    : "${SWITCHBOARD_TEST_POSTGRES_URL:?set it to a PostgreSQL URL}"
    psql "$SWITCHBOARD_TEST_POSTGRES_URL" -qc 'DROP SCHEMA IF EXISTS sbbench CASCADE' -c 'CREATE SCHEMA sbbench' >/dev/null 2>&1
    export SWITCHBOARD_STORAGE_URL="${SWITCHBOARD_TEST_POSTGRES_URL}&search_path=sbbench&pool_max_conns=16"
  else
    rm -rf "$work/data"
    export SWITCHBOARD_STORAGE_URL="$work/data/switchboard.db"
  fi
}

# run NAME SERVE-ENV... -- TRAFFIC-ARGS...: one scenario on a fresh store.
run() {
  local name="$1"; shift
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  fresh_store
  env "${env[@]}" "$sb" serve -c bench/bench.toml >"$work/serve.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 50); do curl -fs http://127.0.0.1:8181/healthz >/dev/null 2>&1 && break; sleep 0.1; done
  echo "== $name ($engine)"
  "$sb" sim traffic -c bench/bench.toml --route /sms --duration "${secs}s" "$@" || true
  curl -fs http://127.0.0.1:8181/metrics | grep -E '^switchboard_commit_(seconds|batch_size)_(sum|count)' || true
  kill "$pid"; wait "$pid" || true
}

run "closed loop, 64 in flight, with delivery to the sink" KEEP=1 -- --reference --sink-listen 127.0.0.1:3900
run "steady 1000 req/s, with delivery to the sink" KEEP=1 -- --rate 1000 --sink-listen 127.0.0.1:3900
run "closed loop, intake only (delivery held back)" SWITCHBOARD_DELIVERY_POLL_INTERVAL=1h SWITCHBOARD_DELIVERY_WORKERS=1 --
run "steady 1000 req/s, intake only (delivery held back)" SWITCHBOARD_DELIVERY_POLL_INTERVAL=1h SWITCHBOARD_DELIVERY_WORKERS=1 -- --rate 1000
if [ "$engine" = postgres ]; then
  psql "$SWITCHBOARD_TEST_POSTGRES_URL" -qc 'DROP SCHEMA IF EXISTS sbbench CASCADE' >/dev/null 2>&1
fi

#!/usr/bin/env bash
# Runs the benchmarks reported in docs/benchmarks.md. Everything listens on
# loopback, every run is bounded in time, and every process the script
# starts is stopped by its PID.
#
#   bench/run.sh [sqlite|postgres] [seconds]
#
# Rows, in this order (BENCH_ROWS picks some of them: "traffic idle big"):
#   traffic  four `switchboard sim traffic` scenarios of `seconds` each, each
#            on a fresh store: closed loop and a steady 1,000 req/s, each
#            delivering and intake only; each prints the serve process's peak
#            resident set (VmHWM) at the end of its load.
#   idle     the CPU serve uses doing nothing, with outbound pools configured
#            (bench/bench-idle.toml, its provider a simulator started here)
#            and, as the reference, without (bench/bench.toml).
#   big      ingest throughput, closed loop and intake only, on a store that
#            already holds BENCH_BIG_EVENTS delivered webhooks against an empty
#            store, alternately, BENCH_BIG_ROUNDS times each; prints the ratio.
#            The filled store is cached (see BENCH_DATA): the first run on
#            SQLite fills 10 M webhooks in about 8 minutes into about 20 GB.
#
# Environment:
#   BENCH_ROWS          rows to run (default "traffic idle big")
#   BENCH_BIG_EVENTS    webhooks in the large store (default 10000000; 0 skips the row)
#   BENCH_BIG_ROUNDS    empty/large pairs measured (default 2)
#   BENCH_DATA          directory caching the filled SQLite stores (default bench-data,
#                       ignored by git); on PostgreSQL the schema sbbig is the cache
#   BENCH_IDLE_SECONDS  how long idle CPU is measured (default 20)
#   BENCH_PORT_OFFSET   added to every port (serve 8181, the sink app 3900, the
#                       simulator 3911), to stay off another run's ports (default 0)
#
# postgres uses $SWITCHBOARD_TEST_POSTGRES_URL: a schema "sbbench" is created
# and dropped in it for each fresh store, and "sbbig" holds the large store
# between runs (drop it to get the space back).
set -euo pipefail
cd "$(dirname "$0")/.."
engine="${1:-sqlite}"
secs="${2:-15}"
rows="${BENCH_ROWS:-traffic idle big}"
big_events="${BENCH_BIG_EVENTS:-10000000}"
big_rounds="${BENCH_BIG_ROUNDS:-2}"
data="${BENCH_DATA:-bench-data}"
idle_secs="${BENCH_IDLE_SECONDS:-20}"
offset="${BENCH_PORT_OFFSET:-0}"
case "$engine" in sqlite | postgres) ;; *) echo "usage: bench/run.sh [sqlite|postgres] [seconds]" >&2; exit 2 ;; esac
if [ "$engine" = postgres ]; then
  : "${SWITCHBOARD_TEST_POSTGRES_URL:?set it to a PostgreSQL URL}"
  pg="$SWITCHBOARD_TEST_POSTGRES_URL"
fi

serve_port=$((8181 + offset))
sink_port=$((3900 + offset))
sim_port=$((3911 + offset))
serve_url="http://127.0.0.1:$serve_port"

# How the intake-only rows keep delivery from running: serve stores webhooks
# but delivers nothing (delivery.enabled = false). BENCH_HOLD_DELIVERY
# replaces it, for a build without that setting (BENCH_BIN), such as
# "SWITCHBOARD_DELIVERY_POLL_INTERVAL=1h SWITCHBOARD_DELIVERY_WORKERS=1".
read -ra hold_delivery <<<"${BENCH_HOLD_DELIVERY:-SWITCHBOARD_DELIVERY_ENABLED=false}"


work="$(mktemp -d)"
pids=()           # processes started here and still running, stopped on exit
big_added_after=() # set while the large store holds what a run added (see big_rows)
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  # An interrupted run leaves the cached large store as the next run expects it.
  if [ ${#big_added_after[@]} -gt 0 ]; then big_restore "${big_added_after[@]}" || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# BENCH_BIN measures a binary built elsewhere (an earlier build, to compare
# in the same session) with this script's scenarios.
if [ -n "${BENCH_BIN:-}" ]; then
  sb="$BENCH_BIN"
else
  go build -o "$work/switchboard" ./cmd/switchboard
  sb="$work/switchboard"
fi

# The configurations, with their ports moved by BENCH_PORT_OFFSET.
for f in bench.toml bench-idle.toml bench-idle-sim.toml; do
  sed -e "s/127\.0\.0\.1:8181/127.0.0.1:$serve_port/g" -e "s/127\.0\.0\.1:3900/127.0.0.1:$sink_port/g" \
    -e "s/127\.0\.0\.1:3911/127.0.0.1:$sim_port/g" "bench/$f" >"$work/$f"
done
cfg="$work/bench.toml"

want() { [[ " $rows " == *" $1 "* ]]; }

# A benchmark sharing its ports with another process measures that process
# too, or nothing: refuse to start instead.
port_free() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "port $1 is in use (another benchmark?); set BENCH_PORT_OFFSET to use others" >&2
    return 1
  fi
}

# pg_url SCHEMA: the storage URL of a schema of the PostgreSQL database.
pg_url() { echo "${pg}&search_path=$1&pool_max_conns=16"; }

# fresh_store: points SWITCHBOARD_STORAGE_URL at an empty store.
fresh_store() {
  if [ "$engine" = postgres ]; then
    psql "$pg" -qc 'DROP SCHEMA IF EXISTS sbbench CASCADE' -c 'CREATE SCHEMA sbbench' >/dev/null 2>&1
    SWITCHBOARD_STORAGE_URL="$(pg_url sbbench)"; export SWITCHBOARD_STORAGE_URL
  else
    rm -rf "$work/data"
    export SWITCHBOARD_STORAGE_URL="$work/data/switchboard.db"
  fi
}

# start_serve CONFIG WAIT-SECONDS [ENV...]: starts serve on the store
# SWITCHBOARD_STORAGE_URL names and waits (at most WAIT-SECONDS) until it is
# healthy; sets serve_pid.
start_serve() {
  local config="$1" wait="$2"; shift 2
  port_free "$serve_port"
  env "$@" "$sb" serve -c "$config" >"$work/serve.log" 2>&1 &
  serve_pid=$!
  pids+=("$serve_pid")
  local deadline=$((SECONDS + wait))
  until curl -fs "$serve_url/healthz" >/dev/null 2>&1; do
    if ! kill -0 "$serve_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "serve did not become healthy within ${wait}s:" >&2
      cat "$work/serve.log" >&2
      return 1
    fi
    sleep 0.1
  done
}

# forget PID: a process started here has ended.
forget() {
  local keep=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  pids=("${keep[@]}")
}

# stop PID: stops a process started here.
stop() {
  kill "$1"
  wait "$1" || true
  forget "$1"
}

# peak_rss PID: the process's peak resident set so far, in MB.
peak_rss() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# cpu_ticks PID: the user and system CPU time the process has used, in clock
# ticks (fields 14 and 15 of /proc/PID/stat, counted after the command name,
# which is in parentheses and may hold spaces).
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }

# accepted_rate FILE: the last "N accepted/s" figure of a sim traffic report.
accepted_rate() { grep -o '[0-9.]* accepted/s' "$1" | tail -n 1 | cut -d' ' -f1; }

# traffic NAME SERVE-ENV... -- TRAFFIC-ARGS...: one sim traffic scenario on the
# store SWITCHBOARD_STORAGE_URL names, then serve's commit metrics and peak
# resident set. The report is also left in $work/traffic.out.
traffic() {
  local name="$1"; shift
  local env=()
  while [ "$1" != "--" ]; do env+=("$1"); shift; done
  shift
  start_serve "$cfg" "${serve_wait:-10}" "${env[@]}"
  echo "== $name ($engine)"
  # In the background, so that an interrupted run stops it too.
  "$sb" sim traffic -c "$cfg" --route /sms --duration "${secs}s" "$@" >"$work/traffic.out" 2>&1 &
  local traffic_pid=$!
  pids+=("$traffic_pid")
  wait "$traffic_pid" || true
  forget "$traffic_pid"
  cat "$work/traffic.out"
  curl -fs "$serve_url/metrics" | grep -E '^switchboard_commit_(seconds|batch_size)_(sum|count)' || true
  echo "serve peak RSS: $(peak_rss "$serve_pid") MB"
  stop "$serve_pid"
}

# drain: delivers the backlog the scenario before left in the store (every
# webhook it acknowledged, none delivered) to `sim app` on the sink's port,
# and reports how fast: delivery alone, nothing arriving meanwhile.
drain() {
  local n t0 t1 got app_pid deadline
  n=$(grep -o 'accepted [0-9]*' "$work/traffic.out" | head -n 1 | cut -d' ' -f2)
  port_free "$sink_port"
  "$sb" sim app --listen "127.0.0.1:$sink_port" >"$work/app.out" 2>&1 &
  app_pid=$!
  pids+=("$app_pid")
  t0=$EPOCHREALTIME
  start_serve "$cfg" 10
  deadline=$((SECONDS + 120))
  # One line per request the app took, after its own "app listening" line.
  until got=$(($(wc -l <"$work/app.out") - 1)); [ "$got" -ge "$n" ] || [ "$SECONDS" -ge "$deadline" ]; do
    sleep 0.05
  done
  t1=$EPOCHREALTIME
  echo "== backlog drain: the $n webhooks above, delivered once serve starts with delivery on ($engine)"
  awk -v n="$n" -v got="$got" -v t0="$t0" -v t1="$t1" \
    'BEGIN { s = t1 - t0; printf "delivered %d of %d in %.2f s (from serve starting): %.0f events/s\n", got, n, s, got / s }'
  echo "serve peak RSS: $(peak_rss "$serve_pid") MB"
  stop "$serve_pid"
  stop "$app_pid"
}

traffic_rows() {
  port_free "$sink_port"
  fresh_store
  traffic "closed loop, 64 in flight, with delivery to the sink" -- --reference --sink-listen "127.0.0.1:$sink_port"
  fresh_store
  traffic "steady 1000 req/s, with delivery to the sink" -- --rate 1000 --sink-listen "127.0.0.1:$sink_port"
  fresh_store
  traffic "closed loop, intake only (delivery held back)" "${hold_delivery[@]}" --
  drain
  fresh_store
  traffic "steady 1000 req/s, intake only (delivery held back)" "${hold_delivery[@]}" -- --rate 1000
}

# idle NAME CONFIG: serve's CPU over BENCH_IDLE_SECONDS, on a fresh store,
# once it has settled after starting (migrations, first polls).
idle() {
  local name="$1" config="$2"
  fresh_store
  start_serve "$config" 10
  sleep 5
  local t0 c0 t1 c1
  t0=$EPOCHREALTIME c0=$(cpu_ticks "$serve_pid")
  sleep "$idle_secs"
  t1=$EPOCHREALTIME c1=$(cpu_ticks "$serve_pid")
  echo "== idle, $name ($engine)"
  awk -v c="$((c1 - c0))" -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" \
    'BEGIN { s = t1 - t0; printf "serve CPU over %.1f s: %.2f s, %.2f%% of a core\n", s, c / hz, 100 * c / hz / s }'
  echo "serve peak RSS: $(peak_rss "$serve_pid") MB"
  stop "$serve_pid"
}

idle_rows() {
  idle "no pools (bench.toml)" "$cfg"
  port_free "$sim_port"
  "$sb" sim serve -c "$work/bench-idle-sim.toml" --listen "127.0.0.1:$sim_port" >"$work/sim.log" 2>&1 &
  local sim_pid=$!
  pids+=("$sim_pid")
  idle "4 outbound pools, 6 senders (bench-idle.toml)" "$work/bench-idle.toml"
  stop "$sim_pid"
}

# --- The large store -------------------------------------------------------
#
# The store is filled with SQL rather than through HTTP (10 M webhooks would
# take most of an hour at intake's rate), with rows shaped as intake and delivery write
# them (bench/big-fill-*.sql), into a store that `switchboard migrate` made.
# A fill is kept only once complete, and each run deletes what it added, so
# the next run finds the same store.

# big_check: shows the newest events of the store SWITCHBOARD_STORAGE_URL
# names through switchboard itself, so a fill it cannot read fails here.
big_check() {
  "$sb" events list -c "$cfg" --limit 3
}

# big_sqlite: makes SWITCHBOARD_STORAGE_URL name the cached SQLite store of
# BENCH_BIG_EVENTS webhooks, filling it first if there is none.
big_sqlite() {
  local db="$data/big-sqlite-$big_events.db"
  export SWITCHBOARD_STORAGE_URL="$db"
  if [ -f "$db" ]; then
    echo "large store: $db ($(cat "$db.info" 2>/dev/null || echo "cached"))"
    return
  fi
  # About 2 KB a webhook, and as much again of temporary space while filling.
  local need=$((big_events * 4)) avail
  mkdir -p "$data"
  avail=$(df -Pk "$data" | awk 'NR == 2 { print $4 }')
  if [ "$avail" -lt "$need" ]; then
    echo "large store: $need KiB needed in $data, $avail KiB free" >&2
    return 1
  fi
  rm -f "$db.tmp" "$db.tmp-wal" "$db.tmp-shm"
  SWITCHBOARD_STORAGE_URL="$db.tmp" "$sb" migrate -c "$cfg" >/dev/null
  echo "large store: filling $db with $big_events webhooks"
  local t0=$EPOCHREALTIME
  # SQLite's temporary files go where the store is, not to the system's temporary
  # directory, which may be too small.
  SQLITE_TMPDIR="$data" sqlite3 -cmd ".parameter set :n $big_events" "$db.tmp" <bench/big-fill-sqlite.sql >/dev/null
  # The fill does not wait for the disk; the kernel's writeback of the
  # gigabytes it leaves would slow the measured runs' fsyncs. A fill is
  # done once on disk.
  sync "$db.tmp"
  local took size
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
  size=$(stat -c %s "$db.tmp")
  SWITCHBOARD_STORAGE_URL="$db.tmp" big_check
  mv "$db.tmp" "$db"
  echo "filled in ${took} s on $(date -u +%F), $((size / 1000000)) MB, $((size / big_events)) bytes a webhook" | tee "$db.info"
}

# big_postgres: the same in the schema sbbig, which a comment marks as
# filled, with how many webhooks.
big_postgres() {
  local mark="switchboard bench fill: $big_events webhooks"
  SWITCHBOARD_STORAGE_URL="$(pg_url sbbig)"; export SWITCHBOARD_STORAGE_URL
  local have
  have=$(psql "$pg" -Atc "SELECT d.description FROM pg_namespace n JOIN pg_description d ON d.objoid = n.oid WHERE n.nspname = 'sbbig'")
  if [ "${have%%;*}" = "$mark" ]; then
    echo "large store: schema sbbig (${have#*; })"
    return
  fi
  psql "$pg" -qc 'DROP SCHEMA IF EXISTS sbbig CASCADE' -c 'CREATE SCHEMA sbbig' >/dev/null 2>&1
  "$sb" migrate -c "$cfg" >/dev/null
  echo "large store: filling schema sbbig with $big_events webhooks"
  local t0=$EPOCHREALTIME
  PGOPTIONS='-c search_path=sbbig' psql "$pg" -q -v n="$big_events" -f bench/big-fill-postgres.sql >/dev/null
  # Likewise, write the fill's pages out now rather than in the measured runs
  # (CHECKPOINT needs a superuser or pg_checkpoint; without, it is left to
  # PostgreSQL's own checkpoints).
  psql "$pg" -qc CHECKPOINT >/dev/null 2>&1 || echo "large store: no CHECKPOINT allowed, the fill is written out later" >&2
  local took size info
  took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
  size=$(psql "$pg" -Atc "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sbbig' AND c.relkind = 'r'")
  big_check
  info="filled in ${took} s on $(date -u +%F), $((size / 1000000)) MB, $((size / big_events)) bytes a webhook"
  psql "$pg" -qc "COMMENT ON SCHEMA sbbig IS '$mark; $info'"
  echo "$info"
}

# big_sql SQL...: runs statements on the large store.
big_sql() {
  local s
  for s in "$@"; do
    if [ "$engine" = postgres ]; then
      PGOPTIONS='-c search_path=sbbig' psql "$pg" -qAt -v ON_ERROR_STOP=1 -c "$s"
    else
      sqlite3 "$SWITCHBOARD_STORAGE_URL" "$s"
    fi
  done
}

# big_restore EVENT-ID REQUEST-ID: deletes what a run added to the large
# store: events and requests after the newest ones the fill made (ids are in
# time order, and the fill is in the past), their attempts, and every job
# (the fill makes none).
big_restore() {
  big_sql "DELETE FROM attempts WHERE event_id > '$1'" "DELETE FROM events WHERE id > '$1'" \
    "DELETE FROM requests WHERE id > '$2'" "DELETE FROM river_job"
}

# The settings of both stores in the large-store row: delivery held back, no
# pruning (the store's size is what is measured, not the pruner catching up
# with a store older than its retention), and no integrity check, which reads
# the whole file before serve starts (minutes for 20 GB).
big_env=("${hold_delivery[@]}" SWITCHBOARD_RETENTION_DELIVERED=0 SWITCHBOARD_STORAGE_INTEGRITY_CHECK=off)

big_rows() {
  [ "$big_events" -gt 0 ] || return 0
  "big_$engine"
  local big_url="$SWITCHBOARD_STORAGE_URL" round empty full last_event last_request
  for round in $(seq 1 "$big_rounds"); do
    fresh_store
    traffic "closed loop, intake only, empty store (round $round)" "${big_env[@]}" --
    empty=$(accepted_rate "$work/traffic.out")
    export SWITCHBOARD_STORAGE_URL="$big_url"
    last_event=$(big_sql "SELECT max(id) FROM events")
    last_request=$(big_sql "SELECT max(id) FROM requests")
    big_added_after=("$last_event" "$last_request")
    serve_wait=300 traffic "closed loop, intake only, store of $big_events webhooks (round $round)" "${big_env[@]}" --
    full=$(accepted_rate "$work/traffic.out")
    big_restore "$last_event" "$last_request"
    big_added_after=()
    awk -v e="$empty" -v f="$full" -v n="$big_events" -v r="$round" 'BEGIN {
      printf "large store, round %d: %s accepted/s with %d webhooks stored, %s empty: %.2f of the empty store'\''s rate\n", r, f, n, e, (e > 0 ? f / e : 0) }'
  done
}

if want traffic; then traffic_rows; fi
if want idle; then idle_rows; fi
if want big; then big_rows; fi
if [ "$engine" = postgres ]; then
  psql "$pg" -qc 'DROP SCHEMA IF EXISTS sbbench CASCADE' >/dev/null 2>&1
fi

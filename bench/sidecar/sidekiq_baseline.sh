#!/usr/bin/env bash
# Baseline: the real Sidekiq 6.4.1 running the example app's no-op jobs.
# For each kind (NoopJob = Sidekiq::Job, NoopActiveJob = ActiveJob) and each
# log level (default INFO: a start and a done line per job; WARN), pre-push N
# jobs, start `sidekiq -r examples/rails_app -c 10` (PROCESSES of them), and
# time from the first job taken to the queue drained. Prints jobs/s and
# Sidekiq's CPU per job (boot excluded). Own redis-server on a free port.
#
#   bench/sidecar/sidekiq_baseline.sh [N=20000] [PROCESSES=1] [CONCURRENCY=10]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
app="$root/examples/rails_app"
n="${1:-20000}" procs="${2:-1}" conc="${3:-10}"
tck="$(getconf CLK_TCK)"

# shellcheck source=common.sh
source "$here/common.sh" baseline

port="$(ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close')"
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
redis_pid=$!; pids+=("$redis_pid")
for _ in $(seq 1 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
export REDIS_URL="redis://127.0.0.1:$port/0" DATABASE_PATH="$work/bench.sqlite3" RAILS_ENV=production
rcli() { redis-cli -p "$port" "$@"; }

# CPU ticks of the given pids.
ticks() { local t=0 p; for p in "$@"; do [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
now() { date +%s.%N; }

push_jobs() { # KIND
  (cd "$app" && KIND="$1" N="$n" ruby -e '
    require "./config/environment"
    Sidekiq.redis(&:flushdb)
    if ENV["KIND"] == "sidekiq"
      ENV["N"].to_i.times.each_slice(1000) { |s| Sidekiq::Client.push_bulk("class" => NoopJob, "args" => s.map { |i| [i] }) }
    else
      ENV["N"].to_i.times { |i| NoopActiveJob.perform_later(i) }
    end')
}

# measure LABEL: jobs are queued; start Sidekiq, wait until drained.
measure_sidekiq() {
  local label=$1 level=$2 spids=() i t0 t1 c0 c1 len
  for i in $(seq 1 "$procs"); do
    (cd "$app" && SIDEKIQ_LOG_LEVEL="$level" exec sidekiq -r "$app" -e production -c "$conc" -q default) >"$work/sidekiq-$i.log" 2>&1 &
    spids+=($!); pids+=($!)
  done
  local deadline=$((SECONDS + 120))
  while [[ "$(rcli llen queue:default)" -ge "$n" ]]; do
    ((SECONDS < deadline)) || { echo "sidekiq never started: $(tail -5 "$work/sidekiq-1.log")" >&2; return 1; }
    sleep 0.01
  done
  t0=$(now); c0=$(ticks "${spids[@]}")
  while len=$(rcli llen queue:default); [[ "$len" -gt 0 ]]; do
    ((SECONDS < deadline)) || { echo "queue not drained ($len left)" >&2; return 1; }
    sleep 0.01
  done
  t1=$(now); c1=$(ticks "${spids[@]}")
  for p in "${spids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${spids[@]}"; do wait "$p" 2>/dev/null || true; done
  awk -v l="$label" -v n="$n" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v tck="$tck" 'BEGIN {
    printf "%-34s %8.0f jobs/s  %7.1f us Sidekiq CPU/job\n", l, n / (t1 - t0), c / tck * 1e6 / n }'
}

# ---- COURIER RUN (plugs in here) ------------------------------------------
# When the Swift dispatcher exists (.build/release/courier), run the same jobs
# through courier + the sidecar for a side-by-side figure. Until then: skipped.
measure_courier() {
  local label=$1 batch=${2:-1} bin="$root/.build/release/courier"
  [[ -x "$bin" ]] || { printf "%-34s skipped (no %s)\n" "$label" "$bin"; return 0; }
  local sport spid cpid t0 t1 c0 c1 s0 s1 deadline=$((SECONDS + 120))
  sport="$(ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close')"
  export COURIER_SECRET="baseline-secret"
  SIDEKIQ_LOG_LEVEL=WARN "$root/sidecar/exe/courier-sidecar" --app "$app" --port "$sport" --threads "$conc" --workers "$procs" >"$work/sidecar.log" 2>&1 &
  spid=$!; pids+=("$spid")
  until curl -sf "http://127.0.0.1:$sport/v1/health" >/dev/null; do ((SECONDS < deadline)) || return 1; sleep 0.1; done
  "$bin" --redis-url "$REDIS_URL" --executor-url "http://127.0.0.1:$sport" -c "$((conc * procs * batch))" --batch "$batch" -q default \
    --ops-port off >"$work/courier.log" 2>&1 &
  cpid=$!; pids+=("$cpid")
  while [[ "$(rcli llen queue:default)" -ge "$n" ]]; do ((SECONDS < deadline)) || return 1; sleep 0.01; done
  local all=("$cpid" "$spid" $(pgrep -P "$spid" | tr '\n' ' '))
  t0=$(now); c0=$(ticks "${all[@]}"); s0=$(ticks "${all[@]:1}")
  # Done when every job is acknowledged (courier counts stat:processed as it acknowledges).
  while [[ "$(rcli get stat:processed)" -lt "$n" ]]; do ((SECONDS < deadline)) || return 1; sleep 0.01; done
  t1=$(now); c1=$(ticks "${all[@]}"); s1=$(ticks "${all[@]:1}")
  kill -TERM "$cpid" "$spid" 2>/dev/null || true; wait "$cpid" "$spid" 2>/dev/null || true
  awk -v l="$label" -v n="$n" -v t0="$t0" -v t1="$t1" -v c="$((c1 - c0))" -v s="$((s1 - s0))" -v tck="$tck" 'BEGIN {
    printf "%-34s %8.0f jobs/s  %7.1f us courier+sidecar CPU/job (sidecar %.1f)\n", l, n / (t1 - t0), c / tck * 1e6 / n, s / tck * 1e6 / n }'
}
# ---------------------------------------------------------------------------

echo "N=$n jobs per run, $procs Sidekiq process(es) x -c $conc, $(nproc) cores"
for kind in sidekiq activejob; do
  push_jobs "$kind"; measure_sidekiq "sidekiq $kind (log INFO)" INFO
  push_jobs "$kind"; measure_sidekiq "sidekiq $kind (log WARN)" WARN
  push_jobs "$kind"; measure_courier "courier+sidecar $kind"
  push_jobs "$kind"; measure_courier "courier+sidecar $kind --batch 20" 20
done

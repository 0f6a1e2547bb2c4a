#!/usr/bin/env bash
# Measures the sidecar under wrk: jobs/s and server CPU per request for the
# no-op Sidekiq::Job and the no-op ActiveJob, one job per request and batched,
# plus a bare Puma+Rack baseline. Own redis-server and SQLite file.
#
#   bench/sidecar/bench.sh [DURATION_S=10] [THREADS=8] [WORKERS=1] [CONNECTIONS=16] [BATCH=50]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
duration="${1:-10}" threads="${2:-8}" workers="${3:-1}" conns="${4:-16}" batch="${5:-50}"
tck="$(getconf CLK_TCK)"

# shellcheck source=common.sh
source "$here/common.sh" bench

wait_http() { for _ in $(seq 1 600); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer from $1" >&2; return 1; }
# CPU ticks of a process and its children (Puma workers).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [[ -r /proc/$p/stat ]] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
# run_wrk NAME PORT BODY SIG PATH JOBS_PER_REQUEST PID
run_wrk() {
  local name=$1 port=$2 body=$3 sig=$4 path=$5 per=$6 pid=$7
  BODY_FILE="$body" SIG="$sig" BENCH_PATH="$path" wrk -t2 -c"$conns" -d2s -s "$here/sign.lua" "http://127.0.0.1:$port" >/dev/null # warm-up
  local before after out reqs rps
  before=$(cpu_ticks "$pid")
  out=$(BODY_FILE="$body" SIG="$sig" BENCH_PATH="$path" wrk -t2 -c"$conns" -d"${duration}s" -s "$here/sign.lua" "http://127.0.0.1:$port")
  after=$(cpu_ticks "$pid")
  if grep -q "Non-2xx" <<<"$out"; then echo "$out" >&2; echo "$name: non-2xx answers" >&2; return 1; fi
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  awk -v n="$name" -v r="$reqs" -v rps="$rps" -v per="$per" -v t="$((after - before))" -v tck="$tck" 'BEGIN {
    jobs = r * per; printf "%-22s %10.0f jobs/s  %8.1f us server CPU/job  (%s req/s, %d jobs)\n", n, rps * per, t / tck * 1e6 / jobs, rps, jobs }'
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" >/dev/null 2>&1 &
pids+=($!)
export REDIS_URL="redis://127.0.0.1:$rport/0" DATABASE_PATH="$work/bench.sqlite3" RAILS_ENV=production
export COURIER_SECRET="bench-secret" SIDEKIQ_LOG_LEVEL=WARN
wait_redis() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$rport") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
wait_redis
(cd "$root/examples/rails_app" && ruby "$here/payloads.rb" "$work" "$COURIER_SECRET" "$batch")

echo "wrk: -t2 -c$conns ${duration}s; puma threads=$threads workers=$workers; $(nproc) cores"
bport=$(free_port)
ruby "$here/bare_rack.rb" "$bport" "$threads" >/dev/null 2>&1 &
bpid=$!; pids+=($bpid)
wait_http "http://127.0.0.1:$bport/"
run_wrk "bare puma+rack" "$bport" "$work/noop.json" "$(cat "$work/noop.sig")" /v1/jobs 1 "$bpid"
kill "$bpid"; wait "$bpid" 2>/dev/null || true

sport=$(free_port)
"$root/sidecar/exe/courier-sidecar" --app "$root/examples/rails_app" --port "$sport" --threads "$threads" --workers "$workers" >"$work/sidecar.log" 2>&1 &
spid=$!; pids+=($spid)
wait_http "http://127.0.0.1:$sport/v1/health"
for kind in noop noop_aj; do
  run_wrk "sidecar $kind" "$sport" "$work/$kind.json" "$(cat "$work/$kind.sig")" /v1/jobs 1 "$spid"
done
for kind in noop noop_aj; do
  run_wrk "sidecar ${kind} batch$batch" "$sport" "$work/${kind}_batch.json" "$(cat "$work/${kind}_batch.sig")" /v1/jobs/batch "$batch" "$spid"
done

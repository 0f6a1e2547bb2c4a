#!/usr/bin/env bash
# End to end, issue 11 ("faster than Sidekiq end to end, out of the box"):
# courier + the Rails sidecar against the real Sidekiq 6.4.1 CLI, the same
# app (examples/rails_app) on both sides, DEFAULT flags on both sides, as
# many Ruby processes on each side. One command; prints each run as it goes,
# then medians of BENCH_ROUNDS interleaved rounds side by side and the ratios
# against the issue's targets, for every setting of logging × YJIT.
#
#   bench/sidecar/compare.sh                     # full: 3 rounds × YJIT off,on × default,quiet (~25 min quiet box)
#   BENCH_QUICK=1 bench/sidecar/compare.sh       # 1 round, small N (~4 min; ~6 min on a busy box)
#   BENCH_YJIT=off BENCH_LOG=quiet BENCH_ROUNDS=1 bench/sidecar/compare.sh
#
# Sides (each with its own fresh redis-server on a free 127.0.0.1 port):
#   sidekiq: `sidekiq -r examples/rails_app -e production` (no -c, no -q:
#            6.4.1's defaults, 10 threads, queue "default"), PROCESSES of them
#   courier: `courier-sidecar --app examples/rails_app --port P` (its defaults:
#            Puma single mode, 5 threads; --workers PROCESSES when > 1) and
#            `courier --redis-url … --executor-url …` with COURIER_SECRET
#            (its defaults: -c 10, queue default, one job per request today).
#            The only other setting: courier's ops port goes to a free
#            127.0.0.1 port (COURIER_OPS_PORT/COURIER_OPS_BIND) instead of
#            0.0.0.0:7433, so runs never collide with anything else here.
# Settings: logging "default" (Sidekiq and the sidecar at the app's INFO,
#   courier info) or "quiet" (SIDEKIQ_LOG_LEVEL=WARN for Sidekiq and the
#   sidecar — the sidecar has no logging flag of its own, it logs through the
#   app's Sidekiq.logger —, courier --log-level warning); YJIT off or on
#   (RUBYOPT=--yjit for Sidekiq and the sidecar; checked from inside the jobs).
#
# Per round and setting, two sessions per side (side order alternates):
#   A (default concurrency): idle pickup (BENCH_IDLE_JOBS BenchLatencyJob
#     pushed one at a time, 20 ms apart, after 10 warm-up jobs; enqueue→start
#     read inside the job), then N pre-pushed NoopJob, then N NoopActiveJob
#     (jobs/s and CPU/job: from the push to done), peak RSS of the session.
#   B (-c BENCH_MIXED_CONCURRENCY, default 50, on both sides: sidekiq -c 50;
#     the sidecar --threads 50, the app's concurrency as Sidekiq's -c is;
#     courier at its default, which sizes its tokens from the sidecar's
#     capacity: 50, and 63 while jobs are short, the 13 for jobs in transit;
#     BENCH_COURIER_ARGS="-c 50" caps it at 50): BENCH_MIXED_JOBS pre-pushed
#     mixed jobs (90 % sleep 2 ms, 10 % 200 ms) for jobs/s, then the same mix
#     pushed at BENCH_MIXED_RATE/s for BENCH_MIXED_SECONDS for enqueue→start
#     p50/p99, peak RSS.
#
# Env knobs (all optional):
#   BENCH_ROUNDS (3)            interleaved rounds; the summary shows medians
#   BENCH_YJIT (off,on)         which YJIT settings, comma-separated: off, on, default (each side's own: Sidekiq without, the sidecar with YJIT)
#   BENCH_LOG (default,quiet)   which logging settings
#   BENCH_PROCESSES / PROCESSES (1)  Ruby processes per side
#   BENCH_JOBS (20000)          no-op jobs per backlog run (each kind)
#   BENCH_MIXED_JOBS (5000)     jobs per mixed backlog run
#   BENCH_MIXED_RATE (1000)     jobs/s of the paced mixed run; BENCH_MIXED_SECONDS (10)
#   BENCH_MIXED_CONCURRENCY (50)
#   BENCH_IDLE_JOBS (200)       idle-pickup samples per run
#   BENCH_PARTS (idle,noop,aj,mixed,paced)  which measurements
#   BENCH_SIDES (sidekiq,courier)  which sides (one alone: no ratios)
#   BENCH_QUICK=1               smaller defaults: 1 round, N 5000, mixed 2000 +
#                               500/s × 4 s, 100 idle samples (explicit knobs win)
#   BENCH_COURIER               courier binary (default .build/release/courier,
#                               else .build-bench/release/courier); never built here
#   BENCH_TIMEOUT (300)         seconds any wait may take
#   BENCH_KEEP=1                keep the temp dir with every log
#   BENCH_SIDECAR_ARGS          extra courier-sidecar flags (split on spaces), e.g. "--job-threads 10";
#   BENCH_COURIER_ARGS          extra courier flags (split on spaces; after -c, so they win), e.g. "--batch 1";
#   BENCH_SIDECAR_ENV           extra NAME=VALUE words for the sidecar's environment, e.g. "RUBY_GC_OLDMALLOC_LIMIT=16777216":
#                               experiments only; a figure measured with either is not "defaults"
#   BENCH_DISPATCHER=1          afterwards, the dispatcher-only figures:
#                               bench/run with BENCH_COURIER and BENCH_REBUILD=0
#                               (BENCH_DISPATCHER_PARTS, default 12345)
#
# Everything started here is stopped on exit (Ctrl-C included), by pid.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
app="$root/examples/rails_app"
TCK="$(getconf CLK_TCK)"

quick="${BENCH_QUICK:-0}"
q() { if [[ "$quick" == 1 ]]; then echo "$2"; else echo "$1"; fi; }
ROUNDS="${BENCH_ROUNDS:-$(q 3 1)}"
N="${BENCH_JOBS:-$(q 20000 5000)}"
MIXED_N="${BENCH_MIXED_JOBS:-$(q 5000 2000)}"
MIXED_RATE="${BENCH_MIXED_RATE:-$(q 1000 500)}"
MIXED_SECONDS="${BENCH_MIXED_SECONDS:-$(q 10 4)}"
MIXED_C="${BENCH_MIXED_CONCURRENCY:-50}"
IDLE_JOBS="${BENCH_IDLE_JOBS:-$(q 200 100)}"
PROCS="${BENCH_PROCESSES:-${PROCESSES:-1}}"
YJITS="${BENCH_YJIT:-off,on}"
LOGS="${BENCH_LOG:-default,quiet}"
PARTS="${BENCH_PARTS:-idle,noop,aj,mixed,paced}"
SIDES="${BENCH_SIDES:-sidekiq,courier}"
TIMEOUT="${BENCH_TIMEOUT:-300}"
for v in ROUNDS N MIXED_N MIXED_RATE MIXED_SECONDS MIXED_C IDLE_JOBS PROCS TIMEOUT; do
  [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: $v must be a positive integer, got '${!v}'" >&2; exit 64; }
done
for y in ${YJITS//,/ }; do [[ "$y" == off || "$y" == on || "$y" == default ]] || { echo "BENCH_YJIT: off, on and/or default" >&2; exit 64; }; done
for l in ${LOGS//,/ }; do [[ "$l" == default || "$l" == quiet ]] || { echo "BENCH_LOG: default and/or quiet" >&2; exit 64; }; done

if [[ -n "${BENCH_COURIER:-}" ]]; then COURIER="$BENCH_COURIER"
elif [[ -x "$root/.build/release/courier" ]]; then COURIER="$root/.build/release/courier"
else COURIER="$root/.build-bench/release/courier"; fi
[[ -x "$COURIER" ]] || {
  echo "compare.sh: no courier binary at $COURIER; build one (not in .build while others build there):" >&2
  echo "  swift build -c release --static-swift-stdlib --product courier --scratch-path .build-bench" >&2
  exit 1
}
SIDECAR="$root/sidecar/exe/courier-sidecar"
if [[ -x /usr/bin/sidekiq ]]; then SIDEKIQ_BIN=/usr/bin/sidekiq
else SIDEKIQ_BIN="$(ruby -e 'puts Gem.bin_path("sidekiq", "sidekiq")' 2>/dev/null)"; fi
[[ -n "$SIDEKIQ_BIN" && -e "$SIDEKIQ_BIN" ]] || { echo "compare.sh: sidekiq executable not found" >&2; exit 1; }
for c in redis-server redis-cli curl ruby; do command -v "$c" >/dev/null || { echo "compare.sh: needs $c" >&2; exit 1; }; done

work="$(mktemp -d -t courier-compare.XXXXXX)"
PIDS=()

# ---------------------------------------------------------------- plumbing (as bench/run's)

say() { printf '%s\n' "$*"; }
warn() { printf '!! %s\n' "$*" >&2; }
mkfifo "$work/.sleep"
exec {SLEEPFD}<>"$work/.sleep"
snooze() { read -r -t "$1" -u "$SLEEPFD" _; true; }  # fork-free sleep
now() { echo "$EPOCHREALTIME"; }
alive() { local s; { read -r s <"/proc/$1/stat"; } 2>/dev/null || return 1; s=${s##*) }; [[ ${s:0:1} != Z ]]; }
stop_all() { # PID…: TERM all, wait up to 30 s, then KILL
  local p i
  for p in "$@"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for p in "$@"; do
    for ((i = 0; i < 300; i++)); do alive "$p" || break; snooze 0.1; done
    alive "$p" && { warn "pid $p ignored SIGTERM for 30 s: SIGKILL"; kill -KILL "$p" 2>/dev/null; }
    wait "$p" 2>/dev/null
  done
  return 0
}
cleanup() {
  local p
  [[ -n "$RFD" ]] && exec {RFD}>&-
  for p in "${PIDS[@]}"; do alive "$p" && kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do alive "$p" || break; snooze 0.1; done
    alive "$p" && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [[ "${BENCH_KEEP:-}" == 1 ]]; then say "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { ruby -rsocket -e 's = TCPServer.new("127.0.0.1", 0); puts s.addr[1]; s.close'; }
ticks() { # utime+stime (clock ticks) of the given processes, all threads
  local t=0 p s f
  for p in "$@"; do
    { read -r s <"/proc/$p/stat"; } 2>/dev/null || continue
    s=${s##*) }; read -r -a f <<<"$s"; t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
machine_ticks() { local cpu u n s i w irq sirq st; read -r cpu u n s i w irq sirq st _ </proc/stat; echo $((u + n + s + irq + sirq + st)); }
hwm_kb() { local t=0 p k v; for p in "$@"; do while read -r k v _; do [[ $k == VmHWM: ]] && t=$((t + v)); done 2>/dev/null <"/proc/$p/status"; done; echo "$t"; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
pss_kb() { local t=0 p k v; for p in "$@"; do while read -r k v _; do [[ $k == Pss: ]] && t=$((t + v)); done 2>/dev/null <"/proc/$p/smaps_rollup"; done; echo "$t"; }

# A fork-free Redis client over /dev/tcp: reply of an integer/simple/bulk answer in RV.
rcmd() {
  local req="*$#"$'\r\n' a line
  for a in "$@"; do req+="\$${#a}"$'\r\n'"$a"$'\r\n'; done
  printf '%s' "$req" >&"$RFD" || return 1
  read -r -t 5 -u "$RFD" line || { warn "redis: no answer to $*"; return 1; }
  line=${line%$'\r'}
  case "$line" in
    :* | +*) RV=${line:1} ;;
    '$-1') RV= ;;
    \$*) read -r -t 5 -u "$RFD" RV; RV=${RV%$'\r'} ;;
    *) warn "redis: $line (to $*)"; RV=; return 1 ;;
  esac
}
REDIS_PID= REDIS_PORT= RFD=
redis_start() { # LABEL
  REDIS_PORT="$(free_port)"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --logfile "$work/redis-$1.log" >/dev/null 2>&1 &
  REDIS_PID=$!; PIDS+=("$REDIS_PID")
  local i
  for ((i = 0; i < 200; i++)); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; snooze 0.05; done
  redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || { warn "redis-server did not start"; return 1; }
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  exec {RFD}<>"/dev/tcp/127.0.0.1/$REDIS_PORT"
}
redis_stop() { [[ -n "$RFD" ]] && exec {RFD}>&-; RFD=; [[ -n "$REDIS_PID" ]] && stop_all "$REDIS_PID"; REDIS_PID=; }

# Memory of the side, sampled while waiting (PSS: shared copy-on-write pages
# of Puma workers and their master counted once).
PSS_MAX=0 LAST_SAMPLE=0
mem_sample() {
  local t=${EPOCHREALTIME/./}
  ((t - LAST_SAMPLE < 500000)) && return 0
  LAST_SAMPLE=$t
  local p; p=$(pss_kb "${SIDE_PIDS[@]}")
  ((p > PSS_MAX)) && PSS_MAX=$p
  return 0
}
# wait_for WHAT CONDITION [PERIOD]: polls; gives up after TIMEOUT or when a side process dies.
wait_for() {
  local what=$1 cond=$2 period=${3:-0.01} deadline=$((SECONDS + TIMEOUT)) p
  until "$cond"; do
    ((SECONDS < deadline)) || { warn "gave up after ${TIMEOUT}s waiting for $what"; return 1; }
    for p in "${SIDE_PIDS[@]}"; do alive "$p" || { warn "process $p died while waiting for $what: $(tail -3 "$SIDE_LOG")"; return 1; }; done
    mem_sample
    snooze "$period"
  done
}
pad() { printf '%s%*s' "$1" $(($2 - ${#1})) ''; }  # width in characters (µ, →), not bytes
median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# pct LIST: "p50_ms p99_ms max_ms count" of a latency list (seconds), sorted[min(n−1, ⌊n·p⌋)] as bench/run.
pct() {
  redis-cli -p "$REDIS_PORT" lrange "$1" 0 -1 | sort -g | awk '{ v[NR - 1] = $1 } END {
    n = NR; if (!n) { print "- - - 0"; exit }
    i50 = int(n * 0.5); if (i50 > n - 1) i50 = n - 1; i99 = int(n * 0.99); if (i99 > n - 1) i99 = n - 1
    printf "%.3f %.3f %.3f %d\n", v[i50] * 1000, v[i99] * 1000, v[n - 1] * 1000, n }'
}

# ---------------------------------------------------------------- the sides

declare -A RES  # "setting|side|figure" → one value per round, space-separated
note() { RES["$1|$2|$3"]+="$4 "; }

# Environment of the Ruby side processes for a setting: YJIT, log level.
ruby_env() { # YJIT LOG → RENV array
  local unset=() set=()  # env takes its -u options before any NAME=VALUE
  # off: also the sidecar's own default (YJIT where available) off; default: each side's default
  # (Sidekiq without YJIT, the sidecar with it, capped at 64 MiB of code).
  case $1 in
    on) set+=(RUBYOPT=--yjit) ;;
    off) unset+=(-u RUBYOPT); set+=(COURIER_SIDECAR_YJIT=0) ;;
    default) unset+=(-u RUBYOPT -u COURIER_SIDECAR_YJIT) ;;
  esac
  if [[ $2 == quiet ]]; then set+=(SIDEKIQ_LOG_LEVEL=WARN); else unset+=(-u SIDEKIQ_LOG_LEVEL); fi
  RENV=(env "${unset[@]}" "${set[@]}")
}

SIDE_PIDS=() SIDE_LOG= COURIER_PID= BOOT_S=
side_start() { # SIDE YJIT LOG CONC(empty = defaults) TAG
  local side=$1 yjit=$2 log=$3 conc=$4 tag=$5 t0 i
  ruby_env "$yjit" "$log"
  SIDE_PIDS=() PSS_MAX=0 LAST_SAMPLE=0
  t0=$(now)
  if [[ $side == sidekiq ]]; then
    for ((i = 1; i <= PROCS; i++)); do
      (cd "$app" && exec "${RENV[@]}" "$SIDEKIQ_BIN" -r "$app" -e production ${conc:+-c "$conc"}) >"$work/$tag-sidekiq-$i.log" 2>&1 &
      SIDE_PIDS+=($!); PIDS+=($!)
    done
    SIDE_LOG="$work/$tag-sidekiq-1.log"
    cond_ready() { rcmd SCARD processes && ((RV >= PROCS)); }
    wait_for "Sidekiq's heartbeat" cond_ready 0.05 || return 1
  else
    local sport oport cflags=()
    sport=$(free_port); oport=$(free_port)
    local sflags=(--app "$app" --port "$sport")
    ((PROCS > 1)) && sflags+=(--workers "$PROCS")
    [[ -n "$conc" ]] && sflags+=(--threads "$conc")
    # shellcheck disable=SC2206 # word splitting wanted: several flags / NAME=VALUE words
    sflags+=(${BENCH_SIDECAR_ARGS:-})
    # shellcheck disable=SC2206
    local senv=(${BENCH_SIDECAR_ENV:-})
    "${RENV[@]}" "${senv[@]}" "$SIDECAR" "${sflags[@]}" >"$work/$tag-sidecar.log" 2>&1 &
    SIDE_PIDS+=($!); PIDS+=($!)
    SIDE_LOG="$work/$tag-sidecar.log"
    cond_health() { curl -sf -o /dev/null "http://127.0.0.1:$sport/v1/health"; }
    wait_for "the sidecar's health" cond_health 0.1 || return 1
    # No -c: courier's default sizes its tokens from the sidecar's capacity (--threads above).
    [[ $log == quiet ]] && cflags+=(--log-level warning)
    # shellcheck disable=SC2206 # word splitting wanted: several flags
    cflags+=(${BENCH_COURIER_ARGS:-})
    env -u RUBYOPT COURIER_OPS_PORT="$oport" COURIER_OPS_BIND=127.0.0.1 \
      "$COURIER" --redis-url "$REDIS_URL" --executor-url "http://127.0.0.1:$sport" "${cflags[@]}" >"$work/$tag-courier.log" 2>&1 &
    COURIER_PID=$!; PIDS+=($!)
    SIDE_PIDS=("$COURIER_PID" "${SIDE_PIDS[@]}")
    SIDE_LOG="$work/$tag-courier.log"
    cond_cready() { curl -sf -o /dev/null "http://127.0.0.1:$oport/ready"; }
    wait_for "courier's /ready" cond_cready 0.05 || return 1
    ((PROCS > 1)) && for ((i = 0; i < 600; i++)); do [[ $(pgrep -c -P "${SIDE_PIDS[1]}") -ge $PROCS ]] && break; snooze 0.1; done
    SIDE_PIDS+=($(pgrep -P "${SIDE_PIDS[1]}"))
  fi
  BOOT_S=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  snooze 1
}
side_stop() {
  if [[ -n "$COURIER_PID" ]]; then stop_all "$COURIER_PID"; COURIER_PID=; fi
  stop_all "${SIDE_PIDS[@]}"
  SIDE_PIDS=()
}

# ---------------------------------------------------------------- measurements

# backlog SETTING SIDE KIND LABEL: load the pre-made list, time until done.
backlog() {
  local set=$1 side=$2 kind=$3 label=$4 count=$N base t0 t1 c0 c1 cc0 cc1 r0 r1 m0 m1
  [[ $kind == mixed ]] && count=$MIXED_N
  rcmd GET stat:processed; BASE_P=${RV:-0}
  rcmd LLEN bench:mixed; BASE_M=$RV
  TARGET=$count
  if [[ $kind == mixed ]]; then cond_done() { rcmd LLEN bench:mixed && ((RV >= BASE_M + TARGET)); }
  elif [[ $side == sidekiq ]]; then cond_done() { rcmd LLEN queue:default && ((RV == 0)); }  # ≤ 10 no-ops in flight
  else cond_done() { rcmd GET stat:processed && ((${RV:-0} >= BASE_P + TARGET)); }; fi         # all acknowledged
  m0=$(machine_ticks); r0=$(ticks "$REDIS_PID"); c0=$(ticks "${SIDE_PIDS[@]}"); cc0=$(ticks "$COURIER_PID"); t0=$(now)
  redis-cli -p "$REDIS_PORT" --pipe <"$work/$kind.resp" >"$work/pipe.log" 2>&1 || { warn "redis-cli --pipe failed: $(tail -2 "$work/pipe.log")"; return 1; }
  wait_for "$label done" cond_done 0.01 || return 1
  t1=$(now); c1=$(ticks "${SIDE_PIDS[@]}"); cc1=$(ticks "$COURIER_PID"); r1=$(ticks "$REDIS_PID"); m1=$(machine_ticks)
  local out
  out=$(awk -v n="$count" -v t=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }') -v c=$((c1 - c0)) -v cc=$((cc1 - cc0)) \
      -v r=$((r1 - r0)) -v m=$((m1 - m0)) -v tck="$TCK" -v side="$side" -v label="$label" 'BEGIN {
    jps = n / t; us = c / tck * 1e6 / n
    rest = (m - c - r) / tck / t * 100; if (rest < 0) rest = 0
    split_ = side == "courier" ? sprintf(" (courier %.1f + sidecar %.1f)", cc / tck * 1e6 / n, (c - cc) / tck * 1e6 / n) : ""
    printf "   %-8s %-24s %7.0f jobs/s  %6.1f µs CPU/job%s; redis %.1f µs/job; rest of machine ≈ %.0f %% of a core\n", side, label, jps, us, split_, r / tck * 1e6 / n, rest
    printf "R %.0f %.1f\n", jps, us }')
  grep -v '^R ' <<<"$out"
  read -r _ JPS CPU <<<"$(grep '^R ' <<<"$out")"
  note "$set" "$side" "${kind}_jps" "$JPS"; note "$set" "$side" "${kind}_cpu" "$CPU"
}

# latency SETTING SIDE FIGURE COUNT RATE LONG_SHARE WARMUP LABEL
latency() {
  local set=$1 side=$2 fig=$3 count=$4 rate=$5 long=$6 warmup=$7 label=$8 list="bench:$3"
  (cd "$here" && env -u RUBYOPT ruby e2e_push.rb "$count" "$rate" "$list" "$long" "$warmup") >"$work/push.log" 2>&1 \
    || { warn "e2e_push.rb failed: $(tail -3 "$work/push.log")"; return 1; }
  LIST=$list TARGET=$count
  cond_lat() { rcmd LLEN "$LIST" && ((RV >= TARGET)); }
  local pushed_t; pushed_t=$(now)
  wait_for "$label samples" cond_lat 0.02 || return 1
  # The last jobs end ≤ 200 ms after their push: a longer tail means the side
  # was saturated (a backlog built up), and the figures include that queueing.
  local lag; lag=$(awk -v a="$pushed_t" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  awk -v l="$lag" 'BEGIN { exit !(l > 1) }' && warn "$side: the last $label job ended $lag s after the last push — saturated at $rate/s, the latencies include a backlog (lower BENCH_MIXED_RATE)"
  local p50 p99 max n
  read -r p50 p99 max n <<<"$(pct "$list")"
  printf '   %-8s %-24s enqueue→start p50 %s ms, p99 %s ms, max %s ms (%s samples; %s)\n' "$side" "$label" "$p50" "$p99" "$max" "$n" "$(cat "$work/push.log")"
  note "$set" "$side" "${fig}_p50" "$p50"; note "$set" "$side" "${fig}_p99" "$p99"
}

check_yjit() { # EXPECTED: every process that ran a BenchLatencyJob says so ("default": whatever each side does)
  local got
  [[ $1 == default ]] && return 0
  got=$(redis-cli -p "$REDIS_PORT" hvals bench:yjit | sort -u | tr '\n' ' ')
  [[ "$got" == "$1 " ]] || warn "YJIT should be $1 in every Ruby process of the side, bench:yjit says: ${got:-nothing}"
}

want() { [[ ",$PARTS," == *",$1,"* ]]; }
want_side() { [[ ",$SIDES," == *",$1,"* ]]; }
session_a() { # SETTING SIDE YJIT LOG TAG
  local set=$1 side=$2 tag=$5
  redis_start "$tag" || return 1
  side_start "$side" "$3" "$4" "" "$tag" || { side_stop; redis_stop; return 1; }
  say "   $side up in ${BOOT_S} s (defaults; $( [[ $side == sidekiq ]] && echo "$PROCS × sidekiq" || echo "courier + sidecar, $PROCS Puma process(es)"))"
  note "$set" "$side" boot_s "$BOOT_S"
  if want idle; then latency "$set" "$side" idle "$IDLE_JOBS" 50 0 10 "idle pickup"; check_yjit "$3"; fi
  want noop && backlog "$set" "$side" noop "NoopJob ×$N"
  want aj && backlog "$set" "$side" aj "NoopActiveJob ×$N"
  mem_sample
  local hwm; hwm=$(hwm_kb "${SIDE_PIDS[@]}")
  printf '   %-8s peak RSS %s MB (sum of VmHWM over %d processes), peak PSS ≈ %s MB (sampled)\n' "$side" "$(mb "$hwm")" "${#SIDE_PIDS[@]}" "$(mb "$PSS_MAX")"
  note "$set" "$side" rss_def "$(mb "$hwm")"
  note "$set" "$side" pss_def "$(mb "$PSS_MAX")"
  side_stop; redis_stop
}
session_b() { # SETTING SIDE YJIT LOG TAG
  local set=$1 side=$2 tag=$5
  redis_start "$tag" || return 1
  side_start "$side" "$3" "$4" "$MIXED_C" "$tag" || { side_stop; redis_stop; return 1; }
  say "   $side up in ${BOOT_S} s (-c $MIXED_C$( [[ $side == courier ]] && echo ", sidecar --threads $MIXED_C"))"
  want mixed && backlog "$set" "$side" mixed "mixed ×$MIXED_N (-c $MIXED_C)"
  want paced && latency "$set" "$side" paced "$((MIXED_RATE * MIXED_SECONDS))" "$MIXED_RATE" 0.1 0 "mixed at $MIXED_RATE/s"
  if want mixed || want paced; then check_yjit "$3"; fi
  mem_sample
  local hwm; hwm=$(hwm_kb "${SIDE_PIDS[@]}")
  printf '   %-8s peak RSS %s MB at -c %s (sum of VmHWM), peak PSS ≈ %s MB (sampled)\n' "$side" "$(mb "$hwm")" "$MIXED_C" "$(mb "$PSS_MAX")"
  note "$set" "$side" rss_c50 "$(mb "$hwm")"
  note "$set" "$side" pss_c50 "$(mb "$PSS_MAX")"
  side_stop; redis_stop
}

# ---------------------------------------------------------------- main

# Defaults must be defaults: nothing from the caller's environment tunes either side.
for v in $(compgen -e); do [[ $v == COURIER_* || $v == SIDEKIQ_* ]] && unset "$v"; done
unset RAILS_MAX_THREADS RUBYOPT BUNDLE_GEMFILE WEB_CONCURRENCY PUMA_WORKERS 2>/dev/null
export RAILS_ENV=production DATABASE_PATH="$work/bench.sqlite3" COURIER_SECRET="compare-secret"

sk_version=$(ruby -e 'require "sidekiq"; print Sidekiq::VERSION' 2>/dev/null)
say "courier + sidecar vs Sidekiq $sk_version, end to end (issue 11): $(nproc) cores, $(ruby -v | awk '{ print $1, $2 }'), $(redis-server --version | awk '{ print $3 }')"
[[ -n "${BENCH_SIDECAR_ARGS:-}${BENCH_SIDECAR_ENV:-}" ]] && say "!! not defaults: sidecar with BENCH_SIDECAR_ARGS=\"${BENCH_SIDECAR_ARGS:-}\" BENCH_SIDECAR_ENV=\"${BENCH_SIDECAR_ENV:-}\""
say "courier $("$COURIER" --version 2>/dev/null | head -1 || echo '?') at $COURIER$(ldd "$COURIER" 2>/dev/null | grep -q libswiftCore && echo ' (shared Swift runtime: not as shipped)')"
say "$PROCS Ruby process(es) per side; rounds $ROUNDS; YJIT $YJITS; logging $LOGS; N $N no-op jobs; mixed $MIXED_N + ${MIXED_RATE}/s × ${MIXED_SECONDS} s at -c $MIXED_C; idle $IDLE_JOBS samples"
m0=$(machine_ticks); snooze 2; m1=$(machine_ticks)
awk -v b=$((m1 - m0)) -v tck="$TCK" -v cores="$(nproc)" 'BEGIN { x = b / tck / 2 / cores * 100
  printf "machine before the run: %.0f %% busy (of %d cores)%s\n", x, cores, (x > 5 ? " — NOT QUIET, figures will be noisy" : "") }'

say "preparing the backlogs (real Sidekiq client payloads, loaded per run with redis-cli --pipe)"
redis_start prep || exit 1
(cd "$app" && env -u RUBYOPT ruby "$here/e2e_payloads.rb" "$work" "$N" "$MIXED_N") >"$work/prep.log" 2>&1 \
  || { warn "e2e_payloads.rb failed: $(tail -5 "$work/prep.log")"; exit 1; }
redis_stop

SETTINGS=()
for y in ${YJITS//,/ }; do for l in ${LOGS//,/ }; do SETTINGS+=("$y/$l"); done; done
started=$SECONDS
for ((round = 1; round <= ROUNDS; round++)); do
  k=0
  for set in "${SETTINGS[@]}"; do
    yjit=${set%/*} log=${set#*/}
    if (((round + k) % 2)); then order=(sidekiq courier); else order=(courier sidekiq); fi
    k=$((k + 1))
    say ""
    say "== round $round/$ROUNDS: YJIT $yjit, logging $log ($( [[ $log == quiet ]] && echo "Sidekiq and sidecar WARN, courier warning" || echo "Sidekiq and sidecar INFO, courier info")) — $((SECONDS - started)) s so far"
    if want idle || want noop || want aj; then
      for side in "${order[@]}"; do want_side "$side" || continue; session_a "$set" "$side" "$yjit" "$log" "r$round-${yjit}-$log-$side-a" || warn "$side session A failed"; done
    fi
    if want mixed || want paced; then
      for side in "${order[@]}"; do want_side "$side" || continue; session_b "$set" "$side" "$yjit" "$log" "r$round-${yjit}-$log-$side-b" || warn "$side session B failed"; done
    fi
  done
done
total=$((SECONDS - started))

# ---------------------------------------------------------------- summary

med() { median "${RES["$1|$2|$3"]:-}"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b > 0) printf "%.2f", a / b }'; }
verdict() { # RATIO OP TARGET
  [[ -z "$1" ]] && { echo "-"; return; }
  awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=" ? r >= t : r <= t); print (ok ? "met" : "MISSED") }'
}
# With PROCESSES > 1 the sidecar's Puma workers share the master's pages
# copy-on-write, which a sum of VmHWM counts once per process: PSS is then the
# fair memory figure, and gets the target too.
PSS_OP=info; ((PROCS > 1)) && PSS_OP="<="
# rows: figure key, label, op, target at default logging, target quiet
ROWS=(
  "noop_jps|NoopJob jobs/s|>=|2.5|1.5"
  "aj_jps|NoopActiveJob jobs/s|>=|2|1.3"
  "mixed_jps|mixed jobs/s (-c $MIXED_C)|>=|1|1"
  "paced_p50|mixed enqueue→start p50 ms|info||"
  "paced_p99|mixed enqueue→start p99 ms|<=|1|1"
  "noop_cpu|CPU µs/job, NoopJob|<=|0.5|0.5"
  "aj_cpu|CPU µs/job, NoopActiveJob|<=|0.5|0.5"
  "mixed_cpu|CPU µs/job, mixed|info||"
  "rss_def|peak RSS MB, defaults|<=|1.3|1.3"
  "rss_c50|peak RSS MB, -c $MIXED_C both|<=|1.3|1.3"
  "pss_def|peak PSS MB (sampled), defaults|$PSS_OP|1.3|1.3"
  "pss_c50|peak PSS MB (sampled), -c $MIXED_C|$PSS_OP|1.3|1.3"
  "idle_p50|idle pickup p50 ms|<=|1|1"
  "idle_p99|idle pickup p99 ms|<=|1|1"
  "boot_s|boot to ready, s|info||"
)
say ""
say "== summary: courier + sidecar vs Sidekiq $sk_version, $PROCS Ruby process(es) each, defaults (mixed: -c $MIXED_C both); medians of $ROUNDS interleaved round(s); $((total / 60)) min $((total % 60)) s"
for set in "${SETTINGS[@]}"; do
  log=${set#*/}
  say ""
  say "-- YJIT ${set%/*}, logging $log"
  printf '%-36s %14s %12s %8s %10s %s\n' figure "courier+sidecar" sidekiq ratio target ""
  for row in "${ROWS[@]}"; do
    IFS='|' read -r key label op td tq <<<"$row"
    a=$(med "$set" courier "$key") b=$(med "$set" sidekiq "$key")
    [[ -z "$a$b" ]] && continue
    r=$(ratio "$a" "$b") t=$td; [[ $log == quiet ]] && t=$tq
    if [[ $op == info ]]; then tgt= v=; else tgt="$( [[ $op == ">=" ]] && echo "≥" || echo "≤") ${t}×"; v=$(verdict "$r" "$op" "$t"); fi
    printf '%s %14s %12s %8s %s %s\n' "$(pad "$label" 36)" "${a:--}" "${b:--}" "${r:+${r}×}" "$(pad "$tgt" 10)" "$v"
  done
  if ((ROUNDS > 1)); then
    for key in noop_jps aj_jps mixed_jps noop_cpu paced_p99 idle_p50; do
      ca=(${RES["$set|courier|$key"]:-}) sb=(${RES["$set|sidekiq|$key"]:-})
      ((${#ca[@]})) || continue
      line="per round $key: courier ${ca[*]} | sidekiq ${sb[*]} | ratio"
      for ((i = 0; i < ${#ca[@]} && i < ${#sb[@]}; i++)); do line+=" $(ratio "${ca[i]}" "${sb[i]}")"; done
      say "   $line"
    done
  fi
done
say ""
say "== against issue 11's targets (ratio courier+sidecar ÷ Sidekiq, medians)"
hdr=$(pad "target" 44); for set in "${SETTINGS[@]}"; do hdr+=" $(pad "YJIT $set" 18)"; done; say "$hdr"
for row in "${ROWS[@]}"; do
  IFS='|' read -r key label op td tq <<<"$row"
  [[ $op == info ]] && continue
  line=$(pad "$label $( [[ $op == ">=" ]] && echo "≥" || echo "≤") $td$( [[ $td != "$tq" ]] && echo "/$tq")×" 44)
  any=0
  for set in "${SETTINGS[@]}"; do
    t=$td; [[ ${set#*/} == quiet ]] && t=$tq
    r=$(ratio "$(med "$set" courier "$key")" "$(med "$set" sidekiq "$key")")
    [[ -n "$r" ]] && any=1
    line+=" $(pad "${r:+${r}× $(verdict "$r" "$op" "$t")}" 18)"
  done
  ((any)) && say "$line"
done
say "(jobs/s and CPU: from the push of the backlog (redis-cli --pipe, ms) to done — Sidekiq: queue empty, ≤ 10 no-op jobs still in flight; courier: stat:processed == N, every job acknowledged; mixed: all N jobs recorded their end, both sides. CPU: utime+stime of every process of the side in that window, boot excluded; Redis outside both. RSS: sum of each process's VmHWM, PSS sampled every 0.5 s. Latency: Time.now in the job − the pusher's Time.now just before its push)"
say "full run took $((total / 60)) min $((total % 60)) s"

if [[ "${BENCH_DISPATCHER:-}" == 1 ]]; then
  say ""
  if [[ ! -x "$root/.build/release/courier-test-executor" ]]; then
    say "dispatcher-only figures skipped: bench/run needs .build/release/courier-test-executor and would build it in .build"
    say "  (when nobody else builds there: BENCH_COURIER=$COURIER BENCH_REBUILD=0 bench/run)"
  else
    say "== dispatcher only: BENCH_COURIER=$COURIER BENCH_REBUILD=0 BENCH_PARTS=${BENCH_DISPATCHER_PARTS:-12345} bench/run"
    BENCH_COURIER="$COURIER" BENCH_REBUILD=0 BENCH_PARTS="${BENCH_DISPATCHER_PARTS:-12345}" BENCH_ROUNDS="$ROUNDS" "$root/bench/run"
  fi
fi

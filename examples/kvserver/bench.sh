#!/usr/bin/env bash
# Benchmark mode: the same redis-benchmark load against three servers on
# this machine, in one invocation, interleaved round by round:
#   brc      frt-kvserver, linked with frt (biased reference counting)
#   atomic   frt-kvserver-atomic: the same server linked with frt_rc_atomic,
#            the same sources with every count atomic (FRT_RC_ATOMIC_ONLY=1)
#   redis    redis-server itself (persistence off)
# and prints the median requests/s of each test per server, and the ratios.
#
#   bench.sh [frt build dir]          (default: build/kv-bench, configured and
#                                      built with the release preset if needed)
# Environment: KV_BENCH_N (requests per test, 100000), KV_BENCH_C (clients, 50),
# KV_BENCH_P (pipeline, 16), KV_BENCH_ROUNDS (5), KV_BENCH_THREADS (workers of
# the frt servers; default one per CPU), KV_BENCH_TESTS (set,get,incr,lpush,lpop).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-$root/build/kv-bench}
n=${KV_BENCH_N:-100000} c=${KV_BENCH_C:-50} p=${KV_BENCH_P:-16} rounds=${KV_BENCH_ROUNDS:-5}
tests=${KV_BENCH_TESTS:-set,get,incr,lpush,lpop}
threads=${KV_BENCH_THREADS:-$(nproc)}

for tool in redis-benchmark redis-cli redis-server; do
  command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install redis-tools redis-server)"; exit 1; }
done
if [[ ! -x $build/examples/kvserver/frt-kvserver || ! -x $build/examples/kvserver/frt-kvserver-atomic ]]; then
  echo "bench: building frt-kvserver and frt-kvserver-atomic in $build (release preset)"
  cmake --preset release -B "$build" -S "$root" >/dev/null
  cmake --build "$build" --target frt-kvserver frt-kvserver-atomic >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/kvbench.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

start_frt() { # start_frt <name> <binary>: sets port_<name>
  "$2" --port 0 --threads "$threads" >"$work/$1.out" 2>&1 &
  pids+=($!)
  eval "pid_$1=$!"
  local port=
  for _ in $(seq 1 100); do
    port=$(sed -n 's/^kvserver: ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/$1.out")
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "bench: $1 did not start"; cat "$work/$1.out"; exit 1; }
  eval "port_$1=$port"
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_frt brc "$build/examples/kvserver/frt-kvserver"
start_frt atomic "$build/examples/kvserver/frt-kvserver-atomic"
port_redis=$(free_port)
redis-server --port "$port_redis" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
             --logfile "$work/redis.log" --dir "$work" &
pids+=($!)
pid_redis=$!
for _ in $(seq 1 100); do
  redis-cli -p "$port_redis" PING >/dev/null 2>&1 && break
  sleep 0.1
done
redis_version=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')

servers=(brc atomic redis)
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1)"
echo "load: redis-benchmark -t $tests -n $n -c $c -P $p -q, $rounds rounds, median;" \
     "frt servers with --threads $threads; redis-server $redis_version (io-threads 1)"
for r in $(seq 1 "$rounds"); do
  for s in "${servers[@]}"; do
    port_var=port_$s
    redis-cli -p "${!port_var}" FLUSHALL >/dev/null
    redis-benchmark -p "${!port_var}" -t "$tests" -n "$n" -c "$c" -P "$p" -q 2>/dev/null |
      tr '\r' '\n' | sed -n 's/^\([A-Z_]*\): \([0-9.]*\) requests per second.*/\1 \2/p' |
      while read -r t v; do echo "$s $t $v"; done >>"$work/results"
  done
  echo "round $r/$rounds done"
done

median() { sort -n | awk '{a[NR]=$1} END {if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
printf '\n%-7s %12s %12s %12s %11s %11s\n' test "frt (brc)" "frt atomic" redis "brc/atomic" "brc/redis"
for t in $(tr ',' ' ' <<<"$tests" | tr a-z A-Z); do
  declare -A med=()
  for s in "${servers[@]}"; do
    med[$s]=$(awk -v s="$s" -v t="$t" '$1 == s && $2 == t {print $3}' "$work/results" | median)
  done
  awk -v t="$t" -v b="${med[brc]}" -v a="${med[atomic]}" -v r="${med[redis]}" 'BEGIN {
    printf "%-7s %12.0f %12.0f %12.0f %10.2fx %10.2fx\n", t, b, a, r, (a > 0 ? b / a : 0), (r > 0 ? b / r : 0) }'
  unset med
done

# The frt servers must still shut down cleanly after the load.
echo
for s in brc atomic; do
  pid_var=pid_$s
  kill -TERM "${!pid_var}"
  status=0
  wait "${!pid_var}" || status=$?
  echo "$s: exit status $status, $(grep -o 'frt_shutdown: .*' "$work/$s.out")"
done
kill -TERM "$pid_redis" 2>/dev/null || true
wait "$pid_redis" 2>/dev/null || true
pids=()

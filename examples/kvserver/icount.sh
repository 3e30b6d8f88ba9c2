#!/usr/bin/env bash
# Instructions per request of one or two frt-kvserver binaries, counted by
# callgrind over every thread of the server: a figure the machine's load
# does not move, for comparing two builds (say main and a branch) where
# wall-clock requests/s would be noise.
#
#   icount.sh <frt-kvserver> [<baseline frt-kvserver>]
#
# For each test, the server runs under valgrind twice, serving N1 and then
# N2 requests of `redis-benchmark -t <test> -c 4 -P 16`; the difference over
# N2 - N1 is the cost of one request (start-up and shutdown cancel out).
# LPOP's runs first fill the list with as many LPUSHes, whose cost is taken
# off. Environment: KV_ICOUNT_TESTS (set,get,incr,lpush,lpop), KV_ICOUNT_N1
# (20000), KV_ICOUNT_N2 (60000).
set -euo pipefail

tests=${KV_ICOUNT_TESTS:-set,get,incr,lpush,lpop}
n1=${KV_ICOUNT_N1:-20000} n2=${KV_ICOUNT_N2:-60000}
for tool in valgrind redis-benchmark; do
  command -v "$tool" >/dev/null || { echo "icount: $tool not found"; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/kvicount.XXXXXX")
trap 'rm -rf "$work"' EXIT

count() { # count <server> <test> <n>: instructions of the whole run
  # Emptied here, not only by the server's redirection, which runs in the
  # child: read before the child gets there, the file still names the
  # previous server's port, and redis-benchmark retries a dead port forever.
  : >"$work/srv.out"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" "$1" --port 0 --threads 2 --no-pin \
           >"$work/srv.out" 2>"$work/vg.err" &
  local pid=$! port=
  for _ in $(seq 1 300); do
    port=$(sed -n 's/^kvserver: ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/srv.out")
    [[ -n $port ]] && break
    sleep 0.1
  done
  [[ -n $port ]] || { echo "icount: $1 did not start" >&2; kill "$pid"; exit 1; }
  [[ $2 == lpop ]] && redis-benchmark -p "$port" -t lpush -n "$3" -c 4 -P 16 -q >/dev/null 2>&1
  redis-benchmark -p "$port" -t "$2" -n "$3" -c 4 -P 16 -q >/dev/null 2>&1
  kill -TERM "$pid"
  wait "$pid" || { echo "icount: $1 did not shut down cleanly" >&2; exit 1; }
  sed -n 's/.*Collected : \([0-9]*\).*/\1/p' "$work/vg.err"
}

per_request() { # per_request <server> <test>
  local a z
  a=$(count "$1" "$2" "$n1")
  z=$(count "$1" "$2" "$n2")
  echo $(((z - a) / (n2 - n1)))
}

servers=("$1")
[[ $# -ge 2 ]] && servers+=("$2")
echo "instructions per request; server: $1${2:+; baseline: $2}"
printf '%-7s %14s' test server
[[ ${#servers[@]} -eq 2 ]] && printf ' %14s %10s' baseline ratio
echo
declare -A pushcost=()
for t in $(tr ',' ' ' <<<"$tests"); do
  vals=()
  for i in "${!servers[@]}"; do
    v=$(per_request "${servers[$i]}" "$t")
    if [[ $t == lpop ]]; then
      [[ -n ${pushcost[$i]:-} ]] || pushcost[$i]=$(per_request "${servers[$i]}" lpush)
      v=$((v - pushcost[$i]))
    elif [[ $t == lpush ]]; then
      pushcost[$i]=$v
    fi
    vals+=("$v")
  done
  printf '%-7s' "${t^^}"
  for v in "${vals[@]}"; do printf ' %14d' "$v"; done
  [[ ${#vals[@]} -eq 2 ]] && awk -v a="${vals[0]}" -v b="${vals[1]}" 'BEGIN { printf " %9.2fx", a / b }'
  echo
done

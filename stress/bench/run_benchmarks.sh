#!/usr/bin/env bash
# Every benchmark in one go, for docs/benchmarks.md: builds the release
# preset, runs each program (each compares against its baselines in the
# same run and prints ratios), and keeps each output under
# build/bench-report/. Run it on an otherwise idle machine: the figures are
# wall-clock medians.
#   stress/bench/run_benchmarks.sh [--quick]     --quick: a few seconds each
#   FRT_BENCH_ONLY="alloc brc"              a subset (alloc brc stw gc weakref share stress stress-seeds
#                                           instructions kvserver)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
quick=()
[[ ${1:-} == --quick ]] && quick=(--quick)
only=${FRT_BENCH_ONLY:-alloc brc stw gc weakref share stress stress-seeds instructions kvserver}
out=build/bench-report
mkdir -p "$out"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" >/dev/null
bin=build/release/stress

run() { # name command...
  local name=$1
  shift
  echo "=== $name: $*"
  { echo "# command: $*"; echo "# date: $(date -u +%Y-%m-%dT%H:%MZ)"; "$@"; } 2>&1 | tee "$out/$name.txt"
}

for b in $only; do
  case $b in
    alloc) run alloc "$bin/frt-bench-alloc" "${quick[@]}" ;;
    brc) run brc "$bin/frt-bench-brc" "${quick[@]}" ;;
    stw) run stw "$bin/frt-bench-stw" "${quick[@]}" ;;
    gc) run gc "$bin/frt-bench-gc" "${quick[@]}" ;;
    weakref) run weakref "$bin/frt-bench-weakref" "${quick[@]}" ;;
    share) run share "$bin/frt-bench-share" "${quick[@]}" ;;
    stress)
      secs=3
      [[ ${#quick[@]} -gt 0 ]] && secs=1
      run stress "$bin/frt-stress" --workload all --threads 1,2,4,8 --duration "$secs" --rc both \
        --report "$out/stress-report.txt" --json "$out/stress.json" --csv "$out/stress.csv" \
        --plot "$out/stress-plots" ;;
    stress-seeds) # brc/atomic at 1 and 2 threads, median of 5 seeds (issue 12's target)
      run stress-seeds "$bin/frt-stress" --workload all --threads 1,2 --duration 1 --rc both \
        --seeds 5 --report "$out/stress-seeds-report.txt" ;;
    instructions) # exact per-operation instruction counts, whatever the load
      if command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null; then
        for v in frt-bench-instructions frt-bench-instructions-shared; do
          run "$v" bash -c "valgrind -q --tool=callgrind --cache-sim=yes --callgrind-out-file='$out/$v.cg' \
            '$bin/$v' && callgrind_annotate --inclusive=yes '$out/$v.cg' | grep -E '_pairs|bulk|ws(32|256)|queue_|handoff_'"
        done
      else
        echo "=== instructions: valgrind is not installed, skipped"
      fi ;;
    kvserver) run kvserver examples/kvserver/bench.sh build/release ;;
    *) echo "unknown benchmark '$b'" >&2; exit 2 ;;
  esac
done
echo "outputs in $out/"

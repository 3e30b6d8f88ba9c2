#!/usr/bin/env bash
# A library-only build (-DFRT_BUILD_STRESS=OFF -DFRT_BUILD_TESTS=OFF) on a
# machine without hwloc: configure and build libfrt with pkg-config limited
# to a scratch directory that holds every .pc file the library needs and no
# hwloc.pc. Run by CTest as test_libonly_no_hwloc.
#   check.sh <frt source dir> <scratch dir> <C compiler> <CMake generator>
set -euo pipefail
src=$1 scratch=$2 cc=$3 generator=$4
rm -rf "$scratch"
mkdir -p "$scratch/pc"
for m in liburcu-qsbr; do
  pc=$(pkg-config --variable=pcfiledir "$m")/$m.pc
  [[ -f $pc ]] || { echo "FAIL: $m.pc not found (bash .ci/setup installs it)"; exit 1; }
  ln -s "$pc" "$scratch/pc/$m.pc"
done
export PKG_CONFIG_LIBDIR=$scratch/pc PKG_CONFIG_PATH=
if pkg-config --exists hwloc; then
  echo "FAIL: hwloc is still visible to pkg-config: this check would prove nothing"
  exit 1
fi
if ! cmake -S "$src" -B "$scratch/build" -G "$generator" -DCMAKE_C_COMPILER="$cc" \
     -DFRT_BUILD_STRESS=OFF -DFRT_BUILD_TESTS=OFF >"$scratch/configure.log" 2>&1; then
  cat "$scratch/configure.log"
  echo "FAIL: a library-only configure needs something it should not (see above)"
  exit 1
fi
cmake --build "$scratch/build" --target frt frt_static >"$scratch/build.log" 2>&1 ||
  { tail -n 40 "$scratch/build.log"; echo "FAIL: the library-only build"; exit 1; }
ls "$scratch/build"/libfrt.so* "$scratch/build/libfrt.a" >/dev/null
echo "library-only build without hwloc: ok"

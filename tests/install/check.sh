#!/usr/bin/env bash
# Install frt from a build tree into a scratch prefix, then build a separate
# program against it twice: with CMake's find_package(frt) (shared and
# static targets) and with pkg-config. Where the install has the variants
# (cmake/variants.cmake), a -fsanitize=thread program built against frt_tsan
# both ways must run with no TSan report, and a program built against
# frt_debug must stop at its misuse with frt's one-line report. Run by CTest
# as test_install.
#   check.sh <frt build dir> <scratch dir> <C compiler>
set -euo pipefail
build=$1 scratch=$2 cc=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$scratch"
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null

cmake -S "$here" -B "$scratch/cmake" -G Ninja -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/cmake" >/dev/null
LD_LIBRARY_PATH=$prefix/lib:$prefix/lib64 "$scratch/cmake/consumer"
"$scratch/cmake/consumer_static"

pcdir=$(dirname "$(find "$prefix" -name frt.pc | head -n 1)")
flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs frt)
"$cc" -o "$scratch/consumer_pc" "$here/consumer.c" $flags -pthread
LD_LIBRARY_PATH=$prefix/lib:$prefix/lib64 "$scratch/consumer_pc"
msg="install check: find_package(frt) shared and static, pkg-config"

# TSan needs the mmap layout without randomisation here (docs/sanitizers.md).
run_tsan() {
  local out
  if ! out=$(LD_LIBRARY_PATH=$prefix/lib:$prefix/lib64 TSAN_OPTIONS="halt_on_error=1 exitcode=66" \
             setarch -R "$@" 2>&1); then
    echo "$out"; echo "TSan consumer failed: $*"; exit 1
  fi
  if grep -q "ThreadSanitizer" <<<"$out"; then
    echo "$out"; echo "TSan reported on $*"; exit 1
  fi
}
if [[ -f $pcdir/frt-tsan.pc ]]; then
  run_tsan "$scratch/cmake/consumer_tsan"
  flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs frt-tsan)
  "$cc" -o "$scratch/consumer_tsan_pc" "$here/consumer_tsan.c" $flags -pthread
  run_tsan "$scratch/consumer_tsan_pc"
  msg="$msg, frt-tsan (no report)"
fi

check_misuse() {
  local err
  if err=$("$@" 2>&1 >/dev/null); then
    echo "frt_debug consumer did not abort: $*"; exit 1
  fi
  if [[ $(wc -l <<<"$err") -ne 1 ]] || ! grep -q "^frt: misuse: .*object 0x.* type 'consumer.obj'" <<<"$err"; then
    echo "$err"; echo "frt_debug consumer: expected one misuse line: $*"; exit 1
  fi
}
if [[ -f $pcdir/frt-debug.pc ]]; then
  check_misuse "$scratch/cmake/consumer_debug"
  flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs frt-debug)
  "$cc" -o "$scratch/consumer_debug_pc" "$here/consumer_debug.c" $flags -pthread
  LD_LIBRARY_PATH=$prefix/lib:$prefix/lib64 check_misuse "$scratch/consumer_debug_pc"
  msg="$msg, frt-debug (misuse aborts)"
fi
echo "$msg: ok"

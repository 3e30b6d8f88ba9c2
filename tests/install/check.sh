#!/usr/bin/env bash
# Install frt from a build tree into a scratch prefix, then build a separate
# program against it twice: with CMake's find_package(frt) (shared and
# static targets) and with pkg-config. Run by CTest as test_install.
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
echo "install check: find_package(frt) shared and static, pkg-config: ok"

#!/usr/bin/env bash
# Build the kvserver the way a project outside the frt tree would: install
# frt from a build tree into a scratch prefix, configure this directory as a
# project of its own (find_package(frt REQUIRED), linking frt::frt), build
# it, and run its parser test and a PING against the installed-package
# server. Run by CTest as kvserver_installed.
#   build_installed.sh <frt build dir> <scratch dir> [C compiler]
set -euo pipefail
build=$1 scratch=$2 cc=${3:-cc}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
rm -rf "$scratch"
prefix=$scratch/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
gen=()
command -v ninja >/dev/null 2>&1 && gen=(-G Ninja)
cmake -S "$here" -B "$scratch/build" "${gen[@]}" -DCMAKE_C_COMPILER="$cc" \
      -DCMAKE_BUILD_TYPE=Release -DKV_WERROR=ON -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$scratch/build" >/dev/null
"$scratch/build/kv-test-resp" | tail -n 1

# The server from the installed package answers and shuts down cleanly.
log=$scratch/server.log
"$scratch/build/frt-kvserver" --port 0 --threads 2 >"$log" 2>&1 &
pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/^kvserver: ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log")
  [[ -n $port ]] && break
  sleep 0.1
done
if [[ -z $port ]]; then
  kill "$pid" 2>/dev/null || true
  echo "FAIL: the installed-package server did not start"; cat "$log"; exit 1
fi
reply=$(exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'PING\r\n' >&3; head -c 7 <&3 | tr -d '\r\n'; exec 3>&-)
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
if [[ $reply != "+PONG" || $status -ne 0 ]] || ! grep -q "frt_shutdown: 0 objects alive" "$log"; then
  echo "FAIL: reply '$reply', exit status $status"; cat "$log"; exit 1
fi
echo "kvserver from the installed package (find_package(frt), frt::frt): ok"

#!/usr/bin/env bash
# End-to-end check of frt-kvserver with the stock Redis tools (CTest test
# kvserver_check, in every preset).
#
#   check.sh <frt-kvserver binary> [normal|tsan|asan]
#
# Starts the server on a free port (--port 0; the port is read from its
# "ready" line), then:
#   1. a redis-cli correctness pass: values read back byte for byte (binary,
#      empty, 100 KB), DEL/EXISTS, INCR family, lists, MSET/MGET, TTLs (lazy
#      expiry and the sweeper), WRONGTYPE errors;
#   2. bad input on raw sockets: malformed RESP, oversized bulk lengths,
#      clients that leave mid-command, 10,000 pipelined commands;
#   3. load: redis-benchmark -t set,get,incr,lpush,lpop -c 50 -P 16, and
#      50 concurrent clients INCRementing one key, which must count exactly;
#   4. INFO, FRT.GCSTATS and FRT.HEAPSTATS, and that after FLUSHALL and
#      FRT.COLLECT the heap is back to its idle size;
#   5. SIGTERM: exit status 0 and "frt_shutdown: 0 objects alive", and under
#      a sanitizer not one report on stderr.
# Missing redis-cli/redis-benchmark is a failure, not a skip.
set -uo pipefail

server=${1:?usage: check.sh <frt-kvserver> [normal|tsan|asan]}
mode=${2:-normal}
SECONDS=0

fail() {
  echo "FAIL: $*"
  if [[ -n ${work:-} ]]; then
    echo "--- server stdout"; cat "$work/server.out" 2>/dev/null | tail -n 20
    echo "--- server stderr"; cat "$work/server.err" 2>/dev/null | tail -n 60
  fi
  exit 1
}

for tool in redis-cli redis-benchmark; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL: $tool not found. Install the Debian package redis-tools" \
         "(bash .ci/setup does: apt-get install redis-tools)."
    exit 1
  fi
done
[[ -x $server ]] || fail "no server binary at $server"

wrap=()
case $mode in
  normal) n_load=20000 n_incr=10000 ;;
  asan)   n_load=5000  n_incr=3000 ;;
  tsan)   n_load=2000  n_incr=2000
          wrap=(setarch -R)   # TSan and this kernel's mmap randomisation (docs/api.md, "What you need")
          export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1} exitcode=66" ;;
  *) fail "unknown mode $mode" ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/kvcheck.XXXXXX")
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

"${wrap[@]}" "$server" --port 0 --threads 2 >"$work/server.out" 2>"$work/server.err" &
pid=$!
port=
for _ in $(seq 1 300); do
  port=$(sed -n 's/^kvserver: ready on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.out")
  [[ -n $port ]] && break
  kill -0 "$pid" 2>/dev/null || fail "the server exited during start-up"
  sleep 0.1
done
[[ -n $port ]] || fail "the server did not print its ready line within 30 s"
echo "server pid $pid on port $port (mode $mode)"

cli() { timeout 30 redis-cli -p "$port" "$@"; }
checks=0
expect() { # expect <description> <wanted> <got>
  checks=$((checks + 1))
  [[ $2 == "$3" ]] || fail "$1: wanted '$2', got '$3'"
}
field() { # field <name> <text>: the value of "name:value" in INFO-style text
  tr -d '\r' <<<"$2" | sed -n "s/^$1:\(.*\)/\1/p" | head -n 1
}
heap() { cli FRT.HEAPSTATS; }

# The idle heap, before any client data.
idle=$(heap)
idle_blocks=$(field blocks_in_use "$idle")
idle_bytes=$(field bytes_in_use "$idle")
[[ -n $idle_blocks && -n $idle_bytes ]] || fail "FRT.HEAPSTATS did not answer: '$idle'"

# ---- 1. correctness ---------------------------------------------------------
expect "PING" PONG "$(cli PING)"
expect "PING msg" hello "$(cli PING hello)"
expect "SET" OK "$(cli SET k1 hello)"
expect "GET" hello "$(cli GET k1)"
expect "SET spaces" OK "$(cli SET k2 'a value with spaces, tabs	and ünïcode')"
expect "GET spaces" 'a value with spaces, tabs	and ünïcode' "$(cli GET k2)"
expect "SET empty" OK "$(cli SET empty '')"
expect "GET empty" "" "$(cli GET empty)"
expect "STRLEN empty" 0 "$(cli STRLEN empty)"
expect "GET missing" "" "$(cli GET nosuchkey)"

head -c 100000 /dev/urandom >"$work/blob"
printf 'x\r\ny\0z\r\n' >>"$work/blob"           # CR, LF and NUL inside a value
expect "SET binary" OK "$(cli -x SET blob <"$work/blob")"
cli --raw GET blob >"$work/blob.out"              # raw mode adds one newline
{ cat "$work/blob"; printf '\n'; } >"$work/blob.want"
cmp -s "$work/blob.want" "$work/blob.out" || fail "a 100 KB binary value did not read back byte for byte"
expect "STRLEN binary" "$(stat -c %s "$work/blob")" "$(cli STRLEN blob)"
checks=$((checks + 1))

# 1000 keys through --pipe (RESP written by hand), read back with MGET.
for i in $(seq 1 1000); do
  k="key:$i" v="value-$i-$((i * 7919))"
  printf '*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n' ${#k} "$k" ${#v} "$v"
done >"$work/sets.resp"
out=$(timeout 30 redis-cli -p "$port" --pipe <"$work/sets.resp" 2>&1)
grep -q "errors: 0, replies: 1000" <<<"$out" || fail "SET pipe: $out"
got=$(cli MGET $(for i in $(seq 1 1000); do echo "key:$i"; done) | md5sum)
want=$(for i in $(seq 1 1000); do echo "value-$i-$((i * 7919))"; done | md5sum)
expect "MGET of 1000 pipelined SETs" "$want" "$got"

# 2000 lists (containers the collector tracks): more than the generation-0
# threshold (700), so automatic collections run while the key space holds
# every list. They must all survive: the key space's references are
# external to the collector, which frees only what is unreachable.
for i in $(seq 1 2000); do
  k="lists:$i"
  printf '*4\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n$1\r\na\r\n$1\r\nb\r\n' ${#k} "$k"
done >"$work/lists.resp"
out=$(timeout 30 redis-cli -p "$port" --pipe <"$work/lists.resp" 2>&1)
grep -q "errors: 0, replies: 2000" <<<"$out" || fail "RPUSH pipe: $out"
gen0=$(field gen0 "$(cli FRT.GCSTATS)")
[[ $gen0 =~ collections=([0-9]+) ]] && (( BASH_REMATCH[1] > 0 )) ||
  fail "2000 new lists ran no automatic generation-0 collection: $gen0"
for i in 1 700 1400 2000; do
  expect "list $i after automatic collections" "a b" "$(cli LRANGE "lists:$i" 0 -1 | tr '\n' ' ' | sed 's/ $//')"
done
expect "FRT.COLLECT with every list reachable" 0 "$(cli FRT.COLLECT)"
expect "list 1000 after a full collection" 2 "$(cli LLEN lists:1000)"

expect "EXISTS" 2 "$(cli EXISTS k1 k1 nosuchkey)"
expect "DEL" 1 "$(cli DEL k1 nosuchkey)"
expect "EXISTS after DEL" 0 "$(cli EXISTS k1)"
expect "INCR new" 1 "$(cli INCR cnt)"
expect "INCRBY" 11 "$(cli INCRBY cnt 10)"
expect "DECR" 10 "$(cli DECR cnt)"
expect "DECRBY" -5 "$(cli DECRBY cnt 15)"
expect "GET counter" -5 "$(cli GET cnt)"
cli SET notint 12abc >/dev/null
expect "INCR non-integer" "ERR value is not an integer or out of range" "$(cli INCR notint)"
cli SET big 9223372036854775807 >/dev/null
expect "INCR overflow" "ERR increment or decrement would overflow" "$(cli INCR big)"

expect "RPUSH" 3 "$(cli RPUSH list a b c)"
expect "LPUSH" 5 "$(cli LPUSH list y z)"
expect "LRANGE" "z y a b c" "$(cli LRANGE list 0 -1 | tr '\n' ' ' | sed 's/ $//')"
expect "LRANGE part" "y a" "$(cli LRANGE list 1 2 | tr '\n' ' ' | sed 's/ $//')"
expect "LPOP" z "$(cli LPOP list)"
expect "RPOP" c "$(cli RPOP list)"
expect "LPOP count" "y a" "$(cli LPOP list 2 | tr '\n' ' ' | sed 's/ $//')"
expect "LLEN" 1 "$(cli LLEN list)"
expect "TYPE list" list "$(cli TYPE list)"
wrongtype="WRONGTYPE Operation against a key holding the wrong kind of value"
expect "GET on a list" "$wrongtype" "$(cli GET list)"
expect "INCR on a list" "$wrongtype" "$(cli INCR list)"
expect "LPUSH on a string" "$wrongtype" "$(cli LPUSH k2 x)"
expect "LRANGE on a string" "$wrongtype" "$(cli LRANGE k2 0 -1)"
expect "LPOP last" b "$(cli LPOP list)"
expect "empty list is deleted" 0 "$(cli EXISTS list)"

expect "MSET" OK "$(cli MSET m1 v1 m2 v2 m3 v3)"
expect "MGET" "v1 v2  v3" "$(cli MGET m1 m2 nosuchkey m3 | tr '\n' ' ' | sed 's/ $//')"
expect "MSET odd" "ERR wrong number of arguments for 'mset' command" "$(cli MSET a 1 b)"

expect "TTL none" -1 "$(cli TTL m1)"
expect "TTL missing" -2 "$(cli TTL nosuchkey)"
expect "EXPIRE" 1 "$(cli EXPIRE m1 100)"
ttl=$(cli TTL m1)
[[ $ttl == 100 || $ttl == 99 ]] || fail "TTL after EXPIRE 100: $ttl"
expect "PERSIST" 1 "$(cli PERSIST m1)"
expect "SET PX" OK "$(cli SET short v PX 150)"
expect "PEXPIRE" 1 "$(cli PEXPIRE m2 150)"
sleep 0.4
expect "lazy expiry GET" "" "$(cli GET short)"
expect "lazy expiry EXISTS" 0 "$(cli EXISTS m2)"
# 300 keys that nobody reads again: the sweeper must remove them.
before=$(field expired_keys "$(cli INFO stats)")
keys_before=$(cli DBSIZE)
for i in $(seq 1 300); do
  k="exp:$i"
  printf '*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n$2\r\nPX\r\n$3\r\n100\r\n' ${#k} "$k"
done | timeout 30 redis-cli -p "$port" --pipe >/dev/null
swept=
for _ in $(seq 1 50); do
  sleep 0.1
  after=$(field expired_keys "$(cli INFO stats)")
  if (( after - before >= 300 )); then swept=1; break; fi
done
[[ -n $swept ]] || fail "the sweeper removed $((after - before)) of 300 expired keys"
expect "DBSIZE after the sweep" "$keys_before" "$(cli DBSIZE)"
expect "unknown command" "ERR unknown command 'NOSUCH', with args beginning with: 'a' " "$(cli NOSUCH a)"
expect "wrong arity" "ERR wrong number of arguments for 'get' command" "$(cli GET)"
echo "correctness: $checks checks passed"

# ---- 2. bad input -------------------------------------------------------------
# raw <bytes (printf %b)>: send, then read until the server closes (5 s max).
raw() {
  exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect"
  printf '%b' "$1" >&3
  timeout 5 cat <&3 | tr -d '\r'
  local rc=${PIPESTATUS[0]}
  exec 3>&-
  [[ $rc -eq 124 ]] && echo "(connection left open)"
  return 0
}
expect "malformed multibulk" "-ERR Protocol error: invalid multibulk length" "$(raw '*abc\r\n')"
expect "bulk over 512 MiB" "-ERR Protocol error: invalid bulk length" "$(raw '*1\r\n$600000000\r\n')"
expect "huge bulk length" "-ERR Protocol error: invalid bulk length" "$(raw '*1\r\n$99999999999999999999\r\n')"
expect "negative bulk length" "-ERR Protocol error: invalid bulk length" "$(raw '*1\r\n$-3\r\n')"
expect "not a bulk" "-ERR Protocol error: expected '\$', got ':'" "$(raw '*2\r\n$3\r\nGET\r\n:1\r\n')"
expect "too many arguments" "-ERR Protocol error: invalid multibulk length" "$(raw '*2000000\r\n')"
expect "reply, then the error" "+PONG
-ERR Protocol error: invalid multibulk length" "$(raw 'PING\r\n*x\r\n')"
# Clients that leave mid-command: nothing is stored, nothing leaks.
for msg in '*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nabc' '*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$500000000\r\nabc' \
           '*3\r\n$3\r\nSET\r\n$4\r\nhalf' '*2' 'PIN'; do
  exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect"
  printf '%b' "$msg" >&3
  exec 3>&-
done
expect "after clients left mid-command" "" "$(cli GET half)"
expect "still alive" PONG "$(cli PING)"
# 10,000 pipelined commands in one write, and 10,000 inline ones.
cli DEL pipe >/dev/null
for _ in $(seq 1 10000); do printf '*2\r\n$4\r\nINCR\r\n$4\r\npipe\r\n'; done >"$work/incr.resp"
out=$(timeout 60 redis-cli -p "$port" --pipe <"$work/incr.resp" 2>&1)
grep -q "errors: 0, replies: 10000" <<<"$out" || fail "10,000 pipelined INCR: $out"
expect "10,000 pipelined INCR" 10000 "$(cli GET pipe)"
pongs=$(for _ in $(seq 1 10000); do printf 'PING\r\n'; done | timeout 30 redis-cli -p "$port" --pipe 2>&1)
grep -q "errors: 0, replies: 10000" <<<"$pongs" || fail "10,000 pipelined inline PING: $pongs"
# A pipeline that mixes errors in: every command gets its own reply.
out=$(printf 'SET s v\r\nLPUSH s x\r\nGET s\r\nNOSUCH\r\nINCR s\r\n' | timeout 10 redis-cli -p "$port" --pipe 2>&1)
grep -q "errors: 3, replies: 5" <<<"$out" || fail "mixed pipeline: $out"
echo "bad input: ok"

# ---- 3. load ---------------------------------------------------------------------
cli DEL counter:__rand_int__ >/dev/null
bench=$(timeout 120 redis-benchmark -p "$port" -t set,get,incr,lpush,lpop -n "$n_load" -c 50 -P 16 -q 2>&1 |
        tr '\r' '\n' | grep 'requests per second')
echo "$bench"
for t in SET GET INCR LPUSH LPOP; do
  grep -q "^$t: .* requests per second" <<<"$bench" || fail "redis-benchmark gave no $t result"
done
# redis-benchmark's INCR key is the literal "counter:__rand_int__" (no -r).
# With -P 16 each client sends whole pipelines of 16, so the count may
# overshoot -n by less than 50 * 16, and is a multiple of 16.
got=$(cli GET counter:__rand_int__)
checks=$((checks + 1))
[[ $got =~ ^[0-9]+$ ]] && (( got >= n_load && got < n_load + 50 * 16 && got % 16 == 0 )) ||
  fail "INCR count after the -P 16 load: $got for -n $n_load"
cli DEL counter:__rand_int__ >/dev/null
timeout 120 redis-benchmark -p "$port" -t incr -n "$n_incr" -c 50 -q >/dev/null 2>&1 ||
  fail "redis-benchmark -t incr failed"
expect "INCR from 50 concurrent clients" "$n_incr" "$(cli GET counter:__rand_int__)"
expect "LPUSH then LPOP leave nothing" 0 "$(cli LLEN mylist)"

# ---- 4. INFO and the frt counters ------------------------------------------------
clients=
for _ in $(seq 1 50); do
  info=$(cli INFO)
  clients=$(field connected_clients "$info")
  [[ $clients == 1 ]] && break
  sleep 0.1
done
expect "connected_clients once the benchmark left" 1 "$clients"
for f in redis_version tcp_port worker_threads used_memory total_commands_processed expired_keys \
         gc_threshold intcache_hits blocks_in_use; do
  [[ -n $(field "$f" "$info") ]] || fail "INFO has no $f"
done
expect "INFO tcp_port" "$port" "$(field tcp_port "$info")"
cmds=$(field total_commands_processed "$info")
(( cmds > 5 * n_load + n_incr + 20000 )) || fail "total_commands_processed is only $cmds"
gc=$(cli FRT.GCSTATS)
gen0=$(field gen0 "$gc")
hits=$(field intcache_hits "$gc")
(( hits > 0 )) || fail "the weak integer cache never hit"
loaded=$(heap)
echo "heap: idle blocks_in_use=$idle_blocks bytes_in_use=$idle_bytes;" \
     "loaded blocks_in_use=$(field blocks_in_use "$loaded") bytes_mapped_peak=$(field bytes_mapped_peak "$loaded")"
echo "gc: $gen0; intcache hits=$hits puts=$(field intcache_puts "$gc")" \
     "cleared_by_callback=$(field intcache_cleared_by_callback "$gc")"

# Back to idle: drop the data, collect, and give workers a safepoint to take
# back the blocks other threads freed into their heaps.
expect "FLUSHALL" OK "$(cli FLUSHALL)"
expect "DBSIZE after FLUSHALL" 0 "$(cli DBSIZE)"
found=$(cli FRT.COLLECT)
[[ $found =~ ^[0-9]+$ ]] || fail "FRT.COLLECT: $found"
back=
for _ in $(seq 1 50); do
  now=$(heap)
  blocks=$(field blocks_in_use "$now") bytes=$(field bytes_in_use "$now")
  if (( blocks <= idle_blocks + 8 && bytes <= idle_bytes + 1024 )); then back=1; break; fi
  sleep 0.1
done
[[ -n $back ]] || fail "the heap did not return to idle: blocks_in_use $blocks (idle $idle_blocks)," \
                      "bytes_in_use $bytes (idle $idle_bytes)"
echo "heap after FLUSHALL + FRT.COLLECT (found $found): blocks_in_use=$blocks bytes_in_use=$bytes" \
     "bytes_mapped=$(field bytes_mapped "$now") slots_used=$(field intcache_slots_used "$(cli FRT.GCSTATS)")"

# ---- 5. shutdown --------------------------------------------------------------------
cli SET survivor v >/dev/null       # something for shutdown to drop
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=
cat "$work/server.out"
[[ $status -eq 0 ]] || fail "the server exited with status $status"
grep -q "frt_shutdown: 0 objects alive" "$work/server.out" || fail "no '0 objects alive' line"
if [[ -s $work/server.err ]]; then
  if grep -qE "ThreadSanitizer|AddressSanitizer|LeakSanitizer|runtime error" "$work/server.err"; then
    fail "sanitizer report on the server's stderr"
  fi
  echo "--- server stderr (no sanitizer reports)"; cat "$work/server.err"
fi
echo "kvserver check ($mode): passed in ${SECONDS} s"

#!/usr/bin/env python3
"""Concurrent read-modify-writes of one key never lose an update (CTest
test kvserver_rmw).

    check_rmw.py <frt-kvserver binary> [normal|tsan|asan]

The server runs with more workers than this machine has CPUs, unpinned, so
workers are preempted in the middle of commands. 16 clients, each on its
own connection and spread over the workers, pipeline their commands at one
key at a time:

1. INCR ctr and LPUSH lst, interleaved: GET ctr and LLEN lst must be exactly
   the number sent (a lost update shows as less).
2. RPOP lst until nil, with INCRBY ctr -1 between: every element pushed
   comes back exactly once, none twice, the emptied list is deleted, and
   ctr is back to 0.
3. SET nx:<r> <client> NX, every client for each r: exactly one client
   gets OK per key, and the key holds that client's value.

The server's key space locks each key's slot for these (a critical section,
keyspace.h); with the locking taken out this test fails.
"""
import os
import re
import socket
import subprocess
import sys
import threading

import check_common

CLIENTS = 16
server_bin = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "normal"
PER_CLIENT = {"normal": 4000, "asan": 1500, "tsan": 600}[mode]
NX_KEYS = {"normal": 400, "asan": 200, "tsan": 100}[mode]
BATCH = 64
wrap, env = check_common.server_wrap_env(mode)

proc = None


def fail(msg):
    check_common.fail(proc, msg)


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        """One reply: int, bytes, None (nil) or str for +simple; raises on -ERR."""
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b":":
            return int(rest)
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("server closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data
        raise RuntimeError("unexpected reply %r" % line)

    def pipeline(self, cmds):
        self.s.sendall(b"".join(cmds))
        return [self.reply() for _ in cmds]

    def call(self, *args):
        return self.pipeline([command(*args)])[0]


def run_clients(port, body):
    """Run body(conn, client_index) on CLIENTS threads at once; errors fail."""
    errors = []
    start = threading.Barrier(CLIENTS)

    def one(i):
        try:
            c = Conn(port)
            start.wait()
            body(c, i)
            c.s.close()
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append("client %d: %r" % (i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        fail("; ".join(errors[:3]))


def main():
    global proc
    workers = max(4, 2 * (os.cpu_count() or 1))
    proc = subprocess.Popen(wrap + [server_bin, "--port", "0", "--threads", str(workers), "--no-pin"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    m = re.search(r"ready on 127\.0\.0\.1:(\d+)", proc.stdout.readline())
    if not m:
        fail("server did not start")
    port = int(m.group(1))

    # 1. INCR and LPUSH on one key each, from every client at once.
    def incr_push(c, i):
        for b in range(0, PER_CLIENT, BATCH):
            cmds = []
            for j in range(b, min(b + BATCH, PER_CLIENT)):
                cmds.append(command("INCR", "ctr"))
                cmds.append(command("LPUSH", "lst", "%d:%d" % (i, j)))
            for r in c.pipeline(cmds):
                if not isinstance(r, int) or r <= 0:
                    raise RuntimeError("INCR/LPUSH replied %r" % (r,))

    run_clients(port, incr_push)
    total = CLIENTS * PER_CLIENT
    ctl = Conn(port)
    got = ctl.call("GET", "ctr")
    if got != str(total).encode():
        fail("%d clients x %d INCR of one key: GET says %r, not %d" % (CLIENTS, PER_CLIENT, got, total))
    got = ctl.call("LLEN", "lst")
    if got != total:
        fail("%d clients x %d LPUSH to one list: LLEN says %r, not %d" % (CLIENTS, PER_CLIENT, got, total))
    print("INCR x %d: %d, LPUSH x %d: length %d" % (total, total, total, total))

    # 2. RPOP the list empty, and count ctr back down, from every client at once.
    popped = [[] for _ in range(CLIENTS)]

    def pop_decr(c, i):
        while True:
            rs = c.pipeline([command("RPOP", "lst"), command("INCRBY", "ctr", -1)] * (BATCH // 2))
            items = rs[0::2]
            for r in rs[1::2]:
                if not isinstance(r, int):
                    raise RuntimeError("INCRBY replied %r" % (r,))
            popped[i].extend(x for x in items if x is not None)
            if None in items:
                return

    run_clients(port, pop_decr)
    items = [x for p in popped for x in p]
    if len(items) != total or len(set(items)) != total:
        fail("concurrent RPOP: %d elements, %d distinct, of %d pushed" % (len(items), len(set(items)), total))
    if ctl.call("EXISTS", "lst") != 0:
        fail("the emptied list still exists")
    # Every client sent INCRBY -1 as often as RPOP, popped or not.
    calls = sum(-(-(len(p) + 1) // (BATCH // 2)) * (BATCH // 2) for p in popped)
    want = total - calls
    got = ctl.call("GET", "ctr")
    if got != str(want).encode():
        fail("INCRBY -1 x %d after %d INCR: GET says %r, not %d" % (calls, total, got, want))
    print("RPOP: %d elements back, each once; INCRBY -1 x %d: %d" % (total, calls, want))

    # 3. SET NX: one winner per key.
    wins = [[] for _ in range(CLIENTS)]

    def set_nx(c, i):
        rs = c.pipeline([command("SET", "nx:%d" % k, "c%d" % i, "NX") for k in range(NX_KEYS)])
        wins[i] = [k for k, r in enumerate(rs) if r == "OK"]

    run_clients(port, set_nx)
    owner = {}
    for i, ks in enumerate(wins):
        for k in ks:
            if k in owner:
                fail("SET nx:%d NX succeeded for clients %d and %d" % (k, owner[k], i))
            owner[k] = i
    if len(owner) != NX_KEYS:
        fail("SET NX: %d of %d keys were set" % (len(owner), NX_KEYS))
    vals = ctl.pipeline([command("GET", "nx:%d" % k) for k in range(NX_KEYS)])
    for k, v in enumerate(vals):
        if v != b"c%d" % owner[k]:
            fail("nx:%d holds %r, its winner was client %d" % (k, v, owner[k]))
    print("SET NX: one winner for each of %d keys" % NX_KEYS)

    ctl.s.close()
    proc.terminate()
    out, err = proc.communicate(timeout=120)
    if proc.returncode != 0:
        print(out[-2000:])
        print(err[-4000:])
        fail("server exit status %d" % proc.returncode)
    print("check_rmw: all passed")


main()

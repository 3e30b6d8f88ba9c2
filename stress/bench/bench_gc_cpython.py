#!/usr/bin/env python3
"""CPython baseline for frt-bench-gc: the same graphs, timed with gc.collect().

frt-bench-gc starts this script once (with the system python3) and drives it
over stdin/stdout, one command per line, one reply line per command, so that
its repetitions interleave with frt's own (a burst of load from another
process lands on both alike). Run by hand, `--selftest` does one small round
of every command and prints the replies.

Graph shape (identical to stress/bench/bench_gc.c, node for node): n objects in
rings of 10 (object i's `next` is the following member of its ring, the last
one points back to the first) and one cross link per object, `cross` = the
object at index lcg() % n, where lcg is the 64-bit LCG below, seeded from the
command. Objects are instances of a two-slot class (__slots__: a container
with exactly two references, like the C struct). "Live" keeps one external
reference per ring (its first member) in a list; "garbage" drops them.

Before anything is measured the interpreter's own objects (modules, types,
functions) are moved to the permanent generation with gc.freeze(), so a full
collection examines only the benchmark's graph, as frt's does.

Commands (replies start with "ok", or "err <text>"):
  hello                      -> ok <python version>
  live N SEED                -> ok <build ns>           build a live graph, kept
  collect                    -> ok <ns> <found>         gc.collect() (full), timed
  drop                       -> ok                      drop the live graph, collect untimed
  garbage N SEED             -> ok <ns> <found>         build, drop, gc.collect() timed
  old N SEED                 -> ok <build ns>           live graph, then a full collection:
                                                        everything in the oldest generation
  young NY SEED RUNS         -> ok <ns> <ns> ...        RUNS times: NY young objects (rings of
                                                        10, each with a cross link to a random
                                                        old object), every other ring held;
                                                        gc.collect(0) timed; then the held rings
                                                        dropped and gc.collect(1) untimed
  dropold                    -> ok
  quit
"""
import gc
import sys
import time

MASK = (1 << 64) - 1
RING = 10


class Node:
    __slots__ = ("next", "cross")


def lcg(x):
    return (x * 6364136223846793005 + 1442695040888963407) & MASK


def build(n, seed, targets=None):
    """n nodes in rings of RING; cross links into targets (default: the new
    nodes themselves). Returns the list of nodes (the caller keeps what it
    wants and deletes the list)."""
    nodes = [Node() for _ in range(n)]
    for r in range(0, n, RING):
        end = min(r + RING, n)
        for i in range(r, end - 1):
            nodes[i].next = nodes[i + 1]
        nodes[end - 1].next = nodes[r]
    pool = nodes if targets is None else targets
    m = len(pool)
    x = seed & MASK
    for i in range(n):
        x = lcg(x)
        nodes[i].cross = pool[(x >> 33) % m] if m else None
    return nodes


class Server:
    def __init__(self):
        self.heads = None
        self.old_heads = None
        self.old_nodes = None

    def cmd_hello(self):
        return "ok CPython %s" % sys.version.split()[0]

    def cmd_live(self, n, seed):
        gc.disable()
        self.heads = None
        gc.collect()
        t0 = time.perf_counter_ns()
        nodes = build(int(n), int(seed))
        self.heads = nodes[::RING]
        del nodes
        t1 = time.perf_counter_ns()
        return "ok %d" % (t1 - t0)

    def cmd_collect(self):
        t0 = time.perf_counter_ns()
        found = gc.collect()
        t1 = time.perf_counter_ns()
        return "ok %d %d" % (t1 - t0, found)

    def cmd_drop(self):
        self.heads = None
        gc.collect()
        return "ok"

    def cmd_garbage(self, n, seed):
        gc.disable()
        nodes = build(int(n), int(seed))
        del nodes
        t0 = time.perf_counter_ns()
        found = gc.collect()
        t1 = time.perf_counter_ns()
        return "ok %d %d" % (t1 - t0, found)

    def cmd_old(self, n, seed):
        gc.disable()
        t0 = time.perf_counter_ns()
        nodes = build(int(n), int(seed))
        self.old_heads = nodes[::RING]
        self.old_nodes = nodes  # a list (one container) of borrowed targets
        del nodes
        t1 = time.perf_counter_ns()
        gc.collect()
        return "ok %d" % (t1 - t0)

    def cmd_young(self, ny, seed, runs):
        ny, seed, runs = int(ny), int(seed), int(runs)
        gc.disable()
        old = self.old_nodes or []
        out = []
        collect = gc.collect
        now = time.perf_counter_ns
        for k in range(runs):
            nodes = build(ny, seed + k, old)
            held = nodes[0::2 * RING]
            del nodes
            t0 = now()
            collect(0)
            t1 = now()
            out.append(t1 - t0)
            del held
            collect(1)
        return "ok " + " ".join(str(t) for t in out)

    def cmd_dropold(self):
        self.old_heads = None
        self.old_nodes = None
        gc.collect()
        return "ok"

    def handle(self, line):
        parts = line.split()
        if not parts:
            return None
        fn = getattr(self, "cmd_" + parts[0], None)
        if fn is None:
            return "err unknown command %r" % parts[0]
        try:
            return fn(*parts[1:])
        except Exception as e:  # report, keep serving
            return "err %s: %s" % (type(e).__name__, e)


def main():
    gc.disable()
    gc.collect()
    gc.freeze()
    s = Server()
    if "--selftest" in sys.argv:
        for line in ["hello", "live 2000 1", "collect", "drop", "garbage 2000 2",
                     "old 2000 3", "young 70 4 3", "dropold"]:
            print(line, "->", s.handle(line))
        return
    for line in sys.stdin:
        if line.strip() == "quit":
            break
        reply = s.handle(line)
        if reply is not None:
            sys.stdout.write(reply + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""More clients than the server may serve (CTest test kvserver_clients).

    check_clients.py <frt-kvserver binary> [normal|tsan|asan]

1. maxclients: the server starts with RLIMIT_NOFILE 128 and the default
   --maxclients, which it must lower to fit (the number is on its ready
   line). 40 clients more than that connect: each of them must read
   "-ERR max number of clients reached" and then end of file, every other
   one must be served (PING -> PONG), and a slot freed by a client that
   leaves must serve a new one.
2. Out of file descriptors: the server starts with room for 150 clients,
   then its RLIMIT_NOFILE is cut to 48 while it runs (prlimit), so accept
   fails with EMFILE long before maxclients. 100 clients connect: each must
   be served or told and closed; none may be left waiting.

In both, while the turned-away clients are waiting, the server must not
spin: over 3 s it may use at most 0.5 s of CPU (a listener woken again and
again by level-triggered epoll uses a whole CPU). The bound is generous on
purpose: this checks a behaviour, not a speed.
"""
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time

import check_common

ERROR = b"-ERR max number of clients reached\r\n"
IDLE_S = 3.0
CPU_MAX_S = 0.5

server_bin = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "normal"
wrap, env = check_common.server_wrap_env(mode)

# This process holds a few hundred sockets.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < 4096:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))

proc = None


def fail(msg):
    check_common.fail(proc, msg)


def on_alarm(sig, frame):
    fail("watchdog: the check took more than 100 s")


signal.signal(signal.SIGALRM, on_alarm)
signal.alarm(100)


def start(nofile, args):
    global proc

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen(wrap + [server_bin, "--port", "0", "--threads", "2"] + args,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, preexec_fn=limit)
    line = proc.stdout.readline()
    m = re.match(r"kvserver: ready on 127\.0\.0\.1:(\d+).*maxclients (\d+)", line)
    if not m:
        fail("no ready line with maxclients: %r" % line)
    return int(m.group(1)), int(m.group(2))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    return s


def command(s, cmd):
    s.sendall(cmd)
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
        chunk = s.recv(65536)
        if not chunk:
            fail("connection closed during %r (got %r)" % (cmd, data))
        data += chunk
    return data


def info(s):
    text = command(s, b"INFO\r\n").decode()
    return {k: v for k, v in re.findall(r"^(\w+):(\S*)\r$", text, re.M)}


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of the whole line (all threads).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_not_spinning(what):
    before = cpu_seconds(proc.pid)
    time.sleep(IDLE_S)
    used = cpu_seconds(proc.pid) - before
    print("%s: the server used %.2f s of CPU in %.0f s with clients waiting" % (what, used, IDLE_S))
    if used > CPU_MAX_S:
        fail("%s: the server spins (%.2f s of CPU in %.0f s)" % (what, used, IDLE_S))


def sort_out(clients, want_rejected, deadline_s=30):
    """Wait until want_rejected clients have been told and closed. Each
    of those must have read exactly ERROR, then end of file. Returns the
    clients not turned away."""
    pending = {c.fileno(): (c, b"") for c in clients}
    rejected = 0
    end = time.monotonic() + deadline_s
    while rejected < want_rejected:
        left = end - time.monotonic()
        if left <= 0:
            fail("only %d of %d clients beyond the limit were turned away" % (rejected, want_rejected))
        ready, _, _ = select.select(list(pending), [], [], left)
        for fd in ready:
            c, got = pending[fd]
            chunk = c.recv(4096)
            if chunk:
                pending[fd] = (c, got + chunk)
                continue
            if got != ERROR:
                fail("a turned-away client read %r, not %r" % (got, ERROR))
            del pending[fd]
            c.close()
            rejected += 1
    for c, got in pending.values():
        if got:
            fail("a served client was sent %r before asking anything" % got)
    return [c for c, _ in pending.values()]


def stop():
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    if proc.returncode != 0 or "frt_shutdown: 0 objects alive" not in out:
        print(out, err)
        fail("unclean shutdown (status %d)" % proc.returncode)
    if mode != "normal" and ("Sanitizer" in err or "runtime error" in err):
        print(err)
        fail("sanitizer report")


# 1. maxclients, lowered to fit RLIMIT_NOFILE 128.
port, maxclients = start(128, [])
if not 1 <= maxclients < 128:
    fail("maxclients %d does not fit RLIMIT_NOFILE 128" % maxclients)
admin = connect(port)
if command(admin, b"PING\r\n") != b"+PONG\r\n":
    fail("PING")
extra = 40
clients = [connect(port) for _ in range(maxclients - 1 + extra)]
check_not_spinning("maxclients")
served = sort_out(clients, extra)
if len(served) != maxclients - 1:
    fail("%d clients served besides the first, wanted %d" % (len(served), maxclients - 1))
for c in served:
    if command(c, b"PING\r\n") != b"+PONG\r\n":
        fail("a served client got no PONG")
i = info(admin)
if int(i["connected_clients"]) != maxclients or int(i["maxclients"]) != maxclients:
    fail("INFO clients: %r" % i)
if int(i["rejected_connections"]) != extra:
    fail("INFO rejected_connections %s, wanted %d" % (i["rejected_connections"], extra))
# Ten leave; ten newcomers are served once the server has seen them go.
for c in served[:10]:
    c.close()
served = served[10:]
end = time.monotonic() + 30
while int(info(admin)["connected_clients"]) > maxclients - 10:
    if time.monotonic() > end:
        fail("closed clients still counted")
    time.sleep(0.05)
for _ in range(10):
    c = connect(port)
    if command(c, b"PING\r\n") != b"+PONG\r\n":
        fail("a newcomer in a freed slot got no PONG")
    served.append(c)
for c in served:
    c.close()
stop()
print("maxclients: %d served, %d turned away with the error line" % (maxclients, extra))

# 2. Out of file descriptors below maxclients.
port, maxclients = start(256, ["--maxclients", "150"])
if maxclients != 150:
    fail("--maxclients 150 gave %d" % maxclients)
admin = connect(port)
if command(admin, b"PING\r\n") != b"+PONG\r\n":
    fail("PING")
resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (48, 48))
total = 100
clients = [connect(port) for _ in range(total)]
check_not_spinning("EMFILE")
end = time.monotonic() + 30
while True:
    i = info(admin)
    accepted = int(i["connected_clients"]) - 1
    rejected = int(i["rejected_connections"])
    if accepted + rejected == total:
        break
    if time.monotonic() > end:
        fail("clients left waiting: %d served, %d turned away of %d" % (accepted, rejected, total))
    time.sleep(0.05)
if rejected == 0 or accepted == 0:
    fail("wanted some clients served and some turned away: %d served, %d turned away" % (accepted, rejected))
served = sort_out(clients, rejected)
if len(served) != accepted:
    fail("%d clients left, %d served" % (len(served), accepted))
for c in served:
    if command(c, b"PING\r\n") != b"+PONG\r\n":
        fail("a served client got no PONG")
    c.close()
admin.close()
stop()
print("EMFILE: %d served, %d turned away with the error line" % (accepted, rejected))
print("check_clients: all passed")

"""What the Python checks of frt-kvserver share: how to start the server in
each mode, and how to fail with its output."""
import os
import sys


def server_wrap_env(mode):
    """The command prefix and environment for the server in mode."""
    wrap = ["setarch", "-R"] if mode == "tsan" else []  # TSan and mmap randomisation
    env = dict(os.environ)
    if mode == "tsan":
        env["TSAN_OPTIONS"] = env.get("TSAN_OPTIONS", "halt_on_error=1") + " exitcode=66"
    return wrap, env


def fail(proc, msg):
    """Print msg and the server's output (killing it), and exit 1."""
    print("FAIL: " + msg)
    if proc is not None:
        proc.kill()
        out, err = proc.communicate()
        print("--- server stdout\n" + out[-2000:])
        print("--- server stderr\n" + err[-4000:])
    sys.exit(1)

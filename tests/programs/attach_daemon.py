"""A long-running Python daemon that leaks Session objects into a Registry,
for `memtrail attach` (tests/attach.rs). Started normally: the hook comes
from the interpreter's site-packages (`memtrail python-hook install`).

    attach_daemon.py STATE [fork]

Prints `worker PID` for a forked worker (with `fork`), then `ready PID`.
Every loop it writes STATE.<pid>: its thread count (/proc/self/task),
whether tracemalloc traces, and the listener's state, as JSON.
"""

import json
import os
import sys
import time
import tracemalloc


class Session:
    def __init__(self, n):
        self.n = n
        self.payload = [bytearray(256) for _ in range(4)]


class Registry:
    def __init__(self):
        self.sessions = {}


registry = Registry()


def report(path):
    try:
        from memtrail_hook import listener

        hook = listener.state()
    except ImportError:
        hook = None
    state = {
        "threads": len(os.listdir("/proc/self/task")),
        "tracing": tracemalloc.is_tracing(),
        "hook": hook,
    }
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(state, f)
    os.rename(tmp, "%s.%d" % (path, os.getpid()))


def main():
    path = sys.argv[1]
    child = None
    parent = os.getpid()
    if len(sys.argv) > 2 and sys.argv[2] == "fork":
        child = os.fork()
        if child:
            print("worker %d" % child, flush=True)
    if child != 0:
        print("ready %d" % os.getpid(), flush=True)
    n = 0
    while True:
        if child == 0 and os.getppid() != parent:
            # The worker ends with the process that forked it (a test that
            # kills the daemon leaves nothing running).
            os._exit(0)
        n += 1
        registry.sessions[n] = Session(n)
        report(path)
        time.sleep(0.02)


main()

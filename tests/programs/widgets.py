"""Instances of one class accumulate: the leak --python-gc and
--python-tracemalloc name. Usage: widgets.py SECONDS [markers|fork]

Every 50 ms it makes 4 Widget objects, each with a 25000-byte payload,
and keeps them all (few objects, many bytes: tracemalloc's snapshots stay
cheap, so its census keeps up with a short interval). Other objects come
and go. With `markers`, it calls `memtrail mark` (from $MEMTRAIL) before
and after its first half; with `fork`, a forked child does all that.
With $WIDGETS_STOP set, it also stops when that file appears (a test stops
it once the recording holds what it needs).
"""

import os
import subprocess
import sys
import time


class Widget:
    def __init__(self, n):
        self.n = n
        self.payload = bytearray(25000)  # ALLOC: the line tracemalloc names


kept = []


def step(i):
    for n in range(4):
        kept.append(Widget(n))
    # Garbage that comes and goes: not a leak.
    scratch = [dict(a=i, b=str(i)) for _ in range(200)]
    del scratch


def mark(label):
    subprocess.run([os.environ["MEMTRAIL"], "mark", label], check=True)


def main():
    seconds = float(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) > 2 else ""
    if mode == "fork":
        # The leak is in a forked child (as in a multiprocessing pool); the
        # parent only waits.
        child = os.fork()
        if child:
            os.waitpid(child, 0)
            print("child %d done" % child, flush=True)
            return
    markers = mode == "markers"
    end = time.monotonic() + seconds
    half = time.monotonic() + seconds / 2
    i = 0
    if markers:
        mark("before step")
    stop = os.environ.get("WIDGETS_STOP")
    while time.monotonic() < end:
        if stop and os.path.exists(stop):
            break
        step(i)
        i += 1
        if markers and half and time.monotonic() >= half:
            mark("after step")
            half = None
        time.sleep(0.05)
    print("made %d widgets" % len(kept), flush=True)


main()

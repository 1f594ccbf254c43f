"""A leak through a shared helper: `make_buffer` allocates for two callers;
`remember` keeps what it gets (the leak), `use_and_drop` does not.
--python-tracemalloc must attribute the leak to `remember`'s call.
Usage: shared_helper.py SECONDS"""

import sys
import time

KEPT = []


def make_buffer():
    return bytearray(20000)  # ALLOC


def remember():
    KEPT.append(make_buffer())  # LEAKING CALLER


def use_and_drop():
    buf = make_buffer()  # CHURNING CALLER
    del buf


end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    remember()
    for _ in range(5):
        use_and_drop()
    time.sleep(0.02)
print("kept %d" % len(KEPT), flush=True)

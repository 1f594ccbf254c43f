"""Labelled scenarios for memtrail's leak analyzer: each shapes its memory,
descriptors or threads in one known way for SECONDS seconds, then exits.

Usage: scenarios.py NAME SECONDS DIR    (DIR: scratch space on a real disk)

Memory that must be given back to the kernel (sawtooth, noise) lives in
anonymous mmaps with every page written, so closing one really lowers RSS
whatever the allocator does.
"""
import mmap
import multiprocessing
import os
import random
import sys
import threading
import time

MIB = 1024 * 1024
PAGE = mmap.PAGESIZE


def touched(size):
    """A private anonymous mapping with every page written (anonymous memory,
    as a heap's) that is resident until closed."""
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for off in range(0, size, PAGE):
        m[off] = 1
    return m


def every(interval, seconds, step):
    """Calls step(i) every `interval` seconds until `seconds` have passed."""
    start = time.monotonic()
    i = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            return
        step(i)
        i += 1
        time.sleep(max(0.0, start + i * interval - time.monotonic()))


def list_append(seconds, _dir):
    leak = []
    every(0.05, seconds, lambda i: leak.extend("x" * 1000 + str(j) for j in range(500)))


def fd_leak(seconds, scratch):
    files = []
    path = os.path.join(scratch, "fd-leak.txt")
    every(0.05, seconds, lambda i: files.append(open(path, "a")))


def thread_leak(seconds, _dir):
    never = threading.Event()

    def start(_i):
        threading.Thread(target=never.wait, daemon=True).start()

    every(0.1, seconds, start)


def plateau(seconds, _dir):
    # A cache bounded at 24 MiB: full within ~1.2 s, then entries are only
    # replaced.
    cache = {}
    rng = random.Random(7)

    def step(i):
        for _ in range(1024):
            key = len(cache) if len(cache) < 24 * 1024 else rng.randrange(24 * 1024)
            cache[key] = bytes(1000) + str(i).encode()

    every(0.05, seconds, step)


def sawtooth(seconds, _dir, keep_per_cycle=0):
    chunks, kept = [], []

    def step(i):
        chunks.append(touched(2 * MIB))
        if len(chunks) == 8:
            for _ in range(keep_per_cycle):
                kept.append(chunks.pop())
            for c in chunks:
                c.close()
            chunks.clear()

    every(0.1, seconds, step)


def noise(seconds, _dir, leak_kib=0):
    # Mean-reverting: each step resizes a pool to a fresh random size.
    rng = random.Random(11)
    pool, leak = [], []

    def step(_i):
        target = rng.randrange(0, 9)
        while len(pool) > target:
            pool.pop().close()
        while len(pool) < target:
            pool.append(touched(MIB))
        if leak_kib:
            leak.append(touched(leak_kib * 1024))

    every(0.1, seconds, step)


def step_once(seconds, _dir):
    held = []
    every(0.1, seconds, lambda i: held.append(touched(32 * MIB)) if i == 15 else None)


def file_read(seconds, scratch):
    # Page cache mapped in: a 64 MiB file read through a shared mapping.
    path = os.path.join(scratch, "file-read.bin")
    block = b"memtrail" * (MIB // 8)
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(block)
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    pages = len(m) // PAGE
    steps = int(seconds / 0.1)
    per = pages // steps + 1
    total = [0]

    def step(i):
        for p in range(i * per, min(pages, (i + 1) * per)):
            total[0] += m[p * PAGE]

    every(0.1, seconds, step)


def _short_child():
    x = [bytes(1000) for _ in range(1000)]
    time.sleep(0.1)
    return len(x)


def mp_short(seconds, _dir):
    def step(_i):
        p = multiprocessing.Process(target=_short_child)
        p.start()
        p.join()

    every(0.25, seconds, step)


def _worker(leaks, seconds):
    held = []

    def step(i):
        data = ["y" * 1000 + str(j) for j in range(500)]
        if leaks:
            held.append(data)

    every(0.05, seconds, step)


def mp_worker_leak(seconds, _dir):
    ctx = multiprocessing.get_context("fork")
    leaker = ctx.Process(target=_worker, args=(True, seconds))
    steady = ctx.Process(target=_worker, args=(False, seconds))
    leaker.start()
    steady.start()
    print(f"leaker {leaker.pid}", flush=True)
    print(f"steady {steady.pid}", flush=True)
    leaker.join()
    steady.join()


SCENARIOS = {
    "list-append": list_append,
    "fd-leak": fd_leak,
    "thread-leak": thread_leak,
    "plateau": plateau,
    "sawtooth": sawtooth,
    "sawtooth-rising-floor": lambda s, d: sawtooth(s, d, keep_per_cycle=1),
    "noise": noise,
    "slow-leak-under-noise": lambda s, d: noise(s, d, leak_kib=128),
    "step": step_once,
    "file-read": file_read,
    "mp-short-children": mp_short,
    "mp-worker-leak": mp_worker_leak,
}

if __name__ == "__main__":
    name, seconds, scratch = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    SCENARIOS[name](seconds, scratch)

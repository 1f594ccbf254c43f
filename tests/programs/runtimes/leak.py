"""A Python program of ordinary objects (dicts and strings, on Python's own
allocator) for SECONDS seconds: `leak` keeps every batch of records in a
global list; `steady` makes the same batches and lets them go; `warmup`
fills a cache with them for the first 60% of SECONDS and then only
replaces entries, so its memory grows and then holds still.
Usage: leak.py leak|steady|warmup SECONDS"""
import sys
import time

mode, seconds = sys.argv[1], float(sys.argv[2])
kept, cache = [], {}
start = time.monotonic()
n = 0
while True:
    elapsed = time.monotonic() - start
    if elapsed >= seconds:
        break
    batch = [{"id": n + i, "name": f"record-{n + i}", "payload": "x" * 100} for i in range(100)]
    n += 100
    if mode == "leak":
        kept.append(batch)
    elif mode == "warmup":
        if elapsed < 0.6 * seconds:
            cache[len(cache)] = batch
        else:
            cache[n % max(1, len(cache))] = batch
    time.sleep(0.01)

"""A short job for `memtrail run --fail-on-leak`: for SECONDS seconds it
either keeps every 256 KiB buffer it allocates (leak: ~25 MiB/s, resident)
or replaces one buffer with the next (steady).
Usage: short_job.py SECONDS leak|steady"""
import sys
import time

seconds, mode = float(sys.argv[1]), sys.argv[2]
kept = []
buf = None
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    if mode == "leak":
        kept.append(bytearray(256 * 1024))  # zero-filled, so resident
    else:
        buf = bytearray(256 * 1024)
    time.sleep(0.01)

"""Leaks 256 KiB every 100 ms (about 2.5 MiB/s, resident, never freed) for
at most SECONDS seconds, the rate `memtrail demo` shows; prints "ready"
first. Usage: steady_leak.py SECONDS"""
import sys
import time

deadline = time.monotonic() + float(sys.argv[1])
leak = []
print("ready", flush=True)
while time.monotonic() < deadline:
    leak.append(bytearray(256 * 1024))  # zero-filled, so resident
    time.sleep(0.1)

"""Leaks 1 MiB every 50 ms for SECONDS seconds while a child process lives
beside it, then exits with status CODE. Usage: leaky.py SECONDS CODE"""
import subprocess
import sys
import time

seconds, code = float(sys.argv[1]), int(sys.argv[2])
child = subprocess.Popen(
    [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
)
leak = []
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    leak.append(bytearray(1024 * 1024))  # never freed
    time.sleep(0.05)
child.stdin.close()
child.wait()
sys.exit(code)

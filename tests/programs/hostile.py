"""Maps a file whose name is given (a hostile one, full of escape
sequences), touches it so it is resident, says "ready", then waits for its
standard input to close. Its own arguments are hostile too.
With HOSTILE_COMM set, its comm (/proc/self/comm) is set to that first.
A line "grow" on standard input maps 8 MiB more of the file and touches it
(a new file-backed region), then says "grown".
Usage: hostile.py PATH [ARGS...]"""
import mmap
import os
import sys

if "HOSTILE_COMM" in os.environ:
    with open("/proc/self/comm", "w") as comm:
        comm.write(os.environ["HOSTILE_COMM"])

f = open(sys.argv[1], "w+b")
f.write(b"x" * 4096)
f.flush()
m = mmap.mmap(f.fileno(), 4096)
m[0] = 1
print("ready", flush=True)
grown = []
for line in sys.stdin:
    if line.strip() == "grow":
        size = 8 << 20
        f.truncate(4096 + size)
        g = mmap.mmap(f.fileno(), 4096 + size)
        for i in range(0, 4096 + size, 4096):
            g[i] = 1
        grown.append(g)
        print("grown", flush=True)

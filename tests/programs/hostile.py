"""Maps a file whose name is given (a hostile one, full of escape
sequences), touches it so it is resident, says "ready", then waits for its
standard input to close. Its own arguments are hostile too.
Usage: hostile.py PATH [ARGS...]"""
import mmap
import sys

f = open(sys.argv[1], "w+b")
f.write(b"x" * 4096)
f.flush()
m = mmap.mmap(f.fileno(), 4096)
m[0] = 1
print("ready", flush=True)
sys.stdin.read()

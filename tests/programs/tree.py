"""A parent whose children come and go on command (one per line on stdin):
  spawn  start a child that lives until told to end; prints its pid
  end    end the newest child and wait for it; prints "ended"
The parent exits when its standard input closes."""
import subprocess
import sys

children = []
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "spawn":
        child = subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"],
            stdin=subprocess.PIPE,
        )
        children.append(child)
        print(child.pid, flush=True)
    elif cmd == "end":
        child = children.pop()
        child.stdin.close()
        child.wait()
        print("ended", flush=True)
for child in children:
    child.stdin.close()
    child.wait()

"""Runs as pid 1 of a new pid namespace (with its own /proc) and makes a
pid be used twice, driven one line at a time on stdin:
  record OUT  start `MEMTRAIL record --all ... -o OUT` (MEMTRAIL from the
              environment); prints "recording"
  first       start a child whose last argument is "first"; prints its pid
  second      end the first child, then start one whose last argument is
              "second" under the same pid, by setting ns_last_pid;
              prints its pid
  end         end the child, stop the recorder with SIGINT and wait for it;
              prints the recorder's exit status
"""
import os
import signal
import subprocess
import sys

recorder = None
child = None


def spawn(name):
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()", name],
        stdin=subprocess.PIPE,
    )


def end(proc):
    proc.stdin.close()
    proc.wait()


for line in sys.stdin:
    cmd, *args = line.split()
    if cmd == "record":
        recorder = subprocess.Popen(
            [os.environ["MEMTRAIL"], "record", "--all", "--detail", "summary",
             "--interval", "10ms", "-o", args[0]]
        )
        print("recording", flush=True)
    elif cmd == "first":
        child = spawn("first")
        print(child.pid, flush=True)
    elif cmd == "second":
        pid = child.pid
        end(child)
        # The next pid this namespace hands out is ns_last_pid + 1.
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        child = spawn("second")
        print(child.pid, flush=True)
    elif cmd == "end":
        end(child)
        recorder.send_signal(signal.SIGINT)
        print(recorder.wait(), flush=True)
        break

"""The longest pause memtrail's Python hook causes, on heaps of N objects.

Usage: python_pause.py [--seconds S] [--markdown] N [N...]

For each N, three runs of a program holding N live container objects (and
leaking 50 small objects a second, so that the hook has growing types to
walk): without the hook, with censuses only (`chains` off), and with
censuses and retention chains. The program's main thread spins, noting
the longest time between two of its iterations: a pause is the time the
hook (or anything else: the program's own garbage collections) kept it
from running. With the hook's thread running Python code, the main thread
still runs every switch interval (5 ms); only C calls that hold the GIL
(`gc.get_objects`, `gc.get_referrers`) pause it longer.

Prints one line of JSON per run, or with --markdown a table.
"""

import json
import os
import subprocess
import sys
import tempfile

WORKER = r"""
import gc, json, os, sys, time
n, mode, seconds, hook_dir, events = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
heap = [[i] for i in range(n)]
class Leaky:
    def __init__(self, i):
        self.items = [i]
LEAKED = []
gc.collect()
longest = {"call": 0.0}
if mode != "off":
    sys.path.insert(0, hook_dir)
    import memtrail_hook
    from memtrail_hook import census, chains, owners

    class TimedGc:
        # The hook's calls into gc, timed: the C calls that walk the whole
        # heap hold the GIL from start to end.
        def __getattr__(self, name):
            f = getattr(gc, name)
            def timed(*a, **k):
                t = time.perf_counter()
                try:
                    return f(*a, **k)
                finally:
                    longest["call"] = max(longest["call"], time.perf_counter() - t)
            return timed

    census.gc = chains.gc = owners.gc = TimedGc()
    memtrail_hook.start(events, {"sources": ["gc"], "interval": 1.0,
                                 "chains": mode == "chains", "chains_every": 2.0})
gaps = []
worst = 0.0
start = prev = time.perf_counter()
end = start + seconds
i = 0
while prev < end:
    now = time.perf_counter()
    gap = now - prev
    if gap > 0.001:
        gaps.append(gap)
    if gap > worst:
        worst = gap
    prev = now
    i += 1
    if i % 2000 == 0:
        LEAKED.append(Leaky(i))
if mode != "off":
    memtrail_hook.stop()
gaps.sort()
p99 = gaps[int(len(gaps) * 0.99)] if gaps else 0.0
print(json.dumps({"objects": len(gc.get_objects()), "worst_ms": worst * 1000, "p99_ms": p99 * 1000,
                  "longest_call_ms": longest["call"] * 1000}))
"""


def run(n, mode, seconds, hook_dir):
    with tempfile.TemporaryDirectory() as d:
        events = os.path.join(d, "events")
        open(events, "w").close()
        out = subprocess.run(
            [sys.executable, "-c", WORKER, str(n), mode, str(seconds), hook_dir, events],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        censuses = chains = 0
        with open(events) as f:
            for line in f:
                if '"census"' in line:
                    censuses += 1
                elif '"retention"' in line:
                    chains += 1
        result.update({"n": n, "mode": mode, "censuses": censuses, "retention_lines": chains})
        return result


def main():
    args = sys.argv[1:]
    seconds = 20.0
    markdown = False
    sizes = []
    while args:
        a = args.pop(0)
        if a == "--seconds":
            seconds = float(args.pop(0))
        elif a == "--markdown":
            markdown = True
        else:
            sizes.append(int(float(a)))
    hook_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python")
    rows = []
    for n in sizes:
        for mode in ("off", "census", "chains"):
            r = run(n, mode, seconds, hook_dir)
            rows.append(r)
            if not markdown:
                print(json.dumps(r), flush=True)
    if markdown:
        print("| live objects | hook | longest pause ms | p99 gap ms | longest gc call ms | censuses | retention lines |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        names = {"off": "none", "census": "censuses", "chains": "censuses + chains"}
        for r in rows:
            print(
                "| %s | %s | %.1f | %.1f | %.1f | %d | %d |"
                % (
                    "{:,}".format(r["objects"]),
                    names[r["mode"]],
                    r["worst_ms"],
                    r["p99_ms"],
                    r["longest_call_ms"],
                    r["censuses"],
                    r["retention_lines"],
                )
            )


main()

"""An allocation-heavy Python workload for `cargo xtask bench native`:
dicts, lists and strings built and dropped, some of them larger than
pymalloc's 512-byte limit (so they reach malloc). Prints its own CPU time
and peak RSS at the end. Usage: python3 alloc_heavy.py ROUNDS"""
import resource
import sys

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
keep = []
for r in range(rounds):
    batch = [{"id": i, "name": "item-%d" % i, "tags": [i, i + 1, i + 2]} for i in range(2000)]
    text = ",".join(item["name"] for item in batch)
    big = [bytes(600 + (i % 900)) for i in range(500)]
    keep = batch[:100] + big[:10]
    del batch, text, big
ru = resource.getrusage(resource.RUSAGE_SELF)
print("cpu_us %d" % int((ru.ru_utime + ru.ru_stime) * 1e6))
print("maxrss_kib %d" % ru.ru_maxrss)

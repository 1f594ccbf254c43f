"""The hook's thread: a census every interval, and now and then a round of
roots and chains, each written to the events channel as lines
(docs/events.md)."""

import os
import sys
import threading
import time

from . import census
from .channel import MAX_LINE, Channel, encode, fitting
from .chains import merge, walk
from .owners import holdings

# Growing types examined per round of chains: the program's own types
# (instances sampled each) and built-in ones.
USER_TYPES = 6
USER_SAMPLES = 4
BUILTIN_TYPES = 3
BUILTIN_SAMPLES = 2
# Types kept in every census line once examined, at most.
STICKY = 16


class Runner:
    def __init__(self, path, options):
        self.path = path
        self.options = options
        self.sources = [s for s in options.get("sources", []) if s in ("gc", "tracemalloc")]
        self.interval = max(0.01, float(options.get("interval", 1.0)))
        self.frames = max(1, int(options.get("frames", 3)))
        every = options.get("chains_every")
        if every is None:
            every = min(60.0, max(1.0, 10 * self.interval))
        self.chains_every = float(every)
        self.chains_budget = float(options.get("chains_budget", 1.0))
        self.chains = bool(options.get("chains", True)) and "gc" in self.sources
        self.stopping = threading.Event()
        self.thread = None
        self.growth = census.Growth(self.chains_every / 2)
        # Types reported with their retention: kept in every census line
        # from then on, so their series go on however small they count.
        self.sticky = []
        self.seen = {}
        self.skipped = census.skipped_files()
        self.next_chains = 0.0

    def alive(self):
        return self.thread is not None and self.thread.is_alive()

    def start(self):
        if not self.sources:
            return
        if "tracemalloc" in self.sources:
            # From the start, in the program's thread: allocations made
            # before are not traced.
            census.start_tracemalloc(self.frames)
        self.thread = threading.Thread(target=self.run, name="memtrail-census", daemon=True)
        self.thread.start()

    def stop(self, timeout):
        self.stopping.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout)

    def run(self):
        try:
            channel = Channel(self.path)
        except OSError:
            return
        self.next_chains = time.monotonic() + self.chains_every
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                for source in self.sources:
                    if source == "gc":
                        self.gc_round(channel)
                    elif source == "tracemalloc":
                        counts = census.tracemalloc_census(self.frames, self.skipped)
                        self.send_census(channel, "tracemalloc", counts, ())
                spent = time.monotonic() - started
                # At most ~10% of the program's time goes to counting.
                self.stopping.wait(max(self.interval - spent, 9 * spent))
        except Exception:
            # The channel is gone (its recorder stopped) or the interpreter
            # is shutting down: stop quietly.
            pass
        finally:
            channel.close()

    def send_census(self, channel, source, counts, first):
        """One census line: the keys in `first` (the growing types chains
        were taken for, so their series exist), then the largest counts."""
        first = [k for k in first if k in counts]
        listed = set(first)
        rest = sorted(
            ((k, v) for k, v in counts.items() if k not in listed),
            key=lambda kv: (-kv[1], kv[0]),
        )

        def make(n):
            chosen = dict((k, counts[k]) for k in first[:n])
            for k, v in rest[: max(0, n - len(chosen))]:
                chosen[k] = v
            return {
                "census": {"source": source, "counts": chosen},
                "pid": os.getpid(),
                "time": time.time(),
            }

        data = fitting(make, census.TOP + len(first))
        if data is not None:
            channel.send(data)

    def gc_round(self, channel):
        now = time.monotonic()
        due = self.chains and now >= self.next_chains
        # The growing types are in every census line (so their series
        # exist however few they count); instances are sampled when chains
        # are due.
        all_users, all_builtins = self.growth.growing(self.builtin_names())
        users, builtins = all_users[:USER_TYPES], all_builtins[:BUILTIN_TYPES]
        wanted = (set(users) | set(builtins)) if due else set()
        counts, builtin, samples, ids = census.gc_census(wanted, USER_SAMPLES, self.seen)
        self._builtin = builtin
        self.growth.add(counts, now)
        first = users + builtins
        first += [k for k in self.sticky if k not in first]
        self.send_census(channel, "gc", counts, first)
        if not due:
            return
        # The census pass is paid for by the census's own spacing; a round
        # of chains waits for what it added.
        walked = time.monotonic()
        events = []
        try:
            if samples:
                events = self.retention(counts, users, builtins, samples)
        finally:
            samples = None
            self.seen = ids
        for event in events:
            data = fit_retention(event)
            if data is not None:
                channel.send(data)
            name = event["retention"]["type"]
            if name not in self.sticky:
                self.sticky = (self.sticky + [name])[-STICKY:]
        spent = time.monotonic() - walked
        # A round of chains takes at most ~5% of the program's time.
        self.next_chains = time.monotonic() + max(self.chains_every, 19 * spent)

    def builtin_names(self):
        return getattr(self, "_builtin", set())

    def retention(self, counts, users, builtins, samples):
        """Walks up from the sampled instances of the growing types and
        measures what each of the program's own types holds; one event per
        type."""
        flat = []
        names = []
        for name in users:
            for s in samples.get(name, [])[:USER_SAMPLES]:
                flat.append(s)
                names.append(name)
        for name in builtins:
            for s in samples.get(name, [])[:BUILTIN_SAMPLES]:
                flat.append(s)
                names.append(name)
        ignore = {id(samples), id(flat)} | {id(v) for v in samples.values()}
        deadline = time.monotonic() + self.chains_budget
        results = walk(flat, deadline, self.skipped, ignore)
        flat = None
        static_ids = set()
        for m in list(sys.modules.values()):
            d = getattr(m, "__dict__", None)
            if isinstance(d, dict):
                static_ids.add(id(d))
        growing = set(users) | set(builtins) | self.growth.rising()
        events = []
        stamp = time.time()
        for name in users + builtins:
            mine = [r for r, n in zip(results, names) if n == name]
            if not mine:
                continue
            chains, owners = merge(mine)
            instances = samples.get(name) or [None]
            native = census.is_native(type(instances[0]))
            held = []
            if name in users:
                # Bounded by owners.MAX_OBJECTS per instance, not by the
                # deadline: a few milliseconds.
                held = holdings(samples.get(name, [])[:USER_SAMPLES], growing, static_ids)
            events.append(
                {
                    "retention": {
                        "source": "gc",
                        "type": name,
                        "native": native,
                        "count": counts.get(name, 0),
                        "sampled": len(mine),
                        "owners": owners,
                        "holds": dict(held[:12]),
                        "chains": chains[:3],
                    },
                    "pid": os.getpid(),
                    "time": stamp,
                }
            )
        return events


def fit_retention(event):
    """The event as a line within MAX_LINE: long steps, then extra chains,
    then holdings are cut until it fits."""
    data = encode(event)
    if len(data) <= MAX_LINE:
        return data
    r = event["retention"]
    for chain in r["chains"]:
        chain["steps"] = [s if len(s) <= 40 else s[:39] + "\u2026" for s in chain["steps"]]
    data = encode(event)
    if len(data) <= MAX_LINE:
        return data
    r["chains"] = r["chains"][:1]
    r["holds"] = dict(list(r["holds"].items())[:4])
    r["owners"] = dict(list(r["owners"].items())[:4])
    data = encode(event)
    return data if len(data) <= MAX_LINE else None

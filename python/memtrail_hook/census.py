"""Counts taken inside the process: live objects by type (gc) and bytes by
allocating traceback (tracemalloc), and which types keep growing
(objgraph's show_growth, kept over several censuses)."""

import gc
import os
import sys
import threading

# The largest counts a census line holds (fewer if the line would not fit).
TOP = 50


def type_name(t):
    """`dict` for built-in types, `module.QualName` for others."""
    module = getattr(t, "__module__", None)
    name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
    if module in (None, "builtins"):
        return name
    return "%s.%s" % (module, name)


def is_builtin(t):
    return getattr(t, "__module__", None) in (None, "builtins")


# Py_TPFLAGS_HEAPTYPE: set for classes defined in Python (and a few made by
# extensions at run time), clear for the interpreter's static types.
_HEAPTYPE = 1 << 9


def is_native(t):
    """Built into the interpreter or an extension module, not a class
    defined in Python."""
    return not (getattr(t, "__flags__", 0) & _HEAPTYPE)


# Since Python 3.11 an instance keeps its attributes inline and makes its
# `__dict__` only when something asks for it: asking would enlarge the
# program's objects. Before, every instance with attributes has one.
_DICT_IS_MADE_ON_DEMAND = sys.version_info >= (3, 11)


def own_dict(o):
    """The `__dict__` of an instance of a class defined in Python, where
    reading it makes nothing (before Python 3.11); else None. Before 3.11 an
    instance refers to its attributes through this dict, so the hook's
    walks meet it between the instance and what it holds."""
    if _DICT_IS_MADE_ON_DEMAND or is_native(type(o)):
        return None
    try:
        d = object.__getattribute__(o, "__dict__")
    except Exception:
        return None
    return d if type(d) is dict else None


def gc_census(wanted=None, per_type=0, seen=None):
    """Live objects by type name, from one pass over gc.get_objects().

    With `wanted` (type names) and `per_type`, also gathers up to
    `per_type` instances of each wanted type, preferring those whose id is
    not in `seen[name]` (instances that were not there last time): the
    objects retention chains start from. The caller must drop them soon.
    Returns (counts by name, the names of native types (see is_native),
    samples by name, ids by name of wanted types).
    """
    counts = {}
    objects = gc.get_objects()
    wanted_types = {}
    fresh = {}
    other = {}
    ids = {}
    for o in objects:
        t = type(o)
        n = counts.get(t)
        if n is None:
            counts[t] = 1
            if wanted and type_name(t) in wanted:
                wanted_types[t] = type_name(t)
        else:
            counts[t] = n + 1
        if not wanted_types:
            continue
        name = wanted_types.get(t)
        if name is None:
            continue
        i = id(o)
        known = ids.setdefault(name, set())
        if len(known) < 20000:
            known.add(i)
        if seen is not None and i not in seen.get(name, ()):
            got = fresh.setdefault(name, [])
        else:
            got = other.setdefault(name, [])
        if len(got) < per_type:
            got.append(o)
    # New instances first; too few (a first round): any.
    samples = {}
    for name in set(fresh) | set(other):
        got = fresh.get(name, [])
        samples[name] = (got + other.get(name, []))[:per_type]
    fresh = other = None
    del objects
    named = {}
    builtin = set()
    for t, n in counts.items():
        key = type_name(t)
        named[key] = named.get(key, 0) + n
        if is_native(t):
            builtin.add(key)
    return named, builtin, samples, ids


class Growth:
    """Which types keep growing: counts kept at a few moments at least
    `spacing` seconds apart (by name, so no type is kept alive); a type is
    a candidate when its count is at a new high above where the window
    started."""

    WINDOW = 5

    def __init__(self, spacing):
        self.history = []
        self.spacing = spacing
        self.last = None

    def add(self, counts, now):
        """Keeps `counts` if the last kept is `spacing` seconds old."""
        if self.last is not None and now - self.last < self.spacing:
            return
        self.last = now
        self.history.append(dict(counts))
        del self.history[: -self.WINDOW]

    def rising(self):
        """Names whose count rose over the window."""
        if len(self.history) < 2:
            return set()
        first, last = self.history[0], self.history[-1]
        return {name for name, n in last.items() if n > first.get(name, 0)}

    def growing(self, builtin):
        """(user types, built-in types) at a new high, most growth first."""
        if len(self.history) < 2:
            return [], []
        first, last = self.history[0], self.history[-1]
        earlier = self.history[:-1]
        found = []
        for name, n in last.items():
            net = n - first.get(name, 0)
            if net <= 0:
                continue
            if n <= max(h.get(name, 0) for h in earlier):
                continue
            found.append((net, name))
        found.sort(key=lambda x: (-x[0], x[1]))
        users = [name for _, name in found if name not in builtin]
        builtins = [name for _, name in found if name in builtin]
        return users, builtins


def start_tracemalloc(frames):
    import tracemalloc

    if not tracemalloc.is_tracing():
        tracemalloc.start(max(1, frames))


def tracemalloc_census(frames, skipped):
    """Bytes held per allocating traceback: the allocating line and up to
    `frames - 1` of its callers, outermost first (`app.py:40 > util.py:7`),
    so that a leak through a shared helper is told apart by its callers.
    The hook's own frames and the import machinery are left out."""
    import tracemalloc

    if not tracemalloc.is_tracing():
        return {}
    frames = max(1, frames)
    snapshot = tracemalloc.take_snapshot()
    counts = {}
    for size, tb in _grouped(snapshot, frames):
        # Oldest frame first, the allocating line last.
        inner = tb[-1]
        if inner[0] in skipped or inner[0].startswith("<frozen importlib"):
            continue
        parts = []
        last = len(tb) - 1
        for i, (name, lineno) in enumerate(tb):
            if name in skipped or name.startswith("<frozen"):
                continue
            if i < last:
                # Callers by file name only: the line says where.
                name = os.path.basename(name)
            parts.append("%s:%d" % (name, lineno))
        if not parts:
            continue
        key = " > ".join(parts)
        counts[key] = counts.get(key, 0) + size
        if len(counts) >= TOP:
            break
    return counts


def _grouped(snapshot, frames):
    """(bytes, ((file, line), ...) oldest first) per allocating traceback
    cut to its `frames` innermost frames, largest first. Sums the raw
    traces directly (no Traceback object per trace: several times cheaper
    than `statistics("traceback")`), falling back to `statistics` if the
    snapshot's layout is not the one known."""
    try:
        sizes = {}
        for trace in snapshot.traces._traces:
            # (domain, size, traceback most recent first[, total frames])
            tb = trace[2][:frames]
            sizes[tb] = sizes.get(tb, 0) + trace[1]
        ordered = sorted(sizes.items(), key=lambda kv: -kv[1])
        return [(size, tuple(reversed(tb))) for tb, size in ordered if tb]
    except Exception:
        group = "lineno" if frames == 1 else "traceback"
        return [
            (stat.size, tuple((f.filename, f.lineno) for f in stat.traceback)[-frames:])
            for stat in snapshot.statistics(group)
        ]


def skipped_files():
    """Files whose allocations are the hook's, not the program's."""
    here = os.path.dirname(os.path.abspath(__file__))
    files = {"<unknown>", threading.__file__}
    for name in os.listdir(here):
        if name.endswith(".py"):
            files.add(os.path.join(here, name))
    try:
        import tracemalloc

        files.add(tracemalloc.__file__)
    except Exception:
        pass
    return files

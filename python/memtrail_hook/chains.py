"""Retention chains: what keeps an object alive, as a person would write it
(`app.cache.SESSIONS` -> `[<key>]` -> `Session.children` -> `[i]`).

objgraph's find_backref_chain, automated and bounded: a breadth-first walk
up the referrers of a few sampled objects at once until each reaches an
anchor, something that lives as long as the program: a module global, a
class attribute, or a local of a running function. One
`gc.get_referrers` call serves a whole level of the walk for every sample
(one pass over the heap in C), the walk has a deadline and a depth limit,
and everything it holds is dropped when it returns; its result is strings.
"""

import gc
import sys
import time
import types

from .census import is_builtin, is_native, own_dict, type_name

# Levels of referrers walked at most, objects per level, and objects per
# gc.get_referrers call (its cost grows with their number past ~16).
MAX_DEPTH = 12
MAX_FRONTIER = 64
CHUNK = 16
# Longest concrete key or name shown in a step.
MAX_NAME = 60

_ANCHOR_TYPES = (types.ModuleType, type)
# The first step of a chain whose top has no referrer the gc can see.
OUTSIDE = "(outside Python's view: C code or the interpreter)"
_SEQUENCES = (list, tuple)


def _short(t):
    """A type's name without its module, as a person writes `Session.children`."""
    return getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")


def _key_repr(k):
    if isinstance(k, (str, int, float, bool, bytes)) or k is None:
        r = repr(k)
    else:
        r = "<%s>" % _short(type(k))
    if len(r) > MAX_NAME:
        r = r[: MAX_NAME - 1] + "\u2026"
    return r


def _dict_key(d, value):
    """The key under which `d` holds `value` (or None; or ('key', k) when
    `value` is a key)."""
    try:
        for k, v in d.items():
            if v is value:
                return ("value", k)
            if k is value:
                return ("key", k)
    except Exception:
        pass
    return None


def _attribute(owner, value):
    """The attribute of `owner` that holds `value`, or None."""
    d = None
    try:
        d = object.__getattribute__(owner, "__dict__")
    except Exception:
        d = None
    if isinstance(d, dict):
        found = _dict_key(d, value)
        if found and found[0] == "value" and isinstance(found[1], str):
            return found[1]
    for cls in type(owner).__mro__:
        for slot in cls.__dict__.get("__slots__", ()) or ():
            try:
                if object.__getattribute__(owner, slot) is value:
                    return slot
            except Exception:
                continue
    return None


class _Step:
    """One step of a chain: its concrete text and the text it takes when
    samples differ there (`['a1b2']` and `[<key>]`)."""

    __slots__ = ("concrete", "abstract")

    def __init__(self, concrete, abstract=None):
        self.concrete = concrete
        self.abstract = abstract if abstract is not None else concrete


def _name(path, module_dicts):
    """The steps of a path of objects, anchor first, sample last."""
    steps = []
    i = 0
    n = len(path)
    first = path[0]
    # The anchor.
    if isinstance(first, types.FrameType):
        var = None
        try:
            for k, v in first.f_locals.items():
                if v is path[1]:
                    var = k
                    break
        except Exception:
            pass
        steps.append(_Step("%s() local %s" % (first.f_code.co_name, var or "?")))
        i = 1
    elif isinstance(first, (types.ModuleType, type)) or id(first) in module_dicts:
        if isinstance(first, types.ModuleType):
            prefix, d, i = first.__name__, path[1] if n > 1 else None, 1
        elif isinstance(first, type):
            prefix, d, i = type_name(first), path[1] if n > 1 else None, 1
        else:
            prefix, d, i = module_dicts[id(first)], first, 0
        if isinstance(d, dict) and i + 1 < n:
            found = _dict_key(d, path[i + 1])
            if found and found[0] == "value":
                key = found[1]
                name = key if isinstance(key, str) else _key_repr(key)
                steps.append(_Step("%s.%s" % (prefix, name)))
                i += 1
            else:
                steps.append(_Step(prefix))
        else:
            steps.append(_Step(prefix))
    elif not (isinstance(first, types.MethodType) and n > 1):
        # (A bound method on top is named by its edge below: `<bound
        # method Conn.close>`.)
        steps.append(_Step("<%s>" % type_name(type(first))))
    # The edges below it: path[i] holds path[i + 1].
    while i + 1 < n:
        holder, held = path[i], path[i + 1]
        if isinstance(holder, dict):
            found = _dict_key(holder, held)
            if found and found[0] == "value":
                steps.append(_Step("[%s]" % _key_repr(found[1]), "[<key>]"))
            elif found:
                steps.append(_Step("(key)"))
            else:
                steps.append(_Step("[?]"))
        elif isinstance(holder, _SEQUENCES) or type(holder).__name__ == "deque":
            index = None
            try:
                for j, v in enumerate(holder):
                    if v is held:
                        index = j
                        break
            except Exception:
                pass
            steps.append(_Step("[%s]" % index if index is not None else "[?]", "[i]"))
        elif isinstance(holder, (set, frozenset)):
            steps.append(_Step("{<member>}"))
        elif isinstance(holder, types.FunctionType):
            # function -> its closure tuple -> a cell -> the value
            var = None
            if i + 3 < n and held is holder.__closure__:
                for name, cell in zip(holder.__code__.co_freevars, held):
                    if cell is path[i + 2]:
                        var = name
                        break
            if var is not None:
                steps.append(_Step("%s.<closure %s>" % (holder.__qualname__, var)))
                i += 3
                continue
            if held is getattr(holder, "__dict__", None) and i + 2 < n:
                found = _dict_key(held, path[i + 2])
                if found and found[0] == "value":
                    steps.append(_Step("%s.%s" % (holder.__qualname__, found[1])))
                    i += 2
                    continue
            steps.append(_Step("%s.<%s>" % (holder.__qualname__, type_name(type(held)))))
        elif isinstance(holder, types.MethodType):
            steps.append(_Step("<bound method %s>" % holder.__func__.__qualname__))
        elif type(holder).__name__ == "cell":
            steps.append(_Step("<cell>"))
        elif isinstance(holder, (types.ModuleType, type)):
            steps.append(_Step(type_name(holder) if isinstance(holder, type) else holder.__name__))
        else:
            # An instance: through its __dict__, or a slot or inline value.
            d = None
            try:
                d = object.__getattribute__(holder, "__dict__")
            except Exception:
                d = None
            if d is held and i + 2 < n:
                found = _dict_key(d, path[i + 2])
                name = found[1] if found and found[0] == "value" else "?"
                steps.append(_Step("%s.%s" % (_short(type(holder)), name)))
                i += 2
                continue
            attr = _attribute(holder, held)
            if attr is not None:
                steps.append(_Step("%s.%s" % (_short(type(holder)), attr)))
            else:
                steps.append(_Step("<%s>" % type_name(type(holder))))
        i += 1
    return steps


def _owner(path, sample):
    """The first object above the sample (anchor excluded) that is an
    instance of a program's own type other than the sample's: what the
    sample hangs off. None when it hangs straight off the anchor."""
    t = type(sample)
    for o in reversed(path[1:-1]):
        ot = type(o)
        if ot is t or is_builtin(ot):
            continue
        if isinstance(o, (types.ModuleType, type, types.FrameType, types.FunctionType, types.MethodType)):
            continue
        if type(o).__module__ in ("collections", "weakref", "_weakrefset", "types"):
            continue
        return type_name(ot)
    return None


def walk(samples, deadline, hook_files, ignore_ids):
    """For each sample, (steps, owner) or None when no anchor was found in
    time: breadth-first up the referrers of all samples at once.

    `ignore_ids`: ids of the caller's own containers holding samples.
    Holds the samples and the objects on their paths only until it returns.
    """
    module_dicts = {}
    for name, m in list(sys.modules.items()):
        d = getattr(m, "__dict__", None)
        if isinstance(d, dict):
            module_dicts[id(d)] = name
    # Frames of running functions are referrers only once they exist as
    # objects: make them, except the hook's own. (No reference to this
    # walk's own frame is kept: it would make a cycle of everything here,
    # freed only by a full collection.)
    frames = []
    try:
        for thread_id, f in sys._current_frames().items():
            while f is not None:
                if f.f_code.co_filename not in hook_files:
                    frames.append(f)
                f = f.f_back
    except Exception:
        pass

    # The program's own types among the samples': their instances above a
    # sample are its peers. (Built-in types sampled alongside, such as
    # dict and list, are the very containers that hold things.)
    sample_types = {type(x) for x in samples if not is_native(type(x))}
    # The key sets of the samples' own __dict__s, once a level is too wide.
    peer_shapes = None
    n = len(samples)
    # Per node id: the node, and per origin sample index the node below it
    # on that sample's way up (None for the sample itself).
    nodes = {}
    below = {}
    for s_index, s in enumerate(samples):
        nodes[id(s)] = s
        below.setdefault(id(s), {})[s_index] = None
    frontier = {}
    for s_index, s in enumerate(samples):
        frontier.setdefault(id(s), set()).add(s_index)
    results = [None] * n
    open_origins = set(range(n))
    dead_ends = {}
    skip = set(ignore_ids)
    skip.update((id(samples), id(nodes), id(below), id(frames), id(frontier)))

    def path_of(anchor_id, origin):
        path = []
        current = anchor_id
        guard = 0
        while current is not None and guard <= MAX_DEPTH + 2:
            path.append(nodes[current])
            current = below[current].get(origin)
            guard += 1
        return path

    depth = 0
    while frontier and open_origins and depth < MAX_DEPTH and time.monotonic() < deadline:
        depth += 1
        level = list(frontier)
        cut = set()
        if len(level) > MAX_FRONTIER:
            # Keep the likeliest owners when a level is too wide to walk
            # whole. An object shared by many peers (a registry that each
            # of its entries points back to, like logging's Manager from
            # every Logger) has thousands of referrers of the sampled
            # types: back-references, not owners. Containers and objects
            # of other types go first; peers of the samples last.
            if peer_shapes is None:
                peer_shapes = _dict_shapes(samples)
            level.sort(key=lambda i: _rank(nodes[i], sample_types, peer_shapes))
            for i in level[MAX_FRONTIER:]:
                cut.update(frontier[i])
            level = level[:MAX_FRONTIER]
        next_frontier = {}
        # Origins some referrer was found for at this level, and whether
        # the level was walked whole (not cut short by the deadline).
        reached = set()
        whole = True
        # gc.get_referrers compares every reference in the heap with each
        # target: a call per few targets keeps each pause to about one
        # pass over the heap.
        for start in range(0, len(level), CHUNK):
            if time.monotonic() >= deadline:
                whole = False
                break
            targets = tuple(nodes[i] for i in level[start : start + CHUNK])
            skip.add(id(targets))
            referrers = gc.get_referrers(*targets)
            skip.add(id(referrers))
            target_ids = {id(t) for t in targets}
            for r in referrers:
                rid = id(r)
                if rid in skip:
                    continue
                if isinstance(r, types.FrameType):
                    if r.f_code.co_filename in hook_files:
                        continue
                held = [c for c in gc.get_referents(r) if id(c) in target_ids]
                if not held:
                    continue
                if rid not in nodes:
                    nodes[rid] = r
                anchor = (
                    isinstance(r, _ANCHOR_TYPES)
                    or isinstance(r, types.FrameType)
                    or rid in module_dicts
                )
                for c in held:
                    for origin in frontier.get(id(c), ()):
                        if origin not in open_origins:
                            continue
                        reached.add(origin)
                        mine = below.setdefault(rid, {})
                        if origin in mine:
                            continue
                        mine[origin] = id(c)
                        if anchor:
                            path = path_of(rid, origin)
                            try:
                                results[origin] = (
                                    _name(path, module_dicts),
                                    _owner(path, samples[origin]),
                                )
                            except Exception:
                                results[origin] = None
                            open_origins.discard(origin)
                        else:
                            next_frontier.setdefault(rid, set()).add(origin)
                held = None
                if time.monotonic() >= deadline:
                    whole = False
                    break
            referrers = None
            targets = None
        if whole:
            # An origin none of whose objects at this level has a referrer
            # the gc can see is held from outside Python's view: by C code
            # (an extension's registry, atexit's callbacks) or the
            # interpreter, or by a running function's local (looked for
            # below). Remember where its way up ends.
            for i in level:
                for origin in frontier[i]:
                    if origin in open_origins and origin not in reached and origin not in cut:
                        dead_ends.setdefault(origin, i)
        frontier = {
            k: {o for o in v if o in open_origins} for k, v in next_frontier.items()
        }
        frontier = {k: v for k, v in frontier.items() if v}
    if open_origins and time.monotonic() < deadline:
        _frame_locals(frames, nodes, below, open_origins, results, samples, path_of, module_dicts)
    for origin, top in dead_ends.items():
        if results[origin] is None:
            path = path_of(top, origin)
            try:
                results[origin] = (
                    [_Step(OUTSIDE)] + _name(path, module_dicts),
                    # Every object on the way is a candidate owner: the
                    # top is no anchor.
                    _owner([None] + path, samples[origin]),
                )
            except Exception:
                results[origin] = None
    nodes.clear()
    below.clear()
    del frames[:]
    return results


def _dict_shapes(samples):
    """The key sets of the samples' own `__dict__`s: a dict with one of
    them is most likely the `__dict__` of a peer (before Python 3.11 an
    instance refers through its `__dict__`, a dict like any other)."""
    shapes = set()
    for x in samples:
        d = own_dict(x)
        if d:
            shapes.add(frozenset(d))
    return shapes


def _rank(obj, sample_types, peer_shapes=()):
    """Which nodes of a too-wide level to walk first: containers (and the
    dicts of modules and classes) 0, other objects 1, objects of a sampled
    type and dicts shaped like their `__dict__`s (peers of the samples) 2."""
    t = type(obj)
    if t in sample_types:
        return 2
    if t is dict and peer_shapes and 0 < len(obj) <= 64:
        try:
            if frozenset(obj) in peer_shapes:
                return 2
        except TypeError:
            pass
    if t in (dict, list, tuple, set, frozenset, types.MappingProxyType) or isinstance(
        obj, (types.FrameType, types.ModuleType, type)
    ):
        return 0
    return 1


def _frame_locals(frames, nodes, below, open_origins, results, samples, path_of, module_dicts):
    """Since Python 3.11 a running function's locals are not among the
    referrers gc finds: for samples still without an anchor, looks for the
    objects met on their way up among the locals of the running frames.
    (Reading `f_locals` leaves a snapshot of the locals on the frame until
    the next read or the frame's end, in 3.11 and 3.12: it is read only
    here, when nothing else keeps the sample.)"""
    for frame in frames:
        if not open_origins:
            return
        if frame.f_code.co_name == "<module>":
            continue  # its locals are its module's globals, walked already
        try:
            local_values = list(frame.f_locals.values())
        except Exception:
            continue
        for v in local_values:
            vid = id(v)
            mine = below.get(vid)
            if mine is None:
                continue
            for origin in [o for o in mine if o in open_origins]:
                fid = id(frame)
                nodes[fid] = frame
                below.setdefault(fid, {})[origin] = vid
                path = path_of(fid, origin)
                try:
                    results[origin] = (_name(path, module_dicts), _owner(path, samples[origin]))
                except Exception:
                    results[origin] = None
                open_origins.discard(origin)
        local_values = None


def merge(results):
    """Chains of one type's samples grouped by shape: where samples differ
    (dict keys, list indices) a step takes its abstract form. Returns
    [{"steps": [...], "instances": k}] most instances first, and the owner
    types with how many samples hang off each."""
    groups = {}
    owners = {}
    for r in results:
        if r is None:
            continue
        steps, owner = r
        if owner is not None:
            owners[owner] = owners.get(owner, 0) + 1
        shape = tuple(s.abstract for s in steps)
        groups.setdefault(shape, []).append(steps)
    chains = []
    for shape, members in groups.items():
        texts = []
        for j, abstract in enumerate(shape):
            concrete = {m[j].concrete for m in members}
            texts.append(concrete.pop() if len(concrete) == 1 else abstract)
        chains.append({"steps": texts, "instances": len(members)})
    chains.sort(key=lambda c: (-c["instances"], len(c["steps"]), c["steps"]))
    return chains, owners

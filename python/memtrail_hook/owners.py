"""What one instance of a growing type holds: the objects reachable from it
through its own containers, counted by type (`each Session holds ~20 dict,
3 list`). Shared objects (reached from more than one sampled instance:
a configuration, a parent) are not counted, and the walk does not enter
modules, classes, functions' globals, nor instances of the program's
classes that do not grow (a shared service, a registry)."""

import gc
import types

from .census import is_native, own_dict, type_name

# Objects visited at most per instance.
MAX_OBJECTS = 2000

_STOP = (type, types.ModuleType, types.FrameType, types.CodeType)


def holdings(samples, growing, static_ids):
    """Average objects held per instance, by type name, over `samples`
    (instances of one type), most first. Built-in objects are entered, and
    instances of classes whose names are in `growing`; objects in
    `static_ids` (module and class dicts) never."""
    if not samples:
        return []
    own_type = type(samples[0])
    reached = []
    for s in samples:
        seen = {id(s): None}
        queue = [s]
        counted = {}
        while queue and len(seen) < MAX_OBJECTS:
            o = queue.pop()
            try:
                referents = gc.get_referents(o)
            except Exception:
                continue
            if isinstance(o, types.FunctionType):
                # A function holds its closure, not its globals or code.
                referents = [c for c in referents if c is o.__closure__]
            # An instance's own __dict__ is part of the instance, not an
            # object it holds.
            its_dict = own_dict(o)
            for c in referents:
                i = id(c)
                if i in seen or i in static_ids or not gc.is_tracked(c):
                    continue
                if c is its_dict:
                    seen[i] = None
                    queue.append(c)
                    continue
                t = type(c)
                if isinstance(c, _STOP) or t is own_type:
                    continue
                name = type_name(t)
                if not is_native(t) and name not in growing:
                    continue
                seen[i] = None
                counted[i] = name
                queue.append(c)
            referents = None
        reached.append(counted)
    # Objects reached from several instances are shared, not held.
    times = {}
    for counted in reached:
        for i in counted:
            times[i] = times.get(i, 0) + 1
    totals = {}
    for counted in reached:
        for i, name in counted.items():
            if times[i] == 1:
                totals[name] = totals.get(name, 0) + 1
    n = len(samples)
    out = [(name, int(round(total / n))) for name, total in totals.items()]
    out = [(name, k) for name, k in out if k > 0]
    out.sort(key=lambda x: (-x[1], x[0]))
    return out

# memtrail's Python hook, put first on PYTHONPATH by
# `memtrail run --python-gc / --python-tracemalloc`. Python imports
# `sitecustomize` at startup; this one starts a daemon thread that writes a
# census to the events channel ($MEMTRAIL_EVENTS) every interval, then runs
# the sitecustomize that would have run without it.
#
# Python 3.8+ syntax only. It must never break or noticeably slow the
# program: everything is caught, a census that takes long makes the next
# one wait longer (at most ~10% of the time is spent counting), and when the
# channel is gone it stops quietly. The format is in docs/events.md.

import os as _os
import sys as _sys


def _memtrail_chain():
    """Runs the next sitecustomize on sys.path, as if this one were not here."""
    try:
        import importlib.machinery
        import importlib.util

        here = _os.path.realpath(
            _os.environ.get("MEMTRAIL_PYTHON_DIR") or _os.path.dirname(__file__)
        )
        rest = [p for p in _sys.path if _os.path.realpath(p or ".") != here]
        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
        if spec is None or spec.loader is None:
            return
        module = importlib.util.module_from_spec(spec)
        _sys.modules["sitecustomize"] = module
        spec.loader.exec_module(module)
    except Exception:
        import traceback

        # What Python itself does with a failing sitecustomize.
        print("Error in sitecustomize (run by memtrail's hook):", file=_sys.stderr)
        traceback.print_exc()


def _memtrail_start():
    import json
    import threading
    import time

    path = _os.environ.get("MEMTRAIL_EVENTS")
    sources = [s for s in _os.environ.get("MEMTRAIL_PYTHON", "").split(",") if s]
    if not path or not sources:
        return
    try:
        interval = max(0.01, float(_os.environ.get("MEMTRAIL_PYTHON_INTERVAL", "1")))
    except ValueError:
        interval = 1.0
    top = 50
    # A line up to PIPE_BUF bytes is written to a FIFO in one piece, never
    # interleaved with another process's line.
    max_line = 4096
    here = _os.path.abspath(__file__)

    skipped = {here, "<unknown>", threading.__file__}
    if "tracemalloc" in sources:
        import tracemalloc

        skipped.add(tracemalloc.__file__)
        if not tracemalloc.is_tracing():
            tracemalloc.start()

    def type_name(t):
        module = getattr(t, "__module__", None)
        name = getattr(t, "__qualname__", None) or getattr(t, "__name__", "?")
        if module in (None, "builtins"):
            return name
        return "%s.%s" % (module, name)

    def gc_counts():
        import gc

        counts = {}
        for o in gc.get_objects():
            t = type(o)
            counts[t] = counts.get(t, 0) + 1
        named = {}
        for t, n in counts.items():
            key = type_name(t)
            named[key] = named.get(key, 0) + n
        return named

    def tracemalloc_counts():
        import tracemalloc

        if not tracemalloc.is_tracing():
            return {}
        counts = {}
        # Filtering the statistics rather than the snapshot's traces:
        # the same result, for much less work.
        for stat in tracemalloc.take_snapshot().statistics("lineno"):
            frame = stat.traceback[0]
            if frame.filename in skipped or frame.filename.startswith("<frozen importlib"):
                continue
            counts["%s:%d" % (frame.filename, frame.lineno)] = stat.size
            if len(counts) >= top:
                break
        return counts

    counters = {"gc": gc_counts, "tracemalloc": tracemalloc_counts}

    def line(source, counts, n):
        best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        event = {
            "census": {"source": source, "counts": dict(best)},
            "pid": _os.getpid(),
            "time": time.time(),
        }
        return (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")

    def fitting(source, counts):
        n = top
        while n > 0:
            data = line(source, counts, n)
            if len(data) <= max_line:
                return data
            n = n * 3 // 4
        return None

    def run():
        try:
            fd = _os.open(path, _os.O_WRONLY | _os.O_NONBLOCK | _os.O_APPEND)
        except OSError:
            return
        try:
            while True:
                started = time.monotonic()
                for source in sources:
                    counter = counters.get(source)
                    if counter is None:
                        continue
                    data = fitting(source, counter())
                    if data is None:
                        continue
                    try:
                        _os.write(fd, data)
                    except BlockingIOError:
                        pass  # the channel is full: skip this one
                spent = time.monotonic() - started
                # At most ~10% of the program's time goes to counting.
                time.sleep(max(interval - spent, 9 * spent))
        except Exception:
            # The channel is gone (its recorder stopped) or the interpreter
            # is shutting down: stop quietly.
            pass
        finally:
            try:
                _os.close(fd)
            except Exception:
                pass

    def start():
        try:
            threading.Thread(target=run, name="memtrail-census", daemon=True).start()
        except Exception:
            pass

    start()
    # A forked child (multiprocessing) has no threads but ours to copy:
    # give it its own, counting under its own pid.
    if hasattr(_os, "register_at_fork"):
        _os.register_at_fork(after_in_child=start)


try:
    _memtrail_start()
except Exception:
    pass
_memtrail_chain()

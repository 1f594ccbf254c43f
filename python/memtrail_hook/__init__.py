"""memtrail's hook inside Python programs: censuses (objects by type, bytes
by allocating traceback), the roots among growing types and the chains of
references that keep them alive, written to memtrail's events channel
(docs/events.md). Pure Python, standard library only, Python 3.8+.

    import memtrail_hook
    memtrail_hook.start("/tmp/app.events", {"sources": ["gc"], "interval": 1.0})
    ...
    memtrail_hook.stop()

`memtrail run --python-gc` installs it with a `sitecustomize` that calls
`start_from_environment()`. Modules: `census` (counting and growth),
`chains` (retention chains), `owners` (what one instance holds),
`channel` (the line protocol), `runner` (the thread that schedules them).

It must never break or noticeably slow the program: every error is caught,
its work is spaced out so it takes a bounded share of the time, it holds
the objects it examines only while it examines them, and when the channel
is gone it stops quietly.
"""

import os

__all__ = ["start", "stop", "start_from_environment", "DEFAULTS"]

DEFAULTS = {
    # What to count: "gc" (objects by type), "tracemalloc" (bytes by site).
    "sources": ["gc"],
    # Seconds between censuses.
    "interval": 1.0,
    # Frames of each tracemalloc key: the allocating line and its callers.
    "frames": 3,
    # Roots and retention chains of growing types (with "gc").
    "chains": True,
    # Seconds between two rounds of chains at least (default: 10
    # intervals, from 1 to 60 s); a round that took t seconds also waits 19 t.
    "chains_every": None,
    # Seconds one round of chains may take before it gives up.
    "chains_budget": 1.0,
}

_runner = None
# The running runner was started by an attach request (listener.py): only
# a detach stops it, and a forked child does not inherit it.
_attached = False


def start(events_path, options=None, attached=False):
    """Starts the hook's thread, writing to the events channel at
    `events_path`; `options` override DEFAULTS. Does nothing if it runs
    already. Never raises."""
    global _runner, _attached
    try:
        if _runner is not None and _runner.alive():
            return
        # Imported here: the dormant listener imports this package at
        # every interpreter's start-up and must stay cheap.
        from .runner import Runner

        merged = dict(DEFAULTS)
        merged.update(options or {})
        _runner = Runner(events_path, merged)
        _attached = attached
        _runner.start()
    except Exception:
        _runner = None


def stop(timeout=2.0):
    """Stops the hook's thread (waiting up to `timeout` seconds). Never raises."""
    global _runner, _attached
    runner, _runner = _runner, None
    _attached = False
    if runner is not None:
        try:
            runner.stop(timeout)
        except Exception:
            pass


def stop_attached(timeout=2.0):
    """Stops the runner if an attach request started it. Never raises."""
    if _attached:
        stop(timeout)


def _forget_in_child():
    global _runner, _attached
    if _attached:
        _runner, _attached = None, False


def _after_fork_in_child():
    # A forked child has no threads but the one that forked: give it a
    # hook of its own, counting under its own pid (not one an attach
    # request started: that request was addressed to the parent).
    global _runner
    runner, _runner = _runner, None
    if runner is not None and not _attached:
        start(runner.path, runner.options)


def start_from_environment():
    """Starts as `memtrail run` asks through the environment:
    MEMTRAIL_EVENTS (the channel), MEMTRAIL_PYTHON (sources, comma
    separated), MEMTRAIL_PYTHON_INTERVAL (seconds) and
    MEMTRAIL_PYTHON_FRAMES (tracemalloc frames)."""
    path = os.environ.get("MEMTRAIL_EVENTS")
    sources = [s for s in os.environ.get("MEMTRAIL_PYTHON", "").split(",") if s]
    if not path or not sources:
        return
    options = {"sources": sources}
    try:
        options["interval"] = max(0.01, float(os.environ.get("MEMTRAIL_PYTHON_INTERVAL", "1")))
    except ValueError:
        pass
    try:
        options["frames"] = max(1, int(os.environ.get("MEMTRAIL_PYTHON_FRAMES", "3")))
    except ValueError:
        pass
    start(path, options)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""The dormant attach listener (docs/events.md, "Attach requests").

`memtrail python-hook install` puts a `.pth` line into an interpreter's
site-packages that calls `install()` at start-up. Dormant, it does nothing
to the program: no census, no tracemalloc. One thread, named
`memtrail-hook` (so `memtrail attach` can tell at once that a process
carries it), sleeps in `recv` on an abstract Unix datagram socket
`memtrail-attach-<pid>` (the bell; no file) and, when rung or every IDLE
seconds, does one `os.stat` of the request path for its own pid:

    <base>/<pid>.json    base = $MEMTRAIL_ATTACH_DIR or /tmp/memtrail-attach-<uid>

It acts on a request only if the directory is owned by its own uid with
mode 0700 (no access for group or others) and not a symbolic link, and the
request file is owned by its uid too: only the process's owner (or root,
who hands both to the owner) can write one. A request is data only
({"id", "events", "options"}), never code. On one it starts the census
runner writing to the request's events channel and writes
`<base>/<pid>.ack` holding the request's id; when the request goes away
(or its id changes) it stops the runner, stops tracemalloc if it started
it, removes the ack and is dormant again.

Only `os`, `_thread`, `time` and `_socket` (the C module) are imported at
start-up; the rest is imported on the first request. Anyone may ring the
bell: it only makes the thread look at the request path, whose owner and
mode it checks.
"""

import os
import time
import _thread

# Seconds between two looks at the request path while attached (or when
# the bell socket cannot be had), and while dormant.
POLL = 1.0
IDLE = 60.0
# Seconds the thread waits before anything else: a start-up costs the
# program only the thread's creation, and short scripts end before it
# does anything at all.
DELAY = 0.5
NAME = "memtrail-hook"

# "looks": how many times the request path was looked at (for tests).
_state = {"pid": None, "request": None, "tracemalloc": False, "looks": 0}


def base_dir():
    return os.environ.get("MEMTRAIL_ATTACH_DIR") or "/tmp/memtrail-attach-%d" % os.getuid()


def install():
    """Starts the listener thread for this process (once per pid). Never raises."""
    try:
        if os.environ.get("MEMTRAIL_HOOK") == "off":
            return
        pid = os.getpid()
        if _state["pid"] == pid:
            return
        _state["pid"] = pid
        _state["request"] = None
        _state["tracemalloc"] = False
        _thread.start_new_thread(_loop, (pid,))
        if not _state.get("forks") and hasattr(os, "register_at_fork"):
            _state["forks"] = True
            os.register_at_fork(after_in_child=_after_fork)
    except Exception:
        pass


def _after_fork():
    # The child has only the thread that forked: a listener of its own,
    # answering for its own pid. Whatever the parent was attached to is
    # the parent's, not the child's.
    try:
        bell = _state.pop("bell", None)
        if bell is not None:
            # The parent's: the child binds its own.
            bell.close()
        was = _state["request"]
        _state["request"] = None
        _state["tracemalloc"] = False
        if was is not None:
            import memtrail_hook

            memtrail_hook._forget_in_child()
        install()
    except Exception:
        pass


def _name_thread():
    try:
        tid = _thread.get_native_id()
        with open("/proc/self/task/%d/comm" % tid, "w") as f:
            f.write(NAME)
    except Exception:
        pass


def _bell(pid):
    """An abstract Unix datagram socket named `memtrail-attach-<pid>`:
    `memtrail attach` rings it after writing or removing a request, so the
    thread sleeps in recv instead of polling. No file, gone with the
    process. None if it cannot be had (then the thread polls)."""
    try:
        import _socket

        bell = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
        bell.bind(b"\0memtrail-attach-%d" % pid)
        return bell
    except Exception:
        return None


def _loop(pid):
    time.sleep(DELAY)
    if _state["pid"] != pid:
        return
    _name_thread()
    base = base_dir()
    request = os.path.join(base, "%d.json" % pid)
    bell = _bell(pid)
    _state["bell"] = bell
    seen = None
    while _state["pid"] == pid:
        try:
            st = os.stat(request)
            key = (st.st_ino, st.st_mtime_ns)
        except OSError:
            key = None
        except Exception:
            # The interpreter is finalizing.
            return
        if key != seen:
            seen = key
            try:
                _changed(pid, base, request, key is not None)
            except Exception:
                pass
        attached = _state["request"] is not None
        if attached:
            try:
                _reap(base, pid)
            except Exception:
                pass
        _state["looks"] += 1
        # Attached: look every POLL (the recorder may vanish unannounced).
        # Dormant: wait for the bell, looking anyway every IDLE seconds.
        wait = POLL if attached or bell is None else IDLE
        try:
            if bell is None:
                time.sleep(wait)
            else:
                bell.settimeout(wait)
                try:
                    bell.recv(64)
                except OSError:
                    pass
        except Exception:
            return


def _trusted(base, request):
    uid = os.getuid()
    d = os.lstat(base)
    import stat

    if not stat.S_ISDIR(d.st_mode) or d.st_uid != uid or (d.st_mode & 0o077):
        return False
    f = os.lstat(request)
    return stat.S_ISREG(f.st_mode) and f.st_uid == uid


def _changed(pid, base, request, present):
    ack = os.path.join(base, "%d.ack" % pid)
    data = None
    if present and _trusted(base, request):
        import json

        with open(request, "rb") as f:
            data = json.loads(f.read(65536).decode("utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("events"), str):
            data = None
    current = _state["request"]
    if current is not None and (data is None or data.get("id") != current.get("id")):
        _detach()
        try:
            os.unlink(ack)
        except OSError:
            pass
    if data is not None and _state["request"] is None:
        _attach(data)
        tmp = ack + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(data.get("id", "")))
        os.rename(tmp, ack)


def _reap(base, pid):
    # The recorder went away without withdrawing (killed): its channel is
    # gone and the runner stopped; stop the rest (tracemalloc) too. The
    # request left behind is not acted on again (only changes are).
    import memtrail_hook

    runner = memtrail_hook._runner
    if runner is None or not runner.alive():
        _detach()
        try:
            os.unlink(os.path.join(base, "%d.ack" % pid))
        except OSError:
            pass


def _attach(data):
    import memtrail_hook
    import tracemalloc

    options = data.get("options") or {}
    clean = {}
    sources = [s for s in options.get("sources", ["gc"]) if s in ("gc", "tracemalloc")]
    clean["sources"] = sources or ["gc"]
    for key, kind in (("interval", float), ("frames", int)):
        if key in options:
            clean[key] = kind(options[key])
    _state["tracemalloc"] = "tracemalloc" in clean["sources"] and not tracemalloc.is_tracing()
    _state["request"] = data
    memtrail_hook.start(data["events"], clean, attached=True)


def _detach():
    import memtrail_hook

    memtrail_hook.stop_attached()
    if _state["tracemalloc"]:
        import tracemalloc

        tracemalloc.stop()
    _state["tracemalloc"] = False
    _state["request"] = None


def state():
    """What the listener is doing, for tests: whether a request is being
    served, whether it started tracemalloc, how often it has looked."""
    return {
        "attached": _state["request"] is not None,
        "tracemalloc": _state["tracemalloc"],
        "looks": _state["looks"],
    }

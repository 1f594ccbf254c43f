# memtrail's bootstrap, put first on PYTHONPATH by
# `memtrail run --python-gc / --python-tracemalloc` next to the
# `memtrail_hook` package it starts (docs/events.md). Python imports
# `sitecustomize` at startup; this one starts the hook as the environment
# asks, then runs the sitecustomize that would have run without it.
#
# Python 3.8+ syntax only. It must never break the program: everything is
# caught.

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


try:
    import memtrail_hook as _memtrail_hook

    _memtrail_hook.start_from_environment()
except Exception:
    pass
_memtrail_chain()

"""roar's start-up hook for Python programs traced by `roar run` (docs/context.md, "Variables read").

Python copies the environment into os.environ at start-up and never asks libc
for it again, so the tracer's getenv probes would not see what a Python program
reads. roar puts this directory first in the job's PYTHONPATH; the interpreter
imports this module while it starts (as the job's user, inside the job), and it

- takes itself out again: its sys.path entry and importer cache entry go, and
  os.environ shows PYTHONPATH as it was (the C environment keeps the entry, so
  Python programs the job starts are observed too);
- makes each first lookup of a name in os.environ / os.environb (`[]`, get,
  `in`, os.getenv) also call libc's getenv for it, which the tracer reports;
- imports the sitecustomize it shadows, if there is one.

Anything failing here leaves the program as it would have been: the hook is
best effort, never an error in someone else's program.
"""

import os
import sys

_CARRIER = "PYTHONPATH"


def _hide(here):
    if here in sys.path:
        sys.path.remove(here)
    sys.path_importer_cache.pop(here, None)
    data, key = os.environ._data, os.environ.encodekey(_CARRIER)
    value = os.environ.decodevalue(data[key]) if key in data else None
    if value == here:
        del data[key]
    elif value is not None and value.startswith(here + os.pathsep):
        data[key] = os.environ.encodevalue(value[len(here) + 1:])


class _Reads(dict):
    """os.environ's storage: a dict whose lookups by name are also made through libc."""

    __slots__ = ()

    def __getitem__(self, key):
        if key not in _reported:
            _report(key)
        return dict.__getitem__(self, key)


_reported = set()
_getenv = []


def _report(key):
    _reported.add(key)
    try:
        if not _getenv:
            import ctypes

            fn = ctypes.CDLL(None).getenv
            fn.argtypes, fn.restype = [ctypes.c_char_p], ctypes.c_void_p
            _getenv.append(fn)
        if isinstance(key, bytes) and b"\0" not in key:
            _getenv[0](key)
    except Exception:
        pass


def _install():
    here = os.path.dirname(os.path.abspath(__file__))
    _hide(here)
    reads = _Reads(os.environ._data)
    os.environ._data = reads
    if getattr(os, "environb", None) is not None:
        os.environb._data = reads


try:
    _install()
except Exception:
    pass

# the sitecustomize this one shadows (Debian ships one), with its errors as they would be
_this = sys.modules.pop(__name__)
try:
    import sitecustomize  # noqa: F401
except ImportError as exc:
    if exc.name != __name__:
        raise
    sys.modules[__name__] = _this    # none: the import system expects a module under this name

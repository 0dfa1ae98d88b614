"""Get the BPF object ready in the background while `roar run` starts up.

The object comes from the spare a job before this one loaded (roar.tracer.spare), in a
millisecond, or else is loaded here: libbpf's load (mostly the kernel's verifier) takes
tens of milliseconds, and ctypes releases the GIL while it runs, so doing it in a thread
overlaps it with importing and parsing the command line. Only the default settings are
prepared; any other ring buffer size or -v loads afresh. A failure here is dropped: the
runner's own load reports it.

The same thread then opens the getenv uprobes' perf events (roar.tracer.uprobes), whose
slow part (~16 ms, the kernel registering the probe) the tracer would otherwise pay
after the load.
"""

from __future__ import annotations

import threading

_thread: threading.Thread | None = None
_loaded: list = []     # the loader.Loaded, once ready


def start() -> None:
    global _thread

    def work() -> None:
        try:
            from roar.tracer import spare
            from roar.tracer.loader import load_object, object_id, preflight

            preflight()
            _loaded.append(spare.take(object_id()) or load_object())
        except BaseException:  # reported, properly, by the runner's own attempt
            pass
        try:
            from roar.tracer import uprobes

            uprobes.open_ahead()
        except BaseException:  # the tracer opens what is missing itself, and says why not
            pass

    _thread = threading.Thread(target=work, name="roar-bpf-preload", daemon=True)
    _thread.start()


def take(ring_bytes: int, verbose: bool):
    """The prepared object (a loader.Loaded) if it fits these settings, else None (and it
    is freed)."""
    if _thread is None:
        return None
    _thread.join()
    obj = _loaded.pop() if _loaded else None
    if obj is not None and (ring_bytes != obj.ring_bytes or verbose):
        obj.close()
        return None
    return obj

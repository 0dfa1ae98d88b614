"""Load the BPF object in the background while `roar run` starts up.

libbpf's load (mostly the kernel's verifier) takes tens of milliseconds and
ctypes releases the GIL while it runs, so doing it in a thread overlaps it
with importing and parsing the command line: that much less fixed cost per
job. Only the default settings are preloaded; any other ring buffer size or
-v loads afresh. A failure here is dropped: the runner's own load reports it.
"""

from __future__ import annotations

import threading

_thread: threading.Thread | None = None
_loaded: list[int] = []


def start() -> None:
    global _thread

    def work() -> None:
        try:
            from roar.tracer.loader import load_object, preflight

            preflight()
            _loaded.append(load_object())
        except BaseException:  # reported, properly, by the runner's own attempt
            pass

    _thread = threading.Thread(target=work, name="roar-bpf-preload", daemon=True)
    _thread.start()


def take(ring_bytes: int, verbose: bool) -> int | None:
    """The preloaded object if it fits these settings, else None (and it is freed)."""
    from roar.tracer import libbpf
    from roar.tracer.loader import DEFAULT_RING_BYTES

    if _thread is None:
        return None
    _thread.join()
    obj = _loaded.pop() if _loaded else None
    if obj is not None and (ring_bytes != DEFAULT_RING_BYTES or verbose):
        libbpf.lib().close(obj)
        return None
    return obj

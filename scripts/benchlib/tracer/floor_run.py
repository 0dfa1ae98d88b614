"""Run a command with the floor attached: the empty programs of bpf/floor.bpf.c,
loaded and attached through roar's own libbpf binding (roar.tracer.libbpf),
detached once the command ended.

Usage (root): python floor_run.py FLOOR.bpf.o -- CMD [ARG...]

Exits with CMD's status; 125 with a one-line message when the floor cannot be
loaded or attached. Run as a program of its own (not imported), so that the
floor's start-up, like roar's, is part of the traced command's wall time.
"""

from __future__ import annotations

import ctypes as ct
import os
import subprocess
import sys


def attach(path: str) -> tuple[object, int, list[int]]:
    from roar.tracer import libbpf

    lb = libbpf.lib()
    libbpf.route_log(None)
    obj = lb.open_file(path.encode(), None)
    if not obj:
        raise libbpf.fail(f"open {path}")
    links: list[int] = []
    try:
        rc = lb.load(obj)
        if rc:
            raise libbpf.fail(f"load {path}", rc)
        prog = None
        while prog := lb.next_program(obj, prog):
            link = lb.attach(prog)
            if not link:
                raise libbpf.fail(f"attach {lb.program_name(prog).decode()}")
            links.append(link)
    except BaseException:
        detach(lb, obj, links)
        raise
    return lb, obj, links


def detach(lb, obj: int, links: list[int]) -> None:
    for link in links:
        lb.link_destroy(link)
    lb.close(obj)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("floor_run: usage: floor_run.py FLOOR.bpf.o -- CMD [ARG...]\n")
        return 125
    try:
        lb, obj, links = attach(argv[0])
    except ImportError as exc:
        sys.stderr.write(f"floor_run: cannot import roar ({exc}): put it on PYTHONPATH\n")
        return 125
    except Exception as exc:   # TracerError, LibbpfMissing: their text says what failed
        sys.stderr.write(f"floor_run: {exc}\n")
        return 125
    try:
        return subprocess.call(argv[2:])
    except OSError as exc:
        sys.stderr.write(f"floor_run: cannot run {argv[2]}: {os.strerror(exc.errno or 0)}\n")
        return 127
    finally:
        detach(lb, obj, links)


if __name__ == "__main__":
    ct.set_errno(0)
    sys.exit(main(sys.argv[1:]))

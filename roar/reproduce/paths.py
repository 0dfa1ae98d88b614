"""Mapping the recorded workspace root to the directory a recipe is reproduced in.

A path argument, a cwd or an output equal to the old root or under it moves with it
(also after `--opt=` in an argument); anything else, an absolute path outside the
workspace included, is kept as it is (docs/reproduce.md)."""

from __future__ import annotations


class RootMap:
    def __init__(self, old: str | None, new: str) -> None:
        self.old = old.rstrip("/") if old else None
        self.new = new.rstrip("/")

    def path(self, path: str) -> str:
        if self.old and (path == self.old or path.startswith(self.old + "/")):
            return self.new + path[len(self.old):]
        return path

    def inside(self, path: str) -> bool:
        return bool(self.old) and (path == self.old or path.startswith(self.old + "/"))

    def arg(self, arg: str) -> str:
        if self.inside(arg):
            return self.path(arg)
        name, eq, value = arg.partition("=")
        if eq and name.startswith("-") and self.inside(value):
            return f"{name}={self.path(value)}"
        return arg

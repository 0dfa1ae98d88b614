"""Who `roar reproduce` acts as under sudo (docs/reproduce.md, "Under sudo").

Every verb but `run`/`build` drops to the invoking user at once; `reproduce --run` cannot,
since each step is a `roar run` of its own, which needs root to attach the tracer. So it
acts as `roar run` does around its command: the effective ids are the user's (the saved
uid stays root) for everything it does itself, reading the records, the clone, the copied
sources, the venv and pip, the hashing, and only the start of a run or build step is
root's. That step gets sudo's environment (SUDO_UID, SUDO_GID, SUDO_USER) and so is traced
exactly as under `sudo roar run`, dropping to the user itself. Nothing else runs in the
process meanwhile: it has no other thread that a moment of root could serve.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from roar import privilege


class Acting:
    def __init__(self, user: privilege.User | None) -> None:
        self.user = user      # set while roar acts as the user and may take root back

    @classmethod
    def begin(cls, keep_root: bool) -> Acting:
        """As the user from now on: for good unless `keep_root` (--run)."""
        user = privilege.invoking_user()
        if user and keep_root:
            privilege.as_user(user)
            os.environ.update(HOME=user.home, USER=user.name, LOGNAME=user.name)   # as drop() does
            return cls(user)
        if user:
            privilege.drop(user)
        return cls(None)

    @contextmanager
    def root(self) -> Iterator[None]:
        """Root for one step's start (or apt-get), then the user again."""
        if self.user is None:
            yield
            return
        privilege.regain()
        try:
            yield
        finally:
            privilege.as_user(self.user)

    def end(self) -> None:
        """The steps are done: the user for good."""
        if self.user is not None:
            privilege.drop(self.user)
            self.user = None

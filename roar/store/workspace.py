"""The workspace: where `.roar/` lives, who owns it, and adding a job to it.

`.roar/` is found by walking up from the current directory; `roar run`
creates it on first use at the git repository root, else in the current
directory. Under sudo every file roar writes here is given to the invoking
user, so later commands work without sudo.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from roar.errors import NotAWorkspace, WorkspaceUnwritable
from roar.record import job as jobrec

DIRNAME = ".roar"


def invoking_user() -> tuple[int, int] | None:
    """(uid, gid) of the user behind sudo, or None when not under sudo as root."""
    uid, gid = os.environ.get("SUDO_UID"), os.environ.get("SUDO_GID")
    if os.geteuid() != 0 or not uid or not gid or not uid.isdigit() or not gid.isdigit():
        return None
    return int(uid), int(gid)


def git_root(start: Path) -> Path | None:
    for d in (start, *start.parents):
        if (d / ".git").exists():
            return d
    return None


class Workspace:
    def __init__(self, root: Path, owner: tuple[int, int] | None = None) -> None:
        self.root = root
        self.dir = root / DIRNAME
        self.jobs_dir = self.dir / "jobs"
        self.owner = owner

    @classmethod
    def find(cls, start: Path | None = None) -> "Workspace":
        start = (start or Path.cwd()).resolve()
        for d in (start, *start.parents):
            if (d / DIRNAME).is_dir():
                return cls(d, invoking_user())
        raise NotAWorkspace(
            f"no roar workspace here or above {start}: run a command with `roar run` first"
        )

    @classmethod
    def find_or_create(cls, start: Path | None = None) -> "Workspace":
        start = (start or Path.cwd()).resolve()
        try:
            return cls.find(start)
        except NotAWorkspace:
            pass
        ws = cls(git_root(start) or start, invoking_user())
        ws.create()
        return ws

    def create(self) -> None:
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceUnwritable(
                f"cannot create {self.dir}: {exc.strerror}; run roar where you can write, "
                "or fix the permissions"
            ) from None
        self.give(self.dir)
        self.give(self.jobs_dir)

    def check_writable(self) -> None:
        """Before a job runs: fail now rather than lose its record at the end."""
        self.create()
        try:
            fd, name = tempfile.mkstemp(dir=self.jobs_dir, prefix=".probe-")
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            raise WorkspaceUnwritable(
                f"cannot write in {self.jobs_dir}: {exc.strerror}; fix its permissions "
                "or run roar elsewhere"
            ) from None

    def give(self, path: Path) -> None:
        """Hand a file roar made to the invoking user (no-op when not under sudo)."""
        if self.owner:
            try:
                os.chown(path, *self.owner)
            except OSError:
                pass

    def record_path(self, uid: str) -> Path:
        return self.jobs_dir / f"{uid}.msgpack"

    def write_record(self, record: dict[str, Any]) -> Path:
        """Write atomically: a reader sees the whole record or none of it."""
        path = self.record_path(record["uid"])
        data = jobrec.encode(record)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.jobs_dir, prefix=f".{record['uid']}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                self.give(Path(tmp))
                os.replace(tmp, path)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
        except OSError as exc:
            raise WorkspaceUnwritable(
                f"cannot write the job record in {self.jobs_dir}: {exc.strerror}"
            ) from None
        return path

    def index(self):
        """An open connection to the SQLite index (created and migrated on first use)."""
        from roar.store import index

        path = self.dir / index.DB_NAME
        conn = index.connect(path)
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if p.exists():
                self.give(p)
        return conn

    def add_job(self, record: dict[str, Any]) -> dict[str, Any]:
        """Give the job its session and step, write its record, index it.

        One IMMEDIATE transaction serialises concurrent `roar run`s: each gets
        the next step of the session, and the record file is in place before
        the index row that points at it is committed."""
        from roar.store import index

        conn = self.index()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                record["session"] = index.current_session(conn)
                # builds are numbered apart (@B1, @B2, ...) from the other steps
                same_kind = "type = 'build'" if record["type"] == "build" else "type != 'build'"
                record["step"] = conn.execute(
                    f"SELECT COALESCE(MAX(step), 0) + 1 FROM jobs WHERE session_id = ? AND {same_kind}",
                    (record["session"],),
                ).fetchone()[0]
                self.write_record(record)
                index.index_job(conn, record)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()
        return record

    def read_record(self, uid: str) -> dict[str, Any]:
        path = self.record_path(uid)
        return jobrec.decode(path.read_bytes(), source=str(path))

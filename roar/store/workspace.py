"""The workspace: where `.roar/` lives, whom it may belong to, and every change to it.

`.roar/` is found by walking up from the current directory; `roar run`
creates it on first use at the git repository root, else in the current
directory. roar may run as root in directories other users control, so
(docs/security.md):

- a `.roar/` (or any of its parts) that is a symbolic link is refused;
- a `.roar/` owned by neither the acting user nor root is refused for writing
  and, for root, for reading too; plain root also refuses a workspace under a
  directory another user could rename (not root's, not sticky);
- every file is opened relative to a descriptor of `.roar/` (or of one of its
  directories) without following links; nothing is chowned: under sudo roar
  acts as the invoking user (roar.privilege), so what it writes is theirs;
- records, sessions, labels and the index are private to the owner (0600 in
  0700 directories).

Durable state is files, each written atomically before the index row that
points at it: jobs/<uid>.msgpack (records), sessions/<id>.msgpack,
labels/<id>.msgpack (one label change each). Opening the index notices files
a crash (or a busy index) left unindexed and indexes them (self-healing);
`rebuild()` redoes the whole index from the files, aside, and swaps it in
only when it is complete (docs/store.md).
"""

from __future__ import annotations

import errno
import os
import pwd
import sqlite3
import stat
import time
import uuid
from pathlib import Path
from typing import Any, Callable, TypeVar

import msgpack

from roar.errors import CorruptStore, NotAWorkspace, Untrusted, WorkspaceUnwritable
from roar.record import job as jobrec

T = TypeVar("T")
DIRNAME = ".roar"
SUBDIRS = ("jobs", "sessions", "labels", "cache")
SESSION_FORMAT = "roar.session"
LABEL_FORMAT = "roar.label"
FILE_VERSION = 1
REBUILD_CACHE_KB = 256 << 10   # SQLite page cache of `roar db rebuild`, at most (grows as used)
DIR_MODE, FILE_MODE = 0o700, 0o600
INDEX_BUSY_TIMEOUT_S = 5.0     # then the job's record waits, indexed by the next command
NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def owner_name(uid: int) -> str:
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def _trusted_owners() -> set[int]:
    """Who may own a workspace roar writes: the acting user (the invoking user under
    sudo, roar.privilege) and root."""
    return {os.geteuid(), 0}


def _is_ours(st: os.stat_result) -> bool:
    return st.st_uid in _trusted_owners()


def git_root(start: Path) -> Path | None:
    """The work tree holding `start`, if its `.git` is the acting user's (or root's): a
    `.git` someone else planted above (in /tmp, say) does not decide where the workspace goes."""
    for d in (start, *start.parents):
        try:
            st = os.lstat(d / ".git")
        except OSError:
            continue
        return d if _is_ours(st) else None
    return None


def _planted_in_shared(root: Path) -> bool:
    """A `.roar/` of someone else's in a world-writable sticky directory (/tmp) above
    where roar was started: anyone can plant one there, so it is nobody's chosen
    workspace and is passed over (refusing it would let any user stop every roar run
    below /tmp)."""
    try:
        parent = os.lstat(root)
        st = os.lstat(root / DIRNAME)
    except OSError:
        return False
    shared = parent.st_mode & stat.S_ISVTX and parent.st_mode & stat.S_IWOTH
    return bool(shared) and not _is_ours(st)


def _check_root_path(root: Path) -> None:
    """As root: refuse a workspace inside a directory another user could rename or
    replace (owned by them and not sticky), as git refuses a repository of theirs."""
    if os.geteuid() != 0:
        return
    for d in (root, *root.parents):
        try:
            st = os.lstat(d)
        except OSError:
            continue
        if st.st_uid != 0 and not st.st_mode & stat.S_ISVTX:
            raise Untrusted(
                f"{d} belongs to {owner_name(st.st_uid)}: as root, roar does not use a workspace in "
                "another user's directory; run `sudo roar ...` from that user's account instead")


class Workspace:
    """An open workspace: `fd` is a descriptor of its `.roar/` directory, checked."""

    def __init__(self, root: Path, fd: int, writable: bool) -> None:
        self.root = root
        self.dir = root / DIRNAME
        self.jobs_dir = self.dir / "jobs"
        self.sessions_dir = self.dir / "sessions"
        self.labels_dir = self.dir / "labels"
        self.fd = fd
        self.writable = writable
        self._subdir_fds: dict[str, int] = {}

    def close(self) -> None:
        for fd in (*self._subdir_fds.values(), self.fd):
            os.close(fd)
        self._subdir_fds, self.fd = {}, -1

    def __del__(self) -> None:
        if getattr(self, "fd", -1) >= 0:
            self.close()

    # finding and opening

    @classmethod
    def find(cls, start: Path | None = None) -> "Workspace":
        start = _cwd() if start is None else start.resolve()
        for d in (start, *start.parents):
            if d != start and _planted_in_shared(d):
                continue
            ws = cls._open(d)
            if ws is not None:
                return ws
        raise NotAWorkspace(
            f"no roar workspace here or above {start}: run a command with `roar run` first"
        )

    @classmethod
    def find_or_create(cls, start: Path | None = None) -> "Workspace":
        """The workspace a new job goes to, writable by the acting user."""
        start = _cwd() if start is None else start.resolve()
        try:
            ws = cls.find(start)
        except NotAWorkspace:
            ws = cls.create(git_root(start) or start)
        ws.require_writable()
        return ws

    @classmethod
    def _open(cls, root: Path) -> "Workspace | None":
        """The workspace at root/.roar, checked, or None when there is none."""
        path = root / DIRNAME
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.ENOTDIR):
                return None
            raise
        if stat.S_ISLNK(st.st_mode):
            raise Untrusted(f"{path} is a symbolic link: roar does not use a workspace that points "
                            "elsewhere; remove the link (it may have come with a cloned repository)")
        if not stat.S_ISDIR(st.st_mode):
            return None
        if os.geteuid() == 0 and st.st_uid != 0:
            raise Untrusted(f"{path} belongs to {owner_name(st.st_uid)}, not root: roar does not use "
                            "another user's workspace as root; run it through sudo as that user")
        _check_root_path(root)
        try:
            fd = os.open(path, NOFOLLOW_DIR)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Untrusted(f"{path} is a symbolic link: remove it") from None
            if not _is_ours(st):
                raise Untrusted(f"{path} belongs to {owner_name(st.st_uid)}, not to you: roar will not "
                                "use another user's workspace; work in a directory of your own") from None
            raise WorkspaceUnwritable(f"cannot open {path}: {exc.strerror}; check its permissions") from None
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            os.close(fd)
            raise Untrusted(f"{path} was replaced while roar opened it: check who else writes there")
        writable = opened.st_uid == os.geteuid()
        return cls(root, fd, writable)

    @classmethod
    def create(cls, root: Path) -> "Workspace":
        _check_root_path(root)
        path = root / DIRNAME
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            pass
        except OSError as exc:
            raise WorkspaceUnwritable(
                f"cannot create {path}: {exc.strerror}; run roar where you can write, "
                "or fix the permissions"
            ) from None
        ws = cls._open(root)
        if ws is None:
            raise WorkspaceUnwritable(f"cannot create {path}: a file of that name is in the way; "
                                      "move it away")
        try:   # a workspace is never committed by `git add -A` (as venvs and pytest do)
            fd = os.open(".gitignore", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         FILE_MODE, dir_fd=ws.fd)
            with os.fdopen(fd, "w") as f:
                f.write("# roar's workspace: records, index and caches, not for version control\n*\n")
        except OSError:
            pass
        return ws

    def require_writable(self) -> None:
        """Before a job runs or the index changes: refuse a workspace that is not the
        acting user's, and fail now rather than lose a record at the end."""
        st = os.fstat(self.fd)
        if not _is_ours(st):
            raise Untrusted(
                f"{self.dir} belongs to {owner_name(st.st_uid)}: roar will not write in another user's "
                "workspace (they could read, change or forge its records); ask them or root to remove "
                "it, or work in a directory of your own")
        if st.st_uid != os.geteuid():
            raise WorkspaceUnwritable(
                f"{self.dir} belongs to {owner_name(st.st_uid)}, not to you: run this command the way "
                "that workspace was made (with or without sudo), or remove it")
        for name in SUBDIRS:
            self._subdir(name)
        self.writable = True
        probe = f".probe-{uuid.uuid4().hex[:8]}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         FILE_MODE, dir_fd=self._subdir("jobs"))
            os.close(fd)
            os.unlink(probe, dir_fd=self._subdir("jobs"))
        except OSError as exc:
            raise _unwritable(self.jobs_dir, exc) from None

    def _subdir(self, name: str) -> int:
        """A descriptor of .roar/<name>, made (0700) if missing and allowed; a link is refused."""
        fd = self._subdir_fds.get(name)
        if fd is not None:
            return fd
        try:
            if self.writable:
                try:
                    os.mkdir(name, DIR_MODE, dir_fd=self.fd)
                except FileExistsError:
                    pass
            fd = os.open(name, NOFOLLOW_DIR, dir_fd=self.fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise Untrusted(f"{self.dir / name} is not a plain directory (a symbolic link?): roar does "
                                "not follow links inside .roar/; remove it") from None
            if exc.errno == errno.ENOENT and not self.writable:
                fd = -1
            else:
                raise _unwritable(self.dir / name, exc) from None
        self._subdir_fds[name] = fd
        return fd

    def fd_path(self, name: str | None = None) -> str:
        """A path that reaches .roar/ (or .roar/<name>) through roar's own descriptor,
        for libraries that take a path (SQLite, the context cache): renaming or
        replacing .roar/ after it was checked cannot redirect it."""
        fd = self.fd if name is None else self._subdir(name)
        return f"/proc/self/fd/{fd}"

    def record_path(self, uid: str) -> Path:
        return self.jobs_dir / f"{uid}.msgpack"

    def write_record(self, record: dict[str, Any]) -> Path:
        """Write atomically: a reader sees the whole record or none of it."""
        self._write_atomic("jobs", f"{record['uid']}.msgpack", jobrec.encode(record))
        return self.record_path(record["uid"])

    def _write_atomic(self, subdir: str, name: str, data: bytes) -> None:
        """Write .roar/<subdir>/<name> through a temporary file and a rename, both
        relative to the directory's descriptor; the file is private (0600)."""
        d = self._subdir(subdir)
        tmp = f".{name}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         FILE_MODE, dir_fd=d)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, name, src_dir_fd=d, dst_dir_fd=d)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=d)
                except OSError:
                    pass
                raise
        except OSError as exc:
            raise _unwritable(self.dir / subdir / name, exc) from None

    def _read_file(self, subdir: str, name: str) -> bytes:
        """The bytes of .roar/<subdir>/<name>, opened without following a link."""
        d = self._subdir(subdir)
        if d < 0:
            raise FileNotFoundError(errno.ENOENT, "no such directory", str(self.dir / subdir))
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=d)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(self.dir / subdir / name))
            return f.read()

    def index(self) -> sqlite3.Connection:
        """An open connection to the SQLite index (created and migrated on first use),
        read-only in a workspace that is not the acting user's or cannot be written."""
        from roar.store import index

        conn = self._open_db(lambda readonly: index.connect(self._db_open_path(), readonly=readonly,
                                                             display=self.db_path))
        if self.writable:
            try:
                self.heal(conn)
            except BaseException:
                conn.close()
                raise
        return conn

    def _open_db(self, connect: Callable[[bool], T]) -> T:
        """connect(readonly) for writing where the workspace is the acting user's, else (or
        when its filesystem refuses writes) for reading; a full disk stays an error."""
        self._check_db_files()
        if self.writable:
            try:
                return connect(False)
            except WorkspaceUnwritable as exc:
                if "disk is full" in exc.message:
                    raise
                self.writable = False    # a read-only filesystem: read what is indexed
        return connect(True)

    def _db_open_path(self) -> str:
        from roar.store import index

        return f"{self.fd_path()}/{index.DB_NAME}"

    def _check_db_files(self) -> None:
        """The index and its WAL files are plain files of the owner: SQLite opens them by
        name and would follow a link; a new index is made private before SQLite sees it."""
        from roar.store import index

        for name in (index.DB_NAME, index.DB_NAME + "-wal", index.DB_NAME + "-shm"):
            try:
                st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode):
                raise Untrusted(f"{self.dir / name} is not a plain file (a symbolic link?): roar does not "
                                "follow links inside .roar/; remove it and run `roar db rebuild`")
        if self.writable:
            try:
                os.close(os.open(index.DB_NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                                 | os.O_CLOEXEC, FILE_MODE, dir_fd=self.fd))
            except FileExistsError:
                pass
            except OSError as exc:
                if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise _unwritable(self.db_path, exc) from None

    @property
    def db_path(self) -> Path:
        from roar.store import index

        return self.dir / index.DB_NAME

    def hash_cache(self):
        """The workspace's hash cache (roar.artifacts.cache.HashCache); close it after use."""
        from roar.artifacts.cache import HashCache

        return self._open_db(lambda readonly: HashCache(self._db_open_path(), readonly=readonly))

    def add_job(self, record: dict[str, Any]) -> dict[str, Any]:
        """Give the job its session and step, write its record, index it.

        One IMMEDIATE transaction serialises concurrent `roar run`s: each gets
        the next step of the session, and the record file is in place before
        the index row that points at it is committed. When another process holds
        the index longer than INDEX_BUSY_TIMEOUT_S, the record is written anyway
        (with the step the index showed) and the next command indexes it: the
        record file is the durable truth, a busy index never loses a job."""
        from roar.store import index

        self.require_writable()
        conn = self.index()
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(INDEX_BUSY_TIMEOUT_S * 1000)}")
            try:
                with _write_transaction(conn):
                    self._number(conn, record)
                    _dirty_tree_once(conn, record)
                    self.write_record(record)
                    index.index_job(conn, record)
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                self._number(conn, record, busy=True)    # reads only: WAL readers are not blocked
                _dirty_tree_once(conn, record)
                record.setdefault("warnings", []).append(
                    f"the index was busy: the job is saved in {self.record_path(record['uid'])} and the "
                    "next roar command indexes it")
                self.write_record(record)
        finally:
            conn.close()
        return record

    def _number(self, conn: sqlite3.Connection, record: dict[str, Any], busy: bool = False) -> None:
        """The record's session and step. `busy`: the index cannot be written, so a new
        session is only a file (indexed with the record, later)."""
        from roar.store import index

        record["session"] = index.current_session(conn) or self._new_session(conn, indexed=not busy)
        # builds are numbered apart (@B1, @B2, ...) from the other steps
        same_kind = "type = 'build'" if record["type"] == "build" else "type != 'build'"
        record["step"] = conn.execute(
            f"SELECT COALESCE(MAX(step), 0) + 1 FROM jobs WHERE session_id = ? AND {same_kind}",
            (record["session"],),
        ).fetchone()[0]

    def read_record(self, uid: str) -> dict[str, Any]:
        path = self.record_path(uid)
        try:
            data = self._read_file("jobs", f"{uid}.msgpack")
        except FileNotFoundError:
            raise CorruptStore(f"the record {path} is missing but indexed: run `roar db rebuild`") from None
        except OSError as exc:
            raise CorruptStore(f"the record {path} cannot be read ({exc.strerror}): remove it and run "
                               "`roar db rebuild`") from None
        return jobrec.decode(data, source=str(path))

    # sessions

    def reset(self) -> dict[str, Any]:
        """End the current session and start the next one; returns the new session. A
        session with no job yet stays the current one (returned with "empty": True):
        resetting twice never makes empty sessions."""
        from roar.store import index

        self.require_writable()
        conn = self.index()
        try:
            with _write_transaction(conn):
                current = index.current_session(conn)
                if current and not conn.execute("SELECT 1 FROM jobs WHERE session_id = ? LIMIT 1",
                                                (current,)).fetchone():
                    return {**self._session_row(conn, current), "empty": True}
                if current:
                    old = self._session_row(conn, current)
                    old["ended_at"] = time.time()
                    self._write_session(old)
                    index.index_session(conn, old)
                sid = self._new_session(conn)
                return self._session_row(conn, sid)
        finally:
            conn.close()

    def _new_session(self, conn: sqlite3.Connection, indexed: bool = True) -> str:
        from roar.store import index

        seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM sessions").fetchone()[0]
        session = {"id": uuid.uuid4().hex[:16], "seq": seq, "started_at": time.time(), "ended_at": None}
        self._write_session(session)
        if indexed:
            index.index_session(conn, session)
        return session["id"]

    def _write_session(self, session: dict[str, Any]) -> None:
        doc = {"format": SESSION_FORMAT, "version": FILE_VERSION, **session}
        self._write_atomic("sessions", f"{session['id']}.msgpack", msgpack.packb(doc))

    @staticmethod
    def _session_row(conn: sqlite3.Connection, sid: str) -> dict[str, Any]:
        row = conn.execute("SELECT id, seq, started_at, ended_at FROM sessions WHERE id = ?",
                           (sid,)).fetchone()
        return dict(zip(("id", "seq", "started_at", "ended_at"), row, strict=True))

    # labels

    def add_label_changes(self, target_kind: str, target: str, changes: dict[str, str | None]) -> None:
        """Record label changes (value None = unset) on a session, job or artifact."""
        from roar.store import index

        self.require_writable()
        conn = self.index()
        try:
            with _write_transaction(conn):
                for key, value in changes.items():
                    at = time.time()
                    change = {"id": f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}", "at": at,
                              "target_kind": target_kind, "target": target, "key": key, "value": value}
                    doc = {"format": LABEL_FORMAT, "version": FILE_VERSION, **change}
                    self._write_atomic("labels", f"{change['id']}.msgpack", msgpack.packb(doc))
                    index.index_label(conn, change)
        finally:
            conn.close()

    # index upkeep

    def heal(self, conn: sqlite3.Connection) -> int:
        """Index the files a crash or a busy index left unindexed; returns how many.
        Cheap when nothing is missing: one directory listing and one count per kind.
        A busy or read-only index is left as it is: the files wait for the next command."""
        missing = self._unindexed(conn)
        if not any(missing.values()):
            return 0
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(INDEX_BUSY_TIMEOUT_S * 1000)}")
            with _write_transaction(conn):
                missing = self._unindexed(conn)   # another process may have healed meanwhile
                return self._index_files(conn, missing)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or _busy(exc):
                return 0
            raise
        finally:
            conn.execute("PRAGMA busy_timeout = 30000")

    def rebuild(self) -> int:
        """Recompute the index from the files; returns the number of jobs indexed.

        The new index is built aside (roar.db.rebuild-*) and swapped in only when it
        is complete, so a failure (disk full, a kill) leaves the old index as it was.
        An old index that could not be opened is kept as roar.db.corrupt-<time>."""
        from roar.store import index

        self.require_writable()
        self._check_db_files()
        try:
            index.connect(self._db_open_path()).close()
            damaged = False
        except CorruptStore:
            damaged = True
        aside = f"{index.DB_NAME}.rebuild-{uuid.uuid4().hex[:8]}"
        try:
            os.close(os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                             FILE_MODE, dir_fd=self.fd))
            jobs = self._rebuild_into(index.connect(f"{self.fd_path()}/{aside}", journal="DELETE"))
            self._swap_in(aside, damaged)
        except BaseException:
            for name in (aside, aside + "-journal"):
                try:
                    os.unlink(name, dir_fd=self.fd)
                except OSError:
                    pass
            raise
        return jobs

    def _swap_in(self, new: str, damaged: bool) -> None:
        """Replace the index with `new`: the old WAL files go first (SQLite would
        replay them into the new file), then the rename."""
        from roar.store import index

        stamp = time.strftime("%Y%m%d-%H%M%S")
        for suffix in ("-wal", "-shm", ""):
            name = index.DB_NAME + suffix
            try:
                if damaged:
                    os.replace(name, f"{index.DB_NAME}.corrupt-{stamp}{suffix}", src_dir_fd=self.fd,
                               dst_dir_fd=self.fd)
                elif suffix:
                    os.unlink(name, dir_fd=self.fd)
            except FileNotFoundError:
                pass
        os.replace(new, index.DB_NAME, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def _rebuild_into(self, conn: sqlite3.Connection) -> int:
        from roar.store import index

        # a big page cache: the index's hash-keyed b-trees are written all over, and
        # with SQLite's default 2 MB most inserts of a large rebuild miss it
        conn.execute(f"PRAGMA cache_size = -{REBUILD_CACHE_KB}")
        try:
            with _write_transaction(conn):
                index.clear(conn)
                self._index_files(conn, self._unindexed(conn), facts=False)
                index.refresh_facts(conn)
                return conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
        finally:
            conn.close()

    def _entries(self, subdir: str) -> list[str]:
        fd = self._subdir(subdir)
        return [] if fd < 0 else os.listdir(fd)

    def _unindexed(self, conn: sqlite3.Connection) -> dict[str, set[str]]:
        # a file set aside (bad_files) counts as seen: jobs by uid, the others as KIND/ID
        queries = {"sessions": "SELECT id FROM sessions UNION ALL SELECT substr(file, 10) FROM bad_files"
                               " WHERE file LIKE 'sessions/%'",
                   "jobs": "SELECT uid FROM jobs UNION ALL SELECT file FROM bad_files"
                           " WHERE file NOT LIKE '%/%'",
                   "labels": "SELECT id FROM label_events WHERE origin = 'cli' UNION ALL"
                             " SELECT substr(file, 8) FROM bad_files WHERE file LIKE 'labels/%'"}
        missing = {}
        for kind, query in queries.items():
            entries = self._entries(kind)
            indexed = conn.execute(f"SELECT COUNT(*) FROM ({query})").fetchone()[0]
            if _file_count(entries) == indexed:
                missing[kind] = set()
                continue
            names = {n[:-8] for n in entries if n.endswith(".msgpack") and not n.startswith(".")}
            missing[kind] = set() if len(names) == indexed else names - {r[0] for r in conn.execute(query)}
        return missing

    def _index_files(self, conn: sqlite3.Connection, missing: dict[str, set[str]],
                     facts: bool = True) -> int:
        from roar.store import index

        for sid in missing["sessions"]:
            doc = self._read_doc(conn, "sessions", sid, SESSION_FORMAT)
            if doc is not None:
                index.index_session(conn, doc)
        records = []
        for uid in missing["jobs"]:
            try:
                records.append(self.read_record(uid))
            except CorruptStore as exc:
                conn.execute("INSERT OR REPLACE INTO bad_files VALUES (?, ?)", (uid, exc.message))
        records.sort(key=lambda r: (r.get("ended_at") or 0, r["uid"]))
        for record in records:
            self._ensure_session(conn, record)
            self._renumber_if_taken(conn, record)
            index.index_job(conn, record, facts=facts)
        for lid in sorted(missing["labels"]):
            doc = self._read_doc(conn, "labels", lid, LABEL_FORMAT)
            if doc is not None:
                index.index_label(conn, doc)
        return len(records)

    def _read_doc(self, conn: sqlite3.Connection, subdir: str, doc_id: str,
                  fmt: str) -> dict[str, Any] | None:
        """A session file or label change, checked; a bad one is set aside (bad_files)."""
        from roar.record import validate

        path = self.dir / subdir / f"{doc_id}.msgpack"
        try:
            doc = msgpack.unpackb(self._read_file(subdir, f"{doc_id}.msgpack"), raw=False)
            if not isinstance(doc, dict) or doc.get("format") != fmt:
                raise CorruptStore(f"{path} is not a {fmt} file; it is set aside: remove it")
            validate.check_doc(doc, "session" if subdir == "sessions" else "label", str(path))
        except (OSError, ValueError, msgpack.UnpackException) as exc:
            reason = f"{path} cannot be read ({exc.__class__.__name__}); it is set aside: remove it"
        except CorruptStore as exc:
            reason = exc.message
        else:
            return doc
        conn.execute("INSERT OR REPLACE INTO bad_files VALUES (?, ?)", (f"{subdir}/{doc_id}", reason))
        return None

    def _renumber_if_taken(self, conn: sqlite3.Connection, record: dict[str, Any]) -> None:
        """A record orphaned by a crash may hold a step another job took since:
        it gets the next free step (its file is rewritten)."""
        same_kind = "type = 'build'" if record["type"] == "build" else "type != 'build'"
        query = f"FROM jobs WHERE session_id = ? AND {same_kind}"
        if conn.execute(f"SELECT 1 {query} AND step = ?", (record["session"], record["step"])).fetchone():
            record["step"] = conn.execute(f"SELECT MAX(step) + 1 {query}", (record["session"],)).fetchone()[0]
            self.write_record(record)

    @staticmethod
    def _ensure_session(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
        """A record whose session file is gone still gets a session row."""
        from roar.store import index

        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (record["session"],)).fetchone():
            return
        # numbered before every other session: a record from elsewhere (a cloned repository)
        # must not become the current session that new jobs join
        seq = conn.execute("SELECT COALESCE(MIN(seq), 1) - 1 FROM sessions").fetchone()[0]
        index.index_session(conn, {"id": record["session"], "seq": seq,
                                   "started_at": record.get("started_at") or 0})


def _dirty_tree_once(conn: sqlite3.Connection, record: dict[str, Any]) -> None:
    """A dirty tree is said once: the record keeps the warning only when its git state is not
    the one the previous job of its session left (roar.record.gitstate); context.git still
    says dirty either way."""
    from roar.record import gitstate
    from roar.record.context import warnings as context_warnings
    from roar.store import index

    said = context_warnings(record.get("context") or {})
    if not said or not record.get("warnings"):
        return
    before = index.previous_git(conn, record["session"])
    if gitstate.unchanged(before, gitstate.state(record, before)):
        record["warnings"] = [w for w in record["warnings"] if w not in said]


def _file_count(entries: list[str]) -> int | None:
    """How many NAME.msgpack files a directory listing holds, counted without a Python
    loop (every command makes this check, and jobs/ may hold 100,000 records); None
    when a hidden file (a temporary write) is there and only the exact filter will do."""
    joined = "\0" + "\0".join(entries) + "\0"
    if "\0." in joined:
        return None
    return joined.count(".msgpack\0")


class _write_transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        self.conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _cwd() -> Path:
    try:
        return Path(os.getcwd())
    except FileNotFoundError:
        raise NotAWorkspace("the current directory was deleted: cd to an existing directory") from None


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _unwritable(path: Path, exc: OSError) -> WorkspaceUnwritable:
    if exc.errno == errno.ENOSPC or exc.errno == errno.EDQUOT:
        return WorkspaceUnwritable(f"cannot write {path}: the disk is full (or over quota); free some "
                                   "space and run the command again")
    return WorkspaceUnwritable(f"cannot write {path}: {exc.strerror}; fix its permissions or run roar "
                               "elsewhere")

"""Git state of the job's working directory: root, remote, branch, commit, dirty paths.

Root, branch, commit and remote URL are read from the repository's files
(HEAD, refs, packed-refs, config), which costs well under a millisecond.
Only "is the tree dirty, and where" needs `git status`, which runs as whoever
roar acts as: under sudo the invoking user (roar.privilege), never root in
someone else's repository, since a repository's config can run programs
(core.fsmonitor, hooks). git's own rule decides: roar never overrides
safe.directory, and as root in a repository owned by another user it records
no git context at all (UntrustedRepository says why). GIT_OPTIONAL_LOCKS=0:
git status never rewrites the index behind the user's back. Not in a
repository: None.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

from roar import privilege
from roar.record.context import readfile
from roar.record.context.redact import strip_url

STATUS_TIMEOUT_S = 10.0
MAX_DIRTY_PATHS = 1000
IGNORED_PREFIXES = (".roar/",)
SAFE_REF = re.compile(r"refs/[A-Za-z0-9._/+@-]+")
OBJECT_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")    # roar's own workspace is not the user's change


class UntrustedRepository(Exception):
    """A repository roar must not read as root: it belongs to someone else."""


def capture(cwd: str) -> dict[str, Any] | None:
    found = find_repository(Path(cwd))
    if found is None:
        return None
    root, git_dir = found
    check_owner(root, git_dir)
    common_dir = _common_dir(git_dir)
    branch, commit = head(git_dir, common_dir)
    dirty_paths, note = status(root)
    info: dict[str, Any] = {
        "root": str(root),
        "remote": remote_url(common_dir),
        "branch": branch,
        "commit": commit,
        "dirty": None if dirty_paths is None else bool(dirty_paths),
        "dirty_paths": (dirty_paths or [])[:MAX_DIRTY_PATHS],
    }
    if dirty_paths is not None and len(dirty_paths) > MAX_DIRTY_PATHS:
        info["dirty_paths_omitted"] = len(dirty_paths) - MAX_DIRTY_PATHS
    if note:
        info["note"] = note
    return info


def find_repository(start: Path) -> tuple[Path, Path] | None:
    """(work tree root, git dir) of the repository holding `start`, or None. A `.git`
    that is neither the acting user's nor root's (one planted above, in /tmp, say) is
    UntrustedRepository: no git context, and the note says why (git's ownership rule)."""
    for d in (start, *start.parents):
        dotgit = d / ".git"
        try:
            st = os.lstat(dotgit)
        except OSError:
            continue
        if st.st_uid not in (os.geteuid(), 0):
            from roar.store.workspace import owner_name

            raise UntrustedRepository(
                f"{dotgit} belongs to {owner_name(st.st_uid)}, not to whoever roar runs as: "
                "its config could run that user's programs (git's safe.directory rule)")
        if stat.S_ISDIR(st.st_mode):
            return d, dotgit
        if stat.S_ISREG(st.st_mode):   # worktree or submodule: "gitdir: <path>"
            text = _read(dotgit)
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:"):].strip())
                return d, (target if target.is_absolute() else d / target)
        return None
    return None


def check_owner(root: Path, git_dir: Path) -> None:
    """As root, the work tree, its `.git` and the git directory (and the common one
    of a worktree) must be root's (git's safe.directory rule, which roar never overrides)."""
    if os.geteuid() != 0:
        return
    common = _read(git_dir / "commondir").strip()
    paths = [root, root / ".git", git_dir] + ([git_dir / common] if common else [])
    for path in paths:
        try:
            uid = os.lstat(path).st_uid
        except OSError:
            continue
        if uid != 0:
            from roar.store.workspace import owner_name

            raise UntrustedRepository(
                f"{path} belongs to {owner_name(uid)} and roar runs as root: git could run that "
                "user's configuration as root (git's safe.directory rule); run roar through sudo as "
                "that user")


def _common_dir(git_dir: Path) -> Path:
    """Where refs and config live: the main repository's .git for a worktree."""
    common = _read(git_dir / "commondir").strip()
    if not common:
        return git_dir
    path = Path(common)
    return path if path.is_absolute() else (git_dir / path).resolve()


def head(git_dir: Path, common_dir: Path) -> tuple[str | None, str | None]:
    """(branch, commit); branch None when detached, commit None before the first commit.
    Only a ref under refs/ without `..` is followed, and only a hex object name is kept:
    HEAD is someone's file, not a path to read."""
    text = _read(git_dir / "HEAD").strip()
    if not text.startswith("ref:"):
        return None, _object_name(text)
    ref = text[len("ref:"):].strip()
    if not SAFE_REF.fullmatch(ref) or ".." in ref.split("/"):
        return None, None
    branch = ref.removeprefix("refs/heads/")
    commit = _object_name((_read(git_dir / ref) or _read(common_dir / ref)).strip()) \
        or _packed_ref(common_dir, ref)
    return branch, commit


def _object_name(text: str) -> str | None:
    return text if OBJECT_NAME.fullmatch(text) else None


def _packed_ref(common_dir: Path, ref: str) -> str | None:
    for line in _read(common_dir / "packed-refs").splitlines():
        sha, _, name = line.partition(" ")
        if name == ref:
            return _object_name(sha)
    return None


def remote_url(common_dir: Path) -> str | None:
    """The URL of `origin` (else of the first remote), credentials stripped."""
    urls: dict[str, str] = {}
    section = None
    for raw in _read(common_dir / "config").splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]").strip()
        elif section and section.startswith("remote ") and line.partition("=")[0].strip() == "url":
            name = section[len("remote "):].strip().strip('"')
            urls.setdefault(name, line.partition("=")[2].strip().strip('"'))
    if not urls:
        return None
    url = urls.get("origin") or next(iter(urls.values()))
    return strip_url(url) if "://" in url else url   # scp-like user@host:path has no password


def status(root: Path) -> tuple[list[str] | None, str | None]:
    """(changed and untracked paths, note): paths None when git cannot tell."""
    git = shutil.which("git")
    if git is None:
        return None, "git is not installed: dirty state unknown"
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        out = subprocess.run(
            [git, "-C", str(root), "status", "--porcelain=v1", "-z",
             "--untracked-files=normal"],
            capture_output=True, timeout=STATUS_TIMEOUT_S, env=env, stdin=subprocess.DEVNULL,
            **privilege.child_ids())
    except subprocess.TimeoutExpired:
        return None, f"git status took more than {STATUS_TIMEOUT_S:g} s: dirty state unknown"
    except OSError as exc:
        return None, f"git status could not run ({exc.strerror}): dirty state unknown"
    if out.returncode != 0:
        message = out.stderr.decode(errors="replace").strip().splitlines()
        return None, f"git status failed: {message[0] if message else out.returncode}"
    return _parse_porcelain(out.stdout), None


def _parse_porcelain(data: bytes) -> list[str]:
    paths = []
    entries = iter(data.split(b"\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        code, path = entry[:2], os.fsdecode(entry[3:])
        if code[:1] in (b"R", b"C"):
            next(entries, None)   # the rename's source follows; the new path is what is dirty
        if not path.startswith(IGNORED_PREFIXES):
            paths.append(path)
    return sorted(paths)


def _read(path: Path) -> str:
    return readfile.read_text(path, limit=1 << 20)

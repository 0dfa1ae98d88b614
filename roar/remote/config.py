"""Which GLaaS server, and with which token: the login file and the CI variables.

`roar login` saves {url, token, user, identity} in $XDG_CONFIG_HOME/roar/glaas.json
(~/.config/roar/glaas.json), mode 0600, written atomically (a temporary file renamed over
the old one) through a descriptor of the directory opened without following links: a
symbolic link planted at the directory or the file is refused, never written through.
GLAAS_URL and ROAR_GLAAS_TOKEN override the file (for CI). The saved token is only ever
sent to the URL it was saved for: GLAAS_URL naming another server means anonymous,
unless ROAR_GLAAS_TOKEN is set too.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from roar.errors import RoarError, Untrusted, UsageError

FILE = "glaas.json"
MAX_FILE = 64 << 10
LOGIN_HINT = "roar login URL --token TOKEN, or set GLAAS_URL"


@dataclass(frozen=True)
class Settings:
    url: str | None
    token: str | None
    user: str | None = None          # as the server named the token's user at login
    identity: str | None = None      # its creator identity (glaas:user:<id>), for --dry-run
    token_from: str | None = None    # "ROAR_GLAAS_TOKEN" or the login file's path


def config_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path(os.path.expanduser("~")) / ".config"
    return base / "roar"


def normalize_url(url: str) -> str:
    """http(s)://host[:port][/prefix], without a trailing / or /api/v1."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{url!r} is not a server URL: give http://HOST:PORT or https://HOST")
    if parts.username or parts.password:
        raise UsageError("a server URL must not hold a user or password: give the token with --token")
    if parts.query or parts.fragment:
        raise UsageError(f"{url!r}: a server URL has no ?query or #fragment")
    if url.endswith("/api/v1"):
        url = url[: -len("/api/v1")]
    return url


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(url: str) -> None:
    """A token is not sent in clear text over a network (loopback is fine)."""
    if urlsplit(url).scheme == "http" and not is_loopback(url) and os.environ.get("ROAR_ALLOW_HTTP") != "1":
        raise UsageError(f"{url} is plain http: a token sent there can be read on the way; use https, "
                         "or set ROAR_ALLOW_HTTP=1 if the network is trusted")


def load() -> Settings:
    saved = read_saved() or {}
    env_url = os.environ.get("GLAAS_URL", "").strip()
    env_token = os.environ.get("ROAR_GLAAS_TOKEN", "").strip()
    saved_url = saved.get("url")
    url = normalize_url(env_url) if env_url else saved_url
    if env_token:
        return Settings(url, env_token, token_from="ROAR_GLAAS_TOKEN")
    if saved.get("token") and url == saved_url:
        return Settings(url, saved["token"], saved.get("user"), saved.get("identity"),
                        token_from=str(config_dir() / FILE))
    return Settings(url, None)


def require_url(settings: Settings) -> str:
    if not settings.url:
        from roar.remote.errors import ServerUnavailable

        raise ServerUnavailable(f"no GLaaS server is configured: {LOGIN_HINT}")
    return settings.url


def _open_dir(path: Path, create: bool) -> int | None:
    """A descriptor of the config directory, opened without following a link; None when absent."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise Untrusted(f"{path} is a symbolic link or not a directory: remove it, then try again") \
                from None
        raise RoarError(f"cannot open {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid():
        os.close(fd)
        raise Untrusted(f"{path} belongs to another user (uid {st.st_uid}): remove it, or set "
                        "XDG_CONFIG_HOME to a directory of yours")
    return fd


def read_saved() -> dict | None:
    """The login file's contents, None when there is none."""
    directory = config_dir()
    dfd = _open_dir(directory, create=False)
    if dfd is None:
        return None
    path = directory / FILE
    try:
        try:
            fd = os.open(FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise Untrusted(f"{path} is a symbolic link: remove it and log in again") from None
            raise RoarError(f"cannot read {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                raise Untrusted(f"{path} is not a regular file of yours: remove it and log in again")
            if st.st_mode & 0o077:
                raise Untrusted(f"{path} can be read by others (mode {stat.S_IMODE(st.st_mode):o}): "
                                f"chmod 600 {path}, or log in again with a new token")
            data = f.read(MAX_FILE + 1)
    finally:
        os.close(dfd)
    try:
        doc = json.loads(data) if len(data) <= MAX_FILE else None
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("url"), str):
        raise RoarError(f"{path} is not a roar login file: `roar logout`, then `roar login` again")
    return doc


def save(doc: dict) -> Path:
    """Write the login file atomically, mode 0600, as the invoking user."""
    from roar import privilege

    directory = config_dir()
    dfd = _open_dir(directory, create=True)
    assert dfd is not None
    tmp = f".{FILE}.{secrets.token_hex(6)}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dfd)
        try:
            with os.fdopen(fd, "wb") as f:
                os.fchmod(f.fileno(), 0o600)    # whatever the umask
                user = privilege.invoking_user() if os.geteuid() == 0 else None
                if user is not None:             # root on a user's behalf: the file is the user's
                    os.fchown(f.fileno(), user.uid, user.gid)
                f.write(json.dumps(doc, indent=2).encode() + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, FILE, src_dir_fd=dfd, dst_dir_fd=dfd)   # replaces a link, never follows it
        except BaseException:
            try:
                os.unlink(tmp, dir_fd=dfd)
            except OSError:
                pass
            raise
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return directory / FILE


def forget() -> Path | None:
    """Remove the login file; its path, or None when there was none."""
    directory = config_dir()
    dfd = _open_dir(directory, create=False)
    if dfd is None:
        return None
    try:
        os.unlink(FILE, dir_fd=dfd)
    except FileNotFoundError:
        return None
    finally:
        os.close(dfd)
    return directory / FILE

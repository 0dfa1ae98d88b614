"""SSH-signature authentication: the public keys users registered, and the check of a
request's `Authorization: Signature keyid="SHA256:..." ts="<unix>" sig="<base64 SSHSIG>"`.

The signed bytes are those roar-cli signs with `ssh-keygen -Y sign -n glaas`:
"{ts}\\n{METHOD}\\n{path with query}" and, when there is a body, "\\n{sha256 hex of it}". They
are verified with `ssh-keygen -Y verify` against the one registered key the keyid names,
namespace `glaas`. A timestamp more than WINDOW from the server's clock is refused, and so
is a signature of a request with side effects (anything but GET and HEAD) seen before:
replaying a captured signed POST gets 401. A repeated GET is let through, because an
Ed25519 signature is deterministic and a client may read the same URL twice in one second.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import shutil
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from roar.glaas.models import Member, SeenSignature, SshKey, User
from roar.glaas.store.errors import BadRequest, NotFound, Unauthorized
from roar.glaas.store.scope import Principal
from roar.glaas.store.tokens import _get_or_create, now, sha256

NAMESPACE = "glaas"
WINDOW = 300   # seconds either side of the server's clock
KEY_TYPES = {"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
             "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com"}
HEADER = re.compile(r'^\s*keyid="(SHA256:[A-Za-z0-9+/]{43})"\s+ts="(\d{1,12})"\s+'
                    r'sig="([A-Za-z0-9+/=]{1,8192})"\s*$')


def parse_public_key(text: str) -> tuple[str, str, str]:
    """(type, base64 blob, fingerprint) of one OpenSSH public key line."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if len(lines) != 1:
        raise BadRequest("give exactly one OpenSSH public key (a FILE.pub line: TYPE BASE64 [COMMENT])")
    parts = lines[0].split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise BadRequest(f"not an OpenSSH public key: its type must be one of {', '.join(sorted(KEY_TYPES))}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("not an OpenSSH public key: its key data is not base64") from None
    # the blob starts with its own type as an SSH string: a pasted line of another kind does not
    if len(blob) < 4 or blob[4:4 + int.from_bytes(blob[:4], "big")] != parts[0].encode():
        raise BadRequest("not an OpenSSH public key: its key data does not match its type")
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return parts[0], parts[1], fingerprint


def add(session: Session, user: str, text: str) -> str:
    """Register a public key for user (made if new); returns its fingerprint."""
    from roar.glaas.store.tokens import NAME

    if not NAME.match(user):
        raise BadRequest(f"bad user name {user!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    kind, blob, fingerprint = parse_public_key(text)
    owner = _get_or_create(session, User, name=user)
    existing = session.scalar(select(SshKey).where(SshKey.fingerprint == fingerprint))
    if existing is not None and existing.user_id != owner.id:
        raise BadRequest(f"key {fingerprint} is registered to another user: remove it there first")
    if existing is None:
        session.add(SshKey(fingerprint=fingerprint, user_id=owner.id, key_type=kind, key_blob=blob,
                           created_at=now()))
    session.commit()
    return fingerprint


def remove(session: Session, fingerprint: str) -> str:
    row = session.scalar(select(SshKey).where(SshKey.fingerprint == fingerprint))
    if row is None:
        raise NotFound(f"no key {fingerprint} is registered: `ssh-keygen -lf FILE.pub` prints a key's "
                       "SHA256:... fingerprint")
    session.delete(row)
    session.commit()
    return fingerprint


def signed_bytes(ts: str, method: str, path: str, body: bytes) -> bytes:
    text = f"{ts}\n{method}\n{path}"
    if body:
        text += f"\n{hashlib.sha256(body).hexdigest()}"
    return text.encode()


def _armor(signature: bytes) -> str:
    b64 = base64.b64encode(signature).decode()
    return "-----BEGIN SSH SIGNATURE-----\n" + "\n".join(b64[i:i + 70] for i in range(0, len(b64), 70)) + \
        "\n-----END SSH SIGNATURE-----\n"


def ssh_keygen_verify(key_type: str, key_blob: str, signature: bytes, message: bytes) -> bool:
    """Whether `ssh-keygen -Y verify` accepts signature of message by this key, namespace glaas."""
    program = shutil.which("ssh-keygen")
    if program is None:
        raise Unauthorized("SSH signature authentication needs ssh-keygen on the server: use a Bearer token")
    with tempfile.TemporaryDirectory(prefix="roar-glaas-sig-") as tmp:
        allowed, sig = Path(tmp) / "allowed_signers", Path(tmp) / "request.sig"
        allowed.write_text(f'glaas namespaces="{NAMESPACE}" {key_type} {key_blob}\n')
        sig.write_text(_armor(signature))
        done = subprocess.run([program, "-Y", "verify", "-f", str(allowed), "-I", "glaas", "-n", NAMESPACE,
                               "-s", str(sig)], input=message, capture_output=True, timeout=10)
    return done.returncode == 0


def principal(session: Session, header_value: str, method: str, path: str, body: bytes) -> Principal:
    """The user whose registered key signed this request, or Unauthorized saying why not."""
    found = HEADER.match(header_value)
    if found is None:
        raise Unauthorized('malformed Signature header: send keyid="SHA256:..." ts="<unix time>" '
                           'sig="<base64>"')
    keyid, ts, sig_b64 = found.groups()
    if abs(time.time() - int(ts)) > WINDOW:
        raise Unauthorized(f"signature timestamp {ts} is more than {WINDOW} s from the server's clock: "
                           "check the clock, and sign each request afresh")
    key = session.scalar(select(SshKey).where(SshKey.fingerprint == keyid))
    if key is None:
        raise Unauthorized(f"key {keyid} is not registered on this server: ask its admin to run "
                           "`roar glaas key add --user NAME FILE.pub`")
    try:
        signature = base64.b64decode(sig_b64, validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized("malformed Signature header: sig is not base64") from None
    if not ssh_keygen_verify(key.key_type, key.key_blob, signature, signed_bytes(ts, method, path, body)):
        raise Unauthorized(f"bad signature for key {keyid}: sign \"ts\\nMETHOD\\npath[\\nsha256(body)]\" "
                           f"with `ssh-keygen -Y sign -n {NAMESPACE}`")
    if method not in ("GET", "HEAD"):
        _refuse_replay(session, sha256(sig_b64))
    user = session.get(User, key.user_id)
    member_of = frozenset(session.scalars(select(Member.project_id).where(Member.user_id == key.user_id)))
    return Principal(user_id=key.user_id, user_name=user.name if user else None, member_of=member_of)


def _refuse_replay(session: Session, digest: str) -> None:
    from sqlalchemy.dialects import postgresql, sqlite

    cutoff = now() - timedelta(seconds=2 * WINDOW)   # older ones fail the timestamp check anyway
    session.execute(delete(SeenSignature).where(SeenSignature.seen_at < cutoff))
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # one statement decides, so two servers receiving the same request at once admit one
    first = session.execute(dialect.insert(SeenSignature).values(digest=digest, seen_at=now())
                            .on_conflict_do_nothing(index_elements=["digest"])
                            .returning(SeenSignature.digest)).scalar()
    session.commit()
    if first is None:
        raise Unauthorized("this signed request was already received: sign each request afresh")

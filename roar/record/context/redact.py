"""What counts as a secret: variable names, credential-looking values, URLs.

One place decides, so the environment, git remotes and get/put URLs are
redacted by the same rules (docs/context.md lists them):

- a name is secret when one of its words (split on `_`, `-`, `.`, camelCase not
  considered) is a secret keyword (TOKEN, SECRET, PASSWORD, KEY, ...), a plural
  of one, or ends with a long one (`APITOKEN`, `PGPASSWORD`, `APIKEY`);
- a value is secret when it holds a URL with a user/password part, or starts
  like a well-known token (GitHub, GitLab, Slack, AWS access key ids, ...);
- a URL keeps its scheme, host, path and harmless query parameters; its
  user:password part and secret-named query parameters are removed.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

KEYWORDS = frozenset({
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "KEY", "CREDENTIAL", "CREDS", "AUTH",
    "OAUTH", "AUTHORIZATION", "PRIVATE", "SESSION", "COOKIE", "SIGNATURE", "SIG", "APIKEY", "PAT",
    "SALT", "PASSPHRASE",
})
# words ending with one of these are secret too: APITOKEN, PGPASSWORD, SECRETKEY
SUFFIXES = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS",
            "APIKEY", "ACCESSKEY", "SECRETKEY", "PRIVATEKEY", "COOKIE", "SIGNATURE")
# PWD is the working directory, not a password; keep the obvious non-secrets readable
NOT_SECRET = frozenset({"PWD", "OLDPWD", "KEYBOARD", "XKB_DEFAULT_LAYOUT"})

TOKEN_PREFIXES = re.compile(
    r"^(gh[pousr]_[A-Za-z0-9]{20,}|github_pat_\w{20,}|glpat-[\w-]{20,}|xox[abposr]-[\w-]{10,}"
    r"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|sk-[A-Za-z0-9_-]{20,}|hf_[A-Za-z0-9]{20,}|AIza[\w-]{30,}"
    r"|Bearer\s+\S+|Basic\s+\S+)"
)
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]*@)")


def is_secret_name(name: str, extra: Iterable[str] = ()) -> bool:
    """True for a variable (or query parameter) name that must not be written."""
    upper = name.upper()
    if upper in NOT_SECRET:
        return False
    if any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in extra):
        return True
    for word in re.split(r"[_\-.\s]+", upper):
        if not word:
            continue
        if word in KEYWORDS or (word.endswith("S") and word[:-1] in KEYWORDS):
            return True
        if word.endswith(SUFFIXES):
            return True
    return False


def is_secret_value(value: str) -> bool:
    """True for a value that looks like a credential whatever its name."""
    return bool(TOKEN_PREFIXES.match(value.strip()))


def scrub_value(value: str) -> str:
    """The value with every URL's user:password part removed, or REDACTED
    when the value itself looks like a token."""
    if is_secret_value(value):
        return REDACTED
    if "://" not in value:
        return value
    return URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", value)


def strip_url(url: str) -> str:
    """A URL safe to record: no user or password, no secret-named query
    parameters (`https://user:tok@host/p?token=x&a=1` -> `https://host/p?a=1`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query:
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not is_secret_name(k)]
        query = urlencode(kept)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))

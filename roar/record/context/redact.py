"""What counts as a secret: variable names, credential-looking values, URLs, command lines.

One place decides, so the environment, the command line, git remotes and
get/put URLs are redacted by the same rules (docs/context.md lists them):

- a name is secret when one of its words (split on `_`, `-`, `.`, camelCase not
  considered) is a secret keyword (TOKEN, SECRET, PASSWORD, KEY, PWD, JWT, ...),
  a plural of one, ends with a long one (`APITOKEN`, `PGPASSWORD`, `SSHPASS`),
  or the whole name matches a pattern of SECRET_NAME_PATTERNS (`*_CRED*`);
- a value is scrubbed piece by piece: a PEM private key anywhere makes the
  whole value secret; well-known token formats (GitHub, Stripe, JWTs, ...),
  the user:password part of URLs, webhook URLs, secret-named query parameters
  and `Password=`/`AccountKey=` parts of connection strings are replaced;
- a URL to record (strip_url) keeps its scheme, host, path and harmless query
  parameters; its user:password part and secret-named query parameters are removed;
- a command line (scrub_argv) has the values of secret-named options
  (`--password=X`, `--token X`) replaced, and every argument scrubbed as a value.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from typing import Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

KEYWORDS = frozenset({
    "TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PWD", "KEY", "CREDENTIAL", "CREDS", "AUTH",
    "OAUTH", "AUTHORIZATION", "PRIVATE", "SESSION", "COOKIE", "SIGNATURE", "SIG", "APIKEY", "PAT",
    "SALT", "PASSPHRASE", "JWT", "WEBHOOK",
})
# words ending with one of these are secret too: APITOKEN, PGPASSWORD, SECRETKEY, SSHPASS
SUFFIXES = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASS", "PASSPHRASE", "CREDENTIAL", "CREDENTIALS",
            "APIKEY", "ACCESSKEY", "ACCOUNTKEY", "SECRETKEY", "PRIVATEKEY", "COOKIE", "SIGNATURE", "JWT")
# whole names that are secret though no word says so (glob, case-insensitive)
SECRET_NAME_PATTERNS = ("*_CRED*",)
# PWD is the working directory, not a password; keep the obvious non-secrets readable
NOT_SECRET = frozenset({"PWD", "OLDPWD", "KEYBOARD", "XKB_DEFAULT_LAYOUT"})
# words that end like a secret but are not one
NOT_SECRET_WORDS = frozenset({"BYPASS", "COMPASS", "ASKPASS"})   # ASKPASS: a program to run
# an option naming where a secret is (`--password-file PATH`) does not hold it
LOCATION_WORDS = frozenset({"FILE", "PATH", "DIR", "ENV", "FD", "CMD", "COMMAND", "HELPER", "STDIN"})

# A PEM private key anywhere in a value: the whole value is secret (the key spans lines).
PEM_PRIVATE_KEY = re.compile(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")

# Well-known token formats, found anywhere in a value; each match is replaced.
_EDGE = r"(?<![A-Za-z0-9_-])"
TOKEN_FORMATS = tuple(re.compile(_EDGE + pattern) for pattern in (
    r"gh[pousr]_[A-Za-z0-9]{20,}",                       # GitHub
    r"github_pat_\w{20,}",
    r"gl(?:pat|ptt|dt|rt|cbt|soat|ft|imt)-[\w-]{20,}",   # GitLab
    r"xox[abposre]-[\w-]{10,}",                          # Slack
    r"(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Za-z])",         # AWS access key ids
    r"sk-[A-Za-z0-9]{32,}",                              # OpenAI (legacy)
    r"sk-(?:proj|ant|svcacct|admin)-[\w-]{20,}",         # OpenAI, Anthropic
    r"hf_[A-Za-z0-9]{30,}",                              # Hugging Face
    r"AIza[\w-]{30,}",                                   # Google API keys
    r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}",         # Stripe secret and restricted keys
    r"whsec_[A-Za-z0-9]{20,}",                           # Stripe webhook secrets
    r"npm_[A-Za-z0-9]{30,}",                             # npm
    r"pypi-AgE[\w-]{40,}",                               # PyPI
    r"dckr_pat_[\w-]{20,}",                              # Docker Hub
    r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",  # JWT (CI_JOB_JWT, id tokens)
))
# `Authorization: Bearer X` and the like: the scheme stays, the credential goes.
AUTH_SCHEME = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+[A-Za-z0-9._~+/-]{8,}=*")
# openssl's `-passin pass:SECRET`
PASS_ARGUMENT = re.compile(r"^pass:.+", re.S)

URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@\s]*@)")
# Webhook URLs are credentials in their path: keep the service, drop the rest.
WEBHOOK_URLS = tuple(re.compile(pattern, re.I) for pattern in (
    r"^(?P<keep>https?://hooks\.slack\.com/)\S+",
    r"^(?P<keep>https?://(?:[\w-]+\.)?discord(?:app)?\.com/api/webhooks/)\S+",
    r"^(?P<keep>https?://[\w.-]+\.webhook\.office\.com/)\S+",
))
QUERY_PARAMETER = re.compile(r"(?P<sep>[?&;])(?P<key>[^=&#;\s]+)=(?P<value>[^&#;\s]*)")

# `Password=x;AccountKey=y` (connection strings), `API_TOKEN=x`, `--password=x` inside a value:
# the key stays, a secret key's value goes. In a connection string the value runs to `;`.
CONNECTION_PART = re.compile(r"(?:^|(?<=;))(?P<key>\s*[A-Za-z][\w ]*?)\s*=(?P<value>[^;]*)")
ASSIGNMENT = re.compile(r"(?:^|(?<=[\s;&?,]))(?P<key>-{0,2}[A-Za-z][\w.-]*)="
                        r"(?P<value>\"[^\"]*\"|'[^']*'|[^\s;&]*)")
JSON_MEMBER = re.compile(r"\"(?P<key>[^\"]+)\"\s*:\s*\"(?P<value>(?:[^\"\\]|\\.)*)\"")
HEADER = re.compile(r"^(?P<key>[A-Za-z][\w-]*):\s*(?P<value>.+)$", re.S)

# Options that hold a secret though their name does not say so: {program: {option: takes next}}
PROGRAM_OPTIONS = {
    "sshpass": {"-p": True},
    "mysql": {"-p": False}, "mysqldump": {"-p": False}, "mysqladmin": {"-p": False},
    "curl": {"-u": True, "--user": True, "--proxy-user": True},
}


def is_secret_name(name: str, extra: Iterable[str] = ()) -> bool:
    """True for a variable (or query parameter) name that must not be written."""
    upper = name.upper()
    if upper in NOT_SECRET:
        return False
    if any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in (*SECRET_NAME_PATTERNS, *extra)):
        return True
    for word in re.split(r"[_\-.\s]+", upper):
        if not word or word in NOT_SECRET_WORDS:
            continue
        if word in KEYWORDS or (word.endswith("S") and word[:-1] in KEYWORDS):
            return True
        if word.endswith(SUFFIXES):
            return True
    return False


def is_secret_value(value: str) -> bool:
    """True for a value that holds something credential-like whatever its name."""
    return scrub_value(value) != value


def _keyed(pattern: re.Pattern[str]) -> Callable[[str], str]:
    """A rule that replaces the `value` group of every match whose `key` is a secret name."""
    def rule(text: str) -> str:
        def replace(m: re.Match[str]) -> str:
            if not m.group("value") or not is_secret_name(m.group("key").strip().lstrip("-")):
                return m.group(0)
            start, end = m.span("value")
            return m.group(0)[:start - m.start()] + REDACTED + m.group(0)[end - m.start():]
        return pattern.sub(replace, text)
    return rule


def _scrub_url(url: str) -> str:
    for webhook in WEBHOOK_URLS:
        if webhook.match(url):
            return webhook.sub(lambda m: m.group("keep") + REDACTED, url)
    url = URL_USERINFO.sub(lambda m: m.group("scheme") + REDACTED + "@", url)
    return _keyed(QUERY_PARAMETER)(url) if "?" in url else url


def _tokens(text: str) -> str:
    for pattern in TOKEN_FORMATS:
        text = pattern.sub(REDACTED, text)
    text = AUTH_SCHEME.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)
    return PASS_ARGUMENT.sub("pass:" + REDACTED, text)


# Applied in order to every value; each returns the text with what it recognises replaced.
VALUE_RULES: tuple[Callable[[str], str], ...] = (
    _tokens,
    lambda text: URL.sub(lambda m: _scrub_url(m.group(0)), text) if "://" in text else text,
    _keyed(JSON_MEMBER),
    _keyed(HEADER),
    lambda text: _keyed(CONNECTION_PART)(text) if ";" in text else text,
    _keyed(ASSIGNMENT),
)


def scrub_value(value: str) -> str:
    """The value with everything credential-like in it replaced by REDACTED (all of
    it when it holds a private key)."""
    # a build's processes repeat their arguments (-O2, -o, the same paths): ~1,500 values
    # for a make of 41 files, most seen before. The rules are a pure function of the text.
    if len(value) <= CACHED_VALUE_CHARS:
        return _scrub_value_cached(value)
    return _scrub_value(value)


CACHED_VALUE_CHARS = 512


def _scrub_value(value: str) -> str:
    if PEM_PRIVATE_KEY.search(value):
        return REDACTED
    for rule in VALUE_RULES:
        value = rule(value)
    return value


_scrub_value_cached = functools.lru_cache(maxsize=4096)(_scrub_value)   # 2 MB at most


@functools.lru_cache(maxsize=4096)
def _is_secret_option(flag: str) -> bool:
    name = flag.lstrip("-")
    words = re.split(r"[_\-.]+", name.upper())
    return bool(name) and words[-1] not in LOCATION_WORDS and is_secret_name(name)


def scrub_argv(argv: list[str]) -> list[str]:
    """The command line with credentials replaced: the value of a secret-named option
    (`--password=X`, `--token X`, `-storepass X`; not `--password-file X`), the
    password options of a few programs (`sshpass -p X`, `mysql -pX`), and anything
    scrub_value finds in an argument (URL userinfo, token formats, `KEY=secret`)."""
    program = os.path.basename(argv[0]) if argv else ""
    extra = PROGRAM_OPTIONS.get(program, {})
    out: list[str] = []
    secret_next = False
    for arg in argv:
        if secret_next:
            secret_next = False
            if not arg.startswith("--"):        # `--password --host h`: no value was given
                out.append(REDACTED)
                continue
        flag, eq, value = arg.partition("=")
        if arg.startswith("-") and out and (_is_secret_option(flag) or flag in extra):
            if eq:
                out.append(f"{flag}={REDACTED}" if value else arg)
            else:
                secret_next = extra.get(flag, True)
                out.append(arg)
            continue
        short = next((f for f in extra if len(f) == 2 and arg.startswith(f) and len(arg) > 2), None)
        if short and out:
            out.append(short + REDACTED)        # `mysql -phunter2`
            continue
        out.append(scrub_value(arg))
    return out


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

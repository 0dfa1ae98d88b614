"""Secrets never reach .roar/: the environment and the command line are redacted
before a record is written (roar.record.context.redact, docs/security.md).

The unit tests pin each rule (and what must stay readable); the end-to-end test
runs a real `roar run` with every kind of secret in its environment and on its
command line, then reads every byte under .roar/ (records, index, WAL, cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roar.record.context import env
from roar.record.context.redact import REDACTED, is_secret_name, scrub_argv, scrub_value
from tests.security.conftest import roar

JWT = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJqb2JfNDI0MiIsIm5hbWVzcGFjZSI6ImdydXAifQ."
       "c2lnbmF0dXJlLW9mLXRoZS1qd3QtNDI0Mg")
PEM = ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAPEMSECRET\n"
       "-----END OPENSSH PRIVATE KEY-----\n")

# name -> (value, the part of it that must never be written)
SECRET_ENV = {
    "MYSQL_PWD": ("mysqlpw-9f3a1c", "mysqlpw-9f3a1c"),
    "SSHPASS": ("sshpass-77b2e0", "sshpass-77b2e0"),
    "CI_JOB_JWT": (JWT, JWT),
    "BUILD_NOTE": (f"id token {JWT} attached", JWT),                     # a JWT under any name
    "AZURE_STORAGE_CONNECTION_STRING": (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=azkeyQ29ubmVjdGlvbktleQ==;"
        "EndpointSuffix=core.windows.net", "azkeyQ29ubmVjdGlvbktleQ"),
    "DB_CONN": ("Server=db;Database=app;User Id=sa;Password=sqlpw 51ce;", "sqlpw 51ce"),
    "NOTIFY_URL": ("https://hooks.slack.com/services/T0001/B0001/slackhook0123abc", "slackhook0123abc"),
    "CHAT": ("https://discord.com/api/webhooks/1234567890/discordhook0456def", "discordhook0456def"),
    "PAYMENTS": ("sk_live_stripelive0123456789", "stripelive0123456789"),
    "PAYMENTS_RO": ("rk_live_striperestricted987", "striperestricted987"),
    "DEPLOY_CERT": (PEM, "PEMSECRET"),
    "AWS_CRED_BLOB": ("credblob-4242", "credblob-4242"),
}
GHP = "ghp_" + "C0mmandL1neT0ken" * 2 + "abcd"
# arguments after `sh -c SCRIPT sh`, and the secrets they hold
SECRET_ARGS = ["--password=clipw-1a2b", "--token", "clitok-3c4d", "https://deploy:urlpw-5e6f@example.com/x",
               GHP, "--api-key", "cliapikey-7a8b", "Authorization: Bearer clibearer-9c0d"]
SECRET_ARG_VALUES = ["clipw-1a2b", "clitok-3c4d", "urlpw-5e6f", GHP, "cliapikey-7a8b", "clibearer-9c0d"]


@pytest.mark.parametrize("name", [
    "MYSQL_PWD", "SSHPASS", "CI_JOB_JWT", "CI_JOB_JWT_V2", "AWS_CRED", "GIT_CREDENTIALS_STORE", "X_CREDS",
    "SLACK_WEBHOOK", "DBPASS", "GITHUB_TOKEN", "PGPASSWORD",
])
def test_secret_names(name):
    assert is_secret_name(name)
    assert env.redacted({name: "plain"}) == {name: REDACTED}


@pytest.mark.parametrize("name", ["PWD", "OLDPWD", "PATH", "HOME", "CREDO", "TOKENIZERS_PARALLELISM",
                                  "GIT_ASKPASS", "NO_PROXY_BYPASS", "KEYBOARD", "LANG"])
def test_ordinary_names(name):
    assert not is_secret_name(name)


BY_NAME_ONLY = ("MYSQL_PWD", "SSHPASS", "AWS_CRED_BLOB")   # ordinary values: only the name gives them away


BY_VALUE = [(v, s) for n, (v, s) in SECRET_ENV.items() if n not in BY_NAME_ONLY]


@pytest.mark.parametrize("value, secret", BY_VALUE + [
    ("postgres://alice:hunter2@db.example/prod", "hunter2"),
    ("https://h.example/p?access_token=tok123&a=1", "tok123"),
    ("https://acme.webhook.office.com/webhookb2/teamshook789", "teamshook789"),
    ('{"type": "service_account", "private_key_id": "pkid-0099"}', "pkid-0099"),
    ("Authorization: Bearer abcdefghijk0123", "abcdefghijk0123"),
    ("Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=sbkey+123=",
     "sbkey+123"),
])
def test_secret_values_are_scrubbed_whatever_the_name(value, secret):
    scrubbed = scrub_value(value)
    assert secret not in scrubbed and REDACTED in scrubbed
    assert env.redacted({"INNOCENT": value})["INNOCENT"] == scrubbed


def test_scrubbing_keeps_what_is_not_secret():
    assert scrub_value("AccountName=acct;AccountKey=k0;EndpointSuffix=core.windows.net") == \
        f"AccountName=acct;AccountKey={REDACTED};EndpointSuffix=core.windows.net"
    assert scrub_value("https://hooks.slack.com/services/T/B/x") == f"https://hooks.slack.com/{REDACTED}"
    assert scrub_value("https://h/p?token=x&page=2") == f"https://h/p?token={REDACTED}&page=2"
    assert scrub_value(PEM) == REDACTED


@pytest.mark.parametrize("value", [
    "/usr/local/bin:/usr/bin:/bin", "/home/u/data/session=12/part.csv", "/home/u/sk-learn-benchmark-results",
    "12345", "true", "en_US.UTF-8", "hello world", "rs=0:di=01;34:ln=01;36", "https://pypi.org/simple",
    "/home/u/PASSWORD.txt", "xterm-256color", "eyJustAWord",
])
def test_ordinary_values_are_kept(value):
    assert scrub_value(value) == value


def test_pwd_is_kept():
    assert env.redacted({"PWD": "/home/u", "OLDPWD": "/tmp"}) == {"PWD": "/home/u", "OLDPWD": "/tmp"}


@pytest.mark.parametrize("argv, expected", [
    (["mysql", "--password=hunter2", "db"], ["mysql", f"--password={REDACTED}", "db"]),
    (["gh", "--token", "abc", "x"], ["gh", "--token", REDACTED, "x"]),
    (["git", "clone", "https://u:pw@host/r"], ["git", "clone", f"https://{REDACTED}@host/r"]),
    (["tool", GHP], ["tool", REDACTED]),
    (["keytool", "-storepass", "s3"], ["keytool", "-storepass", REDACTED]),
    (["sshpass", "-p", "pw", "ssh", "h"], ["sshpass", "-p", REDACTED, "ssh", "h"]),
    (["mysql", "-ppw", "-p", "db"], ["mysql", f"-p{REDACTED}", "-p", "db"]),
    (["curl", "-u", "me:pw", "-H", "Authorization: Bearer abcdefgh12", "https://h"],
     ["curl", "-u", REDACTED, "-H", f"Authorization: {REDACTED}", "https://h"]),
    (["env", "API_TOKEN=abc", "make"], ["env", f"API_TOKEN={REDACTED}", "make"]),
    (["sh", "-c", "deploy --password=pw1 now"], ["sh", "-c", f"deploy --password={REDACTED} now"]),
])
def test_credential_arguments_are_redacted(argv, expected):
    assert scrub_argv(argv) == expected


@pytest.mark.parametrize("argv", [
    ["make", "-j4", "all"], ["python", "train.py", "--epochs", "3", "--out", "/data/model.pt"],
    ["tool", "--password-file", "/run/secrets/pw"], ["tool", "--password", "--host", "h"],
    ["password", "reset"], ["cp", "/home/u/token.txt", "/tmp/x"], ["docker", "run", "-p", "8080:80", "img"],
])
def test_ordinary_command_lines_are_kept(argv):
    assert scrub_argv(argv) == argv


def test_new_record_redacts_command_argv_and_processes():
    from roar.record.job import new_record

    processes = [{"pid": 2, "ppid": 1, "argv": ["curl", "--token", "ptok"]}]
    rec = new_record("run", ["sh", "-c", "x", "--password=pw"], "/", 0.0, 1.0, processes=processes)
    assert rec["argv"] == ["sh", "-c", "x", f"--password={REDACTED}"]
    assert rec["command"] == f"sh -c x '--password={REDACTED}'"
    assert rec["processes"][0]["argv"] == ["curl", "--token", REDACTED]
    assert rec["argv_redacted"] is True
    assert processes[0]["argv"] == ["curl", "--token", "ptok"]         # the caller's list is left alone
    assert new_record("run", ["make"], "/", 0.0, 1.0)["argv_redacted"] is False


@pytest.mark.root
def test_no_secret_reaches_any_byte_under_dot_roar(tmp_path: Path):
    run_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8",
               **{name: value for name, (value, _) in SECRET_ENV.items()}}
    (tmp_path / "in.txt").write_text("data")
    # the root process and a child both carry the secrets in argv
    proc = roar("run", "-q", "--", "sh", "-c", '/bin/true "$@"; cat in.txt > out.txt', "sh", *SECRET_ARGS,
                cwd=tmp_path, env=run_env | {"ROAR_TEST": "1"})
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    shown = roar("show", "@1", "--json", cwd=tmp_path, env=run_env)
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert record["argv_redacted"] is True
    assert any(p["argv"][:1] == ["/bin/true"] for p in record["processes"]), record["processes"]
    variables = record["context"]["environment"]["variables"]
    assert variables["PATH"] == run_env["PATH"] and variables["ROAR_TEST"] == "1"   # the rest is kept
    assert variables["MYSQL_PWD"] == REDACTED

    secrets = [s for _, s in SECRET_ENV.values()] + SECRET_ARG_VALUES
    files = [p for p in (tmp_path / ".roar").rglob("*") if p.is_file()]
    assert any(p.suffix == ".msgpack" for p in files) and any(p.name == "roar.db" for p in files), files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} is stored in {path}"

"""Environment redaction: secret names, credential values, ROAR_REDACT."""

from __future__ import annotations

import pytest

from roar.record.context import env
from roar.record.context.redact import REDACTED, strip_url


@pytest.mark.parametrize("name", [
    "GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "MYSQL_PWD_PASSWD", "API_KEY", "OPENAI_APIKEY",
    "GOOGLE_APPLICATION_CREDENTIALS", "HTTP_AUTH", "SSH_PRIVATE_KEY", "SESSION_ID", "COOKIE_JAR",
    "hf_token", "Db.Password", "X-Amz-Security-Token",
])
def test_secret_names_are_redacted(name):
    assert env.redacted({name: "s3cr3t"}) == {name: REDACTED}


@pytest.mark.parametrize("name", ["PATH", "HOME", "PWD", "OLDPWD", "LANG", "TOKENIZERS_PARALLELISM",
                                  "KEYBOARD", "CUDA_VISIBLE_DEVICES", "MONKEYPATCH"])
def test_ordinary_names_are_kept(name):
    assert env.redacted({name: "value"}) == {name: "value"}


def test_credentials_in_url_values_are_removed():
    out = env.redacted({"DATABASE_URL": "postgres://alice:hunter2@db.example/prod",
                        "PIP_INDEX": "see https://u:pw@pypi.example/simple and http://x"})
    assert out["DATABASE_URL"] == f"postgres://{REDACTED}@db.example/prod"
    assert "hunter2" not in out["PIP_INDEX"] and "pw@" not in out["PIP_INDEX"]
    assert out["PIP_INDEX"].endswith("and http://x")


def test_token_shaped_values_are_redacted_whatever_the_name():
    got = env.redacted({"X": "ghp_" + "a" * 36, "Y": "AKIAABCDEFGHIJKLMNOP"})
    assert got == {"X": REDACTED, "Y": REDACTED}


def test_roar_redact_adds_glob_patterns():
    out = env.redacted({"ROAR_REDACT": "internal_*, DSN", "INTERNAL_HOST": "h", "DSN": "d", "OTHER": "o"})
    assert out == {"ROAR_REDACT": "internal_*, DSN", "INTERNAL_HOST": REDACTED, "DSN": REDACTED, "OTHER": "o"}


def test_capture_lists_the_redacted_names():
    got = env.capture({"A_TOKEN": "t", "PATH": "/bin"})
    assert got["redacted"] == ["A_TOKEN"]
    assert got["variables"] == {"A_TOKEN": REDACTED, "PATH": "/bin"}


def test_strip_url_removes_userinfo_and_secret_query_parameters():
    assert strip_url("https://user:tok@host.example/p/q?token=x&a=1") == "https://host.example/p/q?a=1"
    assert strip_url("https://b.s3.amazonaws.com/k?X-Amz-Signature=s&X-Amz-Credential=c&v=2") == \
        "https://b.s3.amazonaws.com/k?v=2"

"""The CI rule of tests/conftest.py, checked by running pytest on it: as a user
who is not root, with CI=true (or ROAR_REQUIRE_EBPF=1), a skipped eBPF/root
test or a test skipped for a missing required tool fails the run; without CI
the same tests skip cleanly.

pytest runs in a subprocess on a copy of tests/ and pyproject.toml in a
directory the other user can read, so the project's own conftest is the one
that decides, on generated tests and on real modules alike."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parents[2]

GENERATED = '''
import pytest

@pytest.mark.ebpf
def test_needs_kernel():
    pass

@pytest.mark.root
def test_needs_root():
    pass

@pytest.mark.ebpf
def test_skips_itself():
    pytest.skip("not a dpkg system")

@pytest.fixture
def missing_thing():
    pytest.skip("a fixture could not set up")

@pytest.mark.root
def test_fixture_skips(missing_thing):
    pass

@pytest.mark.skipif(True, reason="bpftool is not installed")
def test_no_bpftool():
    pass

@pytest.mark.skipif(True, reason="no C compiler")
def test_no_cc():
    pass

def test_optional_tool():
    pytest.skip("Graphviz `dot` is not installed")

@pytest.mark.xfail(reason="a known gap", strict=True)
def test_known_gap():
    assert False

def test_plain():
    pass
'''
MUST_NOT_SKIP = {"test_needs_kernel", "test_needs_root", "test_skips_itself", "test_fixture_skips",
                 "test_no_bpftool", "test_no_cc"}


@pytest.fixture(scope="module")
def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


@pytest.fixture(scope="module")
def sandbox(nobody: pwd.struct_passwd):
    """A copy of the test tree (the real conftest files) plus one generated module,
    owned by `nobody`, in a directory every user can reach."""
    root = Path(tempfile.mkdtemp(prefix="roar-meta-", dir="/tmp"))
    root.chmod(0o755)
    shutil.copy(REPO / "pyproject.toml", root)
    shutil.copytree(REPO / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__", "meta"))
    (root / "tests" / "generated").mkdir()
    (root / "tests" / "generated" / "__init__.py").write_text("")
    (root / "tests" / "generated" / "test_generated.py").write_text(GENERATED)
    for path in [root, *root.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    yield root
    shutil.rmtree(root)


def pytest_in(sandbox: Path, *args: str, ci: dict[str, str], user: pwd.struct_passwd | None = None,
              path: str | None = None) -> tuple[int, dict[str, str], str]:
    """Run pytest in the sandbox: (exit code, {test name: outcome}, output)."""
    if not all(os.stat(p).st_mode & 0o005 == 0o005 for p in Path(sys.executable).resolve().parents):
        pytest.fail(f"{sys.executable} must be reachable by other users (scripts/test uses /opt/roar/venv)")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ROAR_REQUIRE_EBPF")}
    env.update(ci, PYTHONDONTWRITEBYTECODE="1", HOME=str(sandbox))
    if path is not None:
        env["PATH"] = path
    report = sandbox / f"report-{os.urandom(4).hex()}.xml"
    prefix = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    proc = subprocess.run([*prefix, sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA",
                           f"--junitxml={report}", *args], cwd=sandbox, env=env, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert report.exists(), output
    outcomes = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    report.unlink()
    return proc.returncode, outcomes, output


@pytest.mark.parametrize("ci", [{"CI": "true"}, {"ROAR_REQUIRE_EBPF": "1"}], ids=["CI", "ROAR_REQUIRE_EBPF"])
def test_as_non_root_in_ci_a_skip_is_a_failure(sandbox: Path, nobody: pwd.struct_passwd, ci: dict) -> None:
    code, outcomes, output = pytest_in(sandbox, "tests/generated", ci=ci, user=nobody)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    for name in MUST_NOT_SKIP:
        assert outcomes[name] in ("failure", "error"), (name, output)
    assert outcomes["test_optional_tool"] == "skipped", output      # not a tool CI promises
    assert outcomes["test_known_gap"] == "skipped", output          # an xfail stays an xfail
    assert outcomes["test_plain"] == "passed", output
    assert "skips refused in CI" in output and "needs ebpf: not root" in output, output


def test_as_non_root_without_ci_they_skip_cleanly(sandbox: Path, nobody: pwd.struct_passwd) -> None:
    code, outcomes, output = pytest_in(sandbox, "tests/generated", ci={}, user=nobody)
    assert code == pytest.ExitCode.OK, output
    for name in MUST_NOT_SKIP | {"test_optional_tool", "test_known_gap"}:
        assert outcomes[name] == "skipped", (name, output)
    assert "skips refused in CI" not in output


REAL = ["tests/trace/test_run_cli.py::test_nothing_stays_attached_after_the_job",
        "tests/trace/test_run_cli.py::test_summary_line"]


def test_real_ebpf_module_as_non_root(sandbox: Path, nobody: pwd.struct_passwd) -> None:
    code, outcomes, output = pytest_in(sandbox, *REAL, ci={"CI": "true"}, user=nobody)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert set(outcomes.values()) <= {"failure", "error"} and len(outcomes) == 2, output
    code, outcomes, output = pytest_in(sandbox, *REAL, ci={}, user=nobody)
    assert code == pytest.ExitCode.OK and set(outcomes.values()) == {"skipped"}, output


def test_real_tool_skips_without_the_tools(sandbox: Path) -> None:
    """The bpftool and C compiler skips of real modules, with neither on PATH."""
    tests = ["tests/unit/test_event_layout.py::test_decoder_matches_c_layout",
             "tests/trace/test_run_cli.py::test_nothing_stays_attached_after_the_job"]
    code, outcomes, output = pytest_in(sandbox, *tests, ci={"CI": "true"}, path="/nonexistent")
    assert code == pytest.ExitCode.TESTS_FAILED, output
    assert outcomes == {"test_decoder_matches_c_layout": "error",
                        "test_nothing_stays_attached_after_the_job": "error"}, output
    assert "no C compiler" in output and "bpftool is not installed" in output, output
    code, outcomes, output = pytest_in(sandbox, *tests, ci={}, path="/nonexistent")
    assert code == pytest.ExitCode.OK and set(outcomes.values()) == {"skipped"}, output

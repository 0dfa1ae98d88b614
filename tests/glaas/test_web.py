"""The GLaaS web pages in a real headless Chromium (Debian's chromium + chromium-driver,
driven by Selenium), against a real `roar glaas serve` on SQLite and PostgreSQL.

A three-step pipeline is registered through the API; the browser starts on the final
artifact's page and reaches the first input by clicking links only. Another token's
browser sees of a private DAG only that its hash exists; hostile values stay text; no
request leaves loopback. Screenshots of every page at laptop and phone width go to
$ROAR_TEST_ARTIFACTS/web/ (default /tmp/roar-test-artifacts/web/)."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from roar.glaas.web import layout as dag_layout
from roar.glaas.web import present
from tests.glaas.conftest import Server, roar_cmd

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SIZES = {"laptop": (1366, 900), "phone": (390, 844)}
SHOTS = Path(os.environ.get("ROAR_TEST_ARTIFACTS", "/tmp/roar-test-artifacts")) / "web"
REMOTE = "https://github.com/example/pipeline.git"
COMMIT = "3" * 40


# ---------------------------------------------------------------- the browser

@pytest.fixture(scope="module")
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            pytest.skip(f"{path} is missing: apt-get install chromium chromium-driver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[test]'")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1366,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Network.enable", {})
    yield driver
    driver.quit()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(request, tmp_path_factory):
    """One `roar glaas serve` per database for the module: the tests register DAGs of their
    own (fresh hashes and uids), so they can share it, and a server start costs seconds."""
    for name in ("fastapi", "uvicorn", "sqlalchemy", "alembic", "psycopg", "jinja2"):
        pytest.importorskip(name, reason=f"the glaas extra is not installed ({name}): "
                                         "pip install -e '.[glaas]'")
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'glaas.db'}"
    else:
        url = request.getfixturevalue("postgres").new_database()
    srv = Server(url)
    srv.db_url = url
    yield srv
    srv.stop()


def make_token(site, user: str) -> str:
    """A token made in the server's database, as `roar glaas token create` makes it (in this
    process: a `roar` start costs seconds on a loaded machine)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from roar.glaas.db import normalize_url
    from roar.glaas.store import tokens

    engine = create_engine(normalize_url(site.db_url))
    try:
        with Session(engine) as session:
            return tokens.create(session, user)[1]
    finally:
        engine.dispose()


@pytest.fixture
def web(browser, site):
    """The browser, its cookies cleared (they are per host, not per port) and its network
    log emptied, pointed at this test's server."""
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    browser.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": False})
    browser.get_log("performance")
    yield Web(browser, site)
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


class Web:
    def __init__(self, driver, server) -> None:
        self.driver, self.server, self.visited = driver, server, []

    def open(self, path: str) -> None:
        self.driver.get(self.server.url + path)
        self.visited.append(self.driver.current_url)

    def click(self, css: str, text: str | None = None) -> None:
        """Click the first link matching css (and holding text), and wait for the next page."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        links = [e for e in self.driver.find_elements(By.CSS_SELECTOR, css) if text is None or text in e.text]
        assert links, f"no link {css!r} holding {text!r} on {self.driver.current_url}"
        before = self.driver.current_url
        old = self.driver.find_element(By.TAG_NAME, "html")
        links[0].click()
        WebDriverWait(self.driver, 10).until(ec.staleness_of(old))
        assert self.driver.current_url != before
        self.visited.append(self.driver.current_url)

    def text(self, css: str = "main") -> str:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css).text

    def all(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shoot(self, name: str) -> None:
        """The whole page at each width, as PNG files."""
        SHOTS.mkdir(parents=True, exist_ok=True)
        for size, (width, height) in SIZES.items():
            self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == "phone"})
            metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
            full = metrics["cssContentSize"]
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(full["height"], 8000), "scale": 1}})
            (SHOTS / f"{name}-{size}.png").write_bytes(base64.b64decode(shot["data"]))
            assert self.driver.execute_script("return document.documentElement.scrollWidth") <= width + 1, \
                f"{name} is wider than the {size} screen"
        self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    def requests(self) -> list[str]:
        urls = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                urls.append(message["params"]["request"]["url"])
        return urls


# ---------------------------------------------------------------- registering through the API

def digest() -> str:
    return secrets.token_hex(32)


def roar_metadata(step: int) -> dict:
    """Metadata as roar's own job record holds it."""
    return {"cwd": "/home/alice/pipeline",
            "context": {"machine": {"hostname": "gpu-box-7", "kernel": "6.1.0-18-amd64", "arch": "x86_64",
                                    "os": {"pretty_name": "Debian GNU/Linux 12 (bookworm)"},
                                    "cpu": {"model": "AMD EPYC 7763", "logical_cores": 64},
                                    "memory_bytes": 270 << 30, "gpus": [{"model": "NVIDIA A100"}]},
                        "git": {"remote": REMOTE, "branch": "main", "commit": COMMIT, "dirty": False},
                        "packages": {"python": [{"exe": "/usr/bin/python3.11", "version": "3.11.2",
                                                 "distributions": [{"name": "numpy", "version": "1.26.4"},
                                                                   {"name": "pandas", "version": "2.2.1"}]}],
                                     "system": [{"manager": "dpkg", "name": "libc6", "version": "2.36-9"}]}},
            "env_read": {"HOME": "/home/alice", "HF_TOKEN": "hf_abcdefghijklmnopqrstuvwxyz0123456789",
                         "LANG": None, "OMP_NUM_THREADS": str(step * 4)},
            "processes": [{"pid": 100, "ppid": 99, "exe": "/usr/bin/bash", "argv": ["bash", "run.sh"],
                           "exit_code": 0, "signal": None},
                          {"pid": 101, "ppid": 100, "exe": "/usr/bin/python3.11",
                           "argv": ["python3", f"step{step}.py"], "exit_code": 0, "signal": None}]}


def roar_cli_metadata() -> dict:
    """Metadata as roar-cli 0.4.7 sends it."""
    return {"roar_version": "0.4.7", "cwd": "",
            "runtime": {"hostname": "laptop",
                        "os": {"system": "Linux", "release": "6.1.0", "machine": "x86_64"},
                        "python": {"version": "3.11.7", "implementation": "CPython"},
                        "cpu": {"count": 8, "model": "Intel i7"}, "memory": {"total_mb": 16000},
                        "env_vars": {"CUDA_VISIBLE_DEVICES": "0"}},
            "packages": {"pip": {"torch": "2.3.0"}, "dpkg": {}},
            "git": {"commit": COMMIT, "branch": "main", "remote_url": REMOTE, "clean": True}}


def register_client_metadata() -> dict:
    """Metadata as roar's own `roar register` sends it (roar/remote/payload.py)."""
    return {"roar_version": "0.1.0", "cwd": "/home/alice/pipeline",
            "packages": {"pip": {"scikit-learn": "1.4.2"}, "dpkg": {"coreutils": "9.1-1"}},
            "runtime": {"os": {"pretty_name": "Ubuntu 24.04 LTS"}, "arch": "x86_64", "kernel": "6.8.0",
                        "cpu": {"model": "Xeon Gold 6338", "logical_cores": 32}, "memory_bytes": 64 << 30,
                        "gpu": [], "container": None, "python": [{"exe": "/usr/bin/python3.12",
                                                                  "version": "3.12.3"}],
                        "env_vars": {"PATH": "/usr/bin:/bin", "AWS_SECRET_ACCESS_KEY": "abc"}},
            "git": {"commit": COMMIT, "branch": "main", "dirty": True, "repo": REMOTE},
            "roar": {"uid": "0123456789abcdef", "status": "ok", "signal": None, "argv": ["python"],
                     "argv_redacted": False, "ended_at": 1796000002.5, "composites": []}}


def pipeline(commands=None, paths=None, metadata=None):
    """Three steps: raw -> clean, clean -> model, model + clean -> metrics."""
    commands = commands or ["python prepare.py raw.csv clean.csv", "python train.py --epochs 3 clean.csv",
                            "python evaluate.py model.pt clean.csv"]
    paths = paths or ["/home/alice/pipeline/data/raw.csv", "/home/alice/pipeline/data/clean.csv",
                      "/home/alice/pipeline/model.pt", "/home/alice/pipeline/metrics.json"]
    metadata = metadata or [register_client_metadata(), roar_cli_metadata(), roar_metadata(3)]
    arts = [digest() for _ in paths]
    jobs = [{"command": cmd, "timestamp": 1796000000.0 + 60 * i, "job_uid": secrets.token_hex(16),
             "git_commit": COMMIT, "git_branch": "main", "duration_seconds": [2.5, 4210.0, 0.4][i],
             "exit_code": 0, "job_type": "run", "step_number": i + 1, "metadata": json.dumps(metadata[i])}
            for i, cmd in enumerate(commands)]
    uids = [j["job_uid"] for j in jobs]
    edges = {uids[0]: ([0], [1]), uids[1]: ([1], [2]), uids[2]: ([2, 1], [3])}
    return jobs, edges, arts, paths


def register(srv, jobs, edges, arts, paths, token=None, visibility=None, labels=()):
    """Stage and finalize through the registration-session API: the session hash."""
    status, rs = srv.call("POST", "/registration-sessions", None if token else {"mode": "anonymous_public"},
                          token=token)
    assert status == 201, rs
    rid = rs["registration_session_id"]
    auth = {"token": token} if token else {"rs": rs["registration_session_token"]}
    base = f"/registration-sessions/{rid}"
    assert srv.call("POST", f"{base}/jobs/batch", {"jobs": jobs}, **auth)[0] == 201
    body = {"artifacts": [{"hashes": [{"algorithm": "blake3", "digest": d}, {"algorithm": "sha256",
                                                                             "digest": digest()}],
                           "size": 1000 * (i + 1), "source_type": None} for i, d in enumerate(arts)]}
    assert srv.call("POST", f"{base}/artifacts/batch", body, **auth)[0] == 201
    for uid, (ins, outs) in edges.items():
        for kind, items in (("inputs", ins), ("outputs", outs)):
            edge_body = {"artifacts": [{"hash": arts[i], "path": paths[i]} for i in items]}
            assert srv.call("POST", f"{base}/jobs/{uid}/{kind}", edge_body, **auth)[0] == 201
    final = {"git_repo": REMOTE, "git_commit": COMMIT, "git_branch": "main"}
    if visibility:
        final["scope_request"] = {"owner_resolution": "current_user", "owner_type": "user",
                                  "visibility": visibility}
    status, receipt = srv.call("POST", f"{base}/finalize", final, **auth)
    assert status == 200, receipt
    h = receipt["hash"]
    docs = [dict(doc, session_hash=h) for doc in labels]
    if docs:
        assert srv.call("POST", f"{base}/labels/batch", {"labels": docs}, **auth)[0] == 200
    return h


def get(srv, path: str, headers: dict | None = None, data: bytes | None = None):
    request = urllib.request.Request(srv.url + path, data=data, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=30) as reply:
            return reply.status, dict(reply.headers), reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


# ---------------------------------------------------------------- the tests

def test_from_the_final_artifact_to_the_first_input_by_clicking(web):
    jobs, edges, arts, paths = pipeline()
    labels = [{"entity_type": "dag", "metadata": {"project": "churn-model", "stage": "candidate"}},
              {"entity_type": "artifact", "artifact_hash": arts[3], "metadata": {"tag": "best-run"}}]
    h = register(web.server, jobs, edges, arts, paths, labels=labels)
    shots = web.server.db_url.startswith("sqlite")

    web.open(f"/a/{arts[3]}")
    assert web.text("#repro-cmd") == f"roar reproduce {arts[3]}"
    assert web.all("button.copy")[0].is_displayed()   # the script showed the copy button
    main = web.text()
    assert "tag" in main and "best-run" in main and "sha256" in main and "3.9 KiB" in main
    if shots:
        web.shoot("artifact")

    web.click("section a.job", "evaluate.py")                         # made by step 3
    assert "/j/" + jobs[2]["job_uid"] in web.driver.current_url
    main = web.text()
    assert "python evaluate.py model.pt clean.csv" in main and "0 (success)" in main
    assert "HF_TOKEN" in main and "<redacted>" in main and "hf_abcdef" not in web.driver.page_source
    assert "AMD EPYC 7763" in main and "numpy" in main and "libc6" in main and "python3 step3.py" in main
    commit = web.all(f"a[href='https://github.com/example/pipeline/commit/{COMMIT}']")
    assert commit and commit[0].text == COMMIT
    if shots:
        web.shoot("job")

    web.click("ul.io a.art", "model.pt")                               # its input model.pt
    web.click("section a.job", "train.py")                             # made by step 2
    assert "torch" in web.text() and "Intel i7" in web.text() and "1 h 10 min" in web.text()
    web.click("ul.io a.art", "clean.csv")
    web.click("section a.job", "prepare.py")                           # made by step 1
    main = web.text()
    assert "Xeon Gold 6338 · 32 cores" in main and "scikit-learn" in main and "3.12.3" in main
    assert "AWS_SECRET_ACCESS_KEY" in main and "abc" not in web.all("table.env")[0].text
    assert "dirty" in main and "2026-11-30 00:53:22 UTC" in main   # roar.ended_at
    web.click("ul.io a.art", "raw.csv")                                # the first input
    assert web.driver.current_url == f"{web.server.url}/a/{arts[0]}"
    assert "No registered job wrote it" in web.text()
    assert not web.all("#repro-cmd") and "it is an input, with nothing to run again" in web.text()

    web.click("a.hash", h[:12])                                        # its session
    assert web.driver.current_url == f"{web.server.url}/s/{h}"
    nodes = web.all("svg.dag a.node")
    assert len(nodes) == 7   # 3 jobs, 4 artifacts
    hrefs = {n.get_dom_attribute("href") for n in nodes}
    assert hrefs == {f"/j/{j['job_uid']}" for j in jobs} | {f"/a/{a}" for a in arts}
    steps = [li.text for li in web.all("ol.steps li")]
    assert [s.split("\n")[0] for s in steps] == [f"@{i + 1} {j['command']}" for i, j in enumerate(jobs)]
    assert "churn-model" in web.text() and "candidate" in web.text()
    svg = web.all("svg.dag")[0]
    natural = int(svg.get_dom_attribute("width"))
    web.all(".zoom button[data-zoom=in]")[0].click()
    assert int(svg.get_dom_attribute("width")) == int(natural * 1.25 + 0.5)   # the zoom buttons work
    web.all(".zoom button[data-zoom=fit]")[0].click()
    if shots:
        web.shoot("session")
    web.all("button.copy")[0].click()
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(web.driver, 5).until(lambda d: web.all("button.copy")[0].text == "Copied")
    web.click("svg.dag a.node.job rect")                               # a node of the picture is a link
    assert "/j/" in web.driver.current_url

    web.open("/")
    assert h[:16] in web.text()                                        # a recent public DAG
    if shots:
        web.shoot("home")
    search = web.all("form.search.big input[name=q]")[0]
    search.send_keys(arts[3][:10])
    search.submit()
    try:   # one match: straight to it (the submit returns before the browser has navigated)
        WebDriverWait(web.driver, 10).until(lambda d: d.current_url.endswith(f"/a/{arts[3]}"))
    except TimeoutException:
        pass
    assert web.driver.current_url.endswith(f"/a/{arts[3]}")
    web.open("/?q=best-run")
    assert arts[3][:16] in web.text()                                  # found by a label value
    if shots:
        web.shoot("search")
        web.open("/login")
        web.shoot("login")
    web.open("/a/" + "0" * 64)
    assert "No such artifact" in web.text() and "is registered" in web.text()
    if shots:
        web.shoot("not-found")

    outside = [u for u in web.requests() if urlsplit(u).hostname not in ("127.0.0.1", None)
               and not u.startswith(("data:", "about:"))]
    assert outside == []


def _login(web, token: str) -> None:
    web.open("/login")
    web.all("input[name=token]")[0].send_keys(token)
    old = web.all("html")[0]
    web.all("form.login button")[0].click()
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(web.driver, 10).until(ec.staleness_of(old))


def test_a_private_dag_shows_another_browser_only_that_the_hash_exists(web):
    alice, bob = make_token(web.server, "alice"), make_token(web.server, "bob")
    jobs, edges, arts, paths = pipeline(commands=["secret-prep.sh", "secret-train.sh", "secret-eval.sh"])
    labels = [{"entity_type": "dag", "metadata": {"codename": "bluebird"}}]
    h = register(web.server, jobs, edges, arts, paths, token=alice, visibility="private", labels=labels)

    for who in ("bob", "anonymous"):
        if who == "bob":
            _login(web, bob)
            assert "signed in as bob" in web.text("header")
        for path in (f"/s/{h}", f"/j/{jobs[0]['job_uid']}", f"/a/{arts[3]}", f"/s/{h}/dag.svg",
                     f"/?q={h[:12]}", "/?q=bluebird", f"/?q={jobs[0]['job_uid'][:8]}", "/"):
            web.open(path)
            source = web.driver.page_source
            assert "secret-" not in source and "metrics.json" not in source, (who, path)
            if path.startswith("/?q="):   # the query is echoed; nothing is found
                assert "Nothing matches" in web.text() and not web.all("main ul.plain li"), (who, path)
            else:
                assert "bluebird" not in source, (who, path)
        web.open(f"/s/{h}")
        assert "not visible to you" in web.text() and h in web.text()          # it exists ...
        web.open(f"/a/{arts[3]}")
        assert arts[3] in web.text() and "lineage is private" in web.text()   # ... and nothing more
        assert not web.all("#repro-cmd")
        if who == "bob" and web.server.db_url.startswith("sqlite"):
            web.shoot("private-artifact")
            web.open(f"/s/{h}")
            web.shoot("private-session")
        if who == "bob":
            old = web.all("html")[0]
            web.all("nav.who button")[0].click()                                    # log out
            from selenium.webdriver.support import expected_conditions as ec
            from selenium.webdriver.support.ui import WebDriverWait

            WebDriverWait(web.driver, 10).until(ec.staleness_of(old))
            assert "log in" in web.text("header")

    _login(web, alice)
    cookie = next(c for c in web.driver.get_cookies() if c["name"] == "glaas_token")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    assert web.driver.execute_script("return document.cookie") == ""            # no script reads it
    web.open(f"/s/{h}")
    assert "secret-train.sh" in web.text() and "bluebird" in web.text()
    web.open("/")
    assert "Your recent sessions" in web.text() and h[:16] in web.text()


def test_hostile_values_stay_text(web):
    evil = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    meta = {"runtime": ["not", "a", "map"], "env_read": {"X": 5, "Y": {"deep": 1}, "<b>": evil},
            "processes": [{"pid": 1, "ppid": 1, "argv": [evil]}, {"pid": "nope"}, "junk"],
            "packages": {"pip": [evil, {"name": evil}], "python": "x"},
            "context": {"machine": {"hostname": evil, "os": "str", "gpus": "none"}, "git": []},
            "git": {"remote": "javascript:alert(1)", "commit": COMMIT}}
    jobs, edges, arts, paths = pipeline(
        commands=[f"echo {evil}", "true", "true"],
        paths=[f"/w/{evil}.csv", "/w/b", "/w/c", "/w/\"'><svg onload=alert(1)>"],
        metadata=[meta, {}, []])
    labels = [{"entity_type": "artifact", "artifact_hash": arts[0], "metadata": {"note": evil}}]
    h = register(web.server, jobs, edges, arts, paths, labels=labels)
    for path in (f"/j/{jobs[0]['job_uid']}", f"/j/{jobs[2]['job_uid']}", f"/a/{arts[0]}", f"/a/{arts[3]}",
                 f"/s/{h}", "/?q=pwned"):
        web.open(path)
        assert web.driver.execute_script("return window.__pwned") is None, path
        assert not web.all("main img") and not web.all("main script"), path
        assert not web.all("a[href^='javascript']"), path
    web.open(f"/j/{jobs[0]['job_uid']}")
    assert "<script>window.__pwned = 1</script>" in web.text()   # shown as text
    web.open(f"/s/{h}")
    assert "<script>" in web.all("svg.dag title")[0].get_attribute("textContent") + web.text()


GARBAGE = ["not json {", "[1, 2]", '"a string"', "null", "1e999",
           json.dumps({"runtime": None,
                       "packages": {"pip": 5, "dpkg": [[1]], "python": [{"distributions": 7}]},
                       "context": {"machine": [], "git": {"remote": ["x"], "commit": 5}}}),
           json.dumps({"processes": [{"pid": 1, "ppid": 2}, {"pid": 2, "ppid": 1}, {"pid": 3, "ppid": [1]},
                                     {"pid": True}, {"pid": 4, "argv": "ls"}],
                       "env_read": {"A": [1], "B": None}, "roar": {"signal": "9", "ended_at": "soon"}}),
           json.dumps({"machine": {"memory_bytes": -1, "cpu": {"logical_cores": "many"},
                                   "gpus": {"model": 1}},
                       "runtime": {"python": [None, 3], "memory": {"total_mb": {}}}, "cwd": ["/"]})]


def test_odd_metadata_never_breaks_a_page(site):
    cmds = [f"step {i}" for i in range(len(GARBAGE))]
    arts = [digest() for _ in range(len(GARBAGE) + 1)]
    jobs = [{"command": c, "timestamp": 1e300 if i % 2 else -5.0, "job_uid": secrets.token_hex(16),
             "git_commit": None, "git_branch": None, "duration_seconds": None, "exit_code": None,
             "job_type": "run", "step_number": i + 1, "metadata": GARBAGE[i]} for i, c in enumerate(cmds)]
    edges = {j["job_uid"]: ([i], [i + 1]) for i, j in enumerate(jobs)}
    h = register(site, jobs, edges, arts, [f"/w/{i}" for i in range(len(arts))])
    for path in [f"/j/{j['job_uid']}" for j in jobs] + [f"/s/{h}", f"/a/{arts[-1]}"]:
        status, _, html = get(site, path)
        assert status == 200, (path, html[-500:])
    status, _, html = get(site, f"/j/{jobs[6]['job_uid']}")
    assert html.count('class="pid"') == 4   # a loop of ppids is still listed; a pid that is not one is not


def test_pages_are_readable_without_javascript_and_load_nothing_from_elsewhere(web):
    jobs, edges, arts, paths = pipeline()
    h = register(web.server, jobs, edges, arts, paths)
    pages = ["/", f"/a/{arts[3]}", f"/j/{jobs[1]['job_uid']}", f"/s/{h}", "/login", "/?q=zz"]
    for path in pages:
        status, headers, html = get(web.server, path)
        assert status == 200, path
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        # what the browser would fetch: only this server's own paths
        for url in re.findall(r'(?:src|action)="([^"]*)"', html) + re.findall(
                r'<link[^>]*href="([^"]*)"', html) + re.findall(r"url\(([^)]*)\)", html):
            assert url.startswith(("/", "#")) and not url.startswith("//"), (path, url)
        external = [u for u in re.findall(r'href="(https?:[^"]*)"', html)
                    if not u.startswith(f"https://github.com/example/pipeline/commit/{COMMIT}")]
        assert external == [], (path, external)   # only the commit link on a forge, a plain <a>
    css = get(web.server, "/static/glaas.css")[2]
    assert "url(" not in css and "@import" not in css and "http" not in css

    web.driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": True})
    web.open(f"/s/{h}")
    assert len(web.all("svg.dag a.node")) == 7 and len(web.all("ol.steps li")) == 3
    assert not web.all("button.copy")[0].is_displayed()   # no script: no copy button, the command shows
    assert web.text("#repro-cmd") == f"roar reproduce {h}"
    web.click("ol.steps a", "train.py")
    assert "python train.py --epochs 3 clean.csv" in web.text()


def test_login_refuses_bad_tokens_and_other_sites(site):
    server = site
    status, _, html = get(server, "/login", data=b"token=glaas_nope&next=/")
    assert status == 401 and "unknown or revoked token" in html
    token = make_token(site, "carol")
    form = f"token={token}&next=//evil.example/".encode()
    status, headers, _ = get(server, "/login", data=form, headers={"Origin": "http://evil.example"})
    assert status == 403 and "set-cookie" not in {k.lower() for k in headers}
    status, headers, _ = get(server, "/login", data=form, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, headers, _ = get(server, "/login", data=form, headers={"Sec-Fetch-Site": "same-origin"})
    assert status == 303 and headers["location"] == "/"   # a redirect elsewhere is not followed
    for back in ("/%09/evil.example", "/%5Cevil.example", "https://evil.example/", "/s/%0a"):
        form = f"token={token}&next={back}".encode()
        assert get(server, "/login", data=form)[1]["location"] == "/", back
    form = f"token={token}&next=/a/{'b' * 64}%3Fx%3D1".encode()
    assert get(server, "/login", data=form)[1]["location"] == f"/a/{'b' * 64}?x=1"   # back where it was
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    status, _, html = get(server, "/", headers={"Cookie": f"glaas_token={token}"})
    assert status == 200 and "signed in as <b>carol</b>" in html
    assert roar_cmd("glaas", "token", "revoke", token, "--db", site.db_url).returncode == 0
    status, headers, html = get(server, "/", headers={"Cookie": f"glaas_token={token}"})
    assert "no longer valid" in html and "log in" in html and "glaas_token=\"\"" in headers["set-cookie"]
    assert get(server, "/dag/" + "a" * 64)[1]["location"] == "/s/" + "a" * 64   # receipts' links
    assert get(server, "/s/" + "a" * 64)[0] == 404
    assert get(server, "/s/abcdef12")[1]["location"] == "/?q=abcdef12"   # a prefix is searched for
    assert get(server, "/a/not-hex")[0] == 422
    assert get(server, "/j/" + "x" * 65)[0] == 404
    assert get(server, "/static/../app.py")[0] == 404
    assert get(server, "/?q=%00ab%00cd%7f")[0] == 200   # no 500 from a NUL (PostgreSQL)


def test_a_composite_lists_its_members(site):
    tree, members = digest(), [("images/cat.png", digest(), 2048), ("labels.csv", digest(), 90)]
    uid = secrets.token_hex(16)
    job = {"command": "python split.py", "timestamp": 1796000000.0, "job_uid": uid, "git_commit": COMMIT,
           "git_branch": "main", "duration_seconds": 1.0, "exit_code": 0, "job_type": "run", "step_number": 1,
           "metadata": "{}"}
    status, rs = site.call("POST", "/registration-sessions", {"mode": "anonymous_public"})
    base = f"/registration-sessions/{rs['registration_session_id']}"
    auth = {"rs": rs["registration_session_token"]}
    assert site.call("POST", f"{base}/jobs/batch", {"jobs": [job]}, **auth)[0] == 201
    composite = {"hash": tree, "hashes": [{"algorithm": "composite-blake3", "digest": tree}], "size": 2138,
                 "component_count_total": 2,
                 "components": [{"relative_path": p, "leaf_kind": "file", "component_algorithm": "blake3",
                                 "component_digest": h, "component_size": n} for p, h, n in members]}
    assert site.call("POST", f"{base}/artifacts/composites", composite, **auth)[0] == 201
    body = {"artifacts": [{"hash": tree, "path": "/w/dataset/"}]}
    assert site.call("POST", f"{base}/jobs/{uid}/outputs", body, **auth)[0] == 201
    assert site.call("POST", f"{base}/finalize", {"git_commit": COMMIT}, **auth)[0] == 200
    status, _, html = get(site, f"/a/{tree}")
    assert status == 200 and "composite (a directory)" in html
    for path, h, _ in members:
        assert path in html and h[:16] in html
    assert "2.1 KiB (2,138 bytes)" in html and "2.0 KiB" in html and "python split.py" in html


# ---------------------------------------------------------------- pure parts

def _job(uid, step, ins, outs):
    return {"jobUid": uid, "stepNumber": step, "jobType": "run", "command": f"cmd{step}",
            "inputs": [{"hash": h, "path": f"/w/{h}"} for h in ins],
            "outputs": [{"hash": h, "path": f"/w/{h}"} for h in outs]}


def test_layout_puts_each_node_below_what_it_needs():
    jobs = [_job("j1", 1, ["a"], ["b"]), _job("j2", 2, ["b"], ["c"]), _job("j3", 3, ["c", "b"], ["d"])]
    drawn = dag_layout.layout(jobs)
    y = {n.key: n.y for n in drawn.nodes}
    assert y["a:a"] < y["j:j1"] < y["a:b"] < y["j:j2"] < y["a:c"] < y["j:j3"] < y["a:d"]
    assert all(0 <= n.x <= drawn.width - drawn.node_w and 0 <= n.y <= drawn.height - drawn.node_h
               for n in drawn.nodes)
    assert len(drawn.edges) == 7 and all(e.path.startswith("M") for e in drawn.edges)
    # clean.csv -> step 3 passes two layers: between their boxes, not through them
    long = next(e for e in drawn.edges if (e.source, e.target) == ("a:b", "j:j3"))
    passes = [tuple(map(float, p.split(","))) for p in re.findall(r"L([\d.]+,[\d.]+)", long.path)]
    assert len(passes) == 2
    for px, py in passes:
        assert not any(n.x <= px <= n.x + drawn.node_w and n.y <= py - 1 <= n.y + drawn.node_h
                       for n in drawn.nodes), (px, py)
    # a job that writes back what an earlier step read: still a layout, the edge goes up
    cyclic = dag_layout.layout([_job("j1", 1, ["a"], ["b"]), _job("j2", 2, ["b"], ["a"])])
    assert len(cyclic.nodes) == 4 and len(cyclic.edges) == 4
    wide = dag_layout.layout([_job(f"j{i}", i, [f"in{i}"], ["out"]) for i in range(1, 6)])
    rows = {}
    for n in wide.nodes:
        rows.setdefault(n.y, []).append(n.x)
    assert all(len(set(xs)) == len(xs) for xs in rows.values())   # no two nodes on one spot


def test_commit_links_only_for_known_forges():
    sha = "a" * 40
    assert present.commit_url("https://github.com/o/r.git", sha) == f"https://github.com/o/r/commit/{sha}"
    assert present.commit_url("git@gitlab.com:g/sub/r.git", sha) == f"https://gitlab.com/g/sub/r/-/commit/{sha}"
    assert present.commit_url("ssh://git@github.com/o/r", sha) == f"https://github.com/o/r/commit/{sha}"
    for remote in ("javascript:alert(1)", "https://evil.example/o/r.git", "/srv/git/r.git",
                   "https://github.com.evil.example/o/r", "https://github.com/o/r\"><x"):
        assert present.commit_url(remote, sha) is None, remote
    assert present.commit_url("https://github.com/o/r.git", "not-a-sha") is None

#!/usr/bin/env python3
"""Benchmark of the GLaaS server (issue 10); figures go to docs/performance-glaas.md.

For each database (SQLite, and PostgreSQL when Debian's is installed: a throwaway one is
started on a Unix socket, as the tests do), against a real `roar glaas serve` on loopback:

- registering a 1,000-job session over HTTP, two ways, wall time, median of --runs (target
  <= 10 s):
  - as `roar register` does it: roar.remote.register's own code and client (roar.remote.http),
    given the plan of a 1,000-job chain: jobs and artifacts in batches, the edge requests
    several at a time (roar.remote.register.EDGE_REQUESTS), finalize;
  - as roar-cli does it, one request after another: one registration session, the jobs in one
    batch, the artifacts in one batch, each job's inputs and outputs (2,000 requests), finalize;
- artifact lookup (`GET /artifacts/{hash}`) and lineage (`GET /artifacts/{hash}/lineage`) with
  100,000 artifacts stored (seeded straight into the database: 100 DAGs of 500 jobs, each job
  reading one artifact and writing one), 32 concurrent clients (4 processes x 8 threads, each
  with a kept-alive connection), random artifacts; p50 and p99 of each round, median over
  --runs rounds (target p99 <= 50 ms);
- the same with each client paced at --rate requests a second (32 x 4 = 128 a second by
  default, under what one server process answers here), so that the latency is the service
  time, not the queue that clients with no pause build;
- the server's resident memory (VmRSS from /proc, sampled during the load), peak.

Usage: python scripts/bench_glaas.py [--runs 3] [--seconds 10] [--workers 1] [--only sqlite|postgresql]
                                    [--register-only]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from benchlib.proc import BenchError, log  # noqa: E402
from benchlib.report import columns  # noqa: E402
from benchlib.stats import median  # noqa: E402

JOBS = 1000
STORED = 100_000
CLIENTS = (4, 8)   # processes x threads
PROG = "bench_glaas"


# -- the server ------------------------------------------------------------------------

class Server:
    def __init__(self, db: str, workers: int) -> None:
        argv = [sys.executable, "-m", "roar", "glaas", "serve", "--db", db, "--port", "0"]
        if workers > 1:
            argv += ["--workers", str(workers)]
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        found = re.search(r"listening on (http://\S+)", line)
        if not found:
            self.proc.kill()
            raise BenchError(f"roar glaas serve did not start: {line}")
        self.url = found.group(1)
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        self._wait_for(workers)

    def _wait_for(self, workers: int, timeout: float = 60.0) -> None:
        """Until each worker has answered /health (the line above comes before they start)."""
        import httpx

        seen: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(seen) < workers and time.monotonic() < deadline:
            try:
                seen.add(httpx.get(self.url + "/api/v1/health", timeout=10).json().get("worker"))
            except httpx.TransportError:
                time.sleep(0.1)
        if len(seen) < workers:
            self.stop()
            raise BenchError(f"only {len(seen)} of {workers} worker processes answered within {timeout:g} s")

    def rss_kb(self) -> int:
        """VmRSS of the server and its children (the workers, with --workers)."""
        total = 0
        for pid in [self.proc.pid, *_children(self.proc.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            found = re.search(r"VmRSS:\s+(\d+) kB", status)
            total += int(found.group(1)) if found else 0
        return total

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(k) for k in kids]
    for k in list(out):
        out += _children(k)
    return out


# -- registering a 1,000-job session ---------------------------------------------------

def _session(n: int) -> tuple[list[dict], dict[str, tuple[list, list]], list[str]]:
    """n jobs in a chain: job i reads artifact i and writes artifact i+1."""
    arts = [secrets.token_hex(32) for _ in range(n + 1)]
    jobs, edges = [], {}
    meta = json.dumps({"roar_version": "bench", "packages": {"pip": {f"pkg{i}": "1.0" for i in range(40)}}})
    for i in range(n):
        uid = secrets.token_hex(16)
        jobs.append({"command": f"python step.py --part {i}", "timestamp": time.time(), "job_uid": uid,
                     "git_commit": "ab" * 20, "git_branch": "main", "duration_seconds": 1.0, "exit_code": 0,
                     "job_type": "run", "step_number": i + 1, "metadata": meta})
        edges[uid] = ([{"hash": arts[i], "path": f"/w/data/{i}.bin"}],
                      [{"hash": arts[i + 1], "path": f"/w/data/{i + 1}.bin"}])
    return jobs, edges, arts


def register_as_roar(url: str, n: int) -> float:
    """`roar register`'s cost: roar.remote.register.register over roar.remote.http.Client, for
    the plan of the same n-job chain as register() sends (anonymous, public)."""
    from roar.remote.http import Client
    from roar.remote.payload import Plan
    from roar.remote.register import register as remote_register

    jobs, edges, arts = _session(n)
    plan = Plan(kind="session", id="bench", target=None, root="/w", local_uids=[j["job_uid"] for j in jobs],
                jobs=jobs, artifacts=[{"hashes": [{"algorithm": "blake3", "digest": d}], "size": 1024}
                                      for d in arts],
                composites=[], inputs={u: ins for u, (ins, _) in edges.items()},
                outputs={u: outs for u, (_, outs) in edges.items()},
                git={"repo": None, "commit": "cd" * 20, "branch": "main"}, identity="anonymous",
                hash=secrets.token_hex(32))
    with Client(url) as client:
        t0 = time.perf_counter()
        receipt = remote_register(client, plan, "anonymous")
        elapsed = time.perf_counter() - t0
    if not receipt.created or receipt.jobs != n:
        raise BenchError(f"the {n}-job session was not created: {receipt}")
    return elapsed


def register(url: str, n: int) -> float:
    """One request after another, as roar-cli does it."""
    import httpx

    jobs, edges, arts = _session(n)
    with httpx.Client(base_url=url + "/api/v1", timeout=120) as client:
        t0 = time.perf_counter()

        def post(path: str, body: dict, **headers) -> dict:
            reply = client.post(path, json=body, headers=headers)
            if reply.status_code >= 300:
                raise BenchError(f"POST {path}: HTTP {reply.status_code}: {reply.text[:200]}")
            return reply.json().get("data")

        rs = post("/registration-sessions", {"mode": "anonymous_public"})
        rid, auth = rs["registration_session_id"], {"Authorization": f"RegistrationSession "
                                                                      f"{rs['registration_session_token']}"}
        post(f"/registration-sessions/{rid}/jobs/batch", {"jobs": jobs}, **auth)
        post(f"/registration-sessions/{rid}/artifacts/batch",
             {"artifacts": [{"hashes": [{"algorithm": "blake3", "digest": d}], "size": 1024} for d in arts]},
             **auth)
        for uid, (ins, outs) in edges.items():
            post(f"/registration-sessions/{rid}/jobs/{uid}/inputs", {"artifacts": ins}, **auth)
            post(f"/registration-sessions/{rid}/jobs/{uid}/outputs", {"artifacts": outs}, **auth)
        receipt = post(f"/registration-sessions/{rid}/finalize",
                       {"git_repo": "", "git_commit": "cd" * 20, "git_branch": "main",
                        "expected": {"jobs": n, "inputs": n, "outputs": n}}, **auth)
        elapsed = time.perf_counter() - t0
        if not receipt.get("created"):
            raise BenchError("the 1,000-job session was not created")
    return elapsed


# -- 100,000 stored artifacts ----------------------------------------------------------

def seed(db_url: str, dags: int = 100, jobs_per_dag: int = 500) -> list[str]:
    """Write dags x jobs_per_dag chained jobs (2 artifacts per job) straight into the database;
    returns the artifacts' hashes."""
    from datetime import datetime, timezone

    from sqlalchemy import insert, select

    from roar.glaas.db import open_engine
    from roar.glaas.models import Artifact, ArtifactHash, Dag, DagArtifact, Job, JobIO

    engine = open_engine(db_url)
    now = datetime.now(timezone.utc)
    hashes: list[str] = []
    with engine.begin() as conn:
        for _ in range(dags):
            dag_id = conn.execute(insert(Dag).values(hash=secrets.token_hex(32), creator_identity="anonymous",
                                                     visibility="public", legacy=False, created_at=now,
                                                     git_commit="ab" * 20).returning(Dag.id)).scalar()
            arts = [secrets.token_hex(32) for _ in range(2 * jobs_per_dag)]
            conn.execute(insert(Artifact), [{"hash": h, "size": 1024, "is_composite": False,
                                             "registered_at": now} for h in arts])
            ids = dict(conn.execute(select(Artifact.hash, Artifact.id).where(Artifact.hash.in_(arts))).all())
            conn.execute(insert(ArtifactHash), [{"artifact_id": ids[h], "algorithm": "blake3", "digest": h}
                                                for h in arts])
            conn.execute(insert(DagArtifact), [{"dag_id": dag_id, "artifact_id": ids[h], "size": 1024}
                                               for h in arts])
            uids = [secrets.token_hex(16) for _ in range(jobs_per_dag)]
            conn.execute(insert(Job), [{"dag_id": dag_id, "job_uid": u, "command": f"python step.py {i}",
                                        "job_type": "run", "step_number": i + 1, "extra": "{}"}
                                       for i, u in enumerate(uids)])
            job_ids = dict(conn.execute(select(Job.job_uid, Job.id).where(Job.dag_id == dag_id)).all())
            rows = []
            for i, u in enumerate(uids):
                # job i reads the previous job's output (a chain), and writes its own
                read = arts[2 * i - 1] if i else arts[0]
                rows.append({"job_id": job_ids[u], "artifact_id": ids[read], "direction": "in",
                             "path": f"/w/{i}.in"})
                rows.append({"job_id": job_ids[u], "artifact_id": ids[arts[2 * i + 1]], "direction": "out",
                             "path": f"/w/{i}.out"})
            conn.execute(insert(JobIO), rows)
            hashes += arts
    if engine.dialect.name == "postgresql":
        # statistics of the tables just filled, as a deployment has them: otherwise autovacuum
        # analyzes them during the first round, and the rounds before it run on guessed plans
        from sqlalchemy import text

        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
    return hashes


# -- 32 concurrent clients -------------------------------------------------------------

def _client_process(url: str, hashes: list[str], path_kind: str, seconds: float, threads: int,
                    start_at: float, rate: float | None, out) -> None:
    import httpx

    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def one(seed_: int) -> None:
        rng = random.Random(seed_)
        mine: list[float] = []
        with httpx.Client(base_url=url + "/api/v1", timeout=30) as client:
            while time.time() < start_at:
                time.sleep(0.001)
            end, sent = start_at + seconds, 0
            while time.time() < end:
                if rate:   # paced: request k leaves at start + k/rate (+ a random phase)
                    due = start_at + (sent + rng.random()) / rate
                    time.sleep(max(0.0, due - time.time()))
                    sent += 1
                h = rng.choice(hashes)
                path = f"/artifacts/{h}" if path_kind == "lookup" else f"/artifacts/{h}/lineage?depth=3"
                t0 = time.perf_counter()
                reply = client.get(path)
                mine.append(time.perf_counter() - t0)
                if reply.status_code != 200:
                    with lock:
                        errors[0] += 1
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=one, args=(os.getpid() * 100 + t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put((latencies, errors[0]))


def load(server: Server, hashes: list[str], kind: str, seconds: float, rate: float | None = None) -> dict:
    procs, threads = CLIENTS
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    sample = random.sample(hashes, min(len(hashes), 20_000))
    start_at = time.time() + 1.0
    clients = [ctx.Process(target=_client_process, args=(server.url, sample, kind, seconds, threads, start_at,
                                                         rate, out)) for _ in range(procs)]
    for c in clients:
        c.start()
    peak = 0
    while any(c.is_alive() for c in clients) and time.time() < start_at + seconds + 30:
        peak = max(peak, server.rss_kb())
        time.sleep(0.2)
        if out.qsize() >= procs:
            break
    results = [out.get(timeout=60) for _ in clients]
    for c in clients:
        c.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    errors = sum(e for _, e in results)
    if not latencies:
        raise BenchError(f"{kind}: no request completed")
    return {"p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "rps": len(latencies) / seconds, "errors": errors, "rss_kb": peak}


# -- one database ----------------------------------------------------------------------

def bench(name: str, db_url_for, runs: int, seconds: float, workers: int, rate: float,
          rounds_too: bool = True) -> dict:
    reg: list[float] = []
    ours: list[float] = []
    for i in range(runs):
        for how, out, fn in (("as roar register does it", ours, register_as_roar),
                             ("one request after another", reg, register)):
            srv = Server(db_url_for(f"reg{i}{fn.__name__}"), workers)
            try:
                out.append(fn(srv.url, JOBS))
                log(f"{name}: register {JOBS} jobs {how}, run {i + 1}: {out[-1]:.2f} s", PROG)
            finally:
                srv.stop()
    registered = {"register_s": median(reg), "register_runs": reg, "register_roar_s": median(ours),
                  "register_roar_runs": ours}
    if not rounds_too:
        return {**registered, "errors": 0}
    url = db_url_for("stored")
    t0 = time.perf_counter()
    hashes = seed(url)
    log(f"{name}: seeded {len(hashes):,} artifacts in {time.perf_counter() - t0:.0f} s", PROG)
    srv = Server(url, workers)
    rounds: dict[str, list[dict]] = {k: [] for k in ("lookup", "lineage", "paced_lookup", "paced_lineage")}
    try:
        idle = srv.rss_kb()
        for i in range(runs):
            for kind in rounds:
                paced = kind.startswith("paced_")
                rounds[kind].append(load(srv, hashes, kind.removeprefix("paced_"), seconds,
                                         rate if paced else None))
                r = rounds[kind][-1]
                log(f"{name}: {kind} round {i + 1}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, "
                    f"{r['rps']:.0f} req/s, {r['errors']} errors, RSS {r['rss_kb'] / 1024:.0f} MiB", PROG)
    finally:
        srv.stop()
    return {**registered, "idle_rss_kb": idle,
            **{f"{k}_{m}": median([r[m] for r in v]) for k, v in rounds.items()
               for m in ("p50_ms", "p99_ms", "rps", "rss_kb")},
            "errors": sum(r["errors"] for v in rounds.values() for r in v)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each load round")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument("--only", choices=("sqlite", "postgresql"))
    ap.add_argument("--register-only", action="store_true", help="only the registrations, no load rounds")
    ap.add_argument("--rate", type=float, default=4.0,
                    help="requests per second of each of the 32 clients in the paced rounds")
    args = ap.parse_args()
    results = {}
    tmp = Path(tempfile.mkdtemp(prefix="roar-bench-glaas-"))
    if args.only in (None, "sqlite"):
        results["SQLite"] = bench("sqlite", lambda n: f"sqlite:///{tmp / n}.db", args.runs, args.seconds,
                                  args.workers, args.rate, not args.register_only)
    if args.only in (None, "postgresql"):
        from tests.glaas.conftest import Postgres, _pg_bin

        if _pg_bin() is None:
            log("PostgreSQL is not installed: skipping it", PROG)
        else:
            pg = Postgres()
            pg.start()
            try:
                results["PostgreSQL"] = bench("postgresql", lambda n: pg.new_database(), args.runs,
                                              args.seconds, args.workers, args.rate, not args.register_only)
            finally:
                pg.stop()
    header = ["database", f"register {JOBS} jobs: roar / sequential", "round", "lookup p50 / p99",
              "lineage p50 / p99", "lookup req/s", "lineage req/s", "RSS idle / peak"]
    rows = []
    for name, r in results.items():
        if "lookup_p50_ms" not in r:   # --register-only
            rows.append([name, f"{r['register_roar_s']:.2f} / {r['register_s']:.2f} s"] + [""] * 6)
            continue
        peak = max(r[f"{k}_rss_kb"] for k in ("lookup", "lineage", "paced_lookup", "paced_lineage"))
        for label, p in (("as fast as they can", ""), (f"paced, {args.rate:g}/s each", "paced_")):
            rows.append([name, f"{r['register_roar_s']:.2f} / {r['register_s']:.2f} s", label,
                         f"{r[p + 'lookup_p50_ms']:.1f} / {r[p + 'lookup_p99_ms']:.1f} ms",
                         f"{r[p + 'lineage_p50_ms']:.1f} / {r[p + 'lineage_p99_ms']:.1f} ms",
                         f"{r[p + 'lookup_rps']:.0f}", f"{r[p + 'lineage_rps']:.0f}",
                         f"{r['idle_rss_kb'] / 1024:.0f} / {peak / 1024:.0f} MiB"])
    print(f"GLaaS server, {STORED:,} artifacts stored, {CLIENTS[0] * CLIENTS[1]} concurrent clients, "
          f"{args.workers} server process(es), median of {args.runs} runs ({os.cpu_count()} CPUs); "
          f"errors: {sum(r['errors'] for r in results.values())}")
    print("\n".join(columns(header, rows)))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        log(str(exc), PROG)
        sys.exit(1)

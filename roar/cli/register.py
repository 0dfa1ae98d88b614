"""`roar register REF`: publish an artifact's, a job's or a session's lineage to a GLaaS
server (roar.remote), and the text and JSON of what roar reads back from one: `roar show
--remote`, `roar dag --remote`, `roar label push|pull`."""

from __future__ import annotations

import sys
from typing import Any

import typer

from roar.cli.output import emit_json, emit_text, printable
from roar.cli.printable import printable_data

REF_HELP = "An artifact (hash, prefix or path), a job (@N or uid) or a session (session[:N])."
JSON = typer.Option(False, "--json", help="Print JSON (fields in docs/register.md).")


def _scope(public: bool, private: bool, anonymous: bool, token: str | None) -> str:
    from roar.errors import UsageError

    if public + private + anonymous > 1:
        raise UsageError("give at most one of --public, --private and --anonymous")
    if anonymous or (not token and not private):
        return "anonymous"       # without a token a registration is anonymous, and so public
    if not token:
        raise UsageError("--private needs a token: roar login URL --token TOKEN (or set ROAR_GLAAS_TOKEN)")
    return "public" if public else "private"


class Progress:
    """`registering [#####.....] 12/40` on stderr, when it is a terminal."""

    def __init__(self, total: int) -> None:
        self.total, self.done = max(total, 1), 0
        self.on = sys.stderr.isatty()

    def tick(self) -> None:
        self.done += 1
        if self.on:
            filled = min(30, 30 * self.done // self.total)
            sys.stderr.write(f"\rregistering [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total}")
            sys.stderr.flush()

    def note(self, message: str) -> None:
        sys.stderr.write(("\n" if self.on and self.done else "") + f"roar: {message}\n")

    def close(self) -> None:
        if self.on and self.done:
            sys.stderr.write("\n")


def client(settings, anonymous: bool = False, progress: Progress | None = None):
    from roar.remote import config
    from roar.remote.http import Client

    url = config.require_url(settings)
    return Client(url, None if anonymous else settings.token, on_retry=progress.note if progress else None)


def register(app: typer.Typer) -> None:
    @app.command("register")
    def register_cmd(
        ref: str = typer.Argument(..., help=REF_HELP),
        public: bool = typer.Option(False, "--public", help="Everyone may see it (yours, with a token)."),
        private: bool = typer.Option(False, "--private", help="Only you (the default with a token)."),
        anonymous: bool = typer.Option(False, "--anonymous", help="Public, owned by no one; sends no token."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Print the requests it would send; send none."),
        as_json: bool = JSON,
    ) -> None:
        """Publish REF's lineage (its jobs and the whole upstream chain) as one DAG to the GLaaS server."""
        from roar.remote import config, payload
        from roar.remote import register as reg
        from roar.store.workspace import Workspace

        settings = config.load()
        scope = _scope(public, private, anonymous, settings.token)
        ws = Workspace.find()
        if dry_run:
            ident = "anonymous" if scope == "anonymous" else settings.identity or "glaas:user:UNKNOWN"
            plan = payload.build(ws, ref, ident)
            dry = reg.DryRun(settings.url, plan, scope != "anonymous")
            dry.get("/health", auth=False)   # what a registration asks before it sends anything
            if scope != "anonymous":
                dry.get("/auth/me")
            reg.register(dry, plan, scope)   # type: ignore[arg-type]
            _dry_output(dry, plan, scope, ident, as_json)
            return
        progress = Progress(0)
        with client(settings, scope == "anonymous", progress) as remote:
            reg.health(remote)
            ident, _ = reg.identity(remote)
            plan = payload.build(ws, ref, ident)
            progress.total = reg.steps(plan)
            try:
                receipt = reg.register(remote, plan, scope, progress.tick)
            finally:
                progress.close()
        _receipt_output(receipt, as_json)


def _reproduce_hint(receipt) -> str:
    return f"roar reproduce {receipt.target or receipt.session_hash}"


def _receipt_output(receipt, as_json: bool) -> None:
    for warning in receipt.warnings:
        sys.stderr.write(f"roar: warning: {printable(warning)}\n")
    if as_json:
        emit_json({"session_hash": receipt.session_hash, "url": receipt.url, "created": receipt.created,
                   "scope": receipt.scope, "jobs": receipt.jobs, "artifacts": receipt.artifacts,
                   "target": receipt.target, "reproduce": _reproduce_hint(receipt)})
        return
    what = (f"registered {receipt.jobs} jobs and {receipt.artifacts} artifacts as session"
            if receipt.created else "already registered as session")
    emit_text(f"{what} {receipt.session_hash} ({receipt.scope})\n  {receipt.url}\n"
              f"  {_reproduce_hint(receipt)}")


def _dry_output(dry, plan, scope: str, ident: str, as_json: bool) -> None:
    import json

    doc = {"dry_run": True, "server": dry.url, "scope": scope, "creator_identity": ident,
           "session_hash": plan.hash, "requests": dry.requests}
    if ident.endswith("UNKNOWN"):
        doc["note"] = ("the token's user is not known before asking the server (roar login saves it), so the "
                       "session hash and job uids shown are not the ones it will get")
    if as_json:
        emit_json(doc)
        return
    lines = [f"dry run: nothing was sent. A registration ({scope}, as {ident}) would send these "
             f"{len(dry.requests)} requests to {dry.url}:"]
    for r in dry.requests:
        auth = f"  [Authorization: {r['authorization']}]" if r.get("authorization") else ""
        lines.append(f"{r['method']} {r['path']}{auth}")
        if r.get("body") is not None:
            lines.append("  " + json.dumps(r["body"], sort_keys=True, ensure_ascii=False))
    lines.append(f"session hash: {plan.hash}" + (f" ({doc['note']})" if "note" in doc else ""))
    emit_text("\n".join(printable(line) for line in lines))


# what roar reads back: `roar show --remote`, `roar dag --remote`

def show_remote(ref: str, as_json: bool) -> None:
    from roar.remote import config, lookup

    settings = config.load()
    with client(settings) as remote:
        kind, found = lookup.find(remote, ref)
        url = remote.url
    if kind == "artifact":
        found.pop("dag", None)
    doc = {"kind": kind, "server": url, **found}
    if as_json:
        emit_json(doc)
        return
    # every field is the server's, and so whoever registered it: none reaches the terminal raw.
    # The text functions below are given only this escaped copy, and escape nothing themselves
    text = {"artifact": _artifact_text, "job": _job_text}.get(kind, _session_text)
    emit_text(text(printable_data(doc)))


def _step(job: dict) -> str:
    from roar.lineage.refs import step_name

    return step_name(job.get("stepNumber") or 0, job.get("jobType") or "run")


def _artifact_text(doc: dict) -> str:
    art = doc["artifact"]
    lines = [f"artifact {art['hash']}  (registered on {doc['server']}, {art.get('registeredAt')})"]
    if art.get("size") is not None:
        lines.append(f"  size: {art['size']} bytes")
    lines += [f"  {h['algorithm']}: {h['digest']}" for h in art.get("hashes") or []]
    produced = doc.get("produced_by")
    if produced:
        lines.append(f"  made by: {_step(produced)} {produced['command']}  "
                     f"(job {produced['jobUid']})")
    if doc.get("session"):
        lines.append(f"  session: {doc['session']}")
    elif not produced:
        lines.append("  no lineage of it is visible to you (it may be private)")
    if doc.get("session_artifacts"):
        lines.append("  other artifacts of that session:")
        lines += [_artifact_line(a) for a in doc["session_artifacts"]]
    for label in art.get("labels") or []:
        meta = label.get("metadata") or {}
        lines += [f"  label: {k}={v}" for k, v in sorted(meta.items())]
    return "\n".join(lines)


def _job_text(doc: dict) -> str:
    scope = doc.get("scope") or {}
    took = doc.get("durationSeconds")
    lines = [f"job {doc['jobUid']}  (registered on {doc['server']}, {scope.get('visibility')})",
             f"  {_step(doc):<5} {doc.get('command') or ''}",
             f"  exit: {doc.get('exitCode')}" + (f", {took:g} s" if isinstance(took, (int, float)) else ""),
             f"  session: {doc['sessionHash']}"]
    if doc.get("gitCommit"):
        lines.append(f"  git: {doc.get('gitRepo') or '(no remote)'} {doc['gitCommit']}")
    for role in ("inputs", "outputs"):
        if doc.get(role):
            lines.append(f"  {role}:")
            lines += [f"    {e.get('path') or '?'}  {e['hash'][:12]}" for e in doc[role]]
    if doc.get("children"):
        lines.append("  read by: " + ", ".join(doc["children"]))
    for label in doc.get("labels") or []:
        meta = label.get("metadata") or {}
        lines += [f"  label: {k}={v}" for k, v in sorted(meta.items())]
    return "\n".join(lines)


def _session_text(doc: dict) -> str:
    from roar.remote import lookup

    scope = doc.get("scope") or {}
    lines = [f"session {doc['sessionHash']}  (registered on {doc['server']}, {doc.get('createdAt')}, "
             f"{scope.get('visibility')})"]
    if doc.get("gitCommit"):
        lines.append(f"  git: {doc.get('gitRepo') or '(no remote)'} {doc['gitCommit']}")
    lines += [f"  {_step(j):<5} {j['command']}  (job {j['jobUid']}, exit {j.get('exitCode')})"
              for j in lookup._ordered(doc["jobs"])]
    lines.append("  artifacts:")
    lines += [_artifact_line(a) for a in lookup.artifacts_of(doc)]
    return "\n".join(lines)


def _artifact_line(art: dict) -> str:
    return f"    {', '.join(art['paths']) or '?'}  {art['hash'][:12]}"


def dag_remote(ref: str, fmt: str, output: str | None) -> None:
    """`roar dag --remote HASH`: a registered DAG, in the formats of a local one."""
    from roar.cli.dag import write_output
    from roar.lineage import dagformat
    from roar.remote import config, lookup

    settings = config.load()
    with client(settings) as remote:
        view = lookup.dag_of(remote, ref)
        url = remote.url
    dag = lookup.to_dag(view)
    if fmt == "json":
        import json

        data = json.dumps(_dag_json(dag, view, url), ensure_ascii=False) + "\n"
    elif fmt in dagformat.IMAGE_FORMATS:
        image = dagformat.render_image(dagformat.to_dot(dag), fmt)
        if output:
            write_output(output, image)
        else:
            sys.stdout.buffer.write(image)
        return
    elif fmt == "text":
        body = dagformat.to_text(dag).split("\n", 1)[1] if dag.jobs else ""
        data = (f"registered session {view['sessionHash']} on {url}: {len(dag.jobs)} jobs, "
                f"{len(dag.artifacts)} artifacts\n{body}")
    else:
        data = {"dot": dagformat.to_dot, "mermaid": dagformat.to_mermaid}[fmt](dag)
    if output:
        write_output(output, data.encode())
    elif fmt == "json":
        sys.stdout.write(data)
    else:
        emit_text(data)


def _dag_json(dag, view: dict, url: str) -> dict[str, Any]:
    """The shape of `roar dag --json` (docs/json.md), with the registered session."""
    nodes: list[dict[str, Any]] = [{"id": f"job:{j.uid}", "kind": "job", "uid": j.uid, "step": j.name,
                                    "type": j.type, "command": j.command, "status": j.status,
                                    "exit_code": j.exit_code, "stale": False, "stale_reasons": []}
                                   for j in dag.jobs]

    def ref(key: str) -> str:
        return key if key.startswith("location:") else f"artifact:{key}"

    nodes += [{"id": ref(key), "kind": n.kind, "hash": n.hash, "size": n.size, "paths": n.paths,
               "source": not n.producers, "stale": False} for key, n in dag.artifacts.items()]

    edges, job_edges = [], []
    for j in dag.jobs:
        edges += [{"from": ref(k), "to": f"job:{j.uid}", "path": p, "role": "input"} for p, k in j.inputs]
        edges += [{"from": f"job:{j.uid}", "to": ref(k), "path": p, "role": "output"} for p, k in j.outputs]
        job_edges += [{"from": f"job:{u}", "to": f"job:{j.uid}", "artifact": k} for k, u in j.fed_by.items()]
    session = {"hash": view["sessionHash"], "server": url, "url": f"{url}/s/{view['sessionHash']}",
               "git": {"repo": view.get("gitRepo") or None, "commit": view.get("gitCommit"),
                       "branch": view.get("gitBranch")}, "scope": view.get("scope")}
    return {"session": session, "nodes": nodes, "edges": edges, "job_edges": job_edges}


def sync_labels(ref: str, direction: str, anonymous: bool) -> None:
    """`roar label push|pull REF`: the labels of the DAG `roar register REF` made."""
    from roar.remote import config, payload
    from roar.remote import labels as remote_labels
    from roar.remote.register import identity
    from roar.store.workspace import Workspace

    settings = config.load()
    ws = Workspace.find()
    with client(settings, anonymous) as remote:
        ident, _ = identity(remote)
        plan = payload.build(ws, ref, ident)
        done = remote_labels.sync(remote, ws, plan, direction)
    verb = "pushed to" if direction == "push" else "pulled from"
    emit_text(f"labels of {done['changed']} of {done['entities']} entities {verb} session {plan.hash}"
              if done["changed"] else f"labels already in sync with session {plan.hash}")

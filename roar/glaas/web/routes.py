"""The GLaaS web pages: search, an artifact, a job, a session (its DAG drawn), login.

Server-rendered (Jinja2, autoescaped: every value shown came from a client), readable
without JavaScript; the one small script only copies the reproduce command and zooms the
DAG. Each page carries a Content-Security-Policy that allows nothing but this server, so
a page never makes the browser fetch anything from elsewhere. The caller's scope is the
API's (roar.glaas.store.scope): what a private DAG holds is never shown to anyone else,
only that the hash exists.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from roar import __version__
from roar.glaas.api.deps import DB
from roar.glaas.store import labels, lookup, tokens
from roar.glaas.store.errors import Conflict, StoreError
from roar.glaas.store.scope import Principal, can_see
from roar.glaas.web import identity, present, queries
from roar.glaas.web.layout import layout

HERE = Path(__file__).parent
CSP = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}
STATIC = {"glaas.css": "text/css; charset=utf-8", "glaas.js": "text/javascript; charset=utf-8"}
SESSION_HASH = re.compile(r"^[0-9a-f]{64}$")
JOB_UID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
MAX_FORM = 4096

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(version=__version__, short=lambda h, n=12: (h or "")[:n])
    env.filters.update(at=present.at, when=present.when, iso_when=present.iso_when, duration=present.duration,
                       size=present.size, basename=lambda p: (p or "").rstrip("/").rsplit("/", 1)[-1] or p)
    return env


class Page:
    """What every page knows: the request, the database session and who asks."""

    def __init__(self, request: Request, session: Session) -> None:
        self.request, self.session = request, session
        self.who, self.stale_cookie = identity.principal(request, session)

    def render(self, template: str, status: int = 200, **values) -> HTMLResponse:
        here = self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")
        html = _env().get_template(template).render(user=self.who.user_name, path=here,
                                                    stale_cookie=self.stale_cookie, **values)
        response = HTMLResponse(html, status_code=status, headers=HEADERS)
        if self.stale_cookie:
            identity.forget(response, self.request)
        return response

    def message(self, status: int, title: str, text: str, **values) -> HTMLResponse:
        text = text[:1].upper() + text[1:]   # the store's messages are one-line errors, lower case
        return self.render("message.html", status=status, title=title, text=text, **values)


def page(request: Request, session: DB) -> Page:
    return Page(request, session)


P = Annotated[Page, Depends(page)]


def _redirect(url: str, status: int = 303) -> RedirectResponse:
    return RedirectResponse(url, status_code=status, headers=HEADERS)


@router.get("/", response_class=HTMLResponse)
def home(p: P, q: str = ""):
    q = "".join(ch for ch in q if ch.isprintable()).strip()[:200]   # PostgreSQL refuses NUL in text
    if not q:
        mine = queries.recent(p.session, p.who, own=True) if not p.who.anonymous else []
        return p.render("index.html", q="", results=None, recent=queries.recent(p.session, p.who), mine=mine)
    results = queries.search(p.session, p.who, q)
    links = ([f"/a/{r['hash']}" for r in results["artifacts"]]
             + [f"/j/{r['jobUid']}" for r in results["jobs"]]
             + [f"/s/{r['hash']}" for r in results["sessions"]])
    if len(links) == 1 and not results["labels"]:
        return _redirect(links[0])
    return p.render("index.html", q=q, results=results, recent=[], mine=[])


@router.get("/a/{ref}", response_class=HTMLResponse)
def artifact(p: P, ref: str):
    try:
        art = lookup.find_artifact(p.session, ref)
    except Conflict:
        return _redirect(f"/?q={quote(ref)}")
    except StoreError as exc:
        return p.message(exc.status, "No such artifact", exc.message, q=ref)
    if ref != art.hash:
        return _redirect(f"/a/{art.hash}")
    view = lookup.artifact_view(p.session, p.who, art)
    made_by = queries.jobs_touching(p.session, p.who, art.id, "out")
    read_by = queries.jobs_touching(p.session, p.who, art.id, "in")
    sessions = list(dict.fromkeys([j["sessionHash"] for j in made_by + read_by]
                                  + ([view["originalSessionHash"]] if view["originalSessionHash"] else [])))
    paths = list(dict.fromkeys(j["path"] for j in made_by + read_by if j["path"]))
    members = lookup.components(p.session, p.who, art)["components"] if art.is_composite else []
    label_rows = [present.label_rows(lab["metadata"]) for lab in view["labels"]]
    return p.render("artifact.html", a=view, visible=view["scope"] is not None, made_by=made_by,
                    read_by=read_by, sessions=sessions, paths=paths, members=members,
                    labels=label_rows[0] if label_rows else [], base=str(p.request.base_url).rstrip("/"),
                    title=f"artifact {art.hash[:12]}")


def _hidden(p: Page, what: str, ident: str) -> HTMLResponse:
    return p.message(403, f"This {what} is not visible to you",
                     f"This {what} is registered, but it is private: nothing more of it is shown. "
                     "Log in with a token that may see it.", registered=ident)


@router.get("/j/{uid}", response_class=HTMLResponse)
def job(p: P, uid: str):
    found = queries.job_row(p.session, uid) if JOB_UID.match(uid) else None
    if found is None:
        return p.message(404, "No such job", f"no job {uid} is registered: give a job uid as a page "
                         "or `roar register` printed it", q=uid)
    job_, dag = found
    if not can_see(p.who, dag):
        return _hidden(p, "job", uid)
    meta = present.d(present.json_obj(job_.extra))
    inputs, outputs = (queries.job_edges(p.session, job_, d) for d in ("in", "out"))
    upstream = queries.producers_of(p.session, p.who, [e["hash"] for e in inputs], "out")
    downstream = queries.producers_of(p.session, p.who, [e["hash"] for e in outputs], "in")
    env, env_source = present.env_read(meta)
    exit_text, exit_ok = present.exit_text(job_.exit_code, meta)
    cur = labels.current(p.session, dag, f"job:{uid}")
    return p.render("job.html", j=job_, dag=dag, inputs=inputs, outputs=outputs, upstream=upstream,
                    downstream=downstream, exit_text=exit_text, exit_ok=exit_ok,
                    git=present.git(meta, job_.git_commit, job_.git_branch, dag.git_repo),
                    machine=present.machine(meta), packages=present.packages(meta), env=env,
                    env_source=env_source, processes=present.process_tree(meta),
                    cwd=present.s(meta.get("cwd")),
                    ended=present.when(present.d(meta.get("roar")).get("ended_at")),
                    labels=present.label_rows(present.json_obj(cur.body)) if cur else [],
                    title=f"job {uid[:12]}")


def _visible_dag(p: Page, digest: str):
    if queries.HEX.match(digest) and not SESSION_HASH.match(digest):   # a prefix: search for it
        return None, _redirect(f"/?q={quote(digest)}")
    dag = queries.dag_row(p.session, digest) if SESSION_HASH.match(digest) else None
    if dag is None:
        return None, p.message(404, "No such session", f"no session {digest} is registered: give the "
                               "64-digit session hash `roar register` printed", q=digest)
    if not can_see(p.who, dag):
        return None, _hidden(p, "session", digest)
    return dag, None


@router.get("/s/{digest}", response_class=HTMLResponse)
def session_page(p: P, digest: str):
    dag, refusal = _visible_dag(p, digest)
    if refusal is not None:
        return refusal
    view = lookup.dag_view(p.session, dag)
    drawing = layout(view["jobs"])
    produced = {e["hash"] for j in view["jobs"] for e in j["outputs"]}
    consumed = {e["hash"] for j in view["jobs"] for e in j["inputs"]}
    artifacts: dict[str, dict] = {}
    for j in view["jobs"]:
        for e in j["inputs"] + j["outputs"]:
            role = ("result" if e["hash"] not in consumed else "intermediate") if e["hash"] in produced \
                else "input"
            artifacts.setdefault(e["hash"], {"hash": e["hash"], "path": e["path"], "role": role})
    order = {"result": 0, "intermediate": 1, "input": 2}
    cur = labels.current(p.session, dag, "dag")
    return p.render("session.html", dag=dag, view=view, drawing=drawing,
                    artifacts=sorted(artifacts.values(), key=lambda a: (order[a["role"]], a["path"] or "")),
                    labels=present.label_rows(present.json_obj(cur.body)) if cur else [],
                    git=present.git({}, dag.git_commit, dag.git_branch, dag.git_repo), standalone=False,
                    base=str(p.request.base_url).rstrip("/"), title=f"session {digest[:12]}")


@router.get("/s/{digest}/dag.svg")
def session_svg(p: P, digest: str):
    dag, refusal = _visible_dag(p, digest)
    if refusal is not None:
        return refusal
    drawing = layout(lookup.dag_view(p.session, dag)["jobs"])
    svg = _env().get_template("dag.svg").render(drawing=drawing, standalone=True)
    return Response(svg, media_type="image/svg+xml", headers=HEADERS)


@router.get("/dag/{digest}")
def receipt_link(digest: str):
    # registration receipts name /dag/<hash> (roar.glaas.store.registration.receipt)
    return _redirect(f"/s/{quote(digest)}", 308)


@router.get("/login", response_class=HTMLResponse)
def login_form(p: P, next: str = "/"):
    return p.render("login.html", next=_local(next), error=None, title="log in")


LOCAL_PATH = re.compile(r"^/(?![/\\])[^\s\x00-\x1f\x7f\\]*$")


def _local(url: str) -> str:
    """A path on this server to return to; anything else is /. Browsers drop tabs and
    newlines from a URL and read a backslash as a slash, so a path holding one of them
    could lead off the server: it is refused."""
    return url if LOCAL_PATH.fullmatch(url) else "/"


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    fields = parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    return {k: v[0] for k, v in fields.items()}


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, session: DB):
    p = Page(request, session)
    form = await _form(request)
    back = _local(form.get("next", "/"))
    if not identity.same_origin(request):
        return p.message(403, "Log in from this server's page", "this form was sent from another site: "
                         "open /login on this server and log in there")
    token = form.get("token", "").strip()
    who: Principal | None = tokens.principal(session, token) if 0 < len(token) <= identity.MAX_TOKEN else None
    if who is None:
        return p.render("login.html", status=401, next=back, title="log in",
                        error="unknown or revoked token: ask the server's admin for one "
                              "(roar glaas token create)")
    response = _redirect(back)
    identity.remember(response, request, token)
    return response


@router.post("/logout")
async def logout(request: Request, session: DB):
    if not identity.same_origin(request):
        return Page(request, session).message(403, "Log out from this server's page",
                                              "this form was sent from another site")
    response = _redirect("/")
    identity.forget(response, request)
    return response


@router.get("/static/{name}")
def static(name: str):
    if name not in STATIC:
        return Response("not found\n", status_code=404, media_type="text/plain", headers=HEADERS)
    return Response((HERE / "static" / name).read_bytes(), media_type=STATIC[name],
                    headers={**HEADERS, "Cache-Control": "public, max-age=3600"})

"""Presenting a session DAG: terminal text, Graphviz dot, Mermaid, and SVG/PNG through
Graphviz's `dot` when it is installed. JSON is streamed from the index by
roar.lineage.dagjson without building the DAG."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import TYPE_CHECKING

from roar.cli.printable import printable
from roar.errors import RoarError, UsageError

if TYPE_CHECKING:
    from roar.lineage.dag import Dag

IMAGE_FORMATS = ("svg", "png")
FORMATS = ("text", "json", "dot", "mermaid", *IMAGE_FORMATS)


def short(hash_: str) -> str:
    return hash_.rpartition(":")[2][:12]


def _artifact_label(dag: Dag, art: str) -> str:
    node = dag.artifacts[art]
    name = printable(os.path.basename(node.paths[-1].rstrip("/")) or node.paths[-1])
    return f"{name}/" if node.kind == "composite" else name


def to_text(dag: Dag) -> str:
    if not dag.jobs:
        return "no jobs in this session yet: record one with `roar run CMD`\n"
    # names, commands and reasons come from the workspace: escaped, so none can drive the terminal
    lines = [f"session {dag.session['seq']} ({dag.session['id']}): {len(dag.jobs)} jobs, "
             f"{len(dag.artifacts)} artifacts"]
    for job in dag.jobs:
        flag = "  STALE" if job.stale else ""
        lines.append(f"{job.name:<5} {printable(job.command)}  [{job.status}]{flag}")
        for path, art in job.inputs:
            producer = job.fed_by.get(art)
            origin = f"from {dag.job(producer).name}" if producer else "source"
            if dag.artifacts[art].member_of:
                origin += ", a member of its output directory"
            lines.append(f"   <- {printable(path)}  {short(art)}  ({origin})")
        for path, art in job.outputs:
            stale = "  STALE" if dag.artifacts[art].stale else ""
            lines.append(f"   -> {printable(path)}  {short(art)}{stale}")
        lines += [f"      stale: {printable(reason)}" for reason in job.stale]
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(dag: Dag) -> str:
    lines = ["digraph roar {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for job in dag.jobs:
        style = ', color="red", fontcolor="red"' if job.stale else ""
        label = f"{job.name} {printable(job.command)[:60]}"
        lines.append(f'  "job:{job.uid}" [shape=box, style=rounded, label={_dot_quote(label)}{style}];')
    for art, node in dag.artifacts.items():
        shape = "folder" if node.kind == "composite" else "note"
        style = ', color="red", fontcolor="red", style=dashed' if node.stale else ""
        label = f"{_artifact_label(dag, art)}\n{short(node.hash)}"
        lines.append(f'  "artifact:{art}" [shape={shape}, label={_dot_quote(label)}{style}];')
    for job in dag.jobs:
        lines += [f'  "artifact:{art}" -> "job:{job.uid}";' for _, art in job.inputs]
        lines += [f'  "job:{job.uid}" -> "artifact:{art}";' for _, art in job.outputs]
    lines += [f'  "artifact:{node.member_of}" -> "artifact:{art}" [style=dotted];'
              for art, node in dag.artifacts.items() if node.member_of]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(dag: Dag) -> str:
    lines = ["flowchart LR"]
    ids = {}
    for i, job in enumerate(dag.jobs):
        ids[job.uid] = f"j{i}"
        lines.append(f'  j{i}["{_mermaid_text(job.name + " " + printable(job.command)[:60])}"]')
    for i, (art, node) in enumerate(dag.artifacts.items()):
        ids[art] = f"a{i}"
        label = _mermaid_text(f"{_artifact_label(dag, art)}<br/>{short(node.hash)}")
        lines.append(f'  a{i}[/"{label}"/]' if node.kind == "composite" else f'  a{i}(["{label}"])')
    for job in dag.jobs:
        lines += [f"  {ids[art]} --> {ids[job.uid]}" for _, art in job.inputs]
        lines += [f"  {ids[job.uid]} --> {ids[art]}" for _, art in job.outputs]
    lines += [f"  {ids[node.member_of]} -.-> {ids[art]}"
              for art, node in dag.artifacts.items() if node.member_of]
    stale = [ids[j.uid] for j in dag.jobs if j.stale] + [ids[a] for a, n in dag.artifacts.items() if n.stale]
    if stale:
        lines.append("  classDef stale stroke:#d00,color:#d00,stroke-dasharray:4")
        lines.append(f"  class {','.join(stale)} stale")
    return "\n".join(lines) + "\n"


def render_image(dot_source: str, fmt: str) -> bytes:
    """SVG or PNG bytes from Graphviz's `dot`."""
    if fmt not in IMAGE_FORMATS:
        raise UsageError(f"unknown image format {fmt!r}: use {' or '.join(IMAGE_FORMATS)}")
    dot = shutil.which("dot")
    if dot is None:
        raise RoarError(f"--format {fmt} needs Graphviz's `dot`: install graphviz, "
                        "or use --format dot and render it elsewhere")
    proc = subprocess.run([dot, f"-T{fmt}"], input=dot_source.encode(), capture_output=True)
    if proc.returncode != 0:
        raise RoarError(f"graphviz failed: {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout

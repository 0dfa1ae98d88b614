"""A registered DAG laid out for drawing: layers from top to bottom, computed here so the
page needs no script to show it.

Jobs and artifacts are both nodes. An artifact no job of the DAG wrote sits in layer 0; a
job sits one layer below the lowest of its inputs; an artifact one layer below the job that
first wrote it. Jobs are taken in step order, so a DAG with a cycle (a job writing back
content an earlier step read) still gets a layout: that edge simply points upwards.
Within a layer, nodes are ordered by the mean position of their neighbours (a few sweeps
of the barycenter heuristic), which keeps most edges short and uncrossed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NODE_W, NODE_H = 220, 46
GAP_X, GAP_Y = 28, 58
MARGIN = 16
SWEEPS = 4
LABEL_CHARS = 30   # an artifact's name (proportional font)
JOB_CHARS = 27     # a command (monospace)


@dataclass
class Node:
    key: str               # "j:<uid>" or "a:<hash>"
    kind: str              # job | artifact
    href: str
    label: str             # shown, shortened
    sublabel: str
    title: str             # the whole text, as a tooltip
    layer: int = 0
    x: float = 0.0
    y: float = 0.0


@dataclass
class Edge:
    source: str
    target: str
    path: str = ""


@dataclass
class Layout:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 0
    height: int = 0
    node_w: int = NODE_W
    node_h: int = NODE_H


def shorten(text: str, most: int = LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1] + "\u2026"


def _basename(path: str | None) -> str:
    if not path:
        return ""
    return path.rstrip("/").rsplit("/", 1)[-1] or path


def _nodes_and_edges(jobs: list[dict]) -> tuple[dict[str, Node], list[Edge]]:
    nodes: dict[str, Node] = {}
    edges: list[Edge] = []

    def artifact(e: dict) -> str:
        key = f"a:{e['hash']}"
        if key not in nodes:
            name = _basename(e.get("path")) or e["hash"][:12]
            nodes[key] = Node(key, "artifact", f"/a/{e['hash']}", shorten(name), e["hash"][:12],
                              f"{e.get('path') or '(no path)'}\n{e['hash']}")
        return key

    for job in jobs:
        jkey = f"j:{job['jobUid']}"
        nodes[jkey] = Node(jkey, "job", f"/j/{job['jobUid']}", shorten(job["command"], JOB_CHARS),
                           f"step {job['stepNumber']} \u00b7 {job['jobType']}", job["command"])
        for e in job["inputs"]:
            edges.append(Edge(artifact(e), jkey))
        for e in job["outputs"]:
            edges.append(Edge(jkey, artifact(e)))
    return nodes, edges


def _assign_layers(jobs: list[dict], nodes: dict[str, Node]) -> None:
    placed: set[str] = set()
    for job in jobs:   # jobs come in step order
        ins = [f"a:{e['hash']}" for e in job["inputs"]]
        for key in ins:
            if key not in placed:   # not written by an earlier step: a source
                nodes[key].layer = 0
                placed.add(key)
        jkey = f"j:{job['jobUid']}"
        nodes[jkey].layer = 1 + max((nodes[k].layer for k in ins), default=0)
        placed.add(jkey)
        for e in job["outputs"]:
            key = f"a:{e['hash']}"
            if key not in placed:
                nodes[key].layer = nodes[jkey].layer + 1
                placed.add(key)


def _order(layers: list[list[str]], edges: list[Edge], nodes: dict[str, Node]) -> None:
    neighbours: dict[str, list[str]] = {k: [] for k in nodes}
    for e in edges:
        neighbours[e.source].append(e.target)
        neighbours[e.target].append(e.source)
    position = {k: i for layer in layers for i, k in enumerate(layer)}

    def sweep(indices, above):
        for li in indices:
            def centre(key, li=li):
                near = [position[n] for n in neighbours[key]
                        if (nodes[n].layer < li if above else nodes[n].layer > li)]
                return sum(near) / len(near) if near else position[key]
            layers[li].sort(key=centre)
            position.update({k: i for i, k in enumerate(layers[li])})

    for _ in range(SWEEPS):
        sweep(range(1, len(layers)), above=True)
        sweep(range(len(layers) - 2, -1, -1), above=False)


def layout(jobs: list[dict]) -> Layout:
    """jobs as roar.glaas.store.lookup.dag_view gives them (in step order)."""
    nodes, edges = _nodes_and_edges(jobs)
    _assign_layers(jobs, nodes)
    depth = 1 + max((n.layer for n in nodes.values()), default=-1)
    layers: list[list[str]] = [[] for _ in range(depth)]
    for key, node in nodes.items():
        layers[node.layer].append(key)
    layers = [layer for layer in layers if layer]
    for li, layer in enumerate(layers):   # renumber without empty layers
        for key in layer:
            nodes[key].layer = li
    _order(layers, edges, nodes)
    widest = max((len(layer) for layer in layers), default=0)
    width = 2 * MARGIN + widest * NODE_W + max(widest - 1, 0) * GAP_X
    for li, layer in enumerate(layers):
        row = len(layer) * NODE_W + (len(layer) - 1) * GAP_X
        left = (width - row) / 2
        for i, key in enumerate(layer):
            nodes[key].x = left + i * (NODE_W + GAP_X)
            nodes[key].y = MARGIN + li * (NODE_H + GAP_Y)
    side = 0
    for e in edges:
        s, t = nodes[e.source], nodes[e.target]
        if t.layer == s.layer + 1:   # the next layer down: straight from bottom to top
            x1, y1 = s.x + NODE_W / 2, s.y + NODE_H
            x2, y2 = t.x + NODE_W / 2, t.y - 4   # room for the arrow head
            mid = (y1 + y2) / 2
            e.path = f"M{x1:.0f},{y1:.0f} C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"
            continue
        # over other layers, or upwards (a cycle): around the right side, so no node hides it
        span = abs(t.layer - s.layer)
        bend = GAP_X + min(span, 6) * 14
        side = max(side, bend)
        x1, y1 = s.x + NODE_W, s.y + NODE_H / 2
        x2, y2 = t.x + NODE_W + 4, t.y + NODE_H / 2
        e.path = (f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} "
                  f"{x2 + bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}")
    height = 2 * MARGIN + len(layers) * NODE_H + max(len(layers) - 1, 0) * GAP_Y
    return Layout(list(nodes.values()), edges, int(width + side), int(height))

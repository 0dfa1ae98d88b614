"""A registered DAG laid out for drawing: layers from top to bottom, computed here so the
page needs no script to show it.

Jobs and artifacts are both nodes. An artifact no job of the DAG wrote sits in layer 0; a
job sits one layer below the lowest of its inputs; an artifact one layer below the job that
first wrote it. Jobs are taken in step order, so a DAG with a cycle (a job writing back
content an earlier step read) still gets a layout: that edge simply points upwards.
An edge over several layers takes a narrow slot in each layer it passes (as in Sugiyama's
method), so it runs between boxes rather than through them. Within a layer, nodes and slots
are ordered by the mean position of their neighbours (a few sweeps of the barycenter
heuristic), which keeps most edges short and uncrossed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NODE_W, NODE_H = 220, 46
GAP_X, GAP_Y = 28, 58
VIA_W = 8            # the slot an edge takes in a layer it passes through
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


def _order(layers: list[list[str]], segments: list[tuple[str, str]], layer_of: dict[str, int]) -> None:
    neighbours: dict[str, list[str]] = {k: [] for layer in layers for k in layer}
    for a, b in segments:
        neighbours[a].append(b)
        neighbours[b].append(a)
    position = {k: i for layer in layers for i, k in enumerate(layer)}

    def sweep(indices, above):
        for li in indices:
            def centre(key, li=li):
                near = [position[n] for n in neighbours[key]
                        if (layer_of[n] < li if above else layer_of[n] > li)]
                return sum(near) / len(near) if near else position[key]
            layers[li].sort(key=centre)
            position.update({k: i for i, k in enumerate(layers[li])})

    for _ in range(SWEEPS):
        sweep(range(1, len(layers)), above=True)
        sweep(range(len(layers) - 2, -1, -1), above=False)


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    mid = (y1 + y2) / 2
    return f"C{x1:.0f},{mid:.0f} {x2:.0f},{mid:.0f} {x2:.0f},{y2:.0f}"


def layout(jobs: list[dict]) -> Layout:
    """jobs as roar.glaas.store.lookup.dag_view gives them (in step order)."""
    nodes, edges = _nodes_and_edges(jobs)
    _assign_layers(jobs, nodes)
    used = sorted({n.layer for n in nodes.values()})
    renumber = {old: new for new, old in enumerate(used)}   # no empty layers
    for node in nodes.values():
        node.layer = renumber[node.layer]
    layers: list[list[str]] = [[] for _ in used]
    for key, node in nodes.items():
        layers[node.layer].append(key)
    layer_of = {k: n.layer for k, n in nodes.items()}
    # an edge over several layers passes through a narrow placeholder in each: the ordering
    # then keeps it clear of the boxes in between
    via: dict[int, list[str]] = {}
    segments: list[tuple[str, str]] = []
    for i, e in enumerate(edges):
        s, t = nodes[e.source].layer, nodes[e.target].layer
        chain = []
        for li in range(s + 1, t):
            key = f"v:{i}:{li}"
            layers[li].append(key)
            layer_of[key] = li
            chain.append(key)
        via[i] = chain
        points = [e.source, *chain, e.target]
        segments += list(zip(points[:-1], points[1:], strict=True))
    _order(layers, segments, layer_of)

    def width_of(key: str) -> int:
        return VIA_W if key.startswith("v:") else NODE_W

    rows = [sum(width_of(k) for k in layer) + max(len(layer) - 1, 0) * GAP_X for layer in layers]
    width = 2 * MARGIN + max(rows, default=0)
    x: dict[str, float] = {}
    for li, layer in enumerate(layers):
        left = (width - rows[li]) / 2
        for key in layer:
            x[key] = left
            left += width_of(key) + GAP_X
            if key in nodes:
                nodes[key].x, nodes[key].y = x[key], MARGIN + li * (NODE_H + GAP_Y)
    side = 0
    for i, e in enumerate(edges):
        s, t = nodes[e.source], nodes[e.target]
        if t.layer > s.layer:   # downwards: bottom of one box to the top of the other
            px, py = s.x + NODE_W / 2, s.y + NODE_H
            path = [f"M{px:.0f},{py:.0f}"]
            for key in via[i]:   # straight down through each layer it crosses
                vx, top = x[key] + VIA_W / 2, MARGIN + layer_of[key] * (NODE_H + GAP_Y)
                path += [_curve(px, py, vx, top), f"L{vx:.0f},{top + NODE_H:.0f}"]
                px, py = vx, top + NODE_H
            path.append(_curve(px, py, t.x + NODE_W / 2, t.y - 4))   # room for the arrow head
            e.path = " ".join(path)
            continue
        # upwards (a cycle: a job wrote back what an earlier step read): around the right side
        bend = GAP_X + min(s.layer - t.layer, 6) * 14
        side = max(side, bend)
        x1, y1 = s.x + NODE_W, s.y + NODE_H / 2
        x2, y2 = t.x + NODE_W + 4, t.y + NODE_H / 2
        e.path = (f"M{x1:.0f},{y1:.0f} C{x1 + bend:.0f},{y1:.0f} "
                  f"{x2 + bend:.0f},{y2:.0f} {x2:.0f},{y2:.0f}")
    height = 2 * MARGIN + len(layers) * NODE_H + max(len(layers) - 1, 0) * GAP_Y
    return Layout(list(nodes.values()), edges, int(width + side), int(height))

"""`--verify`: each reproduced output against its recorded hash, step by step; for a
file that differs, the first differing byte (when the recorded bytes are still on disk
at the original path, the only place roar can read them from)."""

from __future__ import annotations

from typing import Any

from roar.reproduce.paths import RootMap

CHUNK = 1 << 20


def compare(recipe: dict[str, Any], mapping: RootMap) -> list[dict[str, Any]]:
    """Per step: {"step", "state": identical | differs, "outputs": [{path, recorded, now, state,
    first_difference}]} (state of an output: identical, differs, missing)."""
    from roar.artifacts.hashing import hash_file

    results = []
    for step in recipe["steps"]:
        outputs = []
        for out in step["outputs"]:
            path = mapping.path(out["path"])
            entry = {"path": path, "recorded": out["hash"], "now": None, "state": "missing",
                     "first_difference": None}
            try:
                entry["now"] = hash_file(path)["blake3"]
            except OSError:
                outputs.append(entry)
                continue
            entry["state"] = "identical" if entry["now"] == out["hash"] else "differs"
            if entry["state"] == "differs":
                entry["first_difference"] = _first_difference(out["path"], out["hash"], path)
            outputs.append(entry)
        state = "identical" if all(o["state"] == "identical" for o in outputs) else "differs"
        results.append({"step": step["step"], "uid": step["uid"], "state": state, "outputs": outputs})
    return results


def target_reproduced(recipe: dict[str, Any], results: list[dict[str, Any]]) -> bool:
    """The artifact asked for came out identical; for a job or session, every output did."""
    target = recipe["target"]
    outputs = [o for r in results for o in r["outputs"]]
    if target is None:
        return all(o["state"] == "identical" for o in outputs)
    made = [o for o in outputs if o["recorded"] == target]
    return bool(made) and made[-1]["state"] == "identical"


def _first_difference(original: str, recorded: str, path: str) -> int | None:
    from roar.artifacts.hashing import hash_file

    if original == path:
        return None
    try:
        if hash_file(original)["blake3"] != recorded:
            return None
        with open(original, "rb") as a, open(path, "rb") as b:
            offset = 0
            while True:
                x, y = a.read(CHUNK), b.read(CHUNK)
                if x != y:
                    pairs = enumerate(zip(x, y, strict=False))
                    n = next((i for i, (p, q) in pairs if p != q), min(len(x), len(y)))
                    return offset + n
                if not x:
                    return None
                offset += len(x)
    except OSError:
        return None

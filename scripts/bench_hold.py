"""Cost of hashing inputs as read (docs/tracer.md, "Input hashes"): `roar run` against
`roar run --no-hold` and against the untraced command, in the same rounds.

Run as root: /opt/roar/venv/bin/python scripts/bench_hold.py [--runs 5] [--files 2000]
- reads: one process reads FILES small files, each a first read (a hold each); the files
  are rewritten before every run, so the hash cache never knows them (the worst case);
- reads, cached: the same files unchanged since the previous run (a hold, no hashing);
- forks: a shell starts 300 short processes (two pinner stops each, no reads).
Figures: medians of per-round ratios, with the noise band (benchlib.stats).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import proc, report, stats  # noqa: E402

READER = "import os\nfor n in sorted(os.listdir('d')):\n    open('d/' + n, 'rb').read()\n"
FORKS = "for i in $(seq 300); do /bin/true; done"


def _write_files(work: Path, count: int, round_no: int) -> None:
    d = work / "d"
    d.mkdir(exist_ok=True)
    for i in range(count):
        (d / f"{i:05d}").write_bytes(b"%d %d\n" % (round_no, i) * 64)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--files", type=int, default=2000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        proc.log("run as root: roar run needs it", "bench_hold")
        return 2
    roar = [sys.executable, "-m", "roar", "run", "-q"]
    env = dict(os.environ)
    workloads = {
        "reads": ([sys.executable, "-c", READER], True),
        "reads, cached": ([sys.executable, "-c", READER], False),
        "forks": (["sh", "-c", FORKS], False),
    }
    variants = {"untraced": [], "roar": roar + ["--"], "roar --no-hold": roar + ["--no-hold", "--"]}
    rows = []
    with tempfile.TemporaryDirectory(prefix="roar-bench-hold-") as tmp:
        work = Path(tmp)
        proc.run(roar + ["--", "true"], work, env)      # the workspace, once
        _write_files(work, args.files, 0)
        for name, (cmd, fresh) in workloads.items():
            counter = [0]

            def body(i: int, warmup: bool, cmd=cmd, fresh=fresh, counter=counter):
                values = {}
                for variant in stats.abba(list(variants), i):
                    if fresh:
                        counter[0] += 1
                        _write_files(work, args.files, counter[0])
                    values[variant] = proc.run(variants[variant] + cmd, work, env).wall_s
                return values, None

            rounds = stats.rounds(args.runs, body, deadline=float("inf"))
            summary = stats.summarize(rounds, {"hold": ("roar", "untraced"),
                                               "no-hold": ("roar --no-hold", "untraced"),
                                               "hold/no-hold": ("roar", "roar --no-hold")})
            med = summary["median"]
            rows.append([name, report.fmt_s(med.get("untraced")), report.fmt_s(med.get("roar")),
                         report.fmt_s(med.get("roar --no-hold")),
                         report.fmt_x(summary["ratio"].get("hold")),
                         report.fmt_x(summary["ratio"].get("no-hold")),
                         report.fmt_x(summary["ratio"].get("hold/no-hold")) + " "
                         + report.fmt_band(summary["noise"].get("hold/no-hold"))])
    header = ["workload", "untraced", "roar", "--no-hold", "roar/untraced", "no-hold/untraced",
              "roar/no-hold"]
    print(f"files: {args.files}, rounds: {args.runs}")
    print("\n".join(report.columns(header, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The workloads: their sizes, the C programs in scripts/bench/ compiled for
the run, the generated build of (c), and the floor's BPF object."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..proc import BenchError

SCRIPTS = Path(__file__).resolve().parents[2]
BENCH_SRC = SCRIPTS / "bench"
BPF_SRC = SCRIPTS.parent / "bpf"
OPEN_LOOPS = 200_000
DD_COUNT = 1_000_000
BUILD_FILES = 40          # + main.c
BUILD_FUNCS = 12          # functions per generated file


def compile_tools(bin_dir: Path) -> None:
    """openloop (workload (a)) and timeit (own time of dd and make)."""
    for name in ("openloop", "timeit"):
        src = BENCH_SRC / f"{name}.c"
        p = subprocess.run(["gcc", "-O2", "-Wall", "-o", str(bin_dir / name), str(src)],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise BenchError(f"gcc {src} failed: {p.stderr.strip()}")


def build_floor(dest: Path) -> str | None:
    """bpf/floor.bpf.c built into dest (`make floor`); None, or why not, as a string."""
    if not shutil.which("clang"):
        return "clang not found (apt-get install clang llvm): the floor is not measured"
    p = subprocess.run(["make", "-s", "-C", str(BPF_SRC), "floor", f"FLOOR={dest}"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return f"`make -C bpf floor` failed ({p.stderr.strip()[-200:]}): the floor is not measured"
    return None


def dd_cmd() -> list[str]:
    return ["dd", "if=/dev/zero", "of=/dev/null", "bs=4k", f"count={DD_COUNT}"]


def generate_build(d: Path) -> None:
    """BUILD_FILES small C files + main.c, and a Makefile with a clean target."""
    src = d / "src"
    src.mkdir(parents=True)
    for i in range(BUILD_FILES):
        lines = ["#include <math.h>", "#include <stdio.h>", "#include <stdlib.h>", "#include <string.h>", ""]
        for j in range(BUILD_FUNCS):
            lines += [f"static double work_{j}(const double *v, size_t n, int k)", "{",
                      "\tdouble acc = 0;",
                      "\tfor (size_t i = 0; i < n; i++) {",
                      f"\t\tdouble x = v[i] * {j + 1}.0 + k;",
                      f"\t\tacc += (i % {j + 2} ? sin(x) : sqrt(fabs(x))) / (1.0 + acc * acc);",
                      "\t}", "\treturn acc;", "}", ""]
        lines += [f"double unit_{i}(int k)", "{", "\tdouble v[64], acc = 0;", "\tchar buf[64];",
                  "\tfor (int i = 0; i < 64; i++)", "\t\tv[i] = i * 0.5 + k;"]
        lines += [f"\tacc += work_{j}(v, 64, k);" for j in range(BUILD_FUNCS)]
        lines += ['\tsnprintf(buf, sizeof buf, "%d", (int)acc);', "\treturn acc + strlen(buf);", "}", ""]
        (src / f"u{i:02d}.c").write_text("\n".join(lines))
    main = (["#include <stdio.h>"] + [f"double unit_{i}(int);" for i in range(BUILD_FILES)]
            + ["int main(void)", "{", "\tdouble s = 0;"]
            + [f"\ts += unit_{i}(1);" for i in range(BUILD_FILES)]
            + ['\tprintf("%f\\n", s);', "\treturn 0;", "}", ""])
    (src / "main.c").write_text("\n".join(main))
    (d / "Makefile").write_text(
        "CC = gcc\nCFLAGS = -O2\nSRCS = $(wildcard src/*.c)\nOBJS = $(SRCS:.c=.o)\n\n"
        "prog: $(OBJS)\n\t$(CC) -o $@ $(OBJS) -lm\n\n"
        "src/%.o: src/%.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n\n"
        "clean:\n\trm -f prog $(OBJS)\n")


"""Run every chapter for several seeds in the quick profile and print its findings per seed.

Each finding a chapter claims must hold for seeds 0-4 (issue 11): this script is how that is
checked. It runs each notebook's code cells in order, in a fresh Python process per (chapter,
seed), with ``RESLIB_SEED=k`` and ``RESLIB_PROFILE=quick``. A failed claim does not stop the
run (the next cells still execute, so one failure does not hide the others); any other error
ends that run and is reported. Then it prints, per chapter, one row per finding with ✓/✗ for
each seed and the measured numbers each claim printed.

    .venv/bin/python benchmarks/seed_table.py                      # chapters/*.ipynb, seeds 0-4
    .venv/bin/python benchmarks/seed_table.py chapters/02_resnet.ipynb --seeds 0 1 --jobs 2

``make seeds`` runs it; it is not part of ``make test`` (five runs of every chapter).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cells import chapter_arguments, chapters_to_run  # benchmarks/cells.py, beside this

VERDICT = re.compile(
    r"^(✓|✗) \[(check|finding)\] (?:claim failed: |did not hold in this run: )?(.*)$"
)


@dataclass
class Run:
    notebook: str
    seed: int
    seconds: float = 0.0
    cpu: float = 0.0  # CPU seconds of the run (one thread): its wall time on an idle machine
    claims: list[tuple[str, str, str]] = field(default_factory=list)  # (mark, kind, text)
    error: str = ""


def run_one(notebook: Path, seed: int, timeout: float, log_dir: Path | None = None) -> Run:
    env = dict(os.environ, RESLIB_SEED=str(seed), RESLIB_PROFILE="quick", MPLBACKEND="Agg")
    run = Run(notebook.name, seed)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, __file__, "--child", str(notebook)],
            env=env, capture_output=True, text=True, timeout=timeout, check=False,
            # its own session, as Jupyter starts a kernel: with the kernel's autogroup
            # scheduling, runs of one session would share a single process's CPU time
            start_new_session=True,
        )  # fmt: skip
        out = proc.stdout
        if proc.returncode != 0:
            run.error = (out.split("ERROR in cell", 1)[-1] + proc.stderr)[-600:]
    except subprocess.TimeoutExpired:
        out, run.error = "", f"timed out after {timeout:.0f} s"
    run.seconds = time.perf_counter() - start
    if log_dir is not None:  # every run's own output, to read the numbers before the table
        log_dir.mkdir(parents=True, exist_ok=True)
        (log_dir / f"{notebook.stem}-seed{seed}.txt").write_text(out + "\n" + run.error)
    print(f"{notebook.name} seed {seed}: {run.seconds:.0f} s", file=sys.stderr, flush=True)
    for line in out.splitlines():
        if line.startswith("CPU_SECONDS "):
            run.cpu = float(line.split()[1])
        m = VERDICT.match(line.strip())
        if m:
            run.claims.append((m.group(1), m.group(2), m.group(3)))
    return run


def split_detail(text: str) -> tuple[str, str]:
    """'statement  (numbers)' -> ('statement', 'numbers')."""
    head, sep, tail = text.partition("  (")
    return head, tail[:-1] if sep and tail.endswith(")") else tail


def report(runs: list[Run], seeds: list[int]) -> bool:
    ok = True
    for notebook in dict.fromkeys(r.notebook for r in runs):
        mine = {r.seed: r for r in runs if r.notebook == notebook}
        times = " ".join(f"{mine[s].seconds:.0f}" for s in seeds)
        cpu = " ".join(f"{mine[s].cpu:.0f}" for s in seeds)
        print(f"\n## {notebook}  (wall seconds per seed: {times}; CPU seconds: {cpu})")
        findings = {s: [c for c in mine[s].claims if c[1] == "finding"] for s in seeds}
        checks = {s: sum(c[1] == "check" for c in mine[s].claims) for s in seeds}
        rows = max(len(f) for f in findings.values())
        print("| # | finding | " + " | ".join(f"seed {s}" for s in seeds) + " |")
        print("|---|---|" + "---|" * len(seeds))
        for i in range(rows):
            name = next(
                (split_detail(findings[s][i][2])[0] for s in seeds if i < len(findings[s])), ""
            )
            marks = [findings[s][i][0] if i < len(findings[s]) else "–" for s in seeds]
            ok &= all(m == "✓" for m in marks)
            print(f"| F{i + 1} | {name[:90]} | " + " | ".join(marks) + " |")
        print(f"checks per seed: {[checks[s] for s in seeds]}; findings per seed: "
              f"{[len(findings[s]) for s in seeds]}")  # fmt: skip
        print("measured (per seed):")
        for i in range(rows):
            for s in seeds:
                if i < len(findings[s]):
                    mark, _, text = findings[s][i]
                    print(f"  F{i + 1} seed {s}: {mark} {split_detail(text)[1]}")
        for s in seeds:
            if mine[s].error:
                ok = False
                print(f"  seed {s} stopped: {mine[s].error.strip()}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chapter_arguments(parser, jobs_help="runs at once (default 1)", timeout=900.0)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--log", type=Path, help="write each run's output to this folder")
    args = parser.parse_args()
    notebooks = chapters_to_run(parser, args)
    jobs = [(nb, s) for nb in notebooks for s in args.seeds]
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda job: run_one(*job, args.timeout, args.log), jobs))
    ok = report(runs, args.seeds)
    took = time.perf_counter() - start
    print(f"\n{len(jobs)} runs in {took:.0f} s ({len(notebooks)} chapters x {len(args.seeds)} "
          f"seeds, {args.jobs} at a time)")  # fmt: skip
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

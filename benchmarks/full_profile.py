"""Run chapters' full profile end to end on a GPU machine, without Jupyter or a network.

    python benchmarks/full_profile.py chapters/02_resnet.ipynb chapters/08_*.ipynb \
        --jobs 3 --timeout 300 --out benchmarks/results/full_profile_h200.json

Each chapter's code cells run as plain Python in a process of their own (benchmarks/cells.py)
with ``RESLIB_PROFILE=full``. Where a dataset cannot be downloaded, ``RESLIB_STAND_IN=1``
replaces it by generated data of its shape (CIFAR-shaped random images, shapes for the pets):
the run then measures time and shows the code works at full size, but its findings say nothing
about the real data, so they are *reported*, never raised (the full profile prints a failed
finding as a ✗ line and goes on). The JSON records, per chapter, the wall time, every cell's
time, the claims' verdicts, which datasets were stood in for, and any error or timeout, with
the provenance of the machine. ``--jobs N`` runs N chapters at once on the one GPU, so a short
GPU lease covers several chapters; their times are then upper bounds of a chapter run alone.
The file is rewritten after every chapter, so a run cut short keeps what it finished.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from threading import Lock
from typing import Any

from cells import ROOT, chapter_arguments, chapters_to_run  # benchmarks/cells.py, beside this
from seed_table import VERDICT

BUDGET_SECONDS = 300  # a chapter's full profile: at most 5 minutes on an H100 or H200
MIN_START_SECONDS = 10  # a chapter is not started with less time left: it would only import


def machine() -> dict[str, Any]:
    import torch

    import reslib

    info: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "reslib": reslib.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def run_chapter(notebook: Path, timeout: float, log_dir: Path) -> dict[str, Any]:
    """One chapter in its own process group; its output goes to a log file as it runs."""
    env = dict(os.environ, RESLIB_PROFILE="full", RESLIB_STAND_IN="1", MPLBACKEND="Agg")
    env.setdefault("RESLIB_SEED", "0")
    log = log_dir / f"{notebook.stem}.log"
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, __file__, "--child", str(notebook)],
            env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            code: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the chapter and anything it started
            proc.wait()
            code = None
    seconds = time.perf_counter() - start
    text = log.read_text(errors="replace")
    cells, claims, stand_ins = [], [], []
    for line in text.splitlines():
        if m := re.match(r"^CELL (\d+) ([\d.]+)$", line):
            cells.append({"index": int(m[1]), "seconds": float(m[2])})
        elif m := VERDICT.match(line.strip()):
            claims.append({"mark": m[1], "kind": m[2], "text": m[3]})
        elif line.startswith("STAND-IN DATA: "):
            stand_ins.append(line.removeprefix("STAND-IN DATA: "))
    error = ""
    if code is None:
        last = f"the cell after cell {cells[-1]['index']}" if cells else "its first cell"
        error = f"timed out after {timeout:.0f} s, in {last} (notebook cell numbers from 0)"
    elif code != 0:
        error = text.split("ERROR in cell", 1)[-1][-1500:]
    result = {
        "notebook": notebook.name,
        "started": True,
        "seconds": round(seconds, 1),
        "finished": code == 0,
        "within_budget": code == 0 and seconds <= BUDGET_SECONDS,
        "error": error,
        "stand_in_data": sorted(set(stand_ins)),
        "claims": claims,
        "cells": cells,
    }
    mark = "ok" if code == 0 else "FAILED"
    print(f"{notebook.name}: {mark} in {seconds:.0f} s, {len(cells)} cells", flush=True)
    return result


def not_started(notebook: Path) -> dict[str, Any]:
    """The record of a chapter that the run's ``--total`` left no time to start."""
    print(f"{notebook.name}: not started", flush=True)
    return {
        "notebook": notebook.name,
        "started": False,
        "seconds": 0.0,
        "finished": False,
        "within_budget": False,
        "error": "not started: the run's --total time was spent",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    chapter_arguments(
        parser, jobs_help="chapters at once on the one GPU", timeout=2 * BUDGET_SECONDS
    )
    parser.add_argument("--out", type=Path, help="the JSON (default: benchmarks/results/)")
    parser.add_argument("--logs", type=Path, help="each chapter's output (default: next to --out)")
    parser.add_argument(
        "--total", type=float, help="seconds for the whole run: a lease's share (default: none)"
    )
    args = parser.parse_args()
    notebooks = chapters_to_run(parser, args)
    out = args.out or ROOT / "benchmarks" / "results" / "full_profile.json"
    log_dir = args.logs or out.parent / f"{out.stem}_logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "provenance": machine(),
        "settings": {
            "jobs": args.jobs,
            "timeout_s": args.timeout,
            "total_s": args.total,
            "budget_s": BUDGET_SECONDS,
            "note": (
                f"{args.jobs} chapters at once on one GPU: each time is an upper bound of the "
                "chapter run alone"
                if args.jobs > 1
                else "one chapter at a time"
            ),
        },
        "chapters": [],
    }
    lock = Lock()
    # a deadline of our own rather than an outer `timeout`, which would kill this process and
    # leave the chapters (each in its own process group) running on the GPU unrecorded
    deadline = time.perf_counter() + (args.total if args.total else float("inf"))

    def one(notebook: Path) -> None:
        left = deadline - time.perf_counter()
        if left >= MIN_START_SECONDS:
            result = run_chapter(notebook, min(args.timeout, left), log_dir)
        else:
            result = not_started(notebook)
        with lock:  # rewrite the file after every chapter: a cut-short run keeps its results
            report["chapters"].append(result)
            report["chapters"].sort(key=lambda r: r["notebook"])
            out.write_text(json.dumps(report, indent=1, ensure_ascii=False))

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, notebooks))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

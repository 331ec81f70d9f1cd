"""Run a notebook's code cells as plain Python, the way a kernel would: one namespace, in order.

Shared by the scripts in this folder that run chapters without Jupyter (the seed table, the
full-profile run on a GPU machine). Each cell prints a ``CELL <index> <seconds>`` line when it
ends; a failed claim (a check, or a finding in the quick profile) prints its ✗ line and the
run goes on with the next cell; any other error prints ``ERROR in cell <index>`` with its
traceback and stops the run with exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_cells(notebook: Path) -> list[tuple[int, str]]:
    """(index, source) of every code cell, without IPython-only lines (magics, shell escapes)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [
        (
            i,
            "\n".join(
                x
                for x in "".join(c["source"]).splitlines()
                if not x.lstrip().startswith(("%", "!"))
            ),
        )
        for i, c in enumerate(cells)
        if c["cell_type"] == "code"
    ]


def run_cells(notebook: Path) -> None:
    """Execute the code cells of ``notebook``; print per-cell times and the CPU seconds."""
    import matplotlib

    matplotlib.use("Agg")
    from reslib.profiles import ClaimError

    namespace: dict[str, object] = {"__name__": "__main__"}
    os.chdir(notebook.parent)  # as nbval and Jupyter run a notebook
    for i, source in code_cells(notebook):
        start = time.perf_counter()
        try:
            exec(compile(source, f"{notebook.name}[{i}]", "exec"), namespace)
        except ClaimError as err:
            print(str(err), flush=True)  # "✗ [kind] claim failed: ..."; go on with the next cell
        except Exception:
            print(f"ERROR in cell {i}:\n{traceback.format_exc()}", flush=True)
            sys.exit(1)
        finally:
            matplotlib.pyplot.close("all")
            print(f"CELL {i} {time.perf_counter() - start:.2f}", flush=True)
    # CPU seconds of this run: close to its wall time on an idle machine when single-threaded
    print(f"CPU_SECONDS {time.process_time():.1f}", flush=True)


def chapter_arguments(parser: argparse.ArgumentParser, *, jobs_help: str, timeout: float) -> None:
    """The arguments every chapter runner takes: notebooks, --jobs, --timeout, and --child (the
    runner calls itself with it to run one notebook in a process of its own)."""
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every chapter")
    parser.add_argument("--jobs", type=int, default=1, help=jobs_help)
    parser.add_argument("--timeout", type=float, default=timeout, help="seconds per run")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)


def chapters_to_run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[Path]:
    """The notebooks to run; in a ``--child`` process, run its notebook and exit."""
    if args.child:
        run_cells(args.child.resolve())
        sys.exit(0)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    missing = [str(p) for p in args.notebooks if p.suffix != ".ipynb" or not p.is_file()]
    if missing:
        parser.error(f"not a notebook file: {', '.join(missing)}")
    return [p.resolve() for p in args.notebooks] or sorted((ROOT / "chapters").glob("*.ipynb"))

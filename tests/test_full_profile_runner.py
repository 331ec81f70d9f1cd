"""benchmarks/full_profile.py, the runner a short GPU lease depends on: it records a finished
chapter with its cells' times and claims, a chapter that runs out of time, and a chapter the
run's --total left no time for - and writes all of them, so a lease is never spent for nothing.
The chapters here are tiny notebooks; no GPU is needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def notebook(path: Path, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return path


def run(tmp_path: Path, *args: str) -> list[dict]:
    out = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "full_profile.py"), *args, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    report = json.loads(out.read_text())
    assert report["provenance"]["torch"] and report["settings"]["budget_s"] == 300
    return {c["notebook"]: c for c in report["chapters"]}


def test_a_finished_chapter_has_its_cells_and_claims(tmp_path: Path) -> None:
    done = notebook(
        tmp_path / "done.ipynb",
        "import reslib\nreslib.setup(seed=0, verbose=False)",
        "reslib.claim('two is more than one', 2 > 1, kind='check')",
    )
    chapters = run(tmp_path, str(done), "--timeout", "100")
    chapter = chapters["done.ipynb"]
    assert chapter["finished"] and chapter["started"] and not chapter["error"]
    assert [c["index"] for c in chapter["cells"]] == [0, 1]
    assert chapter["claims"] == [{"mark": "✓", "kind": "check", "text": "two is more than one"}]


def test_a_slow_chapter_times_out_and_the_next_is_recorded_as_not_started(
    tmp_path: Path,
) -> None:
    slow = notebook(tmp_path / "a_slow.ipynb", "x = 1", "import time\ntime.sleep(60)")
    late = notebook(tmp_path / "b_late.ipynb", "x = 1")
    chapters = run(tmp_path, str(slow), str(late), "--timeout", "8", "--total", "15")
    assert not chapters["a_slow.ipynb"]["finished"]
    assert chapters["a_slow.ipynb"]["error"].startswith("timed out after 8 s")
    assert chapters["b_late.ipynb"] == {
        "notebook": "b_late.ipynb", "started": False, "seconds": 0.0, "finished": False,
        "within_budget": False, "error": "not started: the run's --total time was spent",
    }  # fmt: skip


def test_a_path_that_is_not_a_notebook_is_a_usage_error(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "full_profile.py"), str(tmp_path / "no.ipynb")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 2 and "not a notebook file" in run.stderr
    assert not (ROOT / "benchmarks" / "results" / "full_profile.json").exists()

"""The nbval plugin that hands the executed chapters to the book build (tests/nbval_book_cache.py):
a notebook whose cells all pass is cached with nbval's outputs, under the key the book build
looks it up by; a notebook with a failing cell is not cached."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache

ROOT = Path(__file__).resolve().parents[1]


def notebook(path: Path, *sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)
    return nb


def test_passing_notebooks_are_cached_with_their_outputs_and_failing_ones_are_not(
    tmp_path: Path,
) -> None:
    good = notebook(tmp_path / "good.ipynb", "x = 6 * 7\nprint('printed', x)", "x + 1")
    bad = notebook(tmp_path / "bad.ipynb", "print('fine')", "raise ValueError('a claim failed')")
    cache_dir = tmp_path / "cache"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--nbval-lax", "--nbval-current-env",
         "-p", "no:cacheprovider", "-p", "tests.nbval_book_cache", "--book-cache", str(cache_dir),
         str(tmp_path / "good.ipynb"), str(tmp_path / "bad.ipynb")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr  # bad.ipynb's second cell fails
    assert "good.ipynb: cached for the book" in run.stdout
    assert "bad.ipynb: not cached (a cell failed or was skipped)" in run.stdout
    cache = get_cache(str(cache_dir))
    _, executed = cache.merge_match_into_notebook(good)  # the lookup the book build makes
    first, second = (c for c in executed.cells if c.cell_type == "code")
    assert first.outputs[0].text == "printed 42\n" and first.execution_count == 1
    assert second.outputs[0].data["text/plain"] == "43" and second.execution_count == 2
    with pytest.raises(KeyError):
        cache.match_cache_notebook(bad)

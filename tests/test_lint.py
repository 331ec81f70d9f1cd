"""The style the repository keeps, checked by ruff with the settings in ``pyproject.toml``: its
lint rules over the package, the tests, the benchmark scripts and the notebooks' code cells
(what readers copy from), and its formatting of the Python files. Notebooks are linted but not
reformatted: their cells are laid out by hand for reading."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ["reslib", "tests", "benchmarks"]
NOTEBOOKS = ["chapters", "book/performance.ipynb"]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff comes with the test extra: pip install -e '.[test]'",
)


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_code_and_notebooks_pass_the_lint_rules() -> None:
    run = ruff("check", "--output-format", "concise", *PYTHON, *NOTEBOOKS)
    assert run.returncode == 0, run.stdout + run.stderr


def test_python_files_are_formatted() -> None:
    run = ruff("format", "--check", *PYTHON)
    assert run.returncode == 0, run.stdout + run.stderr

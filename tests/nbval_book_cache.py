"""A pytest plugin for ``make notebooks``: the chapters nbval executed become the book's cache.

``make test`` runs every chapter under nbval and then builds the book, which would execute
every chapter again: the same cells, the same kernel, ten more minutes. nbval keeps each cell's
outputs on its test item (``IPyNbCell.test_outputs``), so this plugin writes each notebook whose
code cells all passed, with those outputs, into Jupyter Book's execution cache (jupyter-cache,
keyed by a hash of the code cells) - what myst-nb itself does after executing a notebook. The
book build that follows (``execute_notebooks: cache`` in ``_config.yml``) then renders the very
outputs nbval checked. A notebook with a failed or skipped cell is not cached, so the build
executes it and reports the failure itself; editing a code cell changes the hash, so a stale
entry is never used.

Load it with ``-p tests.nbval_book_cache``; ``--book-cache DIR`` names the cache (default
``_build/.jupyter_cache``, where Jupyter Book 1 keeps it).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "_build" / ".jupyter_cache"


@dataclass
class NotebookRun:
    """What nbval ran of one notebook: each passed code cell's outputs, by cell number."""

    notebook: nbformat.NotebookNode
    outputs: dict[int, list[Any]] = field(default_factory=dict)
    seconds: float = 0.0
    complete: bool = True  # no cell failed or was skipped

    def executed(self) -> nbformat.NotebookNode | None:
        """The notebook with its outputs, or None unless every code cell ran and passed."""
        code = [c for c in self.notebook.cells if c.cell_type == "code"]
        if not self.complete or len(self.outputs) != len(code):
            return None
        nb = copy.deepcopy(self.notebook)
        for number, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            cell.execution_count = number + 1  # one kernel, each cell once, in order
            cell.outputs = copy.deepcopy(self.outputs[number])
            for output in cell.outputs:
                if output.output_type == "execute_result":
                    output.execution_count = number + 1
        return nb


RUNS = pytest.StashKey[dict[Path, NotebookRun]]()  # per session: notebook path -> its run
LINES = pytest.StashKey[list[str]]()  # what happened to each, for the terminal summary


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--book-cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="the jupyter-cache folder the executed notebooks go into",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.stash[RUNS] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not hasattr(item, "test_outputs"):  # not a notebook cell of nbval's
        return
    notebook_file = item.parent
    runs = item.config.stash[RUNS]
    run = runs.setdefault(notebook_file.path, NotebookRun(notebook_file.nb))
    if report.when == "call" and report.passed:
        run.outputs[item.cell_num] = list(item.test_outputs)
        run.seconds += call.duration
    elif report.failed or report.skipped:
        run.complete = False


def pytest_sessionfinish(session: pytest.Session) -> None:
    runs = session.config.stash.get(RUNS, {})
    if not runs:
        return
    cache = get_cache(str(session.config.getoption("book_cache")))
    lines = session.config.stash[LINES] = []
    for path, run in runs.items():
        nb = run.executed()
        if nb is None:
            lines.append(f"{path.name}: not cached (a cell failed or was skipped)")
            continue
        try:
            nbformat.validate(nb)
        except nbformat.ValidationError as err:  # render nothing doubtful: the build re-executes
            lines.append(f"{path.name}: not cached, its outputs are invalid: {err}")
            continue
        cache.cache_notebook_bundle(
            CacheBundleIn(nb, str(path), data={"execution_seconds": run.seconds}),
            check_validity=False,
            overwrite=True,
        )
        lines.append(f"{path.name}: cached for the book ({run.seconds:.0f} s of cells)")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = terminalreporter.config.stash.get(LINES, [])
    if lines:
        terminalreporter.section("executed notebooks for the book build")
        for line in lines:
            terminalreporter.write_line(line)

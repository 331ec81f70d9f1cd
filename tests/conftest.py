"""Shared fixtures for the reslib unit tests.

* Figures render off-screen (``MPLBACKEND=Agg``, set before anything imports pyplot) and every
  test closes the figures it opened.
* ``RESLIB_DATA`` points at a per-session temporary folder, so no test writes into the
  repository's ``data/`` folder; tests that check caching pass their own ``root``.
* The active run of :func:`reslib.setup` and the CPU's flush-denormal mode are restored after
  every test, so a test that calls ``setup`` cannot leak its profile or seed into the next one.
* Tests marked ``@pytest.mark.gpu`` are skipped when CUDA is not available, and the test modules
  of the book's toolchain are left out where it is not installed (see ``NEEDS``).
* torch runs single-threaded in the test process: the tests use tiny tensors, for which
  intra-op threads only add synchronisation, and on a loaded 2-core machine that made small
  training runs 10x slower (notebooks run in their own kernels and are not affected).
"""

from __future__ import annotations

import importlib.util
import os

os.environ["MPLBACKEND"] = "Agg"  # before matplotlib.pyplot is imported (reslib.plot does)

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import reslib  # noqa: E402
import reslib.profiles  # noqa: E402
from reslib.data import DATA_ENV, Split, mnist1d  # noqa: E402

torch.set_num_threads(1)

# Test modules of the book's toolchain, and the package each needs: where it is missing (the lent
# GPU machines have torch but no Jupyter or Sphinx) the module is left out, not an error, so that
# `pytest -m gpu` there reports the GPU tests alone.
NEEDS = {
    "test_book.py": "nbformat",
    "test_colab_flow.py": "nbformat",
    "test_docstrings.py": "sphinx",  # napoleon, and docutils with it
    "test_full_profile_runner.py": "nbformat",
    "test_nbval_book_cache.py": "jupyter_cache",
}
collect_ignore = [name for name, needs in NEEDS.items() if importlib.util.find_spec(needs) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$RESLIB_DATA`` for the whole session: a temporary folder, never the repo's ``data/``."""
    root = tmp_path_factory.mktemp("reslib-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_ENV, str(root))
        yield root


def flush_denormal_enabled() -> bool:
    """Whether the CPU currently flushes subnormal floats to zero (torch has no getter)."""
    return (torch.tensor([1e-40]) * 1).item() == 0.0


@pytest.fixture(autouse=True)
def _restore_global_state() -> Iterator[None]:
    """Undo what ``reslib.setup`` changes globally, and close the test's figures."""
    active = reslib.profiles._active
    flush = flush_denormal_enabled()
    yield
    reslib.profiles._active = active
    torch.set_flush_denormal(flush)
    plt.close("all")


@pytest.fixture(scope="session")
def mnist1d_split(data_root: Path) -> Split:
    """The reference MNIST-1D split (4,000 / 1,000), generated once per session into
    ``$RESLIB_DATA``."""
    return mnist1d()

"""Run a chapter the way a Colab reader does: from reslib's wheel, in a fresh environment.

Colab comes with torch; the reader opens a chapter and runs it top to bottom, and its first cell
installs reslib only when it is missing. This test rebuilds that situation offline:

1. build reslib's wheel from a copy of the sources (nothing in the repository is touched);
2. create a fresh virtual environment outside the repository that already has this project's
   torch, numpy, matplotlib and Jupyter (a ``.pth`` file points at a folder of links to
   ``.venv``'s packages, leaving out ``.venv``'s own editable reslib) - the stand-in for
   Colab's preinstalled packages;
3. check that pip, asked to install the wheel *with* its dependencies, would install reslib
   alone - nothing is reinstalled or upgraded - then install it and check torch is unchanged;
4. copy the chapter to an empty folder outside the repository and execute it there with that
   environment's kernel, ``RESLIB_DATA`` unset (data land in that folder, as on Colab) and a
   ``sitecustomize`` that makes every connection beyond this machine fail and logs it.

The chapter must run to the end (every ``claim`` holding) and reach the network never.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["01_vanishing_gradients"]  # one chapter is enough to exercise the install path
PROJECT_SITE = Path(sysconfig.get_path("purelib"))  # .venv's site-packages

pytestmark = [pytest.mark.book, pytest.mark.slow]

NETWORK_GUARD = '''
"""Loaded by every Python process of the Colab-flow test: connections beyond this machine
fail loudly, and each attempt is written to $RESLIB_NET_LOG for the test to report."""
import os
import socket

_LOCAL_NAMES = {"localhost", "", "0.0.0.0", "::", "::1", socket.gethostname()}


def _local(host):
    host = host.decode() if isinstance(host, bytes) else str(host)
    return host in _LOCAL_NAMES or host.startswith(("127.", "::ffff:127."))


def _block(what, host, port):
    message = f"network access blocked by the Colab-flow test: {what} {host}:{port}"
    if os.environ.get("RESLIB_NET_LOG"):
        with open(os.environ["RESLIB_NET_LOG"], "a") as log:
            log.write(message + "\\n")
    raise ConnectionRefusedError(message)


_getaddrinfo = socket.getaddrinfo


def getaddrinfo(host, port, *args, **kwargs):
    if host is not None and not _local(host):
        _block("resolving", host, port)
    return _getaddrinfo(host, port, *args, **kwargs)


def _guard(method):
    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            _block("connecting to", address[0], address[1])
        return method(self, address)

    return guarded


socket.getaddrinfo = getaddrinfo
socket.socket.connect = _guard(socket.socket.connect)
socket.socket.connect_ex = _guard(socket.socket.connect_ex)
'''

REPORT_CELL = """\
# Added by tests/test_colab_flow.py: where did everything come from?
import json, sys, reslib, torch
print("COLAB-FLOW " + json.dumps({"python": sys.executable, "reslib": reslib.__file__,
                                  "torch": torch.__version__, "torch_file": torch.__file__}))
"""


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the project's Python and reslib settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RESLIB_", "PIP_"))}
    env["PIP_CONFIG_FILE"] = os.devnull  # no machine-wide index or find-links: offline, as stated
    env.update(extra)
    return env


def run(cmd: list[str | Path], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in ``cwd`` (outside the repository, so it is not importable from there)."""
    result = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """reslib's wheel, built offline from a copy of the sources with this project's setuptools."""
    src = tmp_path_factory.mktemp("reslib-src")
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "reslib", src / "reslib", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(
        [*pip, "wheel", "--no-deps", "--no-index", "--no-build-isolation", "-q", src, "-w", out],
        out,
    )
    (built,) = out.glob("reslib-*.whl")
    return built


@pytest.fixture(scope="module")
def colab_env(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> dict[str, Path]:
    """A fresh venv with the project's packages but no reslib, then reslib from the wheel."""
    base = tmp_path_factory.mktemp("colab")
    # Colab's preinstalled packages: links to everything in .venv except its editable reslib.
    preinstalled = base / "preinstalled"
    preinstalled.mkdir()
    for entry in PROJECT_SITE.iterdir():
        if "reslib" in entry.name or entry.name.endswith(".pth") or entry.name == "__pycache__":
            continue
        (preinstalled / entry.name).symlink_to(entry)
    env = base / "venv"
    # --without-pip: pip comes with the preinstalled packages, as on Colab; a bundled setuptools
    # would otherwise shadow the newer one torch requires.
    run(
        [getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", env], base
    )
    python = env / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(run([python, "-c", purelib], base).stdout.strip())
    (site / "colab_preinstalled.pth").write_text(f"{preinstalled}\n")

    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    missing = run([python, "-c", "import importlib.util as u; print(u.find_spec('reslib'))"], base)
    assert missing.stdout.strip() == "None", "the fresh environment must not have reslib yet"

    # What would `pip install reslib` do next to Colab's torch? Install reslib, nothing else.
    report = base / "pip-report.json"
    run([*pip, "install", "--dry-run", "--no-index", "--report", report, wheel], base)
    planned = [item["metadata"]["name"] for item in json.loads(report.read_text())["install"]]
    assert planned == ["reslib"], f"installing reslib would also install {planned}"

    run([*pip, "install", "--no-index", "--no-deps", "-q", wheel], base)
    run([*pip, "check"], base)
    where = "import torch; print(torch.__version__, torch.__file__)"
    seen_version, seen_file = run([python, "-c", where], base).stdout.split()
    assert seen_version == torch.__version__, "installing reslib changed torch"
    assert Path(seen_file).resolve().is_relative_to(PROJECT_SITE.resolve()), seen_file

    guard = base / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(textwrap.dedent(NETWORK_GUARD))
    # The guard must be able to fail: a download attempt raises and is logged.
    probe_log = base / "probe-network.log"
    probe = (
        "import urllib.request\n"
        "try:\n    urllib.request.urlopen('https://example.org', timeout=5)\n"
        "except OSError as err:\n    print('blocked' if 'Colab-flow' in str(err) else err)\n"
    )
    blocked = run([python, "-c", probe], base, PYTHONPATH=str(guard), RESLIB_NET_LOG=str(probe_log))
    assert blocked.stdout.strip() == "blocked", blocked.stdout
    assert "example.org" in probe_log.read_text()
    # The kernel the notebook runs on: this environment's Python, nothing else on the path.
    kernel = base / "jupyter" / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (Colab-flow test)",
                "language": "python",
            }
        )
    )
    return {"python": python, "site": site, "guard": guard, "jupyter": base / "jupyter"}


def test_install_cell_installs_reslib_only_when_missing() -> None:
    for name in CHAPTERS:
        nb = nbformat.read(ROOT / "chapters" / f"{name}.ipynb", as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code").source
        code = "\n".join(line.split("#", 1)[0] for line in first.splitlines())
        assert 'importlib.util.find_spec("reslib") is None' in code, first
        assert "pip" in code and "install" in code, first
        assert "torch" not in code, "the install cell must never install torch"


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_runs_as_on_colab(
    colab_env: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    workdir = tmp_path_factory.mktemp(f"colab-{name}")
    nb = nbformat.read(ROOT / "chapters" / f"{name}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    nbformat.write(nb, workdir / f"{name}.ipynb")

    net_log = workdir.parent / f"{name}-network.log"
    env = clean_env(
        RESLIB_PROFILE="quick",  # the CPU profile; on Colab a GPU would pick "full"
        RESLIB_NET_LOG=str(net_log),
        PYTHONPATH=str(colab_env["guard"]),  # sitecustomize: no network
        JUPYTER_PATH=str(colab_env["jupyter"]),  # our python3 kernel comes first
        PYTHONHASHSEED="0",
        MPLBACKEND="Agg",
    )
    result = subprocess.run(
        [
            colab_env["python"],
            "-m",
            "nbconvert",
            "--to",
            "notebook",
            "--execute",
            "--ExecutePreprocessor.kernel_name=python3",
            "--ExecutePreprocessor.timeout=600",
            "--output",
            "executed.ipynb",
            f"{name}.ipynb",
        ],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    attempts = net_log.read_text() if net_log.is_file() else ""
    assert result.returncode == 0, (
        f"{name} failed as on Colab:\n{result.stderr[-5000:]}\nnetwork attempts:\n{attempts}"
    )
    assert not attempts, f"{name} tried to reach the network:\n{attempts}"

    done = nbformat.read(workdir / "executed.ipynb", as_version=4)
    code = [c for c in done.cells if c.cell_type == "code"]
    assert code[0].outputs == [], "the install cell ran pip although reslib was installed"
    text = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    # a claim shows as rich display output (an HTML badge with a plain-text form)
    shown = "".join(
        o.get("data", {}).get("text/plain", "")
        for c in code
        for o in c.outputs
        if o.output_type in ("display_data", "execute_result")
    )
    assert "✓" in shown, "no claim was checked"
    (line,) = [ln for ln in text.splitlines() if ln.startswith("COLAB-FLOW ")]
    seen = json.loads(line.removeprefix("COLAB-FLOW "))
    assert Path(seen["python"]).parent == colab_env["python"].parent, seen
    assert Path(seen["reslib"]).is_relative_to(colab_env["site"]), f"reslib came from {seen}"
    assert seen["torch"] == torch.__version__, seen
    assert any((workdir / "data").glob("*")), "datasets should land in ./data on Colab"

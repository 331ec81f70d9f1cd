"""The import rules of reslib (see :mod:`reslib.layers`), read from the source's imports.

A model family imports only the ground floor and ``reslib.models.base``; no family imports
another; the diagnostics and the trainer import no model; the ground floor imports nothing
else of reslib; and nothing inside the package imports ``reslib`` itself. Also: no module is
longer than about 400 lines (440 at most), so each can be read in one sitting.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reslib"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def reslib_imports(path: Path) -> set[str]:
    """Every ``reslib`` module that ``path`` imports (``from reslib.x import y`` gives both
    ``reslib.x`` and ``reslib.x.y``, since y may be a submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "reslib"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "reslib":
                found.add(node.module)
                found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


FAMILY_MODULES = [
    p
    for p in (PACKAGE / "models").glob("*.py")
    if p.stem not in ("__init__", "base", "torchvision_weights")
]


def test_the_rules_see_the_package() -> None:
    assert len(MODULES) > 15
    assert {p.stem for p in FAMILY_MODULES} >= {"plain", "resnet", "preact"}
    assert "reslib.layers" in reslib_imports(PACKAGE / "models" / "resnet.py")


@pytest.mark.parametrize("path", FAMILY_MODULES, ids=lambda p: p.stem)
def test_a_family_imports_only_the_ground_floor(path: Path) -> None:
    allowed = ("reslib.layers", "reslib.models.base")
    wrong = {m for m in reslib_imports(path) if not m.startswith(allowed)}
    # "from reslib.layers import X" also lists reslib.layers.X: fine, it starts with the floor
    assert not wrong, f"{path.name} imports {sorted(wrong)}"


@pytest.mark.parametrize(
    "folder", ["layers", "diagnostics", "train"], ids=lambda f: f"reslib.{f} imports no model"
)
def test_diagnostics_trainer_and_floor_import_no_model(folder: str) -> None:
    paths = list((PACKAGE / folder).glob("*.py")) or [PACKAGE / f"{folder}.py"]
    for path in paths:
        models = {m for m in reslib_imports(path) if m.startswith("reslib.models")}
        assert not models, f"{path.relative_to(PACKAGE)} imports {sorted(models)}"


@pytest.mark.parametrize("path", sorted((PACKAGE / "layers").glob("*.py")), ids=lambda p: p.stem)
def test_the_ground_floor_imports_only_itself(path: Path) -> None:
    wrong = {m for m in reslib_imports(path) if not m.startswith("reslib.layers")}
    assert not wrong, f"layers/{path.name} imports {sorted(wrong)}"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_nothing_imports_the_package_itself(path: Path) -> None:
    if path == PACKAGE / "__init__.py":
        return
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(a.name != "reslib" for a in node.names), f"{path.name}: import reslib"
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "reslib":
            pytest.fail(f"{path.name}: from reslib import {[a.name for a in node.names]}")


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_modules_stay_short(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= 440, f"{path.relative_to(PACKAGE)} has {lines} lines: split it"

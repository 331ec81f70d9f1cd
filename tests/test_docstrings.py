"""Every docstring in reslib is valid reStructuredText after napoleon, as the book's strict
build (``jupyter-book build -W``) needs - checked here in seconds, not at the end of a build.

Each docstring goes through napoleon's Google-style conversion, then docutils with Sphinx's
cross-reference roles stubbed; any warning (an unclosed ``literal``, a stray ``|substitution|``,
a bad indent) fails with the object's name.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pkgutil
from collections.abc import Iterator

import docutils.core
import docutils.utils
import pytest
from docutils.parsers.rst import Directive, directives, roles
from sphinx.ext.napoleon import Config
from sphinx.ext.napoleon.docstring import GoogleDocstring

import reslib

SPHINX_ROLES = ("class", "func", "meth", "mod", "data", "attr", "obj", "exc", "doc", "cite")


def _stub_role(name, rawtext, text, lineno, inliner, options=None, content=None):  # noqa: ANN001, ANN202
    return [docutils.nodes.literal(rawtext, text)], []


class _StubDirective(Directive):
    """Stands in for Sphinx's object directives (``.. attribute::`` from napoleon)."""

    has_content = True
    optional_arguments = 1
    final_argument_whitespace = True
    option_spec = {"type": directives.unchanged, "value": directives.unchanged}

    def run(self) -> list:  # noqa: D102
        return []


for _role in SPHINX_ROLES:
    roles.register_local_role(_role, _stub_role)
for _directive in ("attribute", "method", "function", "data", "py:attribute"):
    directives.register_directive(_directive, _StubDirective)


def _modules() -> list[str]:
    names = ["reslib"]
    for info in pkgutil.walk_packages(reslib.__path__, prefix="reslib."):
        names.append(info.name)
    return sorted(names)


def _docstrings(module_name: str) -> Iterator[tuple[str, str]]:
    module = importlib.import_module(module_name)
    if module.__doc__:
        yield module_name, module.__doc__
    for name, obj in vars(module).items():
        if getattr(obj, "__module__", None) != module_name or name.startswith("_"):
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if obj.__doc__:
                yield f"{module_name}.{name}", obj.__doc__
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                doc = getattr(member, "__doc__", None)
                if (inspect.isfunction(member) or isinstance(member, property)) and doc:
                    if not attr.startswith("_") or attr == "__init__":
                        yield f"{module_name}.{name}.{attr}", doc


@pytest.mark.parametrize("module_name", _modules())
def test_docstrings_are_valid_rst(module_name: str) -> None:
    config = Config(napoleon_use_param=True, napoleon_use_rtype=True)
    problems = []
    for where, doc in _docstrings(module_name):
        rst = str(GoogleDocstring(inspect.cleandoc(doc), config))
        warnings = io.StringIO()
        settings = {"report_level": 2, "halt_level": 5, "warning_stream": warnings}
        docutils.core.publish_doctree(rst, settings_overrides=settings)
        if warnings.getvalue():
            problems.append(f"{where}: {warnings.getvalue().strip()}")
    assert not problems, "\n".join(problems)

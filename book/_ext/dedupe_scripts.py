"""Emit each <script> of a page once.

Sphinx 7.4 writes an inline script that an extension registers after the HTML builder has
started twice: once from the builder's list, with ``filename=None``, and once from the
registry, with ``filename=''``, which its own de-duplication treats as different. sphinx-thebe
registers ``const THEBE_JS_URL = ...`` that way, and declaring a ``const`` twice is a
JavaScript error on every page of the book. This removes the second copy of any script whose
file name (``None`` and ``''`` alike) and attributes match an earlier one.
"""

from __future__ import annotations

from typing import Any


def _key(script: Any) -> tuple[str, tuple[tuple[str, str], ...]]:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in context.get("script_files", []):
        if (key := _key(script)) not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Any) -> dict[str, bool]:
    app.connect("html-page-context", dedupe_scripts, priority=900)  # after the themes' handlers
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Checks of the book as a reader gets it.

Two kinds of test live here:

* fast checks of the sources (no build needed; they run in ``make unit``): every chapter
  notebook follows the chapter conventions, every page the table of contents names exists, the
  API page documents every reslib module, citations exist, the repository URL has one home;
* ``book``-marked checks of the *built* HTML in headless Chromium (``make book-check``, run by
  ``make test`` right after the strict build): on every page of the table of contents no
  JavaScript errors, every image loads, math is typeset by the bundled (offline) MathJax, no
  request leaves localhost and every internal link resolves; each chapter's Colab and download
  buttons point at its notebook; no claim line, printed output (the provenance line) or table
  runs past the page's right edge at 1280 px, and claims show as badges; the search page finds
  "residual". Screenshots of the introduction and every chapter are saved under
  ``_build/screenshots/``.

Without Chromium the browser checks are skipped with a note saying how to enable them.
"""

from __future__ import annotations

import ast
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
# Set by `make book-check`: there a missing build is an error, not a reason to skip.
REQUIRE_BUILD = os.environ.get("RESLIB_BOOK_CHECK") == "1"


def toc_files(toc: dict) -> list[str]:
    """Every file of the table of contents, root first, in reading order (no extensions)."""
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk([toc])
    return files


PAGES = toc_files(TOC)
CHAPTERS = [page for page in PAGES if page.startswith("chapters/")]


def source_of(page: str) -> Path:
    """The source file of a table-of-contents entry (.md or .ipynb)."""
    for suffix in (".md", ".ipynb"):
        if (path := ROOT / f"{page}{suffix}").is_file():
            return path
    raise FileNotFoundError(f"_toc.yml names {page!r}, but neither {page}.md nor .ipynb exists")


def repo_parts() -> tuple[str, str, str]:
    """(owner, name, branch) of the repository URL in _config.yml, its only home."""
    url = CONFIG["repository"]["url"].rstrip("/")
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?", url)
    assert match, f"repository.url in _config.yml is not a GitHub URL: {url}"
    return match[1], match[2], CONFIG["repository"].get("branch", "main")


def colab_url(page: str) -> str:
    owner, name, branch = repo_parts()
    return f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/{page}.ipynb"


# --- the sources (fast) ---------------------------------------------------------------------


def test_toc_pages_exist_and_every_chapter_is_in_the_toc() -> None:
    for page in PAGES:
        source_of(page)
    assert len(PAGES) == len(set(PAGES)), f"a page appears twice in _toc.yml: {PAGES}"
    listed = {f"{page}.ipynb" for page in CHAPTERS}
    on_disk = {f"chapters/{nb.name}" for nb in NOTEBOOKS}
    assert on_disk <= listed, f"chapters missing from _toc.yml: {sorted(on_disk - listed)}"
    assert {"book/how_to_run", "book/notation", "book/api", "book/bibliography"} <= set(PAGES)


def test_intro_links_every_chapter() -> None:
    intro = source_of(TOC["root"]).read_text(encoding="utf-8")
    for page in CHAPTERS:
        assert f"{{doc}}`../{page}`" in intro, f"the introduction does not link {page}"


def test_repository_url_lives_only_in_config() -> None:
    url = CONFIG["repository"]["url"].rstrip("/")
    for page in ROOT.glob("book/*.md"):
        assert url not in page.read_text(encoding="utf-8"), (
            f"{page.relative_to(ROOT)} spells out the repository URL; write {{{{ repo_url }}}}"
        )
    assert CONFIG["parse"]["myst_substitutions"]["repo_url"] == CONFIG["repository"]["url"]


def test_config_launches_colab_and_bundles_mathjax() -> None:
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert CONFIG["html"]["use_download_button"]
    assert "sphinx-mathjax-offline" in CONFIG["sphinx"]["extra_extensions"]


def test_api_page_documents_every_reslib_module() -> None:
    api = (ROOT / "book" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"\.\. automodule:: ([\w.]+)", api))
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "reslib").rglob("*.py")
        if path.name not in ("__init__.py", "__main__.py")  # a command, documented by its package
    }
    assert modules <= documented, f"book/api.md lacks automodule for {sorted(modules - documented)}"


def test_every_citation_is_in_the_bibliography() -> None:
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    known = set(re.findall(r"@\w+\{([^,\s]+),", bib))
    sources = [source_of(page) for page in PAGES]
    for source in sources:
        if source.suffix == ".ipynb":
            nb = nbformat.read(source, as_version=4)
            text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        else:
            text = source.read_text(encoding="utf-8")
        for keys in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            missing = {k.strip() for k in keys.split(",")} - known
            assert not missing, f"{source.relative_to(ROOT)} cites unknown keys {missing}"


def test_only_the_bibliography_page_holds_citation_targets() -> None:
    """book/bibliography.md lists every reference and is where {cite} links land.

    A chapter may end with its own reading list, but as ``:list: bullet``: a second *citation*
    list of the same key (one per chapter citing He et al. 2016, say) is a "duplicate
    citation" warning, which fails the strict build.
    """
    for page in PAGES:
        source = source_of(page)
        if source == ROOT / "book" / "bibliography.md":
            continue
        text = source.read_text(encoding="utf-8")
        if source.suffix == ".ipynb":
            nb = nbformat.reads(text, as_version=4)
            text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        for block in re.findall(r"\{bibliography\}[^\n]*\n((?::[^\n]*\n)*)", text):
            assert re.search(r"^:list:\s*(bullet|enumerated)\s*$", block, flags=re.M), (
                f"{source.relative_to(ROOT)}: add `:list: bullet` to its {{bibliography}} block; "
                "citations link to book/bibliography.md"
            )


def _code_without_comments(source: str) -> str:
    return "\n".join(line.split("#", 1)[0] for line in source.splitlines())


def _exercise_section(nb: nbformat.NotebookNode) -> str:
    """The markdown from the "Exercises" heading up to the next heading of the same level."""
    return _section(nb, "Exercises")


def _section(nb: nbformat.NotebookNode, title: str) -> str:
    """The markdown from the heading ``title`` (level 2 or 3) up to the next of its level."""
    text = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    match = re.search(rf"^(#{{2,3}}) {re.escape(title.lstrip('# '))}\s*$", text, flags=re.M)
    if not match:
        return ""
    rest = text[match.end() :]
    end = re.search(rf"^{match[1]} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


FOLDED_SOLUTION = re.compile(
    r"^(:{3,}|`{3,})\{admonition\}[^\n]*Solution[^\n]*\n(?::[^\n]*\n)*?:class:[^\n]*\bdropdown\b"
    r".*?^\1\s*$",
    flags=re.M | re.S,
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_chapter_notebook_conventions(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec must be python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "a chapter needs code"
    for i, cell in enumerate(code):
        assert cell.outputs == [] and cell.execution_count is None, (
            f"code cell {i} is stored with outputs; clear them before committing"
        )

    # The Colab cell comes first: it installs reslib only when it is missing, never torch.
    install = code[0].source
    assert 'find_spec("reslib") is None' in install, "first code cell must check find_spec first"
    assert "pip" in install and "install" in install, "first code cell must install reslib"
    assert "torch" not in _code_without_comments(install), "the install cell must not touch torch"
    ast.parse(install)
    owner, name, _ = repo_parts()
    assert f"github.com/{owner}/{name}" in install, "install URL differs from _config.yml's"

    body = "\n".join(c.source for c in code[1:])
    assert re.search(r"\breslib\.setup\(", body), "the chapter must call reslib.setup(...)"
    assert re.search(r"\breslib\.claim\(", body), "the chapter must check a result with claim"

    exercises = _exercise_section(nb)
    assert exercises, 'the chapter needs an "## Exercises" section'
    solutions = [m[0] for m in FOLDED_SOLUTION.finditer(exercises)]
    assert len(solutions) >= 3, (
        f"found {len(solutions)} folded solutions under Exercises, need >= 3 "
        "(:::{admonition} Solution / :class: dropdown)"
    )
    assert any("```python" in s for s in solutions), (
        "at least one exercise should be checked by running code (a ```python block in its "
        "solution)"
    )

    # Issue 11's standard: plumbing hidden, a reproduction ledger, claims counted by kind
    assert "hide-input" in code[0].metadata.get("tags", []), "tag the Colab cell hide-input"
    assert re.search(r"\breslib\.plot\.ledger\(", body), (
        "the chapter needs a reproduction ledger: reslib.plot.ledger([...]) (paper, quick, full)"
    )
    summary = _section(nb, "## Summary")
    assert re.search(r"\bchecks?\b", summary) and re.search(r"\bfindings?\b", summary), (
        "the summary must count the chapter's checks and findings"
    )


# --- the built book in a browser (make book-check) -------------------------------------------


@dataclass
class PageReport:
    """What a reader's browser saw on one page."""

    url: str
    errors: list[str]
    external_requests: list[str]
    failed_requests: list[str]
    broken_images: list[str]
    math_elements: int
    untypeset_math: int
    math_errors: int
    mathjax_src: str | None
    colab_links: list[str]
    download_links: list[str]
    internal_links: list[str] = field(default_factory=list)
    claim_badges: int = 0
    overflowing: list[str] = field(default_factory=list)


# Requests to the local server never go through a proxy from the environment.
_local_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost")


COLLECT = """(() => {
  const math = [...document.querySelectorAll('span.math, div.math')];
  const mj = document.querySelector('script[src*="tex-chtml"], script[src*="tex-svg"], '
                                    + 'script[src*="tex-mml"], script[src*="mathjax"]');
  return {
    broken_images: [...document.images]
      .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.src),
    math_elements: math.length,
    untypeset_math: math.filter(el => !el.querySelector('mjx-container')).length,
    math_errors: document.querySelectorAll('mjx-merror').length,
    mathjax_src: mj ? mj.src : null,
    colab_links: [...document.querySelectorAll('a[href*="colab.research.google.com"]')]
      .map(a => a.href),
    download_links: [...document.querySelectorAll('a[href$=".ipynb"]')].map(a => a.href),
    internal_links: [...document.querySelectorAll('a[href]')].map(a => a.href)
      .filter(h => h.startsWith(location.origin)),
    claim_badges: document.querySelectorAll('.reslib-claim').length,
    // claim lines, printed output (the provenance line) and tables that run past the page's
    // right edge or hide part of themselves behind a horizontal scroll bar
    overflowing: (() => {
      const page = document.querySelector('main article, main, body');
      const right = page.getBoundingClientRect().right;
      const items = [...document.querySelectorAll(
        '.reslib-claim, .reslib-table, .cell_output pre, .cell_output table, article table')];
      return items.filter(el => el.getBoundingClientRect().right > right + 1
                          || el.scrollWidth > el.clientWidth + 1)
        .map(el => `${el.tagName.toLowerCase()}.${el.className}: `
                   + el.innerText.trim().slice(0, 80));
    })(),
  };
})()"""

MATHJAX_DONE = """(async () => {
  if (!document.querySelector('span.math, div.math')) return true;
  for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  if (!(window.MathJax && MathJax.startup)) return false;
  await MathJax.startup.promise;
  return true;
})()"""

# the introduction and every chapter, as a reader sees them at 1280 px
SCREENSHOT_PAGES = {"book/intro": "intro.png"} | {
    page: f"{page.removeprefix('chapters/')}.png" for page in CHAPTERS
}


@pytest.fixture(scope="module")
def site() -> object:
    if not (HTML / "index.html").is_file():
        message = f"the book is not built ({HTML} is missing): run `make book-strict` first"
        if REQUIRE_BUILD:
            pytest.fail(message)
        pytest.skip(message)
    from browser_check import serve

    with serve(HTML) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> object:
    from browser_check import HOW_TO_ENABLE, Chromium, find_chromium

    if find_chromium() is None:
        pytest.skip(HOW_TO_ENABLE)
    with Chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def reports(site: str, browser: object) -> dict[str, PageReport]:
    """Open every page of the table of contents once; the tests below read the reports."""
    seen: dict[str, PageReport] = {}
    for page in ["index", *PAGES]:
        url = urljoin(site, f"{page}.html")
        browser.goto(url)
        if page == "index":  # Jupyter Book's index.html only redirects to the root page
            browser.wait_for(
                f"location.pathname.endsWith('/{TOC['root']}.html')"
                " && document.readyState === 'complete'"
            )
        # lazy images below the fold would otherwise never load in a headless window
        browser.evaluate("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
        browser.wait_for("[...document.images].every(i => i.complete)", timeout=20)
        typeset = browser.evaluate(MATHJAX_DONE, await_promise=True)
        data = browser.evaluate(COLLECT)
        log = browser.log()  # again: includes what loaded while we waited
        if page in SCREENSHOT_PAGES:
            browser.screenshot(SCREENSHOTS / SCREENSHOT_PAGES[page])
        seen[page] = PageReport(
            url=url,
            errors=log.errors,
            external_requests=[u for u in log.requests if not _is_local(u)],
            failed_requests=log.failed,
            untypeset_math=data["untypeset_math"] if typeset else data["math_elements"],
            **{k: v for k, v in data.items() if k != "untypeset_math"},
        )
    return seen


book = pytest.mark.book


@book
@pytest.mark.parametrize("page", ["index", *PAGES])
def test_page_loads_cleanly(reports: dict[str, PageReport], page: str) -> None:
    report = reports[page]
    assert not report.errors, f"{report.url}: JavaScript console errors:\n" + "\n".join(
        report.errors
    )
    assert not report.failed_requests, f"{report.url}: failed requests: {report.failed_requests}"
    assert not report.external_requests, (
        f"{report.url} reaches the network (the book must work offline): {report.external_requests}"
    )
    assert not report.broken_images, f"{report.url}: images that did not load: " + ", ".join(
        report.broken_images
    )


@book
@pytest.mark.parametrize("page", PAGES)
def test_math_is_typeset_offline(reports: dict[str, PageReport], page: str) -> None:
    report = reports[page]
    if page in ("book/notation", *CHAPTERS):
        assert report.math_elements > 0, f"{report.url} should contain math"
    if report.math_elements == 0:
        return
    assert report.mathjax_src is not None, f"{report.url} has math but loads no MathJax"
    assert _is_local(report.mathjax_src) and "/_static/mathjax/" in report.mathjax_src, (
        f"{report.url} loads MathJax from {report.mathjax_src}, not the bundled copy in _static"
    )
    assert report.untypeset_math == 0, (
        f"{report.url}: {report.untypeset_math} of {report.math_elements} math elements were "
        "not typeset"
    )
    assert report.math_errors == 0, f"{report.url}: {report.math_errors} MathJax errors"


@book
@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_buttons_point_at_its_notebook(
    reports: dict[str, PageReport], site: str, page: str
) -> None:
    report = reports[page]
    assert report.colab_links == [colab_url(page)], (
        f"{report.url}: Colab links {report.colab_links}, expected [{colab_url(page)}]"
    )
    downloads = [
        link
        for link in report.download_links
        if _is_local(link) and link.endswith(f"/_sources/{page}.ipynb")
    ]
    assert downloads, f"{report.url}: no download link for {page}.ipynb"
    with _local_opener.open(downloads[0], timeout=10) as response:
        served = nbformat.reads(response.read().decode("utf-8"), as_version=4)
    original = nbformat.read(source_of(page), as_version=4)
    assert [c.source for c in served.cells] == [c.source for c in original.cells]


@book
@pytest.mark.parametrize("page", CHAPTERS)
def test_claims_provenance_and_tables_fit_the_page(
    reports: dict[str, PageReport], page: str
) -> None:
    report = reports[page]
    assert report.claim_badges > 0, f"{report.url}: no claim is shown as a badge"
    assert not report.overflowing, (
        f"{report.url}: cut off at the right edge at 1280 px:\n" + "\n".join(report.overflowing)
    )


@book
def test_internal_links_resolve(reports: dict[str, PageReport]) -> None:
    targets = {link.split("#", 1)[0] for r in reports.values() for link in r.internal_links}
    broken = []
    for target in sorted(targets):
        try:
            with _local_opener.open(target, timeout=10):
                pass
        except urllib.error.HTTPError as err:
            broken.append(f"{target}: HTTP {err.code}")
    assert not broken, "broken internal links:\n" + "\n".join(broken)


@book
def test_search_finds_residual(site: str, browser: object) -> None:
    log = browser.goto(urljoin(site, "search.html?q=residual"))
    summary = browser.wait_for(
        "(() => { const s = document.querySelector('#search-results .search-summary');"
        " return s && /found/i.test(s.innerText) ? s.innerText : ''; })()",
        timeout=30,
    )
    hits = browser.evaluate(
        "[...document.querySelectorAll('#search-results ul.search li')]"
        ".map(li => [li.querySelector('a').getAttribute('href'), li.innerText])"
    )
    assert hits, f"searching for 'residual' found nothing: {summary!r}"
    assert any("residual" in text.lower() for _, text in hits), hits
    found_pages = {href.split("?")[0].split("#")[0].removesuffix(".html") for href, _ in hits}
    assert {TOC["root"], *CHAPTERS} & found_pages, f"search results: {sorted(found_pages)}"
    assert not browser.log().errors and not log.errors, log.errors


@book
def test_screenshots_saved(reports: dict[str, PageReport]) -> None:
    for name in SCREENSHOT_PAGES.values():
        png = SCREENSHOTS / name
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert png.stat().st_size > 10_000, f"{png} is suspiciously small (a blank page?)"

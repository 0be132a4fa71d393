"""The course as a website: ``python -m grpo_edu book`` (or ``build_book()``).

Built with Sphinx, myst-nb and sphinx-book-theme (the engine of Jupyter Book 1), offline: the
theme ships its own fonts and icons, MathJax 3 comes from the ``sphinx-mathjax-offline`` package
and is served from the site itself, search is Sphinx's own index, and no widget JavaScript is
loaded. Steps, each a module of this package::

    execute    every course notebook on a fresh kernel (full mode, or FAST), cached by content
    explorers  each explorer's output -> its figure and a gallery of settings (no kernel needed)
    sources    README -> home page, executed chapters, student exercises, figures, in order
    (Sphinx)   HTML into <out>/html; warnings are returned, not printed

The executed notebooks live only under ``<out>`` (git-ignored ``build/``): the committed
notebooks stay without outputs.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ..course import ROOT
from .execute import Executed, NotebookError, execute_all
from .explorers import GALLERY, Rendered, explorer_gallery, render_widget_outputs
from .sources import BOOK_DIR, chapters, exercises, write_sources

DEFAULT_OUT = ROOT / "build" / "book"


@dataclass
class BookReport:
    """What one build did and how long it took."""

    index: Path
    """The home page, ``<out>/html/index.html``."""
    pages: list[str]
    """Document names in order: ``index``, the chapters, the exercises."""
    notebooks: list[Executed]
    """Each chapter's execution (time, or reused from the cache)."""
    rendered: dict[str, Rendered]
    """Per chapter: the explorers and progress bars rendered without a kernel."""
    warnings: list[str] = field(default_factory=list)
    """Sphinx's warnings (a clean build has none)."""
    fast: bool = False
    execute_seconds: float = 0.0
    """Wall time of executing the notebooks (several at once with ``jobs`` > 1)."""
    sphinx_seconds: float = 0.0
    seconds: float = 0.0
    """Wall time of the whole build."""


def _sphinx(src: Path, out: Path, progress: bool, n_pages: int) -> tuple[list[str], float]:
    """Run Sphinx's HTML builder in this process; (warnings, seconds)."""
    from sphinx.application import Sphinx
    from tqdm.auto import tqdm

    start = time.perf_counter()
    warnings = io.StringIO()
    bar = tqdm(total=2 * n_pages, desc="sphinx (read, write)", unit="page", disable=not progress)
    app = Sphinx(
        srcdir=str(src),
        confdir=str(BOOK_DIR),
        outdir=str(out / "html"),
        doctreedir=str(out / "doctrees"),
        buildername="html",
        status=None,
        warning=warnings,
        freshenv=True,
    )

    def read(*_) -> None:
        bar.update()

    def written(app, pagename, *_) -> None:  # a handler's return value would be the template
        if pagename in app.env.all_docs:
            bar.update()

    app.connect("source-read", read)
    app.connect("html-page-context", written)
    app.build(force_all=True)
    bar.close()
    lines = [line for line in warnings.getvalue().splitlines() if line.strip()]
    return lines, time.perf_counter() - start


def build_book(
    out: Path = DEFAULT_OUT,
    fast: bool = False,
    fresh: bool = False,
    progress: bool = True,
    jobs: int = 1,
) -> BookReport:
    """Build the website into ``out/html``; see the module docstring.

    ``fast``: execute with ``GRPO_EDU_FAST=1`` (the CI size). ``fresh``: re-execute every
    notebook even when its cached copy under ``out/executed/`` has the same key. ``jobs``:
    notebooks executed at once.
    """
    start = time.perf_counter()
    out = Path(out)
    if not (BOOK_DIR / "conf.py").is_file():
        raise FileNotFoundError(
            f"no {BOOK_DIR / 'conf.py'}: build the site from a checkout of the repository "
            "(pip install -e '.[book]')"
        )
    notebooks = chapters()
    if not notebooks:
        raise FileNotFoundError(f"no course notebooks notebooks/NN_topic.ipynb under {ROOT}")
    t0 = time.perf_counter()
    runs = execute_all(
        notebooks, out / "executed", fast=fast, fresh=fresh, progress=progress, jobs=jobs
    )
    execute_seconds = time.perf_counter() - t0
    executed, rendered = {}, {}
    for run in runs:
        nb = nbformat.read(run.executed, as_version=4)
        rendered[run.source.name] = render_widget_outputs(nb)
        executed[run.source] = nb
    pages = write_sources(out / "src", executed)
    warnings, sphinx_seconds = _sphinx(out / "src", out, progress, len(pages))
    return BookReport(
        index=out / "html" / "index.html",
        pages=pages,
        notebooks=runs,
        rendered=rendered,
        warnings=warnings,
        fast=fast,
        execute_seconds=execute_seconds,
        sphinx_seconds=sphinx_seconds,
        seconds=time.perf_counter() - start,
    )


__all__ = [
    "GALLERY",
    "BookReport",
    "NotebookError",
    "build_book",
    "chapters",
    "exercises",
    "explorer_gallery",
    "render_widget_outputs",
]

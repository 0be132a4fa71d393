"""The website's source folder: the README as home page, the executed chapters, the exercises.

The layout mirrors the repository (``notebooks/NN_topic.ipynb``,
``notebooks/exercises/student/NN_topic.ipynb``, ``figures/``), so a relative link that works in
the repository (a chapter's link to its exercises, an exercise's link back, the README's
figures) works on the site unchanged, and each page's Colab link is the notebook's own path.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat

from ..course import ROOT

BOOK_DIR = ROOT / "book"
"""Sphinx configuration (``conf.py``), theme overrides and the local badge image."""
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
LOCAL_BADGE = "colab-badge.svg"
"""The badge image the site shows instead of Colab's (drawn for this site, in ``book/``), so no
page loads a remote image; the badge's link, the notebook's Colab URL, is unchanged."""
COURSE_ROW = re.compile(r"^\| `(\d\d_[a-z0-9_]+)` \|", re.M)


def chapters(root: Path = ROOT) -> list[Path]:
    """The course notebooks ``notebooks/NN_topic.ipynb``, in order (whatever exists)."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def exercises(root: Path = ROOT) -> list[Path]:
    """The student exercise notebooks (blanks to fill; shown on the site, not executed)."""
    return sorted((root / "notebooks" / "exercises" / "student").glob("[0-9][0-9]_*.ipynb"))


def page_name(notebook: Path, root: Path = ROOT) -> str:
    """Sphinx document name of a notebook: its repository path without ``.ipynb``."""
    return notebook.relative_to(root).with_suffix("").as_posix()


def home_page(readme: str, chapter_docs: list[str], exercise_docs: list[str]) -> str:
    """The README as the home page: the course table's names become links, and two tables of
    contents (chapters, exercises) give the navigation its order."""
    known = {Path(d).name for d in chapter_docs}
    readme = COURSE_ROW.sub(
        lambda m: f"| [`{m[1]}`](notebooks/{m[1]}.ipynb) |" if m[1] in known else m[0], readme
    )

    def toctree(caption: str, docs: list[str]) -> str:
        return "\n".join(
            ["", "```{toctree}", f":caption: {caption}", ":maxdepth: 1", "", *docs, "```", ""]
        )

    return (
        readme.rstrip()
        + "\n"
        + toctree("Course", chapter_docs)
        + toctree("Exercises", exercise_docs)
    )


def local_badge(nb) -> None:
    """Point the Colab badge image of every markdown cell at the local copy (in place)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and COLAB_BADGE in cell.source:
            cell.source = cell.source.replace(COLAB_BADGE, LOCAL_BADGE)


def write_sources(src: Path, executed: dict[Path, object], root: Path = ROOT) -> list[str]:
    """Lay out the site's sources in ``src`` (emptied first); the document names, in order.

    ``executed`` maps each chapter's committed path to its executed, widget-rendered notebook.
    """
    if src.exists():
        shutil.rmtree(src)
    (src / "notebooks").mkdir(parents=True)
    shutil.copy(BOOK_DIR / LOCAL_BADGE, src / "notebooks" / LOCAL_BADGE)
    docs = []
    for path, nb in executed.items():
        local_badge(nb)
        nbformat.write(nb, src / path.relative_to(root))
        docs.append(page_name(path, root))
    exercise_docs = []
    for path in exercises(root):
        target = src / path.relative_to(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
        exercise_docs.append(page_name(path, root))
    if (root / "figures").is_dir():
        (src / "figures").mkdir()
        for png in (root / "figures").glob("*.png"):
            shutil.copy(png, src / "figures" / png.name)
    readme = (root / "README.md").read_text(encoding="utf-8")
    (src / "index.md").write_text(home_page(readme, docs, exercise_docs), encoding="utf-8")
    return ["index", *docs, *exercise_docs]

"""Build the student notebooks from the instructor notebooks (``python -m grpo_edu.exercises build``).

``notebooks/exercises/*.ipynb`` (instructor: solutions and hidden tests) ->
``notebooks/exercises/student/*.ipynb`` (solutions stubbed, hidden tests removed, outputs
cleared, cells locked as nbgrader locks them). Cell ids and nbgrader metadata are kept, so the
grader can match a submitted cell to its instructor cell. A student build carries no solution
text; ``with_solutions=True`` (``build --with-solutions``) writes ``allow_solutions()`` into
every setup cell, so that ``show_solution`` works in that release. ``stale`` lists the student
notebooks that differ from a fresh (solution-free) build.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .hints import NOTEBOOK_DIR
from .notebook import comparable, grade_id, student_version

STUDENT_DIR = NOTEBOOK_DIR / "student"
ALLOW_LINE = "allow_solutions()  # your instructor switched show_solution on"


def instructor_notebooks(source: Path = NOTEBOOK_DIR) -> list[Path]:
    """The instructor notebooks: ``*.ipynb`` directly in ``source``, sorted."""
    paths = sorted(Path(source).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no instructor notebooks (*.ipynb) in {source}")
    return paths


def _allow_solutions(nb) -> None:
    """Append an ``allow_solutions()`` call to the setup cell (``build --with-solutions``)."""
    for cell in nb.cells:
        if grade_id(cell) == "setup":
            cell.source += "\nfrom grpo_edu.exercises import allow_solutions\n\n" + ALLOW_LINE
            return
    raise ValueError("no cell with grade_id 'setup' to switch solutions on in")


def build_notebook(path: Path, with_solutions: bool = False):
    """The student version of the instructor notebook at ``path``."""
    nb = student_version(nbformat.read(path, as_version=4))
    if with_solutions:
        _allow_solutions(nb)
    nbformat.validate(nb)
    return nb


def build(
    source: Path = NOTEBOOK_DIR, out: Path = STUDENT_DIR, with_solutions: bool = False
) -> list[Path]:
    """Write the student version of every instructor notebook in ``source`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in instructor_notebooks(source):
        nbformat.write(build_notebook(path, with_solutions), out / path.name)
        written.append(out / path.name)
    return written


def stale(source: Path = NOTEBOOK_DIR, out: Path = STUDENT_DIR) -> list[str]:
    """Names of student notebooks missing from ``out`` or different from a fresh build."""
    names = []
    for path in instructor_notebooks(source):
        target = Path(out) / path.name
        if not target.exists():
            names.append(path.name)
            continue
        built = comparable(build_notebook(path))
        if comparable(nbformat.read(target, as_version=4)) != built:
            names.append(path.name)
    return names

"""Build the student notebooks from the instructor notebooks (``python -m grpo_edu.exercises build``).

``notebooks/exercises/*.ipynb`` (instructor: solutions and hidden tests) ->
``notebooks/exercises/student/*.ipynb`` (solutions stubbed, hidden tests removed, outputs
cleared). Cell ids and nbgrader metadata are kept, so the grader can match a submitted cell to
its instructor cell. ``stale`` lists the student notebooks that differ from a fresh build.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from .hints import NOTEBOOK_DIR
from .notebook import comparable, grade_id, student_version

STUDENT_DIR = NOTEBOOK_DIR / "student"
HIDE_LINE = "hide_solutions()  # your instructor switched show_solution off"


def instructor_notebooks(source: Path = NOTEBOOK_DIR) -> list[Path]:
    """The instructor notebooks: ``*.ipynb`` directly in ``source``, sorted."""
    paths = sorted(Path(source).glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no instructor notebooks (*.ipynb) in {source}")
    return paths


def _hide_solutions(nb) -> None:
    """Append a ``hide_solutions()`` call to the setup cell (``build --hide-solutions``)."""
    for cell in nb.cells:
        if grade_id(cell) == "setup":
            cell.source += "\nfrom grpo_edu.exercises import hide_solutions\n\n" + HIDE_LINE
            return
    raise ValueError("no cell with grade_id 'setup' to switch solutions off in")


def build_notebook(path: Path, hide_solutions: bool = False):
    """The student version of the instructor notebook at ``path``."""
    nb = student_version(nbformat.read(path, as_version=4))
    if hide_solutions:
        _hide_solutions(nb)
    nbformat.validate(nb)
    return nb


def build(
    source: Path = NOTEBOOK_DIR, out: Path = STUDENT_DIR, hide_solutions: bool = False
) -> list[Path]:
    """Write the student version of every instructor notebook in ``source`` to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in instructor_notebooks(source):
        nbformat.write(build_notebook(path, hide_solutions), out / path.name)
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

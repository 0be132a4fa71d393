"""Hints, and solutions that stay off unless the instructor's release switches them on.

``hint("gae")`` shows the next hint of an exercise under the cell (``hint("gae", 2)`` a given
one). ``show_solution("gae")`` shows the instructor's solution cell only when solutions are on:

- off by default: the student notebooks that ``python -m grpo_edu.exercises build`` writes carry
  no solution text, and ``show_solution`` / ``solution_source`` refuse;
- on in a release built with ``build --with-solutions`` (its setup cells call
  ``allow_solutions()``), or with ``GRPO_EDU_SOLUTIONS=1`` in the environment (self-study);
- ``GRPO_EDU_HIDE_SOLUTIONS=1`` (the grader sets it) forces them off whatever else says.

With solutions on, the text comes from the instructor notebook in ``notebooks/exercises/`` when
that folder is there (a checkout of the repository), else from the library reference's source.
Notebook helpers return nothing and print nothing: they ``display`` one line (``feedback.show``).
"""

from __future__ import annotations

import importlib
import inspect
import os
from pathlib import Path

from .catalog import EXERCISES, Exercise
from .display import show
from .notebook import grade_id, solution_code

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "exercises"
"""The instructor notebooks (a checkout of the repository)."""
SHOW_ENV, HIDE_ENV = "GRPO_EDU_SOLUTIONS", "GRPO_EDU_HIDE_SOLUTIONS"


class SolutionsHidden(PermissionError):
    """Solutions are off in this course (see ``hints``)."""


_shown: dict[str, int] = {}
_allowed = False


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; valid names: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def hint_text(exercise: str, n: int | None = None) -> str:
    """Hint ``n`` (from 1) of ``exercise``, or the next one not yet given, as text."""
    hints = _exercise(exercise).hints
    n = _shown.get(exercise, 0) + 1 if n is None else n
    if not 1 <= n <= len(hints):
        return (
            f"No hint {n} for {exercise} (it has {len(hints)}). show_solution({exercise!r}) "
            f"shows the solution, if your instructor allows it."
        )
    _shown[exercise] = max(n, _shown.get(exercise, 0))
    return f"Hint {n}/{len(hints)} for {exercise}: {hints[n - 1]}"


def hint(exercise: str, n: int | None = None) -> None:
    """Show hint ``n`` (from 1) of ``exercise``, or the next one not yet shown."""
    show(hint_text(exercise, n))


def _env_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def allow_solutions() -> None:
    """Switch ``show_solution`` on for this Python process (a release built with solutions)."""
    global _allowed
    _allowed = True


def hide_solutions() -> None:
    """Switch ``show_solution`` off again for this Python process."""
    global _allowed
    _allowed = False


def solutions_visible() -> bool:
    """True when solutions were switched on and ``GRPO_EDU_HIDE_SOLUTIONS`` does not force off."""
    return (_allowed or _env_on(SHOW_ENV)) and not _env_on(HIDE_ENV)


def solution_source(exercise: str, notebook_dir: Path = NOTEBOOK_DIR) -> str:
    """The instructor's solution (markers removed), or the reference's source; ``SolutionsHidden``
    unless solutions are on."""
    ex = _exercise(exercise)
    if not solutions_visible():
        raise SolutionsHidden(f"solutions are switched off in this course ({exercise})")
    path = Path(notebook_dir) / ex.notebook
    if path.exists():
        import nbformat  # slow to import (jsonschema): only when a solution is shown

        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if grade_id(cell) == exercise:
                return solution_code(cell.source)
    module, name = ex.reference.rsplit(".", 1)
    return inspect.getsource(getattr(importlib.import_module(module), name))


def show_solution(exercise: str) -> None:
    """Show the solution of ``exercise`` if solutions are on; else say that they are off."""
    try:
        show(solution_source(exercise))
    except SolutionsHidden:
        show(
            f"Solutions are switched off for this course ({exercise}). "
            f"Try hint({exercise!r}) or ask your instructor."
        )

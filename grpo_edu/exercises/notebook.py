"""nbgrader-compatible cells: markers, cell roles, and the student version of a notebook.

An instructor notebook marks its cells the way nbgrader does, so nbgrader can use it as it is:

- every graded or protected code cell has ``metadata.nbgrader`` with ``grade_id``, ``grade``,
  ``solution``, ``locked``, ``points`` (graded cells), ``schema_version`` 3 and ``task``;
- a **solution cell** (``solution: true``, ``grade_id`` = the exercise name, e.g.
  ``group_advantages``) holds the model answer between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``;
- a **test cell** (``grade: true``, ``grade_id`` = ``<exercise>_tests``) calls the check, then
  holds hidden tests between ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``;
- a **locked cell** (``locked: true``, e.g. ``grade_id`` ``setup``) is restored from the
  instructor version when grading.

The student version replaces each solution region by nbgrader's stub (``# YOUR CODE HERE`` and
``raise NotImplementedError()``, at the marker's indentation, so the signature and docstring
above it stay), drops hidden tests, clears outputs, and locks cells as nbgrader's release does
(``lock``): locked and test cells get ``editable: false`` and ``deletable: false``, solution
cells ``deletable: false``. The locks are a courtesy of the notebook interface; the grader does
not rely on them (it restores every locked and test cell from the instructor's notebook).
"""

from __future__ import annotations

import copy
import json
import re

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")
"""What replaces a solution region: nbgrader's own stub."""
TESTS_SUFFIX = "_tests"


def nbgrader(cell) -> dict:
    """The cell's nbgrader metadata ({} for an ordinary cell, or for metadata that is not a dict)."""
    meta = cell.get("metadata")
    meta = meta.get("nbgrader") if isinstance(meta, dict) else None
    return meta if isinstance(meta, dict) else {}


def grade_id(cell) -> str | None:
    gid = nbgrader(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def is_solution(cell) -> bool:
    return cell.cell_type == "code" and bool(nbgrader(cell).get("solution"))


def is_test(cell) -> bool:
    return cell.cell_type == "code" and bool(nbgrader(cell).get("grade")) and not is_solution(cell)


def exercise_of(cell) -> str | None:
    """The exercise a solution or test cell belongs to (its grade_id without ``_tests``)."""
    gid = grade_id(cell)
    if gid is None or not (is_solution(cell) or is_test(cell)):
        return None
    return gid.removesuffix(TESTS_SUFFIX) if is_test(cell) else gid


def exercises(nb) -> dict[str, list[str]]:
    """Exercise name -> grade_ids of its solution and test cells, in notebook order."""
    out: dict[str, list[str]] = {}
    for cell in nb.cells:
        name = exercise_of(cell)
        if name is not None:
            out.setdefault(name, []).append(grade_id(cell))
    return out


def _regions(lines: list[str], begin: str, end: str) -> list[tuple[int, int]]:
    """(start, stop) line indices of each begin...end region; ValueError when unbalanced."""
    regions, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == begin:
            if start is not None:
                raise ValueError(f"line {i + 1}: {begin!r} inside another region")
            start = i
        elif text == end:
            if start is None:
                raise ValueError(f"line {i + 1}: {end!r} without {begin!r}")
            regions.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"line {start + 1}: {begin!r} is never closed by {end!r}")
    return regions


def strip_solution(source: str) -> str:
    """Each solution region -> the stub, indented like its ``### BEGIN SOLUTION`` line."""
    lines = source.split("\n")
    regions = _regions(lines, BEGIN_SOLUTION, END_SOLUTION)
    if not regions:
        raise ValueError(f"a solution cell needs a {BEGIN_SOLUTION} ... {END_SOLUTION} region")
    for start, stop in reversed(regions):
        indent = re.match(r"\s*", lines[start]).group(0)
        lines[start : stop + 1] = [indent + s for s in STUB]
    return "\n".join(lines)


def strip_hidden_tests(source: str) -> str:
    """The source without its hidden-test regions (markers included) and trailing blank lines."""
    lines = source.split("\n")
    for start, stop in reversed(_regions(lines, BEGIN_HIDDEN, END_HIDDEN)):
        del lines[start : stop + 1]
    return "\n".join(lines).rstrip("\n")


def solution_code(source: str) -> str:
    """The instructor's solution cell with the markers removed (what ``show_solution`` prints)."""
    lines = [s for s in source.split("\n") if s.strip() not in (BEGIN_SOLUTION, END_SOLUTION)]
    return "\n".join(lines)


def clear_outputs(nb) -> None:
    """Outputs and execution counts cleared, in place (notebooks are committed this way)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        cell.get("metadata", {}).pop("execution", None)


def lock(cell) -> None:
    """nbgrader's cell locks, in place: what the student may not edit or delete."""
    meta = nbgrader(cell)
    if not meta:
        return
    if meta.get("locked") or is_test(cell):
        cell.metadata.update(editable=False, deletable=False)
    elif meta.get("solution"):
        cell.metadata["deletable"] = False


def student_version(instructor_nb):
    """A copy with solutions stubbed, hidden tests removed, outputs cleared, cells locked."""
    nb = copy.deepcopy(instructor_nb)
    for cell in nb.cells:
        try:
            if is_solution(cell):
                cell.source = strip_solution(cell.source)
            elif cell.cell_type == "code":
                cell.source = strip_hidden_tests(cell.source)
        except ValueError as err:
            raise ValueError(f"cell {grade_id(cell) or cell.get('id')}: {err}") from None
        lock(cell)
    clear_outputs(nb)
    return nb


def comparable(nb) -> dict:
    """A notebook as plain JSON without what execution changes (outputs, counts, ids)."""
    data = json.loads(json.dumps(nb))
    for cell in data["cells"]:
        for key in ("outputs", "execution_count", "id"):
            cell.pop(key, None)
        cell.get("metadata", {}).pop("execution", None)
    return data

"""Grade a folder of submitted notebooks (``python -m grpo_edu.exercises grade SUBMISSIONS_DIR``).

Layout: ``SUBMISSIONS_DIR/<student>/<notebook>.ipynb``; the folder name is the student, the file
name picks the instructor notebook (``notebooks/exercises/<notebook>.ipynb``). For each submission:

1. read it; malformed JSON fails every exercise of that notebook;
2. restore the instructor's version of every locked and test cell, matched by nbgrader
   ``grade_id`` (so hidden tests come back and edited checks are undone); the student's solution
   cells and scratch cells are kept; an exercise whose solution or test cell was deleted fails;
3. execute it in a fresh kernel, cell by cell, each cell within ``cell_timeout`` and the whole
   notebook within ``timeout`` seconds (a cell past its time is interrupted, the next cells run
   on what is left); errors do not stop the run;
4. an exercise passes when its solution cell and its test cells ran without error.

The result is one ``GradeRow`` per (student, exercise): ``write_csv`` and ``summary`` turn them
into ``student,exercise,passed,message`` and a printable table.
"""

from __future__ import annotations

import copy
import csv
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from .build import instructor_notebooks
from .hints import NOTEBOOK_DIR
from .notebook import exercises, grade_id, is_solution, is_test, nbgrader

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_MESSAGE = 2000
"""Characters of an error message kept in the CSV."""


@dataclass(frozen=True)
class GradeRow:
    student: str
    exercise: str
    passed: bool
    message: str
    """Empty when passed; else why: the first error of the exercise's cells, or what went wrong."""
    notebook: str = ""


def _restore_protected(student_nb, instructor_nb) -> tuple[object, set[str]]:
    """The submission with instructor locked/test cells restored; and the grade_ids it lacks."""
    reference = {grade_id(c): c for c in instructor_nb.cells if grade_id(c)}
    nb, seen = copy.deepcopy(student_nb), set()
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid not in reference:
            continue
        if gid in seen or cell.cell_type != reference[gid].cell_type:
            cell.get("metadata", {}).pop("nbgrader", None)  # a copy or a changed type: ungraded
            continue
        seen.add(gid)
        if nbgrader(reference[gid]).get("locked") or is_test(reference[gid]):
            nb.cells[i] = copy.deepcopy(reference[gid])
    missing = set(reference) - seen
    restored = [
        copy.deepcopy(c)
        for c in instructor_nb.cells
        if grade_id(c) in missing and not (is_solution(c) or is_test(c))
    ]
    nb.cells[:0] = restored  # a deleted setup cell comes back at the top
    return nb, missing - {grade_id(c) for c in restored}


def _kernel_env() -> dict[str, str]:
    """The grader's environment, with this checkout of grpo_edu first on the kernel's path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("MPLBACKEND", "Agg")
    return env


def execute(nb, cwd: Path, timeout: float, cell_timeout: float) -> dict[str, str | None]:
    """Run ``nb`` in place in a fresh kernel; grade_id -> None (ran fine) or the error text.

    A graded cell absent from the result was not run: the notebook's time was used up first.
    """
    client = NotebookClient(
        nb,
        kernel_name="python3",
        allow_errors=False,
        interrupt_on_timeout=True,
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(cwd)}},
        extra_arguments=["--IPKernelApp.log_level=ERROR"],  # no transport warnings per notebook
    )
    results: dict[str, str | None] = {}
    deadline, dead = monotonic() + timeout, None
    with client.setup_kernel(env=_kernel_env()):
        for index, cell in enumerate(nb.cells):
            left = deadline - monotonic()
            if cell.cell_type != "code" or left <= 0:
                continue
            if dead:
                results[grade_id(cell)] = dead if grade_id(cell) else None
                continue
            client.timeout = max(1, int(min(cell_timeout, left)))
            client.error_on_timeout = {
                "ename": "Timeout",
                "evalue": (
                    f"the cell did not finish within {client.timeout} s (an infinite loop?); "
                    f"it was interrupted"
                ),
            }
            error = _run_cell(client, cell, index)
            if grade_id(cell):
                results[grade_id(cell)] = error
            if error and error.startswith("DeadKernelError"):
                dead = "DeadKernelError: the kernel died in an earlier cell (exit() or a crash)"
    results.pop(None, None)
    return results


def _run_cell(client: NotebookClient, cell, index: int) -> str | None:
    try:
        client.execute_cell(cell, index)
    except CellExecutionError as err:
        return f"{err.ename}: {err.evalue}"
    except CellTimeoutError as err:
        return f"Timeout: {err}"
    except DeadKernelError:
        return "DeadKernelError: the kernel died in this cell (os._exit() or a crash)"
    return None


def _exercise_rows(instructor_nb, results, missing, timeout) -> list[tuple[str, bool, str]]:
    rows = []
    for name, gids in exercises(instructor_nb).items():
        deleted = [g for g in gids if g in missing]
        if deleted:
            rows.append((name, False, f"cell {deleted[0]!r} was deleted from the submission"))
            continue
        not_run = [g for g in gids if g not in results]
        errors = [(g, results[g]) for g in gids if results.get(g)]
        if errors:
            gid, error = errors[0]
            where = "solution cell" if gid == name else "check"
            rows.append((name, False, f"{where}: {error}"[:MAX_MESSAGE]))
        elif not_run:
            rows.append((name, False, f"not run: the notebook used up its {timeout:g} s"))
        else:
            rows.append((name, True, ""))
    return rows


def grade_notebook(
    path: Path, instructor_nb, timeout: float = 120, cell_timeout: float | None = None
) -> list[tuple[str, bool, str]]:
    """(exercise, passed, message) for one submitted notebook."""
    try:
        submission = nbformat.read(path, as_version=4)
        nb, missing = _restore_protected(submission, instructor_nb)
    except Exception as err:  # malformed JSON, not a notebook, ...
        message = f"could not read the notebook ({type(err).__name__}: {err})"[:MAX_MESSAGE]
        return [(name, False, message) for name in exercises(instructor_nb)]
    try:
        results = execute(nb, path.parent, timeout, cell_timeout or timeout)
    except Exception as err:  # the kernel did not start, or the connection to it broke
        message = f"could not execute the notebook ({type(err).__name__}: {err})"[:MAX_MESSAGE]
        return [(name, False, message) for name in exercises(instructor_nb)]
    return _exercise_rows(instructor_nb, results, missing, timeout)


def _assignments(students: list[Path], instructor: dict, only: Iterable[str] | None) -> list[str]:
    submitted = {p.name for s in students for p in s.glob("*.ipynb")}
    names = [n for n in instructor if n in submitted]
    if only:
        wanted = {n if n.endswith(".ipynb") else f"{n}.ipynb" for n in only}
        if unknown := wanted - set(instructor):
            raise ValueError(f"unknown notebooks {sorted(unknown)}; known: {sorted(instructor)}")
        names = [n for n in instructor if n in wanted]
    return names


def grade(
    submissions: Path,
    source: Path = NOTEBOOK_DIR,
    timeout: float = 120,
    cell_timeout: float | None = None,
    notebooks: Iterable[str] | None = None,
    on_notebook: Callable[[str, str, float], None] | None = None,
) -> list[GradeRow]:
    """Grade every ``<student>/<notebook>.ipynb`` under ``submissions``.

    The notebooks graded are those submitted by at least one student (or ``notebooks``); a
    student who did not submit one of them fails its exercises. ``on_notebook(student, name,
    seconds)`` is called after each submission (progress for the command line).
    """
    instructor = {p.name: nbformat.read(p, as_version=4) for p in instructor_notebooks(source)}
    students = sorted(
        p for p in Path(submissions).iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    rows = []
    for name in _assignments(students, instructor, notebooks):
        for student in students:
            t0, path = monotonic(), student / name
            if path.exists():
                results = grade_notebook(path, instructor[name], timeout, cell_timeout)
            else:
                results = [(e, False, "not submitted") for e in exercises(instructor[name])]
            rows += [GradeRow(student.name, e, ok, msg, name) for e, ok, msg in results]
            if on_notebook is not None:
                on_notebook(student.name, name, monotonic() - t0)
    return sorted(rows, key=lambda r: (r.student, list(instructor).index(r.notebook)))


def write_csv(rows: list[GradeRow], path: Path) -> None:
    """``student,exercise,passed,message``, one row per student and exercise."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "exercise", "passed", "message"])
        writer.writerows([r.student, r.exercise, r.passed, r.message] for r in rows)


def summary(rows: list[GradeRow]) -> str:
    """A table: one line per student (✓ / ✗ per exercise, passed count), then pass rates."""
    students = list(dict.fromkeys(r.student for r in rows))
    names = list(dict.fromkeys(r.exercise for r in rows))
    cell = {(r.student, r.exercise): r for r in rows}
    width = max([len(s) for s in students] + [7])
    lines = [" ".join([f"{'student':<{width}}", *names, "passed"])]
    for s in students:
        marks = [
            f"{'✓' if cell[s, n].passed else '✗':<{len(n)}}" if (s, n) in cell else " " * len(n)
            for n in names
        ]
        mine = [r for r in rows if r.student == s]
        lines.append(
            " ".join([f"{s:<{width}}", *marks, f"{sum(r.passed for r in mine)}/{len(mine)}"])
        )
    rates = [
        f"{n} {sum(cell[s, n].passed for s in students if (s, n) in cell)}/"
        f"{sum((s, n) in cell for s in students)}"
        for n in names
    ]
    failures = []
    for r in (r for r in rows if not r.passed):
        first, *rest = r.message.splitlines()
        failures.append(f"  {r.student} / {r.exercise}: {first}")
        failures += [f"      {line}" for line in rest if line.startswith("Hint:")]
    return "\n".join(lines + ["", "pass rate: " + ", ".join(rates), "", "failures:", *failures])

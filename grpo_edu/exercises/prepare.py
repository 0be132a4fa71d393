"""From a submitted notebook to the job its sandbox runs, and what the grader will judge.

``Assignment`` reads an instructor notebook once: its exercises, their nbgrader points, the
check calls of each test cell and what the setup cell imports. ``read_notebook`` and
``copy_folder`` read a student's files the safe way (no symbolic links followed, only regular
files, size caps). ``prepare`` then

1. restores the instructor's version of every locked and test cell, matched by nbgrader
   ``grade_id`` (hidden tests come back, edited checks are undone); an exercise whose solution
   or test cell was deleted fails;
2. replaces each test cell by a harness cell: for every check call in it, the cases (built here,
   hidden tests with this run's seed) go to the sandbox as data; the ``CaseCheck`` that judges
   the answers stays here;
3. scans every cell the student wrote for the reference or the notebooks (``flags``).
"""

from __future__ import annotations

import ast
import base64
import copy
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from .catalog import EXERCISES
from .flags import scan, setup_bindings
from .notebook import BEGIN_HIDDEN, exercise_of, exercises, grade_id, is_solution, is_test, nbgrader

MAX_NOTEBOOK_BYTES = 16 * 2**20
MAX_FOLDER_BYTES, MAX_FILES = 64 * 2**20, 200


@dataclass(frozen=True)
class CheckCall:
    """``check_<check>(<fn>, **kwargs)`` in a test cell."""

    check: str
    """The exercise checked, or ``grpo_training`` for ``check_grpo_training``."""
    fn: str
    kwargs: dict
    hidden: bool
    """Between the hidden-test markers: its ``seed`` becomes the grading run's seed."""


def check_calls(source: str) -> list[CheckCall]:
    """The check calls of an instructor test cell (literal keyword arguments only)."""
    lines = source.split("\n")
    hidden_from = next((i + 1 for i, s in enumerate(lines) if s.strip() == BEGIN_HIDDEN), 10**9)
    calls = []
    for node in ast.parse(source).body:
        call = node.value if isinstance(node, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            raise ValueError(f"a test cell may hold only check_*(...) calls: {ast.unparse(node)}")
        name = call.func.id.removeprefix("check_")
        if name not in EXERCISES and name != "grpo_training" or not call.args:
            raise ValueError(f"not a check call: {ast.unparse(node)}")
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
        calls.append(CheckCall(name, call.args[0].id, kwargs, node.lineno > hidden_from))
    return calls


@dataclass
class Assignment:
    """An instructor notebook, read once for the whole class."""

    name: str
    nb: nbformat.NotebookNode
    exercises: dict[str, list[str]] = field(init=False)
    points: dict[str, float] = field(init=False)
    calls: dict[str, list[CheckCall]] = field(init=False)
    """Test cell grade_id -> its check calls."""

    def __post_init__(self):
        self.exercises = exercises(self.nb)
        cells = {grade_id(c): c for c in self.nb.cells if grade_id(c)}
        self.points = {
            name: float(sum(nbgrader(cells[g]).get("points", 0) for g in gids if is_test(cells[g])))
            for name, gids in self.exercises.items()
        }
        self.calls = {g: check_calls(c.source) for g, c in cells.items() if is_test(c)}
        setup = "\n".join(c.source for c in self.nb.cells if grade_id(c) == "setup")
        self.allowed, self.bound = setup_bindings(setup)
        self.references = {EXERCISES[n].reference for n in self.exercises if n in EXERCISES}


def read_notebook(path: Path):
    """The notebook at ``path``; ``ValueError`` saying why it cannot be graded."""
    try:
        st = os.lstat(path)
    except OSError as err:
        raise ValueError(f"cannot read it ({err.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise ValueError("it is a symbolic link (refused)")
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"not a regular file of at most {MAX_NOTEBOOK_BYTES // 2**20} MB")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as f:
        raw = f.read(MAX_NOTEBOOK_BYTES + 1)
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        for cell in nb.cells:
            if not (
                isinstance(cell, dict)
                and cell.get("cell_type") in ("code", "markdown", "raw")
                and isinstance(cell.get("source"), str)
                and isinstance(cell.get("metadata", {}), dict)
            ):
                raise ValueError("a cell without a type, source text or metadata")
    except Exception as err:  # bad UTF-8, not JSON, not a notebook, ...
        raise ValueError(f"not a readable notebook ({type(err).__name__}: {err})"[:400]) from None
    return nb


def copy_folder(folder: Path) -> tuple[list[list[str]], list[str]]:
    """[relative path, base64 content] of the regular files in ``folder``; and what was left out.

    Walks with directory file descriptors and O_NOFOLLOW, so a symbolic link anywhere (or one
    swapped in while we read) is never followed; files past the caps are left out.
    """
    files, notes, total = [], [], 0
    stack = [(os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW), "")]
    while stack:
        dir_fd, prefix = stack.pop()
        try:
            for entry in sorted(os.listdir(dir_fd)):
                rel = f"{prefix}{entry}"
                st = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode) and prefix.count("/") < 4:
                    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                    stack.append((os.open(entry, flags, dir_fd=dir_fd), rel + "/"))
                elif not stat.S_ISREG(st.st_mode):
                    notes.append(f"{rel}: not a regular file (left out)")
                elif len(files) >= MAX_FILES or total + st.st_size > MAX_FOLDER_BYTES:
                    notes.append(f"{rel}: over the folder's caps (left out)")
                else:
                    fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
                    with os.fdopen(fd, "rb") as f:
                        data = f.read(MAX_FOLDER_BYTES - total + 1)
                    total += len(data)
                    files.append([rel, base64.b64encode(data).decode()])
        finally:
            os.close(dir_fd)
    return files, notes


def restore_protected(student_nb, instructor_nb) -> tuple[object, set[str]]:
    """The submission with instructor locked/test cells restored; and the grade_ids it lacks."""
    reference = {grade_id(c): c for c in instructor_nb.cells if grade_id(c)}
    nb, seen = copy.deepcopy(student_nb), set()
    for i, cell in enumerate(nb.cells):
        gid = grade_id(cell)
        if gid not in reference:
            cell.get("metadata", {}).pop("nbgrader", None)  # a student's own marker: ungraded
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


@dataclass
class Prepared:
    """A submission ready to run: the job's cells and what the grader keeps to judge them."""

    cells: list[dict]
    """The job's cells: ``{"kind": "code", "source"}`` or ``{"kind": "harness", "calls"}``."""
    cell_of: dict[str, int]
    """grade_id -> index in ``cells``."""
    judges: dict[tuple[int, int], object]
    """(cell, call) -> the ``CaseCheck`` or ``("training", budget, seed)`` that judges it."""
    missing: set[str]
    flags: dict[str, list[str]]
    """Exercise -> findings (``flags.scan``) in the cells that can change it."""


def prepare(submission, assignment: Assignment, seed: int) -> Prepared:
    from .checks import CASE_CHECKS

    nb, missing = restore_protected(submission, assignment.nb)
    cells, cell_of, judges, flags = [], {}, {}, {}
    earlier: list[str] = []  # findings in the student's added cells so far
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        gid, index = grade_id(cell), len(cells)
        if gid:
            cell_of[gid] = index
        if gid in assignment.calls:  # a test cell: the harness takes its place
            calls = []
            for j, call in enumerate(assignment.calls[gid]):
                judges[index, j], job = _harness_call(call, seed, CASE_CHECKS)
                calls.append(job)
            flags.setdefault(exercise_of(cell), []).extend(earlier)
            cells.append({"kind": "harness", "calls": calls})
            continue
        if gid is None or is_solution(cell):  # the student's own code: read it
            own = gid if is_solution(cell) else None
            args = (assignment.allowed, assignment.bound, own, assignment.references)
            found = scan(cell.source, *args)
            (flags.setdefault(own, []) if own else earlier).extend(found)
        cells.append({"kind": "code", "source": cell.source})
    flags = {k: list(dict.fromkeys(v)) for k, v in flags.items() if v}
    return Prepared(cells, cell_of, judges, missing, flags)


def _harness_call(call: CheckCall, seed: int, case_checks: dict) -> tuple[object, dict]:
    """What judges one check call, and what the sandbox needs to answer it."""
    from .checks.training import TrainingBudget
    from .observe import encode_case

    kwargs = {k: v for k, v in call.kwargs.items() if k != "quiet"}
    if call.hidden:
        kwargs["seed"] = seed
    if call.check == "grpo_training":
        budget, train_seed = TrainingBudget(), kwargs.get("seed", 0)
        job = {"kind": "training", "fn": call.fn, "budget": asdict(budget), "seed": train_seed}
        return ("training", budget, train_seed), job
    check = case_checks[call.check](**kwargs)
    cases = [encode_case(c) for c in check.cases]
    return check, {"kind": "cases", "fn": call.fn, "wrt": check.wrt, "cases": cases}

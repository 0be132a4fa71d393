"""Grade a folder of submitted notebooks (``python -m grpo_edu.exercises grade SUBMISSIONS_DIR``).

Layout: ``SUBMISSIONS_DIR/<student>/<notebook>.ipynb``; the folder name is the student, the file
name picks the instructor notebook. Each (student, notebook) is one submission, graded in four
steps, up to ``jobs`` submissions at a time (one per core by default):

1. read it without following links (``prepare.read_notebook``; a symlink, a non-JSON file or a
   non-notebook is ``unreadable``), and copy the student's folder (``prepare.copy_folder``);
2. prepare the job: instructor cells restored, test cells replaced by harness calls whose cases
   the grader builds, the student's cells scanned for the reference (``prepare``, ``flags``);
3. run it in a sandbox (``sandbox``, ``supervise``): a fresh process with its own namespaces,
   uid, limits and clock; only data comes back;
4. judge the data here, with the grader's own references and accuracy (``verdict``).

Rows go to the CSV as each submission finishes (``gradebook``): an interrupted run keeps them,
and the next run skips what is there. The hidden tests use a fresh random ``seed`` per run
unless one is given (a student cannot store the answers); the visible ones use the notebook's.
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from time import monotonic

import nbformat

from .build import instructor_notebooks
from .gradebook import Gradebook, GradeRow
from .hints import NOTEBOOK_DIR
from .prepare import Assignment, copy_folder, prepare, read_notebook
from .sandbox import WORKDIR, Limits, sandbox_paths
from .supervise import launch, probe

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
"""The folder holding this grpo_edu: the sandbox imports the same code as the grader."""
UID_BASE = 61000
"""Sandbox slot k runs as uid and gid UID_BASE + k (full isolation): unused ids on most systems."""


@dataclass
class GradeRun:
    """The result of ``grade``: every row of the CSV, and how the submissions were isolated."""

    rows: list[GradeRow]
    isolation: str
    """``full``, ``user`` or ``basic`` (see ``sandbox``)."""
    note: str
    """Why not a stronger level (empty when ``full``)."""
    seed: int
    """Seed of the hidden tests of this run."""
    graded: int
    """Submissions graded by this run (not read back from the CSV)."""


@dataclass
class _Context:
    limits: Limits
    seed: int
    scratch: Path
    isolation: str
    hide: list[str]
    expose: list[str]
    uid_base: int
    slots: queue.Queue


def _rows(student, name, assignment, status, reason, seconds=0.0) -> list[GradeRow]:
    return [
        GradeRow(student, name, ex, status, 0.0, assignment.points[ex], reason, seconds)
        for ex in assignment.exercises
    ]


def _sandbox(ctx: _Context, slot: int, folder: Path) -> dict:
    config = {"isolation": ctx.isolation, "limits": asdict(ctx.limits)}
    if ctx.isolation in ("full", "user"):
        uid = ctx.uid_base + slot
        return {
            **config,
            "uid": uid,
            "gid": uid,
            "hide": ctx.hide,
            "expose": ctx.expose,
            "workdir": WORKDIR,
        }
    for sub in ("work", "home", "tmp"):
        (folder / sub).mkdir(mode=0o700)
    return {**config, "workdir": str(folder / "work")}


def grade_submission(
    student: Path, name: str, assignment: Assignment, ctx: _Context
) -> list[GradeRow]:
    """The rows of one submission (``student/name``), graded in a sandbox of its own.

    A failure of the grader itself on this submission becomes ``crashed`` rows that say so;
    the other submissions go on.
    """
    t0 = monotonic()
    try:
        return _grade_submission(student, name, assignment, ctx, t0)
    except Exception as err:
        why = (
            f"the grader failed on this submission ({type(err).__name__}: {err}); please report it"
        )
        return _rows(student.name, name, assignment, "crashed", why, monotonic() - t0)


def _grade_submission(student: Path, name: str, assignment: Assignment, ctx: _Context, t0: float):
    from .verdict import verdicts

    who = student.name
    if student.is_symlink():
        return _rows(who, name, assignment, "unreadable", "the folder is a symbolic link (refused)")
    if not os.path.lexists(student / name):
        return _rows(who, name, assignment, "not submitted", "not submitted")
    try:
        nb = read_notebook(student / name)
    except ValueError as err:
        return _rows(who, name, assignment, "unreadable", f"could not read the notebook: {err}")
    files, left_out = copy_folder(student)
    prepared = prepare(nb, assignment, ctx.seed)
    slot = ctx.slots.get()
    folder = Path(tempfile.mkdtemp(dir=ctx.scratch))
    try:
        job = {"sandbox": _sandbox(ctx, slot, folder), "files": files, "cells": prepared.cells}
        outcome = launch(job, ctx.limits, ctx.scratch, PACKAGE_ROOT)
    finally:
        ctx.slots.put(slot)
        shutil.rmtree(folder, ignore_errors=True)
    judged = verdicts(assignment, prepared, outcome, ctx.limits)
    note = f" [left out of the copy: {'; '.join(left_out[:3])}]" if left_out else ""
    seconds, rows = monotonic() - t0, []
    for ex, v in judged.items():
        points = assignment.points[ex] if v.passed else 0.0
        reason = v.reason + (note if not v.passed else "")
        rows.append(
            GradeRow(who, name, ex, v.status, points, assignment.points[ex], reason, seconds)
        )
    return rows


def _students(submissions: Path) -> list[Path]:
    return sorted(
        p
        for p in Path(submissions).iterdir()
        if not p.name.startswith(".") and (p.is_symlink() or p.is_dir())
    )


def _assignments(students, instructor: dict, only: Iterable[str] | None) -> list[str]:
    submitted = {p.name for s in students if not s.is_symlink() for p in s.glob("*.ipynb")}
    names = [n for n in instructor if n in submitted]
    if only:
        wanted = {n if n.endswith(".ipynb") else f"{n}.ipynb" for n in only}
        if unknown := wanted - set(instructor):
            raise ValueError(f"unknown notebooks {sorted(unknown)}; known: {sorted(instructor)}")
        names = [n for n in instructor if n in wanted]
    return names


def default_jobs() -> int:
    """Submissions graded at once: the cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


LEVELS = ("full", "user", "basic")
"""Isolation levels, strongest first (see ``sandbox``)."""


def _isolation(requested: str, ctx: _Context) -> tuple[str, str]:
    """The level to use, and why not a stronger one (empty when ``full``)."""
    if requested not in ("auto", *LEVELS):
        raise ValueError(f"isolation must be 'auto' or one of {LEVELS}, got {requested!r}")
    uid = ctx.uid_base + 1
    sandbox = {"uid": uid, "gid": uid, "hide": ctx.hide, "expose": ctx.expose}
    notes = []
    for level in LEVELS[LEVELS.index(requested) if requested != "auto" else 0 :]:
        why = probe(level, sandbox, ctx.scratch, PACKAGE_ROOT) if level != "basic" else None
        if why is None:
            return level, "; ".join(notes)
        if requested != "auto":
            raise RuntimeError(f"{level} isolation is not available: {why}")
        notes.append(why)
    raise AssertionError("basic isolation always works")


def grade(
    submissions: Path,
    out: Path,
    source: Path = NOTEBOOK_DIR,
    limits: Limits = Limits(),
    jobs: int | None = None,
    notebooks: Iterable[str] | None = None,
    isolation: str = "auto",
    seed: int | None = None,
    restart: bool = False,
    uid_base: int = UID_BASE,
    on_submission: Callable[[list[GradeRow]], None] | None = None,
) -> GradeRun:
    """Grade every ``<student>/<notebook>.ipynb`` under ``submissions`` into the CSV ``out``.

    The notebooks graded are those submitted by at least one student (or ``notebooks``); a
    student who did not submit one of them gets ``not submitted`` rows. ``on_submission(rows)``
    is called as each submission is done (progress for the command line).
    """
    submissions, out = Path(submissions), Path(out)
    if not submissions.is_dir():
        raise ValueError(f"submissions={str(submissions)!r} is not a directory")
    limits.check()
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    instructor = {
        p.name: Assignment(p.name, nbformat.read(p, as_version=4))
        for p in instructor_notebooks(source)
    }
    students = _students(submissions)
    names = _assignments(students, instructor, notebooks)
    seed = secrets.randbelow(2**31) if seed is None else seed
    scratch = Path(tempfile.mkdtemp(prefix="grpo_edu_grade_"))
    private = (source, submissions, scratch, out, Path(PACKAGE_ROOT) / ".git")
    hide = [str(Path(p).resolve()) for p in private]
    slots: queue.Queue = queue.Queue()
    for k in range(1, jobs + 1):
        slots.put(k)
    ctx = _Context(limits, seed, scratch, "basic", hide, sandbox_paths(), uid_base, slots)
    try:
        ctx.isolation, note = _isolation(isolation, ctx)

        def complete(rows: list[GradeRow]) -> bool:
            known = instructor.get(rows[0].notebook)
            return known is not None and {r.exercise for r in rows} == set(known.exercises)

        with Gradebook(out, restart, complete) as book:
            todo = [(s, n) for n in names for s in students if (s.name, n) not in book.done()]
            graded = _run(todo, instructor, ctx, book, jobs, on_submission)
            rows = [r for r in book.rows if r.notebook in names]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return GradeRun(rows, ctx.isolation, note, seed, graded)


def _run(todo, instructor, ctx, book: Gradebook, jobs: int, on_submission) -> int:
    import torch

    torch.set_num_threads(1)  # judging: tiny tensors, and the cores belong to the sandboxes
    if any(
        c.check == "grpo_training"
        for _, n in todo
        for calls in instructor[n].calls.values()
        for c in calls
    ):
        from .checks.training import TrainingBudget, warm_start_accuracy

        warm_start_accuracy(TrainingBudget(), 0)  # once, before the clocks start
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_submission, s, n, instructor[n], ctx) for s, n in todo]
        for future in as_completed(futures):
            rows = future.result()
            book.add(rows)
            if on_submission is not None:
                on_submission(rows)
    return len(futures)

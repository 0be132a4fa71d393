"""The grades CSV: one row per (student, exercise), written as each submission finishes.

Columns: ``student, notebook, exercise, status, points, max_points, reason, seconds``.
``status`` is one of ``STATUSES``; ``points`` are nbgrader's (the ``points`` of the exercise's
test cells), all or nothing, and 0 unless ``graded`` and passed; ``reason`` says why points are
missing (the check's message, the timeout, the crash, the flag). A ``Gradebook`` appends a
submission's rows as soon as it is graded (flushed to disk), so an interrupted run keeps what
it graded; opened again, it drops a half-written last line, knows which (student, notebook)
pairs are done, and the grader skips them. The file is readable by its owner only.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

STATUSES = ("graded", "timed out", "crashed", "unreadable", "flagged", "not submitted")
MAX_REASON = 2000
"""Characters of a reason kept in the CSV."""


@dataclass(frozen=True)
class GradeRow:
    student: str
    notebook: str
    exercise: str
    status: str
    """One of ``STATUSES``."""
    points: float
    max_points: float
    reason: str = ""
    """Empty when full points; else why not."""
    seconds: float = 0.0
    """Wall-clock seconds of the submission (notebook) this row belongs to."""

    @property
    def passed(self) -> bool:
        return self.status == "graded" and self.points == self.max_points


COLUMNS = [f.name for f in fields(GradeRow)]


def _row(values: dict[str, str]) -> GradeRow:
    return GradeRow(
        values["student"],
        values["notebook"],
        values["exercise"],
        values["status"],
        float(values["points"]),
        float(values["max_points"]),
        values["reason"],
        float(values["seconds"]),
    )


class Gradebook:
    """The CSV at ``path``, opened for appending; ``restart=True`` starts it empty.

    ``complete(rows)`` says whether the rows read back for one (student, notebook) are all of
    them (a run interrupted while writing leaves some); incomplete ones are dropped.
    """

    def __init__(self, path: Path, restart: bool = False, complete: Callable | None = None):
        self.path = Path(path)
        self.rows: list[GradeRow] = [] if restart else self._read()
        if complete is not None:
            groups: dict[tuple[str, str], list[GradeRow]] = {}
            for r in self.rows:
                groups.setdefault((r.student, r.notebook), []).append(r)
            self.rows = [r for r in self.rows if complete(groups[r.student, r.notebook])]
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        self.file = os.fdopen(fd, "w", newline="")
        self.writer = csv.writer(self.file)
        self.writer.writerow(COLUMNS)
        self.writer.writerows(astuple(r) for r in self.rows)
        self._sync()

    def _read(self) -> list[GradeRow]:
        if not self.path.exists():
            return []
        text = self.path.read_text(errors="replace")
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a line cut by an interruption
        rows = []
        for values in csv.DictReader(io.StringIO(text, newline="")):
            try:
                rows.append(_row(values))
            except (KeyError, TypeError, ValueError):
                continue
        return rows

    def done(self) -> set[tuple[str, str]]:
        """(student, notebook) pairs already graded."""
        return {(r.student, r.notebook) for r in self.rows}

    def add(self, rows: list[GradeRow]) -> None:
        rows = [GradeRow(*astuple(r)[:6], r.reason[:MAX_REASON], round(r.seconds, 2)) for r in rows]
        self.rows += rows
        self.writer.writerows(astuple(r) for r in rows)
        self._sync()

    def _sync(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def summary(rows: list[GradeRow]) -> str:
    """A table: one line per student (points per exercise, total), then anything not graded."""
    students = sorted({r.student for r in rows})
    names = list(dict.fromkeys(r.exercise for r in rows))
    cell = {(r.student, r.exercise): r for r in rows}
    width = max([len(s) for s in students] + [7])

    def mark(r: GradeRow | None, n: str) -> str:
        text = "" if r is None else f"{r.points:g}" if r.status == "graded" else r.status[:4]
        return f"{text:<{len(n)}}"

    lines = [" ".join([f"{'student':<{width}}", *names, "points"])]
    for s in students:
        mine = [r for r in rows if r.student == s]
        total = f"{sum(r.points for r in mine):g}/{sum(r.max_points for r in mine):g}"
        lines.append(
            " ".join([f"{s:<{width}}", *(mark(cell.get((s, n)), n) for n in names), total])
        )
    issues = [r for r in rows if not r.passed and r.status != "not submitted"]
    lines += ["", "not full points:"] + [
        f"  {r.student} / {r.exercise} [{r.status}]: {r.reason.splitlines()[0] if r.reason else ''}"
        for r in issues
    ]
    return "\n".join(lines)

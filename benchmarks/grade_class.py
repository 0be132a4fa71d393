"""Time the grader on a class: N students x the five exercise notebooks, graded in parallel.

    python benchmarks/grade_class.py [--students 30] [--jobs N] [--out benchmarks/results/grade_class.json]

The class: every fifth student hands in the untouched student notebooks (stubs: each check
fails at once, the training check before training), the others the instructor's solutions (every
check passes; notebook 05 trains the add2 warm start for 24 GRPO steps). Each (student, notebook)
runs in its own sandbox (full isolation as root, else basic) with the default limits, ``--jobs``
at a time (default: the cores this process may use). Reports the wall time of the whole class,
the median and max seconds per notebook kind (from the grades CSV: each submission's own wall
time, queueing excluded), the seconds per student (sum of its five), and checks the points.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from grpo_edu.exercises.build import STUDENT_DIR  # noqa: E402
from grpo_edu.exercises.grade import default_jobs, grade  # noqa: E402
from grpo_edu.exercises.hints import NOTEBOOK_DIR  # noqa: E402


def make_class(root: Path, n: int) -> dict[str, str]:
    """``root/<student>/<nb>.ipynb`` for n students; student -> "solutions" or "untouched"."""
    kinds = {}
    for i in range(n):
        student = f"student{i:03d}"
        kind = "untouched" if i % 5 == 4 else "solutions"
        source = STUDENT_DIR if kind == "untouched" else NOTEBOOK_DIR
        (root / student).mkdir(parents=True)
        for path in sorted(source.glob("*.ipynb")):
            shutil.copy(path, root / student / path.name)
        kinds[student] = kind
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/grade_class.json"))
    args = parser.parse_args()
    jobs = args.jobs or default_jobs()
    with tempfile.TemporaryDirectory() as tmp:
        subs = Path(tmp) / "submissions"
        kinds = make_class(subs, args.students)
        t0 = time.perf_counter()
        run = grade(subs, Path(tmp) / "grades.csv", jobs=jobs, seed=0, restart=True)
        wall = time.perf_counter() - t0
    per_notebook, per_student = defaultdict(list), defaultdict(float)
    seen = set()
    for r in run.rows:
        if (r.student, r.notebook) not in seen:
            seen.add((r.student, r.notebook))
            per_notebook[(r.notebook, kinds[r.student])].append(r.seconds)
            per_student[r.student] += r.seconds
    wrong = [
        (r.student, r.exercise, r.status, r.reason[:800])
        for r in run.rows
        if r.passed != (kinds[r.student] == "solutions")
    ]
    result = {
        "students": args.students,
        "submissions": len(seen),
        "jobs": jobs,
        "cores": os.cpu_count(),
        "isolation": run.isolation,
        "isolation_note": run.note,
        "machine": platform.platform(),
        "class_wall_seconds": round(wall, 1),
        "seconds_per_submission_wall": round(wall / len(seen), 2),
        "seconds_per_student_median": round(statistics.median(per_student.values()), 1),
        "per_notebook": {
            f"{nb} ({kind})": {
                "median_s": round(statistics.median(v), 2),
                "max_s": round(max(v), 2),
                "n": len(v),
            }
            for (nb, kind), v in sorted(per_notebook.items())
        },
        "unexpected_verdicts": wrong,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Command line: ``python -m grpo_edu.exercises build|grade ...`` (the only place that prints).

python -m grpo_edu.exercises build [--check] [--with-solutions] [--source DIR] [--out DIR]
python -m grpo_edu.exercises grade SUBMISSIONS_DIR [--out grades.csv] [--jobs N]
        [--timeout S] [--cell-timeout S] [--memory-mb MB] [--notebook NAME ...]
        [--isolation auto|full|basic] [--seed N] [--restart] [--source DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .build import STUDENT_DIR, build, stale
from .hints import NOTEBOOK_DIR


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grpo_edu.exercises",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the student notebooks from the instructor ones")
    b.add_argument("--source", type=Path, default=NOTEBOOK_DIR, help="instructor notebooks")
    b.add_argument("--out", type=Path, default=STUDENT_DIR, help="where student notebooks go")
    b.add_argument("--check", action="store_true", help="write nothing; exit 1 if out of date")
    b.add_argument(
        "--with-solutions",
        action="store_true",
        help="a release whose setup cells call allow_solutions(): show_solution works",
    )
    g = sub.add_parser("grade", help="grade SUBMISSIONS_DIR/<student>/<notebook>.ipynb")
    g.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR")
    g.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV (grades.csv)")
    g.add_argument("--jobs", type=_positive(int), help="submissions at once (default: the cores)")
    g.add_argument("--timeout", type=_positive(float), default=180.0, help="s per notebook (180)")
    g.add_argument("--cell-timeout", type=_positive(float), default=90.0, help="s per cell (90)")
    g.add_argument("--memory-mb", type=_positive(int), default=3072, help="per process (3072)")
    g.add_argument("--notebook", action="append", help="grade only this notebook (repeatable)")
    g.add_argument("--isolation", choices=("auto", "full", "user", "basic"), default="auto")
    g.add_argument("--seed", type=int, help="seed of the hidden tests (default: a fresh one)")
    g.add_argument("--restart", action="store_true", help="grade everything again (new CSV)")
    g.add_argument("--source", type=Path, default=NOTEBOOK_DIR, help="instructor notebooks")
    return parser


def _build(args) -> int:
    if args.check:
        names = stale(args.source, args.out)
        for name in names:
            print(f"out of date: {args.out / name}")
        print(
            "student notebooks are up to date"
            if not names
            else "run: python -m grpo_edu.exercises build"
        )
        return 1 if names else 0
    t0 = time.perf_counter()
    paths = build(args.source, args.out, args.with_solutions)
    solutions = "with solutions" if args.with_solutions else "without solutions"
    print(
        f"wrote {len(paths)} student notebooks ({solutions}) to {args.out} "
        f"in {time.perf_counter() - t0:.2f} s"
    )
    return 0


def _grade(args) -> int:
    from .grade import grade  # torch and the sandbox only when grading
    from .gradebook import summary
    from .sandbox import Limits

    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a directory", file=sys.stderr)
        return 2
    limits = Limits(timeout=args.timeout, cell_timeout=args.cell_timeout, memory_mb=args.memory_mb)

    def progress(rows) -> None:
        r = rows[0]
        points = sum(x.points for x in rows)
        total = sum(x.max_points for x in rows)
        statuses = ", ".join(sorted({x.status for x in rows}))
        print(
            f"{r.student}/{r.notebook}: {points:g}/{total:g} ({statuses}) in {r.seconds:.1f} s",
            file=sys.stderr,
        )

    t0 = time.perf_counter()
    run = grade(
        args.submissions,
        args.out,
        args.source,
        limits,
        args.jobs,
        args.notebook,
        args.isolation,
        args.seed,
        args.restart,
        on_submission=progress,
    )
    if run.note:
        print(f"warning: {run.isolation} isolation only: {run.note}", file=sys.stderr)
    print(summary(run.rows))
    print(
        f"\n{run.graded} submissions graded ({run.isolation} isolation, hidden-test seed "
        f"{run.seed}); {len(run.rows)} rows in {args.out}; {time.perf_counter() - t0:.1f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _build(args) if args.command == "build" else _grade(args)


if __name__ == "__main__":
    sys.exit(main())

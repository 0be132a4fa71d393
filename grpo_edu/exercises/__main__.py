"""Command line: ``python -m grpo_edu.exercises build|grade ...``.

python -m grpo_edu.exercises build [--check] [--hide-solutions] [--source DIR] [--out DIR]
python -m grpo_edu.exercises grade SUBMISSIONS_DIR [--out grades.csv] [--timeout 120]
                                   [--cell-timeout S] [--notebook NAME ...] [--source DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .build import STUDENT_DIR, build, stale
from .hints import NOTEBOOK_DIR


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


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
        "--hide-solutions",
        action="store_true",
        help="student notebooks call hide_solutions(): show_solution prints nothing",
    )
    g = sub.add_parser("grade", help="execute and grade SUBMISSIONS_DIR/<student>/<nb>.ipynb")
    g.add_argument("submissions", type=Path, metavar="SUBMISSIONS_DIR")
    g.add_argument("--out", type=Path, default=Path("grades.csv"), help="CSV (grades.csv)")
    g.add_argument("--timeout", type=_positive, default=120.0, help="seconds per notebook (120)")
    g.add_argument("--cell-timeout", type=_positive, help="seconds per cell (default: --timeout)")
    g.add_argument("--notebook", action="append", help="grade only this notebook (repeatable)")
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
    paths = build(args.source, args.out, args.hide_solutions)
    print(f"wrote {len(paths)} student notebooks to {args.out} in {time.perf_counter() - t0:.2f} s")
    return 0


def _grade(args) -> int:
    from .grade import grade, summary, write_csv  # nbclient only when grading

    if not args.submissions.is_dir():
        print(f"error: {args.submissions} is not a directory", file=sys.stderr)
        return 2

    def progress(student: str, name: str, seconds: float) -> None:
        print(f"graded {student}/{name} in {seconds:.1f} s", file=sys.stderr)

    t0 = time.perf_counter()
    rows = grade(
        args.submissions, args.source, args.timeout, args.cell_timeout, args.notebook, progress
    )
    write_csv(rows, args.out)
    print(summary(rows))
    print(f"\n{len(rows)} rows written to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return _build(args) if args.command == "build" else _grade(args)


if __name__ == "__main__":
    sys.exit(main())

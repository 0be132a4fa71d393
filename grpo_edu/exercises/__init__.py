"""Exercises for instructors: self-checking student notebooks, hints, solutions, a grader.

Student side (in a notebook cell)::

    from grpo_edu.exercises import check_group_advantages, hint, show_solution
    check_group_advantages(group_advantages)   # ✓ one line, or an AssertionError that explains
    hint("group_advantages")                   # the next hint
    show_solution("group_advantages")          # only if the instructor's release allows it

A check compares the student's function with the library's implementation (the reference) on
several cases; on success it shows one line starting with ``✓``; on failure it raises
``ExerciseFailed``, a subclass of ``AssertionError`` (``NotImplementedYet`` for a function that
is still a stub), whose message names the input, the expected and obtained values, and a hint
when the output is that of a typical mistake. In the notebook this is a hint, not a grade:
the student's code could change it.

Instructor side::

    python -m grpo_edu.exercises build [--with-solutions]   # notebooks/exercises -> student/
    python -m grpo_edu.exercises grade SUBMISSIONS_DIR --out grades.csv

The grader (``grade``) runs each submission in its own sandboxed process and judges what
comes back, as data, in the grading process; see ``grade`` and ``sandbox``.
"""

import importlib

from .catalog import CHECK_API, EXERCISES
from .hints import allow_solutions, hide_solutions, hint, show_solution, solutions_visible

_LAZY = {"ExerciseFailed": ".feedback", "NotImplementedYet": ".feedback"}
"""Names imported on first use, with ``CHECK_API`` from ``.checks``: the command line
(``build``, ``grade``) then starts without importing torch."""


def __getattr__(name: str):
    if name in _LAZY or name in CHECK_API:
        module = importlib.import_module(_LAZY.get(name, ".checks"), __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "EXERCISES",
    "ExerciseFailed",
    "NotImplementedYet",
    "allow_solutions",
    "hide_solutions",
    "hint",
    "show_solution",
    "solutions_visible",
    *CHECK_API,
]

"""Exercises for instructors: self-checking student notebooks, hints, solutions, a grader.

Student side (in a notebook cell)::

    from grpo_edu.exercises import check_group_advantages, hint, show_solution
    check_group_advantages(group_advantages)   # ✓ one line, or an AssertionError that explains
    hint("group_advantages")                   # the next hint
    show_solution("group_advantages")          # unless the instructor switched solutions off

Contract of a check: it compares the student's function with the library's implementation (the
reference) on several cases; on success it prints one line starting with ``✓``; on failure it
raises ``ExerciseFailed``, a subclass of ``AssertionError`` (``NotImplementedYet`` for a function
that is still a stub), whose message names the input, the expected and obtained values, and a
hint when the output is that of a typical mistake. Any graded cell that raises fails, so nbgrader
and ``grade`` below both see a failed check as a failed test.

Instructor side::

    python -m grpo_edu.exercises build            # notebooks/exercises/*.ipynb -> student/
    python -m grpo_edu.exercises build --check    # exit 1 if student/ is out of date
    python -m grpo_edu.exercises grade SUBMISSIONS_DIR --out grades.csv --timeout 120

Solutions are switched off with ``GRPO_EDU_HIDE_SOLUTIONS=1`` or ``hide_solutions()`` (see
``hints``). The grader lives in ``grade`` and is imported on demand (it needs nbclient).
"""

import importlib

from .hints import EXERCISES, hide_solutions, hint, show_solution, solutions_visible

_LAZY = {"ExerciseFailed": ".feedback", "NotImplementedYet": ".feedback"}
"""Names imported on first use, with every ``check_*``, ``CHECKS`` and ``TrainingBudget`` from
``.checks``: the command line (``build``, ``grade``) then starts without importing torch."""


def __getattr__(name: str):
    if name in _LAZY or name.startswith("check_") or name in ("CHECKS", "TrainingBudget"):
        module = importlib.import_module(_LAZY.get(name, ".checks"), __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CHECKS",
    "EXERCISES",
    "ExerciseFailed",
    "NotImplementedYet",
    "TrainingBudget",
    "check_clipped_surrogate",
    "check_correctness_reward",
    "check_gae",
    "check_group_advantages",
    "check_grpo_aggregate",
    "check_grpo_loss",
    "check_grpo_training",
    "check_kl_k3",
    "check_parse_answer",
    "check_rloo_advantages",
    "hide_solutions",
    "hint",
    "show_solution",
    "solutions_visible",
]

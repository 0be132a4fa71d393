"""The graded exercise of the reasoning chapter (notebooks/exercises/06_...): the solution passes
the hidden cases, every typical mistake gets its own hint, the stub of the student version fails
as not implemented yet, and the grader's CaseCheck is the notebook's. (tests/test_exercises.py
runs the solutions' test cells and the stubs for every exercise of the catalogue, this one
included.)"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grpo_edu.exercises import EXERCISES, ExerciseFailed, NotImplementedYet
from grpo_edu.exercises.checks import CASE_CHECKS, CHECKS
from grpo_edu.exercises.checks import reasoning as checks
from grpo_edu.exercises.notebook import grade_id

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR = ROOT / "notebooks" / "exercises" / checks.NOTEBOOK
STUDENT = ROOT / "notebooks" / "exercises" / "student" / checks.NOTEBOOK
NAME = "process_advantages"


def _function(path: Path):
    """``process_advantages`` as the notebook's setup and solution cells define it."""
    namespace: dict = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if grade_id(cell) in ("setup", NAME):
            exec(cell.source, namespace)
    return namespace[NAME]


def test_the_exercise_is_in_the_catalogue():
    assert EXERCISES[NAME].notebook == INSTRUCTOR.name and len(EXERCISES[NAME].hints) >= 2
    assert EXERCISES[NAME].reference == "grpo_edu.advantages.process_advantages"
    assert CHECKS[NAME] is checks.check_process_advantages
    assert CASE_CHECKS[NAME] is checks.process_advantages_check


@pytest.mark.parametrize("index", range(len(checks.MISTAKES)))
def test_typical_mistake_gets_its_tailored_hint(index):
    mistake = checks.MISTAKES[index]
    with pytest.raises(ExerciseFailed) as failure:
        checks.check_process_advantages(mistake.fn, quiet=True)
    message = str(failure.value)
    assert not isinstance(failure.value, NotImplementedYet)
    assert mistake.hint in message and "case:" in message and "input:" in message, message


def test_the_mistakes_are_told_apart():
    assert len({m.hint for m in checks.MISTAKES}) == len(checks.MISTAKES) >= 5


def test_solution_passes_the_visible_and_hidden_cases(capsys):
    solution = _function(INSTRUCTOR)
    checks.check_process_advantages(solution)
    checks.check_process_advantages(solution, seed=2024, n_random=40, quiet=True)
    assert capsys.readouterr().out.startswith(f"✓ {NAME}: all 9 cases match")


def test_the_blank_student_notebook_fails_as_not_implemented_yet():
    with pytest.raises(NotImplementedYet, match=f"{NAME} is not implemented yet") as failure:
        checks.check_process_advantages(_function(STUDENT))
    assert f"hint({NAME!r})" in str(failure.value)


def test_the_random_cases_are_deterministic_and_seeded():
    def labels_and_inputs(seed):
        return [(c.label, c.describe()) for c in checks.process_advantages_check(seed, 5).cases]

    assert labels_and_inputs(0) == labels_and_inputs(0) != labels_and_inputs(1)

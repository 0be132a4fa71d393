"""The graded exercise of the unified-paradigm chapter (notebooks/exercises/07_...): every
typical mistake gets its own hint, a detached loss is caught, and the grader's CaseChecks are
the notebook's. (tests/test_exercises.py runs the solutions' test cells and the stubs for every
exercise of the catalogue, these included.)"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grpo_edu.exercises import EXERCISES, ExerciseFailed
from grpo_edu.exercises.checks import CASE_CHECKS, CHECKS
from grpo_edu.exercises.checks import paradigm as checks
from grpo_edu.exercises.notebook import is_test

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR = ROOT / "notebooks" / "exercises" / "07_gradient_coefficients.ipynb"
MISTAKES = {
    "rft_coefficients": checks.RFT_MISTAKES,
    "grpo_coefficients": checks.GRPO_MISTAKES,
    "dpo_loss": checks.DPO_MISTAKES,
}


def _solutions() -> dict:
    namespace: dict = {}
    for cell in nbformat.read(INSTRUCTOR, as_version=4).cells:
        if cell.cell_type == "code" and not is_test(cell):
            exec(cell.source, namespace)
    return {name: namespace[name] for name in MISTAKES}


def test_the_exercises_are_in_the_catalogue():
    for name in MISTAKES:
        assert EXERCISES[name].notebook == INSTRUCTOR.name and len(EXERCISES[name].hints) >= 2
        assert name in CHECKS and name in CASE_CHECKS


@pytest.mark.parametrize(
    "name, index", [(n, i) for n, mistakes in MISTAKES.items() for i in range(len(mistakes))]
)
def test_typical_mistake_gets_its_tailored_hint(name, index):
    mistake = MISTAKES[name][index]
    with pytest.raises(ExerciseFailed) as failure:
        CHECKS[name](mistake.fn, quiet=True)
    assert mistake.hint in str(failure.value), str(failure.value)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_solution_passes_the_hidden_cases(name):
    CHECKS[name](_solutions()[name], seed=2024, n_random=40, quiet=True)


def test_a_detached_dpo_loss_is_caught():
    solution = _solutions()["dpo_loss"]
    with pytest.raises(ExerciseFailed, match="differentiabl"):
        checks.check_dpo_loss(lambda *a: solution(*a).detach(), quiet=True)

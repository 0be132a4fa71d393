"""The graded exercise of the unified-paradigm chapter (notebooks/exercises/07_...): the
solutions pass their test cells (hidden tests included), the stubs fail as not implemented, and
every typical mistake gets its own hint."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grpo_edu.exercises import ExerciseFailed, NotImplementedYet
from grpo_edu.exercises.checks import paradigm as checks
from grpo_edu.exercises.notebook import is_test

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR = ROOT / "notebooks" / "exercises" / checks.NOTEBOOK
STUDENT = ROOT / "notebooks" / "exercises" / "student" / checks.NOTEBOOK
CHECKS = {
    "rft_coefficients": (checks.check_rft_coefficients, checks.RFT_MISTAKES),
    "grpo_coefficients": (checks.check_grpo_coefficients, checks.GRPO_MISTAKES),
    "dpo_loss": (checks.check_dpo_loss, checks.DPO_MISTAKES),
}


def _functions(path: Path) -> dict:
    namespace: dict = {}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code" and not is_test(cell):
            exec(cell.source, namespace)
    return {name: namespace[name] for name in CHECKS}


def test_every_exercise_has_hints_and_a_solution_cell():
    assert set(checks.HINTS) == set(CHECKS)
    assert all(len(h) >= 3 for h in checks.HINTS.values())  # reference + at least 2 hints
    ids = {c.metadata["nbgrader"]["grade_id"] for c in nbformat.read(INSTRUCTOR, 4).cells
           if "nbgrader" in c.metadata}  # fmt: skip
    assert set(CHECKS) | {f"{n}_tests" for n in CHECKS} <= ids


@pytest.mark.parametrize("name", list(CHECKS))
def test_solution_passes_its_test_cell_with_hidden_tests(name, capsys):
    nb = nbformat.read(INSTRUCTOR, as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and not is_test(cell):
            exec(cell.source, namespace)
    (test,) = [
        c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"{name}_tests"
    ]
    exec(test.source, namespace)
    assert capsys.readouterr().out.startswith(f"✓ {name}")


@pytest.mark.parametrize("name", list(CHECKS))
def test_student_stub_fails_with_not_implemented_yet(name):
    check, _ = CHECKS[name]
    with pytest.raises(NotImplementedYet, match="not implemented yet"):
        check(_functions(STUDENT)[name], quiet=True)


@pytest.mark.parametrize(
    "name, index", [(n, i) for n, (_, mistakes) in CHECKS.items() for i in range(len(mistakes))]
)
def test_typical_mistake_gets_its_tailored_hint(name, index):
    check, mistakes = CHECKS[name]
    mistake = mistakes[index]
    with pytest.raises(ExerciseFailed) as failure:
        check(mistake.fn, quiet=True)
    assert mistake.hint in str(failure.value), str(failure.value)


def test_a_detached_dpo_loss_is_caught():
    solution = _functions(INSTRUCTOR)["dpo_loss"]
    with pytest.raises(ExerciseFailed, match="does not depend differentiably"):
        checks.check_dpo_loss(lambda *a: solution(*a).detach(), quiet=True)

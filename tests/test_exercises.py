"""Exercises: solutions pass, stubs say "not implemented yet", typical mistakes get their hint,
the student notebooks are up to date and locked, solutions stay off unless switched on, and the
grader turns fixture submissions into a table.

The fixture submissions (tests/fixtures/submissions/<student>/02_advantages.ipynb) are edits of
the student version of 02_advantages: a correct one, a wrong one (population std, RLOO baseline
with r_i), one that raises and has a syntax error, an infinite loop, a truncated file, and one
that deleted and edited cells. Hostile ones are in test_grading_hostile.py.
"""

import csv
import re
from pathlib import Path

import nbformat
import pytest
import torch

from grpo_edu.exercises import (
    CHECKS,
    EXERCISES,
    ExerciseFailed,
    NotImplementedYet,
    check_grpo_training,
    hint,
    show_solution,
)
from grpo_edu.exercises import hints as hints_module
from grpo_edu.exercises.__main__ import main
from grpo_edu.exercises.build import ALLOW_LINE, STUDENT_DIR, build, instructor_notebooks, stale
from grpo_edu.exercises.hints import NOTEBOOK_DIR, SolutionsHidden, solution_source
from grpo_edu.exercises.notebook import (
    BEGIN_SOLUTION,
    comparable,
    grade_id,
    is_solution,
    is_test,
    nbgrader,
    strip_solution,
)
from grpo_edu.models import CHECKPOINT_DIR

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"


def _functions(directory: Path) -> dict:
    """Exercise name -> the function its solution cell defines (setup and solution cells run;
    not the ungraded cells that use it, such as 06's look at a hand-made group)."""
    functions = {}
    for path in instructor_notebooks():
        nb = nbformat.read(directory / path.name, as_version=4)
        namespace: dict = {}
        for cell in nb.cells:
            if cell.cell_type == "code" and nbgrader(cell) and not is_test(cell):
                exec(cell.source, namespace)
        functions.update({name: namespace[name] for name in EXERCISES if name in namespace})
    return functions


@pytest.fixture(scope="module")
def solutions():
    return _functions(NOTEBOOK_DIR)


@pytest.fixture(scope="module")
def stubs():
    return _functions(STUDENT_DIR)


def test_every_exercise_has_a_check_a_notebook_and_hints(solutions, stubs):
    assert len(EXERCISES) >= 8
    assert set(CHECKS) == set(EXERCISES) == set(solutions) == set(stubs)
    for ex in EXERCISES.values():
        assert (NOTEBOOK_DIR / ex.notebook).exists() and len(ex.hints) >= 2


@pytest.mark.parametrize("name", [n for n in EXERCISES if n != "grpo_loss"])
def test_solution_passes_its_test_cell_with_hidden_tests(name, capsys):
    """Run the instructor notebook's own test cell (visible check + hidden tests)."""
    nb = nbformat.read(NOTEBOOK_DIR / EXERCISES[name].notebook, as_version=4)
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and (not is_test(cell) or grade_id(cell) == f"{name}_tests"):
            exec(cell.source, namespace)
    assert capsys.readouterr().out.startswith(f"✓ {name}: all ")


def test_grpo_loss_solution_passes_the_fast_checks(solutions, capsys):
    CHECKS["grpo_loss"](solutions["grpo_loss"])
    CHECKS["grpo_loss"](solutions["grpo_loss"], seed=2024, n_random=40, quiet=True)
    assert capsys.readouterr().out.startswith("✓ grpo_loss: all ")


@pytest.mark.parametrize("name", list(EXERCISES))
def test_student_stub_fails_with_not_implemented_yet(name, stubs):
    with pytest.raises(NotImplementedYet, match=f"{name} is not implemented yet") as info:
        CHECKS[name](stubs[name])
    assert isinstance(info.value, AssertionError) and f"hint({name!r})" in str(info.value)


def test_training_check_fails_fast_on_the_stub(stubs):
    with pytest.raises(NotImplementedYet, match="not implemented yet"):
        check_grpo_training(stubs["grpo_loss"])


# ------------------------------------------------------------------- typical mistakes
def _grouped(r, G):
    return r.view(-1, G)


def population_std(rewards, G, eps=1e-4):
    g = _grouped(rewards, G)
    return (
        (g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True, unbiased=False) + eps)
    ).flatten()


def no_eps(rewards, G, eps=1e-4):
    g = _grouped(rewards, G)
    return ((g - g.mean(1, keepdim=True)) / g.std(1, keepdim=True)).flatten()


def batch_mean(rewards, G, eps=1e-4):
    return (rewards - rewards.mean()) / (
        _grouped(rewards, G).std(1, keepdim=True).flatten().repeat_interleave(G) + eps
    )


def rloo_with_self(rewards, G):
    g = _grouped(rewards, G)
    return (g - g.mean(1, keepdim=True)).flatten()


def gae_without_mask(token_rewards, values, mask, gamma=1.0, lam=0.95):
    advantages, next_value, next_adv = torch.zeros_like(values), 0.0, 0.0
    for t in reversed(range(values.shape[1])):
        next_adv = token_rewards[:, t] + gamma * next_value - values[:, t] + gamma * lam * next_adv
        advantages[:, t], next_value = next_adv, values[:, t]
    return advantages, advantages + values


def aggregate_without_mask(per_token_loss, mask):
    return per_token_loss.mean(dim=-1).mean()


def aggregate_token_mean(per_token_loss, mask):
    mask = mask.float()
    return (per_token_loss * mask).sum() / mask.sum()


def surrogate_without_minus(logp, old_logp, advantages, clip_eps=0.2):
    ratio, adv = (logp - old_logp).exp(), advantages[:, None]
    return torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)


def surrogate_row_broadcast(logp, old_logp, advantages, clip_eps=0.2):
    ratio = (logp - old_logp).exp()
    return -torch.min(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)


def k3_reversed(logp, ref_logp):
    x = logp - ref_logp
    return x.exp() - x - 1


def parse_with_isdigit(text):
    m = re.match(r" *([+-]?)(\d+)", text or "")  # \d matches every Unicode digit
    return None if m is None or len(m.group(2)) > 18 else int(m.group(1) + m.group(2))


def reward_without_kwargs(prompts, completions, answer):
    return [1.0] * len(completions)


def reward_by_string(prompts, completions, answer, **kwargs):
    return [1.0 if c.strip() == str(a) else 0.0 for c, a in zip(completions, answer, strict=True)]


def grpo_loss_kl_minus(logp, old_logp, ref_logp, advantages, mask, clip_eps=0.2, kl_coef=0.04):
    ratio, adv = (logp - old_logp).exp(), advantages[:, None]
    x = ref_logp - logp
    per_token = -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv) - kl_coef * (
        x.exp() - x - 1
    )
    return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()


MISTAKES = [
    ("group_advantages", population_std, "population std (ddof=0"),
    ("group_advantages", no_eps, "without eps"),
    ("group_advantages", batch_mean, "batch mean"),
    ("rloo_advantages", rloo_with_self, "includes r_i itself"),
    ("gae", gae_without_mask, "you forgot the mask"),
    ("grpo_aggregate", aggregate_without_mask, "you forgot the mask"),
    ("grpo_aggregate", aggregate_token_mean, "token-level mean"),
    ("clipped_surrogate", surrogate_without_minus, "minus the objective"),
    ("clipped_surrogate", surrogate_row_broadcast, "advantages[:, None]"),
    ("kl_k3", k3_reversed, "wrong sign"),
    ("parse_answer", parse_with_isdigit, "only the ASCII digits 0-9 count"),
    ("correctness_reward", reward_without_kwargs, "**kwargs"),
    ("correctness_reward", reward_by_string, "parse_answer"),
    ("grpo_loss", grpo_loss_kl_minus, "the KL term is a penalty"),
]


@pytest.mark.parametrize(
    "name, fn, expected_hint", MISTAKES, ids=[f"{n}-{f.__name__}" for n, f, _ in MISTAKES]
)
def test_typical_mistake_gets_its_tailored_hint(name, fn, expected_hint):
    with pytest.raises(ExerciseFailed) as info:
        CHECKS[name](fn)
    message = str(info.value)
    assert not isinstance(info.value, NotImplementedYet)
    assert expected_hint in message, message
    assert "case:" in message and "input:" in message


def test_message_names_nan_shape_and_dtype_problems():
    def nan_for_tied_groups(rewards, G, eps=1e-4):
        g = _grouped(rewards, G)
        std = g.std(1, keepdim=True)
        return ((g - g.mean(1, keepdim=True)) / torch.where(std > 0, std + eps, std)).flatten()

    def centre_in_place(rewards, G, eps=1e-4):
        g = _grouped(rewards, G)
        g -= g.mean(1, keepdim=True)  # right values, but the caller's rewards are changed
        return (g / (g.std(1, keepdim=True) + eps)).flatten()

    cases = [
        (nan_for_tied_groups, "got NaN or inf at [0, 1, 2, 3] where finite values [0.0]"),
        (lambda r, G, eps=1e-4: population_std(r, G).view(-1, G), "expected (8,), got (2, 4)"),
        (
            lambda r, G, eps=1e-4: population_std(r, G).double(),
            "expected torch.float32, got torch.float64",
        ),
        (centre_in_place, "changed its input `rewards` in place"),
    ]
    for fn, expected in cases:
        with pytest.raises(ExerciseFailed, match=re.escape(expected)):
            CHECKS["group_advantages"](fn)


def test_detached_loss_is_reported():
    def detached(logp, old_logp, advantages, clip_eps=0.2):
        ratio, adv = (logp - old_logp).exp().detach(), advantages[:, None]
        return -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)

    with pytest.raises(ExerciseFailed, match="does not depend differentiably on logp"):
        CHECKS["clipped_surrogate"](detached)


# --------------------------------------------------------------- hints and solutions
def test_hint_is_progressive(capsys, monkeypatch):
    monkeypatch.setattr(hints_module, "_shown", {})
    hint("gae")
    hint("gae")
    out = capsys.readouterr().out
    assert "Hint 1/3 for gae" in out and "Hint 2/3 for gae" in out
    with pytest.raises(ValueError, match="unknown exercise"):
        hint("gea")


def test_solutions_are_off_unless_switched_on(capsys, monkeypatch):
    monkeypatch.delenv(hints_module.SHOW_ENV, raising=False)
    monkeypatch.delenv(hints_module.HIDE_ENV, raising=False)
    monkeypatch.setattr(hints_module, "_allowed", False)
    show_solution("gae")
    assert "switched off" in capsys.readouterr().out
    with pytest.raises(SolutionsHidden):
        solution_source("gae")  # no back door: the helper itself refuses
    hints_module.allow_solutions()  # what a release built --with-solutions calls
    show_solution("gae")
    out = capsys.readouterr().out
    assert "def gae(" in out and "for t in reversed" in out and BEGIN_SOLUTION not in out
    monkeypatch.setenv(hints_module.HIDE_ENV, "1")  # the grader's environment wins
    show_solution("gae")
    assert "switched off" in capsys.readouterr().out
    monkeypatch.delenv(hints_module.HIDE_ENV)
    hints_module.hide_solutions()
    monkeypatch.setenv(hints_module.SHOW_ENV, "1")  # self-study
    assert "def gae(" in solution_source("gae")


# ------------------------------------------------------------------------ notebooks
def test_student_versions_are_up_to_date(tmp_path):
    built = build(out=tmp_path)
    assert [p.name for p in built] == sorted(p.name for p in STUDENT_DIR.glob("*.ipynb"))
    for path in built:
        fresh = comparable(nbformat.read(path, as_version=4))
        committed = comparable(nbformat.read(STUDENT_DIR / path.name, as_version=4))
        assert fresh == committed, f"{path.name} is stale: python -m grpo_edu.exercises build"
    assert stale() == []


def test_notebooks_carry_nbgrader_metadata_locks_and_no_outputs():
    for path in instructor_notebooks():
        instructor = nbformat.read(path, as_version=4)
        student = nbformat.read(STUDENT_DIR / path.name, as_version=4)
        for cell, stub in zip(instructor.cells, student.cells, strict=True):
            assert cell.get("outputs", []) == [] and cell.get("execution_count") is None
            if is_solution(cell):
                head = cell.source.split(BEGIN_SOLUTION)[0]
                assert stub.source.startswith(head)  # signature and docstring kept
                indent = head.split("\n")[-1]
                assert f"\n{indent}raise NotImplementedError()" in stub.source
                assert stub.metadata["deletable"] is False and "editable" not in stub.metadata
            if is_test(cell):
                assert {"grade_id", "points", "schema_version"} <= set(nbgrader(cell))
                assert "HIDDEN TESTS" in cell.source and "HIDDEN" not in stub.source
                assert cell.source.startswith(stub.source)
            if is_test(cell) or nbgrader(cell).get("locked"):  # as nbgrader's release locks them
                assert stub.metadata["editable"] is False and stub.metadata["deletable"] is False
            if not nbgrader(cell):
                assert "editable" not in stub.metadata and "deletable" not in stub.metadata


def test_student_notebooks_carry_no_solution_text():
    for path in instructor_notebooks():
        instructor = nbformat.read(path, as_version=4)
        student = "\n".join(
            c.source for c in nbformat.read(STUDENT_DIR / path.name, as_version=4).cells
        )
        assert "allow_solutions" not in student and "BEGIN SOLUTION" not in student
        for cell in (c for c in instructor.cells if is_solution(c)):
            body = cell.source.split(BEGIN_SOLUTION)[1].split("### END SOLUTION")[0].strip()
            assert body.splitlines()[0].strip() not in student, (path.name, grade_id(cell))


def test_build_can_switch_solutions_on(tmp_path):
    build(out=tmp_path, with_solutions=True)
    nb = nbformat.read(tmp_path / "03_gae.ipynb", as_version=4)
    setup = next(c for c in nb.cells if grade_id(c) == "setup")
    assert setup.source.endswith(ALLOW_LINE)


def test_unbalanced_solution_markers_are_an_error():
    with pytest.raises(ValueError, match="never closed"):
        strip_solution("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    assert strip_solution(
        "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"
    ) == ("def f():\n    # YOUR CODE HERE\n    raise NotImplementedError()")


# --------------------------------------------------------------------------- grader
EXPECTED = {  # (student, exercise) -> (status, points, substring of the reason)
    ("alice_correct", "group_advantages"): ("graded", 1.0, ""),
    ("alice_correct", "rloo_advantages"): ("graded", 1.0, ""),
    ("bob_wrong", "group_advantages"): ("graded", 0.0, "population std (ddof=0"),
    ("bob_wrong", "rloo_advantages"): ("graded", 0.0, "includes r_i itself"),
    ("carol_raises", "group_advantages"): ("graded", 0.0, "group_advantages raised IndexError"),
    ("carol_raises", "rloo_advantages"): ("graded", 0.0, "solution cell: SyntaxError"),
    ("dave_loops", "group_advantages"): ("graded", 0.0, "did not finish within"),
    ("dave_loops", "rloo_advantages"): ("graded", 1.0, ""),
    ("erin_malformed", "group_advantages"): ("unreadable", 0.0, "could not read the notebook"),
    ("erin_malformed", "rloo_advantages"): ("unreadable", 0.0, "could not read the notebook"),
    ("frank_deleted_cells", "group_advantages"): ("graded", 1.0, ""),  # setup and check restored
    ("frank_deleted_cells", "rloo_advantages"): (
        "graded",
        0.0,
        "'rloo_advantages_tests' was deleted",
    ),
}


def _table(path: Path) -> dict:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {(r["student"], r["exercise"]): r for r in rows}


def test_grader_on_fixture_submissions(tmp_path, capsys):
    out = tmp_path / "grades.csv"
    argv = ["grade", str(FIXTURES), "--out", str(out), "--timeout", "60", "--cell-timeout", "5"]
    assert main(argv) == 0
    header = out.read_text().splitlines()[0]
    assert header == "student,notebook,exercise,status,points,max_points,reason,seconds"
    assert oct(out.stat().st_mode & 0o777) == "0o600"  # grades are the instructor's to read
    table = _table(out)
    assert set(table) == set(EXPECTED)
    for key, (status, points, fragment) in EXPECTED.items():
        row = table[key]
        assert (row["status"], float(row["points"])) == (status, points), (key, row)
        assert fragment in row["reason"] and float(row["max_points"]) == 1.0, (key, row)
    summary = capsys.readouterr().out
    assert "alice_correct" in summary and "2/2" in summary and "submissions graded" in summary


def test_grader_resumes_and_keeps_what_it_graded(tmp_path):
    from grpo_edu.exercises.grade import grade

    out = tmp_path / "grades.csv"
    subs = tmp_path / "subs"
    for name in ("alice_correct", "erin_malformed"):
        (subs / name).mkdir(parents=True)
        (subs / name / "02_advantages.ipynb").write_bytes(
            (FIXTURES / name / "02_advantages.ipynb").read_bytes()
        )
    first = grade(subs, out, jobs=1)
    assert first.graded == 2
    alice = [r for r in _table(out).values() if r["student"] == "alice_correct"]
    lines = out.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith("erin")]
    out.write_text("".join(kept) + "erin_malformed,02_advantages.ipyn")  # interrupted mid-row
    again = grade(subs, out, jobs=1)
    assert again.graded == 1  # only erin, whose row was cut; alice's rows are kept as they were
    table = _table(out)
    assert (
        len(table) == 4 and [r for r in table.values() if r["student"] == "alice_correct"] == alice
    )


def test_points_come_from_nbgrader_metadata():
    from grpo_edu.exercises.prepare import Assignment

    nb = nbformat.read(NOTEBOOK_DIR / "05_grpo_step.ipynb", as_version=4)
    assert Assignment("05_grpo_step.ipynb", nb).points == {"grpo_loss": 2.0}


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHECKPOINT_DIR / "add2" / "model.safetensors").exists(), reason="no add2 warm start"
)
def test_grpo_training_check_passes_with_the_solution(solutions, capsys):
    stats = check_grpo_training(solutions["grpo_loss"])
    assert stats["after"] > stats["before"]
    assert capsys.readouterr().out.startswith("✓ grpo_loss: the policy improved")

"""The exercises, their hints, and the solution reveal that instructors can switch off.

``hint("gae")`` prints the next hint of an exercise (``hint("gae", 2)`` a given one);
``show_solution("gae")`` prints the instructor's solution cell, read from the instructor
notebook in ``notebooks/exercises/``, or the library's reference source when that notebook is
not there (a pip-installed package).

Switching solutions off: set the environment variable ``GRPO_EDU_HIDE_SOLUTIONS=1`` (before
Jupyter starts, or in the grading environment), or call ``hide_solutions()`` in a notebook
(``python -m grpo_edu.exercises build --hide-solutions`` writes that call into every student
notebook). This is a courtesy switch, not a lock: the library's source is the reference.
"""

from __future__ import annotations

import importlib
import inspect
import os
from dataclasses import dataclass
from pathlib import Path

from .notebook import grade_id, solution_code

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks" / "exercises"
"""The instructor notebooks (a checkout of the repository)."""
HIDE_ENV = "GRPO_EDU_HIDE_SOLUTIONS"


@dataclass(frozen=True)
class Exercise:
    name: str
    """Also the student's function name and the grade_id of its solution cell."""
    notebook: str
    """Instructor notebook file in ``notebooks/exercises``."""
    reference: str
    """Dotted path of the library function the check compares with."""
    hints: tuple[str, ...]


def _ex(name, notebook, reference, *hints) -> Exercise:
    return Exercise(name, notebook, reference, hints)


EXERCISES = {
    e.name: e
    for e in [
        _ex(
            "parse_answer",
            "01_rewards.ipynb",
            "grpo_edu.tasks.parse_answer",
            "A regular expression anchored at the start does most of the work: re.match, not re.search.",
            "Pattern: spaces, an optional sign, then ASCII digits: r'[ ]*([+-]?)([0-9]+)'. "
            "\\d would also match non-ASCII digits.",
            "After the match, refuse runs longer than MAX_ANSWER_DIGITS and a run followed directly by "
            "another digit character (text[m.end():m.end()+1].isdigit()).",
        ),
        _ex(
            "correctness_reward",
            "01_rewards.ipynb",
            "grpo_edu.rewards.correctness_reward",
            "One float per completion: 1.0 if parse_answer(completion) == answer, else 0.0.",
            "TRL passes keyword arguments only, including columns you do not use: keep **kwargs.",
            "zip(completions, answer) pairs each completion with its own answer.",
        ),
        _ex(
            "group_advantages",
            "02_advantages.ipynb",
            "grpo_edu.advantages.group_advantages",
            "The batch is prompt-major: rewards.view(-1, group_size) puts each group on one row.",
            "Mean and std along dim=1, keepdim=True, so they broadcast back over the group. "
            "torch.std is unbiased (ddof=1) by default, which is what GRPO uses here.",
            "An all-equal group has std 0: dividing by (std + eps) keeps its advantages at 0. "
            "Return a (B,) tensor: .flatten() at the end.",
        ),
        _ex(
            "rloo_advantages",
            "02_advantages.ipynb",
            "grpo_edu.advantages.rloo_advantages",
            "Leave-one-out: the baseline of answer i is the mean of the OTHER G - 1 rewards of its group.",
            "The sum of the others is the group sum minus r_i: (grouped.sum(1, keepdim=True) - grouped).",
            "Equivalently A_i = G / (G - 1) * (r_i - group mean). No std.",
        ),
        _ex(
            "gae",
            "03_gae.ipynb",
            "grpo_edu.advantages.gae",
            "Loop backwards over t, carrying V_{t+1} and A_{t+1} (both 0 after the last token).",
            "delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}.",
            "Multiply values by the mask first (padding has no value) and A_t by mask[:, t]; "
            "returns = (A + V) * mask.",
        ),
        _ex(
            "clipped_surrogate",
            "04_losses.ipynb",
            "grpo_edu.losses.clipped_surrogate",
            "ratio = (logp - old_logp).exp(), shape (B, T); advantages[:, None] is (B, 1).",
            "The objective is min(r A, clip(r, 1 - eps, 1 + eps) A); the loss is its negative.",
            "Check case by case: A > 0 and r > 1 + eps gives the constant (1 + eps) A, so no gradient.",
        ),
        _ex(
            "kl_k3",
            "04_losses.ipynb",
            "grpo_edu.losses.kl_penalty",
            "x = ref_logp - logp = log(pi_ref / pi), per token.",
            "k3 = exp(x) - x - 1: always >= 0, exactly 0 where the policies agree.",
        ),
        _ex(
            "grpo_aggregate",
            "04_losses.ipynb",
            "grpo_edu.losses.aggregate",
            "Per row: sum over real tokens / number of real tokens; then the mean over rows.",
            "mask = mask.to(per_token_loss.dtype); count = mask.sum(-1).clamp(min=1) avoids 0 / 0.",
        ),
        _ex(
            "grpo_loss",
            "05_grpo_step.ipynb",
            "grpo_edu.losses.policy_loss",
            "Per token: -min(r A, clip(r) A) + kl_coef * k3, with A broadcast as advantages[:, None].",
            "Then the GRPO aggregation: masked mean per sequence, mean over sequences.",
            "It is your clipped_surrogate, kl_k3 and grpo_aggregate from notebook 04, in one function.",
        ),
    ]
}
"""Every exercise, by name."""

_shown: dict[str, int] = {}
_hidden = False


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; valid names: {', '.join(EXERCISES)}")
    return EXERCISES[name]


def hint(exercise: str, n: int | None = None) -> None:
    """Print hint ``n`` (from 1) of ``exercise``, or the next one not yet shown."""
    hints = _exercise(exercise).hints
    n = _shown.get(exercise, 0) + 1 if n is None else n
    if not 1 <= n <= len(hints):
        print(
            f"No hint {n} for {exercise} (it has {len(hints)}). show_solution({exercise!r}) "
            f"shows the solution, if your instructor allows it."
        )
        return
    _shown[exercise] = max(n, _shown.get(exercise, 0))
    print(f"Hint {n}/{len(hints)} for {exercise}: {hints[n - 1]}")


def hide_solutions() -> None:
    """Switch ``show_solution`` off for this Python process."""
    global _hidden
    _hidden = True


def solutions_visible() -> bool:
    """False when ``hide_solutions()`` was called or ``GRPO_EDU_HIDE_SOLUTIONS`` is set (not 0)."""
    env = os.environ.get(HIDE_ENV, "").strip().lower()
    return not _hidden and env in ("", "0", "false", "no")


def solution_source(exercise: str, notebook_dir: Path = NOTEBOOK_DIR) -> str:
    """The instructor's solution cell (markers removed), or the library reference's source."""
    ex = _exercise(exercise)
    path = Path(notebook_dir) / ex.notebook
    if path.exists():
        import nbformat  # slow to import (jsonschema): only when a solution is shown

        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if grade_id(cell) == exercise:
                return solution_code(cell.source)
    module, name = ex.reference.rsplit(".", 1)
    return inspect.getsource(getattr(importlib.import_module(module), name))


def show_solution(exercise: str) -> None:
    """Print the solution of ``exercise`` unless the instructor switched solutions off."""
    if not solutions_visible():
        print(
            f"Solutions are switched off for this course ({exercise}). "
            f"Try hint({exercise!r}) or ask your instructor."
        )
        return
    print(solution_source(exercise))

"""Check of the process-supervision exercise: DeepSeekMath's per-step advantages (sec. 4.1.3).

    check_process_advantages   A_i,t = sum over steps j ending at or after t of
                               (r_i^index(j) - mean R) / (std R + eps),  R: the group's steps  (B, T)

A ``CaseCheck`` (``process_advantages_check(seed, n_random)``: the cases, the library's
reference ``grpo_edu.advantages.process_advantages``, the mistake catalogue; the grader judges
it) and the notebook function ``check_process_advantages(fn)`` that observes and judges in one
process. A typical mistake (per-answer normalisation, population std, a forward sum, mean and
std over every token, no sum at all) gets its own hint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..feedback import Case, Mistake
from ..judge import CaseCheck, run_check

NOTEBOOK = "06_process_advantages.ipynb"
"""The instructor notebook of this exercise (``notebooks/exercises/``)."""


def _reference(step_rewards, step_mask, group_size):
    """``grpo_edu.advantages.process_advantages``, imported when a check runs (as in
    ``paradigm``): importing ``grpo_edu.exercises.checks`` loads no library stage for it."""
    from grpo_edu.advantages import process_advantages

    return process_advantages(step_rewards, step_mask, group_size)


def _steps(rows: list[dict[int, float]], T: int) -> dict:
    """``step_rewards`` and ``step_mask``, (B, T), from one {end_token: reward} dict per row."""
    rewards = torch.zeros(len(rows), T)  # (B, T)
    mask = torch.zeros(len(rows), T, dtype=torch.bool)  # (B, T)
    for i, row in enumerate(rows):
        for t, r in row.items():
            rewards[i, t], mask[i, t] = r, True
    return {"step_rewards": rewards, "step_mask": mask}


_CASES = [
    Case(
        "one group of 2: a right scratchpad of 2 steps, a wrong direct answer",
        {**_steps([{1: 1.0, 3: 1.0}, {2: 0.0}], T=4), "group_size": 2},
        "the mean and std are over the 3 steps of the group (R = {1, 1, 0}), not per completion; "
        "an early token collects every step that ends at or after it.",
    ),
    Case(
        "a scratchpad whose second step is wrong, in a group of 3",
        {**_steps([{2: 1.0, 5: 0.0, 7: 0.0}, {1: 1.0}, {3: 1.0, 6: 1.0}], T=8), "group_size": 3},
    ),
    Case(
        "two groups: the first all right (no signal: exactly 0), the second mixed",
        {**_steps([{0: 1.0, 2: 1.0}, {1: 1.0}, {2: 1.0}, {0: 0.0}], T=3), "group_size": 2},
        "a group whose step rewards are all equal has std 0: its advantages must be exactly 0, "
        "not NaN.",
    ),
    Case(
        "one step per completion at its last token: outcome supervision in disguise",
        {**_steps([{2: 1.0}, {0: 0.0}, {3: 0.0}, {1: 1.0}], T=4), "group_size": 4},
        "with one step per answer, every token of answer i up to its step gets the group "
        "z-score of r_i.",
    ),
]


def _random_cases(seed: int, n: int) -> list[Case]:
    """Groups of 2 to 5 answers, 1 to 3 prompts, 3 to 8 tokens; 0/1 step rewards."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n):
        G, n_prompts, T = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((2, 6), (1, 4), (3, 9)))  # fmt: skip
        rows = []
        for _ in range(G * n_prompts):
            k = int(torch.randint(1, T + 1, (1,), generator=g))  # steps of this completion
            ends = sorted(torch.randperm(T, generator=g)[:k].tolist())
            rows.append({t: float(torch.randint(0, 2, (1,), generator=g)) for t in ends})
        cases.append(
            Case(f"random steps #{i} (G={G}, T={T})", {**_steps(rows, T), "group_size": G})
        )
    return cases


# ------------------------------------------------------------------------- typical mistakes
def _normed(step_rewards, step_mask, group_size, ddof=1, eps=1e-4, per_row=False, dense=False):
    """Normalised step rewards (B, T), 0 where no step ends; the flags make the mistakes:
    ``per_row`` normalises each answer alone, ``dense`` counts every token as a step."""
    B, T = step_rewards.shape
    m = torch.ones_like(step_rewards) if dense else step_mask.float()  # (B, T)
    width = T if per_row else group_size * T
    r, mg = step_rewards.reshape(-1, width), m.reshape(-1, width)  # (groups, width)
    count = mg.sum(-1, keepdim=True)
    mean = (r * mg).sum(-1, keepdim=True) / count
    var = (((r - mean) * mg) ** 2).sum(-1, keepdim=True) / (count - ddof).clamp(min=1)
    normed = (r - mean) / (var.sqrt() + eps) * step_mask.float().reshape(-1, width)
    return normed.reshape(B, T)


def _suffix_sum(x):
    return x.flip(-1).cumsum(-1).flip(-1)  # sum over t' >= t  (B, T)


MISTAKES = [
    Mistake(
        lambda r, m, G: _suffix_sum(_normed(r, m, G, per_row=True)),
        "you normalised each completion's steps on their own; DeepSeekMath normalises every step "
        "reward with the mean and std of *all the steps of the whole group* (G completions).",
    ),
    Mistake(
        lambda r, m, G: _suffix_sum(_normed(r, m, G, ddof=0)),
        "this is the population std (ddof=0); use the unbiased std of the group's step rewards "
        "(ddof=1), as the library's group_advantages does.",
    ),
    Mistake(
        lambda r, m, G: _normed(r, m, G).cumsum(-1),
        "you summed the steps ending at or *before* each token; a token's advantage is the sum "
        "over the steps that end at or *after* it (what it led to): a reversed cumulative sum.",
    ),
    Mistake(
        lambda r, m, G: _suffix_sum(_normed(r, m, G, dense=True)),
        "your mean and std include the positions where no step ends (zeros of step_rewards); "
        "only the steps (step_mask True) are the group's step rewards.",
    ),
    Mistake(
        lambda r, m, G: _normed(r, m, G),
        "you return each step's normalised reward at its end token only; every token earns the "
        "sum of the normalised rewards of the steps that end at or after it.",
    ),
]


def process_advantages_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    cases = _CASES + _random_cases(seed, n_random)
    return CaseCheck("process_advantages", cases, _reference, MISTAKES)


def check_process_advantages(
    fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False
) -> None:
    """Compare your ``process_advantages(step_rewards, step_mask, group_size)`` -> (B, T).

    Reference: ``grpo_edu.advantages.process_advantages`` (ddof=1, eps=1e-4 added to the std, a
    group of equal step rewards exactly 0). Hand-made cases, then ``n_random`` random ones.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(process_advantages_check(seed, n_random), fn, quiet)


__all__ = ["check_process_advantages", "process_advantages_check"]

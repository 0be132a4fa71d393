"""Checks of the advantage exercises: GRPO group advantages, RLOO and GAE."""

from __future__ import annotations

from collections.abc import Callable

import torch

from grpo_edu import advantages as lib

from ..feedback import Case, Mistake
from ..judge import CaseCheck, run_check


def _t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)


def _random_rewards(seed: int, n: int) -> list[Case]:
    """Rewards in {0, 0.5, 1, 1.5} (exact in float32) for a few group sizes and groups."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(n):
        G = int(torch.randint(2, 9, (1,), generator=g))
        n_prompts = int(torch.randint(1, 5, (1,), generator=g))
        rewards = torch.randint(0, 4, (n_prompts * G,), generator=g).float() / 2  # (B,)
        cases.append(Case(f"random rewards #{i} (G={G})", {"rewards": rewards, "group_size": G}))
    return cases


_REWARD_CASES = [
    Case(
        "two groups of 4 (prompt-major: rows 0-3 are prompt 0)",
        {"rewards": _t(1, 0, 0, 0, 1, 1, 0, 0), "group_size": 4},
    ),
    Case("one group of 3 with partial credit", {"rewards": _t(0.5, 1.0, 0.0), "group_size": 3}),
    Case(
        "an all-equal group: no signal, advantage exactly 0",
        {"rewards": _t(1, 1, 1, 1, 0, 1, 0, 1), "group_size": 4},
        "a group whose rewards are all equal has std 0: its advantages must be exactly 0, "
        "not NaN (add eps to the std before dividing).",
    ),
    Case("groups of 2, all-zero group first", {"rewards": _t(0, 0, 1, 0, 2, 2), "group_size": 2}),
]


def _grouped(rewards, group_size):
    return rewards.view(-1, group_size)  # (n_prompts, G)


def _zscore(rewards, group_size, ddof=1, eps=1e-4, batch_mean=False, batch_std=False):
    grouped = _grouped(rewards, group_size)
    mean = rewards.mean() if batch_mean else grouped.mean(1, keepdim=True)
    std = (
        rewards.std(correction=ddof) if batch_std else grouped.std(1, keepdim=True, correction=ddof)
    )
    return ((grouped - mean) / (std + eps)).flatten()


GROUP_MISTAKES = [
    Mistake(
        lambda r, G, eps=1e-4: _zscore(r, G, ddof=0, eps=eps),
        "this is what the population std (ddof=0, divide by G) gives. GRPO here uses the "
        "unbiased group std (ddof=1, divide by G - 1): torch.std's default, as TRL.",
    ),
    Mistake(
        lambda r, G, eps=1e-4: _zscore(r, G, eps=0.0),
        "you divide by the std without eps: an all-equal group has std 0 and 0 / 0 = NaN. "
        "Divide by (std + eps); such a group must get advantage 0.",
    ),
    Mistake(
        lambda r, G, eps=1e-4: _zscore(r, G, eps=eps, batch_mean=True),
        "you subtract the batch mean; GRPO compares each reward with the mean of its own "
        "group (the G answers to the same prompt): rewards.view(-1, G).mean(dim=1).",
    ),
    Mistake(
        lambda r, G, eps=1e-4: _zscore(r, G, eps=eps, batch_mean=True, batch_std=True),
        "you z-scored over the whole batch; GRPO normalises within each group of G answers "
        "to one prompt: rewards.view(-1, G), then mean and std over dim=1.",
    ),
    Mistake(
        lambda r, G, eps=1e-4: (
            _zscore(r.view(G, -1).T.flatten(), G, eps=eps).view(-1, G).T.flatten()
        ),
        "your groups are columns: the batch is prompt-major (p0g0, p0g1, ..., p1g0, ...), "
        "so the groups are rewards.view(-1, G), one group per row, not view(G, -1).",
    ),
    Mistake(
        lambda r, G, eps=1e-4: (_grouped(r, G) - _grouped(r, G).mean(1, keepdim=True)).flatten(),
        "you subtract the group mean but do not divide by the group std (that is Dr. GRPO's "
        "scale='none'); GRPO's advantage is a z-score: / (std + eps).",
    ),
]


def group_advantages_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    cases = _REWARD_CASES + _random_rewards(seed, n_random)
    return CaseCheck("group_advantages", cases, lib.group_advantages, GROUP_MISTAKES, _VIEW_ERRORS)


def check_group_advantages(
    fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False
) -> None:
    """Compare your ``group_advantages(rewards, group_size)`` with the library's defaults.

    Reference: ``grpo_edu.advantages.group_advantages(rewards, group_size)`` (group std with
    ddof=1, eps=1e-4 added to the std, all-equal groups exactly 0). Hand-made cases, then
    ``n_random`` random batches drawn with ``seed``.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(group_advantages_check(seed, n_random), fn, quiet)


_VIEW_ERRORS = [
    (
        "invalid for input of size",
        "reshape with rewards.view(-1, group_size): "
        "n_prompts rows of G rewards each (prompt-major layout).",
    )
]


def _loo(rewards, G, divide_by):
    grouped = _grouped(rewards, G)
    return (grouped - (grouped.sum(1, keepdim=True) - grouped) / divide_by).flatten()


RLOO_MISTAKES = [
    Mistake(
        lambda r, G: (_grouped(r, G) - _grouped(r, G).mean(1, keepdim=True)).flatten(),
        "your baseline includes r_i itself (the plain group mean); leave it out: the "
        "baseline of answer i is the mean of the other G - 1 rewards of its group.",
    ),
    Mistake(
        lambda r, G: _loo(r, G, G), "you divide the sum of the others by G; there are G - 1 others."
    ),
    Mistake(
        lambda r, G: r - (r.sum() - r) / (len(r) - 1),
        "your baseline leaves one out of the whole batch; leave one out of the group "
        "(rewards.view(-1, G)): only answers to the same prompt are comparable.",
    ),
    Mistake(
        lambda r, G: lib.group_advantages(r, G),
        "that is GRPO's z-score; RLOO does not divide by a std: A_i = r_i - mean_{j!=i} r_j.",
    ),
]


def rloo_advantages_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    cases = _REWARD_CASES + _random_rewards(seed, n_random)
    return CaseCheck("rloo_advantages", cases, lib.rloo_advantages, RLOO_MISTAKES, _VIEW_ERRORS)


def check_rloo_advantages(
    fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False
) -> None:
    """Compare your ``rloo_advantages(rewards, group_size)`` with the library's."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(rloo_advantages_check(seed, n_random), fn, quiet)


# ------------------------------------------------------------------------------------ GAE
def _mask(lengths: list[int], T: int) -> torch.Tensor:
    return (torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]).float()  # (B, T)


def _gae_case(label, lengths, T, gamma, lam, seed, hint=None) -> Case:
    g = torch.Generator().manual_seed(seed)
    mask = _mask(lengths, T)  # (B, T), right-padded
    B = len(lengths)
    token_rewards = (torch.randn(B, T, generator=g) * 0.1).round(decimals=2) * mask  # (B, T)
    last = torch.tensor(lengths) - 1
    token_rewards[torch.arange(B), last.clamp(min=0)] += torch.tensor([1.0, 0.0, 1.0, 0.5])[:B]
    values = torch.rand(B, T, generator=g).round(decimals=2)  # (B, T): garbage on padding too
    args = {
        "token_rewards": token_rewards,
        "values": values,
        "mask": mask,
        "gamma": gamma,
        "lam": lam,
    }
    return Case(label, args, hint)


def _gae_no_mask(token_rewards, values, mask, gamma, lam):
    return lib.gae(token_rewards, values, torch.ones_like(mask), gamma, lam)


def _gae_returns_without_values(token_rewards, values, mask, gamma, lam):
    advantages, _ = lib.gae(token_rewards, values, mask, gamma, lam)
    return advantages, advantages


def _gae_no_gamma_in_trace(token_rewards, values, mask, gamma, lam):
    return lib.gae(token_rewards, values, mask, gamma, lam / gamma if gamma else lam)


GAE_MISTAKES = [
    Mistake(
        _gae_no_mask,
        "you forgot the mask: the episode ends at a row's last real token, "
        "so V_{t+1} there is 0 (values on padding are garbage, zero them with values * mask) "
        "and advantages and returns are 0 on padding.",
    ),
    Mistake(_gae_returns_without_values, "returns are the critic's targets: R_t = A_t + V_t."),
    Mistake(
        _gae_no_gamma_in_trace,
        "the recursion is A_t = delta_t + gamma * lam * A_{t+1}: "
        "the trace decays by gamma * lam, not lam alone.",
    ),
]


def gae_check(seed: int = 0, n_random: int = 4) -> CaseCheck:
    cases = [
        _gae_case("one row, no padding, gamma=1", [4], 4, 1.0, 0.95, 0),
        _gae_case("lam=1: A_t = (sum of future rewards) - V_t", [3, 3], 3, 1.0, 1.0, 1),
        _gae_case("lam=0: A_t = delta_t (one-step TD error)", [3, 2], 3, 1.0, 0.0, 2),
        _gae_case(
            "right-padded rows of lengths 5, 2, 3",
            [5, 2, 3],
            5,
            1.0,
            0.95,
            3,
            "values after a row's last real token must not be used: mask them.",
        ),
        _gae_case("gamma=0.9, lam=0.8, padded", [4, 1, 2, 4], 4, 0.9, 0.8, 4),
    ]
    g = torch.Generator().manual_seed(seed)
    for i in range(n_random):
        T = int(torch.randint(1, 7, (1,), generator=g))
        lengths = torch.randint(
            1, T + 1, (int(torch.randint(1, 5, (1,), generator=g)),), generator=g
        ).tolist()
        gamma, lam = [1.0, 0.99, 0.9][i % 3], [0.95, 0.9, 1.0, 0.5][i % 4]
        cases.append(_gae_case(f"random rows #{i}", lengths, T, gamma, lam, seed * 100 + i))
    return CaseCheck("gae", cases, lib.gae, GAE_MISTAKES, names=("advantages", "returns"))


def check_gae(fn: Callable, *, seed: int = 0, n_random: int = 4, quiet: bool = False) -> None:
    """Compare your ``gae(token_rewards, values, mask, gamma, lam) -> (advantages, returns)``.

    Reference: ``grpo_edu.advantages.gae``. The inputs hold nonzero values on the padding, as
    real critic outputs do, so a forgotten mask shows.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(gae_check(seed, n_random), fn, quiet)

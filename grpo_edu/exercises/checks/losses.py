"""Checks of the loss exercises: clipped surrogate, k3 KL estimator, GRPO aggregation.

Besides the values, a loss must have the right gradient: these checks also compare the gradient
of the student's output with the reference's (clipping must zero it exactly where it should).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grpo_edu import losses as lib

from ..feedback import Case, Mistake
from ..judge import CaseCheck, run_check


def random_logps(B: int, T: int, g: torch.Generator, spread: float = 0.4):
    """(logp, old_logp): log-probs of sampled tokens and a nearby policy's, both (B, T)."""
    old_logp = -torch.rand(B, T, generator=g) * 2 - 0.05  # (B, T) in (-2.05, -0.05)
    logp = old_logp + torch.randn(B, T, generator=g) * spread  # (B, T)
    return logp, old_logp


# ------------------------------------------------------------------------ clipped surrogate
def _surrogate_ref(logp, old_logp, advantages, clip_eps=0.2):
    return lib.clipped_surrogate(logp, old_logp, advantages, torch.ones_like(logp), clip_eps)[0]


def _surrogate(logp, old_logp, advantages, clip_eps, ratio=None, reduce=torch.min, sign=-1.0):
    ratio = (logp - old_logp).exp() if ratio is None else ratio  # r_t
    adv = advantages[:, None]  # (B, 1)
    return sign * reduce(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)


SURROGATE_MISTAKES = [
    Mistake(
        lambda lp, olp, a, e=0.2: _surrogate(lp, olp, a, e, sign=1.0),
        "the loss is minus the objective (the optimizer minimises): "
        "loss_t = -min(r_t A, clip(r_t) A).",
    ),
    Mistake(
        lambda lp, olp, a, e=0.2: _surrogate(lp, olp, a, e, reduce=torch.max),
        "PPO takes the pessimistic bound, the min of the two objectives, so -min(...) "
        "(or equivalently max of the two losses -r A, -clip(r) A); you took the other one.",
    ),
    Mistake(
        lambda lp, olp, a, e=0.2: _surrogate(lp, olp, a, e, ratio=lp / olp),
        "r_t = pi / pi_old = exp(logp - old_logp): log-probs subtract, they do not divide.",
    ),
    Mistake(
        lambda lp, olp, a, e=0.2: _surrogate(lp, olp, a, e, ratio=lp - olp),
        "logp - old_logp is log r_t; the ratio is its exp: r_t = (logp - old_logp).exp().",
    ),
    Mistake(
        lambda lp, olp, a, e=0.2: -(lp - olp).exp().clamp(1 - e, 1 + e) * a[:, None],
        "the clipped term alone is not enough: take -min(r A, clip(r) A) so that a ratio "
        "that moved the wrong way is not clipped.",
    ),
    Mistake(
        lambda lp, olp, a, e=0.2: (
            -torch.min((lp - olp).exp() * a, (lp - olp).exp().clamp(1 - e, 1 + e) * a)
        ),
        "advantages has shape (B,), one per completion; logp is (B, T). advantages * ratio "
        "broadcasts it over the token axis; use advantages[:, None] (shape (B, 1)).",
    ),
]


def _surrogate_cases(seed: int, n_random: int) -> list[Case]:
    eps = 0.2
    old = torch.log(torch.full((4, 3), 0.5))  # (B, T), pi_old = 0.5 for every token
    ratios = torch.tensor([[1.5, 1.1, 0.5], [1.5, 1.1, 0.5], [1.0, 0.9, 1.3], [0.7, 1.25, 1.0]])
    hand = {
        "logp": old + ratios.log(),
        "old_logp": old,
        "advantages": torch.tensor([1.0, -1.0, 2.0, -0.5]),
        "clip_eps": eps,
    }
    cases = [
        Case("every clip region (A > 0 and A < 0; r above, inside and below [0.8, 1.2])", hand),
        Case(
            "r = 1 everywhere (before the first update)",
            {
                "logp": old,
                "old_logp": old,
                "advantages": torch.tensor([1.0, -1.0, 0.0, 3.0]),
                "clip_eps": eps,
            },
        ),
    ]
    g = torch.Generator().manual_seed(seed)
    lp, olp = random_logps(4, 4, g)
    cases.append(
        Case(
            "B == T (4 x 4): advantages must broadcast over tokens, not rows",
            {
                "logp": lp,
                "old_logp": olp,
                "advantages": torch.randn(4, generator=g),
                "clip_eps": 0.1,
            },
        )
    )
    for i in range(n_random):
        B, T = (int(x) for x in torch.randint(1, 7, (2,), generator=g))
        lp, olp = random_logps(B, T, g)
        args = {
            "logp": lp,
            "old_logp": olp,
            "advantages": torch.randn(B, generator=g),
            "clip_eps": [0.1, 0.2, 0.3][i % 3],
        }
        cases.append(Case(f"random (B={B}, T={T}) #{i}", args))
    return cases


BROADCAST = [
    (
        "must match the size",
        "advantages has shape (B,) and logp (B, T): use "
        "advantages[:, None] to broadcast one advantage over a completion's tokens.",
    )
]


def clipped_surrogate_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    cases = _surrogate_cases(seed, n_random)
    return CaseCheck(
        "clipped_surrogate", cases, _surrogate_ref, SURROGATE_MISTAKES, BROADCAST, wrt="logp"
    )


def check_clipped_surrogate(
    fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False
) -> None:
    """Compare your ``clipped_surrogate(logp, old_logp, advantages, clip_eps)`` -> (B, T) loss.

    Reference: ``grpo_edu.losses.clipped_surrogate`` (token-level ratio, symmetric clip), its
    per-token loss. Values first, then the gradient w.r.t. ``logp`` on every case.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(clipped_surrogate_check(seed, n_random), fn, quiet)


# ---------------------------------------------------------------------------------- k3 KL
def _k3_ref(logp, ref_logp):
    return lib.kl_penalty(logp, ref_logp, "k3")


KL_MISTAKES = [
    Mistake(
        lambda lp, rlp: lib.kl_penalty(rlp, lp, "k3"),
        "your log-ratio has the wrong sign: k3 estimates KL(pi || pi_ref) from samples of "
        "pi with log_ratio = ref_logp - logp, then exp(log_ratio) - log_ratio - 1.",
    ),
    Mistake(
        lambda lp, rlp: lib.kl_penalty(lp, rlp, "k1"),
        "that is k1 = logp - ref_logp "
        "(unbiased but can be negative per token); k3 = exp(x) - x - 1, x = ref_logp - logp.",
    ),
    Mistake(
        lambda lp, rlp: lib.kl_penalty(lp, rlp, "k2"),
        "that is k2 = (x^2) / 2; k3 = exp(x) - x - 1 with x = ref_logp - logp.",
    ),
    Mistake(
        lambda lp, rlp: lib.kl_penalty(lp, rlp, "k3") + 1,
        "you forgot the - 1: k3 = exp(x) - x - 1 is 0 when the policies agree.",
    ),
    Mistake(
        lambda lp, rlp: (rlp - lp).exp() + (rlp - lp) - 1,
        "k3 = exp(x) - x - 1: the x is subtracted (this makes k3 >= 0).",
    ),
]


def kl_k3_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    lp = torch.log(torch.tensor([[0.5, 0.25, 0.9], [0.1, 0.5, 0.5]]))
    ref = torch.log(torch.tensor([[0.5, 0.5, 0.3], [0.4, 0.05, 0.5]]))
    cases = [
        Case("pi = pi_ref: k3 is exactly 0", {"logp": lp, "ref_logp": lp.clone()}),
        Case("hand-made probabilities (pi_ref above and below pi)", {"logp": lp, "ref_logp": ref}),
    ]
    g = torch.Generator().manual_seed(seed)
    for i in range(n_random):
        B, T = (int(x) for x in torch.randint(1, 6, (2,), generator=g))
        logp, ref_logp = random_logps(B, T, g, spread=0.5)
        cases.append(Case(f"random (B={B}, T={T}) #{i}", {"logp": logp, "ref_logp": ref_logp}))
    return CaseCheck("kl_k3", cases, _k3_ref, KL_MISTAKES, wrt="logp")


def check_kl_k3(fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False) -> None:
    """Compare your ``kl_k3(logp, ref_logp)`` -> (B, T) with ``kl_penalty(..., "k3")``."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(kl_k3_check(seed, n_random), fn, quiet)


# ---------------------------------------------------------------------------- aggregation
def _aggregate_ref(per_token_loss, mask):
    return lib.aggregate(per_token_loss, mask, "grpo")


def _masked_row_means(x, mask):
    mask = mask.to(x.dtype)
    return (x * mask).sum(-1) / mask.sum(-1)  # (B,), NaN for an empty row


AGGREGATE_MISTAKES = [
    Mistake(
        lambda x, m: x.mean(),
        "you forgot the mask: padded positions hold garbage that "
        "must not count. Average each row over its real tokens: sum(L * mask) / sum(mask).",
    ),
    Mistake(
        lambda x, m: x.mean(-1).mean(),
        "you forgot the mask: average each row over its "
        "real tokens only, sum_t(mask * L) / sum_t(mask), then average the rows.",
    ),
    Mistake(
        lambda x, m: x.sum(-1).div(m.to(x.dtype).sum(-1).clamp(min=1)).mean(),
        "you summed the padded positions too: multiply by the mask before summing.",
    ),
    Mistake(
        lambda x, m: lib.aggregate(x, m, "bnpo"),
        "that is the token-level mean (bnpo / "
        "DAPO: every token weighs 1). GRPO (DeepSeekMath eq. 3) averages within each "
        "sequence first, then over sequences: every sequence weighs 1.",
    ),
    Mistake(
        lambda x, m: lib.aggregate(x, m, "dr_grpo", x.shape[1]),
        "dividing by the width T "
        "is Dr. GRPO's constant normaliser; GRPO divides each row by its own length |o_i|.",
    ),
    Mistake(
        lambda x, m: _masked_row_means(x, m).mean(),
        "a row with no real token has "
        "length 0 and 0 / 0 = NaN: clamp each row's token count to at least 1, as TRL does.",
    ),
]


def grpo_aggregate_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    x = torch.tensor([[1.0, 2.0, 3.0, 7.0], [4.0, 9.0, 9.0, 9.0], [2.0, 2.0, 2.0, 2.0]])
    mask = torch.tensor([[1.0, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]])
    cases = [
        Case(
            "three rows of lengths 3, 1, 4 (garbage on padding)",
            {"per_token_loss": x, "mask": mask},
        ),
        Case("the same with a bool mask", {"per_token_loss": x, "mask": mask.bool()}),
        Case(
            "a row with no real token",
            {"per_token_loss": x[:2], "mask": torch.tensor([[1.0, 1, 0, 0], [0, 0, 0, 0]])},
        ),
    ]
    g = torch.Generator().manual_seed(seed)
    for i in range(n_random):
        B, T = (int(v) for v in torch.randint(1, 7, (2,), generator=g))
        lengths = torch.randint(1, T + 1, (B, 1), generator=g)
        m = (torch.arange(T)[None, :] < lengths).float()  # (B, T)
        cases.append(
            Case(
                f"random (B={B}, T={T}) #{i}",
                {"per_token_loss": torch.randn(B, T, generator=g), "mask": m},
            )
        )
    return CaseCheck(
        "grpo_aggregate", cases, _aggregate_ref, AGGREGATE_MISTAKES, wrt="per_token_loss"
    )


def check_grpo_aggregate(
    fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False
) -> None:
    """Compare your ``grpo_aggregate(per_token_loss, mask)`` -> scalar with ``aggregate(.., "grpo")``."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(grpo_aggregate_check(seed, n_random), fn, quiet)

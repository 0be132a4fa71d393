"""Checks of the unified-paradigm exercises (DeepSeekMath sec. 5.2.1): gradient coefficients.

    check_rft_coefficients    GC of RFT / online RFT: 1[r >= threshold]          (B,)
    check_grpo_coefficients   GC of GRPO per token: A_i + beta (pi_ref / pi - 1)  (B, T)
    check_dpo_loss            DPO's loss on interleaved pairs (o+, o-)           scalar

Each is a ``CaseCheck`` (``<name>_check(seed, n_random)``: the cases, the library's reference
from ``grpo_edu.algorithms``, the mistake catalogue; the grader judges it) and the notebook
function ``check_<name>(fn)`` that observes and judges in one process. Values and, for the loss,
the gradient with respect to ``logp``; a typical mistake gets its own hint.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..feedback import Case, Mistake
from ..judge import CaseCheck, run_check

NOTEBOOK = "07_gradient_coefficients.ipynb"
"""The instructor notebook of these exercises (``notebooks/exercises/``)."""


# --------------------------------------------------------------------------- RFT coefficient
def _lib():
    """``grpo_edu.algorithms.coefficients``, imported when a check runs: the algorithms package
    loads transformers, which a sandboxed notebook that never runs these checks must not pay."""
    from grpo_edu.algorithms import coefficients

    return coefficients


def _rft_ref(rewards, threshold=1.0):
    return _lib().rft_coefficients(rewards, threshold)


RFT_MISTAKES = [
    Mistake(
        lambda r, th=1.0: (r > th).to(r.dtype),
        "a reward equal to the threshold is kept: >=, not > (with the 0/1 reward and "
        "threshold 1, > keeps nothing at all).",
    ),
    Mistake(
        lambda r, th=1.0: r >= th,
        "return a float tensor (the coefficient multiplies log-probs): .to(rewards.dtype).",
    ),
    Mistake(
        lambda r, th=1.0: r - r.mean(),
        "that is a baselined advantage (GRPO, Dr. GRPO): RFT has no baseline; its coefficient "
        "is 1 on kept answers and exactly 0 on the rest, never negative.",
    ),
    Mistake(
        lambda r, th=1.0: (r >= th).to(r.dtype) / (r >= th).sum().clamp(min=1),
        "you normalised by the number of kept answers; the coefficient itself is 0 or 1 "
        "(the loss averages over all B answers, as the paper's expectation).",
    ),
    Mistake(
        lambda r, th=1.0: r.clone(),
        "that is the reward itself: equal to the coefficient only for 0/1 rewards and "
        "threshold 1. With partial credit, keep (1) what reaches the threshold, drop (0) the rest.",
    ),
]


def rft_coefficients_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    t = torch.tensor
    cases = [
        Case("0/1 rewards, threshold 1", {"rewards": t([1.0, 0, 0, 1]), "threshold": 1.0}),
        Case(
            "partial credit, threshold 0.5",
            {"rewards": t([1.0, 0.5, 0.25, 0.0, 0.75]), "threshold": 0.5},
        ),  # fmt: skip
        Case("nothing reaches the threshold", {"rewards": t([0.0, 0.2]), "threshold": 1.0}),
    ]
    g = torch.Generator().manual_seed(seed)
    for i in range(n_random):
        B = int(torch.randint(1, 12, (1,), generator=g))
        rewards = torch.randint(0, 5, (B,), generator=g).float() / 4  # {0, .25, .5, .75, 1}
        threshold = [1.0, 0.5, 0.75][i % 3]
        cases.append(Case(f"random (B={B}) #{i}", {"rewards": rewards, "threshold": threshold}))
    return CaseCheck("rft_coefficients", cases, _rft_ref, RFT_MISTAKES)


def check_rft_coefficients(
    fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False
) -> None:
    """Compare your ``rft_coefficients(rewards, threshold)`` -> (B,) with the library's."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(rft_coefficients_check(seed, n_random), fn, quiet)


# -------------------------------------------------------------------------- GRPO coefficient
def _grpo_ref(advantages, logp, ref_logp, kl_coef):
    return _lib().grpo_coefficients(advantages, logp, ref_logp, kl_coef)


GRPO_MISTAKES = [
    Mistake(
        lambda a, lp, rlp, b: a[:, None] + b * ((lp - rlp).exp() - 1),
        "the ratio is upside down: GRPO's KL part is beta * (pi_ref / pi - 1), "
        "exp(ref_logp - logp) - 1. It is < 0 where pi has grown above pi_ref: it pulls back.",
    ),
    Mistake(
        lambda a, lp, rlp, b: a[:, None] - b * ((rlp - lp).exp() - 1),
        "the KL term's sign: the loss has + beta * k3 and GC is minus its gradient, "
        "so GC = A + beta * (pi_ref / pi - 1).",
    ),
    Mistake(
        lambda a, lp, rlp, b: a[:, None] + b * ((rlp - lp).exp() - (rlp - lp) - 1),
        "that is beta * k3 itself; GC needs its gradient with respect to log pi: "
        "d/dlogp k3 = 1 - pi_ref / pi, so the KL part is beta * (pi_ref / pi - 1).",
    ),
    Mistake(
        lambda a, lp, rlp, b: (a[:, None] + 0 * lp).clone(),
        "you left out the KL term: GRPO's coefficient is A_i + beta (pi_ref / pi - 1).",
    ),
]


def grpo_coefficients_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    lp = torch.log(torch.tensor([[0.5, 0.25, 0.9], [0.1, 0.5, 0.5]]))
    ref = torch.log(torch.tensor([[0.5, 0.5, 0.3], [0.4, 0.05, 0.5]]))
    adv = torch.tensor([0.8, -1.2])
    cases = [
        Case(
            "pi = pi_ref: GC is the advantage",
            {"advantages": adv, "logp": lp, "ref_logp": lp.clone(), "kl_coef": 0.04},
        ),  # fmt: skip
        Case(
            "pi_ref above and below pi, beta 0.5",
            {"advantages": adv, "logp": lp, "ref_logp": ref, "kl_coef": 0.5},
        ),  # fmt: skip
        Case("beta = 0", {"advantages": adv, "logp": lp, "ref_logp": ref, "kl_coef": 0.0}),
        Case(
            "B == T (3 x 3): A broadcasts over tokens",
            {
                "advantages": torch.tensor([1.0, 0.0, -1.0]),
                "logp": lp[:1].repeat(3, 1),
                "ref_logp": ref[:1].repeat(3, 1),
                "kl_coef": 0.1,
            },
        ),  # fmt: skip
    ]
    g = torch.Generator().manual_seed(seed)
    for i in range(n_random):
        B, T = (int(x) for x in torch.randint(1, 6, (2,), generator=g))
        logp = -torch.rand(B, T, generator=g) * 2 - 0.05
        ref_logp = logp + torch.randn(B, T, generator=g) * 0.4
        args = {"advantages": torch.randn(B, generator=g), "logp": logp, "ref_logp": ref_logp,
                "kl_coef": [0.04, 0.1, 0.3][i % 3]}  # fmt: skip
        cases.append(Case(f"random (B={B}, T={T}) #{i}", args))
    return CaseCheck("grpo_coefficients", cases, _grpo_ref, GRPO_MISTAKES, _BROADCAST)


def check_grpo_coefficients(
    fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False
) -> None:
    """Compare your ``grpo_coefficients(advantages, logp, ref_logp, kl_coef)`` -> (B, T)."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(grpo_coefficients_check(seed, n_random), fn, quiet)


_BROADCAST = [
    ("must match the size", "advantages is (B,) and logp (B, T): advantages[:, None] "
     "broadcasts one advantage over the answer's tokens."),
]  # fmt: skip


# --------------------------------------------------------------------------------- DPO loss
def _dpo_ref(logp, ref_logp, mask, beta):
    return _lib().dpo_loss(logp, logp.detach(), ref_logp, mask, beta=beta)[0]


def _delta(logp, ref_logp, mask):
    return ((logp - ref_logp) * mask).sum(-1)  # (2P,)


def _dpo(margin, beta):
    return -torch.nn.functional.logsigmoid(beta * margin).mean()


DPO_MISTAKES = [
    Mistake(
        lambda lp, rlp, m, b: _dpo(_delta(lp, rlp, m)[1::2] - _delta(lp, rlp, m)[0::2], b),
        "the margin's sign: Delta(o+) - Delta(o-), preferred minus rejected; rows 0, 2, 4, ... "
        "are o+.",
    ),
    Mistake(
        lambda lp, rlp, m, b: _dpo((lp * m).sum(-1)[0::2] - (lp * m).sum(-1)[1::2], b),
        "you left out the reference: DPO's implicit reward is beta * log(pi / pi_ref), "
        "so Delta = sum_t (logp - ref_logp).",
    ),
    Mistake(
        lambda lp, rlp, m, b: _dpo(
            ((lp - rlp) * m).sum(-1)[0::2] - ((lp - rlp) * m).sum(-1)[1::2], 1.0
        ),  # noqa: E501
        "beta multiplies the margin inside the sigmoid: -logsigmoid(beta * margin).",
    ),
    Mistake(
        lambda lp, rlp, m, b: _dpo(
            ((lp - rlp) * m).sum(-1)[: len(lp) // 2] - ((lp - rlp) * m).sum(-1)[len(lp) // 2 :], b
        ),
        "the pairs are interleaved (o+_0, o-_0, o+_1, o-_1, ...), not halves (TRL's batch "
        "puts all chosen rows first): take rows 0::2 and 1::2.",
    ),
    Mistake(
        lambda lp, rlp, m, b: _dpo((lp - rlp).sum(-1)[0::2] - (lp - rlp).sum(-1)[1::2], b),
        "you forgot the mask: padded positions must not count in an answer's log-ratio.",
    ),
    Mistake(
        lambda lp, rlp, m, b: _dpo(
            ((lp - rlp) * m).sum(-1)[0::2] / m.sum(-1)[0::2]
            - ((lp - rlp) * m).sum(-1)[1::2] / m.sum(-1)[1::2],
            b,
        ),
        "you averaged over the tokens (DeepSeekMath's appendix writes it so, TRL calls it "
        "'sigmoid_norm'); this exercise asks for Rafailov et al.'s sum over the tokens.",
    ),
    Mistake(
        lambda lp, rlp, m, b: (
            -torch.nn.functional.logsigmoid(
                b * (_delta(lp, rlp, m)[0::2] - _delta(lp, rlp, m)[1::2])
            ).sum()
        ),
        "average the pairs' losses (.mean()), do not sum them.",
    ),
]


def dpo_loss_check(seed: int = 0, n_random: int = 5) -> CaseCheck:
    logp = torch.tensor([[-0.5, -0.5, -9.0], [-2.0, -1.0, -1.0]])  # -9: padding, must not count
    ref_logp = torch.tensor([[-1.0, -1.0, -3.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1, 0], [1, 1, 1]])
    cases = [
        Case(
            "one pair by hand: Delta+ = 1, Delta- = -1",
            {"logp": logp, "ref_logp": ref_logp, "mask": mask, "beta": 0.5},
        ),  # fmt: skip
        Case(
            "at the reference: loss log 2",
            {"logp": ref_logp.clone(), "ref_logp": ref_logp, "mask": mask, "beta": 0.1},
        ),  # fmt: skip
    ]
    g = torch.Generator().manual_seed(seed)
    for i in range(n_random):
        P = int(torch.randint(1, 5, (1,), generator=g))
        T = int(torch.randint(1, 5, (1,), generator=g))
        lengths = torch.randint(1, T + 1, (2 * P,), generator=g)
        m = (torch.arange(T) < lengths[:, None]).float()  # (2P, T), right-padded
        lp = -torch.rand(2 * P, T, generator=g) * 2 - 0.05
        rlp = lp + torch.randn(2 * P, T, generator=g) * 0.5
        cases.append(Case(f"random ({P} pairs, T={T}) #{i}", {
            "logp": lp, "ref_logp": rlp, "mask": m, "beta": [0.1, 0.5, 1.0][i % 3]}))  # fmt: skip
    return CaseCheck("dpo_loss", cases, _dpo_ref, DPO_MISTAKES, wrt="logp")


def check_dpo_loss(fn: Callable, *, seed: int = 0, n_random: int = 5, quiet: bool = False) -> None:
    """Compare your ``dpo_loss(logp, ref_logp, mask, beta)`` -> scalar, values and gradients."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(dpo_loss_check(seed, n_random), fn, quiet)


__all__ = [
    "check_dpo_loss",
    "check_grpo_coefficients",
    "check_rft_coefficients",
    "dpo_loss_check",
    "grpo_coefficients_check",
    "rft_coefficients_check",
]

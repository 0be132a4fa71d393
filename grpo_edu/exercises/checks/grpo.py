"""The GRPO loss: clipped surrogate + kl_coef * k3 per token, per-sequence mean (DeepSeekMath eq. 3).

``check_grpo_loss`` compares the student's loss with ``losses.policy_loss`` (values and
gradients); ``training.check_grpo_training`` then trains the warm start with it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from grpo_edu import losses as lib

from ..feedback import Case, Mistake
from ..judge import CaseCheck, run_check
from .losses import BROADCAST, random_logps


# ------------------------------------------------------------------------------ GRPO loss
def _grpo_loss_ref(logp, old_logp, ref_logp, advantages, mask, clip_eps=0.2, kl_coef=0.04):
    loss, _ = lib.policy_loss(
        logp, old_logp, advantages, mask, clip_eps=clip_eps, ref_logp=ref_logp, kl_coef=kl_coef
    )
    return loss


def _grpo_variant(surrogate_sign=-1.0, kl_sign=1.0, kl_args=None, mode="grpo", mask=True):
    def loss(logp, old_logp, ref_logp, advantages, mask_, clip_eps=0.2, kl_coef=0.04):
        ptl, _ = lib.clipped_surrogate(logp, old_logp, advantages, mask_, clip_eps)
        kl_in = (logp, ref_logp) if kl_args is None else kl_args(logp, ref_logp)
        ptl = -surrogate_sign * ptl + kl_sign * kl_coef * lib.kl_penalty(*kl_in)
        return lib.aggregate(ptl, mask_ if mask else torch.ones_like(mask_), mode, ptl.shape[1])

    return loss


GRPO_LOSS_MISTAKES = [
    Mistake(_grpo_variant(kl_sign=-1.0), "the KL term is a penalty: + kl_coef * k3, not minus."),
    Mistake(_grpo_variant(kl_sign=0.0), "you left out the KL penalty: + kl_coef * k3_t per token."),
    Mistake(
        _grpo_variant(kl_args=lambda lp, rlp: (rlp, lp)),
        "k3 uses x = ref_logp - logp: exp(x) - x - 1; your KL has the log-ratio reversed.",
    ),
    Mistake(
        _grpo_variant(mask=False),
        "you forgot the mask: average each sequence over its "
        "real tokens only (padded positions of logp are 0, not real tokens).",
    ),
    Mistake(
        _grpo_variant(mode="bnpo"),
        "that is the token-level mean (bnpo); GRPO averages "
        "within each sequence, then over sequences.",
    ),
    Mistake(
        _grpo_variant(surrogate_sign=1.0),
        "minimise minus the objective: the surrogate enters the loss as -min(r A, clip(r) A).",
    ),
]


def grpo_loss_cases(seed: int, n_random: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(2 + n_random):
        B, T = (3, 4) if i == 0 else (int(v) for v in torch.randint(2, 7, (2,), generator=g))
        logp, old_logp = random_logps(B, T, g)
        ref_logp = old_logp + torch.randn(B, T, generator=g) * 0.3
        mask = (torch.arange(T)[None, :] < torch.randint(1, T + 1, (B, 1), generator=g)).float()
        args = {
            "logp": logp * mask,
            "old_logp": old_logp * mask,
            "ref_logp": ref_logp * mask,
            "advantages": torch.randn(B, generator=g),
            "mask": mask,
            "clip_eps": 0.2,
            "kl_coef": [0.04, 0.1, 0.5][i % 3],
        }
        cases.append(
            Case(f"{'hand-sized' if i == 0 else 'random'} batch (B={B}, T={T}) #{i}", args)
        )
    return cases


def grpo_loss_check(seed: int = 0, n_random: int = 4) -> CaseCheck:
    cases = grpo_loss_cases(seed, n_random)
    return CaseCheck("grpo_loss", cases, _grpo_loss_ref, GRPO_LOSS_MISTAKES, BROADCAST, wrt="logp")


def check_grpo_loss(fn: Callable, *, seed: int = 0, n_random: int = 4, quiet: bool = False):
    """Compare your ``grpo_loss(logp, old_logp, ref_logp, advantages, mask, clip_eps, kl_coef)``.

    Reference: ``grpo_edu.losses.policy_loss`` with ``ref_logp`` and ``kl_coef`` (k3 in the
    loss, per-sequence mean: DeepSeekMath eq. 3). Values, then gradients w.r.t. ``logp``.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(grpo_loss_check(seed, n_random), fn, quiet)

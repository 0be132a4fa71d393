"""DeepSeekMath's unified paradigm: every method is one gradient with its own coefficient.

DeepSeekMath (arXiv:2402.03300, sec. 5.2.1, eq. 5) writes the gradient of SFT, RFT, online RFT,
DPO, PPO and GRPO as one formula::

    grad J = E_{(q, o) ~ D} [ 1/|o| sum_t GC(q, o, t) * grad log pi_theta(o_t | q, o_<t) ]

The methods differ in three things only: the data source D, the reward, and the gradient
coefficient GC (the paper's Table 10; ``+-`` for DPO: + on the preferred answer o+, - on o-)::

    method       D                                     GC(q, o, t)
    SFT          q, o: the task's reference answers    1
    RFT          q from data, o ~ pi_sft (offline)     1[r(o) >= threshold]
    online RFT   q from data, o ~ pi_theta (online)    1[r(o) >= threshold]
    DPO          q, (o+, o-) ~ pi_sft (offline)        +- beta * sigmoid(beta * (Delta- - Delta+))
    PPO          q, o ~ pi_theta                       A_t, GAE over a critic (``signals``)
    GRPO         q, {o_1..o_G} ~ pi_theta              A_i + beta * (pi_ref / pi_theta - 1)

with Delta = log pi_theta(o) / pi_ref(o) of one answer (summed over its tokens, or averaged with
``length_normalized``). This module holds the coefficients as functions of rewards and
log-probs, the pairs DPO is trained on, and the two losses of the new methods:

    likelihood_loss   -1/B sum_i 1/|o_i| sum_t GC_i * logp_it     (SFT, RFT, online RFT)
    dpo_loss          mean over pairs of -log sigmoid(beta * (Delta+ - Delta-))

``likelihood_loss`` takes ``policy_loss``'s positional arguments (logp, old_logp, coefficients,
mask), so a step can swap one for the other: with GC in place of the advantage and beta = 0,
GRPO's clipped loss has the same gradient on-policy (the ratio is 1, no clipping), which is why
online RFT is "GRPO with a 0/1 coefficient" (``tests/test_paradigm.py`` checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..losses import aggregate
from ..masked import check_group_size, check_positive, check_same_shape, masked_sum

CLIP_KEYS = (
    "clip_ratio/low_mean",
    "clip_ratio/high_mean",
    "clip_ratio/region_mean",
    "clip_ratio/low_min",
    "clip_ratio/high_max",
)
"""The clip metrics a clipped loss reports; NaN for the losses here (nothing is clipped)."""


# ----------------------------------------------------------------------------- coefficients
def sft_coefficients(rewards: Tensor) -> Tensor:
    """SFT's GC = 1 for every answer of its data (the task's reference answers), (B,)."""
    return torch.ones_like(rewards)


def rft_coefficients(rewards: Tensor, threshold: float = 1.0) -> Tensor:
    """RFT's and online RFT's GC = 1[r_i >= threshold], (B,): keep the correct, drop the rest.

    With the 0/1 ``correctness`` reward and threshold 1 this is exactly the reward. A wrong
    answer gets 0: RFT never pushes an answer down, GRPO's negative advantages do.
    """
    return (rewards >= threshold).to(rewards.dtype)


def grpo_coefficients(
    advantages: Tensor, logp: Tensor, ref_logp: Tensor | None = None, kl_coef: float = 0.0
) -> Tensor:
    """GRPO's GC per token, (B, T), on-policy (ratio 1): A_i + beta * (pi_ref / pi_theta - 1).

    The second term is the gradient of beta * k3 (DeepSeekMath eq. 4) with respect to log pi:
    d/dlogp [exp(ref_logp - logp) - (ref_logp - logp) - 1] = 1 - pi_ref / pi, with the sign of
    a coefficient (the loss is minimised). Shapes: ``advantages`` (B,), ``logp`` (B, T).
    """
    gc = advantages[:, None].expand(logp.shape).clone()  # (B, T)
    if ref_logp is not None and kl_coef:
        gc = gc + kl_coef * ((ref_logp - logp).exp() - 1)  # beta (pi_ref / pi - 1)
    return gc


def dpo_coefficients(
    logp: Tensor, ref_logp: Tensor, mask: Tensor, beta: float, length_normalized: bool = False
) -> Tensor:
    """DPO's signed GC of each row of a pair batch, (2P,), in the paper's 1/|o| convention.

    Rows are pairs, prompt-major: 2p is o+, 2p+1 is o-. With the margin m = Delta+ - Delta-
    (``pair_margins``), the gradient of ``dpo_loss`` is
        mean_p [ beta sigmoid(-beta m) (grad Delta+ - grad Delta-) ]
    so GC = +beta sigmoid(-beta m) on o+ and minus that on o-, times |o| when Delta is a sum
    (the formula's 1/|o| must be undone). The paper (appendix A.1.4) writes sigmoid(beta (Delta-
    - Delta+)) without the constant beta. ``sigmoid(-beta m)`` is the weight of a pair: 1/2 at
    the reference (m = 0), towards 0 once the pair is well separated.
    """
    margin = pair_margins(logp, ref_logp, mask, length_normalized)  # (P,)
    weight = beta * torch.sigmoid(-beta * margin)  # (P,)
    signed = torch.stack([weight, -weight], 1).flatten()  # (2P,): +w on o+, -w on o-
    lengths = mask.to(logp.dtype).sum(-1)  # (2P,) |o|
    return signed if length_normalized else signed * lengths


# --------------------------------------------------------------------------------- DPO pairs
def preference_pairs(rewards: Tensor, group_size: int) -> tuple[Tensor, Tensor]:
    """(chosen, rejected) row indices, (P,) each: DPO's pairs made from groups of G samples.

    Within each group the answers are sorted by reward (ties keep their order); the j-th best is
    paired with the j-th worst, for j < G // 2, whenever its reward is strictly higher. With 0/1
    rewards and c correct answers out of G this makes min(c, G - c) pairs, each answer in at
    most one: an all-correct or all-wrong group makes none, as it gives GRPO no signal.
    """
    check_group_size(group_size, len(rewards))
    grouped = rewards.view(-1, group_size)  # (n, G)
    order = torch.sort(grouped, dim=1, descending=True, stable=True).indices  # (n, G)
    half = group_size // 2
    best, worst = order[:, :half], order.flip(1)[:, :half]  # (n, G // 2) each
    keep = grouped.gather(1, best) > grouped.gather(1, worst)  # (n, G // 2)
    offset = torch.arange(len(grouped), device=rewards.device)[:, None] * group_size  # (n, 1)
    return (best + offset)[keep], (worst + offset)[keep]  # (P,), (P,)


def pair_margins(
    logp: Tensor, ref_logp: Tensor, mask: Tensor, length_normalized: bool = False
) -> Tensor:
    """m_p = Delta(o+_p) - Delta(o-_p), (P,), with Delta = sum_t (logp - ref_logp) over the real
    tokens of one answer (divided by |o| when ``length_normalized``). Rows: o+ even, o- odd."""
    check_same_shape(logp=logp, ref_logp=ref_logp, mask=mask)
    if len(logp) % 2:
        raise ValueError(f"a pair batch has an even number of rows (o+, o-), got {len(logp)}")
    delta = masked_sum(logp - ref_logp, mask, dim=-1)  # (2P,) log pi / pi_ref of each answer
    if length_normalized:
        delta = delta / mask.to(logp.dtype).sum(-1).clamp(min=1.0)
    return delta[0::2] - delta[1::2]  # (P,)


# ------------------------------------------------------------------------------------ losses
@dataclass(frozen=True)
class LikelihoodInfo:
    """What ``likelihood_loss`` and ``dpo_loss`` report, in the shape ``StepLog`` reads."""

    ratio: Tensor
    """pi / pi_old per token, (b, T): a measurement (1 before an on-policy update); no loss here
    uses it. For offline data pi_old is the warm start that sampled it."""
    per_token_loss: Tensor
    """(b, T) likelihood_loss: -GC * logp; dpo_loss: each pair's loss on its two rows' tokens."""
    coefficients: Tensor
    """GC of each row, (b,) or (b, T)."""
    per_token_kl: Tensor | None = None

    @property
    def is_zero_gradient(self) -> Tensor:
        """bool (b, T): tokens whose coefficient is exactly 0 (RFT's dropped answers)."""
        gc = self.coefficients if self.coefficients.dim() == 2 else self.coefficients[:, None]
        return (gc == 0).expand(self.ratio.shape)

    def clip_metrics(self, mask: Tensor) -> dict[str, float]:
        """The clip metrics' keys, NaN: these losses clip nothing."""
        return dict.fromkeys(CLIP_KEYS, math.nan)


def likelihood_loss(
    logp: Tensor, old_logp: Tensor, coefficients: Tensor, mask: Tensor
) -> tuple[Tensor, LikelihoodInfo]:
    """The coefficient-weighted log-likelihood loss of SFT, RFT and online RFT.

    Equation: L = -1/B sum_i 1/|o_i| sum_t GC_i * log pi_theta(o_it), whose gradient is
    DeepSeekMath eq. 5 with GC_i given (``sft_coefficients``, ``rft_coefficients``): the mean
    over answers of each answer's per-token mean (``aggregate(mode="grpo")``), so a dropped
    answer (GC = 0) still counts in B, as in the paper's expectation over all samples.

    Shapes: ``logp``, ``old_logp``, ``mask`` (B, T); ``coefficients`` (B,). ``old_logp`` only
    feeds the ``ratio`` measurement. Result: scalar loss and a ``LikelihoodInfo``.
    """
    check_same_shape(logp=logp, old_logp=old_logp, mask=mask)
    if coefficients.shape != logp.shape[:1]:
        raise ValueError(
            f"coefficients must have shape {tuple(logp.shape[:1])}, one per answer, "
            f"got {tuple(coefficients.shape)}"
        )
    per_token_loss = -coefficients[:, None] * logp  # -GC_i log pi(o_it), (B, T)
    ratio = (logp.detach() - old_logp).exp()  # (B, T), measured only
    loss = aggregate(per_token_loss, mask, "grpo")
    return loss, LikelihoodInfo(ratio, per_token_loss, coefficients)


def dpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor,
    mask: Tensor,
    *,
    beta: float = 0.1,
    length_normalized: bool = False,
) -> tuple[Tensor, LikelihoodInfo]:
    """DPO's loss on a batch of pairs (Rafailov et al. 2023, arXiv:2305.18290, eq. 7).

    Equation: L = mean_p -log sigmoid(beta * (Delta+_p - Delta-_p)),
              Delta = sum_t (log pi_theta(o_t) - log pi_ref(o_t)) over one answer's real tokens
    (divided by |o| with ``length_normalized``, DeepSeekMath appendix A.1.4). Same math as
    TRL 1.16's ``DPOTrainer._compute_loss`` for ``loss_type="sigmoid"`` (summed) and
    ``"sigmoid_norm"`` (normalized); ``tests/test_paradigm_trl.py`` checks both.

    Shapes: ``logp``, ``old_logp``, ``ref_logp``, ``mask`` (2P, T), rows o+_0, o-_0, o+_1, ...
    (a ``Rollout`` with group_size 2). Result: scalar loss and a ``LikelihoodInfo``.
    """
    check_positive("beta", beta)
    check_same_shape(logp=logp, old_logp=old_logp)
    margin = pair_margins(logp, ref_logp, mask, length_normalized)  # (P,)
    per_pair = -F.logsigmoid(beta * margin)  # (P,)
    with torch.no_grad():
        gc = dpo_coefficients(logp, ref_logp, mask, beta, length_normalized)  # (2P,)
    per_token_loss = per_pair.repeat_interleave(2)[:, None].expand(logp.shape)  # (2P, T)
    ratio = (logp.detach() - old_logp).exp()  # (2P, T), measured only
    return per_pair.mean(), LikelihoodInfo(ratio, per_token_loss, gc)


__all__ = [
    "LikelihoodInfo",
    "dpo_coefficients",
    "dpo_loss",
    "grpo_coefficients",
    "likelihood_loss",
    "pair_margins",
    "preference_pairs",
    "rft_coefficients",
    "sft_coefficients",
]

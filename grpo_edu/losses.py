"""Losses: the clipped surrogate, KL estimators, loss aggregation, value loss, entropy.

The GRPO objective, per token, then aggregated over the batch::

    per_token_loss = -min(r_t A, clip(r_t, 1 - eps_low, 1 + eps_high) A) + kl_coef * KL_t
    loss           = aggregate(per_token_loss, mask, mode)        # grpo | bnpo | dr_grpo | dapo

``policy_loss`` pieces these together exactly as TRL 1.16's ``GRPOTrainer._compute_loss`` does.
PPO uses the same function with per-token (B, T) advantages and ``kl_coef=0`` (its KL is in the
reward), plus ``value_loss`` for the critic. ``entropy_from_logits`` and ``masked_mean``
live in ``masked`` (shared tensor helpers); both are re-exported here.
Shapes: ``logp``, ``old_logp``, ``ref_logp``, ``mask`` (B, T), the
log-probs of the sampled completion tokens; ``mask`` is 1 (or True) on real completion tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .masked import (
    check_choice,
    check_positive,
    check_same_shape,
    entropy_from_logits,
    masked_mean,
)

LEVELS = ("token", "sequence")
"""Valid ``level`` values of the importance ratio (``sequence`` is GSPO)."""
KL_ESTIMATORS = ("k1", "k2", "k3")
"""Valid ``estimator`` values of ``kl_penalty``."""
AGGREGATIONS = ("grpo", "bnpo", "dr_grpo", "dapo")
"""Valid ``mode`` values of ``aggregate`` (TRL's ``loss_type`` names)."""


@dataclass(frozen=True)
class SurrogateInfo:
    """Tensors of one clipped-surrogate evaluation, for metrics and for teaching."""

    ratio: Tensor
    """r = pi / pi_old before any clipping: (B, T), or (B, 1) for ``level="sequence"``."""
    is_low_clipped: Tensor
    """bool, r < 1 - eps_low and A < 0 (TRL ``clip_ratio/low_*``); shape of ``ratio * A``."""
    is_high_clipped: Tensor
    """bool, r > 1 + eps_high and A > 0 (TRL ``clip_ratio/high_*``); shape of ``ratio * A``."""
    is_region_clipped: Tensor
    """bool, low or high: the clip removed these tokens' gradient (TRL ``clip_ratio/region_mean``)."""
    is_delta_capped: Tensor
    """bool, r > delta and A < 0: the ``delta`` cap (two-sided clipping) removed these tokens'
    gradient (all False without ``delta``). TRL's clip metrics do not count them."""

    @property
    def is_zero_gradient(self) -> Tensor:
        """bool, every token whose surrogate gradient is exactly zero: clipped or delta-capped."""
        return self.is_region_clipped | self.is_delta_capped

    def clip_metrics(self, mask: Tensor) -> dict[str, float]:
        """TRL's ``clip_ratio/*`` metrics on one process (per sequence when ``ratio`` is (B, 1))."""
        out = {}
        for key in ("low", "high", "region"):
            x = getattr(self, f"is_{key}_clipped").float()  # (B, T) or (B, 1)
            m = mask if x.shape == mask.shape else torch.ones_like(x)  # (B, 1): one per sequence
            out[f"clip_ratio/{key}_mean"] = masked_mean(x, m).item()
        low = masked_mean(self.is_low_clipped.float().expand(mask.shape), mask, dim=-1)  # (B,)
        high = masked_mean(self.is_high_clipped.float().expand(mask.shape), mask, dim=-1)  # (B,)
        out["clip_ratio/low_min"] = low.min().item()
        out["clip_ratio/high_max"] = high.max().item()
        return out


@dataclass(frozen=True)
class PolicyLossInfo(SurrogateInfo):
    """``SurrogateInfo`` plus the per-token terms of the full GRPO loss."""

    per_token_loss: Tensor
    """(B, T) surrogate + kl_coef * KL, before aggregation (padding not zeroed)."""
    per_token_kl: Tensor | None
    """(B, T) KL estimate as it enters the loss (times the ratio with bias correction);
    None when no ``ref_logp`` was given."""


def clipped_surrogate(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    delta: float | None = None,
    level: str = "token",
) -> tuple[Tensor, SurrogateInfo]:
    """PPO clipped surrogate loss per token (minus the objective, to minimise).

    Equation: r_t = exp(logp_t - old_logp_t)
              loss_t = -min(r_t A, clip(r_t, 1 - clip_eps, 1 + clip_eps_high) A)
    Case by case: A > 0 and r > 1 + eps_high, or A < 0 and r < 1 - eps, the clipped term wins and
    is constant, so the token's gradient is exactly 0 (``is_region_clipped``); with ``delta``,
    A < 0 and r > delta is constant too (``is_delta_capped``); elsewhere the gradient is
    A * dr/dlogp.

    Papers: PPO (Schulman et al. 2017, arXiv:1707.06347, eq. 7); ``clip_eps_high`` is DAPO's
    clip-higher (Yu et al. 2025, arXiv:2503.14476, section 3.1); ``delta`` caps the unclipped
    term r_t at delta so a negative A cannot push the loss up without bound (two-sided clipping,
    INTELLECT-2, arXiv:2505.07291); ``level="sequence"`` is GSPO (Zheng et al. 2025,
    arXiv:2507.18071): log r = masked mean over the sequence of logp - old_logp, one r per row.

    Convention: same math as TRL 1.16's ``_compute_loss`` (``coef_1``, ``coef_2``); the clip
    masks in ``info`` are its ``is_low_clipped`` / ``is_high_clipped``.

    Shapes: ``logp``, ``old_logp``, ``mask`` (B, T); ``advantages`` (B,) (one per completion,
    broadcast over tokens) or (B, T) (per token, as PPO's GAE). Result: per-token loss (B, T)
    (padding not zeroed: ``aggregate`` masks it) and a ``SurrogateInfo``.
    """
    check_same_shape(logp=logp, old_logp=old_logp, mask=mask)
    check_positive("clip_eps", clip_eps)
    eps_high = clip_eps if clip_eps_high is None else clip_eps_high
    check_positive("clip_eps_high", eps_high)
    if delta is not None and not delta > 1 + eps_high:
        raise ValueError(f"delta must be > 1 + clip_eps_high = {1 + eps_high}, got {delta!r}")
    check_choice("level", level, LEVELS)
    if advantages.shape not in (logp.shape[:1], logp.shape):
        raise ValueError(
            f"advantages must have shape {tuple(logp.shape[:1])} or {tuple(logp.shape)} "
            f"(like logp), got {tuple(advantages.shape)}"
        )

    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # (B, 1) or (B, T)
    log_ratio = logp - old_logp  # (B, T)
    if level == "sequence":
        log_ratio = masked_mean(log_ratio, mask, dim=-1).unsqueeze(-1)  # (B, 1)
    ratio = log_ratio.exp()  # r_t  (B, T) or (B, 1)
    clipped = ratio.clamp(1 - clip_eps, 1 + eps_high)  # clip(r_t, 1 - eps, 1 + eps_high)
    unclipped = ratio if delta is None else ratio.clamp(max=delta)  # r_t, capped at delta
    per_token_loss = -torch.min(unclipped * adv, clipped * adv)  # (B, 1) or (B, T)
    per_token_loss = per_token_loss.expand(logp.shape)  # (B, T)

    low = (ratio < 1 - clip_eps) & (adv < 0)  # (B, T) or (B, 1)
    high = (ratio > 1 + eps_high) & (adv > 0)  # (B, T) or (B, 1)
    capped = (ratio > delta) & (adv < 0) if delta is not None else torch.zeros_like(low)
    return per_token_loss, SurrogateInfo(ratio, low, high, low | high, capped)


def kl_penalty(logp: Tensor, ref_logp: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimate of KL(pi || pi_ref) from tokens sampled from pi.

    Equations, with log_ratio = ref_logp - logp = log(pi_ref / pi):
        k1 = -log_ratio                        unbiased, can be negative per token
        k2 = 0.5 * log_ratio^2                 biased (low bias when pi ~ pi_ref), >= 0
        k3 = exp(log_ratio) - log_ratio - 1    unbiased, >= 0
    k3 is unbiased because E_pi[pi_ref / pi] = sum_o pi_ref(o) = 1, so E[k3] = 1 + E[k1] - 1.
    Which of k1 and k3 has the lower variance depends on how far pi_ref is from pi: Schulman's
    note finds k3 lower for nearby Gaussians; notebook 05 measures it on this model.
    All three are 0 where logp == ref_logp.

    Source: Schulman 2020, "Approximating KL Divergence", http://joschu.net/blog/kl-approx.html.
    k3 is what DeepSeekMath uses (arXiv:2402.03300, eq. 4) and TRL's GRPO computes.

    Shapes: ``logp``, ``ref_logp`` (B, T); result (B, T) (padding not zeroed).
    """
    check_same_shape(logp=logp, ref_logp=ref_logp)
    check_choice("estimator", estimator, KL_ESTIMATORS)
    log_ratio = ref_logp - logp  # log(pi_ref / pi)  (B, T)
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return torch.exp(log_ratio) - log_ratio - 1  # k3


def aggregate(
    per_token_loss: Tensor,
    mask: Tensor,
    mode: str = "grpo",
    max_completion_length: int | None = None,
) -> Tensor:
    """Reduce a (B, T) per-token loss over the real tokens to one scalar.

    Equations (L_t the per-token loss, m_t the mask, |o_i| = sum_t m_it):
        grpo     mean_i [ sum_t m_it L_it / |o_i| ]        DeepSeekMath eq. 3: each sequence weighs 1
        bnpo     sum_it m_it L_it / sum_it m_it            each token weighs 1
        dr_grpo  sum_it m_it L_it / (B * max_completion_length)   Dr. GRPO (arXiv:2503.20783)
        dapo     sum_it m_it L_it / sum_it m_it            DAPO token-level (arXiv:2503.14476)

    Convention: as TRL 1.16, token counts are clamped to >= 1. ``dapo`` here equals ``bnpo``:
    TRL divides by ``num_items_in_batch``, the token count of the whole generation batch
    (across processes and gradient-accumulation steps), which on one process with one micro-batch
    is this batch's count. ``max_completion_length`` is only used (and required) by ``dr_grpo``.

    Shapes: ``per_token_loss``, ``mask`` (B, T); result a scalar.
    """
    check_same_shape(per_token_loss=per_token_loss, mask=mask)
    check_choice("mode", mode, AGGREGATIONS)
    if mode == "grpo":
        return masked_mean(per_token_loss, mask, dim=-1).mean()  # mean over sequences
    if mode in ("bnpo", "dapo"):
        return masked_mean(per_token_loss, mask)  # mean over tokens
    B, T = per_token_loss.shape
    if isinstance(max_completion_length, bool) or not isinstance(max_completion_length, int):
        raise ValueError(
            f"max_completion_length must be an int for mode='dr_grpo', got {max_completion_length!r}"
        )
    if max_completion_length < T:
        raise ValueError(
            f"max_completion_length must be >= the mask's width T={T}, got {max_completion_length}"
        )
    return (per_token_loss * mask.to(per_token_loss.dtype)).sum() / (B * max_completion_length)


def policy_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    delta: float | None = None,
    level: str = "token",
    ref_logp: Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
    kl_bias_correction: bool = False,
    aggregation: str = "grpo",
    max_completion_length: int | None = None,
) -> tuple[Tensor, PolicyLossInfo]:
    """The GRPO loss: clipped surrogate plus KL penalty per token, then aggregated.

    Equation: L = aggregate( -min(r A, clip(r) A) + kl_coef * KL_t )       KL_t from ``kl_penalty``
    With ``kl_bias_correction``, KL_t is multiplied by the ratio r (TRL's
    ``use_bias_correction_kl``, DeepSeek-V3.2 arXiv:2512.02556), which makes the KL gradient
    unbiased off-policy.

    Paper: DeepSeekMath (arXiv:2402.03300), eq. 3 (defaults: clip 0.2, k3, per-sequence mean; set
    ``kl_coef=0.04`` for its beta). Same math, in the same order, as TRL 1.16's
    ``_compute_loss`` for ``loss_type`` in grpo/bnpo/dr_grpo/dapo (note TRL defaults
    ``use_bias_correction_kl=True``; here it is False, as in DeepSeekMath). The KL is computed
    whenever ``ref_logp`` is given (for metrics) and enters the loss when ``kl_coef != 0``.

    Shapes: ``logp``, ``old_logp``, ``ref_logp``, ``mask`` (B, T); ``advantages`` (B,) or (B, T).
    Result: scalar loss and a ``PolicyLossInfo``.
    """
    check_positive("kl_coef", kl_coef, allow_zero=True)
    if kl_coef != 0.0 and ref_logp is None:
        raise ValueError(f"ref_logp is required when kl_coef != 0 (kl_coef={kl_coef})")
    per_token_loss, info = clipped_surrogate(
        logp, old_logp, advantages, mask, clip_eps, clip_eps_high, delta, level
    )  # (B, T)
    per_token_kl = None
    if ref_logp is not None:
        per_token_kl = kl_penalty(logp, ref_logp, kl_estimator)  # KL_t  (B, T)
        if kl_bias_correction:
            per_token_kl = per_token_kl * info.ratio  # r_t * KL_t  (B, T)
        if kl_coef != 0.0:
            per_token_loss = per_token_loss + kl_coef * per_token_kl  # (B, T)
    loss = aggregate(per_token_loss, mask, aggregation, max_completion_length)
    return loss, PolicyLossInfo(
        **vars(info), per_token_loss=per_token_loss, per_token_kl=per_token_kl
    )


def value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    clip_range_value: float = 0.2,
) -> tuple[Tensor, Tensor]:
    """PPO's clipped value (critic) loss, and the fraction of tokens where the clip was used.

    Equation: V_clip = clip(V, V_old - c, V_old + c)
              loss   = 0.5 * masked_mean( max((V - R)^2, (V_clip - R)^2) )
              clipfrac = masked_mean( (V_clip - R)^2 > (V - R)^2 )

    Source: OpenAI baselines PPO2 and TRL's PPO trainer (``vf_loss``, ``vf_clipfrac``); the
    PPO paper (arXiv:1707.06347) itself uses the unclipped squared error.

    Shapes: ``values`` (new critic output), ``old_values`` (at rollout), ``returns`` (from
    ``gae``), ``mask`` (B, T). Result: ``(loss, clipfrac)``, two scalars.
    """
    check_same_shape(values=values, old_values=old_values, returns=returns, mask=mask)
    check_positive("clip_range_value", clip_range_value)
    values_clipped = torch.clamp(
        values, old_values - clip_range_value, old_values + clip_range_value
    )  # V_clip  (B, T)
    loss_unclipped = (values - returns) ** 2  # (B, T)
    loss_clipped = (values_clipped - returns) ** 2  # (B, T)
    loss = 0.5 * masked_mean(torch.max(loss_unclipped, loss_clipped), mask)
    clipfrac = masked_mean((loss_clipped > loss_unclipped).to(values.dtype), mask)
    return loss, clipfrac


__all__ = [
    "AGGREGATIONS",
    "KL_ESTIMATORS",
    "LEVELS",
    "PolicyLossInfo",
    "SurrogateInfo",
    "aggregate",
    "clipped_surrogate",
    "entropy_from_logits",
    "kl_penalty",
    "masked_mean",
    "policy_loss",
    "value_loss",
]

"""Advantages: how good was each completion (or token) compared with a baseline.

Every estimator of this stage in one place, each one equation::

    group_advantages      GRPO: (r_i - mean_group r) / (std + eps)      one number per completion
    rloo_advantages       RLOO: r_i - mean_{j != i} r_j                 one number per completion
    reinforce_advantages  REINFORCE: r_i - b                            one number per completion
    gae                   PPO: sum_l (gamma lam)^l delta_{t+l}          one number per token
    whiten                PPO: (A - mean A) / std A over real tokens

Batch layout is prompt-major: ``B = n_prompts * G`` rows ``p0g0 .. p0g(G-1), p1g0, ...``, so
``rewards.view(n_prompts, G)`` puts each prompt's group on one row. ``mask`` is (B, T), 1 (or True)
for the real completion tokens of a row and 0 on the right padding after its end.

``masked_mean`` lives here, the first stage that needs it; ``losses`` re-exports it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

SCALES = ("group", "batch", "none")
"""Valid ``scale`` values of ``group_advantages``."""


# ----------------------------------------------------------------------------------- checks
def _check_rewards(rewards: Tensor, name: str = "rewards") -> None:
    """ValueError unless ``rewards`` is a 1-D floating tensor of finite numbers."""
    if not isinstance(rewards, Tensor) or rewards.dim() != 1:
        shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards).__name__
        raise ValueError(f"{name} must be a 1-D tensor of shape (B,), got {shape}")
    if not rewards.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {rewards.dtype}")
    bad = (~torch.isfinite(rewards)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"{name} contains NaN or inf at rows {bad}")


def _check_group_size(group_size: int, n_rows: int, name: str = "rewards") -> None:
    """ValueError unless ``group_size`` is an int >= 2 that divides ``n_rows``."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an int >= 2, got {group_size!r}")
    if n_rows % group_size != 0:
        raise ValueError(f"{name} has {n_rows} rows, not divisible by group_size={group_size}")


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    """ValueError unless ``value`` is one of ``valid``."""
    if value not in valid:
        raise ValueError(f"{name} must be one of {valid}, got {value!r}")


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """ValueError unless ``value`` > 0 (or >= 0 with ``allow_zero``)."""
    if not (value >= 0 if allow_zero else value > 0):
        raise ValueError(f"{name} must be {'>=' if allow_zero else '>'} 0, got {value!r}")


def _check_same_shape(**tensors: Tensor) -> None:
    """ValueError unless every tensor is 2-D (B, T) and all have the first one's shape."""
    (first, ref), *others = tensors.items()
    if ref.dim() != 2:
        raise ValueError(f"{first} must be 2-D (B, T), got shape {tuple(ref.shape)}")
    for name, x in others:
        if x.shape != ref.shape:
            raise ValueError(
                f"{first} has shape {tuple(ref.shape)} but {name} has shape {tuple(x.shape)}"
            )


def _check_right_padded(mask: Tensor) -> None:
    """ValueError unless every row of ``mask`` is 1 ... 1 0 ... 0 (real tokens, then padding)."""
    m = mask.to(torch.int8)  # (B, T)
    holes = (m[:, 1:] > m[:, :-1]).any(dim=1).nonzero().flatten().tolist()  # a 0 then a 1
    if holes:
        raise ValueError(
            f"mask must be right-padded (1s then 0s) in every row, not at rows {holes}"
        )


# ---------------------------------------------------------------------------------- helpers
def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1.

    Equation: sum(x * mask) / max(sum(mask), 1), over ``dim`` (all elements when None).

    Convention: the count is clamped to at least 1, as TRL's GRPO loss does, so an all-masked row
    gives 0, never NaN. ``x`` is multiplied by the mask (as TRL does), so padded positions must
    hold finite numbers.

    Shapes: ``x`` broadcastable to ``mask`` (e.g. (B, T) or (B, 1) with mask (B, T)); result is
    a scalar for ``dim=None``, else ``mask``'s shape without ``dim``.
    """
    mask = mask.to(x.dtype)  # (B, T) float
    total = (x * mask).sum() if dim is None else (x * mask).sum(dim)
    count = mask.sum() if dim is None else mask.sum(dim)
    return total / count.clamp(min=1.0)


def _tied(grouped: Tensor) -> Tensor:
    """(n_prompts, 1) bool: True where every reward of the group is equal."""
    return (grouped == grouped[:, :1]).all(dim=1, keepdim=True)


# ------------------------------------------------------------------------- outcome advantages
def group_advantages(
    rewards: Tensor, group_size: int, scale: str = "group", ddof: int = 1, eps: float = 1e-4
) -> Tensor:
    """GRPO outcome-supervision advantage: each reward compared with its own group.

    Equation: A_i = (r_i - mean(r_group)) / (std + eps), the same A_i for every token of i.

    Paper: DeepSeekMath (Shao et al. 2024, arXiv:2402.03300), section 4.1.2.

    Conventions (DeepSeekMath specifies neither ddof nor eps; the defaults are TRL's):
    - ``scale="group"``: std of the group, ``ddof=1`` (Bessel) like TRL's ``nanstd``.
    - ``scale="batch"``: std of all B rewards (TRL ``scale_rewards="batch"``, after "Tricks or
      Traps", Liu et al. 2025); the mean is still the group's.
    - ``scale="none"``: no division (Dr. GRPO, Liu et al. 2025, arXiv:2503.20783).
    - ``eps=1e-4`` is added to the std, not the variance, as in TRL.
    - A group whose rewards are all equal gets exactly 0 (TRL gets 0 up to float rounding of
      its mean); otherwise the result equals TRL 1.16's ``_generate_and_score_completions``.

    Shapes: ``rewards`` (B,) prompt-major, B = n_prompts * group_size; result (B,).
    """
    _check_rewards(rewards)
    _check_group_size(group_size, rewards.shape[0])
    _check_choice("scale", scale, SCALES)
    if isinstance(ddof, bool) or not isinstance(ddof, int) or not 0 <= ddof < group_size:
        raise ValueError(f"ddof must be an int in [0, group_size={group_size}), got {ddof!r}")
    _check_positive("eps", eps, allow_zero=True)

    grouped = rewards.view(-1, group_size)  # (n_prompts, G)
    advantages = grouped - grouped.mean(dim=1, keepdim=True)  # r_i - mean_group(r)
    if scale != "none":
        x = grouped if scale == "group" else rewards.view(1, -1)  # (n_prompts, G) or (1, B)
        n = x.shape[1]
        var = ((x - x.mean(dim=1, keepdim=True)) ** 2).mean(dim=1, keepdim=True) * n / (n - ddof)
        advantages = advantages / (var.sqrt() + eps)  # / (std + eps)
    advantages = torch.where(_tied(grouped), 0.0, advantages)  # exactly 0, even if eps = 0
    return advantages.flatten()  # (B,)


def rloo_advantages(rewards: Tensor, group_size: int) -> Tensor:
    """REINFORCE leave-one-out advantage: each reward minus the mean of the others in its group.

    Equation: A_i = r_i - 1/(G-1) * sum_{j != i} r_j  ( = G/(G-1) * (r_i - mean_group r) ).

    Papers: Kool et al. 2019 ("Buy 4 REINFORCE samples, get a baseline for free!"); Ahmadian
    et al. 2024, arXiv:2402.14740, section 3.2. No std scaling; an all-equal group gets exactly 0.

    Shapes: ``rewards`` (B,) prompt-major, B = n_prompts * group_size; result (B,).
    """
    _check_rewards(rewards)
    _check_group_size(group_size, rewards.shape[0])
    grouped = rewards.view(-1, group_size)  # (n_prompts, G)
    baseline = (grouped.sum(dim=1, keepdim=True) - grouped) / (group_size - 1)  # mean_{j != i}
    advantages = torch.where(_tied(grouped), 0.0, grouped - baseline)  # (n_prompts, G)
    return advantages.flatten()  # (B,)


def reinforce_advantages(rewards: Tensor, baseline: float | None = None) -> Tensor:
    """REINFORCE advantage: each reward minus one baseline shared by the whole batch.

    Equation: A_i = r_i - b, with b = mean_j r_j over the batch (``baseline=None``) or a given
    constant (``baseline=0.0`` is plain REINFORCE, no baseline).

    Paper: Williams 1992, "Simple statistical gradient-following algorithms", section 4
    (reinforcement baseline). Groups play no role here.

    Shapes: ``rewards`` (B,); result (B,).
    """
    _check_rewards(rewards)
    if baseline is not None and not math.isfinite(baseline):
        raise ValueError(f"baseline must be a finite number or None, got {baseline!r}")
    b = rewards.mean() if baseline is None else baseline  # b
    return rewards - b  # (B,)


# ---------------------------------------------------------------------------- token advantages
def gae(
    token_rewards: Tensor, values: Tensor, mask: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> tuple[Tensor, Tensor]:
    """Generalized Advantage Estimation: per-token advantages and returns for PPO.

    Equations: delta_t = r_t + gamma * V_{t+1} - V_t
               A_t     = sum_{l >= 0} (gamma * lam)^l * delta_{t+l}   (= delta_t + gamma lam A_{t+1})
               R_t     = A_t + V_t                                     (target of the critic)

    Paper: Schulman et al. 2016, arXiv:1506.02438, eq. 16.

    Conventions: the episode ends at a row's last real token, so V and A after it are 0 (the
    end of a completion, EOS or truncation at the length limit, is treated as terminal; with
    truncation this is a choice: bootstrapping from V there is the other one). Masked positions
    get A = R = 0 and their rewards and values never reach earlier tokens. The mask must be
    right-padded. Computed by a loop backwards over T (clear, and T is small).

    Shapes: ``token_rewards``, ``values``, ``mask`` (B, T); results ``(advantages, returns)``,
    both (B, T).
    """
    _check_same_shape(token_rewards=token_rewards, values=values, mask=mask)
    _check_right_padded(mask)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam!r}")

    mask = mask.to(values.dtype)  # (B, T)
    values = values * mask  # V_t, 0 after the end  (B, T)
    B, T = values.shape
    advantages = torch.zeros_like(values)  # (B, T)
    next_value = torch.zeros(B, dtype=values.dtype, device=values.device)  # V_{t+1}  (B,)
    next_adv = torch.zeros_like(next_value)  # A_{t+1}  (B,)
    for t in reversed(range(T)):
        delta = token_rewards[:, t] + gamma * next_value - values[:, t]  # delta_t  (B,)
        adv = (delta + gamma * lam * next_adv) * mask[:, t]  # A_t, 0 on padding  (B,)
        advantages[:, t] = adv
        next_value, next_adv = values[:, t], adv
    returns = (advantages + values) * mask  # R_t = A_t + V_t  (B, T)
    return advantages, returns


def whiten(x: Tensor, mask: Tensor, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """Whiten ``x`` with the mean and std of its real (mask = 1) positions.

    Equation: (x - mean) / sqrt(var + eps), mean and var over the masked positions of the whole
    tensor; var is unbiased: sum(mask * (x - mean)^2) / (n - 1), n = sum(mask).

    Source: InstructGPT-style PPO (Ouyang et al. 2022, arXiv:2203.02155) as implemented by TRL's
    PPO ``masked_whiten`` / ``masked_var(unbiased=True)`` (removed from TRL 1.x; this follows
    its last version). ``shift_mean=False`` adds the mean back after scaling, as TRL does (used
    for rewards, whose sign matters). Unlike ``masked_whiten``, the output is 0 on masked
    positions (TRL's PPO zeroes them in a separate ``masked_fill``).

    Shapes: ``x`` and ``mask`` (B, T) (any equal shapes); result like ``x``.
    """
    if x.shape != mask.shape:
        raise ValueError(f"x has shape {tuple(x.shape)} but mask has shape {tuple(mask.shape)}")
    n = mask.sum().item()
    if n < 2:
        raise ValueError(f"mask must select at least 2 positions to whiten, got {n}")
    mean = masked_mean(x, mask)  # scalar
    var = masked_mean((x - mean) ** 2, mask) * n / (n - 1)  # unbiased (Bessel)
    whitened = (x - mean) * torch.rsqrt(var + eps)  # (B, T)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(x.dtype)  # (B, T), 0 on padding


__all__ = [
    "SCALES",
    "gae",
    "group_advantages",
    "masked_mean",
    "reinforce_advantages",
    "rloo_advantages",
    "whiten",
]

"""Tensor helpers and argument checks that every tensor stage shares (torch only, no model).

A completion batch is (B, T) with right padding: ``mask`` is 1 (or True) on a row's real
completion tokens and 0 after its end. Reductions over such a batch must skip the padding, and
every stage (``advantages``, ``losses``, ``algorithms``) needs the same few of them::

    masked_mean   sum(x * mask) / max(sum(mask), 1)          over all elements or one dim
    masked_sum    sum(x * mask)                              over all elements or one dim
    whiten        (x - mean) / std over the real positions   PPO's advantage normalisation
    entropy_from_logits   H = -sum_v p_v log p_v per position, stable for large logits

The ``check_*`` functions raise a ``ValueError`` that names the argument and the value, so bad
input fails with a clear message before any work starts, never deep inside torch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


# ----------------------------------------------------------------------------------- checks
def check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    """ValueError unless ``value`` is one of ``valid``."""
    if value not in valid:
        raise ValueError(f"{name} must be one of {valid}, got {value!r}")


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """ValueError unless ``value`` is a finite number > 0 (or >= 0 with ``allow_zero``)."""
    try:
        number = float(value) if not isinstance(value, bool | str) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    relation = ">=" if allow_zero else ">"
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number {relation} 0, got {value!r}")
    if not (number >= 0 if allow_zero else number > 0):
        raise ValueError(f"{name} must be {relation} 0, got {value!r}")


def check_int(name: str, value: int, minimum: int = 1) -> None:
    """ValueError unless ``value`` is an int (not a bool, float or string) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


def check_finite(name: str, x: Tensor) -> None:
    """ValueError if ``x`` holds NaN or inf (names the first few positions)."""
    bad = (~torch.isfinite(x)).nonzero().tolist()
    if bad:
        raise ValueError(f"{name} contains NaN or inf at positions {bad[:10]}")


def check_rewards(rewards: Tensor, name: str = "rewards") -> None:
    """ValueError unless ``rewards`` is a 1-D floating tensor of finite numbers."""
    if not isinstance(rewards, Tensor) or rewards.dim() != 1:
        shape = tuple(rewards.shape) if isinstance(rewards, Tensor) else type(rewards).__name__
        raise ValueError(f"{name} must be a 1-D tensor of shape (B,), got {shape}")
    if not rewards.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {rewards.dtype}")
    bad = (~torch.isfinite(rewards)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"{name} contains NaN or inf at rows {bad}")


def check_group_size(group_size: int, n_rows: int, name: str = "rewards") -> None:
    """ValueError unless ``group_size`` is an int >= 2 that divides ``n_rows``."""
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 2:
        raise ValueError(f"group_size must be an int >= 2, got {group_size!r}")
    if n_rows % group_size != 0:
        raise ValueError(f"{name} has {n_rows} rows, not divisible by group_size={group_size}")


def check_same_shape(**tensors: Tensor) -> None:
    """ValueError unless every tensor is 2-D (B, T) and all have the first one's shape."""
    (first, ref), *others = tensors.items()
    if ref.dim() != 2:
        raise ValueError(f"{first} must be 2-D (B, T), got shape {tuple(ref.shape)}")
    for name, x in others:
        if x.shape != ref.shape:
            raise ValueError(
                f"{first} has shape {tuple(ref.shape)} but {name} has shape {tuple(x.shape)}"
            )


def check_right_padded(mask: Tensor) -> None:
    """ValueError unless every row of ``mask`` is 1 ... 1 0 ... 0 (real tokens, then padding)."""
    m = mask.to(torch.int8)  # (B, T)
    holes = (m[:, 1:] > m[:, :-1]).any(dim=1).nonzero().flatten().tolist()  # a 0 then a 1
    if holes:
        raise ValueError(
            f"mask must be right-padded (1s then 0s) in every row, not at rows {holes}"
        )


# ------------------------------------------------------------------------------- reductions
def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Sum of ``x`` over the positions where ``mask`` is 1: sum(x * mask), over ``dim`` or all.

    Shapes: ``x`` broadcastable to ``mask``; result a scalar (``dim=None``) or ``mask`` without
    ``dim``.
    """
    masked = x * mask.to(x.dtype)
    return masked.sum() if dim is None else masked.sum(dim)


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
    count = mask.sum() if dim is None else mask.sum(dim)
    return masked_sum(x, mask, dim) / count.clamp(min=1.0)


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
    check_finite("x (on real positions)", x[mask.bool()])
    n = mask.sum().item()
    if n < 2:
        raise ValueError(f"mask must select at least 2 positions to whiten, got {n}")
    mean = masked_mean(x, mask)  # scalar
    var = masked_mean((x - mean) ** 2, mask) * n / (n - 1)  # unbiased (Bessel)
    whitened = (x - mean) * torch.rsqrt(var + eps)  # (B, T)
    if not shift_mean:
        whitened = whitened + mean
    return whitened * mask.to(x.dtype)  # (B, T), 0 on padding


def entropy_from_logits(logits: Tensor) -> Tensor:
    """Entropy of the next-token distribution at each position, in nats.

    Equation: H = -sum_v p_v log p_v = logsumexp(z) - sum_v softmax(z)_v z_v

    Convention: z is first shifted by its max (H does not change), so the formula neither
    overflows nor loses digits to cancellation when logits are large (1e4 - 1e4 in float32).

    Shapes: ``logits`` (B, T, V); result (B, T).
    """
    if logits.dim() < 1:
        raise ValueError(
            f"logits must have a vocabulary dimension, got shape {tuple(logits.shape)}"
        )
    z = logits - logits.amax(dim=-1, keepdim=True).detach()  # z - max(z)  (B, T, V)
    probs = torch.softmax(z, dim=-1)  # (B, T, V)
    return torch.logsumexp(z, dim=-1) - (probs * z).sum(dim=-1)  # H  (B, T)


__all__ = [
    "check_choice",
    "check_finite",
    "check_group_size",
    "check_int",
    "check_positive",
    "check_rewards",
    "check_right_padded",
    "check_same_shape",
    "entropy_from_logits",
    "masked_mean",
    "masked_sum",
    "whiten",
]

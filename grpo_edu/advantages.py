"""Advantages: how good was each completion (or token) compared with a baseline.

Every estimator of this stage in one place, each one equation::

    group_advantages      GRPO: (r_i - mean_group r) / (std + eps)      one number per completion
    rloo_advantages       RLOO: r_i - mean_{j != i} r_j                 one number per completion
    reinforce_advantages  REINFORCE: r_i - b                            one number per completion
    gae                   PPO: sum_l (gamma lam)^l delta_{t+l}          one number per token
    whiten                PPO: (A - mean A) / std A over real tokens
    process_advantages    GRPO+PS: sum of the group-normalised rewards  one number per token
                          of the steps that end at or after the token

Batch layout is prompt-major: ``B = n_prompts * G`` rows ``p0g0 .. p0g(G-1), p1g0, ...``, so
``rewards.view(n_prompts, G)`` puts each prompt's group on one row. ``mask`` is (B, T), 1 (or True)
for the real completion tokens of a row and 0 on the right padding after its end.

The masked reductions (``masked_mean``, ``whiten``) and the argument checks live in ``masked``,
shared with ``losses``; ``whiten`` and ``masked_mean`` are re-exported here for convenience.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .masked import (
    check_choice,
    check_finite,
    check_group_size,
    check_positive,
    check_rewards,
    check_right_padded,
    check_same_shape,
    masked_mean,
    whiten,
)

SCALES = ("group", "batch", "none")
"""Valid ``scale`` values of ``group_advantages``."""


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
    check_rewards(rewards)
    check_group_size(group_size, rewards.shape[0])
    check_choice("scale", scale, SCALES)
    if isinstance(ddof, bool) or not isinstance(ddof, int) or not 0 <= ddof < group_size:
        raise ValueError(f"ddof must be an int in [0, group_size={group_size}), got {ddof!r}")
    check_positive("eps", eps, allow_zero=True)

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
    check_rewards(rewards)
    check_group_size(group_size, rewards.shape[0])
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
    check_rewards(rewards)
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
    check_same_shape(token_rewards=token_rewards, values=values, mask=mask)
    check_right_padded(mask)
    check_finite("token_rewards (on real tokens)", token_rewards[mask.bool()])
    check_finite("values (on real tokens)", values[mask.bool()])
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma!r}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam!r}")

    real = mask.bool()  # (B, T)
    mask = mask.to(values.dtype)  # (B, T)
    values = torch.where(real, values, 0.0)  # V_t, 0 after the end  (B, T)
    token_rewards = torch.where(real, token_rewards, 0.0)  # padding never reaches a real token
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


# ------------------------------------------------------------------------ process supervision
def process_advantages(
    step_rewards: Tensor,
    step_mask: Tensor,
    group_size: int,
    ddof: int = 1,
    eps: float = 1e-4,
) -> Tensor:
    """GRPO process-supervision advantage: each token earns the normalised rewards of the steps
    that end at or after it.

    Equations (DeepSeekMath, Shao et al. 2024, arXiv:2402.03300, section 4.1.3): step j of
    completion i ends at token index(j) and gets reward r_i^index(j) from a process reward model;
        r~_i^index(j) = (r_i^index(j) - mean(R)) / (std(R) + eps)
    where R is the set of rewards of *all steps of all G completions of the group*, and
        A_i,t = sum_{j : index(j) >= t} r~_i^index(j).
    So a token is credited with the steps it led to: an early token with all of them, the last
    step's tokens with that step only; tokens after the last step's end get 0.

    Conventions (the paper specifies neither): ``ddof=1`` and ``eps=1e-4`` added to the std, as
    ``group_advantages``; a group whose step rewards are all equal gets exactly 0.

    Shapes: ``step_rewards`` (B, T), float, the reward of each step placed at the token where
    the step ends (0 elsewhere); ``step_mask`` (B, T), True (or 1) exactly at those tokens; every
    row has at least one step; B = n_prompts * group_size, prompt-major. Result (B, T).
    """
    check_same_shape(step_rewards=step_rewards, step_mask=step_mask)
    check_group_size(group_size, step_rewards.shape[0], "step_rewards")
    check_positive("eps", eps, allow_zero=True)
    if not step_rewards.is_floating_point():
        raise ValueError(f"step_rewards must be a floating tensor, got dtype {step_rewards.dtype}")
    check_finite("step_rewards", step_rewards)
    m = step_mask.to(step_rewards.dtype)  # (B, T) 1 where a step ends
    empty = (m.sum(-1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"step_mask has no step in rows {empty[:10]}: every completion has one")
    B, T = step_rewards.shape
    r = step_rewards.view(-1, group_size * T)  # (n_prompts, G*T): a group's steps on one row
    mg = m.view(-1, group_size * T)  # (n_prompts, G*T)
    count = mg.sum(-1, keepdim=True)  # (n_prompts, 1) steps in the group
    if ddof >= count.min().item():
        raise ValueError(f"ddof={ddof} needs more than {ddof} steps in every group")
    mean = (r * mg).sum(-1, keepdim=True) / count  # mean(R)
    var = (((r - mean) * mg) ** 2).sum(-1, keepdim=True) / (count - ddof)
    normed = (r - mean) / (var.sqrt() + eps) * mg  # r~, 0 where no step ends  (n_prompts, G*T)
    is_step = mg.bool()
    highest = torch.where(is_step, r, -torch.inf).amax(-1, keepdim=True)  # (n_prompts, 1)
    tied = highest == torch.where(is_step, r, torch.inf).amin(-1, keepdim=True)
    normed = torch.where(tied, 0.0, normed).view(B, T)  # exactly 0 for an all-equal group
    return normed.flip(-1).cumsum(-1).flip(-1)  # A_t = sum_{t' >= t} r~_t'  (B, T)


__all__ = [
    "SCALES",
    "gae",
    "group_advantages",
    "masked_mean",
    "process_advantages",
    "reinforce_advantages",
    "rloo_advantages",
    "whiten",
]

"""The hyperparameters of each training algorithm, and the checks that run before any work.

Configs are frozen dataclasses with a docstring under every field: build them directly and vary
them with ``dataclasses.replace``. ``check_config`` raises a ``ValueError`` naming the field and
its value for every setting that would otherwise fail deep inside torch or train silently; every
step function calls it first, and so does the trainer before its first rollout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..advantages import SCALES
from ..losses import AGGREGATIONS, KL_ESTIMATORS, LEVELS
from ..masked import check_choice, check_int, check_positive
from ..rollout import Rollout

ADVANTAGES = ("group", "rloo", "process")
"""Valid ``GRPOConfig.advantage`` values."""


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO hyperparameters. Defaults follow DeepSeekMath (arXiv:2402.03300, sec. 4.1-4.2)."""

    clip_eps: float = 0.2
    """epsilon of the clipped ratio, in (0, 1) (typically 0.1..0.3)."""
    clip_eps_high: float | None = None
    """Upper clip bound 1 + clip_eps_high; None = clip_eps. DAPO's clip-higher uses 0.28."""
    delta: float | None = None
    """Two-sided clipping: the unclipped ratio is capped at delta (INTELLECT-2; e.g. 4.0)."""
    level: str = "token"
    """``"token"`` ratios (GRPO) or one ``"sequence"`` ratio (GSPO, arXiv:2507.18071)."""
    kl_coef: float = 0.04
    """beta, weight of the KL term in the loss (0..0.1)."""
    kl_estimator: str = "k3"
    """Estimator of KL(pi || pi_ref) in the loss: k3 in DeepSeekMath eq. 4; k1, k2 to compare."""
    kl_bias_correction: bool = False
    """Multiply the KL term by the ratio (TRL ``use_bias_correction_kl``)."""
    measure_kl: bool = True
    """Run the reference forward to log ``kl`` even when ``kl_coef = 0``. False skips it when
    ``kl_coef = 0`` (faster, for speed benchmarks; ``kl`` is then NaN)."""
    aggregation: str = "grpo"
    """How token losses are averaged: grpo (per-sequence mean), bnpo, dr_grpo, dapo."""
    advantage: str = "group"
    """``"group"`` z-score (GRPO) or ``"rloo"`` leave-one-out baseline (G/(G-1) times Dr. GRPO's
    unscaled advantage), used inside GRPO's clipped loss; or ``"process"``: process supervision
    (DeepSeekMath sec. 4.1.3, ``advantages.process_advantages``), one advantage per token from
    the scores of each step, which the step function then needs (``step_rewards``; the trainer
    computes them with ``TrainConfig.step_rewards``). ``scale`` does not apply to it."""
    scale: str = "group"
    """Std used by the group advantage: ``"group"``, ``"batch"``, or ``"none"`` (Dr. GRPO)."""
    ddof: int = 1
    """Degrees of freedom of the group std (1 = unbiased, as torch.std and TRL)."""
    adv_eps: float = 1e-4
    """Added to the std before dividing (TRL: 1e-4)."""
    mu: int = 1
    """Inner iterations over each rollout batch (DeepSeekMath: 1; > 1 makes clipping matter)."""
    n_minibatches: int = 1
    """Optimizer steps per inner iteration; rows are shuffled into this many minibatches."""
    max_grad_norm: float = 1.0
    """Gradient clipping on the policy (0 = off)."""

    def loss_kwargs(self, max_completion_length: int | None) -> dict:
        """The keyword arguments of ``losses.policy_loss`` this config sets, but the KL's."""
        return dict(
            clip_eps=self.clip_eps,
            clip_eps_high=self.clip_eps_high,
            delta=self.delta,
            level=self.level,
            kl_estimator=self.kl_estimator,
            kl_bias_correction=self.kl_bias_correction,
            aggregation=self.aggregation,
            max_completion_length=max_completion_length,
        )


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters: the InstructGPT-style recipe DeepSeekMath compares GRPO with."""

    clip_eps: float = 0.2
    """epsilon of the clipped ratio, in (0, 1) (typically 0.1..0.3)."""
    kl_coef: float = 0.04
    """beta of the per-token KL penalty in the reward: r_t = -beta * k1_t (+ R at the last token)."""
    kl_estimator: str = "k1"
    """Estimator in the reward penalty: k1 = log pi_old - log pi_ref, as InstructGPT and TRL PPO."""
    gamma: float = 1.0
    """Discount, in [0, 1] (1.0: every token of an answer counts equally)."""
    lam: float = 0.95
    """GAE lambda, in [0, 1] (typically 0.9..1.0): bias-variance trade-off of the advantage."""
    clip_range_value: float = 0.2
    """Clip of the critic's update around its old values (> 0)."""
    vf_coef: float = 0.1
    """Weight of the value loss in the total loss (0.1..1)."""
    whiten_advantages: bool = True
    """Whiten GAE advantages over the batch's real tokens."""
    mu: int = 1
    """Inner iterations (PPO epochs) over each rollout batch."""
    n_minibatches: int = 1
    """Optimizer steps per inner iteration."""
    max_grad_norm: float = 1.0
    """Gradient clipping over policy and critic (0 = off)."""

    def loss_kwargs(self, max_completion_length: int | None) -> dict:
        """The keyword arguments of ``losses.policy_loss`` this config sets: PPO's clip, and the
        mean over all real tokens of the batch (``bnpo``); its KL is in the reward, not the loss."""
        return dict(clip_eps=self.clip_eps, aggregation="bnpo")


def _check_unit(name: str, value: float, closed: bool) -> None:
    """ValueError unless ``value`` is in [0, 1] (``closed``) or (0, 1)."""
    check_positive(name, value, allow_zero=closed)
    if not (value <= 1 if closed else value < 1):
        raise ValueError(f"{name} must be in {'[0, 1]' if closed else '(0, 1)'}, got {value!r}")


def _check_shared(config: GRPOConfig | PPOConfig) -> None:
    """The fields GRPOConfig and PPOConfig share."""
    name = type(config).__name__
    _check_unit(f"{name}.clip_eps", config.clip_eps, closed=False)  # 1 - eps must stay > 0
    check_positive(f"{name}.kl_coef", config.kl_coef, allow_zero=True)
    check_choice(f"{name}.kl_estimator", config.kl_estimator, KL_ESTIMATORS)
    check_int(f"{name}.mu", config.mu)
    check_int(f"{name}.n_minibatches", config.n_minibatches)
    check_positive(f"{name}.max_grad_norm", config.max_grad_norm, allow_zero=True)


def check_config(config: GRPOConfig | PPOConfig, group_size: int | None = None) -> None:
    """Clear errors for settings that would otherwise fail deep inside torch or train silently."""
    if not isinstance(config, GRPOConfig | PPOConfig):
        raise ValueError(f"config must be a GRPOConfig or PPOConfig, got {type(config).__name__}")
    _check_shared(config)
    if isinstance(config, PPOConfig):
        _check_unit("PPOConfig.gamma", config.gamma, closed=True)
        _check_unit("PPOConfig.lam", config.lam, closed=True)
        check_positive("PPOConfig.clip_range_value", config.clip_range_value)
        check_positive("PPOConfig.vf_coef", config.vf_coef, allow_zero=True)
        return
    if group_size is not None and group_size < 2:
        raise ValueError(
            f"GRPO needs group_size >= 2 (one answer has no group baseline), got {group_size}"
        )
    if config.clip_eps_high is not None:
        check_positive("GRPOConfig.clip_eps_high", config.clip_eps_high)
    high = 1 + (config.clip_eps if config.clip_eps_high is None else config.clip_eps_high)
    if config.delta is not None and not (math.isfinite(config.delta) and config.delta > high):
        raise ValueError(
            f"GRPOConfig.delta must be > 1 + clip_eps_high = {high}, got {config.delta!r}"
        )
    check_choice("GRPOConfig.aggregation", config.aggregation, AGGREGATIONS)
    check_choice("GRPOConfig.level", config.level, LEVELS)
    check_choice("GRPOConfig.advantage", config.advantage, ADVANTAGES)
    check_choice("GRPOConfig.scale", config.scale, SCALES)
    check_int("GRPOConfig.ddof", config.ddof, minimum=0)
    check_positive("GRPOConfig.adv_eps", config.adv_eps, allow_zero=True)


def check_rewards(rewards: torch.Tensor, rollout: Rollout) -> None:
    """ValueError unless ``rewards`` is (B,), one finite number per completion of ``rollout``."""
    B = len(rollout.completion_ids)
    if rewards.shape != (B,):
        raise ValueError(
            f"rewards must have shape ({B},), one per completion, got {tuple(rewards.shape)}"
        )
    bad = (~torch.isfinite(rewards)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"rewards contains NaN or inf at rows {bad[:10]}")

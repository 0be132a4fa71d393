"""Each algorithm's learning signal, computed once per rollout before its updates.

GRPO   grpo_advantages     A_i from the group of G answers to one prompt      (B,)
                           or, process supervision, A_i,t from step scores    (B, T)
PPO    ppo_token_rewards   r_t = -beta * KL_t, plus R at the last token       (B, T)
       ppo_advantages      GAE(gamma, lambda) over V(s_t), whitened           (B, T)
"""

from __future__ import annotations

import torch

from ..advantages import gae, group_advantages, process_advantages, rloo_advantages
from ..losses import kl_penalty
from ..masked import whiten
from .configs import GRPOConfig, PPOConfig


def grpo_advantages(
    rewards: torch.Tensor,
    group_size: int,
    config: GRPOConfig,
    step_rewards: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """GRPO's advantage of each answer, (B,): the group z-score (``config.advantage="group"``,
    DeepSeekMath sec. 4.1.2) or the leave-one-out baseline (``"rloo"``); with ``"process"``,
    of each token, (B, T), from ``step_rewards`` = (step scores, step-end mask), each (B, T)
    (DeepSeekMath sec. 4.1.3, ``process_advantages``)."""
    if config.advantage == "process":
        if step_rewards is None:
            raise ValueError(
                "GRPOConfig(advantage='process') needs step_rewards, the (scores, step-end "
                "mask) of every step: set TrainConfig.step_rewards, or pass them to grpo_step"
            )
        return process_advantages(*step_rewards, group_size, config.ddof, config.adv_eps)
    if config.advantage == "rloo":
        return rloo_advantages(rewards, group_size)
    return group_advantages(rewards, group_size, config.scale, config.ddof, config.adv_eps)


def ppo_token_rewards(
    rewards: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    kl_estimator: str = "k1",
) -> torch.Tensor:
    """PPO's per-token reward, (B, T): -beta * KL_t on every token, plus R at the last token.

    InstructGPT (Ouyang et al. 2022, eq. 2) puts the KL to the reference inside the reward, one
    term per token, KL_t = kl_penalty(log pi_old(o_t), log pi_ref(o_t)) (k1 = the log-ratio), and
    the sequence's reward R(q, o) on its last real token (its EOS, or the last one if truncated).
    GRPO instead keeps the reward per answer and puts beta * KL in the loss.
    """
    if mask.shape != old_logp.shape or ref_logp.shape != old_logp.shape:
        raise ValueError(
            f"old_logp {tuple(old_logp.shape)}, ref_logp {tuple(ref_logp.shape)} and mask "
            f"{tuple(mask.shape)} must have the same (B, T) shape"
        )
    if rewards.shape != (len(mask),):
        raise ValueError(f"rewards must have shape ({len(mask)},), got {tuple(rewards.shape)}")
    token_rewards = -kl_coef * kl_penalty(old_logp, ref_logp, kl_estimator) * mask  # (B, T)
    last = (mask.sum(-1).long() - 1).clamp(min=0)  # (B,) index of each row's last real token
    token_rewards[torch.arange(len(rewards)), last] += rewards  # R at the last token
    return token_rewards


def ppo_advantages(
    token_rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, config: PPOConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns), each (B, T): GAE(gamma, lambda) of the token rewards over the
    critic's values (Schulman et al. 2016), advantages whitened over the batch's real tokens."""
    advantages, returns = gae(token_rewards, values, mask, config.gamma, config.lam)
    if config.whiten_advantages:
        advantages = whiten(advantages, mask)  # (B, T)
    return advantages, returns

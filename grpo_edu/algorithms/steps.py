"""GRPO and PPO: one update each, two explicit functions over the same pieces.

``grpo_step`` and ``ppo_step`` are written statement for statement alike, so that ``diff`` of
their bodies shows exactly GRPO's three claims (the notation is the README's: rho_t the ratio,
A the advantage, R the task reward, beta the KL weight):

1. the baseline and advantage: the group of G answers (``grpo_advantages``, one A per answer)
   instead of a learned critic and GAE (``critic_values``, ``ppo_advantages``, one A per token);
2. where the KL enters: beta * k3_t in GRPO's loss, -beta * k1_t in PPO's per-token reward
   (``ppo_token_rewards``);
3. the critic's loss: PPO trains V with ``value_loss``; GRPO has no critic to train.

Both take a ``Rollout`` (prompt-major, see ``rollout``) and its ``rewards`` (B,), run ``mu``
inner iterations over ``n_minibatches`` minibatches with the stored ``old_logp`` (the sampling
log-probs), so later iterations really are off-policy and clipping happens, and return
``(metrics, traces)`` through the same ``StepLog`` (same metric keys, README "Metrics").
``loss_fn`` is the policy loss, ``losses.policy_loss`` by default: exercises and variants pass
their own with the same signature.
"""

from __future__ import annotations

import torch

from ..logprobs import completion_logprobs, critic_values, reference_logp
from ..losses import policy_loss, value_loss
from ..rollout import Rollout
from .configs import GRPOConfig, PPOConfig, check_config, check_rewards
from .signals import grpo_advantages, ppo_advantages, ppo_token_rewards
from .trace import StepLog, StepTrace, take_rows
from .updates import optimizer_params, optimizer_step, update_schedule


def grpo_step(
    policy,
    ref_model,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    rewards: torch.Tensor,
    config: GRPOConfig = GRPOConfig(),
    generator: torch.Generator | None = None,
    trace: bool = False,
    loss_fn=policy_loss,
    step_rewards: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[dict[str, float], list[StepTrace]]:
    """One GRPO update (DeepSeekMath, arXiv:2402.03300, eq. 3 and sec. 4.1.2).

    1. advantages: A_i = (r_i - mean(r_group)) / (std(r_group) + eps), one per answer, (B,)
       (process supervision, ``config.advantage="process"``: one per token from
       ``step_rewards``, sec. 4.1.3; ``rewards`` then only feed the metrics)
    2. the KL to pi_ref enters the loss, + beta * k3_t per token
    3. mu iterations x minibatches: loss = aggregate(-min(rho_t A, clip(rho_t) A) + beta * k3_t)
    No critic anywhere: the group is the baseline.
    """
    check_config(config, rollout.group_size)
    check_rewards(rewards, rollout)
    mask, old_logp = rollout.completion_mask, rollout.sampling_logp  # (B, T); pi_old sampled
    loss_kwargs = config.loss_kwargs(_generation_limit(rollout, config))
    with torch.no_grad():
        ref_logp = reference_logp(ref_model, rollout) if _has_reference(config) else None
        advantages = grpo_advantages(rewards, rollout.group_size, config, step_rewards)  # 1. A_i
        old_values = returns = token_rewards = None  # no critic, one reward per answer
    tensors = (advantages, ref_logp, old_values, returns, token_rewards)
    log = StepLog("grpo", rollout, rewards, *tensors, trace=trace)
    params = optimizer_params(optimizer)
    for iteration, rows in update_schedule(
        config, len(rewards), generator, rewards.device
    ):  # 3. the update
        logp, entropy = completion_logprobs(policy, rollout, rows)  # (b, T)
        batch = (logp, old_logp[rows], advantages[rows], mask[rows])
        kl = {"ref_logp": take_rows(ref_logp, rows), "kl_coef": config.kl_coef}  # 2. in the loss
        pg_loss, info = loss_fn(*batch, **kl, **loss_kwargs)
        values = vf_loss = vf_clipfrac = None  # no critic to train
        loss = pg_loss
        grad_norm = optimizer_step(params, optimizer, loss, config.max_grad_norm)
        losses = {"policy": pg_loss, "value": vf_loss, "value_clipfrac": vf_clipfrac, "total": loss}
        log.add(iteration, rows, logp, entropy, info, losses, grad_norm, values)
    return log.result()


def ppo_step(
    policy,
    critic,
    ref_model,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    rewards: torch.Tensor,
    config: PPOConfig = PPOConfig(),
    generator: torch.Generator | None = None,
    trace: bool = False,
    loss_fn=policy_loss,
) -> tuple[dict[str, float], list[StepTrace]]:
    """One PPO update, InstructGPT style (Ouyang et al. 2022; Schulman et al. 2017).

    1. advantages: GAE(gamma, lambda) over the critic's V(s_t), whitened, one per token, (B, T)
    2. the KL to pi_ref enters the reward: R_t = -beta * k1_t, plus R at the last real token
    3. mu iterations x minibatches: loss = mean_t(-min(rho_t A_t, clip(rho_t) A_t)) + c_v * L_V
    ``optimizer`` holds the parameters of both the policy and the critic.
    """
    check_config(config)
    check_rewards(rewards, rollout)
    mask, old_logp = rollout.completion_mask, rollout.sampling_logp  # (B, T); pi_old sampled
    loss_kwargs = config.loss_kwargs(_generation_limit(rollout, config))
    with torch.no_grad():
        ref_logp = reference_logp(ref_model, rollout) if _has_reference(config) else None
        token_rewards = ppo_token_rewards(
            rewards, old_logp, ref_logp, mask, config.kl_coef, config.kl_estimator
        )  # 2. the KL in the reward, (B, T)
        old_values = critic_values(critic, rollout)  # V(s_t), (B, T)
        advantages, returns = ppo_advantages(token_rewards, old_values, mask, config)  # 1. (B, T)
    tensors = (advantages, ref_logp, old_values, returns, token_rewards)
    log = StepLog("ppo", rollout, rewards, *tensors, trace=trace)
    params = optimizer_params(optimizer)
    for iteration, rows in update_schedule(
        config, len(rewards), generator, rewards.device
    ):  # 3. the update
        logp, entropy = completion_logprobs(policy, rollout, rows)  # (b, T)
        batch = (logp, old_logp[rows], advantages[rows], mask[rows])
        pg_loss, info = loss_fn(*batch, **loss_kwargs)
        values = critic_values(critic, rollout, rows)  # (b, T)
        vf_loss, vf_clipfrac = value_loss(
            values, old_values[rows], returns[rows], mask[rows], config.clip_range_value
        )
        loss = pg_loss + config.vf_coef * vf_loss
        grad_norm = optimizer_step(params, optimizer, loss, config.max_grad_norm)
        losses = {"policy": pg_loss, "value": vf_loss, "value_clipfrac": vf_clipfrac, "total": loss}
        log.add(iteration, rows, logp, entropy, info, losses, grad_norm, values)
    return log.result()


def _has_reference(config: GRPOConfig | PPOConfig) -> bool:
    """Run the reference forward: the KL needs it, and the ``kl`` metric is measured with it
    even at beta = 0, unless ``GRPOConfig.measure_kl`` is off (PPO's reward always needs it)."""
    return config.kl_coef > 0 or getattr(config, "measure_kl", True)


def _generation_limit(rollout: Rollout, config: GRPOConfig | PPOConfig) -> int | None:
    """Dr. GRPO's constant: the generation limit the rollout was sampled with."""
    if getattr(config, "aggregation", None) == "dr_grpo" and rollout.max_new_tokens is None:
        raise ValueError(
            "aggregation='dr_grpo' divides by the generation limit, but rollout.max_new_tokens "
            "is None (a hand-built rollout): set it to the max_new_tokens it was sampled with"
        )
    return rollout.max_new_tokens

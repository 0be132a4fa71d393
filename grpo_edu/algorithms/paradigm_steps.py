"""SFT, RFT, online RFT and DPO: one update each, beside ``grpo_step`` and ``ppo_step``.

They take what ``grpo_step`` takes (policy, reference, optimizer, a ``Rollout`` and its
``rewards``, a config, a generator, ``trace``, ``loss_fn``) and return the same ``(metrics,
traces)`` through the same ``StepLog``: the same metric keys, NaN where a method has no such
quantity (no clipping, no critic). What makes them different methods is the data they are
given (``trainer.sources``) and their gradient coefficient (``coefficients``):

    sft_step   GC = 1 on the task's reference answers
    rft_step   GC = 1[r >= threshold]: offline RFT on warm-start samples, online RFT on the
               current policy's samples (one function: the paper's point is that only D differs)
    dpo_step   pairs (o+, o-) from each group, GC = +- beta sigmoid(beta (Delta- - Delta+))

``_likelihood_step`` is written statement for statement like ``grpo_step``: ``diff`` shows the
coefficient in place of the advantage and no KL in the loss (``tests/test_paradigm.py``).
"""

from __future__ import annotations

import math

import torch

from ..logprobs import completion_logprobs, reference_logp
from ..rollout import Rollout
from .coefficients import (
    CLIP_KEYS,
    dpo_loss,
    likelihood_loss,
    preference_pairs,
    rft_coefficients,
    sft_coefficients,
)
from .configs import check_rewards
from .data import select_rows
from .paradigm_configs import DPOConfig, RFTConfig, SFTConfig, check_paradigm_config
from .trace import StepLog, StepTrace, reward_metrics
from .updates import optimizer_params, optimizer_step, update_schedule


def sft_step(
    policy,
    ref_model,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    rewards: torch.Tensor,
    config: SFTConfig = SFTConfig(),
    generator: torch.Generator | None = None,
    trace: bool = False,
    loss_fn=likelihood_loss,
) -> tuple[dict[str, float], list[StepTrace]]:
    """One SFT update on reference answers (DeepSeekMath sec. 5.2.1, Table 10: GC = 1).

    loss = -1/B sum_i 1/|o_i| sum_t log pi_theta(o_it | q_i, o_i,<t), the per-answer mean
    log-likelihood of the human data (``data.reference_rollout``); ``rewards`` are not used.
    """
    check_paradigm_config(config)
    check_rewards(rewards, rollout)
    coefficients = sft_coefficients(rewards)  # GC = 1, (B,)
    args = (policy, ref_model, optimizer, rollout, rewards, coefficients, config)
    return _likelihood_step("sft", *args, generator, trace, loss_fn)


def rft_step(
    policy,
    ref_model,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    rewards: torch.Tensor,
    config: RFTConfig = RFTConfig(),
    generator: torch.Generator | None = None,
    trace: bool = False,
    loss_fn=likelihood_loss,
) -> tuple[dict[str, float], list[StepTrace]]:
    """One RFT update (Yuan et al. 2023, arXiv:2308.01825; DeepSeekMath sec. 5.2.1).

    loss = -1/B sum_i 1/|o_i| sum_t 1[r_i >= threshold] log pi_theta(o_it): SFT on the correct
    samples, the wrong ones weighted 0 (never pushed down). Offline RFT: ``rollout`` sampled
    from the warm start; online RFT: from the current policy. The gradient is GRPO's with
    beta = 0 and the 0/1 coefficient in place of the group advantage.
    """
    check_paradigm_config(config)
    check_rewards(rewards, rollout)
    coefficients = rft_coefficients(rewards, config.threshold)  # GC = 1[r >= threshold], (B,)
    args = (policy, ref_model, optimizer, rollout, rewards, coefficients, config)
    return _likelihood_step("rft", *args, generator, trace, loss_fn)


def _likelihood_step(
    algorithm, policy, ref_model, optimizer, rollout, rewards, coefficients, config, generator,
    trace, loss_fn,
):  # fmt: skip
    """The update of SFT and RFT: ``grpo_step`` with GC for A and no KL in the loss."""
    mask, old_logp = rollout.completion_mask, rollout.sampling_logp  # (B, T); pi_old sampled
    with torch.no_grad():
        ref_logp = reference_logp(ref_model, rollout) if config.measure_kl else None
        advantages = coefficients  # 1. GC_i, (B,), in the place of GRPO's A_i
        old_values = returns = token_rewards = None  # no critic, one coefficient per answer
    tensors = (advantages, ref_logp, old_values, returns, token_rewards)
    log = StepLog(algorithm, rollout, rewards, *tensors, trace=trace)
    params = optimizer_params(optimizer)
    for iteration, rows in update_schedule(
        config, len(rewards), generator, rewards.device
    ):  # 3. the update
        logp, entropy = completion_logprobs(policy, rollout, rows)  # (b, T)
        batch = (logp, old_logp[rows], advantages[rows], mask[rows])
        pg_loss, info = loss_fn(*batch)  # 2. no KL in the loss: -mean_i mean_t GC_i logp_it
        values = vf_loss = vf_clipfrac = None  # no critic to train
        loss = pg_loss
        grad_norm = optimizer_step(params, optimizer, loss, config.max_grad_norm)
        losses = {"policy": pg_loss, "value": vf_loss, "value_clipfrac": vf_clipfrac, "total": loss}
        log.add(iteration, rows, logp, entropy, info, losses, grad_norm, values)
    return log.result()


def dpo_step(
    policy,
    ref_model,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    rewards: torch.Tensor,
    config: DPOConfig = DPOConfig(),
    generator: torch.Generator | None = None,
    trace: bool = False,
    loss_fn=dpo_loss,
) -> tuple[dict[str, float], list[StepTrace]]:
    """One DPO update on the pairs of ``rollout``'s groups (Rafailov et al. 2023, eq. 7).

    1. pairs: in each group of G answers, a higher-reward answer o+ against a lower-reward o-
       (``preference_pairs``); a group whose rewards are all equal makes none
    2. loss = mean_p -log sigmoid(beta (Delta+_p - Delta-_p)), Delta = log pi_theta / pi_ref of
       one answer: the reference is part of the loss, not a penalty beside it
    3. mu iterations x minibatches of pairs
    The reward metrics are those of the whole ``rollout`` (the step's data), the rest are the
    pairs'. A step without a single pair makes no update (its loss metrics are NaN).
    """
    check_paradigm_config(config)
    check_rewards(rewards, rollout)
    chosen, rejected = preference_pairs(rewards, rollout.group_size)  # 1. (P,), (P,)
    if len(chosen) == 0:
        return _no_update(rewards, rollout), []
    pair_rows = torch.stack([chosen, rejected], 1).flatten()  # (2P,): o+_0, o-_0, o+_1, ...
    pairs = select_rows(rollout, pair_rows, group_size=2)
    mask, old_logp = pairs.completion_mask, pairs.sampling_logp  # (2P, T)
    with torch.no_grad():
        ref_logp = reference_logp(ref_model, pairs)  # 2. DPO's loss needs pi_ref
        signs = torch.tensor([1.0, -1.0], device=rewards.device).repeat(len(chosen))  # (2P,)
    log = StepLog("dpo", pairs, rewards[pair_rows], signs, ref_logp, trace=trace)
    params = optimizer_params(optimizer)
    kwargs = {"beta": config.beta, "length_normalized": config.length_normalized}
    for iteration, pair_idx in update_schedule(config, len(chosen), generator, rewards.device):
        rows = torch.stack([2 * pair_idx, 2 * pair_idx + 1], 1).flatten()  # (2p,) whole pairs
        logp, entropy = completion_logprobs(policy, pairs, rows)  # (2p, T)
        loss, info = loss_fn(logp, old_logp[rows], ref_logp[rows], mask[rows], **kwargs)
        grad_norm = optimizer_step(params, optimizer, loss, config.max_grad_norm)
        losses = {"policy": loss, "value": None, "value_clipfrac": None, "total": loss}
        log.add(iteration, rows, logp, entropy, info, losses, grad_norm)
    metrics, traces = log.result()
    return metrics | reward_metrics(rewards, rollout), traces  # the step's data, all of it


def _no_update(rewards: torch.Tensor, rollout: Rollout) -> dict[str, float]:
    """The metrics of a step that trained on nothing: its data's reward metrics, NaN elsewhere."""
    return reward_metrics(rewards, rollout) | dict.fromkeys(UPDATE_KEYS, math.nan)


UPDATE_KEYS = ("loss/policy", "loss/value", "value/clipfrac", "kl", "entropy", "grad_norm",
               *CLIP_KEYS)  # fmt: skip
"""The per-update metric keys of ``StepLog.add`` (a test checks them against a real step)."""

"""Training algorithms: what each one computes from a rollout, and its one update.

One module per concern; a new algorithm is a new step function beside these, never a new branch
inside one::

    configs   GRPOConfig, PPOConfig and ``check_config`` (every field checked before any work)
    signals   the learning signal: GRPO's group advantages; PPO's KL-shaped token rewards and GAE
    updates   the optimizer loop every step shares: minibatch schedule, optimizer step
    trace     ``StepLog`` (the same metric keys for every algorithm) and ``StepTrace`` (teaching)
    steps     ``grpo_step`` and ``ppo_step``, written to be read as a diff of each other

DeepSeekMath's unified paradigm (sec. 5.2.1): the other methods as one gradient formula::

    paradigm_configs   SFTConfig, RFTConfig, DPOConfig and ``check_paradigm_config``
    coefficients       each method's gradient coefficient GC; ``likelihood_loss``, ``dpo_loss``
    data               the data sources as rollouts: reference answers, rows, offline steps
    paradigm_steps     ``sft_step``, ``rft_step`` (offline and online RFT), ``dpo_step``

==========================  ===================================  ==================================
                            PPO (InstructGPT recipe)             GRPO (DeepSeekMath, eq. 3)
==========================  ===================================  ==================================
baseline                    a learned critic V(s_t)              the mean reward of the group
advantage                   per token, GAE(gamma, lambda),       per answer, z-score within the
                            whitened over the batch              group of G answers to one prompt
KL to the reference         a per-token penalty in the reward    a k3 term in the loss
extra model in memory       critic of the policy's size          none
==========================  ===================================  ==================================

The model forwards they use (``completion_logprobs``, ``reference_logp``, ``critic_values``) live
in ``grpo_edu.logprobs``; the losses in ``grpo_edu.losses``. Both are re-exported here, with
``policy_forward`` as the older name of ``completion_logprobs``.
"""

from ..logprobs import completion_logprobs, critic_values, reference_logp
from ..losses import policy_loss, value_loss
from .coefficients import (
    LikelihoodInfo,
    dpo_coefficients,
    dpo_loss,
    grpo_coefficients,
    likelihood_loss,
    pair_margins,
    preference_pairs,
    rft_coefficients,
    sft_coefficients,
)
from .configs import ADVANTAGES, GRPOConfig, PPOConfig, check_config, check_rewards
from .data import reference_rollout, select_rows, split_rollout
from .paradigm_configs import DPOConfig, RFTConfig, SFTConfig, check_paradigm_config
from .paradigm_steps import dpo_step, rft_step, sft_step
from .signals import grpo_advantages, ppo_advantages, ppo_token_rewards
from .steps import grpo_step, ppo_step
from .trace import StepLog, StepTrace, reward_metrics
from .updates import minibatches, optimizer_step, update_schedule

policy_forward = completion_logprobs
"""(logp, entropy) of a rollout's completion tokens: ``logprobs.completion_logprobs``."""

__all__ = [
    "ADVANTAGES",
    "DPOConfig",
    "GRPOConfig",
    "LikelihoodInfo",
    "PPOConfig",
    "RFTConfig",
    "SFTConfig",
    "StepLog",
    "StepTrace",
    "check_config",
    "check_paradigm_config",
    "check_rewards",
    "completion_logprobs",
    "critic_values",
    "dpo_coefficients",
    "dpo_loss",
    "dpo_step",
    "grpo_coefficients",
    "grpo_advantages",
    "grpo_step",
    "likelihood_loss",
    "minibatches",
    "optimizer_step",
    "pair_margins",
    "policy_forward",
    "policy_loss",
    "ppo_advantages",
    "ppo_step",
    "ppo_token_rewards",
    "preference_pairs",
    "reference_logp",
    "reference_rollout",
    "reward_metrics",
    "rft_coefficients",
    "rft_step",
    "select_rows",
    "sft_coefficients",
    "sft_step",
    "split_rollout",
    "update_schedule",
    "value_loss",
]

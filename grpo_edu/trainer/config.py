"""One RL run's settings (``TrainConfig``), its learning-rate schedule, and the checks that
run before the first rollout."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..algorithms import (
    DPOConfig,
    GRPOConfig,
    PPOConfig,
    RFTConfig,
    SFTConfig,
    check_config,
    check_paradigm_config,
)
from ..masked import check_int, check_positive
from ..models import resolve_device
from ..rewards import get_step_reward
from ..rollout import check_temperature

ALGORITHMS = ("grpo", "ppo", "sft", "rft", "online_rft", "dpo")
"""Valid ``TrainConfig.algorithm`` values: GRPO and PPO, and the other methods of DeepSeekMath's
unified paradigm (sec. 5.2.1; ``algorithms.paradigm_steps``)."""

SOURCES = {
    "grpo": "policy",
    "ppo": "policy",
    "online_rft": "policy",
    "sft": "reference",
    "rft": "warm_start",
    "dpo": "warm_start",
}
"""Algorithm -> where its completions come from (the paradigm's data source D):

``"policy"``      sampled from the current policy every step (online methods);
``"reference"``   the task's reference answers, nothing sampled (SFT's human data);
``"warm_start"``  sampled once from the warm start before the first update, out of the same
                  budget of steps x n_prompts x group_size completions (offline methods)."""


@dataclass(frozen=True)
class TrainConfig:
    """One RL run. Build it directly and vary it with ``dataclasses.replace``."""

    algorithm: str = "grpo"
    """``"grpo"``, ``"ppo"``, or ``"sft"``, ``"rft"``, ``"online_rft"``, ``"dpo"`` (the data
    source of each is ``trainer.sources.SOURCES``)."""
    task: str = "add2"
    """Task whose train split provides the prompts."""
    checkpoint: str = "add2"
    """Warm start to begin from (a shipped name or a directory)."""
    steps: int = 600
    """Rollout + update cycles (600 x 128 completions: the course's add2 recipe, ~1 min for GRPO)."""
    n_prompts: int = 16
    """Prompts per step. Completions per step = n_prompts * group_size."""
    group_size: int = 8
    """G, completions per prompt (GRPO needs >= 2; PPO's usual recipe uses 1)."""
    lr: float = 2e-4
    """Adam learning rate of the policy, the start of ``lr_schedule``. For the add2 warm start
    with linear decay: 2e-4 takes GRPO past 0.90 sampled accuracy in 600 steps with greedy
    accuracy intact; 3e-4 gets there too but costs greedy accuracy; a constant 1e-4 stalls near
    0.89, a constant 2e-4 makes greedy accuracy wobble, 5e-4 loses it."""
    critic_lr: float | None = None
    """Learning rate of PPO's critic; None = ``lr``."""
    lr_schedule: str = "linear"
    """``"linear"`` or ``"cosine"`` decay from ``lr`` to 0 at the last step (Hugging Face Trainer
    and TRL decay linearly by default), or ``"constant"``."""
    temperature: float = 1.0
    """Sampling temperature, also used to compute log-probs during training."""
    max_new_tokens: int | None = None
    """Completion length limit; None = the task's ``max_new_tokens`` (longest answer + EOS + 1)."""
    rewards: tuple[str, ...] = ("correctness",)
    """Names of reward functions in ``grpo_edu.rewards``, summed."""
    reward_weights: tuple[float, ...] | None = None
    """Weights of ``rewards``; None = all 1."""
    step_rewards: str | None = None
    """Process reward model for process supervision, a name in ``rewards.STEP_REWARDS``
    (``"process"``: the step checker of the scratchpad tasks). Needed by, and only used with,
    ``GRPOConfig(advantage="process")``: it scores every step of every completion, and each
    token's advantage sums the group-normalised scores of the steps at or after it
    (DeepSeekMath sec. 4.1.3). ``rewards`` are still computed, for the metrics."""
    seed: int = 0
    """Seeds prompt order, sampling and minibatch order: one seed, one run."""
    grpo: GRPOConfig = GRPOConfig()
    """GRPO's hyperparameters (used when ``algorithm="grpo"``)."""
    ppo: PPOConfig = PPOConfig()
    """PPO's hyperparameters (used when ``algorithm="ppo"``)."""
    sft: SFTConfig = SFTConfig()
    """SFT's hyperparameters (``algorithm="sft"``): n_prompts * group_size reference answers
    per step, so that SFT trains on as many answers as the others sample."""
    rft: RFTConfig = RFTConfig()
    """RFT's hyperparameters, for ``"rft"`` (offline) and ``"online_rft"``."""
    dpo: DPOConfig = DPOConfig()
    """DPO's hyperparameters (``algorithm="dpo"``); its pairs come from groups of group_size."""
    device: str = "cpu"
    """Where the models and every tensor live: ``"cpu"`` (the default: for these tiny models a
    CPU core beats a GPU's launch overhead), ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"``
    (CUDA when present, else CPU). A device that does not exist is a clear error."""

    @property
    def completions_per_step(self) -> int:
        return self.n_prompts * self.group_size


LR_SCHEDULES = {
    "constant": lambda progress: 1.0,
    "linear": lambda progress: 1.0 - progress,
    "cosine": lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)),
}
"""Learning-rate multiplier as a function of training progress in [0, 1)."""


def lr_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    """Multiplies every group's lr by ``LR_SCHEDULES[config.lr_schedule](step / steps)``."""
    factor = LR_SCHEDULES[config.lr_schedule]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: factor(step / config.steps))


def check_train_config(config: TrainConfig) -> None:
    if config.algorithm not in ALGORITHMS:
        raise ValueError(
            f"TrainConfig.algorithm must be one of {ALGORITHMS}, got {config.algorithm!r}"
        )
    for name in ("steps", "n_prompts", "group_size"):
        check_int(f"TrainConfig.{name}", getattr(config, name))
    if config.max_new_tokens is not None:
        check_int("TrainConfig.max_new_tokens", config.max_new_tokens)
    check_int("TrainConfig.seed", config.seed, minimum=0)
    check_positive("TrainConfig.lr", config.lr)
    if config.critic_lr is not None:
        check_positive("TrainConfig.critic_lr", config.critic_lr)
    if config.lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"TrainConfig.lr_schedule must be one of {tuple(LR_SCHEDULES)}, got {config.lr_schedule!r}"
        )
    check_temperature(config.temperature)
    weights = config.reward_weights
    if weights is not None and len(weights) != len(config.rewards):
        raise ValueError(
            f"TrainConfig.reward_weights has {len(weights)} weights for {len(config.rewards)} rewards"
        )
    process = config.algorithm == "grpo" and config.grpo.advantage == "process"
    if process != (config.step_rewards is not None):
        raise ValueError(
            "TrainConfig.step_rewards (a process reward model) goes with GRPOConfig(advantage="
            f"'process') and only with it; got step_rewards={config.step_rewards!r}, "
            f"algorithm={config.algorithm!r}, advantage={config.grpo.advantage!r}"
        )
    if process:
        get_step_reward(config.step_rewards)
    CONFIG_CHECKS[config.algorithm](config)
    resolve_device(config.device)


def _check_pairs(config: TrainConfig) -> None:
    check_paradigm_config(config.dpo)
    if config.group_size < 2:
        raise ValueError(
            f"DPO makes its pairs inside groups: it needs group_size >= 2, got {config.group_size}"
        )


CONFIG_CHECKS = {
    "grpo": lambda c: check_config(c.grpo, c.group_size),
    "ppo": lambda c: check_config(c.ppo),
    "sft": lambda c: check_paradigm_config(c.sft),
    "rft": lambda c: check_paradigm_config(c.rft),
    "online_rft": lambda c: check_paradigm_config(c.rft),
    "dpo": _check_pairs,
}
"""Algorithm -> the check of its config (one entry per ``ALGORITHMS`` name)."""

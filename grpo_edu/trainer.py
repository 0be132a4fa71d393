"""The training loop, the same for both algorithms: rollout -> rewards -> update -> metrics.

    for step in range(steps):
        problems = next batch of n_prompts train problems
        rollout  = generate_rollout(policy, problems, group_size)        # B = n_prompts * G
        rewards  = sum_k weight_k * reward_k(prompts, texts, **columns)  # (B,)
        metrics  = grpo_step(...) or ppo_step(...)                       # one update
        metrics  += time/..., memory/..., completions_seen

``train`` returns a ``TrainResult``: the trained policy, a pandas DataFrame with one row per step
(columns documented in the README's metrics table) and the ``StepTrace`` of the steps asked for.
A ``callback(step, policy) -> dict`` runs every ``eval_every`` steps and its values are
added to that step's row (the ``compare`` job uses it to measure accuracy during training).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch
from tqdm.auto import tqdm

from .accounting import MB, analytic_training_state, measure_training_state
from .algorithms import GRPOConfig, PPOConfig, StepTrace, check_config, grpo_step, ppo_step
from .models import Critic, frozen_copy, load_policy, n_params
from .rewards import get_reward
from .rollout import Rollout, check_temperature, generate_rollout
from .tasks import get_task

ALGORITHMS = ("grpo", "ppo")

METRICS: dict[str, str] = {
    "step": "update number, from 1",
    "completions_seen": "completions sampled so far (the budget axis of every comparison)",
    "reward": "mean reward of the step's completions",
    "reward_std": "std of those rewards",
    "frac_reward_zero_std": "share of groups whose rewards are all equal: zero GRPO advantage, no signal (NaN when G = 1)",
    "completions/mean_length": "mean completion length in tokens, EOS included",
    "completions/clipped_ratio": "share of completions cut at max_new_tokens without an EOS",
    "loss/policy": "clipped-surrogate loss (GRPO: with the beta * KL term)",
    "loss/value": "PPO's clipped value loss (NaN for GRPO: no critic)",
    "value/clipfrac": "PPO: share of tokens where the value clip was active",
    "kl": "mean per-token k3 estimate of KL(pi || pi_ref) (same estimator for both algorithms)",
    "entropy": "mean per-token entropy of the policy (nats)",
    "grad_norm": "gradient norm before clipping",
    "lr": "the policy's learning rate in this step (see TrainConfig.lr_schedule)",
    "clip_ratio/low_mean": "share of tokens with ratio < 1 - eps and A < 0 (TRL's name)",
    "clip_ratio/high_mean": "share of tokens with ratio > 1 + eps_high and A > 0",
    "clip_ratio/region_mean": "share of tokens whose gradient the clip removed (low or high)",
    "clip_ratio/low_min": "smallest per-sequence low-clip share",
    "clip_ratio/high_max": "largest per-sequence high-clip share",
    "time/rollout": "seconds spent sampling and scoring this step",
    "time/update": "seconds spent in the update (all mu x minibatch optimizer steps)",
    "time/step": "time/rollout + time/update",
    "time/elapsed": "training seconds so far (evaluation excluded)",
    "memory/train_state_mb": "measured training state: parameters, gradients, Adam, reference, critic (MB)",
    "eval/greedy": "greedy accuracy on the eval split (only on evaluation steps)",
    "eval/sampled": "sampled accuracy at the training temperature (only on evaluation steps)",
}
"""Every column of ``TrainResult.metrics``, documented once (a test checks the README table against it)."""


@dataclass(frozen=True)
class TrainConfig:
    """One RL run. Build it directly and vary it with ``dataclasses.replace``."""

    algorithm: str = "grpo"
    """``"grpo"`` or ``"ppo"``."""
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
    """Completion length limit; None = longest answer of the task + 2."""
    rewards: tuple[str, ...] = ("correctness",)
    """Names of reward functions in ``grpo_edu.rewards``, summed."""
    reward_weights: tuple[float, ...] | None = None
    """Weights of ``rewards``; None = all 1."""
    seed: int = 0
    """Seeds prompt order, sampling and minibatch order: one seed, one run."""
    grpo: GRPOConfig = GRPOConfig()
    """GRPO's hyperparameters (used when ``algorithm="grpo"``)."""
    ppo: PPOConfig = PPOConfig()
    """PPO's hyperparameters (used when ``algorithm="ppo"``)."""

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
        if getattr(config, name) < 1:
            raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(config, name)}")
    if not config.lr > 0:
        raise ValueError(f"TrainConfig.lr must be > 0, got {config.lr}")
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
    if config.algorithm == "grpo":
        check_config(config.grpo, config.group_size)
    else:
        check_config(config.ppo)


@dataclass
class TrainState:
    """Everything an update touches: policy, frozen reference, PPO's critic, optimizer."""

    policy: torch.nn.Module
    tokenizer: object
    ref_model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    critic: torch.nn.Module | None = None


def build_state(config: TrainConfig, policy=None, tokenizer=None) -> TrainState:
    """Load the warm start (unless given), copy the reference, add PPO's critic, build Adam."""
    if policy is None:
        policy, tokenizer = load_policy(config.checkpoint)
    policy.train()
    ref_model = frozen_copy(policy)
    groups = [{"params": list(policy.parameters()), "lr": config.lr}]
    critic = None
    if config.algorithm == "ppo":
        critic = Critic.from_policy(policy).train()
        groups.append({"params": list(critic.parameters()), "lr": config.critic_lr or config.lr})
    return TrainState(policy, tokenizer, ref_model, torch.optim.Adam(groups), critic)


def compute_rewards(rollout: Rollout, names: Sequence[str], weights=None) -> torch.Tensor:
    """Weighted sum of the named TRL-style reward functions, (B,)."""
    weights = weights or [1.0] * len(names)
    total = torch.zeros(len(rollout.texts))
    for name, w in zip(names, weights, strict=True):
        values = get_reward(name)(rollout.prompts, rollout.texts, **rollout.reward_columns())
        total += w * torch.tensor(values, dtype=torch.float32)
    return total.to(rollout.completion_ids.device)


def update(state: TrainState, config: TrainConfig, rollout, rewards, generator, trace=False):
    """One ``grpo_step`` or ``ppo_step`` on ``state``: (metrics, traces)."""
    if config.algorithm == "grpo":
        return grpo_step(state.policy, state.ref_model, state.optimizer, rollout, rewards,
                         config.grpo, generator, trace)  # fmt: skip
    return ppo_step(state.policy, state.critic, state.ref_model, state.optimizer, rollout, rewards,
                    config.ppo, generator, trace)  # fmt: skip


@dataclass
class TrainResult:
    """What ``train`` returns."""

    config: TrainConfig
    state: TrainState
    metrics: pd.DataFrame
    """One row per step; see the README's metrics table."""
    traces: dict[int, list[StepTrace]] = field(default_factory=dict)
    """Step -> the StepTraces of that step's updates, for the steps in ``trace_steps``."""
    memory: dict[str, dict[str, int]] = field(default_factory=dict)
    """``measured`` and ``analytic`` training-state bytes (see ``accounting``)."""

    @property
    def policy(self):
        return self.state.policy


def train(
    config: TrainConfig = TrainConfig(),
    policy=None,
    tokenizer=None,
    callback: Callable[[int, torch.nn.Module], dict] | None = None,
    eval_every: int = 0,
    trace_steps: Sequence[int] = (),
    progress: bool = True,
) -> TrainResult:
    """Run ``config.steps`` rollout/update cycles; returns a ``TrainResult``."""
    check_train_config(config)
    torch.manual_seed(config.seed)
    state = build_state(config, policy, tokenizer)
    scheduler = lr_scheduler(state.optimizer, config)
    task = get_task(config.task)
    max_new_tokens = config.max_new_tokens or task.max_answer_len + 2
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(task.train), generator=generator).tolist()
    rows, traces, memory, t_start = [], {}, {}, time.perf_counter()
    bar = tqdm(range(config.steps), desc=config.algorithm.upper(), disable=not progress)
    for step in bar:
        t0 = time.perf_counter()
        start = (step * config.n_prompts) % len(order)
        problems = [task.train[order[(start + i) % len(order)]] for i in range(config.n_prompts)]
        state.policy.eval()  # no dropout anyway; eval() only to mark sampling
        rollout = generate_rollout(state.policy, state.tokenizer, problems, config.group_size,
                                   max_new_tokens, config.temperature, generator)  # fmt: skip
        state.policy.train()
        rewards = compute_rewards(rollout, config.rewards, config.reward_weights)
        t1 = time.perf_counter()
        metrics, step_traces = update(
            state, config, rollout, rewards, generator, step in trace_steps
        )
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        t2 = time.perf_counter()
        if step_traces:
            traces[step] = step_traces
        if step == 0:
            memory = _memory(state)
        row = {"step": step + 1, "completions_seen": (step + 1) * config.completions_per_step,
               **metrics, "lr": lr, "time/rollout": t1 - t0, "time/update": t2 - t1, "time/step": t2 - t0,
               "time/elapsed": t2 - t_start, "memory/train_state_mb": memory["measured"]["total"] / MB}  # fmt: skip
        if (
            callback is not None
            and eval_every
            and ((step + 1) % eval_every == 0 or step + 1 == config.steps)
        ):
            row.update(callback(step + 1, state.policy))
            t_start += time.perf_counter() - t2  # evaluation time is not training time
        rows.append(row)
        bar.set_postfix(reward=f"{metrics['reward']:.2f}", kl=f"{metrics['kl']:.3f}")
    return TrainResult(config, state, pd.DataFrame(rows), traces, memory)


def _memory(state: TrainState) -> dict[str, dict[str, int]]:
    n_critic = n_params(state.critic) if state.critic is not None else 0
    return {
        "measured": measure_training_state(
            state.policy, state.ref_model, state.optimizer, state.critic
        ),
        "analytic": analytic_training_state(n_params(state.policy), n_critic),
    }

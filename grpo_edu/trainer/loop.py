"""The training loop, the same for every algorithm: rollout -> rewards -> update -> metrics.

    for step in range(steps):
        problems = next batch of n_prompts train problems
        rollout  = generate_rollout(policy, problems, group_size)        # B = n_prompts * G
        rewards  = sum_k weight_k * reward_k(prompts, texts, **columns)  # (B,)
        metrics  = UPDATES[algorithm](...)                               # one update
        metrics  += completion_metrics(rollout), time/..., memory/..., completions_seen

With ``GRPOConfig(advantage="process")`` a process reward model (``TrainConfig.step_rewards``)
also scores every step of every completion (``compute_step_rewards``), and ``grpo_step`` turns
those scores into per-token advantages.

Where the rollout comes from is the algorithm's data source (``config.SOURCES``): sampled from
the current policy (GRPO, PPO, online RFT), the task's reference answers (SFT), or a dataset
sampled once from the warm start (RFT, DPO): ``make_source`` returns ``batch(step)``.

``train`` returns a ``TrainResult``: the trained policy, a pandas DataFrame with one row per step
(columns documented in the README's metrics table) and the ``StepTrace`` of the steps asked for.
A ``callback(step, policy) -> dict`` runs every ``eval_every`` steps and its values are
added to that step's row (the ``compare`` job uses it to measure accuracy during training).
"""

from __future__ import annotations

import contextlib
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..accounting import (
    MB,
    ActivationMeter,
    analytic_training_state,
    measure_training_state,
    with_activations,
)
from ..algorithms import (
    StepTrace,
    dpo_step,
    grpo_step,
    ppo_step,
    reference_rollout,
    rft_step,
    sft_step,
    split_rollout,
)
from ..models import Critic, adam, frozen_copy, load_policy, n_params, resolve_device
from ..rewards import get_reward, get_step_reward
from ..rollout import Rollout, generate_rollout
from ..tasks import get_task
from ..vocab import EOS, id_tokens
from .config import SOURCES, TrainConfig, check_train_config, lr_scheduler
from .metrics import completion_metrics


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
        policy, tokenizer = load_policy(config.checkpoint, device=config.device)
    policy.to(resolve_device(config.device)).train()
    ref_model = frozen_copy(policy)
    groups = [{"params": list(policy.parameters()), "lr": config.lr}]
    critic = None
    if config.algorithm == "ppo":
        critic = Critic.from_policy(policy).train()
        groups.append({"params": list(critic.parameters()), "lr": config.critic_lr or config.lr})
    return TrainState(policy, tokenizer, ref_model, adam(groups), critic)


def compute_rewards(rollout: Rollout, names: Sequence[str], weights=None) -> torch.Tensor:
    """Weighted sum of the named TRL-style reward functions, (B,)."""
    weights = weights or [1.0] * len(names)
    device = rollout.completion_ids.device
    total = torch.zeros(len(rollout.texts), device=device)
    for name, w in zip(names, weights, strict=True):
        values = get_reward(name)(rollout.prompts, rollout.texts, **rollout.reward_columns())
        total += w * torch.tensor(values, dtype=torch.float32, device=device)
    return total


def compute_step_rewards(rollout: Rollout, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, step_end), each (B, T): the named process reward model's score of every step,
    placed at the token where the step ends, and a bool mask of those tokens.

    The model returns character positions in ``text + <eos>``; each is mapped to the token that
    holds that character (a stray special token is one token of several characters), a position
    at the end of the text to the EOS, or to the last token of a completion cut off without one.
    """
    scores = get_step_reward(name)(rollout.prompts, rollout.texts, **rollout.reward_columns())
    device = rollout.completion_ids.device
    values = torch.zeros(rollout.completion_ids.shape, device=device)  # (B, T)
    step_end = torch.zeros(rollout.completion_ids.shape, dtype=torch.bool, device=device)
    for i, (row, ids) in enumerate(zip(scores, rollout.completion_ids_list, strict=True)):
        tokens = id_tokens([ids])[0]
        text_tokens = tokens[:-1] if tokens and tokens[-1] == EOS else tokens
        ends = list(accumulate(len(t) for t in text_tokens))  # end of each token's characters
        for position, score in row:
            t = min(bisect_right(ends, position), len(tokens) - 1)  # token holding the character
            values[i, t], step_end[i, t] = score, True
    return values, step_end


def update(
    state: TrainState,
    config: TrainConfig,
    rollout: Rollout,
    rewards: torch.Tensor,
    generator: torch.Generator,
    trace: bool = False,
    loss_fn=None,
    step_rewards: tuple[torch.Tensor, torch.Tensor] | None = None,
):
    """One step of ``config.algorithm`` on ``state`` (``UPDATES``): (metrics, traces).

    ``loss_fn`` None keeps the step's own loss (``policy_loss``, ``likelihood_loss``, ``dpo_loss``).
    """
    s, kw = state, {} if loss_fn is None else {"loss_fn": loss_fn}
    if step_rewards is not None:  # GRPO with process supervision
        kw["step_rewards"] = step_rewards
    return UPDATES[config.algorithm](s, config, rollout, rewards, generator, trace, **kw)


def _grpo(s, c, *args, **kw):
    return grpo_step(s.policy, s.ref_model, s.optimizer, *args[:2], c.grpo, *args[2:], **kw)


def _ppo(s, c, *args, **kw):
    return ppo_step(s.policy, s.critic, s.ref_model, s.optimizer, *args[:2], c.ppo, *args[2:], **kw)


def _sft(s, c, *args, **kw):
    return sft_step(s.policy, s.ref_model, s.optimizer, *args[:2], c.sft, *args[2:], **kw)


def _rft(s, c, *args, **kw):
    return rft_step(s.policy, s.ref_model, s.optimizer, *args[:2], c.rft, *args[2:], **kw)


def _dpo(s, c, *args, **kw):
    return dpo_step(s.policy, s.ref_model, s.optimizer, *args[:2], c.dpo, *args[2:], **kw)


UPDATES = {"grpo": _grpo, "ppo": _ppo, "sft": _sft, "rft": _rft, "online_rft": _rft, "dpo": _dpo}
"""Algorithm -> its step on (state, config, rollout, rewards, generator, trace[, loss_fn]):
online and offline RFT are the same step on different data (``SOURCES``)."""


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
    """``measured`` and ``analytic`` training-state bytes, and ``with_activations`` (the
    measured state plus the activations one update keeps for backward; see ``accounting``)."""

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
    loss_fn=None,
) -> TrainResult:
    """Run ``config.steps`` rollout/update cycles; returns a ``TrainResult``.

    ``loss_fn`` replaces the loss of every update (None = the step's own, ``losses.policy_loss``
    for GRPO and PPO); it takes and returns what that loss does (exercises pass a student's
    loss this way).
    """
    check_train_config(config)
    torch.manual_seed(config.seed)
    state = build_state(config, policy, tokenizer)
    scheduler = lr_scheduler(state.optimizer, config)
    task = get_task(config.task)
    max_new_tokens = config.max_new_tokens or task.max_new_tokens
    generator, sampler = _generators(config.seed, next(state.policy.parameters()).device)
    order = torch.randperm(len(task.train), generator=generator, device="cpu").tolist()
    batch = make_source(state, config, task, order, max_new_tokens, sampler)
    rows, traces, memory, t_start = [], {}, {}, time.perf_counter()
    bar = tqdm(range(config.steps), desc=config.algorithm.upper(), disable=not progress)
    for step in bar:
        t0 = time.perf_counter()
        rollout, rewards = batch(step)
        steps = compute_step_rewards(rollout, config.step_rewards) if config.step_rewards else None
        t1 = time.perf_counter()
        meter = ActivationMeter(state.optimizer) if step == 0 else contextlib.nullcontext()
        with meter:  # step 0: the activations an update keeps for backward
            metrics, step_traces = update(
                state, config, rollout, rewards, generator, step in trace_steps, loss_fn, steps
            )
        lr = scheduler.get_last_lr()[0]
        scheduler.step()
        t2 = time.perf_counter()
        if step_traces:
            traces[step] = step_traces
        if step == 0:
            memory = _memory(state, meter.peak)
        row = {"step": step + 1, "completions_seen": (step + 1) * config.completions_per_step}
        row |= metrics | completion_metrics(rollout)
        row |= {"lr": lr, "time/rollout": t1 - t0, "time/update": t2 - t1}
        row |= {"time/step": t2 - t0, "time/elapsed": t2 - t_start}
        row["memory/train_state_mb"] = memory["measured"]["total"] / MB
        row["memory/activations_mb"] = memory["with_activations"]["activations"] / MB
        if callback is not None and eval_every and _is_eval_step(step + 1, eval_every, config):
            row.update(callback(step + 1, state.policy))
            t_start += time.perf_counter() - t2  # evaluation time is not training time
        rows.append(row)
        bar.set_postfix(reward=f"{metrics['reward']:.2f}", kl=f"{metrics['kl']:.3f}")
    return TrainResult(config, state, pd.DataFrame(rows), traces, memory)


def sample_and_score(state: TrainState, config: TrainConfig, problems, max_new_tokens, sampler):
    """One rollout of ``config.group_size`` completions per problem, and its rewards (B,)."""
    state.policy.eval()  # no dropout anyway; eval() only to mark sampling
    rollout = generate_rollout(
        state.policy,
        state.tokenizer,
        problems,
        config.group_size,
        max_new_tokens,
        config.temperature,
        sampler,
    )
    state.policy.train()
    return rollout, compute_rewards(rollout, config.rewards, config.reward_weights)


def make_source(state: TrainState, config: TrainConfig, task, order, max_new_tokens, sampler):
    """``batch(step) -> (rollout, rewards)`` from the algorithm's data source (``SOURCES``).

    Every source reads the train split in the same seeded ``order``, step after step, so at
    equal steps the methods see the same prompts; SFT, one reference answer per prompt, reads
    ``group_size`` times as many. The offline dataset (``"warm_start"``) is sampled at the first
    call from the frozen copy of the warm start (``state.ref_model``), all steps at once in
    chunks of 2,048 completions, so its sampling time is counted in step 1's ``time/rollout``.
    """

    def problems(step: int, n: int):
        return [task.train[order[(step * n + i) % len(order)]] for i in range(n)]

    def scored(rollout):
        return rollout, compute_rewards(rollout, config.rewards, config.reward_weights)

    kind = SOURCES[config.algorithm]
    if kind == "policy":
        return lambda step: sample_and_score(
            state, config, problems(step, config.n_prompts), max_new_tokens, sampler
        )
    if kind == "reference":
        return lambda step: scored(
            reference_rollout(
                state.policy, state.tokenizer, problems(step, config.completions_per_step),
                config.temperature,
            )
        )  # fmt: skip
    dataset: list = []

    def offline(step: int):
        if not dataset:
            dataset.extend(_offline_dataset(state, config, problems, max_new_tokens, sampler))
        return dataset[step]

    return offline


def _offline_dataset(state, config, problems, max_new_tokens, sampler) -> list:
    """(rollout, rewards) of every step, sampled from the warm start before training."""
    per_chunk = max(1, 2048 // config.completions_per_step)  # steps sampled in one batch
    dataset = []
    for first in range(0, config.steps, per_chunk):
        steps = range(first, min(first + per_chunk, config.steps))
        chunk = [p for s in steps for p in problems(s, config.n_prompts)]
        rollout = generate_rollout(
            state.ref_model, state.tokenizer, chunk, config.group_size, max_new_tokens,
            config.temperature, sampler,
        )  # fmt: skip
        for part in split_rollout(rollout, config.completions_per_step):
            dataset.append((part, compute_rewards(part, config.rewards, config.reward_weights)))
    return dataset


def _generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(CPU generator for prompt order and minibatches, generator for sampling on ``device``):
    one and the same on the CPU, so a CPU run's random stream is one seeded sequence."""
    generator = torch.Generator("cpu").manual_seed(seed)
    if device.type == "cpu":
        return generator, generator
    return generator, torch.Generator(device).manual_seed(seed)


def _is_eval_step(step: int, eval_every: int, config: TrainConfig) -> bool:
    return step % eval_every == 0 or step == config.steps


def _memory(state: TrainState, activations: int) -> dict[str, dict[str, int]]:
    n_critic = n_params(state.critic) if state.critic is not None else 0
    measured = measure_training_state(state.policy, state.ref_model, state.optimizer, state.critic)
    return {
        "measured": measured,
        "analytic": analytic_training_state(n_params(state.policy), n_critic),
        "with_activations": with_activations(measured, activations),
    }

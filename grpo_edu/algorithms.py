"""PPO and GRPO: one update each, written as two explicit functions over the same losses.

Read ``ppo_step`` and ``grpo_step`` side by side: they share the rollout, the clipped surrogate
and the optimizer loop (``_update``); they differ in three places, which are GRPO's claims:

==========================  ===================================  ==================================
                            PPO (InstructGPT recipe)             GRPO (DeepSeekMath, eq. 3)
==========================  ===================================  ==================================
baseline                    a learned critic V(s_t)              the mean reward of the group
advantage                   per token, GAE(gamma, lambda),       per sequence, z-score within the
                            whitened over the batch              group of G answers to one prompt
KL to the reference         a per-token penalty in the reward    a k3 term in the loss
extra model in memory       critic of the policy's size          none
==========================  ===================================  ==================================

Both take a ``Rollout`` (prompt-major, see ``rollout``) and its ``rewards`` (B,), run ``mu``
inner iterations over ``n_minibatches`` minibatches with the stored ``old_logp`` (the sampling
log-probs), so that later iterations really are off-policy and clipping happens, and return
``(metrics, traces)``. ``metrics`` uses the same names for both algorithms (README, "Metrics").
With ``trace=True``, ``traces`` holds a ``StepTrace`` of every optimizer update: all the
intermediate tensors, for the notebooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .advantages import gae, group_advantages, masked_mean, rloo_advantages, whiten
from .losses import (
    AGGREGATIONS,
    KL_ESTIMATORS,
    LEVELS,
    entropy_from_logits,
    kl_penalty,
    policy_loss,
    value_loss,
)
from .rollout import Rollout, check_temperature, forward_completion
from .vocab import VOCAB


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO hyperparameters. Defaults follow DeepSeekMath (arXiv:2402.03300, sec. 4.1-4.2)."""

    clip_eps: float = 0.2
    """epsilon of the clipped ratio (0.1..0.3)."""
    clip_eps_high: float | None = None
    """Upper clip bound 1 + clip_eps_high; None = clip_eps. DAPO's clip-higher uses 0.28."""
    delta: float | None = None
    """Two-sided clipping: the unclipped ratio is capped at delta (INTELLECT-2; e.g. 4.0)."""
    level: str = "token"
    """``"token"`` ratios (GRPO) or one ``"sequence"`` ratio (GSPO, arXiv:2507.18071)."""
    kl_coef: float = 0.04
    """beta, weight of the KL term in the loss (0..0.1; 0 drops the reference model's forward)."""
    kl_estimator: str = "k3"
    """Estimator of KL(pi || pi_ref): k3 in DeepSeekMath eq. 4; k1, k2 for comparison."""
    kl_bias_correction: bool = False
    """Multiply the KL term by the ratio (TRL ``use_bias_correction_kl``)."""
    aggregation: str = "grpo"
    """How token losses are averaged: grpo (per-sequence mean), bnpo, dr_grpo, dapo."""
    advantage: str = "group"
    """``"group"`` z-score (GRPO) or ``"rloo"`` leave-one-out baseline."""
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


@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters: the InstructGPT-style recipe DeepSeekMath compares GRPO with."""

    clip_eps: float = 0.2
    """epsilon of the clipped ratio (0.1..0.3)."""
    kl_coef: float = 0.04
    """beta of the per-token KL penalty in the reward: r_t = -beta * k1_t (+ R at the last token)."""
    kl_estimator: str = "k1"
    """Estimator in the reward penalty: k1 = log pi_old - log pi_ref, as InstructGPT and TRL PPO."""
    gamma: float = 1.0
    """Discount (1.0: every token of an answer counts equally)."""
    lam: float = 0.95
    """GAE lambda (0.9..1.0): bias-variance trade-off of the advantage."""
    clip_range_value: float = 0.2
    """Clip of the critic's update around its old values."""
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


@dataclass
class StepTrace:
    """Every intermediate tensor of one optimizer update, detached, for teaching.

    Rows are the minibatch ``rows`` of the rollout; token tensors are (b, T) aligned with
    ``tokens`` (the decoded completion, one string per token).
    """

    algorithm: str
    iteration: int
    rows: torch.Tensor
    prompts: list[str]
    texts: list[str]
    tokens: list[list[str]]
    mask: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    logp: torch.Tensor
    old_logp: torch.Tensor
    ref_logp: torch.Tensor | None
    ratio: torch.Tensor
    is_clipped: torch.Tensor
    per_token_loss: torch.Tensor
    kl: torch.Tensor | None
    entropy: torch.Tensor
    loss: float
    grad_norm: float
    values: torch.Tensor | None = None
    old_values: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    token_rewards: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)


def check_config(config: GRPOConfig | PPOConfig, group_size: int | None = None) -> None:
    """Clear errors for settings that would otherwise fail deep inside torch or train silently."""
    name = type(config).__name__
    if not config.clip_eps > 0:
        raise ValueError(f"{name}.clip_eps must be > 0, got {config.clip_eps}")
    if config.mu < 1 or config.n_minibatches < 1:
        raise ValueError(
            f"{name}.mu and n_minibatches must be >= 1, got {config.mu}, {config.n_minibatches}"
        )
    if not config.kl_coef >= 0:
        raise ValueError(f"{name}.kl_coef must be >= 0, got {config.kl_coef}")
    if config.kl_estimator not in KL_ESTIMATORS:
        raise ValueError(
            f"{name}.kl_estimator must be one of {KL_ESTIMATORS}, got {config.kl_estimator!r}"
        )
    if isinstance(config, GRPOConfig):
        if group_size is not None and group_size < 2:
            raise ValueError(
                f"GRPO needs group_size >= 2 (one answer has no group baseline), got {group_size}"
            )
        if config.aggregation not in AGGREGATIONS:
            raise ValueError(
                f"GRPOConfig.aggregation must be one of {AGGREGATIONS}, got {config.aggregation!r}"
            )
        if config.level not in LEVELS:
            raise ValueError(f"GRPOConfig.level must be one of {LEVELS}, got {config.level!r}")
        if config.advantage not in ("group", "rloo"):
            raise ValueError(
                f"GRPOConfig.advantage must be 'group' or 'rloo', got {config.advantage!r}"
            )


def check_rewards(rewards: torch.Tensor, rollout: Rollout) -> None:
    B = len(rollout.completion_ids)
    if rewards.shape != (B,):
        raise ValueError(
            f"rewards must have shape ({B},), one per completion, got {tuple(rewards.shape)}"
        )
    bad = (~torch.isfinite(rewards)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"rewards contains NaN or inf at rows {bad[:10]}")


def policy_forward(model, rollout: Rollout, rows=slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
    """(logp, entropy) of the completion tokens, each (b, T), from logits / temperature."""
    check_temperature(rollout.temperature)
    logits = forward_completion(model, rollout, rows) / rollout.temperature  # (b, T, V)
    ids = rollout.completion_ids[rows]  # (b, T)
    logp = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)  # (b, T)
    mask = rollout.completion_mask[rows]
    return logp * mask, entropy_from_logits(logits.detach()) * mask


def critic_values(critic, rollout: Rollout, rows=slice(None)) -> torch.Tensor:
    """V(s_t) for every completion token, (b, T): the value of the context that emits token t.

    The critic's body reads the rollout like the policy does (prefix sharing included), and its
    scalar head turns each hidden state into a value.
    """
    hidden = forward_completion(critic.body, rollout, rows)  # (b, T, C)
    return critic.head(hidden).squeeze(-1) * rollout.completion_mask[rows]  # (b, T)


def _minibatches(n_rows: int, n_minibatches: int, generator: torch.Generator | None):
    if n_minibatches > n_rows:
        raise ValueError(f"n_minibatches={n_minibatches} exceeds the batch's {n_rows} rows")
    order = (
        torch.randperm(n_rows, generator=generator) if n_minibatches > 1 else torch.arange(n_rows)
    )
    return order.chunk(n_minibatches)


def _update(params, optimizer, loss: torch.Tensor, max_grad_norm: float) -> float:
    """One optimizer step; returns the gradient norm before clipping."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(
        params, max_grad_norm if max_grad_norm > 0 else float("inf")
    )
    optimizer.step()
    return norm.item()


def ppo_token_rewards(
    rewards: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
    kl_estimator: str = "k1",
) -> torch.Tensor:
    """PPO's per-token reward, (B, T): r_t = -beta * KL_t, plus the task reward R at the last token.

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


@torch.no_grad()
def reference_logp(ref_model, rollout: Rollout) -> torch.Tensor:
    """log pi_ref of every completion token, (B, T), from the frozen reference."""
    return policy_forward(ref_model, rollout)[0]


def reward_metrics(rewards: torch.Tensor, rollout: Rollout) -> dict[str, float]:
    """reward, reward_std, frac_reward_zero_std and completion lengths: the same for both algorithms."""
    G = rollout.group_size
    grouped = rewards.view(-1, G)  # (n_prompts, G)
    zero_std = (grouped.std(-1) == 0).float().mean().item() if G > 1 else float("nan")
    lengths = rollout.completion_mask.sum(-1)  # (B,)
    return {
        "reward": rewards.mean().item(),
        "reward_std": rewards.std().item() if len(rewards) > 1 else 0.0,
        "frac_reward_zero_std": zero_std,
        "completions/mean_length": lengths.mean().item(),
        "completions/clipped_ratio": rollout.truncated.float().mean().item(),
    }


def _mean_metrics(rows: list[dict]) -> dict[str, float]:
    return {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}


_ID_TO_TOKEN = {i: t for t, i in VOCAB.items()}


def _tokens(rollout: Rollout, rows) -> list[list[str]]:
    """The completion of each selected row as one string per token (for per-token heatmaps)."""
    return [[_ID_TO_TOKEN[i] for i in row] for row in rollout.completion_ids[rows].tolist()]


def grpo_step(
    policy,
    ref_model,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    rewards: torch.Tensor,
    config: GRPOConfig = GRPOConfig(),
    generator: torch.Generator | None = None,
    trace: bool = False,
) -> tuple[dict[str, float], list[StepTrace]]:
    """One GRPO update (DeepSeekMath, arXiv:2402.03300, eq. 3 and sec. 4.1.2).

    1. advantages: A_i = (r_i - mean(r_group)) / (std(r_group) + eps), one per answer, (B,)
    2. old_logp = the sampling log-probs; ref_logp from the frozen reference (if beta > 0)
    3. mu iterations x minibatches: loss = aggregate(-min(r_t A, clip(r_t) A) + beta * k3_t)
    No critic anywhere: the group is the baseline.
    """
    check_config(config, rollout.group_size)
    check_rewards(rewards, rollout)
    if config.advantage == "rloo":  # 1. group-relative advantages, (B,)
        advantages = rloo_advantages(rewards, rollout.group_size)
    else:
        advantages = group_advantages(
            rewards, rollout.group_size, config.scale, config.ddof, config.adv_eps
        )
    old_logp = rollout.sampling_logp  # 2. pi_old: the policy that sampled, (B, T)
    ref_logp = reference_logp(ref_model, rollout) if config.kl_coef > 0 else None  # (B, T)
    mask, T = rollout.completion_mask, rollout.completion_ids.shape[1]
    metrics, traces = [], []
    for it in range(config.mu):  # 3. the update
        for rows in _minibatches(len(rewards), config.n_minibatches, generator):
            logp, entropy = policy_forward(policy, rollout, rows)  # (b, T)
            loss, info = policy_loss(
                logp, old_logp[rows], advantages[rows], mask[rows],
                clip_eps=config.clip_eps, clip_eps_high=config.clip_eps_high, delta=config.delta,
                level=config.level, ref_logp=None if ref_logp is None else ref_logp[rows],
                kl_coef=config.kl_coef, kl_estimator=config.kl_estimator,
                kl_bias_correction=config.kl_bias_correction, aggregation=config.aggregation,
                max_completion_length=T,
            )  # fmt: skip
            grad_norm = _update(policy.parameters(), optimizer, loss, config.max_grad_norm)
            kl = info.per_token_kl if ref_logp is not None else None
            metrics.append({
                "loss/policy": loss.item(),
                "kl": masked_mean(kl_penalty(logp.detach(), ref_logp[rows]), mask[rows]).item() if kl is not None else 0.0,
                "entropy": masked_mean(entropy, mask[rows]).item(),
                "grad_norm": grad_norm,
                **info.clip_metrics(mask[rows]),
            })  # fmt: skip
            if trace:
                traces.append(_trace("grpo", it, rows, rollout, rewards, advantages, logp, old_logp,
                                     ref_logp, info, entropy, loss, grad_norm))  # fmt: skip
    return {
        **reward_metrics(rewards, rollout),
        **_mean_metrics(metrics),
        "loss/value": float("nan"),
    }, traces


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
) -> tuple[dict[str, float], list[StepTrace]]:
    """One PPO update, InstructGPT style (Ouyang et al. 2022; Schulman et al. 2017).

    1. token rewards: r_t = -beta * KL_t, plus the task reward R at the last real token
    2. values V(s_t) from the critic; advantages and returns by GAE(gamma, lambda), whitened
    3. mu iterations x minibatches: loss = mean_t(-min(r_t A_t, clip(r_t) A_t)) + c_v * value loss
    ``optimizer`` holds the parameters of both the policy and the critic.
    """
    check_config(config)
    check_rewards(rewards, rollout)
    mask = rollout.completion_mask  # (B, T)
    old_logp = rollout.sampling_logp  # pi_old, (B, T)
    with torch.no_grad():
        ref_logp = reference_logp(ref_model, rollout)  # (B, T)
        token_rewards = ppo_token_rewards(
            rewards, old_logp, ref_logp, mask, config.kl_coef, config.kl_estimator
        )  # 1. r_t, (B, T)
        old_values = critic_values(critic, rollout)  # 2. V(s_t), (B, T)
        advantages, returns = gae(token_rewards, old_values, mask, config.gamma, config.lam)
        if config.whiten_advantages:
            advantages = whiten(advantages, mask)  # (B, T)
    params = [p for group in optimizer.param_groups for p in group["params"]]
    metrics, traces = [], []
    for it in range(config.mu):  # 3. the update
        for rows in _minibatches(len(rewards), config.n_minibatches, generator):
            logp, entropy = policy_forward(policy, rollout, rows)  # (b, T)
            pg_loss, info = policy_loss(
                logp, old_logp[rows], advantages[rows], mask[rows], clip_eps=config.clip_eps,
                aggregation="bnpo",  # PPO: mean over all real tokens of the batch
            )  # fmt: skip
            values = critic_values(critic, rollout, rows)  # (b, T)
            vf_loss, vf_clipfrac = value_loss(values, old_values[rows], returns[rows], mask[rows],
                                              config.clip_range_value)  # fmt: skip
            loss = pg_loss + config.vf_coef * vf_loss
            grad_norm = _update(params, optimizer, loss, config.max_grad_norm)
            metrics.append({
                "loss/policy": pg_loss.item(),
                "loss/value": vf_loss.item(),
                "value/clipfrac": float(vf_clipfrac),
                "kl": masked_mean(kl_penalty(logp.detach(), ref_logp[rows]), mask[rows]).item(),
                "entropy": masked_mean(entropy, mask[rows]).item(),
                "grad_norm": grad_norm,
                **info.clip_metrics(mask[rows]),
            })  # fmt: skip
            if trace:
                t = _trace("ppo", it, rows, rollout, rewards, advantages, logp, old_logp,
                           ref_logp, info, entropy, loss, grad_norm)  # fmt: skip
                t.values, t.old_values = values.detach(), old_values[rows]
                t.returns, t.token_rewards = returns[rows], token_rewards[rows]
                traces.append(t)
    return {**reward_metrics(rewards, rollout), **_mean_metrics(metrics)}, traces


def _trace(algorithm, it, rows, rollout, rewards, advantages, logp, old_logp, ref_logp, info,
           entropy, loss, grad_norm) -> StepTrace:  # fmt: skip
    mask = rollout.completion_mask[rows]
    kl = None if ref_logp is None else kl_penalty(logp.detach(), ref_logp[rows]) * mask
    return StepTrace(
        algorithm=algorithm, iteration=it, rows=rows,
        prompts=[rollout.prompts[i] for i in rows.tolist()],
        texts=[rollout.texts[i] for i in rows.tolist()],
        tokens=_tokens(rollout, rows), mask=mask, rewards=rewards[rows],
        advantages=advantages[rows].detach(), logp=logp.detach(), old_logp=old_logp[rows],
        ref_logp=None if ref_logp is None else ref_logp[rows],
        ratio=info.ratio.detach(), is_clipped=info.is_region_clipped,
        per_token_loss=info.per_token_loss.detach() * mask, kl=kl, entropy=entropy,
        loss=loss.item(), grad_norm=grad_norm,
    )  # fmt: skip

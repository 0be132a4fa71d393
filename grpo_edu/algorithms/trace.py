"""The bookkeeping every step function shares: metrics and teaching traces of its updates.

A step function computes its learning signal once per rollout, then runs ``mu`` iterations of
``n_minibatches`` optimizer updates; after each update it calls ``StepLog.add`` once. The log
turns the update into the metric names documented in ``trainer.METRICS`` (the same keys for
every algorithm: NaN where an algorithm has no such quantity, e.g. ``loss/value`` for GRPO) and,
when asked, into a ``StepTrace`` holding every intermediate tensor for the notebooks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from torch import Tensor

from ..losses import PolicyLossInfo, kl_penalty
from ..masked import masked_mean
from ..rollout import Rollout
from ..vocab import id_tokens


@dataclass
class StepTrace:
    """Every intermediate tensor of one optimizer update, detached, for teaching.

    Rows are the minibatch ``rows`` of the rollout; token tensors are (b, T) aligned with
    ``tokens`` (the decoded completion, one string per token). Tensors an algorithm does not
    have (GRPO's values, PPO's per-answer advantages) are None.
    """

    algorithm: str
    iteration: int
    rows: Tensor
    prompts: list[str]
    texts: list[str]
    tokens: list[list[str]]
    mask: Tensor
    rewards: Tensor
    advantages: Tensor
    logp: Tensor
    old_logp: Tensor
    ref_logp: Tensor | None
    ratio: Tensor
    is_clipped: Tensor
    """bool, tokens whose surrogate gradient is exactly zero (clipped, or capped by delta)."""
    per_token_loss: Tensor
    kl: Tensor | None
    """k3 estimate of KL(pi || pi_ref) per token (the ``kl`` metric's), None without reference."""
    entropy: Tensor
    loss: float
    grad_norm: float
    values: Tensor | None = None
    """PPO: the critic's V(s_t) after this update's forward (with gradients, then detached)."""
    old_values: Tensor | None = None
    """PPO: V(s_t) at rollout time, the baseline of GAE and the centre of the value clip."""
    returns: Tensor | None = None
    token_rewards: Tensor | None = None
    extra: dict = field(default_factory=dict)


def reward_metrics(rewards: Tensor, rollout: Rollout) -> dict[str, float]:
    """reward, reward_std, frac_reward_zero_std and completion lengths, for every algorithm."""
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


def take_rows(x: Tensor | None, rows: Tensor) -> Tensor | None:
    """``x[rows]``, or None for a tensor the algorithm does not have."""
    return None if x is None else x[rows]


def _item(x: Tensor | float | None) -> float:
    if x is None:
        return math.nan
    return x.item() if isinstance(x, Tensor) else float(x)


@dataclass
class StepLog:
    """Collects the metrics (and, with ``trace``, the ``StepTrace``) of one step's updates.

    Built once per step with the tensors computed before the updates (B rows each); ``add`` is
    called after every optimizer update with that update's minibatch tensors (b rows).
    """

    algorithm: str
    rollout: Rollout
    rewards: Tensor
    advantages: Tensor
    ref_logp: Tensor | None
    old_values: Tensor | None = None
    returns: Tensor | None = None
    token_rewards: Tensor | None = None
    trace: bool = False
    metrics: list[dict[str, float]] = field(default_factory=list)
    traces: list[StepTrace] = field(default_factory=list)

    def add(
        self,
        iteration: int,
        rows: Tensor,
        logp: Tensor,
        entropy: Tensor,
        info: PolicyLossInfo,
        losses: dict[str, Tensor | None],
        grad_norm: float,
        values: Tensor | None = None,
    ) -> None:
        """Record one update. ``losses`` maps ``policy``, ``value``, ``value_clipfrac`` and
        ``total`` to their tensors (None where the algorithm has no such term)."""
        mask = self.rollout.completion_mask[rows]  # (b, T)
        ref_logp = take_rows(self.ref_logp, rows)
        kl = None if ref_logp is None else kl_penalty(logp.detach(), ref_logp) * mask  # k3_t
        self.metrics.append(
            {
                "loss/policy": _item(losses["policy"]),
                "loss/value": _item(losses["value"]),
                "value/clipfrac": _item(losses["value_clipfrac"]),
                "kl": math.nan if kl is None else masked_mean(kl, mask).item(),
                "entropy": masked_mean(entropy, mask).item(),
                "grad_norm": grad_norm,
                **info.clip_metrics(mask),
            }
        )
        if self.trace:
            args = (iteration, rows, logp, entropy, info, losses["total"], grad_norm, kl, values)
            self.traces.append(self._trace(*args))

    def _trace(self, iteration, rows, logp, entropy, info, loss, grad_norm, kl, values):
        r, idx = self.rollout, rows.tolist()
        mask = r.completion_mask[rows]
        return StepTrace(
            algorithm=self.algorithm,
            iteration=iteration,
            rows=rows,
            prompts=[r.prompts[i] for i in idx],
            texts=[r.texts[i] for i in idx],
            tokens=id_tokens(r.completion_ids[rows].tolist()),
            mask=mask,
            rewards=self.rewards[rows],
            advantages=self.advantages[rows].detach(),
            logp=logp.detach(),
            old_logp=r.sampling_logp[rows],
            ref_logp=take_rows(self.ref_logp, rows),
            ratio=info.ratio.detach(),
            is_clipped=info.is_zero_gradient,
            per_token_loss=info.per_token_loss.detach() * mask,
            kl=kl,
            entropy=entropy,
            loss=loss.item(),
            grad_norm=grad_norm,
            values=None if values is None else values.detach(),
            old_values=take_rows(self.old_values, rows),
            returns=take_rows(self.returns, rows),
            token_rewards=take_rows(self.token_rewards, rows),
        )

    def result(self) -> tuple[dict[str, float], list[StepTrace]]:
        """(metrics averaged over the step's updates, traces): what a step function returns."""
        keys = self.metrics[0]
        mean = {k: sum(m[k] for m in self.metrics) / len(self.metrics) for k in keys}
        return {**reward_metrics(self.rewards, self.rollout), **mean}, self.traces

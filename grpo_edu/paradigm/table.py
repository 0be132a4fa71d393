"""DeepSeekMath's Table 10, computed: every method's gradient coefficient on one sampled group.

``gradient_coefficients`` takes one group's tensors (rewards, log-probs under the policy and the
reference, the critic's values) and returns, for each method, GC(q, o, t) of every token, read
off the gradient of the method's own loss with the library's own functions (``likelihood_loss``,
``dpo_loss``, ``policy_loss`` with ``grpo_advantages`` or ``ppo_advantages``)::

    GC_it = -N |o_i| dL / dlogp_it        N: answers in the data (pairs for DPO)

because the paradigm writes every gradient as mean_i 1/|o_i| sum_t GC_it grad logp_it. So the
table is what the code does, including its conventions: PPO's token-mean aggregation weighs
answer i by B |o_i| / sum_j |o_j| (1 when all answers have the same length), and DPO's summed
log-ratios multiply its coefficient by |o|.

``coefficient_table`` samples the group from a real policy; ``explain.coefficients`` draws the
same function on a hand-made group (the explorer).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor

from ..algorithms import (
    completion_logprobs,
    critic_values,
    dpo_loss,
    grpo_advantages,
    likelihood_loss,
    policy_loss,
    ppo_advantages,
    ppo_token_rewards,
    preference_pairs,
    reference_rollout,
    rft_coefficients,
)
from ..models import Critic, frozen_copy
from ..rollout import Rollout, generate_rollout
from ..tasks import Problem, get_task
from ..trainer import SOURCES, TrainConfig, compute_rewards

METHODS = ("sft", "rft", "online_rft", "dpo", "ppo", "grpo")
"""The six methods of DeepSeekMath sec. 5.2.1, in the paper's order (Table 10)."""
LABELS = {"sft": "SFT", "rft": "RFT", "online_rft": "Online RFT", "dpo": "DPO", "ppo": "PPO",
          "grpo": "GRPO"}  # fmt: skip
DATA = {
    "reference": "q, o: the task's reference answers (human data)",
    "warm_start": "q from data, o ~ pi_sft: sampled once from the warm start (offline)",
    "policy": "q from data, o ~ pi_theta: sampled from the current policy (online)",
}
"""Text of each data source of ``trainer.SOURCES``."""
REWARD = {"sft": "none", "rft": "rule (correctness)", "online_rft": "rule (correctness)",
          "dpo": "rule, as preferences o+ > o-", "ppo": "rule (correctness)",
          "grpo": "rule (correctness)"}  # fmt: skip
FORMULA = {
    "sft": "1",
    "rft": "1[r(o) >= threshold]",
    "online_rft": "1[r(o) >= threshold]",
    "dpo": "+- beta sigmoid(beta (Delta- - Delta+)), x |o| when Delta is a sum",
    "ppo": "A_t: GAE over the critic, whitened (x B|o|/sum|o|: token-mean loss)",
    "grpo": "A_i + beta (pi_ref / pi_theta - 1)",
}


def paradigm_table() -> pd.DataFrame:
    """The paper's Table 10 for this library: data source (from ``trainer.SOURCES``), reward and
    gradient coefficient of each method, indexed by method label."""
    rows = {
        LABELS[m]: {
            "data source D": DATA[SOURCES[m]],
            "reward": REWARD[m],
            "GC(q, o, t)": FORMULA[m],
        }
        for m in METHODS
    }
    return pd.DataFrame(rows).T


def _read(loss: Tensor, logp: Tensor, mask: Tensor, n_items: int) -> Tensor:
    """GC_it = -N |o_i| dL/dlogp_it on real tokens, 0 on padding, (B, T)."""
    (grad,) = torch.autograd.grad(loss, logp)
    return (-n_items * mask.sum(-1, keepdim=True) * grad * mask).detach()


def gradient_coefficients(
    rewards: Tensor,
    logp: Tensor,
    ref_logp: Tensor,
    mask: Tensor,
    values: Tensor | None = None,
    config: TrainConfig = TrainConfig(),
    group_size: int | None = None,
) -> dict[str, Tensor]:
    """Each method's GC on the same completions, {method: (B, T)}, read off its loss.

    The completions are taken as sampled by the policy whose log-probs are ``logp`` (on-policy:
    pi_old = pi_theta, so no ratio is clipped); ``values`` are PPO's critic values (None: a
    fresh critic, V = 0). SFT never trains on samples (its data is the reference answers): its
    entry is NaN here (``reference_coefficients`` gives its GC = 1). RFT and online RFT get the
    same numbers on the same completions: they differ only in where the completions come from.
    Hyperparameters come from ``config`` (``grpo``, ``ppo``, ``rft``, ``dpo``).

    Shapes: ``rewards`` (B,); ``logp``, ``ref_logp``, ``mask``, ``values`` (B, T); B is one group
    (``group_size`` None) or several groups of ``group_size``.
    """
    B = len(rewards)
    G = group_size or B
    logp = logp.detach().requires_grad_()
    old_logp = logp.detach()
    out = {"sft": torch.full_like(old_logp, float("nan"))}

    loss, _ = likelihood_loss(logp, old_logp, rft_coefficients(rewards, config.rft.threshold), mask)
    out["rft"] = _read(loss, logp, mask, B)
    out["online_rft"] = out["rft"].clone()

    out["dpo"] = torch.zeros_like(old_logp)
    chosen, rejected = preference_pairs(rewards, G)
    if len(chosen):
        rows = torch.stack([chosen, rejected], 1).flatten()  # (2P,)
        loss, _ = dpo_loss(
            logp[rows], old_logp[rows], ref_logp[rows], mask[rows], beta=config.dpo.beta,
            length_normalized=config.dpo.length_normalized,
        )  # fmt: skip
        (grad,) = torch.autograd.grad(loss, logp)  # zero on unpaired rows
        out["dpo"] = (-len(chosen) * mask.sum(-1, keepdim=True) * grad * mask).detach()

    ppo = config.ppo
    values = torch.zeros_like(old_logp) if values is None else values.detach()
    token_rewards = ppo_token_rewards(
        rewards, old_logp, ref_logp, mask, ppo.kl_coef, ppo.kl_estimator
    )
    advantages, _ = ppo_advantages(token_rewards, values * mask, mask, ppo)  # (B, T)
    loss, _ = policy_loss(logp, old_logp, advantages, mask, **ppo.loss_kwargs(None))
    out["ppo"] = _read(loss, logp, mask, B)

    grpo = config.grpo
    advantages = grpo_advantages(rewards, G, grpo)  # (B,)
    kwargs = grpo.loss_kwargs(mask.shape[1]) | {"ref_logp": ref_logp, "kl_coef": grpo.kl_coef}
    loss, _ = policy_loss(logp, old_logp, advantages, mask, **kwargs)
    out["grpo"] = _read(loss, logp, mask, B)
    return {m: out[m] for m in METHODS}


def reference_coefficients(logp: Tensor, mask: Tensor) -> Tensor:
    """SFT's GC on its reference answers, (R, T), read off ``likelihood_loss`` (all 1)."""
    logp = logp.detach().requires_grad_()
    loss, _ = likelihood_loss(logp, logp.detach(), torch.ones(len(logp)), mask)
    return _read(loss, logp, mask, len(logp))


@dataclass
class CoefficientTable:
    """One sampled group and every method's gradient coefficient on it."""

    problem: Problem
    rollout: Rollout
    """The G sampled completions (one group)."""
    rewards: Tensor
    coefficients: dict[str, Tensor]
    """{method: (G, T)}, from ``gradient_coefficients``."""
    reference: Rollout
    """SFT's data for this prompt: the reference answer."""
    reference_gc: Tensor
    """(1, T') SFT's GC on it."""

    def per_answer(self) -> pd.DataFrame:
        """One row per answer (the G samples, then the reference answer), one column per method:
        the answer's weight in the formula, 1/|o| sum_t GC_t (NaN: not in the method's data)."""
        rows = {}
        lengths = self.rollout.completion_mask.sum(-1)
        for i, text in enumerate(self.rollout.texts):
            key = f"{i + 1}: {text!r} r={self.rewards[i]:.0f}"
            rows[key] = {
                LABELS[m]: (gc[i].sum() / lengths[i]).item() for m, gc in self.coefficients.items()
            }
        ref = {LABELS[m]: float("nan") for m in METHODS}
        ref["SFT"] = (self.reference_gc[0].sum() / self.reference.completion_mask[0].sum()).item()
        rows[f"reference {self.reference.texts[0]!r}"] = ref
        return pd.DataFrame(rows).T

    def per_token(self) -> pd.DataFrame:
        """Long table: method, answer, token position, token, GC (real tokens only)."""
        from ..vocab import id_tokens

        tokens = id_tokens(self.rollout.completion_ids.tolist())
        records = []
        for m, gc in self.coefficients.items():
            for i, row in enumerate(tokens):
                for t in range(int(self.rollout.completion_mask[i].sum())):
                    records.append({"method": LABELS[m], "answer": i + 1, "t": t, "token": row[t],
                                    "GC": gc[i, t].item()})  # fmt: skip
        return pd.DataFrame(records)


def coefficient_table(
    policy,
    tokenizer,
    problem: Problem | None = None,
    config: TrainConfig = TrainConfig(),
    seed: int = 0,
    ref_model=None,
    critic=None,
) -> CoefficientTable:
    """Sample one group of ``config.group_size`` answers to ``problem`` from ``policy`` and
    compute every method's GC on it (``gradient_coefficients``).

    ``ref_model`` defaults to a frozen copy of ``policy`` (the warm start as its own reference:
    GRPO's KL term is then 0) and ``critic`` to a fresh one (zero head, V = 0). ``problem``
    defaults to the first train problem of ``config.task``.
    """
    problem = problem or get_task(config.task).train[0]
    max_new_tokens = config.max_new_tokens or get_task(config.task).max_new_tokens
    g = torch.Generator(device=next(policy.parameters()).device).manual_seed(seed)
    rollout = generate_rollout(policy, tokenizer, [problem], config.group_size, max_new_tokens,
                               config.temperature, g)  # fmt: skip
    rewards = compute_rewards(rollout, config.rewards, config.reward_weights)
    ref_model = ref_model or frozen_copy(policy)
    critic = critic or Critic.from_policy(policy)
    with torch.no_grad():
        logp = completion_logprobs(policy, rollout)[0]
        ref_logp = completion_logprobs(ref_model, rollout)[0]
        values = critic_values(critic, rollout)
    mask = rollout.completion_mask
    coefficients = gradient_coefficients(rewards, logp, ref_logp, mask, values, config)
    reference = reference_rollout(policy, tokenizer, [problem], config.temperature)
    ref_gc = reference_coefficients(reference.sampling_logp, reference.completion_mask)
    return CoefficientTable(problem, rollout, rewards, coefficients, reference, ref_gc)


__all__ = [
    "LABELS",
    "METHODS",
    "CoefficientTable",
    "coefficient_table",
    "gradient_coefficients",
    "paradigm_table",
    "reference_coefficients",
]

"""Real GRPO updates of the add2 warm start with the student's loss, judged by accuracy.

Computing half (``train_with_loss``): the library's own training loop (``trainer.train`` ->
``algorithms.grpo_step``) with ``loss_fn`` set to the student's ``grpo_loss`` (the library still
computes its clip metrics). When grading, it runs in the student's sandboxed process, and only
the trained weights come back, as a safetensors blob (``weights_blob`` / ``load_weights``).

Judging half (``judge_training``): sampled accuracy on a fixed slice of the eval split, measured
by the judge itself, before and after; passes when the policy improved by at least
``min_gain``. Everything is seeded, so the same loss gives the same numbers on the same machine.
``check_grpo_training`` runs both halves in the notebook's process.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import torch

from grpo_edu import losses as lib

from ..feedback import ExerciseFailed, show
from ..judge import returned
from ..observe import observe
from .grpo import grpo_loss_check

MAX_WEIGHTS_BYTES = 16 * 2**20
"""Largest weights blob accepted (the add2 policy is 3.4 MB)."""


@dataclass(frozen=True)
class TrainingBudget:
    """How much GRPO the check runs: ~6 s of CPU time, 10-30 s on a laptop."""

    steps: int = 24
    """GRPO updates (rollout + one optimizer step each)."""
    n_prompts: int = 16
    """Prompts per step."""
    group_size: int = 8
    """G, completions per prompt."""
    lr: float = 2e-4
    """Adam learning rate (the course's long runs use 2e-4 with linear decay)."""
    n_probe: int = 128
    """Eval problems whose sampled accuracy is measured before and after."""
    k: int = 4
    """Samples per probe problem (temperature 1)."""
    min_gain: float = 0.04
    """Least accepted improvement of sampled accuracy (the library's loss gains ~0.10;
    a loss with the wrong sign drives it to 0)."""


def student_loss_fn(fn: Callable) -> Callable:
    """A ``loss_fn`` for ``train`` (``policy_loss``'s signature) whose loss is ``fn``'s."""

    def loss_fn(logp, old_logp, advantages, mask, *, clip_eps, ref_logp, kl_coef, **options):
        with torch.no_grad():  # the library's info (clip metrics), not its loss
            _, info = lib.policy_loss(
                logp,
                old_logp,
                advantages,
                mask,
                clip_eps=clip_eps,
                ref_logp=ref_logp,
                kl_coef=kl_coef,
                **options,
            )
        loss = fn(logp, old_logp, ref_logp, advantages, mask, clip_eps, kl_coef)
        if not (isinstance(loss, torch.Tensor) and loss.dim() == 0 and loss.requires_grad):
            raise ExerciseFailed(
                "grpo_loss",
                "grpo_loss must return a scalar tensor that autograd can differentiate w.r.t. logp",
            )
        if not torch.isfinite(loss):
            raise ExerciseFailed("grpo_loss", f"grpo_loss returned {loss.item()} during training")
        return loss, info

    return loss_fn


def _config(budget: TrainingBudget, seed: int):
    from grpo_edu.trainer import TrainConfig

    return TrainConfig(
        task="add2",
        steps=budget.steps,
        n_prompts=budget.n_prompts,
        group_size=budget.group_size,
        lr=budget.lr,
        seed=seed,
    )


def train_with_loss(
    fn: Callable,
    budget: TrainingBudget,
    seed: int = 0,
    policy=None,
    tokenizer=None,
    progress: bool = False,
):
    """``budget.steps`` GRPO updates of the add2 warm start (or ``policy``) with ``fn`` as loss."""
    from grpo_edu.models import load_policy
    from grpo_edu.trainer import train

    if policy is None:
        policy, tokenizer = load_policy("add2")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and 10x faster on a busy CPU
    try:
        with torch.random.fork_rng(devices=[]):
            loss_fn = student_loss_fn(fn)
            return train(
                _config(budget, seed), policy, tokenizer, progress=progress, loss_fn=loss_fn
            )
    finally:
        torch.set_num_threads(threads)


def sampled_accuracy(policy, tokenizer, budget: TrainingBudget, seed: int) -> float:
    from grpo_edu.evaluate import accuracy
    from grpo_edu.tasks import get_task

    probe = get_task("add2").eval[: budget.n_probe]
    with torch.random.fork_rng(devices=[]):
        return accuracy(policy, tokenizer, probe, temperature=1.0, n=budget.k, seed=seed)


_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _warm_start():
    from grpo_edu.models import load_policy

    return load_policy("add2")


def warm_start():
    """A fresh copy of the add2 warm start and its tokenizer (loaded from disk once per process)."""
    with _LOCK:
        policy, tokenizer = _warm_start()
        return copy.deepcopy(policy), tokenizer


@lru_cache(maxsize=4)
def warm_start_accuracy(budget: TrainingBudget, seed: int) -> float:
    """The shipped add2 warm start's sampled accuracy on the probe (computed once per process)."""
    return sampled_accuracy(*warm_start(), budget, seed)


def judge_training(policy, tokenizer, budget: TrainingBudget, seed: int, before: float) -> dict:
    """Measurements of the trained ``policy``; ``ExerciseFailed`` if it did not improve enough."""
    after = sampled_accuracy(policy, tokenizer, budget, seed)
    stats = {"before": before, "after": after, "gain": after - before}
    summary = (
        f"sampled accuracy on {budget.n_probe} eval problems: {before:.3f} -> {after:.3f} "
        f"({after - before:+.3f}) after {budget.steps} GRPO steps"
    )
    if after - before < budget.min_gain:
        raise ExerciseFailed(
            "grpo_loss",
            f"grpo_loss: the policy did not improve enough ({summary}; needed "
            f"{budget.min_gain:+.3f}).\nHint: run check_grpo_loss(grpo_loss) first: a loss with "
            f"the wrong sign makes the policy worse, one without gradient leaves it unchanged.",
        )
    return {**stats, "summary": summary}


# ------------------------------------------------------------------ weights as plain data
def _unique_state(policy) -> dict[str, torch.Tensor]:
    """The state dict without tied duplicates (lm_head shares the embedding's storage)."""
    state, seen = {}, set()
    for name, tensor in policy.state_dict().items():
        if tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            state[name] = tensor.detach().contiguous()
    return state


def weights_blob(policy) -> bytes:
    """The policy's weights as safetensors bytes (student side)."""
    from safetensors.torch import save

    return save(_unique_state(policy))


def load_weights(blob: bytes):
    """(policy, tokenizer): a fresh add2 model holding ``blob``'s weights (grader side).

    ``ValueError`` unless the blob is a safetensors file with exactly the model's tensors,
    shapes and dtypes, all finite. safetensors only parses a header and copies bytes.
    """
    from safetensors.torch import load

    if len(blob) > MAX_WEIGHTS_BYTES:
        raise ValueError(f"the weights are {len(blob)} bytes, more than {MAX_WEIGHTS_BYTES}")
    policy, tokenizer = warm_start()
    expected = _unique_state(policy)
    try:
        state = load(blob)
    except Exception as err:  # safetensors raises its own error types on a bad header
        raise ValueError(f"not a safetensors file ({type(err).__name__})") from None
    if set(state) != set(expected):
        raise ValueError(f"the weights hold tensors {sorted(set(state) ^ set(expected))[:4]}...")
    for name, tensor in state.items():
        if tensor.shape != expected[name].shape or tensor.dtype != expected[name].dtype:
            raise ValueError(f"{name}: {tuple(tensor.shape)} {tensor.dtype}, expected otherwise")
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{name} holds NaN or inf")
    policy.load_state_dict(state, strict=False)  # the tied lm_head follows the embedding
    return policy, tokenizer


# ------------------------------------------------------------------------- the notebook check
def check_grpo_training(
    fn: Callable,
    *,
    budget: TrainingBudget = TrainingBudget(),
    seed: int = 0,
    policy=None,
    tokenizer=None,
    progress: bool = False,
    quiet: bool = False,
) -> dict[str, float]:
    """Run ``budget.steps`` real GRPO updates of the add2 warm start with your ``grpo_loss``.

    Passes when the sampled accuracy (temperature 1) on ``budget.n_probe`` eval problems rose by
    at least ``budget.min_gain``. Takes 10-30 s on a laptop CPU. Returns the measurements.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    first = grpo_loss_check(seed, 0)
    returned(first, first.cases[0], observe(fn, first.cases[0]))  # a stub fails before training
    t0 = time.perf_counter()
    try:
        if policy is None:
            from grpo_edu.models import load_policy

            policy, tokenizer = load_policy("add2")
    except ValueError as err:
        raise RuntimeError(
            "the add2 warm start is missing (data/checkpoints/add2): make it with "
            "`python -m grpo_edu pretrain add2`"
        ) from err
    before = sampled_accuracy(policy, tokenizer, budget, seed)
    result = train_with_loss(fn, budget, seed, policy, tokenizer, progress)
    stats = judge_training(result.policy, tokenizer, budget, seed, before)
    rewards = result.metrics["reward"]
    stats["seconds"] = time.perf_counter() - t0
    stats["reward_first"] = float(rewards.iloc[:5].mean())
    stats["reward_last"] = float(rewards.iloc[-5:].mean())
    if not quiet:
        show(
            f"✓ grpo_loss: the policy improved: {stats['summary']}; mean reward "
            f"{stats['reward_first']:.2f} (first 5 steps) -> {stats['reward_last']:.2f} "
            f"(last 5), in {stats['seconds']:.0f} s"
        )
    return stats

"""The full GRPO step: the GRPO loss, then real updates of the add2 warm start with it.

``check_grpo_loss`` compares the student's loss with ``losses.policy_loss`` (values and
gradients). ``check_grpo_training`` runs the library's own training loop (``trainer.train`` ->
``algorithms.grpo_step``) with one change: ``train(..., loss_fn=...)`` makes the loss of every
update the student's ``grpo_loss`` instead of ``losses.policy_loss`` (the library still
computes its clip metrics).
It measures sampled accuracy on a fixed slice of the eval split before and after, and passes
when the policy improved by at least ``min_gain``. Everything is seeded, so the same loss gives
the same numbers on the same machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from grpo_edu import losses as lib

from ..feedback import Case, ExerciseFailed, Mistake, call_student, passed
from ..gradients import run_with_gradients
from .losses import BROADCAST, random_logps


# ------------------------------------------------------------------------------ GRPO loss
def _grpo_loss_ref(logp, old_logp, ref_logp, advantages, mask, clip_eps=0.2, kl_coef=0.04):
    loss, _ = lib.policy_loss(
        logp, old_logp, advantages, mask, clip_eps=clip_eps, ref_logp=ref_logp, kl_coef=kl_coef
    )
    return loss


def _grpo_variant(surrogate_sign=-1.0, kl_sign=1.0, kl_args=None, mode="grpo", mask=True):
    def loss(logp, old_logp, ref_logp, advantages, mask_, clip_eps=0.2, kl_coef=0.04):
        ptl, _ = lib.clipped_surrogate(logp, old_logp, advantages, mask_, clip_eps)
        kl_in = (logp, ref_logp) if kl_args is None else kl_args(logp, ref_logp)
        ptl = -surrogate_sign * ptl + kl_sign * kl_coef * lib.kl_penalty(*kl_in)
        return lib.aggregate(ptl, mask_ if mask else torch.ones_like(mask_), mode, ptl.shape[1])

    return loss


GRPO_LOSS_MISTAKES = [
    Mistake(_grpo_variant(kl_sign=-1.0), "the KL term is a penalty: + kl_coef * k3, not minus."),
    Mistake(_grpo_variant(kl_sign=0.0), "you left out the KL penalty: + kl_coef * k3_t per token."),
    Mistake(
        _grpo_variant(kl_args=lambda lp, rlp: (rlp, lp)),
        "k3 uses x = ref_logp - logp: exp(x) - x - 1; your KL has the log-ratio reversed.",
    ),
    Mistake(
        _grpo_variant(mask=False),
        "you forgot the mask: average each sequence over its "
        "real tokens only (padded positions of logp are 0, not real tokens).",
    ),
    Mistake(
        _grpo_variant(mode="bnpo"),
        "that is the token-level mean (bnpo); GRPO averages "
        "within each sequence, then over sequences.",
    ),
    Mistake(
        _grpo_variant(surrogate_sign=1.0),
        "minimise minus the objective: the surrogate enters the loss as -min(r A, clip(r) A).",
    ),
]


def grpo_loss_cases(seed: int, n_random: int) -> list[Case]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for i in range(2 + n_random):
        B, T = (3, 4) if i == 0 else (int(v) for v in torch.randint(2, 7, (2,), generator=g))
        logp, old_logp = random_logps(B, T, g)
        ref_logp = old_logp + torch.randn(B, T, generator=g) * 0.3
        mask = (torch.arange(T)[None, :] < torch.randint(1, T + 1, (B, 1), generator=g)).float()
        args = {
            "logp": logp * mask,
            "old_logp": old_logp * mask,
            "ref_logp": ref_logp * mask,
            "advantages": torch.randn(B, generator=g),
            "mask": mask,
            "clip_eps": 0.2,
            "kl_coef": [0.04, 0.1, 0.5][i % 3],
        }
        cases.append(
            Case(f"{'hand-sized' if i == 0 else 'random'} batch (B={B}, T={T}) #{i}", args)
        )
    return cases


def check_grpo_loss(fn: Callable, *, seed: int = 0, n_random: int = 4, quiet: bool = False):
    """Compare your ``grpo_loss(logp, old_logp, ref_logp, advantages, mask, clip_eps, kl_coef)``.

    Reference: ``grpo_edu.losses.policy_loss`` with ``ref_logp`` and ``kl_coef`` (k3 in the
    loss, per-sequence mean: DeepSeekMath eq. 3). Values, then gradients w.r.t. ``logp``.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    cases = grpo_loss_cases(seed, n_random)
    run_with_gradients(
        "grpo_loss", fn, _grpo_loss_ref, cases, GRPO_LOSS_MISTAKES, BROADCAST, "logp", quiet
    )


# ------------------------------------------------------------------------- training
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
    """Adam learning rate (the course's long runs use 1e-4; 1e-3 is unstable on this model)."""
    n_probe: int = 128
    """Eval problems whose sampled accuracy is measured before and after."""
    k: int = 4
    """Samples per probe problem (temperature 1)."""
    min_gain: float = 0.04
    """Least accepted improvement of sampled accuracy (the library's loss gains ~0.10;
    a loss with the wrong sign drives it to 0)."""


def _student_policy_loss(fn: Callable) -> Callable:
    """A drop-in for ``losses.policy_loss`` whose loss is ``fn``'s (info still from the library)."""

    def policy_loss(logp, old_logp, advantages, mask, *, clip_eps, ref_logp, kl_coef, **options):
        with torch.no_grad():
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

    return policy_loss


def _sampled_accuracy(policy, tokenizer, problems, k: int, seed: int) -> float:
    from grpo_edu.evaluate import accuracy

    return accuracy(policy, tokenizer, problems, temperature=1.0, n=k, seed=seed)


def run_grpo_training(
    fn: Callable,
    budget: TrainingBudget = TrainingBudget(),
    seed: int = 0,
    policy=None,
    tokenizer=None,
    progress: bool = False,
) -> dict[str, float]:
    """Train the add2 warm start (or ``policy``) with ``fn`` as the GRPO loss; before/after accuracy."""
    from grpo_edu.models import load_policy
    from grpo_edu.tasks import get_task

    if policy is None:
        policy, tokenizer = load_policy("add2")
    probe = get_task("add2").eval[: budget.n_probe]
    t0, threads = time.perf_counter(), torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and 10x faster on a busy CPU
    try:
        stats = _train_and_measure(fn, budget, seed, policy, tokenizer, probe, progress)
    finally:
        torch.set_num_threads(threads)
    return {**stats, "seconds": time.perf_counter() - t0}


def _train_and_measure(fn, budget, seed, policy, tokenizer, probe, progress) -> dict:
    from grpo_edu.trainer import TrainConfig, train  # imports transformers: only when training

    with torch.random.fork_rng(devices=[]):
        before = _sampled_accuracy(policy, tokenizer, probe, budget.k, seed)
        config = TrainConfig(
            task="add2",
            steps=budget.steps,
            n_prompts=budget.n_prompts,
            group_size=budget.group_size,
            lr=budget.lr,
            seed=seed,
        )
        student_loss = _student_policy_loss(fn)
        result = train(config, policy, tokenizer, progress=progress, loss_fn=student_loss)
        after = _sampled_accuracy(result.policy, tokenizer, probe, budget.k, seed)
    rewards = result.metrics["reward"]
    return {
        "before": before,
        "after": after,
        "reward_first": float(rewards.iloc[:5].mean()),
        "reward_last": float(rewards.iloc[-5:].mean()),
    }


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
    call_student("grpo_loss", fn, grpo_loss_cases(seed, 0)[0])  # fail fast on a stub
    try:
        stats = run_grpo_training(fn, budget, seed, policy, tokenizer, progress)
    except ValueError as err:
        if "no checkpoint" not in str(err):
            raise
        raise RuntimeError(
            "the add2 warm start is missing (data/checkpoints/add2): make it with "
            "`python -m grpo_edu pretrain add2`"
        ) from err
    gain = stats["after"] - stats["before"]
    summary = (
        f"sampled accuracy on {budget.n_probe} eval problems: {stats['before']:.3f} -> "
        f"{stats['after']:.3f} ({gain:+.3f}) after {budget.steps} GRPO steps; mean reward "
        f"{stats['reward_first']:.2f} (first 5 steps) -> {stats['reward_last']:.2f} (last 5)"
    )
    if gain < budget.min_gain:
        raise ExerciseFailed(
            "grpo_loss",
            (
                f"grpo_loss: the policy did not improve enough ({summary}; needed "
                f"{budget.min_gain:+.3f}).\nHint: run check_grpo_loss(grpo_loss) first: a loss with the "
                f"wrong sign makes the policy worse, one without gradient leaves it unchanged."
            ),
        )
    if not quiet:
        passed("grpo_loss", f"the policy improved: {summary}, in {stats['seconds']:.0f} s")
    return stats

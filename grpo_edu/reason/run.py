"""The R1-Zero run and the chapter's comparisons: configs, the evaluation callback, ``run_reason``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import pandas as pd

from ..algorithms import GRPOConfig
from ..evaluate_formats import FormatReport, evaluate_formats, sample_formats
from ..models import load_policy
from ..tasks import get_task
from ..trainer import TrainConfig, TrainResult, train

R1_ZERO = TrainConfig(
    task="sum4",
    checkpoint="sum4",
    steps=200,
    n_prompts=16,
    group_size=8,
    lr=1e-4,
    lr_schedule="linear",
    max_new_tokens=24,
    rewards=("final_answer",),
    grpo=GRPOConfig(kl_coef=0.04),
)
"""The R1-Zero run: GRPO, outcome reward only, from the ``sum4`` warm start, 200 x 16 x 8.

Found with short probes: lr 1e-4 (linear decay) switched the format within 50 steps; in a
400-step probe the scratchpad share was 1.0 and sampled accuracy within 0.03 of its final value
by step 200, so the chapter's recipe stops there."""

PROCESS = replace(R1_ZERO, grpo=replace(R1_ZERO.grpo, advantage="process"), step_rewards="process")
"""GRPO+PS: the same run with process supervision (DeepSeekMath sec. 4.1.3): each step scored by
``rewards.process_step_rewards``, each token credited with the normalised scores of the steps at
or after it (``advantages.process_advantages``)."""

STEP_MEAN = replace(R1_ZERO, rewards=("step_mean",))
"""The same run with a shaped outcome reward, the mean of the step scores
(``rewards.step_mean_reward``): it pays for the right steps of a wrong answer."""

NO_KL = replace(R1_ZERO, grpo=replace(R1_ZERO.grpo, kl_coef=0.0))
"""The R1-Zero run without the KL penalty (beta = 0)."""

EXPERIMENTS: dict[str, dict[str, TrainConfig]] = {
    "supervision": {
        "outcome (OS)": R1_ZERO,
        "process (PS)": PROCESS,
        "step mean reward": STEP_MEAN,
    },
    "beta": {"beta 0.04": R1_ZERO, "beta 0": NO_KL},
}
"""The comparisons of the chapter, each at equal budget: outcome vs process supervision vs a
shaped reward, and two values of beta. ``benchmarks/reason_seeds.py`` runs them over seeds."""


@dataclass(frozen=True)
class ReasonConfig:
    """The R1-Zero run and its evaluation. ``fast()`` gives the CI-sized version."""

    train: TrainConfig = R1_ZERO
    """The GRPO run (``R1_ZERO``); vary it with ``dataclasses.replace``."""
    eval_every: int = 25
    """Steps between evaluations during training."""
    eval_size: int = 200
    """Eval problems used during training."""
    eval_samples: int = 2
    """Samples per problem during training (share, sampled accuracy, per-format accuracy)."""
    report_size: int | None = None
    """Eval problems of the start and final reports (None: the whole split)."""
    report_n: int = 8
    """Samples per problem in those reports."""
    forced_n: int = 2
    """Forced samples per problem and format in those reports."""

    @classmethod
    def fast(cls) -> ReasonConfig:
        """A short version (CI, notebooks with GRPO_EDU_FAST=1): same recipe, fewer steps."""
        return cls(train=replace(R1_ZERO, steps=20), eval_every=10, eval_size=64,
                   eval_samples=1, report_size=100, report_n=2, forced_n=1)  # fmt: skip

    def with_seed(self, seed: int) -> ReasonConfig:
        return replace(self, train=replace(self.train, seed=seed))


@dataclass
class ReasonResult:
    """What ``run_reason`` returns."""

    config: ReasonConfig
    metrics: pd.DataFrame
    """One row per step (``trainer.METRICS``) plus a step-0 row; ``eval/...`` columns on
    evaluation steps (see ``format_callback``)."""
    start: FormatReport
    final: FormatReport
    run: TrainResult | None = None
    seconds: dict = field(default_factory=dict)
    """Wall seconds of ``train`` (evaluation excluded), of the evaluations, and in all; and
    ``train_cpu``, the CPU seconds of training: with one torch thread, the wall time it takes
    on an idle machine (wall time on a shared one is noise)."""

    @property
    def policy(self):
        return self.run.policy

    def summary(self) -> pd.DataFrame:
        """Start vs final: share, accuracies, lengths, pass@k; one row each."""
        rows = {"warm start": self.start.as_dict(), "GRPO": self.final.as_dict()}
        table = pd.DataFrame({k: _flat(v) for k, v in rows.items()}).T
        return table.drop(columns=["n", "temperature", "n_problems"])


def _flat(report: dict) -> dict:
    out = {k: v for k, v in report.items() if k != "pass_at"}
    out.update({f"pass@{k}": v for k, v in report["pass_at"].items()})
    return out


def format_callback(tokenizer, problems, samples: int, max_new_tokens: int, seed: int = 0):
    """callback(step, policy) -> eval columns for ``train``: on ``problems``, ``samples`` each,
    the scratchpad share, sampled accuracy overall and per chosen format, and mean length."""

    def callback(step, policy):
        s = sample_formats(policy, tokenizer, problems, samples, 1.0, seed, max_new_tokens)
        formats = s.formats
        by = {f: [c for c, g in zip(s.correct, formats, strict=True) if g == f]
              for f in ("scratchpad", "direct")}  # fmt: skip
        return {
            "eval/sampled": _mean(s.correct),
            "eval/scratchpad_share": _mean([f == "scratchpad" for f in formats]),
            "eval/sampled_scratchpad": _mean(by["scratchpad"]),
            "eval/sampled_direct": _mean(by["direct"]),
            "eval/mean_length": _mean(s.lengths),
        }

    return callback


EVAL_COLUMNS = {
    "eval/sampled": "sampled accuracy (final answer) at T = 1 on the eval problems",
    "eval/scratchpad_share": "share of those samples that are scratchpads",
    "eval/sampled_scratchpad": "accuracy of the samples that chose a scratchpad",
    "eval/sampled_direct": "accuracy of the samples that chose a direct answer",
    "eval/mean_length": "mean length of those samples in tokens, EOS included",
}
"""The columns ``format_callback`` adds on evaluation steps."""


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else float("nan")


def _report(config: ReasonConfig, policy, tokenizer, seed: int) -> FormatReport:
    problems = get_task(config.train.task).eval[: config.report_size]
    ks = sorted({1, config.report_n})
    return evaluate_formats(policy, tokenizer, problems, config.report_n, config.train.temperature,
                            seed, config.train.max_new_tokens, ks, config.forced_n)  # fmt: skip


def run_reason(
    config: ReasonConfig = ReasonConfig(), policy=None, tokenizer=None, progress: bool = True,
    trace_steps=(),
) -> ReasonResult:  # fmt: skip
    """Evaluate the warm start, train GRPO with ``config.train``, evaluate the result."""
    t0 = time.perf_counter()
    if policy is None:
        policy, tokenizer = load_policy(config.train.checkpoint)
    seed = config.train.seed
    start = _report(config, policy, tokenizer, seed)
    problems = get_task(config.train.task).eval[: config.eval_size]
    callback = format_callback(tokenizer, problems, config.eval_samples,
                               config.train.max_new_tokens, seed)  # fmt: skip
    first = callback(0, policy)
    eval_cpu = [0.0]  # CPU seconds spent in the callback, taken out of the training CPU time

    def timed_callback(step, policy):
        c0 = time.process_time()
        row = callback(step, policy)
        eval_cpu[0] += time.process_time() - c0
        return row

    cpu0 = time.process_time()
    run = train(config.train, policy, tokenizer, timed_callback, config.eval_every,
                trace_steps=trace_steps, progress=progress)  # fmt: skip
    train_cpu = time.process_time() - cpu0 - eval_cpu[0]
    final = _report(config, run.policy, tokenizer, seed)
    zero = {"step": 0, "completions_seen": 0, "time/elapsed": 0.0, **first}
    metrics = pd.concat([pd.DataFrame([zero]), run.metrics], ignore_index=True)
    total = time.perf_counter() - t0
    train_s = float(run.metrics["time/elapsed"].iloc[-1])
    seconds = {"train": train_s, "train_cpu": train_cpu, "total": total,
               "evaluation": total - train_s}  # fmt: skip
    return ReasonResult(config, metrics, start, final, run, seconds)

"""The main job: PPO and GRPO from the same warm start, on the same budget, side by side.

Both algorithms see the same prompts in the same order (one seed), the same number of completions
per step (16 prompts x 8) and the same total budget, and start from the same warm start with the
same learning-rate schedule: what differs is the algorithm. GRPO's baseline is the group; PPO
ignores the groups and learns a critic (GAE on its values). PPO's more usual layout, one completion
for each of 128 prompts, is one line away (``replace(c.ppo, n_prompts=128, group_size=1)``); it
gives the critic more distinct prompts per step but cannot share a prompt's forward pass across
a group (``rollout``, convention 4), so each of its steps costs more (notebook 06 times it).
Every ``eval_every`` steps the policy is evaluated on the task's fixed eval split (greedy, and
sampled at the training temperature); evaluation time is excluded from the wall-clock columns.

``run_compare`` returns a ``CompareResult``: per-step metrics of both runs in one long DataFrame
(column ``algorithm``), a summary table, the memory accounts and the machine it ran on.
``run_compare_seeds`` repeats it over several seeds (``SeedsResult``): one run says little, since
another seed, or the same seed on another CPU build, moves the last digits of every number.
``spread`` gives each column's mean, sd, min and max over seeds, and ``verdicts`` calls a
difference between the algorithms a win only where the seeds' ranges do not overlap.
``plots.compare_figures`` draws either.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from .accounting import MB
from .evaluate import accuracy, evaluate_policy
from .machine import machine_info
from .models import load_policy, n_params
from .tasks import get_task
from .trainer import TrainConfig, TrainResult, train


@dataclass(frozen=True)
class CompareConfig:
    """PPO vs GRPO on one task. ``fast()`` gives the CI-sized version."""

    grpo: TrainConfig = TrainConfig(algorithm="grpo")
    """The GRPO run (DeepSeekMath defaults; see ``TrainConfig`` and ``GRPOConfig``)."""
    ppo: TrainConfig = TrainConfig(algorithm="ppo")
    """The PPO run: the same prompts, completions per step, steps and learning rate as GRPO (the
    critic, not the group, is its baseline)."""
    eval_every: int = 50
    """Steps between evaluations."""
    eval_samples: int = 2
    """Samples per eval problem for sampled accuracy during training (the final report uses 8)."""
    eval_size: int = 500
    """Eval problems used during training."""
    report_size: int | None = None
    """Eval problems of the start and final reports (None: the whole split)."""
    report_k: int = 8
    """Samples per problem in those reports (sampled accuracy, pass@k, maj@k)."""
    target: float = 0.9
    """Sampled accuracy whose first crossing during training the summary reports (step, seconds)."""

    def __post_init__(self):
        g, p = self.grpo, self.ppo
        if g.completions_per_step != p.completions_per_step or g.steps != p.steps:
            raise ValueError(
                "PPO and GRPO must get the same budget: completions per step "
                f"{g.completions_per_step} vs {p.completions_per_step}, steps {g.steps} vs {p.steps}"
            )
        if g.task != p.task or g.checkpoint != p.checkpoint:
            raise ValueError("PPO and GRPO must start from the same checkpoint on the same task")

    @classmethod
    def fast(cls) -> CompareConfig:
        """A short version (CI, notebooks with GRPO_EDU_FAST=1): same recipe, fewer steps."""
        c = cls()
        return replace(c, grpo=replace(c.grpo, steps=20), ppo=replace(c.ppo, steps=20),
                       eval_every=10, eval_samples=1, eval_size=200, report_k=4)  # fmt: skip

    def with_steps(self, steps: int) -> CompareConfig:
        return replace(
            self, grpo=replace(self.grpo, steps=steps), ppo=replace(self.ppo, steps=steps)
        )

    def with_seed(self, seed: int) -> CompareConfig:
        return replace(self, grpo=replace(self.grpo, seed=seed), ppo=replace(self.ppo, seed=seed))


@dataclass
class CompareResult:
    config: CompareConfig
    metrics: pd.DataFrame
    """Per-step metrics of both runs, long format with an ``algorithm`` column."""
    summary: pd.DataFrame
    """Rows ``start`` (the warm start: accuracies only), ``grpo``, ``ppo``: accuracies, training
    time, memory, parameters; counts are integers."""
    runs: dict[str, TrainResult] = field(default_factory=dict)
    start: dict = field(default_factory=dict)
    """The warm start's evaluation (the same for both)."""
    machine: dict = field(default_factory=dict)
    """``machine.machine_info()`` of the machine that ran it (CPU, torch build, threads)."""


def make_eval_callback(tokenizer, problems, temperature: float, samples: int, seed: int = 0):
    """callback(step, policy) -> {"eval/greedy": ..., "eval/sampled": ...} for ``train``."""

    def callback(step, policy):
        return {
            "eval/greedy": accuracy(policy, tokenizer, problems, temperature=0.0),
            "eval/sampled": accuracy(policy, tokenizer, problems, temperature, seed, n=samples),
        }

    return callback


def run_compare(config: CompareConfig = CompareConfig(), progress: bool = True) -> CompareResult:
    """Train GRPO then PPO from the same warm start; evaluate both on the same eval problems."""
    task = get_task(config.grpo.task)
    problems, report = task.eval[: config.eval_size], task.eval[: config.report_size]
    runs, rows, summary, start = {}, [], {}, None
    for run in (config.grpo, config.ppo):
        policy, tokenizer = load_policy(run.checkpoint)
        if start is None:
            start = evaluate_policy(policy, tokenizer, report, config.report_k, run.temperature)
        callback = make_eval_callback(tokenizer, problems, run.temperature, config.eval_samples)
        first = callback(0, policy)
        result = train(run, policy, tokenizer, callback, config.eval_every, progress=progress)
        zero = {"step": 0, "completions_seen": 0, "time/elapsed": 0.0, **first}
        df = pd.concat([pd.DataFrame([zero]), result.metrics], ignore_index=True)
        df.insert(0, "algorithm", run.algorithm)
        rows.append(df)
        runs[run.algorithm] = result
        final = evaluate_policy(result.policy, tokenizer, report, config.report_k, run.temperature)
        summary[run.algorithm] = {
            **_accuracies(final),
            **_costs(result),
            **_time_to(df, config.target),
        }
    summary = {"start": _accuracies(start), **summary}  # the warm start first, then the runs
    metrics = pd.concat(rows, ignore_index=True)
    return CompareResult(config, metrics, _typed(pd.DataFrame.from_dict(summary, orient="index")),
                         runs, start.as_dict(), machine_info())  # fmt: skip


INTEGER_COLUMNS = ("steps", "completions", "trainable_params", "held_params", "steps_to_target")
"""Summary columns that count things: nullable integers (the warm start's row has none)."""


def _typed(summary: pd.DataFrame) -> pd.DataFrame:
    """Counts as integers (``Int64``, so that a missing value stays missing), the rest floats."""
    out = summary.astype(float)
    for column in INTEGER_COLUMNS:
        if column in out:
            out[column] = out[column].round().astype("Int64")
    return out


@dataclass
class SeedsResult:
    """The compare job on several seeds."""

    config: CompareConfig
    """The configuration of the first seed (the others differ only in their seed)."""
    results: dict[int, CompareResult]

    @property
    def seeds(self) -> list[int]:
        return list(self.results)

    @property
    def per_seed(self) -> pd.DataFrame:
        """Every seed's summary, index (seed, algorithm)."""
        return pd.concat(
            {s: r.summary for s, r in self.results.items()}, names=["seed", "algorithm"]
        )

    @property
    def metrics(self) -> pd.DataFrame:
        """Every seed's per-step metrics, with a ``seed`` column."""
        return pd.concat(
            [r.metrics.assign(seed=s) for s, r in self.results.items()], ignore_index=True
        )

    @property
    def machine(self) -> dict:
        return next(iter(self.results.values())).machine


def run_compare_seeds(
    config: CompareConfig = CompareConfig(), seeds=(0, 1, 2), progress: bool = True
) -> SeedsResult:
    """``run_compare`` once per seed (the same configuration otherwise)."""
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    results = {s: run_compare(config.with_seed(s), progress=progress) for s in seeds}
    return SeedsResult(config.with_seed(seeds[0]), results)


def spread(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd (ddof 1), min, max and n of every summary column over seeds, per algorithm.

    ``per_seed`` is ``SeedsResult.per_seed`` (index (seed, algorithm)); the result has one row
    per algorithm and columns ``(column, statistic)``.
    """
    numeric = per_seed.astype(float)
    grouped = numeric.groupby(level="algorithm", sort=False)
    stats = {"mean": grouped.mean(), "sd": grouped.std(ddof=1), "min": grouped.min(),
             "max": grouped.max(), "n": grouped.count()}  # fmt: skip
    out = pd.concat(stats, axis=1).swaplevel(axis=1)
    return out[[(c, s) for c in per_seed.columns for s in stats]]


def verdicts(per_seed: pd.DataFrame, columns=None, higher_is_better=None) -> dict[str, str]:
    """GRPO vs PPO per column: which is better, or ``"within the spread"``.

    A win needs every seed of one algorithm to beat every seed of the other (the min-max ranges
    over seeds do not overlap; with 3 seeds each, a chance of 1 in 10 when both are equally
    good); with fewer than 3 seeds nothing is called. ``higher_is_better`` maps a
    column to False where smaller wins (time, memory); default True.
    """
    higher_is_better = higher_is_better or {}
    numeric = per_seed.astype(float)
    grpo, ppo = (numeric.xs(a, level="algorithm") for a in ("grpo", "ppo"))
    out = {}
    for column in columns or [c for c in per_seed.columns if c in grpo]:
        g, p = grpo[column].dropna(), ppo[column].dropna()
        if len(g) < 3 or len(p) < 3:
            out[column] = f"{min(len(g), len(p))} seed(s): not called"
            continue
        sign = 1 if higher_is_better.get(column, True) else -1
        if sign * g.min() > sign * p.max():
            out[column] = "GRPO better"
        elif sign * p.min() > sign * g.max():
            out[column] = "PPO better"
        else:
            out[column] = "within the spread"
    return out


def _accuracies(report) -> dict:
    return {
        "greedy": report.greedy,
        "sampled": report.sampled,
        f"pass@{report.k}": report.pass_at_k,
        f"maj@{report.k}": report.maj_at_k,
    }


def _time_to(metrics: pd.DataFrame, target: float) -> dict:
    """Step and training seconds of the first evaluation with sampled accuracy >= target."""
    hit = metrics[metrics["eval/sampled"] >= target]
    if hit.empty:
        return {"steps_to_target": float("nan"), "seconds_to_target": float("nan")}
    first = hit.iloc[0]
    return {
        "steps_to_target": int(first["step"]),
        "seconds_to_target": float(first["time/elapsed"]),
    }


def _costs(result: TrainResult) -> dict:
    m, st = result.metrics, result.state
    trainable = [p for group in st.optimizer.param_groups for p in group["params"]]
    critic = n_params(st.critic) if st.critic is not None else 0
    return {
        "steps": int(m["step"].iloc[-1]),
        "completions": int(m["completions_seen"].iloc[-1]),
        "train_seconds": float(m["time/elapsed"].iloc[-1]),
        "seconds_per_step": float(m["time/step"].median()),
        "train_state_mb": result.memory["measured"]["total"] / MB,
        "trainable_params": sum(p.numel() for p in trainable),
        "held_params": n_params(st.policy) + n_params(st.ref_model) + critic,
    }

"""Reasoning emerges: DeepSeek-R1-Zero's signature (accuracy up, answers longer), on a laptop CPU.

During DeepSeek-R1-Zero's RL (arXiv:2501.12948, Figures 2 and 3) accuracy climbs while the mean
response length grows: the policy learns that working things out pays. The same thing, at toy
scale: the ``sum4`` warm start (``pretrain.ScratchpadPretrainConfig``) can answer
``"12+7+5+9="`` directly (``"33"``, usually wrong: four numbers at once are hard for it) or with
a scratchpad (``" 12+7=19+5=24+9=33"``, usually right: each step is a two-number addition it
knows), but chooses the scratchpad only about one time in ten. GRPO with the outcome reward
alone (``rewards.final_answer_reward``: the final integer, nothing about the steps) then makes
it choose the scratchpad almost always, and accuracy and length rise together.

What this is and is not: the warm start already *had* both behaviours; RL *selected* the one
that pays. ``pass_at_k_curve`` measures pass@k up to large k for the warm start and the RL
policy, the test of Yue et al. 2025 (arXiv:2504.13837) for new ability vs sharpening.

``run_reason(ReasonConfig())`` trains, evaluates during training (scratchpad share, sampled
accuracy per format, length) and before and after (``evaluate_formats.FormatReport``), and
returns a ``ReasonResult``. ``python -m grpo_edu reason`` runs it and writes the figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import pandas as pd
import torch

from .algorithms import GRPOConfig
from .evaluate_formats import FormatReport, evaluate_formats, pass_at_ks, sample_formats
from .models import CHECKPOINT_DIR, load_policy
from .rollout import Rollout, completion_mask_from_ids, encode_prompts, position_ids_from_mask
from .tasks import get_task
from .tokenizer import build_tokenizer
from .trainer import TrainConfig, TrainResult, train
from .vocab import EOS, EOS_ID, PAD_ID, VOCAB

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


# ------------------------------------------------------------------------- pass@k and tokens
PASS_KS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""The k of the pass@k curves."""


def pass_at_k_curve(
    policy, tokenizer, problems, n: int = 256, ks=PASS_KS, seed: int = 0, max_new_tokens: int = 24
) -> dict[int, float]:
    """pass@k for every k in ``ks`` (<= n), from ``n`` samples per problem at T = 1 (unbiased
    estimator, ``evaluate.pass_at_k``). Large k asks: can the policy solve it *at all*?"""
    samples = sample_formats(policy, tokenizer, problems, n, 1.0, seed, max_new_tokens)
    return pass_at_ks(samples, [k for k in ks if k <= n])


@torch.no_grad()
def token_probs(policy, tokenizer, prompt: str, completion: str) -> list[tuple[str, float]]:
    """(token, probability under ``policy`` at T = 1) for each token of ``completion`` + EOS:
    how sure the policy is of each token of a given answer (for before/after heatmaps)."""
    enc = tokenizer([prompt + completion + EOS], return_tensors="pt")
    ids, mask = enc.input_ids, enc.attention_mask  # (1, L)
    logits = policy(
        input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)
    ).logits[0]  # fmt: skip  (L, V)
    n_prompt = len(tokenizer([prompt]).input_ids[0])
    probs = torch.softmax(logits[n_prompt - 1 : -1].float(), -1)  # (T, V) predicts token t
    targets = ids[0, n_prompt:]  # (T,)
    inverse = {i: t for t, i in VOCAB.items()}
    return [(inverse[int(t)], float(probs[i, t])) for i, t in enumerate(targets)]


def hand_rollout(
    prompts: list[str], completions: list[str], answers: list[int], group_size: int
) -> Rollout:
    """A ``Rollout`` of given completions (each ended by EOS), as if sampled: for teaching, to
    look at rewards and advantages of chosen answers. Sampling log-probs are 0 (not sampled)."""
    tokenizer = build_tokenizer()
    rows = [[VOCAB[ch] for ch in c] + [EOS_ID] for c in completions]
    ids = torch.full((len(rows), max(map(len, rows))), PAD_ID)  # (B, T)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts)
    return Rollout(
        prompts=list(prompts), answers=list(answers), prompt_ids=prompt_ids,
        prompt_mask=prompt_mask, completion_ids=ids, completion_mask=completion_mask_from_ids(ids),
        texts=list(completions), truncated=torch.zeros(len(rows), dtype=torch.bool),
        group=torch.arange(len(rows)) // group_size, sampling_logp=torch.zeros(ids.shape),
        group_size=group_size, temperature=1.0, max_new_tokens=ids.shape[1],
    )  # fmt: skip


# ------------------------------------------------------------------------ results over seeds
RESULTS_DIR = CHECKPOINT_DIR.parent.parent / "benchmarks" / "results"
"""Where ``benchmarks/reason_seeds.py`` writes its results (``reason_runs.jsonl``, ...)."""


def load_seed_runs(results_dir=RESULTS_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(finals, metrics) written by ``benchmarks/reason_seeds.py``: one row per (run, seed)
    with ``start_*`` and ``final_*`` report columns, seconds and pass@k up to 256 where measured;
    and the per-step metrics of every run (long, with ``run`` and ``seed`` columns)."""
    import json
    from pathlib import Path

    results_dir = Path(results_dir)
    rows = []
    for line in (results_dir / "reason_runs.jsonl").read_text().splitlines():
        r = json.loads(line)
        row = {"run": r["name"], "seed": r["seed"], "task": r["task"]}
        for part in ("start", "final"):
            row |= {f"{part}_{k}": v for k, v in _flat(r[part]).items()}
        row |= {f"seconds_{k}": v for k, v in r["seconds"].items()}
        if "pass_at_k" in r:
            row |= {f"final_pass@{k}_n256": v for k, v in r["pass_at_k"]["curve"].items()}
        rows.append(row)
    metrics = pd.read_csv(results_dir / "reason_runs_metrics.csv")
    return pd.DataFrame(rows), metrics


def seed_table(finals: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Mean and (min, max) over seeds of ``columns`` (column -> label), one row per run, as
    text ``"0.912 (0.905-0.920)"``; the last column counts the seeds."""
    out = {}
    for run, df in finals.groupby("run", sort=False):
        row = {label: f"{df[c].mean():.3f} ({df[c].min():.3f}-{df[c].max():.3f})"
               for c, label in columns.items()}  # fmt: skip
        out[run] = row | {"seeds": len(df)}
    return pd.DataFrame(out).T


def seed_pass_curves(finals: pd.DataFrame, run: str, label: str = "GRPO") -> dict[str, dict]:
    """``{"<label> seed s": {k: pass@k}}`` of the runs called ``run`` that have a pass@k curve."""
    columns = [c for c in finals.columns if c.endswith("_n256")]
    curves = {}
    for _, r in finals[finals["run"] == run].iterrows():
        curve = {int(c.split("@")[1].split("_")[0]): r[c] for c in columns if r[c] == r[c]}
        if curve:
            curves[f"{label} seed {r['seed']}"] = curve
    return curves

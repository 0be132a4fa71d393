"""DeepSeekMath's Figure 5 at toy scale: every method from the same warm start, the same budget.

Each method of ``table.METHODS`` is one ``trainer.train`` run from the same warm start, on the
same prompts in the same order, with the same number of completions per step (n_prompts x G)
and of steps: online methods sample theirs from the current policy, offline methods (RFT, DPO)
sample the same number once from the warm start, SFT reads as many reference answers. Every run
is evaluated on the same eval problems during training (greedy and sampled accuracy), at the end
(greedy, sampled, pass@k, maj@k with k = ``report_k``), and for pass@k up to k = ``passk_n``
(the unbiased estimator of Chen et al. 2021 from ``passk_n`` samples of each of ``passk_size``
problems), as the warm start is. Every (method, seed) is one job; ``workers > 1`` runs jobs in
that many processes (one torch thread each).

``run_race`` returns a ``RaceResult``: per-step metrics (long, with ``method`` and ``seed``),
one summary row per run, the pass@k curves, and ``race_table``'s mean and std over seeds.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..algorithms import DPOConfig
from ..compare import make_eval_callback
from ..evaluate import evaluate_policy, pass_at_k, sample_answers
from ..masked import check_int
from ..models import load_policy
from ..pretrain import PretrainConfig, pretrain
from ..tasks import DATA_DIR, get_task, parse_answer
from ..trainer import ALGORITHMS, TrainConfig, check_train_config, train
from .table import METHODS

TASK = "mul2"
"""The race's task: two-digit multiplication, where the warm start is far from its ceiling
(pass@8 0.55; add2's is 0.97, sub2's 0.96), so that pass@k can tell sharpening from new ability."""
ROOT = DATA_DIR.parent
"""The repository root: saved configs name the warm start relative to it."""
WARM_START = DATA_DIR / "paradigm" / TASK
"""The race's warm start, shipped beside (not among) ``data/checkpoints``: at 0.21 sampled
accuracy it is below the band of the RL warm starts (0.35..0.75), and its 2,000 steps took
345 s of CPU, above their 300 s. ``make_warm_start`` (``python -m grpo_edu paradigm
--pretrain``) re-makes it."""
WARM_START_RECIPE = PretrainConfig(task=TASK, steps=2000, min_lr_ratio=0.05)
"""The recipe of ``WARM_START``: the shipped recipes' schedule (cosine to 0.05, label smoothing
0.15) for 2,000 steps."""
RACE_LR = {"sft": 2e-4, "rft": 2e-4, "online_rft": 2e-4, "dpo": 2e-4, "ppo": 2e-4, "grpo": 2e-4}
"""Learning rate of each method (Adam, linear decay to 0): the course's recipe for all. On the
mul2 warm start (100 steps, seed 0, sampled accuracy on 300 eval problems x 4): GRPO 5e-4 0.216
and 1e-3 0.116 (KL 0.77) against 0.25 at 2e-4; online RFT at 1e-3 collapsed (0.075); SFT at 1e-3
reached 0.318 (0.288 at 2e-4): only SFT would gain from a larger rate."""
DPO_BETA = 0.5
"""DPO's beta in the race. Tried on mul2 (100 steps, seed 0): beta 0.1 at lr 2e-4 lost greedy
accuracy (0.29 from 0.37, sampled 0.20) and 0.1 at 5e-5 stayed put (0.203); beta 0.5 gave 0.223
at 2e-4 and 0.214 at 5e-5. A larger beta keeps the pairs' log-ratios smaller (the loss saturates
sooner), so the policy drifts less."""
PASSK_KS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""The k of the pass@k curves."""


@dataclass(frozen=True)
class RaceConfig:
    """Every method from one warm start on one budget, over seeds. ``fast()``: the CI size."""

    task: str = TASK
    """Task of the prompts, the evaluation and the warm start."""
    checkpoint: str = str(WARM_START)
    """Warm start every method begins from (a shipped name or a directory)."""
    methods: tuple[str, ...] = METHODS
    """Which of ``table.METHODS`` to run."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """One run per method and seed (prompt order, sampling, evaluation samples)."""
    steps: int = 100
    """Steps of every run."""
    n_prompts: int = 16
    """Prompts per step (SFT: n_prompts x group_size reference answers per step)."""
    group_size: int = 8
    """G, completions per prompt: GRPO's groups, DPO's pairs come from them."""
    lrs: tuple[tuple[str, float], ...] = tuple(RACE_LR.items())
    """(method, learning rate) pairs; missing methods use TrainConfig's default."""
    dpo_beta: float = DPO_BETA
    """DPO's beta (``DPOConfig.beta``)."""
    eval_every: int = 25
    """Steps between evaluations during training."""
    eval_size: int = 200
    """Eval problems used during training."""
    eval_samples: int = 2
    """Samples per problem for sampled accuracy during training."""
    report_size: int | None = None
    """Eval problems of the final report (None: the whole split)."""
    report_k: int = 8
    """Samples per problem of the final report: sampled accuracy, pass@k, maj@k."""
    passk_size: int = 100
    """Eval problems of the pass@k curves (the first ones of the split)."""
    passk_n: int = 256
    """Samples per problem of the pass@k curves: k goes up to passk_n."""
    workers: int = 1
    """Processes running the jobs (one torch thread each); 2 on an idle 2-core machine."""

    @classmethod
    def fast(cls) -> RaceConfig:
        """The CI size: all methods, one seed, a few steps, small evaluations."""
        return cls(seeds=(0,), steps=6, eval_every=3, eval_size=40, eval_samples=1,
                   report_size=100, report_k=4, passk_size=20, passk_n=16)  # fmt: skip

    def train_config(self, method: str, seed: int) -> TrainConfig:
        """The ``TrainConfig`` of one run."""
        lr = dict(self.lrs).get(method, TrainConfig().lr)
        return TrainConfig(algorithm=method, task=self.task, checkpoint=self.checkpoint,
                           steps=self.steps, n_prompts=self.n_prompts,
                           group_size=self.group_size, lr=lr, seed=seed,
                           dpo=DPOConfig(beta=self.dpo_beta))  # fmt: skip

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(k for k in PASSK_KS if k <= self.passk_n)


def check_race_config(config: RaceConfig) -> None:
    """Clear errors before any run starts (each run's ``TrainConfig`` is checked too)."""
    if not config.methods or any(m not in ALGORITHMS for m in config.methods):
        raise ValueError(f"RaceConfig.methods must be names of {ALGORITHMS}, got {config.methods}")
    if len(set(config.methods)) != len(config.methods) or len(set(config.seeds)) != len(
        config.seeds
    ):
        raise ValueError(f"RaceConfig.methods and seeds must not repeat, got {config}")
    if not config.seeds:
        raise ValueError("RaceConfig.seeds is empty: give at least one seed")
    for name in ("eval_every", "eval_size", "eval_samples", "report_k", "passk_size", "passk_n",
                 "workers"):  # fmt: skip
        check_int(f"RaceConfig.{name}", getattr(config, name))
    for method in config.methods:
        for seed in config.seeds:
            check_train_config(config.train_config(method, seed))


@dataclass
class RaceResult:
    config: RaceConfig
    metrics: pd.DataFrame
    """Per-step metrics of every run, long format with ``method`` and ``seed`` columns (step 0
    is the warm start's evaluation)."""
    runs: pd.DataFrame
    """One row per (method, seed): final accuracies, pass@k curve, times."""
    passk: pd.DataFrame
    """pass@k of every run and of the warm start: method, seed, k, pass@k."""
    start: dict = field(default_factory=dict)
    """The warm start's final-report accuracies."""

    @property
    def table(self) -> pd.DataFrame:
        return race_table(self.runs)


def _passk_curve(policy, tokenizer, problems, config: RaceConfig, temperature: float, seed: int):
    """{k: pass@k} from ``passk_n`` samples per problem (unbiased estimator)."""
    samples = sample_answers(policy, tokenizer, problems, config.passk_n, temperature, seed,
                             batch_size=4096)  # fmt: skip
    counts = [
        sum(parse_answer(t) == p.answer for t in texts)
        for p, texts in zip(problems, samples, strict=True)
    ]
    n = config.passk_n
    return {k: sum(pass_at_k(n, c, k) for c in counts) / len(counts) for k in config.ks}


def _report(report) -> dict:
    k = report.k
    return {"greedy": report.greedy, "sampled": report.sampled, f"pass@{k}": report.pass_at_k,
            f"maj@{k}": report.maj_at_k}  # fmt: skip


def run_start(config: RaceConfig) -> dict:
    """The warm start's evaluation: final report and pass@k curve (sampling seed 0)."""
    torch.set_num_threads(1)
    policy, tokenizer = load_policy(config.checkpoint)
    task = get_task(config.task)
    report = evaluate_policy(policy, tokenizer, task.eval[: config.report_size], config.report_k)
    curve = _passk_curve(policy, tokenizer, task.eval[: config.passk_size], config, 1.0, 0)
    problems = task.eval[: config.eval_size]
    first = make_eval_callback(tokenizer, problems, 1.0, config.eval_samples)(0, policy)
    return {"report": _report(report), "passk": curve, "first": first}


def run_one(config: RaceConfig, method: str, seed: int, first: dict | None = None) -> dict:
    """One run: train ``method`` with ``seed``, evaluate during and after training.

    ``first`` is the warm start's evaluation at step 0 (computed once by ``run_start``).
    Returns the per-step metrics and a summary dict (times: training wall seconds, evaluation
    excluded, and the job's CPU seconds, which a busy machine does not inflate).
    """
    torch.set_num_threads(1)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    train_config = config.train_config(method, seed)
    policy, tokenizer = load_policy(config.checkpoint)
    task = get_task(config.task)
    callback = make_eval_callback(tokenizer, task.eval[: config.eval_size], 1.0,
                                  config.eval_samples, seed)  # fmt: skip
    result = train(train_config, policy, tokenizer, callback, config.eval_every, progress=False)
    cpu_train = time.process_time() - cpu0
    zero = {"step": 0, "completions_seen": 0, "time/elapsed": 0.0, **(first or {})}
    metrics = pd.concat([pd.DataFrame([zero]), result.metrics], ignore_index=True)
    metrics.insert(0, "seed", seed)
    metrics.insert(0, "method", method)
    report = evaluate_policy(result.policy, tokenizer, task.eval[: config.report_size],
                             config.report_k, 1.0, seed)  # fmt: skip
    curve = _passk_curve(result.policy, tokenizer, task.eval[: config.passk_size], config, 1.0,
                         seed)  # fmt: skip
    m = result.metrics
    tail = m.tail(min(10, len(m)))
    summary = {
        "method": method,
        "seed": seed,
        **_report(report),
        **{f"pass@{k}_curve": v for k, v in curve.items()},
        "kl": tail["kl"].mean(),
        "entropy": tail["entropy"].mean(),
        "reward": tail["reward"].mean(),
        "train_seconds": float(m["time/elapsed"].iloc[-1]),
        "seconds_per_step": float(m["time/step"].median()),
        "train_cpu_seconds": cpu_train,
        "job_seconds": time.perf_counter() - wall0,
        "job_cpu_seconds": time.process_time() - cpu0,
    }
    return {"metrics": metrics, "summary": summary, "passk": curve}


def _pool(workers: int):
    os.environ["OMP_NUM_THREADS"] = "1"  # inherited by the spawned workers
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def run_race(
    config: RaceConfig = RaceConfig(),
    progress: bool = True,
    on_result: Callable[[str, int, dict], None] | None = None,
) -> RaceResult:
    """Run the warm start's evaluation and every (method, seed); see the module docstring.

    ``on_result(method, seed, summary)`` is called as each run finishes (the CLI prints it).
    """
    check_race_config(config)
    jobs = [(m, s) for m in _longest_first(config.methods) for s in config.seeds]
    bar = tqdm(total=len(jobs) + 1, desc="race", disable=not progress)
    if config.workers == 1:
        start = run_start(config)
        bar.update()
        outputs = {}
        for m, s in jobs:
            outputs[m, s] = run_one(config, m, s, start["first"])
            _done(bar, on_result, m, s, outputs[m, s])
    else:
        with _pool(config.workers) as pool:
            start = pool.submit(run_start, config).result()
            bar.update()
            futures = {pool.submit(run_one, config, m, s, start["first"]): (m, s) for m, s in jobs}
            outputs = {}
            for future in as_completed(futures):
                m, s = futures[future]
                outputs[m, s] = future.result()
                _done(bar, on_result, m, s, outputs[m, s])
    bar.close()
    order = [(m, s) for m in config.methods for s in config.seeds]
    metrics = pd.concat([outputs[key]["metrics"] for key in order], ignore_index=True)
    runs = pd.DataFrame([outputs[key]["summary"] for key in order])
    curves = [
        {"method": "start", "seed": 0, "k": k, "pass@k": v} for k, v in start["passk"].items()
    ]
    curves += [{"method": m, "seed": s, "k": k, "pass@k": v}
               for (m, s) in order for k, v in outputs[m, s]["passk"].items()]  # fmt: skip
    start_row = {"method": "start", "seed": 0, **start["report"],
                 **{f"pass@{k}_curve": v for k, v in start["passk"].items()}}  # fmt: skip
    runs = pd.concat([pd.DataFrame([start_row]), runs], ignore_index=True)
    return RaceResult(config, metrics, runs, pd.DataFrame(curves), start["report"])


FILES = {"metrics": "paradigm_metrics.csv", "runs": "paradigm_runs.csv",
         "passk": "paradigm_passk.csv", "config": "paradigm_config.json"}  # fmt: skip
"""What ``save_race`` writes (and ``load_race`` reads) in a folder."""


def save_race(result: RaceResult, out: str | Path) -> list[Path]:
    """Write the race's CSVs, its config (JSON) and its mean/std table to ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / FILES[k] for k in ("metrics", "runs", "passk", "config")]
    result.metrics.to_csv(paths[0], index=False)
    result.runs.to_csv(paths[1], index=False)
    result.passk.to_csv(paths[2], index=False)
    fields = asdict(result.config)
    checkpoint = Path(fields["checkpoint"])
    if checkpoint.is_absolute() and checkpoint.is_relative_to(ROOT):  # portable: from the root
        fields["checkpoint"] = checkpoint.relative_to(ROOT).as_posix()
    paths[3].write_text(json.dumps(fields, indent=2) + "\n")
    result.table.to_csv(out / "paradigm_table.csv")
    return [*paths, out / "paradigm_table.csv"]


def load_race(folder: str | Path) -> RaceResult:
    """The ``RaceResult`` that ``save_race`` (``python -m grpo_edu paradigm``) wrote."""
    folder = Path(folder)
    missing = [f for f in FILES.values() if not (folder / f).exists()]
    if missing:
        raise ValueError(
            f"{folder} has no race results ({', '.join(missing)} missing): run "
            f"`python -m grpo_edu paradigm --out {folder}` first"
        )
    fields = json.loads((folder / FILES["config"]).read_text())
    if (ROOT / fields["checkpoint"]).exists():  # saved relative to the repository root
        fields["checkpoint"] = str(ROOT / fields["checkpoint"])
    config = RaceConfig(**{k: tuple(map(tuple, v)) if k == "lrs" else
                           tuple(v) if isinstance(v, list) else v for k, v in fields.items()})  # fmt: skip
    runs = pd.read_csv(folder / FILES["runs"])
    start = runs[runs["method"] == "start"].iloc[0]
    k = config.report_k
    report = {c: float(start[c]) for c in ("greedy", "sampled", f"pass@{k}", f"maj@{k}")}
    return RaceResult(config, pd.read_csv(folder / FILES["metrics"]), runs,
                      pd.read_csv(folder / FILES["passk"]), report)  # fmt: skip


def readme_table(folder: str | Path) -> str:
    """The README's race table (``<!-- results: paradigm -->``), rendered from the saved race."""
    result = load_race(folder)
    table = race_table(result.runs)
    k, top = result.config.report_k, max(result.config.ks)
    columns = ["greedy", "sampled", f"pass@{k}", f"maj@{k}", f"pass@{top}_curve"]
    names = {"start": "warm start", "sft": "SFT", "rft": "RFT (offline)", "online_rft": "online RFT",
             "dpo": "DPO (offline)", "ppo": "PPO", "grpo": "GRPO"}  # fmt: skip
    best = table[("sampled", "mean")].drop("start").idxmax()
    lines = [f"| | greedy | sampled | pass@{k} | maj@{k} | pass@{top} | train CPU s |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for method in table.index:
        cells = []
        for column in columns:
            m, sd = table.loc[method, (column, "mean")], table.loc[method, (column, "std")]
            cell = f"{m:.3f}" if sd != sd else f"{m:.3f} ± {sd:.3f}"
            cells.append(f"**{cell}**" if column == "sampled" and method == best else cell)
        cpu = table.loc[method, ("train_cpu_seconds", "mean")]
        cells.append("" if cpu != cpu else f"{cpu:.1f}")
        lines.append(f"| {names.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def make_warm_start(progress: bool = True):
    """(model, tokenizer, card) of ``WARM_START_RECIPE`` (save with ``models.save_policy``)."""
    return pretrain(WARM_START_RECIPE, progress=progress)


def passk_table(passk: pd.DataFrame) -> pd.DataFrame:
    """pass@k curves, mean over seeds: one row per method (the warm start first), one column per k."""
    order = list(dict.fromkeys(passk["method"]))
    table = passk.pivot_table(index="method", columns="k", values="pass@k", aggfunc="mean")
    return table.loc[order]


def _done(bar, on_result, method, seed, output) -> None:
    bar.update()
    bar.set_postfix(last=f"{method} seed {seed}")
    if on_result is not None:
        on_result(method, seed, output["summary"])


def _longest_first(methods: Sequence[str]) -> list[str]:
    """PPO (critic) and GRPO first, so that parallel workers finish together."""
    cost = {"ppo": 0, "grpo": 1, "online_rft": 2, "dpo": 3, "rft": 4, "sft": 5}
    return sorted(methods, key=lambda m: cost.get(m, 9))


SUMMARY_COLUMNS = ("greedy", "sampled", "pass@8", "maj@8", "pass@256_curve", "kl",
                   "train_seconds", "train_cpu_seconds")  # fmt: skip
"""The columns ``race_table`` aggregates (those present)."""


def race_table(runs: pd.DataFrame, columns: Sequence[str] = SUMMARY_COLUMNS) -> pd.DataFrame:
    """Mean and std over seeds of each method's summary, columns (metric, "mean" | "std"),
    methods in the runs' order (the warm start first, std NaN: one evaluation)."""
    present = [c for c in columns if c in runs.columns]
    order = list(dict.fromkeys(runs["method"]))
    grouped = runs.groupby("method", sort=False)[present]
    table = pd.concat({"mean": grouped.mean(), "std": grouped.std(ddof=1)}, axis=1)
    table = table.swaplevel(axis=1)[[(c, s) for c in present for s in ("mean", "std")]]
    return table.loc[order]


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """``race_table`` as strings ``mean ± std`` (seconds with one decimal)."""
    out = {}
    for column in dict.fromkeys(c for c, _ in table.columns):
        digits = 1 if "seconds" in column else 3
        mean, std = table[(column, "mean")], table[(column, "std")]
        out[column] = [
            "" if m != m else (f"{m:.{digits}f}" if s != s else f"{m:.{digits}f} ± {s:.{digits}f}")
            for m, s in zip(mean, std, strict=True)
        ]
    return pd.DataFrame(out, index=table.index)


__all__ = [
    "PASSK_KS",
    "DPO_BETA",
    "RACE_LR",
    "RaceConfig",
    "RaceResult",
    "WARM_START",
    "WARM_START_RECIPE",
    "check_race_config",
    "format_table",
    "load_race",
    "make_warm_start",
    "passk_table",
    "readme_table",
    "race_table",
    "run_one",
    "run_race",
    "run_start",
    "save_race",
]

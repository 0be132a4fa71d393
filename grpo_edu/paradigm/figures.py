"""The race's figures (object API, ``plots.DisplayFigure``): curves with their spread over seeds.

    race_figure     sampled and greedy accuracy against completions and against training time
    passk_figure    pass@k against k (log scale) for the warm start and every method, and the
                    difference to the warm start: do the curves cross? (Yue et al. 2025)
    final_figure    final greedy, sampled, pass@k and maj@k, mean and std over seeds

Lines are the mean over seeds, bands span the seeds' lowest to highest value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..plots import DisplayFigure
from .table import LABELS

METHOD_COLORS = {"sft": "#8d96a3", "rft": "#edae49", "online_rft": "#66a182", "dpo": "#2e4057",
                 "ppo": "#00798c", "grpo": "#d1495b", "start": "#000000"}  # fmt: skip
"""One colour per method (GRPO and PPO as in the rest of the course)."""


def _label(method: str) -> str:
    return "warm start" if method == "start" else LABELS.get(method, method)


def _band(ax, x, values: pd.DataFrame, color: str, label: str) -> None:
    """Mean line and min-max band of ``values`` (rows: x positions, columns: seeds)."""
    ax.plot(x, values.mean(axis=1), color=color, lw=1.8, label=label)
    if values.shape[1] > 1:
        ax.fill_between(x, values.min(axis=1), values.max(axis=1), color=color, alpha=0.18, lw=0)


def race_figure(result) -> Figure:
    """Accuracy (sampled, greedy) against completions and against training seconds."""
    fig = DisplayFigure(figsize=(12, 7.2), layout="constrained")
    axes = fig.subplots(2, 2, sharey="row")
    evals = result.metrics.dropna(subset=["eval/sampled"])
    for method, runs in evals.groupby("method", sort=False):
        color = METHOD_COLORS.get(method, "k")
        for row, column in enumerate(("eval/sampled", "eval/greedy")):
            y = runs.pivot_table(index="step", columns="seed", values=column)
            x_budget = runs.groupby("step")["completions_seen"].mean().loc[y.index]
            x_time = runs.groupby("step")["time/elapsed"].mean().loc[y.index]
            _band(axes[row, 0], x_budget, y, color, _label(method))
            _band(axes[row, 1], x_time, y, color, _label(method))
    for row, key in enumerate(("sampled", "greedy")):
        for ax in axes[row]:
            ax.grid(alpha=0.3)
        axes[row, 0].set_ylabel(f"{key} accuracy (step 0: the warm start)")
    axes[1, 0].set_xlabel("completions trained on (offline: sampled before step 1)")
    axes[1, 1].set_xlabel("training seconds (evaluation excluded; offline sampling included)")
    axes[0, 0].legend(fontsize=8, ncol=2)
    c = result.config
    fig.suptitle(
        f"Every method from the {c.task} warm start, {c.steps} steps x "
        f"{c.n_prompts * c.group_size} completions; mean of {len(c.seeds)} seed(s), band = "
        f"min..max\nduring training: {c.eval_size} eval problems x {c.eval_samples} samples "
        f"(the final report uses more: paradigm_final.png)",
        fontsize=10,
    )
    return fig


def passk_figure(result) -> Figure:
    """pass@k against k, and pass@k minus the warm start's: where the curves cross."""
    fig = DisplayFigure(figsize=(12, 4.4), layout="constrained")
    ax, diff = fig.subplots(1, 2)
    curves = result.passk
    start = curves[curves["method"] == "start"].set_index("k")["pass@k"]
    for method, runs in curves.groupby("method", sort=False):
        y = runs.pivot_table(index="k", columns="seed", values="pass@k")
        color, label = METHOD_COLORS.get(method, "k"), _label(method)
        if method == "start":
            ax.plot(y.index, y.mean(axis=1), color="k", ls="--", lw=2, label=label)
            continue
        _band(ax, y.index, y, color, label)
        _band(diff, y.index, y.sub(start.loc[y.index], axis=0), color, label)
    diff.axhline(0, color="k", ls="--", lw=1.2)
    for a in (ax, diff):
        a.set_xscale("log", base=2)
        a.set_xlabel("k (samples per problem)")
        a.grid(alpha=0.3)
    ax.set_ylabel("pass@k")
    diff.set_ylabel("pass@k - warm start's pass@k")
    ax.legend(fontsize=8)
    c = result.config
    fig.suptitle(
        f"pass@k, unbiased estimator from {c.passk_n} samples on each of {c.passk_size} eval "
        f"problems (T = 1); above 0 on the right: the method solves more than the warm start",
        fontsize=10,
    )
    return fig


def final_figure(result) -> Figure:
    """Final greedy, sampled, pass@k, maj@k: mean over seeds with the std as error bars."""
    k = result.config.report_k
    columns = ["greedy", "sampled", f"pass@{k}", f"maj@{k}"]
    runs = result.runs
    methods = list(dict.fromkeys(runs["method"]))
    fig = DisplayFigure(figsize=(10, 3.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(methods)
    x = np.arange(len(columns))
    for i, method in enumerate(methods):
        rows = runs[runs["method"] == method][columns]
        std = rows.std(ddof=1).fillna(0) if len(rows) > 1 else 0 * rows.mean()
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, rows.mean(), width, yerr=std,
               color=METHOD_COLORS.get(method, "k"), label=_label(method), capsize=2)  # fmt: skip
    ax.set_xticks(x, columns)
    low, high = runs[columns].min().min(), runs[columns].max().max()
    ax.set_ylim(max(0.0, low - 0.1), min(1.0, high + 0.06))
    ax.set_ylabel("accuracy")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=len(methods), loc="upper left")
    n = runs.groupby("method").size().max()
    size = result.config.report_size or "all"
    ax.set_title(f"Final report on {size} eval problems ({k} samples each); mean ± std over "
                 f"{n} seeds (the warm start: one evaluation)", fontsize=10)  # fmt: skip
    return fig


def paradigm_figures(result) -> dict[str, Figure]:
    """Every figure of the race, by file stem (``plots.save_figures`` writes them)."""
    return {
        "paradigm_race": race_figure(result),
        "paradigm_passk": passk_figure(result),
        "paradigm_final": final_figure(result),
    }

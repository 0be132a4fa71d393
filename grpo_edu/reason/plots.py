"""Figures of the reasoning chapter (``reason``): accuracy and length rising together, per format;
seeds and methods side by side; pass@k up to large k; per-token probabilities before and after.

Every function returns a ``plots.DisplayFigure`` (the object API, no pyplot), like ``plots``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..plots import DisplayFigure

FORMAT_COLORS = {"scratchpad": "#d1495b", "direct": "#00798c", "all": "#2e4057"}
METHOD_COLORS = ("#d1495b", "#00798c", "#edae49", "#66a182", "#8d96a3", "#2e4057")


def _smooth(s: pd.Series, window: int = 10) -> pd.Series:
    return s.rolling(window, min_periods=1).mean()


def r1_zero_figure(metrics: pd.DataFrame, title: str | None = None) -> Figure:
    """Three panels against the step: accuracy (overall and per chosen format), mean completion
    length (all, correct, wrong completions of each step), and the scratchpad share.

    ``metrics`` is ``ReasonResult.metrics``: per-step columns (``trainer.METRICS``) and the
    ``eval/...`` columns of ``reason.format_callback`` on evaluation steps.
    """
    fig = DisplayFigure(figsize=(12, 3.8), layout="constrained")
    ax_acc, ax_len, ax_share = fig.subplots(1, 3, sharex=True)
    ev = metrics.dropna(subset=["eval/sampled"])
    ax_acc.plot(ev["step"], ev["eval/sampled"], "-o", ms=3, color=FORMAT_COLORS["all"],
                label="all samples")  # fmt: skip
    for f in ("scratchpad", "direct"):
        ax_acc.plot(ev["step"], ev[f"eval/sampled_{f}"], "--", color=FORMAT_COLORS[f],
                    label=f"samples that chose {f}")  # fmt: skip
    ax_acc.set(ylim=(0, 1), ylabel="sampled accuracy (T = 1, eval split)")
    ax_acc.set_title("accuracy", fontsize=10)
    steps = metrics.dropna(subset=["completions/mean_length"])
    ax_len.plot(steps["step"], _smooth(steps["completions/mean_length"]), color="#2e4057",
                label="all")  # fmt: skip
    for column, label, color in (("completions/mean_length_correct", "correct", "#66a182"),
                                 ("completions/mean_length_wrong", "wrong", "#8d96a3")):  # fmt: skip
        if column in steps:
            ax_len.plot(steps["step"], _smooth(steps[column]), color=color, lw=1, label=label)
    ax_len.set(ylabel="tokens per completion (EOS incl.)")
    ax_len.set_title("completion length (training batches)", fontsize=10)
    if "completions/scratchpad_share" in steps:
        ax_share.plot(steps["step"], _smooth(steps["completions/scratchpad_share"]),
                      color=FORMAT_COLORS["scratchpad"], label="training batches")  # fmt: skip
    ax_share.plot(ev["step"], ev["eval/scratchpad_share"], "o", ms=3,
                  color=FORMAT_COLORS["scratchpad"], label="eval samples")  # fmt: skip
    ax_share.set(ylim=(0, 1.02), ylabel="share of scratchpad answers")
    ax_share.set_title("the format chosen", fontsize=10)
    for ax in (ax_acc, ax_len, ax_share):
        ax.set_xlabel("GRPO step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(title or "GRPO with the outcome reward only: accuracy and length rise together")
    return fig


def seeds_figure(
    runs: pd.DataFrame,
    columns: dict[str, str],
    by: str = "method",
    x: str = "step",
    title: str = "",
) -> Figure:
    """Mean over seeds (line) and min..max (band) of each column, one colour per ``by`` value;
    columns recorded at every step are first smoothed over 10 steps within each seed.

    ``runs`` is long: one row per (``by``, ``seed``, ``x``), e.g. ``reason`` runs concatenated with
    a ``method`` and a ``seed`` column. ``columns`` maps a column to its panel title.
    """
    fig = DisplayFigure(figsize=(4 * len(columns), 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(columns), sharex=True))
    for ax, (column, label) in zip(axes, columns.items(), strict=True):
        for (name, df), color in zip(runs.groupby(by, sort=False), METHOD_COLORS, strict=False):
            df = df.dropna(subset=[column])
            if df[x].diff().max() == 1:  # a per-step column: smooth each seed over 10 steps
                df = df.assign(**{column: df.groupby("seed")[column].transform(_smooth)})
            d = df.groupby(x)[column]
            mean, lo, hi = d.mean(), d.min(), d.max()
            n = df["seed"].nunique() if "seed" in df else 1
            ax.plot(mean.index, mean.values, color=color, label=f"{name} ({n} seeds)")
            ax.fill_between(mean.index, lo.values, hi.values, color=color, alpha=0.2, lw=0)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel(x.replace("_", " "))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "mean over seeds, band = min..max")
    return fig


def pass_at_k_figure(curves: dict[str, dict[int, float]], title: str = "") -> Figure:
    """pass@k against k (log scale), one line per policy: sharpening lowers nothing at k = 1 and
    meets the warm start at large k; new ability lifts the large-k end too."""
    fig = DisplayFigure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    colors = iter(METHOD_COLORS)
    for name, curve in curves.items():
        color = "#888888" if name.startswith("warm start") else next(colors, "#2e4057")
        ks = sorted(int(k) for k in curve)
        ax.plot(ks, [curve[k] if k in curve else curve[str(k)] for k in ks], "-o", ms=3,
                color=color, label=name)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set(xlabel="k (samples per problem)", ylabel="pass@k (unbiased, eval split)", ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "pass@k: can the policy solve it at all?", fontsize=10)
    return fig


def token_heatmap(rows: dict[str, list[tuple[str, float]]], title: str = "") -> Figure:
    """One row per (label -> [(token, probability)]): each cell a token, coloured by the
    probability the policy gives it. Rows may have different lengths."""
    width = max(len(r) for r in rows.values())
    grid = np.full((len(rows), width), math.nan)
    for i, r in enumerate(rows.values()):
        grid[i, : len(r)] = [p for _, p in r]
    fig = DisplayFigure(figsize=(0.42 * width + 2.5, 0.55 * len(rows) + 1.2), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for i, r in enumerate(rows.values()):
        for j, (token, p) in enumerate(r):
            shown = {"<eos>": "⏎", " ": "_"}.get(token, token)
            ax.text(j, i, shown, ha="center", va="center", fontsize=9,
                    color="black" if p > 0.6 else "white")  # fmt: skip
    ax.set_yticks(range(len(rows)), list(rows), fontsize=8)
    ax.set_xticks([])
    fig.colorbar(image, ax=ax, label="P(token) at T = 1", shrink=0.8)
    ax.set_title(title or "how sure the policy is of each token", fontsize=10)
    return fig

"""Matplotlib figures of the course, drawn with the object API (``Figure``, never ``pyplot``).

Every function returns a ``matplotlib.figure.Figure``; notebooks display it, the CLI saves it.
Colours are fixed per algorithm so that every figure of the course reads the same way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

COLORS = {"grpo": "#d1495b", "ppo": "#00798c", "start": "#888888"}
LABELS = {"grpo": "GRPO", "ppo": "PPO"}
STATE_PARTS = ("policy", "reference", "critic", "gradients", "optimizer")
STATE_COLORS = ("#edae49", "#66a182", "#00798c", "#8d96a3", "#2e4057")


def _curves(ax, metrics: pd.DataFrame, x: str, y: str, style: str = "-", label_suffix: str = ""):
    for algo, df in metrics.groupby("algorithm", sort=False):
        d = df.dropna(subset=[y])
        ax.plot(d[x], d[y], style, color=COLORS[algo], label=LABELS[algo] + label_suffix, lw=1.8)


def _smooth(metrics: pd.DataFrame, column: str, window: int = 10) -> pd.DataFrame:
    out = metrics.copy()
    out[column] = out.groupby("algorithm")[column].transform(
        lambda s: s.rolling(window, min_periods=1).mean()
    )
    return out


def accuracy_figure(metrics: pd.DataFrame, target: float | None = 0.9) -> Figure:
    """Eval accuracy (sampled solid, greedy dashed) against completions seen and wall time."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, x, xlabel in zip(
        axes,
        ("completions_seen", "time/elapsed"),
        ("completions seen (same budget for both)", "training wall time (s, 2 CPU cores)"),
        strict=True,
    ):
        _curves(ax, metrics, x, "eval/sampled", "-o", " sampled (T=1)")
        _curves(ax, metrics, x, "eval/greedy", "--", " greedy")
        if target is not None:
            ax.axhline(target, color="k", lw=0.8, ls=":")
            ax.annotate(f"target {target:.0%}", (0, target), xycoords=("axes fraction", "data"),
                        xytext=(4, 3), textcoords="offset points", fontsize=8)  # fmt: skip
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy on the eval split")
    lowest = metrics[["eval/sampled", "eval/greedy"]].min().min()
    axes[0].set_ylim(max(0.0, lowest - 0.1), 1.0)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("PPO vs GRPO from the same warm start: accuracy")
    return fig


def training_figure(metrics: pd.DataFrame) -> Figure:
    """Reward, KL to the reference, clipped fraction and entropy per step (smoothed over 10)."""
    fig = Figure(figsize=(11, 6.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    panels = (
        ("reward", "mean reward of the batch"),
        ("kl", "KL(pi || pi_ref), k3, per token"),
        ("clip_ratio/region_mean", "fraction of tokens clipped (always 0 when mu = 1: on-policy)"),
        ("entropy", "entropy per token (nats)"),
    )
    for ax, (column, title) in zip(axes, panels, strict=True):
        _curves(ax, _smooth(metrics.dropna(subset=[column]), column), "completions_seen", column)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("completions seen")
    axes[0].legend(fontsize=8)
    fig.suptitle("Training signals (same metric names for both algorithms)")
    return fig


def memory_figure(memory: dict[str, dict[str, dict[str, int]]]) -> Figure:
    """Stacked bars of the training state of each algorithm: measured next to analytic."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    names, bottoms = [], {}
    for i, (algo, account) in enumerate(memory.items()):
        for j, kind in enumerate(("measured", "analytic")):
            x = 3 * i + j
            names.append((x, f"{LABELS.get(algo, algo)}\n{kind}"))
            bottom = 0.0
            for part, color in zip(STATE_PARTS, STATE_COLORS, strict=True):
                mb = account[kind][part] / 2**20
                ax.bar(x, mb, bottom=bottom, color=color, label=part if x == 0 else None,
                       hatch="//" if kind == "analytic" else None, edgecolor="white")  # fmt: skip
                bottom += mb
            bottoms[x] = bottom
            ax.text(x, bottom, f"{bottom:.1f} MB", ha="center", va="bottom", fontsize=8)
    ax.set_xticks([x for x, _ in names], [n for _, n in names], fontsize=8)
    ax.set_ylabel("training state (MB, float32, Adam)")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, max(bottoms.values()) * 1.15)
    ax.set_title("Memory: GRPO drops the critic (and its gradients and Adam moments)", fontsize=10)
    return fig


def compare_figures(result) -> dict[str, Figure]:
    """All figures of a ``CompareResult``, by file stem."""
    memory = {algo: run.memory for algo, run in result.runs.items()}
    return {
        "compare_accuracy": accuracy_figure(result.metrics),
        "compare_training": training_figure(result.metrics),
        "compare_memory": memory_figure(memory),
    }


def save_figures(figures: dict[str, Figure], out_dir: str | Path, dpi: int = 110) -> list[Path]:
    """Write each figure as ``<out_dir>/<stem>.png``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, fig in figures.items():
        path = out_dir / f"{stem}.png"
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths

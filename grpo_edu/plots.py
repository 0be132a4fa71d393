"""Matplotlib figures of the course, drawn with the object API (``Figure``, never ``pyplot``).

Every function returns a ``matplotlib.figure.Figure`` (a ``DisplayFigure``, which Jupyter shows as
a PNG with or without ``%matplotlib inline``); notebooks display it, the CLI saves it.
Colours are fixed per algorithm so that every figure of the course reads the same way.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLORS = {"grpo": "#d1495b", "ppo": "#00798c", "start": "#888888"}
LABELS = {"grpo": "GRPO", "ppo": "PPO"}
STATE_PARTS = ("policy", "reference", "critic", "gradients", "optimizer")
STATE_COLORS = ("#edae49", "#66a182", "#00798c", "#8d96a3", "#2e4057")


def render_png(fig: Figure) -> bytes:
    """PNG bytes of ``fig``, drawn by Agg (no pyplot, no display backend needed).

    Text is most of the drawing time: glyphs are drawn without hinting (~15% faster, the look
    barely changes) and zlib runs at level 1 (~4x faster than level 6, a file ~10% larger).
    """
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    buf = BytesIO()
    with matplotlib.rc_context({"text.hinting": "no_hinting"}):
        fig.savefig(buf, format="png", pil_kwargs={"compress_level": 1})
    return buf.getvalue()


class DisplayFigure(Figure):
    """A ``Figure`` that shows itself in Jupyter as a PNG, with or without ``%matplotlib inline``.

    Figures built with the object API (no pyplot) have no display backend: as the last line of a
    cell they would print as ``<Figure size 1100x400 with 2 Axes>``. ``_repr_png_`` is what IPython
    asks any object for; where the inline backend is active its own printer takes precedence, so
    a figure is never shown twice.
    """

    def _repr_png_(self) -> bytes:
        return render_png(self)


def _curves(ax, metrics: pd.DataFrame, x: str, y: str, style: str = "-", label_suffix: str = ""):
    """One line per algorithm; with a ``seed`` column, the mean over seeds and a min-max band."""
    for algo, df in metrics.groupby("algorithm", sort=False):
        d = df.dropna(subset=[y])
        label, color = LABELS[algo] + label_suffix, COLORS[algo]
        if "seed" in d and d["seed"].nunique() > 1:
            by_step = d.groupby("step")
            mean_x, mean_y = by_step[x].mean(), by_step[y].mean()
            ax.fill_between(mean_x, by_step[y].min(), by_step[y].max(), color=color, alpha=0.15,
                            lw=0)  # fmt: skip
            ax.plot(mean_x, mean_y, style, color=color, label=label, lw=1.8, ms=4)
        else:
            ax.plot(d[x], d[y], style, color=color, label=label, lw=1.8, ms=4)


def _smooth(metrics: pd.DataFrame, column: str, window: int = 10) -> pd.DataFrame:
    out = metrics.copy()
    keys = ["algorithm", "seed"] if "seed" in out else ["algorithm"]
    out[column] = out.groupby(keys)[column].transform(
        lambda s: s.rolling(window, min_periods=1).mean()
    )
    return out


def _seeds_note(metrics: pd.DataFrame) -> str:
    n = metrics["seed"].nunique() if "seed" in metrics else 1
    return f"; mean of {n} seeds, band: min to max" if n > 1 else ""


def _threads_note(threads: int | None) -> str:
    if threads is None:
        return "training wall time (s)"
    return f"training wall time (s, {threads} torch thread{'s' if threads != 1 else ''})"


def accuracy_figure(
    metrics: pd.DataFrame, target: float | None = 0.9, threads: int | None = None
) -> Figure:
    """Eval accuracy (sampled solid, greedy dashed) against completions seen and wall time.

    ``threads``: torch CPU threads of the run, for the time axis's label (``machine_info()``'s
    ``torch_threads``; None leaves it out). Several seeds (a ``seed`` column) draw their mean
    and a min-max band. The legend sits below the axes, where no curve runs.
    """
    fig = DisplayFigure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, x, xlabel in zip(
        axes,
        ("completions_seen", "time/elapsed"),
        ("completions seen (same budget for both)", _threads_note(threads)),
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
    axes[0].set_ylim(max(0.0, lowest - 0.05), 1.0)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("PPO vs GRPO from the same warm start: accuracy" + _seeds_note(metrics))
    return fig


TRAINING_PANELS = (
    ("reward", "mean reward of the batch"),
    ("kl", "KL(pi || pi_ref) per token (k3)"),
    ("entropy", "entropy per token (nats)"),
    ("frac_reward_zero_std", "share of groups whose G rewards are all equal"),
)
"""The training figure's panels. No clip-fraction panel: with mu = 1 every update is on-policy
(ratio 1), so it is 0 throughout; notebooks that clip (mu > 1, minibatches) plot it themselves."""


def training_figure(metrics: pd.DataFrame) -> Figure:
    """Reward, KL to the reference, entropy and zero-signal groups per step (smoothed over 10)."""
    fig = DisplayFigure(figsize=(11, 6.5), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True).ravel()
    for ax, (column, title) in zip(axes, TRAINING_PANELS, strict=True):
        _curves(ax, _smooth(metrics.dropna(subset=[column]), column), "completions_seen", column)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[2:]:
        ax.set_xlabel("completions seen")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle("Training signals, same metric names for both (mean of 10 steps"
                 + _seeds_note(metrics) + ")")  # fmt: skip
    return fig


def memory_figure(memory: dict[str, dict[str, dict[str, int]]]) -> Figure:
    """Stacked bars of the training state of each algorithm: measured next to analytic."""
    fig = DisplayFigure(figsize=(7, 4), layout="constrained")
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
    """All figures of a ``CompareResult`` or ``SeedsResult``, by file stem (memory: first seed)."""
    first = next(iter(result.results.values())) if hasattr(result, "results") else result
    memory = {algo: run.memory for algo, run in first.runs.items()}
    threads = (result.machine or {}).get("torch_threads")
    return {
        "compare_accuracy": accuracy_figure(result.metrics, result.config.target, threads),
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

"""One group's rewards -> its advantages under each normalisation of the course."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from matplotlib.patches import Patch
from torch import Tensor

from ..advantages import group_advantages, rloo_advantages
from ..plots import COLORS
from ._live import FONT, LivePlot, bars, style

ADVANTAGE_METHODS = {
    "group": "GRPO: (r - group mean) / group std",
    "batch": "(r - group mean) / batch std",
    "none": "r - group mean (Dr. GRPO)",
    "rloo": "r - mean of the others (RLOO)",
}
"""The normalisations compared, by key, with the legend label of each."""
METHOD_COLORS = {"group": COLORS["grpo"], "batch": "#edae49", "none": "#2e4057", "rloo": "#66a182"}


def advantage_table(
    rewards: Sequence[float], rest_of_batch: Sequence[float] = ()
) -> dict[str, Tensor]:
    """Advantages of one group's completions under each normalisation of ``ADVANTAGE_METHODS``.

    The batch is ``rewards`` (one group, G = len(rewards)) followed by ``rest_of_batch`` (other
    groups of the same size; only the ``batch`` std sees them). Each column is the library's own
    function: ``group_advantages(scale=...)`` with its defaults (ddof=1, eps=1e-4) and
    ``rloo_advantages``.

    Shapes: result {method: (G,) float64 advantages of the first group}.
    """
    G = len(rewards)
    batch = torch.tensor([*rewards, *rest_of_batch], dtype=torch.float64)  # (B,) prompt-major
    table = {
        scale: group_advantages(batch, G, scale=scale)[:G] for scale in ("group", "batch", "none")
    }
    table["rloo"] = rloo_advantages(batch, G)[:G]  # (G,)
    return table


class GroupAdvantageFigure(LivePlot):
    """Bars of A_i per completion of one group, one bar per normalisation."""

    figsize = (9.0, 3.3)

    def setup(self) -> None:
        self.fig.subplots_adjust(left=0.07, right=0.99, bottom=0.2, top=0.8)
        self.ax = ax = self.fig.add_subplot()
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel("advantage A_i", fontsize=FONT + 1)
        ax.set_xlabel("completion i of the group, with its reward r_i", fontsize=FONT + 1)
        style(ax, grid="y")
        handles = [Patch(color=METHOD_COLORS[m]) for m in ADVANTAGE_METHODS]
        ax.legend(
            handles,
            ADVANTAGE_METHODS.values(),
            loc="lower left",
            bbox_to_anchor=(0, 1.0),
            ncol=4,
            fontsize=FONT,
            frameon=False,
            handlelength=1.2,
            columnspacing=1.2,
        )
        self.fig.text(
            0.01,
            0.97,
            "One group's advantages under each normalisation",
            fontsize=FONT + 2,
            weight="bold",
            va="top",
        )

    def plot(self, rewards: Sequence[float], rest_of_batch: Sequence[float] = ()) -> None:
        ax, G = self.ax, len(rewards)
        table = advantage_table(rewards, rest_of_batch)
        width = 0.8 / len(table)
        x = torch.arange(G, dtype=torch.float64)  # (G,)
        for k, (method, adv) in enumerate(table.items()):
            offset = (k - (len(table) - 1) / 2) * width
            self.keep(bars(ax, x + offset, adv, width, METHOD_COLORS[method]))
        ax.set_xticks(range(G), [f"{i + 1}\nr={r:.2g}" for i, r in enumerate(rewards)])
        ax.set_xlim(-0.6, G - 0.4)
        top = max(1.0, max(a.abs().max().item() for a in table.values()) * 1.12)
        ax.set_ylim(-top, top)
        batch = torch.tensor([*rewards, *rest_of_batch], dtype=torch.float64)  # (B,)
        stats = (
            f"group: mean {batch[:G].mean():.2f}, std {batch[:G].std():.2f}    "
            f"batch of {len(batch)} rewards: std {batch.std():.2f}"
        )
        self.keep(self.fig.text(0.99, 0.97, stats, fontsize=FONT + 1, ha="right", va="top"))
        if len(set(rewards)) == 1:
            note = "All rewards are equal: every advantage is 0, so this group adds no gradient."
            self.keep(
                ax.text(
                    0.5,
                    0.75,
                    note,
                    transform=ax.transAxes,
                    ha="center",
                    fontsize=FONT + 1,
                    color=COLORS["grpo"],
                )
            )

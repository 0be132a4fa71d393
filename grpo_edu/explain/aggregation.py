"""How each loss aggregation weighs the tokens of short and long answers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.lines import Line2D
from torch import Tensor

from ..losses import AGGREGATIONS, aggregate, clipped_surrogate
from ..plots import COLORS
from ._live import FONT, LivePlot, bars, style, title

MODE_COLORS = {"grpo": COLORS["grpo"], "bnpo": "#2e4057", "dr_grpo": "#66a182", "dapo": "#edae49"}
MODE_LABELS = {
    "grpo": "grpo: mean over each answer, then over answers",
    "bnpo": "bnpo: mean over all tokens",
    "dr_grpo": "dr_grpo: sum / (B * max length)",
    "dapo": "dapo: token mean (= bnpo here)",
}
_LINE_STYLES = {
    "grpo": {"lw": 2.0, "zorder": 3},
    "bnpo": {"lw": 3.6, "zorder": 2},
    "dr_grpo": {"lw": 2.0, "zorder": 2},
    "dapo": {"lw": 1.4, "ls": "--", "zorder": 4},
}
"""Lines that can coincide stay visible: dapo (= bnpo here) dashed on top of a thick bnpo line,
and grpo (= bnpo when the lengths are equal) on top of it too."""
MAX_COMPLETION_LENGTH = 32
"""``max_completion_length`` for ``dr_grpo`` (and the widget's longest answer)."""


def _mask(lengths: Sequence[int]) -> Tensor:
    """(B, T) right-padded float mask of answers of these lengths, T = max(lengths)."""
    lengths_ = torch.tensor(lengths)  # (B,)
    return (torch.arange(int(lengths_.max())) < lengths_[:, None]).double()  # (B, T)


def token_weights(
    lengths: Sequence[int], mode: str = "grpo", max_completion_length: int | None = None
) -> Tensor:
    """Weight of each token's loss in the aggregated loss: w_it = d aggregate(L) / d L_it.

    Computed by autograd through ``losses.aggregate``. For lengths (2, 4): grpo gives each token
    of the short answer 1/(2*2) and of the long one 1/(2*4) (every answer weighs 1/B in total),
    bnpo and dapo 1/6 to every token, dr_grpo 1/(B * max_completion_length) to every token.
    ``max_completion_length`` defaults to max(lengths) (used by dr_grpo only).

    Shapes: result (B, T), T = max(lengths), 0 on padding.
    """
    mask = _mask(lengths)  # (B, T)
    per_token_loss = torch.zeros_like(mask, requires_grad=True)  # L_it  (B, T)
    max_len = mask.shape[1] if max_completion_length is None else max_completion_length
    loss = aggregate(per_token_loss, mask, mode, max_len)
    (weights,) = torch.autograd.grad(loss, per_token_loss)  # (B, T)
    return weights


def answer_push(
    lengths: Sequence[int],
    advantages: Sequence[float],
    mode: str = "grpo",
    max_completion_length: int | None = None,
) -> Tensor:
    """How hard one on-policy update pushes each whole answer's log-prob up (+) or down (-).

    Equation: sum_t d objective / d logp_it = A_i * sum_t w_it, by autograd through
    ``clipped_surrogate`` (r = 1: nothing is clipped) and ``aggregate``.

    Shapes: ``lengths``, ``advantages`` (B,); result (B,).
    """
    mask = _mask(lengths)  # (B, T)
    logp = torch.zeros_like(mask, requires_grad=True)  # log pi = log pi_old: r = 1  (B, T)
    adv = torch.tensor(advantages, dtype=torch.float64)  # A_i  (B,)
    per_token_loss, _ = clipped_surrogate(logp, logp.detach(), adv, mask)  # (B, T)
    max_len = mask.shape[1] if max_completion_length is None else max_completion_length
    objective = -aggregate(per_token_loss, mask, mode, max_len)
    (grad,) = torch.autograd.grad(objective, logp)  # d objective / d logp_it  (B, T)
    return (grad * mask).sum(dim=1)  # (B,)


class AggregationFigure(LivePlot):
    """Per-token weights of two answers under each mode (left); each answer's push (right)."""

    figsize = (10.0, 3.8)

    def setup(self) -> None:
        self.fig.subplots_adjust(left=0.06, right=0.99, bottom=0.14, top=0.78, wspace=0.22)
        self.ax, self.ax_push = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": (1.6, 1)})
        for ax in (self.ax, self.ax_push):
            style(ax, grid="y")
        self.ax.set_xlabel("tokens of each answer (L = its length)", fontsize=FONT + 1)
        self.ax.set_ylabel("weight of the token: d loss / d L_t", fontsize=FONT + 1)
        self.ax_push.axhline(0, color="k", lw=0.8)
        self.ax_push.set_ylabel("push on the answer: A_i * sum_t w_it", fontsize=FONT + 1)
        title(self.ax_push, "total push on each answer's log-prob")
        self.fig.text(
            0.01,
            0.98,
            "How each loss aggregation weighs the tokens of a short and a long answer",
            fontsize=FONT + 2,
            weight="bold",
            va="top",
        )
        handles = [Line2D([], [], color=MODE_COLORS[m], **_LINE_STYLES[m]) for m in AGGREGATIONS]
        self.ax.legend(
            handles,
            [MODE_LABELS[m] for m in AGGREGATIONS],
            fontsize=FONT,
            loc="lower left",
            bbox_to_anchor=(0, 1.07),
            ncol=2,
            frameon=False,
        )

    def plot(
        self,
        lengths: Sequence[int] = (4, 16),
        advantages: Sequence[float] = (1.0, -1.0),
        max_completion_length: int = MAX_COMPLETION_LENGTH,
    ) -> None:
        starts = np.cumsum([0, *[n + 1 for n in lengths]])  # answer i at starts[i] .. (gap of 1)
        top = 0.0
        for mode in AGGREGATIONS:
            w = token_weights(lengths, mode, max_completion_length)  # (B, T)
            for i, n in enumerate(lengths):
                edges = starts[i] + np.arange(n + 1) - 0.5
                self.keep(
                    self.ax.stairs(
                        w[i, :n].numpy(),
                        edges,
                        baseline=None,
                        color=MODE_COLORS[mode],
                        **_LINE_STYLES[mode],
                    )
                )
            top = max(top, w.max().item())
        self.ax.set_ylim(0, top * 1.15)
        self.ax.set_xlim(-1, starts[-1] - 1)
        for i, n in enumerate(lengths):
            shade = ("0.9", "0.95")[i % 2]
            self.keep(self.ax.axvspan(starts[i] - 0.5, starts[i] + n - 0.5, color=shade, zorder=0))
        self.ax.set_xticks(
            starts[:-1] + np.array(lengths) / 2 - 0.5,
            [f"answer {i + 1}" for i in range(len(lengths))],
        )
        title(
            self.ax,
            "   ".join(
                f"answer {i + 1}: L = {n}, A = {a:+.1f}"
                for i, (n, a) in enumerate(zip(lengths, advantages, strict=True))
            ),
        )

        width = 0.8 / len(AGGREGATIONS)
        x = np.arange(len(lengths))
        peak = 0.0
        for k, mode in enumerate(AGGREGATIONS):
            push = answer_push(lengths, advantages, mode, max_completion_length).numpy()  # (B,)
            offset = (k - (len(AGGREGATIONS) - 1) / 2) * width
            self.keep(bars(self.ax_push, x + offset, push, width, MODE_COLORS[mode]))
            peak = max(peak, np.abs(push).max())
        self.ax_push.set_xlim(-0.5, len(lengths) - 0.5)
        self.ax_push.set_xticks(
            x,
            [
                f"answer {i + 1}\nL = {n}, A = {a:+.1f}"
                for i, (n, a) in enumerate(zip(lengths, advantages, strict=True))
            ],
        )
        peak = max(peak, 1e-3) * 1.15
        self.ax_push.set_ylim(-peak, peak)

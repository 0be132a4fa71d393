"""One group's rewards -> every method's gradient coefficient GC (DeepSeekMath sec. 5.2.1).

A hand-made group, no model: G answers of ``length`` tokens each, their rewards, and two knobs
that stand for training having happened: ``drift``, the per-token log-ratio log pi / pi_ref that
the policy has moved towards the correct answers (+drift on answers with r >= 0.5, -drift on the
others), and ``value``, the critic's V(s_t) on every token (0 for a fresh critic). The numbers
are ``paradigm.gradient_coefficients``: each method's own loss, differentiated.

Not a separate module of ``explain``'s package import (``grpo_edu.explain`` stays torch-only):
it reads the library's losses through ``grpo_edu.paradigm``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from torch import Tensor

from ..paradigm.figures import METHOD_COLORS
from ..paradigm.table import LABELS, METHODS, gradient_coefficients
from ..trainer import TrainConfig
from ._live import FONT, LivePlot, bars, style, title

REFERENCE_LOGP = math.log(0.6)
"""log pi_ref of every token of the hand-made group (only ratios and differences matter)."""


def group_coefficients(
    rewards: Sequence[float],
    length: int = 3,
    drift: float = 0.0,
    value: float = 0.0,
    kl_coef: float = 0.04,
    dpo_beta: float = 0.1,
) -> dict[str, Tensor]:
    """{method: (G, length)} GC of a hand-made group (see the module docstring); SFT: NaN
    (samples are not its data; its GC on the reference answer is 1)."""
    G = len(rewards)
    if G < 2:
        raise ValueError(f"a group needs at least 2 rewards, got {G}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be an int >= 1, got {length!r}")
    r = torch.tensor(rewards, dtype=torch.float64)  # (G,)
    mask = torch.ones(G, length, dtype=torch.float64)  # (G, T)
    ref_logp = torch.full((G, length), REFERENCE_LOGP, dtype=torch.float64)
    sign = torch.where(r >= 0.5, 1.0, -1.0).to(torch.float64)[:, None]  # (G, 1)
    logp = ref_logp + drift * sign  # log pi = log pi_ref + drift on correct, - drift on wrong
    values = torch.full((G, length), float(value), dtype=torch.float64)
    base = TrainConfig()
    config = replace(base, grpo=replace(base.grpo, kl_coef=kl_coef),
                     dpo=replace(base.dpo, beta=dpo_beta))  # fmt: skip
    return gradient_coefficients(r, logp, ref_logp, mask, values, config)


def answer_weights(coefficients: dict[str, Tensor]) -> dict[str, Tensor]:
    """{method: (G,)} each answer's weight in the formula, 1/|o| sum_t GC_t."""
    return {m: gc.mean(-1) for m, gc in coefficients.items()}


class CoefficientFigure(LivePlot):
    """Bars of each answer's coefficient, one per method, and SFT's on the reference answer."""

    figsize = (10.0, 3.9)

    def setup(self) -> None:
        self.fig.subplots_adjust(left=0.07, right=0.99, bottom=0.25, top=0.76)
        self.ax = ax = self.fig.add_subplot()
        ax.axhline(0, color="k", lw=0.8)
        ax.set_ylabel("GC: 1/|o| sum_t GC(q, o, t)", fontsize=FONT + 1)
        style(ax, grid="y")
        handles = [Patch(color=METHOD_COLORS[m]) for m in METHODS]
        ax.legend(handles, [LABELS[m] for m in METHODS], loc="lower left",
                  bbox_to_anchor=(0, 1.07), ncol=6, fontsize=FONT, frameon=False)  # fmt: skip
        self.fig.text(0.01, 0.98, "One formula, six gradient coefficients: "
                      "grad J = E[1/|o| sum_t GC(q, o, t) grad log pi(o_t)]", fontsize=FONT + 2,
                      weight="bold", va="top")  # fmt: skip
        note = (
            "RFT and online RFT: 0 or 1, never below 0 (on one group they are equal: they "
            "differ in where the answers come from).  DPO: unpaired answers get 0.\n"
            "Dots: PPO per token (GAE).  SFT trains only on the reference answer."
        )
        self.fig.text(0.01, 0.015, note, fontsize=FONT, va="bottom")

    def plot(
        self,
        rewards: Sequence[float] = (1, 0, 0, 1, 0, 0, 0, 1),
        length: int = 3,
        drift: float = 0.0,
        value: float = 0.0,
        kl_coef: float = 0.04,
        dpo_beta: float = 0.1,
    ) -> None:
        ax, G = self.ax, len(rewards)
        gc = group_coefficients(rewards, length, drift, value, kl_coef, dpo_beta)
        weights = answer_weights(gc)
        width = 0.8 / len(METHODS)
        x = np.arange(G + 1, dtype=float)  # G answers, then the reference answer
        top = 1.0
        for k, m in enumerate(METHODS):
            w = weights[m].numpy()
            h = np.append(np.nan_to_num(w), 1.0 if m == "sft" else 0.0)  # SFT: 1 on the reference
            offset = (k - (len(METHODS) - 1) / 2) * width
            self.keep(bars(ax, x + offset, h, width, METHOD_COLORS[m]))
            if m == "ppo" and length > 1:  # PPO's GC changes along the answer (GAE)
                per_token = gc[m].numpy()  # (G, T)
                xs = np.repeat(x[:G] + offset, length)
                self.keep(ax.scatter(xs, per_token.ravel(), s=6, color="k", zorder=3))
            top = max(top, float(np.abs(h).max()))
        ax.set_xticks(
            x, [f"{i + 1}\nr={r:.2g}" for i, r in enumerate(rewards)] + ["reference\nanswer"]
        )
        ax.set_xlim(-0.6, G + 0.6)
        ax.set_ylim(-top * 1.15, top * 1.15)
        n_pairs = int(sum(w != 0 for w in weights["dpo"].tolist()) // 2)
        moved = (
            "pi = pi_ref"
            if drift == 0
            else (
                f"log pi/pi_ref = +{abs(drift):.2f} on correct, -{abs(drift):.2f} on wrong answers"
            )
        )
        title(ax, f"G = {G} answers of {length} tokens; {moved}; critic V = "
                            f"{value:.2f}; DPO pairs: {n_pairs}")  # fmt: skip


def figure_coefficients(rewards: Sequence[float] = (1, 0, 0, 1, 0, 0, 0, 1), **kwargs) -> Figure:
    """The coefficient figure at these settings."""
    return CoefficientFigure().draw(rewards=rewards, **kwargs)


__all__ = [
    "CoefficientFigure",
    "answer_weights",
    "figure_coefficients",
    "group_coefficients",
]

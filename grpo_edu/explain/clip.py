"""The clipped surrogate objective and its gradient as functions of the ratio rho (ρ).

The ratio is rho (ρ = pi / pi_old) everywhere in the course; r is always a reward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from matplotlib.patches import Patch
from torch import Tensor

from ..losses import clipped_surrogate
from ..plots import COLORS
from ._live import FONT, LivePlot, style, title

ZERO_GRAD_COLOR = "#d9d9d9"


@dataclass(frozen=True)
class ClipCurves:
    """The clipped objective of one token on a grid of ratios (all tensors (N,), float64)."""

    ratio: Tensor
    """rho = pi / pi_old, the grid (0, r_max]."""
    objective: Tensor
    """min(rho A, clip(rho, 1 - eps, 1 + eps_high) A): minus ``clipped_surrogate``'s loss."""
    unclipped: Tensor
    """rho A, the plain policy-gradient surrogate."""
    grad: Tensor
    """d objective / d rho, by autograd through ``clipped_surrogate``."""
    clipped: Tensor
    """bool, ``SurrogateInfo.is_region_clipped``: where the library says the gradient is 0."""


def clip_curves(
    advantage: float = 1.0,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    n_points: int = 400,
    r_max: float = 2.0,
) -> ClipCurves:
    """Evaluate ``clipped_surrogate`` for one token at ``n_points`` ratios in (0, r_max].

    Each grid point is one row of a batch with T = 1: ``logp = log rho``, ``old_logp = 0``, the
    same advantage A on every row. The gradient is taken w.r.t. rho itself (not log rho), so it
    reads as the slope of the objective curve: A where rho is inside the clip range (or on the
    side where clipping does not apply) and exactly 0 where the clipped term wins.
    """
    ratio = torch.linspace(0.0, r_max, n_points + 1, dtype=torch.float64)[1:]  # (N,) rho > 0
    ratio.requires_grad_()
    logp = ratio.log().unsqueeze(1)  # log rho  (N, 1)
    old_logp = torch.zeros_like(logp)  # (N, 1)
    advantages = torch.full((n_points,), float(advantage), dtype=torch.float64)  # A  (N,)
    loss, info = clipped_surrogate(
        logp, old_logp, advantages, torch.ones_like(logp), clip_eps, clip_eps_high
    )  # (N, 1)
    objective = -loss[:, 0]  # (N,)
    (grad,) = torch.autograd.grad(objective.sum(), ratio)  # d objective / d rho  (N,)
    return ClipCurves(
        ratio=ratio.detach(),
        objective=objective.detach(),
        unclipped=ratio.detach() * advantage,  # rho A
        grad=grad,
        clipped=info.is_region_clipped[:, 0],
    )


def _case_note(advantage: float, lo: float, hi: float) -> str:
    """The clip case by case (Spinning Up's reading of PPO-Clip), for the current A."""
    if advantage > 0:
        return (
            f"A > 0: raising ρ pays only up to\n1 + eps_high = {hi:.2f}; beyond it the\n"
            "clipped term wins and the gradient\nis 0 (shaded). Below 1 - eps nothing\n"
            "is clipped: the token can still be\npushed back up."
        )
    if advantage < 0:
        return (
            f"A < 0: lowering ρ pays only down to\n1 - eps = {lo:.2f}; below it the\n"
            "gradient is 0 (shaded). Above\n1 + eps_high nothing is clipped: a\n"
            "ratio that grew is always pushed\nback down."
        )
    return "A = 0: the objective is flat\nand the gradient is 0 everywhere."


class ClipFigure(LivePlot):
    """Objective (top) and its gradient (bottom) against rho, zero-gradient regions shaded."""

    figsize = (9.0, 4.2)

    def setup(self) -> None:
        self.fig.subplots_adjust(left=0.08, right=0.68, bottom=0.11, top=0.91, hspace=0.12)
        self.ax, self.ax_grad = self.fig.subplots(2, 1, sharex=True)
        for ax in (self.ax, self.ax_grad):
            ax.axhline(0, color="k", lw=0.6)
            ax.axvline(1, color="k", lw=0.6, ls=":")
            style(ax)
        self.ax.tick_params(labelbottom=False)
        self.ax.set_ylabel("objective", fontsize=FONT + 1)
        self.ax_grad.set_ylabel("d objective / d ρ", fontsize=FONT + 1)
        self.ax_grad.set_xlabel("ratio ρ = π / π_old", fontsize=FONT + 1)
        self.ax_grad.set_xlim(0, 2)
        self.ax_grad.set_xticks([0, 0.5, 1, 1.5, 2])
        (self.unclipped,) = self.ax.plot([], [], color="0.5", ls="--", lw=1.2)
        (self.objective,) = self.ax.plot([], [], color=COLORS["grpo"], lw=2.2)
        (self.grad,) = self.ax_grad.plot([], [], color=COLORS["grpo"], lw=2.2)
        handles = [Patch(color=ZERO_GRAD_COLOR), self.unclipped, self.objective]
        labels = ["gradient = 0", "ρ A (no clip)", "min(ρ A, clip(ρ, 1-eps, 1+eps_high) A)"]
        self.ax.legend(
            handles,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=FONT,
            frameon=False,
        )

    def plot(
        self, advantage: float = 1.0, clip_eps: float = 0.2, clip_eps_high: float | None = None
    ) -> None:
        hi = clip_eps if clip_eps_high is None else clip_eps_high
        c = clip_curves(advantage, clip_eps, hi)
        r = c.ratio.numpy()
        self.unclipped.set_data(r, c.unclipped.numpy())
        self.objective.set_data(r, c.objective.numpy())
        self.grad.set_data(r, c.grad.numpy())
        zero = (c.grad == 0).numpy()
        for ax in (self.ax, self.ax_grad):
            self.keep(
                ax.fill_between(
                    r,
                    0,
                    1,
                    where=zero,
                    transform=ax.get_xaxis_transform(),
                    color=ZERO_GRAD_COLOR,
                    lw=0,
                    step="mid",
                )
            )
            for x in (1 - clip_eps, 1 + hi):
                self.keep(ax.axvline(x, color="0.4", lw=0.8, ls="--"))
        for x, text, ha in ((1 - clip_eps, "1 - eps ", "right"), (1 + hi, " 1 + eps_high", "left")):
            self.keep(
                self.ax.text(
                    x,
                    0.97,
                    text,
                    transform=self.ax.get_xaxis_transform(),
                    ha=ha,
                    va="top",
                    fontsize=FONT,
                    color="0.3",
                )
            )
        lim = 2.05 * max(abs(advantage), 0.25)
        self.ax.set_ylim(-lim if advantage < 0 else -0.1 * lim, 0.1 * lim if advantage < 0 else lim)
        g = max(abs(advantage), 0.25) * 1.25
        self.ax_grad.set_ylim(-g, g)
        self.keep(
            self.fig.text(
                0.7, 0.5, _case_note(advantage, 1 - clip_eps, 1 + hi), fontsize=FONT + 1, va="top"
            )
        )
        title(
            self.ax,
            f"Clipped objective of one token: A = {advantage:+.2f}, "
            f"eps = {clip_eps:.2f}, eps_high = {hi:.2f}",
        )

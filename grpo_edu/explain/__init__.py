"""Pure compute and figure functions behind the widgets: each picture of the course's ideas.

Every quantity is computed by the library's own functions (``group_advantages``,
``clipped_surrogate``, ``kl_penalty``, ``aggregate``, ...), never re-derived here::

    group        advantage_table         one group's advantages under each normalisation
    clip         clip_curves             the clipped objective and its gradient against r
    kl           kl_estimates            k1 / k2 / k3 batch estimates against the exact KL
    group_size   simulate_groups         baseline error and advantage noise against G
    aggregation  token_weights           each token's weight under each loss aggregation

Each ``figure_*`` function returns a new ``matplotlib.figure.Figure`` (object API, no pyplot);
the ``*Figure`` classes redraw one figure in place (what the widgets use: ~2x faster);
``render_png`` turns a figure into PNG bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure

from ._live import LivePlot, render_png
from .aggregation import MAX_COMPLETION_LENGTH, AggregationFigure, answer_push, token_weights
from .clip import ClipCurves, ClipFigure, clip_curves
from .group import ADVANTAGE_METHODS, GroupAdvantageFigure, advantage_table
from .group_size import (
    G_RANGE,
    GroupSimulation,
    GroupSizeFigure,
    baseline_std,
    prob_all_equal,
    simulate_groups,
    std_scaling_weight,
)
from .kl import KLEstimates, KLFigure, kl_distributions, kl_estimates


def figure_group_advantages(
    rewards: Sequence[float] = (1, 0, 0, 1, 0, 0, 0, 1), rest_of_batch: Sequence[float] = ()
) -> Figure:
    """Bars of one group's advantages under each normalisation (see ``advantage_table``)."""
    return GroupAdvantageFigure().draw(rewards=rewards, rest_of_batch=rest_of_batch)


def figure_clip(
    advantage: float = 1.0, clip_eps: float = 0.2, clip_eps_high: float | None = None
) -> Figure:
    """The clipped objective and its gradient against r, zero-gradient regions shaded."""
    return ClipFigure().draw(advantage=advantage, clip_eps=clip_eps, clip_eps_high=clip_eps_high)


def figure_kl(
    shift: float = 1.0, temperature: float = 1.0, n_samples: int = 16, seed: int = 0
) -> Figure:
    """pi and pi_ref, and histograms of the k1 / k2 / k3 batch estimates against the exact KL."""
    return KLFigure().draw(shift=shift, temperature=temperature, n_samples=n_samples, seed=seed)


def figure_group_size(p: float = 0.3, group_size: int = 8, seed: int = 0) -> Figure:
    """Baseline error and a correct answer's advantage at G; noise and P(no signal) against G."""
    return GroupSizeFigure().draw(p=p, group_size=group_size, seed=seed)


def figure_aggregation(
    lengths: Sequence[int] = (4, 16),
    advantages: Sequence[float] = (1.0, -1.0),
    max_completion_length: int = MAX_COMPLETION_LENGTH,
) -> Figure:
    """Each token's weight under grpo / bnpo / dr_grpo / dapo, and the push on each answer."""
    return AggregationFigure().draw(
        lengths=lengths, advantages=advantages, max_completion_length=max_completion_length
    )


__all__ = [
    "ADVANTAGE_METHODS",
    "G_RANGE",
    "MAX_COMPLETION_LENGTH",
    "AggregationFigure",
    "ClipCurves",
    "ClipFigure",
    "GroupAdvantageFigure",
    "GroupSimulation",
    "GroupSizeFigure",
    "KLEstimates",
    "KLFigure",
    "LivePlot",
    "advantage_table",
    "answer_push",
    "baseline_std",
    "clip_curves",
    "figure_aggregation",
    "figure_clip",
    "figure_group_advantages",
    "figure_group_size",
    "figure_kl",
    "kl_distributions",
    "kl_estimates",
    "prob_all_equal",
    "render_png",
    "simulate_groups",
    "std_scaling_weight",
    "token_weights",
    "default_figures",
]


def default_figures() -> dict[str, Figure]:
    """One figure per idea at the explorers' default settings, by file stem (the README shows them)."""
    return {
        "explain_group_advantages": figure_group_advantages(),
        "explain_clip": figure_clip(),
        "explain_kl": figure_kl(),
        "explain_group_size": figure_group_size(),
        "explain_aggregation": figure_aggregation(),
    }

"""Group size G vs the noise of GRPO's baseline and advantage, and the chance of no signal."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator
from torch import Tensor

from ..advantages import group_advantages
from ..plots import COLORS
from ._live import FONT, LivePlot, style, title

G_RANGE = (2, 64)
"""Group sizes shown on the "against G" panel (and the widget's slider range)."""


def prob_all_equal(p: float, group_size: int) -> float:
    """Chance that all G binary rewards of a group are equal: p^G + (1 - p)^G.

    Such a group has zero advantage for every completion, so it adds no gradient (TRL logs the
    share of these as ``frac_reward_zero_std``; DAPO's dynamic sampling resamples them).
    """
    return p**group_size + (1 - p) ** group_size


def baseline_std(p: float, group_size: int) -> float:
    """Exact std of the group-mean baseline around the true expected reward p: sqrt(p(1-p)/G)."""
    return math.sqrt(p * (1 - p) / group_size)


def std_scaling_weight(p: float, group_size: int, scale: str = "group") -> float:
    """Expected weight of a prompt's gradient under GRPO's advantage, as a function of p.

    For a prompt solved with probability p, answer i's term A_i grad log pi(o_i) has expectation
    w * grad p with w = E[A_i | r_i = 1] - E[A_i | r_i = 0] (the score of an answer, given only
    whether it is right, averages to grad p / p or -grad p / (1 - p)). Computed exactly over the
    binomial count of right answers among the other G - 1, with ``group_advantages`` itself.

    Without the std (``scale="none"``, Dr. GRPO) w = (G - 1) / G for every p: each prompt counts
    by how much its p can still move. Dividing by the group std (the default) makes w larger
    where the std is small, i.e. for prompts that are almost always right or almost always
    wrong: for G = 8, w = 2.18 at p = 0.1 or 0.9 against 1.74 at p = 0.5. That is the
    difficulty bias Dr. GRPO (arXiv:2503.20783, sec. 3.1) removes.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    G = group_size
    expected = {0: 0.0, 1: 0.0}  # E[A_1 | r_1]
    for r1 in (0, 1):
        for k in range(G):  # right answers among the other G - 1
            weight = math.comb(G - 1, k) * p**k * (1 - p) ** (G - 1 - k)
            rewards = torch.tensor(
                [float(r1)] + [1.0] * k + [0.0] * (G - 1 - k), dtype=torch.float64
            )
            expected[r1] += weight * group_advantages(rewards, G, scale=scale)[0].item()
    return expected[1] - expected[0]


@dataclass(frozen=True)
class GroupSimulation:
    """Many groups of G binary rewards drawn for one prompt with success probability p."""

    p: float
    group_size: int
    baseline_error: Tensor
    """(n_groups,) group mean - p: the error of GRPO's baseline against the exact one."""
    correct_advantages: Tensor
    """(n_correct,) ``group_advantages`` (GRPO's z-score) of every correct completion."""
    frac_all_equal: float
    """Share of groups whose rewards are all equal (no signal)."""


def simulate_groups(
    p: float = 0.3, group_size: int = 8, n_groups: int = 2000, seed: int = 0
) -> GroupSimulation:
    """Draw ``n_groups`` groups of ``group_size`` rewards ~ Bernoulli(p); seeded."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    g = torch.Generator().manual_seed(seed)
    probs = torch.full((n_groups * group_size,), p, dtype=torch.float64)
    rewards = torch.bernoulli(probs, generator=g)  # (B,) prompt-major, B = n_groups * G
    grouped = rewards.view(n_groups, group_size)  # (n_groups, G)
    advantages = group_advantages(rewards, group_size)  # (B,)
    return GroupSimulation(
        p=p,
        group_size=group_size,
        baseline_error=grouped.mean(dim=1) - p,  # (n_groups,)
        correct_advantages=advantages[rewards == 1],  # (n_correct,)
        frac_all_equal=(grouped == grouped[:, :1]).all(dim=1).double().mean().item(),
    )


def _shares(x: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``x`` and the share of each (x takes few values: G + 1 at most)."""
    values, counts = torch.unique(x.round(decimals=9), return_counts=True)
    return values.numpy(), counts.numpy() / len(x)


class GroupSizeFigure(LivePlot):
    """Baseline error and a correct answer's advantage at one G; noise and no-signal against G."""

    figsize = (10.0, 3.3)

    def setup(self) -> None:
        self.fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.84, wspace=0.3)
        self.ax_b, self.ax_a, self.ax_g = self.fig.subplots(1, 3)
        for ax in (self.ax_b, self.ax_a, self.ax_g):
            style(ax)
        self.ax_b.set_xlabel("group mean - p  (baseline error)", fontsize=FONT + 1)
        self.ax_b.set_ylabel("share of groups", fontsize=FONT + 1)
        self.ax_b.set_xlim(-1, 1)
        self.ax_b.set_xticks([-1, -0.5, 0, 0.5, 1])
        self.ax_a.set_xlabel("GRPO advantage of a correct answer", fontsize=FONT + 1)
        self.ax_a.set_ylabel("share of correct answers", fontsize=FONT + 1)
        self.ax_g.set_xscale("log", base=2)
        self.ax_g.set_xticks([2, 4, 8, 16, 32, 64], ["2", "4", "8", "16", "32", "64"])
        self.ax_g.xaxis.set_minor_locator(NullLocator())
        self.ax_g.set_xlim(G_RANGE[0] * 0.9, G_RANGE[1] * 1.1)
        self.ax_g.set_ylim(0, 1.02)
        self.ax_g.set_xlabel("group size G", fontsize=FONT + 1)
        self.ax_g.set_ylabel("sd of the error / probability", fontsize=FONT + 1)
        title(self.ax_g, "against G\nlines exact, dots simulated at this G")
        grpo = COLORS["grpo"]
        simulated = Line2D([], [], color=grpo, lw=3)
        exact = Line2D([], [], ls="", marker="o", ms=3.5, mfc="none", color="k")
        self.ax_b.legend(
            [simulated, exact], ["simulated", "exact (binomial)"], fontsize=FONT, loc="upper left"
        )
        ideal = Line2D([], [], color="k", ls="--", lw=1.2)
        self.ax_a.legend(
            [ideal], ["(1 - p) / std: with the true p"], fontsize=FONT, loc="upper right"
        )
        (self.std_line,) = self.ax_g.plot([], [], color=grpo, label="sd of the baseline error")
        (self.equal_line,) = self.ax_g.plot(
            [], [], color="#2e4057", label="P(all rewards equal): no signal"
        )
        self.ax_g.legend(fontsize=FONT, loc="upper right")

    def plot(self, p: float = 0.3, group_size: int = 8, seed: int = 0) -> None:
        sim = simulate_groups(p, group_size, seed=seed)
        G, grpo = group_size, COLORS["grpo"]
        # 1. baseline error at this G: simulated shares (bars) vs the exact binomial (dots)
        x, share = _shares(sim.baseline_error)
        self.keep(self.ax_b.vlines(x, 0, share, color=grpo, lw=3))
        k = np.arange(G + 1)
        exact = np.array([math.comb(G, i) * p**i * (1 - p) ** (G - i) for i in k])  # (G + 1,)
        seen = exact > 1e-3  # leave out the dots that would sit on the axis
        self.keep(
            self.ax_b.plot(k[seen] / G - p, exact[seen], "o", ms=3.5, mfc="none", color="k")[0]
        )
        self.ax_b.set_ylim(0, max(exact.max(), share.max()) * 1.25)
        title(
            self.ax_b,
            f"p = {p:.2f}, G = {G}: error of the group-mean baseline\n"
            f"sd {sim.baseline_error.std():.3f} (exact {baseline_std(p, G):.3f})",
        )

        # 2. GRPO's z-scored advantage of a correct answer vs the one with the true p
        x, share = _shares(sim.correct_advantages)
        self.keep(self.ax_a.vlines(x, 0, share, color=grpo, lw=3))
        ideal = (1 - p) / math.sqrt(p * (1 - p))  # (1 - p) / std of Bernoulli(p)
        self.keep(self.ax_a.axvline(ideal, color="k", ls="--", lw=1.2))
        self.ax_a.set_xlim(-0.1, max(x.max(), ideal) * 1.1 + 0.1)
        self.ax_a.set_ylim(0, share.max() * 1.25)
        zero = share[x == 0].sum() if (x == 0).any() else 0.0
        title(
            self.ax_a,
            f"GRPO's z-score of a correct answer\nsd {sim.correct_advantages.std():.2f}; "
            f"A = 0 for {zero:.0%} (all-correct group)",
        )

        # 3. against G: noise of the baseline and the chance of a zero-signal group
        gs = np.arange(G_RANGE[0], G_RANGE[1] + 1)
        self.std_line.set_data(gs, [baseline_std(p, n) for n in gs])
        self.equal_line.set_data(gs, [prob_all_equal(p, n) for n in gs])
        self.keep(
            self.ax_g.plot(
                [G, G], [sim.baseline_error.std(), sim.frac_all_equal], "o", color="k", ms=4
            )[0]
        )
        self.keep(self.ax_g.axvline(G, color="0.5", lw=0.8, ls=":"))

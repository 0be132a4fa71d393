"""KL(pi || pi_ref) and its k1 / k2 / k3 estimates from tokens sampled from pi."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from ..losses import KL_ESTIMATORS, kl_penalty
from ..plots import COLORS, STATE_COLORS, STATE_PARTS
from ._live import FONT, LivePlot, style, title

ESTIMATOR_COLORS = {"k1": COLORS["ppo"], "k2": "#edae49", "k3": COLORS["grpo"]}
"""k1 in PPO's colour (its per-token reward penalty), k3 in GRPO's (the estimator in its loss)."""
POLICY_COLOR, REFERENCE_COLOR = (
    STATE_COLORS[STATE_PARTS.index(k)] for k in ("policy", "reference")
)


def kl_distributions(
    shift: float = 1.0, temperature: float = 1.0, vocab_size: int = 10
) -> tuple[Tensor, Tensor]:
    """Log-probs ``(logp, ref_logp)`` of two next-token distributions over ``vocab_size`` tokens.

    pi_ref = softmax(z / T) with logits z falling linearly from +1.5 to -1.5 (token 0 likeliest);
    pi = softmax((z + shift * tilt) / T), tilt rising linearly from -1 to +1, so ``shift`` moves
    pi's mass towards the later tokens (shift = 0: pi = pi_ref). Both are divided by the same
    temperature T, as ``rollout`` and the training step do.

    Shapes: both results (vocab_size,) float64.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    z = torch.linspace(1.5, -1.5, vocab_size, dtype=torch.float64)  # reference logits  (V,)
    tilt = torch.linspace(-1.0, 1.0, vocab_size, dtype=torch.float64)  # (V,)
    ref_logp = torch.log_softmax(z / temperature, dim=-1)  # log pi_ref  (V,)
    logp = torch.log_softmax((z + shift * tilt) / temperature, dim=-1)  # log pi  (V,)
    return logp, ref_logp


@dataclass(frozen=True)
class KLEstimates:
    """Exact KL(pi || pi_ref) and the spread of its sampled estimates."""

    logp: Tensor
    """(V,) log pi."""
    ref_logp: Tensor
    """(V,) log pi_ref."""
    exact: float
    """KL(pi || pi_ref) = sum_v pi_v (log pi_v - log pi_ref_v)."""
    estimates: dict[str, Tensor]
    """estimator -> (n_batches,): the mean of ``kl_penalty`` over ``n_samples`` tokens drawn from pi."""
    expected: dict[str, float]
    """estimator -> E_pi[k] computed exactly over the vocabulary (= KL for k1 and k3, not for k2)."""


def kl_estimates(
    shift: float = 1.0,
    temperature: float = 1.0,
    n_samples: int = 16,
    n_batches: int = 1000,
    seed: int = 0,
    vocab_size: int = 10,
) -> KLEstimates:
    """Estimate KL(pi || pi_ref) ``n_batches`` times, each from ``n_samples`` tokens drawn from pi.

    Each estimate is what a training step logs for a batch of ``n_samples`` tokens: the mean
    of ``kl_penalty(logp, ref_logp, k)`` over the sampled tokens (``kl_penalty`` is evaluated
    once per vocabulary token, then looked up per sample). Seeded: same inputs, same draws.
    """
    logp, ref_logp = kl_distributions(shift, temperature, vocab_size)  # (V,), (V,)
    g = torch.Generator().manual_seed(seed)
    tokens = torch.multinomial(logp.exp(), n_batches * n_samples, replacement=True, generator=g)
    tokens = tokens.view(n_batches, n_samples)  # (n_batches, n_samples) sampled from pi
    estimates, expected = {}, {}
    for k in KL_ESTIMATORS:
        per_token = kl_penalty(logp[None], ref_logp[None], k)[0]  # k at each vocabulary token  (V,)
        estimates[k] = per_token[tokens].mean(dim=1)  # batch means  (n_batches,)
        expected[k] = (logp.exp() * per_token).sum().item()  # E_pi[k]
    exact = (logp.exp() * (logp - ref_logp)).sum().item()  # KL(pi || pi_ref)
    return KLEstimates(logp, ref_logp, exact, estimates, expected)


class KLFigure(LivePlot):
    """The two distributions (left); histograms of the k1 / k2 / k3 estimates (right)."""

    figsize = (9.0, 3.4)
    vocab_size = 10

    def setup(self) -> None:
        self.fig.subplots_adjust(left=0.07, right=0.74, bottom=0.15, top=0.9, wspace=0.3)
        self.ax_p, self.ax = self.fig.subplots(1, 2, gridspec_kw={"width_ratios": (1, 1.4)})
        for ax in (self.ax_p, self.ax):
            style(ax, grid="y")
        x = np.arange(self.vocab_size)
        zeros = np.zeros(self.vocab_size)
        self.bars = self.ax_p.bar(x - 0.2, zeros, 0.4, color=POLICY_COLOR, label="pi (policy)")
        self.ref_bars = self.ax_p.bar(x + 0.2, zeros, 0.4, color=REFERENCE_COLOR, label="pi_ref")
        self.ax_p.legend(fontsize=FONT, loc="upper center", ncol=2, frameon=False)
        self.ax_p.set_xticks(x)
        self.ax_p.set_xlim(-0.6, self.vocab_size - 0.4)
        self.ax_p.set_xlabel("token", fontsize=FONT + 1)
        self.ax_p.set_ylabel("probability", fontsize=FONT + 1)
        self.ax.set_xlabel("estimate of KL from one batch (nats)", fontsize=FONT + 1)
        self.ax.xaxis.set_major_locator(MaxNLocator(5))  # few ticks: labels never overlap
        self.ax.set_ylabel("share of batches", fontsize=FONT + 1)
        handles = [Line2D([], [], color=c, lw=1.6) for c in ESTIMATOR_COLORS.values()]
        handles.append(Line2D([], [], color="k", lw=1.2, ls="--"))
        labels = ["k1 (PPO's reward)", "k2", "k3 (GRPO's loss)", "exact KL"]
        self.ax.legend(
            handles,
            labels,
            fontsize=FONT,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            frameon=False,
        )

    def plot(
        self, shift: float = 1.0, temperature: float = 1.0, n_samples: int = 16, seed: int = 0
    ) -> None:
        est = kl_estimates(shift, temperature, n_samples, seed=seed, vocab_size=self.vocab_size)
        probs, ref_probs = est.logp.exp().numpy(), est.ref_logp.exp().numpy()  # (V,), (V,)
        for bars, p in ((self.bars, probs), (self.ref_bars, ref_probs)):
            for bar, height in zip(bars, p, strict=True):
                bar.set_height(height)
        self.ax_p.set_ylim(0, max(probs.max(), ref_probs.max()) * 1.3)
        title(self.ax_p, f"shift = {shift:.2f}, temperature = {temperature:.2f}")

        values = torch.cat(list(est.estimates.values())).numpy()
        lo, hi = np.quantile(values, [0.002, 0.998])
        half = max(0.5 * (hi - lo), 0.01)  # at shift 0 every estimate is 0: keep a readable axis
        mid = 0.5 * (lo + hi)
        bins = np.linspace(mid - 1.05 * half, mid + 1.05 * half, 41)
        top, lines = 0.0, []
        for k, e in est.estimates.items():
            share = np.histogram(e.numpy(), bins)[0] / len(e)
            top = max(top, share.max())
            self.keep(self.ax.stairs(share, bins, color=ESTIMATOR_COLORS[k], lw=1.6))
            lines.append(f"{k}: mean {e.mean():.3f}  sd {e.std():.3f}")
        self.keep(self.ax.axvline(est.exact, color="k", lw=1.2, ls="--"))
        self.ax.set_xlim(bins[0], bins[-1])
        self.ax.set_ylim(0, top * 1.1)
        title(
            self.ax,
            f"KL(pi || pi_ref) = {est.exact:.3f}: {len(e)} estimates, {n_samples} tokens each",
        )
        bias = est.expected["k2"] - est.exact
        if abs(bias) < 5e-4:
            verdict = (
                f"E[k2] = {est.expected['k2']:.3f} = KL here:\nk2's bias shows only as pi moves."
            )
        else:
            verdict = f"E[k2] = {est.expected['k2']:.3f}: k2 is biased\n(by {bias:+.3f} here)."
        note = "\n".join(
            [*lines, "", verdict, "k1, k3 are unbiased; per token", "k3 >= 0, k1 can be < 0."]
        )
        self.keep(self.fig.text(0.755, 0.58, note, fontsize=FONT, va="top"))

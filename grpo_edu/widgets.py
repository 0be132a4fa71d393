"""Interactive explorers: sliders that redraw a figure of ``grpo_edu.explain``.

Each function returns an ``Explorer``, a ``widgets.VBox`` holding a one-line explanation, its
controls, and a ``widgets.Image`` that shows the figure as PNG bytes::

    group_advantage_explorer   one group's rewards -> advantages under each normalisation
    clip_explorer              the clipped objective and its gradient against the ratio rho
    kl_explorer                k1 / k2 / k3 estimates against the exact KL as pi moves away
    group_size_explorer        G against the noise of the baseline and P(no signal)
    aggregation_explorer       each token's weight under grpo / bnpo / dr_grpo / dapo
    coefficient_explorer       one group's rewards -> the gradient coefficient of SFT, RFT,
                               online RFT, DPO, PPO and GRPO (DeepSeekMath's unified paradigm)

Why a PNG in an ``Image`` and not pyplot in an ``Output`` widget: the latter renders blank in a
real browser about half the time. Only core ipywidgets APIs present in both 7.7 and 8 are used.
Sliders redraw when released (``continuous_update=False``), so a drag never queues redraws.

``explorer.update()`` is the callback every control calls; tests set a control's ``.value``
and read ``explorer.image.value``. ``explorer.last_redraw_s`` is the time of the last redraw.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial

import ipywidgets as widgets
from matplotlib.figure import Figure

from .explain import (
    G_RANGE,
    MAX_COMPLETION_LENGTH,
    AggregationFigure,
    ClipFigure,
    GroupAdvantageFigure,
    GroupSizeFigure,
    KLFigure,
    render_png,
)

STYLE = {"description_width": "initial"}
GROUP_PRESETS = (
    ("3 of 8 right", (1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)),
    ("1 of 8 right: a rare success", (1.0,) + (0.0,) * 7),
    ("7 of 8 right: a rare failure", (0.0,) + (1.0,) * 7),
    ("all wrong: no signal", (0.0,) * 8),
    ("partial credit", (1.0, 0.5, 0.25, 0.0, 0.75, 0.5, 0.0, 1.0)),
    ("G = 2, one right", (1.0, 0.0)),
    ("G = 16, 4 right", (1.0, 0.0, 0.0, 0.0) * 4),
)
"""(label, rewards) choices of the group explorer's preset menu."""


def _slider(description: str, value, lo, hi, step: float | None = None, **kw) -> widgets.Widget:
    """A slider that redraws on release: ``IntSlider`` without ``step``, else ``FloatSlider``."""
    kw = dict(value=value, min=lo, max=hi, description=description, style=STYLE, **kw)
    kw["continuous_update"] = False
    kw.setdefault("layout", widgets.Layout(width="440px"))  # long labels keep a usable track
    return widgets.IntSlider(**kw) if step is None else widgets.FloatSlider(step=step, **kw)


class Explorer(widgets.VBox):
    """An explanation, rows of controls, and an image that ``update`` redraws from them.

    ``draw(**params)`` returns the figure for the controls' values, ``params`` mapping each
    name of ``controls`` to its widget's ``.value`` (a ``LivePlot.draw``, which redraws one
    figure in place).
    """

    def __init__(
        self,
        intro: str,
        controls: dict[str, widgets.ValueWidget],
        draw: Callable[..., Figure],
        rows: Sequence[Sequence[widgets.Widget]] | None = None,
    ) -> None:
        super().__init__()
        self._controls = controls
        self._draw = draw
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.figure: Figure | None = None
        """The figure shown, as drawn by the last ``update``."""
        self.last_redraw_s = float("nan")
        """Seconds the last ``update`` took: compute, draw and PNG encoding."""
        self._holds = 0
        for control in controls.values():
            control.observe(self.update, names="value")
        rows = [list(controls.values())] if rows is None else rows
        wrap = widgets.Layout(flex_flow="row wrap")  # controls wrap instead of squeezing tracks
        rows = [widgets.HBox(list(r), layout=wrap) for r in rows]
        self.children = [widgets.HTML(intro), *rows, self.image]
        self.update()

    @property
    def controls(self) -> dict[str, widgets.ValueWidget]:
        """Every widget whose ``.value`` changes the figure, by name."""
        return dict(self._controls)

    def params(self) -> dict:
        """Keyword arguments of ``draw``, read from the controls."""
        return {name: control.value for name, control in self._controls.items()}

    def update(self, change: dict | None = None) -> None:
        """Redraw the image from the controls' current values (observer of every control)."""
        if self._holds:
            return
        start = time.perf_counter()
        self.figure = self._draw(**self.params())
        self.image.value = render_png(self.figure)
        self.last_redraw_s = time.perf_counter() - start

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Change several controls inside the block (nesting allowed); redraw once at its end."""
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
        if not self._holds:
            self.update()


# ----------------------------------------------------------------------------- 1. advantages
class GroupAdvantageExplorer(Explorer):
    """One vertical slider per reward; G and the presets rebuild the sliders."""

    def __init__(self, rewards: Sequence[float]) -> None:
        rewards = tuple(float(r) for r in rewards)
        if not G_RANGE[0] <= len(rewards) <= 16:
            raise ValueError(f"a group needs 2 to 16 rewards, got {len(rewards)}")
        presets = list(GROUP_PRESETS)
        if rewards not in [r for _, r in presets]:
            presets.insert(0, ("your rewards", rewards))
        self.preset = widgets.Dropdown(
            options=presets, value=rewards, description="preset", style=STYLE
        )
        self.group_size = _slider("group size G", len(rewards), 2, 16)
        self.other_correct = _slider("other prompt in the batch: correct of G", 0, 0, len(rewards))
        self.reward_box = widgets.HBox()
        self.rewards: list[widgets.FloatSlider] = []
        self._set_rewards(rewards)
        super().__init__(
            "<b>Group-relative advantages.</b> Set the rewards r_i of the G completions of one "
            "prompt. GRPO: A_i = (r_i - mean) / (std + eps), std over the group (ddof = 1); "
            "the batch-std variant divides by the std of the whole batch (this group and one "
            "other prompt's group); Dr. GRPO does not divide; RLOO subtracts the mean of the others.",
            {"other_correct": self.other_correct},
            GroupAdvantageFigure().draw,
            rows=[[self.preset, self.group_size], [self.other_correct], [self.reward_box]],
        )
        self.preset.observe(self._on_preset, names="value")
        self.group_size.observe(self._on_group_size, names="value")

    @property
    def controls(self) -> dict[str, widgets.ValueWidget]:
        sliders = {f"r{i + 1}": s for i, s in enumerate(self.rewards)}
        return {"preset": self.preset, "group_size": self.group_size, **self._controls, **sliders}

    def params(self) -> dict:
        G, k = len(self.rewards), self.other_correct.value
        return {
            "rewards": [s.value for s in self.rewards],
            "rest_of_batch": [1.0] * k + [0.0] * (G - k),
        }

    def _set_rewards(self, rewards: Sequence[float]) -> None:
        """Replace the reward sliders by one per reward (observers moved to the new ones)."""
        for old in self.rewards:
            old.unobserve(self.update, names="value")
            old.close()
        size = widgets.Layout(width="52px", height="140px")
        self.rewards = [
            _slider(f"r{i + 1}", r, 0.0, 1.0, 0.05, orientation="vertical", layout=size)
            for i, r in enumerate(rewards)
        ]
        for slider in self.rewards:
            slider.observe(self.update, names="value")
        self.reward_box.children = self.rewards

    def _on_group_size(self, change: dict) -> None:
        G = change["new"]
        old = [s.value for s in self.rewards]
        with self.hold():
            self._set_rewards((old + [0.0] * G)[:G])
            self.other_correct.max = G

    def _on_preset(self, change: dict) -> None:
        with self.hold():
            self.group_size.value = len(change["new"])  # resizes through _on_group_size
            self._set_rewards(change["new"])


def group_advantage_explorer(rewards: Sequence[float] = (1, 0, 0, 1, 0, 0, 0, 1)) -> Explorer:
    """Edit one group's rewards; see its advantages under GRPO, batch std, Dr. GRPO and RLOO."""
    return GroupAdvantageExplorer(rewards)


# ----------------------------------------------------------------------------------- 2. clip
def clip_explorer(
    advantage: float = 1.0, clip_eps: float = 0.2, clip_eps_high: float = 0.2
) -> Explorer:
    """The clipped objective min(rho A, clip(rho) A) and its gradient in rho, for A and the clip range."""
    controls = {
        "advantage": _slider("advantage A", advantage, -2.0, 2.0, 0.1),
        "clip_eps": _slider("eps (1 - eps: low clip)", clip_eps, 0.05, 0.5, 0.01),
        "clip_eps_high": _slider(
            "eps_high (clip-higher, DAPO uses 0.28)", clip_eps_high, 0.05, 0.5, 0.01
        ),
    }
    return Explorer(
        "<b>The clipped surrogate.</b> One token's objective min(ρ A, clip(ρ, 1 - eps, 1 + eps_high) A) "
        "against the ratio ρ = π / π_old, and its slope: where the clipped term wins the "
        "gradient is exactly 0 (shaded), so the update stops pushing that token.",
        controls,
        ClipFigure().draw,
        rows=[[controls["advantage"]], [controls["clip_eps"], controls["clip_eps_high"]]],
    )


# ------------------------------------------------------------------------------------- 3. KL
def kl_explorer(
    shift: float = 1.0, temperature: float = 1.0, n_samples: int = 16, seed: int = 0
) -> Explorer:
    """k1 / k2 / k3 estimates of KL(pi || pi_ref) from sampled tokens, against the exact KL."""
    controls = {
        "shift": _slider("shift pi away from pi_ref", shift, 0.0, 3.0, 0.05),
        "temperature": _slider("temperature T", temperature, 0.25, 2.0, 0.05),
        "n_samples": widgets.Dropdown(
            options=[1, 4, 16, 64, 256],
            value=n_samples,
            description="tokens per estimate",
            style=STYLE,
        ),
        "seed": widgets.BoundedIntText(
            value=seed,
            min=0,
            max=10_000,
            description="seed",
            style=STYLE,
            layout=widgets.Layout(width="120px"),
        ),
    }
    return Explorer(
        "<b>KL estimators.</b> With tokens x drawn from pi and log-ratio l = log pi_ref(x) - "
        "log pi(x): k1 = -l, k2 = l^2 / 2, k3 = exp(l) - l - 1. Each histogram shows 1000 "
        "batch estimates (the mean over the batch's tokens) against the exact KL(pi || pi_ref).",
        controls,
        KLFigure().draw,
        rows=[
            [controls["shift"], controls["temperature"]],
            [controls["n_samples"], controls["seed"]],
        ],
    )


# ----------------------------------------------------------------------------- 4. group size
def group_size_explorer(p: float = 0.3, group_size: int = 8, seed: int = 0) -> Explorer:
    """For a prompt solved with probability p: noise of GRPO's baseline and advantage against G."""
    controls = {
        "p": _slider("success probability p", p, 0.02, 0.98, 0.01),
        "group_size": _slider("group size G", group_size, *G_RANGE),
    }
    return Explorer(
        "<b>Group size.</b> GRPO's baseline is the mean reward of G samples of the same prompt: "
        "its error shrinks as sqrt(p (1 - p) / G), while the chance that all G rewards are equal "
        "(zero advantage, no gradient) is p^G + (1 - p)^G.",
        controls,
        partial(GroupSizeFigure().draw, seed=seed),
    )


# ---------------------------------------------------------------------------- 5. aggregation
def aggregation_explorer(
    lengths: Sequence[int] = (4, 16), advantages: Sequence[float] = (1.0, -1.0)
) -> Explorer:
    """Each token's weight in the loss under grpo / bnpo / dr_grpo / dapo, for two answers."""
    plot, controls = AggregationFigure(), {}
    for i in (1, 2):
        controls[f"length_{i}"] = _slider(
            f"answer {i}: length L", lengths[i - 1], 1, MAX_COMPLETION_LENGTH
        )
        controls[f"advantage_{i}"] = _slider(
            f"answer {i}: advantage A", advantages[i - 1], -2.0, 2.0, 0.1
        )
    return Explorer(
        "<b>Loss aggregation.</b> The weight of a token is d loss / d L_t. grpo averages each "
        "answer's tokens, then the answers: a long answer's tokens weigh less, so a long wrong "
        "answer is punished less per token. bnpo / dapo weigh every token alike; dr_grpo divides "
        f"by B * max_completion_length ({MAX_COMPLETION_LENGTH} here).",
        controls,
        lambda length_1, advantage_1, length_2, advantage_2: plot.draw(
            lengths=(length_1, length_2), advantages=(advantage_1, advantage_2)
        ),
        rows=[
            [controls["length_1"], controls["advantage_1"]],
            [controls["length_2"], controls["advantage_2"]],
        ],
    )


# ---------------------------------------------------------------------- 6. coefficients
def coefficient_explorer(
    rewards: Sequence[float] = (1, 0, 0, 1, 0, 0, 0, 1),
    drift: float = 0.0,
    value: float = 0.0,
    kl_coef: float = 0.04,
    dpo_beta: float = 0.1,
    length: int = 3,
) -> Explorer:
    """Every method's gradient coefficient on one group (``explain.coefficients``)."""
    from .explain.coefficients import CoefficientFigure  # imports the trainer: only when used

    presets = list(GROUP_PRESETS)
    rewards = tuple(float(r) for r in rewards)
    if rewards not in [r for _, r in presets]:
        presets.insert(0, ("your rewards", rewards))
    controls = {
        "rewards": widgets.Dropdown(
            options=presets, value=rewards, description="group", style=STYLE
        ),
        "drift": _slider("log pi/pi_ref moved towards the correct answers", drift, 0.0, 2.0, 0.05),
        "value": _slider("critic value V(s_t) (PPO's baseline)", value, -1.0, 1.0, 0.05),
        "kl_coef": _slider("GRPO beta (KL)", kl_coef, 0.0, 0.5, 0.01),
        "dpo_beta": _slider("DPO beta", dpo_beta, 0.01, 1.0, 0.01),
        "length": _slider("tokens per answer", length, 1, 8),
    }
    return Explorer(
        "<b>One formula, six coefficients.</b> DeepSeekMath (sec. 5.2.1) writes every method's "
        "gradient as E[1/|o| sum_t GC(q, o, t) grad log pi(o_t)]. Pick a group of rewards: RFT "
        "and online RFT weigh the correct answers 1 and the rest 0; GRPO and PPO also push the "
        "wrong ones down; DPO pairs a correct with a wrong answer, with a weight that shrinks as "
        "the policy separates them (drift). Each bar is computed from the method's own loss.",
        controls,
        CoefficientFigure().draw,
        rows=[
            [controls["rewards"], controls["length"]],
            [controls["drift"], controls["value"]],
            [controls["kl_coef"], controls["dpo_beta"]],
        ],
    )


__all__ = [
    "Explorer",
    "aggregation_explorer",
    "clip_explorer",
    "coefficient_explorer",
    "group_advantage_explorer",
    "group_size_explorer",
    "kl_explorer",
]

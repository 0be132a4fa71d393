"""Tests of grpo_edu.explain (hand-computed numbers) and grpo_edu.widgets (every control redraws)."""

import math

import pytest
import torch
from matplotlib.figure import Figure

from grpo_edu import explain, widgets
from grpo_edu.explain import (
    advantage_table,
    answer_push,
    baseline_std,
    clip_curves,
    kl_estimates,
    prob_all_equal,
    render_png,
    simulate_groups,
    token_weights,
)

PNG = b"\x89PNG\r\n\x1a\n"


def close(a, b, **kw):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), **kw)


# ------------------------------------------------------------------------------ advantages
def test_advantage_table_hand():
    table = advantage_table([1, 0, 0, 1], rest_of_batch=[0, 0, 0, 0])
    group_std = math.sqrt(1 / 3)  # std of (1, 0, 0, 1), ddof = 1
    batch_std = math.sqrt((2 * 0.75**2 + 6 * 0.25**2) / 7)  # std of the 8 rewards, ddof = 1
    sign = torch.tensor([1.0, -1, -1, 1])
    close(table["group"], sign * 0.5 / (group_std + 1e-4))
    close(table["batch"], sign * 0.5 / (batch_std + 1e-4))  # the group's mean, the batch's std
    close(table["none"], sign * 0.5)
    close(table["rloo"], sign * 2 / 3)  # 1 - (0 + 0 + 1) / 3 and 0 - (1 + 0 + 1) / 3


def test_advantage_table_all_equal_is_zero():
    for adv in advantage_table([0.5] * 4, rest_of_batch=[1, 0, 0, 0]).values():
        assert torch.equal(adv, torch.zeros(4, dtype=adv.dtype))


def test_all_equal_note_shown_only_for_a_tied_group():
    def notes(rewards):
        return " ".join(
            t.get_text() for t in explain.figure_group_advantages(rewards).axes[0].texts
        )

    assert "All rewards are equal" in notes([1, 1, 1, 1])
    assert "All rewards are equal" not in notes([1, 0, 1, 1])


# ------------------------------------------------------------------------------------ clip
@pytest.mark.parametrize("advantage", [1.5, -0.7])
def test_clip_gradient_zero_exactly_where_clipped(advantage):
    eps, eps_high = 0.2, 0.28
    c = clip_curves(advantage, eps, eps_high)
    r = c.ratio
    if advantage > 0:
        zero = r > 1 + eps_high  # raising r further earns nothing
    else:
        zero = r < 1 - eps  # lowering r further earns nothing
    assert torch.equal(c.grad[zero], torch.zeros(int(zero.sum()), dtype=c.grad.dtype))
    close(c.grad[~zero], torch.full((int((~zero).sum()),), advantage))  # slope A elsewhere
    assert torch.equal(c.grad == 0, c.clipped)  # agrees with the library's clip mask
    clipped = r.clamp(1 - eps, 1 + eps_high) * advantage
    close(c.objective, torch.minimum(r * advantage, clipped))  # min(rA, clip(r)A)


def test_clip_zero_advantage_has_no_gradient():
    assert torch.equal(clip_curves(0.0).grad, torch.zeros(400, dtype=torch.float64))


# -------------------------------------------------------------------------------------- KL
def test_kl_estimates_zero_at_equality():
    est = kl_estimates(shift=0.0, n_samples=4, n_batches=10)
    assert est.exact == pytest.approx(0.0, abs=1e-12)
    for e in est.estimates.values():
        assert e.abs().max() < 1e-12


def test_kl_estimates_bias_and_spread():
    est = kl_estimates(shift=1.5, temperature=0.8, n_samples=16, n_batches=1000)
    assert est.exact > 0
    assert est.expected["k1"] == pytest.approx(est.exact)  # k1 and k3 unbiased
    assert est.expected["k3"] == pytest.approx(est.exact)
    assert est.expected["k2"] != pytest.approx(est.exact, rel=1e-3)  # k2 biased
    for k, e in est.estimates.items():  # sample means within 5 standard errors
        assert abs(e.mean().item() - est.expected[k]) < 5 * e.std().item() / math.sqrt(len(e))
    assert (est.estimates["k3"] >= 0).all()
    assert torch.equal(est.estimates["k1"], kl_estimates(1.5, 0.8, 16, 1000).estimates["k1"])


# ------------------------------------------------------------------------------ group size
def test_prob_all_equal_and_baseline_std_hand():
    assert prob_all_equal(0.5, 2) == pytest.approx(0.5)
    assert prob_all_equal(0.3, 3) == pytest.approx(0.3**3 + 0.7**3)
    assert baseline_std(0.5, 4) == pytest.approx(0.25)


def test_simulate_groups_matches_exact():
    p, G, n = 0.3, 4, 4000
    sim = simulate_groups(p, G, n_groups=n, seed=1)
    q = prob_all_equal(p, G)
    assert abs(sim.frac_all_equal - q) < 4 * math.sqrt(q * (1 - q) / n)
    assert sim.baseline_error.std().item() == pytest.approx(baseline_std(p, G), rel=0.05)
    assert (sim.correct_advantages >= 0).all()  # a correct answer is never below its mean
    assert torch.equal(sim.baseline_error, simulate_groups(p, G, n_groups=n, seed=1).baseline_error)
    with pytest.raises(ValueError, match="p must be"):
        simulate_groups(1.0, G)


# ----------------------------------------------------------------------------- aggregation
def test_token_weights_hand():
    w = token_weights([2, 4], "grpo")
    close(w, [[1 / 4, 1 / 4, 0, 0], [1 / 8] * 4])  # 1/(2*2) short, 1/(2*4) long, 0 on padding
    for mode in ("bnpo", "dapo"):
        close(token_weights([2, 4], mode), [[1 / 6, 1 / 6, 0, 0], [1 / 6] * 4])
    close(
        token_weights([2, 4], "dr_grpo", max_completion_length=8),
        [[1 / 16] * 2 + [0] * 2, [1 / 16] * 4],
    )


def test_answer_push_is_advantage_times_total_weight():
    close(answer_push([2, 4], [1.0, -1.0], "grpo"), [0.5, -0.5])  # each answer weighs 1/B
    close(answer_push([2, 4], [1.0, -1.0], "bnpo"), [2 / 6, -4 / 6])  # weight grows with length


# ---------------------------------------------------------------------------------- figures
@pytest.mark.parametrize("name", [n for n in explain.__all__ if n.startswith("figure_")])
def test_figure_functions_return_figures(name):
    fig = getattr(explain, name)()
    assert isinstance(fig, Figure)
    assert render_png(fig).startswith(PNG)
    assert fig._repr_png_().startswith(PNG)  # what Jupyter shows, with or without an inline backend


# ---------------------------------------------------------------------------------- widgets
def _other_value(control):
    """A valid value of ``control`` different from its current one."""
    if hasattr(control, "options"):
        values = [o[1] if isinstance(o, tuple) else o for o in control.options]
        return next(v for v in values if v != control.value)
    step = getattr(control, "step", 1) or 1
    up = control.value + 3 * step
    return up if up <= control.max else control.value - 3 * step


EXPLORERS = [
    "group_advantage_explorer",
    "clip_explorer",
    "kl_explorer",
    "group_size_explorer",
    "aggregation_explorer",
]


@pytest.mark.parametrize("name", EXPLORERS)
def test_every_control_redraws(name):
    explorer = getattr(widgets, name)()
    assert isinstance(explorer, widgets.Explorer)
    png = bytes(explorer.image.value)  # bytes in ipywidgets 7, a memoryview in 8
    assert png.startswith(PNG)
    for key in list(explorer.controls):
        control = explorer.controls[key]  # re-read: the group explorer rebuilds its sliders
        control.value = _other_value(control)
        before, png = png, bytes(explorer.image.value)
        assert png.startswith(PNG)
        assert png != before, f"{name}: changing {key} did not redraw"


def test_group_explorer_presets_and_group_size():
    explorer = widgets.group_advantage_explorer()
    explorer.preset.value = dict(widgets.GROUP_PRESETS)["G = 16, 4 right"]
    assert explorer.group_size.value == 16 and len(explorer.rewards) == 16
    assert explorer.params()["rewards"] == [1.0, 0.0, 0.0, 0.0] * 4
    assert explorer.other_correct.max == 16
    explorer.group_size.value = 3  # keeps the first rewards
    assert explorer.params()["rewards"] == [1.0, 0.0, 0.0]
    assert len(explorer.reward_box.children) == 3 and explorer.other_correct.max == 3


def test_custom_rewards_become_a_preset():
    explorer = widgets.group_advantage_explorer([0.2, 0.9, 0.4])
    assert explorer.preset.value == (0.2, 0.9, 0.4)
    assert explorer.params()["rewards"] == pytest.approx([0.2, 0.9, 0.4])
    with pytest.raises(ValueError, match="2 to 16"):
        widgets.group_advantage_explorer([1.0])


# ---------------------------------------------------------------- figure fixes (issue 14)
def test_std_scaling_weight_hand_and_difficulty_bias():
    from grpo_edu.explain import std_scaling_weight

    # G = 2: only a split group (1, 0) has signal, A = +-0.5 / (std + 1e-4), std = 1/sqrt(2)
    a = 0.5 / (math.sqrt(0.5) + 1e-4)
    for p in (0.1, 0.5, 0.8):
        assert std_scaling_weight(p, 2) == pytest.approx(a)
    assert std_scaling_weight(0.3, 8, scale="none") == pytest.approx(7 / 8)  # (G - 1) / G
    assert std_scaling_weight(0.1, 8) == pytest.approx(std_scaling_weight(0.9, 8))
    assert (
        round(std_scaling_weight(0.1, 8), 2) == 2.18
        and round(std_scaling_weight(0.5, 8), 2) == 1.74
    )


def test_kl_figure_at_shift_zero_is_readable_and_does_not_call_k2_biased():
    fig = explain.figure_kl(shift=0.0)
    text = " ".join(t.get_text() for t in fig.texts)
    assert "biased" not in text.split("k1, k3")[0] and "= KL here" in text
    ax = fig.axes[1]
    fig.canvas.draw()
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert 2 <= len(labels) <= 7
    boxes = [t.get_window_extent() for t in labels]
    assert all(a.x1 < b.x0 for a, b in zip(boxes[:-1], boxes[1:], strict=True)), (
        "tick labels overlap"
    )
    assert "k2 is biased" in " ".join(t.get_text() for t in explain.figure_kl(shift=1.0).texts)


def test_group_size_figure_labels_every_y_axis():
    fig = explain.figure_group_size()
    assert all(ax.get_ylabel() for ax in fig.axes)


def test_clip_figure_writes_the_ratio_as_rho():
    fig = explain.figure_clip()
    labels = " ".join(ax.get_xlabel() for ax in fig.axes)
    assert "ρ" in labels and "ratio r " not in labels

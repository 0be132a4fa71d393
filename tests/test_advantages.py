"""Tests of grpo_edu.advantages: hand-computed numbers, reference implementations, bad input."""

import numpy as np
import pytest
import torch

from grpo_edu.advantages import (
    gae,
    group_advantages,
    reinforce_advantages,
    rloo_advantages,
    whiten,
)

T_ = torch.tensor


def close(a, b, **kw):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), **kw)


# --------------------------------------------------------------------------- group_advantages
# Group A = [1, 0, 0, 1]: mean 0.5, deviations +-0.5.
#   ddof=1: var = 4 * 0.25 / 3 = 1/3, std = 0.577350 -> A = +-0.5 / 0.577450 = +-0.865875
#   ddof=0: var = 0.25,      std = 0.5      -> A = +-0.5 / 0.5001   = +-0.999800
# Group B = [1, 1, 1, 0]: mean 0.75, deviations 0.25 (x3), -0.75.
#   ddof=1: var = (3 * 0.0625 + 0.5625) / 3 = 0.25,  std = 0.5 -> 0.25 / 0.5001 = 0.499900,
#           -0.75 / 0.5001 = -1.499700
#   ddof=0: var = 0.75 / 4 = 0.1875, std = 0.433013 -> 0.25 / 0.433113 = 0.577216,
#           -0.75 / 0.433113 = -1.731651
# batch: all 8 rewards, mean 0.625, sum of squares 5 * 0.375^2 + 3 * 0.625^2 = 1.875,
#   ddof=1: var = 1.875 / 7 = 0.267857, std = 0.517549; numerators stay (r - group mean):
#   0.5 / 0.517649 = 0.965905, 0.25 / 0.517649 = 0.482953, -0.75 / 0.517649 = -1.448858
REWARDS = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]


def _rows(a, b_pos, b_neg):
    """The hand values laid out as REWARDS: group A [a, -a, -a, a], group B [b+, b+, b+, b-]."""
    return [a, -a, -a, a, b_pos, b_pos, b_pos, b_neg]


@pytest.mark.parametrize(
    "scale, ddof, expected",
    [
        ("group", 1, _rows(0.865875, 0.499900, -1.499700)),
        ("group", 0, _rows(0.999800, 0.577216, -1.731651)),
        ("batch", 1, _rows(0.965905, 0.482953, -1.448858)),
        (
            "batch",
            0,
            _rows(0.5 / 0.484223, 0.25 / 0.484223, -0.75 / 0.484223),
        ),  # sqrt(1.875/8)+1e-4
        ("none", 1, _rows(0.5, 0.25, -0.75)),
    ],
)
def test_group_advantages_hand(scale, ddof, expected):
    close(group_advantages(T_(REWARDS), 4, scale=scale, ddof=ddof), expected, atol=2e-6, rtol=0)


def test_group_advantages_match_torch_std():
    rewards = torch.rand(24, generator=torch.Generator().manual_seed(0))
    grouped = rewards.view(-1, 6)
    expected = (grouped - grouped.mean(1, keepdim=True)) / (grouped.std(1, keepdim=True) + 1e-4)
    close(group_advantages(rewards, 6), expected.flatten())
    expected = (grouped - grouped.mean(1, keepdim=True)) / (rewards.std() + 1e-4)
    close(group_advantages(rewards, 6, scale="batch"), expected.flatten())


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("eps", [1e-4, 0.0])
@pytest.mark.parametrize("group_size, value", [(2, 0.1), (3, 0.1), (7, 0.3), (8, -2.7)])
def test_all_equal_group_gives_exact_zero(scale, ddof, eps, group_size, value):
    # 0.1 * 3 / 3 != 0.1 in floating point: a plain r - mean would leave ~1e-9 (or 0/0 = NaN).
    tied = torch.full((group_size,), value)  # (G,)
    mixed = torch.arange(group_size, dtype=torch.float32)  # a group with spread, for "batch"
    adv = group_advantages(torch.cat([tied, mixed]), group_size, scale, ddof, eps)
    assert torch.isfinite(adv).all()
    assert (adv[:group_size] == 0).all()
    assert (adv[group_size:] != 0).any()
    adv = group_advantages(tied, group_size, scale, ddof, eps)  # whole batch tied
    assert (adv == 0).all()


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_group_advantages_parity_with_trl(scale):
    """The lines of TRL 1.16 ``_generate_and_score_completions`` (sum_then_normalize)."""
    nanstd = pytest.importorskip("trl.trainer.utils").nanstd
    G = 4
    rewards = torch.rand(32, generator=torch.Generator().manual_seed(1)).round(decimals=1)
    mean_grouped = torch.nanmean(rewards.view(-1, G), dim=1).repeat_interleave(G, dim=0)
    if scale == "batch":
        std = nanstd(rewards).expand_as(rewards)
    else:
        std = nanstd(rewards.view(-1, G), dim=1).repeat_interleave(G, dim=0)
    trl = rewards - mean_grouped
    if scale != "none":
        trl = trl / (std + 1e-4)
    close(group_advantages(rewards, G, scale=scale), trl)


# ---------------------------------------------------------------------------- RLOO, REINFORCE
@pytest.mark.parametrize(
    "rewards, G, expected",
    [
        # r=1: 1 - (0+0+1)/3 = 2/3;  r=0: 0 - (1+0+1)/3 = -2/3
        ([1.0, 0.0, 0.0, 1.0], 4, [2 / 3, -2 / 3, -2 / 3, 2 / 3]),
        # 3 - (1+2)/2 = 1.5;  1 - (3+2)/2 = -1.5;  2 - (3+1)/2 = 0;  tied group [5, 5, 5] -> 0
        ([3.0, 1.0, 2.0, 5.0, 5.0, 5.0], 3, [1.5, -1.5, 0.0, 0.0, 0.0, 0.0]),
        # G=2: r_i - r_other
        ([0.0, 1.0, 0.5, 0.25], 2, [-1.0, 1.0, 0.25, -0.25]),
    ],
)
def test_rloo_hand(rewards, G, expected):
    close(rloo_advantages(T_(rewards), G), expected)


def test_rloo_is_rescaled_group_centring():
    rewards = torch.randn(20, generator=torch.Generator().manual_seed(2))
    close(rloo_advantages(rewards, 5), 5 / 4 * group_advantages(rewards, 5, scale="none"))


def test_rloo_all_equal_exact_zero():
    assert (rloo_advantages(torch.full((6,), 0.1), 3) == 0).all()


@pytest.mark.parametrize(
    "baseline, expected",
    [
        (None, [0.4, -0.6, -0.6, 0.4, 0.4]),  # mean = 3/5 = 0.6
        (0.0, [1.0, 0.0, 0.0, 1.0, 1.0]),  # plain REINFORCE
        (0.5, [0.5, -0.5, -0.5, 0.5, 0.5]),
    ],
)
def test_reinforce_hand(baseline, expected):
    close(reinforce_advantages(T_([1.0, 0.0, 0.0, 1.0, 1.0]), baseline), expected)


# ------------------------------------------------------------------------------------- GAE
def test_gae_hand():
    # gamma = 1, lam = 0.5.
    # row 0, all real: V = [.5, .6, .7], r = [0, 0, 1]
    #   t=2: delta = 1 + 0 - .7 = .3                 A2 = .3
    #   t=1: delta = 0 + .7 - .6 = .1                 A1 = .1 + .5 * .3  = .25
    #   t=0: delta = 0 + .6 - .5 = .1                 A0 = .1 + .5 * .25 = .225
    #   returns = A + V = [.725, .85, 1.0]
    # row 1, last position padding (reward 99 and value 42 are garbage that must not leak):
    #   t=1: delta = 1 + 0 - .6 = .4 (V after the end = 0)   A1 = .4
    #   t=0: delta = 0 + .6 - .5 = .1                        A0 = .1 + .5 * .4 = .3
    rewards = T_([[0.0, 0.0, 1.0], [0.0, 1.0, 99.0]])
    values = T_([[0.5, 0.6, 0.7], [0.5, 0.6, 42.0]])
    mask = T_([[1, 1, 1], [1, 1, 0]])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lam=0.5)
    close(adv, [[0.225, 0.25, 0.3], [0.3, 0.4, 0.0]])
    close(ret, [[0.725, 0.85, 1.0], [0.8, 1.0, 0.0]])


def naive_gae(rewards, values, lengths, gamma, lam):
    """A_t = sum_{n=0}^{L-1-t} (gamma lam)^n delta_{t+n}, written as the double sum of eq. 16."""
    B, T = rewards.shape
    adv = np.zeros((B, T))
    for b in range(B):
        L = int(lengths[b])
        v = [float(values[b, k]) for k in range(L)] + [0.0]  # V after the end = 0
        delta = [float(rewards[b, k]) + gamma * v[k + 1] - v[k] for k in range(L)]
        for t in range(L):
            adv[b, t] = sum((gamma * lam) ** n * delta[t + n] for n in range(L - t))
    return torch.from_numpy(adv)


@pytest.mark.parametrize("gamma, lam", [(1.0, 0.95), (0.9, 0.8), (1.0, 1.0), (0.99, 0.0)])
def test_gae_matches_naive_double_sum(gamma, lam):
    g = torch.Generator().manual_seed(3)
    B, T = 6, 7
    lengths = T_([7, 1, 4, 0, 6, 3])
    mask = torch.arange(T) < lengths[:, None]  # (B, T) bool
    rewards = torch.randn(B, T, generator=g, dtype=torch.float64)
    values = torch.randn(B, T, generator=g, dtype=torch.float64)
    adv, ret = gae(rewards, values, mask, gamma, lam)
    expected = naive_gae(rewards, values, lengths, gamma, lam)
    close(adv, expected)
    close(ret, (expected + values) * mask)
    assert (adv[~mask] == 0).all() and (ret[~mask] == 0).all()


def test_gae_special_cases():
    g = torch.Generator().manual_seed(4)
    rewards, values = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    mask = torch.ones(3, 5)
    adv, _ = gae(rewards, values, mask, gamma=1.0, lam=1.0)  # Monte Carlo: sum_{k>=t} r_k - V_t
    close(adv, rewards.flip(1).cumsum(1).flip(1) - values)
    adv, _ = gae(rewards, values, mask, gamma=1.0, lam=0.0)  # one-step TD error
    close(adv, rewards + torch.cat([values[:, 1:], torch.zeros(3, 1)], 1) - values)


def test_gae_padding_changes_nothing():
    g = torch.Generator().manual_seed(5)
    rewards, values = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    mask = torch.arange(6) < T_([6, 2, 4, 1])[:, None]  # (B, T)
    adv, ret = gae(rewards, values, mask)
    junk = torch.randn(4, 6, generator=g) * 100
    adv2, ret2 = gae(torch.where(mask, rewards, junk), torch.where(mask, values, junk), mask)
    assert torch.equal(adv, adv2) and torch.equal(ret, ret2)
    pad = torch.zeros(4, 3)  # three more padding columns
    adv3, _ = gae(
        torch.cat([rewards, pad + 7], 1),
        torch.cat([values, pad - 3], 1),
        torch.cat([mask, pad.bool()], 1),
    )
    assert torch.equal(adv3[:, :6], adv) and (adv3[:, 6:] == 0).all()


# ----------------------------------------------------------------------------------- whiten
@pytest.mark.parametrize("shift_mean", [True, False])
def test_whiten_matches_numpy(shift_mean):
    rng = np.random.default_rng(6)
    x = rng.normal(3.0, 2.0, size=(5, 8))
    mask = np.arange(8) < np.array([8, 3, 5, 1, 6])[:, None]
    sel = x[mask]
    mean, var = sel.mean(), sel.var(ddof=1)  # unbiased, like TRL's masked_var
    expected = (x - mean) / np.sqrt(var + 1e-8) + (0.0 if shift_mean else mean)
    expected[~mask] = 0.0
    out = whiten(torch.from_numpy(x), torch.from_numpy(mask), shift_mean=shift_mean)
    close(out, torch.from_numpy(expected))
    if shift_mean:
        assert abs(out[torch.from_numpy(mask)].mean().item()) < 1e-12
        assert abs(out[torch.from_numpy(mask)].std().item() - 1.0) < 1e-6


def test_whiten_ignores_padding():
    x = T_([[1.0, 2.0, 3.0], [4.0, 1e6, -1e6]])
    mask = T_([[1, 1, 1], [1, 0, 0]])
    # real values 1, 2, 3, 4: mean 2.5, unbiased var = (2.25 + .25 + .25 + 2.25) / 3 = 5/3
    s = (5 / 3) ** 0.5
    close(whiten(x, mask), [[-1.5 / s, -0.5 / s, 0.5 / s], [1.5 / s, 0.0, 0.0]])


# -------------------------------------------------------------------------------- bad input
R8 = torch.zeros(8)
M23 = torch.ones(2, 3)


@pytest.mark.parametrize(
    "fn, kwargs, needle",
    [
        (group_advantages, dict(rewards=R8, group_size=1), "group_size must be an int >= 2, got 1"),
        (group_advantages, dict(rewards=R8, group_size=2.0), "group_size"),
        (
            group_advantages,
            dict(rewards=torch.zeros(10), group_size=4),
            "rewards has 10 rows, not divisible by group_size=4",
        ),
        (
            group_advantages,
            dict(rewards=T_([0.0, 1, 2, float("nan")]), group_size=2),
            "rewards contains NaN or inf at rows [3]",
        ),
        (group_advantages, dict(rewards=T_([float("inf"), 1.0]), group_size=2), "rows [0]"),
        (group_advantages, dict(rewards=torch.zeros(4, 2), group_size=2), "rewards must be a 1-D"),
        (
            group_advantages,
            dict(rewards=torch.zeros(4, dtype=torch.long), group_size=2),
            "rewards must be a floating",
        ),
        (
            group_advantages,
            dict(rewards=R8, group_size=4, scale="std"),
            "scale must be one of ('group', 'batch', 'none'), got 'std'",
        ),
        (group_advantages, dict(rewards=R8, group_size=4, ddof=4), "ddof"),
        (group_advantages, dict(rewards=R8, group_size=4, ddof=-1), "ddof"),
        (group_advantages, dict(rewards=R8, group_size=4, eps=-1e-4), "eps must be >= 0"),
        (rloo_advantages, dict(rewards=R8, group_size=1), "group_size"),
        (rloo_advantages, dict(rewards=torch.zeros(9), group_size=2), "rewards has 9 rows"),
        (reinforce_advantages, dict(rewards=T_([float("nan")])), "rewards contains NaN"),
        (reinforce_advantages, dict(rewards=R8, baseline=float("nan")), "baseline"),
        (
            gae,
            dict(token_rewards=M23, values=torch.ones(2, 4), mask=M23),
            "token_rewards has shape (2, 3) but values has shape (2, 4)",
        ),
        (gae, dict(token_rewards=M23, values=M23, mask=torch.ones(3)), "mask has shape (3,)"),
        (
            gae,
            dict(token_rewards=torch.ones(3), values=torch.ones(3), mask=torch.ones(3)),
            "token_rewards must be 2-D",
        ),
        (
            gae,
            dict(token_rewards=M23, values=M23, mask=T_([[1, 0, 1], [1, 1, 0]])),
            "mask must be right-padded",
        ),
        (
            gae,
            dict(token_rewards=M23, values=M23, mask=M23, gamma=1.5),
            "gamma must be in [0, 1], got 1.5",
        ),
        (gae, dict(token_rewards=M23, values=M23, mask=M23, lam=-0.1), "lam"),
        (whiten, dict(x=M23, mask=torch.ones(3, 2)), "mask has shape (3, 2)"),
        (whiten, dict(x=M23, mask=T_([[1, 0, 0], [0, 0, 0]])), "mask must select at least 2"),
    ],
)
def test_bad_input_raises(fn, kwargs, needle):
    with pytest.raises(ValueError) as err:
        fn(**kwargs)
    assert needle in str(err.value)

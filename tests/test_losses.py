"""Tests of grpo_edu.losses: hand-computed numbers, gradients, padding, TRL parity, bad input."""

import math
import types
from collections import defaultdict

import pytest
import torch

from grpo_edu.losses import (
    aggregate,
    clipped_surrogate,
    entropy_from_logits,
    kl_penalty,
    masked_mean,
    policy_loss,
    value_loss,
)

T_ = torch.tensor
AGGREGATIONS = ["grpo", "bnpo", "dr_grpo", "dapo"]


def close(a, b, **kw):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), **kw)


def batch(seed=0, B=6, T=5, noise=0.3, lengths=(5, 3, 1, 4, 2, 5)):
    """Random logp, old_logp, ref_logp (B, T), advantages (B,), right-padded mask (B, T)."""
    g = torch.Generator().manual_seed(seed)
    logp = -torch.rand(B, T, generator=g) * 2
    old_logp = logp + noise * torch.randn(B, T, generator=g)
    ref_logp = logp + noise * torch.randn(B, T, generator=g)
    advantages = torch.randn(B, generator=g)
    mask = (torch.arange(T) < T_(lengths)[:, None]).float()
    return logp.requires_grad_(), old_logp, ref_logp, advantages, mask


# ------------------------------------------------------------------------------ masked_mean
def test_masked_mean_hand():
    x = T_([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    mask = T_([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    close(masked_mean(x, mask), 7 / 3)  # (1 + 2 + 4) / 3
    close(masked_mean(x, mask, dim=-1), [1.5, 4.0, 0.0])  # empty row: 0 / max(0, 1) = 0
    close(masked_mean(x, mask.bool(), dim=0), [2.5, 2.0, 0.0])


# ------------------------------------------------------------------------ clipped_surrogate
def test_clipped_surrogate_hand_cases():
    # clip_eps = 0.2: clip range [0.8, 1.2]; loss = -min(r A, clip(r) A), d loss / d logp = -A r
    #   r=1.5, A=+1: min(1.5, 1.2)   = 1.2   -> loss -1.2, high clip, grad 0
    #   r=0.5, A=-1: min(-0.5, -0.8) = -0.8  -> loss  0.8, low clip,  grad 0
    #   r=1.5, A=-1: min(-1.5, -1.2) = -1.5  -> loss  1.5, grad -(-1)(1.5) = 1.5
    #   r=0.5, A=+1: min(0.5, 0.8)   = 0.5   -> loss -0.5, grad -0.5
    #   r=1.1, A=+2: min(2.2, 2.2)   = 2.2   -> loss -2.2, grad -2.2
    #   r=0.5, A=0:  loss 0, grad 0, but not counted as clipped (TRL: A < 0 strictly)
    ratio = T_([[1.5, 0.5, 1.5, 0.5, 1.1, 0.5]])
    logp = ratio.log().requires_grad_()
    adv = T_([[1.0, -1.0, -1.0, 1.0, 2.0, 0.0]])
    loss, info = clipped_surrogate(logp, torch.zeros(1, 6), adv, torch.ones(1, 6))
    close(loss, [[-1.2, 0.8, 1.5, -0.5, -2.2, 0.0]])
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    close(grad, [[0.0, 0.0, 1.5, -0.5, -2.2, 0.0]])
    assert info.is_high_clipped.tolist() == [[True, False, False, False, False, False]]
    assert info.is_low_clipped.tolist() == [[False, True, False, False, False, False]]
    assert info.is_region_clipped.tolist() == [[True, True, False, False, False, False]]
    close(info.ratio, ratio)


@pytest.mark.parametrize("clip_eps, clip_eps_high", [(0.2, None), (0.2, 0.28), (0.1, 0.5)])
def test_gradient_zero_exactly_where_clip_active(clip_eps, clip_eps_high):
    g = torch.Generator().manual_seed(1)
    logp = (-torch.rand(16, 12, generator=g) * 3).requires_grad_()
    old_logp = logp.detach() + 0.4 * torch.randn(16, 12, generator=g)
    adv = torch.randn(16, 12, generator=g)  # never exactly 0
    loss, info = clipped_surrogate(logp, old_logp, adv, torch.ones(16, 12), clip_eps, clip_eps_high)
    (grad,) = torch.autograd.grad(loss.sum(), logp)
    r = (logp - old_logp).exp().detach()
    hi = 1 + (clip_eps if clip_eps_high is None else clip_eps_high)
    active = ((adv > 0) & (r > hi)) | ((adv < 0) & (r < 1 - clip_eps))
    assert 0 < active.sum() < active.numel()  # both cases occur
    assert torch.equal(info.is_region_clipped, active)
    assert (grad[active] == 0).all()
    assert (grad[~active] != 0).all()
    close(grad[~active], (-adv * r)[~active])


def test_clip_eps_high_asymmetry():
    # r = 1.25, A = +1: symmetric clip 0.2 caps at 1.2 (loss -1.2, grad 0);
    #                  clip-higher 0.28 allows up to 1.28 (loss -1.25, grad -1.25).
    # r = 0.75, A = -1: the low side is 1 - 0.2 = 0.8 either way: loss 0.8, grad 0.
    logp = T_([[1.25, 0.75]]).log().requires_grad_()
    args = (torch.zeros(1, 2), T_([[1.0, -1.0]]), torch.ones(1, 2))
    for eps_high, expected, expected_grad in [
        (None, [-1.2, 0.8], [0, 0]),
        (0.28, [-1.25, 0.8], [-1.25, 0]),
    ]:
        loss, _ = clipped_surrogate(logp, *args, clip_eps=0.2, clip_eps_high=eps_high)
        close(loss, [expected])
        (grad,) = torch.autograd.grad(loss.sum(), logp)
        close(grad, [expected_grad], check_dtype=False)


def test_delta_caps_negative_advantage_ratio():
    # r = 3, A = -1: -min(-3, -1.2) = 3 without delta; delta = 2 caps r: -min(-2, -1.2) = 2, grad 0.
    # r = 3, A = +1: -min(3, 1.2) = -1.2 either way.
    logp = T_([[3.0, 3.0]]).log().requires_grad_()
    args = (torch.zeros(1, 2), T_([[-1.0, 1.0]]), torch.ones(1, 2))
    close(clipped_surrogate(logp, *args)[0], [[3.0, -1.2]])
    loss, info = clipped_surrogate(logp, *args, delta=2.0)
    close(loss, [[2.0, -1.2]])
    assert (torch.autograd.grad(loss.sum(), logp)[0] == 0).all()
    close(info.ratio, [[3.0, 3.0]])  # info keeps the uncapped ratio


def test_sequence_level_gspo_hand():
    # log r = masked mean of logp - old_logp = (0.2 + 0.4) / 2 = 0.3 (the 5.0 is padding)
    # r = e^0.3 = 1.349859; A=+1: -min(1.3499, 1.2) = -1.2;  A=-1: -min(-1.3499, -1.2) = 1.349859
    logp = T_([[0.2, 0.4, 5.0], [0.2, 0.4, 5.0]])
    mask = T_([[1, 1, 0], [1, 1, 0]])
    loss, info = clipped_surrogate(logp, torch.zeros(2, 3), T_([1.0, -1.0]), mask, level="sequence")
    r = math.exp(0.3)
    close(info.ratio, [[r], [r]])
    close(loss, [[-1.2] * 3, [r] * 3])
    assert info.is_high_clipped.tolist() == [[True], [False]]


def test_sequence_advantages_broadcast_like_per_token():
    logp, old_logp, _, adv, mask = batch(2)
    a, _ = clipped_surrogate(logp, old_logp, adv, mask)
    b, _ = clipped_surrogate(logp, old_logp, adv[:, None].expand(-1, 5), mask)
    assert torch.equal(a, b)


# ------------------------------------------------------------------------------ kl_penalty
@pytest.mark.parametrize(
    "estimator, expected",
    [
        # pi = 0.5, pi_ref = 0.25: log_ratio = log(0.25 / 0.5) = -ln 2 = -0.693147
        ("k1", math.log(2)),  # -log_ratio
        ("k2", 0.5 * math.log(2) ** 2),  # 0.240227
        ("k3", 0.5 + math.log(2) - 1),  # e^(-ln 2) + ln 2 - 1 = 0.193147
    ],
)
def test_kl_hand(estimator, expected):
    close(kl_penalty(T_([[math.log(0.5)]]), T_([[math.log(0.25)]]), estimator), [[expected]])


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_zero_at_equality_and_sign(estimator):
    g = torch.Generator().manual_seed(3)
    logp = -torch.rand(8, 9, generator=g) * 4
    assert (kl_penalty(logp, logp, estimator) == 0).all()
    kl = kl_penalty(logp, logp + torch.randn(8, 9, generator=g), estimator)
    if estimator == "k1":
        assert (kl < 0).any()  # k1 is unbiased but not non-negative per token
    else:
        assert (kl >= 0).all()


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_unbiased_estimators_average_to_exact_kl(estimator):
    g = torch.Generator().manual_seed(4)
    p = torch.softmax(torch.randn(6, generator=g), 0)  # pi
    q = torch.softmax(torch.randn(6, generator=g), 0)  # pi_ref
    exact = (p * (p / q).log()).sum()  # KL(pi || pi_ref)
    x = torch.multinomial(p, 200_000, replacement=True, generator=g)  # samples from pi
    kl = kl_penalty(p.log()[x][None], q.log()[x][None], estimator)
    assert abs(kl.mean() - exact) < 0.02 * max(exact.item(), 0.1)


# ------------------------------------------------------------------------------- aggregate
# Per-token loss rows [1, 2, 3, 4] (length 4) and [10, 20, 30, 40] (length 2):
#   grpo    = mean(10/4, 30/2)  = mean(2.5, 15) = 8.75
#   bnpo    = (10 + 30) / 6     = 6.6667
#   dapo    = same as bnpo on one process
#   dr_grpo = 40 / (B * max_completion_length) = 40 / (2 * 5) = 4.0
@pytest.mark.parametrize(
    "mode, expected", [("grpo", 8.75), ("bnpo", 40 / 6), ("dapo", 40 / 6), ("dr_grpo", 4.0)]
)
def test_aggregate_hand(mode, expected):
    loss = T_([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]])
    mask = T_([[1, 1, 1, 1], [1, 1, 0, 0]])
    close(aggregate(loss, mask, mode, max_completion_length=5), expected)


def test_aggregate_empty_row_counts_as_one():
    loss, mask = T_([[2.0, 4.0], [9.0, 9.0]]), T_([[1, 1], [0, 0]])
    close(aggregate(loss, mask, "grpo"), 1.5)  # mean(3, 0 / max(0, 1))
    close(aggregate(loss * 0, mask * 0, "bnpo"), 0.0)  # 0 / max(0, 1), not NaN


@pytest.mark.parametrize("mode", AGGREGATIONS)
@pytest.mark.parametrize("level", ["token", "sequence"])
def test_padding_changes_nothing(mode, level):
    logp, old_logp, ref_logp, adv, mask = batch(5)
    kw = dict(level=level, kl_coef=0.04, aggregation=mode, max_completion_length=8)
    loss, _ = policy_loss(logp, old_logp, adv, mask, ref_logp=ref_logp, **kw)
    (grad,) = torch.autograd.grad(loss, logp)

    g = torch.Generator().manual_seed(6)
    B, T = mask.shape
    junk = lambda: torch.randn(B, T + 3, generator=g) * 3  # noqa: E731
    wide_mask = torch.cat([mask, torch.zeros(B, 3)], 1)  # (B, T + 3), 3 padding columns
    keep = wide_mask.bool()
    logp2 = torch.where(
        keep, torch.cat([logp.detach(), torch.zeros(B, 3)], 1), junk()
    ).requires_grad_()
    old2 = torch.where(keep, torch.cat([old_logp, torch.zeros(B, 3)], 1), junk())
    ref2 = torch.where(keep, torch.cat([ref_logp, torch.zeros(B, 3)], 1), junk())
    loss2, _ = policy_loss(logp2, old2, adv, wide_mask, ref_logp=ref2, **kw)
    (grad2,) = torch.autograd.grad(loss2, logp2)
    close(loss2, loss)
    close(grad2[:, :T], grad)
    assert (grad2[~keep] == 0).all()


# ----------------------------------------------------------------------------- policy_loss
def test_policy_loss_is_surrogate_plus_kl():
    logp, old_logp, ref_logp, adv, mask = batch(7)
    surrogate, _ = clipped_surrogate(logp, old_logp, adv, mask)
    k3 = kl_penalty(logp, ref_logp, "k3")
    loss, info = policy_loss(logp, old_logp, adv, mask)
    close(loss, aggregate(surrogate, mask))
    assert info.per_token_kl is None
    loss, info = policy_loss(logp, old_logp, adv, mask, ref_logp=ref_logp, kl_coef=0.1)
    close(loss, aggregate(surrogate + 0.1 * k3, mask))
    close(info.per_token_kl, k3)
    loss, info = policy_loss(
        logp, old_logp, adv, mask, ref_logp=ref_logp, kl_coef=0.1, kl_bias_correction=True
    )
    ratio = (logp - old_logp).exp()
    close(info.per_token_kl, k3 * ratio)
    close(loss, aggregate(surrogate + 0.1 * k3 * ratio, mask))
    loss, info = policy_loss(logp, old_logp, adv, mask, ref_logp=ref_logp)  # kl_coef=0: logged only
    close(loss, aggregate(surrogate, mask))
    close(info.per_token_kl, k3)


class _Accelerator:
    num_processes = 1

    def gather(self, x):
        return x

    def reduce(self, x, reduction="sum"):
        return x


def trl_compute_loss(logp, old_logp, adv, mask, ref_logp, *, loss_type, level, beta, bias, **cfg):
    """Run TRL 1.16's real ``GRPOTrainer._compute_loss`` on given log-probs, with a stand-in self."""
    trainer = pytest.importorskip("trl.trainer.grpo_trainer").GRPOTrainer
    B, T = logp.shape
    fake = types.SimpleNamespace(
        top_entropy_quantile=1.0,
        off_policy_mask_threshold=None,
        importance_sampling_level=level,
        beta=beta,
        loss_type=loss_type,
        epsilon_low=cfg["eps"],
        epsilon_high=cfg["eps_high"],
        use_vllm=False,
        args=types.SimpleNamespace(
            use_bias_correction_kl=bias, delta=cfg["delta"], steps_per_generation=1
        ),
        model=types.SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1,
        _entropy_bonus_enabled=False,
        aux_loss_enabled=False,
        accelerator=_Accelerator(),
        _metrics={"train": defaultdict(list)},
        max_completion_length=cfg["max_len"],
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
    )
    inputs = dict(
        prompt_ids=torch.zeros(B, 1, dtype=torch.long),
        prompt_mask=torch.ones(B, 1, dtype=torch.long),
        completion_ids=torch.zeros(B, T, dtype=torch.long),
        completion_mask=mask.long(),
        advantages=adv,
        old_per_token_logps=old_logp,
        ref_per_token_logps=ref_logp,
        num_items_in_batch=mask.sum(),
    )
    loss = trainer._compute_loss(fake, None, inputs)
    return loss, {k: v[0] for k, v in fake._metrics["train"].items()}


@pytest.mark.parametrize("loss_type", AGGREGATIONS)
@pytest.mark.parametrize(
    "level, beta, bias, eps_high, delta",
    [
        ("token", 0.04, False, None, None),
        ("token", 0.04, True, 0.28, 1.5),
        ("sequence", 0.0, False, 0.28, None),
        ("sequence", 0.1, True, None, 2.0),
    ],
)
def test_parity_with_trl_compute_loss(loss_type, level, beta, bias, eps_high, delta):
    logp, old_logp, ref_logp, adv, mask = batch(8, noise=0.3 if level == "token" else 0.8)
    trl_loss, metrics = trl_compute_loss(
        logp,
        old_logp,
        adv,
        mask,
        ref_logp,
        loss_type=loss_type,
        beta=beta,
        eps=0.2,
        eps_high=0.2 if eps_high is None else eps_high,
        delta=delta,
        level=level,
        bias=bias,
        max_len=7,
    )
    loss, info = policy_loss(
        logp,
        old_logp,
        adv,
        mask,
        clip_eps=0.2,
        clip_eps_high=eps_high,
        delta=delta,
        level=level,
        ref_logp=ref_logp,
        kl_coef=beta,
        kl_bias_correction=bias,
        aggregation=loss_type,
        max_completion_length=7,
    )
    close(loss, trl_loss)
    close(torch.autograd.grad(loss, logp)[0], torch.autograd.grad(trl_loss, logp)[0])
    ours = info.clip_metrics(mask)
    assert ours == pytest.approx({k: v for k, v in metrics.items() if k.startswith("clip_ratio")})
    assert ours["clip_ratio/region_mean"] > 0  # the comparison covers clipped tokens


# ------------------------------------------------------------------------------ value_loss
def test_value_loss_hand():
    # c = 0.2. pos 0: V=1, V_old=.5 -> V_clip=.7; R=0: (1-0)^2 = 1 > (.7-0)^2 = .49 -> 1, unclipped
    #          pos 1: V=2.5, V_old=2 -> V_clip=2.2; R=3: (2.5-3)^2 = .25 < (2.2-3)^2 = .64 -> .64, clipped
    #          pos 2: padding (garbage)
    # loss = 0.5 * (1 + .64) / 2 = 0.41; clipfrac = 1/2
    values = T_([[1.0, 2.5, 100.0]])
    old_values, returns, mask = T_([[0.5, 2.0, -7.0]]), T_([[0.0, 3.0, 55.0]]), T_([[1, 1, 0]])
    loss, clipfrac = value_loss(values, old_values, returns, mask, clip_range_value=0.2)
    close(loss, 0.41)
    close(clipfrac, 0.5)
    loss, clipfrac = value_loss(values, old_values, returns, mask, clip_range_value=10.0)
    close(loss, 0.5 * (1 + 0.25) / 2)  # nothing clipped: plain 0.5 * squared error
    close(clipfrac, 0.0)


# --------------------------------------------------------------------------------- entropy
def test_entropy_from_logits():
    close(entropy_from_logits(torch.zeros(2, 3, 4)), torch.full((2, 3), math.log(4)))
    logits = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(9))
    close(entropy_from_logits(logits), torch.distributions.Categorical(logits=logits).entropy())
    peaked = T_([[[1e4, 0.0, 0.0], [1e4, 1e4, -1e4]]])  # one-hot; two-way tie
    close(entropy_from_logits(peaked), [[0.0, math.log(2)]])


# ------------------------------------------------------------------------------- bad input
L23, L24 = torch.zeros(2, 3), torch.zeros(2, 4)
A2, M23 = torch.zeros(2), torch.ones(2, 3)


@pytest.mark.parametrize(
    "fn, kwargs, needle",
    [
        (clipped_surrogate, dict(clip_eps=0.0), "clip_eps must be > 0, got 0.0"),
        (clipped_surrogate, dict(clip_eps_high=-0.1), "clip_eps_high must be > 0, got -0.1"),
        (clipped_surrogate, dict(delta=1.1), "delta must be > 1 + clip_eps_high"),
        (
            clipped_surrogate,
            dict(level="seq"),
            "level must be one of ('token', 'sequence'), got 'seq'",
        ),
        (
            clipped_surrogate,
            dict(old_logp=L24),
            "logp has shape (2, 3) but old_logp has shape (2, 4)",
        ),
        (clipped_surrogate, dict(mask=torch.ones(3, 3)), "but mask has shape (3, 3)"),
        (
            clipped_surrogate,
            dict(advantages=torch.zeros(3)),
            "advantages must have shape (2,) or (2, 3)",
        ),
        (policy_loss, dict(kl_coef=0.04), "ref_logp is required"),
        (policy_loss, dict(kl_coef=-0.1, ref_logp=L23), "kl_coef must be >= 0"),
        (policy_loss, dict(ref_logp=L24), "ref_logp has shape (2, 4)"),
        (
            policy_loss,
            dict(ref_logp=L23, kl_estimator="k4"),
            "estimator must be one of ('k1', 'k2', 'k3')",
        ),
        (
            policy_loss,
            dict(aggregation="mean"),
            "mode must be one of ('grpo', 'bnpo', 'dr_grpo', 'dapo')",
        ),
        (policy_loss, dict(aggregation="dr_grpo"), "max_completion_length must be an int"),
        (
            policy_loss,
            dict(aggregation="dr_grpo", max_completion_length=2),
            "max_completion_length must be >= ",
        ),
        (value_loss, dict(clip_range_value=0.0), "clip_range_value must be > 0"),
        (value_loss, dict(returns=L24), "values has shape (2, 3) but returns has shape (2, 4)"),
        (entropy_from_logits, dict(logits=T_(1.0)), "logits"),
    ],
)
def test_bad_input_raises(fn, kwargs, needle):
    names = fn.__code__.co_varnames[: fn.__code__.co_argcount + fn.__code__.co_kwonlyargcount]
    defaults = dict(
        logp=L23, old_logp=L23, advantages=A2, mask=M23, values=L23, old_values=L23, returns=L23
    )
    args = {k: v for k, v in defaults.items() if k in names} | kwargs
    with pytest.raises(ValueError) as err:
        fn(**args)
    assert needle in str(err.value)

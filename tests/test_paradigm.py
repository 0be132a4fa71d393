"""DeepSeekMath's unified paradigm: each method's gradient coefficient pinned on hand-made
batches, online RFT as GRPO with a 0/1 coefficient, the data sources, and the trainer wiring.

The gradient coefficient of a loss L is read off autograd: the paradigm writes every gradient as
mean_i 1/|o_i| sum_t GC_it grad logp_it, so GC_it = -N |o_i| dL/dlogp_it, with N the number of
data items (answers; pairs for DPO).
"""

from __future__ import annotations

import difflib
import inspect
import math
from dataclasses import replace
from functools import partial

import pytest
import torch

from grpo_edu.algorithms import (
    DPOConfig,
    GRPOConfig,
    RFTConfig,
    SFTConfig,
    check_paradigm_config,
    completion_logprobs,
    dpo_coefficients,
    dpo_loss,
    dpo_step,
    grpo_coefficients,
    grpo_step,
    likelihood_loss,
    pair_margins,
    policy_loss,
    preference_pairs,
    reference_rollout,
    rft_coefficients,
    rft_step,
    select_rows,
    sft_step,
    split_rollout,
)
from grpo_edu.algorithms.paradigm_steps import UPDATE_KEYS, _likelihood_step
from grpo_edu.models import frozen_copy, load_policy
from grpo_edu.rollout import generate_rollout
from grpo_edu.tasks import get_task
from grpo_edu.trainer import ALGORITHMS, TrainConfig, build_state, check_train_config, train
from grpo_edu.trainer.config import SOURCES
from grpo_edu.trainer.loop import make_source


def close(a, b, **kw):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), **kw)


def read_coefficients(loss: torch.Tensor, logp: torch.Tensor, mask: torch.Tensor, n_items: int):
    """GC_it = -N |o_i| dL/dlogp_it (0 on padding)."""
    (grad,) = torch.autograd.grad(loss, logp)
    return -n_items * mask.sum(-1, keepdim=True) * grad * mask


MASK = torch.tensor([[1.0, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]])  # (4, 4)


def _logp(seed=0, shape=(4, 4)):
    g = torch.Generator().manual_seed(seed)
    return (-torch.rand(shape, generator=g) * 3).requires_grad_()  # (B, T) log-probs < 0


# ------------------------------------------------------------------------- the coefficients
def test_sft_coefficient_is_one_on_every_real_token():
    logp = _logp()
    loss, _ = likelihood_loss(logp, logp.detach(), torch.ones(4), MASK)
    close(read_coefficients(loss, logp, MASK, 4), MASK)  # GC = 1, 0 on padding


def test_rft_coefficient_is_exactly_the_0_1_reward():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0])
    logp = _logp(1)
    coefficients = rft_coefficients(rewards)
    assert torch.equal(coefficients, rewards)  # with 0/1 rewards and threshold 1: the reward
    loss, info = likelihood_loss(logp, logp.detach(), coefficients, MASK)
    close(read_coefficients(loss, logp, MASK, 4), rewards[:, None] * MASK)
    assert torch.equal(info.is_zero_gradient[:, 0], rewards == 0)  # wrong answers: no push
    hand = -(logp[0, :3].sum() / 3 + logp[3, :1].sum()) / 4  # -1/B sum_kept 1/|o| sum_t logp
    close(loss, hand)


def test_rft_threshold_on_partial_rewards():
    rewards = torch.tensor([1.0, 0.75, 0.5, 0.0])
    close(rft_coefficients(rewards), [1.0, 0, 0, 0])
    close(rft_coefficients(rewards, threshold=0.5), [1.0, 1, 1, 0])


def test_grpo_coefficient_is_the_advantage_plus_the_kl_gradient():
    """GC = A_i + beta (pi_ref / pi - 1), read off GRPO's real loss on-policy (ratio 1)."""
    logp, ref_logp = _logp(2), _logp(3).detach()
    advantages = torch.tensor([1.2, -0.4, 0.0, -0.8])
    loss, _ = policy_loss(logp, logp.detach(), advantages, MASK, ref_logp=ref_logp, kl_coef=0.04)
    expected = grpo_coefficients(advantages, logp.detach(), ref_logp, 0.04) * MASK
    close(read_coefficients(loss, logp, MASK, 4), expected)
    close(grpo_coefficients(advantages, logp.detach()), advantages[:, None].expand(4, 4))


def test_dpo_loss_on_one_hand_computed_pair():
    logp = torch.tensor([[-0.5, -0.5, 0.0], [-2.0, -1.0, -1.0]], requires_grad=True)
    ref_logp = torch.tensor([[-1.0, -1.0, 0.0], [-1.0, -1.0, -1.0]])
    mask = torch.tensor([[1.0, 1, 0], [1, 1, 1]])
    # Delta+ = (-1) - (-2) = 1, Delta- = (-4) - (-3) = -1, margin 2
    loss, info = dpo_loss(logp, logp.detach(), ref_logp, mask, beta=0.5)
    close(loss, -math.log(1 / (1 + math.exp(-1.0))))  # -log sigmoid(0.5 * 2)
    close(pair_margins(logp.detach(), ref_logp, mask), [2.0])
    w = 0.5 / (1 + math.exp(1.0))  # beta sigmoid(-beta m)
    close(info.coefficients, [w * 2, -w * 3])  # times |o|: log-ratios are sums
    normalized, _ = dpo_loss(logp, logp.detach(), ref_logp, mask, beta=0.5, length_normalized=True)
    m = 1 / 2 - (-1 / 3)  # Delta / |o|
    close(normalized, -math.log(1 / (1 + math.exp(-0.5 * m))))


@pytest.mark.parametrize("length_normalized", [False, True])
def test_dpo_coefficients_match_the_gradient_of_its_loss(length_normalized):
    logp, ref_logp = _logp(4), _logp(5).detach()
    loss, info = dpo_loss(
        logp, logp.detach(), ref_logp, MASK, beta=0.3, length_normalized=length_normalized
    )
    got = read_coefficients(loss, logp, MASK, n_items=2)  # N = 2 pairs
    close(got, info.coefficients[:, None] * MASK)
    expected = dpo_coefficients(logp.detach(), ref_logp, MASK, 0.3, length_normalized)
    close(info.coefficients, expected)
    assert (info.coefficients[0::2] > 0).all() and (info.coefficients[1::2] < 0).all()


def test_dpo_coefficient_at_the_reference_is_half_beta():
    logp = _logp(6).detach()
    gc = dpo_coefficients(logp, logp, MASK, beta=0.2, length_normalized=True)
    close(gc, [0.1, -0.1, 0.1, -0.1])  # beta * sigmoid(0)


def test_preference_pairs_by_hand():
    rewards = torch.tensor([1.0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0])  # three groups of 4
    chosen, rejected = preference_pairs(rewards, 4)
    assert chosen.tolist() == [0, 3, 8] and rejected.tolist() == [2, 1, 11]
    partial_credit = torch.tensor([0.5, 1.0, 0.0, 0.25])
    chosen, rejected = preference_pairs(partial_credit, 4)
    assert chosen.tolist() == [1, 0] and rejected.tolist() == [2, 3]  # best-worst, 2nd-3rd
    assert all(len(x) == 0 for x in preference_pairs(torch.ones(8), 8))


# --------------------------------------------------------------- online RFT is GRPO with 0/1
@pytest.fixture(scope="module")
def warm():
    policy, tok = load_policy("add2")
    g = torch.Generator().manual_seed(0)
    rollout = generate_rollout(policy, tok, get_task("add2").train[:6], 8, 5, 1.0, g)
    rewards = torch.tensor(
        [float(t.strip() == str(a)) for t, a in zip(rollout.texts, rollout.answers, strict=True)]
    )
    assert 0 < rewards.mean() < 1
    return policy, tok, rollout, rewards


def _param_grads(policy, loss):
    params = list(policy.parameters())
    return torch.autograd.grad(loss, params, allow_unused=True, retain_graph=True)


def test_online_rft_gradient_equals_grpo_with_beta_0_and_indicator_advantages(warm):
    policy, _, rollout, rewards = warm
    mask, old_logp = rollout.completion_mask, rollout.sampling_logp
    indicator = rft_coefficients(rewards)
    logp, _ = completion_logprobs(policy, rollout)
    rft_loss, _ = likelihood_loss(logp, old_logp, indicator, mask)
    grpo_loss, _ = policy_loss(logp, old_logp, indicator, mask, kl_coef=0.0, aggregation="grpo")
    for a, b in zip(_param_grads(policy, rft_loss), _param_grads(policy, grpo_loss), strict=True):
        if a is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)


def test_rft_step_with_grpos_loss_takes_the_same_step(warm):
    """The same update through ``rft_step`` with either loss: the two losses are one gradient."""
    policy, tok, rollout, rewards = warm
    weights = []
    for loss_fn in (likelihood_loss, partial(policy_loss, kl_coef=0.0)):
        model = frozen_copy(policy).requires_grad_(True).train()
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # the step is the gradient
        rft_step(model, policy, optimizer, rollout, rewards, RFTConfig(max_grad_norm=0.0),
                 loss_fn=loss_fn)  # fmt: skip
        weights.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    torch.testing.assert_close(weights[0], weights[1], atol=1e-6, rtol=1e-5)


def test_likelihood_step_reads_as_a_diff_of_grpo_step():
    def body(fn):
        lines = inspect.getsource(fn).splitlines()
        quotes = [i for i, line in enumerate(lines) if line.strip().startswith('"""')]
        return [line.strip() for line in lines[quotes[-1] + 1 :]]

    grpo, likelihood = body(grpo_step), body(_likelihood_step)
    diff = difflib.unified_diff(grpo, likelihood, n=0, lineterm="")
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    assert len(changed) <= 16, changed  # of ~25 lines each
    added = " ".join(line for line in changed if line.startswith("+"))
    assert "coefficients" in added and "kl_coef" not in added


# ------------------------------------------------------------------------------------ steps
def _fresh(policy, lr=1e-4):
    model = frozen_copy(policy).requires_grad_(True).train()
    return model, torch.optim.Adam(model.parameters(), lr=lr)


def test_every_step_reports_grpos_metric_keys(warm):
    policy, tok, rollout, rewards = warm
    model, opt = _fresh(policy)
    keys = list(grpo_step(model, policy, opt, rollout, rewards, GRPOConfig())[0])
    reference = reference_rollout(policy, tok, get_task("add2").train[:8])
    for step, args in [
        (sft_step, (reference, torch.ones(8))),
        (rft_step, (rollout, rewards)),
        (dpo_step, (rollout, rewards)),
    ]:
        model, opt = _fresh(policy)
        metrics, _ = step(model, policy, opt, *args)
        assert list(metrics) == keys, step.__name__
        assert math.isnan(metrics["loss/value"]) and math.isnan(metrics["clip_ratio/region_mean"])
        assert math.isfinite(metrics["loss/policy"]) and math.isfinite(metrics["kl"])
    assert set(UPDATE_KEYS) <= set(keys)


def test_dpo_step_without_a_pair_changes_nothing(warm):
    policy, _, rollout, _ = warm
    model, opt = _fresh(policy)
    before = [p.detach().clone() for p in model.parameters()]
    metrics, traces = dpo_step(model, policy, opt, rollout, torch.ones(48))
    assert traces == [] and math.isnan(metrics["loss/policy"]) and metrics["reward"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_dpo_step_trains_on_the_pairs_and_raises_the_margin(warm):
    policy, _, rollout, rewards = warm
    model, opt = _fresh(policy)
    chosen, rejected = preference_pairs(rewards, 8)
    pairs = select_rows(rollout, torch.stack([chosen, rejected], 1).flatten(), 2)
    config = DPOConfig(beta=0.5, mu=3)
    _, traces = dpo_step(model, policy, opt, rollout, rewards, config, trace=True)
    assert len(traces) == 3 and len(traces[0].rows) == 2 * len(chosen)
    assert traces[0].texts == pairs.texts
    with torch.no_grad():
        logp, _ = completion_logprobs(model, pairs)
        ref = completion_logprobs(policy, pairs)[0]
    assert pair_margins(logp, ref, pairs.completion_mask).mean() > 0  # o+ up against o-


def test_sft_step_raises_the_likelihood_of_the_reference_answers(warm):
    policy, tok, _, _ = warm
    model, opt = _fresh(policy)
    batch = reference_rollout(model, tok, get_task("add2").train[:32])
    before = completion_logprobs(model, batch)[0].sum().item()
    for _ in range(3):
        sft_step(model, policy, opt, batch, torch.ones(32), SFTConfig())
    assert completion_logprobs(model, batch)[0].sum().item() > before


# ------------------------------------------------------------------------------------- data
def test_reference_rollout_is_the_answer_and_eos(warm):
    policy, tok, _, _ = warm
    problems = get_task("sub2").train[:5]
    r = reference_rollout(policy, tok, problems)
    assert r.texts == [str(p.answer) for p in problems]
    assert r.completion_mask.sum(-1).tolist() == [len(str(p.answer)) + 1 for p in problems]
    close(r.sampling_logp, completion_logprobs(policy, r)[0].detach())
    assert r.group_size == 1 and not r.truncated.any()


def test_selected_rows_read_like_the_full_rollout(warm):
    policy, _, rollout, _ = warm
    rows = torch.tensor([9, 14, 3, 0])  # two pairs of two groups: (9, 14) group 1, (3, 0) group 0
    part = select_rows(rollout, rows, group_size=2)
    full = completion_logprobs(policy, rollout)[0][rows]
    sub = completion_logprobs(policy, part)[0]
    torch.testing.assert_close(sub, full[:, : sub.shape[1]], atol=1e-5, rtol=1e-5)
    steps = split_rollout(rollout, 16)
    assert [s.texts for s in steps] == [rollout.texts[i : i + 16] for i in (0, 16, 32)]
    with pytest.raises(ValueError, match="whole groups"):
        split_rollout(rollout, 12)


def test_offline_data_is_sampled_from_the_warm_start_not_the_trained_policy():
    """RFT's batches do not change when the policy does: they come from the frozen warm start."""
    config = TrainConfig(algorithm="rft", steps=3, n_prompts=2, group_size=4)
    texts = []
    for wreck in (False, True):
        policy, tok = load_policy("add2")
        state = build_state(config, policy, tok)
        task = get_task("add2")
        order = list(range(len(task.train)))
        batch = make_source(state, config, task, order, 5, torch.Generator().manual_seed(0))
        first = batch(0)[0].texts
        if wreck:
            with torch.no_grad():
                for p in state.policy.parameters():
                    p.mul_(0.0)  # a policy that says nothing useful any more
        texts.append(first + batch(1)[0].texts + batch(2)[0].texts)
    assert texts[0] == texts[1]


def test_sft_reads_one_answer_for_each_of_n_prompts_times_g_problems():
    config = TrainConfig(algorithm="sft", steps=2, n_prompts=2, group_size=4)
    policy, tok = load_policy("add2")
    state = build_state(config, policy, tok)
    task = get_task("add2")
    batch = make_source(state, config, task, list(range(100)), 5, None)
    rollout, rewards = batch(1)
    assert rollout.prompts == [p.prompt for p in task.train[8:16]] and rewards.tolist() == [1.0] * 8


# ---------------------------------------------------------------------------------- trainer
def test_every_algorithm_trains_through_the_same_loop_with_the_same_columns():
    columns = None
    assert set(SOURCES) == set(ALGORITHMS)
    for algorithm in ALGORITHMS:
        config = TrainConfig(algorithm=algorithm, steps=2, n_prompts=4, group_size=4, lr=1e-3)
        policy, tok = load_policy("add2")
        before = torch.cat([p.detach().flatten().clone() for p in policy.parameters()])
        result = train(config, policy, tok, progress=False)
        after = torch.cat([p.detach().flatten() for p in result.policy.parameters()])
        assert not torch.equal(before, after), algorithm
        assert columns is None or list(result.metrics.columns) == columns, algorithm
        columns = list(result.metrics.columns)
        assert result.metrics["completions_seen"].tolist() == [16, 32]


@pytest.mark.parametrize(
    "config, match",
    [
        (SFTConfig(mu=0), "SFTConfig.mu must be an int >= 1, got 0"),
        (SFTConfig(max_grad_norm=-1.0), "SFTConfig.max_grad_norm must be >= 0"),
        (RFTConfig(threshold=float("nan")), "RFTConfig.threshold must be a finite number"),
        (RFTConfig(threshold="1"), "RFTConfig.threshold must be a number"),
        (RFTConfig(n_minibatches=1.5), "RFTConfig.n_minibatches must be an int"),
        (DPOConfig(beta=0.0), "DPOConfig.beta must be > 0"),
        (DPOConfig(beta=float("inf")), "DPOConfig.beta must be a finite number"),
        (DPOConfig(length_normalized=1), "DPOConfig.length_normalized must be True or False"),
        (GRPOConfig(), "config must be one of SFTConfig, RFTConfig, DPOConfig"),
    ],
)
def test_bad_paradigm_configs_name_the_field(config, match):
    with pytest.raises(ValueError, match=match):
        check_paradigm_config(config)


def test_bad_train_configs_of_the_new_algorithms():
    with pytest.raises(ValueError, match="TrainConfig.algorithm must be one of"):
        check_train_config(TrainConfig(algorithm="dpo2"))
    with pytest.raises(ValueError, match="DPO makes its pairs inside groups"):
        check_train_config(TrainConfig(algorithm="dpo", group_size=1))
    with pytest.raises(ValueError, match="RFTConfig.mu"):
        check_train_config(TrainConfig(algorithm="online_rft", rft=RFTConfig(mu=0)))
    check_train_config(replace(TrainConfig(algorithm="sft"), group_size=1))  # SFT: no groups


def test_bad_tensors_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="coefficients must have shape"):
        likelihood_loss(_logp(), _logp().detach(), torch.ones(3), MASK)
    with pytest.raises(ValueError, match="even number of rows"):
        pair_margins(torch.zeros(3, 2), torch.zeros(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo_loss(_logp(), _logp().detach(), _logp().detach(), MASK, beta=-1.0)
    with pytest.raises(ValueError, match="group_size must be an int >= 2"):
        preference_pairs(torch.ones(4), 1)

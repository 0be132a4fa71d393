"""PPO and GRPO steps on the tiny model: they learn, their metrics are documented, bad input fails clearly."""

from dataclasses import replace

import pytest
import torch

from grpo_edu.accounting import analytic_training_state, measure_training_state
from grpo_edu.algorithms import (
    GRPOConfig,
    PPOConfig,
    grpo_step,
    policy_forward,
    ppo_step,
    ppo_token_rewards,
)
from grpo_edu.models import build_model, n_params
from grpo_edu.rollout import generate_rollout
from grpo_edu.tasks import get_task
from grpo_edu.tokenizer import build_tokenizer
from grpo_edu.trainer import (
    METRICS,
    TrainConfig,
    build_state,
    check_train_config,
    lr_scheduler,
    train,
)


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def _rollout(policy, tok, n_prompts=4, group_size=4, seed=0, task="chain3"):
    problems = get_task(task).train[:n_prompts]
    gen = torch.Generator().manual_seed(seed)
    return generate_rollout(policy, tok, problems, group_size, 5, 1.0, gen)


def _state(algorithm, tok, lr=1e-3):
    return build_state(TrainConfig(algorithm=algorithm, lr=lr), build_model(seed=1), tok)


def _rewards(rollout):
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 2, (len(rollout.texts),), generator=g).float()


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _changed(before, model):
    return any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_grpo_step_changes_weights_and_reports_documented_metrics(tok):
    st = _state("grpo", tok)
    rollout = _rollout(st.policy, tok)
    before = _weights(st.policy)
    metrics, traces = grpo_step(st.policy, st.ref_model, st.optimizer, rollout, _rewards(rollout))
    assert _changed(before, st.policy)
    assert not _changed(_weights(st.ref_model), st.ref_model)
    assert set(metrics) <= set(METRICS)
    finite = {k: v for k, v in metrics.items() if k not in ("loss/value", "value/clipfrac")}
    assert all(torch.isfinite(torch.tensor(v)) for v in finite.values()), metrics
    assert traces == []


def test_ppo_step_trains_policy_and_critic(tok):
    st = _state("ppo", tok)
    rollout = _rollout(st.policy, tok, n_prompts=16, group_size=1)
    policy_before, critic_before = _weights(st.policy), _weights(st.critic)
    metrics, _ = ppo_step(
        st.policy, st.critic, st.ref_model, st.optimizer, rollout, _rewards(rollout)
    )
    assert _changed(policy_before, st.policy) and _changed(critic_before, st.critic)
    assert set(metrics) <= set(METRICS)
    assert all(v == v for k, v in metrics.items() if k != "frac_reward_zero_std"), metrics


def test_first_update_is_on_policy_and_later_iterations_clip(tok):
    """Iteration 0: ratio == 1 exactly (sampling and training log-probs agree). Iteration 2 of a
    large-lr mu=3 step is off-policy, so the ratio moves and some tokens are clipped."""
    st = _state("grpo", tok, lr=3e-2)
    rollout = _rollout(st.policy, tok)
    config = GRPOConfig(mu=3, clip_eps=0.1)
    _, traces = grpo_step(
        st.policy, st.ref_model, st.optimizer, rollout, _rewards(rollout), config, trace=True
    )
    assert len(traces) == 3
    first, last = traces[0], traces[-1]
    torch.testing.assert_close(first.ratio * first.mask, first.mask, atol=1e-5, rtol=0)
    assert ((last.ratio - 1).abs() * last.mask).max() > 0.1
    assert last.is_clipped.any()


def test_trace_has_every_tensor_of_the_update(tok):
    st = _state("ppo", tok)
    rollout = _rollout(st.policy, tok, n_prompts=8, group_size=1)
    _, (t,) = ppo_step(
        st.policy, st.critic, st.ref_model, st.optimizer, rollout, _rewards(rollout), trace=True
    )
    B, T = rollout.completion_ids.shape
    for name in (
        "mask",
        "logp",
        "old_logp",
        "ref_logp",
        "ratio",
        "per_token_loss",
        "kl",
        "entropy",
        "advantages",
        "values",
        "old_values",
        "returns",
        "token_rewards",
    ):
        assert getattr(t, name).shape == (B, T), name
    assert len(t.tokens) == B and all(len(row) == T for row in t.tokens)
    assert t.grad_norm > 0


def test_grpo_minibatches_and_rloo_run(tok):
    st = _state("grpo", tok)
    rollout = _rollout(st.policy, tok)
    config = GRPOConfig(
        mu=2, n_minibatches=2, advantage="rloo", aggregation="dr_grpo", level="sequence"
    )
    gen = torch.Generator().manual_seed(0)
    _, traces = grpo_step(
        st.policy, st.ref_model, st.optimizer, rollout, _rewards(rollout), config, gen, trace=True
    )
    assert len(traces) == 4
    assert sorted(torch.cat([t.rows for t in traces[:2]]).tolist()) == list(range(16))


def test_all_equal_rewards_give_no_policy_gradient_without_kl(tok):
    """A group whose answers all get the same reward carries no GRPO signal: the weights stay."""
    st = _state("grpo", tok)
    rollout = _rollout(st.policy, tok)
    before = _weights(st.policy)
    metrics, _ = grpo_step(
        st.policy, st.ref_model, st.optimizer, rollout, torch.ones(16), GRPOConfig(kl_coef=0.0)
    )
    assert metrics["frac_reward_zero_std"] == 1.0 and metrics["grad_norm"] == 0.0
    assert not _changed(before, st.policy)


def test_policy_forward_matches_sampling_logp(tok):
    policy = build_model(seed=2)
    rollout = _rollout(policy, tok, task="chain3")  # chain3 prompts differ in length: left padding
    logp, entropy = policy_forward(policy, rollout)
    torch.testing.assert_close(logp, rollout.sampling_logp, atol=1e-5, rtol=0)
    assert (entropy >= 0).all()


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(group_size=1), "group_size"),
        (dict(grpo=GRPOConfig(clip_eps=0.0)), "clip_eps"),
        (dict(grpo=GRPOConfig(clip_eps=-0.1)), "clip_eps"),
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(algorithm="a2c"), "algorithm"),
        (dict(grpo=GRPOConfig(aggregation="mean")), "aggregation"),
        (dict(grpo=GRPOConfig(kl_estimator="k4")), "kl_estimator"),
        (dict(algorithm="ppo", ppo=PPOConfig(clip_eps=0.0)), "clip_eps"),
        (dict(lr=0.0), "lr"),
        (dict(lr_schedule="step"), "lr_schedule"),
        (dict(rewards=("correctness",), reward_weights=(1.0, 2.0)), "reward_weights"),
    ],
)
def test_bad_config_is_a_clear_error(change, match):
    with pytest.raises(ValueError, match=match):
        check_train_config(replace(TrainConfig(), **change))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_rewards_are_rejected(tok, bad):
    st = _state("grpo", tok)
    rollout = _rollout(st.policy, tok)
    rewards = _rewards(rollout)
    rewards[3] = bad
    with pytest.raises(ValueError, match=r"NaN or inf at rows \[3\]"):
        grpo_step(st.policy, st.ref_model, st.optimizer, rollout, rewards)


def test_batch_not_divisible_by_group_size(tok):
    st = _state("grpo", tok)
    rollout = _rollout(st.policy, tok)
    rollout.group_size = 3  # 16 rows do not split into groups of 3
    with pytest.raises(ValueError, match="group_size"):
        grpo_step(st.policy, st.ref_model, st.optimizer, rollout, _rewards(rollout))


def test_wrong_number_of_rewards(tok):
    st = _state("grpo", tok)
    rollout = _rollout(st.policy, tok)
    with pytest.raises(ValueError, match=r"rewards must have shape \(16,\)"):
        grpo_step(st.policy, st.ref_model, st.optimizer, rollout, torch.zeros(15))


def test_memory_account_measured_equals_analytic_and_grpo_is_lighter(tok):
    accounts = {}
    for algo in ("grpo", "ppo"):
        cfg = TrainConfig(
            algorithm=algo, steps=1, task="add2", n_prompts=4, group_size=4 if algo == "grpo" else 1
        )
        result = train(cfg, build_model(seed=3), tok, progress=False)
        measured, analytic = result.memory["measured"], result.memory["analytic"]
        assert measured == analytic
        accounts[algo] = measured["total"]
    n = n_params(build_model())
    assert accounts["grpo"] == analytic_training_state(n)["total"] == 20 * n
    assert accounts["grpo"] / accounts["ppo"] <= 0.6


def test_train_returns_documented_dataframe_and_traces(tok):
    cfg = TrainConfig(steps=2, n_prompts=4, group_size=4, task="add2")
    result = train(
        cfg,
        build_model(seed=4),
        tok,
        callback=lambda step, p: {"eval/greedy": 0.5},
        eval_every=2,
        trace_steps=[1],
        progress=False,
    )
    df = result.metrics
    assert list(df["step"]) == [1, 2] and list(df["completions_seen"]) == [16, 32]
    assert set(df.columns) <= set(METRICS)
    assert df["eval/greedy"].isna().tolist() == [True, False]
    assert list(result.traces) == [1]


def test_measure_training_state_counts_tied_weights_once(tok):
    st = _state("grpo", tok)
    m = measure_training_state(st.policy, st.ref_model, st.optimizer)
    assert m["policy"] == 4 * n_params(st.policy)


def test_ppo_token_rewards_by_hand():
    """r_t = -beta * KL_t on every real token, + R on the last real token (EOS or truncation)."""
    old = torch.tensor([[-0.5, -1.0, -0.2], [-0.3, -0.4, -0.6]])
    ref = torch.tensor([[-0.7, -0.9, -5.0], [-0.3, -0.1, -0.2]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])  # row 0 ends at t=1, row 1 truncated
    got = ppo_token_rewards(torch.tensor([1.0, 0.5]), old, ref, mask, kl_coef=0.1)
    expected = torch.tensor(
        [
            [-0.1 * 0.2, -0.1 * -0.1 + 1.0, 0.0],  # k1 = old - ref; nothing after the end
            [-0.1 * 0.0, -0.1 * -0.3, -0.1 * -0.4 + 0.5],
        ]
    )
    torch.testing.assert_close(got, expected)
    k3 = ppo_token_rewards(torch.zeros(2), old, ref, mask, kl_coef=1.0, kl_estimator="k3")
    assert (k3 <= 0).all()  # k3 >= 0, so the penalty never pays
    with pytest.raises(ValueError, match="rewards must have shape"):
        ppo_token_rewards(torch.zeros(3), old, ref, mask, 0.1)
    with pytest.raises(ValueError, match="same"):
        ppo_token_rewards(torch.zeros(2), old, ref[:, :2], mask, 0.1)


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("constant", [1.0, 1.0, 1.0, 1.0]),
        ("linear", [1.0, 0.75, 0.5, 0.25]),
        ("cosine", [1.0, 0.5 + 0.5**1.5, 0.5, 0.5 - 0.5**1.5]),
    ],
)
def test_lr_schedules_decay_to_zero_at_the_last_step(schedule, expected):
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    scheduler = lr_scheduler(opt, TrainConfig(steps=4, lr=2.0, lr_schedule=schedule))
    lrs = []
    for _ in range(4):
        lrs.append(scheduler.get_last_lr()[0])
        opt.step()
        scheduler.step()
    assert lrs == pytest.approx([2.0 * e for e in expected])


def test_readme_metrics_table_is_trainer_metrics():
    """The README's metrics table lists every column of ``trainer.METRICS`` with its meaning."""
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("| column | meaning |") :].split("\n\n")[0].splitlines()[2:]
    cells = [line.replace("\\|", "\0").strip("|").split("|") for line in table]  # \| is a pipe
    documented = {k.strip().strip("`"): v.strip().replace("\0", "|") for k, v in cells}
    assert documented == METRICS

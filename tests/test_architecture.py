"""The layout's promises: the two steps read as a diff, the loss is a parameter, every tensor
follows the model's device, and the checks and fixes that came with the restructuring."""

from __future__ import annotations

import difflib
import inspect
import math
from dataclasses import replace

import pytest
import torch

from grpo_edu import algorithms, losses
from grpo_edu.advantages import gae
from grpo_edu.algorithms import GRPOConfig, PPOConfig, check_config, grpo_step, ppo_step
from grpo_edu.models import build_model, load_policy, resolve_device
from grpo_edu.rollout import generate_rollout
from grpo_edu.tasks import get_task
from grpo_edu.tokenizer import build_tokenizer
from grpo_edu.trainer import TrainConfig, build_state, check_train_config, train


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def _setup(tok, algorithm="grpo", n_prompts=4, group_size=4, max_new_tokens=5):
    st = build_state(TrainConfig(algorithm=algorithm, lr=1e-3), build_model(seed=1), tok)
    problems = get_task("chain3").train[:n_prompts]
    gen = torch.Generator().manual_seed(0)
    rollout = generate_rollout(st.policy, tok, problems, group_size, max_new_tokens, 1.0, gen)
    rewards = torch.randint(0, 2, (n_prompts * group_size,), generator=gen).float()
    return st, rollout, rewards


# ------------------------------------------------------------------------ the two steps as a diff
def _body(fn) -> list[str]:
    lines = inspect.getsource(fn).splitlines()
    quotes = [i for i, line in enumerate(lines) if line.strip().startswith('"""')]
    return lines[quotes[1] + 1 :]  # after the docstring


def test_grpo_and_ppo_steps_differ_only_in_the_documented_places():
    """baseline/advantage, where the KL enters, the critic's loss: nothing else may differ."""
    diff = difflib.unified_diff(_body(grpo_step), _body(ppo_step), n=0, lineterm="")
    changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("---", "+++")]
    grpo_only = [line[1:].strip() for line in changed if line.startswith("-")]
    ppo_only = [line[1:].strip() for line in changed if line.startswith("+")]
    assert len(grpo_only) <= 8 and len(ppo_only) <= 13, changed  # of 25 and 30 lines
    assert any("grpo_advantages" in line for line in grpo_only)
    assert any("ppo_advantages" in line for line in ppo_only)
    assert any("kl_coef" in line for line in grpo_only)  # KL in the loss
    assert any("ppo_token_rewards" in line for line in ppo_only)  # KL in the reward
    assert any("value_loss" in line for line in ppo_only)


def test_both_steps_report_the_same_metric_keys(tok):
    st, rollout, rewards = _setup(tok)
    grpo_metrics, _ = grpo_step(st.policy, st.ref_model, st.optimizer, rollout, rewards)
    st, rollout, rewards = _setup(tok, "ppo")
    ppo_metrics, _ = ppo_step(st.policy, st.critic, st.ref_model, st.optimizer, rollout, rewards)
    assert list(grpo_metrics) == list(ppo_metrics)
    assert math.isnan(grpo_metrics["loss/value"]) and math.isnan(grpo_metrics["value/clipfrac"])
    assert math.isfinite(ppo_metrics["loss/value"])


def test_the_loss_is_a_parameter_of_the_step_and_of_train(tok):
    calls = []

    def counting_loss(*args, **kwargs):
        calls.append(kwargs["kl_coef"])
        return losses.policy_loss(*args, **kwargs)

    st, rollout, rewards = _setup(tok)
    grpo_step(st.policy, st.ref_model, st.optimizer, rollout, rewards, loss_fn=counting_loss)
    assert calls == [0.04]
    cfg = TrainConfig(steps=2, n_prompts=2, group_size=2, grpo=GRPOConfig(mu=2))
    policy, tokenizer = load_policy("add2")
    train(cfg, policy, tokenizer, progress=False, loss_fn=counting_loss)
    assert len(calls) == 1 + 2 * 2


@pytest.mark.parametrize("algorithm", ["grpo", "ppo"])
def test_every_tensor_follows_the_models_device(algorithm):
    """With the default device set to ``meta``, any tensor created without the model's device
    would be a meta tensor and fail at once: training on the CPU model still runs."""
    policy, tokenizer = load_policy("add2")
    cfg = TrainConfig(algorithm=algorithm, steps=2, n_prompts=2, group_size=2)
    cfg = replace(cfg, grpo=GRPOConfig(n_minibatches=2), ppo=PPOConfig(n_minibatches=2))
    with torch.device("meta"):
        result = train(cfg, policy, tokenizer, progress=False)
    assert result.metrics["reward"].notna().all() and result.metrics["kl"].notna().all()


def test_a_device_that_does_not_exist_is_a_clear_error():
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            check_train_config(TrainConfig(device="cuda"))
        with pytest.raises(ValueError, match="sees no CUDA GPU"):
            load_policy("add2", device="cuda")


# ------------------------------------------------------------------ KL at beta = 0, Dr. GRPO
def test_kl_is_measured_without_the_penalty(tok):
    """beta = 0 removes the KL from the loss, not from the measurements."""
    st, rollout, rewards = _setup(tok)
    config = GRPOConfig(kl_coef=0.0, mu=2)
    metrics, traces = grpo_step(
        st.policy, st.ref_model, st.optimizer, rollout, rewards, config, trace=True
    )
    assert traces[-1].kl is not None and traces[-1].kl.max() > 0  # off-policy after update 1
    assert math.isfinite(metrics["kl"]) and metrics["kl"] > 0
    skip = replace(config, measure_kl=False)
    metrics, traces = grpo_step(
        st.policy, st.ref_model, st.optimizer, rollout, rewards, skip, trace=True
    )
    assert math.isnan(metrics["kl"]) and traces[0].kl is None


def test_dr_grpo_divides_by_the_generation_limit_not_the_longest_completion():
    policy, tok = load_policy("add2")  # answers in 2-4 tokens, far below the limit of 12
    st = build_state(TrainConfig(lr=1e-3), policy, tok)
    gen = torch.Generator().manual_seed(0)
    rollout = generate_rollout(policy, tok, get_task("add2").train[:4], 4, 12, 1.0, gen)
    rewards = torch.randint(0, 2, (16,), generator=gen).float()
    T = rollout.completion_ids.shape[1]
    assert T < 12  # every row ended early: the batch is narrower than the limit
    config = GRPOConfig(aggregation="dr_grpo", kl_coef=0.0, scale="none")
    metrics, (t,) = grpo_step(
        st.policy, st.ref_model, st.optimizer, rollout, rewards, config, trace=True
    )
    expected = (t.per_token_loss * t.mask).sum() / (len(rewards) * 12)
    assert metrics["loss/policy"] == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="max_new_tokens is None"):
        grpo_step(
            st.policy,
            st.ref_model,
            st.optimizer,
            replace(rollout, max_new_tokens=None),
            rewards,
            config,
        )


# --------------------------------------------------------------------------- clear errors
@pytest.mark.parametrize(
    "config, match",
    [
        (GRPOConfig(clip_eps=5.0), r"clip_eps must be in \(0, 1\)"),
        (GRPOConfig(clip_eps=1.0), r"clip_eps must be in \(0, 1\)"),
        (GRPOConfig(max_grad_norm=-1.0), "max_grad_norm must be >= 0"),
        (GRPOConfig(kl_coef=float("nan")), "kl_coef must be a finite number"),
        (GRPOConfig(delta=1.1), "delta must be > 1 \\+ clip_eps_high"),
        (GRPOConfig(clip_eps_high=-0.1), "clip_eps_high must be > 0"),
        (GRPOConfig(mu=1.5), "mu must be an int >= 1, got 1.5"),
        (GRPOConfig(scale="batchy"), "scale must be one of"),
        (PPOConfig(gamma=1.5), r"gamma must be in \[0, 1\]"),
        (PPOConfig(max_grad_norm=-0.5), "max_grad_norm must be >= 0"),
    ],
)
def test_bad_algorithm_configs_name_the_field(config, match):
    with pytest.raises(ValueError, match=match):
        check_config(config, 8)


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(steps=1.5), "TrainConfig.steps must be an int >= 1, got 1.5"),
        (dict(n_prompts="2"), "TrainConfig.n_prompts must be an int >= 1, got '2'"),
        (dict(group_size=True), "TrainConfig.group_size must be an int"),
        (dict(seed=-1), "TrainConfig.seed must be an int >= 0"),
        (dict(lr=float("inf")), "TrainConfig.lr must be a finite number"),
        (dict(max_new_tokens=0), "TrainConfig.max_new_tokens must be an int >= 1"),
        (dict(device="tpu"), "device must be"),
    ],
)
def test_bad_train_configs_name_the_field(change, match):
    with pytest.raises(ValueError, match=match):
        check_train_config(replace(TrainConfig(), **change))


@pytest.mark.parametrize("bad", [None, "", 3])
def test_load_policy_rejects_a_missing_name(bad):
    with pytest.raises(ValueError, match="name_or_path must be a shipped checkpoint name"):
        load_policy(bad)


def test_gae_rejects_nan_on_real_tokens_but_not_on_padding():
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    rewards = torch.tensor([[0.0, 1.0, float("nan")]])  # NaN only after the end: fine
    advantages, _ = gae(rewards, torch.zeros(1, 3), mask)
    assert torch.isfinite(advantages).all()
    values = torch.tensor([[0.0, float("nan"), 0.0]])
    with pytest.raises(ValueError, match=r"values \(on real tokens\) contains NaN"):
        gae(torch.zeros(1, 3), values, mask)


# ---------------------------------------------------------------- delta-capped tokens
def test_delta_capped_tokens_have_zero_gradient_and_are_flagged():
    """With two-sided clipping, A < 0 and ratio > delta is constant: flagged, zero gradient."""
    old_logp = torch.zeros(1, 4)
    logp = torch.tensor([[math.log(6.0), math.log(1.1), math.log(0.5), 0.0]], requires_grad=True)
    advantages = torch.tensor([-1.0])
    mask = torch.ones(1, 4)
    per_token, info = losses.clipped_surrogate(logp, old_logp, advantages, mask, delta=4.0)
    per_token.sum().backward()
    assert info.is_delta_capped.tolist() == [[True, False, False, False]]
    assert not info.is_region_clipped[0, 0]  # TRL's clip metrics do not count it
    zero = logp.grad == 0
    assert torch.equal(zero, info.is_zero_gradient), (logp.grad, info.is_zero_gradient)


def test_algorithms_keeps_its_public_names():
    for name in (
        "grpo_step",
        "ppo_step",
        "GRPOConfig",
        "PPOConfig",
        "StepTrace",
        "policy_forward",
        "critic_values",
        "reference_logp",
        "ppo_token_rewards",
        "policy_loss",
    ):
        assert hasattr(algorithms, name), name


def test_the_math_stages_import_no_model_code():
    """masked, advantages, losses and rewards need torch only: the exercise checks import them
    in a student's kernel, and transformers would add seconds to every setup cell."""
    import subprocess
    import sys

    code = (
        "import sys, grpo_edu.masked, grpo_edu.advantages, grpo_edu.losses, grpo_edu.rewards; "
        "assert 'transformers' not in sys.modules, 'transformers was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

"""Tests of grpo_edu.trl_bridge: TRL's GRPOTrainer trains the course's model, offline, with its rewards."""

import functools
import json
import math
import os
import socket
import subprocess
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads it (see `offline` too)

import pytest
import torch

pytest.importorskip("trl")
pytest.importorskip("datasets")

from grpo_edu import trl_bridge  # noqa: E402
from grpo_edu.models import build_model, load_policy  # noqa: E402
from grpo_edu.rewards import correctness_reward  # noqa: E402
from grpo_edu.tasks import get_task, make_problem  # noqa: E402
from grpo_edu.tokenizer import build_tokenizer  # noqa: E402
from grpo_edu.vocab import EOS_ID  # noqa: E402

TINY = dict(num_generations=4, per_device_train_batch_size=8)  # one step: 2 prompts x 4


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No Hub, and any attempt to open a network connection fails the test."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def refuse(self, address, *args):
        raise AssertionError(f"network access attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def length_reward(prompts, completions, **kwargs):
    """A signal even an untrained model's group varies in, so that the weights must move."""
    return [float(len(c)) for c in completions]


def test_task_dataset_columns():
    ds = trl_bridge.task_dataset("add2", "eval", n=5)
    assert ds.column_names == ["prompt", "answer"]
    assert (ds.features["prompt"].dtype, ds.features["answer"].dtype) == ("string", "int64")
    eval_ = get_task("add2").eval[:5]
    assert ds["prompt"] == [p.prompt for p in eval_]
    assert ds["answer"] == [p.answer for p in eval_]
    assert len(trl_bridge.task_dataset("add2")) == len(get_task("add2").train)
    with pytest.raises(ValueError, match="split must be 'train' or 'eval', got 'test'"):
        trl_bridge.task_dataset("add2", "test")
    with pytest.raises(ValueError, match="n must be a positive int or None, got 0"):
        trl_bridge.task_dataset("add2", n=0)


def test_cpu_grpo_config(tmp_path):
    cfg = trl_bridge.cpu_grpo_config(tmp_path, "add2")
    assert (cfg.bf16, cfg.fp16, cfg.gradient_checkpointing) == (False, False, False)
    assert (cfg.loss_type, cfg.beta, cfg.epsilon, cfg.scale_rewards) == ("grpo", 0.04, 0.2, "group")
    assert cfg.use_bias_correction_kl is False and cfg.report_to == []
    assert cfg.generation_batch_size == 128 and cfg.num_generations == 8  # 16 prompts x 8
    assert cfg.max_completion_length == 5  # "198" + EOS + 1 spare
    assert trl_bridge.cpu_grpo_config(tmp_path, "mul2").max_completion_length == 6  # "9801"
    cfg = trl_bridge.cpu_grpo_config(tmp_path, loss_type="dapo", gradient_checkpointing=True)
    assert cfg.loss_type == "dapo" and cfg.gradient_checkpointing is True
    with pytest.raises(ValueError, match=r"unknown GRPOConfig fields: \['kl_coef'\]"):
        trl_bridge.cpu_grpo_config(tmp_path, kl_coef=0.1)


def test_two_trl_steps_change_the_weights(tmp_path):
    model, calls = build_model(seed=1), []

    @functools.wraps(correctness_reward)  # TRL logs a reward under its __name__
    def spy(prompts, completions, **kwargs):
        calls.append((list(prompts), list(completions), kwargs))
        return correctness_reward(prompts, completions, **kwargs)

    before = {k: v.clone() for k, v in model.state_dict().items()}
    metrics = trl_bridge.train_with_trl(
        model,
        build_tokenizer(),
        "add2",
        [spy, length_reward],
        output_dir=str(tmp_path),
        max_steps=2,
        **TINY,
    )

    # beta > 0: the reference was saved from this very model and loaded back from disk
    init = tmp_path / "init_policy"
    assert model.config._name_or_path == str(init) and (init / "model.safetensors").exists()
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)  # every tensor moved
    assert list(metrics.index) == [1, 2]
    for col in [
        "loss",
        "reward",
        "reward_std",
        "kl",
        "entropy",
        "clip_ratio/region_mean",
        "completions/mean_length",
        "rewards/correctness_reward/mean",
        "grad_norm",
    ]:
        assert col in metrics.columns, col
    assert all(math.isfinite(x) for x in metrics.select_dtypes("number").to_numpy().ravel())
    assert metrics["grad_norm"].gt(0).all()

    # our reward function got TRL's columns: one answer per completion, matching its prompt
    assert len(calls) == 2
    for prompts, completions, kwargs in calls:
        assert len(prompts) == len(completions) == len(kwargs["answer"]) == 8
        assert kwargs["answer"] == [make_problem(p[:-1]).answer for p in prompts]
        assert len(kwargs["completion_ids"]) == 8


def test_rewards_receive_answer_column_inside_trl(tmp_path):
    trainer = trl_bridge.make_trainer(
        build_model(),
        None,
        "add2",
        ["correctness", "format", "partial"],
        output_dir=str(tmp_path),
        beta=0.0,
        **TINY,
    )
    assert trainer.reward_func_names == [
        "correctness_reward",
        "format_reward",
        "partial_credit_reward",
    ]
    rows = [{"prompt": "47+8=", "answer": 55}] * 2 + [{"prompt": "12+40=", "answer": 52}] * 2
    completions = ["55", " 55x", "52", "25"]
    ids = [
        trainer.processing_class(c, add_special_tokens=False).input_ids + [EOS_ID]
        for c in completions
    ]
    rewards = trainer._calculate_rewards(rows, [r["prompt"] for r in rows], completions, ids)
    expected = [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]]
    torch.testing.assert_close(rewards, torch.tensor(expected))


def test_stray_special_tokens_score_as_written_inside_trl(tmp_path):
    """TRL decodes ``1<unk>3`` as "13"; the bridge re-decodes completion_ids the course's way, so
    the same completion gets the same reward as in grpo_edu's trainer (rollout convention 5)."""
    trainer = trl_bridge.make_trainer(
        build_model(), None, "add2", output_dir=str(tmp_path), beta=0.0, **TINY
    )
    tok, unk = trainer.processing_class, trainer.processing_class.unk_token_id
    digits = tok("13", add_special_tokens=False).input_ids
    ids = [digits + [EOS_ID], digits[:1] + [unk] + digits[1:] + [EOS_ID], digits + [unk, EOS_ID]]
    completions = tok.batch_decode(ids, skip_special_tokens=True)  # what TRL passes: all "13"
    assert completions == ["13"] * 3
    rows = [{"prompt": "6+7=", "answer": 13}] * 3
    rewards = trainer._calculate_rewards(rows, ["6+7="] * 3, completions, ids)
    assert rewards[:, 0].tolist() == [1.0, 0.0, 1.0]  # "13", "1<unk>3", "13<unk>" (text after
    # the number is ignored by correctness_reward, as with "13 is it")


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint 'nope'"):
        trl_bridge.make_trainer("nope", output_dir=str(tmp_path))


# ------------------------------------------------------------------------ many processes
def test_per_device_batch_keeps_the_global_batch():
    assert trl_bridge.per_device_batch(128, 8, 1) == 128
    assert trl_bridge.per_device_batch(128, 8, 2) == 64  # two ranks: 64 each, 128 per step
    assert trl_bridge.per_device_batch(128, 8, 8) == 16
    with pytest.raises(ValueError, match="cannot be split evenly over 3 processes"):
        trl_bridge.per_device_batch(128, 8, 3)
    with pytest.raises(ValueError, match="multiple of num_generations \\(8\\), got 100"):
        trl_bridge.per_device_batch(100, 8, 1)


def test_world_size_from_the_launcher(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert trl_bridge.world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert trl_bridge.world_size() == 4
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE must be a positive integer, got 'two'"):
        trl_bridge.world_size()


def test_one_process_config_is_the_global_batch(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    cfg = trl_bridge.cpu_grpo_config(tmp_path, global_batch_size=64, num_generations=4)
    assert (cfg.per_device_train_batch_size, cfg.generation_batch_size) == (64, 64)
    assert cfg.ddp_find_unused_parameters is False  # no unused-parameter traversal under DDP


def test_torchrun_two_processes_same_weights_same_global_batch(tmp_path):
    """The documented launch, two gloo ranks on the CPU, 2 steps of 16 completions (4 prompts x
    G = 4): each rank scores 8 per step, both end with the same weights, which have moved."""
    out = tmp_path / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
               "2", "-m", "grpo_edu.trl_bridge", "--max-steps", "2", "--global-batch", "16",
               "--num-generations", "4", "--output-dir", str(out)]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r, rank in enumerate(ranks):
        assert (rank["rank"], rank["world_size"]) == (r, 2)
        assert (rank["per_device_train_batch_size"], rank["generation_batch_size"]) == (8, 16)
        assert rank["completions_scored_per_step"] == [8, 8]  # half of the 16 per step
        assert len(rank["reward"]) == 2 and all(math.isfinite(x) for x in rank["reward"])
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["reward"] == ranks[1]["reward"]  # TRL logs the mean over both ranks
    start, _ = load_policy("add2")
    assert ranks[0]["weights_sha256"] != trl_bridge.weights_digest(start)  # trained
    assert (out / "policy" / "model.safetensors").exists()

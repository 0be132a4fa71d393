"""Tests of grpo_edu.models: a tiny dropout-free Llama, its critic, the frozen reference, loading."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from grpo_edu import models, vocab
from grpo_edu.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def policy():
    return models.build_model(seed=0).eval()


def test_small_and_dropout_free(policy):
    assert models.n_params(policy) <= 2_000_000
    assert models.n_params(policy) == sum(p.numel() for p in policy.parameters())
    assert policy.config.attention_dropout == 0.0
    assert all(m.p == 0.0 for m in policy.modules() if isinstance(m, torch.nn.Dropout))
    policy.train()  # dropout off means train mode computes what eval mode computes
    ids = torch.tensor([[1, 5, 6, 14, 7, 17]])
    with torch.no_grad():
        a = policy(ids).logits
        policy.eval()
        b = policy(ids).logits
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_seeded_init_is_reproducible():
    a, b = models.build_model(seed=3), models.build_model(seed=3)
    c = models.build_model(seed=4)
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_generate_works(policy):
    tok = build_tokenizer()
    enc = tok(["1+2=", "10+20="], padding=True, return_tensors="pt")
    out = policy.generate(**enc, max_new_tokens=4, do_sample=False)  # (2, P + <=4)
    assert out.shape[0] == 2 and enc.input_ids.shape[1] < out.shape[1] <= enc.input_ids.shape[1] + 4
    assert torch.equal(out[:, : enc.input_ids.shape[1]], enc.input_ids)
    assert int(out.max()) < len(vocab.VOCAB)


def test_critic_shape_and_init_from_policy(policy):
    critic = models.Critic.from_policy(policy)
    for name, p in policy.model.state_dict().items():
        assert torch.equal(critic.body.state_dict()[name], p), name
    assert critic.body.embed_tokens.weight.data_ptr() != policy.model.embed_tokens.weight.data_ptr()
    ids = torch.randint(4, len(vocab.VOCAB), (3, 7))
    values = critic(ids, torch.ones_like(ids))  # (B, T)
    assert values.shape == (3, 7)
    assert torch.count_nonzero(values) == 0  # zero-initialised head: V = 0 before training
    values.sum().backward()
    assert critic.head.weight.grad is not None


def test_frozen_copy_has_no_grads(policy):
    ref = models.frozen_copy(policy)
    assert not ref.training
    assert all(not p.requires_grad for p in ref.parameters())
    assert any(p.requires_grad for p in policy.parameters())  # the original is untouched
    with torch.no_grad():
        next(ref.parameters()).add_(1.0)
    assert not torch.equal(next(ref.parameters()), next(policy.parameters()))  # a real copy


def test_save_and_load_policy_round_trip(policy, tmp_path):
    models.save_policy(policy, build_tokenizer(), tmp_path / "ck", card={"task": "add2"})
    model, tok = models.load_policy(tmp_path / "ck")
    assert models.load_card(tmp_path / "ck") == {"task": "add2"}
    ids = torch.tensor([[1, 5, 6, 14, 7, 17]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids).logits, policy(ids).logits)
    assert tok.pad_token_id == vocab.PAD_ID and model.generation_config.pad_token_id == vocab.PAD_ID


def test_load_policy_offline(policy, tmp_path):
    """Loading never reaches a hub: a fresh process with HF_HUB_OFFLINE=1 loads a checkpoint."""
    models.save_policy(policy, build_tokenizer(), tmp_path / "ck")
    code = (
        "import sys; from grpo_edu.models import load_policy, n_params; "
        "m, t = load_policy(sys.argv[1]); print(n_params(m), t.eos_token_id)"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "empty-hf-cache")}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "ck")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(models.n_params(policy)), str(vocab.EOS_ID)]


def test_load_policy_bad_name_names_it():
    with pytest.raises(ValueError, match="no-such-checkpoint"):
        models.load_policy("no-such-checkpoint")

"""Tests of grpo_edu.rollout: prompt-major layout, EOS masks, log-probs that match, padding."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from grpo_edu import models, vocab
from grpo_edu.logprobs import forward_completion, token_logprobs
from grpo_edu.rollout import (
    completion_mask_from_ids,
    decode_completions,
    encode_prompts,
    generate_rollout,
    position_ids_from_mask,
    sample,
)
from grpo_edu.tasks import make_problem
from grpo_edu.tokenizer import build_tokenizer

PROBLEMS = [make_problem(e) for e in ("1+2", "10+20", "7-35", "12+7-5")]  # prompts of 4..8 chars
G = 3


@pytest.fixture(scope="module")
def policy():
    return models.build_model(seed=0).eval()


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def rollout(policy, tok):
    gen = torch.Generator().manual_seed(0)
    return generate_rollout(
        policy, tok, PROBLEMS, G, max_new_tokens=6, temperature=0.7, generator=gen
    )


def test_prompt_major_layout(rollout):
    B = len(PROBLEMS) * G
    assert rollout.prompts == [p.prompt for p in PROBLEMS for _ in range(G)]
    assert rollout.answers == [p.answer for p in PROBLEMS for _ in range(G)]
    assert rollout.group.tolist() == [i for i in range(len(PROBLEMS)) for _ in range(G)]
    assert rollout.prompt_ids.shape[0] == rollout.completion_ids.shape[0] == B
    grouped = rollout.group.view(len(PROBLEMS), G)  # (n, G): one group per row
    assert (grouped == torch.arange(len(PROBLEMS))[:, None]).all()
    assert rollout.group_size == G and len(rollout.texts) == B


def test_mask_from_first_eos():
    E, P, a, b = vocab.EOS_ID, vocab.PAD_ID, vocab.VOCAB["4"], vocab.VOCAB["2"]
    ids = torch.tensor([[a, b, E, P, P], [a, E, a, E, P], [a, b, a, b, a], [E, P, P, P, P]])
    expected = [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert completion_mask_from_ids(ids).tolist() == expected


def test_mask_when_pad_is_eos():
    """With pad == EOS (as in many chat models), ``ids != pad`` would drop the EOS itself."""
    E, a, b = 7, vocab.VOCAB["4"], vocab.VOCAB["2"]  # pretend id 7 is both EOS and pad
    ids = torch.tensor([[a, b, E, E, E], [a, b, a, b, a], [E, E, E, E, E]])
    mask = completion_mask_from_ids(ids, eos_id=E)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    pad_comparison = (ids != E).float()  # the pitfall: loses the EOS token and the all-EOS row
    assert not torch.equal(mask, pad_comparison)


def test_rollout_mask_ids_and_logp_after_eos(rollout):
    mask = rollout.completion_mask
    assert torch.equal(mask, completion_mask_from_ids(rollout.completion_ids))
    after = mask == 0
    assert (rollout.completion_ids[after] == vocab.PAD_ID).all()
    assert (rollout.sampling_logp[after] == 0).all()
    has_eos = (rollout.completion_ids == vocab.EOS_ID).any(-1)
    assert torch.equal(rollout.truncated, ~has_eos)
    lengths = mask.sum(-1).long().tolist()
    assert [len(r) for r in rollout.completion_ids_list] == lengths


def test_sampling_logp_equals_recomputed_logp(policy, rollout):
    """Before any update, ratio = exp(logp - old_logp) must be exactly 1: same logits / T."""
    with torch.no_grad():
        logp = token_logprobs(policy, rollout)  # (B, T) at the rollout's temperature
    torch.testing.assert_close(logp, rollout.sampling_logp, rtol=0, atol=1e-5)
    assert (logp[rollout.completion_mask.bool()] < 0).all()
    with torch.no_grad():
        at_t1 = token_logprobs(policy, rollout, temperature=1.0)
    assert not torch.allclose(at_t1, logp, atol=1e-3)  # the temperature is really applied


def test_left_padding_changes_nothing(policy, tok, rollout):
    """Each row alone (no padding) gives the same log-probs as in the left-padded batch."""
    with torch.no_grad():
        batched = token_logprobs(policy, rollout)  # (B, T)
        for i in range(0, len(rollout.prompts), G):  # one row per prompt length
            ids, mask = encode_prompts(tok, [rollout.prompts[i]])  # (1, P_i): unpadded
            single = replace(
                rollout,
                prompt_ids=ids,
                prompt_mask=mask,
                completion_ids=rollout.completion_ids[i : i + 1],
                completion_mask=rollout.completion_mask[i : i + 1],
                group=rollout.group[i : i + 1],
            )
            torch.testing.assert_close(
                token_logprobs(policy, single)[0], batched[i], rtol=0, atol=1e-5
            )
    assert (rollout.prompt_mask == 0).any(), "the batch must really contain left padding"


def test_padded_sampling_matches_unpadded_greedy(policy, tok):
    ids, mask = encode_prompts(tok, [p.prompt for p in PROBLEMS])
    batched, batched_logp = sample(policy, ids, mask, max_new_tokens=5, temperature=0)
    for i, p in enumerate(PROBLEMS):
        one_ids, one_mask = encode_prompts(tok, [p.prompt])
        alone, alone_logp = sample(policy, one_ids, one_mask, max_new_tokens=5, temperature=0)
        T = alone.shape[1]
        assert alone[0].tolist() == batched[i, :T].tolist()
        torch.testing.assert_close(alone_logp[0], batched_logp[i, :T], rtol=0, atol=1e-5)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_non_positive_temperature_raises(policy, rollout, temperature):
    with pytest.raises(ValueError, match="temperature"):
        token_logprobs(policy, rollout, temperature=temperature)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan")])
def test_negative_sampling_temperature_raises(policy, tok, temperature):
    with pytest.raises(ValueError, match="temperature"):
        generate_rollout(policy, tok, PROBLEMS[:1], 2, 4, temperature=temperature)


def test_bad_group_size_and_length_raise(policy, tok):
    with pytest.raises(ValueError, match="group_size"):
        generate_rollout(policy, tok, PROBLEMS, 0, 4)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate_rollout(policy, tok, PROBLEMS, 2, 0)


def test_seeded_generator_is_reproducible(policy, tok):
    def run(seed):
        gen = torch.Generator().manual_seed(seed)
        return generate_rollout(policy, tok, PROBLEMS, G, 6, temperature=1.0, generator=gen)

    a, b, c = run(11), run(11), run(12)
    assert torch.equal(a.completion_ids, b.completion_ids) and a.texts == b.texts
    assert torch.equal(a.sampling_logp, b.sampling_logp)
    assert not torch.equal(a.completion_ids, c.completion_ids)


# ------------------------------------------------------------------ prefix sharing (convention 4)
@pytest.fixture(scope="module")
def stopping(tok):
    """(policy, rollout) where answers stop at different lengths: an untrained model almost never
    says EOS, this one (its EOS embedding flipped and scaled) stops after 1..6 tokens."""
    model = models.build_model(seed=0).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight[vocab.EOS_ID] *= -4
    gen = torch.Generator().manual_seed(1)
    rollout = generate_rollout(model, tok, PROBLEMS, G, 6, temperature=0.7, generator=gen)
    lengths = rollout.completion_mask.sum(-1)
    assert lengths.min() < lengths.max() and (rollout.prompt_mask == 0).any()
    return model, rollout


def full_forward(model, rollout, rows):
    """The forward without prefix sharing: every row runs its whole (prompt + completion)."""
    attn = torch.cat([rollout.prompt_mask[rows], rollout.completion_mask[rows].long()], 1)
    out = model(
        input_ids=torch.cat([rollout.prompt_ids[rows], rollout.completion_ids[rows]], 1),
        attention_mask=attn,
        position_ids=position_ids_from_mask(attn),
    )
    P = rollout.prompt_ids.shape[1]
    per_position = out.logits if hasattr(out, "logits") else out.last_hidden_state
    return per_position[:, P - 1 : -1]  # (b, T, V or C)


@pytest.mark.parametrize(
    "rows", [slice(None), torch.tensor([7, 0, 11, 1, 5]), torch.tensor([4]), slice(3, 9)]
)
def test_prefix_sharing_equals_the_full_forward(stopping, rows):
    """Values and gradients of the shared-prompt forward = those of the per-row full forward,
    for whole batches, shuffled minibatches, one row, and slices cutting through groups; with
    left-padded prompts and answers of different lengths."""
    policy, rollout = stopping
    torch.manual_seed(0)
    mask = rollout.completion_mask[rows][..., None]  # (b, T, 1)
    weights = torch.randn(rollout.completion_ids[rows].shape + (len(vocab.VOCAB),))
    grads = []
    for fn in (full_forward, forward_completion):
        logits = fn(policy, rollout, rows)  # (b, T, V)
        grads.append(
            torch.autograd.grad((logits * mask * weights).sum(), list(policy.parameters()))
        )
        if fn is full_forward:
            expected = logits.detach() * mask
    torch.testing.assert_close(logits.detach() * mask, expected, rtol=0, atol=1e-5)
    for shared, full in zip(*grads, strict=True):
        torch.testing.assert_close(shared, full, rtol=1e-4, atol=1e-5)


def test_prefix_sharing_works_for_a_model_body(stopping):
    """The critic reads hidden states through the same path (a body without an LM head)."""
    policy, rollout = stopping
    body = policy.model
    expected = full_forward(body, rollout, slice(None)) * rollout.completion_mask[..., None]
    got = forward_completion(body, rollout) * rollout.completion_mask[..., None]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_group_with_two_prompts_is_refused(policy, rollout):
    """Prefix sharing assumes one prompt per group; a hand-built rollout that breaks this is an
    error naming the field, never silently wrong log-probs."""
    ids = rollout.prompt_ids.clone()
    ids[1] = ids[G]  # row 1 (group 0) gets group 1's prompt
    with pytest.raises(ValueError, match="prompt_ids differ inside a group"):
        token_logprobs(policy, replace(rollout, prompt_ids=ids))
    with pytest.raises(ValueError, match="rollout.completion_ids has 2 rows"):
        token_logprobs(policy, replace(rollout, completion_ids=rollout.completion_ids[:2]))


def test_sample_shares_each_prompt_with_its_group(policy, tok):
    """Sampling G per prompt from n prompt rows = sampling once per row of the repeated prompts."""
    ids, mask = encode_prompts(tok, [p.prompt for p in PROBLEMS])
    grouped, grouped_logp = sample(policy, ids, mask, 5, temperature=0, group_size=G)
    repeated, repeated_logp = sample(
        policy, ids.repeat_interleave(G, 0), mask.repeat_interleave(G, 0), 5, temperature=0
    )
    assert grouped.shape == (len(PROBLEMS) * G, repeated.shape[1])
    assert torch.equal(grouped, repeated)
    torch.testing.assert_close(grouped_logp, repeated_logp, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="group_size"):
        sample(policy, ids, mask, 5, group_size=0)


def test_decode_completions_writes_stray_special_tokens_out(tok):
    """Up to the first EOS; <unk>, <bos>, <pad> inside an answer stay visible (convention 5)."""
    one, three = tok.convert_tokens_to_ids(["1", "3"])
    eos, pad, unk, bos = vocab.EOS_ID, vocab.PAD_ID, tok.unk_token_id, tok.bos_token_id
    rows = [
        [one, three, eos, pad],
        [one, unk, three, eos],
        [one, bos, pad, three],
        [eos, one, one, one],
    ]
    expected = ["13", "1<unk>3", "1<bos><pad>3", ""]
    assert decode_completions(tok, torch.tensor(rows)) == expected
    assert decode_completions(tok, rows) == expected  # TRL's list-of-lists form


def test_rollout_texts_are_the_decoded_completions(rollout, tok):
    assert rollout.texts == decode_completions(tok, rollout.completion_ids)

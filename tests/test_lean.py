"""The lean forward (grpo_edu.lean) computes what transformers' forward computes.

Every check runs the same rollout through both paths: the lean one and transformers' own model
call (``lean.enabled(False)``, and a full per-row forward without prefix sharing), with
left-padded prompts of different lengths, completions that stop at different lengths, rows
shuffled across groups, and gradients into every parameter.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch

from grpo_edu import lean, models, vocab
from grpo_edu.logprobs import completion_logprobs, critic_values, forward_completion
from grpo_edu.rollout import encode_prompts, generate_rollout, position_ids_from_mask, sample
from grpo_edu.tasks import make_problem
from grpo_edu.tokenizer import build_tokenizer

PROBLEMS = [make_problem(e) for e in ("1+2", "10+20", "7-35", "12+7-5")]  # prompts of 4..8 chars
G = 3
ROWS = [slice(None), torch.tensor([7, 0, 11, 1, 5]), torch.tensor([4]), slice(3, 9)]


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def stopping(tok):
    """(policy, rollout): answers that stop after 1..6 tokens (EOS embedding flipped and
    scaled), left-padded prompts of 4 lengths."""
    model = models.build_model(seed=0).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight[vocab.EOS_ID] *= -4
    gen = torch.Generator().manual_seed(1)
    rollout = generate_rollout(model, tok, PROBLEMS, G, 6, temperature=0.7, generator=gen)
    lengths = rollout.completion_mask.sum(-1)
    assert lengths.min() < lengths.max() and (rollout.prompt_mask == 0).any()
    return model, rollout


def _full_forward(model, rollout, rows):
    """Transformers' forward on each row's whole prompt + completion, no prefix sharing."""
    attn = torch.cat([rollout.prompt_mask[rows], rollout.completion_mask[rows].long()], 1)
    out = model(
        input_ids=torch.cat([rollout.prompt_ids[rows], rollout.completion_ids[rows]], 1),
        attention_mask=attn,
        position_ids=position_ids_from_mask(attn),
    )
    out = out if isinstance(out, torch.Tensor) else getattr(out, "logits", None)
    if out is None:  # a bare body
        out = model(input_ids=torch.cat([rollout.prompt_ids[rows], rollout.completion_ids[rows]], 1),
                    attention_mask=attn, position_ids=position_ids_from_mask(attn)).last_hidden_state  # fmt: skip
    P = rollout.prompt_ids.shape[1]
    return out[:, P - 1 : -1]  # (b, T, ...)


def _masked(out, rollout, rows):
    mask = rollout.completion_mask[rows]
    return out * mask.view(mask.shape + (1,) * (out.dim() - 2))


def _outputs_and_grads(model, rollout, rows, fn):
    torch.manual_seed(0)
    out = _masked(fn(model, rollout, rows), rollout, rows)
    weights = torch.randn(out.shape, dtype=out.dtype)
    params = [p for p in model.parameters() if p.requires_grad]
    return out.detach(), torch.autograd.grad((out * weights).sum(), params)


def _transformers_path(model, rollout, rows):
    with lean.enabled(False):
        return forward_completion(model, rollout, rows)


def _model(policy, kind):
    if kind == "policy":
        return policy
    if kind == "body":
        return policy.model
    critic = models.Critic.from_policy(policy)
    with torch.no_grad():  # a head that is not zero, so that its gradients mean something
        critic.head.weight.normal_(0, 0.5)
        critic.head.bias.fill_(0.3)
    return critic


@pytest.mark.parametrize("kind", ["policy", "body", "critic"])
@pytest.mark.parametrize("rows", ROWS)
def test_lean_equals_transformers_values_and_gradients(stopping, kind, rows):
    """Values within 2e-5 of transformers' float32 forward (with and without prefix sharing);
    gradients as close to the float64 truth as transformers' own float32 gradients are."""
    policy, rollout = stopping
    model = _model(policy, kind)
    assert lean.supports(model)
    lean_out, lean_grads = _outputs_and_grads(model, rollout, rows, forward_completion)
    truth = copy.deepcopy(model).double()  # transformers' forward in float64
    _, exact = _outputs_and_grads(truth, rollout, rows, _full_forward)
    for reference in (_transformers_path, _full_forward):
        out, grads = _outputs_and_grads(model, rollout, rows, reference)
        torch.testing.assert_close(lean_out, out, rtol=0, atol=2e-5)
        for got, expected, x in zip(lean_grads, grads, exact, strict=True):
            lean_error = (got.double() - x).abs().max()
            transformers_error = (expected.double() - x).abs().max()
            assert lean_error <= 2 * transformers_error + 1e-6, (lean_error, transformers_error)


def test_positions_after_eos_are_zero(stopping):
    policy, rollout = stopping
    logits = forward_completion(policy, rollout)
    after = rollout.completion_mask == 0
    assert after.any() and (logits[after] == 0).all()
    with lean.enabled(False):
        assert (forward_completion(policy, rollout)[after] == 0).all()


def test_logprobs_entropy_and_critic_values_match(stopping):
    policy, rollout = stopping
    critic = models.Critic.from_policy(policy)
    with torch.no_grad():
        critic.head.weight.normal_(0, 0.5)
        lean_logp, lean_entropy = completion_logprobs(policy, rollout)
        lean_values = critic_values(critic, rollout)
        with lean.enabled(False):
            logp, entropy = completion_logprobs(policy, rollout)
            values = critic_values(critic, rollout)
    torch.testing.assert_close(lean_logp, logp, rtol=0, atol=1e-5)
    torch.testing.assert_close(lean_entropy, entropy, rtol=0, atol=1e-5)
    torch.testing.assert_close(lean_values, values, rtol=0, atol=1e-5)


def test_single_token_completions(stopping, tok):
    policy, _ = stopping
    gen = torch.Generator().manual_seed(0)
    rollout = generate_rollout(policy, tok, PROBLEMS, 2, 1, temperature=1.0, generator=gen)
    with torch.no_grad():
        got = forward_completion(policy, rollout)
        with lean.enabled(False):
            expected = forward_completion(policy, rollout)
    assert got.shape == expected.shape == (len(PROBLEMS) * 2, 1, len(vocab.VOCAB))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_a_mask_with_a_hole_takes_the_transformers_path(stopping):
    """The packed forward needs ones-then-zeros masks; any other mask is not packed."""
    policy, rollout = stopping
    mask = rollout.completion_mask.clone()
    row = int(mask.sum(-1).argmax())
    mask[row, 1] = 0  # a hole inside a real completion
    holed = replace(rollout, completion_mask=mask)
    assert not lean.prefix_mask_ok(mask) and lean.prefix_mask_ok(rollout.completion_mask)
    with torch.no_grad():
        got = forward_completion(policy, holed)
        with lean.enabled(False):
            expected = forward_completion(policy, holed)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_static_cache_sampling_equals_transformers_sampling(tok, temperature):
    """The same ids and log-probs from the lean decoder (static cache, finished rows skipped)
    and from transformers' forward with its growing cache, from the same generator."""
    policy = models.load_policy("add2")[0].eval()  # answers of 1 to 3 digits, then EOS
    ids, mask = encode_prompts(tok, [p.prompt for p in PROBLEMS])
    results = []
    for on in (True, False):
        with lean.enabled(on):
            gen = torch.Generator().manual_seed(3)
            results.append(sample(policy, ids, mask, 6, temperature, gen, group_size=G))
    (lean_ids, lean_logp), (ids_tf, logp_tf) = results
    lengths = (lean_ids == vocab.EOS_ID).int().argmax(-1)
    assert lengths.min() < lengths.max()  # rows really finish at different steps
    assert torch.equal(lean_ids, ids_tf)
    torch.testing.assert_close(lean_logp, logp_tf, rtol=0, atol=1e-5)


def test_decoder_steps_equal_the_full_forward(stopping, tok):
    """Each decoder output is the full forward's last-position output on prompt + fed tokens,
    also for rows marked inactive by others (they are zero) and for a subset of active rows."""
    policy, _ = stopping
    ids, mask = encode_prompts(tok, [p.prompt for p in PROBLEMS])
    n = len(PROBLEMS)
    fed = torch.randint(4, len(vocab.VOCAB), (n * G, 3))
    active = torch.ones(n * G, dtype=torch.bool)
    with torch.no_grad():
        decoder = lean.Decoder(policy, ids, mask, position_ids_from_mask(mask), G, 4)
        outs = [decoder.first]
        for t in range(3):
            outs.append(decoder.step(fed[:, t], t, active))
            active = active.clone()
            active[t::n] = False  # some rows stop
        for t, out in enumerate(outs):
            full_ids = torch.cat([ids.repeat_interleave(G, 0), fed[:, :t]], 1)
            full_mask = torch.cat([mask.repeat_interleave(G, 0), torch.ones_like(fed[:, :t])], 1)
            expected = policy(
                input_ids=full_ids,
                attention_mask=full_mask,
                position_ids=position_ids_from_mask(full_mask),
            ).logits[:, -1]
            still = torch.ones(n * G, dtype=torch.bool)
            for s in range(t - 1):
                still[s::n] = False  # rows made inactive before this output was computed
            torch.testing.assert_close(out[still], expected[still], rtol=0, atol=2e-5)
            assert (out[~still] == 0).all()


def test_supports_only_what_it_computes(stopping):
    policy, _ = stopping
    assert lean.supports(policy) and lean.supports(policy.model)
    assert lean.supports(models.Critic.from_policy(policy))
    with lean.enabled(False):
        assert not lean.supports(policy)
    assert not lean.supports(torch.nn.Linear(2, 2))
    assert not lean.supports(models.build_model().to(torch.float64))  # float32 only
    hooked = models.build_model()
    handle = hooked.model.layers[0].mlp.register_forward_hook(lambda *a: None)
    assert not lean.supports(hooked)  # a hook must see the module run
    handle.remove()
    assert lean.supports(hooked)
    config = models.ModelConfig().to_llama()
    config.mlp_bias = True
    from transformers import LlamaForCausalLM

    assert not lean.supports(LlamaForCausalLM(config))
    config = models.ModelConfig().to_llama()
    config.attention_dropout = 0.1
    dropping = LlamaForCausalLM(config)
    assert lean.supports(dropping.eval()) and not lean.supports(dropping.train())


def test_activation_meter_counts_what_backward_keeps():
    """mm keeps its input x for W's gradient, pow keeps x @ W; the parameter W is not counted;
    the peak is per optimizer update, not the sum over updates."""
    from grpo_edu.accounting import ActivationMeter

    W = torch.nn.Parameter(torch.randn(8, 5))
    opt = torch.optim.SGD([W], lr=0.1)
    x = torch.randn(32, 8)
    with ActivationMeter(opt) as meter:
        for _ in range(3):
            loss = (x @ W).pow(2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert meter.peak == x.nbytes + 32 * 5 * 4

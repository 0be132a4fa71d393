"""Parity of grpo_edu's GRPO loss with TRL's, through a real ``trl.GRPOTrainer`` instance.

``tests/test_losses.py`` runs TRL's ``_compute_loss`` with a stand-in ``self`` on given log-probs.
Here everything is real: the trainer is built by ``trl_bridge.make_trainer`` on the tiny Llama
(its reference loaded from disk), the batch is one of our ``Rollout``s, TRL computes its own
log-probs with its fused LM head, and ours come from ``rollout.token_logprobs``. The two losses
and the gradient on every parameter agree to 1e-6 (float32).

How the batch becomes TRL's ``inputs`` (see ``GRPOTrainer._generate_and_score_completions``):
``prompt_ids``/``prompt_mask`` left-padded, ``completion_ids``/``completion_mask`` right-padded
with the mask 1 up to and including the first EOS (ours is the same), ``advantages`` (B,),
``old_per_token_logps`` (absent when TRL knows the batch is on-policy: it then uses
``per_token_logps.detach()``), ``ref_per_token_logps``, and ``num_items_in_batch``, the number of
completion tokens of the whole generation batch.

Position ids: TRL's training forward passes none, so the model numbers the columns 0..P+T-1,
left padding included; ours numbers real tokens only (``rollout.position_ids_from_mask``). With
prompts of equal length (no left padding, as here) both are the same. With left padding the
difference is real but, for a RoPE model like this Llama, only float rounding: attention depends
on relative positions, and a row shifted by its padding keeps them (``test_left_padding``). For a
model with absolute position embeddings (GPT-2) the log-probs would differ.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads it

from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("trl")

from grpo_edu import trl_bridge  # noqa: E402
from grpo_edu.advantages import group_advantages, masked_mean  # noqa: E402
from grpo_edu.logprobs import forward_completion, token_logprobs  # noqa: E402
from grpo_edu.losses import entropy_from_logits, policy_loss  # noqa: E402
from grpo_edu.models import build_model  # noqa: E402
from grpo_edu.rollout import generate_rollout  # noqa: E402
from grpo_edu.tasks import get_task  # noqa: E402
from grpo_edu.tokenizer import build_tokenizer  # noqa: E402
from grpo_edu.vocab import EOS_ID  # noqa: E402

ATOL = 1e-6
G, TEMPERATURE, MAX_LEN = 4, 0.7, 5


@dataclass
class Setup:
    trainer: object
    rollout: object
    old_logp: torch.Tensor  # (B, T) log-probs of the sampling policy: the rollout's own
    ref_logp: torch.Tensor  # (B, T) from TRL's reference model, by our token_logprobs
    advantages: torch.Tensor  # (B,)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield _build(tmp_path_factory.mktemp("trl_parity"))


def _build(tmp) -> Setup:
    g = torch.Generator().manual_seed(0)
    model, tok = build_model(seed=0), build_tokenizer()
    with torch.no_grad():  # an untrained model almost never says EOS; this one stops at 1..5 tokens
        model.model.embed_tokens.weight[EOS_ID] *= -4
    trainer = trl_bridge.make_trainer(
        model,
        tok,
        "add2",
        output_dir=str(tmp),
        beta=0.04,
        temperature=TEMPERATURE,
        max_completion_length=MAX_LEN,
        num_generations=G,
        per_device_train_batch_size=8,
    )
    assert type(trainer).__name__ == "GRPOTrainer" and trainer.model is model
    assert trainer.ref_model is not None and next(model.parameters()).dtype == torch.float32

    problems = [p for p in get_task("add2").train if len(p.prompt) == 6][:8]  # "ab+cd=": no padding
    rollout = generate_rollout(model, tok, problems, G, MAX_LEN, TEMPERATURE, generator=g)
    lengths = rollout.completion_mask.sum(-1)
    assert rollout.prompt_mask.all() and lengths.min() < lengths.max() == MAX_LEN

    with torch.no_grad():  # one "update" after sampling: pi != pi_old = pi_ref, so clipping bites
        for p in model.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
        ref_logp = token_logprobs(trainer.ref_model, rollout)
    advantages = group_advantages(torch.rand(len(problems) * G, generator=g), G)
    model.train()  # TRL's "train" mode (metrics, normalisers); no dropout either way
    # Trainer.train sets this per step; 1 = no gradient accumulation, so TRL divides grpo, bnpo and
    # dr_grpo losses by 1, and dapo's num_items_in_batch * 1 / steps_per_generation(1) is the
    # token count of this batch, which is what grpo_edu's dapo (= bnpo) divides by.
    trainer.current_gradient_accumulation_steps = 1
    return Setup(trainer, rollout, rollout.sampling_logp, ref_logp, advantages)


def trl_inputs(s: Setup, off_policy: bool) -> dict:
    r = s.rollout
    inputs = dict(
        prompt_ids=r.prompt_ids,
        prompt_mask=r.prompt_mask,
        completion_ids=r.completion_ids,
        completion_mask=r.completion_mask.long(),
        advantages=s.advantages,
        ref_per_token_logps=s.ref_logp,
        num_items_in_batch=r.completion_mask.sum(),
    )
    if off_policy:
        inputs["old_per_token_logps"] = s.old_logp
    return inputs


CASES = [
    (loss_type, off_policy, eps_high, beta, bias, level)
    for loss_type in ["grpo", "bnpo", "dr_grpo", "dapo"]
    for off_policy, eps_high in [(False, None), (True, None), (True, 0.28)]
    for beta, bias in [(0.0, False), (0.04, False), (0.04, True)]
    for level in ["token", "sequence"]
]


@pytest.mark.parametrize("loss_type, off_policy, eps_high, beta, bias, level", CASES)
def test_loss_and_gradients_match_trl(setup, loss_type, off_policy, eps_high, beta, bias, level):
    trainer, rollout, mask = setup.trainer, setup.rollout, setup.rollout.completion_mask
    named = [(n, p) for n, p in trainer.model.named_parameters() if p.requires_grad]
    names, params = [n for n, _ in named], [p for _, p in named]
    # _compute_loss reads all of these at call time (trl 1.16 grpo_trainer.py)
    trainer.loss_type, trainer.beta, trainer.importance_sampling_level = loss_type, beta, level
    trainer.epsilon_low, trainer.epsilon_high = 0.2, 0.2 if eps_high is None else eps_high
    trainer.args.use_bias_correction_kl = bias
    trainer._metrics["train"].clear()

    trl_loss = trainer._compute_loss(trainer.model, trl_inputs(setup, off_policy))
    trl_grads = torch.autograd.grad(trl_loss, params)

    logp = token_logprobs(trainer.model, rollout, TEMPERATURE)  # (B, T)
    loss, info = policy_loss(
        logp,
        setup.old_logp if off_policy else logp.detach(),
        setup.advantages,
        mask,
        clip_eps=0.2,
        clip_eps_high=eps_high,
        level=level,
        ref_logp=setup.ref_logp,
        kl_coef=beta,
        kl_bias_correction=bias,
        aggregation=loss_type,
        max_completion_length=trainer.max_completion_length,
    )
    grads = torch.autograd.grad(loss, params)

    torch.testing.assert_close(loss, trl_loss, rtol=0, atol=ATOL)
    for name, ours, theirs in zip(names, grads, trl_grads, strict=True):
        assert ours.abs().max() > 0 or theirs.abs().max() == 0, name
        torch.testing.assert_close(ours, theirs, rtol=0, atol=ATOL, msg=f"gradient of {name}")

    logged = {k: v[0] for k, v in trainer._metrics["train"].items()}
    ours = info.clip_metrics(mask)
    assert ours == pytest.approx({k: logged[k] for k in ours}, abs=ATOL)
    assert (ours["clip_ratio/region_mean"] > 0) == off_policy  # clipping active only off-policy
    if beta:
        assert masked_mean(info.per_token_kl, mask).item() == pytest.approx(logged["kl"], abs=ATOL)
        assert logged["kl"] > 1e-3  # the reference really differs from the policy


def test_logp_and_entropy_paths_match_trl(setup):
    """TRL's fused LM head (logits / temperature, zero on padding) = our token_logprobs.

    TRL runs each (prompt + completion) row whole; we run each group's prompt once and the
    completions on its shared KV cache (prefix sharing). Same math, different kernels: the
    log-probs (magnitudes up to ~3) agree to a few float32 ulps, hence rtol 1e-6 on top of ATOL.
    """
    r, trainer = setup.rollout, setup.trainer
    ids = torch.cat([r.prompt_ids, r.completion_ids], 1)  # (B, P+T)
    attention_mask = torch.cat([r.prompt_mask, r.completion_mask.long()], 1)  # (B, P+T)
    T = r.completion_ids.shape[1]
    with torch.no_grad():
        logp, entropy, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, attention_mask, T, compute_entropy=True
        )  # (B, T) each
        ref_logp, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.ref_model, ids, attention_mask, T
        )  # (B, T)
        ours = entropy_from_logits(forward_completion(trainer.model, r) / TEMPERATURE)  # (B, T)
        torch.testing.assert_close(token_logprobs(trainer.model, r), logp, rtol=1e-6, atol=ATOL)
    torch.testing.assert_close(setup.ref_logp, ref_logp, rtol=1e-6, atol=ATOL)
    torch.testing.assert_close(ours * r.completion_mask, entropy, rtol=1e-6, atol=ATOL)


def test_left_padding(setup):
    """Mixed prompt lengths: TRL numbers positions from column 0, we from each row's first token;
    RoPE sees only relative positions, so the log-probs still agree up to float rounding."""
    trainer, tok = setup.trainer, setup.trainer.processing_class
    problems = list(get_task("add2").train[:16])  # prompts of 4..6 characters
    r = generate_rollout(trainer.model, tok, problems, 2, MAX_LEN, TEMPERATURE)
    padded = ~r.prompt_mask.bool().all(-1)  # (B,)
    assert padded.any() and not padded.all()
    ids = torch.cat([r.prompt_ids, r.completion_ids], 1)
    attention_mask = torch.cat([r.prompt_mask, r.completion_mask.long()], 1)
    with torch.no_grad():
        theirs, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, attention_mask, r.completion_ids.shape[1]
        )
        diff = (token_logprobs(trainer.model, r) - theirs).abs()  # (B, T)
    assert diff[~padded].max() <= ATOL
    assert diff[padded].max() <= 1e-5

"""Parity of grpo_edu's DPO loss with TRL's, through a real ``trl.DPOTrainer`` instance.

As ``tests/test_trl_parity.py`` does for GRPO: the trainer is real (TRL 1.16's ``DPOTrainer`` on
the tiny Llama, its reference a frozen copy, TRL's fused LM head computing its own log-probs),
and the batch is one of ours: pairs (o+, o-) made by ``preference_pairs`` from groups sampled
from the add2 warm start, turned into TRL's inputs by TRL's own ``DataCollatorForPreference``
(prompt + completion, right-padded, chosen rows first, then rejected). Ours come from
``completion_logprobs`` (prefix sharing, left-padded prompts, positions from the mask); the
losses and the gradient on every parameter agree to 1e-6 for ``loss_type="sigmoid"`` (summed
log-ratios, Rafailov et al.) and ``"sigmoid_norm"`` (per-token mean, DeepSeekMath's A.1.4).
The policy is moved off the reference first, so the margins are not 0.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before huggingface_hub reads it

import dataclasses  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("trl")

from grpo_edu.algorithms import (  # noqa: E402
    completion_logprobs,
    dpo_loss,
    preference_pairs,
    reference_logp,
    select_rows,
)
from grpo_edu.models import frozen_copy, load_policy  # noqa: E402
from grpo_edu.rollout import generate_rollout  # noqa: E402
from grpo_edu.tasks import get_task  # noqa: E402
from grpo_edu.tokenizer import build_tokenizer  # noqa: E402
from grpo_edu.trainer import compute_rewards  # noqa: E402

BETA = 0.1


@dataclass
class Setup:
    policy: object
    ref_model: object
    pairs: object  # a Rollout with group_size 2: o+_0, o-_0, o+_1, ...
    inputs: dict  # TRL's batch of the same pairs


def _trainer(policy, ref_model, tokenizer, tmp, loss_type):
    import datasets
    import trl

    ckpt = "activation_checkpointing"
    if ckpt not in {f.name for f in dataclasses.fields(trl.DPOConfig)}:
        ckpt = "gradient_checkpointing"
    args = trl.DPOConfig(
        output_dir=str(tmp),
        beta=BETA,
        loss_type=[loss_type],
        bf16=False,
        use_cpu=True,
        report_to="none",
        precompute_ref_log_probs=False,
        **{ckpt: False},
    )
    dataset = datasets.Dataset.from_dict({"prompt": ["1+1="], "chosen": ["2"], "rejected": ["3"]})
    return trl.DPOTrainer(
        model=policy, ref_model=ref_model, args=args, train_dataset=dataset,
        processing_class=tokenizer,
    )  # fmt: skip


@pytest.fixture(scope="module")
def setup():
    import huggingface_hub.constants

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield _build()


def _build() -> Setup:
    policy, tokenizer = load_policy("add2")
    ref_model = frozen_copy(policy)
    g = torch.Generator().manual_seed(0)
    problems = get_task("add2").train[:8]  # prompts of different lengths: left padding here
    rollout = generate_rollout(ref_model, tokenizer, problems, 8, 6, 1.0, g)
    rewards = compute_rewards(rollout, ["correctness"])
    chosen, rejected = preference_pairs(rewards, 8)
    assert len(chosen) >= 8
    pairs = select_rows(rollout, torch.stack([chosen, rejected], 1).flatten(), 2)
    lengths = pairs.completion_mask.sum(-1)
    assert lengths.min() < lengths.max()  # answers of different lengths: the sums differ
    with torch.no_grad():  # pi != pi_ref: margins of both signs
        for p in policy.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=g))
    examples = []
    for p in range(len(chosen)):
        prompt = pairs.prompt_ids[2 * p][pairs.prompt_mask[2 * p].bool()].tolist()
        answers = []
        for row in (2 * p, 2 * p + 1):
            n = int(pairs.completion_mask[row].sum())
            answers.append(pairs.completion_ids[row, :n].tolist())
        examples.append(
            {"prompt_ids": prompt, "chosen_ids": answers[0], "rejected_ids": answers[1]}
        )
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    inputs = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id)(examples)
    return Setup(policy, ref_model, pairs, inputs)


@pytest.mark.parametrize("loss_type", ["sigmoid", "sigmoid_norm"])
def test_dpo_loss_and_gradients_equal_trls(setup, loss_type, tmp_path):
    s = setup
    trainer = _trainer(s.policy, s.ref_model, build_tokenizer(), tmp_path, loss_type)
    assert type(trainer).__name__ == "DPOTrainer" and trainer.model is s.policy
    s.policy.train()
    params = list(s.policy.parameters())
    trl_loss = trainer._compute_loss(trainer.model, s.inputs, False)
    trl_grads = torch.autograd.grad(trl_loss, params, allow_unused=True)

    logp, _ = completion_logprobs(s.policy, s.pairs)  # (2P, T)
    ref_logp = reference_logp(s.ref_model, s.pairs)
    ours, info = dpo_loss(
        logp, s.pairs.sampling_logp, ref_logp, s.pairs.completion_mask, beta=BETA,
        length_normalized=loss_type == "sigmoid_norm",
    )  # fmt: skip
    our_grads = torch.autograd.grad(ours, params, allow_unused=True)
    torch.testing.assert_close(ours, trl_loss, atol=1e-6, rtol=1e-6)
    for a, b in zip(our_grads, trl_grads, strict=True):
        if a is None or b is None:
            assert a is None and b is None or (a if b is None else b).abs().max() == 0
            continue
        torch.testing.assert_close(
            a, b, atol=2e-6, rtol=1e-4
        )  # float32 sums: 1.5e-6 seen with the lean forward
    margins = info.coefficients[0::2]
    assert margins.min() != margins.max()  # the pairs' weights really differ


def test_trl_reports_the_same_implicit_rewards(setup, tmp_path):
    """TRL's ``rewards/margins`` metric is beta times our mean pair margin."""
    from grpo_edu.algorithms import pair_margins

    s = setup
    trainer = _trainer(s.policy, s.ref_model, build_tokenizer(), tmp_path, "sigmoid")
    s.policy.train()
    with torch.no_grad():
        trainer._compute_loss(trainer.model, s.inputs, False)
        logp, _ = completion_logprobs(s.policy, s.pairs)
        ref_logp = reference_logp(s.ref_model, s.pairs)
    ours = BETA * pair_margins(logp, ref_logp, s.pairs.completion_mask).mean().item()
    assert trainer._metrics["train"]["rewards/margins"][-1] == pytest.approx(ours, abs=1e-6)

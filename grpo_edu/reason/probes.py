"""Looking inside a policy: pass@k up to large k, per-token probabilities, hand-made rollouts."""

from __future__ import annotations

import torch

from ..evaluate_formats import pass_at_ks, sample_formats
from ..rollout import Rollout, completion_mask_from_ids, encode_prompts, position_ids_from_mask
from ..tokenizer import build_tokenizer
from ..vocab import EOS, EOS_ID, PAD_ID, VOCAB

PASS_KS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""The k of the pass@k curves."""


def pass_at_k_curve(
    policy, tokenizer, problems, n: int = 256, ks=PASS_KS, seed: int = 0, max_new_tokens: int = 24
) -> dict[int, float]:
    """pass@k for every k in ``ks`` (<= n), from ``n`` samples per problem at T = 1 (unbiased
    estimator, ``evaluate.pass_at_k``). Large k asks: can the policy solve it *at all*?"""
    samples = sample_formats(policy, tokenizer, problems, n, 1.0, seed, max_new_tokens)
    return pass_at_ks(samples, [k for k in ks if k <= n])


@torch.no_grad()
def token_probs(policy, tokenizer, prompt: str, completion: str) -> list[tuple[str, float]]:
    """(token, probability under ``policy`` at T = 1) for each token of ``completion`` + EOS:
    how sure the policy is of each token of a given answer (for before/after heatmaps)."""
    enc = tokenizer([prompt + completion + EOS], return_tensors="pt")
    ids, mask = enc.input_ids, enc.attention_mask  # (1, L)
    logits = policy(
        input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)
    ).logits[0]  # fmt: skip  (L, V)
    n_prompt = len(tokenizer([prompt]).input_ids[0])
    probs = torch.softmax(logits[n_prompt - 1 : -1].float(), -1)  # (T, V) predicts token t
    targets = ids[0, n_prompt:]  # (T,)
    inverse = {i: t for t, i in VOCAB.items()}
    return [(inverse[int(t)], float(probs[i, t])) for i, t in enumerate(targets)]


def hand_rollout(
    prompts: list[str], completions: list[str], answers: list[int], group_size: int
) -> Rollout:
    """A ``Rollout`` of given completions (each ended by EOS), as if sampled: for teaching, to
    look at rewards and advantages of chosen answers. Sampling log-probs are 0 (not sampled)."""
    tokenizer = build_tokenizer()
    rows = [[VOCAB[ch] for ch in c] + [EOS_ID] for c in completions]
    ids = torch.full((len(rows), max(map(len, rows))), PAD_ID)  # (B, T)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
    prompt_ids, prompt_mask = encode_prompts(tokenizer, prompts)
    return Rollout(
        prompts=list(prompts), answers=list(answers), prompt_ids=prompt_ids,
        prompt_mask=prompt_mask, completion_ids=ids, completion_mask=completion_mask_from_ids(ids),
        texts=list(completions), truncated=torch.zeros(len(rows), dtype=torch.bool),
        group=torch.arange(len(rows)) // group_size, sampling_logp=torch.zeros(ids.shape),
        group_size=group_size, temperature=1.0, max_new_tokens=ids.shape[1],
    )  # fmt: skip

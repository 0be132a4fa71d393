"""Rollouts: G sampled completions per prompt, with everything the update needs.

Batch layout (used everywhere in grpo_edu) is **prompt-major**: with ``n`` prompts and group size
``G`` the batch has ``B = n * G`` rows ordered ``p0g0, p0g1, ..., p0g(G-1), p1g0, ...``, so
``rewards.view(n, G)`` puts each group in one row.

Three conventions here fix known pitfalls of public GRPO code:

1. The completion mask comes from the **first EOS**: 1 up to and including it, 0 after. It is
   never derived by comparing ids with the pad id (pad and EOS may be the same token).
2. Log-probs are computed from ``logits / temperature`` both when sampling and when training,
   so that ``ratio = exp(logp - old_logp)`` is exactly 1 before the first update.
3. Prompts are left-padded and every row gets position ids from its attention mask, so a padded
   prompt sees the same positions as an unpadded one.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import LlamaForCausalLM

from .tasks import Problem
from .vocab import EOS_ID, PAD_ID

# transformers >= 5.2x names the KV cache argument ``cache``; older releases ``past_key_values``.
_CACHE_ARG = (
    "cache"
    if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters
    else "past_key_values"
)


@dataclass
class Rollout:
    """One batch of sampled completions, prompt-major (B = n_prompts * group_size rows)."""

    prompts: list[str]
    """The prompt text of each row (repeated G times)."""
    answers: list[int]
    """The reference answer of each row: the ``answer`` column passed to reward functions."""
    prompt_ids: torch.Tensor
    """(B, P) left-padded prompt ids, ``<bos>`` first."""
    prompt_mask: torch.Tensor
    """(B, P) 1 for real prompt tokens, 0 for left padding."""
    completion_ids: torch.Tensor
    """(B, T) sampled ids; ``<pad>`` after a row's EOS."""
    completion_mask: torch.Tensor
    """(B, T) float: 1 up to and including the first EOS, 0 after (convention 1)."""
    texts: list[str]
    """Decoded completions without special tokens: what reward functions read."""
    truncated: torch.Tensor
    """(B,) bool: the row produced no EOS within ``max_new_tokens``."""
    group: torch.Tensor
    """(B,) long: index of the prompt (group) each row belongs to."""
    sampling_logp: torch.Tensor
    """(B, T) log pi(token) under the sampling policy, from logits / temperature (0 where masked)."""
    group_size: int
    temperature: float

    @property
    def completion_ids_list(self) -> list[list[int]]:
        """Each row's ids up to and including its EOS: TRL's ``completion_ids`` reward column."""
        lengths = self.completion_mask.sum(-1).long().tolist()
        return [row[:n] for row, n in zip(self.completion_ids.tolist(), lengths, strict=True)]

    def reward_columns(self) -> dict:
        """Keyword columns for a TRL-style reward function ``f(prompts, completions, **columns)``."""
        return {"answer": self.answers, "completion_ids": self.completion_ids_list}


def check_temperature(temperature: float, allow_greedy: bool = False) -> None:
    ok = temperature >= 0 if allow_greedy else temperature > 0
    if not ok or temperature != temperature:
        limit = ">= 0 (0 = greedy)" if allow_greedy else "> 0"
        raise ValueError(f"temperature must be {limit}, got {temperature}")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions 0, 1, 2, ... counted over real tokens only (left padding gets 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, L)


def completion_mask_from_ids(completion_ids: torch.Tensor, eos_id: int = EOS_ID) -> torch.Tensor:
    """(B, T) float mask: 1 up to and including the first ``eos_id`` of each row, 0 after."""
    is_eos = completion_ids == eos_id  # (B, T)
    eos_seen_before = (is_eos.long().cumsum(-1) - is_eos.long()) > 0  # an EOS strictly earlier
    return (~eos_seen_before).float()  # (B, T)


def encode_prompts(tokenizer, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (ids, mask), each (n, P), with ``<bos>`` in front of every prompt."""
    enc = tokenizer(list(prompts), padding=True, padding_side="left", return_tensors="pt")
    return enc.input_ids, enc.attention_mask


@torch.no_grad()
def sample(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample completions token by token with a KV cache; ``temperature=0`` is greedy.

    Returns ``(completion_ids, logp)``, both (B, T) with T <= max_new_tokens: the ids (``<pad>``
    after a row's EOS) and log pi(token | context) from ``logits / temperature`` (raw logits for
    greedy), zero after EOS.
    """
    check_temperature(temperature, allow_greedy=True)
    device = prompt_ids.device
    attention_mask = prompt_mask.clone()  # (B, P), grows by one column per step
    input_ids, cache = prompt_ids, None
    positions = position_ids_from_mask(attention_mask)  # (B, P)
    done = torch.zeros(len(prompt_ids), dtype=torch.bool, device=device)  # (B,)
    ids, logps = [], []
    for _ in range(max_new_tokens):
        out = model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            use_cache=True,
            **{_CACHE_ARG: cache},
        )
        cache = out[_CACHE_ARG]
        logits = out.logits[:, -1].float()  # (B, V)
        logprobs = F.log_softmax(logits / (temperature or 1.0), dim=-1)  # (B, V)
        if temperature == 0:
            token = logprobs.argmax(-1)  # (B,)
        else:
            token = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(-1)  # (B,)
        logp = logprobs.gather(-1, token[:, None]).squeeze(-1)  # (B,)
        ids.append(torch.where(done, PAD_ID, token))
        logps.append(torch.where(done, 0.0, logp))
        done = done | (token == EOS_ID)
        if done.all():
            break
        input_ids = token[:, None]  # (B, 1)
        attention_mask = torch.cat([attention_mask, attention_mask.new_ones(len(token), 1)], 1)
        positions = positions[:, -1:] + 1  # (B, 1)
    return torch.stack(ids, 1), torch.stack(logps, 1)  # (B, T), (B, T)


def generate_rollout(
    model,
    tokenizer,
    problems: Sequence[Problem],
    group_size: int,
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Sample ``group_size`` completions for each problem: a prompt-major ``Rollout``.

    ``temperature`` must be > 0: a rollout is trained on, and greedy decoding has no log-probs
    to train with (use ``evaluate`` for greedy accuracy).
    """
    check_temperature(temperature)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    device = next(model.parameters()).device
    prompts = [p.prompt for p in problems for _ in range(group_size)]  # prompt-major
    answers = [p.answer for p in problems for _ in range(group_size)]
    prompt_ids, prompt_mask = (t.to(device) for t in encode_prompts(tokenizer, prompts))
    completion_ids, logp = sample(
        model, prompt_ids, prompt_mask, max_new_tokens, temperature, generator
    )
    mask = completion_mask_from_ids(completion_ids)  # (B, T)
    truncated = ~(completion_ids == EOS_ID).any(-1)  # (B,)
    return Rollout(
        prompts=prompts,
        answers=answers,
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        completion_ids=completion_ids,
        completion_mask=mask,
        texts=tokenizer.batch_decode(completion_ids, skip_special_tokens=True),
        truncated=truncated,
        group=torch.arange(len(problems), device=device).repeat_interleave(group_size),
        sampling_logp=logp * mask,
        group_size=group_size,
        temperature=temperature,
    )


def forward_completion(model, rollout: Rollout, rows=slice(None)) -> torch.Tensor:
    """Logits that predict each completion token, (b, T, V), for the rows selected by ``rows``."""
    prompt_ids, completion_ids = rollout.prompt_ids[rows], rollout.completion_ids[rows]
    input_ids = torch.cat([prompt_ids, completion_ids], 1)  # (b, P+T)
    attention_mask = torch.cat([rollout.prompt_mask[rows], rollout.completion_mask[rows].long()], 1)
    logits = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids_from_mask(attention_mask),
    ).logits  # (b, P+T, V)
    P = prompt_ids.shape[1]
    return logits[:, P - 1 : -1].float()  # (b, T, V): position t predicts completion token t


def token_logprobs(
    model, rollout: Rollout, temperature: float | None = None, rows=slice(None)
) -> torch.Tensor:
    """log pi(o_t | q, o_<t) of every completion token, (b, T), from logits / temperature.

    Differentiable when called with grad enabled: this is the ``logp`` of the losses. Positions
    after EOS are 0. ``temperature`` defaults to the rollout's sampling temperature.
    """
    temperature = rollout.temperature if temperature is None else temperature
    check_temperature(temperature)
    logits = forward_completion(model, rollout, rows) / temperature  # (b, T, V)
    ids = rollout.completion_ids[rows]
    logp = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)  # (b, T)
    return logp * rollout.completion_mask[rows]

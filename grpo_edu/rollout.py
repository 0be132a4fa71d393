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

Two more conventions: one makes GRPO cheap, because its batch is made of groups; one keeps the
reward honest.

4. **Prefix sharing.** The G rows of a group share their prompt, so the prompt runs through the
   model once per group and its keys and values serve the group's rows; only the completions
   run once per row. Sampling, the reference log-probs and the training forward all do this. The
   numbers are those of a full ``(B, P+T)`` forward up to float rounding (tested), gradients flow
   through the shared keys into the prompt positions, and with G = 8 the prompt costs 1/8. The
   course's Llamas run it in ``lean`` (one attention sequence per group: its prompt, then its
   rows' tokens; a static KV cache when sampling); any other model through its own forward, the
   prompt's KV cache indexed out to the group's rows (``prompt_cache``).
5. **Visible special tokens.** A completion's text is its tokens up to the first EOS with every
   other token written out, special ones included: ``1<unk>3`` reads as itself and scores 0.
   Decoding with ``skip_special_tokens=True`` (what TRL does) would read it as ``13``: a stray
   ``<unk>``, ``<bos>`` or ``<pad>`` inside an answer would be rewarded as if it were not there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import DynamicCache

from . import lean
from .models import CACHE_ARG
from .tasks import Problem
from .vocab import EOS_ID, PAD_ID

_CACHE_ARG = CACHE_ARG  # the KV cache's keyword in this transformers release (see ``models``)


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
    """Decoded completions, up to the first EOS, stray special tokens written out (convention 5):
    what reward functions read."""
    truncated: torch.Tensor
    """(B,) bool: the row produced no EOS within ``max_new_tokens``."""
    group: torch.Tensor
    """(B,) long: index of the prompt (group) each row belongs to."""
    sampling_logp: torch.Tensor
    """(B, T) log pi(token) under the sampling policy, from logits / temperature (0 where masked)."""
    group_size: int
    temperature: float
    max_new_tokens: int | None = None
    """The generation limit the rollout was sampled with (``dr_grpo`` divides by it); None for
    hand-built rollouts."""

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


def decode_completions(tokenizer, completion_ids) -> list[str]:
    """The text of each completion (convention 5): tokens before the first EOS, specials written out.

    ``completion_ids`` is a (B, T) tensor or a list of id lists (TRL's ``completion_ids``).
    """
    rows = completion_ids.tolist() if isinstance(completion_ids, torch.Tensor) else completion_ids
    eos = tokenizer.eos_token_id
    cut = [row[: row.index(eos)] if eos in row else row for row in rows]
    return tokenizer.batch_decode(cut, skip_special_tokens=False)


def encode_prompts(
    tokenizer, prompts: Sequence[str], device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded (ids, mask), each (n, P), on ``device``, with ``<bos>`` before every prompt."""
    enc = tokenizer(list(prompts), padding=True, padding_side="left")  # lists of ids
    return (
        torch.tensor(enc["input_ids"], dtype=torch.long, device=device),
        torch.tensor(enc["attention_mask"], dtype=torch.long, device=device),
    )


def model_output(out) -> torch.Tensor:
    """The per-position tensor of a model's output: logits (a causal LM), hidden states (a bare
    transformer body), or the tensor itself (the critic's values)."""
    if isinstance(out, torch.Tensor):
        return out
    return out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state


def prompt_cache(model, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, rows: torch.Tensor):
    """Run each distinct prompt once; return (output at its last position, KV cache), per row.

    ``prompt_ids``/``prompt_mask`` are (n, P), one row per distinct prompt; ``rows`` (b,) says
    which prompt each output row uses. The (n, ...) results are indexed out to (b, ...): that
    indexing is the whole trick of prefix sharing (convention 4), and it is differentiable.
    """
    cache = DynamicCache()  # a Cache object (older releases return tuples otherwise)
    out = model(
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        position_ids=position_ids_from_mask(prompt_mask),
        use_cache=True,
        **{_CACHE_ARG: cache},
    )
    if not isinstance(out, torch.Tensor):  # the critic returns bare values: it filled ``cache``
        cache = out[_CACHE_ARG]
    cache.batch_select_indices(rows)  # (n, heads, P, d) -> (b, heads, P, d) in every layer
    return model_output(out)[:, -1][rows], cache  # (b, V or C), cache of b rows


class _CacheDecoder:
    """Sampling's forward for any model with a transformers-style KV cache (the lean path's
    ``lean.Decoder`` serves the course's Llamas): the same ``first`` and ``step(token, t)``."""

    def __init__(self, model, prompt_ids, prompt_mask, rows):
        self.model = model
        self.first, self.cache = prompt_cache(model, prompt_ids, prompt_mask, rows)  # (B, V)
        self.attention_mask = prompt_mask[rows]  # (B, P), grows by one column per step
        self.start = self.attention_mask.sum(-1, keepdim=True)  # (B, 1): first new position

    def step(self, token: torch.Tensor, t: int, active: torch.Tensor | None = None) -> torch.Tensor:
        mask = self.attention_mask  # every row runs (``active`` is the lean decoder's saving)
        self.attention_mask = torch.cat([mask, mask.new_ones(len(token), 1)], 1)
        out = self.model(
            input_ids=token[:, None],  # (B, 1)
            attention_mask=self.attention_mask,
            position_ids=self.start + t,
            use_cache=True,
            **{_CACHE_ARG: self.cache},
        )
        self.cache = out[_CACHE_ARG]
        return out.logits[:, -1]  # (B, V)


@torch.no_grad()
def sample(
    model,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    group_size: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``group_size`` completions per prompt, token by token with a KV cache.

    ``prompt_ids``/``prompt_mask`` are (n, P), one row per distinct prompt: each prompt runs
    through the model once and its cache is shared by its ``group_size`` completions (convention 4).
    ``temperature=0`` is greedy. Returns ``(completion_ids, logp)``, both (n * group_size, T),
    prompt-major, with T <= max_new_tokens: the ids (``<pad>`` after a row's EOS) and
    log pi(token | context) from ``logits / temperature`` (raw logits for greedy), zero after EOS.
    The course's Llamas run ``lean.Decoder`` (a static KV cache written in place); other models
    their own forward with a transformers cache.
    """
    check_temperature(temperature, allow_greedy=True)
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    device = prompt_ids.device
    rows = torch.arange(len(prompt_ids), device=device).repeat_interleave(group_size)  # (B,)
    if lean.supports(model):
        positions = position_ids_from_mask(prompt_mask)
        decoder = lean.Decoder(
            model, prompt_ids, prompt_mask, positions, group_size, max_new_tokens
        )
    else:
        decoder = _CacheDecoder(model, prompt_ids, prompt_mask, rows)
    logits = decoder.first  # (B, V)
    done = torch.zeros(len(rows), dtype=torch.bool, device=device)  # (B,)
    ids, logps = [], []
    for step in range(max_new_tokens):
        logprobs = F.log_softmax(logits.float() / (temperature or 1.0), dim=-1)  # (B, V)
        if temperature == 0:
            token = logprobs.argmax(-1)  # (B,)
        else:
            token = torch.multinomial(logprobs.exp(), 1, generator=generator).squeeze(-1)  # (B,)
        logp = logprobs.gather(-1, token[:, None]).squeeze(-1)  # (B,)
        ids.append(torch.where(done, PAD_ID, token))
        logps.append(torch.where(done, 0.0, logp))
        done = done | (token == EOS_ID)
        if done.all() or step == max_new_tokens - 1:
            break
        logits = decoder.step(token, step, ~done)  # (B, V); finished rows' logits unused
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
    ids, mask = encode_prompts(tokenizer, [p.prompt for p in problems], device)
    completion_ids, logp = sample(
        model, ids, mask, max_new_tokens, temperature, generator, group_size
    )
    prompt_ids = ids.repeat_interleave(group_size, 0)  # (B, P)
    prompt_mask = mask.repeat_interleave(group_size, 0)
    mask = completion_mask_from_ids(completion_ids)  # (B, T)
    truncated = ~(completion_ids == EOS_ID).any(-1)  # (B,)
    return Rollout(
        prompts=prompts,
        answers=answers,
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        completion_ids=completion_ids,
        completion_mask=mask,
        texts=decode_completions(tokenizer, completion_ids),
        truncated=truncated,
        group=torch.arange(len(problems), device=device).repeat_interleave(group_size),
        sampling_logp=logp * mask,
        group_size=group_size,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
    )


def group_prompts(rollout: Rollout, rows=slice(None)) -> tuple[torch.Tensor, torch.Tensor]:
    """(first_rows, inverse): one row index per distinct group among ``rows``, and for each
    selected row the position of its group in ``first_rows``. Checks that a group's rows really
    share one prompt: prefix sharing would silently compute wrong numbers otherwise."""
    B = len(rollout.group)
    for name in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask"):
        if len(getattr(rollout, name)) != B:
            raise ValueError(
                f"rollout.{name} has {len(getattr(rollout, name))} rows but rollout.group has {B}"
            )
    selected = torch.arange(B, device=rollout.group.device)[rows]  # (b,)
    groups, inverse = torch.unique(rollout.group[selected], return_inverse=True)  # (n,), (b,)
    first_rows = (rollout.group[:, None] == groups).int().argmax(0)  # (n,) one row per group
    if not torch.equal(rollout.prompt_ids[selected], rollout.prompt_ids[first_rows][inverse]):
        raise ValueError(
            "rollout.prompt_ids differ inside a group: every row of a group must have the same "
            "prompt (rows are prompt-major; rollout.group gives each row's group)"
        )
    return first_rows, inverse

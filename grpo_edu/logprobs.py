"""The one forward: what a model says about a rollout's completion tokens.

Every stage that scores completions goes through here: the training forward of the policy, the
frozen reference, PPO's critic, the notebooks and the TRL parity tests::

    completion_logprobs(model, rollout)   (logp, entropy), each (b, T): log pi(o_t | q, o_<t)
                                          from logits / temperature, and the entropy of pi there
    reference_logp(ref_model, rollout)    log pi_ref, (B, T), without gradients
    critic_values(critic, rollout)        V(s_t), (b, T), from the critic's own ``forward``

All three run ``forward_completion``: each group's prompt once, its KV cache shared by the group's
rows (prefix sharing, ``rollout`` convention 4), then the completions on top. Positions after a
row's EOS are 0 in every result.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import lean
from .masked import entropy_from_logits
from .rollout import (
    _CACHE_ARG,
    Rollout,
    check_temperature,
    group_prompts,
    model_output,
    position_ids_from_mask,
    prompt_cache,
)


def forward_completion(model, rollout: Rollout, rows=slice(None)) -> Tensor:
    """What the model says before each completion token, for the rows ``rows``.

    Position t holds the output that predicts completion token t: logits (b, T, V) for a causal
    LM, values (b, T) for the critic, hidden states (b, T, C) for a bare body; 0 where the
    completion mask is 0 (after a row's EOS nothing is predicted). Each group's prompt runs
    once and is shared by the group's rows (convention 4), and the completions run on top of
    it: tokens 0..T-2 as input, because the last one predicts nothing we score. The course's
    Llamas take ``lean.shared_prefix_forward`` (one packed forward of only the tokens needed);
    any other model its own forward with a transformers KV cache.
    """
    first_rows, inverse = group_prompts(rollout, rows)
    prompt_ids, prompt_mask = rollout.prompt_ids[first_rows], rollout.prompt_mask[first_rows]
    completion_ids = rollout.completion_ids[rows]  # (b, T)
    completion_mask = rollout.completion_mask[rows]  # (b, T)
    if lean.supports(model) and lean.prefix_mask_ok(completion_mask):
        prompt = (prompt_ids, prompt_mask, position_ids_from_mask(prompt_mask), inverse)
        return lean.shared_prefix_forward(model, *prompt, completion_ids, completion_mask).float()
    first, cache = prompt_cache(model, prompt_ids, prompt_mask, inverse)
    T = completion_ids.shape[1]
    if T == 1:
        out = first[:, None].float()  # (b, 1, V) or (b, 1)
    else:
        attention_mask = torch.cat([prompt_mask[inverse], completion_mask[:, :-1].long()], 1)
        rest = model(
            input_ids=completion_ids[:, :-1],
            attention_mask=attention_mask,  # (b, P+T-1)
            position_ids=position_ids_from_mask(attention_mask)[:, -(T - 1) :],
            use_cache=True,
            **{_CACHE_ARG: cache},
        )
        out = torch.cat([first[:, None], model_output(rest)], 1).float()  # (b, T, ...)
    return out * completion_mask.view(completion_mask.shape + (1,) * (out.dim() - 2))


def completion_logprobs(
    model, rollout: Rollout, rows=slice(None), temperature: float | None = None
) -> tuple[Tensor, Tensor]:
    """(logp, entropy) of every completion token of ``rows``, each (b, T), 0 after EOS.

    logp_t = log softmax(logits_t / temperature)[o_t] = log pi(o_t | q, o_<t): differentiable
    when called with grad enabled, this is the ``logp`` of the losses. ``entropy`` is H(pi) at
    each position, detached (a metric). ``temperature`` defaults to the rollout's sampling
    temperature, so that ``ratio = exp(logp - old_logp)`` is exactly 1 before any update.
    """
    temperature = rollout.temperature if temperature is None else temperature
    check_temperature(temperature)
    logits = forward_completion(model, rollout, rows) / temperature  # (b, T, V)
    ids = rollout.completion_ids[rows]  # (b, T)
    logp = torch.log_softmax(logits, -1).gather(-1, ids[..., None]).squeeze(-1)  # (b, T)
    mask = rollout.completion_mask[rows]  # (b, T)
    return logp * mask, entropy_from_logits(logits.detach()) * mask


def token_logprobs(
    model, rollout: Rollout, temperature: float | None = None, rows=slice(None)
) -> Tensor:
    """Only the ``logp`` of ``completion_logprobs``, (b, T)."""
    return completion_logprobs(model, rollout, rows, temperature)[0]


@torch.no_grad()
def reference_logp(ref_model, rollout: Rollout) -> Tensor:
    """log pi_ref of every completion token, (B, T), from the frozen reference."""
    return completion_logprobs(ref_model, rollout)[0]


def critic_values(critic, rollout: Rollout, rows=slice(None)) -> Tensor:
    """V(s_t) for every completion token, (b, T), 0 after EOS: the value of the context that
    emits token t, from the critic's own ``forward`` (prefix sharing included)."""
    return forward_completion(critic, rollout, rows) * rollout.completion_mask[rows]  # (b, T)


__all__ = [
    "completion_logprobs",
    "critic_values",
    "forward_completion",
    "reference_logp",
    "token_logprobs",
]

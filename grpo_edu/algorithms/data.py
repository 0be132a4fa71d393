"""The data sources D of the unified paradigm, as ``Rollout``s every step function can read.

Every method trains on a ``Rollout`` (prompt-major rows, masks, sampling log-probs), so the
same step loop, forward and metrics serve them all. What differs is where the rows come from::

    reference_rollout   the task's reference answers, teacher-forced (SFT: human data)
    select_rows         some rows of a rollout, regrouped (DPO's pairs; one step of a dataset)
    split_rollout       a rollout of many steps' groups -> one rollout per step (offline data)

The online methods sample from the current policy (``rollout.generate_rollout``); the offline
ones (RFT, DPO) sample once from the warm start and ``split_rollout`` the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from ..logprobs import completion_logprobs
from ..rollout import Rollout, decode_completions, encode_prompts
from ..tasks import Problem
from ..vocab import EOS, PAD_ID


def select_rows(rollout: Rollout, rows: torch.Tensor, group_size: int) -> Rollout:
    """A new ``Rollout`` of ``rollout``'s ``rows`` (in that order), ``group_size`` rows per group.

    Consecutive blocks of ``group_size`` selected rows must share a prompt (``group_prompts``
    checks it when the rollout is read). Columns after the longest kept completion are dropped.
    """
    rows = torch.as_tensor(rows, dtype=torch.long, device=rollout.completion_ids.device)
    if len(rows) % group_size:
        raise ValueError(f"{len(rows)} rows do not make groups of {group_size}")
    idx = rows.tolist()
    mask = rollout.completion_mask[rows]  # (b, T)
    width = max(int(mask.sum(-1).max().item()), 1) if len(idx) else 1  # longest kept row
    n_groups = len(idx) // group_size
    return replace(
        rollout,
        prompts=[rollout.prompts[i] for i in idx],
        answers=[rollout.answers[i] for i in idx],
        prompt_ids=rollout.prompt_ids[rows],
        prompt_mask=rollout.prompt_mask[rows],
        completion_ids=rollout.completion_ids[rows][:, :width],
        completion_mask=mask[:, :width],
        texts=[rollout.texts[i] for i in idx],
        truncated=rollout.truncated[rows],
        group=torch.arange(n_groups, device=rows.device).repeat_interleave(group_size),
        sampling_logp=rollout.sampling_logp[rows][:, :width],
        group_size=group_size,
    )


def split_rollout(rollout: Rollout, rows_per_step: int) -> list[Rollout]:
    """Cut a rollout into consecutive rollouts of ``rows_per_step`` rows (whole groups each)."""
    B = len(rollout.completion_ids)
    if rows_per_step % rollout.group_size or B % rows_per_step:
        raise ValueError(
            f"cannot cut {B} rows into steps of {rows_per_step} rows of whole groups of "
            f"{rollout.group_size}"
        )
    device = rollout.completion_ids.device
    return [
        select_rows(rollout, torch.arange(s, s + rows_per_step, device=device), rollout.group_size)
        for s in range(0, B, rows_per_step)
    ]


@torch.no_grad()
def reference_rollout(
    policy, tokenizer, problems: Sequence[Problem], temperature: float = 1.0
) -> Rollout:
    """The reference answers of ``problems`` as a ``Rollout`` (one row each, group_size 1).

    SFT's data: the completion is ``str(answer)`` followed by EOS, what a perfect model writes.
    Nothing is sampled; ``sampling_logp`` holds the answer's log-probs under ``policy`` at
    ``temperature`` (teacher-forced), so that ratio = pi / pi_old is 1 before the update, as
    for a sampled batch. ``truncated`` is all False; ``max_new_tokens`` is the longest answer.
    """
    if not problems:
        raise ValueError("problems is empty: no reference answers to train on")
    device = next(policy.parameters()).device
    ids, prompt_mask = encode_prompts(tokenizer, [p.prompt for p in problems], device)  # (B, P)
    answers = [tokenizer(str(p.answer) + EOS, add_special_tokens=False).input_ids for p in problems]
    T = max(len(a) for a in answers)
    completion_ids = torch.full((len(problems), T), PAD_ID, dtype=torch.long, device=device)
    completion_mask = torch.zeros(len(problems), T, device=device)  # (B, T)
    for i, a in enumerate(answers):
        completion_ids[i, : len(a)] = torch.tensor(a, device=device)
        completion_mask[i, : len(a)] = 1.0
    B = len(problems)
    rollout = Rollout(
        prompts=[p.prompt for p in problems],
        answers=[p.answer for p in problems],
        prompt_ids=ids,
        prompt_mask=prompt_mask,
        completion_ids=completion_ids,
        completion_mask=completion_mask,
        texts=decode_completions(tokenizer, completion_ids),
        truncated=torch.zeros(B, dtype=torch.bool, device=device),
        group=torch.arange(B, device=device),
        sampling_logp=torch.zeros(B, T, device=device),
        group_size=1,
        temperature=temperature,
        max_new_tokens=T,
    )
    rollout.sampling_logp = completion_logprobs(policy, rollout)[0]  # (B, T), 0 after EOS
    return rollout


__all__ = ["reference_rollout", "select_rows", "split_rollout"]

"""Evaluation of the scratchpad tasks: which format the policy chooses, and how well each does.

A ``sum4`` answer is direct (``"33"``) or a scratchpad (``" 12+7=19+5=24+9=33"``, see
``formats``); a completion is right when its final answer is (``rewards.final_answer_reward``:
the integer it ends with, and it stopped with EOS). ``evaluate_formats`` measures, on a fixed
eval split:

- the **scratchpad share**: how often a sample at temperature T is a scratchpad (the choice);
- **sampled** and **greedy** accuracy, and the accuracy of the samples of each format;
- **forced** accuracies: every sample made to start as a scratchpad (its first token is the
  mark) or as a direct answer (the mark forbidden as first token, the rest renormalised): what
  each format is worth, whatever the policy would have chosen;
- the mean length of the samples in tokens (EOS included), **pass@k** for several k from
  ``n`` samples with the unbiased estimator of ``evaluate.pass_at_k``, and **maj@n**.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch

from .evaluate import majority_answer, pass_at_k
from .formats import SCRATCHPAD_MARK, answer_format, parse_final_answer
from .rollout import (
    check_temperature,
    decode_completions,
    encode_prompts,
    position_ids_from_mask,
    sample,
)
from .tasks import Problem
from .vocab import EOS_ID, VOCAB

FORCES = (None, "scratchpad", "direct")
"""Values of ``force``: the policy's own choice, or a format imposed on the first token."""


@dataclass(frozen=True)
class Samples:
    """``n`` completions per problem, problem-major (rows ``p0s0 .. p0s(n-1), p1s0, ...``)."""

    texts: list[str]
    lengths: list[int]
    """Tokens of each completion, EOS included."""
    ended: list[bool]
    """It stopped with EOS within ``max_new_tokens``."""
    correct: list[bool]
    """Its final answer is right and it ended (``final_answer_reward``)."""
    n: int

    @property
    def formats(self) -> list[str]:
        return [answer_format(t) for t in self.texts]


def _first_tokens(model, ids, mask, n, temperature, force, generator) -> torch.Tensor:
    """(len(ids) * n,) first completion tokens with the format imposed: the mark, or anything else."""
    mark = VOCAB[SCRATCHPAD_MARK]
    rows = torch.arange(len(ids), device=ids.device).repeat_interleave(n)  # (B,)
    if force == "scratchpad":
        return torch.full((len(rows),), mark, device=ids.device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask))
    logits = logits.logits[:, -1].float()[rows]  # (B, V)
    logits[:, mark] = float("-inf")  # no scratchpad: the rest of the distribution, renormalised
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, -1)  # (B, V)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def sample_formats(
    model,
    tokenizer,
    problems: Sequence[Problem],
    n: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 24,
    force: str | None = None,
    batch_size: int = 512,
) -> Samples:
    """``n`` completions per problem, in the policy's own format or a ``force``d one."""
    check_temperature(temperature, allow_greedy=True)
    if force not in FORCES:
        raise ValueError(f"force must be one of {FORCES}, got {force!r}")
    if n < 1 or (temperature == 0 and n != 1):
        raise ValueError(f"n must be >= 1 (and 1 for greedy), got n={n}, temperature={temperature}")
    if not problems:
        raise ValueError("problems is empty: nothing to evaluate")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training, rows_out = model.training, []
    model.eval()
    per_batch = max(1, batch_size // n)
    for start in range(0, len(problems), per_batch):
        chunk = [p.prompt for p in problems[start : start + per_batch]]
        ids, mask = (t.to(device) for t in encode_prompts(tokenizer, chunk))  # (b, P)
        if force is None:
            out, _ = sample(model, ids, mask, max_new_tokens, temperature, generator, n)
        else:
            first = _first_tokens(model, ids, mask, n, temperature, force, generator)  # (B,)
            ids = torch.cat([ids.repeat_interleave(n, 0), first[:, None]], 1)  # (B, P+1)
            mask = torch.cat([mask.repeat_interleave(n, 0), torch.ones_like(first)[:, None]], 1)
            rest, _ = sample(model, ids, mask, max_new_tokens - 1, temperature, generator)
            out = torch.cat([first[:, None], rest], 1)  # (B, T); after an EOS first, ignored
        rows_out += out.tolist()
    model.train(was_training)
    texts = decode_completions(tokenizer, rows_out)
    lengths = [row.index(EOS_ID) + 1 if EOS_ID in row else len(row) for row in rows_out]
    ended = [EOS_ID in row for row in rows_out]
    answers = [p.answer for p in problems for _ in range(n)]
    correct = [
        e and parse_final_answer(t) == a for t, e, a in zip(texts, ended, answers, strict=True)
    ]
    return Samples(texts, lengths, ended, correct, n)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def pass_at_ks(samples: Samples, ks: Sequence[int]) -> dict[int, float]:
    """Unbiased pass@k for each k <= n, averaged over problems (Chen et al. 2021, eq. 1)."""
    n, by_problem = samples.n, {}
    counts = [sum(samples.correct[i : i + n]) for i in range(0, len(samples.correct), n)]
    for k in ks:
        by_problem[k] = _mean([pass_at_k(n, c, k) for c in counts])
    return by_problem


@dataclass(frozen=True)
class FormatReport:
    """The format choice and per-format accuracies of one policy on one eval split."""

    scratchpad_share: float
    """Share of samples at ``temperature`` that are scratchpads (the policy's choice)."""
    sampled: float
    """Accuracy of those samples."""
    greedy: float
    """Greedy accuracy."""
    greedy_scratchpad_share: float
    """Share of problems whose greedy answer is a scratchpad."""
    sampled_scratchpad: float
    """Accuracy of the samples that chose a scratchpad (NaN if none did)."""
    sampled_direct: float
    """Accuracy of the samples that chose a direct answer (NaN if none did)."""
    forced_scratchpad: float
    """Accuracy when every sample starts with the scratchpad mark."""
    forced_direct: float
    """Accuracy when no sample may start with it."""
    mean_length: float
    """Mean tokens of a sample, EOS included."""
    mean_length_correct: float
    mean_length_wrong: float
    pass_at: dict[int, float] = field(default_factory=dict)
    """k -> pass@k, from ``n`` samples per problem."""
    pass_at_k: float = float("nan")
    """pass@k for k = n (the key ``evaluate.EvalReport`` has too)."""
    maj_at_k: float = float("nan")
    """maj@k for k = n: the most frequent final answer of the n samples is right (a sample that
    did not end with EOS does not vote)."""
    k: int = 8
    """= n."""
    n: int = 8
    temperature: float = 1.0
    n_problems: int = 0

    def as_dict(self) -> dict:
        d = asdict(self)
        d["pass_at"] = {str(k): v for k, v in self.pass_at.items()}  # JSON keys are strings
        return d


def evaluate_formats(
    model,
    tokenizer,
    problems: Sequence[Problem],
    n: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int = 24,
    ks: Sequence[int] = (1, 8),
    forced_n: int | None = None,
) -> FormatReport:
    """Every number of ``FormatReport`` on ``problems``: ``n`` free samples each (pass@k for the
    ``ks`` <= n), ``forced_n`` (default ``n``) forced samples per format, one greedy answer."""
    forced_n = forced_n or n
    if any(not 1 <= k <= n for k in ks):
        raise ValueError(f"every k in ks must be in 1..n={n}, got {list(ks)}")
    free = sample_formats(model, tokenizer, problems, n, temperature, seed, max_new_tokens)
    greedy = sample_formats(model, tokenizer, problems, 1, 0.0, seed, max_new_tokens)
    forced = {
        f: sample_formats(
            model, tokenizer, problems, forced_n, temperature, seed, max_new_tokens, f
        )
        for f in ("scratchpad", "direct")
    }
    formats, correct = free.formats, free.correct
    by_format = {
        f: [c for c, g in zip(correct, formats, strict=True) if g == f]
        for f in ("scratchpad", "direct")
    }
    lengths = free.lengths
    votes = [
        majority_answer(
            [parse_final_answer(t) if e else None for t, e in zip(free.texts[i : i + n],
                                                                 free.ended[i : i + n], strict=True)]
        ) == p.answer
        for p, i in zip(problems, range(0, len(free.texts), n), strict=True)
    ]  # fmt: skip
    return FormatReport(
        scratchpad_share=_mean([f == "scratchpad" for f in formats]),
        sampled=_mean(correct),
        greedy=_mean(greedy.correct),
        greedy_scratchpad_share=_mean([f == "scratchpad" for f in greedy.formats]),
        sampled_scratchpad=_mean(by_format["scratchpad"]),
        sampled_direct=_mean(by_format["direct"]),
        forced_scratchpad=_mean(forced["scratchpad"].correct),
        forced_direct=_mean(forced["direct"].correct),
        mean_length=_mean(lengths),
        mean_length_correct=_mean([n_ for n_, c in zip(lengths, correct, strict=True) if c]),
        mean_length_wrong=_mean([n_ for n_, c in zip(lengths, correct, strict=True) if not c]),
        pass_at=pass_at_ks(free, ks),
        pass_at_k=pass_at_ks(free, [n])[n],
        maj_at_k=_mean(votes),
        k=n,
        n=n,
        temperature=temperature,
        n_problems=len(problems),
    )

"""Evaluation on a fixed eval split: greedy and sampled accuracy, pass@k and maj@k.

- **greedy accuracy**: one completion per problem at temperature 0 (argmax at every step).
- **sampled accuracy**: the mean correctness of ``k`` completions per problem at ``temperature``
  (1.0 by default): the probability that one sample is right, what RL optimises.
- **pass@k**: the probability that at least one of ``k`` samples is right, estimated without bias
  from ``n >= k`` samples as ``1 - C(n - c, k) / C(n, k)`` (Chen et al. 2021, arXiv:2107.03374,
  eq. 1), with ``c`` correct samples.
- **maj@k**: the majority answer of ``k`` samples is right (self-consistency, Wang et al. 2022,
  arXiv:2203.11171). Unparseable samples do not vote; ties go to the answer seen first.

Sharpening vs new ability: if RL raises maj@k and sampled accuracy but leaves pass@k flat, the
policy has concentrated on answers it could already find; if pass@k rises too, it learned to
solve problems it could not solve before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from math import comb

import torch

from .rollout import check_temperature, decode_completions, encode_prompts, sample
from .tasks import Problem, generation_limit, parse_answer


def default_max_new_tokens(problems: Sequence[Problem]) -> int:
    """``tasks.generation_limit`` of the longest answer among ``problems``."""
    return generation_limit(max(len(str(p.answer)) for p in problems))


@torch.no_grad()
def sample_answers(
    model,
    tokenizer,
    problems: Sequence[Problem],
    n: int = 1,
    temperature: float = 1.0,
    seed: int = 0,
    max_new_tokens: int | None = None,
    batch_size: int = 512,
) -> list[list[str]]:
    """``n`` decoded completions per problem (``temperature=0``: greedy, then n must be 1)."""
    check_temperature(temperature, allow_greedy=True)
    if not problems:
        raise ValueError("problems is empty: nothing to evaluate")
    if n < 1 or (temperature == 0 and n != 1):
        raise ValueError(f"n must be >= 1 (and 1 for greedy), got n={n}, temperature={temperature}")
    max_new_tokens = max_new_tokens or default_max_new_tokens(problems)
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    prompts = [p.prompt for p in problems]
    per_batch = max(1, batch_size // n)  # problems per batch: each brings n completions
    texts: list[str] = []
    was_training = model.training
    model.eval()
    for start in range(0, len(prompts), per_batch):
        ids, mask = encode_prompts(tokenizer, prompts[start : start + per_batch], device)
        out, _ = sample(model, ids, mask, max_new_tokens, temperature, generator, n)
        texts += decode_completions(tokenizer, out)
    model.train(was_training)
    return [texts[i * n : (i + 1) * n] for i in range(len(problems))]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct: 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority_answer(answers: Sequence[int | None]) -> int | None:
    """The most frequent parsed answer (``None`` does not vote; ties: first seen)."""
    votes = Counter(a for a in answers if a is not None)
    return max(votes, key=votes.__getitem__) if votes else None  # max keeps the first of ties


def accuracy(
    model,
    tokenizer,
    problems: Sequence[Problem],
    temperature: float = 0.0,
    seed: int = 0,
    n: int = 1,
    max_new_tokens: int | None = None,
) -> float:
    """Fraction of correct completions: greedy with ``temperature=0``, else ``n`` samples each."""
    n = 1 if temperature == 0 else n
    samples = sample_answers(model, tokenizer, problems, n, temperature, seed, max_new_tokens)
    hits = [
        parse_answer(t) == p.answer
        for p, texts in zip(problems, samples, strict=True)
        for t in texts
    ]
    return sum(hits) / len(hits)


@dataclass(frozen=True)
class EvalReport:
    """Accuracies of one policy on one eval split, all in [0, 1]."""

    greedy: float
    """Greedy accuracy."""
    sampled: float
    """Mean accuracy of single samples at ``temperature``."""
    pass_at_k: float
    """Probability that at least one of k samples is right."""
    maj_at_k: float
    """Probability that the majority answer of k samples is right."""
    k: int
    temperature: float
    n_problems: int

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate_policy(
    model,
    tokenizer,
    problems: Sequence[Problem],
    k: int = 8,
    temperature: float = 1.0,
    seed: int = 0,
) -> EvalReport:
    """Greedy accuracy, and sampled accuracy, pass@k and maj@k from k samples per problem."""
    greedy = accuracy(model, tokenizer, problems, temperature=0.0)
    samples = sample_answers(model, tokenizer, problems, k, temperature, seed)
    sampled = pass_k = maj_k = 0.0
    for problem, texts in zip(problems, samples, strict=True):
        answers = [parse_answer(t) for t in texts]
        c = sum(a == problem.answer for a in answers)
        sampled += c / k
        pass_k += pass_at_k(k, c, k)
        maj_k += majority_answer(answers) == problem.answer
    m = len(problems)
    return EvalReport(greedy, sampled / m, pass_k / m, maj_k / m, k, temperature, m)

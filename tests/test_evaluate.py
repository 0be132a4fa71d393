"""Tests of grpo_edu.evaluate: pass@k by hand and by enumeration, maj@k votes, accuracy on stubs."""

from __future__ import annotations

from itertools import combinations

import pytest
import torch
from torch import nn

from grpo_edu import evaluate, vocab
from grpo_edu.rollout import _CACHE_ARG
from grpo_edu.tasks import make_problem
from grpo_edu.tokenizer import build_tokenizer

PROBLEMS = [make_problem(e) for e in ("1+2", "10+20", "7-35", "12+7-5", "9*9", "50-50")]


# ------------------------------------------------------------------------------ pass@k, maj@k
@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 2, 1, 0.4),  # pass@1 = c / n
        (5, 2, 2, 0.7),  # 1 - C(3,2)/C(5,2) = 1 - 3/10
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 3, 2, 1.0),  # fewer than k wrong samples: a correct one is always drawn
        (8, 1, 8, 1.0),
        (4, 0, 2, 0.0),
        (8, 8, 1, 1.0),
    ],
)
def test_pass_at_k_hand_values(n, c, k, expected):
    assert evaluate.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("n", [1, 3, 6])
def test_pass_at_k_equals_enumeration_of_subsets(n):
    """The estimator is the share of k-subsets of the n samples that contain a correct one."""
    for c in range(n + 1):
        samples = [True] * c + [False] * (n - c)
        for k in range(1, n + 1):
            subsets = list(combinations(samples, k))
            share = sum(any(s) for s in subsets) / len(subsets)
            assert evaluate.pass_at_k(n, c, k) == pytest.approx(share, abs=1e-12)


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 2, 0), (4, 2, 5)])
def test_pass_at_k_rejects_impossible_counts(n, c, k):
    with pytest.raises(ValueError):
        evaluate.pass_at_k(n, c, k)


@pytest.mark.parametrize(
    "answers, expected",
    [
        ([3, 3, 5], 3),
        ([5, 3, 3, 5], 5),  # tie: the answer seen first wins
        ([3, 5, 5, 3], 3),
        ([None, None, 7], 7),  # unparseable samples do not vote
        ([None, 2, None, 2, 4], 2),
        ([None, None], None),
        ([], None),
        ([0], 0),  # a real answer 0 is not "no answer"
    ],
)
def test_majority_answer(answers, expected):
    assert evaluate.majority_answer(answers) == expected


# --------------------------------------------------------------------------------- a stub model
class _Out(dict):
    __getattr__ = dict.__getitem__


class _StubCache(dict):
    """The stub's "KV cache": each row's target ids and the step. Rows can be re-indexed, as
    prefix sharing does with a real cache (a prompt runs once, its cache serves its group)."""

    def batch_select_indices(self, indices):
        self["targets"] = [self["targets"][i] for i in indices.tolist()]


class AnswerStub(nn.Module):
    """A "model" that writes ``answer + offset`` then EOS for every prompt it is given.

    It reads the prompt on the first call, and plays the characters back one per call through
    the cache, with a logit margin so large that sampling at T=1 is as sure as greedy.
    """

    def __init__(self, offset=lambda answer: 0):
        super().__init__()
        self.offset = offset
        self.dummy = nn.Parameter(torch.zeros(1))  # something for next(model.parameters())
        self.tok = build_tokenizer()

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=True, **kw):
        cache = kw.get(_CACHE_ARG)
        if not isinstance(cache, _StubCache):  # first call: the whole left-padded prompt
            prompts = self.tok.batch_decode(input_ids, skip_special_tokens=True)
            answers = [make_problem(p.removesuffix("=")).answer for p in prompts]
            texts = [str(a + self.offset(a)) for a in answers]
            targets = [
                self.tok(t, add_special_tokens=False).input_ids + [vocab.EOS_ID] for t in texts
            ]
            cache = _StubCache(targets=targets, step=0)
        step = cache["step"]
        logits = torch.zeros(len(input_ids), input_ids.shape[1], len(vocab.VOCAB))  # (B, L, V)
        for i, target in enumerate(cache["targets"]):
            logits[i, -1, target[min(step, len(target) - 1)]] = 100.0
        return _Out(logits=logits, **{_CACHE_ARG: _StubCache(cache, step=step + 1)})


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_accuracy_of_always_right_and_always_wrong(tok, temperature):
    right, wrong = AnswerStub(), AnswerStub(offset=lambda a: 1)
    assert evaluate.accuracy(right, tok, PROBLEMS, temperature=temperature, n=3) == 1.0
    assert evaluate.accuracy(wrong, tok, PROBLEMS, temperature=temperature, n=3) == 0.0


def test_stub_answers_are_decoded_as_written(tok):
    samples = evaluate.sample_answers(AnswerStub(), tok, PROBLEMS, n=2, temperature=1.0)
    assert samples == [[str(p.answer)] * 2 for p in PROBLEMS]  # "-28", "0": signs and zero


def test_evaluate_policy_on_a_half_right_stub(tok):
    half = AnswerStub(offset=lambda a: 0 if a % 2 == 0 else 1)  # right on even answers only
    share = sum(p.answer % 2 == 0 for p in PROBLEMS) / len(PROBLEMS)
    report = evaluate.evaluate_policy(half, tok, PROBLEMS, k=4, temperature=1.0, seed=0)
    assert (report.greedy, report.sampled, report.pass_at_k, report.maj_at_k) == (share,) * 4
    assert (report.k, report.temperature, report.n_problems) == (4, 1.0, len(PROBLEMS))
    assert set(report.as_dict()) >= {"greedy", "sampled", "pass_at_k", "maj_at_k"}


def test_sample_answers_rejects_bad_arguments(tok):
    stub = AnswerStub()
    with pytest.raises(ValueError, match="empty"):
        evaluate.sample_answers(stub, tok, [], n=1)
    with pytest.raises(ValueError, match="greedy"):
        evaluate.sample_answers(stub, tok, PROBLEMS, n=2, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        evaluate.sample_answers(stub, tok, PROBLEMS, n=1, temperature=-1.0)


def test_default_max_new_tokens_fits_longest_answer_and_eos():
    assert evaluate.default_max_new_tokens(PROBLEMS) == len("-28") + 2

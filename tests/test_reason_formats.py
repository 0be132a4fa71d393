"""Tests of the scratchpad tasks: sum<k> splits, formats (parser, step checker) and their rewards."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_edu import formats, tasks, vocab
from grpo_edu.formats import answer_format, check_steps, parse_final_answer, scratchpad_answer
from grpo_edu.rewards import (
    REASONING_REWARDS,
    final_answer_reward,
    get_reward,
    process_step_rewards,
    scratchpad_reward,
    step_mean_reward,
)
from grpo_edu.vocab import EOS_ID, VOCAB

FUZZ = settings(derandomize=True, deadline=None, database=None)
DIGITS = "0123456789"
P = "12+7+5+9="  # answer 33; partial results 19, 24, 33
GOOD = " 12+7=19+5=24+9=33"


def _ids(text: str, eos: bool = True) -> list[int]:
    return [VOCAB.get(ch, vocab.UNK_ID) for ch in text] + ([EOS_ID] if eos else [])


# ------------------------------------------------------------------------------ sum<k> tasks
@pytest.fixture(scope="module", params=tasks.REASONING_TASK_NAMES)
def task(request) -> tasks.Task:
    return tasks.get_task(request.param)


def test_sum_tasks_shape(task):
    k = int(task.name[3:])
    assert task.op == "sum" and task.n_operands == k and len(task.eval) == tasks.N_EVAL
    lo, hi = tasks.SUM_OPERANDS
    for p in task.train + task.eval:
        numbers, signs = formats.terms(p.prompt)
        assert len(numbers) == k and set(signs) == {"+"}
        assert all(lo <= x <= hi for x in numbers) and sum(numbers) == p.answer <= tasks.SUM_MAX


def test_sum_eval_split_is_the_shipped_file_and_held_out_up_to_order(task):
    assert list(task.eval) == tasks.read_jsonl(tasks.eval_path(task.name))
    assert tasks.generate_splits(task.name)[1] == list(task.eval)

    def key(p):
        return tuple(sorted(formats.terms(p.prompt)[0]))

    held_out = {key(p) for p in task.eval}
    assert not any(key(p) in held_out for p in task.train)  # no permutation of an eval problem


def test_unknown_sum_sizes_are_rejected():
    for name in ("sum2", "sum6"):
        with pytest.raises(ValueError, match=f"task '{name}': sum length must be 3..5"):
            tasks.get_task(name)


# ------------------------------------------------------------------------------ formats
def test_scratchpad_answer_and_partial_results():
    assert formats.terms("12+7-5=") == ([12, 7, 5], ["+", "-"])
    assert formats.partial_results(P) == [19, 24, 33]
    assert scratchpad_answer(P) == GOOD
    assert scratchpad_answer("12+7-30=") == " 12+7=19-30=-11"
    for bad in ("47*8=", "12+7", "", None, "a+b="):
        with pytest.raises(ValueError, match="is not a \\+/- chain"):
            formats.terms(bad)


def test_max_completion_len():
    assert formats.max_completion_len("sum4") == 23  # " 35+35=70+..." 21 chars, EOS, a spare


FINAL_CASES = [
    ("33", 33),
    (GOOD, 33),
    (" 12+7=18+5=33", 33),  # the steps are not checked: only the final answer
    ("12+7=19", 19),
    ("=-4", -4),
    ("-4", -4),
    ("033", 33),
    ("33 ", None),
    (" 33", None),
    ("= 33", None),
    (GOOD + "+", None),
    (GOOD + "+1", None),
    ("", None),
    ("=", None),
    ("-", None),
    ("3 3", None),
    ("\u0663\u0663", None),  # Arabic-Indic 33
    ("=3\u0663", None),
    ("9" * tasks.MAX_ANSWER_DIGITS, int("9" * tasks.MAX_ANSWER_DIGITS)),
    ("9" * (tasks.MAX_ANSWER_DIGITS + 1), None),
    ("=" + "9" * (tasks.MAX_ANSWER_DIGITS + 1), None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), FINAL_CASES)
def test_parse_final_answer_table(text, expected):
    value = parse_final_answer(text)
    assert value == expected and (value is None or type(value) is int)


def _reference_final(text: str) -> int | None:
    """parse_final_answer's rules as a loop from the right: an independent implementation."""
    j = len(text)
    i = j
    while i > 0 and text[i - 1] in DIGITS:
        i -= 1
    if i == j or j - i > tasks.MAX_ANSWER_DIGITS:
        return None
    negative = i > 0 and text[i - 1] == "-"
    start = i - 1 if negative else i
    if start > 0 and text[start - 1] != "=":
        return None
    value = 0
    for ch in text[i:j]:
        value = 10 * value + ord(ch) - ord("0")
    return -value if negative else value


_PIECES = [*vocab.CHARS, *vocab.SPECIAL_TOKENS, "=", "+", "\u0663", "\n", "a", "19", "=33"]


@settings(FUZZ, max_examples=1500)
@given(
    st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_PIECES), max_size=30).map("".join))
)
def test_parse_final_answer_fuzz(text):
    value = parse_final_answer(text)
    assert value is None or type(value) is int
    assert value == _reference_final(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("33", "direct"),
        ("-4", "direct"),
        (GOOD, "scratchpad"),
        ("1=", "scratchpad"),
        (" 33", "other"),
        ("", "other"),
        ("33+", "other"),
        (None, "other"),
    ],  # fmt: skip
)
def test_answer_format(text, expected):
    assert answer_format(text) == expected


def _steps(completion: str, prompt: str = P) -> list[tuple]:
    return [
        (s.text, s.value, s.expected, s.local, s.correct) for s in check_steps(prompt, completion)
    ]


def test_check_steps_by_hand():
    assert _steps(GOOD) == [
        (" 12+7=19", 19, 19, True, True),
        ("+5=24", 24, 24, True, True),
        ("+9=33", 33, 33, True, True),
    ]
    # a wrong sum, then right arithmetic on it: locally right, never correct again
    assert _steps(" 12+7=18+5=23+9=32") == [
        (" 12+7=18", 18, 19, False, False),
        ("+5=23", 23, 24, True, False),
        ("+9=32", 32, 33, True, False),
    ]
    # the wrong operand copied: the addition is right, the step is not
    assert _steps(" 12+8=20+5=25") == [
        (" 12+8=20", 20, 19, True, False),
        ("+5=25", 25, 24, True, False),
    ]
    # a lucky result after a wrong step is not correct (its arithmetic is wrong)
    assert _steps(" 12+7=18+5=24")[1] == ("+5=24", 24, 24, False, False)
    # one step too many; a tail that is not a step is left out
    assert _steps(GOOD + "+1=34")[-1] == ("+1=34", 34, None, True, False)
    assert [s.end for s in check_steps(P, GOOD + "+")] == [8, 13, 18]
    assert _steps("33") == _steps("") == _steps("x=1") == []
    assert _steps("12+7=19") == [("12+7=19", 19, 19, True, True)]  # without the mark
    assert _steps(" 12+7=19-5=14", "12+7-5=") == [(" 12+7=19", 19, 19, True, True),
                                                    ("-5=14", 14, 14, True, True)]  # fmt: skip


@settings(FUZZ, max_examples=1000)
@given(
    st.sampled_from(tasks.get_task("sum4").eval[:50] + tasks.get_task("chain3").eval[:50]),
    st.one_of(st.text(max_size=30), st.lists(st.sampled_from(_PIECES), max_size=25).map("".join)),
)
def test_check_steps_fuzz(problem, completion):
    """Never raises; steps tile a prefix of the completion; correct steps form a prefix."""
    steps = check_steps(problem.prompt, completion)
    pos = 0
    for s in steps:
        assert completion[s.start : s.end] == s.text and s.start == pos < s.end
        pos = s.end
    flags = [s.correct for s in steps]
    assert flags == sorted(flags, reverse=True)


@settings(FUZZ, max_examples=300)
@given(st.sampled_from(tasks.get_task("sum5").eval + tasks.get_task("chain4").eval[:100]))
def test_check_steps_accepts_every_reference_scratchpad(problem):
    text = scratchpad_answer(problem.prompt)
    steps = check_steps(problem.prompt, text)
    assert len(steps) == len(formats.terms(problem.prompt)[1]) and all(s.correct for s in steps)
    assert steps[-1].end == len(text) and parse_final_answer(text) == problem.answer


# ------------------------------------------------------------------------------ rewards
COMPLETIONS = ["33", GOOD, " 12+7=18+5=23+9=32", " 12+7=19+5=24+9=34", " 12+7=19+5=24", "x", "",
               GOOD + "+", " 12+7=18+5=33"]  # fmt: skip
EXPECTED = {
    "final_answer": [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    "scratchpad": [0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
    "step_mean": [1.0, 1.0, 0.0, 2 / 3, 0.5, 0.0, 0.0, 2 / 3, 1 / 2],
}


@pytest.mark.parametrize("name", sorted(REASONING_REWARDS))
def test_reasoning_rewards_table_trl_style(name):
    n = len(COMPLETIONS)
    out = REASONING_REWARDS[name](
        prompts=[P] * n, completions=COMPLETIONS, completion_ids=[_ids(c) for c in COMPLETIONS],
        answer=[33] * n, trainer_state=None, log_extra=None, log_metric=None, environments=None,
    )  # fmt: skip
    assert out == pytest.approx(EXPECTED[name]) and all(type(r) is float for r in out)
    assert get_reward(name) is REASONING_REWARDS[name]


@pytest.mark.parametrize("name", sorted(REASONING_REWARDS))
def test_truncated_completions_earn_nothing(name):
    out = REASONING_REWARDS[name]([P, P], ["33", GOOD], answer=[33, 33],
                                  completion_ids=[_ids("33", False), _ids(GOOD, False)])  # fmt: skip
    # step_mean still pays the two right intermediate steps of a scratchpad cut off at the limit
    assert out == ([0.0, 2 / 3] if name == "step_mean" else [0.0, 0.0])


def test_process_step_rewards_by_hand():
    scores = process_step_rewards([P] * 4, [GOOD, " 12+7=19+5=25+9=34", "33", GOOD + "+"],
                                  answer=[33] * 4)  # fmt: skip
    assert scores[0] == [(7, 1.0), (12, 1.0), (18, 1.0)]  # the last step scored at the EOS
    assert scores[1] == [(7, 1.0), (12, 0.0), (18, 0.0)]
    assert scores[2] == [(2, 1.0)]
    assert scores[3] == [(7, 1.0), (12, 1.0), (19, 0.0)]  # "+9=33+" runs on: the outcome is 0
    assert process_step_rewards([P], [GOOD], answer=[33], completion_ids=[_ids(GOOD, False)]) == [
        [(7, 1.0), (12, 1.0), (18, 0.0)]
    ]


@settings(FUZZ, max_examples=400)
@given(st.lists(st.sampled_from(_PIECES), max_size=25).map("".join))
def test_reasoning_rewards_fuzz(completion):
    for fn in (*REASONING_REWARDS.values(),):
        (r,) = fn([P], [completion], answer=[33], completion_ids=[_ids(completion)])
        assert 0.0 <= r <= 1.0
    (scores,) = process_step_rewards([P], [completion], answer=[33])
    positions = [pos for pos, _ in scores]
    assert positions == sorted(set(positions)) and positions[-1] == len(completion)
    assert scores[-1][1] == final_answer_reward([P], [completion], answer=[33])[0]


def test_reasoning_rewards_validate_their_input():
    with pytest.raises(ValueError, match="final_answer_reward needs an 'answer' column"):
        final_answer_reward([P], ["33"])
    with pytest.raises(ValueError, match="step_mean_reward: got 2 prompts but 1 completions"):
        step_mean_reward([P, P], ["33"], answer=[33])
    with pytest.raises(ValueError, match="scratchpad_reward: completion 0 is int"):
        scratchpad_reward([P], [33])
    with pytest.raises(ValueError, match="is not a \\+/- chain"):
        scratchpad_reward(["47*8="], ["33"])
    with pytest.raises(
        ValueError, match="for scratchpad tasks: final_answer, scratchpad, step_mean"
    ):
        get_reward("steps")

"""Tests of grpo_edu.rewards: hand-checked tables, validation messages, and TRL's calling convention."""

from __future__ import annotations

import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grpo_edu import rewards, tasks
from grpo_edu.rewards import (
    REWARDS,
    correctness_reward,
    format_reward,
    get_reward,
    partial_credit_reward,
)
from grpo_edu.vocab import EOS_ID, PAD_ID, VOCAB

P = "47+8="  # the prompt does not enter any reward; one is passed per completion as TRL does


def _ids(text: str, eos: bool = True) -> list[int]:
    """Token ids of a completion as TRL passes them: one per character, then EOS if it stopped."""
    return [VOCAB.get(ch, 3) for ch in text] + ([EOS_ID] if eos else [])


def _call(fn, completions, answers=None, **kwargs):
    columns = {} if answers is None else {"answer": answers}
    return fn(prompts=[P] * len(completions), completions=completions, **columns, **kwargs)


# ---------------------------------------------------------------- correctness
CORRECTNESS_CASES = [
    ("55", 55, 1.0),
    ("54", 55, 0.0),
    (" 55", 55, 1.0),  # leading spaces tolerated (parse_answer)
    ("55 ", 55, 1.0),  # trailing text tolerated: format_reward is what penalises it
    ("55abc", 55, 1.0),
    ("55 is it", 55, 1.0),
    ("055", 55, 1.0),  # read as 55
    ("+55", 55, 1.0),
    ("5 5", 55, 0.0),  # reads 5
    ("-55", 55, 0.0),
    ("-28", -28, 1.0),
    ("28", -28, 0.0),
    ("- 28", -28, 0.0),
    ("-0", 0, 1.0),
    ("0", 0, 1.0),
    ("", 55, 0.0),
    ("abc", 55, 0.0),
    ("\t55", 55, 0.0),
    ("\u0665\u0665", 55, 0.0),  # Arabic-Indic 55
    ("\uff15\uff15", 55, 0.0),  # full-width 55
    ("5\u0665", 55, 0.0),
    ("1971", 1971, 1.0),
]


@pytest.mark.parametrize(("completion", "answer", "expected"), CORRECTNESS_CASES)
def test_correctness_table(completion, answer, expected):
    assert _call(correctness_reward, [completion], [answer]) == [expected]


def test_correctness_batch_in_order():
    completions = [c for c, _, _ in CORRECTNESS_CASES]
    answers = [a for _, a, _ in CORRECTNESS_CASES]
    assert _call(correctness_reward, completions, answers) == [e for _, _, e in CORRECTNESS_CASES]


# ---------------------------------------------------------------- format
FORMAT_CASES = [
    ("55", 1.0),
    ("0", 1.0),
    ("-28", 1.0),
    ("1971", 1.0),
    ("9" * tasks.MAX_ANSWER_DIGITS, 1.0),
    ("-" + "9" * tasks.MAX_ANSWER_DIGITS, 1.0),
    ("9" * (tasks.MAX_ANSWER_DIGITS + 1), 0.0),
    ("", 0.0),
    (" 55", 0.0),
    ("55 ", 0.0),
    ("55abc", 0.0),
    ("55<eos>", 0.0),  # TRL decodes with special tokens skipped; a literal "<eos>" is text
    ("55\n", 0.0),
    ("-0", 0.0),
    ("055", 0.0),
    ("00", 0.0),
    ("+55", 0.0),
    ("- 5", 0.0),
    ("-", 0.0),
    ("5 5", 0.0),
    ("5-3", 0.0),
    ("\u0665\u0665", 0.0),
    ("\uff15\uff15", 0.0),
    ("5\u0665", 0.0),
]


@pytest.mark.parametrize(("completion", "expected"), FORMAT_CASES)
def test_format_table_text_only(completion, expected):
    assert _call(format_reward, [completion]) == [expected]


@pytest.mark.parametrize(("completion", "expected"), FORMAT_CASES)
def test_format_table_ended_with_eos(completion, expected):
    assert _call(format_reward, [completion], completion_ids=[_ids(completion)]) == [expected]


@pytest.mark.parametrize(("completion", "_"), FORMAT_CASES)
def test_format_truncated_completion_always_fails(completion, _):
    """No EOS at the end: the model was cut off at the length limit, whatever the text says."""
    assert _call(format_reward, [completion], completion_ids=[_ids(completion, eos=False)]) == [0.0]


@pytest.mark.parametrize(
    ("ids", "expected"),
    [
        ([9, 9, EOS_ID], 1.0),
        ((9, 9, EOS_ID), 1.0),
        ([9, 9], 0.0),
        ([9, 9, PAD_ID], 0.0),  # pad is not EOS here (ids 0 and 2)
        ([EOS_ID, 9, 9], 0.0),
        ([], 0.0),
    ],
)
def test_format_reads_only_the_last_id(ids, expected):
    assert _call(format_reward, ["55"], completion_ids=[ids]) == [expected]


def test_format_ignores_the_answer_column():
    assert _call(format_reward, ["54", "55"], [55, 55]) == [1.0, 1.0]


# ---------------------------------------------------------------- partial credit
PARTIAL_CASES = [
    ("55", 55, Fraction(1)),
    ("54", 55, Fraction(1, 2)),
    ("45", 55, Fraction(1, 2)),
    ("5", 55, Fraction(1, 2)),  # right-aligned: the units digit matches
    ("155", 55, Fraction(2, 3)),  # one extra digit
    ("-55", 55, Fraction(2, 3)),  # an extra sign
    ("66", 55, Fraction(0)),
    ("550", 55, Fraction(1, 3)),  # shifted: only the tens 5 lines up with a 5
    ("abc", 55, Fraction(0)),
    ("", 55, Fraction(0)),
    ("- 55", 55, Fraction(0)),  # unparseable
    ("055", 55, Fraction(1)),  # parsed as 55, then compared canonically
    ("55abc", 55, Fraction(1)),
    ("-28", -28, Fraction(1)),
    ("28", -28, Fraction(2, 3)),  # sign missing
    ("-27", -28, Fraction(2, 3)),
    ("-18", -28, Fraction(2, 3)),
    ("0", 0, Fraction(1)),
    ("10", 0, Fraction(1, 2)),
    ("1971", 1971, Fraction(1)),
    ("1970", 1971, Fraction(3, 4)),
    ("971", 1971, Fraction(3, 4)),
    ("2971", 1971, Fraction(3, 4)),
    ("19710", 1971, Fraction(0)),
]


@pytest.mark.parametrize(("completion", "answer", "expected"), PARTIAL_CASES)
def test_partial_credit_table(completion, answer, expected):
    assert _call(partial_credit_reward, [completion], [answer]) == [pytest.approx(float(expected))]


@settings(derandomize=True, deadline=None, database=None, max_examples=400)
@given(
    st.one_of(st.integers(-(10**6), 10**6).map(str), st.text(alphabet="0123456789- x", max_size=9)),
    st.integers(-(10**6), 10**6),
)
def test_partial_credit_is_one_exactly_when_correct(completion, answer):
    (partial,) = _call(partial_credit_reward, [completion], [answer])
    (correct,) = _call(correctness_reward, [completion], [answer])
    assert 0.0 <= partial <= 1.0
    assert (partial == 1.0) == (correct == 1.0)
    if tasks.parse_answer(completion) is None:
        assert partial == 0.0


# ---------------------------------------------------------------- all rewards
@pytest.mark.parametrize("name", sorted(REWARDS))
def test_trl_style_call_with_extra_kwargs(name):
    """TRL passes keywords only: prompts, completions, completion_ids, every column, and extras."""
    completions = ["55", "54", " 55", "55"]
    out = REWARDS[name](
        prompts=[P] * 4,
        completions=completions,
        completion_ids=[_ids("55"), _ids("54"), _ids(" 55"), _ids("55", eos=False)],
        answer=[55] * 4,
        other_column=["x"] * 4,
        trainer_state=None,
        log_extra=lambda column, values: None,
        log_metric=lambda name, value: None,
        environments=None,
    )
    assert len(out) == 4 and all(type(r) is float and 0.0 <= r <= 1.0 for r in out)
    expected = {
        "correctness": [1.0, 0.0, 1.0, 1.0],
        "format": [1.0, 1.0, 0.0, 0.0],
        "partial": [1.0, 0.5, 1.0, 1.0],
    }[name]
    assert out == expected


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_empty_batch_and_tuple_inputs(name):
    assert REWARDS[name](prompts=[], completions=[], answer=[]) == []
    assert REWARDS[name](prompts=(P,), completions=("55",), answer=(55,)) == [1.0]


def test_numpy_integer_answers_are_accepted():
    np = pytest.importorskip("numpy")
    answers = np.array([55, -28])
    assert _call(correctness_reward, ["55", "-28"], answers) == [1.0, 1.0]
    assert _call(partial_credit_reward, ["55", "28"], list(answers)) == [1.0, pytest.approx(2 / 3)]


def test_get_reward():
    assert get_reward("correctness") is correctness_reward
    assert get_reward("format") is format_reward
    assert get_reward("partial") is partial_credit_reward
    for bad in ["nope", "", "Correctness", None]:
        with pytest.raises(ValueError, match="valid names: correctness, format, partial"):
            get_reward(bad)


def test_rewards_module_does_not_import_torch():
    code = "import sys, grpo_edu.rewards; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(rewards.__file__).parents[2])


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("name", sorted(REWARDS))
def test_length_mismatch(name):
    with pytest.raises(ValueError, match=r"got 2 prompts but 1 completions"):
        REWARDS[name](prompts=[P, P], completions=["55"], answer=[55])


@pytest.mark.parametrize("name", sorted(REWARDS))
@pytest.mark.parametrize("bad", [None, 55, b"55", [{"role": "assistant", "content": "55"}]])
def test_non_str_completion_names_its_index(name, bad):
    with pytest.raises(
        ValueError, match=rf"{REWARDS[name].__name__}: completion 1 is .*expected str"
    ):
        REWARDS[name](prompts=[P, P], completions=["55", bad], answer=[55, 55])


@pytest.mark.parametrize("name", sorted(REWARDS))
def test_single_string_instead_of_list(name):
    with pytest.raises(ValueError, match="completions must be a list, got str"):
        REWARDS[name](prompts=[P], completions="55", answer=[55])


@pytest.mark.parametrize("fn", [correctness_reward, partial_credit_reward])
def test_missing_answer_column(fn):
    message = (
        f"{fn.__name__} needs an 'answer' column (a list of ints, one per completion); "
        "got columns: ['solution']"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        fn(
            prompts=[P],
            completions=["55"],
            solution=["55"],
            completion_ids=[_ids("55")],
            trainer_state=None,
            log_extra=None,
            log_metric=None,
        )
    with pytest.raises(ValueError, match=re.escape("got columns: []")):
        fn([P], ["55"])


@pytest.mark.parametrize("fn", [correctness_reward, partial_credit_reward])
@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ([55, 55], "got 2 answers but 1 completions"),
        ([True], r"answer 0 is bool \(True\), expected int"),
        (["55"], r"answer 0 is str \('55'\), expected int"),
        ([55.0], r"answer 0 is float \(55.0\), expected int"),
        ([None], r"answer 0 is NoneType \(None\), expected int"),
        (55, "'answer' must be a list of ints, one per completion, got int"),
        ("55", "'answer' must be a list of ints, one per completion, got str"),
    ],
)
def test_bad_answer_column(fn, answer, match):
    with pytest.raises(ValueError, match=match):
        fn(prompts=[P], completions=["55"], answer=answer)


def test_completion_ids_length_mismatch():
    with pytest.raises(ValueError, match="got 2 completion_ids but 1 completions"):
        format_reward([P], ["55"], completion_ids=[_ids("55"), _ids("55")])


# ---------------------------------------------------------------- the real TRL call
@pytest.mark.slow
def test_trl_grpo_trainer_calls_the_rewards():
    """Run TRL's own ``GRPOTrainer._calculate_rewards`` on a stand-in trainer with our rewards."""
    torch = pytest.importorskip("torch")
    trl = pytest.importorskip("trl")
    from types import SimpleNamespace

    funcs = list(REWARDS.values())
    trainer = SimpleNamespace(
        accelerator=SimpleNamespace(device=torch.device("cpu"), is_main_process=True),
        state=SimpleNamespace(global_step=0),
        args=SimpleNamespace(report_to=[]),
        reward_funcs=funcs,
        reward_processing_classes=[None] * len(funcs),
        reward_func_names=[f.__name__ for f in funcs],
        _log_completion_extra=lambda *args, **kwargs: None,
        _log_metric=lambda *args, **kwargs: None,
        environments=None,
    )
    inputs = [{"prompt": P, "answer": 55}] * 3  # one prompt, G = 3
    completions = ["55", "54 ", "55"]
    completion_ids = [_ids("55"), _ids("54 "), _ids("55", eos=False)]
    got = trl.GRPOTrainer._calculate_rewards(
        trainer, inputs, [P] * 3, completions, completion_ids
    )  # (B, n_funcs)
    expected = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.5], [1.0, 0.0, 1.0]])
    torch.testing.assert_close(got, expected)

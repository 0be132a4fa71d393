"""Checks of the text exercises: the answer parser and the correctness reward."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from grpo_edu.rewards import correctness_reward
from grpo_edu.tasks import MAX_ANSWER_DIGITS, parse_answer

from ..feedback import Case, Mistake
from ..judge import CaseCheck, run_check

_ASCII_ONLY = (
    "only the ASCII digits 0-9 count: str.isdigit(), int() and the regex \\d also accept "
    "Arabic-Indic ('٤٢') and full-width ('４２') digits, which the tokenizer never produces; "
    "use the character class [0-9]."
)
_PARSE_CASES = [
    ("a bare answer", "55", None),
    ("leading spaces are skipped", "  42", "skip leading ASCII spaces before the number."),
    ("a negative answer", "-7", "one optional sign, + or -, directly before the digits."),
    ("a plus sign", "+7", "one optional sign, + or -, directly before the digits."),
    (
        "text after the number is ignored",
        "55abc",
        "the answer is the first run of digits; "
        "ignore whatever follows it (int(text) raises on '55abc').",
    ),
    ("a sentence after the number", "42 is it", "ignore whatever follows the first run of digits."),
    (
        "an expression is not evaluated",
        "47+8",
        "the answer is the first run of digits (47); never evaluate the text (no eval!).",
    ),
    ("a leading zero", "007", None),
    ("empty text", "", "no digits at the start -> return None (never raise)."),
    (
        "a missing completion",
        None,
        "parse_answer(None) must return None: a missing completion has no answer.",
    ),
    ("no number", "abc", "no digits at the start -> return None (never raise)."),
    (
        "the number is not at the start",
        "abc 42",
        "the answer must be at the start of the text (after spaces): use re.match, not re.search.",
    ),
    (
        "a space between sign and digits",
        "- 7",
        "the sign must be directly before the digits: '- 7' has no answer.",
    ),
    ("a tab is not a space", "\t42", "only ASCII spaces are skipped, not tabs or newlines."),
    ("Arabic-Indic digits", "٤٢", _ASCII_ONLY),
    ("full-width digits", "４２", _ASCII_ONLY),
    (
        "ASCII digits running into a non-ASCII digit",
        "4٢",
        "a run of ASCII digits followed "
        "directly by another (non-ASCII) digit is ambiguous -> None.",
    ),
    (f"{MAX_ANSWER_DIGITS} digits", "9" * MAX_ANSWER_DIGITS, None),
    (
        f"{MAX_ANSWER_DIGITS + 1} digits",
        "9" * (MAX_ANSWER_DIGITS + 1),
        f"a run of more than "
        f"MAX_ANSWER_DIGITS={MAX_ANSWER_DIGITS} digits is noise, not an answer -> None.",
    ),
]


def _random_texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = "0123456789" * 3 + "+- abc=\t٤"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))) for _ in range(n)]


def parse_answer_check(seed: int = 0, n_random: int = 10) -> CaseCheck:
    cases = [Case(label, {"text": text}, hint) for label, text, hint in _PARSE_CASES]
    cases += [
        Case(f"random text #{i}", {"text": t}) for i, t in enumerate(_random_texts(seed, n_random))
    ]
    return CaseCheck("parse_answer", cases, parse_answer)


def check_parse_answer(fn: Callable, *, seed: int = 0, n_random: int = 10, quiet: bool = False):
    """Compare your ``parse_answer(text) -> int | None`` with ``grpo_edu.tasks.parse_answer``.

    Runs the rules of the docstring case by case, then ``n_random`` random strings drawn with
    ``seed``. Raises ``ExerciseFailed`` (an ``AssertionError``) at the first difference.
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(parse_answer_check(seed, n_random), fn, quiet)


_TRL_EXTRAS = {"completion_ids": None, "trainer_state": None}
"""Extra keyword arguments the check passes, as TRL's GRPOTrainer does."""


def _reward_case(label: str, prompts, completions, answer, hint=None) -> Case:
    args = {"prompts": prompts, "completions": completions, "answer": answer}
    extras = dict(_TRL_EXTRAS, completion_ids=[[0] * len(c) for c in completions])
    return Case(label, args, hint, kwargs=extras, by_keyword=True)


def _string_compare(prompts, completions, answer, **kwargs):
    return [1.0 if c.strip() == str(a) else 0.0 for c, a in zip(completions, answer, strict=True)]


def _as_bool(prompts, completions, answer, **kwargs):
    return [parse_answer(c) == a for c, a in zip(completions, answer, strict=True)]


_REWARD_MISTAKES = [
    Mistake(
        _string_compare,
        "read the answer with parse_answer, as the library does: ' 55', "
        "'+55' and '55abc' all answer 55 (penalising extra text is format_reward's job).",
    ),
    Mistake(
        _as_bool,
        "return floats (1.0 / 0.0), not booleans: a reward is a number that "
        "gets summed with other rewards and averaged.",
    ),
]


def correctness_reward_check(seed: int = 0, n_random: int = 10) -> CaseCheck:
    cases = [
        _reward_case(
            "four answers to one prompt", ["47+8="] * 4, ["55", " 55", "55abc", "54"], [55] * 4
        ),
        _reward_case("negative answers", ["12-40="] * 3, ["-28", "28", "+28"], [-28] * 3),
        _reward_case("unparseable completions", ["3+4="] * 3, ["", "seven", "- 7"], [7] * 3),
        _reward_case(
            "answers as numpy integers (a datasets column)",
            ["3+4=", "9+9="],
            ["7", "18"],
            list(np.array([7, 18])),
        ),
    ]
    rng = random.Random(seed)
    for i in range(n_random):
        answers = [rng.randint(-99, 198) for _ in range(4)]
        texts = [rng.choice([str(a), str(a + 1), f" {a}", f"{a}x", "", str(-a)]) for a in answers]
        cases.append(_reward_case(f"random batch #{i}", ["?="] * 4, texts, answers))
    errors = [
        (
            "unexpected keyword argument",
            "TRL calls a reward function with keyword "
            "arguments only and passes every dataset column plus extras (completion_ids, "
            "trainer_state, ...): end the signature with **kwargs.",
        ),
        (
            "required positional argument",
            "TRL passes arguments by name: the parameters "
            "must be called prompts, completions and answer (the dataset column).",
        ),
    ]
    return CaseCheck("correctness_reward", cases, correctness_reward, _REWARD_MISTAKES, errors)


def check_correctness_reward(
    fn: Callable, *, seed: int = 0, n_random: int = 10, quiet: bool = False
):
    """Compare your TRL-style ``correctness_reward`` with ``grpo_edu.rewards.correctness_reward``.

    The check calls it as TRL's ``GRPOTrainer`` does: keyword arguments only, with extra columns
    (``completion_ids``, ``trainer_state``) that a reward must accept and ignore (``**kwargs``).
    """
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_check(correctness_reward_check(seed, n_random), fn, quiet)

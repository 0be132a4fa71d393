"""Answer formats of the +/- tasks: direct or scratchpad, the final-answer parser, the step checker.

An answer to ``"12+7+5+9="`` (task ``sum4``) comes in one of two formats (``FORMATS``)::

    direct       "33"
    scratchpad   " 12+7=19+5=24+9=33"     a leading space, then every operation with its result

The leading space is the model's choice of format: one token, which RL can learn to choose.
``parse_final_answer`` reads the integer a completion ends with (after its last ``=``, or the
whole text), ``answer_format`` says which format a completion has, and ``check_steps`` is the
step checker: which intermediate results of a scratchpad are right, and where each step ends
(what process supervision scores). Everything is a regular expression over ASCII; nothing is
ever passed to ``eval``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .tasks import MAX_ANSWER_DIGITS, get_task

FORMATS = ("direct", "scratchpad")
"""The two answer formats of a ``+``/``-`` prompt: ``"33"`` and ``" 12+7=19+5=24+9=33"``."""
SCRATCHPAD_MARK = " "
"""First character of a scratchpad: choosing the format is choosing this one token."""

_TERMS = re.compile(r"([0-9]+)((?:[+-][0-9]+)+)=")
_FINAL = re.compile(rf"(?:^|=)(-?[0-9]{{1,{MAX_ANSWER_DIGITS}}})\Z")
_FIRST = re.compile(rf"{SCRATCHPAD_MARK}?([0-9]{{1,{MAX_ANSWER_DIGITS}}})")
_STEP = re.compile(rf"([+-])([0-9]{{1,{MAX_ANSWER_DIGITS}}})=(-?[0-9]{{1,{MAX_ANSWER_DIGITS}}})")


def terms(prompt: str) -> tuple[list[int], list[str]]:
    """``"12+7-5="`` -> ``([12, 7, 5], ["+", "-"])``; ValueError for anything but a +/- chain."""
    m = _TERMS.fullmatch(prompt) if isinstance(prompt, str) else None
    if m is None:
        raise ValueError(f"prompt {prompt!r} is not a +/- chain such as '12+7+5='")
    signs = re.findall(r"[+-]", m.group(2))
    return [int(m.group(1)), *map(int, re.findall(r"[0-9]+", m.group(2)))], signs


def partial_results(prompt: str) -> list[int]:
    """The running value after each operation, left to right: ``"12+7+5+9="`` -> [19, 24, 33]."""
    numbers, signs = terms(prompt)
    values, value = [], numbers[0]
    for sign, x in zip(signs, numbers[1:], strict=True):
        value = value + x if sign == "+" else value - x
        values.append(value)
    return values


def scratchpad_answer(prompt: str) -> str:
    """The scratchpad target: ``"12+7+5+9="`` -> ``" 12+7=19+5=24+9=33"`` (no EOS)."""
    numbers, signs = terms(prompt)
    steps = [
        f"{s}{x}={v}" for s, x, v in zip(signs, numbers[1:], partial_results(prompt), strict=True)
    ]
    return SCRATCHPAD_MARK + str(numbers[0]) + "".join(steps)


def max_completion_len(name: str) -> int:
    """Tokens a scratchpad answer of task ``name`` may need, EOS and one spare token included."""
    task = get_task(name)
    return max(len(scratchpad_answer(p.prompt)) for p in task.train + task.eval) + 2


def answer_format(text: str | None) -> str:
    """``"scratchpad"`` if ``text`` writes a step (contains ``=``), ``"direct"`` if it is one bare
    integer, else ``"other"`` (empty, truncated, anything else)."""
    if not isinstance(text, str):
        return "other"
    if "=" in text:
        return "scratchpad"
    return "direct" if re.fullmatch(r"-?[0-9]+", text) else "other"


def parse_final_answer(text: str | None) -> int | None:
    """The integer a completion ends with: after its last ``=``, or the whole text; else ``None``.

    Safe by construction (a regular expression over ASCII digits, never ``eval``). Rules:

    - the answer is a run of 1..``MAX_ANSWER_DIGITS`` ASCII digits, with an optional ``-``,
      that **ends the text** and starts it or follows an ``=``: ``"33"`` -> 33,
      ``" 12+7=19+5=24+9=33"`` -> 33, ``"=-4"`` -> -4;
    - anything after the number makes it no answer: ``"33 "``, ``"...=33+"`` -> None (a
      scratchpad that runs on has not answered);
    - no spaces inside: ``" 33"`` (the scratchpad mark and no step) and ``"= 33"`` -> None;
    - non-ASCII digits and digit runs longer than ``MAX_ANSWER_DIGITS`` -> None.
    """
    if not isinstance(text, str):
        return None
    m = _FINAL.search(text)
    return None if m is None else int(m.group(1))


@dataclass(frozen=True)
class Step:
    """One operation of a scratchpad, as ``check_steps`` reads it."""

    text: str
    """What the model wrote for it: ``" 12+7=19"`` (the first step, mark included) or ``"+5=24"``."""
    start: int
    """Index in the completion text of the step's first character."""
    end: int
    """Index just past its last character: ``text == completion[start:end]``."""
    value: int
    """The result the model wrote after ``=``."""
    expected: int | None
    """The true running value after this many operations (None: more steps than operations)."""
    local: bool
    """The arithmetic is right given what the model wrote before (its previous result)."""
    correct: bool
    """The right next step of the right solution: the prompt's next operator and operand, the
    true running value, and (first step) the first operand copied right. Correct steps form a
    prefix of the scratchpad: after a wrong result, no later step can be correct."""


def check_steps(prompt: str, completion: str) -> list[Step]:
    """The step checker: each operation of a scratchpad completion, and whether it is right.

    A scratchpad is an optional ``SCRATCHPAD_MARK``, the first operand, then steps
    ``<sign><operand>=<result>``. Reading stops at the first thing that is not a step; the rest
    (``completion[steps[-1].end:]``) is not a step. A completion without any step (a direct answer,
    or text without ``=``) gives ``[]``. Never raises on ``completion``; ``prompt`` must be a
    +/- chain (``terms``).
    """
    numbers, signs = terms(prompt)
    expected = partial_results(prompt)
    if not isinstance(completion, str) or (first := _FIRST.match(completion)) is None:
        return []
    written, pos, steps = int(first.group(1)), first.end(), []
    on_track = written == numbers[0]
    while (m := _STEP.match(completion, pos)) is not None:
        k = len(steps)
        sign, x, value = m.group(1), int(m.group(2)), int(m.group(3))
        local = value == (written + x if sign == "+" else written - x)
        on_track = on_track and k < len(signs) and (sign, x) == (signs[k], numbers[k + 1])
        on_track = on_track and local and value == expected[k]
        start = 0 if k == 0 else pos
        steps.append(Step(completion[start : m.end()], start, m.end(), value,
                          expected[k] if k < len(expected) else None, local, on_track))  # fmt: skip
        written, pos = value, m.end()
    return steps

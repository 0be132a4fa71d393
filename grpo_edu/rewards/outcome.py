"""Outcome rewards of the bare-integer tasks: correctness, format, partial credit (see ``rewards``).

Also the argument checks every reward of the package shares (``_check_batch``).
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Sequence

from grpo_edu.tasks import MAX_ANSWER_DIGITS, parse_answer
from grpo_edu.vocab import EOS_ID

RewardFn = Callable[..., list[float]]

_TRL_EXTRAS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})
"""Keyword arguments TRL adds that are not dataset columns (left out of error messages)."""

_BARE_INTEGER = re.compile(rf"0|-?[1-9][0-9]{{0,{MAX_ANSWER_DIGITS - 1}}}")
"""``0``, or an optional ``-`` and 1..MAX_ANSWER_DIGITS ASCII digits without a leading zero."""


def _is_list_like(value) -> bool:
    """A list, tuple, array or other sized iterable, but not a single string."""
    return (
        not isinstance(value, (str, bytes))
        and hasattr(value, "__len__")
        and hasattr(value, "__iter__")
    )


def _check_batch(
    fn_name: str,
    prompts: Sequence,
    completions: Sequence,
    answer: Sequence | None = None,
    completion_ids: Sequence | None = None,
    needs_answer: bool = False,
    columns: dict | None = None,
) -> list[int] | None:
    """Validate one call; return ``answer`` as Python ints when ``needs_answer``, else ``None``.

    Raises ``ValueError`` naming ``fn_name`` and the offending index, so that a misconfigured
    dataset fails on the first step with a message, not with a silent reward of 0.
    """
    for arg, value in (("prompts", prompts), ("completions", completions)):
        if not _is_list_like(value):
            raise ValueError(f"{fn_name}: {arg} must be a list, got {type(value).__name__}")
    n = len(completions)
    if len(prompts) != n:
        raise ValueError(
            f"{fn_name}: got {len(prompts)} prompts but {n} completions; "
            "TRL passes one prompt per completion (each prompt repeated G times)"
        )
    for i, c in enumerate(completions):
        if not isinstance(c, str):
            raise ValueError(
                f"{fn_name}: completion {i} is {type(c).__name__} ({c!r:.40}), expected str "
                "(conversational completions are not supported: the toy tasks are plain text)"
            )
    if completion_ids is not None and len(completion_ids) != n:
        raise ValueError(f"{fn_name}: got {len(completion_ids)} completion_ids but {n} completions")
    if not needs_answer:
        return None
    if answer is None:
        got = sorted(k for k in (columns or {}) if k not in _TRL_EXTRAS and k != "completion_ids")
        raise ValueError(
            f"{fn_name} needs an 'answer' column (a list of ints, one per completion); "
            f"got columns: {got}"
        )
    if not _is_list_like(answer):
        raise ValueError(
            f"{fn_name}: 'answer' must be a list of ints, one per completion, "
            f"got {type(answer).__name__}"
        )
    if len(answer) != n:
        raise ValueError(f"{fn_name}: got {len(answer)} answers but {n} completions")
    answers = []
    for i, a in enumerate(answer):
        if isinstance(a, bool) or not isinstance(a, numbers.Integral):
            raise ValueError(
                f"{fn_name}: answer {i} is {type(a).__name__} ({a!r:.40}), expected int"
            )
        answers.append(int(a))  # numpy integers from a datasets/pandas column become Python ints
    return answers


def correctness_reward(
    prompts: Sequence, completions: Sequence[str], answer: Sequence[int] | None = None, **kwargs
) -> list[float]:
    """1.0 where the completion's answer equals the true answer, else 0.0.

    Definition: ``r_i = 1[parse_answer(completions[i]) == answer[i]]``, with ``tasks.parse_answer``:
    leading spaces and a ``+`` sign are tolerated, and so is any text after the number
    (``"55 is it"``, ``"55abc"``); an unparseable completion scores 0. Penalising extra text is
    ``format_reward``'s job, so that each reward measures one thing.

    TRL signature: pass unchanged as ``GRPOTrainer(reward_funcs=[correctness_reward])`` on a dataset
    with an ``answer`` column of ints; every other keyword argument is ignored.

    >>> correctness_reward(["47+8="] * 4, ["55", " 55", "55abc", "54"], answer=[55] * 4)
    [1.0, 1.0, 1.0, 0.0]
    """
    answers = _check_batch(
        "correctness_reward", prompts, completions, answer, needs_answer=True, columns=kwargs
    )
    return [1.0 if parse_answer(c) == a else 0.0 for c, a in zip(completions, answers, strict=True)]


def format_reward(
    prompts: Sequence,
    completions: Sequence[str],
    completion_ids: Sequence[Sequence[int]] | None = None,
    **kwargs,
) -> list[float]:
    """1.0 where the completion is one bare integer and the model stopped by itself, else 0.0.

    Definition: ``r_i = 1`` iff both
      - the whole text is a canonical integer: ``-?[0-9]+`` (ASCII digits only), no leading zero
        except ``"0"`` itself, no ``"-0"``, no ``+``, no spaces, at most ``tasks.MAX_ANSWER_DIGITS``
        digits;
      - when ``completion_ids`` is given, the completion ended with EOS
        (``completion_ids[i][-1] == vocab.EOS_ID``): a completion cut off at the length limit fails
        even if its text looks right. Without ``completion_ids`` only the text is checked.
    Correctness is not checked: ``"54"`` for ``"47+8="`` is well formed.

    TRL signature: TRL always passes ``completion_ids`` (ending with EOS when generation stopped);
    other keyword arguments, ``answer`` included, are ignored.

    >>> format_reward(["47+8="] * 6, ["55", "-3", " 55", "55 ", "055", "-0"])
    [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    >>> format_reward(["47+8="] * 2, ["55", "55"], completion_ids=[[9, 9, 2], [9, 9]])
    [1.0, 0.0]
    """
    _check_batch("format_reward", prompts, completions, completion_ids=completion_ids)
    rewards = [1.0 if _BARE_INTEGER.fullmatch(c) else 0.0 for c in completions]
    if completion_ids is not None:
        ended = [len(ids) > 0 and int(ids[-1]) == EOS_ID for ids in completion_ids]
        rewards = [r if e else 0.0 for r, e in zip(rewards, ended, strict=True)]
    return rewards


def _digit_credit(predicted: int, target: int) -> float:
    """Right-aligned character agreement of ``str(predicted)`` and ``str(target)`` (see below)."""
    p, t = str(predicted), str(target)
    matches = sum(a == b for a, b in zip(reversed(p), reversed(t), strict=False))
    return matches / max(len(p), len(t))


def partial_credit_reward(
    prompts: Sequence, completions: Sequence[str], answer: Sequence[int] | None = None, **kwargs
) -> list[float]:
    """Digit-level credit in [0, 1]: the share of the answer's characters in the right place.

    Definition: parse the completion with ``tasks.parse_answer`` (0.0 if unparseable) and write
    both numbers canonically, ``p = str(parsed)`` and ``t = str(answer)`` (sign included, no leading
    zeros). Align them on the right, because arithmetic is done from the units digit, and count
    the positions where both have the same character::

        r = #{k : p[-k] == t[-k]} / max(len(p), len(t))

    Dividing by the longer length is the length-mismatch penalty: a missing or extra digit, or a
    missing or extra ``-``, is a position that cannot match. ``r == 1.0`` exactly iff the answer is
    correct (the canonical strings are then equal); every wrong answer scores at most
    ``(L - 1) / L``. As in ``correctness_reward``, leading spaces and trailing text are tolerated.

    Examples for ``answer = 55``: ``"55"`` 1.0, ``"54"`` 0.5, ``"45"`` 0.5, ``"5"`` 0.5,
    ``"155"`` 2/3, ``"-55"`` 2/3, ``"66"`` 0.0, ``"abc"`` 0.0. For ``answer = -28``: ``"28"`` 2/3,
    ``"-27"`` 2/3.

    TRL signature: as ``correctness_reward`` (needs the ``answer`` column; other keywords ignored).

    >>> partial_credit_reward(["47+8="] * 4, ["55", "54", "155", "x"], answer=[55] * 4)
    [1.0, 0.5, 0.6666666666666666, 0.0]
    """
    answers = _check_batch(
        "partial_credit_reward", prompts, completions, answer, needs_answer=True, columns=kwargs
    )
    rewards = []
    for c, a in zip(completions, answers, strict=True):
        parsed = parse_answer(c)
        rewards.append(0.0 if parsed is None else _digit_credit(parsed, a))
    return rewards

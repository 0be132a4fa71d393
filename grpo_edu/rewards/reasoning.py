"""Rewards of the scratchpad tasks: outcome, format, the process reward model, a shaped reward.

Every one reads a completion with ``grpo_edu.formats`` (final-answer parser, step checker) and,
but ``process_step_rewards``, has TRL's signature ``f(prompts, completions, **columns)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from grpo_edu.formats import (
    SCRATCHPAD_MARK,
    answer_format,
    check_steps,
    parse_final_answer,
    terms,
)
from grpo_edu.rewards.outcome import _check_batch
from grpo_edu.vocab import EOS_ID


def _ended(completion_ids: Sequence[Sequence[int]] | None, n: int) -> list[bool]:
    """Whether each completion stopped with EOS (all True when ``completion_ids`` is not given)."""
    if completion_ids is None:
        return [True] * n
    return [len(ids) > 0 and int(ids[-1]) == EOS_ID for ids in completion_ids]


def final_answer_reward(
    prompts: Sequence,
    completions: Sequence[str],
    answer: Sequence[int] | None = None,
    completion_ids: Sequence[Sequence[int]] | None = None,
    **kwargs,
) -> list[float]:
    """The outcome reward: 1.0 where the final answer is right and the model stopped, else 0.0.

    Definition: ``r_i = 1[parse_final_answer(completions[i]) == answer[i]]``, times
    ``1[completion ended with EOS]`` when ``completion_ids`` is given. ``formats.parse_final_answer``
    reads the integer the text ends with, after its last ``=``: ``"33"`` and
    ``" 12+7=19+5=24+9=33"`` both answer 33, whatever the steps say; ``"33 "`` and ``"...=33+"``
    do not answer. This is the only reward of DeepSeek-R1-Zero's run that the answer earns: it
    never looks at the steps.

    TRL signature: needs the ``answer`` column; other keyword arguments are ignored.

    >>> final_answer_reward(["12+7+5+9="] * 3, ["33", " 12+7=19+5=24+9=33", " 12+7=18+5=33"],
    ...                     answer=[33] * 3)
    [1.0, 1.0, 1.0]
    """
    answers = _check_batch("final_answer_reward", prompts, completions, answer, completion_ids,
                           needs_answer=True, columns=kwargs)  # fmt: skip
    return _outcome(completions, answers, completion_ids)


def _outcome(completions, answers: list[int], completion_ids) -> list[float]:
    ended = _ended(completion_ids, len(completions))
    return [
        1.0 if e and parse_final_answer(c) == a else 0.0
        for c, a, e in zip(completions, answers, ended, strict=True)
    ]


def scratchpad_reward(
    prompts: Sequence,
    completions: Sequence[str],
    completion_ids: Sequence[Sequence[int]] | None = None,
    **kwargs,
) -> list[float]:
    """The format reward: 1.0 where the completion is a complete scratchpad, right or wrong.

    Definition: ``r_i = 1`` iff ``formats.check_steps`` reads the whole text as the scratchpad
    mark, the first operand and exactly one step per operation of the prompt, and (with
    ``completion_ids``) the completion ended with EOS. The results are not checked:
    ``" 12+7=18+5=23+9=32"`` is well formed. Prompts must be +/- chains (``formats.terms``).

    TRL signature: reads ``prompts``; other keyword arguments, ``answer`` included, are ignored.
    """
    _check_batch("scratchpad_reward", prompts, completions, completion_ids=completion_ids)
    ended, rewards = _ended(completion_ids, len(completions)), []
    for prompt, c, e in zip(prompts, completions, ended, strict=True):
        steps = check_steps(prompt, c)
        complete = len(steps) == len(terms(prompt)[1]) and steps[-1].end == len(c)
        rewards.append(1.0 if e and complete and c.startswith(SCRATCHPAD_MARK) else 0.0)
    return rewards


def process_step_rewards(
    prompts: Sequence,
    completions: Sequence[str],
    answer: Sequence[int] | None = None,
    completion_ids: Sequence[Sequence[int]] | None = None,
    **kwargs,
) -> list[list[tuple[int, float]]]:
    """The process reward model: ``(position, score)`` of every step of every completion.

    A completion is cut into steps and each gets a score in {0, 1} (DeepSeekMath sec. 4.1.3
    trains a model for this; here the exact ``formats.check_steps`` is the judge):

    - each step of a scratchpad but the last scores ``step.correct`` (the right next step of
      the right solution); its position is the index of its last character;
    - the last step runs to the end of the completion, its EOS included: it scores the outcome,
      ``final_answer_reward``, at position ``len(completion)`` (the EOS; for a truncated
      completion, past its last character: map it to the last token);
    - a direct answer (or anything without a step) is that one last step.

    Positions index ``completion + <eos>``; with one token per character they are token indices.
    ``[[(7, 1.0), (12, 1.0), (18, 1.0)]]`` for ``" 12+7=19+5=24+9=33"`` on ``"12+7+5+9="``.
    """
    answers = _check_batch("process_step_rewards", prompts, completions, answer, completion_ids,
                           needs_answer=True, columns=kwargs)  # fmt: skip
    return _process_scores(prompts, completions, answers, completion_ids)


def _process_scores(prompts, completions, answers, completion_ids) -> list[list[tuple[int, float]]]:
    outcome, scores = _outcome(completions, answers, completion_ids), []
    for prompt, c, r in zip(prompts, completions, outcome, strict=True):
        steps = check_steps(prompt, c)[:-1] if answer_format(c) == "scratchpad" else []
        scores.append([(s.end - 1, float(s.correct)) for s in steps] + [(len(c), r)])
    return scores


def step_mean_reward(
    prompts: Sequence,
    completions: Sequence[str],
    answer: Sequence[int] | None = None,
    completion_ids: Sequence[Sequence[int]] | None = None,
    **kwargs,
) -> list[float]:
    """A shaped reward: the mean of the process scores of the completion's steps.

    Definition: ``r_i = mean_j score_ij`` over ``process_step_rewards``. For a direct answer it is
    the outcome; a scratchpad with 2 of 3 right steps and a wrong answer gets 2/3, more than a
    wrong direct answer gets. It pays for writing the right steps of a wrong answer: the reward
    the first feasibility probe called "process", which is *not* DeepSeekMath's process
    supervision (that one keeps per-step scores apart: ``advantages.process_advantages``).

    TRL signature: needs the ``answer`` column; other keyword arguments are ignored.
    """
    answers = _check_batch("step_mean_reward", prompts, completions, answer, completion_ids,
                           needs_answer=True, columns=kwargs)  # fmt: skip
    scores = _process_scores(prompts, completions, answers, completion_ids)
    return [sum(s for _, s in steps) / len(steps) for steps in scores]

"""Reward functions: a completion's text -> one float, with Hugging Face TRL's signature.

Every reward here is a plain function ``f(prompts, completions, **columns) -> list[float]``, so the
same object works in this course's trainer and unchanged in ``trl.GRPOTrainer(reward_funcs=[...])``.
TRL calls it with keyword arguments only::

    f(prompts=[...], completions=[...], completion_ids=[[...], ...],
      answer=[...],                      # every dataset column, one value per completion
      trainer_state=..., log_extra=..., log_metric=...)   # TRL extras, ignored here

``completions`` are the decoded texts with special tokens skipped (``"55"`` for ``"47+8="``);
``completion_ids`` are the sampled ids, ending with ``vocab.EOS_ID`` when the model stopped by itself.
Unknown keyword arguments are accepted and ignored. Rows are prompt-major (p0g0, p0g1, ...), but a
reward scores each completion on its own, so the layout does not matter here.

Three rewards, each in [0, 1]:

    correctness   1 if the parsed answer equals ``answer``             (the task's true reward)
    format        1 if the text is exactly one integer and ended with EOS   (the shape of an answer)
    partial       share of the answer's characters in the right place  (a denser, shaped signal)

The split of duties: ``correctness`` reads the answer the way ``tasks.parse_answer`` does, so it
tolerates leading spaces and trailing text (``"55 is it"`` is correct for 55); ``format`` is the
reward that penalises anything but a bare integer. Add them (TRL sums ``reward_funcs`` with
``reward_weights``) to ask for both.

The tasks whose answers may be a scratchpad (``sum4``: ``" 12+7=19+5=24+9=33"``, see ``formats``)
have their own rewards, in ``REASONING_REWARDS``:

    final_answer  1 if the integer the completion ends with equals ``answer`` and it ended with
                  EOS: the outcome reward of DeepSeek-R1-Zero (either format may earn it)
    scratchpad    1 if the completion is a complete scratchpad, right or wrong (a format reward)
    step_mean     mean of the process scores of its steps: a shaped reward that pays for the
                  right steps of a wrong answer

``process_step_rewards`` is the process reward model of DeepSeekMath's process supervision: a
score for every step, where the step ends. It is not a TRL reward (one list per completion).
"""

from __future__ import annotations

from grpo_edu.rewards.outcome import (
    RewardFn,
    correctness_reward,
    format_reward,
    partial_credit_reward,
)
from grpo_edu.rewards.reasoning import (
    final_answer_reward,
    process_step_rewards,
    scratchpad_reward,
    step_mean_reward,
)

REWARDS: dict[str, RewardFn] = {
    "correctness": correctness_reward,
    "format": format_reward,
    "partial": partial_credit_reward,
}
"""Rewards by short name, as used in configs and on the command line."""


REASONING_REWARDS: dict[str, RewardFn] = {
    "final_answer": final_answer_reward,
    "scratchpad": scratchpad_reward,
    "step_mean": step_mean_reward,
}
"""Rewards of the scratchpad tasks (``sum<k>``, ``chain<k>``) by short name."""


STEP_REWARDS = {"process": process_step_rewards}
"""Process reward models by short name: each returns one list of ``(position, score)`` per
completion (``TrainConfig.step_rewards``; used by ``GRPOConfig(advantage="process")``)."""


def get_step_reward(name: str):
    """The process reward model called ``name`` (a key of ``STEP_REWARDS``)."""
    try:
        return STEP_REWARDS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown step reward {name!r}; valid names: {', '.join(sorted(STEP_REWARDS))}"
        ) from None


def get_reward(name: str) -> RewardFn:
    """The reward function called ``name`` (a key of ``REWARDS`` or ``REASONING_REWARDS``)."""
    try:
        return {**REWARDS, **REASONING_REWARDS}[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown reward {name!r}; valid names: {', '.join(sorted(REWARDS))}; "
            f"for scratchpad tasks: {', '.join(sorted(REASONING_REWARDS))}"
        ) from None


__all__ = [
    "REASONING_REWARDS",
    "REWARDS",
    "RewardFn",
    "STEP_REWARDS",
    "correctness_reward",
    "final_answer_reward",
    "format_reward",
    "get_reward",
    "get_step_reward",
    "partial_credit_reward",
    "process_step_rewards",
    "scratchpad_reward",
    "step_mean_reward",
]

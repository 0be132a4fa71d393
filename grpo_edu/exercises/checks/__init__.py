"""Check functions a student calls from a notebook cell, e.g. ``check_group_advantages(fn)``.

Each runs the student's function on hand-made and seeded random cases against the library's own
implementation (the library function is the reference), prints one line when everything
matches, and otherwise raises ``ExerciseFailed`` (an ``AssertionError``) whose message names the
case, shows input, expected and obtained values, and adds a tailored hint when the output is
that of a typical mistake. Keyword ``seed`` and ``n_random`` draw other random cases (the hidden
tests of the instructor notebooks use them); ``quiet=True`` suppresses the success line.
"""

from .advantages import check_gae, check_group_advantages, check_rloo_advantages
from .grpo import TrainingBudget, check_grpo_loss, check_grpo_training, run_grpo_training
from .losses import check_clipped_surrogate, check_grpo_aggregate, check_kl_k3
from .text import check_correctness_reward, check_parse_answer

CHECKS = {
    "parse_answer": check_parse_answer,
    "correctness_reward": check_correctness_reward,
    "group_advantages": check_group_advantages,
    "rloo_advantages": check_rloo_advantages,
    "gae": check_gae,
    "clipped_surrogate": check_clipped_surrogate,
    "kl_k3": check_kl_k3,
    "grpo_aggregate": check_grpo_aggregate,
    "grpo_loss": check_grpo_loss,
}
"""Exercise name -> its (fast) check. ``grpo_loss`` also has ``check_grpo_training``."""

__all__ = [
    "CHECKS",
    "TrainingBudget",
    "check_clipped_surrogate",
    "check_correctness_reward",
    "check_gae",
    "check_group_advantages",
    "check_grpo_aggregate",
    "check_grpo_loss",
    "check_grpo_training",
    "check_kl_k3",
    "check_parse_answer",
    "check_rloo_advantages",
    "run_grpo_training",
]

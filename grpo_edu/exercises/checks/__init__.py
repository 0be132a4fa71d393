"""Check functions a student calls from a notebook cell, e.g. ``check_group_advantages(fn)``.

Each check is two halves (see ``grpo_edu.exercises.judge``): a ``CaseCheck`` that holds the
cases, the reference and the mistake catalogue (``CASE_CHECKS[name](seed, n_random)``), and the
notebook function ``check_<name>(fn)`` that observes ``fn`` on those cases and judges it in the
same process: it shows one line when everything matches, and otherwise raises
``ExerciseFailed`` (an ``AssertionError``) whose message names the case, shows input, expected
and obtained values, and adds a tailored hint when the output is that of a typical mistake.
Keyword ``seed`` and ``n_random`` draw other random cases (the hidden tests use them);
``quiet=True`` suppresses the success line. The grader uses the same ``CaseCheck``s, judging
in its own process what came back from the student's sandboxed one.
"""

from ..catalog import CHECK_API
from .advantages import (
    check_gae,
    check_group_advantages,
    check_rloo_advantages,
    gae_check,
    group_advantages_check,
    rloo_advantages_check,
)
from .grpo import check_grpo_loss, grpo_loss_check
from .losses import (
    check_clipped_surrogate,
    check_grpo_aggregate,
    check_kl_k3,
    clipped_surrogate_check,
    grpo_aggregate_check,
    kl_k3_check,
)
from .paradigm import (
    check_dpo_loss,
    check_grpo_coefficients,
    check_rft_coefficients,
    dpo_loss_check,
    grpo_coefficients_check,
    rft_coefficients_check,
)
from .reasoning import check_process_advantages, process_advantages_check
from .text import (
    check_correctness_reward,
    check_parse_answer,
    correctness_reward_check,
    parse_answer_check,
)
from .training import TrainingBudget, check_grpo_training  # noqa: F401 (in CHECK_API)

CASE_CHECKS = {
    "parse_answer": parse_answer_check,
    "correctness_reward": correctness_reward_check,
    "group_advantages": group_advantages_check,
    "rloo_advantages": rloo_advantages_check,
    "gae": gae_check,
    "clipped_surrogate": clipped_surrogate_check,
    "kl_k3": kl_k3_check,
    "grpo_aggregate": grpo_aggregate_check,
    "grpo_loss": grpo_loss_check,
    "process_advantages": process_advantages_check,
    "rft_coefficients": rft_coefficients_check,
    "grpo_coefficients": grpo_coefficients_check,
    "dpo_loss": dpo_loss_check,
}
"""Exercise name -> ``(seed, n_random) -> CaseCheck``: what the grader judges."""

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
    "process_advantages": check_process_advantages,
    "rft_coefficients": check_rft_coefficients,
    "grpo_coefficients": check_grpo_coefficients,
    "dpo_loss": check_dpo_loss,
}
"""Exercise name -> its (fast) notebook check. ``grpo_loss`` also has ``check_grpo_training``."""

__all__ = list(CHECK_API)

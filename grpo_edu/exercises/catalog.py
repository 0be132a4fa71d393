"""The exercises of the course: name, notebook, the library function that is the reference, hints.

No torch here: the command line (``build``, ``grade``) and ``grpo_edu.exercises`` import this
without starting torch. ``CHECK_API`` names the public objects of ``grpo_edu.exercises.checks``
(one list, re-exported by ``grpo_edu.exercises``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    name: str
    """Also the student's function name and the grade_id of its solution cell."""
    notebook: str
    """Instructor notebook file in ``notebooks/exercises``."""
    reference: str
    """Dotted path of the library function the check compares with."""
    hints: tuple[str, ...]


def _ex(name, notebook, reference, *hints) -> Exercise:
    return Exercise(name, notebook, reference, hints)


EXERCISES = {
    e.name: e
    for e in [
        _ex(
            "parse_answer",
            "01_rewards.ipynb",
            "grpo_edu.tasks.parse_answer",
            "A regular expression anchored at the start does most of the work: re.match, not re.search.",
            "Pattern: spaces, an optional sign, then ASCII digits: r'[ ]*([+-]?)([0-9]+)'. "
            "\\d would also match non-ASCII digits.",
            "After the match, refuse runs longer than MAX_ANSWER_DIGITS and a run followed directly by "
            "another digit character (text[m.end():m.end()+1].isdigit()).",
        ),
        _ex(
            "correctness_reward",
            "01_rewards.ipynb",
            "grpo_edu.rewards.correctness_reward",
            "One float per completion: 1.0 if parse_answer(completion) == answer, else 0.0.",
            "TRL passes keyword arguments only, including columns you do not use: keep **kwargs.",
            "zip(completions, answer) pairs each completion with its own answer.",
        ),
        _ex(
            "group_advantages",
            "02_advantages.ipynb",
            "grpo_edu.advantages.group_advantages",
            "The batch is prompt-major: rewards.view(-1, group_size) puts each group on one row.",
            "Mean and std along dim=1, keepdim=True, so they broadcast back over the group. "
            "torch.std is unbiased (ddof=1) by default, which is what GRPO uses here.",
            "An all-equal group has std 0: dividing by (std + eps) keeps its advantages at 0. "
            "Return a (B,) tensor: .flatten() at the end.",
        ),
        _ex(
            "rloo_advantages",
            "02_advantages.ipynb",
            "grpo_edu.advantages.rloo_advantages",
            "Leave-one-out: the baseline of answer i is the mean of the OTHER G - 1 rewards of its group.",
            "The sum of the others is the group sum minus r_i: (grouped.sum(1, keepdim=True) - grouped).",
            "Equivalently A_i = G / (G - 1) * (r_i - group mean). No std.",
        ),
        _ex(
            "gae",
            "03_gae.ipynb",
            "grpo_edu.advantages.gae",
            "Loop backwards over t, carrying V_{t+1} and A_{t+1} (both 0 after the last token).",
            "delta_t = r_t + gamma * V_{t+1} - V_t and A_t = delta_t + gamma * lam * A_{t+1}.",
            "Multiply values by the mask first (padding has no value) and A_t by mask[:, t]; "
            "returns = (A + V) * mask.",
        ),
        _ex(
            "clipped_surrogate",
            "04_losses.ipynb",
            "grpo_edu.losses.clipped_surrogate",
            "ratio = (logp - old_logp).exp(), shape (B, T); advantages[:, None] is (B, 1).",
            "The objective is min(r A, clip(r, 1 - eps, 1 + eps) A); the loss is its negative.",
            "Check case by case: A > 0 and r > 1 + eps gives the constant (1 + eps) A, so no gradient.",
        ),
        _ex(
            "kl_k3",
            "04_losses.ipynb",
            "grpo_edu.losses.kl_penalty",
            "x = ref_logp - logp = log(pi_ref / pi), per token.",
            "k3 = exp(x) - x - 1: always >= 0, exactly 0 where the policies agree.",
        ),
        _ex(
            "grpo_aggregate",
            "04_losses.ipynb",
            "grpo_edu.losses.aggregate",
            "Per row: sum over real tokens / number of real tokens; then the mean over rows.",
            "mask = mask.to(per_token_loss.dtype); count = mask.sum(-1).clamp(min=1) avoids 0 / 0.",
        ),
        _ex(
            "grpo_loss",
            "05_grpo_step.ipynb",
            "grpo_edu.losses.policy_loss",
            "Per token: -min(r A, clip(r) A) + kl_coef * k3, with A broadcast as advantages[:, None].",
            "Then the GRPO aggregation: masked mean per sequence, mean over sequences.",
            "It is your clipped_surrogate, kl_k3 and grpo_aggregate from notebook 04, in one function.",
        ),
        _ex(
            "process_advantages",
            "06_process_advantages.ipynb",
            "grpo_edu.advantages.process_advantages",
            "A group is group_size rows of T tokens: step_rewards.reshape(-1, group_size * T) puts all the steps of one group on one row; step_mask.float() in the same shape marks which entries are steps.",
            "Mean and std over the steps only: count = m.sum(1, keepdim=True), mean = (r * m).sum(1, keepdim=True) / count, var = (((r - mean) * m) ** 2).sum(1, keepdim=True) / (count - 1) (unbiased).",
            "normed = (r - mean) / (var.sqrt() + eps) * m is 0 where no step ends; set it to 0 for a group whose steps are all equal, reshape to (B, T), and sum from the right: x.flip(-1).cumsum(-1).flip(-1).",
        ),
        _ex(
            "rft_coefficients",
            "07_gradient_coefficients.ipynb",
            "grpo_edu.algorithms.rft_coefficients",
            "RFT keeps an answer when its reward reaches the threshold: the coefficient is 1 for it, 0 for every other answer. No baseline, no normalisation.",
            "(rewards >= threshold) is a bool tensor; the coefficient multiplies log-probs, so return it as float: .to(rewards.dtype). >= , not >: a reward equal to the threshold is kept.",
        ),
        _ex(
            "grpo_coefficients",
            "07_gradient_coefficients.ipynb",
            "grpo_edu.algorithms.grpo_coefficients",
            "Two terms: the advantage A_i, the same for every token of answer i (advantages[:, None] broadcasts it over T), and the gradient of beta * k3 with the sign of a coefficient.",
            "d k3 / d logp = 1 - pi_ref / pi, and the loss is minimised, so the KL part of GC is beta * (pi_ref / pi - 1) = kl_coef * ((ref_logp - logp).exp() - 1).",
        ),
        _ex(
            "dpo_loss",
            "07_gradient_coefficients.ipynb",
            "grpo_edu.algorithms.dpo_loss",
            "Rows come in pairs: 0, 2, 4, ... are the preferred answers o+, 1, 3, 5, ... the others: logp[0::2] and logp[1::2].",
            "Delta of one answer = the sum over its real tokens of logp - ref_logp: ((logp - ref_logp) * mask).sum(-1). The margin is Delta(o+) - Delta(o-).",
            "loss = mean over pairs of -logsigmoid(beta * margin): torch.nn.functional.logsigmoid is the stable way to write log(sigmoid(x)).",
        ),
    ]
}
"""Every exercise, by name."""

CHECK_API = (
    "CHECKS",
    "CASE_CHECKS",
    "TrainingBudget",
    *(f"check_{name}" for name in EXERCISES),
    "check_grpo_training",
)
"""The public names of ``grpo_edu.exercises.checks`` (``check_<exercise>`` for every exercise)."""

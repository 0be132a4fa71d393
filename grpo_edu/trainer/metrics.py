"""Every column of a training run's metrics DataFrame, documented once.

The README's metrics table is checked against ``METRICS`` by a test; step functions produce the
per-update keys (``algorithms.trace.StepLog``), the loop adds the step, time and memory columns
and the completion columns of ``completion_metrics``.
"""

from ..formats import answer_format, parse_final_answer

METRICS: dict[str, str] = {
    "step": "update number, from 1",
    "completions_seen": "completions sampled so far (the budget axis of every comparison)",
    "reward": "mean reward of the step's completions",
    "reward_std": "std of those rewards",
    "frac_reward_zero_std": "share of groups whose rewards are all equal: zero GRPO advantage, no signal (NaN when G = 1)",
    "completions/mean_length": "mean completion length in tokens, EOS included",
    "completions/clipped_ratio": "share of completions cut at max_new_tokens without an EOS",
    "completions/scratchpad_share": "share of completions that write a step (contain '='): the scratchpad format of the +/- tasks, 0 where answers are bare integers",
    "completions/mean_length_correct": "mean length of the completions whose final answer is right (formats.parse_final_answer, ended with EOS); NaN if none",
    "completions/mean_length_wrong": "mean length of the other completions; NaN if none",
    "loss/policy": "clipped-surrogate loss (GRPO: with the beta * KL term)",
    "loss/value": "PPO's clipped value loss (NaN for GRPO: no critic)",
    "value/clipfrac": "PPO: share of tokens where the value clip was active (NaN for GRPO)",
    "kl": "mean per-token k3 estimate of KL(pi || pi_ref), the same estimator for both algorithms, measured also at beta = 0 (NaN only with GRPOConfig(measure_kl=False) and beta = 0)",
    "entropy": "mean per-token entropy of the policy (nats)",
    "grad_norm": "gradient norm before clipping",
    "lr": "the policy's learning rate in this step (see TrainConfig.lr_schedule)",
    "clip_ratio/low_mean": "share of tokens with ratio < 1 - eps and A < 0 (TRL's name)",
    "clip_ratio/high_mean": "share of tokens with ratio > 1 + eps_high and A > 0",
    "clip_ratio/region_mean": "share of tokens whose gradient the clip removed (low or high)",
    "clip_ratio/low_min": "smallest per-sequence low-clip share",
    "clip_ratio/high_max": "largest per-sequence high-clip share",
    "time/rollout": "seconds spent sampling and scoring this step",
    "time/update": "seconds spent in the update (all mu x minibatch optimizer steps)",
    "time/step": "time/rollout + time/update",
    "time/elapsed": "training seconds so far (evaluation excluded)",
    "memory/train_state_mb": "measured training state: parameters, gradients, Adam, reference, critic (MB)",
    "memory/activations_mb": "activations one update keeps for backward, measured on the first step (MB)",
    "eval/greedy": "greedy accuracy on the eval split (only on evaluation steps)",
    "eval/sampled": "sampled accuracy at the training temperature (only on evaluation steps)",
}
"""Every column of ``TrainResult.metrics``, documented once (a test checks the README table against it)."""


def completion_metrics(rollout) -> dict[str, float]:
    """The scratchpad share and the mean lengths of right and wrong completions of a rollout.

    A completion is right when the integer it ends with (after its last ``=``, or the whole text)
    is the answer and it ended with EOS: for a bare-integer task, a right answer and nothing else.
    """
    lengths = rollout.completion_mask.sum(-1).tolist()  # (B,) tokens, EOS included
    ended = (~rollout.truncated).tolist()
    correct = [
        e and parse_final_answer(t) == a
        for t, a, e in zip(rollout.texts, rollout.answers, ended, strict=True)
    ]
    right = [n for n, c in zip(lengths, correct, strict=True) if c]
    wrong = [n for n, c in zip(lengths, correct, strict=True) if not c]
    scratch = [answer_format(t) == "scratchpad" for t in rollout.texts]
    return {
        "completions/scratchpad_share": sum(scratch) / len(scratch),
        "completions/mean_length_correct": sum(right) / len(right) if right else float("nan"),
        "completions/mean_length_wrong": sum(wrong) / len(wrong) if wrong else float("nan"),
    }

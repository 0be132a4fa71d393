"""Every column of a training run's metrics DataFrame, documented once.

The README's metrics table is checked against ``METRICS`` by a test; step functions produce the
per-update keys (``algorithms.trace.StepLog``), the loop adds the step, time and memory columns.
"""

METRICS: dict[str, str] = {
    "step": "update number, from 1",
    "completions_seen": "completions sampled so far (the budget axis of every comparison)",
    "reward": "mean reward of the step's completions",
    "reward_std": "std of those rewards",
    "frac_reward_zero_std": "share of groups whose rewards are all equal: zero GRPO advantage, no signal (NaN when G = 1)",
    "completions/mean_length": "mean completion length in tokens, EOS included",
    "completions/clipped_ratio": "share of completions cut at max_new_tokens without an EOS",
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

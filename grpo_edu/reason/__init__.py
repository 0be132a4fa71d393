"""Reasoning emerges: DeepSeek-R1-Zero's signature (accuracy up, answers longer), on a laptop CPU.

During DeepSeek-R1-Zero's RL (arXiv:2501.12948, Figures 2 and 3) accuracy climbs while the mean
response length grows: the policy learns that working things out pays. The same thing, at toy
scale: the ``sum4`` warm start (``pretrain.ScratchpadPretrainConfig``) can answer
``"12+7+5+9="`` directly (``"33"``, usually wrong: four numbers at once are hard for it) or with
a scratchpad (``" 12+7=19+5=24+9=33"``, usually right: each step is a two-number addition it
knows), but chooses the scratchpad only about one time in ten. GRPO with the outcome reward
alone (``rewards.final_answer_reward``: the final integer, nothing about the steps) then makes
it choose the scratchpad almost always, and accuracy and length rise together.

What this is and is not: the warm start already *had* both behaviours; RL *selected* the one
that pays. ``pass_at_k_curve`` measures pass@k up to large k for the warm start and the RL
policy, the test of Yue et al. 2025 (arXiv:2504.13837) for new ability vs sharpening.

One module per concern::

    run      R1_ZERO and the comparisons (PROCESS, STEP_MEAN, NO_KL, EXPERIMENTS), ReasonConfig,
             run_reason: trains, evaluates during training (scratchpad share, sampled accuracy
             per format, length) and before and after (``evaluate_formats.FormatReport``)
    probes   pass_at_k_curve (up to k = 256), token_probs, hand_rollout (chosen completions)
    results  load_seed_runs and friends: the results of ``benchmarks/reason_seeds.py``
             (tables, ``mean_sd``, ``called``: a difference only where every seed agrees,
             ``first_share_step``: when the scratchpads took over)
    plots    the chapter's figures

``python -m grpo_edu reason`` runs the R1-Zero run and writes its figures and CSV.
"""

from .probes import PASS_KS, hand_rollout, pass_at_k_curve, token_probs
from .results import (
    RESULTS_DIR,
    called,
    first_share_step,
    load_seed_runs,
    mean_sd,
    seed_pass_curves,
    seed_table,
)
from .run import (
    EVAL_COLUMNS,
    EXPERIMENTS,
    NO_KL,
    PROCESS,
    R1_ZERO,
    STEP_MEAN,
    ReasonConfig,
    ReasonResult,
    format_callback,
    run_reason,
)

__all__ = [
    "EVAL_COLUMNS",
    "EXPERIMENTS",
    "NO_KL",
    "PASS_KS",
    "PROCESS",
    "R1_ZERO",
    "RESULTS_DIR",
    "STEP_MEAN",
    "ReasonConfig",
    "ReasonResult",
    "called",
    "first_share_step",
    "format_callback",
    "hand_rollout",
    "load_seed_runs",
    "mean_sd",
    "pass_at_k_curve",
    "run_reason",
    "seed_pass_curves",
    "seed_table",
    "token_probs",
]

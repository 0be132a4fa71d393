"""The hyperparameters of the other methods of DeepSeekMath's unified paradigm, and their checks.

SFT, RFT (offline and online) and DPO, in the style of ``configs``: frozen dataclasses with a
docstring under every field, and ``check_paradigm_config``, which raises a ``ValueError`` naming
the field and its value before any work. GRPO and PPO keep ``GRPOConfig`` and ``PPOConfig``.

RFT and online RFT share ``RFTConfig``: they are one step function (``rft_step``) on two data
sources (the warm start's samples, the current policy's samples), which is the paper's point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..masked import check_int, check_positive


@dataclass(frozen=True)
class SFTConfig:
    """Supervised fine-tuning on the task's reference answers (DeepSeekMath sec. 5.2.1: GC = 1)."""

    measure_kl: bool = True
    """Run the reference forward to log ``kl`` (how far SFT moves from the warm start); it does
    not enter the loss. False skips it (``kl`` is then NaN)."""
    mu: int = 1
    """Passes over each batch."""
    n_minibatches: int = 1
    """Optimizer steps per pass; rows are shuffled into this many minibatches."""
    max_grad_norm: float = 1.0
    """Gradient clipping on the policy (0 = off)."""


@dataclass(frozen=True)
class RFTConfig:
    """Rejection-sampling fine-tuning (Yuan et al. 2023, arXiv:2308.01825), offline or online.

    GC = 1[r >= threshold]: the likelihood of the correct samples is raised, the wrong ones are
    dropped (coefficient 0, never pushed down). Offline RFT samples its dataset once from the
    warm start; online RFT samples from the current policy every step (DeepSeekMath sec. 5.2.1).
    """

    threshold: float = 1.0
    """A sample is kept (GC = 1) when its reward is >= threshold: 1.0 keeps the correct answers
    of the 0/1 ``correctness`` reward."""
    measure_kl: bool = True
    """Log ``kl`` to the reference (not in the loss); False skips the reference forward."""
    mu: int = 1
    """Passes over each batch."""
    n_minibatches: int = 1
    """Optimizer steps per pass."""
    max_grad_norm: float = 1.0
    """Gradient clipping on the policy (0 = off)."""


@dataclass(frozen=True)
class DPOConfig:
    """Direct preference optimisation (Rafailov et al. 2023, arXiv:2305.18290) on offline pairs.

    Pairs (o+, o-) of the same prompt are made from each group of G samples: a higher-reward
    answer against a lower-reward one (``coefficients.preference_pairs``).
    """

    beta: float = 0.1
    """beta of the implicit reward beta * log(pi / pi_ref): how strongly the policy is kept
    near the reference (TRL's default 0.1; typical 0.01..0.5)."""
    length_normalized: bool = False
    """False: log-ratios summed over the tokens (Rafailov et al.; TRL ``loss_type="sigmoid"``).
    True: averaged per token, 1/|o| sum_t, as DeepSeekMath's appendix A.1.4 writes DPO (TRL
    ``"sigmoid_norm"``)."""
    mu: int = 1
    """Passes over each step's pairs."""
    n_minibatches: int = 1
    """Optimizer steps per pass; pairs are shuffled into this many minibatches."""
    max_grad_norm: float = 1.0
    """Gradient clipping on the policy (0 = off)."""


PARADIGM_CONFIGS = (SFTConfig, RFTConfig, DPOConfig)
"""The config types ``check_paradigm_config`` accepts."""


def check_paradigm_config(config: SFTConfig | RFTConfig | DPOConfig) -> None:
    """Clear errors for settings that would otherwise fail deep inside torch or train silently."""
    if not isinstance(config, PARADIGM_CONFIGS):
        names = ", ".join(c.__name__ for c in PARADIGM_CONFIGS)
        raise ValueError(f"config must be one of {names}, got {type(config).__name__}")
    name = type(config).__name__
    check_int(f"{name}.mu", config.mu)
    check_int(f"{name}.n_minibatches", config.n_minibatches)
    check_positive(f"{name}.max_grad_norm", config.max_grad_norm, allow_zero=True)
    if isinstance(config, RFTConfig):
        threshold = config.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValueError(f"RFTConfig.threshold must be a number, got {threshold!r}")
        if not math.isfinite(threshold):
            raise ValueError(f"RFTConfig.threshold must be a finite number, got {threshold!r}")
    if isinstance(config, DPOConfig):
        check_positive("DPOConfig.beta", config.beta)
        if not isinstance(config.length_normalized, bool):
            raise ValueError(
                f"DPOConfig.length_normalized must be True or False, got {config.length_normalized!r}"
            )

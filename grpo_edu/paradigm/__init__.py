"""DeepSeekMath's big picture (arXiv:2402.03300, sec. 5.2): SFT, RFT, online RFT, DPO, PPO and
GRPO as one gradient formula, its table computed from the code, and the methods raced.

    table   ``paradigm_table`` (the paper's Table 10 for this library), ``gradient_coefficients``
            (every method's GC on one group, read off its loss), ``coefficient_table`` (on a
            group sampled from a real policy)
    race    ``RaceConfig``, ``run_race``: every method from the same warm start on the same
            budget over seeds; ``race_table`` (mean and std), pass@k curves up to k = 256
    figures the race's figures (accuracy vs completions and vs time, pass@k curves, final bars)

The methods themselves are step functions of ``grpo_edu.algorithms`` run by the one trainer.
"""

from .figures import paradigm_figures
from .race import (
    PASSK_KS,
    RACE_LR,
    RaceConfig,
    RaceResult,
    check_race_config,
    format_table,
    load_race,
    race_table,
    run_one,
    run_race,
    run_start,
    save_race,
)
from .table import (
    LABELS,
    METHODS,
    CoefficientTable,
    coefficient_table,
    gradient_coefficients,
    paradigm_table,
    reference_coefficients,
)

__all__ = [
    "LABELS",
    "METHODS",
    "PASSK_KS",
    "RACE_LR",
    "CoefficientTable",
    "RaceConfig",
    "RaceResult",
    "check_race_config",
    "coefficient_table",
    "format_table",
    "gradient_coefficients",
    "load_race",
    "paradigm_figures",
    "paradigm_table",
    "race_table",
    "reference_coefficients",
    "run_one",
    "run_race",
    "run_start",
    "save_race",
]

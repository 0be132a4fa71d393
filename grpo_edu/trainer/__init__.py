"""The training loop, the same for every algorithm: rollout -> rewards -> update -> metrics.

config   ``TrainConfig`` (one run), learning-rate schedules, ``check_train_config``
metrics  ``METRICS``: every column of the per-step DataFrame, documented once
loop     ``train`` and its pieces: ``build_state``, ``sample_and_score``, ``update``
"""

from .config import (
    ALGORITHMS,
    LR_SCHEDULES,
    SOURCES,
    TrainConfig,
    check_train_config,
    lr_scheduler,
)
from .loop import (
    TrainResult,
    TrainState,
    build_state,
    compute_rewards,
    compute_step_rewards,
    make_source,
    sample_and_score,
    train,
    update,
)
from .metrics import METRICS, completion_metrics

__all__ = [
    "ALGORITHMS",
    "LR_SCHEDULES",
    "METRICS",
    "SOURCES",
    "TrainConfig",
    "TrainResult",
    "TrainState",
    "build_state",
    "check_train_config",
    "compute_rewards",
    "compute_step_rewards",
    "completion_metrics",
    "lr_scheduler",
    "make_source",
    "sample_and_score",
    "train",
    "update",
]

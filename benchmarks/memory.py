"""Memory of one training run's state, with and without the activations of one update.

For GRPO and PPO at the default batch (``TrainConfig()``: 16 prompts x 8 completions), one
training step on the lean forward and one on transformers' forward (``lean.enabled(False)``):
the measured training state (parameters, gradients, Adam moments, reference, critic; what
``analytic_training_state`` predicts) and the activations ``ActivationMeter`` measured on that
update. Sizes in MiB; the GRPO / PPO ratios of both figures.

    python benchmarks/memory.py [--out benchmarks/results/memory.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from grpo_edu import lean
from grpo_edu.accounting import MB
from grpo_edu.trainer import TrainConfig, train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--out", default="benchmarks/results/memory.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    result = {}
    for path, on in (("lean", True), ("transformers", False)):
        with lean.enabled(on):
            for algorithm in ("grpo", "ppo"):
                memory = train(TrainConfig(algorithm=algorithm, steps=1), progress=False).memory
                result[f"{path}_{algorithm}"] = {
                    "train_state_mib": memory["measured"]["total"] / MB,
                    "activations_mib": memory["with_activations"]["activations"] / MB,
                    "with_activations_mib": memory["with_activations"]["total"] / MB,
                }
        g, p = result[f"{path}_grpo"], result[f"{path}_ppo"]
        result[f"{path}_ratio"] = {
            "train_state": g["train_state_mib"] / p["train_state_mib"],
            "with_activations": g["with_activations_mib"] / p["with_activations_mib"],
        }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

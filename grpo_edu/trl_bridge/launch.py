"""``python -m grpo_edu.trl_bridge``: TRL's GRPOTrainer on the course's model, on 1 or N processes.

The launch commands that work (tested by ``tests/test_trl_bridge.py`` with two CPU processes)::

    torchrun --standalone --nproc_per_node 2 -m grpo_edu.trl_bridge --max-steps 100
    accelerate launch --multi_gpu --num_processes 8 -m grpo_edu.trl_bridge --gpu --max-steps 100

Not ``accelerate launch --cpu --num_processes 2``: accelerate's CPU path then starts one process
(it needs an MPI hostfile for more) and says nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..rewards import correctness_reward
from . import log_history, make_trainer, weights_digest


def main(argv: list[str] | None = None) -> int:
    """``python -m grpo_edu.trl_bridge``: train a shipped warm start with TRL, on 1 or N processes.

    Launch with ``torchrun --standalone --nproc_per_node N -m grpo_edu.trl_bridge ...`` (N CPU
    processes, gloo) or, on a multi-GPU node, ``accelerate launch --multi_gpu --num_processes N
    -m grpo_edu.trl_bridge --gpu ...``. Each process writes ``<output-dir>/rank<R>.json`` (its
    share of the batch, the per-step rewards, a digest of its final weights); the first saves
    the trained policy to ``<output-dir>/policy``. Nothing is printed here (TRL logs each step).
    """
    p = argparse.ArgumentParser(prog="python -m grpo_edu.trl_bridge", description=main.__doc__)
    p.add_argument("--checkpoint", default="add2", help="shipped checkpoint or directory (add2)")
    p.add_argument("--task", default="add2", help="task whose train split is used (add2)")
    p.add_argument("--max-steps", type=int, default=100, help="optimizer steps (100)")
    p.add_argument(
        "--global-batch", type=int, default=128, help="completions per step, all processes"
    )
    p.add_argument("--num-generations", type=int, default=8, help="G, completions per prompt (8)")
    p.add_argument("--learning-rate", type=float, default=1e-4, help="AdamW learning rate (1e-4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output-dir", type=Path, default=Path("runs/trl_add2"))
    p.add_argument("--gpu", action="store_true", help="train on the GPUs (use_cpu=False)")
    args = p.parse_args(argv)
    seen = []

    def recorded(prompts, completions, **columns):  # what this process scored, step by step
        seen.append(len(completions))
        return correctness_reward(prompts, completions, **columns)

    recorded.__name__ = "correctness_reward"
    trainer = make_trainer(args.checkpoint, task_name=args.task, reward_funcs=[recorded],
                           output_dir=str(args.output_dir), max_steps=args.max_steps,
                           global_batch_size=args.global_batch, seed=args.seed,
                           num_generations=args.num_generations,
                           learning_rate=args.learning_rate, use_cpu=not args.gpu)  # fmt: skip
    trainer.train()
    state, cfg = trainer.accelerator.state, trainer.args
    if state.is_main_process:
        trainer.save_model(str(args.output_dir / "policy"))
    logs = log_history(trainer)
    record = {
        "rank": state.process_index,
        "world_size": state.num_processes,
        "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "generation_batch_size": cfg.generation_batch_size,
        "completions_scored_per_step": seen,
        "reward": logs["reward"].tolist(),
        "weights_sha256": weights_digest(trainer.model),
    }
    path = args.output_dir / f"rank{state.process_index}.json"
    path.write_text(json.dumps(record, indent=1))
    return 0

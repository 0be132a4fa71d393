"""Where one GRPO step's time goes, phase by phase, now and before the lean forward.

The step of ``step_time.py`` (16 prompts x 8 completions, 6 new tokens, beta 0.04) cut into its
phases: sampling (``generate_rollout``), the reference forward, the policy forward, the loss,
backward, gradient clipping and Adam. ``now`` is the library as it is; ``before`` the same step
on transformers' forward and growing KV cache (``lean.enabled(False)``) with torch's unfused
Adam. The two alternate round by round in one process (same machine load); process CPU time,
medians; the matmul probe of ``step_time.py`` gives this run's attainable rate.

    python benchmarks/step_phases.py [--rounds 20] [--out benchmarks/results/step_phases.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_time import BETA, LR, MAX_NEW, G, batch_problems, matmul_probe  # noqa: E402

from grpo_edu import lean, load_policy  # noqa: E402
from grpo_edu.algorithms import GRPOConfig  # noqa: E402
from grpo_edu.algorithms.signals import grpo_advantages  # noqa: E402
from grpo_edu.logprobs import completion_logprobs, reference_logp  # noqa: E402
from grpo_edu.losses import policy_loss  # noqa: E402
from grpo_edu.models import adam, frozen_copy  # noqa: E402
from grpo_edu.rewards import correctness_reward  # noqa: E402
from grpo_edu.rollout import generate_rollout  # noqa: E402
from grpo_edu.tasks import get_task  # noqa: E402

PHASES = ("sampling", "reference", "policy forward", "loss", "backward", "clip", "adam")


def phased_step_fn(task, before: bool):
    """A closure running one GRPO step (as ``grpo_step`` does it, mu = 1) that returns the
    CPU seconds of each phase."""
    policy, tok = load_policy("add2")
    ref = frozen_copy(policy)
    params = list(policy.parameters())
    opt = torch.optim.Adam(params, lr=LR) if before else adam(params, lr=LR)
    gen, config, state = torch.Generator().manual_seed(0), GRPOConfig(kl_coef=BETA), {"i": 0}

    def step() -> dict[str, float]:
        state["i"] += 1
        seconds, t = {}, [time.process_time()]

        def lap(name):
            t.append(time.process_time())
            seconds[name] = t[-1] - t[-2]

        with lean.enabled(not before):
            rollout = generate_rollout(policy, tok, batch_problems(task, state["i"]), G, MAX_NEW, 1.0, gen)  # fmt: skip
            rewards = torch.tensor(
                correctness_reward(rollout.prompts, rollout.texts, **rollout.reward_columns())
            )
            lap("sampling")
            ref_logp = reference_logp(ref, rollout)
            advantages = grpo_advantages(rewards, G, config)
            lap("reference")
            logp, _ = completion_logprobs(policy, rollout)
            lap("policy forward")
            batch = (logp, rollout.sampling_logp, advantages, rollout.completion_mask)
            loss, _ = policy_loss(*batch, ref_logp=ref_logp, kl_coef=BETA, **config.loss_kwargs(MAX_NEW))  # fmt: skip
            lap("loss")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            lap("backward")
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            lap("clip")
            opt.step()
            lap("adam")
        return seconds

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/step_phases.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    task = get_task("add2")
    steps = {"now": phased_step_fn(task, before=False), "before": phased_step_fn(task, before=True)}
    probe = matmul_probe(load_policy("add2")[0].config)
    runs = {k: [] for k in steps}
    rates, loads = [], []
    for r in range(args.warmup + args.rounds):
        for name, step in steps.items():
            seconds = step()
            if r >= args.warmup:
                runs[name].append(seconds)
        flops, s = probe(time.process_time)
        rates.append(flops / s)
        loads.append(os.getloadavg()[0])
    result = {
        "clock": "process CPU time, medians (ms)",
        "rounds": args.rounds,
        "load_average_1min": {
            "min": min(loads),
            "median": statistics.median(loads),
            "max": max(loads),
        },  # fmt: skip
        "matmul_rate_gflops": statistics.median(rates) / 1e9,
    }
    for name, rows in runs.items():
        result[name] = {p: 1000 * statistics.median(row[p] for row in rows) for p in PHASES}
        result[name]["step"] = 1000 * statistics.median(sum(row.values()) for row in rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

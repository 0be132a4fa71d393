"""Time one GRPO step: grpo_edu vs TRL's GRPOTrainer vs a bare plain-torch step, interleaved.

A step is everything one update costs: sample 16 prompts x 8 completions (6 new tokens at most),
score them, compute advantages, the reference log-probs (beta = 0.04), the loss, backward and the
optimizer step. All three start from the same weights (the shipped ``add2`` warm start) with
the same batch shape. TRL runs with its CPU-sane settings (bf16 and gradient checkpointing off).

The three are interleaved in one process: TRL's trainer drives, and after each of its steps a
callback runs one grpo_edu step and one bare step, so that all three see the same machine load.
We report medians and the median of the per-round ratios (our step / TRL step).

    python benchmarks/step_time.py [--steps 30] [--warmup 3] [--threads N] [--out benchmarks/results/step_time.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from grpo_edu import load_policy  # noqa: E402
from grpo_edu.algorithms import GRPOConfig, grpo_step  # noqa: E402
from grpo_edu.models import adam, frozen_copy, save_policy  # noqa: E402
from grpo_edu.rewards import correctness_reward  # noqa: E402
from grpo_edu.rollout import encode_prompts, generate_rollout  # noqa: E402
from grpo_edu.tasks import get_task, parse_answer  # noqa: E402
from grpo_edu.trl_bridge import make_trainer  # noqa: E402
from grpo_edu.vocab import EOS_ID  # noqa: E402

N_PROMPTS, G, MAX_NEW, BETA, LR = 16, 8, 6, 0.04, 1e-4


def ours_step_fn(task, seed=0):
    """A closure running one full grpo_edu GRPO step per call."""
    policy, tok = load_policy("add2")
    ref, opt = frozen_copy(policy), adam(policy.parameters(), lr=LR)
    gen, state = torch.Generator().manual_seed(seed), {"i": 0}

    def step():
        i = state["i"] = state["i"] + 1
        problems = [task.train[(i * N_PROMPTS + j) % len(task.train)] for j in range(N_PROMPTS)]
        rollout = generate_rollout(policy, tok, problems, G, MAX_NEW, 1.0, gen)
        rewards = torch.tensor(
            correctness_reward(rollout.prompts, rollout.texts, **rollout.reward_columns())
        )
        grpo_step(policy, ref, opt, rollout, rewards, GRPOConfig(kl_coef=BETA), gen)

    return step


def bare_step_fn(task, seed=0):
    """The same step written inline in plain torch: the floor that abstractions should not raise."""
    policy, tok = load_policy("add2")
    ref, opt = frozen_copy(policy), torch.optim.Adam(policy.parameters(), lr=LR)
    state = {"i": 0}  # generate() samples from the global RNG, seeded by the caller

    def step():
        i = state["i"] = state["i"] + 1
        problems = [task.train[(i * N_PROMPTS + j) % len(task.train)] for j in range(N_PROMPTS)]
        ids, attn = encode_prompts(tok, [p.prompt for p in problems for _ in range(G)])
        with torch.no_grad():  # sample with a KV cache
            out = policy.generate(input_ids=ids, attention_mask=attn, do_sample=True, max_new_tokens=MAX_NEW,
                                  eos_token_id=EOS_ID, pad_token_id=0, top_k=0)  # fmt: skip
        comp = out[:, ids.shape[1] :]
        mask = ((comp == EOS_ID).cumsum(1) - (comp == EOS_ID).long() == 0).float()
        texts = tok.batch_decode(comp, skip_special_tokens=True)
        r = torch.tensor(
            [
                float(parse_answer(t) == p.answer)
                for t, p in zip(texts, [p for p in problems for _ in range(G)], strict=True)
            ]
        )
        adv = (
            (r.view(-1, G) - r.view(-1, G).mean(1, keepdim=True))
            / (r.view(-1, G).std(1, keepdim=True) + 1e-4)
        ).flatten()
        full, full_attn = torch.cat([ids, comp], 1), torch.cat([attn, mask.long()], 1)
        P = ids.shape[1]
        with torch.no_grad():
            ref_logp = (
                torch.log_softmax(
                    ref(input_ids=full, attention_mask=full_attn).logits[:, P - 1 : -1], -1
                )
                .gather(-1, comp[..., None])
                .squeeze(-1)
            )
        logp = (
            torch.log_softmax(
                policy(input_ids=full, attention_mask=full_attn).logits[:, P - 1 : -1], -1
            )
            .gather(-1, comp[..., None])
            .squeeze(-1)
        )
        ratio = (logp - logp.detach()).exp()
        pg = -torch.min(ratio * adv[:, None], ratio.clamp(0.8, 1.2) * adv[:, None])
        kl = (ref_logp - logp).exp() - (ref_logp - logp) - 1
        loss = (((pg + BETA * kl) * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=30, help="timed rounds (after warmup)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/step_time.json")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import TrainerCallback

    task = get_task("add2")
    ours, bare = ours_step_fn(task), bare_step_fn(task)
    times = {"trl": [], "grpo_edu": [], "bare": []}

    class Interleave(TrainerCallback):
        def on_step_begin(self, args_, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args_, state, control, **kw):
            times["trl"].append(time.perf_counter() - self.t0)
            for name, fn in (("grpo_edu", ours), ("bare", bare)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)

    with tempfile.TemporaryDirectory() as tmp:
        policy, tok = load_policy("add2")
        save_policy(policy, tok, Path(tmp) / "model")
        trainer = make_trainer(
            str(Path(tmp) / "model"), tok, task_name="add2", output_dir=str(Path(tmp) / "out"),
            max_steps=args.steps + args.warmup, num_generations=G, per_device_train_batch_size=N_PROMPTS * G,
            max_completion_length=MAX_NEW, beta=BETA, learning_rate=LR, logging_steps=10_000,
        )  # fmt: skip
        trainer.add_callback(Interleave())
        trainer.train()
    result = {"batch": f"{N_PROMPTS} prompts x {G} completions, {MAX_NEW} new tokens, beta {BETA}",
              "threads": torch.get_num_threads(), "rounds": args.steps}  # fmt: skip
    timed = {k: v[args.warmup :] for k, v in times.items()}
    for name, values in timed.items():
        result[f"{name}_median_s"] = statistics.median(values)
    for name in ("grpo_edu", "bare"):
        ratios = [a / b for a, b in zip(timed[name], timed["trl"], strict=True)]
        result[f"{name}_over_trl_median_ratio"] = statistics.median(ratios)
    ratios = [a / b for a, b in zip(timed["grpo_edu"], timed["bare"], strict=True)]
    result["grpo_edu_over_bare_median_ratio"] = statistics.median(ratios)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result.items():
        print(f"{k:32s} {v:.4f}" if isinstance(v, float) else f"{k:32s} {v}")


if __name__ == "__main__":
    main()

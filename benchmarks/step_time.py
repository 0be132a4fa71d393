"""Time one GRPO and one PPO step against this machine's matmul limit, TRL and bare torch.

A step is everything one update costs: sample 16 prompts x 8 completions (6 new tokens at most),
score them, the reference log-probs (beta = 0.04), for PPO the critic's values and GAE, the loss,
backward and the optimizer step. Every variant starts from the shipped ``add2`` warm start.

    grpo_edu   GRPO and PPO steps of the library (``generate_rollout`` + ``grpo_step``/``ppo_step``)
    trl        TRL's ``GRPOTrainer`` on the same batch (bf16 and gradient checkpointing off);
               TRL 1.x has no PPO trainer, so PPO has no TRL ratio
    bare       the same GRPO and PPO steps written inline in plain torch: ``generate`` and full
               transformers forwards, no prefix sharing (the step abstractions should not raise)
    before     the grpo_edu GRPO step as it was before the lean forward: transformers' forward
               and growing KV cache (``lean.enabled(False)``), torch's unfused Adam
    matmul     the attainable rate: the model's matmul shapes, timed alone

All of them are interleaved in one process: TRL's trainer drives, and after each of its steps a
callback runs one step of every other variant and the matmul probe, so that all see the same
machine load (the machine may be shared). Per round we take

    floor       = FLOPs of the step / the matmul probe's rate in that round
    floor ratio = step time / floor            (1.0 = the step is nothing but matmuls at full speed)
    TRL ratio   = grpo_edu GRPO step / TRL step;  bare ratio = grpo_edu step / bare step
    before ratio = grpo_edu GRPO step / the same step before the lean forward

and report medians. FLOPs come from ``torch.utils.flop_counter`` on a few steps (they depend on
the sampled lengths: mean) next to a hand count of the linear layers' matmuls. grpo_edu's lean
forward runs only the tokens a real position needs, so two floors are reported: on the FLOPs it
executes, and on the dense work of the batch (the FLOPs the transformers path of the same step
executes, the work as the old step and the bare step define it). Time is process CPU time by
default (robust to other jobs sharing the cores; on an idle machine it is a one-thread run's wall
time) and wall time is reported too; the load average is recorded with every round.

    python benchmarks/step_time.py [--steps 30] [--warmup 3] [--threads 1] [--out benchmarks/results/step_time.json]
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

from grpo_edu import lean, load_policy  # noqa: E402
from grpo_edu.algorithms import GRPOConfig, PPOConfig, grpo_step, ppo_step  # noqa: E402
from grpo_edu.models import Critic, adam, frozen_copy, save_policy  # noqa: E402
from grpo_edu.rewards import correctness_reward  # noqa: E402
from grpo_edu.rollout import encode_prompts, generate_rollout  # noqa: E402
from grpo_edu.tasks import get_task, parse_answer  # noqa: E402
from grpo_edu.trl_bridge import make_trainer  # noqa: E402
from grpo_edu.vocab import EOS_ID  # noqa: E402

N_PROMPTS, G, MAX_NEW, BETA, LR = 16, 8, 6, 0.04, 1e-4


def batch_problems(task, i):
    return [task.train[(i * N_PROMPTS + j) % len(task.train)] for j in range(N_PROMPTS)]


def ours_step_fn(task, algorithm="grpo", seed=0, before=False):
    """A closure running one full grpo_edu step per call; returns the rollout. ``before``: the
    step as it was before the lean forward (transformers' forward and cache, torch's Adam)."""
    policy, tok = load_policy("add2")
    ref = frozen_copy(policy)
    critic = Critic.from_policy(policy) if algorithm == "ppo" else None
    params = list(policy.parameters()) + (list(critic.parameters()) if critic else [])
    opt = torch.optim.Adam(params, lr=LR) if before else adam(params, lr=LR)
    gen, state = torch.Generator().manual_seed(seed), {"i": 0}

    def step():
        if before:
            with lean.enabled(False):
                return run()
        return run()

    def run():
        i = state["i"] = state["i"] + 1
        rollout = generate_rollout(policy, tok, batch_problems(task, i), G, MAX_NEW, 1.0, gen)
        rewards = torch.tensor(
            correctness_reward(rollout.prompts, rollout.texts, **rollout.reward_columns())
        )
        if algorithm == "grpo":
            grpo_step(policy, ref, opt, rollout, rewards, GRPOConfig(kl_coef=BETA), gen)
        else:
            ppo_step(policy, critic, ref, opt, rollout, rewards, PPOConfig(kl_coef=BETA), gen)
        return rollout

    return step


def _full_logp(model, full, full_attn, comp, P):
    """log pi(token) of the completion tokens from one full forward, (B, T)."""
    logits = model(input_ids=full, attention_mask=full_attn).logits[:, P - 1 : -1]
    return torch.log_softmax(logits, -1).gather(-1, comp[..., None]).squeeze(-1)


def bare_step_fn(task, algorithm="grpo"):
    """The same step inline in plain torch: ``generate``, full forwards, no prefix sharing."""
    policy, tok = load_policy("add2")
    ref = frozen_copy(policy)
    critic = Critic.from_policy(policy) if algorithm == "ppo" else None
    params = list(policy.parameters()) + (list(critic.parameters()) if critic else [])
    opt, state = torch.optim.Adam(params, lr=LR), {"i": 0}  # generate(): the global RNG

    def step():
        i = state["i"] = state["i"] + 1
        problems = [p for p in batch_problems(task, i) for _ in range(G)]
        ids, attn = encode_prompts(tok, [p.prompt for p in problems])
        with torch.no_grad():  # sample with a KV cache
            out = policy.generate(input_ids=ids, attention_mask=attn, do_sample=True, max_new_tokens=MAX_NEW,
                                  eos_token_id=EOS_ID, pad_token_id=0, top_k=0)  # fmt: skip
        P, comp = ids.shape[1], out[:, ids.shape[1] :]
        mask = ((comp == EOS_ID).cumsum(1) - (comp == EOS_ID).long() == 0).float()  # (B, T)
        texts = tok.batch_decode(comp, skip_special_tokens=True)
        r = torch.tensor([float(parse_answer(t) == p.answer) for t, p in zip(texts, problems, strict=True)])  # fmt: skip
        full, full_attn = torch.cat([ids, comp], 1), torch.cat([attn, mask.long()], 1)
        with torch.no_grad():
            ref_logp = _full_logp(ref, full, full_attn, comp, P)
        logp = _full_logp(policy, full, full_attn, comp, P)
        ratio = (logp - logp.detach()).exp()
        if algorithm == "grpo":
            rg = r.view(-1, G)
            adv = ((rg - rg.mean(1, keepdim=True)) / (rg.std(1, keepdim=True) + 1e-4)).flatten()
            pg = -torch.min(ratio * adv[:, None], ratio.clamp(0.8, 1.2) * adv[:, None])
            kl = (ref_logp - logp).exp() - (ref_logp - logp) - 1
            loss = (((pg + BETA * kl) * mask).sum(1) / mask.sum(1).clamp(min=1)).mean()
        else:
            with torch.no_grad():
                old_values = critic(full, full_attn)[:, P - 1 : -1] * mask  # (B, T)
                rewards = -BETA * (logp.detach() - ref_logp) * mask  # k1 KL in the reward
                last = (mask.sum(1).long() - 1).clamp(min=0)
                rewards[torch.arange(len(r)), last] += r
                next_mask = torch.cat([mask[:, 1:], torch.zeros(len(r), 1)], 1)  # (B, T)
                next_values = torch.cat([old_values[:, 1:], torch.zeros(len(r), 1)], 1)
                delta = rewards + next_values * next_mask - old_values  # gamma = 1
                adv, running = torch.zeros_like(rewards), torch.zeros(len(r))
                for t in reversed(range(rewards.shape[1])):  # GAE, lambda = 0.95
                    running = delta[:, t] + 0.95 * next_mask[:, t] * running
                    adv[:, t] = running * mask[:, t]
                returns = adv + old_values
                mean = (adv * mask).sum() / mask.sum()
                std = (((adv - mean) ** 2 * mask).sum() / mask.sum()).sqrt()
                adv = (adv - mean) / (std + 1e-8) * mask
            pg = -torch.min(ratio * adv, ratio.clamp(0.8, 1.2) * adv)
            values = critic(full, full_attn)[:, P - 1 : -1]
            clipped = old_values + (values - old_values).clamp(-0.2, 0.2)
            vf = torch.max((values - returns) ** 2, (clipped - returns) ** 2)
            loss = (pg * mask).sum() / mask.sum() + 0.1 * 0.5 * (vf * mask).sum() / mask.sum()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    return step


def matmul_probe(config, reps: int = 8):
    """A closure timing the model's matmul shapes alone: (FLOPs, seconds) per call. Shapes:
    q/k/v, o, gate/up and down projections at 128 rows (a decode step) and 512 (a forward)."""
    C, I = config.hidden_size, config.intermediate_size  # noqa: E741
    HD = config.num_attention_heads * config.head_dim
    pairs = [(torch.randn(m, k), torch.randn(k, n)) for m in (128, 512)
             for k, n in ((C, 3 * HD), (HD, C), (C, 2 * I), (I, C))]  # fmt: skip
    flops = reps * sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs)

    def probe(clock):
        t0 = clock()
        for _ in range(reps):
            for a, b in pairs:
                torch.mm(a, b)
        return flops, clock() - t0

    return probe


def linear_flops_per_token(config) -> int:
    """Forward FLOPs of the linear layers for one token: 2 x (multiply-adds per token)."""
    C, I, V = config.hidden_size, config.intermediate_size, config.vocab_size  # noqa: E741
    HD = config.num_attention_heads * config.head_dim
    per_layer = C * 3 * HD + HD * C + C * 2 * I + I * C
    return 2 * (config.num_hidden_layers * per_layer + C * V)


def hand_count(rollout, config, algorithm: str) -> dict[str, float]:
    """Linear-layer FLOPs of one step from its rollout: ``dense`` = prompts once per group and
    every completion slot fed (the transformers path), ``packed`` = only the tokens a real
    position needs (the lean path). Forwards: sampling, reference, policy (backward 2x), and
    for PPO the critic twice (old values, training) with its backward."""
    n, P = rollout.prompt_ids.shape[0] // G, rollout.prompt_ids.shape[1]
    B, T = rollout.completion_ids.shape
    lengths = rollout.completion_mask.sum(-1)
    forwards = 5 if algorithm == "grpo" else 9  # sample, ref, policy x3 (+ critic 1 + 3)
    per_token = linear_flops_per_token(config)
    dense = forwards * per_token * (n * P + B * (T - 1))
    packed = forwards * per_token * (n * P + float((lengths - 1).sum()))
    return {"dense": dense, "packed": packed}


def count_flops(step, n: int = 3) -> tuple[float, list]:
    """Mean FLOPs of ``n`` calls of ``step`` by torch's FLOP counter; their return values."""
    from torch.utils.flop_counter import FlopCounterMode

    total, outs = 0, []
    for _ in range(n):
        with FlopCounterMode(display=False) as counter:
            outs.append(step())
        total += counter.get_total_flops()
    return total / n, outs


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=30, help="timed rounds (after warmup)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/step_time.json")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu", help="clock of the ratios")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from transformers import TrainerCallback

    task = get_task("add2")
    config = load_policy("add2")[0].config
    steps = {
        "grpo_edu_grpo": ours_step_fn(task, "grpo"),
        "before_grpo": ours_step_fn(task, "grpo", before=True),
        "bare_grpo": bare_step_fn(task, "grpo"),
        "grpo_edu_ppo": ours_step_fn(task, "ppo"),
        "bare_ppo": bare_step_fn(task, "ppo"),
    }
    probe = matmul_probe(config)
    # 1. FLOPs: the counter on a few steps of each, the hand count from their rollouts
    flops, hand = {}, {}
    for name in ("grpo_edu_grpo", "grpo_edu_ppo"):
        algorithm = name.rsplit("_", 1)[1]
        flops[name], rollouts = count_flops(steps[name])
        counts = [hand_count(r, config, algorithm) for r in rollouts]
        hand[name] = {k: statistics.mean(c[k] for c in counts) for k in counts[0]}
        with lean.enabled(False):  # the dense work: the same step on the transformers path
            flops[f"{name}_dense"], _ = count_flops(ours_step_fn(task, algorithm))
    for name in ("bare_grpo", "bare_ppo"):
        flops[name], _ = count_flops(steps[name])
    # 2. interleaved rounds, TRL driving
    clocks = {"cpu": time.process_time, "wall": time.perf_counter}
    times = {k: {c: [] for c in clocks} for k in ["trl", *steps]}
    rates, loads, trl_flops = {c: [] for c in clocks}, [], {}

    def timed(name, fn):
        c0, w0 = time.process_time(), time.perf_counter()
        fn()
        times[name]["cpu"].append(time.process_time() - c0)
        times[name]["wall"].append(time.perf_counter() - w0)

    class Interleave(TrainerCallback):
        def on_step_begin(self, args_, state, control, **kw):
            if state.global_step == 0:  # count TRL's FLOPs on its first (warmup) step
                from torch.utils.flop_counter import FlopCounterMode

                self.counter = FlopCounterMode(display=False)
                self.counter.__enter__()
            self.t0 = (time.process_time(), time.perf_counter())

        def on_step_end(self, args_, state, control, **kw):
            times["trl"]["cpu"].append(time.process_time() - self.t0[0])
            times["trl"]["wall"].append(time.perf_counter() - self.t0[1])
            if getattr(self, "counter", None) is not None:
                self.counter.__exit__(None, None, None)
                trl_flops["trl"], self.counter = self.counter.get_total_flops(), None
            for name, fn in steps.items():
                timed(name, fn)
            for clock, fn in clocks.items():
                f, s = probe(fn)
                rates[clock].append(f / s)
            loads.append(os.getloadavg()[0])

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
    flops.update(trl_flops)
    # 3. per-round ratios, medians
    w, clock = args.warmup, args.clock
    t = {k: v[clock][w:] for k, v in times.items()}
    rate = rates[clock][w:]

    def median_ratio(a, b):
        return statistics.median(x / y for x, y in zip(a, b, strict=True))

    def floor_ratio(name, flop_key):
        return statistics.median(s / (flops[flop_key] / r) for s, r in zip(t[name], rate, strict=True))  # fmt: skip

    result = {
        "batch": f"{N_PROMPTS} prompts x {G} completions, {MAX_NEW} new tokens, beta {BETA}",
        "threads": torch.get_num_threads(),
        "rounds": args.steps,
        "clock": clock,
        "load_average_1min": {
            "min": min(loads[w:]),
            "median": statistics.median(loads[w:]),
            "max": max(loads[w:]),
        },  # fmt: skip
        "matmul_rate_gflops": statistics.median(rate) / 1e9,
        "median_s": {k: statistics.median(v) for k, v in t.items()},
        "median_wall_s": {k: statistics.median(v["wall"][w:]) for k, v in times.items()},
        "gflop": {k: v / 1e9 for k, v in flops.items()},
        "hand_count_gflop": {k: {kk: vv / 1e9 for kk, vv in v.items()} for k, v in hand.items()},
    }
    for algorithm in ("grpo", "ppo"):
        name = f"grpo_edu_{algorithm}"
        result[algorithm] = {
            "step_s": statistics.median(t[name]),
            "gflop_executed": flops[name] / 1e9,
            "gflop_dense_work": flops[f"{name}_dense"] / 1e9,
            "floor_s": flops[name] / statistics.median(rate),
            "floor_ratio": floor_ratio(name, name),
            "floor_ratio_dense_work": floor_ratio(name, f"{name}_dense"),
            "bare_ratio": median_ratio(t[name], t[f"bare_{algorithm}"]),
            "trl_ratio": median_ratio(t[name], t["trl"]) if algorithm == "grpo" else None,
        }
    result["grpo"]["before_ratio"] = median_ratio(t["grpo_edu_grpo"], t["before_grpo"])
    result["before_grpo_floor_ratio"] = floor_ratio("before_grpo", "grpo_edu_grpo_dense")
    result["before_grpo_over_trl"] = median_ratio(t["before_grpo"], t["trl"])
    result["bare_grpo_over_trl"] = median_ratio(t["bare_grpo"], t["trl"])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

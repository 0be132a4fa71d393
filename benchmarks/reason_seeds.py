"""The reasoning chapter's comparisons over seeds: each run of ``grpo_edu.reason.EXPERIMENTS``
(outcome vs process supervision vs a shaped reward; beta 0.04 vs 0), the 'beyond selection' run
from the ``sum5`` warm start, and pass@k up to k = 256 for warm starts and RL policies.

Each (run, seed) is trained once (identical configs are shared between experiments), evaluated
before and after (``evaluate_formats``: 500 eval problems, 8 samples each), and appended to
``benchmarks/results/reason_runs.jsonl`` (one JSON object per run: config, start and final
reports, seconds, CPU/torch build) with its per-step metrics in ``reason_runs_metrics.csv``; pass@k curves: 100 eval problems, 256 samples each. A run
already in the file is skipped, so the script can be stopped and resumed. One torch thread.

    python benchmarks/reason_seeds.py [--seeds 0 1 2] [--only supervision beta beyond passk]
                                      [--figures figures]

``--figures DIR`` (re)draws the comparison figures from the results in the files, into DIR:
``reason_supervision.png``, ``reason_beta.png``, ``reason_beyond.png``, ``reason_pass_at_k_256.png``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import pandas as pd
import torch

from grpo_edu.machine import machine_info
from grpo_edu.models import load_policy
from grpo_edu.reason import (
    EXPERIMENTS,
    PASS_KS,
    R1_ZERO,
    ReasonConfig,
    pass_at_k_curve,
    run_reason,
)
from grpo_edu.tasks import get_task
from grpo_edu.tokenizer import build_tokenizer

RESULTS = Path(__file__).parent / "results"
RUNS, METRICS = RESULTS / "reason_runs.jsonl", RESULTS / "reason_runs_metrics.csv"
BEYOND = replace(R1_ZERO, task="sum5", checkpoint="sum5", max_new_tokens=30)
"""GRPO with the outcome reward on 5 operands, from the warm start that only ever wrote
scratchpads for 3."""
PASS_N, PASS_PROBLEMS = 256, 100


def _key(config) -> str:
    return json.dumps(asdict(config), sort_keys=True)


def _done() -> dict[str, dict]:
    if not RUNS.exists():
        return {}
    return {r["key"]: r for r in map(json.loads, RUNS.read_text().splitlines()) if r}


def run_one(name: str, config, seed: int, done: dict, passk: bool = False) -> dict:
    """Train (or reuse) one run; append its record and metrics. With ``passk``, the record
    also gets the final policy's pass@k curve up to k = 256."""
    config = replace(config, seed=seed)
    key = _key(config)
    done.update(_done())  # another process may have run it meanwhile
    if key in done and (not passk or "pass_at_k" in done[key]):
        return done[key]
    claim = (
        Path(tempfile.gettempdir())
        / "grpo_edu_reason_runs"
        / hashlib.sha1(key.encode()).hexdigest()
    )
    if claim.exists():  # another process is running it now
        return {}
    claim.parent.mkdir(parents=True, exist_ok=True)
    claim.write_text(f"{name} seed {seed}\n")
    result = run_reason(ReasonConfig(train=config), progress=False)
    record = {
        "key": key, "name": name, "seed": seed, "task": config.task,
        "checkpoint": config.checkpoint, "start": result.start.as_dict(),
        "final": result.final.as_dict(), "seconds": result.seconds, "machine": machine_info(),
    }  # fmt: skip
    if passk:
        record["pass_at_k"] = pass_k(f"GRPO seed {seed}", result.policy, build_tokenizer(),
                                     config.task, config.max_new_tokens)  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RUNS, "a") as f:
        f.write(json.dumps(record) + "\n")
    metrics = result.metrics.assign(run=name, seed=seed, key=key)
    metrics.to_csv(METRICS, mode="a", header=not METRICS.exists(), index=False)
    done[key] = record
    claim.unlink()
    return record


def pass_k(label: str, policy, tokenizer, task: str, max_new_tokens: int) -> dict:
    problems = get_task(task).eval[:PASS_PROBLEMS]
    t0 = time.process_time()
    curve = pass_at_k_curve(policy, tokenizer, problems, PASS_N, PASS_KS, 0, max_new_tokens)
    return {"label": label, "task": task, "n": PASS_N, "problems": PASS_PROBLEMS,
            "curve": curve, "cpu_seconds": time.process_time() - t0}  # fmt: skip


def warm_start_curve(config) -> None:
    """Add the pass@k curve of ``config``'s warm start to ``reason_pass_at_k_warm_starts.json``."""
    path = RESULTS / "reason_pass_at_k_warm_starts.json"
    curves = json.loads(path.read_text()) if path.exists() else []
    label = f"warm start {config.checkpoint}"
    if all(c["label"] != label for c in curves):
        policy, tok = load_policy(config.checkpoint)
        curves.append(pass_k(label, policy, tok, config.task, config.max_new_tokens))
        RESULTS.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(curves, indent=1) + "\n")


def draw_figures(out: Path) -> None:
    """The comparison figures, from the result files."""
    from grpo_edu.plots import save_figures
    from grpo_edu.reason import load_seed_runs, seed_pass_curves
    from grpo_edu.reason.plots import pass_at_k_figure, seeds_figure

    finals, metrics = load_seed_runs(RESULTS)
    panels = {"eval/scratchpad_share": "scratchpad share (eval samples)",
              "eval/sampled": "sampled accuracy (eval samples)",
              "completions/mean_length": "mean length (training batches)"}  # fmt: skip
    figures = {}
    for name, title in (("supervision", "outcome vs process supervision vs the step-mean reward"),
                        ("beta", "the KL coefficient beta")):  # fmt: skip
        runs = metrics[metrics["run"].isin(list(EXPERIMENTS[name]))]
        figures[f"reason_{name}"] = seeds_figure(runs, panels, by="run", title=title)
    beyond = metrics[metrics["run"] == "beyond selection (sum5)"]
    if not beyond.empty:
        figures["reason_beyond"] = seeds_figure(beyond, panels, by="run",
                                                title="sum5 from a warm start with scratchpads for 3 operands only")  # fmt: skip
    warm = json.loads((RESULTS / "reason_pass_at_k_warm_starts.json").read_text())
    warm = {c["label"]: {int(k): v for k, v in c["curve"].items()} for c in warm}
    curves = {k: v for k, v in warm.items() if k.endswith("sum4")}
    curves |= seed_pass_curves(finals, "outcome (OS)", "sum4 GRPO")
    if "warm start sum5" in warm:
        curves |= {"warm start sum5": warm["warm start sum5"]}
        curves |= seed_pass_curves(finals, "beyond selection (sum5)", "sum5 GRPO")
    figures["reason_pass_at_k_256"] = pass_at_k_figure(curves, f"pass@k, {PASS_PROBLEMS} eval "
                                                       f"problems, {PASS_N} samples each")  # fmt: skip
    for path in save_figures(figures, out):
        print("wrote", path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--only", nargs="+", default=["supervision", "beta", "beyond", "passk"])
    p.add_argument("--figures", type=Path, help="draw the comparison figures into this folder")
    p.add_argument("--runs", nargs="+", help="only the runs of these names (default: all)")
    args = p.parse_args()
    if args.figures:
        return draw_figures(args.figures)
    torch.set_num_threads(1)
    done, passk = _done(), "passk" in args.only
    if passk:  # the warm starts' pass@k curves, once each
        for experiment, config in (("supervision", R1_ZERO), ("beyond", BEYOND)):
            if experiment in args.only:
                warm_start_curve(config)
    for experiment in ("supervision", "beta"):
        if experiment in args.only:
            for name, config in EXPERIMENTS[experiment].items():
                if args.runs and name not in args.runs:
                    continue
                for seed in args.seeds:
                    run_one(name, config, seed, done, passk and config == R1_ZERO)
    if "beyond" in args.only:
        for seed in args.seeds:
            run_one("beyond selection (sum5)", BEYOND, seed, done, passk)
    print(pd.read_csv(METRICS).groupby(["run", "seed"]).size())


if __name__ == "__main__":
    main()

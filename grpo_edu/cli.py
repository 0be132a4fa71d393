"""Command line: ``python -m grpo_edu <command> ...`` (or ``grpo-edu <command> ...``).

    python -m grpo_edu evaluate add2              # table: greedy, sampled, pass@k, maj@k
    python -m grpo_edu pretrain add2 sub2         # re-make shipped warm starts (data/checkpoints/)
    python -m grpo_edu pretrain --all --out /tmp/ckpt

Each command is one entry of ``COMMANDS``: a name mapped to a ``Command`` with a help line, a
function that adds its arguments to an ``argparse`` sub-parser and a small ``run(args) -> int``.
Adding a command is adding one entry. This module is the only place in ``grpo_edu`` that prints;
bad input (an unknown task, a missing checkpoint) prints one line ``error: ...`` and exits with 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple


class CLIError(Exception):
    """Bad input from the command line: printed as one ``error: ...`` line, exit status 2."""


class Command(NamedTuple):
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ------------------------------------------------------------------------------------ helpers
def _check_task(name: str) -> str:
    from .tasks import parse_task_name

    try:
        parse_task_name(name)
    except ValueError as e:
        raise CLIError(str(e)) from None
    return name


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6


def _table(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


# ----------------------------------------------------------------------------------- evaluate
def _evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", metavar="TASK", help="task whose eval split is used, e.g. add2")
    p.add_argument(
        "--checkpoint",
        metavar="NAME_OR_PATH",
        help="shipped checkpoint name or a directory (default: the TASK's own checkpoint)",
    )
    p.add_argument(
        "--k", type=_positive_int, metavar="K", default=8, help="samples per problem (default 8)"
    )
    p.add_argument(
        "--temperature", type=float, metavar="T", default=1.0, help="sampling temperature (1.0)"
    )
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


def _evaluate_run(args: argparse.Namespace) -> int:
    from .evaluate import evaluate_policy
    from .models import checkpoint_path, load_policy, n_params
    from .tasks import get_task

    task = get_task(_check_task(args.task))
    if args.temperature <= 0:
        raise CLIError(f"--temperature must be > 0, got {args.temperature}")
    name = args.checkpoint or args.task
    t0 = time.perf_counter()
    try:
        model, tokenizer = load_policy(name)
    except ValueError as e:
        raise CLIError(str(e)) from None
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = evaluate_policy(model, tokenizer, task.eval, args.k, args.temperature, args.seed)
    eval_s = time.perf_counter() - t0
    path = Path(name) if Path(name).exists() else checkpoint_path(name)
    k, T = report.k, report.temperature
    print(f"evaluate {task.name}: checkpoint {path}")
    print(
        _table(
            [
                ("greedy", f"{report.greedy:.3f}"),
                (f"sampled@T={T:g}", f"{report.sampled:.3f}"),
                (f"pass@{k}", f"{report.pass_at_k:.3f}"),
                (f"maj@{k}", f"{report.maj_at_k:.3f}"),
                ("problems", f"{report.n_problems} (eval split, seed {args.seed})"),
                ("checkpoint", f"{n_params(model) / 1e6:.2f}M params, {_dir_mb(path):.1f} MB"),
                ("time", f"load {load_s:.2f} s, evaluate {eval_s:.1f} s"),
            ]
        )
    )
    return 0


# ----------------------------------------------------------------------------------- pretrain
def _pretrain_arguments(p: argparse.ArgumentParser) -> None:
    from .pretrain import RECIPES

    p.add_argument("tasks", nargs="*", metavar="TASK", help="tasks to warm-start, e.g. add2")
    p.add_argument("--all", action="store_true", help=f"every shipped task: {' '.join(RECIPES)}")
    p.add_argument("--seed", type=int, help="override the recipe's seed")
    p.add_argument(
        "--steps", type=_positive_int, metavar="N", help="override the recipe's optimizer steps"
    )
    p.add_argument(
        "--out", type=Path, help="parent directory of <task>/ (default: data/checkpoints)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")


def _pretrain_run(args: argparse.Namespace) -> int:
    from .models import CHECKPOINT_DIR, save_policy
    from .pretrain import RECIPES, pretrain, recipe

    names = list(RECIPES) if args.all else [_check_task(t) for t in args.tasks]
    if not names:
        raise CLIError("name at least one TASK, or pass --all")
    out = args.out or CHECKPOINT_DIR
    for name in names:
        config = recipe(name)
        if args.seed is not None:
            config = replace(config, seed=args.seed)
        if args.steps is not None:
            config = replace(config, steps=args.steps)
        model, tokenizer, card = pretrain(config, progress=not args.no_progress)
        path = save_policy(model, tokenizer, out / name, card=card)
        e = card["eval"]
        print(
            f"{name}: greedy {e['greedy']:.3f}  sampled@T=1 {e['sampled']:.3f}  "
            f"pass@8 {e['pass_at_k']:.3f}  maj@8 {e['maj_at_k']:.3f}  | "
            f"{card['n_params'] / 1e6:.2f}M params, {_dir_mb(path):.1f} MB, "
            f"{card['train_seconds']:.0f} s ({card['train_cpu_seconds']:.0f} s CPU), "
            f"seed {config.seed}, {config.steps} steps -> {path}"
        )
    return 0


# ------------------------------------------------------------------------------------ compare
def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fast", action="store_true", help="20 steps each, smaller evals (CI size, ~1 min)"
    )
    p.add_argument("--steps", type=_positive_int, help="override the number of steps of both runs")
    p.add_argument("--seed", type=int, default=0, help="seed of both runs (default 0)")
    p.add_argument("--out", type=Path, default=Path("figures"), help="where figures and CSVs go")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")


def _compare_run(args: argparse.Namespace) -> int:
    from .compare import CompareConfig, run_compare
    from .plots import compare_figures, save_figures

    config = CompareConfig.fast() if args.fast else CompareConfig()
    config = config.with_seed(args.seed)
    if args.steps is not None:
        config = config.with_steps(args.steps)
    g, p = config.grpo, config.ppo
    print(
        f"compare on {g.task} from checkpoint {g.checkpoint!r}: {g.steps} steps x "
        f"{g.completions_per_step} completions each (GRPO {g.n_prompts} prompts x G={g.group_size}, "
        f"PPO {p.n_prompts} prompts x {p.group_size}), seed {args.seed}"
    )
    t0 = time.perf_counter()
    result = run_compare(config, progress=not args.no_progress)
    wall = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    result.metrics.to_csv(args.out / "compare_metrics.csv", index=False)
    result.summary.to_csv(args.out / "compare_summary.csv")
    paths = save_figures(compare_figures(result), args.out)
    print(_summary_table(result.summary))
    ratio = (
        result.summary.loc["grpo", "train_state_mb"] / result.summary.loc["ppo", "train_state_mb"]
    )
    print(f"GRPO / PPO training-state memory: {ratio:.2f}x   total wall time {wall:.0f} s")
    for algo in ("grpo", "ppo"):
        row, name, target = result.summary.loc[algo], algo.upper(), f"{config.target:.2f}"
        if row["steps_to_target"] == row["steps_to_target"]:  # not NaN
            print(f"{name} first reached sampled accuracy >= {target} at step "
                  f"{row['steps_to_target']:.0f}, after {row['seconds_to_target']:.0f} s of training")  # fmt: skip
        else:
            print(f"{name} did not reach sampled accuracy >= {target} in {row['steps']:.0f} steps")
    print("wrote " + ", ".join(str(p) for p in [args.out / "compare_metrics.csv", *paths]))
    return 0


def _summary_table(summary) -> str:
    formats = {"steps": "{:.0f}", "completions": "{:.0f}", "train_seconds": "{:.1f}",
               "seconds_per_step": "{:.3f}", "train_state_mb": "{:.1f}",
               "trainable_params": "{:,.0f}", "held_params": "{:,.0f}",
               "steps_to_target": "{:.0f}", "seconds_to_target": "{:.1f}"}  # fmt: skip
    table = summary.copy().astype(object)
    for column in table.columns:
        fmt = formats.get(column, "{:.3f}")
        table[column] = [("" if v != v else fmt.format(v)) for v in summary[column]]
    return table.to_string()


# ----------------------------------------------------------------------------------- paradigm
PARADIGM_FILES = ("paradigm_metrics.csv", "paradigm_runs.csv", "paradigm_passk.csv",
                  "paradigm_config.json", "paradigm_table.csv", "paradigm_race.png",
                  "paradigm_passk.png", "paradigm_final.png", "paradigm_coefficients.png")  # fmt: skip


def _paradigm_arguments(p: argparse.ArgumentParser) -> None:
    from .paradigm import METHODS

    p.add_argument("--fast", action="store_true", help="CI size: one seed, 6 steps (~1 min)")
    p.add_argument("--steps", type=_positive_int, help="override the steps of every run")
    p.add_argument("--seeds", type=int, nargs="+", metavar="S", help="seeds (default 0 1 2)")
    p.add_argument("--methods", nargs="+", metavar="M", choices=METHODS,
                   help=f"methods to race (default all: {' '.join(METHODS)})")  # fmt: skip
    p.add_argument("--workers", type=_positive_int, default=2,
                   help="processes running the runs, one torch thread each (default 2)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("figures"), help="where figures and CSVs go")
    p.add_argument("--overwrite", action="store_true", help="replace existing paradigm_* files")
    p.add_argument("--pretrain", action="store_true",
                   help="re-make the race's warm start (paradigm.WARM_START) first")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _paradigm_run(args: argparse.Namespace) -> int:
    import os

    from .models import save_policy
    from .paradigm import RaceConfig, check_race_config, format_table, paradigm_figures, run_race
    from .paradigm.race import WARM_START, make_warm_start, passk_table, save_race
    from .plots import save_figures

    config = RaceConfig.fast() if args.fast else RaceConfig()
    changes = {"steps": args.steps, "seeds": args.seeds and tuple(args.seeds),
               "methods": args.methods and tuple(args.methods), "workers": args.workers}  # fmt: skip
    config = replace(config, **{k: v for k, v in changes.items() if v is not None})
    existing = [str(args.out / f) for f in PARADIGM_FILES if (args.out / f).exists()]
    if existing and not args.overwrite:
        raise CLIError(f"{existing[0]} exists (shipped results): pass --overwrite, or --out DIR")
    if args.pretrain and WARM_START.exists() and not args.overwrite:
        raise CLIError(f"{WARM_START} exists (the shipped warm start): pass --overwrite too")
    try:
        check_race_config(config)
    except ValueError as e:
        raise CLIError(str(e)) from None
    load = os.getloadavg()
    if args.pretrain:
        model, tokenizer, card = make_warm_start(progress=not args.no_progress)
        save_policy(model, tokenizer, WARM_START, card=card)
        e = card["eval"]
        print(f"warm start {WARM_START}: greedy {e['greedy']:.3f} sampled {e['sampled']:.3f} "
              f"pass@8 {e['pass_at_k']:.3f}, {card['train_cpu_seconds']:.0f} s CPU")  # fmt: skip
    print(
        f"paradigm race on {config.task} from {config.checkpoint}: {', '.join(config.methods)}; "
        f"seeds {' '.join(map(str, config.seeds))}; {config.steps} steps x "
        f"{config.n_prompts * config.group_size} completions; {config.workers} worker(s); "
        f"load average at start {load[0]:.1f} on {os.cpu_count()} cores"
    )

    def line(method, seed, s):
        print(f"  {method:<10} seed {seed}: greedy {s['greedy']:.3f}  sampled {s['sampled']:.3f}  "
              f"train {s['train_seconds']:.1f} s ({s['train_cpu_seconds']:.1f} s CPU), "
              f"job {s['job_seconds']:.1f} s", flush=True)  # fmt: skip

    t0 = time.perf_counter()
    result = run_race(config, progress=not args.no_progress, on_result=line)
    wall = time.perf_counter() - t0
    files = save_race(result, args.out)
    from .explain.coefficients import figure_coefficients

    figures = paradigm_figures(result) | {"paradigm_coefficients": figure_coefficients()}
    paths = save_figures(figures, args.out)
    print(f"mean ± std over {len(config.seeds)} seed(s):")
    print(format_table(result.table).to_string())
    print("pass@k, mean over seeds:")
    print(passk_table(result.passk).to_string(float_format=lambda v: f"{v:.3f}"))
    load = os.getloadavg()
    print(f"race wall time {wall:.0f} s ({wall / 60:.1f} min); load average now "
          f"{load[0]:.1f} (1 min), {load[2]:.1f} (15 min)")  # fmt: skip
    print("wrote " + ", ".join(str(p) for p in [*files, *paths]))
    return 0


# ------------------------------------------------------------------------------------ figures
def _figures_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=Path("figures"), help="output folder (figures/)")
    p.add_argument("--fast", action="store_true", help="the CI-sized compare run")


def _figures_run(args: argparse.Namespace) -> int:
    """The README's figures: the compare run's figures plus one PNG per interactive explorer."""
    from .explain import default_figures
    from .plots import save_figures

    status = _compare_run(argparse.Namespace(fast=args.fast, steps=None, seed=0, out=args.out,
                                             no_progress=False))  # fmt: skip
    paths = save_figures(default_figures(), args.out)
    print("wrote " + ", ".join(str(p) for p in paths))
    return status


COMMANDS: dict[str, Command] = {
    "evaluate": Command(
        "greedy / sampled accuracy, pass@k and maj@k of a checkpoint on a task's eval split",
        _evaluate_arguments,
        _evaluate_run,
    ),
    "compare": Command(
        "the main job: PPO and GRPO from the same warm start on the same budget; figures + summary",
        _compare_arguments,
        _compare_run,
    ),
    "figures": Command(
        "re-make every figure of the README into figures/ (the compare run and the explorers)",
        _figures_arguments,
        _figures_run,
    ),
    "paradigm": Command(
        "DeepSeekMath's unified paradigm: SFT, RFT, online RFT, DPO, PPO, GRPO raced over seeds",
        _paradigm_arguments,
        _paradigm_run,
    ),
    "pretrain": Command(
        "supervised warm start of a task; writes data/checkpoints/<task>/ with its card",
        _pretrain_arguments,
        _pretrain_run,
    ),
}
"""Every subcommand: name -> (help, add_arguments, run)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grpo_edu", description="GRPO vs PPO on a tiny arithmetic LM."
    )
    parser.add_argument(
        "--threads",
        type=_positive_int,
        metavar="N",
        default=1,
        help="torch CPU threads (default 1: on a busy 2-core machine, 2 threads made this tiny "
        "model 6-20x slower; a 1-thread pretrain's CPU time is its wall time on an idle machine)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit status."""
    args = build_parser().parse_args(argv)
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # weight loading / saving bars: noise for a 3 MB model
    try:
        return args.run(args)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

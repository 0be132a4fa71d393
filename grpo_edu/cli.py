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
import os
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


def _threads(text: str) -> int | str:
    return text if text == "auto" else _positive_int(text)


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
        type=_threads,
        metavar="N",
        default="auto",
        help="torch CPU threads, or 'auto' (default): 1 unless cores are idle and 2 threads are "
        "measured faster (grpo_edu.threads); on a busy 2-core machine 2 threads made this tiny "
        "model 6-20x slower. Results are bitwise repeatable at a fixed N",
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
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read once, when torch loads
    import torch
    from transformers.utils import logging as hf_logging

    from .threads import choose_threads

    torch.set_num_threads(choose_threads(args.threads))
    hf_logging.disable_progress_bar()  # weight loading / saving bars: noise for a 3 MB model
    try:
        return args.run(args)
    except CLIError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

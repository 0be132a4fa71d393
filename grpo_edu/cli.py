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
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")


def _compare_run(args: argparse.Namespace) -> int:
    from .compare import CompareConfig, run_compare
    from .models import resolve_device
    from .plots import compare_figures, save_figures

    config = CompareConfig.fast() if args.fast else CompareConfig()
    config = config.with_seed(args.seed)
    if args.steps is not None:
        config = config.with_steps(args.steps)
    device = getattr(args, "device", "cpu")  # `figures` calls this without the option
    try:
        resolve_device(device)
    except ValueError as e:
        raise CLIError(str(e)) from None
    config = replace(config, grpo=replace(config.grpo, device=device),
                     ppo=replace(config.ppo, device=device))  # fmt: skip
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


# ------------------------------------------------------------------------------------- reason
def _reason_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fast", action="store_true", help="20 steps, small evals (CI size)")
    p.add_argument("--steps", type=_positive_int, help="override the number of GRPO steps (200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    p.add_argument("--beta", type=float, help="KL coefficient (default 0.04)")
    p.add_argument("--checkpoint", metavar="NAME_OR_PATH", help="warm start (default sum4)")
    p.add_argument(
        "--pass-k", type=_positive_int, default=64, metavar="N",
        help="pass@k curve up to k = N samples per problem, warm start and RL policy (64)",
    )  # fmt: skip
    p.add_argument(
        "--pass-problems", type=_positive_int, default=100, metavar="P",
        help="eval problems of the pass@k curve (default 100)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("figures"), help="where figures and CSVs go")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")


def _reason_run(args: argparse.Namespace) -> int:
    import torch

    from .models import load_policy
    from .plots import save_figures
    from .reason import PASS_KS, ReasonConfig, pass_at_k_curve, run_reason
    from .reason.plots import pass_at_k_figure, r1_zero_figure

    config = (ReasonConfig.fast() if args.fast else ReasonConfig()).with_seed(args.seed)
    t = config.train
    if args.beta is not None:
        if not args.beta >= 0:
            raise CLIError(f"--beta must be >= 0, got {args.beta}")
        t = replace(t, grpo=replace(t.grpo, kl_coef=args.beta))
    t = replace(t, steps=args.steps or t.steps, checkpoint=args.checkpoint or t.checkpoint)
    config = replace(config, train=t)
    n_pass = min(args.pass_k, 16) if args.fast else args.pass_k
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        policy, tokenizer = load_policy(t.checkpoint)
    except ValueError as e:
        raise CLIError(str(e)) from None
    print(
        f"reason on {t.task} from checkpoint {t.checkpoint!r}: GRPO, rewards {list(t.rewards)}, "
        f"{t.steps} steps x {t.n_prompts} prompts x G={t.group_size}, lr {t.lr:g} {t.lr_schedule}, "
        f"beta {t.grpo.kl_coef:g}, seed {t.seed}"
    )
    from .tasks import get_task

    problems = get_task(t.task).eval[: args.pass_problems]
    start_curve = pass_at_k_curve(policy, tokenizer, problems, n_pass, PASS_KS, t.seed,
                                  t.max_new_tokens)  # fmt: skip
    result = run_reason(config, policy, tokenizer, progress=not args.no_progress)
    final_curve = pass_at_k_curve(result.policy, tokenizer, problems, n_pass, PASS_KS, t.seed,
                                  t.max_new_tokens)  # fmt: skip
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    args.out.mkdir(parents=True, exist_ok=True)
    summary = result.summary()
    for k in start_curve:
        summary.loc["warm start", f"curve pass@{k}"] = start_curve[k]
        summary.loc["GRPO", f"curve pass@{k}"] = final_curve[k]
    summary.loc["GRPO", "train_seconds"] = result.seconds["train"]
    summary.loc["GRPO", "train_cpu_seconds"] = result.seconds["train_cpu"]
    summary.loc["GRPO", "command_cpu_seconds"] = cpu
    result.metrics.to_csv(args.out / "reason_metrics.csv", index=False)
    summary.to_csv(args.out / "reason_summary.csv")
    figures = {
        "reason_training": r1_zero_figure(result.metrics),
        "reason_pass_at_k": pass_at_k_figure(
            {"warm start": start_curve, "GRPO (outcome reward)": final_curve},
            f"pass@k on {len(problems)} eval problems, {n_pass} samples each",
        ),
    }
    paths = save_figures(figures, args.out)
    s, f = result.start, result.final
    print(_table([
        ("", "warm start -> GRPO"),
        ("scratchpad share (T=1)", f"{s.scratchpad_share:.3f} -> {f.scratchpad_share:.3f}"),
        ("sampled accuracy", f"{s.sampled:.3f} -> {f.sampled:.3f}  ({f.sampled - s.sampled:+.3f})"),
        ("greedy accuracy", f"{s.greedy:.3f} -> {f.greedy:.3f}"),
        ("forced scratchpad", f"{s.forced_scratchpad:.3f} -> {f.forced_scratchpad:.3f}"),
        ("forced direct", f"{s.forced_direct:.3f} -> {f.forced_direct:.3f}"),
        ("mean length (tokens)", f"{s.mean_length:.2f} -> {f.mean_length:.2f}  "
                                 f"(x{f.mean_length / s.mean_length:.2f})"),
        (f"pass@{n_pass} ({len(problems)} problems)",
         f"{start_curve[max(start_curve)]:.3f} -> {final_curve[max(final_curve)]:.3f}"),
        ("problems", f"{s.n_problems} eval, {s.n} samples each (forced: {config.forced_n})"),
        ("time (wall)", f"training {result.seconds['train']:.0f} s, whole command {wall:.0f} s"),
        ("time (CPU)", f"training {result.seconds['train_cpu']:.0f} s, whole command {cpu:.0f} s"),
    ]))  # fmt: skip
    checks = [
        (f.scratchpad_share >= 0.95, f"scratchpad share {f.scratchpad_share:.3f} (target >= 0.95)"),
        (f.sampled - s.sampled >= 0.5, f"sampled accuracy {f.sampled - s.sampled:+.3f} (target >= +0.5)"),
        (f.mean_length >= 3 * s.mean_length,
         f"mean length x{f.mean_length / s.mean_length:.2f} (target >= x3)"),
        (result.seconds["train_cpu"] <= 180,
         f"training {result.seconds['train_cpu']:.0f} s of CPU (target <= 180 s)"),
        (cpu <= 300, f"whole command {cpu:.0f} s of CPU (target <= 300 s)"),
    ]  # fmt: skip
    for ok, line in checks:
        print(("reached: " if ok else "missed:  ") + line)
    print(f"(CPU seconds of {torch.get_num_threads()} torch thread(s): the wall time on an idle "
          f"machine; the wall time here was {wall:.0f} s)")  # fmt: skip
    if args.fast:
        print("(--fast: a CI-sized run; the targets are those of the full run)")
    print("wrote " + ", ".join(str(p) for p in [args.out / "reason_metrics.csv",
                                                args.out / "reason_summary.csv", *paths]))  # fmt: skip

# --------------------------------------------------------------------------------------- book
def _book_arguments(p: argparse.ArgumentParser) -> None:
    from .book import DEFAULT_OUT

    p.add_argument("--fast", action="store_true", help="execute with GRPO_EDU_FAST=1 (CI size)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="build folder (build/book)")
    p.add_argument("--fresh", action="store_true", help="re-execute even unchanged notebooks")
    p.add_argument("--jobs", type=_positive_int, default=1, help="notebooks run at once (1)")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")


def _book_run(args: argparse.Namespace) -> int:
    from .book import NotebookError, build_book

    mode = "FAST" if args.fast else "full"
    print(f"book: executing the course notebooks ({mode} mode) and building {args.out}/html")
    try:
        report = build_book(args.out, fast=args.fast, fresh=args.fresh, jobs=args.jobs,
                            progress=not args.no_progress)  # fmt: skip
    except (NotebookError, FileNotFoundError) as e:
        raise CLIError(str(e)) from None
    for run in report.notebooks:
        done = report.rendered[run.source.name]
        how = "cached" if run.reused else f"{run.seconds:6.1f} s"
        extra = f"  static explorers: {', '.join(done.explorers)}" if done.explorers else ""
        extra += f"  widgets left as text, cells {done.unknown}" if done.unknown else ""
        print(f"  {run.source.name:<32} {how}{extra}")
    for line in report.warnings:
        print(f"warning: {line}")
    print(f"{len(report.pages)} pages, {len(report.warnings)} warnings; execute "
          f"{report.execute_seconds:.0f} s, sphinx {report.sphinx_seconds:.0f} s, "
          f"total {report.seconds:.0f} s -> {report.index}")  # fmt: skip
    return 0


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
    "book": Command(
        "the course website: execute every notebook, render the explorers, build HTML offline",
        _book_arguments,
        _book_run,
    ),
    "pretrain": Command(
        "supervised warm start of a task; writes data/checkpoints/<task>/ with its card",
        _pretrain_arguments,
        _pretrain_run,
    ),
    "reason": Command(
        "DeepSeek-R1-Zero's signature: GRPO with the outcome reward from the sum4 warm start; "
        "scratchpads take over, accuracy and length rise together; figures + CSV",
        _reason_arguments,
        _reason_run,
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

"""Command line: ``python -m grpo_edu <command> ...`` (or ``grpo-edu <command> ...``).

    python -m grpo_edu evaluate add2              # table: greedy, sampled, pass@k, maj@k
    python -m grpo_edu compare --seeds 0 1 2      # the main job on three seeds -> runs/compare/
    python -m grpo_edu pretrain add2              # a warm start -> runs/checkpoints/add2/
    python -m grpo_edu claims                     # the full-mode course against its prose

Each command is one entry of ``COMMANDS``: a name mapped to a ``Command`` with a help line, a
function that adds its arguments to an ``argparse`` sub-parser and a small ``run(args) -> int``.
Adding a command is adding one entry. This module is the only place in ``grpo_edu`` that prints;
bad input (an unknown task, a missing checkpoint, an ``--out`` that cannot be written) prints one
line ``error: ...`` and exits with 2, before any long work starts.

Outputs go to ``runs/<command>/`` by default (git-ignored). The shipped files, ``data/`` and
``figures/``, are only written with ``--out`` pointing there *and* ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import textwrap
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
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _check_temperature(value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise CLIError(f"--temperature must be a finite number > 0, got {value}")
    return value


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6


def _table(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


ROOT = Path(__file__).resolve().parent.parent
SHIPPED = (ROOT / "data", ROOT / "figures")
"""Folders of shipped files: never written without ``--overwrite``."""
RUNS = Path("runs")
"""Default parent of every command's output (relative to the working directory; git-ignored)."""


def _shipped(path: Path) -> bool:
    path = path.resolve()
    return any(path == d or d in path.parents for d in SHIPPED)


def _check_out(out: Path, names: Sequence[str], overwrite: bool) -> Path:
    """Make sure ``out`` can take ``names`` before the work starts; returns ``out``.

    ``out`` must be a writable folder (created if missing). Files of a shipped folder are only
    replaced with ``--overwrite``.
    """
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} exists and is not a folder")
    existing = [out / n for n in names if (out / n).exists()]
    if existing and _shipped(out) and not overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        raise CLIError(f"would replace shipped files ({shown}); pass --overwrite to replace "
                       "them, or choose another --out")  # fmt: skip
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise CLIError(f"--out {out} cannot be written: {e.strerror or e}") from None
    return out


def _add_out(p: argparse.ArgumentParser, out: Path) -> None:
    """``--out`` and ``--overwrite`` of a command that writes files."""
    p.add_argument("--out", type=Path, default=out, help=f"output folder (default {out})")
    p.add_argument("--overwrite", action="store_true",
                   help="allow replacing shipped files (data/, figures/) in --out")  # fmt: skip


THREADS_HELP = (
    "torch CPU threads, or 'auto' (default): 1 unless cores are idle and 2 threads are measured "
    "faster (grpo_edu.threads); on a busy 2-core machine 2 threads made this tiny model 6-20x "
    "slower. Results are bitwise repeatable at a fixed N"
)


def _wrote(paths: Sequence[Path]) -> str:
    return "wrote " + "\n      ".join(str(p) for p in paths)


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


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
    _check_temperature(args.temperature)
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
CHECKPOINT_FILES = ("model.safetensors", "config.json", "card.json")


def _pretrain_arguments(p: argparse.ArgumentParser) -> None:
    from .pretrain import RECIPES

    p.add_argument("tasks", nargs="*", metavar="TASK", help="tasks to warm-start, e.g. add2")
    p.add_argument("--all", action="store_true", help=f"every shipped task: {' '.join(RECIPES)}")
    p.add_argument("--seed", type=int, help="override the recipe's seed")
    p.add_argument(
        "--steps", type=_positive_int, metavar="N", help="override the recipe's optimizer steps"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")
    _add_out(p, RUNS / "checkpoints")
    p.epilog = ("Writes OUT/<task>/. To replace a shipped warm start: "
                "--out data/checkpoints --overwrite.")  # fmt: skip


def _pretrain_run(args: argparse.Namespace) -> int:
    from .machine import machine_info
    from .models import save_policy
    from .pretrain import RECIPES, pretrain, recipe

    names = list(RECIPES) if args.all else [_check_task(t) for t in args.tasks]
    if not names:
        raise CLIError("name at least one TASK, or pass --all")
    for name in names:  # every destination checked before the first one trains
        _check_out(args.out / name, CHECKPOINT_FILES, args.overwrite)
    written = []
    for name in names:
        config = recipe(name)
        if args.seed is not None:
            config = replace(config, seed=args.seed)
        if args.steps is not None:
            config = replace(config, steps=args.steps)
        model, tokenizer, card = pretrain(config, progress=not args.no_progress)
        card = {**card, "machine": machine_info()}  # the same seed gives these weights only here
        path = save_policy(model, tokenizer, args.out / name, card=card)
        written += sorted(f for f in path.iterdir() if f.is_file())
        e = card["eval"]
        print(
            f"{name}: greedy {e['greedy']:.3f}  sampled@T=1 {e['sampled']:.3f}  "
            f"pass@8 {e['pass_at_k']:.3f}  maj@8 {e['maj_at_k']:.3f}\n  "
            f"{card['n_params'] / 1e6:.2f}M params, {_dir_mb(path):.1f} MB, "
            f"{card['train_seconds']:.0f} s ({card['train_cpu_seconds']:.0f} s CPU), "
            f"seed {config.seed}, {config.steps} steps"
        )
    print(_wrote(written))
    return 0


# ------------------------------------------------------------------------------------ compare
COMPARE_FILES = ("compare_metrics.csv", "compare_summary.csv", "compare_seeds.csv",
                 "compare_run.json", "compare_accuracy.png", "compare_training.png",
                 "compare_memory.png")  # fmt: skip
"""What ``compare`` writes into ``--out``."""


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--fast", action="store_true", help="20 steps each, smaller evals (CI size, ~1 min)"
    )
    p.add_argument("--steps", type=_positive_int, help="override the number of steps of both runs")
    p.add_argument("--seeds", type=int, nargs="+", metavar="S", default=[0],
                   help="seeds; each runs both algorithms (default 0; the README uses 0 1 2)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    _add_out(p, RUNS / "compare")


def _compare_run(args: argparse.Namespace) -> int:
    from .compare import CompareConfig, run_compare_seeds
    from .machine import machine_line
    from .models import resolve_device
    from .plots import compare_figures, save_figures

    if len(set(args.seeds)) != len(args.seeds):
        raise CLIError(f"--seeds must be distinct, got {args.seeds}")
    _check_out(args.out, COMPARE_FILES, args.overwrite)
    config = CompareConfig.fast() if args.fast else CompareConfig()
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
    seeds = " ".join(str(s) for s in args.seeds)
    print(
        f"compare on {g.task} from checkpoint {g.checkpoint!r}: {g.steps} steps x "
        f"{g.completions_per_step} completions each\n  (GRPO {g.n_prompts} prompts x "
        f"G={g.group_size}, PPO {p.n_prompts} prompts x {p.group_size}), "
        f"seed{'s' if len(args.seeds) > 1 else ''} {seeds}"
    )
    t0 = time.perf_counter()
    result = run_compare_seeds(config, args.seeds, progress=not args.no_progress)
    wall = time.perf_counter() - t0
    out = args.out
    result.metrics.to_csv(out / "compare_metrics.csv", index=False)
    result.per_seed.to_csv(out / "compare_seeds.csv")
    summary = _mean_summary(result.per_seed)
    summary.to_csv(out / "compare_summary.csv")
    run = {"command": "python -m grpo_edu " + " ".join(sys.argv[1:]) if sys.argv else "",
           "seeds": args.seeds, "steps": g.steps, "fast": args.fast, "wall_seconds": wall,
           "machine": result.machine}  # fmt: skip
    (out / "compare_run.json").write_text(json.dumps(run, indent=1))
    paths = save_figures(compare_figures(result), out)
    print(_compare_report(result, config.target))
    ratio = summary.loc["grpo", "train_state_mb"] / summary.loc["ppo", "train_state_mb"]
    print(f"GRPO / PPO training-state memory: {ratio:.2f}x")
    print(f"machine: {machine_line(result.machine)}")
    print(f"total wall time {_minutes(wall)}")
    print(_wrote([out / n for n in COMPARE_FILES[:4]] + paths))
    return 0


def _mean_summary(per_seed):
    """Mean over seeds of each summary column (counts stay integers where every seed agrees)."""
    from .compare import INTEGER_COLUMNS

    mean = per_seed.astype(float).groupby(level="algorithm", sort=False).mean()
    for column in INTEGER_COLUMNS:
        if column in mean and (mean[column].dropna() % 1 == 0).all():
            mean[column] = mean[column].round().astype("Int64")
    return mean


ROW_NAMES = {"start": "warm start", "grpo": "GRPO", "ppo": "PPO"}


def _cell(values, fmt: str, spread: bool) -> str:
    """``0.913`` or ``0.913 ± 0.006`` (sd over seeds); empty where nothing was measured."""
    values = [v for v in values if v == v]
    if not values:
        return ""
    mean = sum(values) / len(values)
    if not spread or len(values) < 2 or max(values) == min(values):
        return fmt.format(mean)  # one seed, or the same for all (the warm start)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
    return f"{fmt.format(mean)} ± {fmt.format(sd)}"


def _grid(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [header, *rows]
    return "\n".join(
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        .rstrip() for r in lines
    )  # fmt: skip


def _compare_report(result, target: float) -> str:
    """The summary: accuracies, then costs, then which differences the seeds' spread allows."""
    from .compare import verdicts

    per_seed, seeds = result.per_seed.astype(float), result.seeds
    many = len(seeds) > 1
    k = next(c for c in per_seed.columns if c.startswith("pass@")).split("@")[1]
    acc = ["greedy", "sampled", f"pass@{k}", f"maj@{k}"]
    n_problems = next(iter(result.results.values())).start["n_problems"]
    spread_note = f", mean ± sd over {len(seeds)} seeds" if many else f", seed {seeds[0]}"
    lines = [f"accuracy on the eval split ({n_problems} problems; sampled, pass@{k}, maj@{k} "
             f"from {k} samples at T=1){spread_note}"]  # fmt: skip

    def column(algo, name):
        return per_seed.xs(algo, level="algorithm")[name].tolist()

    rows = [[ROW_NAMES[a]] + [_cell(column(a, c), "{:.3f}", many) for c in acc]
            for a in ("start", "grpo", "ppo")]  # fmt: skip
    lines += [_grid(["", *acc], rows), ""]
    header = ["", "train s", "s/step", f"first >= {target:.2f} sampled", "state MB", "trainable"]
    rows = []
    for a in ("grpo", "ppo"):
        steps = [v for v in column(a, "steps_to_target") if v == v]
        secs = [v for v in column(a, "seconds_to_target") if v == v]
        if not steps:
            reached = "not reached"
        elif many:
            reached = (f"{len(steps)}/{len(seeds)} seeds, step {min(steps):.0f}"
                       + (f"-{max(steps):.0f}" if max(steps) > min(steps) else ""))  # fmt: skip
        else:
            reached = f"step {steps[0]:.0f}, {secs[0]:.0f} s"
        rows.append([ROW_NAMES[a], _cell(column(a, "train_seconds"), "{:.0f}", many),
                     _cell(column(a, "seconds_per_step"), "{:.3f}", many), reached,
                     _cell(column(a, "train_state_mb"), "{:.1f}", False),
                     f"{int(column(a, 'trainable_params')[0]):,}"])  # fmt: skip
    lines.append(_grid(header, rows))
    if many:
        cols = [*acc, "train_seconds", "seconds_per_step"]
        smaller = {"train_seconds": False, "seconds_per_step": False}
        called = verdicts(result.per_seed, cols, smaller)
        names = {"train_seconds": "train s", "seconds_per_step": "s/step"}
        lines += ["", "GRPO vs PPO, called only where every seed of one beats every seed of "
                  "the other:"]  # fmt: skip
        text = "; ".join(f"{names.get(c, c)}: {v}" for c, v in called.items())
        lines += textwrap.wrap(text, 98, initial_indent="  ", subsequent_indent="  ")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- paradigm
PARADIGM_FILES = ("paradigm_metrics.csv", "paradigm_runs.csv", "paradigm_passk.csv",
                  "paradigm_config.json", "paradigm_table.csv", "paradigm_race.png",
                  "paradigm_passk.png", "paradigm_final.png", "paradigm_coefficients.png",
                  "paradigm_run.json")  # fmt: skip


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
    p.add_argument("--replot", action="store_true",
                   help="no training: redraw the figures from the CSVs already in --out")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _paradigm_replot(out: Path) -> int:
    from .explain.coefficients import figure_coefficients
    from .paradigm import load_race, paradigm_figures
    from .plots import save_figures

    try:
        result = load_race(out)
    except ValueError as e:
        raise CLIError(str(e)) from None
    figures = paradigm_figures(result) | {"paradigm_coefficients": figure_coefficients()}
    print("wrote " + ", ".join(str(p) for p in save_figures(figures, out)))
    return 0


def _paradigm_run(args: argparse.Namespace) -> int:
    import os

    from .machine import machine_info
    from .models import save_policy
    from .paradigm import RaceConfig, check_race_config, format_table, paradigm_figures, run_race
    from .paradigm.race import WARM_START, make_warm_start, passk_table, save_race
    from .plots import save_figures

    if args.replot:
        return _paradigm_replot(args.out)
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
    end = os.getloadavg()
    print(f"race wall time {wall:.0f} s ({wall / 60:.1f} min); load average now "
          f"{end[0]:.1f} (1 min), {end[2]:.1f} (15 min)")  # fmt: skip
    run = args.out / "paradigm_run.json"  # how the results were made, and on what
    run.write_text(json.dumps({
        "command": "python -m grpo_edu " + " ".join(sys.argv[1:]), "wall_seconds": wall,
        "cpu_seconds": sum(result.runs["job_cpu_seconds"].dropna()),
        "load_average": [load[0], end[0]], "workers": config.workers, "machine": machine_info(),
    }, indent=1) + "\n")  # fmt: skip
    print("wrote " + ", ".join(str(p) for p in [*files, *paths, run]))
    return 0


# ------------------------------------------------------------------------------------ figures
def _figures_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--fast", action="store_true", help="the CI-sized compare run")
    p.add_argument("--seeds", type=int, nargs="+", metavar="S", default=[0, 1, 2],
                   help="seeds of the compare run (default 0 1 2, as in the README)")  # fmt: skip
    _add_out(p, RUNS / "figures")
    p.epilog = "The README's figures: --out figures --overwrite."


def _figures_run(args: argparse.Namespace) -> int:
    """The README's figures: the compare run's figures plus one PNG per interactive explorer."""
    from .explain import default_figures
    from .plots import save_figures

    figures = default_figures()
    _check_out(args.out, [*COMPARE_FILES, *(f"{stem}.png" for stem in figures)], args.overwrite)
    compare = argparse.Namespace(fast=args.fast, steps=None, seeds=args.seeds, out=args.out,
                                 overwrite=args.overwrite, no_progress=False)  # fmt: skip
    status = _compare_run(compare)
    print(_wrote(save_figures(figures, args.out)))
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
    _add_out(p, RUNS / "reason")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bar")


REASON_FILES = ("reason_metrics.csv", "reason_summary.csv", "reason_training.png",
                "reason_pass_at_k.png")  # fmt: skip


def _reason_run(args: argparse.Namespace) -> int:
    import torch

    _check_out(args.out, REASON_FILES, args.overwrite)
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
    return 0


# --------------------------------------------------------------------------------------- book
def _book_arguments(p: argparse.ArgumentParser) -> None:
    # no import of .book here: it needs the [book] extra, and every command's parser is built
    p.add_argument("--fast", action="store_true", help="execute with GRPO_EDU_FAST=1 (CI size)")
    p.add_argument("--out", type=Path, help="build folder (default build/book)")
    p.add_argument("--fresh", action="store_true", help="re-execute even unchanged notebooks")
    p.add_argument("--jobs", type=_positive_int, default=1, help="notebooks run at once (1)")
    p.add_argument("--no-progress", action="store_true", help="hide the tqdm progress bars")


def _book_run(args: argparse.Namespace) -> int:
    from .book import DEFAULT_OUT, NotebookError, build_book

    args.out = args.out or DEFAULT_OUT
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


# ------------------------------------------------------------------------------------- claims
def _claims_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME",
                   help="registries to check, e.g. 05_clipping_and_kl README (default: all)")  # fmt: skip
    p.add_argument("--static", action="store_true",
                   help="only check the registries against the prose (no run; what CI does)")  # fmt: skip
    p.add_argument("--fast", action="store_true",
                   help="run the notebooks in FAST mode: claims measured, values not checked")  # fmt: skip
    p.add_argument("--timeout", type=_positive_int, default=3600, metavar="S",
                   help="seconds one cell may run (default 3600)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    _add_out(p, RUNS / "claims")
    p.epilog = ("Writes OUT/report.json and the executed notebooks to OUT/notebooks/. "
                "ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 in the environment runs "
                "the course as an AVX2 CPU would (other kernels, other last digits).")  # fmt: skip


def _unregistered(registered: set[str]) -> list[tuple[str, int]]:
    """(stem, numbers in its prose) of every course notebook without a registry."""
    from .claims import read_prose, uncovered_numbers

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return [(nb.stem, len(uncovered_numbers(read_prose(nb), [])))
            for nb in notebooks if nb.stem not in registered]  # fmt: skip


def _claims_run(args: argparse.Namespace) -> int:
    from .claims import load_registry, registry_paths, static_problems
    from .claims.run import run_claims
    from .machine import machine_line

    registries = [load_registry(p) for p in registry_paths()]
    unknown = sorted(set(args.names) - {r.name for r in registries})
    if unknown:
        raise CLIError(f"no registry for {unknown}; registries: "
                       + " ".join(r.name for r in registries))  # fmt: skip
    chosen = [r for r in registries if not args.names or r.name in args.names]
    problems = [p for r in chosen for p in static_problems(r)]
    n = sum(len(r.claims) for r in chosen)
    print(f"{n} claims registered in {len(chosen)} documents; static check: "
          f"{len(problems)} problems")  # fmt: skip
    for problem in problems:
        print("  " + problem)
    for stem, count in _unregistered({r.name for r in registries}):
        print(f"  no registry yet: notebooks/{stem}.ipynb ({count} numbers in its prose; "
              f"register them in claims/{stem}.toml)")  # fmt: skip
    if args.static:
        return 1 if problems else 0
    _check_out(args.out, ["report.json"], args.overwrite)
    mode = "FAST" if args.fast else "full"
    print(f"running {len(chosen)} documents in {mode} mode on {machine_line()}")
    run = run_claims([r.name for r in chosen], fast=args.fast, timeout=args.timeout,
                     keep=args.out / "notebooks", progress=not args.no_progress)  # fmt: skip
    rows = [[d.name, _minutes(d.seconds), "{:.1f} to {:.1f}".format(*d.load_average),
             str(len(d.results)), str(len(d.failures)), "stopped" if d.error else ""]
            for d in run.documents]  # fmt: skip
    print(_grid(["document", "time", "load average", "claims", "failed", ""], rows))
    for d in run.documents:
        if d.error:
            print(f"STOPPED {d.name}: {d.error[:300]}\n  ({len(d.failures)} claims not measured)")
            continue
        for r in d.failures:
            measured = "not measured" if r["measured"] is None else f"measured {r['measured']}"
            print(f"FAILED {d.name}:{r['claim']}: {r['text'][:70]!r}\n"
                  f"       allowed {r['allowed']}, {measured}")  # fmt: skip
    verdict = "all hold" if not run.failures else f"{len(run.failures)} FAILED"
    checked = "measured (values not checked in FAST mode)" if args.fast else "checked"
    print(f"{run.n_claims} claims {checked}: {verdict}; total {_minutes(run.seconds)}")
    report = args.out / "report.json"
    report.write_text(json.dumps(run.as_dict(), indent=1, default=str))
    print(_wrote([report, args.out / "notebooks"]))
    return 1 if run.failures or problems else 0


COMMANDS: dict[str, Command] = {
    "evaluate": Command(
        "greedy / sampled accuracy, pass@k and maj@k of a checkpoint on a task's eval split",
        _evaluate_arguments,
        _evaluate_run,
    ),
    "compare": Command(
        "the main job: PPO and GRPO from the same warm start on the same budget; figures, summary",
        _compare_arguments,
        _compare_run,
    ),
    "figures": Command(
        "re-make every figure of the README (the compare run on 3 seeds and the explorers)",
        _figures_arguments,
        _figures_run,
    ),
    "book": Command(
        "the course website: execute every notebook, render the explorers, build HTML offline",
        _book_arguments,
        _book_run,
    ),
    "paradigm": Command(
        "DeepSeekMath's unified paradigm: SFT, RFT, online RFT, DPO, PPO, GRPO raced over seeds",
        _paradigm_arguments,
        _paradigm_run,
    ),
    "pretrain": Command(
        "supervised warm start of a task; writes OUT/<task>/ with its card (runs/checkpoints/)",
        _pretrain_arguments,
        _pretrain_run,
    ),
    "reason": Command(
        "DeepSeek-R1-Zero's signature: GRPO with the outcome reward from the sum4 warm start; "
        "scratchpads take over, accuracy and length rise together; figures + CSV",
        _reason_arguments,
        _reason_run,
    ),
    "claims": Command(
        "run the course in full mode and report every number of its prose that no longer holds",
        _claims_arguments,
        _claims_run,
    ),
}
"""Every subcommand: name -> (help, add_arguments, run)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grpo_edu", description="GRPO vs PPO on a tiny arithmetic LM."
    )
    parser.add_argument("--threads", type=_threads, metavar="N", default="auto", help=THREADS_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        command.add_arguments(p)
        # --threads after the command too; SUPPRESS keeps the one given before it otherwise
        p.add_argument("--threads", type=_threads, metavar="N", default=argparse.SUPPRESS,
                       help=THREADS_HELP + "; also accepted before the command")  # fmt: skip
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

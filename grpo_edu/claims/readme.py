"""The README's results: tables rendered from the shipped result files, claims measured from them.

The README holds its result tables between markers::

    <!-- results: compare -->
    | | greedy | sampled | ...
    <!-- /results -->

``render_tables()`` renders each table from the files a run wrote (``figures/compare_seeds.csv``
and ``compare_run.json`` from ``python -m grpo_edu compare --seeds 0 1 2 --out figures
--overwrite``; the cards in ``data/checkpoints/``), and ``table_problems`` lists every table of
the README that differs from its rendering: a table can only change by re-running what made it.
The benchmark tables come from ``benchmarks/results/`` (``benchmarks.RENDERERS``).
``measure_readme()`` measures the README's registered prose claims (``claims/README.toml``) from
the same files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from ..machine import machine_line, machine_short
from .benchmarks import RENDERERS as benchmark_renderers
from .benchmarks import measure as measure_benchmarks
from .registry import ROOT

FIGURES = ROOT / "figures"
CHECKPOINTS = ROOT / "data" / "checkpoints"
README = ROOT / "README.md"
MARKER = re.compile(r"<!-- results: (\w+) -->\n(.*?)<!-- /results -->", re.S)


def _stats(values: list[float]) -> tuple[float, float, float, float]:
    s = pd.Series(values, dtype=float).dropna()
    sd = s.std(ddof=1) if len(s) > 1 else 0.0
    return float(s.mean()), float(sd), float(s.min()), float(s.max())


def per_seed(figures: Path = FIGURES) -> pd.DataFrame:
    """The shipped compare run: one row per (seed, algorithm)."""
    return pd.read_csv(figures / "compare_seeds.csv", index_col=["seed", "algorithm"])


def compare_run(figures: Path = FIGURES) -> dict:
    """How the shipped compare run was made: command, seeds, wall time, machine."""
    return json.loads((figures / "compare_run.json").read_text())


def _column(table: pd.DataFrame, algo: str, name: str) -> list[float]:
    return table.xs(algo, level="algorithm")[name].tolist()


def _pm(values: list[float], fmt: str) -> str:
    mean, sd, lo, hi = _stats(values)
    if lo == hi:
        return fmt.format(mean)
    return f"{fmt.format(mean)} ± {fmt.format(sd)}"


def compare_table(figures: Path = FIGURES) -> str:
    """The main job's results: mean ± sd over seeds (sd with ddof 1), counts as integers."""
    t = per_seed(figures)
    k = next(c for c in t.columns if c.startswith("pass@")).split("@")[1]
    acc = ["greedy", "sampled", f"pass@{k}", f"maj@{k}"]
    n_seeds = len(t.index.get_level_values("seed").unique())
    head = [*acc, "train s", "s / step", "first ≥ 0.90 sampled", "train state MB",
            "trainable params", "held params"]  # fmt: skip
    lines = ["| | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for algo, name in (("start", "warm start"), ("grpo", "GRPO"), ("ppo", "PPO")):
        cells = [_pm(_column(t, algo, c), "{:.3f}") for c in acc]
        if algo == "start":
            cells += [""] * 6
        else:
            steps = [s for s in _column(t, algo, "steps_to_target") if s == s]
            secs = [s for s in _column(t, algo, "seconds_to_target") if s == s]
            if steps:
                span = f"{min(steps):.0f}" + (
                    f"-{max(steps):.0f}" if max(steps) > min(steps) else ""
                )
                reached = f"{len(steps)} of {n_seeds} seeds: step {span}, {_pm(secs, '{:.0f}')} s"
            else:
                reached = "not reached"
            cells += [
                _pm(_column(t, algo, "train_seconds"), "{:.0f}"),
                _pm(_column(t, algo, "seconds_per_step"), "{:.3f}"),
                reached,
                _pm(_column(t, algo, "train_state_mb"), "{:.1f}"),
                f"{int(_column(t, algo, 'trainable_params')[0]):,}",
                f"{int(_column(t, algo, 'held_params')[0]):,}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compare_note(figures: Path = FIGURES) -> str:
    """The line under the compare table: seeds, command, wall time, machine."""
    run = compare_run(figures)
    seeds = " ".join(str(s) for s in run["seeds"])
    minutes = run["wall_seconds"] / 60
    return (f"Seeds {seeds}, mean ± sd over seeds; the whole command took {minutes:.0f} minutes "
            f"on {machine_line(run['machine'])}.\n")  # fmt: skip


def _card(name: str, checkpoints: Path) -> dict:
    return json.loads((checkpoints / name / "card.json").read_text())


def checkpoints_table(checkpoints: Path = CHECKPOINTS) -> str:
    """One row per shipped warm start, from its ``card.json`` and files."""
    head = ["checkpoint", "size (MB)", "params", "greedy", "sampled@T=1", "pass@8", "maj@8",
            "steps", "label smoothing", "pretraining (s)", "machine"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for path in sorted(p for p in checkpoints.iterdir() if (p / "card.json").exists()):
        c, e = _card(path.name, checkpoints), _card(path.name, checkpoints)["eval"]
        mb = sum(f.stat().st_size for f in path.iterdir() if f.is_file()) / 1e6
        cells = [f"`{path.name}`", f"{mb:.1f}", f"{c['n_params'] / 1e6:.2f}M",
                 f"{e['greedy']:.3f}", f"{e['sampled']:.3f}", f"{e['pass_at_k']:.3f}",
                 f"{e['maj_at_k']:.3f}", str(c["steps"]), f"{c['pretrain']['label_smoothing']:g}",
                 f"{c['train_cpu_seconds']:.0f}", machine_short(c.get("machine"))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


RENDERERS = {
    "checkpoints": lambda: checkpoints_table(),
    "compare": lambda: compare_table() + "\n" + compare_note(),
    "paradigm": lambda: _paradigm_table(),
    "reason": lambda: _reason_table(),
    **benchmark_renderers,
}
"""Each README results block, by marker name, and how it is rendered."""


def _paradigm_table() -> str:
    """The unified-paradigm race (``python -m grpo_edu paradigm``), from figures/paradigm_*."""
    from ..paradigm.race import readme_table  # the trainer's imports: only when rendering

    return readme_table(FIGURES)


def _reason_table() -> str:
    """The reasoning chapter's runs over seeds (``benchmarks/reason_seeds.py``)."""
    from ..reason.results import readme_table

    return readme_table()


def render_tables() -> dict[str, str]:
    return {name: render() for name, render in RENDERERS.items()}


def table_problems(readme: Path = README) -> list[str]:
    """Each README results block that differs from its rendering (or is missing)."""
    text = readme.read_text(encoding="utf-8")
    found = {m.group(1): m.group(2) for m in MARKER.finditer(text)}
    problems = []
    for name, rendered in render_tables().items():
        if name not in found:
            problems.append(f"README: no results block <!-- results: {name} -->")
        elif found[name] != rendered:
            problems.append(f"README: results block {name!r} differs from the files it is "
                            f"rendered from; replace it with:\n{rendered}")  # fmt: skip
    return problems


def update_readme(readme: Path = README) -> bool:
    """Replace every results block by its rendering; True if the file changed."""
    text = readme.read_text(encoding="utf-8")
    rendered = render_tables()
    new = MARKER.sub(lambda m: f"<!-- results: {m.group(1)} -->\n{rendered.get(m.group(1), m.group(2))}"
                     "<!-- /results -->", text)  # fmt: skip
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return new != text


def _ratio(t: pd.DataFrame, column: str) -> float:
    g, p = _column(t, "grpo", column), _column(t, "ppo", column)
    return sum(g) / sum(p)


def measure_readme() -> dict[str, object]:
    """The README's prose claims (``claims/README.toml``), measured from the shipped files."""
    from ..compare import verdicts
    from ..reason.results import measure_readme_claims as measure_reason

    t, run = per_seed(), compare_run()
    cards = {p.name: _card(p.name, CHECKPOINTS) for p in CHECKPOINTS.iterdir()
             if (p / "card.json").exists()}  # fmt: skip
    sampled = {a: _stats(_column(t, a, "sampled")) for a in ("grpo", "ppo")}
    k = next(c for c in t.columns if c.startswith("pass@")).split("@")[1]
    acc = ["greedy", "sampled", f"pass@{k}", f"maj@{k}"]
    called = verdicts(t, [*acc, "seconds_per_step"], {"seconds_per_step": False})
    after = _column(t, "grpo", f"pass@{k}") + _column(t, "ppo", f"pass@{k}")
    return (
        {
            "sampled_tie": [
                sampled["grpo"][0],
                sampled["grpo"][1],
                sampled["ppo"][0],
                sampled["ppo"][1],
            ],
            "accuracy_within_spread": all(called[c] == "within the spread" for c in acc),
            "pass8": [_column(t, "start", f"pass@{k}")[0], sum(after) / len(after)],
            "memory_ratio": _ratio(t, "train_state_mb"),
            "step_time_every_seed": called["seconds_per_step"] == "GRPO better",
            "step_time_ratio": _ratio(t, "seconds_per_step"),
            "command_minutes": run["wall_seconds"] / 60,
            "rebuilt_bitwise": all(
                cards[t]["rebuilds"][0]["bitwise_equal"] for t in ("add2", "sub2")
            ),
            "avx2_rebuild": [
                cards["add2"]["rebuilds"][1]["max_abs_weight_difference"],
                cards["add2"]["rebuilds"][1]["eval"]["sampled"],
                cards["add2"]["eval"]["sampled"],
            ],
        }
        | measure_benchmarks()
        | measure_reason()
    )

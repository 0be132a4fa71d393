"""Results over seeds, as ``benchmarks/reason_seeds.py`` writes them: load, tabulate, curves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..models import CHECKPOINT_DIR
from .run import _flat

RESULTS_DIR = CHECKPOINT_DIR.parent.parent / "benchmarks" / "results"
"""Where ``benchmarks/reason_seeds.py`` writes its results (``reason_runs.jsonl``, ...)."""


def load_seed_runs(results_dir=RESULTS_DIR) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(finals, metrics) written by ``benchmarks/reason_seeds.py``: one row per (run, seed)
    with ``start_*`` and ``final_*`` report columns, seconds and pass@k up to 256 where measured;
    and the per-step metrics of every run (long, with ``run`` and ``seed`` columns)."""
    results_dir = Path(results_dir)
    rows = []
    for line in (results_dir / "reason_runs.jsonl").read_text().splitlines():
        r = json.loads(line)
        row = {"run": r["name"], "seed": r["seed"], "task": r["task"]}
        for part in ("start", "final"):
            row |= {f"{part}_{k}": v for k, v in _flat(r[part]).items()}
        row |= {f"seconds_{k}": v for k, v in r["seconds"].items()}
        if "pass_at_k" in r:
            row |= {f"final_pass@{k}_n256": v for k, v in r["pass_at_k"]["curve"].items()}
        rows.append(row)
    metrics = pd.read_csv(results_dir / "reason_runs_metrics.csv")
    return pd.DataFrame(rows), metrics


def seed_table(finals: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Mean and (min, max) over seeds of ``columns`` (column -> label), one row per run, as
    text ``"0.912 (0.905-0.920)"``; the last column counts the seeds."""
    out = {}
    for run, df in finals.groupby("run", sort=False):
        row = {label: f"{df[c].mean():.3f} ({df[c].min():.3f}-{df[c].max():.3f})"
               for c, label in columns.items()}  # fmt: skip
        out[run] = row | {"seeds": len(df)}
    return pd.DataFrame(out).T


def seed_pass_curves(finals: pd.DataFrame, run: str, label: str = "GRPO") -> dict[str, dict]:
    """``{"<label> seed s": {k: pass@k}}`` of the runs called ``run`` that have a pass@k curve."""
    columns = [c for c in finals.columns if c.endswith("_n256")]
    curves = {}
    for _, r in finals[finals["run"] == run].iterrows():
        curve = {int(c.split("@")[1].split("_")[0]): r[c] for c in columns if r[c] == r[c]}
        if curve:
            curves[f"{label} seed {r['seed']}"] = curve
    return curves


README_RUNS = {
    "outcome (OS)": "GRPO, outcome reward (R1-Zero run)",
    "beta 0": "the same, β = 0",
    "process (PS)": "GRPO+PS (process supervision)",
    "step mean reward": "GRPO, step-mean reward",
    "beyond selection (sum5)": "beyond selection: `sum5` from its warm start",
}
"""The runs of the README's reasoning table, in order, and their labels."""


def _mean_sd(values: pd.Series, fmt: str) -> str:
    values = values.dropna()
    if len(values) < 2:
        return fmt.format(values.mean()) if len(values) else ""
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"


def readme_table(results_dir=RESULTS_DIR) -> str:
    """The README's reasoning results: per run, start -> final over seeds (mean ± sd, ddof 1)
    of the scratchpad share, sampled accuracy and mean length, the final greedy and
    forced-direct accuracy, and the training's CPU seconds; from ``reason_runs.jsonl``."""
    finals, _ = load_seed_runs(results_dir)
    head = ["run", "seeds", "scratchpad share", "sampled", "mean length (tokens)", "greedy",
            "forced direct", "train CPU s"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for run, label in README_RUNS.items():
        df = finals[finals["run"] == run]
        if df.empty:
            continue

        def moved(column: str, fmt: str = "{:.3f}") -> str:
            return (f"{_mean_sd(df[f'start_{column}'], fmt)} → "
                    f"{_mean_sd(df[f'final_{column}'], fmt)}")  # fmt: skip

        cells = [label, str(len(df)), moved("scratchpad_share"), moved("sampled"),
                 moved("mean_length", "{:.1f}"), _mean_sd(df["final_greedy"], "{:.3f}"),
                 moved("forced_direct"), _mean_sd(df["seconds_train_cpu"], "{:.0f}")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

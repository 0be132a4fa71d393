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

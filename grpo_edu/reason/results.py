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


def mean_sd(values: pd.Series, fmt: str = "{:.3f}") -> str:
    """``"mean ± sd"`` over seeds (sd with ddof 1); the mean alone for one seed."""
    values = values.dropna()
    if len(values) < 2:
        return fmt.format(values.mean()) if len(values) else ""
    return f"{fmt.format(values.mean())} ± {fmt.format(values.std(ddof=1))}"


def _moved(runs: pd.DataFrame, column: str, fmt: str = "{:.3f}") -> str:
    """``"start → final"`` of ``column``, each as ``mean_sd``."""
    return f"{mean_sd(runs[f'start_{column}'], fmt)} → {mean_sd(runs[f'final_{column}'], fmt)}"


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
        cells = [label, str(len(df)), _moved(df, "scratchpad_share"), _moved(df, "sampled"),
                 _moved(df, "mean_length", "{:.1f}"), mean_sd(df["final_greedy"]),
                 _moved(df, "forced_direct"), mean_sd(df["seconds_train_cpu"], "{:.0f}")]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def called(a: pd.Series, b: pd.Series) -> str:
    """'higher', 'lower' when every seed of ``a`` beats (is beaten by) every seed of ``b``,
    else 'within the spread' (the rule of ``compare.verdicts``)."""
    if a.min() > b.max():
        return "higher"
    if a.max() < b.min():
        return "lower"
    return "within the spread"


def first_share_step(metrics: pd.DataFrame, run: str, threshold: float, window: int = 5) -> list:
    """Per seed, the first training step at which the scratchpad share of the training batches
    (mean of the last ``window`` steps) reached ``threshold`` (None: never)."""
    steps = []
    for _, d in metrics[metrics["run"] == run].groupby("seed"):
        share = d.set_index("step")["completions/scratchpad_share"].rolling(window).mean()
        steps.append(
            int(share[share >= threshold].index.min()) if (share >= threshold).any() else None
        )
    return steps


def measure_readme_claims(results_dir=RESULTS_DIR) -> dict[str, object]:
    """The README's reasoning prose claims (``claims/README.toml``), from the seed files and the
    ``sum4`` card."""
    from ..models import load_card

    finals, metrics = load_seed_runs(results_dir)
    by = {run: df for run, df in finals.groupby("run")}
    os_, ps, sm, b0 = (
        by[r] for r in ("outcome (OS)", "process (PS)", "step mean reward", "beta 0")
    )
    beyond = by["beyond selection (sum5)"]
    warm = {c["label"]: {int(k): v for k, v in c["curve"].items()} for c in
            json.loads((Path(results_dir) / "reason_pass_at_k_warm_starts.json").read_text())}  # fmt: skip
    card = load_card("sum4")["eval"]
    columns = ["final_scratchpad_share", "final_sampled", "final_greedy", "final_forced_direct",
               "final_mean_length"]  # fmt: skip

    def ties(a: pd.DataFrame, b: pd.DataFrame, but_length: bool = False) -> bool:
        """Every column within the spread (or all but the mean length, longer on every seed)."""
        if but_length:
            others = [c for c in columns if c != "final_mean_length"]
            return (all(called(a[c], b[c]) == "within the spread" for c in others)
                    and called(a["final_mean_length"], b["final_mean_length"]) == "higher")  # fmt: skip
        return all(called(a[c], b[c]) == "within the spread" for c in columns)

    def longer(a: pd.DataFrame) -> float:
        return a["final_mean_length"].mean() - os_["final_mean_length"].mean()

    half = {r: first_share_step(metrics, r, 0.5) for r in ("outcome (OS)", "process (PS)")}
    return {
        "reason_share": bool(
            0.05 <= os_["start_scratchpad_share"].mean() < 0.15
            and os_["final_scratchpad_share"].min() > 0.99
        ),  # fmt: skip
        "reason_gain": (os_["final_sampled"] - os_["start_sampled"]).mean(),
        "reason_longer": (os_["final_mean_length"] / os_["start_mean_length"]).mean(),
        "reason_cpu": os_["seconds_train_cpu"].mean(),
        "reason_forced": card["forced_scratchpad"],
        "reason_below_forced": bool(os_["final_sampled"].max() < card["forced_scratchpad"]),
        "reason_pass_big": [warm["warm start sum4"][256], os_["final_pass@256_n256"].min()],
        "reason_pass1": [warm["warm start sum4"][1], os_["final_pass@1_n256"].mean()],
        "reason_beta_tie": ties(b0, os_, but_length=True),
        "reason_longer_by": [longer(b0), longer(sm)],
        "reason_forced_direct": [
            os_["start_forced_direct"].mean(),
            os_["final_forced_direct"].mean(),
            b0["final_forced_direct"].mean(),
        ],  # fmt: skip
        "reason_ps_tie": ties(ps, os_),
        "reason_switch": [
            min(half["process (PS)"]),
            max(half["process (PS)"]),
            min(half["outcome (OS)"]),
            max(half["outcome (OS)"]),
        ],  # fmt: skip
        "reason_step_mean": ties(sm, os_, but_length=True),
        "reason_beyond_share": bool(beyond["final_scratchpad_share"].max() < 0.01),
        "reason_beyond_flat": called(beyond["final_sampled"], beyond["start_sampled"])
        == "within the spread",
        "reason_beyond_pass": [
            warm["warm start sum5"][256],
            beyond["final_pass@256_n256"].min(),
            beyond["final_pass@256_n256"].max(),
        ],  # fmt: skip
    }

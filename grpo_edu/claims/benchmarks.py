"""The README's benchmark results: tables rendered from ``benchmarks/results/*.json``, and the
numbers its prose quotes from them.

Each table sits in the README between ``<!-- results: NAME -->`` markers and is rendered here
from the file the benchmark wrote (``step_time``, ``step_phases``, ``threads``, ``memory``,
``course_time``): it changes only by re-running the benchmark. ``measure()`` gives the claims of
``claims/README.toml`` that quote these files.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .registry import ROOT

RESULTS = ROOT / "benchmarks" / "results"


def _load(name: str, results: Path = RESULTS):
    return json.loads((results / f"{name}.json").read_text())


def _load_note(load: dict) -> str:
    return f"load average {load['min']:.1f} to {load['max']:.1f}"


def step_time_table(results: Path = RESULTS) -> str:
    """``benchmarks/step_time.py``: the step, its FLOPs, floors and ratios, GRPO and PPO."""
    r = _load("step_time", results)
    g, p, s, f = r["grpo"], r["ppo"], r["median_s"], r["gflop"]
    rows = [
        ("grpo_edu step, CPU s (median)", f"**{g['step_s']:.3f}**", f"**{p['step_s']:.3f}**"),
        ("the same step before the lean forward", f"{s['before_grpo']:.3f}", ""),
        ("TRL `GRPOTrainer`", f"{s['trl']:.3f}", "n/a (TRL has no PPO trainer)"),
        ("bare torch step", f"{s['bare_grpo']:.3f}", f"{s['bare_ppo']:.3f}"),
        ("GFLOP executed: counter (hand count of the linear layers)",
         f"{g['gflop_executed']:.2f} ({r['hand_count_gflop']['grpo_edu_grpo']['packed']:.2f})",
         f"{p['gflop_executed']:.2f} ({r['hand_count_gflop']['grpo_edu_ppo']['packed']:.2f})"),
        ("GFLOP of the dense work (the transformers path)", f"{g['gflop_dense_work']:.2f}",
         f"{p['gflop_dense_work']:.2f}"),
        ("GFLOP of TRL's and the bare step", f"{f['trl']:.2f}, {f['bare_grpo']:.2f}",
         f"–, {f['bare_ppo']:.2f}"),
        ("**floor ratio**: step / (FLOPs executed / matmul rate)", f"**{g['floor_ratio']:.2f}**",
         f"**{p['floor_ratio']:.2f}**"),
        ("floor ratio on the dense work", f"{g['floor_ratio_dense_work']:.2f} "
         f"(before: {r['before_grpo_floor_ratio']:.2f})", f"{p['floor_ratio_dense_work']:.2f}"),
        ("**grpo_edu / TRL**", f"**{g['trl_ratio']:.3f}** (before: {r['before_grpo_over_trl']:.3f})",
         ""),
        ("grpo_edu / bare", f"{g['bare_ratio']:.3f}", f"{p['bare_ratio']:.3f}"),
        ("grpo_edu / before", f"{g['before_ratio']:.3f}", ""),
    ]  # fmt: skip
    lines = ["| | GRPO | PPO |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    note = (f"{r['rounds']} rounds, {r['threads']} thread, {_load_note(r['load_average_1min'])}; "
            f"attainable matmul rate in the same rounds {r['matmul_rate_gflops']:.1f} GFLOP/s; "
            "ratios are medians of per-round ratios.")  # fmt: skip
    return "\n".join(lines) + "\n\n" + note + "\n"


PHASES = ("sampling", "reference", "policy forward", "loss", "backward", "clip", "adam", "step")


def step_phases_table(results: Path = RESULTS) -> str:
    """``benchmarks/step_phases.py``: the GRPO step's phases, now and before, CPU ms."""
    r = _load("step_phases", results)
    head = "| CPU ms | " + " | ".join(PHASES) + " |"
    lines = [head, "|---" * (len(PHASES) + 1) + "|"]
    for name in ("now", "before"):
        lines.append(f"| {name} | " + " | ".join(f"{r[name][p]:.1f}" for p in PHASES) + " |")
    note = (f"{r['rounds']} rounds alternating now and before, {_load_note(r['load_average_1min'])}, "
            f"matmul rate {r['matmul_rate_gflops']:.0f} GFLOP/s.")  # fmt: skip
    return "\n".join(lines) + "\n\n" + note + "\n"


def threads_table(results: Path = RESULTS) -> str:
    """``benchmarks/threads.py``: a GRPO step's wall time at 1 and 2 threads, per wait policy."""
    rows = _load("threads", results)
    if (results / "threads_loaded.json").exists():  # the same script on the machine under load
        rows = rows + _load("threads_loaded", results)
    lines = ["| `OMP_WAIT_POLICY` | 1 thread, wall s | 2 threads, wall s | 2 / 1 (median) | load average | `auto` picks |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        s, load = r["grpo_step_wall_s"], r["load_average_1min"]
        lines.append(f"| {r['OMP_WAIT_POLICY']} | {s['1']:.3f} | {s['2']:.3f} | "
                     f"{r['two_over_one_median_ratio']:.2f} | {load['min']:.1f} to {load['max']:.1f} | "
                     f"{r['auto_picks']} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def memory_table(results: Path = RESULTS) -> str:
    """``benchmarks/memory.py``: training state and activations of one update, MiB."""
    r = _load("memory", results)
    lines = [
        "| MiB | training state | activations of one update | with them |",
        "|---|---|---|---|",
    ]
    for path, label in (("lean", "lean forward"), ("transformers", "transformers' forward")):
        for algorithm in ("grpo", "ppo"):
            m = r[f"{path}_{algorithm}"]
            lines.append(f"| {algorithm.upper()}, {label} | {m['train_state_mib']:.1f} | "
                         f"{m['activations_mib']:.1f} | {m['with_activations_mib']:.1f} |")  # fmt: skip
        ratio = r[f"{path}_ratio"]
        lines.append(f"| GRPO / PPO, {label} | {ratio['train_state']:.2f}× | | "
                     f"{ratio['with_activations']:.2f}× |")  # fmt: skip
    return "\n".join(lines) + "\n"


def _course(results: Path = RESULTS) -> dict[tuple[str, str], dict]:
    return {(r["job"], r["code"]): r for r in _load("course_time", results)}


def course_totals(results: Path = RESULTS) -> dict[str, dict[str, float]]:
    """CPU seconds of every notebook in FAST and in full mode, before and after."""
    runs = _course(results)
    return {mode: {code: sum(r["cpu_s"] for (job, c), r in runs.items()
                             if c == code and job.startswith(f"{mode}:"))
                   for code in ("before", "after")} for mode in ("fast", "full")}  # fmt: skip


def course_time_table(results: Path = RESULTS) -> str:
    """``benchmarks/course_time.py``: each notebook (FAST and full) and ``compare``, before and
    after, CPU seconds (wall seconds and load as they were)."""
    runs = _course(results)
    jobs = list(dict.fromkeys(job for job, _ in runs))
    lines = ["| job | CPU s before | CPU s after | after / before | wall s before, after | load average |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for job in jobs:
        b, a = runs[(job, "before")], runs[(job, "after")]
        wall = (
            f"{b['wall_s']:.0f}, {a['wall_s']:.0f}"
            if not a.get("wall_invalid")
            else f"{b['wall_s']:.0f}, –"
        )
        lines.append(f"| {job} | {b['cpu_s']:.1f} | {a['cpu_s']:.1f} | {a['cpu_s'] / b['cpu_s']:.2f} | "
                     f"{wall} | {b['load_start']:.0f} |")  # fmt: skip
    totals = course_totals(results)
    for mode in ("fast", "full"):
        t = totals[mode]
        if t["before"]:
            lines.append(f"| every notebook, {mode} | {t['before']:.0f} | {t['after']:.0f} | "
                         f"{t['after'] / t['before']:.2f} | | |")  # fmt: skip
    return "\n".join(lines) + "\n"


def course_quiet_table(results: Path = RESULTS) -> str:
    """The course on a quiet machine: every document of the full-mode claim check
    (``python -m grpo_edu claims``, its report copied to ``claims_full.json``) and ``compare``
    (``compare_quiet.json``), wall seconds and the load average they ran under."""
    report, compare = _load("claims_full", results), _load("compare_quiet", results)
    lines = ["| job | wall s | load average (start, end) |", "|---|---|---|"]
    notebooks = [d for d in report["documents"] if d["document"].endswith(".ipynb")]
    for d in notebooks:
        load = d.get("load_average") or [float("nan")] * 2
        lines.append(f"| full:{d['name']} | {d['seconds']:.0f} | {load[0]:.1f}, {load[1]:.1f} |")
    total = sum(d["seconds"] for d in notebooks)
    lines.append(f"| every notebook, full | {total:.0f} ({total / 60:.1f} min) | |")
    lines.append(f"| `{compare['command'].replace('python -m grpo_edu ', '')}` | "
                 f"{compare['wall_seconds']:.0f} | |")  # fmt: skip
    return "\n".join(lines) + "\n"


RENDERERS = {
    "step_time": step_time_table,
    "step_phases": step_phases_table,
    "threads": threads_table,
    "memory": memory_table,
    "course_time": course_time_table,
    "course_quiet": course_quiet_table,
}
"""Each benchmark results block of the README, by marker name."""


def measure(results: Path = RESULTS) -> dict[str, object]:
    """The README's prose claims that quote the benchmark files."""
    step, memory = _load("step_time", results), _load("memory", results)
    threads = {r["OMP_WAIT_POLICY"]: r for r in _load("threads", results)}
    passive = threads["PASSIVE"]["two_over_one_median_ratio"]
    spinning = statistics.median(r["two_over_one_median_ratio"] for k, r in threads.items()
                                 if k != "PASSIVE")  # fmt: skip
    loaded_threads = _load("threads_loaded", results)
    loaded = {r["OMP_WAIT_POLICY"]: r["two_over_one_median_ratio"] for r in loaded_threads}
    loaded_step = _load("step_time_loaded", results)
    totals = course_totals(results)
    compare = _course(results)
    full = {d["name"]: d["seconds"] for d in _load("claims_full", results)["documents"]
            if d["document"].endswith(".ipynb")}  # fmt: skip
    first = {n: t for n, t in full.items() if n[:2] < "08"}  # the course the targets were set for
    return {
        "quiet_first_max": max(first.values()),
        "quiet_first_total": sum(first.values()) / 60,
        "quiet_new": [full["08_reasoning"], full["09_paradigm"]],
        "quiet_total": sum(full.values()) / 60,
        "quiet_compare": _load("compare_quiet", results)["wall_seconds"],
        "bench_trl_ratio": step["grpo"]["trl_ratio"],
        "bench_floor_ratio": step["grpo"]["floor_ratio"],
        "bench_floor_ratio_dense": step["grpo"]["floor_ratio_dense_work"],
        "bench_before_floor": step["before_grpo_floor_ratio"],
        "bench_before_trl": step["before_grpo_over_trl"],
        "bench_matmul_rate": step["matmul_rate_gflops"],
        "bench_matmul_rate_loaded": [
            loaded_step["load_average_1min"]["median"],
            loaded_step["matmul_rate_gflops"],
        ],
        "bench_ppo_floor": step["ppo"]["floor_ratio"],
        "threads_passive": passive,
        "threads_spinning": spinning,
        "threads_loaded": [loaded["PASSIVE"], loaded["(unset: libgomp default)"]],
        "threads_loaded_load": all(
            14 <= r["load_average_1min"]["min"] and r["load_average_1min"]["max"] < 17.5
            for r in loaded_threads
        ),  # "about 15 to 17"
        "threads_auto_one": all(r["auto_picks"] == 1 for r in threads.values()),
        "memory_with_activations": memory["lean_ratio"]["with_activations"],
        "course_compare_cpu": [compare[("compare", c)]["cpu_s"] for c in ("before", "after")],
        "course_full_cpu": [totals["full"]["before"], totals["full"]["after"]],
        "course_fast_cpu": [totals["fast"]["before"], totals["fast"]["after"]],
        "course_longest_notebook": [
            compare[("full:00_quickstart", c)]["cpu_s"] for c in ("before", "after")
        ],
    }

"""One thread or two: wall time of a full GRPO step and of ``threads.measure``'s probe.

OpenMP reads ``OMP_WAIT_POLICY`` when torch loads, so each policy runs in its own child process
(``PASSIVE``: a waiting thread sleeps; unset: libgomp's default, spin first). Inside a child the
thread count alternates round by round (1, 2, 1, 2, ...) on the same work, so that both see the
same machine load; we report the medians, the median per-round ratio (2 threads / 1 thread; < 1:
two are faster), the load average, and what ``threads.choose_threads("auto")`` picks here.

    python benchmarks/threads.py [--rounds 15] [--out benchmarks/results/threads.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(rounds: int) -> dict:
    import statistics
    import time

    import torch

    sys.path.insert(0, str(HERE))
    from step_time import ours_step_fn  # the benchmark's own GRPO step

    from grpo_edu.tasks import get_task
    from grpo_edu.threads import choose_threads, idle_cores

    step = ours_step_fn(get_task("add2"))
    wall = {1: [], 2: []}
    loads = []
    for n in (1, 2, 1, 2):  # warm up
        torch.set_num_threads(n)
        step()
    for _ in range(rounds):
        for n in (1, 2):
            torch.set_num_threads(n)
            t0 = time.perf_counter()
            step()
            wall[n].append(time.perf_counter() - t0)
        loads.append(os.getloadavg()[0])
    torch.set_num_threads(1)
    ratios = [b / a for a, b in zip(wall[1], wall[2], strict=True)]
    return {
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset: libgomp default)"),
        "grpo_step_wall_s": {str(n): statistics.median(v) for n, v in wall.items()},
        "two_over_one_median_ratio": statistics.median(ratios),
        "load_average_1min": {
            "min": min(loads),
            "median": statistics.median(loads),
            "max": max(loads),
        },  # fmt: skip
        "idle_cores_at_end": idle_cores(),
        "auto_picks": choose_threads("auto"),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--out", default="benchmarks/results/threads.json")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.rounds)))
        return
    results = []
    for policy in ("PASSIVE", None):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}  # fmt: skip
        if policy:
            env["OMP_WAIT_POLICY"] = policy
        cmd = [sys.executable, __file__, "--child", "--rounds", str(args.rounds)]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

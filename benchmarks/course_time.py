"""The course's wall and CPU time, before and after a change, run side by side.

Each job runs twice at once, on the code of ``--before`` (a git commit, exported with
``git archive``) and on this working tree, so that both see the same machine load; one torch
thread each. A job is ``fast:NB`` or ``full:NB`` (notebook ``notebooks/NB.ipynb`` executed by
``jupyter nbconvert`` with ``GRPO_EDU_FAST`` 1 or 0) or ``compare`` / ``compare:--fast`` (the
main job). CPU time is the user + system time of the command and the kernel it waits for
(``/usr/bin/time``): on a shared machine it is the figure to compare, wall time depends on the
load (recorded at start and end).

    python benchmarks/course_time.py --before 6d8f9e0 fast:00_quickstart full:00_quickstart compare
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(root: Path, job: str, out: Path) -> tuple[list[str], dict[str, str], Path]:
    """(argv, extra environment, working directory) of ``job`` on the code in ``root``."""
    if job.startswith("compare"):
        extra = job.split(":")[1:]
        return [sys.executable, "-m", "grpo_edu", "--threads", "1", "compare", "--out", str(out), *extra], {}, root  # fmt: skip
    mode, notebook = job.split(":")
    argv = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
            "--ExecutePreprocessor.timeout=3600", "--output-dir", str(out),
            str(root / "notebooks" / f"{notebook}.ipynb")]  # fmt: skip
    return argv, {"GRPO_EDU_FAST": "1" if mode == "fast" else "0"}, root / "notebooks"


def run_pair(job: str, roots: dict[str, Path], tmp: Path) -> list[dict]:
    procs = {}
    for name, root in roots.items():
        out = Path(tempfile.mkdtemp(prefix=f"{name}_", dir=tmp))
        argv, extra, cwd = command(root, job, out)
        env = dict(os.environ, PYTHONPATH=str(root), OMP_NUM_THREADS="1", **extra)
        log = open(out / "log.txt", "w")  # a file, not a pipe: a full pipe would stall the run
        p = subprocess.Popen(["/usr/bin/time", "-f", "TIME %e %U %S", *argv], cwd=cwd, env=env,
                             stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        procs[name] = (p, log, out, os.getloadavg()[0])
    records = []
    for name, (p, log, out, load) in procs.items():
        p.wait()
        log.close()
        text = (out / "log.txt").read_text(errors="replace")
        times = [line for line in text.splitlines() if line.startswith("TIME ")]
        wall, user, system = map(float, times[-1].split()[1:]) if times else (float("nan"),) * 3
        records.append({"job": job, "code": name, "rc": p.returncode, "wall_s": wall,
                        "cpu_s": user + system, "load_start": load,
                        "load_end": os.getloadavg()[0], "log_tail": text[-2000:]})  # fmt: skip
    return records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("jobs", nargs="+", help="fast:NB, full:NB, compare or compare:--fast")
    ap.add_argument("--before", default="6d8f9e0", help="git commit of the code to compare with")
    ap.add_argument("--out", default="benchmarks/results/course_time.json")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        before = Path(tmp) / "before"
        before.mkdir()
        archive = subprocess.run(["git", "archive", args.before], cwd=ROOT, check=True, capture_output=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        records = []
        for job in args.jobs:
            records += run_pair(job, {"before": before, "after": ROOT}, Path(tmp))
            Path(args.out).write_text(json.dumps(records, indent=2) + "\n")
    print(json.dumps([{k: v for k, v in r.items() if k != "log_tail"} for r in records], indent=2))


if __name__ == "__main__":
    main()

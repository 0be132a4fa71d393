"""How many CPU threads torch uses: a policy that is never a trap.

This model is tiny (width 128): most of a step is small ops that one thread runs as fast as two,
and its matmuls are too small to split well. On a busy 2-core machine a second thread is a trap:
two threads fighting other jobs made ``compare --fast`` 9.4x slower with OpenMP's default
spin-waiting, and 1.12x slower with ``OMP_WAIT_POLICY=PASSIVE`` (benchmarks/threads.py measures
it again). So:

- ``"auto"`` (what the command line uses by default) takes ``OMP_NUM_THREADS`` when the
  environment sets it (the test suite and CI set 1), and otherwise keeps **one thread** unless
  the machine has cores to spare (the load average leaves at least ``IDLE_MARGIN`` more idle cores than a second
  thread needs) **and** a second thread is measured faster on this model's own forward and
  backward, at least ``MIN_GAIN`` faster, in a probe of about a second (sampling a batch, then
  one forward and backward);
- a number is used as it is.

OpenMP reads ``OMP_WAIT_POLICY`` when torch loads, so the command line sets it to ``PASSIVE``
(unless the environment chose) before it imports torch: a waiting thread sleeps instead of
spinning on a core that another job needs.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

IDLE_MARGIN = 0.5
""""auto" considers two threads only with at least 1 + IDLE_MARGIN idle cores (cpu count minus
the 1-minute load average, which does not yet count this process): the second thread needs a
core of its own, and the load average lags."""
MIN_GAIN = 0.10
"""Two threads must be at least this much faster (wall time) in the probe to be chosen."""


def idle_cores() -> float:
    """CPU count minus the 1-minute load average (what other jobs leave to this one)."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (os.cpu_count() or 1) - load


def _probe_step():
    """What a training step is made of, on a fresh model and a GRPO-sized batch (16 prompts x 8
    completions of 6 tokens): sampling the completions (many small ops, one token at a time) and
    one forward + backward through the lean forward. A probe of the forward and backward alone
    chose two threads on an idle machine where a whole step was 1.4x slower with two."""
    from . import lean
    from .models import build_model
    from .rollout import sample

    model = build_model(seed=0)
    g = torch.Generator().manual_seed(0)
    n, G, P, T = 16, 8, 7, 6
    prompt_ids = torch.randint(4, 19, (n, P), generator=g)
    prompt_mask = torch.ones(n, P, dtype=torch.long)
    positions = torch.arange(P).expand(n, P)
    rows = torch.arange(n).repeat_interleave(G)
    completion_ids = torch.randint(4, 19, (n * G, T), generator=g)
    lengths = torch.randint(2, T + 1, (n * G, 1), generator=g)
    completion_mask = (torch.arange(T) < lengths).float()

    def step():
        with torch.no_grad():  # the same draws every call: the same work
            sample(model, prompt_ids, prompt_mask, T, 1.0, torch.Generator().manual_seed(0), G)
        out = lean.shared_prefix_forward(
            model, prompt_ids, prompt_mask, positions, rows, completion_ids, completion_mask
        )
        out.square().mean().backward()

    return step


def measure(threads: tuple[int, ...] = (1, 2), rounds: int = 5) -> dict[int, float]:
    """Median wall seconds of the probe step at each thread count, interleaved round by round
    (so that all see the same load). Restores the thread count it found."""
    step, before = _probe_step(), torch.get_num_threads()
    times: dict[int, list[float]] = {n: [] for n in threads}
    try:
        for n in threads:  # warm up each
            torch.set_num_threads(n)
            step()
        for _ in range(rounds):
            for n in threads:
                torch.set_num_threads(n)
                t0 = time.perf_counter()
                step()
                times[n].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return {n: statistics.median(v) for n, v in times.items()}


def choose_threads(requested: int | str = "auto") -> int:
    """The thread count for ``requested``: a positive int as it is; ``"auto"`` as the module
    docstring says (``OMP_NUM_THREADS`` if set; else 1 on a busy or 1-core machine, 2 only
    where measured faster)."""
    if requested != "auto":
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise ValueError(f"threads must be a positive int or 'auto', got {requested!r}")
        return requested
    chosen = os.environ.get("OMP_NUM_THREADS", "")
    if chosen.isdigit() and int(chosen) >= 1:
        return int(chosen)
    if (os.cpu_count() or 1) < 2 or idle_cores() < 1 + IDLE_MARGIN:
        return 1
    times = measure((1, 2))
    return 2 if times[2] < (1 - MIN_GAIN) * times[1] else 1

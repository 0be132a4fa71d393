"""The grader's side of one sandboxed run: start it, watch its clock, read its pipes, end it.

``launch(job, limits, scratch)`` starts ``python -m grpo_edu.exercises.runner`` in a new session
with a scrubbed environment, feeds it the job, and reads two pipes at once: the result channel
(frames, at most ``limits.results_mb``) and the printed output (the first and last halves of
``limits.output_kb`` kept). A cell that runs past ``limits.cell_timeout`` gets SIGINT (the
student sees a KeyboardInterrupt and the next cells run); one that is still running
``limits.grace`` seconds later, or a notebook past ``limits.timeout``, is killed with its
whole sandbox: SIGTERM to the sandbox's root-owned parent, which SIGKILLs the PID namespace,
then SIGKILL to the session and to the parent's children. Nothing the student's code does can
delay the grader past its budget plus the grace. ``probe`` tells which isolation works here.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import monotonic
from typing import Any

from .codec import FrameReader
from .sandbox import HOME, Limits

ENV_KEEP = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass
class RunOutcome:
    """What one run left: its frames, its output, how it ended."""

    frames: list[tuple[str, Any]]
    """("json", data) or ("blob", bytes), in order; the student's process wrote them."""
    channel_error: str | None
    """Why the result channel broke (too much data, a malformed frame), or None."""
    output: str
    """Printed output, cut to ``limits.output_kb`` (first and last halves)."""
    returncode: int | None
    killed: str | None = None
    """``"timeout"`` (the notebook's budget), ``"cell"`` (an interrupted cell did not stop)."""
    interrupted: dict[int, float] = field(default_factory=dict)
    """Cell index -> seconds it had run when it was interrupted."""
    seconds: float = 0.0


def environment(config: dict, package_root: str) -> dict[str, str]:
    """The sandbox's whole environment: nothing of the grader's but the locale and PATH."""
    env = {k: os.environ[k] for k in ENV_KEEP if k in os.environ}
    full = config["isolation"] != "basic"  # full or user: HOME in the private /tmp
    home = HOME if full else str(Path(config["workdir"]).parent / "home")
    env.update(
        HOME=home,
        USER="student",
        LOGNAME="student",
        TMPDIR="/tmp" if full else str(Path(config["workdir"]).parent / "tmp"),
        PYTHONPATH=package_root,
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONNOUSERSITE="1",
        MPLBACKEND="Agg",
        MPLCONFIGDIR=f"{home}/.matplotlib",
        OMP_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        GRPO_EDU_HIDE_SOLUTIONS="1",
    )
    return env


class _Output:
    """The first ``limit / 2`` bytes and the last ``limit / 2`` bytes of a stream."""

    def __init__(self, limit: int):
        self.half, self.head, self.tail, self.total = limit // 2, bytearray(), bytearray(), 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.half - len(self.head)
        self.head += chunk[:room]
        self.tail = (self.tail + chunk[max(room, 0) :])[-self.half :]

    def text(self) -> str:
        head, tail = self.head.decode(errors="replace"), self.tail.decode(errors="replace")
        dropped = self.total - len(self.head) - len(self.tail)
        cut = f"\n[... {dropped} bytes of output dropped ...]\n" if dropped > 0 else ""
        return head + cut + tail


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


class _Watch:
    """The clocks of one run and the signals they send."""

    def __init__(self, proc: subprocess.Popen, limits: Limits, namespaced: bool):
        self.proc, self.limits, self.namespaced = proc, limits, namespaced
        self.start = monotonic()
        self.cell: int | None = None
        self.cell_start = 0.0
        self.interrupted: dict[int, float] = {}
        self.interrupt_at: float | None = None
        self.killed: str | None = None
        self.kill_at: float | None = None

    def event(self, frame: Any) -> None:
        if type(frame) is dict and type(frame.get("cell")) is int:
            if frame.get("event") == "start":
                self.cell, self.cell_start, self.interrupt_at = frame["cell"], monotonic(), None
            elif frame.get("event") == "end" and frame["cell"] == self.cell:
                self.cell, self.interrupt_at = None, None

    def _signal(self, sig: int) -> None:
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def tick(self) -> None:
        now, lim = monotonic(), self.limits
        if self.killed is None and now - self.start > lim.timeout:
            self.killed = "timeout"
            self._signal(signal.SIGINT)
            self.kill_at = now + lim.grace
        elif self.killed is None and self.cell is not None and self.interrupt_at is None:
            if now - self.cell_start > lim.cell_timeout:
                self.interrupted[self.cell] = now - self.cell_start
                self.interrupt_at = now
                self._signal(signal.SIGINT)
        elif self.killed is None and self.interrupt_at and now - self.interrupt_at > lim.grace:
            self.killed, self.kill_at = "cell", now
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self.kill()

    def kill(self) -> None:
        """The whole sandbox: its namespace (via the parent), its session, the parent's children."""
        self._signal(signal.SIGTERM if self.namespaced else signal.SIGKILL)
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        for pid in _children(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def launch(job: dict, limits: Limits, scratch: Path, package_root: str) -> RunOutcome:
    """Run ``job`` in the sandbox it describes; return everything it left."""
    config = job["sandbox"]
    fd, job_path = tempfile.mkstemp(dir=scratch, suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(job, f)
    r_res, w_res = os.pipe()
    r_out, w_out = os.pipe()
    cmd = [
        sys.executable,
        "-B",
        "-s",
        "-m",
        "grpo_edu.exercises.runner",
        "--results-fd",
        str(w_res),
    ]
    with open(job_path, "rb") as stdin:
        proc = subprocess.Popen(
            cmd,
            stdin=stdin,
            stdout=w_out,
            stderr=w_out,
            pass_fds=(w_res,),
            cwd="/",
            env=environment(config, package_root),
            start_new_session=True,
        )
    os.close(w_res)
    os.close(w_out)
    os.unlink(job_path)
    reader, output = FrameReader(limits.results_mb * 2**20), _Output(limits.output_kb * 1024)
    watch = _Watch(proc, limits, config["isolation"] != "basic")
    try:
        _pump(proc, watch, {r_res: reader, r_out: output})
    finally:
        if proc.poll() is None:
            watch.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything left in the session
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    seconds = monotonic() - watch.start
    return RunOutcome(
        reader.frames,
        reader.error,
        output.text(),
        proc.returncode,
        watch.killed,
        watch.interrupted,
        seconds,
    )


def _pump(proc: subprocess.Popen, watch: _Watch, sinks: dict) -> None:
    """Read both pipes until they close (or 1 s after the process ended), ticking the clocks."""
    selector = selectors.DefaultSelector()
    for fd in sinks:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    exited_at, seen = None, 0
    try:
        while selector.get_map():
            watch.tick()
            for key, _ in selector.select(timeout=0.05):
                try:
                    chunk = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                sink = sinks[key.fd]
                sink.feed(chunk)
                if isinstance(sink, FrameReader):
                    for _, frame in sink.frames[seen:]:
                        watch.event(frame)
                    seen = len(sink.frames)
            if proc.poll() is not None:
                exited_at = exited_at or monotonic()
                if monotonic() - exited_at > 1.0:  # a leftover process holds the pipes
                    break
    finally:
        for fd in sinks:
            os.close(fd)


def probe(level: str, sandbox: dict, scratch: Path, package_root: str) -> str | None:
    """Why isolation ``level`` (``full`` or ``user``) does not work here, or None: an empty job.

    ``sandbox``: the rest of the sandbox's config (uid and gid for ``full``, hide, expose).
    """
    if not sys.platform.startswith("linux"):
        return f"{level} isolation needs Linux namespaces (this is {sys.platform})"
    if level == "full" and os.geteuid() != 0:
        return "full isolation needs root (the grader does not run as root)"
    limits = Limits(timeout=60)
    config = {**sandbox, "isolation": level, "limits": asdict(limits)}
    outcome = launch({"sandbox": config, "files": [], "cells": []}, limits, scratch, package_root)
    events = [f.get("event") for kind, f in outcome.frames if kind == "json" and type(f) is dict]
    if events[:1] == ["ready"] and events[-1:] == ["done"]:
        return None
    return f"the sandbox did not start ({outcome.returncode}): {outcome.output.strip()[-300:]}"

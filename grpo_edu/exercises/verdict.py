"""From what a sandboxed run left to a verdict per exercise, judged in the grading process.

The frames of a run (``supervise.RunOutcome``) say which cells started and ended (with their
error text), and carry each check call's answers: observations as data, or trained weights.
``verdicts`` decodes them (``codec``: data only) and judges them with the grader's own
``CaseCheck``s and its own accuracy measurement; what the student's process claims about
success is never read. An exercise passes when its solution cell ran without error and every
check call of its test cell was judged correct. An exercise the run never reached is
``timed out`` (the notebook's budget, or a cell that ignored its interrupt) or ``crashed``
(the process died, the sandbox did not start, the result channel broke).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass

from . import codec, observe
from .feedback import ExerciseFailed
from .judge import CaseCheck, judge
from .prepare import Assignment, Prepared
from .sandbox import Limits
from .supervise import RunOutcome


@dataclass(frozen=True)
class Verdict:
    status: str
    passed: bool
    reason: str = ""


def _frames(outcome: RunOutcome) -> tuple[bool, dict[int, str | None], dict, int | None]:
    """(ready, cell -> error of the cells that ended, (cell, call) -> payload, running cell)."""
    ready, ends, calls, running, waiting = False, {}, {}, None, None
    for kind, frame in outcome.frames:
        if kind == "blob":
            if waiting is not None:
                calls[waiting]["blob"], waiting = frame, None
            continue
        if type(frame) is not dict:
            continue
        event, cell = frame.get("event"), frame.get("cell")
        if event == "ready":
            ready = True
        elif event == "start" and type(cell) is int:
            running = cell
        elif event == "end" and type(cell) is int:
            error = frame.get("error")
            ends[cell], running = error if type(error) is str or error is None else "?", None
        elif event == "call" and type(cell) is int and type(frame.get("call")) is int:
            calls[cell, frame["call"]] = frame
            waiting = (cell, frame["call"]) if "weights" in frame else None
    return ready, ends, calls, running


def _how(code: int | None) -> str:
    if code is not None and code > 128:
        try:
            return f"killed by {signal.Signals(code - 128).name}"
        except ValueError:
            pass
    return f"exit code {code}"


class _Run:
    def __init__(self, prepared: Prepared, outcome: RunOutcome, limits: Limits):
        self.prepared, self.outcome, self.limits = prepared, outcome, limits
        self.ready, self.ends, self.calls, self.running = _frames(outcome)

    def error(self, cell: int, text: str) -> str:
        if cell in self.outcome.interrupted:
            return (
                f"Timeout: the cell did not finish within {self.limits.cell_timeout:g} s "
                f"(an infinite loop?); it was interrupted"
            )
        return text

    def not_run(self) -> Verdict:
        o, tail = self.outcome, self.outcome.output.strip()[-400:]
        if not self.ready:
            return Verdict(
                "crashed", False, f"the sandbox did not start ({_how(o.returncode)}): {tail}"
            )
        if o.killed == "timeout":
            return Verdict(
                "timed out", False, f"not run: the notebook used up its {self.limits.timeout:g} s"
            )
        if o.killed == "cell":
            return Verdict(
                "timed out",
                False,
                f"not run: a cell ignored its interrupt after {self.limits.cell_timeout:g} s, "
                f"so the notebook was stopped",
            )
        if o.channel_error:
            return Verdict("crashed", False, f"not run: {o.channel_error}")
        where = f" in code cell {self.running + 1}" if self.running is not None else ""
        return Verdict(
            "crashed",
            False,
            f"not run: the notebook's process died{where} ({_how(o.returncode)}); "
            f"last output: {tail}",
        )

    def exercise(self, gids: list[str]) -> Verdict:
        p = self.prepared
        for gid in gids:
            index = p.cell_of[gid]
            if index not in self.ends:
                return self.not_run()
            cell = p.cells[index]
            if cell["kind"] == "code" and self.ends[index]:
                return Verdict(
                    "graded", False, f"solution cell: {self.error(index, self.ends[index])}"
                )
            if cell["kind"] != "harness":
                continue
            for j in range(len(cell["calls"])):
                payload = self.calls.get((index, j))
                if payload is None:
                    why = self.ends[index] or "the check did not run"
                    return Verdict("graded", False, f"check: {self.error(index, why)}")
                problem = _judge(p.judges[index, j], payload)
                if problem:
                    return Verdict("graded", False, problem)
        return Verdict("graded", True)


def _judge(judged_by, payload: dict) -> str | None:
    """Why the answers of one check call are wrong, or None."""
    if "error" in payload:
        return f"check: {str(payload['error'])[:1000]}"
    try:
        if isinstance(judged_by, CaseCheck):
            data = payload.get("observations")
            if type(data) is not list:
                raise codec.DecodeError("no observations")
            judge(judged_by, [observe.decode(d) for d in data])
            return None
        return _judge_training(judged_by, payload)
    except ExerciseFailed as err:
        return str(err)
    except codec.DecodeError as err:
        return f"the answers could not be read: {err}"


def _judge_training(judged_by: tuple, payload: dict) -> str | None:
    from .checks.training import judge_training, load_weights, warm_start_accuracy

    _, budget, seed = judged_by
    blob = payload.get("blob")
    if not isinstance(blob, bytes):
        return "grpo_loss: the training run sent no weights back"
    try:
        policy, tokenizer = load_weights(blob)
    except ValueError as err:
        return f"grpo_loss: the trained weights could not be used: {err}"
    judge_training(policy, tokenizer, budget, seed, warm_start_accuracy(budget, seed))
    return None


def verdicts(
    assignment: Assignment, prepared: Prepared, outcome: RunOutcome, limits: Limits
) -> dict[str, Verdict]:
    """Exercise -> verdict (deleted cells fail; flags override what the checks say)."""
    run, out = _Run(prepared, outcome, limits), {}
    for name, gids in assignment.exercises.items():
        deleted = [g for g in gids if g in prepared.missing]
        if deleted:
            out[name] = Verdict(
                "graded", False, f"cell {deleted[0]!r} was deleted from the submission"
            )
            continue
        verdict = run.exercise(gids)
        if name in prepared.flags:
            said = "passed" if verdict.passed else f"{verdict.status}: {verdict.reason}"
            findings = "; ".join(prepared.flags[name])
            verdict = Verdict("flagged", False, f"flagged: {findings}\n(the checks alone: {said})")
        out[name] = verdict
    return out

"""The judging half of a check: observations of the student's function against the reference.

A ``CaseCheck`` is everything a check needs: its cases, the library's reference, the mistake
catalogue, the hints for known errors, and, for losses, the input whose gradient is compared.
``judge(check, observations)`` computes the reference's value (and gradient) on every case
itself and raises ``ExerciseFailed`` at the first difference, with the tailored message; it
returns a one-line summary when everything matches. It never calls the student's code: the
observations are data (``observe``), so the grader can judge values that came back from a
sandboxed process. ``run_check`` is the notebook version: observe, then judge, in one process.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .feedback import (
    Case,
    ExerciseFailed,
    Mistake,
    NotImplementedYet,
    fail,
    fmt,
    matching_hint,
    not_implemented_message,
    show,
    value_problem,
    with_hints,
)
from .observe import Observation, observe


@dataclass(frozen=True)
class CaseCheck:
    """A check that compares the student's function with a reference, case by case."""

    exercise: str
    cases: Sequence[Case]
    reference: Callable
    mistakes: Sequence[Mistake] = ()
    error_hints: Sequence[tuple[str, str]] = ()
    """``(substring, hint)``: when the student's exception text contains it, add the hint."""
    names: Sequence[str] = ()
    """Names of a tuple result's elements, e.g. ``("advantages", "returns")``."""
    wrt: str | None = None
    """Input whose gradient (of the output's sum) must match the reference's too."""


def run_check(check: CaseCheck, fn: Callable, quiet: bool = False) -> None:
    """Observe ``fn`` on every case and judge it here (the in-notebook ``check_*``)."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    summary = judge(check, [observe(fn, case, check.wrt) for case in check.cases])
    if not quiet:
        show(f"✓ {check.exercise}: {summary}")


def judge(check: CaseCheck, observations: Sequence[Observation]) -> str:
    """The summary line when every observation matches the reference; else ``ExerciseFailed``."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    name = check.exercise
    if len(observations) != len(check.cases):
        raise ExerciseFailed(
            name, f"{name}: {len(observations)} results for {len(check.cases)} cases"
        )
    for case, obs in zip(check.cases, observations, strict=True):
        got = returned(check, case, obs)
        expected = case.call(check.reference)
        problem = value_problem(got, expected, names=check.names)
        if problem:
            hint = matching_hint(case, got, check.mistakes) or case.hint
            fail(name, case, problem, expected, got, [hint] if hint else [])
        _inputs_unchanged(name, case, obs)
    if check.wrt is None:
        return f"all {len(check.cases)} cases match the library's reference"
    for case, obs in zip(check.cases, observations, strict=True):
        _same_gradient(check, case, obs)
    return f"all {len(check.cases)} cases match the library's reference, values and gradients"


def returned(check: CaseCheck, case: Case, obs: Observation) -> Any:
    """The value the student's function returned, or the ``ExerciseFailed`` of its raise."""
    __tracebackhide__ = True
    name = check.exercise
    if obs.outcome == "not_callable":
        raise ExerciseFailed(name, f"check_{name} expects your function, got {obs.error}")
    if obs.outcome == "not_implemented":
        raise NotImplementedYet(name, not_implemented_message(name))
    if obs.outcome == "error":
        hints = [h for s, h in check.error_hints if s in obs.error]
        hints = hints or ([case.hint] if case.hint else [])
        message = f"{name} raised {obs.error}\n  case:  {case.label}\n  input: {case.describe()}"
        raise ExerciseFailed(name, with_hints(message, hints, name))
    return obs.value


def _inputs_unchanged(name: str, case: Case, obs: Observation) -> None:
    """Fail if the function edited a tensor input in place (the caller's data is corrupted)."""
    __tracebackhide__ = True
    for arg, value in case.args.items():
        if not isinstance(value, torch.Tensor):
            continue
        after = obs.inputs_after.get(arg)
        unchanged = isinstance(after, torch.Tensor) and after.shape == value.shape
        if not (unchanged and after.dtype == value.dtype and torch.equal(after, value)):
            raise ExerciseFailed(
                name,
                f"{name} changed its input `{arg}` in place (case: {case.label}).\n"
                f"Hint: use out-of-place operations (x = x - m, not x -= m or x.sub_(m)); the "
                f"caller still needs its {arg}.",
            )


def reference_gradient(reference: Callable, case: Case, wrt: str) -> torch.Tensor:
    args = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in case.args.items()}
    args[wrt].requires_grad_(True)
    (grad,) = torch.autograd.grad(reference(*args.values()).sum(), [args[wrt]], allow_unused=True)
    return torch.zeros_like(args[wrt]) if grad is None else grad


def _same_gradient(check: CaseCheck, case: Case, obs: Observation) -> None:
    """Raise ``ExerciseFailed`` unless d(sum of output)/d(wrt) matches the reference's."""
    __tracebackhide__ = True
    name, wrt, gradient = check.exercise, check.wrt, obs.gradient or {}
    if "error" in gradient:
        raise ExerciseFailed(
            name,
            f"{name} raised {gradient['error']}\n  when {wrt} requires grad "
            f"(case: {case.label}).\nHint: do not modify the inputs in place.",
        )
    got = gradient.get("value")
    if got is None:
        raise ExerciseFailed(
            name,
            f"{name}: your result does not depend differentiably on {wrt} "
            f"(case: {case.label}).\nHint: keep the computation in torch, on the input "
            f"tensors: no .detach(), .item(), .numpy() or torch.tensor(...) of results.",
        )
    expected = reference_gradient(check.reference, case, wrt)
    if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
        raise ExerciseFailed(name, f"{name}: a gradient of the wrong shape (case: {case.label})")
    bad = ~torch.isclose(got.to(expected.dtype), expected, rtol=1e-4, atol=1e-6)
    if bad.any():
        first = tuple(bad.nonzero()[0].tolist())
        raise ExerciseFailed(
            name,
            f"{name}: same values but a different gradient w.r.t. {wrt} at "
            f"{bad.sum().item()} positions; first at {list(first)}\n  case: {case.label}\n"
            f"  expected gradient: {fmt(expected)}\n  got gradient:      {fmt(got)}\n"
            f"Hint: part of your computation does not reach {wrt} (a .detach()?), or a "
            f"clip is off: where the ratio is clipped the gradient must be exactly 0.",
        )

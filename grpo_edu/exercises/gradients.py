"""Gradient checks: a loss must not only have the right values but the right gradient.

Clipping must zero the gradient exactly where it should, and a ``.detach()`` in the wrong place
gives the right numbers and no learning; ``run_with_gradients`` catches both.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .feedback import Case, ExerciseFailed, Mistake, fmt, passed, run_cases


def compare_gradients(
    exercise: str, fn: Callable, reference: Callable, case: Case, wrt: str
) -> None:
    """Raise ``ExerciseFailed`` unless d(sum of output)/d(input) matches the reference's."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    grads = {}
    for who, f in (("expected", reference), ("got", fn)):
        args = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in case.args.items()}
        args[wrt].requires_grad_(True)
        try:
            out = f(*args.values())
        except Exception as err:  # e.g. an in-place edit of an input that requires grad
            raise ExerciseFailed(
                exercise,
                f"{exercise} raised {type(err).__name__}: {err}\n  when {wrt} requires grad "
                f"(case: {case.label}).\nHint: do not modify the inputs in place.",
            ) from err
        if not out.requires_grad:
            raise ExerciseFailed(
                exercise,
                (
                    f"{exercise}: your result does not depend differentiably on {wrt} "
                    f"(case: {case.label}).\nHint: keep the computation in torch, on the input "
                    f"tensors: no .detach(), .item(), .numpy() or torch.tensor(...) of results."
                ),
            )
        (g,) = torch.autograd.grad(out.sum(), [args[wrt]], allow_unused=True)
        grads[who] = torch.zeros_like(args[wrt]) if g is None else g
    bad = ~torch.isclose(grads["got"], grads["expected"], rtol=1e-4, atol=1e-6)
    if bad.any():
        first = tuple(bad.nonzero()[0].tolist())
        raise ExerciseFailed(
            exercise,
            (
                f"{exercise}: same values but a different gradient w.r.t. {wrt} at "
                f"{bad.sum().item()} positions; first at {list(first)}\n  case: {case.label}\n"
                f"  expected gradient: {fmt(grads['expected'])}\n  got gradient:      {fmt(grads['got'])}\n"
                f"Hint: part of your computation does not reach {wrt} (a .detach()?), or a "
                f"clip is off: where the ratio is clipped the gradient must be exactly 0."
            ),
        )


def run_with_gradients(
    exercise: str,
    fn: Callable,
    reference: Callable,
    cases: Sequence[Case],
    mistakes: Sequence[Mistake],
    error_hints: Sequence[tuple[str, str]],
    wrt: str,
    quiet: bool,
) -> None:
    """``run_cases`` on the values, then the gradient w.r.t. ``wrt`` on every case."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    run_cases(exercise, fn, reference, cases, mistakes, error_hints, quiet=True)
    for case in cases:
        compare_gradients(exercise, fn, reference, case, wrt)
    if not quiet:
        passed(
            exercise, f"all {len(cases)} cases match the library's reference, values and gradients"
        )

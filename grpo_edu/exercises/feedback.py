"""What every check shares: cases, mistakes, the comparison with the reference, the messages.

A ``Case`` is one input of a check; a ``Mistake`` a typical wrong implementation with the hint
to give when a student's output equals its output. ``value_problem`` says how an obtained value
differs from the expected one (type, shape, dtype, NaN, values), and ``fail`` raises the
``ExerciseFailed`` that names the case, shows input, expected and obtained values, and adds the
tailored hint. ``judge`` uses them on the grader's side, ``check_*`` in a notebook.

``ExerciseFailed`` subclasses ``AssertionError``: a failing check fails a cell, a pytest test and
an nbgrader test cell alike. Student code that is still a stub raises ``NotImplementedYet``
(a subclass) whose message says "not implemented yet". ``show`` is how notebook helpers put a
line under a cell (IPython's ``display``; a plain ``print`` outside IPython).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .codec import Opaque
from .display import show  # noqa: F401  (re-exported for the checks)

ATOL, RTOL = 1e-5, 1e-4
"""Tolerances of every numeric comparison (float32 sums in another order differ by ~1e-7)."""


class ExerciseFailed(AssertionError):
    """A check found that the student's function does not do what the exercise asks."""

    def __init__(self, exercise: str, message: str):
        super().__init__(message)
        self.exercise = exercise


class NotImplementedYet(ExerciseFailed):
    """The student's function still raises ``NotImplementedError`` (the stub of the exercise)."""


@dataclass(frozen=True)
class Case:
    """One input of a check: named arguments (passed positionally, in order) and what it tests."""

    label: str
    """What the case is, e.g. ``"an all-equal group"``."""
    args: dict[str, Any]
    """Argument name -> value, in the order of the exercise's signature."""
    hint: str | None = None
    """The rule this case tests, shown when it fails and no ``Mistake`` explains the failure."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments, after ``args`` (e.g. the extra columns TRL passes to a reward)."""
    by_keyword: bool = False
    """Pass ``args`` by name too (as TRL calls reward functions), not by position."""

    def call(self, fn: Callable) -> Any:
        """``fn`` on deep copies of the inputs, so that neither call sees the other's edits."""
        args, kwargs = copy.deepcopy((self.args, self.kwargs))
        return fn(**args, **kwargs) if self.by_keyword else fn(*args.values(), **kwargs)

    def describe(self) -> str:
        parts = [f"{k}={fmt(v)}" for k, v in self.args.items()]
        if self.kwargs:
            parts.append(f"and keyword arguments {', '.join(self.kwargs)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Mistake:
    """A typical wrong implementation and the hint to give when a student's output matches it."""

    fn: Callable
    """Same signature as the exercise; computes what the mistake computes."""
    hint: str


def fmt(x: Any) -> str:
    """A short, readable value: tensors as rounded arrays with dtype and shape."""
    if isinstance(x, Tensor):
        arr = x.detach().cpu().float() if x.dtype == torch.bfloat16 else x.detach().cpu()
        text = np.array2string(arr.numpy(), precision=4, suppress_small=True, threshold=64)
        text = text.replace("\n", "\n" + " " * 12)
        return f"{text} ({str(x.dtype).removeprefix('torch.')}, shape {tuple(x.shape)})"
    if isinstance(x, tuple) and any(isinstance(v, Tensor) for v in x):
        return "(\n" + "".join(f"{' ' * 12}{fmt(v)},\n" for v in x) + " " * 10 + ")"
    if isinstance(x, (list, tuple)) and len(x) > 12:
        return f"{type(x).__name__} of {len(x)}: {list(x[:12])!r}..."
    return repr(x)


def not_implemented_message(exercise: str) -> str:
    return (
        f"{exercise} is not implemented yet: replace `raise NotImplementedError()` in its cell "
        f"with your code, run that cell, then run this check again. "
        f"Stuck? hint({exercise!r})"
    )


def with_hints(message: str, hints: Sequence[str], exercise: str) -> str:
    lines = [message] + [f"Hint: {h}" for h in hints]
    lines.append(f"(more help: hint({exercise!r}); the library's reference is the expected value)")
    return "\n".join(lines)


def type_name(x: Any) -> str:
    """``x``'s type as a student knows it (an ``Opaque`` value: the type it had in the notebook)."""
    return x.type_name.rsplit(".", 1)[-1] if isinstance(x, Opaque) else type(x).__name__


def tensor_problem(got: Any, expected: Tensor, name: str = "result") -> str | None:
    """Why ``got`` differs from ``expected`` (type, shape, dtype, NaN, values), or None."""
    if not isinstance(got, Tensor):
        return f"{name}: expected a torch.Tensor of shape {tuple(expected.shape)}, got {type_name(got)}"
    if got.shape != expected.shape:
        same_size = " (same number of elements: reshape it)" * (got.numel() == expected.numel())
        return f"{name}: shape mismatch: expected {tuple(expected.shape)}, got {tuple(got.shape)}{same_size}"
    if got.dtype != expected.dtype:
        return f"{name}: dtype mismatch: expected {expected.dtype}, got {got.dtype}"
    got, expected = got.detach().cpu(), expected.detach().cpu()
    if got.dim() == 0:
        got, expected = got[None], expected[None]  # one code path for scalars
    nonfinite = ~torch.isfinite(got) & torch.isfinite(expected)
    if nonfinite.any():
        at = nonfinite.nonzero().tolist()
        want = sorted({round(v, 4) for v in expected[nonfinite].tolist()})
        return f"{name}: got NaN or inf at {_where(at)} where finite values {want} were expected"
    bad = ~torch.isclose(got.double(), expected.double(), rtol=RTOL, atol=ATOL, equal_nan=True)
    if bad.any():
        first = tuple(bad.nonzero()[0].tolist())
        return (
            f"{name}: wrong values at {bad.sum().item()} of {bad.numel()} positions; first at "
            f"{list(first)}: expected {expected[first].item():.6g}, got {got[first].item():.6g}"
        )
    return None


def _where(indices: list[list[int]]) -> str:
    shown = ", ".join(str(i[0] if len(i) == 1 else i) for i in indices[:8])
    return f"[{shown}{', ...' if len(indices) > 8 else ''}]"


def value_problem(got: Any, expected: Any, name: str = "result", names=()) -> str | None:
    """Like ``tensor_problem`` for tensors, tuples of tensors, lists and plain Python values.

    ``names`` names the elements of a tuple result, e.g. ``("advantages", "returns")``.
    """
    if isinstance(expected, Tensor):
        return tensor_problem(got, expected, name)
    if isinstance(expected, tuple):
        what = f"({', '.join(names)})" if names else f"of {len(expected)} values"
        if not isinstance(got, tuple) or len(got) != len(expected):
            kind = f"a tuple of {len(got)}" if isinstance(got, tuple) else type_name(got)
            return f"{name}: expected a tuple {what}, got {kind}"
        names = names or [f"{name}[{i}]" for i in range(len(expected))]
        problems = (value_problem(g, e, n) for g, e, n in zip(got, expected, names, strict=True))
        return next((p for p in problems if p), None)
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            kind = f"list of {len(got)}" if isinstance(got, list) else type_name(got)
            return f"{name}: expected a list of {len(expected)} values, got {kind}"
        problems = (
            value_problem(g, e, f"{name}[{i}]")
            for i, (g, e) in enumerate(zip(got, expected, strict=True))
        )
        return next((p for p in problems if p), None)
    if type(got) is not type(expected):
        what = "None" if expected is None else f"{expected!r} ({type(expected).__name__})"
        return f"{name}: expected {what}, got {got!r} ({type_name(got)})"
    if got != expected and not (isinstance(got, float) and abs(got - expected) <= ATOL):
        return f"{name}: expected {expected!r}, got {got!r}"
    return None


def same(a: Any, b: Any) -> bool:
    """True when ``a`` and ``b`` are equal values (NaN equal to NaN)."""
    return value_problem(a, b) is None


def matching_hint(case: Case, got: Any, mistakes: Sequence[Mistake]) -> str | None:
    """The hint of the first mistake whose output on ``case`` equals the student's output."""
    for mistake in mistakes:
        try:
            wrong = case.call(mistake.fn)
        except Exception:  # a mistake that cannot run on this case explains nothing here
            continue
        if same(got, wrong):
            return mistake.hint
    return None


def fail(exercise: str, case: Case, problem: str, expected: Any, got: Any, hints) -> None:
    """Raise the ``ExerciseFailed`` that describes a wrong result."""
    __tracebackhide__ = True  # IPython, pytest: hide checker frames
    message = (
        f"{exercise}: {problem}\n  case:     {case.label}\n  input:    {case.describe()}\n"
        f"  expected: {fmt(expected)}\n  got:      {fmt(got)}"
    )
    raise ExerciseFailed(exercise, with_hints(message, hints, exercise))

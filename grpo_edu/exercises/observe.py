"""What a check records of the student's function on one case: the computing half of a check.

``observe(fn, case, wrt)`` calls the student's function on copies of the case's inputs and
records what happened as an ``Observation``: the returned value or the exception's text, the
tensor inputs after the call (an in-place edit shows there), and, for losses, the gradient of
the output's sum with respect to the input ``wrt``. It judges nothing: the judging half
(``judge``) compares an observation with the reference's value on the same case.

In a student's notebook both halves run in the same process (``check_*``: a hint, not a grade).
When grading, ``observe`` runs in the student's sandboxed process, ``encode`` turns each
observation into plain data, and the grader ``decode``s it and judges it in its own process.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from . import codec
from .feedback import Case

OUTCOMES = ("value", "error", "not_implemented", "not_callable")


@dataclass(frozen=True)
class Observation:
    """The student's function on one case, as data."""

    outcome: str
    """``value`` (it returned), ``error`` (it raised), ``not_implemented`` (the stub's
    NotImplementedError), or ``not_callable`` (what was passed is not a function)."""
    value: Any = None
    """What it returned (``outcome == "value"``)."""
    error: str = ""
    """``"TypeError: ..."`` for a raise; the type's name for ``not_callable``."""
    inputs_after: dict[str, Any] = field(default_factory=dict)
    """Tensor inputs as they were after the call (equal to the case's unless edited in place)."""
    gradient: dict[str, Any] | None = None
    """With ``wrt``: ``{"error": text}`` if it raised when ``wrt`` required grad, ``{"value":
    None}`` if the output did not depend differentiably on it, else ``{"value": gradient}``."""


def _error_text(err: BaseException) -> str:
    try:
        return f"{type(err).__name__}: {err}"
    except Exception:  # a hostile __str__
        return type(err).__name__


def observe(fn: Callable, case: Case, wrt: str | None = None) -> Observation:
    """Run ``fn`` on deep copies of ``case``'s inputs (and once more for the gradient)."""
    if not callable(fn):
        return Observation("not_callable", error=type(fn).__name__)
    args, kwargs = copy.deepcopy((case.args, case.kwargs))
    try:
        value = fn(**args, **kwargs) if case.by_keyword else fn(*args.values(), **kwargs)
    except NotImplementedError:
        return Observation("not_implemented")
    except Exception as err:
        return Observation("error", error=_error_text(err))
    after = {k: v.detach().clone() for k, v in args.items() if isinstance(v, torch.Tensor)}
    gradient = _gradient(fn, case, wrt) if wrt is not None else None
    return Observation("value", value, inputs_after=after, gradient=gradient)


def _gradient(fn: Callable, case: Case, wrt: str) -> dict[str, Any]:
    """d(sum of output)/d(wrt), or why there is none."""
    args = {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in case.args.items()}
    args[wrt].requires_grad_(True)
    try:
        out = fn(*args.values())
        if not (isinstance(out, torch.Tensor) and out.requires_grad):
            return {"value": None}
        (grad,) = torch.autograd.grad(out.sum(), [args[wrt]], allow_unused=True)
    except Exception as err:  # e.g. an in-place edit of an input that requires grad
        return {"error": _error_text(err)}
    return {"value": torch.zeros_like(args[wrt]) if grad is None else grad}


# ------------------------------------------------------------------------- as plain data
def encode(obs: Observation) -> dict:
    """JSON-able data for an observation (student side)."""
    gradient = None
    if obs.gradient is not None:
        gradient = {k: codec.encode(v) for k, v in obs.gradient.items()}
    return {
        "outcome": obs.outcome,
        "value": codec.encode(obs.value),
        "error": codec.encode(obs.error),
        "inputs_after": {k: codec.encode(v) for k, v in obs.inputs_after.items()},
        "gradient": gradient,
    }


def decode(data: Any) -> Observation:
    """The observation that ``data`` describes (grader side); ``codec.DecodeError`` if malformed."""
    if type(data) is not dict or data.get("outcome") not in OUTCOMES:
        raise codec.DecodeError("an observation without a known outcome")
    inputs = data.get("inputs_after") or {}
    gradient = data.get("gradient")
    if type(inputs) is not dict or (gradient is not None and type(gradient) is not dict):
        raise codec.DecodeError("malformed observation")
    if gradient is not None:
        gradient = {k: codec.decode(v) for k, v in gradient.items() if k in ("value", "error")}
    error = codec.decode(data.get("error", ""))
    return Observation(
        data["outcome"],
        codec.decode(data.get("value")),
        error if type(error) is str else "",
        {str(k): codec.decode(v) for k, v in inputs.items()},
        gradient,
    )


def encode_case(case: Case) -> dict:
    """A case's inputs as data (grader side), for the student's process."""
    return {
        "label": case.label,
        "args": [[k, codec.encode(v)] for k, v in case.args.items()],
        "kwargs": [[k, codec.encode(v)] for k, v in case.kwargs.items()],
        "by_keyword": case.by_keyword,
    }


def decode_case(data: dict) -> Case:
    """The case (student side); inputs rebuilt with ``codec.decode``."""
    args = {k: codec.decode(v) for k, v in data["args"]}
    kwargs = {k: codec.decode(v) for k, v in data["kwargs"]}
    return Case(data["label"], args, kwargs=kwargs, by_keyword=data["by_keyword"])

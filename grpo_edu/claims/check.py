"""``ClaimCheck``: a notebook measures the numbers its prose quotes, and checks them.

In a notebook::

    claims = ClaimCheck("05_clipping_and_kl")        # the registry claims/05_clipping_and_kl.toml
    ...
    claims.measure(logged_kl=result.metrics["kl"].iloc[-1], kl_range=...)   # in any cell
    ...
    claims.report()                                  # last cell: every claim, measured now

In FAST mode (``GRPO_EDU_FAST=1``, CI) the numbers are not those of the prose, so ``report``
checks only that the notebook measured every registered claim, and nothing unregistered, each
with a value of the right kind: a claim added to the prose without its measurement (or the
reverse) fails CI. In full mode it also says whether each claim holds, and, when
``GRPO_EDU_CLAIMS_OUT`` names a folder (``python -m grpo_edu claims`` sets it), writes the
results there as ``<name>.json``; ``GRPO_EDU_CLAIMS_STRICT=1`` makes a failed claim raise.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..course import fast_mode
from ..machine import machine_info, machine_line
from .registry import Claim, ClaimError, Registry, registry_for

OUT_ENV, STRICT_ENV = "GRPO_EDU_CLAIMS_OUT", "GRPO_EDU_CLAIMS_STRICT"


def _plain(claim: Claim, value: object) -> object:
    """Python floats, a list of them, or a bool, from numpy / torch / pandas scalars."""
    if claim.kind == "holds":
        return bool(value) if type(value).__name__ in ("bool_", "bool") else value
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:  # numpy array, tensor, Series
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [_scalar(v) for v in value]
    return _scalar(value)


def _scalar(value: object) -> object:
    if hasattr(value, "item") and not isinstance(value, int | float):
        value = value.item()
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


@dataclass
class ClaimReport:
    """The claims of one document against this run's measurements."""

    name: str
    fast: bool
    table: pd.DataFrame
    """One row per claim: text, allowed, measured, holds (None in FAST mode)."""
    machine: str

    @property
    def failures(self) -> pd.DataFrame:
        return self.table[self.table["holds"] == False]  # noqa: E712  (None in FAST mode)

    def headline(self) -> str:
        n = len(self.table)
        if self.fast:
            return (f"{n} claims of {self.name} measured; FAST mode: values not checked "
                    "(the prose quotes full-mode runs)")  # fmt: skip
        bad = len(self.failures)
        verdict = "all hold" if not bad else f"{bad} do NOT hold"
        return f"{n} claims of {self.name}, measured now: {verdict} ({self.machine})"

    def _repr_html_(self) -> str:
        return f"<p><b>{self.headline()}</b></p>" + self.table.to_html(index=False)

    def __repr__(self) -> str:
        return self.headline() + "\n" + self.table.to_string(index=False)


class ClaimCheck:
    """Collects a notebook's measurements of its registered claims (see the module docstring)."""

    def __init__(self, name: str, fast: bool | None = None) -> None:
        self.registry: Registry = registry_for(name)
        self.fast = fast_mode() if fast is None else fast
        self.measured: dict[str, object] = {}

    def measure(self, **values: object) -> None:
        """Record measurements by claim id; unknown ids and values of the wrong kind raise."""
        for cid, value in values.items():
            claim = self.registry.claims.get(cid)
            if claim is None:
                raise ClaimError(
                    f"{self.registry.path.name} has no claim {cid!r}: register it before "
                    "measuring it"
                )
            value = _plain(claim, value)
            claim.check_type(value, strict=not self.fast)
            self.measured[cid] = value

    def report(self) -> ClaimReport:
        """Every claim with its measurement; raises if one was never measured."""
        missing = [c for c in self.registry.claims if c not in self.measured]
        if missing:
            raise ClaimError(f"{self.registry.name}: claims never measured: {missing}")
        rows = []
        for cid, claim in self.registry.claims.items():
            value = self.measured[cid]
            rows.append({
                "claim": cid,
                "text": claim.text,
                "allowed": claim.allowed(),
                "measured": _show(value),
                "holds": None if self.fast else claim.holds(value),
            })  # fmt: skip
        info = machine_info()
        report = ClaimReport(self.registry.name, self.fast, pd.DataFrame(rows), machine_line(info))
        out = os.environ.get(OUT_ENV)
        if out and not self.fast:
            payload = {
                "name": self.registry.name,
                "machine": info,
                "results": [{**r, "measured": self.measured[r["claim"]]} for r in rows],
            }
            Path(out).mkdir(parents=True, exist_ok=True)
            (Path(out) / f"{self.registry.name}.json").write_text(json.dumps(payload, indent=1))
        if not self.fast and os.environ.get(STRICT_ENV) == "1" and len(report.failures):
            raise ClaimError(report.headline() + "\n" + report.failures.to_string(index=False))
        return report


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.4g}" for v in value) + "]"
    return f"{value:.4g}"

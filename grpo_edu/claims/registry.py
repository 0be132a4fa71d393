"""The registry: one TOML file per document, ``claims/<stem>.toml``, listing its quoted claims.

A file looks like this (every key is checked by ``load_registry``)::

    document = "notebooks/05_clipping_and_kl.ipynb"   # the prose these claims are quoted in
    given = ["16 prompts x 8", "$\\beta = 0.04$"]     # numbers in the prose that are not results

    [[claim]]
    id = "logged_kl"                                  # [a-z][a-z0-9_]*, unique in the file
    text = "logged KL about 0.064 per token"          # verbatim in the prose (spaces normalised)
    value = 0.064                                     # the number the text quotes ...
    tol = 0.015                                       # ... and how far a run may land from it

    [[claim]]
    id = "kl_range"
    text = "between about 0.03 and 0.1"
    range = [0.03, 0.1]                               # or: lo <= measured <= hi (inf allowed)

    [[claim]]
    id = "no_target"
    text = "Neither reaches 0.90 sampled accuracy"
    holds = true                                      # or: a yes/no statement (a bool measured)

(TOML puts every key after a ``[[claim]]`` header into that claim: ``document``, ``given`` and
``sections`` come first.) ``sections`` (optional) limits the number scan to the named headings'
sections, for a long document like the README whose other numbers are not results.

Exactly one of ``value`` (with ``tol``), ``values`` (a list, one ``tol`` for all), ``range`` or
``holds`` per claim. A ``value`` or ``range`` claim about several things at once ("both reach
about 0.85") is measured as a list: each measurement must hold. ``tol`` is the claim's honesty budget: it must cover what a rerun on another
machine or with another seed gives (the last digits vary between CPU builds), so a claim that
needs a tighter one is a claim the prose should not make.
"""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
CLAIMS_DIR = ROOT / "claims"
"""Where the registry files live: ``claims/<document stem>.toml``."""
DIR_ENV = "GRPO_EDU_CLAIMS_DIR"
"""Environment variable naming another registry folder (the runner passes its own to kernels)."""


def claims_dir() -> Path:
    """``$GRPO_EDU_CLAIMS_DIR`` if set, else ``CLAIMS_DIR``."""
    return Path(os.environ.get(DIR_ENV) or CLAIMS_DIR)


ID = re.compile(r"[a-z][a-z0-9_]*")
KINDS = ("value", "values", "range", "holds")
KEYS = {"id", "text", "tol", "note", *KINDS}


class ClaimError(ValueError):
    """A registry file, or the measurements given for it, is malformed or incomplete."""


@dataclass(frozen=True)
class Claim:
    """One statement of the prose and the measured value it stands for."""

    id: str
    text: str
    """The sentence fragment as it appears in the document."""
    kind: str
    """``"value"``, ``"values"``, ``"range"`` or ``"holds"``."""
    expected: object
    """The quoted number, list of numbers, ``(lo, hi)``, or the bool the statement asserts."""
    tol: float | None = None
    """Allowed absolute distance for ``value`` and ``values``."""
    note: str = ""

    def allowed(self) -> str:
        """What a measurement must satisfy, as text."""
        if self.kind == "value":
            return f"{self.expected:g} ± {self.tol:g}"
        if self.kind == "values":
            return "[" + ", ".join(f"{v:g}" for v in self.expected) + f"] ± {self.tol:g}"
        if self.kind == "range":
            lo, hi = self.expected
            return f"{lo:g} .. {hi:g}"
        return "true" if self.expected else "false"

    def check_type(self, measured: object, strict: bool = True) -> None:
        """Raise ``ClaimError`` unless ``measured`` has the shape this claim needs.

        ``strict=False`` (FAST mode, whose shortened runs may leave a value missing or a list
        shorter) checks only the kind: a bool, or a number or list of numbers.
        """
        if self.kind == "holds":
            if not isinstance(measured, bool):
                raise ClaimError(f"claim {self.id!r}: measure a bool, got {measured!r}")
            return
        numbers = list(measured) if isinstance(measured, list | tuple) else [measured]
        for x in numbers:
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise ClaimError(f"claim {self.id!r}: measure a number, got {x!r}")
        if not strict:
            return
        if self.kind == "values" and len(numbers) != len(self.expected):
            raise ClaimError(
                f"claim {self.id!r}: {len(self.expected)} values quoted, {len(numbers)} measured"
            )
        for x in numbers:
            if not math.isfinite(float(x)):
                raise ClaimError(f"claim {self.id!r}: measured value is not finite: {x!r}")

    def holds(self, measured: object) -> bool:
        """Whether the measurement supports the statement."""
        self.check_type(measured)
        if self.kind == "holds":
            return measured is self.expected
        got = [float(x) for x in (measured if isinstance(measured, list | tuple) else [measured])]
        if self.kind == "range":
            lo, hi = self.expected
            return all(lo <= x <= hi for x in got)
        quoted = self.expected if self.kind == "values" else [self.expected] * len(got)
        slack = 1e-9 * (1 + max(abs(q) for q in quoted))
        return all(abs(x - q) <= self.tol + slack for q, x in zip(quoted, got, strict=True))


@dataclass(frozen=True)
class Registry:
    """The claims of one document."""

    name: str
    """The registry's stem, e.g. ``05_clipping_and_kl`` or ``README``."""
    path: Path
    document: Path
    claims: dict[str, Claim]
    given: tuple[str, ...] = field(default_factory=tuple)
    """Prose fragments whose numbers are not results (configuration, definitions, references)."""
    sections: tuple[str, ...] = field(default_factory=tuple)
    """Headings whose sections the number scan covers (empty: the whole document)."""


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaimError(f"{where}: expected a number, got {value!r}")
    if math.isnan(value):
        raise ClaimError(f"{where}: NaN is not a claim")
    return float(value)


def _claim(entry: dict, where: str) -> Claim:
    unknown = set(entry) - KEYS
    if unknown:
        raise ClaimError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(KEYS)})")
    cid = entry.get("id")
    if not isinstance(cid, str) or not ID.fullmatch(cid):
        raise ClaimError(f"{where}: id must match {ID.pattern}, got {cid!r}")
    where = f"{where} ({cid})"
    text = entry.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ClaimError(f"{where}: text must be the quoted prose, got {text!r}")
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise ClaimError(f"{where}: give exactly one of {KINDS}, got {kinds}")
    kind, raw = kinds[0], entry[kinds[0]]
    tol = entry.get("tol")
    if kind in ("value", "values"):
        if tol is None:
            raise ClaimError(f"{where}: {kind} needs tol (the allowed absolute distance)")
        tol = _number(tol, f"{where} tol")
        if not 0 < tol < math.inf:
            raise ClaimError(f"{where}: tol must be > 0 and finite, got {tol}")
    elif tol is not None:
        raise ClaimError(f"{where}: tol only goes with value or values")
    if kind == "value":
        expected: object = _number(raw, f"{where} value")
        if not math.isfinite(expected):
            raise ClaimError(f"{where}: value must be finite, got {raw!r}")
    elif kind == "values":
        if not isinstance(raw, list) or len(raw) < 2:
            raise ClaimError(f"{where}: values must be a list of at least 2 numbers, got {raw!r}")
        expected = tuple(_number(v, f"{where} values") for v in raw)
    elif kind == "range":
        if not isinstance(raw, list) or len(raw) != 2:
            raise ClaimError(f"{where}: range must be [lo, hi], got {raw!r}")
        lo, hi = (_number(v, f"{where} range") for v in raw)
        if not lo < hi:
            raise ClaimError(f"{where}: range needs lo < hi, got {raw!r}")
        expected = (lo, hi)
    else:
        if not isinstance(raw, bool):
            raise ClaimError(f"{where}: holds must be true or false, got {raw!r}")
        expected = raw
    note = entry.get("note", "")
    if not isinstance(note, str):
        raise ClaimError(f"{where}: note must be a string")
    return Claim(cid, " ".join(text.split()), kind, expected, tol, note)


def load_registry(path: str | Path) -> Registry:
    """Read and check one registry file (``ClaimError`` names the file, claim and key)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ClaimError(f"{path}: not valid TOML: {e}") from None
    unknown = set(data) - {"document", "claim", "given", "sections"}
    if unknown:
        raise ClaimError(f"{path}: unknown top-level keys {sorted(unknown)}")
    document = data.get("document")
    if not isinstance(document, str):
        raise ClaimError(f"{path}: document must name the file the claims are quoted in")
    entries = data.get("claim", [])
    if not isinstance(entries, list) or not entries:
        raise ClaimError(f"{path}: no [[claim]] entries")
    claims: dict[str, Claim] = {}
    for i, entry in enumerate(entries):
        claim = _claim(entry, f"{path.name} claim {i}")
        if claim.id in claims:
            raise ClaimError(f"{path.name}: id {claim.id!r} used twice")
        claims[claim.id] = claim
    given = data.get("given", [])
    if not isinstance(given, list) or not all(isinstance(g, str) and g.strip() for g in given):
        raise ClaimError(f"{path.name}: given must be a list of non-empty strings")
    sections = data.get("sections", [])
    if not isinstance(sections, list) or not all(isinstance(h, str) for h in sections):
        raise ClaimError(f"{path.name}: sections must be a list of headings")
    return Registry(
        name=path.stem,
        path=path,
        document=(ROOT / document).resolve(),
        claims=claims,
        given=tuple(" ".join(g.split()) for g in given),
        sections=tuple(sections),
    )


def registry_paths(folder: str | Path | None = None) -> list[Path]:
    """Every registry file of ``folder`` (default ``claims_dir()``), sorted by name."""
    return sorted(Path(folder or claims_dir()).glob("*.toml"))


def registry_for(name: str, folder: str | Path | None = None) -> Registry:
    """The registry of a document stem, e.g. ``registry_for("05_clipping_and_kl")``."""
    folder = Path(folder or claims_dir())
    path = folder / f"{name}.toml"
    if not path.exists():
        known = ", ".join(p.stem for p in registry_paths(folder)) or "none"
        raise ClaimError(f"no registry {path} (registries: {known})")
    return load_registry(path)

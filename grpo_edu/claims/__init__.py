"""Claims: every number the course's prose quotes is measured, and checked, by a run.

A notebook's text cannot compute anything, and notebooks are committed without outputs, so the
numbers in its prose are written by hand. Each one is registered as a *claim* in
``claims/<notebook stem>.toml`` (``registry``): the fragment of text, the number it quotes and a
tolerance (or a range, or a yes/no statement). The notebook measures each claim where it computes
it and ends with ``ClaimCheck.report()`` (``check``), which shows every claim next to today's
measurement. Three checks keep prose and results together:

1. ``static_problems`` (CI, no run needed): every registry file is well-formed, every claim's
   text is in the document and writes the quoted number, and no number of the prose is
   unaccounted for (``prose.uncovered_numbers``: a number is a claim, ``given`` or a reference).
2. FAST mode (CI executes every notebook): ``report`` raises unless the notebook measured exactly
   the registered claims, each with a value of the right kind.
3. Full mode, ``python -m grpo_edu claims`` (``run``): every notebook runs as a learner would run
   it, and each claim that no longer holds is reported, with the time the run took. The README's
   claims are measured from the shipped result files (``readme``).

A new chapter registers its claims the same way: a ``claims/NN_topic.toml`` next to the others, a
``ClaimCheck("NN_topic")`` in the notebook, and ``claims.report()`` as its last cell.
"""

from __future__ import annotations

import ast
import json

from .check import ClaimCheck, ClaimReport
from .prose import quotes, read_prose, uncovered_numbers
from .registry import (
    CLAIMS_DIR,
    Claim,
    ClaimError,
    Registry,
    load_registry,
    registry_for,
    registry_paths,
)


def static_problems(registry: Registry) -> list[str]:
    """Everything wrong with a registry and its document that can be seen without running it."""
    problems = []
    if not registry.document.exists():
        return [f"{registry.path.name}: document {registry.document} does not exist"]
    try:
        prose = read_prose(registry.document, registry.sections)
    except ValueError as e:
        return [f"{registry.path.name}: {e}"]
    full = read_prose(registry.document)
    for claim in registry.claims.values():
        if not full.find(claim.text):
            problems.append(f"{registry.name}: claim {claim.id!r}: text not in the document: "
                            f"{claim.text!r}")  # fmt: skip
        quoted = {"value": [claim.expected], "values": claim.expected}.get(claim.kind, [])
        missing = [v for v in quoted if not quotes(claim.text, v)]
        if missing:
            problems.append(f"{registry.name}: claim {claim.id!r}: text does not write "
                            f"{missing}: {claim.text!r}")  # fmt: skip
    for fragment in registry.given:
        if not full.find(fragment):
            problems.append(f"{registry.name}: given fragment not in the document: {fragment!r}")
    fragments = [c.text for c in registry.claims.values()] + list(registry.given)
    for cell, number, context in uncovered_numbers(prose, fragments):
        problems.append(f"{registry.name}: markdown cell {cell}: number {number} is neither a "
                        f"claim nor given: ...{context}...")  # fmt: skip
    if registry.document.suffix == ".md":
        from .readme import README, table_problems

        if registry.document == README.resolve():
            problems += table_problems(registry.document)
    if registry.document.suffix == ".ipynb":
        names, reports = claim_checks_in(registry.document)
        if names != [registry.name]:
            problems.append(f"{registry.name}: the notebook must create ClaimCheck("
                            f"{registry.name!r}) once, found {names}")  # fmt: skip
        if not reports:
            problems.append(f"{registry.name}: the notebook never calls .report()")
    return problems


def claim_checks_in(path) -> tuple[list[str], bool]:
    """String arguments of every ``ClaimCheck(...)`` call in a notebook's code, and whether a
    ``.report()`` call follows in its last code cell."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code"]  # fmt: skip
    names, last_reports = [], False
    for i, cell in enumerate(cells):
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        lines = ["pass" if ln.lstrip().startswith(("!", "%")) else ln for ln in source.splitlines()]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name == "ClaimCheck" and node.args and isinstance(node.args[0], ast.Constant):
                    names.append(node.args[0].value)
                if name == "report" and i == len(cells) - 1:
                    last_reports = True
    return names, last_reports


__all__ = [
    "CLAIMS_DIR",
    "Claim",
    "ClaimCheck",
    "ClaimError",
    "ClaimReport",
    "Registry",
    "claim_checks_in",
    "load_registry",
    "read_prose",
    "registry_for",
    "registry_paths",
    "static_problems",
    "uncovered_numbers",
]

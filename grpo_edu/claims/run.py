"""Run the course in full mode and check every registered claim (``python -m grpo_edu claims``).

Each notebook with a registry is executed top to bottom on a fresh kernel with
``GRPO_EDU_FAST=0``; its last cell (``ClaimCheck.report``) writes the measurements, which are
checked here against the registry. The README's claims are measured from the shipped result files
(``readme.measure_readme``). A claim fails when it does not hold, when its notebook stopped
before measuring it, or when the notebook did not measure it at all.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..machine import machine_info
from .check import OUT_ENV
from .registry import DIR_ENV, ROOT, Registry, load_registry, registry_paths


@dataclass
class DocumentRun:
    """One document's claims against one run."""

    name: str
    document: Path
    seconds: float
    results: list[dict] = field(default_factory=list)
    """One dict per claim: claim, text, allowed, measured, holds (False when not measured)."""
    error: str | None = None
    """Why the document's run stopped early (the end of the traceback), if it did."""
    load_average: tuple[float, float] = (float("nan"), float("nan"))
    """The machine's 1-minute load average when the document started and when it ended (its
    wall time depends on it)."""

    @property
    def failures(self) -> list[dict]:
        return [r for r in self.results if not r["holds"]]


@dataclass
class ClaimRun:
    documents: list[DocumentRun]
    seconds: float
    machine: dict
    fast: bool

    @property
    def n_claims(self) -> int:
        return sum(len(d.results) for d in self.documents)

    @property
    def failures(self) -> list[tuple[str, dict]]:
        return [(d.name, r) for d in self.documents for r in d.failures]

    def as_dict(self) -> dict:
        return {
            "seconds": self.seconds,
            "fast": self.fast,
            "machine": self.machine,
            "claims": self.n_claims,
            "failures": len(self.failures),
            "documents": [
                {"name": d.name, "document": _shown(d.document),
                 "seconds": d.seconds, "load_average": list(d.load_average), "error": d.error,
                 "results": d.results}
                for d in self.documents
            ],
        }  # fmt: skip


def _shown(path: Path) -> str:
    """``path`` relative to the repository when it is inside it."""
    return str(path.relative_to(ROOT)) if ROOT in path.parents else str(path)


def _execute(
    path: Path, fast: bool, out_dir: Path, timeout: int, keep: Path | None, folder: Path
) -> str | None:
    """Execute a notebook on a fresh kernel; the error text if a cell failed."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env.update({"GRPO_EDU_FAST": "1" if fast else "0", OUT_ENV: str(out_dir), DIR_ENV: str(folder)})
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3")
    error = None
    try:
        client.execute(cwd=str(path.parent), env=env)
    except Exception as e:  # a failing cell: report it, keep going with the next document
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e) or traceback.format_exc())  # no colours
        lines = [line for line in text.strip().splitlines() if line.strip()]
        error = f"{type(e).__name__}: " + " | ".join(lines[-2:])
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / path.name)
    return error


def _check(registry: Registry, measured: dict[str, object] | None, fast: bool) -> list[dict]:
    results = []
    for cid, claim in registry.claims.items():
        row = {"claim": cid, "text": claim.text, "allowed": claim.allowed()}
        if measured is None or cid not in measured:
            row.update(measured=None, holds=False, why="not measured")
        else:
            value = measured[cid]
            try:
                ok = True if fast else claim.holds(value)
                why = "" if ok else "does not hold"
            except ValueError as e:
                ok, why = False, str(e)
            row.update(measured=value, holds=ok, why=why)
        results.append(row)
    return results


def run_document(
    registry: Registry, fast: bool = False, timeout: int = 3600, keep: Path | None = None
) -> DocumentRun:  # the kernel reads the registry from the folder this one came from
    """Execute one registry's document (or measure the README) and check its claims."""
    from .readme import measure_readme

    t0, load = time.perf_counter(), os.getloadavg()[0]
    error, measured = None, None
    if registry.document.suffix == ".ipynb":
        with tempfile.TemporaryDirectory() as tmp:
            error = _execute(
                registry.document, fast, Path(tmp), timeout, keep, registry.path.parent
            )
            report = Path(tmp) / f"{registry.name}.json"
            if fast and error is None:
                measured = {cid: None for cid in registry.claims}  # FAST: ClaimCheck checked them
            elif report.exists():
                measured = {
                    r["claim"]: r["measured"] for r in json.loads(report.read_text())["results"]
                }
    else:
        try:
            measured = measure_readme()
        except (OSError, KeyError, ValueError) as e:
            error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    return DocumentRun(
        registry.name,
        registry.document,
        seconds,
        _check(registry, measured, fast),
        error,
        (load, os.getloadavg()[0]),
    )


def run_claims(
    names: list[str] | None = None,
    fast: bool = False,
    timeout: int = 3600,
    keep: Path | None = None,
    progress: bool = True,
    folder: Path | None = None,
) -> ClaimRun:
    """Run every registered document of ``folder`` (default ``claims_dir()``), or those named,
    and check its claims."""
    registries = [load_registry(p) for p in registry_paths(folder)]
    if names:
        unknown = sorted(set(names) - {r.name for r in registries})
        if unknown:
            known = ", ".join(r.name for r in registries)
            raise ValueError(f"no registry for {unknown} (registries: {known})")
        registries = [r for r in registries if r.name in names]
    t0 = time.perf_counter()
    documents = []
    bar = tqdm(registries, desc="claims", disable=not progress)
    for registry in bar:
        bar.set_postfix_str(registry.name)
        documents.append(run_document(registry, fast, timeout, keep))
    return ClaimRun(documents, time.perf_counter() - t0, machine_info(), fast)

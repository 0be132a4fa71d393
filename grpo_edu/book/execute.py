"""Execute the course notebooks for the website, each on a fresh kernel, with a cache.

A notebook is executed as ``pytest --nbmake`` does (a fresh ``python3`` kernel, the notebook's
own folder as working directory, ``GRPO_EDU_FAST`` set for the mode), and the executed copy is
kept under ``<cache>/<mode>/``. The copy is reused only while its key matches: the SHA-256 of the
notebook file, the mode, and every file of the ``grpo_edu`` package (this website builder
excepted) and of ``data/``, so editing a notebook or the library re-executes it. ``fresh=True`` never reuses.
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ..course import ROOT

PACKAGE = Path(__file__).resolve().parents[1]
CELL_TIMEOUT_S = 3600
"""Per-cell limit: a full-mode training cell takes minutes on a laptop CPU, never an hour."""


class NotebookError(RuntimeError):
    """A notebook failed while the site was built: names the notebook and the cell."""


@dataclass(frozen=True)
class Executed:
    """One executed notebook of the site."""

    source: Path
    """The committed notebook (without outputs)."""
    executed: Path
    """Its executed copy (outputs kept; under the build folder, never in git)."""
    seconds: float
    """Wall time of this build's execution (0.0 when the cached copy was reused)."""
    reused: bool
    """True when a cached copy with the same key was used instead of executing."""


def _tree_digest(paths: list[Path], skip: Path) -> str:
    """SHA-256 over the files under ``paths`` (names and bytes), ``skip`` and caches left out."""
    digest = hashlib.sha256()
    for path in paths:
        files = (p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for f in sorted(f for f in files if skip not in f.parents):
            digest.update(f.relative_to(path.parent).as_posix().encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()


def cache_key(notebook: Path, fast: bool, library_digest: str) -> str:
    """The key an executed copy is reused under: notebook bytes, mode, library and data."""
    digest = hashlib.sha256(Path(notebook).read_bytes())
    digest.update(f"fast={fast}".encode())
    digest.update(library_digest.encode())
    return digest.hexdigest()


def execute_notebook(path: Path, fast: bool, timeout: int = CELL_TIMEOUT_S):
    """``path`` executed on a fresh kernel in its own folder; the executed ``NotebookNode``.

    Widget state is stored in the notebook's metadata (nbclient's default), so the site can
    render widgets without a kernel. A failing cell raises ``NotebookError`` naming both.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, GRPO_EDU_FAST="1" if fast else "0")
    env.setdefault("OMP_NUM_THREADS", "1")  # one torch thread: see the root conftest.py
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(Path(path).parent)}},
        store_widget_state=True,
    )
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        raise NotebookError(f"{path}: a cell failed while building the site:\n{err}") from None
    return nb


def execute_all(
    notebooks: list[Path],
    cache: Path,
    fast: bool,
    fresh: bool = False,
    progress: bool = True,
    jobs: int = 1,
) -> list[Executed]:
    """Execute (or reuse) every notebook of ``notebooks``; one ``Executed`` each, in order.

    ``jobs`` kernels run at once (each notebook on its own kernel, one torch thread each): 2 on
    an idle 2-core machine about halves the time; on a busy one, 1 is as fast.
    """
    from tqdm.auto import tqdm

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive int, got {jobs!r}")
    folder = Path(cache) / ("fast" if fast else "full")
    folder.mkdir(parents=True, exist_ok=True)
    library = _tree_digest([PACKAGE, ROOT / "data"], skip=Path(__file__).parent)

    def one(path: Path) -> Executed:
        target = folder / path.relative_to(ROOT).as_posix().replace("/", "__")
        key_file = target.with_suffix(".key")
        key = cache_key(path, fast, library)
        if not fresh and target.exists() and key_file.exists() and key_file.read_text() == key:
            return Executed(path, target, 0.0, True)
        start = time.perf_counter()
        nb = execute_notebook(path, fast)
        seconds = time.perf_counter() - start
        nbformat.write(nb, target)
        key_file.write_text(key)
        return Executed(path, target, seconds, False)

    bar = tqdm(total=len(notebooks), desc="execute notebooks", unit="nb", disable=not progress)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one, path): path for path in notebooks}
        done = {}
        for future in as_completed(futures):
            done[futures[future]] = future.result()  # a NotebookError stops the build here
            bar.set_postfix_str(f"{futures[future].name} done", refresh=False)
            bar.update()
    bar.close()
    return [done[path] for path in notebooks]

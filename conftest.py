"""Collection rules for the whole repository (pytest and ``pytest --nbmake``).

- ``python -m pytest`` runs ``tests/`` (``testpaths`` in pyproject.toml).
- ``python -m pytest --nbmake notebooks`` executes every notebook under ``notebooks/`` on a
  fresh kernel, with ``GRPO_EDU_FAST=1`` unless the environment already sets it
  (``GRPO_EDU_FAST=0 python -m pytest --nbmake --nbmake-timeout=600 notebooks`` for full mode).
- Never collected as notebooks to execute: the student exercise notebooks (their blanks raise
  ``NotImplementedError`` on purpose) and the grader's fixture submissions (broken on purpose).
  ``tests/test_exercises.py`` and ``tests/test_notebooks.py`` still read both as files.
- ``OMP_NUM_THREADS=1`` unless set: see below.
"""

import os

# One torch thread per process (tests and the notebook kernels they start inherit it): the tensors
# here are tiny, and two threads spin-waiting on two shared cores made steps up to 20x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

collect_ignore_glob = [
    "notebooks/exercises/student/*",
    "tests/fixtures/*",
]


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "browser: drives JupyterLab in a headless Chromium (tests/test_browser.py)"
    )
    if config.getoption("nbmake", default=False):
        os.environ.setdefault("GRPO_EDU_FAST", "1")  # inherited by the notebook kernels

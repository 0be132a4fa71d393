"""Helpers for the course notebooks: where the repository lives, Colab badges, showing source.

The repository location is set once, here (``REPOSITORY``): the "Open in Colab" badge of every
notebook and its Colab install cell are derived from it, and ``tests/test_notebooks.py`` checks
that each notebook's badge points at the notebook's own path.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

REPOSITORY = "grpo-edu/grpo_edu"
"""GitHub ``owner/name`` of the course repository: the one setting badges and installs use."""
BRANCH = "main"
ROOT = Path(__file__).resolve().parent.parent


def fast_mode() -> bool:
    """True when ``GRPO_EDU_FAST=1``: notebooks shrink their runs (CI executes them this way)."""
    return os.environ.get("GRPO_EDU_FAST", "0").strip().lower() in ("1", "true", "yes")


def colab_url(notebook_path: str | Path) -> str:
    """Colab link of a notebook given its path relative to the repository root."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{Path(notebook_path).as_posix()}"


def badge_markdown(notebook_path: str | Path) -> str:
    """The "Open in Colab" badge, as the first line of the notebook's first cell."""
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(notebook_path)})"
    )


COLAB_INSTALL_CELL = f"""\
# Runs only in Google Colab: fetch the course and install it (Colab's own torch is kept).
import sys
if "google.colab" in sys.modules:
    !git clone -q --depth 1 https://github.com/{REPOSITORY}.git /content/grpo_edu
    %pip install -q -e /content/grpo_edu
    sys.path.insert(0, "/content/grpo_edu")  # pip's install is seen only after a restart
    %cd /content/grpo_edu/notebooks"""
"""The first code cell of every notebook (torch>=2.2 is already satisfied in Colab).

``sys.path.insert``: an editable install is a ``.pth`` file, which Python reads only at
start-up, so without it ``import grpo_edu`` fails in the running kernel (the
``tests/test_colab.py`` run of this cell in a fresh kernel showed it)."""


def show_source(obj) -> object:
    """The library's own source of ``obj``, syntax-highlighted in Jupyter (never a pasted copy)."""
    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")

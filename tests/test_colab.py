"""What a Colab user gets: the badge's URL, and the install cell run in a real kernel.

The install-cell test simulates a fresh Colab runtime: a kernel on an interpreter where grpo_edu
is not installed (only its dependencies, as Colab ships them), a ``google.colab`` module, and
``/content`` as a temporary folder; the cell clones this checkout's committed HEAD instead of
GitHub. It runs where grpo_edu is not installed, i.e. in ``.ci/old_versions.sh``'s environment
(elsewhere it skips: its ``pip install`` would replace the environment's own grpo_edu).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest

from grpo_edu.course import BRANCH, COLAB_INSTALL_CELL, REPOSITORY, badge_markdown, colab_url

ROOT = Path(__file__).resolve().parents[1]
COURSE = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GITHUB_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


def tracked(path: str) -> bool:
    """True when git tracks ``path`` (what GitHub, and so Colab, can serve)."""
    done = subprocess.run(
        ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, text=True
    )
    return done.returncode == 0


def test_repository_is_a_github_name():
    assert GITHUB_NAME.fullmatch(REPOSITORY), f"REPOSITORY={REPOSITORY!r} is not owner/name"


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_badge_opens_this_notebook_in_colab(path):
    """Colab opens ``/github/<owner>/<name>/blob/<branch>/<path>``: the file must be that path,
    tracked (GitHub serves only committed files), and the badge image Colab's own."""
    rel = path.relative_to(ROOT).as_posix()
    url = urlsplit(colab_url(rel))
    assert (url.scheme, url.netloc, url.query, url.fragment) == (
        "https", "colab.research.google.com", "", ""
    )  # fmt: skip
    parts = url.path.split("/")
    assert parts[:6] == ["", "github", *REPOSITORY.split("/"), "blob", BRANCH]
    assert "/".join(parts[6:]) == rel
    if (ROOT / ".git").exists():
        assert tracked(rel), f"{rel} is not committed: Colab's link would be a 404"
    badge = badge_markdown(rel)
    assert badge.startswith(
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
    )
    assert badge.endswith(f"({colab_url(rel)})")


def test_install_cell_clones_the_badges_repository():
    clone = re.search(r"git clone -q --depth 1 (\S+) (\S+)", COLAB_INSTALL_CELL)
    assert clone and clone[1] == f"https://github.com/{REPOSITORY}.git"
    assert 'if "google.colab" in sys.modules:' in COLAB_INSTALL_CELL  # a no-op outside Colab


def _grpo_edu_installed() -> bool:
    try:
        importlib.metadata.distribution("grpo_edu")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.skipif(
    _grpo_edu_installed(),
    reason="grpo_edu is installed here; the simulated Colab runtime runs in .ci/old_versions.sh",
)
def test_install_cell_in_a_fresh_colab_runtime(tmp_path):
    """The install cell, then the course's imports, in one kernel: a Colab user runs them so."""
    from nbclient import NotebookClient

    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout to clone from")
    content, fake, ipython = tmp_path / "content", tmp_path / "fake_colab", tmp_path / "ipython"
    (fake / "google" / "colab").mkdir(parents=True)
    (fake / "google" / "__init__.py").write_text("")
    (fake / "google" / "colab" / "__init__.py").write_text("")
    startup = ipython / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab\n")  # Colab's kernel imports it
    content.mkdir()
    cell = COLAB_INSTALL_CELL.replace(f"https://github.com/{REPOSITORY}.git", ROOT.as_uri())
    cell = cell.replace("/content", str(content))
    check = (
        "import os, google.colab, grpo_edu\n"
        "from grpo_edu import widgets\n"
        "from grpo_edu.models import load_policy\n"
        "model, tokenizer = load_policy('add2')\n"
        "explorer = widgets.clip_explorer()\n"
        "print('FILE', grpo_edu.__file__)\n"
        "print('CWD', os.getcwd())\n"
        "print('PNG', explorer.image.value[:4] == b'\\x89PNG')"
    )
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(cell), nbformat.v4.new_code_cell(check)]
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(fake)  # google.colab importable; the checkout is not
    env["IPYTHONDIR"] = str(ipython)
    try:
        client = NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True)
        client.execute(cwd=str(tmp_path), env=env)
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-q", "-y", "grpo_edu"])
    text = "".join(o.get("text", "") for cell in nb.cells for o in cell.outputs)
    clone = content / "grpo_edu"
    errors = [o for cell in nb.cells for o in cell.outputs if o.output_type == "error"]
    assert not errors, f"{errors[0].ename}: {errors[0].evalue}\n{text}"
    assert f"FILE {clone / 'grpo_edu' / '__init__.py'}" in text, text
    assert f"CWD {clone / 'notebooks'}" in text and "PNG True" in text, text

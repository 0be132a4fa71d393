#!/usr/bin/env bash
# Colab as it is: an environment with the oldest versions pyproject.toml declares
# (.ci/old_versions.txt), where grpo_edu itself is NOT installed, as on a fresh Colab runtime.
# It runs the widget tests, the Colab tests (the badge URLs, and the install cell executed in a
# real kernel: clone, pip install, import) and one course notebook (FAST mode).
#   bash .ci/old_versions.sh            # builds .venv-old/ (once) and runs the tests
# Set OLD_VENV to put the environment elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${OLD_VENV:-.venv-old}"
start=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
. "$VENV/bin/activate"
python -m pip install -q torch==2.13.0
python -m pip install -q -r .ci/old_versions.txt
# test tools only; the course's dependencies stay at the pins above (pip would not upgrade them)
python -m pip install -q "pytest>=8.0" "nbmake>=1.5" "nbformat>=5.9" "nbclient>=0.10" \
    "ipykernel>=6.0" -c .ci/old_versions.txt
python -m pip uninstall -q -y grpo_edu 2>/dev/null || true  # as on Colab: not installed
python - <<'PY'
import importlib.metadata as md
names = ["torch", "ipywidgets", "transformers", "tokenizers", "pandas", "matplotlib", "numpy"]
print("old-versions environment: " + ", ".join(f"{n} {md.version(n)}" for n in names))
PY
echo "environment ready in $(( $(date +%s) - start )) s"
export PYTHONPATH="$PWD"  # the tests import the checkout; the Colab test's kernel does not
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" GRPO_EDU_FAST=1
python -m pytest -q -p no:cacheprovider tests/test_widgets.py tests/test_colab.py
python -m pytest -q -p no:cacheprovider --nbmake --nbmake-timeout=600 notebooks/05_clipping_and_kl.ipynb
echo "old-versions check done in $(( $(date +%s) - start )) s"

"""The nbgrader route works on the instructor notebooks as they are: generate_assignment,
autograde of a correct, a wrong and an untouched submission, export of the grades.

One subprocess drives nbgrader's own API on a course folder in tmp_path (notebook 02, two
1-point exercises); its kernel imports this checkout of grpo_edu. nbgrader runs the check cells
inside the student's kernel, so this route is the honest path only: for a class that may cheat,
``python -m grpo_edu.exercises grade`` is the grader (see test_grading_hostile.py).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grpo_edu.exercises.grade import PACKAGE_ROOT
from grpo_edu.exercises.hints import NOTEBOOK_DIR

pytest.importorskip("nbgrader")

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
ROUTE = r"""
import sys
from pathlib import Path

import nbformat
from nbgrader.apps import ExportApp, NbGraderAPI
from traitlets.config import Config

root, fixtures = Path(sys.argv[1]), Path(sys.argv[2])
config = Config()
config.CourseDirectory.root = str(root)
config.CourseDirectory.course_id = "grpo_edu"
config.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
api = NbGraderAPI(config=config)
assert api.generate_assignment("ex02")["success"]


def solutions(student):
    nb = nbformat.read(fixtures / student / "02_advantages.ipynb", as_version=4)
    return {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nb.cells}


for student, source in [("alice", "alice_correct"), ("bob", "bob_wrong"), ("carl", None)]:
    nb = nbformat.read(root / "release" / "ex02" / "02_advantages.ipynb", as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if source and meta.get("solution"):
            cell.source = solutions(source)[meta["grade_id"]]
    folder = root / "submitted" / student / "ex02"
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / "02_advantages.ipynb")
    result = api.autograde("ex02", student, create=True)
    assert result["success"], result.get("error")
app = ExportApp(config=config)
app.initialize([])
app.start()
"""


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "source" / "ex02").mkdir(parents=True)
    (root / "source" / "ex02" / "02_advantages.ipynb").write_bytes(
        (NOTEBOOK_DIR / "02_advantages.ipynb").read_bytes()
    )
    env = {**os.environ, "PYTHONPATH": PACKAGE_ROOT, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", ROUTE, str(root), str(FIXTURES)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_release_locks_cells_like_our_student_build(course):
    import nbformat

    from grpo_edu.exercises.build import STUDENT_DIR
    from grpo_edu.exercises.notebook import grade_id

    release = nbformat.read(course / "release" / "ex02" / "02_advantages.ipynb", as_version=4)
    ours = nbformat.read(STUDENT_DIR / "02_advantages.ipynb", as_version=4)

    def locks(nb):
        meta = {grade_id(c): c.metadata for c in nb.cells if grade_id(c)}
        return {g: (m.get("editable"), m.get("deletable")) for g, m in meta.items()}

    assert locks(release) == locks(ours)
    assert "BEGIN SOLUTION" not in "".join(c.source for c in release.cells)


def test_autograde_and_export_give_the_right_marks(course):
    with open(course / "grades.csv", newline="") as f:
        scores = {
            r["student_id"]: (float(r["score"]), float(r["max_score"])) for r in csv.DictReader(f)
        }
    assert scores == {"alice": (2.0, 2.0), "bob": (0.0, 2.0), "carl": (0.0, 2.0)}

"""Hostile submissions: each is graded as it should be, and nobody else's grade moves.

One class is graded once (module fixture): two honest students (alice: correct, bob: wrong)
and one student per attack, all on notebook 02 (two 1-point exercises), two at a time. Each
attack is built from alice's or bob's notebook by editing cells, so the table below says what
its real code earns: wrong code that cheats must still get 0 (or be flagged), right code that
also attacks the grader gets its points, and the run must survive all of it. Then: alice and
bob get exactly their grades, no file outside the sandboxes changed, no sandbox process is
left. Attacks that only full isolation stops (root, Linux namespaces) are skipped without it.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

from grpo_edu.exercises.grade import PACKAGE_ROOT, UID_BASE, grade
from grpo_edu.exercises.notebook import grade_id
from grpo_edu.exercises.sandbox import Limits

FIXTURES = Path(__file__).parent / "fixtures" / "submissions"
NB = "02_advantages.ipynb"
LIMITS = Limits(timeout=40, cell_timeout=8, grace=2)
TAG = f"grpo_edu_hostile_{os.getpid()}"
"""Part of the name of every file an attack tries to create outside its sandbox."""


def _source(student: str, gid: str) -> str:
    nb = nbformat.read(FIXTURES / student / NB, as_version=4)
    return next(c.source for c in nb.cells if grade_id(c) == gid)


RIGHT = {g: _source("alice_correct", g) for g in ("group_advantages", "rloo_advantages")}
WRONG = {g: _source("bob_wrong", g) for g in ("group_advantages", "rloo_advantages")}
WRONG_GA = "population std (ddof=0"
WRONG_RLOO = "includes r_i itself"


def _build(base: dict, before: dict | None = None, after: dict | None = None, edit=None):
    """alice's notebook with solutions ``base``, extra cells before/after given grade_ids."""
    nb = nbformat.read(FIXTURES / "alice_correct" / NB, as_version=4)
    cells = []
    for cell in nb.cells:
        gid = grade_id(cell)
        cells += [nbformat.v4.new_code_cell(s) for s in (before or {}).get(gid, [])]
        cell = copy.deepcopy(cell)
        if gid in base:
            cell.source = base[gid]
        cells.append(cell)
        cells += [nbformat.v4.new_code_cell(s) for s in (after or {}).get(gid, [])]
    nb.cells = cells
    if edit:
        edit(nb)
    return nb


def _with(solutions: dict, extra: dict) -> dict:
    return {g: solutions[g] + "\n\n" + extra.get(g, "") for g in solutions}


REDEFINE = {
    "group_advantages": "def check_group_advantages(fn, **kwargs):\n    print('✓ all match')",
    "rloo_advantages": "def check_rloo_advantages(fn, **kwargs):\n    print('✓ all match')",
}
PATCH_EXERCISES = (
    "import grpo_edu.exercises as ex\n"
    "ex.check_group_advantages = ex.check_rloo_advantages = lambda fn, **kw: None"
)
PATCH_CHECK = 'check_group_advantages.__globals__["run_check"] = lambda *a, **k: None'
PATCH_FEEDBACK = (
    'judge_module = check_group_advantages.__globals__["run_check"].__globals__\n'
    'judge_module["value_problem"] = lambda *a, **k: None'
)
REPLACE_REFERENCE = 'check_rloo_advantages.__globals__["lib"].rloo_advantages = rloo_advantages'
TRANSFORMER = (
    "get_ipython().input_transformers_cleanup.append(\n"
    "    lambda lines: [] if any('check_' in line for line in lines) else lines)"
)
KILL = (
    "import os, signal\n"
    "for pid in (os.getppid(), -1, 0):\n"
    "    try:\n"
    "        os.kill(pid, signal.SIGKILL)\n"
    "    except OSError:\n"
    "        pass"
)
SUBMISSIONS = "{submissions}"  # filled in by the fixture
READ_OTHERS = (
    "import glob\n"
    "name = '02_advantages.' + 'ipy' + 'nb'\n"
    "found = glob.glob('../*/' + name) + glob.glob({submissions!r} + '/*/' + name)\n"
    "for path in found:\n"
    "    stolen = open(path).read()  # a classmate's solutions...\n"
    "    open(path, 'w').write('{{}}')  # ...and their notebook wrecked\n"
    "print('found', found)"
)
WRITE_OUTSIDE = (
    "import os\n"
    "targets = [{repo!r} + '/{tag}', '/tmp/{tag}', '/var/tmp/{tag}', '/dev/shm/{tag}',\n"
    "           os.path.expanduser('~/../{tag}'), {submissions!r} + '/alice_correct/{tag}',\n"
    "           {submissions!r} + '/alice_correct/02_advantages.' + 'ipy' + 'nb',\n"
    "           {repo!r} + '/grpo_edu/exercises/__init__.py']\n"
    "for path in targets:\n"
    "    try:\n"
    "        with open(path, 'a') as f:\n"
    "            f.write('hacked')\n"
    "    except OSError as err:\n"
    "        print(path, err)"
)
MEMORY = (
    "try:\n"
    "    big = bytearray(3 * 2**30)\n"
    "    ALLOCATED = True\n"
    "except MemoryError:\n"
    "    ALLOCATED = False"
)
HANG = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass"
FORK_BOMB = "import os\nwhile True:\n    os.fork()"
FORGE = (
    "import os\n"
    "for fd in range(3, 64):\n"
    "    try:\n"
    "        os.write(fd, b'\\xff' * 64)\n"
    "    except OSError:\n"
    "        pass"
)
LINK_CHECK = (
    "import os\nif os.path.lexists('leak'):\n    raise RuntimeError('the link came through')"
)
GA, RL, GAT = "group_advantages", "rloo_advantages", "group_advantages_tests"

ATTACKS = {  # student -> (notebook builder, {exercise: (status, points, fragment)}, full only)
    "redefine_checks": (
        lambda: _build(_with(WRONG, REDEFINE)),
        {GA: ("graded", 0, WRONG_GA), RL: ("graded", 0, WRONG_RLOO)},
        False,
    ),
    "patch_exercises_before_setup": (
        lambda: _build(WRONG, before={"setup": [PATCH_EXERCISES]}),
        {GA: ("flagged", 0, WRONG_GA), RL: ("flagged", 0, WRONG_RLOO)},
        False,
    ),
    "patch_check_internals": (
        lambda: _build(_with(WRONG, {GA: PATCH_CHECK})),
        {GA: ("graded", 0, WRONG_GA), RL: ("graded", 0, WRONG_RLOO)},
        False,
    ),
    "patch_feedback_internals": (
        lambda: _build(_with(WRONG, {GA: PATCH_FEEDBACK})),
        {GA: ("graded", 0, WRONG_GA), RL: ("graded", 0, WRONG_RLOO)},
        False,
    ),
    "replace_library_reference": (
        lambda: _build({GA: RIGHT[GA], RL: WRONG[RL] + "\n\n" + REPLACE_REFERENCE}),
        {GA: ("graded", 1, ""), RL: ("graded", 0, WRONG_RLOO)},
        False,
    ),
    "input_transformer": (
        lambda: _build(WRONG, after={"setup": [TRANSFORMER]}),
        {GA: ("flagged", 0, "drives IPython"), RL: ("flagged", 0, WRONG_RLOO)},
        False,
    ),
    "import_reference": (
        lambda: _build(
            {
                GA: "from grpo_edu.advantages import group_advantages",
                RL: "from grpo_edu.advantages import rloo_advantages",
            }
        ),
        {GA: ("flagged", 0, "the checks alone: passed"), RL: ("flagged", 0, "imports")},
        False,
    ),
    "kill_the_grader": (
        lambda: _build(RIGHT, after={"setup": [KILL]}),
        {GA: ("graded", 1, ""), RL: ("graded", 1, "")},
        True,
    ),
    "read_other_students": (
        lambda: _build(WRONG, after={"setup": [READ_OTHERS]}),
        {GA: ("graded", 0, WRONG_GA), RL: ("graded", 0, WRONG_RLOO)},
        True,
    ),
    "read_other_students_plainly": (
        lambda: _build(WRONG, after={"setup": ["open('../alice_correct/02_advantages.ipynb')"]}),
        {GA: ("flagged", 0, "reads a notebook"), RL: ("flagged", 0, "reads a notebook")},
        False,
    ),
    "write_outside": (
        lambda: _build(RIGHT, after={"setup": [WRITE_OUTSIDE]}),
        {GA: ("graded", 1, ""), RL: ("graded", 1, "")},
        True,
    ),
    "symlink_in_folder": (
        lambda: _build(_with(RIGHT, {GA: LINK_CHECK})),
        {GA: ("graded", 1, ""), RL: ("graded", 1, "")},
        False,
    ),
    "memory_3gb": (
        lambda: _build(
            _with(RIGHT, {GA: "assert not ALLOCATED, '3 GB allocated'"}),
            before={GA: [MEMORY]},
        ),
        {GA: ("graded", 1, ""), RL: ("graded", 1, "")},
        False,
    ),
    "print_50mb": (
        lambda: _build(RIGHT, after={"setup": ["print('x' * 50_000_000)"]}),
        {GA: ("graded", 1, ""), RL: ("graded", 1, "")},
        False,
    ),
    "hang_ignoring_sigint": (
        lambda: _build(RIGHT, after={GAT: [HANG]}),
        {GA: ("graded", 1, ""), RL: ("timed out", 0, "ignored its interrupt")},
        False,
    ),
    "fork_bomb": (
        lambda: _build(RIGHT, after={"setup": [FORK_BOMB]}),
        {GA: ("graded", 1, ""), RL: ("graded", 1, "")},
        True,
    ),
    "forge_result_channel": (
        lambda: _build(RIGHT, after={GAT: [FORGE]}),
        {GA: ("graded", 1, ""), RL: ("crashed", 0, "malformed frame")},
        False,
    ),
    "exit_midway": (
        lambda: _build(RIGHT, after={GAT: ["import os\nos._exit(3)"]}),
        {GA: ("graded", 1, ""), RL: ("crashed", 0, "exit code 3")},
        False,
    ),
}
FILES = {  # student -> what is in the folder instead of a notebook
    "not_json": {GA: ("unreadable", 0, "not a readable notebook"), RL: ("unreadable", 0, "")},
    "symlinked_notebook": {GA: ("unreadable", 0, "symbolic link"), RL: ("unreadable", 0, "")},
    "symlinked_folder": {GA: ("unreadable", 0, "symbolic link"), RL: ("unreadable", 0, "")},
}
HONEST = {
    "alice_correct": {GA: ("graded", 1, ""), RL: ("graded", 1, "")},
    "bob_wrong": {GA: ("graded", 0, WRONG_GA), RL: ("graded", 0, WRONG_RLOO)},
}


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "uid=,pid=,args="], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if UID_BASE < int(line.split()[0]) < UID_BASE + 100]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    subs = root / "submissions"
    for name in HONEST:
        shutil.copytree(FIXTURES / name, subs / name)
    fill = {"submissions": str(subs), "repo": PACKAGE_ROOT, "tag": TAG}
    for name, (build, _, _) in ATTACKS.items():
        (subs / name).mkdir(parents=True)
        nb = build()
        for cell in nb.cells:
            if "{submissions" in cell.source or "{repo" in cell.source:
                cell.source = cell.source.format(**fill)
        nbformat.write(nb, subs / name / NB)
    os.symlink(subs / "alice_correct" / NB, subs / "symlink_in_folder" / "leak")
    (subs / "not_json").mkdir()
    (subs / "not_json" / NB).write_bytes(b"\x00\x01 PK not a notebook \xff")
    (subs / "symlinked_notebook").mkdir()
    os.symlink(subs / "alice_correct" / NB, subs / "symlinked_notebook" / NB)
    os.symlink(subs / "alice_correct", subs / "symlinked_folder")
    before = {"subs": _digest(subs), "package": _digest(Path(PACKAGE_ROOT) / "grpo_edu")}
    run = grade(subs, root / "grades.csv", limits=LIMITS, jobs=2, seed=1234)
    if os.environ.get("GRPO_EDU_KEEP_GRADES"):  # to read the table (the report's)
        shutil.copy(root / "grades.csv", os.environ["GRPO_EDU_KEEP_GRADES"])
    with open(root / "grades.csv", newline="") as f:
        table = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    after = {"subs": _digest(subs), "package": _digest(Path(PACKAGE_ROOT) / "grpo_edu")}
    return run, table, before, after


def _expect(graded, student, expected):
    _, table, _, _ = graded
    for exercise, (status, points, fragment) in expected.items():
        row = table[student, exercise]
        got = (row["status"], float(row["points"]))
        assert got == (status, points) and fragment in row["reason"], (student, exercise, row)


@pytest.mark.parametrize("student", list(ATTACKS))
def test_attack_is_graded_as_its_real_code_earns(graded, student):
    run = graded[0]
    if ATTACKS[student][2] and run.isolation != "full":
        pytest.skip(f"needs full isolation (here: {run.note})")
    _expect(graded, student, ATTACKS[student][1])


@pytest.mark.parametrize("student", list(FILES))
def test_unreadable_submissions(graded, student):
    _expect(graded, student, FILES[student])


def test_honest_students_keep_their_grades(graded):
    for student, expected in HONEST.items():
        _expect(graded, student, expected)


def test_the_run_survived_and_wrote_every_row(graded):
    run, table, _, _ = graded
    students = set(HONEST) | set(ATTACKS) | set(FILES)
    assert {s for s, _ in table} == students and len(table) == 2 * len(students)
    assert run.graded == len(students)


def test_nothing_written_outside_the_sandboxes(graded):
    run, _, before, after = graded
    if run.isolation != "full":
        pytest.skip(f"needs full isolation (here: {run.note})")
    assert after == before  # no submission and no library file changed, none appeared
    for place in (Path(PACKAGE_ROOT), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
        assert not list(place.glob(f"{TAG}*")), place
    assert not _sandbox_processes()


def test_a_hang_costs_its_cell_budget_not_the_notebook(graded):
    _, table, _, _ = graded
    seconds = float(table["hang_ignoring_sigint", RL]["seconds"])
    assert seconds < LIMITS.cell_timeout + LIMITS.grace + 15 < LIMITS.timeout


# ------------------------------------------------- the same walls for a grader that is not root
USER_LEVEL = ("alice_correct", "kill_the_grader", "write_outside", "read_other_students")


@pytest.fixture(scope="module")
def graded_user(tmp_path_factory):
    """A few of the attacks again, in an unprivileged user namespace (``isolation="user"``)."""
    root = tmp_path_factory.mktemp("hostile_user")
    subs = root / "submissions"
    shutil.copytree(FIXTURES / "alice_correct", subs / "alice_correct")
    fill = {"submissions": str(subs), "repo": PACKAGE_ROOT, "tag": TAG}
    for name in USER_LEVEL[1:]:
        (subs / name).mkdir(parents=True)
        nb = ATTACKS[name][0]()
        for cell in nb.cells:
            if "{submissions" in cell.source or "{repo" in cell.source:
                cell.source = cell.source.format(**fill)
        nbformat.write(nb, subs / name / NB)
    before = _digest(subs), _digest(Path(PACKAGE_ROOT) / "grpo_edu")
    try:
        run = grade(subs, root / "grades.csv", limits=LIMITS, jobs=2, isolation="user")
    except RuntimeError as err:  # no unprivileged user namespaces here
        pytest.skip(str(err))
    with open(root / "grades.csv", newline="") as f:
        table = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    after = _digest(subs), _digest(Path(PACKAGE_ROOT) / "grpo_edu")
    return run, table, before, after


def test_user_namespace_isolation_holds_the_same_walls(graded_user):
    run, table, before, after = graded_user
    assert run.isolation == "user"
    for student in USER_LEVEL:
        expected = HONEST.get(student) or ATTACKS[student][1]
        _expect(graded_user, student, expected)
    assert after == before
    for place in (Path(PACKAGE_ROOT), Path("/tmp"), Path("/var/tmp"), Path("/dev/shm")):
        assert not list(place.glob(f"{TAG}*")), place

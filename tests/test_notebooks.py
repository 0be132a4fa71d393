"""Static checks of the committed notebooks (no kernel is started; executing them is
``pytest --nbmake notebooks``, and ``tests/test_browser.py`` drives one in a real browser).

Course notebooks are ``notebooks/NN_topic.ipynb``; the exercise notebooks under
``notebooks/exercises/`` (instructor and student versions) are checked only for what applies to
every notebook: file name, no outputs, the library imported.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from functools import cache
from pathlib import Path

import nbformat
import pytest

import grpo_edu
from grpo_edu.course import COLAB_INSTALL_CELL, badge_markdown, colab_url

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
COURSE = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
"""The course notebooks, in order."""
ALL = sorted(p for p in NOTEBOOK_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
"""Every committed notebook: the course and the exercises (instructor and student versions)."""
EXPECTED_NUMBERS = [f"{n:02d}" for n in range(10)]
"""The course is notebooks 00 to 07 (issue 4), 08, the reasoning chapter (issue 15), and 09, the
unified paradigm (issue 10)."""
NAME = re.compile(r"\d\d_[a-z0-9]+(_[a-z0-9]+)*\.ipynb")
CELL_MAGICS_WITH_PYTHON_BODY = {"time", "timeit", "capture", "prun"}


def rel(path: Path) -> str:
    """Path relative to the repository root, as the badge and Colab link spell it."""
    return path.relative_to(ROOT).as_posix()


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def code_cells(nb: nbformat.NotebookNode) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def python_source(source: str) -> str:
    """A code cell's source with IPython syntax made plain Python, line numbers kept.

    ``!cmd`` and ``%magic`` lines become ``pass`` (same indentation, so an ``if`` around them
    still parses), ``x = !cmd`` becomes ``x = None``; a cell magic whose body is not Python
    (``%%bash``, ...) gives an empty source.
    """
    lines = source.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):
        magic = lines[0].lstrip()[2:].split(maxsplit=1)[0] if lines[0].strip() != "%%" else ""
        if magic not in CELL_MAGICS_WITH_PYTHON_BODY:
            return ""
        lines = ["pass", *lines[1:]]
    out = []
    for line in lines:
        stripped = line.lstrip()
        indent = line[: len(line) - len(stripped)]
        if stripped.startswith(("!", "%")):
            out.append(indent + "pass")
        elif m := re.match(r"([\w.,\[\] ]+?)\s*=\s*[!%]", stripped):
            out.append(f"{indent}{m.group(1)} = None")
        else:
            out.append(line)
    return "\n".join(out)


def parse(path: Path, index: int, cell) -> ast.Module:
    try:
        return ast.parse(python_source(cell.source), filename=f"{rel(path)}[cell {index}]")
    except SyntaxError as err:
        error = err
    pytest.fail(f"{rel(path)}: code cell {index} is not valid Python: {error}")


def trees(path: Path) -> list[tuple[int, ast.Module]]:
    """(index in nb.cells, AST) of every code cell."""
    nb = read(path)
    return [(i, parse(path, i, c)) for i, c in enumerate(nb.cells) if c.cell_type == "code"]


@cache
def library_names() -> dict[str, str]:
    """Public names of the functions and classes defined in grpo_edu -> where they are defined.

    Every module of the package is imported (``pkgutil.walk_packages``) and its public
    attributes that are functions or classes defined in grpo_edu are collected, re-exports
    included. ``__main__`` modules are skipped: importing them runs the command line.
    """
    modules = [grpo_edu]
    for info in pkgutil.walk_packages(grpo_edu.__path__, prefix="grpo_edu."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            modules.append(importlib.import_module(info.name))
    names: dict[str, str] = {}
    for module in modules:
        for name, obj in vars(module).items():
            defined_here = getattr(obj, "__module__", None) or ""
            if (
                not name.startswith("_")
                and (inspect.isfunction(obj) or inspect.isclass(obj))
                and defined_here.split(".")[0] == "grpo_edu"
            ):
                names.setdefault(name, f"{defined_here}.{obj.__qualname__}")
    return names


def definitions(tree: ast.Module):
    """(name, line, how) of every ``def``, ``class`` and ``name = lambda`` in a cell."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.lineno, "def"
        elif isinstance(node, ast.ClassDef):
            yield node.name, node.lineno, "class"
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr) and isinstance(
            node.value, ast.Lambda
        ):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        yield name.id, node.lineno, "lambda"


# ------------------------------------------------------------------------- the course exists
def test_course_notebooks_found():
    assert COURSE, f"no course notebooks notebooks/NN_topic.ipynb in {NOTEBOOK_DIR}"


def test_all_course_notebooks_exist():
    """The product: the notebooks of EXPECTED_NUMBERS, one per number."""
    by_number: dict[str, list[str]] = {}
    for path in COURSE:
        by_number.setdefault(path.name[:2], []).append(path.name)
    missing = [n for n in EXPECTED_NUMBERS if n not in by_number]
    duplicated = {n: names for n, names in by_number.items() if len(names) > 1}
    extra = sorted(set(by_number) - set(EXPECTED_NUMBERS))
    assert not missing, (
        f"COURSE INCOMPLETE: notebooks/{{{','.join(missing)}}}_*.ipynb missing "
        f"(found: {[p.name for p in COURSE]})"
    )
    assert not duplicated, f"two notebooks share a number: {duplicated}"
    assert not extra, f"numbers outside {EXPECTED_NUMBERS}: {extra}"


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_file_name(path):
    assert NAME.fullmatch(path.name), f"{rel(path)}: name it NN_topic.ipynb (lowercase, _)"


# ------------------------------------------------------------- every notebook (incl. exercises)
@pytest.mark.parametrize("path", ALL, ids=rel)
def test_committed_without_outputs(path):
    dirty = [
        f"cell {i}: {len(c.outputs)} outputs, execution_count {c.execution_count}"
        for i, c in enumerate(read(path).cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, f"{rel(path)} has outputs (clear them before committing): {dirty}"


@pytest.mark.parametrize("path", ALL, ids=rel)
def test_imports_the_library(path):
    roots = set()
    for _, tree in trees(path):
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    assert "grpo_edu" in roots, f"{rel(path)} never imports grpo_edu"


# ------------------------------------------------------------------------- course notebooks
@pytest.mark.parametrize("path", COURSE, ids=rel)
def test_well_formed(path):
    nb = read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    assert kernel == "python3", f"{rel(path)}: kernel {kernel!r}; CI and Colab run 'python3'"


@pytest.mark.parametrize("path", COURSE, ids=rel)
def test_badge_points_at_this_notebook(path):
    nb = read(path)
    first = nb.cells[0]
    assert first.cell_type == "markdown", f"{rel(path)}: the first cell must be markdown"
    first_line = first.source.splitlines()[0] if first.source else ""
    assert first_line == badge_markdown(rel(path)), (
        f"{rel(path)}: first line of the first cell must be "
        f"grpo_edu.course.badge_markdown({rel(path)!r}), got {first_line!r}"
    )
    links = re.findall(
        r"https://colab\.research\.google\.com/github/[^)\s\"'>]+",
        "\n".join(c.source for c in nb.cells if c.cell_type == "markdown"),
    )
    wrong = [link for link in links if link != colab_url(rel(path))]
    assert not wrong, f"{rel(path)}: Colab links to another notebook: {wrong}"


@pytest.mark.parametrize("path", COURSE, ids=rel)
def test_first_code_cell_is_the_colab_install_cell(path):
    cells = code_cells(read(path))
    assert cells, f"{rel(path)} has no code cell"
    assert cells[0].source.rstrip() == COLAB_INSTALL_CELL.rstrip(), (
        f"{rel(path)}: the first code cell must be exactly grpo_edu.course.COLAB_INSTALL_CELL"
    )


@pytest.mark.parametrize("path", COURSE, ids=rel)
def test_parameters_cell_reads_fast_from_the_environment(path, monkeypatch):
    cells = code_cells(read(path))
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{rel(path)}: {len(tagged)} code cells tagged 'parameters', want 1"
    assert tagged[0] == 1, f"{rel(path)}: the 'parameters' cell must follow the install cell"
    source = python_source(cells[1].source)
    assert "GRPO_EDU_FAST" in source, f"{rel(path)}: the parameters cell never reads GRPO_EDU_FAST"
    assigned = {
        t.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Name)
    }
    assert "FAST" in assigned, f"{rel(path)}: the parameters cell must assign FAST"
    for value, expected in (("1", True), ("0", False)):
        monkeypatch.setenv("GRPO_EDU_FAST", value)
        namespace: dict = {}
        exec(compile(source, f"{rel(path)}[parameters]", "exec"), namespace)
        assert namespace["FAST"] is expected, (
            f"{rel(path)}: GRPO_EDU_FAST={value} -> FAST={namespace['FAST']!r}"
        )


@pytest.mark.parametrize("path", COURSE, ids=rel)
def test_does_not_redefine_the_library(path):
    library = library_names()
    clashes = [
        f"cell {i} line {line}: {how} {name} (the library has {library[name]})"
        for i, tree in trees(path)
        for name, line, how in definitions(tree)
        if name in library
    ]
    assert not clashes, f"{rel(path)} redefines library names; import them instead: {clashes}"


# ------------------------------------------------------------------- the checker itself
def test_checker_sees_magics_defs_and_lambdas():
    source = COLAB_INSTALL_CELL + "\nfiles = !ls\n%time x = 1\ngroup_advantages = lambda r: r\n"
    tree = ast.parse(python_source(source))
    assert [(n, how) for n, _, how in definitions(tree)] == [("group_advantages", "lambda")]
    assert "group_advantages" in library_names()
    assert "clip_explorer" in library_names()
    assert python_source("%%bash\necho hi") == ""
    tree = ast.parse(python_source("%%time\ndef clip_explorer():\n    pass"))
    assert [(n, how) for n, _, how in definitions(tree)] == [("clip_explorer", "def")]

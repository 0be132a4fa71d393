"""Static flags: student code that takes the library's reference or reads the instructor notebooks.

The grader judges outputs, so a solution that simply calls the library's own implementation
(``from grpo_edu.advantages import group_advantages``) would pass; ``scan`` finds that in the
source of the student's cells before anything runs, and the grade says ``flagged`` with the
finding, for the instructor to look at. What it flags, in any cell the student wrote (solution
cells and added cells; IPython syntax is translated to Python first):

- an import from ``grpo_edu`` of anything the notebook's own setup cell does not import;
- in an exercise's solution cell, any use of that exercise's reference (``tasks.parse_answer``
  in ``parse_answer``); in other cells, a reference used as a value (``f = tasks.parse_answer``),
  not a call such as ``tasks.parse_answer("55")`` (comparing with the library is fine);
- code that no static reading can follow: ``exec``, ``eval``, ``compile``, ``__import__``,
  ``importlib``, ``sys.modules``, ``builtins``, ``get_ipython()`` (shell commands, magics other
  than ``%time``, ``%timeit``, ``%matplotlib``);
- reading notebooks: a string with ``.ipynb`` or ``notebooks/``, ``nbformat``, ``solution_source``.

It can be fooled by code clever enough (it reads text, it does not run it), which is why the
sandbox hides the instructor notebooks anyway; what it does not flag is judged on its outputs.
"""

from __future__ import annotations

import ast

from .catalog import EXERCISES

DYNAMIC_CALLS = {"exec", "eval", "compile", "__import__", "globals", "vars"}
DYNAMIC_NAMES = {"importlib", "builtins", "__builtins__", "__loader__", "__spec__"}
SAFE_MAGICS = {"time", "timeit", "matplotlib"}
NOTEBOOK_WORDS = (".ipynb", "notebooks/", "nbformat", "solution_source", "NOTEBOOK_DIR")


def python_source(source: str) -> str:
    """The cell as plain Python, the way IPython would run it (magics become calls)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def setup_bindings(setup_source: str) -> tuple[set[tuple[str, str]], dict[str, str]]:
    """What a setup cell imports: (module, name) pairs, and local name -> dotted path."""
    pairs, bound = set(), {}
    for node in ast.walk(ast.parse(python_source(setup_source))):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                pairs.add((node.module, alias.name))
                bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                pairs.add((alias.name, ""))
                bound[alias.asname or alias.name.split(".")[0]] = alias.name
    return pairs, bound


def _dotted(node: ast.AST, bound: dict[str, str]) -> str | None:
    """``tasks.parse_answer`` -> ``grpo_edu.tasks.parse_answer`` when ``tasks`` is bound."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in bound:
        return ".".join([bound[node.id], *reversed(parts)])
    return None


def _defines(tree: ast.AST) -> set[str]:
    """Names a cell binds with def, class, assignment or import."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add(node.asname or node.name.split(".")[0])
    return names


def scan(
    source: str,
    allowed: set[tuple[str, str]],
    bound: dict[str, str],
    own: str | None,
    references: set[str],
) -> list[str]:
    """Findings in one student cell.

    ``allowed``/``bound``: what the setup cell imports (``setup_bindings``); ``own``: the exercise
    whose solution cell this is (None for a cell the student added); ``references``: dotted
    paths of the references of the notebook's exercises.
    """
    try:
        tree = ast.parse(python_source(source))
    except SyntaxError:
        return []  # the cell fails when it runs; nothing to read
    defined = ({own} if own else _defines(tree)) & set(EXERCISES)
    strict = {EXERCISES[name].reference for name in defined}  # no use at all
    as_value = set() if own else references  # no use but a call
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    findings = []
    for node in ast.walk(tree):
        findings += _imports(node, allowed) + _dynamic(node)
        path = _dotted(node, bound) if isinstance(node, (ast.Attribute, ast.Name)) else None
        if path in strict or (path in as_value and id(node) not in called):
            findings.append(f"uses {path}, the library's reference implementation")
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if any(w in node.value for w in NOTEBOOK_WORDS[:2]):
                findings.append(f"reads a notebook ({node.value[:60]!r})")
        if isinstance(node, (ast.Name, ast.Attribute)):
            word = node.id if isinstance(node, ast.Name) else node.attr
            if word in NOTEBOOK_WORDS[2:]:
                findings.append(f"reads notebooks ({word})")
    return list(dict.fromkeys(findings))


def _imports(node: ast.AST, allowed: set[tuple[str, str]]) -> list[str]:
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        root = node.module.split(".")[0]
        names = [a.name for a in node.names if (node.module, a.name) not in allowed]
        if root == "grpo_edu" and names:
            return [f"imports {node.module}.{n} from the library" for n in names]
    if isinstance(node, ast.Import):
        return [
            f"imports {a.name} from the library"
            for a in node.names
            if a.name.split(".")[0] == "grpo_edu" and (a.name, "") not in allowed
        ]
    return []


def _dynamic(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in DYNAMIC_CALLS:
            return [f"runs code that cannot be read statically ({node.func.id})"]
        if node.func.id == "get_ipython":
            return []  # judged with its method below
    if isinstance(node, ast.Name) and node.id in DYNAMIC_NAMES:
        return [f"runs code that cannot be read statically ({node.id})"]
    if isinstance(node, ast.Attribute) and node.attr == "modules":
        return [f"reaches into sys.modules ({ast.unparse(node)[:40]})"]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Call)
        and getattr(node.func.value.func, "id", None) == "get_ipython"
    ):
        magic = node.args[0].value if node.args and isinstance(node.args[0], ast.Constant) else None
        if not (node.func.attr == "run_line_magic" and magic in SAFE_MAGICS):
            return [f"drives IPython itself ({node.func.attr} {magic or ''})".rstrip()]
    if isinstance(node, ast.Attribute) and node.attr in ("input_transformers_cleanup", "events"):
        return [f"drives IPython itself ({node.attr})"]
    return []

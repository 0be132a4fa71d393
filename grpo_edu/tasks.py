"""Toy arithmetic tasks: problems, fixed seeded splits, and a safe answer parser.

A task is a family of problems such as ``add2`` (two 2-digit operands) whose prompt is the
expression followed by ``=`` and whose answer is an integer::

    add2     "47+8="        -> 55
    sub2     "12-40="       -> -28      (negative results allowed)
    mul2     "13*21="       -> 273
    chain3   "12+7-5="      -> 14       (three operands, + and - mixed, left to right)
    sum4     "12+7+5+9="    -> 33       (four operands 1..35, sum <= 99: every step is add2)

Operands are drawn uniformly from ``0 .. 10**n_digits - 1``. Each task has a ``train`` and an
``eval`` split that are disjoint (no prompt in both), fixed by a seed, and the same on every
machine: the eval splits are stored in ``data/eval/<name>.jsonl`` so that every figure of the
course is measured on the same problems. ``sum<k>`` operands come from 1..35, redrawn until the
sum is at most 99, so that every partial sum is a two-digit addition; answers to such prompts
also come as a scratchpad that writes every step (``grpo_edu.formats``).
"""

from __future__ import annotations

import json
import random
import re
import zlib
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
EVAL_DIR = DATA_DIR / "eval"

N_EVAL = 500
"""Problems in every eval split."""
N_TRAIN = 20_000
"""Problems in a train split at most (smaller when the task has fewer distinct problems)."""
SPLIT_SEED = 1234
"""Seed of the split generator; changing it changes every eval split, so it is fixed."""

_NAME = re.compile(r"(add|sub|mul|chain|sum)([1-9][0-9]?)")
_OPS = {"add": "+", "sub": "-", "mul": "*"}
MAX_ANSWER_DIGITS = 18
"""Longest digit run ``parse_answer`` accepts; longer runs are not answers but noise."""
SUM_OPERANDS = (1, 35)
"""Operand range of the ``sum<k>`` tasks (inclusive)."""
SUM_MAX = 99
"""Largest sum of a ``sum<k>`` problem: its partial sums are then two-digit additions, the
``add2`` warm start's skill."""


@dataclass(frozen=True)
class Problem:
    """One problem: the prompt the model sees and the integer it should answer."""

    prompt: str
    """The expression followed by ``=``, e.g. ``"47+8="``."""
    answer: int
    """The exact integer value of the expression."""


@dataclass(frozen=True)
class Task:
    """A family of problems with fixed, disjoint ``train`` and ``eval`` splits."""

    name: str
    """Registered name, e.g. ``"add2"``."""
    op: str
    """``"add"``, ``"sub"``, ``"mul"`` or ``"chain"``."""
    n_operands: int
    """Operands per problem: 2, or k for ``chaink``."""
    n_digits: int
    """Largest operand has this many digits."""
    train: tuple[Problem, ...]
    eval: tuple[Problem, ...]

    @cached_property
    def max_answer_len(self) -> int:
        """Characters of the longest possible answer, sign included."""
        return max(len(str(p.answer)) for p in self.train + self.eval)

    @property
    def max_new_tokens(self) -> int:
        """The generation limit of this task's completions (``generation_limit``)."""
        return generation_limit(self.max_answer_len)


def generation_limit(answer_chars: int) -> int:
    """Completion length limit for answers of up to ``answer_chars`` characters: the answer, its
    EOS and one spare token (so a model that runs on is seen to, not cut off at the answer).
    The one definition used by training, evaluation and the TRL bridge."""
    return answer_chars + 2


def _expression(op: str, operands: list[int], rng: random.Random) -> str:
    if op == "chain":
        signs = [rng.choice("+-") for _ in operands[1:]]
        return str(operands[0]) + "".join(
            s + str(x) for s, x in zip(signs, operands[1:], strict=True)
        )
    return _OPS[op].join(str(x) for x in operands)


def _evaluate(expression: str) -> int:
    """Value of ``a+b-c`` or ``a*b`` without ``eval``: only + - * on non-negative integers."""
    if "*" in expression:
        a, b = expression.split("*")
        return int(a) * int(b)
    total = 0
    for sign, number in re.findall(r"([+-]?)(\d+)", expression):
        total += -int(number) if sign == "-" else int(number)
    return total


def make_problem(expression: str) -> Problem:
    """Build a ``Problem`` from an expression such as ``"12+7-5"`` (the ``=`` is added)."""
    return Problem(prompt=expression + "=", answer=_evaluate(expression))


def _generate_sums(n_operands: int, n: int, seed: int) -> list[Problem]:
    """``n`` distinct ``sum<k>`` problems: operands in ``SUM_OPERANDS``, sum <= ``SUM_MAX``."""
    rng, (lo, hi) = random.Random(seed), SUM_OPERANDS
    seen: dict[str, Problem] = {}
    while len(seen) < n:
        operands = [rng.randint(lo, hi) for _ in range(n_operands)]
        expression = "+".join(str(x) for x in operands)
        if sum(operands) <= SUM_MAX and expression not in seen:
            seen[expression] = make_problem(expression)
    return list(seen.values())


def _generate(op: str, n_operands: int, n_digits: int, n: int, seed: int) -> list[Problem]:
    """``n`` distinct problems (fewer if the task has fewer), in a seeded random order."""
    if op == "sum":
        return _generate_sums(n_operands, n, seed)
    rng = random.Random(seed)
    hi = 10**n_digits - 1
    n_signs = 2 ** (n_operands - 1) if op == "chain" else 1
    space = (hi + 1) ** n_operands * n_signs
    seen: dict[str, Problem] = {}
    if space <= 4 * n:  # small space: enumerate it by sampling until (nearly) exhausted
        n = min(n, space)
    while len(seen) < n:
        operands = [rng.randint(0, hi) for _ in range(n_operands)]
        expression = _expression(op, operands, rng)
        if expression not in seen:
            seen[expression] = make_problem(expression)
    return list(seen.values())


def parse_task_name(name: str) -> tuple[str, int, int]:
    """``"add2"`` -> ``("add", 2, 2)``: (op, n_operands, n_digits). ``chainK`` has 2-digit operands."""
    m = _NAME.fullmatch(name) if isinstance(name, str) else None
    if m is None:
        raise ValueError(
            f"unknown task name {name!r}: expected add<d>, sub<d>, mul<d> (d = digits, 1..4) "
            f"or chain<k> / sum<k> (k = operands, 3..5), e.g. 'add2', 'chain3', 'sum4'"
        )
    op, k = m.group(1), int(m.group(2))
    if op in ("chain", "sum"):
        if not 3 <= k <= 5:
            raise ValueError(f"task {name!r}: {op} length must be 3..5, got {k}")
        return op, k, 2
    if not 1 <= k <= 4:
        raise ValueError(f"task {name!r}: number of digits must be 1..4, got {k}")
    return op, 2, k


def eval_path(name: str) -> Path:
    return EVAL_DIR / f"{name}.jsonl"


def write_jsonl(problems: list[Problem] | tuple[Problem, ...], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for p in problems:
            f.write(json.dumps({"prompt": p.prompt, "answer": p.answer}) + "\n")


def read_jsonl(path: Path) -> list[Problem]:
    with open(path) as f:
        return [Problem(**json.loads(line)) for line in f if line.strip()]


def generate_splits(name: str, seed: int = SPLIT_SEED) -> tuple[list[Problem], list[Problem]]:
    """(train, eval) generated from ``seed``; eval is the first ``N_EVAL`` distinct problems."""
    op, n_operands, n_digits = parse_task_name(name)
    seed += zlib.crc32(name.encode())  # each task its own stable stream, no hash randomisation
    problems = _generate(op, n_operands, n_digits, N_EVAL + N_TRAIN, seed)
    n_eval = min(N_EVAL, len(problems) // 5)  # tiny tasks (add1) keep 80% for training
    eval_ = problems[:n_eval]
    return _without(problems[n_eval:], eval_, op), eval_


def _without(train: list[Problem], eval_: list[Problem], op: str = "") -> list[Problem]:
    held_out = {_canonical(p.prompt, op) for p in eval_}
    return [p for p in train if _canonical(p.prompt, op) not in held_out]


def get_task(name: str) -> Task:
    """The task called ``name`` (``add2``, ``sub2``, ``mul2``, ``chain3``, ...) with its splits.

    The eval split is read from ``data/eval/<name>.jsonl`` when that file exists (it is the
    reference every figure is measured on) and generated otherwise; the train split never
    contains an eval problem, nor its commuted twin (``7+65=`` for ``65+7=``), so eval accuracy
    measures generalisation, not recall.
    """
    parse_task_name(name)  # a clear ValueError before the cache sees an unhashable name
    return _get_task(name)


@cache
def _get_task(name: str) -> Task:
    op, n_operands, n_digits = parse_task_name(name)
    train, eval_ = generate_splits(name)
    if eval_path(name).exists():
        eval_ = read_jsonl(eval_path(name))
        train = _without(train, eval_, op)
    return Task(name, op, n_operands, n_digits, tuple(train), tuple(eval_))


def _canonical(prompt: str, op: str = "") -> str:
    """One key per problem up to commuted operands, for a held-out split: ``"65+7="`` and
    ``"7+65="`` are one problem, and for ``op="sum"`` so are ``"12+7+5+9="`` and ``"9+5+12+7="``
    (a sum's operands in any order)."""
    for sym in "+*":
        parts = prompt[:-1].split(sym)
        if (len(parts) == 2 or op == "sum") and all(x.isdigit() for x in parts):
            return sym.join(sorted(parts, key=int))
    return prompt[:-1]


TASK_NAMES = ("add2", "sub2", "mul2", "chain3")
"""The tasks the course ships eval splits (and warm-start checkpoints) for."""
REASONING_TASK_NAMES = ("sum3", "sum4", "sum5")
"""The tasks with a scratchpad format that ship eval splits (``sum4``: a warm start too)."""

_ANSWER = re.compile(r"[ ]*([+-]?)([0-9]+)")


def parse_answer(text: str | None) -> int | None:
    """The integer a model wrote at the start of ``text``, or ``None`` if there is none.

    Safe by construction: a regular expression over ASCII, never ``eval``. Rules:

    - leading spaces (ASCII space only) are skipped: ``"  42"`` -> 42;
    - one optional sign, ``+`` or ``-``, directly before the digits: ``"-7"`` -> -7, ``"- 7"`` -> None;
    - the answer is the first run of ASCII digits; anything after it is ignored:
      ``"42<eos>"`` and ``"42 is it"`` -> 42;
    - empty, ``None``, no leading digits, or a digit run longer than ``MAX_ANSWER_DIGITS``
      -> None (a huge number is noise, not an answer, and is never converted);
    - non-ASCII digits (``"٤٢"``, full-width ``"４２"``) are not digits here -> None, because the
      tokenizer has no such characters and ``int()`` would otherwise accept them; an ASCII run
      that runs on into such a digit (``"4٢"``) is ambiguous -> None.
    """
    if not isinstance(text, str):
        return None
    m = _ANSWER.match(text)
    if m is None:
        return None
    sign, digits = m.groups()
    if len(digits) > MAX_ANSWER_DIGITS or text[m.end() : m.end() + 1].isdigit():
        return None
    value = int(digits)
    return -value if sign == "-" else value

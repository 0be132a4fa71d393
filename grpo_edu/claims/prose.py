"""The prose of a document, and which of its numbers no claim accounts for.

A notebook's prose is its markdown cells; a markdown file's is the file (or, when the registry
names ``sections``, those headings' sections). ``uncovered_numbers`` lists every number of the
prose that is neither inside a registered claim's text, nor inside a ``given`` fragment, nor one
of the kinds of number that are never results:

- code (fenced or inline), display math ``$$...$$``, link targets and URLs, HTML, and the
  README's results blocks (rendered from the result files, ``readme.table_problems``);
- headings and the numbers of numbered lists;
- references: ``arXiv:2402.03300``, ``eq. 3``, ``sec. 4.1.2``, ``Fig. 4``, ``notebook 05``,
  ``section 3``, ``exercise 2``, ``convention 4``, years such as ``2024``;
- names with digits (``add2``, ``k3``, ``pass@8``) and integers inside inline math (``$G = 8$``);
- integers below 10 (``3 tokens``, ``A = -1``, ``1/6``), unless written as a percentage;
- the "Exercises" sections, which suggest settings to try and quote no results, and the
  "**Practise it**" lines that link to the graded exercises (numbered 1.1, 4.2, ...).

Everything else (every decimal number, every percentage, every integer from 10 up) must be a
claim or be given. A small integer that is a result can still be registered as a claim.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

NUMBER = re.compile(r"(?<![\w@.])\d+(?:,\d{3})*(?:\.\d+)?(?:e-?\d+)?")
"""A number as prose writes it: ``3``, ``0.613``, ``76,800``, ``2e-4``."""
_EXEMPT = [
    re.compile(r"```.*?```", re.S),  # fenced code
    re.compile(r"`[^`\n]+`"),  # inline code
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"<!-- results: \w+ -->.*?<!-- /results -->", re.S),  # rendered from result files
    re.compile(r"<!--.*?-->", re.S),
    re.compile(r"<[^>\n]+>"),
    re.compile(r"^#{1,6} .*$", re.M),  # headings
    re.compile(r"^\s*\d+\.(?=\s)", re.M),  # numbered lists
    re.compile(r"arXiv:\d+\.\d+"),
    re.compile(
        r"\b(?:eqs?\.|equations?|secs?\.|sections?|Fig\.|Figs\.|Figure|Table|notebooks?|"
        r"exercises?|conventions?|cell)\s+\d+(?:\.\d+)*(?:(?:\s*(?:,|and|to|-|–)\s*)\d+(?:\.\d+)*)*"
    ),
    re.compile(r"\b(?:19|20)\d\d\b(?![.,]\d)"),  # years
    re.compile(r"^#{1,6} Exercises.*?(?=^#{1,6} |\Z)", re.M | re.S),  # exercises sections
    re.compile(r"^\*\*Practise it.*$", re.M),  # links to the graded exercises, numbered 1.1, ...
]
_INLINE_MATH = re.compile(r"(?<!\$)\$(?!\$)[^$\n]+?\$")


@dataclass(frozen=True)
class Prose:
    """The prose of a document: one string per cell (markdown file: one string)."""

    path: Path
    cells: tuple[str, ...]

    def find(self, fragment: str) -> list[tuple[int, int, int]]:
        """(cell, start, end) of every occurrence of ``fragment``, whitespace-insensitive."""
        pattern = fragment_pattern(fragment)
        return [
            (i, m.start(), m.end()) for i, c in enumerate(self.cells) for m in pattern.finditer(c)
        ]


def fragment_pattern(fragment: str) -> re.Pattern:
    """A regex matching ``fragment`` with any run of whitespace where it has a space."""
    return re.compile(r"\s+".join(re.escape(word) for word in fragment.split()))


def _sections(text: str, headings: tuple[str, ...]) -> list[str]:
    """The sections of ``text`` under each of ``headings`` (up to the next heading as high)."""
    lines, out = text.splitlines(keepends=True), []
    for heading in headings:
        start = next((i for i, line in enumerate(lines) if line.lstrip("#").strip() == heading
                      and line.startswith("#")), None)  # fmt: skip
        if start is None:
            raise ValueError(f"no heading {heading!r} in the document")
        level = len(lines[start]) - len(lines[start].lstrip("#"))
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("#")
                    and len(lines[j]) - len(lines[j].lstrip("#")) <= level), len(lines))  # fmt: skip
        out.append("".join(lines[start:end]))
    return out


def read_prose(path: str | Path, sections: tuple[str, ...] = ()) -> Prose:
    """The prose of a notebook (its markdown cells) or a markdown file (its ``sections``)."""
    path = Path(path)
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        texts = ["".join(c["source"]) if isinstance(c["source"], list) else c["source"]
                 for c in cells if c["cell_type"] == "markdown"]  # fmt: skip
    else:
        text = path.read_text(encoding="utf-8")
        texts = _sections(text, sections) if sections else [text]
    return Prose(path, tuple(texts))


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` (``61%`` gives 61), in order."""
    return [float(m.group().replace(",", "")) for m in NUMBER.finditer(text)]


FRACTION = re.compile(r"(?<![\w.])(\d+)/(\d+)(?![\w.])")


def quotes(text: str, value: float) -> bool:
    """Whether ``text`` writes ``value``: as itself (a minus sign right before the digits makes
    it negative), as a percentage of it, or as a fraction ``1/24``."""
    for m in FRACTION.finditer(text):
        if int(m.group(2)) and abs(int(m.group(1)) / int(m.group(2)) - value) <= 1e-9:
            return True
    for m in NUMBER.finditer(text):
        x = float(m.group().replace(",", ""))
        if text[m.start() - 1 : m.start()] in ("-", "−"):
            x = -x
        if text[m.end() : m.end() + 1] == "%":
            x /= 100
        if abs(x - value) <= 1e-9 * max(1.0, abs(value)):
            return True
    return False


def uncovered_numbers(prose: Prose, fragments: list[str]) -> list[tuple[int, str, str]]:
    """(cell, number, context) of every number not covered by ``fragments`` or an exempt kind."""
    out = []
    patterns = [fragment_pattern(f) for f in fragments]
    for i, text in enumerate(prose.cells):
        covered = bytearray(len(text))
        for pattern in [*_EXEMPT, *patterns]:
            for m in pattern.finditer(text):
                covered[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
        in_math = bytearray(len(text))
        for m in _INLINE_MATH.finditer(text):
            in_math[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
        for m in NUMBER.finditer(text):
            if all(covered[m.start() : m.end()]):
                continue
            integer = not re.search(r"[.e]", m.group())
            if integer and in_math[m.start()]:
                continue  # an integer in inline math: an index, a size, an exponent
            if (
                integer
                and int(m.group().replace(",", "")) < 10
                and text[m.end() : m.end() + 1] != "%"
            ):
                continue
            context = " ".join(text[max(0, m.start() - 40) : m.end() + 40].split())
            out.append((i, m.group(), context))
    return out

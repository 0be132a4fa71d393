"""Claims: the registry's format, the checks, and every shipped registry against its prose.

The last group is what CI relies on: each course notebook has a registry, every claim of it is
well-formed, its text is in the notebook and writes the quoted number, and no number of the
notebook's prose is left unregistered. (Executing the notebooks in FAST mode then checks that
each measures exactly its registered claims; ``python -m grpo_edu claims`` checks the values.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from grpo_edu.claims import (
    ClaimCheck,
    ClaimError,
    load_registry,
    read_prose,
    registry_paths,
    static_problems,
    uncovered_numbers,
)
from grpo_edu.claims import check as check_module
from grpo_edu.claims.prose import Prose, quotes
from grpo_edu.claims.readme import table_problems
from grpo_edu.claims.registry import DIR_ENV

ROOT = Path(__file__).resolve().parents[1]
COURSE = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
GOOD = """
document = "README.md"
given = ["16 prompts x 8"]

[[claim]]
id = "acc"
text = "sampled accuracy 0.91"
value = 0.91
tol = 0.02

[[claim]]
id = "spread"
text = "about 0.34, 0.24 for G = 2, 4"
values = [0.34, 0.24]
tol = 0.02

[[claim]]
id = "kl_band"
text = "between 0.03 and 0.1"
range = [0.03, 0.1]

[[claim]]
id = "no_target"
text = "neither reaches the target"
holds = true
"""


def write(tmp_path: Path, text: str, name: str = "doc") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------ the registry
def test_a_good_registry_loads(tmp_path):
    r = load_registry(write(tmp_path, GOOD))
    assert list(r.claims) == ["acc", "spread", "kl_band", "no_target"]
    assert r.given == ("16 prompts x 8",)
    assert r.claims["acc"].allowed() == "0.91 ± 0.02"
    assert r.claims["kl_band"].allowed() == "0.03 .. 0.1"


@pytest.mark.parametrize(
    "entry, message",
    [
        ('id = "Bad-Id"\ntext = "x 1"\nvalue = 1\ntol = 0.1', "id must match"),
        ('id = "a"\ntext = ""\nvalue = 1\ntol = 0.1', "text must be"),
        ('id = "a"\ntext = "x 1"\nvalue = 1', "needs tol"),
        ('id = "a"\ntext = "x 1"\nvalue = 1\ntol = 0', "tol must be > 0"),
        ('id = "a"\ntext = "x 1"\nvalue = 1\ntol = -1', "tol must be > 0"),
        ('id = "a"\ntext = "x 1"\nvalue = nan\ntol = 0.1', "NaN"),
        ('id = "a"\ntext = "x 1"\nvalue = 1\nrange = [0, 2]\ntol = 1', "exactly one"),
        ('id = "a"\ntext = "x 1"\nrange = [2, 1]', "lo < hi"),
        ('id = "a"\ntext = "x 1"\nrange = [1]', "range must be"),
        ('id = "a"\ntext = "x 1"\nvalues = [1]\ntol = 1', "at least 2"),
        ('id = "a"\ntext = "x"\nholds = 1', "true or false"),
        ('id = "a"\ntext = "x"\nholds = true\ntol = 1', "tol only goes"),
        ('id = "a"\ntext = "x 1"\nvalue = "1"\ntol = 1', "expected a number"),
        ('id = "a"\ntext = "x 1"\nvalue = 1\ntol = 1\nwhere = "here"', "unknown keys"),
    ],
)
def test_malformed_claims_are_refused_by_name(tmp_path, entry, message):
    path = write(tmp_path, f'document = "README.md"\n\n[[claim]]\n{entry}\n')
    with pytest.raises(ClaimError, match=message):
        load_registry(path)


def test_duplicate_ids_and_a_missing_document_are_refused(tmp_path):
    claim = '[[claim]]\nid = "a"\ntext = "x"\nholds = true\n'
    with pytest.raises(ClaimError, match="used twice"):
        load_registry(write(tmp_path, f'document = "README.md"\n{claim}{claim}'))
    with pytest.raises(ClaimError, match="document must name"):
        load_registry(write(tmp_path, claim))
    with pytest.raises(ClaimError, match="not valid TOML"):
        load_registry(write(tmp_path, "document = "))


def test_each_kind_of_claim_holds_only_within_its_tolerance(tmp_path):
    c = load_registry(write(tmp_path, GOOD)).claims
    assert c["acc"].holds(0.92) and c["acc"].holds(0.89) and not c["acc"].holds(0.935)
    assert c["spread"].holds([0.35, 0.23]) and not c["spread"].holds([0.34, 0.30])
    assert c["kl_band"].holds(0.03) and not c["kl_band"].holds(0.11)
    assert c["no_target"].holds(True) and not c["no_target"].holds(False)
    for claim, bad in ((c["acc"], math.nan), (c["acc"], True), (c["spread"], [0.3]),
                       (c["no_target"], 1), (c["acc"], "0.9")):  # fmt: skip
        with pytest.raises(ClaimError):
            claim.holds(bad)


# ------------------------------------------------------------------ measuring in a notebook
@pytest.fixture
def registry_dir(tmp_path, monkeypatch):
    write(tmp_path, GOOD, "demo")
    monkeypatch.setenv(DIR_ENV, str(tmp_path))
    return tmp_path


def measure_all(check: ClaimCheck, acc=0.90) -> None:
    import numpy as np
    import torch

    check.measure(acc=torch.tensor(acc), spread=np.array([0.34, 0.25]))
    check.measure(kl_band=np.float64(0.05), no_target=np.bool_(True))


def test_fast_mode_checks_registration_not_values(registry_dir):
    check = ClaimCheck("demo", fast=True)
    with pytest.raises(ClaimError, match="no claim 'typo'"):
        check.measure(typo=1.0)
    with pytest.raises(ClaimError, match="measure a bool"):
        check.measure(no_target=0.5)
    check.measure(acc=0.1)
    with pytest.raises(ClaimError, match="never measured"):
        check.report()
    measure_all(check, acc=0.1)  # far from 0.91: FAST mode does not judge values
    report = check.report()
    assert report.table["holds"].isna().all() and "FAST" in report.headline()


def test_full_mode_judges_values_and_writes_them(registry_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv(check_module.OUT_ENV, str(out))
    check = ClaimCheck("demo", fast=False)
    measure_all(check, acc=0.80)
    report = check.report()
    assert list(report.failures["claim"]) == ["acc"] and "1 do NOT hold" in report.headline()
    saved = json.loads((out / "demo.json").read_text())
    assert saved["name"] == "demo" and {r["claim"] for r in saved["results"]} == set(
        check.registry.claims
    )
    assert saved["machine"]["torch"] and "avx512" in saved["machine"]
    monkeypatch.setenv(check_module.STRICT_ENV, "1")
    with pytest.raises(ClaimError, match="do NOT hold"):
        check.report()


# ---------------------------------------------------------------------------------- prose
def test_uncovered_numbers_sees_results_and_skips_references():
    text = ("After 600 steps GRPO reaches 0.92 (DeepSeekMath eq. 3, sec. 4.1.2, arXiv:2402.03300, "
            "notebook 05, 2024), `lr=2e-4`, $G = 8$, with 3 seeds and 45% of groups.")  # fmt: skip
    prose = Prose(Path("x.md"), (text,))
    found = [n for _, n, _ in uncovered_numbers(prose, [])]
    assert found == ["600", "0.92", "45"]
    assert [n for _, n, _ in uncovered_numbers(prose, ["reaches 0.92", "After 600 steps"])] == [
        "45"
    ]
    exercises = Prose(Path("x.md"), ("## Exercises\n\n1. Try 0.5 and 600 steps.\n",))
    assert uncovered_numbers(exercises, []) == []


def test_quotes_reads_numbers_and_percentages():
    assert quotes("about 0.064 per token", 0.064) and quotes("about 61% of it", 0.61)
    assert quotes("76,800 completions", 76800) and not quotes("about 0.64", 0.064)


# ------------------------------------------------------------ the shipped registries (CI)
PENDING: dict[str, str] = {}
"""Course notebooks that do not register their claims yet, each with why: remove the entry when
its ``claims/NN_topic.toml`` lands (a stale entry fails ``test_pending_entries_are_still_pending``)."""


@pytest.mark.parametrize("path", COURSE, ids=lambda p: p.name)
def test_every_course_notebook_has_a_registry(path):
    if path.stem in PENDING:
        pytest.skip(f"{path.stem}: {PENDING[path.stem]}")
    assert (ROOT / "claims" / f"{path.stem}.toml").exists(), (
        f"{path.name}: register the numbers its prose quotes in claims/{path.stem}.toml "
        "(see grpo_edu.claims)"
    )


def test_pending_entries_are_still_pending():
    registered = {p.stem for p in registry_paths()}
    assert not set(PENDING) & registered, "registered now: remove them from PENDING"
    assert set(PENDING) <= {p.stem for p in COURSE}


@pytest.mark.parametrize("path", registry_paths(), ids=lambda p: p.name)
def test_registry_matches_its_document(path):
    registry = load_registry(path)
    problems = static_problems(registry)
    assert not problems, "\n".join(problems)


def test_readme_results_tables_are_rendered_from_the_shipped_files():
    problems = table_problems()
    assert not problems, "\n".join(problems)


def test_prose_of_a_notebook_is_its_markdown():
    prose = read_prose(COURSE[0])
    assert prose.cells and all(isinstance(c, str) for c in prose.cells)
    assert prose.find("Quickstart")


def test_a_value_or_range_claim_about_several_things_holds_for_each(tmp_path):
    c = load_registry(write(tmp_path, GOOD)).claims
    assert c["acc"].holds([0.90, 0.92]) and not c["acc"].holds([0.90, 0.95])
    assert c["kl_band"].holds([0.04, 0.09]) and not c["kl_band"].holds([0.04, 0.2])


def test_quotes_reads_signs_and_fractions():
    assert quotes("each wrong one about -1.62", -1.62) and not quotes("about 1.62", -1.62)
    assert quotes("every token 1/24, a constant", 1 / 24) and not quotes("1/24", 1 / 12)


# ------------------------------------------------------------------------------ the runner
TINY = """
document = "{notebook}"

[[claim]]
id = "answer"
text = "the answer is about 42"
value = 42
tol = 1

[[claim]]
id = "small"
text = "and it is small"
holds = true
"""


def tiny_notebook(path: Path, answer: str) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("We find that the answer is about 42 and it is small."),
        nbformat.v4.new_code_cell(
            "from grpo_edu.claims import ClaimCheck\n"
            f"claims = ClaimCheck('tiny')\nclaims.measure(answer={answer}, small=True)\n"
            "claims.report()"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.mark.parametrize("answer, failed", [("41.5", []), ("50", ["answer"])])
def test_the_runner_executes_a_notebook_and_reports_what_fails(tmp_path, answer, failed):
    from grpo_edu.claims.run import run_claims

    tiny_notebook(tmp_path / "tiny.ipynb", answer)
    (tmp_path / "tiny.toml").write_text(TINY.format(notebook=tmp_path / "tiny.ipynb"))
    assert static_problems(load_registry(tmp_path / "tiny.toml")) == []
    run = run_claims(folder=tmp_path, progress=False, timeout=120)
    (doc,) = run.documents
    assert doc.error is None and doc.seconds > 0 and run.n_claims == 2
    assert [r["claim"] for r in doc.failures] == failed
    assert run.as_dict()["machine"]["torch"]


def test_a_notebook_that_stops_fails_every_claim_it_did_not_measure(tmp_path):
    from grpo_edu.claims.run import run_claims

    tiny_notebook(tmp_path / "tiny.ipynb", "1 / 0")
    (tmp_path / "tiny.toml").write_text(TINY.format(notebook=tmp_path / "tiny.ipynb"))
    (doc,) = run_claims(folder=tmp_path, progress=False, timeout=120).documents
    assert "ZeroDivisionError" in doc.error
    assert {r["why"] for r in doc.results} == {"not measured"} and len(doc.failures) == 2

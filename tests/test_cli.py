"""The command line as a newcomer meets it: clear errors before long work, shipped files kept.

(``tests/test_cli_compare.py`` runs the main job end to end; ``tests/test_checkpoints.py`` the
``evaluate`` command on the shipped checkpoints.)
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from grpo_edu import cli

ROOT = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    status = cli.main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status, err, *parts):
    assert status == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    for part in parts:
        assert part in err, err


# ------------------------------------------------------------------------------- --threads
@pytest.mark.parametrize(
    "argv, threads",
    [
        (["evaluate", "add2"], "auto"),  # grpo_edu.threads picks 1 unless 2 measure faster
        (["--threads", "3", "evaluate", "add2"], 3),
        (["evaluate", "add2", "--threads", "2"], 2),
        (["compare", "--fast", "--threads", "2"], 2),
        (["--threads", "3", "claims", "--threads", "2"], 2),
    ],
)
def test_threads_before_or_after_the_command(argv, threads):
    assert cli.build_parser().parse_args(argv).threads == threads


@pytest.mark.parametrize("value", ["abc", "1.5", "0"])
def test_bad_threads_say_what_is_expected(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--threads", value, "evaluate", "add2"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "argument --threads: " in err and ">= 1, got " in err and value in err, err
    assert "_positive_int" not in err and "invalid" not in err, err


# --------------------------------------------------------------------------- --temperature
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1"])
def test_temperature_must_be_finite_and_positive(capsys, value):
    start = time.perf_counter()
    status, _, err = run(["evaluate", "add2", f"--temperature={value}"], capsys)
    assert_one_line_error(status, err, "--temperature", "finite number > 0")
    assert time.perf_counter() - start < 5  # refused before loading or sampling anything


# ---------------------------------------------------------------------------------- --out
def test_defaults_write_under_runs_not_shipped_folders():
    parser = cli.build_parser()
    for argv, out in ((["pretrain", "add2"], "runs/checkpoints"), (["compare"], "runs/compare"),
                      (["figures"], "runs/figures"), (["claims"], "runs/claims")):  # fmt: skip
        args = parser.parse_args(argv)
        assert args.out == Path(out) and not args.overwrite
    assert "runs/" in (ROOT / ".gitignore").read_text().split()


@pytest.mark.parametrize(
    "argv",
    [
        ["pretrain", "add2", "--out", str(ROOT / "data" / "checkpoints")],
        ["compare", "--fast", "--out", str(ROOT / "figures")],
        ["figures", "--fast", "--out", str(ROOT / "figures")],
    ],
)
def test_shipped_files_need_overwrite(capsys, argv):
    before = {p: p.stat().st_mtime_ns for p in (ROOT / "figures").glob("*")}
    start = time.perf_counter()
    status, out, err = run(argv, capsys)
    assert_one_line_error(status, err, "would replace shipped files", "--overwrite")
    assert time.perf_counter() - start < 5 and "compare on" not in out  # no work started
    assert before == {p: p.stat().st_mtime_ns for p in (ROOT / "figures").glob("*")}


def test_out_that_is_a_file_or_cannot_be_made_is_refused_first(capsys, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    status, _, err = run(["compare", "--fast", "--out", str(blocker)], capsys)
    assert_one_line_error(status, err, "is not a folder", str(blocker))
    status, _, err = run(["pretrain", "add2", "--out", str(blocker / "sub")], capsys)
    assert_one_line_error(status, err, "cannot be written", str(blocker / "sub"))


def test_repeated_seeds_are_refused(capsys, tmp_path):
    status, _, err = run(["compare", "--seeds", "1", "1", "--out", str(tmp_path)], capsys)
    assert_one_line_error(status, err, "--seeds must be distinct")


def test_pretrain_writes_elsewhere_records_the_machine_and_lists_every_file(capsys, tmp_path):
    status, out, err = run(
        ["pretrain", "add2", "--steps", "2", "--no-progress", "--out", str(tmp_path)], capsys
    )
    assert status == 0, err
    written = sorted(p for p in (tmp_path / "add2").iterdir())
    listed = re.findall(r"^(?:wrote |\s{6})(\S+)$", out, re.M)
    summary = [line for line in out.splitlines() if line.split()[-1] not in listed]
    assert summary and all(len(line) <= 100 for line in summary), out
    assert sorted(Path(p) for p in listed) == written
    import json

    card = json.loads((tmp_path / "add2" / "card.json").read_text())
    assert {"cpu", "avx512", "torch", "torch_cpu_capability"} <= set(card["machine"])


# -------------------------------------------------------------------------- the README
def test_readme_command_table_lists_every_command():
    text = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^\| `(\w+)[ `]", text, re.M))
    missing = set(cli.COMMANDS) - listed
    assert not missing, f"README's command table lacks {sorted(missing)}"


def test_help_of_every_command_renders(capsys):
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as exit_:
            cli.main([name, "--help"])
        assert exit_.value.code == 0
        assert "--threads" in capsys.readouterr().out


# --------------------------------------------------------------------------------- claims
def test_claims_static_passes_and_unknown_names_are_refused(capsys):
    status, out, err = run(["claims", "--static"], capsys)
    assert status == 0, out + err
    assert re.search(r"\d+ claims registered in \d+ documents; static check: 0 problems", out)
    status, _, err = run(["claims", "no_such_doc"], capsys)
    assert_one_line_error(status, err, "no registry for ['no_such_doc']")


def test_every_command_parses_with_only_the_base_install():
    """`pip install -e .` then `python -m grpo_edu compare` (the README's first command): no
    command's parser may import an optional extra (the site's, the exercises', TRL's)."""
    import subprocess
    import sys

    extras = ["nbformat", "nbclient", "sphinx", "myst_nb", "trl", "datasets", "accelerate",
              "playwright", "nbgrader", "jupyterlab"]  # fmt: skip
    code = (f"import sys\nfor m in {extras!r}: sys.modules[m] = None  # importing it fails\n"
            "from grpo_edu.cli import build_parser\n"
            "build_parser().parse_args(['compare', '--fast'])")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]

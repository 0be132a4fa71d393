"""The main job as CI runs it: ``python -m grpo_edu compare --fast`` writes its figures and table."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from grpo_edu.cli import COMPARE_FILES, main


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = main(["compare", "--fast", "--no-progress", "--out", str(out)])
    return status, buffer.getvalue(), out


def test_compare_fast_writes_figures_csv_and_summary(fast_run):
    status, out, path = fast_run
    assert status == 0
    assert "GRPO / PPO training-state memory: 0.56x" in out
    for name in ("compare_accuracy.png", "compare_training.png", "compare_memory.png"):
        assert (path / name).read_bytes()[:4] == b"\x89PNG"
    metrics = pd.read_csv(path / "compare_metrics.csv")
    assert set(metrics["algorithm"]) == {"grpo", "ppo"} and set(metrics["seed"]) == {0}
    assert metrics.groupby("algorithm")["step"].max().tolist() == [20, 20]
    summary = pd.read_csv(path / "compare_summary.csv", index_col=0)
    assert list(summary.index) == ["start", "grpo", "ppo"]
    seeds = pd.read_csv(path / "compare_seeds.csv", index_col=[0, 1])
    assert seeds.index.names == ["seed", "algorithm"]
    run = json.loads((path / "compare_run.json").read_text())
    assert run["seeds"] == [0] and {"cpu", "avx512", "torch"} <= set(run["machine"])


def test_summary_fits_100_columns_warm_start_first_integers_as_integers(fast_run):
    _, out, _ = fast_run
    lines = out.splitlines()
    assert all(len(line) <= 100 for line in lines if not line.startswith(("wrote", " " * 6)))
    rows = [line.split()[0] for line in lines if line.startswith(("warm start", "GRPO  ", "PPO  "))]
    assert rows[:3] == ["warm", "GRPO", "PPO"], out
    table = out.split("GRPO / PPO training-state")[0]
    assert "855,552" in table and not re.search(r"\d\.0\b(?!\d)", table), out
    assert "greedy" in out and "sampled" in out and "s/step" in out


def test_wrote_lists_every_file_written(fast_run):
    _, out, path = fast_run
    listed = re.findall(r"^(?:wrote |\s{6})(\S+)$", out, re.M)
    assert sorted(Path(p).name for p in listed) == sorted(COMPARE_FILES)
    assert sorted(p.name for p in path.iterdir()) == sorted(COMPARE_FILES)


def test_compare_rejects_zero_steps(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--steps", "0"])
    assert "must be >= 1" in capsys.readouterr().err


def test_compare_device_that_does_not_exist_is_a_clear_error(capsys):
    assert main(["compare", "--fast", "--device", "tpu"]) == 2  # before any work starts
    assert "error: device must be" in capsys.readouterr().err

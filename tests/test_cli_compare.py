"""The main job as CI runs it: ``python -m grpo_edu compare --fast`` writes its figures and table."""

import pandas as pd

from grpo_edu.cli import main


def test_compare_fast_writes_figures_csv_and_summary(tmp_path, capsys):
    assert main(["compare", "--fast", "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "GRPO / PPO training-state memory: 0.56x" in out
    for name in ("compare_accuracy.png", "compare_training.png", "compare_memory.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    metrics = pd.read_csv(tmp_path / "compare_metrics.csv")
    assert set(metrics["algorithm"]) == {"grpo", "ppo"}
    assert metrics.groupby("algorithm")["step"].max().tolist() == [20, 20]
    summary = pd.read_csv(tmp_path / "compare_summary.csv", index_col=0)
    assert list(summary.index) == ["grpo", "ppo", "start"]


def test_compare_rejects_zero_steps(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["compare", "--steps", "0"])
    assert "must be >= 1" in capsys.readouterr().err


def test_compare_device_that_does_not_exist_is_a_clear_error(capsys):
    assert main(["compare", "--fast", "--device", "tpu"]) == 2  # before any work starts
    assert "error: device must be" in capsys.readouterr().err

"""Tests of the reasoning run: format evaluation, forced formats, token probabilities, the run
itself at a tiny budget, the figures and the ``reason`` command line."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from grpo_edu import cli, models, reason, tasks
from grpo_edu.evaluate_formats import evaluate_formats, pass_at_ks, sample_formats
from grpo_edu.formats import SCRATCHPAD_MARK, scratchpad_answer

PROBLEMS = tasks.get_task("sum4").eval[:12]


@pytest.fixture(scope="module")
def warm():
    return models.load_policy("sum4")


def test_forced_formats(warm):
    model, tok = warm
    scratch = sample_formats(model, tok, PROBLEMS, 3, 1.0, 0, 24, force="scratchpad")
    direct = sample_formats(model, tok, PROBLEMS, 3, 1.0, 0, 24, force="direct")
    assert all(t.startswith(SCRATCHPAD_MARK) for t in scratch.texts)
    assert not any(t.startswith(SCRATCHPAD_MARK) for t in direct.texts)
    assert len(scratch.texts) == len(direct.texts) == 36 == len(scratch.correct)
    for s in (scratch, direct):
        for text, n, ended in zip(s.texts, s.lengths, s.ended, strict=True):
            assert n == len(text) + ended  # one token per character, plus the EOS


def test_sampling_is_seeded_and_greedy_is_one_sample(warm):
    model, tok = warm
    a = sample_formats(model, tok, PROBLEMS, 2, 1.0, 7, 24)
    assert a == sample_formats(model, tok, PROBLEMS, 2, 1.0, 7, 24)
    with pytest.raises(ValueError, match="n must be >= 1 \\(and 1 for greedy\\)"):
        sample_formats(model, tok, PROBLEMS, 2, 0.0)
    with pytest.raises(ValueError, match="force must be one of"):
        sample_formats(model, tok, PROBLEMS, force="long")


def test_pass_at_ks_by_hand():
    from grpo_edu.evaluate_formats import Samples

    # two problems, n = 4: 1 correct, then 0 correct
    s = Samples(texts=[""] * 8, lengths=[1] * 8, ended=[True] * 8,
                correct=[True, False, False, False] + [False] * 4, n=4)  # fmt: skip
    got = pass_at_ks(s, [1, 2, 4])
    assert got[1] == pytest.approx(0.125) and got[2] == pytest.approx(0.25) and got[4] == 0.5


def test_format_report_is_consistent(warm):
    model, tok = warm
    r = evaluate_formats(model, tok, PROBLEMS, n=4, ks=(1, 4), forced_n=2)
    assert 0 <= r.scratchpad_share <= 1 and r.pass_at[1] == pytest.approx(r.sampled)
    assert r.pass_at[4] >= r.pass_at[1]
    with pytest.raises(ValueError, match="every k in ks must be in 1..n=4"):
        evaluate_formats(model, tok, PROBLEMS, n=4, ks=(8,))


def test_token_probs_reads_every_token(warm):
    model, tok = warm
    completion = scratchpad_answer(PROBLEMS[0].prompt)
    probs = reason.token_probs(model, tok, PROBLEMS[0].prompt, completion)
    assert "".join(t for t, _ in probs[:-1]) == completion and probs[-1][0] == "<eos>"
    assert all(0 < p <= 1 for _, p in probs)
    # the probability of the mark equals the sampled share in the limit: here, the same forward
    first = torch.softmax(model(**tok([PROBLEMS[0].prompt], return_tensors="pt")).logits[0, -1], -1)
    assert probs[0][1] == pytest.approx(first[tok.convert_tokens_to_ids(" ")].item(), rel=1e-5)


def test_tiny_run_trains_and_records_the_format_metrics():
    model, tok = models.load_policy("sum4")
    before = [p.detach().clone() for p in model.parameters()]
    config = replace(reason.ReasonConfig.fast(), eval_every=2, eval_size=8, report_size=8)
    config = replace(config, train=replace(config.train, steps=2, n_prompts=4))
    result = reason.run_reason(config, model, tok, progress=False)
    m = result.metrics
    assert list(m["step"]) == [0, 1, 2] and set(reason.EVAL_COLUMNS) <= set(m.columns)
    for column in ("completions/scratchpad_share", "completions/mean_length_correct"):
        assert column in m.columns
    after = list(result.policy.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert result.seconds["train"] > 0 and result.seconds["train_cpu"] > 0
    summary = result.summary()
    assert list(summary.index) == ["warm start", "GRPO"] and "pass@1" in summary.columns


def test_figures(tmp_path):
    import pandas as pd

    from grpo_edu.reason.plots import pass_at_k_figure, r1_zero_figure, seeds_figure, token_heatmap

    steps = pd.DataFrame({"step": range(5), "completions/mean_length": [5, 8, 12, 16, 20],
                          "completions/scratchpad_share": [0.1, 0.3, 0.6, 0.9, 1.0]})  # fmt: skip
    ev = {c: [0.1, math.nan, 0.5, math.nan, 0.9] for c in reason.EVAL_COLUMNS}
    metrics = pd.concat([steps, pd.DataFrame(ev)], axis=1)
    runs = pd.concat([metrics.assign(method=m, seed=s) for m in ("OS", "PS") for s in (0, 1)])
    figures = [
        r1_zero_figure(metrics),
        seeds_figure(runs, {"eval/sampled": "accuracy", "completions/mean_length": "length"}),
        pass_at_k_figure({"a": {1: 0.2, 4: 0.5}, "b": {"1": 0.6, "4": 0.7}}),
        token_heatmap({"before": [(" ", 0.1), ("1", 0.9)], "after": [(" ", 0.99)]}),
    ]
    for fig in figures:
        assert fig._repr_png_().startswith(b"\x89PNG")


def test_cli_reason_rejects_bad_input(capsys):
    assert cli.main(["reason", "--beta", "-1"]) == 2
    assert "--beta must be >= 0" in capsys.readouterr().err
    assert cli.main(["reason", "--checkpoint", "nowhere"]) == 2
    assert "no checkpoint 'nowhere'" in capsys.readouterr().err
    assert "reason" in cli.COMMANDS


def test_cli_reason_fast_writes_figures_csv_and_summary(tmp_path, capsys):
    import pandas as pd

    argv = ["reason", "--fast", "--steps", "4", "--pass-k", "4", "--pass-problems", "8"]
    assert cli.main([*argv, "--no-progress", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for row in ("scratchpad share (T=1)", "sampled accuracy", "forced direct", "time (CPU)"):
        assert row in out, out
    assert "--fast: a CI-sized run" in out
    for name in ("reason_training.png", "reason_pass_at_k.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    metrics = pd.read_csv(tmp_path / "reason_metrics.csv")
    assert metrics["step"].max() == 4 and "completions/scratchpad_share" in metrics
    summary = pd.read_csv(tmp_path / "reason_summary.csv", index_col=0)
    assert list(summary.index) == ["warm start", "GRPO"] and "curve pass@4" in summary


def test_readme_reasoning_table_and_verdicts(tmp_path):
    """The README's reasoning table: start -> final, mean ± sd over seeds, runs in order; a
    difference is called only where every seed agrees."""
    import json

    import pandas as pd

    from grpo_edu.reason.results import called, readme_table

    report = {"scratchpad_share": 0.1, "sampled": 0.2, "greedy": 0.9, "forced_direct": 0.05,
              "mean_length": 5.0, "pass_at": {"8": 0.5}}  # fmt: skip
    lines = []
    for run, seed, final in (("beta 0", 0, 0.8), ("outcome (OS)", 0, 0.7), ("outcome (OS)", 1, 0.9)):
        lines.append(json.dumps({"name": run, "seed": seed, "task": "sum4", "start": report,
                                 "final": report | {"sampled": final},
                                 "seconds": {"train_cpu": 100.0 + seed}}))  # fmt: skip
    (tmp_path / "reason_runs.jsonl").write_text("\n".join(lines) + "\n")
    pd.DataFrame({"run": ["outcome (OS)"], "seed": [0], "step": [0]}).to_csv(
        tmp_path / "reason_runs_metrics.csv", index=False
    )
    rows = readme_table(tmp_path).splitlines()
    assert rows[2].startswith("| GRPO, outcome reward (R1-Zero run) | 2 |")  # OS first, 2 seeds
    assert "0.200 ± 0.000 → 0.800 ± 0.141" in rows[2] and "100 ± 1" in rows[2]
    assert rows[3].startswith("| the same, β = 0 | 1 |") and "0.200 → 0.800 |" in rows[3]
    assert len(rows) == 4  # runs without results are left out
    a, b = pd.Series([0.8, 0.9]), pd.Series([0.5, 0.79])
    assert called(a, b) == "higher" and called(b, a) == "lower"
    assert called(a, pd.Series([0.85])) == "within the spread"

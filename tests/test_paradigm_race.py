"""The unified table computed from the code, its explorer, and the race (a seconds-sized one).

The race's targets (all methods, 3 seeds, <= 8 minutes) are measured by the CLI's own report
(``python -m grpo_edu paradigm``), not here.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from grpo_edu import paradigm, widgets
from grpo_edu.algorithms import GRPOConfig, grpo_advantages, ppo_advantages, ppo_token_rewards
from grpo_edu.explain import render_png
from grpo_edu.explain.coefficients import answer_weights, figure_coefficients, group_coefficients
from grpo_edu.models import load_policy
from grpo_edu.paradigm import (
    METHODS,
    RaceConfig,
    check_race_config,
    coefficient_table,
    format_table,
    gradient_coefficients,
    paradigm_table,
    race_table,
    run_race,
)
from grpo_edu.paradigm.race import WARM_START, passk_table
from grpo_edu.tasks import get_task
from grpo_edu.trainer import SOURCES, TrainConfig

PNG = b"\x89PNG\r\n\x1a\n"


def close(a, b, **kw):
    torch.testing.assert_close(a, torch.as_tensor(b, dtype=a.dtype), **kw)


# --------------------------------------------------------------------------------- the table
def test_paradigm_table_reads_the_data_sources_from_the_trainer():
    table = paradigm_table()
    assert list(table.index) == [paradigm.LABELS[m] for m in METHODS]
    offline = {paradigm.LABELS[m] for m, s in SOURCES.items() if s == "warm_start"}
    assert offline == {"RFT", "DPO"}
    for label in offline:
        assert "offline" in table.loc[label, "data source D"]
    assert "online" in table.loc["Online RFT", "data source D"]
    assert "reference answers" in table.loc["SFT", "data source D"]


def _group(rewards, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    mask = (torch.arange(T) < torch.tensor(lengths)[:, None]).float()  # (G, T)
    logp = -torch.rand(len(rewards), T, generator=g) * 2 * mask
    ref_logp = (logp - 0.3 * torch.randn(logp.shape, generator=g)) * mask
    return torch.tensor(rewards), logp, ref_logp, mask


def test_gradient_coefficients_are_the_closed_forms():
    rewards, logp, ref_logp, mask = _group([1.0, 0, 0, 1, 0, 1], [3, 2, 4, 3, 3, 1])
    config = TrainConfig()
    gc = gradient_coefficients(rewards, logp, ref_logp, mask, config=config)
    assert list(gc) == list(METHODS) and torch.isnan(gc["sft"]).all()
    close(gc["rft"], rewards[:, None] * mask)  # exactly the 0/1 reward
    close(gc["online_rft"], gc["rft"])  # same numbers: they differ only in D
    A = grpo_advantages(rewards, 6, config.grpo)
    expected = (A[:, None] + 0.04 * ((ref_logp - logp).exp() - 1)) * mask
    close(gc["grpo"], expected, atol=1e-6, rtol=1e-5)
    # PPO: whitened GAE, times B |o_i| / sum |o| (its loss is a token mean)
    token_rewards = ppo_token_rewards(rewards, logp, ref_logp, mask, 0.04)
    adv, _ = ppo_advantages(token_rewards, torch.zeros_like(logp), mask, config.ppo)
    lengths = mask.sum(-1, keepdim=True)
    close(gc["ppo"], adv * 6 * lengths / lengths.sum() * mask, atol=1e-6, rtol=1e-5)
    # DPO: 3 correct against 3 wrong: every answer in a pair, + on the correct ones
    per_answer = gc["dpo"].sum(-1)
    assert (per_answer[[0, 3, 5]] > 0).all() and (per_answer[[1, 2, 4]] < 0).all()


def test_grpo_coefficients_sum_to_zero_rft_never_negative():
    rewards, logp, _, mask = _group([1.0, 0, 0, 0, 1, 0, 0, 0], [3] * 8, seed=1)
    gc = gradient_coefficients(rewards, logp, logp, mask)  # pi = pi_ref: no KL term
    w = answer_weights(gc)
    assert abs(w["grpo"].sum().item()) < 1e-4  # the group baseline: mean 0
    assert (w["rft"] >= 0).all() and (w["grpo"][rewards == 0] < 0).all()


def test_coefficient_table_on_a_real_group():
    policy, tok = load_policy("add2")
    config = TrainConfig(task="add2", group_size=8)
    problem = get_task("add2").train[3]
    table = coefficient_table(policy, tok, problem, config, seed=0)
    per_answer = table.per_answer()
    assert per_answer.shape == (9, 6) and list(per_answer.columns)[0] == "SFT"
    assert per_answer["SFT"].iloc[-1] == pytest.approx(1.0)  # the reference answer
    assert per_answer["SFT"].iloc[:-1].isna().all() and per_answer["GRPO"].iloc[-1] != 0
    rewards = table.rewards
    close(torch.tensor(per_answer["RFT"].iloc[:-1].to_numpy(), dtype=torch.float32), rewards)
    tokens = table.per_token()
    assert set(tokens["method"]) == set(per_answer.columns)


# ------------------------------------------------------------------------------- the explorer
def test_explorer_group_by_hand():
    gc = group_coefficients((1, 0, 0, 1), length=2, drift=0.0)
    w = answer_weights(gc)
    close(w["rft"], [1.0, 0, 0, 1])
    close(w["dpo"], [0.1, -0.1, -0.1, 0.1])  # beta sigmoid(0) = 0.05, times |o| = 2 (sums)
    close(w["grpo"], torch.tensor([1, -1, -1, 1.0]) * 0.5 / (math.sqrt(1 / 3) + 1e-4))


def test_dpo_weight_shrinks_as_the_pair_separates():
    weights = [answer_weights(group_coefficients((1, 0), drift=d))["dpo"][0] for d in (0, 1, 3)]
    assert weights[0] > weights[1] > weights[2] > 0


def test_explorer_redraws_for_every_control():
    e = widgets.coefficient_explorer()
    assert bytes(e.image.value).startswith(PNG)  # bytes in ipywidgets 7, a memoryview in 8
    changes = {"drift": 0.8, "value": 0.4, "kl_coef": 0.2, "dpo_beta": 0.5, "length": 5}
    for name, value in changes.items():
        before = bytes(e.image.value)
        e.controls[name].value = value
        assert bytes(e.image.value) != before, name
    e.controls["rewards"].value = widgets.GROUP_PRESETS[1][1]
    assert render_png(figure_coefficients()).startswith(PNG)


def test_explorer_bad_input():
    with pytest.raises(ValueError, match="at least 2 rewards"):
        group_coefficients((1,))
    with pytest.raises(ValueError, match="length must be an int >= 1"):
        group_coefficients((1, 0), length=0)


# ---------------------------------------------------------------------------------- the race
TINY = replace(
    RaceConfig.fast(), methods=("online_rft", "dpo"), seeds=(0, 1), steps=2, n_prompts=4,
    group_size=4, eval_every=1, eval_size=8, report_size=12, report_k=2, passk_size=4, passk_n=4,
)  # fmt: skip


@pytest.fixture(scope="module")
def tiny_race():
    return run_race(TINY, progress=False)


def test_race_runs_every_method_and_seed_on_the_same_budget(tiny_race):
    r = tiny_race
    assert list(r.runs["method"]) == ["start", "online_rft", "online_rft", "dpo", "dpo"]
    last = r.metrics.groupby(["method", "seed"])["completions_seen"].max()
    assert (last == 2 * 16).all()  # the same number of completions for every run
    zero = r.metrics[r.metrics["step"] == 0]
    assert zero["eval/sampled"].nunique() == 1  # every run starts from the same evaluation
    assert set(r.passk["k"]) == {1, 2, 4}


def test_race_table_has_a_mean_and_a_spread(tiny_race):
    table = race_table(tiny_race.runs)
    assert ("sampled", "mean") in table.columns and ("sampled", "std") in table.columns
    runs = tiny_race.runs[tiny_race.runs["method"] == "dpo"]["sampled"]
    assert table.loc["dpo", ("sampled", "mean")] == pytest.approx(runs.mean())
    assert table.loc["dpo", ("sampled", "std")] == pytest.approx(runs.std(ddof=1))
    text = format_table(table)
    assert "±" in text.loc["dpo", "sampled"] and "±" not in text.loc["start", "sampled"]


def test_pass_at_k_curves_rise_with_k(tiny_race):
    curves = passk_table(tiny_race.passk)
    assert list(curves.index) == ["start", "online_rft", "dpo"]
    assert (curves.diff(axis=1).iloc[:, 1:] >= -1e-12).all().all()  # pass@k grows with k


def test_race_figures(tiny_race):
    figures = paradigm.paradigm_figures(tiny_race)
    assert set(figures) == {"paradigm_race", "paradigm_passk", "paradigm_final"}
    for fig in figures.values():
        assert render_png(fig).startswith(PNG)


def test_the_race_warm_start_is_shipped_and_not_at_ceiling():
    card = pd.read_json(WARM_START / "card.json", typ="series")
    assert card["task"] == RaceConfig().task == "mul2"
    assert card["eval"]["pass_at_k"] < 0.7  # pass@8: far from 1, unlike add2 (0.97)
    assert card["pretrain"] == paradigm.race.WARM_START_RECIPE.__dict__


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(methods=("sft", "ppo2")), "RaceConfig.methods must be names of"),
        (dict(methods=()), "RaceConfig.methods must be names of"),
        (dict(seeds=()), "RaceConfig.seeds is empty"),
        (dict(seeds=(0, 0)), "must not repeat"),
        (dict(passk_n=0), "RaceConfig.passk_n must be an int >= 1"),
        (dict(workers=0), "RaceConfig.workers must be an int >= 1"),
        (dict(steps=0), "TrainConfig.steps must be an int >= 1"),
        (dict(group_size=1), "group_size"),
    ],
)
def test_bad_race_configs_fail_before_any_run(change, match):
    with pytest.raises(ValueError, match=match):
        check_race_config(replace(RaceConfig(), **change))


def test_lrs_reach_the_runs():
    config = replace(RaceConfig(), lrs=(("grpo", 7e-4),))
    assert config.train_config("grpo", 1).lr == 7e-4 and config.train_config("grpo", 1).seed == 1
    assert config.train_config("ppo", 0).lr == TrainConfig().lr
    assert config.train_config("dpo", 0).grpo == GRPOConfig()


def test_saved_race_loads_back(tiny_race, tmp_path):
    paradigm.save_race(tiny_race, tmp_path)
    loaded = paradigm.load_race(tmp_path)
    assert loaded.config == tiny_race.config
    pd.testing.assert_frame_equal(loaded.table, tiny_race.table, check_dtype=False)
    assert loaded.start == pytest.approx(tiny_race.start)
    assert set(paradigm.paradigm_figures(loaded)) == {"paradigm_race", "paradigm_passk",
                                                      "paradigm_final"}  # fmt: skip
    with pytest.raises(ValueError, match="run `python -m grpo_edu paradigm"):
        paradigm.load_race(tmp_path / "nothing")


# ------------------------------------------------------------------------------------ the CLI
def test_cli_refuses_to_overwrite_results_before_any_work(tmp_path, capsys):
    from grpo_edu.cli import main

    (tmp_path / "paradigm_runs.csv").write_text("shipped\n")
    assert main(["paradigm", "--fast", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "paradigm_runs.csv exists" in err and "--overwrite" in err
    assert (tmp_path / "paradigm_runs.csv").read_text() == "shipped\n"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["paradigm", "--methods", "sft", "nope"], "invalid choice: 'nope'"),
        (["paradigm", "--workers", "0"], "must be >= 1"),
        (["paradigm", "--seeds", "0", "0"], "must not repeat"),
    ],
)
def test_cli_bad_input(argv, message, capsys, tmp_path):
    from grpo_edu.cli import main

    try:
        status = main([*argv, "--out", str(tmp_path)])
    except SystemExit as e:  # argparse's own errors
        status = e.code
    assert status == 2 and message in capsys.readouterr().err

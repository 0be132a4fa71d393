"""The compare job on a tiny budget: both algorithms run from the same warm start and are reported."""

from dataclasses import replace

import pandas as pd
import pytest
from matplotlib.figure import Figure

from grpo_edu.compare import CompareConfig, run_compare
from grpo_edu.plots import compare_figures, save_figures
from grpo_edu.trainer import METRICS


@pytest.fixture(scope="module")
def result():
    config = replace(CompareConfig().with_steps(2), eval_every=2, eval_samples=1, eval_size=40,
                     report_size=40, report_k=2)  # fmt: skip
    return run_compare(config, progress=False)


def test_summary_reports_both_algorithms_and_the_start(result):
    s = result.summary
    assert list(s.index) == ["start", "grpo", "ppo"]
    for column in ("steps", "completions", "trainable_params", "held_params", "steps_to_target"):
        assert str(s[column].dtype) == "Int64", column  # counts print as 855552, not 855552.0
    assert s.loc["start", "steps"] is pd.NA and result.machine["torch"]
    for algo in ("grpo", "ppo"):
        assert s.loc[algo, "completions"] == 256 and s.loc[algo, "steps"] == 2
        assert 0 <= s.loc[algo, "sampled"] <= 1 and s.loc[algo, "train_seconds"] > 0
    assert s.loc["grpo", "train_state_mb"] / s.loc["ppo", "train_state_mb"] <= 0.6
    n, head = s.loc["grpo", "trainable_params"], 128 + 1  # policy params; critic's value head
    assert s.loc["grpo", "held_params"] == 2 * n  # policy + reference
    assert s.loc["ppo", "trainable_params"] == 2 * n + head  # policy + critic (body + head)
    assert s.loc["ppo", "held_params"] == 3 * n + head  # + reference


def test_time_to_target_is_the_first_crossing():
    from grpo_edu.compare import _time_to

    m = pd.DataFrame({"step": [0, 50, 100, 150], "time/elapsed": [0.0, 5.0, 10.0, 15.0],
                      "eval/sampled": [0.6, 0.91, float("nan"), 0.95]})  # fmt: skip
    assert _time_to(m, 0.9) == {"steps_to_target": 50, "seconds_to_target": 5.0}
    never = _time_to(m, 0.99)
    assert never["steps_to_target"] != never["steps_to_target"]  # NaN: not reached


def test_metrics_are_long_format_with_documented_columns(result):
    m = result.metrics
    assert set(m["algorithm"]) == {"grpo", "ppo"}
    assert set(m.columns) - {"algorithm"} <= set(METRICS)
    start = m[m["step"] == 0]
    assert len(start) == 2 and start["eval/sampled"].notna().all()


def test_figures_are_drawn_and_saved(result, tmp_path):
    figures = compare_figures(result)
    assert set(figures) == {"compare_accuracy", "compare_training", "compare_memory"}
    assert all(isinstance(f, Figure) for f in figures.values())
    paths = save_figures(figures, tmp_path)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_figures_display_as_images_without_matplotlib_inline(result):
    """IPython shows a returned figure as a PNG even where no pyplot backend was activated."""
    from IPython.core.formatters import DisplayFormatter

    fig = compare_figures(result)["compare_accuracy"]
    data, _ = DisplayFormatter().format(fig)  # a fresh formatter: no backend registered
    assert data["image/png"][:4] == b"\x89PNG"


def test_unequal_budgets_are_refused():
    c = CompareConfig()
    with pytest.raises(ValueError, match="same budget"):
        replace(c, ppo=replace(c.ppo, n_prompts=64))


def test_spread_and_verdicts_over_seeds():
    from grpo_edu.compare import spread, verdicts

    rows = {(seed, algo): {"sampled": base + 0.01 * seed, "seconds_per_step": t}
            for seed in range(3) for algo, base, t in (("grpo", 0.90, 0.1), ("ppo", 0.905, 0.2))}  # fmt: skip
    per_seed = pd.DataFrame.from_dict(rows, orient="index")
    per_seed.index.names = ["seed", "algorithm"]
    table = spread(per_seed)
    assert table.loc["grpo", ("sampled", "mean")] == pytest.approx(0.91)
    assert table.loc["grpo", ("sampled", "sd")] == pytest.approx(0.01)
    assert table.loc["ppo", ("sampled", "n")] == 3
    called = verdicts(per_seed, higher_is_better={"seconds_per_step": False})
    assert called == {"sampled": "within the spread", "seconds_per_step": "GRPO better"}
    one = per_seed.xs(0, level="seed", drop_level=False)
    assert verdicts(one)["sampled"].endswith("not called")


def test_seeds_result_collects_runs(result):
    from grpo_edu.compare import SeedsResult

    seeds = SeedsResult(result.config, {0: result, 1: result})
    assert seeds.per_seed.index.names == ["seed", "algorithm"] and len(seeds.per_seed) == 6
    assert set(seeds.metrics["seed"]) == {0, 1}
    figures = compare_figures(seeds)
    assert set(figures) == {"compare_accuracy", "compare_training", "compare_memory"}


def test_accuracy_figure_names_the_threads_not_cores(result):
    fig = compare_figures(result)["compare_accuracy"]
    labels = [ax.get_xlabel() for ax in fig.axes]
    assert any("torch thread" in label for label in labels)
    assert not any("cores" in label for label in labels)


def test_training_figure_has_no_always_zero_clip_panel(result):
    titles = [ax.get_title() for ax in compare_figures(result)["compare_training"].axes]
    assert not any("clip" in t for t in titles) and len(titles) == 4

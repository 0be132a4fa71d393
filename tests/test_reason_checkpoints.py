"""Tests of the shipped scratchpad warm start (data/checkpoints/sum4/): its card, its size, the
targets of the reasoning chapter's starting point, and that it measures as the card says."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from grpo_edu import models, tasks
from grpo_edu.evaluate_formats import evaluate_formats, sample_formats
from grpo_edu.pretrain import RECIPES, ScratchpadPretrainConfig, recipe

SCRATCHPAD = sorted(n for n, r in RECIPES.items() if isinstance(r, ScratchpadPretrainConfig))
MACHINE_KEYS = {"cpu", "cpu_flags", "cpu_count", "torch", "torch_cpu_capability", "torch_blas"}


@pytest.fixture(scope="module", params=SCRATCHPAD)
def shipped(request):
    name = request.param
    return name, *models.load_policy(name), models.load_card(name)


def test_sum4_is_shipped():
    assert "sum4" in SCRATCHPAD and (models.checkpoint_path("sum4") / "model.safetensors").exists()


def test_card_is_the_recipe_and_names_the_machine(shipped):
    name, model, _, card = shipped
    assert card["pretrain"] == json.loads(json.dumps(asdict(recipe(name))))  # tuples -> lists
    assert card["task"] == card["pretrain"]["task"] and card["steps"] == card["pretrain"]["steps"]
    assert card["n_params"] == models.n_params(model) <= 4_000_000
    assert card["model"] == models.model_config_of(model)
    assert MACHINE_KEYS <= set(card["machine"]) and card["torch_threads"] == 1
    # 10 minutes of pretraining on 2 cores, the warm start it starts from included
    base = models.load_card(card["pretrain"]["init_from"])
    assert 0 < card["train_cpu_seconds"] + base["train_cpu_seconds"] <= 600


def test_size(shipped):
    path = models.checkpoint_path(shipped[0])
    assert sum(f.stat().st_size for f in path.iterdir() if f.is_file()) <= 16e6


def test_sum4_card_meets_the_chapter_targets():
    e = models.load_card("sum4")["eval"]
    assert e["scratchpad_share"] <= 0.15  # rarely chooses the scratchpad at T = 1
    assert e["forced_scratchpad"] >= 2 * e["forced_direct"]  # but it is worth choosing
    assert e["sampled"] + 0.5 <= e["forced_scratchpad"]  # room for +0.5 by choosing it


def test_sum5_warm_start_never_saw_a_long_scratchpad():
    """The 'beyond selection' warm start: scratchpads for 3 operands only, RL on 5."""
    p = recipe("sum5")
    assert p.task == "sum5" and set(p.direct_only) == {"sum4", "sum5"} and "sum3" in p.tasks


def test_measures_as_the_card_says(shipped):
    name, model, tok, card = shipped
    e, p = card["eval"], card["pretrain"]
    problems = tasks.get_task(card["task"]).eval
    free = sample_formats(model, tok, problems, e["n"], 1.0, card["seed"], p["max_new_tokens"])
    share = sum(f == "scratchpad" for f in free.formats) / len(free.formats)
    assert share == pytest.approx(e["scratchpad_share"], abs=0.02)
    assert sum(free.correct) / len(free.correct) == pytest.approx(e["sampled"], abs=0.02)
    if name == "sum4":
        small = evaluate_formats(model, tok, problems[:100], n=2, seed=1, ks=(1,), forced_n=2)
        assert small.forced_scratchpad >= 2 * small.forced_direct

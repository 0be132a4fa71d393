"""The grader's parts one by one: the data channel, judging on the grader's side, the static
flags, the weights check, the output cap and the basic sandbox (which needs no root)."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from grpo_edu.exercises import codec, observe
from grpo_edu.exercises.checks import CASE_CHECKS
from grpo_edu.exercises.feedback import ExerciseFailed
from grpo_edu.exercises.flags import scan, setup_bindings
from grpo_edu.exercises.judge import judge
from grpo_edu.exercises.sandbox import Limits
from grpo_edu.models import CHECKPOINT_DIR

# --------------------------------------------------------------------------------- codec
VALUES = [
    torch.tensor([[1.5, float("nan")], [float("inf"), -0.0]]),
    torch.tensor(3.25, dtype=torch.float64),
    torch.tensor([1, 2], dtype=torch.int64),
    torch.tensor([True, False]),
    torch.tensor([0.1, 2.5], dtype=torch.bfloat16),
    (torch.zeros(2, 0), None),
    [1, 2.5, "x", None, True],
    float("nan"),
    np.int64(7),
    np.array([[1.0, 2.0]], dtype=np.float32),
    {"a": torch.ones(1)},
]


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a.isnan(), b.isnan())
            and (torch.equal(a.nan_to_num(), b.nan_to_num()))
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_survive_the_channel_as_standard_json(value):
    wire = codec.to_json(codec.encode(value))  # what crosses: bytes of standard JSON
    assert _same(codec.decode(codec.from_json(wire)), value)


def test_other_objects_arrive_as_opaque_text():
    class Sneaky:
        def __repr__(self):
            return "looks harmless"

        def __eq__(self, other):  # would fool a naive comparison in the grader
            return True

    got = codec.decode(codec.from_json(codec.to_json(codec.encode(Sneaky()))))
    assert isinstance(got, codec.Opaque) and repr(got) == "looks harmless"
    assert got.type_name.endswith("Sneaky") and got != 1.0


@pytest.mark.parametrize(
    "data, why",
    [
        ({"__kind__": "pickle", "data": "gASV"}, "unknown kind"),
        ({"__kind__": "tensor", "dtype": "float32", "shape": [3], "data": [1, 2]}, "does not hold"),
        ({"__kind__": "tensor", "dtype": "object", "shape": [1], "data": [1]}, "is not one of"),
        ({"__kind__": "tensor", "dtype": "float32", "shape": [1], "data": ["x"]}, "other than"),
        ({"__kind__": "tensor", "dtype": "float32", "shape": [10**7], "data": []}, "does not hold"),
        ({"no": "kind"}, "unexpected dict"),
        (json.loads("[" * 40 + "]" * 40), "deeper"),
    ],
)
def test_malformed_data_is_refused(data, why):
    with pytest.raises(codec.DecodeError, match=why):
        codec.decode(data)


def test_only_standard_json_is_read():
    with pytest.raises(codec.DecodeError, match="non-standard"):
        codec.from_json(b"[NaN]")
    with pytest.raises(codec.DecodeError, match="not JSON"):
        codec.from_json(b"\x80garbage")


def test_frames_split_anywhere_and_stop_at_the_limit():
    import io

    stream = io.BytesIO()
    codec.write_frame(stream, {"event": "start", "cell": 0})
    codec.write_frame(stream, b"\x00weights", blob=True)
    raw = stream.getvalue()
    reader = codec.FrameReader(limit=1000)
    for i in range(len(raw)):
        reader.feed(raw[i : i + 1])
    assert reader.frames == [("json", {"event": "start", "cell": 0}), ("blob", b"\x00weights")]
    small = codec.FrameReader(limit=len(raw) - 1)
    small.feed(raw)
    assert small.error and "limit" in small.error
    bad = codec.FrameReader(limit=1000)
    bad.feed(b"\xff" * 20)
    assert bad.error and "malformed" in bad.error


# ----------------------------------------------------------------- judging on data alone
def _population_std(rewards, G, eps=1e-4):
    g = rewards.view(-1, G)
    return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True, correction=0) + eps)).flatten()


def _over_the_wire(check, fn):
    """Observe ``fn`` as the sandbox does, send the data through JSON, judge here."""
    cases = [
        observe.decode_case(codec.from_json(codec.to_json(observe.encode_case(c))))
        for c in check.cases
    ]
    data = [observe.encode(observe.observe(fn, c, check.wrt)) for c in cases]
    return judge(check, [observe.decode(d) for d in codec.from_json(codec.to_json(data))])


def test_judging_data_gives_the_same_feedback_as_the_notebook_check():
    check = CASE_CHECKS["group_advantages"](seed=3, n_random=5)
    with pytest.raises(ExerciseFailed) as in_process:
        judge(check, [observe.observe(_population_std, c) for c in check.cases])
    with pytest.raises(ExerciseFailed) as remote:
        _over_the_wire(check, _population_std)
    assert str(remote.value) == str(in_process.value) and "population std" in str(remote.value)


def test_gradients_and_in_place_edits_are_judged_from_data():
    def detached(logp, old_logp, advantages, clip_eps=0.2):
        ratio, adv = (logp - old_logp).exp().detach(), advantages[:, None]
        return -torch.min(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)

    def right_but_in_place(rewards, G, eps=1e-4):
        from grpo_edu.advantages import group_advantages

        out = group_advantages(rewards, G)
        rewards.zero_()  # the caller's rewards are gone
        return out

    with pytest.raises(ExerciseFailed, match="does not depend differentiably"):
        _over_the_wire(CASE_CHECKS["clipped_surrogate"](), detached)
    with pytest.raises(ExerciseFailed, match="changed its input `rewards` in place"):
        _over_the_wire(CASE_CHECKS["group_advantages"](), right_but_in_place)


def test_the_right_function_passes_over_the_wire():
    from grpo_edu.advantages import gae

    assert "all" in _over_the_wire(CASE_CHECKS["gae"](seed=5, n_random=6), gae)


# ------------------------------------------------------------------------- static flags
SETUP = (
    "import re\nfrom grpo_edu import tasks\n"
    "from grpo_edu.exercises import check_parse_answer, hint\n"
    "from grpo_edu.tasks import MAX_ANSWER_DIGITS"
)
REFS = {"grpo_edu.tasks.parse_answer", "grpo_edu.rewards.correctness_reward"}
FLAGS = [  # (cell source, own exercise or None, expected finding or "" for none)
    ("def parse_answer(t):\n    return tasks.parse_answer(t)", "parse_answer", "reference"),
    (
        "def correctness_reward(p, completions, answer, **kw):\n    return [1.0 * (tasks.parse_answer(c) == a) for c, a in zip(completions, answer)]",
        "correctness_reward",
        "",
    ),
    ("print(tasks.parse_answer('55'))", None, ""),
    ("parse_answer = tasks.parse_answer", None, "reference"),
    ("parse_answer = lambda t: tasks.parse_answer(t)", None, "reference"),
    ("from grpo_edu.advantages import group_advantages", None, "imports"),
    ("import grpo_edu.losses as L", None, "imports"),
    ("from grpo_edu.tasks import MAX_ANSWER_DIGITS", None, ""),
    ("%time x = 1\n%matplotlib inline", None, ""),
    ("!cat ../x", None, "drives IPython"),
    ("m = __import__('grpo_' + 'edu.advantages')", None, "cannot be read"),
    ("import sys\nsys.modules['grpo_edu.advantages']", None, "sys.modules"),
    ("open('../bob/01_rewards.ipynb').read()", None, "reads a notebook"),
    ("def parse_answer(text:", "parse_answer", ""),  # a syntax error: nothing to read
]


@pytest.mark.parametrize("source, own, finding", FLAGS)
def test_static_flags(source, own, finding):
    allowed, bound = setup_bindings(SETUP)
    found = scan(source, allowed, bound, own, REFS)
    assert (finding in " ".join(found)) if finding else found == [], found


# ----------------------------------------------------------------------- trained weights
@pytest.mark.skipif(
    not (CHECKPOINT_DIR / "add2" / "model.safetensors").exists(), reason="no add2 warm start"
)
def test_weights_come_back_as_safetensors_and_nothing_else():
    from safetensors.torch import save

    from grpo_edu.exercises.checks.training import load_weights, weights_blob
    from grpo_edu.models import load_policy

    policy, _ = load_policy("add2")
    loaded, _ = load_weights(weights_blob(policy))
    assert all(
        torch.equal(a, b) for a, b in zip(policy.parameters(), loaded.parameters(), strict=True)
    )
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight  # still tied
    state = {k: v.clone() for k, v in policy.state_dict().items() if k != "lm_head.weight"}
    for blob, why in [
        (b"\x80\x04pickle", "not a safetensors"),
        (save({"x": torch.zeros(1)}), "hold tensors"),
        (
            save(
                {
                    **state,
                    "model.norm.weight": torch.full_like(state["model.norm.weight"], float("nan")),
                }
            ),
            "NaN",
        ),
    ]:
        with pytest.raises(ValueError, match=why):
            load_weights(blob)


# ------------------------------------------------------------------ limits and sandboxes
def test_limits_name_the_bad_field():
    with pytest.raises(ValueError, match="Limits.timeout must be > 0"):
        Limits(timeout=0).check()


def _basic_job(tmp_path: Path, cells: list[dict], limits: Limits) -> dict:
    work = tmp_path / "job"
    for sub in ("work", "home", "tmp"):
        (work / sub).mkdir(parents=True)
    config = {"isolation": "basic", "limits": asdict(limits), "workdir": str(work / "work")}
    return {"sandbox": config, "files": [["data.txt", "aGk="]], "cells": cells}


def test_basic_sandbox_runs_cells_caps_output_and_reports_errors(tmp_path):
    from grpo_edu.exercises.grade import PACKAGE_ROOT
    from grpo_edu.exercises.supervise import launch

    limits = Limits(timeout=60, output_kb=16)
    cells = [
        {"kind": "code", "source": "import os\nprint(os.environ['HOME'], open('data.txt').read())"},
        {
            "kind": "code",
            "source": "print('x' * 5_000_000)\nimport os\nos.write(1, b'y' * 5_000_000)",
        },
        {"kind": "code", "source": "1 / 0"},
    ]
    outcome = launch(_basic_job(tmp_path, cells, limits), limits, tmp_path, PACKAGE_ROOT)
    ends = [f for kind, f in outcome.frames if kind == "json" and f.get("event") == "end"]
    assert [e["error"] for e in ends] == [None, None, "ZeroDivisionError: division by zero"]
    assert outcome.output.startswith(f"{tmp_path / 'job' / 'home'} hi")  # a private HOME
    assert "bytes of output dropped" in outcome.output
    assert len(outcome.output) < 17_000  # print() and os.write(1, ...) alike
    assert outcome.returncode == 0 and outcome.killed is None


def test_a_notebook_past_its_budget_is_killed(tmp_path):
    from grpo_edu.exercises.grade import PACKAGE_ROOT
    from grpo_edu.exercises.supervise import launch

    limits = Limits(timeout=8, cell_timeout=60, grace=1)
    cells = [
        {
            "kind": "code",
            "source": "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)",
        }
    ]
    outcome = launch(_basic_job(tmp_path, cells, limits), limits, tmp_path, PACKAGE_ROOT)
    assert outcome.killed == "timeout" and outcome.seconds < 8 + 1 + 5


@pytest.mark.parametrize(
    "cells",
    [
        [
            {
                "cell_type": "code",
                "source": "1",
                "metadata": {"nbgrader": "not a dict"},
                "outputs": [],
            }
        ],
        [{"cell_type": "code", "source": ["1"], "metadata": [], "outputs": []}],
        [{"cell_type": "sql", "source": "1", "metadata": {}}],
        [{"cell_type": "code", "source": 1, "metadata": {}, "outputs": []}],
    ],
)
def test_notebooks_with_odd_cells_are_unreadable_or_harmless(tmp_path, cells):
    from grpo_edu.exercises.notebook import grade_id
    from grpo_edu.exercises.prepare import read_notebook

    path = tmp_path / "nb.ipynb"
    path.write_text(
        json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells})
    )
    try:
        nb = read_notebook(path)
    except ValueError as err:
        assert "not a readable notebook" in str(err)
        return
    assert [grade_id(c) for c in nb.cells] == [None] * len(nb.cells)


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or os.geteuid() != 0, reason="full isolation needs root"
)
def test_full_sandbox_sees_only_what_it_is_given(tmp_path):
    """A folder under /tmp (a CI checkout, say) is exposed read-only; /tmp itself is private."""
    from grpo_edu.exercises.grade import PACKAGE_ROOT, UID_BASE
    from grpo_edu.exercises.sandbox import sandbox_paths
    from grpo_edu.exercises.supervise import launch

    extra, hidden = tmp_path / "extra", tmp_path / "extra" / "secret"
    hidden.mkdir(parents=True)
    (extra / "seen.txt").write_text("seen")
    (hidden / "answers.txt").write_text("hidden")
    limits = Limits(timeout=60)
    uid = UID_BASE + 99
    config = {"isolation": "full", "uid": uid, "gid": uid, "hide": [str(hidden)]}
    config.update(expose=[*sandbox_paths(), str(extra)], limits=asdict(limits))
    source = (
        f"import os\nprint(open({str(extra / 'seen.txt')!r}).read(), os.listdir({str(hidden)!r}),"
        f" os.path.exists({str(tmp_path.parent)!r} + '/..'), os.getuid())"
    )
    job = {"sandbox": config, "files": [], "cells": [{"kind": "code", "source": source}]}
    outcome = launch(job, limits, tmp_path, PACKAGE_ROOT)
    assert f"seen [] True {uid}" in outcome.output, outcome.output

"""Hand-computed tests of the process-supervision advantage (DeepSeekMath sec. 4.1.3)."""

from __future__ import annotations

import math

import pytest
import torch

from grpo_edu.advantages import group_advantages, process_advantages


def _steps(rows: list[dict[int, float]], T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(step_rewards, step_mask), (B, T), from one {end_token: reward} dict per row."""
    rewards, mask = torch.zeros(len(rows), T), torch.zeros(len(rows), T, dtype=torch.bool)
    for i, row in enumerate(rows):
        for t, r in row.items():
            rewards[i, t], mask[i, t] = r, True
    return rewards, mask


def test_by_hand_one_group():
    # row 0: steps ending at t=1 (right) and t=3 (right); row 1: one step at t=2 (wrong).
    # R = {1, 1, 0}: mean 2/3, std (ddof 1) = sqrt(((1/3)^2 + (1/3)^2 + (2/3)^2) / 2) = 1/sqrt(3)
    r, m = _steps([{1: 1.0, 3: 1.0}, {2: 0.0}], T=4)
    up, down = (1 / 3) * math.sqrt(3), -(2 / 3) * math.sqrt(3)  # 0.577, -1.155 (eps aside)
    expected = torch.tensor([[2 * up, 2 * up, up, up], [down, down, down, 0.0]])
    torch.testing.assert_close(process_advantages(r, m, 2, eps=0.0), expected)
    # with the default eps = 1e-4 on the std
    std = 1 / math.sqrt(3) + 1e-4
    torch.testing.assert_close(process_advantages(r, m, 2)[0, 0], torch.tensor(2 * (1 / 3) / std))


def test_groups_are_normalised_separately_and_ties_give_zero():
    # group 0 all right (tied) -> exactly 0; group 1: R = {1, 0}, mean 1/2, std sqrt(1/2)
    r, m = _steps([{0: 1.0, 2: 1.0}, {1: 1.0}, {2: 1.0}, {0: 0.0}], T=3)
    a = process_advantages(r, m, 2, eps=0.0)
    assert torch.equal(a[:2], torch.zeros(2, 3))
    z = 0.5 / math.sqrt(0.5)
    torch.testing.assert_close(a[2:], torch.tensor([[z, z, z], [-z, 0.0, 0.0]]))


def test_one_step_per_completion_is_the_outcome_advantage():
    """With a single step ending at each row's last token, PS is OS: A_t = the group z-score."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    lengths = [3, 1, 4, 2, 4, 3]
    r, m = _steps([{n - 1: float(x)} for n, x in zip(lengths, rewards, strict=True)], T=4)
    a = process_advantages(r, m, 3)
    outcome = group_advantages(rewards, 3)
    for i, n in enumerate(lengths):
        torch.testing.assert_close(a[i, :n], outcome[i].expand(n))
        assert torch.all(a[i, n:] == 0)


def test_bad_input():
    r, m = _steps([{0: 1.0}, {}], T=2)
    with pytest.raises(ValueError, match=r"no step in rows \[1\]"):
        process_advantages(r, m, 2)
    with pytest.raises(ValueError, match="not divisible by group_size=2"):
        process_advantages(torch.zeros(3, 2), torch.ones(3, 2), 2)
    with pytest.raises(ValueError, match="shape"):
        process_advantages(torch.zeros(2, 2), torch.ones(2, 3), 2)
    with pytest.raises(ValueError, match="step_rewards contains NaN or inf"):
        process_advantages(torch.full((2, 2), math.nan), torch.ones(2, 2), 2)

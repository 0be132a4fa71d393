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


# ------------------------------------------------------------------ the hook in GRPO and train
def _rollout_of(texts: list[str], prompt: str = "12+7+5+9=", answer: int = 33, group_size=2):
    """A hand-made rollout of the given completions (one token per character, then EOS)."""
    from grpo_edu.rollout import Rollout, completion_mask_from_ids, encode_prompts
    from grpo_edu.tokenizer import build_tokenizer
    from grpo_edu.vocab import EOS_ID, PAD_ID, VOCAB

    tok = build_tokenizer()
    T = max(len(t) for t in texts) + 1
    ids = torch.full((len(texts), T), PAD_ID)
    for i, t in enumerate(texts):
        row = [VOCAB[c] for c in t] + [EOS_ID]
        ids[i, : len(row)] = torch.tensor(row)
    prompt_ids, prompt_mask = encode_prompts(tok, [prompt] * len(texts))
    mask = completion_mask_from_ids(ids)
    return Rollout(
        prompts=[prompt] * len(texts), answers=[answer] * len(texts), prompt_ids=prompt_ids,
        prompt_mask=prompt_mask, completion_ids=ids, completion_mask=mask, texts=texts,
        truncated=torch.zeros(len(texts), dtype=torch.bool),
        group=torch.arange(len(texts)) // group_size, sampling_logp=torch.zeros(ids.shape),
        group_size=group_size, temperature=1.0, max_new_tokens=T,
    )  # fmt: skip


def test_compute_step_rewards_puts_each_score_where_its_step_ends():
    from grpo_edu.trainer import compute_step_rewards

    rollout = _rollout_of([" 12+7=19+5=24+9=33", " 12+7=19+5=25+9=34", "33", "32"])
    scores, ends = compute_step_rewards(rollout, "process")
    assert ends[0].nonzero().flatten().tolist() == [7, 12, 18]  # "19", "24" end; EOS at 18
    assert scores[0, [7, 12, 18]].tolist() == [1.0, 1.0, 1.0]
    assert scores[1, [7, 12, 18]].tolist() == [1.0, 0.0, 0.0]
    assert ends[2].nonzero().flatten().tolist() == [2] and scores[2, 2] == 1.0  # EOS of "33"
    assert ends[3].nonzero().flatten().tolist() == [2] and scores[3, 2] == 0.0
    assert ends.sum() == 8  # three steps, three steps, one, one


def test_a_special_token_is_one_token_of_several_characters():
    from grpo_edu.trainer import compute_step_rewards
    from grpo_edu.vocab import UNK_ID

    rollout = _rollout_of([" 12+7=19+5=24", "33"])
    rollout.completion_ids[0, 7] = UNK_ID  # the model wrote <unk> where the 9 was
    rollout.texts[0] = " 12+7=1<unk>+5=24"
    scores, ends = compute_step_rewards(rollout, "process")
    # no step parses after "1<unk>": one final step, scored 0 at the EOS (token 13, char 17)
    assert ends[0].nonzero().flatten().tolist() == [13] and scores[0].sum() == 0


def test_grpo_step_with_process_advantages():
    from grpo_edu.algorithms import GRPOConfig, grpo_step
    from grpo_edu.models import load_policy
    from grpo_edu.trainer import TrainConfig, build_state, compute_step_rewards

    policy, tok = load_policy("sum4")
    rollout = _rollout_of([" 12+7=19+5=24+9=33", " 12+7=19+5=25+9=34", "33", "32"])
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    steps = compute_step_rewards(rollout, "process")
    st = build_state(TrainConfig(task="sum4"), policy, tok)
    config = GRPOConfig(advantage="process")
    _, (t,) = grpo_step(st.policy, st.ref_model, st.optimizer, rollout, rewards, config,
                        trace=True, step_rewards=steps)  # fmt: skip
    torch.testing.assert_close(t.advantages, process_advantages(*steps, 2))
    assert t.advantages.shape == rollout.completion_ids.shape
    with pytest.raises(ValueError, match="needs step_rewards"):
        grpo_step(st.policy, st.ref_model, st.optimizer, rollout, rewards, config)


def test_process_supervision_with_one_step_per_answer_is_outcome_supervision():
    """Direct answers are one step each, ending at their EOS: GRPO+PS = GRPO+OS, loss and all."""
    from grpo_edu.algorithms import GRPOConfig, grpo_step
    from grpo_edu.models import load_policy
    from grpo_edu.trainer import TrainConfig, build_state, compute_step_rewards

    rollout = _rollout_of(["33", "3", "33", "-5"], group_size=4)
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0])
    losses = []
    for config, steps in ((GRPOConfig(), None),
                          (GRPOConfig(advantage="process"), compute_step_rewards(rollout, "process"))):  # fmt: skip
        st = build_state(TrainConfig(task="sum4"), *load_policy("sum4"))
        metrics, _ = grpo_step(st.policy, st.ref_model, st.optimizer, rollout, rewards, config,
                               step_rewards=steps)  # fmt: skip
        losses.append(metrics["loss/policy"])
    assert losses[0] == pytest.approx(losses[1], abs=1e-7)


def test_train_config_pairs_the_option_with_a_process_reward_model():
    from dataclasses import replace

    from grpo_edu.algorithms import GRPOConfig
    from grpo_edu.trainer import TrainConfig, check_train_config

    base = TrainConfig(task="sum4", checkpoint="sum4", rewards=("final_answer",))
    for bad in (replace(base, step_rewards="process"),
                replace(base, grpo=GRPOConfig(advantage="process"))):  # fmt: skip
        with pytest.raises(ValueError, match="step_rewards .* goes with GRPOConfig"):
            check_train_config(bad)
    with pytest.raises(ValueError, match="unknown step reward 'prm'"):
        check_train_config(replace(base, grpo=GRPOConfig(advantage="process"), step_rewards="prm"))
    check_train_config(replace(base, grpo=GRPOConfig(advantage="process"), step_rewards="process"))

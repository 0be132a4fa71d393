"""Tests of grpo_edu.tokenizer: lossless round trip, special tokens, save/load, left padding."""

from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from grpo_edu import tasks, vocab
from grpo_edu.tokenizer import build_tokenizer


@pytest.fixture(scope="module")
def tok() -> PreTrainedTokenizerFast:
    return build_tokenizer()


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_round_trip_every_prompt_and_answer(tok, name):
    task = tasks.get_task(name)
    texts = sorted(
        {p.prompt for p in task.train + task.eval} | {str(p.answer) for p in task.train + task.eval}
    )
    ids = tok(texts, add_special_tokens=False).input_ids
    decoded = tok.batch_decode(ids)
    bad = [(t, d) for t, d in zip(texts, decoded, strict=True) if t != d]
    assert not bad, f"{len(bad)} texts do not round-trip, e.g. {bad[:3]}"
    assert all(len(i) == len(t) for i, t in zip(ids, texts, strict=True)), "one char, one token"
    assert vocab.UNK_ID not in {i for row in ids for i in row}


def test_ids_are_the_fixed_vocabulary(tok):
    assert tok.get_vocab() == vocab.VOCAB
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (
        vocab.PAD_ID,
        vocab.BOS_ID,
        vocab.EOS_ID,
        vocab.UNK_ID,
    )
    assert tok("12+7=").input_ids == [vocab.BOS_ID] + [vocab.VOCAB[c] for c in "12+7="]


def test_special_tokens(tok):
    assert set(tok.all_special_tokens) == set(vocab.SPECIAL_TOKENS)
    ids = [vocab.BOS_ID, vocab.VOCAB["4"], vocab.VOCAB["2"], vocab.EOS_ID, vocab.PAD_ID]
    assert tok.decode(ids, skip_special_tokens=True) == "42"
    assert tok.decode(ids) == "<bos>42<eos><pad>"
    assert tok("-5<eos>", add_special_tokens=False).input_ids == [
        vocab.VOCAB["-"],
        vocab.VOCAB["5"],
        vocab.EOS_ID,
    ]


def test_spaces_kept_and_unknown_chars(tok):
    assert tok.decode(tok(" 4 2", add_special_tokens=False).input_ids) == " 4 2"
    assert tok("a7", add_special_tokens=False).input_ids == [vocab.UNK_ID, vocab.VOCAB["7"]]


def test_save_pretrained_round_trip(tok, tmp_path):
    tok.save_pretrained(tmp_path)
    loaded = PreTrainedTokenizerFast.from_pretrained(tmp_path, local_files_only=True)
    texts = ["47+8=", "12-40=", "-28", "12+7-5=", " 9"]
    assert loaded(texts).input_ids == tok(texts).input_ids
    assert loaded.get_vocab() == tok.get_vocab()
    assert loaded.padding_side == "left"
    assert loaded.pad_token_id == vocab.PAD_ID and loaded.eos_token_id == vocab.EOS_ID
    assert loaded.decode(tok("-28", add_special_tokens=False).input_ids) == "-28"


def test_left_padding(tok):
    enc = tok(["1+2=", "10+20="], padding=True, return_tensors="pt")
    assert enc.input_ids.shape == (2, 7)
    assert enc.input_ids[0, :2].tolist() == [vocab.PAD_ID, vocab.PAD_ID]
    assert enc.attention_mask.tolist() == [[0, 0, 1, 1, 1, 1, 1], [1] * 7]
    assert enc.input_ids[:, -1].tolist() == [vocab.VOCAB["="]] * 2  # last prompt token aligned

"""The fixed vocabulary shared by every stage: special tokens and the characters of the toy tasks.

Ids are fixed by position so that a checkpoint, a reward function and the tokenizer always agree:

    id 0 ``<pad>``   padding (never used to find where a completion ends: see ``rollout``)
    id 1 ``<bos>``   start of every prompt
    id 2 ``<eos>``   end of a completion
    id 3 ``<unk>``   any character outside ``CHARS``
    id 4...          one id per character of ``CHARS``
"""

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)
CHARS = "0123456789+-*= "
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)
VOCAB: dict[str, int] = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + tuple(CHARS))}
ID_TO_TOKEN: dict[int, str] = {i: tok for tok, i in VOCAB.items()}
"""The inverse of ``VOCAB``: id -> token string."""


def id_tokens(rows: list[list[int]]) -> list[list[str]]:
    """Each row of ids as one string per token (special tokens written out): for heatmaps."""
    return [[ID_TO_TOKEN[i] for i in row] for row in rows]

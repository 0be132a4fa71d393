"""A character-level tokenizer, built in code, wrapped as a transformers ``PreTrainedTokenizerFast``.

Every character of the toy tasks is one token (see ``grpo_edu.vocab``), so a learner can read a
batch of ids by eye and a per-token heatmap lines up with the characters of the text. Because it
is a real ``PreTrainedTokenizerFast``, the same object works with ``model.generate``,
``save_pretrained`` / ``from_pretrained`` and TRL's ``GRPOTrainer``.

    >>> tok = build_tokenizer()
    >>> tok("12+7=").input_ids          # <bos> is added in front of every prompt
    [1, 5, 6, 14, 11, 17]
    >>> tok.decode([5, 6, 2], skip_special_tokens=True)
    '12'
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from .vocab import BOS, BOS_ID, EOS, PAD, UNK, VOCAB


def _build_backend() -> Tokenizer:
    backend = Tokenizer(models.WordLevel(vocab=dict(VOCAB), unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(
        Regex("."), behavior="isolated"
    )  # one char, one token
    backend.decoder = decoders.Fuse()  # join tokens with no spaces in between
    backend.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A $B", special_tokens=[(BOS, BOS_ID)]
    )
    return backend


def build_tokenizer() -> PreTrainedTokenizerFast:
    """The course tokenizer: character level, ``<bos>`` prepended, left padding for generation.

    Left padding puts every prompt's last token in the same column, which is what batched
    sampling needs; ``rollout`` gives each row its position ids from the attention mask, so the
    padding changes nothing the model computes.
    """
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_build_backend(),
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="left",
        model_max_length=64,
        clean_up_tokenization_spaces=False,
        model_input_names=["input_ids", "attention_mask"],  # no token_type_ids: Llama has none
    )
    return tok

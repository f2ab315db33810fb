"""The WordPiece vocabulary of a BERT trained from scratch, and the tokenizer over it.

As in Google's Chinese BERT, every CJK character is its own token (KerasHub's `split_on_cjk`), so the
vocabulary is the corpus's characters plus WordPieces of the Latin words and numbers between them. Text
is lowercased. The tokenizer runs TF-Text ops only, so it goes inside the exported serving graph.
"""
from __future__ import annotations

import keras_hub
import tensorflow as tf

from data_prep.errors import UserError

# Chinese BERT's order: [PAD] is id 0, which the padding mask and the packer rely on.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def compute_vocabulary(texts: tf.data.Dataset, vocabulary_size: int) -> list[str]:
    """WordPiece vocabulary (special tokens first) of an unbatched dataset of tf.string texts."""
    if vocabulary_size <= len(SPECIAL_TOKENS):
        raise UserError(f"vocabulary size must exceed {len(SPECIAL_TOKENS)}, got {vocabulary_size}")
    try:
        vocab = keras_hub.tokenizers.compute_word_piece_vocabulary(
            texts.batch(1024), vocabulary_size, lowercase=True, split_on_cjk=True, reserved_tokens=SPECIAL_TOKENS,
        )
    except StopIteration:  # the trainer found no word at all
        vocab = SPECIAL_TOKENS
    if len(vocab) == len(SPECIAL_TOKENS):
        raise UserError("the training text is empty: no WordPiece vocabulary can be computed")
    return vocab


def make_tokenizer(vocabulary: list[str] | str, *, lowercase: bool = True) -> keras_hub.models.BertTokenizer:
    """A BertTokenizer over a vocabulary list or a vocab.txt path (one token a line)."""
    return keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)

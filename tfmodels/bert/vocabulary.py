"""The WordPiece vocabulary of a BERT trained from scratch, and the tokenizer over it.

As in Google's Chinese BERT, every CJK character is its own token (KerasHub's `split_on_cjk`), so the
vocabulary is the corpus's characters plus WordPieces of the Latin words and numbers between them. Text
is lowercased. The tokenizer runs TF-Text ops only, so it goes inside the exported serving graph.

The vocabulary is learnt with the TF-Text learner KerasHub's `compute_word_piece_vocabulary` wraps, but
called directly: that wrapper keeps the learner's 1000-character alphabet cap, which on Chinese text
leaves thousands of characters [UNK].
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

import keras_hub
import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from data_prep.errors import UserError

# Chinese BERT's order: [PAD] is id 0, which the padding mask and the packer rely on.
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SUFFIX = "##"
PRIVATE_MODULE = "keras_hub.src.tokenizers.word_piece_tokenizer"


def keras_hub_pretokenizer() -> tuple[Callable[..., Any], str]:
    """(pretokenize, CJK character regex) of KerasHub's WordPiece tokenizer: the only private KerasHub API
    textclf uses, so the vocabulary splits text exactly as the tokenizer will. A KerasHub upgrade that moves
    them fails here, by name, and in this function's test."""
    try:
        module = importlib.import_module(PRIVATE_MODULE)
        return module.pretokenize, module.PY_CJK_REGEX
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(
            f"keras-hub {keras_hub.__version__} no longer has {PRIVATE_MODULE}.pretokenize/PY_CJK_REGEX ({exc}); "
            "tfmodels/bert/vocabulary.py must follow it"
        ) from exc


def compute_vocabulary(texts: tf.data.Dataset, vocabulary_size: int) -> list[str]:
    """WordPiece vocabulary (special tokens first) of an unbatched dataset of tf.string texts."""
    if vocabulary_size <= len(SPECIAL_TOKENS):
        raise UserError(f"vocabulary size must exceed {len(SPECIAL_TOKENS)}, got {vocabulary_size}")
    pretokenize, cjk_regex = keras_hub_pretokenizer()
    words = texts.batch(1024).map(
        lambda batch: pretokenize(batch, lowercase=True, strip_accents=False, split=True, split_on_cjk=True),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    try:
        counts = learner.count_words(words)
    except StopIteration:  # it peeks at the first word to decide whether to decode bytes
        counts = {}
    if not counts:
        raise UserError("the training text is empty: no WordPiece vocabulary can be computed")
    vocab = learner.learn(
        counts,
        vocab_size=vocabulary_size,
        reserved_tokens=SPECIAL_TOKENS,
        max_unique_chars=vocabulary_size,
        include_joiner_token=True,
        joiner=SUFFIX,
    )
    # "##的" can never match: a CJK character is always a word of its own, never the end of one
    cjk_suffix = re.compile(f"^{SUFFIX}(?:{cjk_regex})$")
    return [token for token in vocab if not cjk_suffix.match(token)][:vocabulary_size]


def make_tokenizer(vocabulary: list[str] | str, *, lowercase: bool = True) -> keras_hub.models.BertTokenizer:
    """A BertTokenizer over a vocabulary list or a vocab.txt path (one token a line)."""
    return keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=lowercase)

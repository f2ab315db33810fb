"""Scratch WordPiece vocabulary: CJK characters one by one, lowercased, no alphabet cap."""

from __future__ import annotations

import numpy as np
import pytest

from data_prep.errors import UserError
from tfmodels.bert.vocabulary import SPECIAL_TOKENS, compute_vocabulary, keras_hub_pretokenizer, make_tokenizer


def test_vocabulary_splits_cjk_characters_and_lowercases() -> None:
    import tensorflow as tf

    texts = ["我爱北京天安门 Python", "北京欢迎你 PYTHON python", "天安门上太阳升"] * 5
    vocab = compute_vocabulary(tf.data.Dataset.from_tensor_slices(texts), 200)
    assert vocab[:5] == SPECIAL_TOKENS == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"北", "京", "天", "安", "门", "python"} <= set(vocab)
    assert "北京" not in vocab and "PYTHON" not in vocab  # no multi-character CJK tokens, no upper case
    tokenizer = make_tokenizer(vocab)
    ids = np.asarray(tokenizer.tokenize("北京 PYTHON 火星")).tolist()
    assert [vocab[i] for i in ids] == ["北", "京", "python", "[UNK]", "[UNK]"]
    assert tokenizer.pad_token_id == 0 and tokenizer.mask_token_id == 4


def test_every_character_of_a_large_alphabet_gets_a_token() -> None:
    """KerasHub's wrapper would keep only the 1000 most frequent characters: Chinese needs thousands."""
    import tensorflow as tf

    characters = [chr(0x4E00 + i) for i in range(1500)]
    texts = ["".join(characters[i : i + 30]) for i in range(0, 1500, 30)] + ["的的的的"] * 20
    vocab = compute_vocabulary(tf.data.Dataset.from_tensor_slices(texts), 4000)
    assert set(characters) <= set(vocab)
    assert not any(token.startswith("##") for token in vocab)  # "##的" is dead weight: never matched


def test_empty_text_has_no_vocabulary() -> None:
    import tensorflow as tf

    with pytest.raises(UserError, match="empty"):
        compute_vocabulary(tf.data.Dataset.from_tensor_slices(["", " "]), 100)
    with pytest.raises(UserError, match="vocabulary size"):
        compute_vocabulary(tf.data.Dataset.from_tensor_slices(["好"]), 3)


def test_the_private_keras_hub_pretokenizer_is_still_where_textclf_takes_it() -> None:
    """Fails on a KerasHub upgrade that moves it: then tfmodels/bert/vocabulary.py must follow."""
    import re

    import tensorflow as tf

    pretokenize, cjk_regex = keras_hub_pretokenizer()
    assert re.fullmatch(cjk_regex, "中") and not re.fullmatch(cjk_regex, "a")
    words = pretokenize(tf.constant(["北京 ABC"]), lowercase=True, strip_accents=False, split=True, split_on_cjk=True)
    assert [w.decode() for w in words.to_list()[0]] == ["北", "京", "abc"]

"""String -> ids layers of the LSTM family: they run in tf.data while training and inside the exported
serving graph, so TF Serving needs no side file (the vocabulary is a StringLookup table in the graph).

One op splits words everywhere (vocabulary, bucketing, serving): `split_words`. Padding is on the right,
which cuDNN's masked LSTM kernel needs.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfmodels.lstm.compact import remap
from tfmodels.lstm.vocabulary import OOV, OOV_ID, PAD


def split_words(strings: tf.Tensor) -> tf.RaggedTensor:
    """Space-joined jieba words -> ragged words: the one splitting op for vocabulary, bucketing and serving."""
    return tf.strings.split(strings)


def word_count(tokens: tf.Tensor) -> tf.Tensor:
    """Number of words in one space-joined string: the length the trainer buckets by."""
    return tf.size(split_words(tokens), out_type=tf.int32)


def split_chars(words: tf.Tensor) -> tf.RaggedTensor:
    """Words [W] -> their characters [W, (c)]."""
    return tf.strings.unicode_split(words, "UTF-8")


class TokenIds(keras.layers.Layer):
    """tf.string [batch] of space-joined words -> int64 ids [batch, T], 0-padded on the right.

    With `oov_chars`, a word outside the vocabulary becomes the ids of its characters (the vocabulary then
    holds frequent characters too), so a rare word like 超赞 still says 超 + 赞 instead of [UNK].
    T is the longest row in the batch, capped at max_len (or exactly max_len when pad_to_max). The table
    is a StringLookup (a StaticHashTable in the exported graph), so TF Serving needs no side file.
    """

    def __init__(
        self, vocabulary: list[str], max_len: int, pad_to_max: bool = False, oov_chars: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.max_len = max_len
        self.pad_to_max = pad_to_max
        self.oov_chars = oov_chars
        self.lookup = keras.layers.StringLookup(vocabulary=vocabulary, mask_token=PAD, oov_token=OOV)
        self.built = True  # no weights of its own; the exporter requires built layers

    def _ids(self, strings: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.lookup(strings), tf.int64)

    def call(self, strings: tf.Tensor) -> tf.Tensor:
        return self.from_words(split_words(strings))

    def from_words(self, words: tf.RaggedTensor) -> tf.Tensor:
        """The ids of already split words [batch, (w)] (LSTMInputs splits once for both its outputs)."""
        if self.oov_chars:
            ids = self._expand_oov(words, words.nrows(out_type=tf.int64))
        else:
            words = words[:, : self.max_len]
            ids = words.with_flat_values(self._ids(words.flat_values))
        ids = ids[:, : self.max_len]
        return ids.to_tensor(0, shape=[None, self.max_len] if self.pad_to_max else None)

    def _expand_oov(self, words: tf.RaggedTensor, batch: tf.Tensor) -> tf.RaggedTensor:
        """Per text: known words' ids, and in their place the character ids of unknown words."""
        word_ids = self._ids(words.flat_values)  # [W]
        known = tf.not_equal(word_ids, OOV_ID)
        chars = split_chars(words.flat_values)  # [W, (c)]
        char_word = chars.value_rowids()  # word index of every character
        char_keep = tf.gather(~known, char_word)
        piece_ids = tf.concat([word_ids[known], self._ids(chars.flat_values[char_keep])], 0)
        piece_word = tf.concat([tf.where(known)[:, 0], char_word[char_keep]], 0)
        order = tf.argsort(piece_word, stable=True)  # back to reading order; a word's chars stay in order
        piece_text = tf.gather(words.value_rowids(), tf.gather(piece_word, order))
        return tf.RaggedTensor.from_value_rowids(tf.gather(piece_ids, order), piece_text, nrows=batch)


def char_ngram_ids(words: tf.RaggedTensor, max_n: int, buckets: int) -> tf.Tensor:
    """Ragged words [batch, (w)] -> hashed character 1..max_n-grams [batch, N] in 1..buckets-1, 0-padded.

    The words are joined without spaces, so n-grams also span word boundaries (as in the raw text). Per
    text: all 1-grams, then all 2-grams, ...; the n-grams are joined from shifted slices of the characters,
    not tf.strings.ngrams (StringNGrams is neither a TF Lite builtin nor a Select TF op).
    """
    chars = split_chars(words).merge_dims(1, 2)  # [batch, (c)]
    grams = [chars] + [char_ngrams(chars, n) for n in range(2, max_n + 1)]
    joined = tf.concat(grams, axis=1)
    ids = joined.with_flat_values(tf.strings.to_hash_bucket_fast(joined.flat_values, buckets - 1) + 1)
    return ids.to_tensor(0)


def char_ngrams(chars: tf.RaggedTensor, n: int) -> tf.RaggedTensor:
    """Characters [batch, (c)] -> their n-grams [batch, (max(c - n + 1, 0))], each the n characters joined."""
    lengths = chars.row_lengths()
    counts = tf.maximum(lengths - (n - 1), 0)
    starts = chars.row_starts()
    # flat index of every n-gram's first character: row start + 0..count-1
    first = tf.ragged.range(starts, starts + counts).flat_values
    pieces = [tf.gather(chars.flat_values, first + k) for k in range(n)]
    return tf.RaggedTensor.from_row_lengths(tf.strings.join(pieces), counts, validate=False)


class LSTMInputs(keras.layers.Layer):
    """tf.string [batch] -> {"token_ids": [batch, T], "char_ngrams": [batch, N]}: both model inputs, one string.

    The n-grams come from the same (capped) words the token ids do; hashing needs no vocabulary file.
    """

    def __init__(
        self,
        token_ids: TokenIds,
        ngram_n: int,
        ngram_buckets: int,
        ngram_rows: np.ndarray | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.token_ids = token_ids
        self.ngram_n = ngram_n
        self.ngram_buckets = ngram_buckets
        # exported with left-out n-gram rows (tfmodels.lstm.compact): a plain tf.Variable, not a Keras
        # weight, so the exporter, which tracks this layer for its lookup tables, stores it once
        self.ngram_rows = None if ngram_rows is None else tf.Variable(ngram_rows, trainable=False, name="ngram_rows")
        self.built = True  # no weights of its own; the exporter requires built layers

    def call(self, strings: tf.Tensor) -> dict[str, tf.Tensor]:
        words = split_words(strings)
        return {"token_ids": self.token_ids.from_words(words), "char_ngrams": self._char_ngrams(words)}

    def char_ngrams(self, strings: tf.Tensor) -> tf.Tensor:
        """Only the n-gram ids (the wide part's document-frequency pass needs no token ids)."""
        return self._char_ngrams(split_words(strings))

    def _char_ngrams(self, words: tf.RaggedTensor) -> tf.Tensor:
        ids = char_ngram_ids(words[:, : self.token_ids.max_len], self.ngram_n, self.ngram_buckets)
        return ids if self.ngram_rows is None else remap(ids, self.ngram_rows)

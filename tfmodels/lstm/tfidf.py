"""The "wide" half of wide & deep: a linear model on the L2-normalised sublinear TF-IDF of the hashed
character n-grams, the very features of the TF-IDF + logistic-regression baseline, inside the graph and
trained with the network. It errs differently from the LSTM, so the sum beats both.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="textclf")
class TfIdfLinear(keras.layers.Layer):
    """Logits of a linear model on the L2-normalised sublinear TF-IDF vector of the hashed n-grams.

    `idf` (0 for n-grams seen in fewer than min_df train texts) is set once from the train split and saved
    with the model; `scale` multiplies the kernel so Adam's ~lr-sized steps reach a linear model's weights.
    """

    def __init__(self, buckets: int, units: int, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buckets, self.units, self.scale = buckets, units, scale

    def build(self, input_shape: Any) -> None:
        self.idf = self.add_weight(shape=(self.buckets,), initializer="zeros", trainable=False, name="idf")
        self.kernel = self.add_weight(shape=(self.buckets, self.units), initializer="zeros", name="kernel")

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        batch = tf.shape(ids, out_type=tf.int64)[0]
        rows, grams, counts = distinct_ngrams(ids, self.buckets)
        weights = (1.0 + tf.math.log(tf.cast(counts, self.compute_dtype))) * tf.gather(
            tf.cast(self.idf, self.compute_dtype), grams
        )
        norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(weights), rows, batch))
        weights = tf.math.divide_no_nan(weights, tf.gather(norms, rows))
        kernel = tf.gather(tf.cast(self.kernel, self.compute_dtype), grams) * self.scale
        return tf.math.unsorted_segment_sum(weights[:, None] * kernel, rows, batch)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "buckets": self.buckets, "units": self.units, "scale": self.scale}


def distinct_ngrams(ids: tf.Tensor, buckets: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Padded n-gram ids [B, N] -> (row, id, occurrences) of each distinct n-gram of each row (0 = padding).

    The one definition of "the n-grams a text holds", for the wide part's TF-IDF and for its idf.
    """
    ids = tf.cast(ids, tf.int64)
    present = tf.where(ids > 0)  # [M, 2]: (row, position) of every n-gram occurrence
    keys = present[:, 0] * buckets + tf.gather_nd(ids, present)
    unique, _, counts = tf.unique_with_counts(keys)
    return unique // buckets, unique % buckets, counts


def document_frequencies(ngram_batches: Any, buckets: int) -> tuple[np.ndarray, int]:
    """(how many texts hold each hashed n-gram, int64 [buckets]; how many texts) from padded ids [B, N]."""
    df, docs = np.zeros(buckets, dtype=np.int64), 0
    for ids in ngram_batches:
        _, grams, _ = distinct_ngrams(ids, buckets)
        df += np.bincount(grams.numpy(), minlength=buckets)
        docs += len(ids)
    return df, docs


def smooth_idf(df: np.ndarray, docs: int, min_df: int) -> np.ndarray:
    """scikit-learn's smooth idf, ln((1 + n) / (1 + df)) + 1, and 0 below min_df (like min_df=2 there)."""
    idf = np.log((1.0 + docs) / (1.0 + df)) + 1.0
    return np.where(df >= min_df, idf, 0.0).astype("float32")

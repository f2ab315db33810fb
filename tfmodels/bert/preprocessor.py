"""String -> BERT inputs, in tf.data while training and inside the exported serving graph."""

from __future__ import annotations

from typing import Any

import keras
import keras_hub
import tensorflow as tf

TRIM_STEP = 16


def int_padding_mask(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """KerasHub's packers emit a bool padding_mask; make it int32 like the backbone's Input. Under
    MirroredStrategy Keras averages a first batch across replicas to build the model, and AddN has
    no bool kernel."""
    return {**inputs, "padding_mask": tf.cast(inputs["padding_mask"], tf.int32)}


class BertInputs(keras.layers.Layer):
    """tf.string [batch] -> {token_ids, segment_ids, padding_mask} [batch, T] for BertBackbone.

    Wraps KerasHub's BertTextClassifierPreprocessor ([CLS] text [SEP], truncated and padded to its
    sequence_length) and, when `trim`, cuts the padding down to the longest text in the batch, rounded
    up to a multiple of TRIM_STEP: with the trainer's length bucketing most batches of short reviews are
    then a fraction of sequence_length long, in few enough shapes that kernels are not re-planned per batch.
    """

    def __init__(
        self, packer: keras_hub.models.BertTextClassifierPreprocessor, trim: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.packer = packer
        self.trim = trim
        self.built = True  # no weights of its own; lets the exporter track it before its first call

    def call(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = int_padding_mask(self.packer(text))
        if not self.trim:
            return inputs
        longest = tf.reduce_max(tf.reduce_sum(inputs["padding_mask"], axis=1))
        length = tf.minimum((longest + TRIM_STEP - 1) // TRIM_STEP * TRIM_STEP, tf.shape(inputs["token_ids"])[1])
        return {name: tensor[:, : tf.maximum(length, 1)] for name, tensor in inputs.items()}


def char_count(text: tf.Tensor) -> tf.Tensor:
    """Characters + [CLS] + [SEP]: the bucketing key (a CJK character is one WordPiece token)."""
    return tf.strings.length(text, unit="UTF8_CHAR") + 2

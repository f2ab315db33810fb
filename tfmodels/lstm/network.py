"""The LSTM family's network: Embedding -> stacked (Bi)LSTM -> masked pooling, beside a bag of hashed
character n-grams (fastText-style: embedded, mean-pooled) and optionally the TF-IDF wide part.

On short reviews the n-grams carry most of the signal (the TF-IDF baseline lives on them); the LSTM adds
order. The LSTM layers keep the Keras defaults that select the fused cuDNN kernel on a GPU (tanh, sigmoid,
recurrent_dropout=0, unroll=False, use_bias=True).

The custom layers' registered names ("textclf>WordDropout", ...) are what saved model.keras files name:
they must never change.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfmodels.lstm.config import LSTMConfig
from tfmodels.lstm.tfidf import TfIdfLinear
from tfmodels.lstm.vocabulary import OOV_ID


@keras.saving.register_keras_serializable(package="textclf")
class WordDropout(keras.layers.Layer):
    """While training, turn each id into `replacement` with probability `rate`: the model cannot lean on rare
    words (OOV_ID) or single n-grams (0, i.e. left out of the mean)."""

    def __init__(self, rate: float, seed: int | None = None, replacement: int = OOV_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self.replacement = replacement
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training or self.rate <= 0:
            return ids
        drop = keras.random.uniform(tf.shape(ids), seed=self.seed_generator) < self.rate
        return tf.where(drop & (ids > 0), tf.constant(self.replacement, ids.dtype), ids)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "replacement": self.replacement}


@keras.saving.register_keras_serializable(package="textclf")
class MaskedMax(keras.layers.Layer):
    """Max over time that ignores padded steps (GlobalMaxPooling1D does not look at the mask)."""

    def call(self, x: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        if mask is not None:
            x = tf.where(mask[:, :, None], x, tf.fill(tf.shape(x), tf.constant(-1e9, x.dtype)))
        return tf.reduce_max(x, axis=1)

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None


@keras.saving.register_keras_serializable(package="textclf")
class MaskedMean(keras.layers.Layer):
    """Mean over unpadded steps; an empty text gives zeros, not 0/0 = NaN as GlobalAveragePooling1D would."""

    def call(self, x: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        if mask is None:
            return tf.reduce_mean(x, axis=1)
        weights = tf.cast(mask, x.dtype)[:, :, None]
        return tf.math.divide_no_nan(tf.reduce_sum(x * weights, axis=1), tf.reduce_sum(weights, axis=1))

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None


def build_network(config: LSTMConfig, vocab_size: int, num_classes: int) -> keras.Model:
    """token_ids (and char_ngrams when config.ngram_n > 0) -> logits [batch, num_classes]."""
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = WordDropout(config.word_dropout, seed=config.seed, name="word_dropout")(ids)
    x = keras.layers.Embedding(vocab_size, config.embedding_dim, mask_zero=True, name="embedding")(x)
    x = keras.layers.SpatialDropout1D(config.embed_dropout)(x)
    for i in range(config.lstm_layers):
        lstm = keras.layers.LSTM(
            config.lstm_units,
            return_sequences=True,
            activation="tanh",
            recurrent_activation="sigmoid",
            recurrent_dropout=0.0,
            unroll=False,
            use_bias=True,
            name=f"lstm_{i}",
        )
        x = keras.layers.Bidirectional(lstm, name=f"bilstm_{i}")(x) if config.bidirectional else lstm(x)
    pooled = [MaskedMean(name="masked_mean")(x)]
    if config.pooling == "mean_max":
        pooled.append(MaskedMax(name="masked_max")(x))
    inputs: Any = ids
    if config.ngram_n > 0:
        grams = keras.Input(shape=(None,), dtype="int64", name="char_ngrams")
        g = WordDropout(config.ngram_dropout, seed=config.seed, replacement=0, name="ngram_dropout")(grams)
        g = keras.layers.Embedding(config.ngram_buckets, config.ngram_dim, mask_zero=True, name="ngram_embedding")(g)
        pooled.append(MaskedMean(name="ngram_mean")(g))
        inputs = {"token_ids": ids, "char_ngrams": grams}
    x = keras.layers.Concatenate()(pooled) if len(pooled) > 1 else pooled[0]
    x = keras.layers.Dropout(config.dropout)(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    if config.ngram_n > 0 and config.wide:
        wide = TfIdfLinear(config.ngram_buckets, num_classes, scale=config.wide_scale, name="wide")(grams)
        logits = keras.layers.Add(name="wide_and_deep")([logits, wide])
    return keras.Model(inputs, logits, name="lstm_classifier")

"""The LSTM family: jieba words -> ids (in-graph vocabulary) -> Embedding -> stacked (Bi)LSTM -> logits.

The LSTM layers keep Keras's defaults that select the fused cuDNN kernel on a GPU (tanh, sigmoid,
recurrent_dropout=0, unroll=False, use_bias=True); padding is on the right, which cuDNN's masking needs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from data_prep.dataset_format import TOKENS
from tfmodels.family import Built
from tfmodels.vocab import OOV, OOV_ID, PAD, RESERVED, build_vocabulary, load_word2vec, read_vocabulary, write_vocabulary

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"


def split_words(strings: tf.Tensor) -> tf.RaggedTensor:
    """Space-joined jieba words -> ragged words: the one splitting op for vocabulary, bucketing and serving."""
    return tf.strings.split(strings)


def word_count(tokens: tf.Tensor) -> tf.Tensor:
    """Number of words in one space-joined string: the length the trainer buckets by."""
    return tf.size(split_words(tokens), out_type=tf.int32)


class TokenIds(keras.layers.Layer):
    """tf.string [batch] of space-joined words -> int64 ids [batch, T], 0-padded on the right.

    T is the longest row in the batch, capped at max_len (or exactly max_len when pad_to_max). The table
    is a StringLookup (a StaticHashTable in the exported graph), so TF Serving needs no side file.
    """

    def __init__(self, vocabulary: list[str], max_len: int, pad_to_max: bool = False, **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.max_len = max_len
        self.pad_to_max = pad_to_max
        self.lookup = keras.layers.StringLookup(vocabulary=vocabulary, mask_token=PAD, oov_token=OOV)
        self.built = True  # no weights of its own; the exporter requires built layers

    def call(self, strings: tf.Tensor) -> tf.Tensor:
        words = split_words(strings)[:, : self.max_len]
        ids = words.with_flat_values(tf.cast(self.lookup(words.flat_values), tf.int64))
        return ids.to_tensor(0, shape=[None, self.max_len] if self.pad_to_max else None)




@keras.saving.register_keras_serializable(package="textclf")
class WordDropout(keras.layers.Layer):
    """While training, turn each word into OOV with probability `rate`: the model cannot lean on rare words."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training or self.rate <= 0:
            return ids
        drop = keras.random.uniform(tf.shape(ids), seed=self.seed_generator) < self.rate
        return tf.where(drop & (ids > 0), tf.constant(OOV_ID, ids.dtype), ids)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package="textclf")
class MaskedMax(keras.layers.Layer):
    """Max over time that ignores padded steps (GlobalMaxPooling1D does not look at the mask)."""

    def call(self, x: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        if mask is not None:
            x = tf.where(mask[:, :, None], x, tf.fill(tf.shape(x), tf.constant(-1e9, x.dtype)))
        return tf.reduce_max(x, axis=1)

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None


def build_network(config: dict[str, Any], vocab_size: int, num_classes: int) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = WordDropout(config["word_dropout"], seed=config["seed"], name="word_dropout")(ids)
    x = keras.layers.Embedding(vocab_size, config["embedding_dim"], mask_zero=True, name="embedding")(x)
    x = keras.layers.SpatialDropout1D(config["embed_dropout"])(x)
    for i in range(config["lstm_layers"]):
        lstm = keras.layers.LSTM(
            config["lstm_units"], return_sequences=True, activation="tanh", recurrent_activation="sigmoid",
            recurrent_dropout=0.0, unroll=False, use_bias=True, name=f"lstm_{i}",
        )
        x = keras.layers.Bidirectional(lstm, name=f"bilstm_{i}")(x) if config["bidirectional"] else lstm(x)
    pooled = [keras.layers.GlobalAveragePooling1D(name="masked_mean")(x)]
    if config["pooling"] == "mean_max":
        pooled.append(MaskedMax(name="masked_max")(x))
    x = keras.layers.Concatenate()(pooled) if len(pooled) > 1 else pooled[0]
    x = keras.layers.Dropout(config["dropout"])(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(ids, logits, name="lstm_classifier")


class LSTMFamily:
    name = "lstm"
    input_feature = TOKENS
    defaults: dict[str, Any] = {
        "embedding_dim": 128,
        "lstm_units": 64,
        "lstm_layers": 1,
        "bidirectional": True,
        "pooling": "mean_max",  # mean | mean_max
        "word_dropout": 0.1,  # share of words turned into OOV while training
        "embed_dropout": 0.2,
        "dropout": 0.4,
        "min_count": 2,
        "max_vocab": 50000,
        "embeddings": None,  # word2vec text file; its dimension replaces embedding_dim
    }
    length_fn = staticmethod(word_count)

    def _preprocessor(self, config: dict[str, Any], words: list[str]) -> TokenIds:
        return TokenIds(words, config["max_len"], pad_to_max=not config["bucketing"], name="token_ids")

    def build(self, config: dict[str, Any], train_strings: tf.data.Dataset, num_classes: int) -> Built:
        word_batches = train_strings.batch(1024).map(lambda s: split_words(s).flat_values)
        words = build_vocabulary(word_batches.as_numpy_iterator(), min_count=config["min_count"],
                                 max_size=config["max_vocab"])
        vectors = None
        if config["embeddings"]:
            vectors = load_word2vec(Path(config["embeddings"]), words, seed=config["seed"])
            config = {**config, "embedding_dim": int(vectors.shape[1])}  # the file decides; model.keras keeps it
        model = build_network(config, len(words) + RESERVED, num_classes)
        if vectors is not None:
            model.get_layer("embedding").set_weights([vectors])
        return Built(preprocessor=self._preprocessor(config, words), model=model)

    def save(self, built: Built, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        words = built.preprocessor.lookup.get_vocabulary()[RESERVED:]
        write_vocabulary(model_dir / VOCAB_FILE, words)
        built.model.save(model_dir / MODEL_FILE)

    def load(self, model_dir: Path, config: dict[str, Any]) -> Built:
        model = keras.saving.load_model(model_dir / MODEL_FILE, compile=False)  # inference only
        return Built(preprocessor=self._preprocessor(config, read_vocabulary(model_dir / VOCAB_FILE)), model=model)


FAMILY = LSTMFamily()

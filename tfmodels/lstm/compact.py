"""The LSTM family's serving-time size reduction, applied by its `for_serving` when a run is exported
(model.keras keeps the trained model untouched, so `evaluate` and resuming see what was trained; the
exporter scores the reduced model, so the model card states what is served).

- n-gram rows: hashing fills nearly every bucket, so "used by the train split" saves little; rows of
  n-grams in fewer than `export_min_df` train texts are left out. A dense bucket -> row table (row 0 for
  the left-out ones) runs inside the graph, so those n-grams drop out of the mean and of the TF-IDF vector
  exactly like padding. The wide part gives weight only to n-grams in >= min_count texts (idf 0 below),
  so with export_min_df <= min_count the wide part answers as before.
- tables: the Embedding layers are stored in int8 with a per-row scale (Keras' own int8 Embedding,
  de-quantized after the gather) or in float16, by `export_dtype`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from data_prep.dataset_format import TOKENS
from tfmodels.lstm.tfidf import document_frequencies

NGRAM_LAYERS = ("ngram_embedding", "wide")  # the layers whose rows are the hashed n-gram buckets


@dataclass(frozen=True)
class ServingPlan:
    """How a loaded run shrinks for export: its train split (which n-grams to keep) and the table dtype."""

    data: Path
    min_df: int  # 0 keeps every n-gram row
    dtype: str


def kept_rows(df: np.ndarray, min_df: int) -> np.ndarray:
    """The old bucket of every new row; new row 0 is the padding row (old bucket 0)."""
    return np.concatenate([[0], np.flatnonzero(df[1:] >= min_df) + 1])


def bucket_rows(kept: np.ndarray, buckets: int) -> np.ndarray:
    """int32 [buckets]: the new row of each old bucket, 0 for a bucket left out."""
    rows = np.zeros(buckets, dtype=np.int32)
    rows[kept] = np.arange(len(kept), dtype=np.int32)
    return rows


def train_ngram_rows(inputs: Any, plan: ServingPlan) -> np.ndarray:
    """The kept rows (kept_rows) by how many train texts hold each of the preprocessor's n-gram buckets."""
    from tfmodels.pipeline import read_split

    texts = read_split(plan.data, "train", TOKENS).map(lambda text, _: text).batch(1024)
    df, _ = document_frequencies(texts.map(inputs.char_ngrams), inputs.ngram_buckets)
    return kept_rows(df, plan.min_df)


def compact_network(model: keras.Model, kept: np.ndarray | None, dtype: str) -> keras.Model:
    """A copy of the network with only the `kept` n-gram rows (None: all) and its tables in `dtype`."""
    config = model.get_config()
    for layer in config["layers"]:
        if kept is not None and layer["config"]["name"] == "ngram_embedding":
            layer["config"]["input_dim"] = len(kept)
        if kept is not None and layer["config"]["name"] == "wide":
            layer["config"]["buckets"] = len(kept)
        if dtype == "float16" and layer["class_name"] == "Embedding":
            layer["config"]["dtype"] = "float16"  # stored and gathered in float16; the next layer casts up
    compact = keras.Model.from_config(config)
    for layer in compact.layers:
        weights = model.get_layer(layer.name).get_weights()
        if kept is not None and layer.name in NGRAM_LAYERS:
            weights = [w[kept] for w in weights]  # every weight of these layers has one row per bucket
        layer.set_weights(weights)
        if dtype == "int8" and isinstance(layer, keras.layers.Embedding):
            layer.quantize("int8")
    return compact


def remap(ids: tf.Tensor, rows: tf.Variable) -> tf.Tensor:
    """Hashed n-gram ids [batch, N] -> kept rows (0: left out, like padding)."""
    return tf.cast(tf.gather(rows, ids), ids.dtype)

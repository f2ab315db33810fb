"""Tiny Contract-2 SavedModels for the gateway tests, built with plain TensorFlow in a few seconds.

So the gateway tests need no trained LSTM/BERT: a StaticHashTable maps a few words (tokens model) or
characters (text model) to a class; probabilities are a softmax over per-class hit counts. Same
signature shape as tfmodels' export: serving_default(tf.string [batch]) -> probabilities, label,
top_score (+ class_names [batch, C] when `with_class_names`).
"""

from __future__ import annotations

from pathlib import Path

LABELS = ["体育", "科技", "财经"]
WORDS = {"足球": 0, "比赛": 0, "手机": 1, "电脑": 1, "股票": 2, "银行": 2}  # tokens model
CHARS = {"球": 0, "赛": 0, "机": 1, "脑": 1, "股": 2, "银": 2}  # text model


def build(out_dir: Path, input_name: str, *, with_class_names: bool = True, bias: int = -1) -> None:
    """Write one SavedModel version to `out_dir`. `bias` (a class id) favours one class, so two
    versions of a model answer differently (to tell stable from canary)."""
    import tensorflow as tf

    vocabulary = WORDS if input_name == "tokens" else CHARS

    class Tiny(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    list(vocabulary), list(vocabulary.values()), key_dtype=tf.string, value_dtype=tf.int64
                ),
                default_value=-1,
            )
            self.names = tf.constant(LABELS)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=input_name)])
        def serve(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            pieces = tf.strings.split(inputs) if input_name == "tokens" else tf.strings.unicode_split(inputs, "UTF-8")
            ids = self.table.lookup(pieces)
            hits = tf.reduce_sum(tf.one_hot(ids, len(LABELS)), axis=1)  # -1 -> all-zero row
            if bias >= 0:
                hits += tf.one_hot(tf.fill(tf.shape(inputs), bias), len(LABELS)) * 0.5
            probabilities = tf.nn.softmax(hits * 2.0, axis=-1)
            best = tf.argmax(probabilities, axis=-1)
            outputs = {
                "probabilities": probabilities,
                "label": tf.gather(self.names, best),
                "top_score": tf.reduce_max(probabilities, axis=-1),
            }
            if with_class_names:
                outputs["class_names"] = tf.tile(self.names[tf.newaxis], [tf.shape(inputs)[0], 1])
            return outputs

    module = Tiny()
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": module.serve})

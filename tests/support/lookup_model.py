"""A Contract-2 SavedModel whose TF Lite conversion runs with builtin ops only (tf.lite.Interpreter in TensorFlow
>= 2.20 has no Flex delegate, so a model with Select TF ops converts but cannot run in tests)."""

from __future__ import annotations

from pathlib import Path

from serving.contract import CLASS_NAMES, LABEL, PROBABILITIES, SIGNATURE, TOKENS_INPUT, TOP_SCORE

LABELS = ["体育", "科技", "财经"]
WORDS = {"足球": 0, "手机": 1, "股票": 2, "银行": 2}


def build_lookup_model(out_dir: Path, default_class: int = 1) -> None:
    """A Contract-2 SavedModel TF Lite runs with builtins only: the whole input string looked up in a table."""
    import tensorflow as tf

    class Lookup(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            initializer = tf.lookup.KeyValueTensorInitializer(
                list(WORDS), list(WORDS.values()), key_dtype=tf.string, value_dtype=tf.int64
            )
            self.table = tf.lookup.StaticHashTable(initializer, default_value=default_class)
            self.names = tf.constant(LABELS)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=TOKENS_INPUT)])
        def serve(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            probabilities = tf.nn.softmax(tf.one_hot(self.table.lookup(inputs), len(LABELS)) * 2.0, axis=-1)
            return {
                PROBABILITIES: probabilities,
                LABEL: tf.gather(self.names, tf.argmax(probabilities, axis=-1)),
                TOP_SCORE: tf.reduce_max(probabilities, axis=-1),
                CLASS_NAMES: tf.tile(self.names[tf.newaxis], [tf.shape(inputs)[0], 1]),
            }

    module = Lookup()
    tf.saved_model.save(module, str(out_dir), signatures={SIGNATURE: module.serve})


def converter_output(saved_model_dir: Path) -> bytes:
    """model.tflite as the pip converter writes it, without the `signature_defs_metadata` entry the export adds."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SIGNATURE])
    return bytes(converter.convert())

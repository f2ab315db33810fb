"""The character n-grams without tf.strings.ngrams: the same ids as before (so existing runs load and
answer the same), and a graph the TF Lite converter accepts with Select TF ops."""

from __future__ import annotations

import numpy as np
import pytest

TEXTS = ["", "好", "这 个 手机 很 好用", "a", "ab", "iPhone 15 真的 不错 !", "😀 表情 ok", "  ", "x y z"]


def stringngrams_ids(words, max_n: int, buckets: int):  # type: ignore[no-untyped-def]  # reference, TF types
    """The former implementation (tf.strings.ngrams), kept here only as the reference."""
    import tensorflow as tf

    from tfmodels.lstm.preprocessor import split_chars

    chars = split_chars(words).merge_dims(1, 2)
    grams = tf.concat([chars] + [tf.strings.ngrams(chars, n, separator="") for n in range(2, max_n + 1)], axis=1)
    ids = grams.with_flat_values(tf.strings.to_hash_bucket_fast(grams.flat_values, buckets - 1) + 1)
    return ids.to_tensor(0)


@pytest.mark.parametrize("max_n", [1, 2, 3, 4])
def test_the_ngram_ids_are_the_ones_tf_strings_ngrams_gave(max_n: int) -> None:
    import tensorflow as tf

    from tfmodels.lstm.preprocessor import char_ngram_ids, split_words

    words = split_words(tf.constant(TEXTS))
    expected = stringngrams_ids(words, max_n, 2**18).numpy()
    np.testing.assert_array_equal(char_ngram_ids(words, max_n, 2**18).numpy(), expected)


def test_tf_lite_converts_the_ngram_ids_with_select_tf_ops() -> None:
    """Conversion only: the pip package's tf.lite.Interpreter has no Flex delegate to run Select TF ops
    (tensorflow_model_server links it). With tf.strings.ngrams the converter refused StringNGrams."""
    import tensorflow as tf

    from tfmodels.lstm.preprocessor import char_ngram_ids, split_words

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def ngrams(texts: tf.Tensor) -> tf.Tensor:
        return char_ngram_ids(split_words(texts), 3, 2**18)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([ngrams.get_concrete_function()], ngrams)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    flatbuffer = converter.convert()
    assert b"StringJoin" in flatbuffer and b"StringNGrams" not in flatbuffer

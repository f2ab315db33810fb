"""String -> ids layers of the LSTM family: in-graph vocabulary lookup, OOV fallback, hashed n-grams."""

from __future__ import annotations

import numpy as np


def test_token_ids_pad_right_cap_and_map_unknown_words_to_oov() -> None:
    import tensorflow as tf

    from tfmodels.lstm.preprocessor import TokenIds

    layer = TokenIds(["好", "很"], max_len=3)
    ids = layer(tf.constant(["很 好", "好 新 很 好 好", ""])).numpy()
    np.testing.assert_array_equal(ids, [[3, 2, 0], [2, 1, 3], [0, 0, 0]])
    assert TokenIds(["好"], max_len=4, pad_to_max=True)(tf.constant(["好"])).shape == (1, 4)


def test_unknown_words_fall_back_to_their_characters_in_reading_order() -> None:
    import tensorflow as tf

    from tfmodels.lstm.preprocessor import TokenIds

    layer = TokenIds(["好", "很", "超", "赞"], max_len=5, oov_chars=True)  # ids 2, 3, 4, 5
    ids = layer(tf.constant(["很 好", "超赞 好 新词", "", "超赞超赞 很 很"])).numpy()
    np.testing.assert_array_equal(ids, [[3, 2, 0, 0, 0], [4, 5, 2, 1, 1], [0] * 5, [4, 5, 4, 5, 3]])


def test_char_ngrams_span_words_follow_the_word_cap_and_pad_with_zero() -> None:
    import tensorflow as tf

    from tfmodels.lstm.preprocessor import char_ngram_ids, split_words

    buckets = 1 << 18
    words = split_words(tf.constant(["很 好", "好 新 很 好 好", ""]))[:, :3]
    ids = char_ngram_ids(words, 2, buckets).numpy()
    expected = tf.strings.to_hash_bucket_fast(["很", "好", "很好", "好", "新", "很", "好新", "新很"], buckets - 1) + 1
    h = dict(zip(["很", "好", "很好", "新", "好新", "新很"], expected.numpy()[[0, 1, 2, 4, 6, 7]], strict=True))
    np.testing.assert_array_equal(
        ids,
        [
            [h["很"], h["好"], h["很好"], 0, 0],  # bigram across the word boundary
            [h["好"], h["新"], h["很"], h["好新"], h["新很"]],  # only the first 3 words
            [0] * 5,
        ],
    )
    assert ids.min() >= 0 and ids.max() < buckets

"""The LSTM family's second input: hashed character n-grams computed in-graph from the same `tokens` string."""

from __future__ import annotations

import numpy as np


def test_char_ngrams_span_words_follow_the_word_cap_and_pad_with_zero() -> None:
    import tensorflow as tf

    from tfmodels.lstm_family import char_ngram_ids, split_words

    buckets = 1 << 18
    words = split_words(tf.constant(["很 好", "好 新 很 好 好", ""]))[:, :3]
    ids = char_ngram_ids(words, 2, buckets).numpy()
    expected = tf.strings.to_hash_bucket_fast(["很", "好", "很好", "好", "新", "很", "好新", "新很"], buckets - 1) + 1
    h = dict(zip(["很", "好", "很好", "新", "好新", "新很"], expected.numpy()[[0, 1, 2, 4, 6, 7]]))
    np.testing.assert_array_equal(
        ids,
        [
            [h["很"], h["好"], h["很好"], 0, 0],  # bigram across the word boundary
            [h["好"], h["新"], h["很"], h["好新"], h["新很"]],  # only the first 3 words
            [0] * 5,
        ],
    )
    assert ids.min() >= 0 and ids.max() < buckets


def test_preprocessor_feeds_both_inputs_and_an_empty_text_gives_finite_probabilities() -> None:
    import tensorflow as tf

    from tfmodels.config import resolve
    from tfmodels.lstm_family import FAMILY, LSTMInputs, build_network

    config = resolve(FAMILY.defaults, None, {"embedding_dim": 8, "lstm_units": 4, "ngram_dim": 4, "ngram_buckets": 64})
    preprocessor = FAMILY._preprocessor(config, ["好", "很"])
    assert isinstance(preprocessor, LSTMInputs)
    inputs = preprocessor(tf.constant(["很 好", ""]))
    assert sorted(inputs) == ["char_ngrams", "token_ids"]
    logits = build_network(config, 4, 2)(inputs, training=False).numpy()
    assert logits.shape == (2, 2) and np.isfinite(logits).all()

    off = FAMILY._preprocessor({**config, "ngram_n": 0}, ["好", "很"])  # branch off: plain token ids as before
    assert off(tf.constant(["很 好"])).shape == (1, 2)
    assert len(build_network({**config, "ngram_n": 0}, 4, 2).inputs) == 1


def test_ngram_dropout_removes_ngrams_only_while_training() -> None:
    import tensorflow as tf

    from tfmodels.lstm_family import WordDropout

    ids = tf.constant([[5, 6, 7, 8, 0, 0]] * 200, tf.int64)
    layer = WordDropout(0.5, seed=1, replacement=0)
    np.testing.assert_array_equal(layer(ids, training=False).numpy(), ids.numpy())
    dropped = layer(ids, training=True).numpy()
    assert set(np.unique(dropped)) <= {0, 5, 6, 7, 8}
    share = (dropped[:, :4] == 0).mean()  # padding stays padding; about half the n-grams go
    assert 0.4 < share < 0.6 and (dropped[:, 4:] == 0).all()


def test_wide_part_is_logistic_regression_on_the_baselines_tfidf_features() -> None:
    """TfIdfLinear's logits equal scikit-learn's TF-IDF (sublinear tf, smooth idf, min_df, L2) times its kernel."""
    import tensorflow as tf
    from sklearn.feature_extraction.text import TfidfVectorizer

    from tfmodels.lstm_family import TfIdfLinear, char_ngram_ids, document_frequencies, smooth_idf, split_words

    buckets = 1 << 12
    texts = ["很 好 很 好", "好 新", "质量 很 好", "不 好 不 新", "新"]
    ids = char_ngram_ids(split_words(tf.constant(texts)), 3, buckets).numpy()
    layer = TfIdfLinear(buckets, 2, scale=10.0)
    layer.build(ids.shape)
    df, docs = document_frequencies([ids[:3], ids[3:]], buckets)
    assert docs == len(texts)
    layer.idf.assign(smooth_idf(df, docs, min_df=2))
    kernel = np.random.default_rng(0).normal(size=(buckets, 2)).astype("float32")
    layer.kernel.assign(kernel)

    docs = [[str(i) for i in row if i > 0] for row in ids]
    vectorizer = TfidfVectorizer(analyzer=lambda doc: doc, sublinear_tf=True, min_df=2)
    features = vectorizer.fit_transform(docs).toarray()
    columns = [int(token) for token in vectorizer.get_feature_names_out()]
    expected = features @ (10.0 * kernel[columns])
    np.testing.assert_allclose(layer(tf.constant(ids)).numpy(), expected, rtol=1e-5, atol=1e-5)

"""The wide part: a linear model on exactly the TF-IDF features of the baseline, inside the graph."""

from __future__ import annotations

import numpy as np


def test_wide_part_is_logistic_regression_on_the_baselines_tfidf_features() -> None:
    """TfIdfLinear's logits equal scikit-learn's TF-IDF (sublinear tf, smooth idf, min_df, L2) times its kernel."""
    import tensorflow as tf
    from sklearn.feature_extraction.text import TfidfVectorizer

    from tfmodels.lstm.preprocessor import char_ngram_ids, split_words
    from tfmodels.lstm.tfidf import TfIdfLinear, document_frequencies, smooth_idf

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

"""The bar every network must clear: TF-IDF over character 1-3-grams + logistic regression, same split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data_prep.dataset_format import TEXT


def _texts_and_labels(data_dir: Path, split: str) -> tuple[list[str], np.ndarray]:
    from tfmodels.pipeline import read_split

    texts, labels = [], []
    for text, label in read_split(data_dir, split, TEXT).as_numpy_iterator():
        texts.append(text.decode("utf-8"))
        labels.append(label)
    return texts, np.asarray(labels, dtype=np.int64)


def baseline_predictions(data_dir: Path, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(true test labels, predicted test labels) of the baseline fitted on the train split."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train_x, train_y = _texts_and_labels(data_dir, "train")
    test_x, test_y = _texts_and_labels(data_dir, "test")
    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=2000, random_state=seed),
    )
    if len(set(train_y.tolist())) < 2:  # logistic regression needs two classes; predict the only one
        return test_y, np.full_like(test_y, train_y[0] if len(train_y) else 0)
    pipeline.fit(train_x, train_y)
    return test_y, pipeline.predict(test_x)

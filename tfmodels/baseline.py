"""The bar every network must clear: TF-IDF over character 1-3-grams + logistic regression, same split."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from data_prep.dataset_format import TEXT


def split_texts(data_dir: Path, split: str) -> tuple[list[str], np.ndarray]:
    """(cleaned texts, label ids) of one split, in file order."""
    from tfmodels.pipeline import read_split

    texts, labels = [], []
    for text, label in read_split(data_dir, split, TEXT).as_numpy_iterator():
        texts.append(text.decode("utf-8"))
        labels.append(label)
    return texts, np.asarray(labels, dtype=np.int64)


def _fitted(data_dir: Path, seed: int) -> tuple[Any, int | None]:
    """(the pipeline fitted on the train split, None) or (None, the only label) when the train split holds
    fewer than two classes, which logistic regression needs."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train_x, train_y = split_texts(data_dir, "train")
    if len(set(train_y.tolist())) < 2:
        return None, int(train_y[0]) if len(train_y) else 0
    pipeline = make_pipeline(
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True),
        LogisticRegression(C=4.0, max_iter=2000, random_state=seed),
    )
    return pipeline.fit(train_x, train_y), None


def baseline_predictions(data_dir: Path, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(true test labels, predicted test labels) of the baseline fitted on the train split."""
    test_x, test_y = split_texts(data_dir, "test")
    pipeline, only = _fitted(data_dir, seed)
    if pipeline is None:
        return test_y, np.full_like(test_y, only)
    return test_y, pipeline.predict(test_x)


def baseline_probabilities(data_dir: Path, texts: list[str], num_classes: int, *, seed: int) -> np.ndarray:
    """Class probabilities [len(texts), num_classes] of the baseline fitted on the train split, for cleaned
    texts (the `text` feature); a class the train split lacks gets 0. A teacher for `textclf distill`."""
    pipeline, only = _fitted(data_dir, seed)
    probs = np.zeros((len(texts), num_classes), dtype=np.float32)
    if pipeline is None:
        probs[:, only] = 1.0
    elif texts:
        probs[:, pipeline.classes_] = pipeline.predict_proba(texts)
    return probs

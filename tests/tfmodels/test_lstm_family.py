"""The LSTM family's adapter: its preprocessor feeds every input its network has."""

from __future__ import annotations

from dataclasses import replace

import numpy as np


def test_preprocessor_feeds_both_inputs_and_an_empty_text_gives_finite_probabilities() -> None:
    import tensorflow as tf

    from tfmodels.config import resolve
    from tfmodels.lstm.family import FAMILY
    from tfmodels.lstm.network import build_network
    from tfmodels.lstm.preprocessor import LSTMInputs

    overrides = {"embedding_dim": 8, "lstm_units": 4, "ngram_dim": 4, "ngram_buckets": 64}
    config = resolve(FAMILY.config_class, None, overrides)
    preprocessor = FAMILY.preprocessor(config, ["好", "很"])
    assert isinstance(preprocessor, LSTMInputs)
    inputs = preprocessor(tf.constant(["很 好", ""]))
    assert sorted(inputs) == ["char_ngrams", "token_ids"]
    logits = build_network(config, 4, 2)(inputs, training=False).numpy()
    assert logits.shape == (2, 2) and np.isfinite(logits).all()

    off = replace(config, ngram_n=0)
    assert FAMILY.preprocessor(off, ["好", "很"])(tf.constant(["很 好"])).shape == (1, 2)  # plain token ids
    assert len(build_network(off, 4, 2).inputs) == 1

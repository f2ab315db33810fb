"""The LSTM family's network layers; their registered names are what saved model.keras files name."""

from __future__ import annotations

import numpy as np


def test_ngram_dropout_removes_ngrams_only_while_training() -> None:
    import tensorflow as tf

    from tfmodels.lstm.network import WordDropout

    ids = tf.constant([[5, 6, 7, 8, 0, 0]] * 200, tf.int64)
    layer = WordDropout(0.5, seed=1, replacement=0)
    np.testing.assert_array_equal(layer(ids, training=False).numpy(), ids.numpy())
    dropped = layer(ids, training=True).numpy()
    assert set(np.unique(dropped)) <= {0, 5, 6, 7, 8}
    share = (dropped[:, :4] == 0).mean()  # padding stays padding; about half the n-grams go
    assert 0.4 < share < 0.6 and (dropped[:, 4:] == 0).all()


def test_custom_layers_keep_their_registered_names() -> None:
    """model.keras files written before name these; a change would make every saved run unloadable."""
    import keras

    from tfmodels.lstm.network import MaskedMax, MaskedMean, WordDropout
    from tfmodels.lstm.tfidf import TfIdfLinear
    from tfmodels.schedule import WarmupDecay

    names = [
        keras.saving.get_registered_name(c) for c in (WordDropout, MaskedMax, MaskedMean, TfIdfLinear, WarmupDecay)
    ]
    assert names == [
        "textclf>WordDropout",
        "textclf>MaskedMax",
        "textclf>MaskedMean",
        "textclf>TfIdfLinear",
        "textclf>WarmupDecay",
    ]


def test_a_model_saved_when_the_layers_lived_in_tfmodels_lstm_family_still_loads(tmp_path) -> None:
    """Runs trained before the package split name the old module in model.keras; the registered names
    ("textclf>...") are what Keras resolves, so those archives load as they are."""
    import zipfile

    import keras
    import tensorflow as tf

    from tfmodels.lstm.config import LSTMConfig
    from tfmodels.lstm.network import build_network

    config = LSTMConfig(embedding_dim=4, lstm_units=4, ngram_n=2, ngram_buckets=16, ngram_dim=4)
    model = build_network(config, vocab_size=10, num_classes=2)
    new, old = tmp_path / "new.keras", tmp_path / "old.keras"
    model.save(new)
    with zipfile.ZipFile(new) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == "config.json":
                text = data.decode()
                assert '"tfmodels.lstm.network"' in text and '"tfmodels.lstm.tfidf"' in text
                text = text.replace('"tfmodels.lstm.network"', '"tfmodels.lstm_family"')
                data = text.replace('"tfmodels.lstm.tfidf"', '"tfmodels.lstm_family"').encode()
            dst.writestr(item, data)
    loaded = keras.saving.load_model(old, compile=False)
    inputs = {
        "token_ids": tf.constant([[3, 4, 5, 0]], tf.int64),
        "char_ngrams": tf.constant([[1, 2, 3, 0]], tf.int64),
    }
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), atol=1e-6)
    assert {type(layer).__name__ for layer in loaded.layers} >= {"WordDropout", "TfIdfLinear"}

"""The LSTM's export-time size reduction (tfmodels.lstm.compact): rare n-gram rows left out, int8 tables,
each table stored once, and the exported answers still the trained model's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# int8 rows and the left-out rare n-grams move probabilities a little; labels must not move on this data.
# export_min_df = min_count keeps the wide part exact (its idf is 0 below min_count).
PROBABILITY_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def trained(prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A tiny LSTM trained in-process on the shared prepared dataset, saved as a run's model/ folder."""
    import keras

    from data_prep.dataset_format import TOKENS
    from tfmodels.lstm.config import LSTMConfig
    from tfmodels.lstm.family import FAMILY
    from tfmodels.pipeline import read_split

    config = LSTMConfig(data=str(prepared), embedding_dim=8, lstm_units=4, ngram_dim=8, ngram_buckets=4096, min_count=2)
    texts = read_split(prepared, "train", TOKENS)
    built = FAMILY.build(config, texts.map(lambda text, _: text), 2)
    built.model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    built.model.fit(texts.batch(32).map(lambda t, y: (built.preprocessor(t), y)), epochs=3, verbose=0)
    model_dir = tmp_path_factory.mktemp("run") / "model"
    FAMILY.save(built, model_dir)
    return model_dir, config


def export(trained: tuple[Path, Any], out: Path, **plan: Any) -> tuple[Any, Any]:
    """(the trained model's answers, the exported version's answers) on the test split."""
    import tensorflow as tf

    from data_prep.dataset_format import TOKENS
    from tfmodels.export import write_saved_model
    from tfmodels.lstm.family import FAMILY
    from tfmodels.pipeline import read_split

    model_dir, config = trained
    config = replace(config, **plan)
    texts = tf.constant([t for t, _ in read_split(Path(config.data), "test", TOKENS).as_numpy_iterator()])
    whole = FAMILY.load(model_dir, config)
    expected = tf.nn.softmax(whole.model(whole.preprocessor(texts), training=False)).numpy()
    write_saved_model(FAMILY.for_serving(FAMILY.load(model_dir, config), config), "tokens", ["neg", "pos"], out)
    served = tf.saved_model.load(str(out)).signatures["serving_default"](tokens=texts)["probabilities"].numpy()
    return expected, served


def stored(version: Path) -> dict[str, tuple[list[int], str]]:
    """Every saved variable's (shape, dtype), by checkpoint key."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(version / "variables" / "variables"))
    dtypes = reader.get_variable_to_dtype_map()
    return {k: (s, dtypes[k].name) for k, s in reader.get_variable_to_shape_map().items() if "VARIABLE_VALUE" in k}


def test_an_unreduced_export_stores_every_table_once_and_answers_exactly(trained: Any, tmp_path: Path) -> None:
    expected, served = export(trained, tmp_path / "v", export_min_df=0, export_dtype="float32")
    np.testing.assert_allclose(served, expected, atol=1e-5)
    shapes = [tuple(shape) for shape, _ in stored(tmp_path / "v").values()]
    assert shapes.count((4096, 8)) == 1 and shapes.count((4096,)) == 1  # n-gram table, idf: once each


def test_the_reduced_export_leaves_out_rare_ngrams_in_int8_and_labels_as_the_trained_model(
    trained: Any, tmp_path: Path
) -> None:
    expected, served = export(trained, tmp_path / "v", export_min_df=2, export_dtype="int8")
    np.testing.assert_array_equal(served.argmax(1), expected.argmax(1))
    assert np.abs(served - expected).max() < PROBABILITY_TOLERANCE
    variables = stored(tmp_path / "v").values()
    ngram_rows = [shape[0] for shape, dtype in variables if dtype == "int8" and shape[1:] == [8]]
    assert len(ngram_rows) == 2 and min(ngram_rows) < 4096 / 2  # word and n-gram tables; rare rows gone
    assert not [shape for shape, dtype in variables if dtype == "float32" and len(shape) == 2 and shape[1] == 8]

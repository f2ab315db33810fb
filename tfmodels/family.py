"""The one seam between model builders (LSTM, BERT) and the shared trainer / evaluator / exporter.

A model family is a small object (module-level singleton) with:

- `name`: "lstm" or "bert"; recorded in RUN_DIR/config.json so `evaluate`/`export` find the family again.
- `input_feature`: the Contract-1 TFRecord feature it reads ("tokens" for LSTM, "text" for BERT) AND the
  name of the exported `serving_default` input. Both are tf.string [batch].
- `defaults`: family-specific hyperparameters, and the family's values for shared trainer keys (epochs, lr,
  max_len...; see tfmodels.config.TRAIN_DEFAULTS). Order: shared < family < --config file < CLI flags.
- `length_fn`: optional `tf.string scalar -> int32 scalar` used by the trainer to bucket examples by length
  BEFORE batching (LSTM: word count, BERT: character count); None means no bucketing.
- `build(config, train_strings, num_classes) -> Built`: called INSIDE `strategy.scope()`. `train_strings`
  is an unbatched tf.data.Dataset of the train split's `input_feature` strings (vocabulary building).
- `save(built, model_dir)` / `load(model_dir, config) -> Built`: persist the trained model in RUN_DIR/model/.

`Built` pairs the two halves KerasHub also keeps apart (BertTextClassifier + its preprocessor):

- `preprocessor`: a keras Layer (so its lookup tables/vocab are tracked when exported) mapping a batch of
  tf.string [batch] to the model's inputs (a tensor or a dict of tensors). TF core / TF-Text ops only.
  The trainer applies it inside tf.data (`ds.map`), after bucketing and batching.
- `model`: a keras.Model from preprocessed inputs to LOGITS [batch, num_classes] (no softmax). The trainer
  compiles it (optimizer, schedule, loss with from_logits) and fits it; a KerasHub task should be passed
  with `task.preprocessor = None` so `fit` does not preprocess a second time.

Export (tfmodels/export.py) composes `model(preprocessor(x))` in one tf.function, adds softmax, label
names and top score, so every family gets the same serving signature and gate.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from data_prep.errors import UserError

if TYPE_CHECKING:  # keep `import tfmodels.family` TensorFlow-free for the CLI's --help
    import keras
    import tensorflow as tf


@dataclass
class Built:
    """A family's model split into tf.data-side preprocessing and the trainable network."""

    preprocessor: keras.layers.Layer
    model: keras.Model


class ModelFamily(Protocol):
    name: str
    input_feature: str
    defaults: dict[str, Any]
    length_fn: Callable[[tf.Tensor], tf.Tensor] | None

    def build(self, config: dict[str, Any], train_strings: tf.data.Dataset, num_classes: int) -> Built: ...

    def save(self, built: Built, model_dir: Path) -> None: ...

    def load(self, model_dir: Path, config: dict[str, Any]) -> Built: ...


# family name -> "module:attribute" of its ModelFamily object; imported only when used
FAMILIES = {
    "lstm": "tfmodels.lstm_family:FAMILY",
    "bert": "tfmodels.bert_family:FAMILY",
}


def get_family(name: str) -> ModelFamily:
    target = FAMILIES.get(name)
    if target is None:
        raise UserError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)

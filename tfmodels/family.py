"""The one seam between model families (tfmodels/lstm, tfmodels/bert) and the shared trainer, evaluator
and exporter, and the one registry of families.

A family is a module-level object with:

- `name`: recorded in RUN_DIR/config.json, so `evaluate` and `export` find the family again.
- `input_feature`: the Contract-1 TFRecord feature it trains on (data_prep.dataset_format), tf.string.
- `serving_input`: the name of the exported `serving_default` input (Contract 2: serving.contract's
  TOKENS_INPUT or TEXT_INPUT), tf.string [batch] holding what `input_feature` holds.
- `config_class`: its TrainConfig subclass (its own settings, its defaults for the shared ones).
- `length_fn`: `tf.string scalar -> int32 scalar` the trainer buckets by; None means no bucketing.
- `build(config, train_strings, num_classes) -> Built`, called INSIDE `strategy.scope()`; `train_strings`
  is the unbatched train split's `input_feature` (for vocabularies).
- `save(built, model_dir)` / `load(model_dir, config) -> Built`: RUN_DIR/model/.
- `for_serving(built, config) -> Built`: what `export` writes, e.g. a smaller copy (the LSTM's rare
  n-gram rows left out, int8 tables); the exporter scores what it wrote, so the card tells its accuracy.

`Built` keeps apart the two halves KerasHub also keeps apart (a task and its preprocessor): the
preprocessor runs inside tf.data while training and inside the serving graph after export, so it must be
a Keras layer of TF core / TF-Text ops; the model maps its output to LOGITS.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from data_prep.errors import UserError
from tfmodels.config import TrainConfig, read_record
from tfmodels.run_dir import RunDir

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
    serving_input: str
    config_class: type[TrainConfig]
    length_fn: Callable[[tf.Tensor], tf.Tensor] | None

    def build(self, config: TrainConfig, train_strings: tf.data.Dataset, num_classes: int) -> Built: ...

    def save(self, built: Built, model_dir: Path) -> None: ...

    def load(self, model_dir: Path, config: TrainConfig) -> Built: ...

    def for_serving(self, built: Built, config: TrainConfig) -> Built: ...


@dataclass(frozen=True)
class Registered:
    """Where a family's object and its `textclf train NAME` command live ("module:attribute"), imported
    only when used so `textclf --help` never starts TensorFlow."""

    family: str
    command: str


FAMILIES: dict[str, Registered] = {
    "lstm": Registered(family="tfmodels.lstm.family:FAMILY", command="tfmodels.lstm.cli:train_lstm"),
    "bert": Registered(family="tfmodels.bert.family:FAMILY", command="tfmodels.bert.cli:train_bert"),
}


def get_family(name: str) -> ModelFamily:
    registered = FAMILIES.get(name)
    if registered is None:
        raise UserError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    return pkgutil.resolve_name(registered.family)


def read_run(run: RunDir) -> tuple[ModelFamily, TrainConfig]:
    """A run's family and its settings, read back from RUN_DIR/config.json."""
    record = read_record(run)
    family = get_family(record.get("family", ""))
    return family, family.config_class.from_record(record)

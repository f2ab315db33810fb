"""The BERT family: cleaned text -> WordPiece ids (TF-Text ops, in-graph) -> KerasHub BertBackbone -> logits.

The backbone comes from a local preset folder (KerasHub or Hugging Face layout, see bert_presets) or is
built from scratch at one of the built-in sizes with a WordPiece vocabulary computed from the training text.
The trained model is saved as a KerasHub preset (RUN_DIR/model/), so it can also seed another run.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import keras_hub
import tensorflow as tf

from data_prep.dataset_format import TEXT
from data_prep.errors import UserError
from tfmodels.bert_presets import SIZES, load_preset, save_task_preset, scratch_backbone
from tfmodels.bert_vocab import compute_vocabulary, make_tokenizer
from tfmodels.family import Built


class BertInputs(keras.layers.Layer):
    """tf.string [batch] -> {token_ids, segment_ids, padding_mask} [batch, T] for BertBackbone.

    Wraps KerasHub's BertTextClassifierPreprocessor ([CLS] text [SEP], truncated and padded to its
    sequence_length) and, when `trim`, cuts the padding down to the longest text in the batch: with the
    trainer's length bucketing most batches of short reviews are then a fraction of sequence_length long.
    """

    def __init__(self, packer: keras_hub.models.BertTextClassifierPreprocessor, trim: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.packer = packer
        self.trim = trim
        self.built = True  # no weights of its own; lets the exporter track it before its first call

    def call(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = self.packer(text)
        if not self.trim:
            return inputs
        longest = tf.reduce_max(tf.reduce_sum(tf.cast(inputs["padding_mask"], tf.int32), axis=1))
        longest = tf.maximum(longest, 1)
        return {name: tensor[:, :longest] for name, tensor in inputs.items()}


def char_count(text: tf.Tensor) -> tf.Tensor:
    """Characters + [CLS] + [SEP]: the bucketing key (a CJK character is one WordPiece token)."""
    return tf.strings.length(text, unit="UTF8_CHAR") + 2


class BertFamily:
    name = "bert"
    input_feature = TEXT
    defaults: dict[str, Any] = {
        "preset": None,  # local KerasHub or Hugging Face folder; None: build `size` from scratch
        "size": "tiny",  # tiny | mini | small | base (scratch only)
        "vocab_size": 8000,  # WordPiece vocabulary of a scratch model (CJK characters + Latin pieces)
        "dropout": 0.1,
        # shared keys, tuned for a tiny BERT on short Chinese reviews on CPU
        "epochs": 4,
        "batch_size": 32,
        "lr": 5e-4,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "decay": "linear",
        "max_len": 128,  # WordPiece tokens including [CLS] and [SEP]
    }
    length_fn = staticmethod(char_count)

    def build(self, config: dict[str, Any], train_strings: tf.data.Dataset, num_classes: int) -> Built:
        if config["preset"]:
            backbone, tokenizer = load_preset(Path(config["preset"]), dropout=config["dropout"])
        else:
            if config["size"] not in SIZES:
                raise UserError(f"unknown BERT size {config['size']!r}; choose one of {', '.join(SIZES)}")
            tokenizer = make_tokenizer(compute_vocabulary(train_strings, config["vocab_size"]))
            backbone = scratch_backbone(config["size"], tokenizer.vocabulary_size(), dropout=config["dropout"])
        sequence_length = min(config["max_len"], backbone.max_sequence_length)
        packer = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
        model = keras_hub.models.BertTextClassifier(
            backbone, num_classes, preprocessor=None, activation=None, dropout=config["dropout"],
        )
        return Built(preprocessor=BertInputs(packer, trim=config["bucketing"], name="bert_inputs"), model=model)

    def save(self, built: Built, model_dir: Path) -> None:
        """A KerasHub preset: backbone, tokenizer vocabulary, packer config and the classifier head."""
        model_dir.mkdir(parents=True, exist_ok=True)
        task = built.model
        task.preprocessor = built.preprocessor.packer
        try:
            save_task_preset(task, model_dir)
        finally:
            task.preprocessor = None

    def load(self, model_dir: Path, config: dict[str, Any]) -> Built:
        task = keras_hub.models.BertTextClassifier.from_preset(str(model_dir))
        packer, task.preprocessor = task.preprocessor, None
        return Built(preprocessor=BertInputs(packer, trim=config["bucketing"], name="bert_inputs"), model=task)


FAMILY = BertFamily()

"""The BERT family: cleaned text -> WordPiece ids (TF-Text ops, in-graph) -> KerasHub BertBackbone -> logits.

The backbone comes from a local preset folder (KerasHub or Hugging Face layout, see bert_presets) or is
built from scratch at one of the built-in sizes with a WordPiece vocabulary computed from the training text.
The trained model is saved as a KerasHub preset (RUN_DIR/model/), so it can also seed another run.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import keras
import keras_hub
import tensorflow as tf

from data_prep.dataset_format import TEXT
from tfmodels.bert_presets import check_size, load_preset, save_task_preset, scratch_backbone
from tfmodels.bert_vocab import compute_vocabulary, make_tokenizer
from tfmodels.family import Built

TRIM_STEP = 16


def int_padding_mask(inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
    """KerasHub's packers emit a bool padding_mask; make it int32 like the backbone's Input. Under
    MirroredStrategy Keras averages a first batch across replicas to build the model, and AddN has
    no bool kernel."""
    return {**inputs, "padding_mask": tf.cast(inputs["padding_mask"], tf.int32)}


class BertInputs(keras.layers.Layer):
    """tf.string [batch] -> {token_ids, segment_ids, padding_mask} [batch, T] for BertBackbone.

    Wraps KerasHub's BertTextClassifierPreprocessor ([CLS] text [SEP], truncated and padded to its
    sequence_length) and, when `trim`, cuts the padding down to the longest text in the batch, rounded
    up to a multiple of TRIM_STEP: with the trainer's length bucketing most batches of short reviews are
    then a fraction of sequence_length long, in few enough shapes that kernels are not re-planned per
    batch (tiny BERT, 2 CPU cores: 540 examples/s, vs 340 cut exactly and 200 padded to 128).
    """

    def __init__(
        self, packer: keras_hub.models.BertTextClassifierPreprocessor, trim: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.packer = packer
        self.trim = trim
        self.built = True  # no weights of its own; lets the exporter track it before its first call

    def call(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        inputs = int_padding_mask(self.packer(text))
        if not self.trim:
            return inputs
        longest = tf.reduce_max(tf.reduce_sum(inputs["padding_mask"], axis=1))
        length = tf.minimum((longest + TRIM_STEP - 1) // TRIM_STEP * TRIM_STEP, tf.shape(inputs["token_ids"])[1])
        return {name: tensor[:, : tf.maximum(length, 1)] for name, tensor in inputs.items()}


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
        "dropout": 0.2,  # BERT's own 0.1 suits a pretrained base model; tiny on 14k reviews overfits with it
        # shared keys, tuned for a tiny BERT on short Chinese reviews on CPU (dev accuracy, builtin corpus)
        "epochs": 4,
        "batch_size": 32,
        "lr": 3e-4,
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
            check_size(config["size"])  # before the vocabulary, which takes a while
            tokenizer = make_tokenizer(compute_vocabulary(train_strings, config["vocab_size"]))
            backbone = scratch_backbone(config["size"], tokenizer.vocabulary_size(), dropout=config["dropout"])
        sequence_length = min(config["max_len"], backbone.max_sequence_length)
        packer = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
        model = keras_hub.models.BertTextClassifier(
            backbone,
            num_classes,
            preprocessor=None,
            activation=None,
            dropout=config["dropout"],
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
        with warnings.catch_warnings():  # the task compiles itself with a fresh Adam that matches no saved state
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            task = keras_hub.models.BertTextClassifier.from_preset(str(model_dir))
        packer, task.preprocessor = task.preprocessor, None
        return Built(preprocessor=BertInputs(packer, trim=config["bucketing"], name="bert_inputs"), model=task)


FAMILY = BertFamily()

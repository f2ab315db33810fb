"""The BERT family's adapter: a backbone from a local preset or a scratch size (with a WordPiece vocabulary
of the training text) under KerasHub's BertTextClassifier; saved as a KerasHub preset in RUN_DIR/model/."""

from __future__ import annotations

import warnings
from pathlib import Path

import keras_hub
import tensorflow as tf

from data_prep.dataset_format import TEXT
from serving.contract import TEXT_INPUT
from tfmodels.bert.config import BertConfig
from tfmodels.bert.preprocessor import BertInputs, char_count
from tfmodels.bert.presets import load_preset, save_task_preset, scratch_backbone
from tfmodels.bert.vocabulary import compute_vocabulary, make_tokenizer
from tfmodels.family import Built


class BertFamily:
    """Text in, logits out; the model is saved as a KerasHub preset, so it can also seed another run."""

    name = "bert"
    input_feature = TEXT
    serving_input = TEXT_INPUT
    config_class = BertConfig
    length_fn = staticmethod(char_count)

    def build(self, config: BertConfig, train_strings: tf.data.Dataset, num_classes: int) -> Built:
        if config.preset is not None:
            backbone, tokenizer = load_preset(Path(config.preset), dropout=config.dropout)
        else:
            tokenizer = make_tokenizer(compute_vocabulary(train_strings, config.vocab_size))
            backbone = scratch_backbone(config.size, tokenizer.vocabulary_size(), dropout=config.dropout)
        sequence_length = min(config.max_len, backbone.max_sequence_length)
        packer = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=sequence_length)
        model = keras_hub.models.BertTextClassifier(
            backbone,
            num_classes,
            preprocessor=None,
            activation=None,
            dropout=config.dropout,
        )
        return Built(preprocessor=BertInputs(packer, trim=config.bucketing, name="bert_inputs"), model=model)

    def save(self, built: Built, model_dir: Path) -> None:
        """A KerasHub preset: backbone, tokenizer vocabulary, packer config and the classifier head."""
        model_dir.mkdir(parents=True, exist_ok=True)
        task = built.model
        task.preprocessor = built.preprocessor.packer
        try:
            save_task_preset(task, model_dir)
        finally:
            task.preprocessor = None

    def load(self, model_dir: Path, config: BertConfig) -> Built:
        with warnings.catch_warnings():  # the task compiles itself with a fresh Adam that matches no saved state
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            task = keras_hub.models.BertTextClassifier.from_preset(str(model_dir))
        packer, task.preprocessor = task.preprocessor, None
        return Built(preprocessor=BertInputs(packer, trim=config.bucketing, name="bert_inputs"), model=task)

    def for_serving(self, built: Built, config: BertConfig) -> Built:
        """Served as trained."""
        return built


FAMILY = BertFamily()

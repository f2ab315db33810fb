"""Masked-LM pretraining of a scratch BERT on unlabeled text, saved as a local KerasHub preset.

The WordPiece vocabulary is computed from the same text, the backbone is trained with KerasHub's
BertMaskedLM (15% of tokens selected; of those 80% [MASK], 10% random, 10% kept), and the result is
written with `save_to_preset` into a folder that `textclf train bert --preset` reads. The dev split's text
is held out to report masked-token accuracy, the one number that says whether pretraining learned anything.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from data_prep.atomic import publish_dir, refuse_existing, write_text
from data_prep.dataset_format import TEXT, read_meta
from data_prep.errors import UserError
from tfmodels.bert.config import MLMConfig
from tfmodels.bert.corpus import check_sources, unlabeled_dataset

PRETRAINING_FILE = "pretraining.json"  # beside the preset files: corpus, settings, metrics


def pretrain_mlm(
    data_dir: Path, out_dir: Path, *, extra_text: list[str] | tuple[str, ...] = (), force: bool = False, **options: Any
) -> dict[str, Any]:
    """Pretrain, save the preset to `out_dir` (atomically) and return what pretraining.json records."""
    config = MLMConfig.from_mapping({k: v for k, v in options.items() if v is not None})
    data_dir, out_dir, extra = Path(data_dir).resolve(), Path(out_dir), list(extra_text)
    read_meta(data_dir)
    check_sources(extra)
    refuse_existing(out_dir, force)

    from tfmodels.strategy import make_strategy  # first TF touch: may split the CPU into logical devices

    strategy = make_strategy(config.strategy)
    import keras
    import keras_hub
    import tensorflow as tf

    from tfmodels.bert.preprocessor import int_padding_mask
    from tfmodels.bert.presets import save_task_preset, scratch_backbone
    from tfmodels.bert.vocabulary import compute_vocabulary, make_tokenizer
    from tfmodels.pipeline import read_split
    from tfmodels.schedule import make_optimizer

    keras.utils.set_random_seed(config.seed)
    limit = config.max_examples

    def corpus() -> tf.data.Dataset:
        ds = unlabeled_dataset(data_dir, extra)
        return ds.take(limit) if limit > 0 else ds

    n_texts = int(corpus().reduce(0, lambda count, _: count + 1))
    if n_texts == 0:
        raise UserError("no unlabeled text to pretrain on")
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    steps = math.ceil(n_texts / global_batch) * config.epochs
    print(f"mlm: {n_texts} texts, {steps} steps, global batch {global_batch} ({type(strategy).__name__})")

    started = time.time()
    tokenizer = make_tokenizer(compute_vocabulary(corpus(), config.vocab_size))
    with strategy.scope():
        backbone = scratch_backbone(config.size, tokenizer.vocabulary_size())
        preprocessor = keras_hub.models.BertMaskedLMPreprocessor(
            tokenizer,
            sequence_length=config.sequence_length,
            mask_selection_rate=config.mask_rate,
            mask_selection_length=max(1, math.ceil(config.sequence_length * config.mask_rate)),
        )
        mlm = keras_hub.models.BertMaskedLM(backbone, preprocessor=preprocessor)
        # BERT's own recipe: AdamW, 10% linear warmup, linear decay, weight decay 0.01, gradients clipped at 1
        optimizer = make_optimizer(
            lr=config.lr,
            total_steps=steps,
            warmup_ratio=0.1,
            decay="linear",
            optimizer="adamw",
            weight_decay=0.01,
            clipnorm=1.0,
            ema=0.0,
        )
        mlm.compile(optimizer=optimizer, weighted_metrics=["sparse_categorical_accuracy"])

    def masked(texts: tf.data.Dataset) -> tf.data.Dataset:
        """Mask in tf.data (as fit would), with the padding mask made int32 for MirroredStrategy."""

        def apply(batch: tf.Tensor) -> tuple:
            x, y, weights = preprocessor(batch)
            return int_padding_mask(x), y, weights

        return texts.batch(global_batch).map(apply, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)

    known_size = tf.data.experimental.assert_cardinality(n_texts)  # so Keras shows progress and stops cleanly
    mlm.preprocessor = None  # masking happens in `masked`
    history = mlm.fit(
        masked(corpus().apply(known_size).shuffle(10000, seed=config.seed)), epochs=config.epochs, verbose=2
    )
    dev_loss, dev_accuracy = mlm.evaluate(
        masked(read_split(data_dir, "dev", TEXT).map(lambda text, label: text)), verbose=0
    )
    mlm.preprocessor = preprocessor  # saved with the preset
    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "data": str(data_dir),
        "extra_text": extra,
        "texts": n_texts,
        "steps": steps,
        "vocabulary_size": tokenizer.vocabulary_size(),
        "config": asdict(config),
        "train_loss": float(history.history["loss"][-1]),
        "dev_masked_loss": float(dev_loss),
        "dev_masked_accuracy": float(dev_accuracy),
        "seconds": round(time.time() - started, 1),
    }
    with publish_dir(out_dir, force=force) as tmp:
        save_task_preset(mlm, tmp)
        write_text(tmp / PRETRAINING_FILE, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return record

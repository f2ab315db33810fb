"""Tiny models for tests: Contract-2 SavedModels for the gateway, built with plain TensorFlow in a few
seconds, and a tiny Hugging Face BERT folder for the BERT family's preset loading.

So the gateway tests need no trained LSTM/BERT: a StaticHashTable maps a few words (tokens model) or
characters (text model) to a class; probabilities are a softmax over per-class hit counts. Same
signature shape as tfmodels' export: serving_default(tf.string [batch]) -> probabilities, label,
top_score (+ class_names [batch, C] when `with_class_names`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serving.contract import CLASS_NAMES, LABEL, PROBABILITIES, SIGNATURE, TOKENS_INPUT, TOP_SCORE

LABELS = ["体育", "科技", "财经"]
WORDS = {"足球": 0, "比赛": 0, "手机": 1, "电脑": 1, "股票": 2, "银行": 2}  # tokens model
CHARS = {"球": 0, "赛": 0, "机": 1, "脑": 1, "股": 2, "银": 2}  # text model


def build(out_dir: Path, input_name: str, *, with_class_names: bool = True, bias: int = -1) -> None:
    """Write one SavedModel version to `out_dir`. `bias` (a class id) favours one class, so two
    versions of a model answer differently (to tell stable from canary)."""
    import tensorflow as tf

    words = input_name == TOKENS_INPUT
    vocabulary = WORDS if words else CHARS

    class Tiny(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    list(vocabulary), list(vocabulary.values()), key_dtype=tf.string, value_dtype=tf.int64
                ),
                default_value=-1,
            )
            self.names = tf.constant(LABELS)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=input_name)])
        def serve(self, inputs: tf.Tensor) -> dict[str, tf.Tensor]:
            pieces = (
                tf.strings.split(inputs) if input_name == TOKENS_INPUT else tf.strings.unicode_split(inputs, "UTF-8")
            )
            ids = self.table.lookup(pieces)
            hits = tf.reduce_sum(tf.one_hot(ids, len(LABELS)), axis=1)  # -1 -> all-zero row
            if bias >= 0:
                hits += tf.one_hot(tf.fill(tf.shape(inputs), bias), len(LABELS)) * 0.5
            probabilities = tf.nn.softmax(hits * 2.0, axis=-1)
            best = tf.argmax(probabilities, axis=-1)
            outputs = {
                PROBABILITIES: probabilities,
                LABEL: tf.gather(self.names, best),
                TOP_SCORE: tf.reduce_max(probabilities, axis=-1),
            }
            if with_class_names:
                outputs[CLASS_NAMES] = tf.tile(self.names[tf.newaxis], [tf.shape(inputs)[0], 1])
            return outputs

    module = Tiny()
    tf.saved_model.save(module, str(out_dir), signatures={SIGNATURE: module.serve})


HF_VOCAB = ["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "好", "坏", "电", "影", "的", "abc", "##d"]
HF_HIDDEN, HF_INTERMEDIATE, HF_POSITIONS = 8, 16, 32


def write_hf_bert(folder: Path, *, tokenizer_config: dict | None = None, seed: int = 0) -> dict[str, Any]:
    """A tiny Hugging Face Transformers BERT folder (what `save_pretrained` writes), random weights."""
    import numpy as np
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(HF_VOCAB) + "\n", encoding="utf-8")
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": len(HF_VOCAB),
        "hidden_size": HF_HIDDEN,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": HF_INTERMEDIATE,
        "max_position_embeddings": HF_POSITIONS,
        "type_vocab_size": 2,
    }
    (folder / "config.json").write_text(json.dumps(config))
    if tokenizer_config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> Any:
        return rng.normal(0, 0.02, shape).astype("float32")

    def norm(prefix: str) -> dict[str, Any]:
        return {f"{prefix}.weight": 1 + rand(HF_HIDDEN), f"{prefix}.bias": rand(HF_HIDDEN)}

    weights = {
        "bert.embeddings.word_embeddings.weight": rand(len(HF_VOCAB), HF_HIDDEN),
        "bert.embeddings.position_embeddings.weight": rand(HF_POSITIONS, HF_HIDDEN),
        "bert.embeddings.token_type_embeddings.weight": rand(2, HF_HIDDEN),
        **norm("bert.embeddings.LayerNorm"),
        "bert.pooler.dense.weight": rand(HF_HIDDEN, HF_HIDDEN),
        "bert.pooler.dense.bias": rand(HF_HIDDEN),
    }
    layer = "bert.encoder.layer.0."
    for name in ("query", "key", "value"):
        weights[f"{layer}attention.self.{name}.weight"] = rand(HF_HIDDEN, HF_HIDDEN)
        weights[f"{layer}attention.self.{name}.bias"] = rand(HF_HIDDEN)
    weights.update(
        {
            f"{layer}attention.output.dense.weight": rand(HF_HIDDEN, HF_HIDDEN),
            f"{layer}attention.output.dense.bias": rand(HF_HIDDEN),
            **norm(f"{layer}attention.output.LayerNorm"),
            f"{layer}intermediate.dense.weight": rand(HF_INTERMEDIATE, HF_HIDDEN),
            f"{layer}intermediate.dense.bias": rand(HF_INTERMEDIATE),
            f"{layer}output.dense.weight": rand(HF_HIDDEN, HF_INTERMEDIATE),
            f"{layer}output.dense.bias": rand(HF_HIDDEN),
            **norm(f"{layer}output.LayerNorm"),
        }
    )
    save_file(weights, str(folder / "model.safetensors"))
    return weights

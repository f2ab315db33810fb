"""Local BERT presets of both layouts load offline with their weights; scratch sizes; bad folders refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.errors import UserError
from tfmodels.bert_presets import SIZES, load_preset, preset_layout, scratch_backbone

VOCAB = ["[PAD]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "好", "坏", "电", "影", "的", "abc", "##d"]
HIDDEN, INTERMEDIATE, POSITIONS = 8, 16, 32


def write_hf_bert(folder: Path, *, tokenizer_config: dict | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny Hugging Face Transformers BERT folder (what `save_pretrained` writes), random weights."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": len(VOCAB),
        "hidden_size": HIDDEN,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": POSITIONS,
        "type_vocab_size": 2,
    }
    (folder / "config.json").write_text(json.dumps(config))
    if tokenizer_config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    rng = np.random.default_rng(seed)

    def rand(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.02, shape).astype("float32")

    def norm(prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}.weight": 1 + rand(HIDDEN), f"{prefix}.bias": rand(HIDDEN)}

    weights = {
        "bert.embeddings.word_embeddings.weight": rand(len(VOCAB), HIDDEN),
        "bert.embeddings.position_embeddings.weight": rand(POSITIONS, HIDDEN),
        "bert.embeddings.token_type_embeddings.weight": rand(2, HIDDEN),
        **norm("bert.embeddings.LayerNorm"),
        "bert.pooler.dense.weight": rand(HIDDEN, HIDDEN),
        "bert.pooler.dense.bias": rand(HIDDEN),
    }
    layer = "bert.encoder.layer.0."
    for name in ("query", "key", "value"):
        weights[f"{layer}attention.self.{name}.weight"] = rand(HIDDEN, HIDDEN)
        weights[f"{layer}attention.self.{name}.bias"] = rand(HIDDEN)
    weights.update(
        {
            f"{layer}attention.output.dense.weight": rand(HIDDEN, HIDDEN),
            f"{layer}attention.output.dense.bias": rand(HIDDEN),
            **norm(f"{layer}attention.output.LayerNorm"),
            f"{layer}intermediate.dense.weight": rand(INTERMEDIATE, HIDDEN),
            f"{layer}intermediate.dense.bias": rand(INTERMEDIATE),
            f"{layer}output.dense.weight": rand(HIDDEN, INTERMEDIATE),
            f"{layer}output.dense.bias": rand(HIDDEN),
            **norm(f"{layer}output.LayerNorm"),
        }
    )
    save_file(weights, str(folder / "model.safetensors"))
    return weights


def test_hugging_face_folder_loads_offline_with_its_weights(tmp_path: Path) -> None:
    weights = write_hf_bert(tmp_path / "hf", tokenizer_config={"do_lower_case": False})
    assert preset_layout(tmp_path / "hf") == "transformers"
    backbone, tokenizer = load_preset(tmp_path / "hf")
    assert (backbone.num_layers, backbone.hidden_dim, backbone.max_sequence_length) == (1, HIDDEN, POSITIONS)
    np.testing.assert_allclose(
        backbone.get_layer("token_embedding").embeddings.numpy(), weights["bert.embeddings.word_embeddings.weight"]
    )
    query = backbone.get_layer("transformer_layer_0")._self_attention_layer.query_dense.kernel
    expected = np.reshape(weights["bert.encoder.layer.0.attention.self.query.weight"].T, query.shape)
    np.testing.assert_allclose(query.numpy(), expected)
    np.testing.assert_allclose(
        backbone.get_layer("embeddings_layer_norm").gamma.numpy(), weights["bert.embeddings.LayerNorm.weight"]
    )
    assert tokenizer.get_vocabulary() == VOCAB
    assert not tokenizer.lowercase  # tokenizer_config.json's do_lower_case is honoured
    assert np.asarray(tokenizer.tokenize("好电影abcd")).tolist() == [6, 8, 9, 11, 12]


def test_hugging_face_folder_without_tokenizer_config_lowercases(tmp_path: Path) -> None:
    write_hf_bert(tmp_path / "hf")
    _, tokenizer = load_preset(tmp_path / "hf")
    assert tokenizer.lowercase  # Transformers' BertTokenizer default
    assert np.asarray(tokenizer.tokenize("ABC")).tolist() == [VOCAB.index("abc")]


def test_keras_hub_preset_round_trip(tmp_path: Path) -> None:
    from tfmodels.bert_vocab import make_tokenizer

    backbone = scratch_backbone("tiny", len(VOCAB))
    tokenizer = make_tokenizer(VOCAB)
    backbone.save_to_preset(str(tmp_path / "kh"))
    tokenizer.save_to_preset(str(tmp_path / "kh"))
    assert preset_layout(tmp_path / "kh") == "keras"
    loaded, loaded_tokenizer = load_preset(tmp_path / "kh")
    assert len(loaded.weights) == len(backbone.weights)
    for before, after in zip(backbone.weights, loaded.weights):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    assert loaded_tokenizer.get_vocabulary() == VOCAB and loaded_tokenizer.lowercase


def test_scratch_sizes() -> None:
    backbone = scratch_backbone("tiny", 100)
    assert (backbone.num_layers, backbone.hidden_dim, backbone.num_heads, backbone.intermediate_dim) == (2, 128, 2, 512)
    assert SIZES["base"]["num_layers"] == 12 and SIZES["base"]["hidden_dim"] == 768
    with pytest.raises(UserError, match="unknown BERT size"):
        scratch_backbone("huge", 100)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: None, "not a local folder"),  # e.g. a hub preset name: never downloaded
        (lambda d: d.mkdir(), "no config.json"),
        (lambda d: (d.mkdir(), (d / "config.json").write_text('{"model_type": "gpt2"}')), "found model_type='gpt2'"),
        (lambda d: (d.mkdir(), (d / "config.json").write_text('{"model_type": "bert"}')), "without vocab.txt"),
        (lambda d: (d.mkdir(), (d / "config.json").write_text("{oops")), "not valid JSON"),
    ],
)
def test_bad_preset_folders_are_user_errors(tmp_path: Path, make, message: str) -> None:
    folder = tmp_path / "bert_base_en"
    make(folder)
    with pytest.raises(UserError, match=message):
        load_preset(folder)

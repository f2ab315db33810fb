"""Local BERT presets of both layouts load offline with their weights; scratch sizes; bad folders refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.errors import UserError
from tests.support.tiny_models import HF_HIDDEN, HF_POSITIONS, HF_VOCAB, write_hf_bert
from tfmodels.bert.presets import SIZES, load_preset, preset_layout, scratch_backbone


def test_hugging_face_folder_loads_offline_with_its_weights(tmp_path: Path) -> None:
    weights = write_hf_bert(tmp_path / "hf", tokenizer_config={"do_lower_case": False})
    assert preset_layout(tmp_path / "hf") == "transformers"
    backbone, tokenizer = load_preset(tmp_path / "hf")
    assert (backbone.num_layers, backbone.hidden_dim, backbone.max_sequence_length) == (1, HF_HIDDEN, HF_POSITIONS)
    np.testing.assert_allclose(
        backbone.get_layer("token_embedding").embeddings.numpy(), weights["bert.embeddings.word_embeddings.weight"]
    )
    (query,) = [w for w in backbone.get_layer("transformer_layer_0").weights if w.path.endswith("query/kernel")]
    expected = np.reshape(weights["bert.encoder.layer.0.attention.self.query.weight"].T, query.shape)
    np.testing.assert_allclose(query.numpy(), expected)
    np.testing.assert_allclose(
        backbone.get_layer("embeddings_layer_norm").gamma.numpy(), weights["bert.embeddings.LayerNorm.weight"]
    )
    assert tokenizer.get_vocabulary() == HF_VOCAB
    assert not tokenizer.lowercase  # tokenizer_config.json's do_lower_case is honoured
    assert np.asarray(tokenizer.tokenize("好电影abcd")).tolist() == [6, 8, 9, 11, 12]


def test_hugging_face_folder_without_tokenizer_config_lowercases(tmp_path: Path) -> None:
    write_hf_bert(tmp_path / "hf")
    _, tokenizer = load_preset(tmp_path / "hf")
    assert tokenizer.lowercase  # Transformers' BertTokenizer default
    assert np.asarray(tokenizer.tokenize("ABC")).tolist() == [HF_VOCAB.index("abc")]


def test_keras_hub_preset_round_trip(tmp_path: Path) -> None:
    from tfmodels.bert.vocabulary import make_tokenizer

    backbone = scratch_backbone("tiny", len(HF_VOCAB))
    tokenizer = make_tokenizer(HF_VOCAB)
    backbone.save_to_preset(str(tmp_path / "kh"))
    tokenizer.save_to_preset(str(tmp_path / "kh"))
    assert preset_layout(tmp_path / "kh") == "keras"
    loaded, loaded_tokenizer = load_preset(tmp_path / "kh")
    assert len(loaded.weights) == len(backbone.weights)
    for before, after in zip(backbone.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(before.numpy(), after.numpy())
    assert loaded_tokenizer.get_vocabulary() == HF_VOCAB and loaded_tokenizer.lowercase


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
        (lambda d: (write_hf_bert(d), (d / "tokenizer_config.json").write_text("{oops")), "not valid JSON"),
    ],
)
def test_bad_preset_folders_are_user_errors(tmp_path: Path, make, message: str) -> None:
    folder = tmp_path / "bert_base_en"
    make(folder)
    with pytest.raises(UserError, match=message):
        load_preset(folder)

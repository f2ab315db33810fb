"""Scratch WordPiece vocabulary (CJK characters one by one, lowercased) and the pretraining text sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data_prep.errors import UserError
from tfmodels.bert_corpus import PEOPLES_DAILY, check_sources, extra_lines, untag
from tfmodels.bert_vocab import SPECIAL_TOKENS, compute_vocabulary, make_tokenizer


def test_vocabulary_splits_cjk_characters_and_lowercases() -> None:
    import tensorflow as tf

    texts = ["我爱北京天安门 Python", "北京欢迎你 PYTHON python", "天安门上太阳升"] * 5
    vocab = compute_vocabulary(tf.data.Dataset.from_tensor_slices(texts), 200)
    assert vocab[:5] == SPECIAL_TOKENS == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert {"北", "京", "天", "安", "门", "python"} <= set(vocab)
    assert "北京" not in vocab and "PYTHON" not in vocab  # no multi-character CJK tokens, no upper case
    tokenizer = make_tokenizer(vocab)
    ids = np.asarray(tokenizer.tokenize("北京 PYTHON 火星")).tolist()
    assert [vocab[i] for i in ids] == ["北", "京", "python", "[UNK]", "[UNK]"]
    assert tokenizer.pad_token_id == 0 and tokenizer.mask_token_id == 4


def test_every_character_of_a_large_alphabet_gets_a_token() -> None:
    """KerasHub's wrapper would keep only the 1000 most frequent characters: Chinese needs thousands."""
    import tensorflow as tf

    characters = [chr(0x4E00 + i) for i in range(1500)]
    texts = ["".join(characters[i : i + 30]) for i in range(0, 1500, 30)] + ["的的的的"] * 20
    vocab = compute_vocabulary(tf.data.Dataset.from_tensor_slices(texts), 4000)
    assert set(characters) <= set(vocab)
    assert not any(token.startswith("##") for token in vocab)  # "##的" is dead weight: never matched


def test_empty_text_has_no_vocabulary() -> None:
    import tensorflow as tf

    with pytest.raises(UserError, match="empty"):
        compute_vocabulary(tf.data.Dataset.from_tensor_slices(["", " "]), 100)
    with pytest.raises(UserError, match="vocabulary size"):
        compute_vocabulary(tf.data.Dataset.from_tensor_slices(["好"]), 3)


def test_peoples_daily_is_untagged_and_cleaned() -> None:
    assert (
        untag("迈向/v  充满/v  希望/n  的/u  新/a  世纪/n  ——/w  一九九八年/t\n") == "迈向充满希望的新世纪——一九九八年"
    )
    lines = []
    for line in extra_lines(PEOPLES_DAILY):
        lines.append(line)
        if len(lines) == 50:
            break
    assert lines[0].startswith("迈向充满希望的新世纪")
    assert not any("/n" in line or "  " in line for line in lines)
    assert any("12月31日" in line for line in lines)  # NFKC: full-width digits became ASCII, as in prep


def test_extra_text_file_and_bad_sources(tmp_path: Path) -> None:
    good = tmp_path / "extra.txt"
    good.write_text("第一行 <b>加粗</b>\n\n   \n第二行&amp;\n", encoding="utf-8")
    assert list(extra_lines(str(good))) == ["第一行 加粗", "第二行&"]
    (tmp_path / "bad.txt").write_bytes("中文".encode("gbk"))
    for source, message in [
        (str(tmp_path / "missing.txt"), "no such file"),
        ("builtin:nothing", "unknown builtin"),
        (str(tmp_path / "bad.txt"), "not UTF-8"),
    ]:
        with pytest.raises(UserError, match=message):
            check_sources([str(good), source])

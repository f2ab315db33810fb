"""Preprocessor: rebuilt from its recorded config, refusing one this installation cannot reproduce."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from data_prep.errors import UserError
from data_prep.preprocess import Preprocessor
from data_prep.segment import Segmenter

NEW_WORD = "蓝鲸智算平台"


def test_config_round_trip(tmp_path: Path) -> None:
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"{NEW_WORD} 100 n\n", encoding="utf-8")
    original = Preprocessor(Segmenter(user_dict=user_dict, hmm=False), max_chars=50)
    rebuilt = Preprocessor.from_config(original.config(), user_dict=user_dict)
    assert rebuilt.config() == original.config()
    text = f"＜b＞我们用{NEW_WORD}训练模型＜/b＞" * 5
    assert rebuilt.clean(text) == original.clean(text) and len(rebuilt.clean(text)) <= 50
    assert rebuilt.tokens(text) == original.tokens(text) and NEW_WORD in rebuilt.tokens(text)


def test_from_config_refuses_skew(tmp_path: Path) -> None:
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"{NEW_WORD} 100 n\n", encoding="utf-8")
    other = tmp_path / "other.txt"
    other.write_text("别的词 5 n\n", encoding="utf-8")
    cfg = Preprocessor(Segmenter(user_dict=user_dict)).config()
    with pytest.raises(UserError, match="--user-dict"):
        Preprocessor.from_config(cfg)
    with pytest.raises(UserError, match="sha256"):
        Preprocessor.from_config(cfg, user_dict=other)
    with pytest.raises(UserError, match="without a user dictionary"):
        Preprocessor.from_config(Preprocessor().config(), user_dict=user_dict)
    old_jieba = {**cfg, "segmenter": {**cfg["segmenter"], "jieba_version": "0.1"}}
    with pytest.raises(UserError, match="jieba 0.1"):
        Preprocessor.from_config(old_jieba, user_dict=user_dict)
    with pytest.raises(UserError, match="incomplete"):
        Preprocessor.from_config({"segmenter": cfg["segmenter"]})
    other_cleaning = {**cfg, "cleaning": {**cfg["cleaning"], "unicode": "NFC"}}
    with pytest.raises(UserError, match="cleaning"):
        Preprocessor.from_config(other_cleaning, user_dict=user_dict)


def test_gateway_side_modules_do_not_import_tensorflow() -> None:
    code = (
        "import sys, data_prep.clean, data_prep.segment, data_prep.preprocess;"
        "p = data_prep.preprocess.Preprocessor(); p.tokens('测试文本');"
        "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')], 'TF imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

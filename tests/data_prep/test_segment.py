"""Segmenter: jieba words joined by one space, with its own dictionary and stopwords."""

from __future__ import annotations

from pathlib import Path

import jieba

from data_prep.segment import Segmenter

NEW_WORD = "蓝鲸智算平台"


def test_tokens_are_words_joined_by_one_space() -> None:
    tokens = Segmenter().tokens("我爱北京天安门 hello  world")
    assert tokens == "我 爱 北京 天安门 hello world"


def test_user_dict_is_honoured(tmp_path: Path) -> None:
    assert NEW_WORD not in Segmenter().tokens(f"我们使用{NEW_WORD}训练").split()
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"{NEW_WORD} 100 n\n", encoding="utf-8")
    segmenter = Segmenter(user_dict=user_dict)
    assert NEW_WORD in segmenter.tokens(f"我们使用{NEW_WORD}训练").split()
    assert segmenter.config()["user_dict_sha256"] is not None
    # jieba's global tokenizer is untouched: the dictionary lives in this Segmenter only
    assert NEW_WORD not in jieba.lcut(f"我们使用{NEW_WORD}训练")


def test_stopwords_dropped(tmp_path: Path) -> None:
    stopwords = tmp_path / "stop.txt"
    stopwords.write_text("的\n了\n", encoding="utf-8")
    plain = Segmenter().tokens("我的书看完了").split()
    assert "的" in plain and "了" in plain
    assert Segmenter(stopwords=stopwords).tokens("我的书看完了").split() == [w for w in plain if w not in "的了"]

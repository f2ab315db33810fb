"""Both segmenter backends (jieba, rjieba) honour the user dictionary, HMM on/off and stopwords; prep records
the backend and its version, its workers cut with it, and `Preprocessor.from_config` rebuilds that backend
and refuses a version or a backend this installation does not have."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from prep_corpus import ReadSplit, write_folder

from data_prep.errors import UserError
from data_prep.preprocess import Preprocessor
from data_prep.segment import BACKENDS, Segmenter, backend_version
from textclf import cli

NEW_WORD = "蓝鲸智算平台"
URL_TEXT = "访问https://www.example.com看看"  # jieba cuts the host at each dot, jieba-rs keeps it whole
JIEBA_URL, RJIEBA_URL = "访问 https : / / www . example . com 看看", "访问 https : / / www.example.com 看看"


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_backend_honours_user_dict_hmm_and_stopwords(backend: str, tmp_path: Path) -> None:
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"{NEW_WORD} 100 n\n深度学习训练\n", encoding="utf-8")  # with and without a frequency
    stopwords = tmp_path / "stop.txt"
    stopwords.write_text("了\n", encoding="utf-8")
    text = f"他来到了网易杭研大厦用{NEW_WORD}做深度学习训练"
    plain = Segmenter(backend=backend).tokens(text).split()
    assert NEW_WORD not in plain and "深度学习训练" not in plain and "杭研" in plain and "了" in plain
    custom = Segmenter(user_dict=user_dict, stopwords=stopwords, hmm=False, backend=backend).tokens(text).split()
    assert NEW_WORD in custom and "深度学习训练" in custom
    assert "杭研" not in custom and "杭" in custom  # without HMM the unknown word stays in characters
    assert "了" not in custom
    # the user words live in that Segmenter only, not in the backend's shared default
    assert Segmenter(backend=backend).tokens(text).split() == plain


def test_backends_differ_where_expected_and_record_themselves() -> None:
    jieba_segmenter, rjieba_segmenter = Segmenter(), Segmenter(backend="rjieba")
    assert (jieba_segmenter.tokens(URL_TEXT), rjieba_segmenter.tokens(URL_TEXT)) == (JIEBA_URL, RJIEBA_URL)
    assert jieba_segmenter.config()["backend"] == "jieba" and jieba_segmenter.config()["jieba_version"]
    recorded = rjieba_segmenter.config()
    assert recorded["backend"] == "rjieba" and recorded["rjieba_version"] == backend_version("rjieba")
    assert "jieba_version" not in recorded  # an older textclf, which knows only jieba, refuses it as incomplete


def test_from_config_rebuilds_the_recorded_backend_and_refuses_another(tmp_path: Path) -> None:
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text(f"{NEW_WORD} 100 n\n", encoding="utf-8")
    cfg = Preprocessor(Segmenter(user_dict=user_dict, backend="rjieba")).config()
    rebuilt = Preprocessor.from_config(cfg, user_dict=user_dict)
    assert rebuilt.config() == cfg and rebuilt.tokens(URL_TEXT) == RJIEBA_URL
    with pytest.raises(UserError, match="--user-dict"):
        Preprocessor.from_config(cfg)
    seg = cfg["segmenter"]
    other_version = {**cfg, "segmenter": {**seg, "rjieba_version": "0.0.1"}}
    with pytest.raises(UserError, match=r"made with rjieba 0\.0\.1, installed is rjieba"):
        Preprocessor.from_config(other_version, user_dict=user_dict)
    with pytest.raises(UserError, match="unknown segmenter 'pkuseg'"):
        Preprocessor.from_config({**cfg, "segmenter": {**seg, "backend": "pkuseg"}}, user_dict=user_dict)
    with pytest.raises(UserError, match="incomplete.*rjieba_version"):
        Preprocessor.from_config({**cfg, "segmenter": {k: v for k, v in seg.items() if k != "rjieba_version"}})
    # a meta.json written before backends existed has no "backend": it was jieba's, and still works
    before = Preprocessor().config()
    before["segmenter"].pop("backend")
    assert Preprocessor.from_config(before).tokens(URL_TEXT) == JIEBA_URL


def test_prep_workers_cut_with_the_chosen_backend(tmp_path: Path, read_split: ReadSplit) -> None:
    texts: dict[str, list[str | bytes]] = {
        label: [f"{URL_TEXT}，第{i}条{label}新闻" for i in range(10)] for label in ("体育", "财经")
    }
    corpus = write_folder(tmp_path / "corpus", texts)
    out = tmp_path / "out"
    args = ["prep", str(corpus), "--out", str(out), "--segmenter", "rjieba", "--workers", "2", "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    assert meta["preprocessing"]["segmenter"]["backend"] == "rjieba"
    records = [record for split in ("train", "dev", "test") for record in read_split(out, split)]
    assert len(records) == 20 and all(tokens.startswith(RJIEBA_URL) for _, tokens, _ in records)
    refused = CliRunner().invoke(cli, ["prep", str(corpus), "--out", str(tmp_path / "x"), "--segmenter", "pkuseg"])
    assert refused.exit_code == 2 and "'pkuseg' is not one of 'jieba', 'rjieba'" in refused.output

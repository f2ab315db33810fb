"""Contract 2's version listing: the folders TF Serving's file system source would take as versions."""

from __future__ import annotations

from pathlib import Path

from serving.contract import versions_on_disk


def test_versions_are_ascii_integer_folders_and_leading_zeros_name_the_same_version(tmp_path: Path) -> None:
    for name in ("00000123", "123", "7", ".8.abc.tmp", "²", "v9", "10x"):
        (tmp_path / name).mkdir()
    (tmp_path / "11").write_text("a file is not a version")
    assert versions_on_disk(tmp_path) == {7: tmp_path / "7", 123: tmp_path / "00000123"}


def test_a_missing_model_folder_has_no_versions(tmp_path: Path) -> None:
    assert versions_on_disk(tmp_path / "absent") == {}

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


def test_names_above_int64_are_not_versions(tmp_path: Path) -> None:
    """TF Serving reads a version name with absl::SimpleAtoi into an int64 and skips the folder when that fails."""
    padded = "0" * 30 + "5"
    for name in ("1", "9223372036854775807", "9223372036854775808", "99999999999999999999", padded, "9" * 255):
        (tmp_path / name).mkdir()
    assert versions_on_disk(tmp_path) == {
        1: tmp_path / "1",
        5: tmp_path / padded,
        2**63 - 1: tmp_path / "9223372036854775807",
    }

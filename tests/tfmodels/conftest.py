"""The tiny prepared dataset every tfmodels test trains on (helpers live in tests/support: a test module
imports them from there, never from a conftest, which several test folders have)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.corpus import generated_rows
from tests.support.prepared import write_prepared


@pytest.fixture(scope="session")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_prepared(tmp_path_factory.mktemp("data") / "prepared", generated_rows(600), (400, 100, 100))

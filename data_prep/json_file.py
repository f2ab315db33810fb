"""Read a JSON file the user pointed us at (meta.json, a model card, a preset's config.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from data_prep.errors import UserError


def read_json(path: Path) -> Any:
    """The parsed file; unreadable, non-UTF-8 or invalid JSON is one UserError line, never a traceback."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not valid JSON: {exc}") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """`read_json` for files that must hold one JSON object (configs, cards, meta.json)."""
    value = read_json(path)
    if not isinstance(value, dict):
        raise UserError(f"{path} must hold a JSON object")
    return value

"""Contract 2 (tfmodels -> TF Serving -> gateway): the names a served textclf version is read by.

Its home is `serving/` because the consumers define it: TF Serving fixes the version folders and the
warm-up path, the gateway needs the input and output names. The exporter conforms by importing this
module. It imports only the standard library, so neither the gateway (no TensorFlow) nor the exporter
pulls in anything of the other by reading it.
"""

from __future__ import annotations

from pathlib import Path

SIGNATURE = "serving_default"

# The one input of `serving_default`, tf.string [batch]; its name tells the gateway what to send.
TOKENS_INPUT = "tokens"  # jieba words joined by one space (LSTM family)
TEXT_INPUT = "text"  # cleaned raw text; tokenized in-graph (BERT family)

# Outputs: column i of PROBABILITIES is label id i; CLASS_NAMES names every column on every row (top-k
# without side files); LABEL names the argmax and TOP_SCORE is its probability.
PROBABILITIES = "probabilities"
LABEL = "label"
TOP_SCORE = "top_score"
CLASS_NAMES = "class_names"

# Inside a version folder.
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"  # PredictionLog TFRecord, TF Serving's own path
CARD_FILE = "assets.extra/model_card.json"
TFLITE_FILE = "model.tflite"  # TF Serving reads it instead of the SavedModel with --prefer_tflite_model
# the metadata entry of model.tflite holding its SignatureDefs (TF Lite's kSignatureDefsMetadataName): TF Serving
# reads signatures from it only, so the exporter writes it and the local server reads it
TFLITE_SIGNATURE_DEFS = "signature_defs_metadata"


INT64_MAX = 2**63 - 1


def version_number(digits: str) -> int | None:
    """An ASCII-digit version name as TF Serving reads it (absl::SimpleAtoi into an int64): leading zeros
    allowed, None above int64. The length is checked before int(), which refuses very long digit strings."""
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(INT64_MAX)) or int(significant) > INT64_MAX:
        return None
    return int(significant)


def versions_on_disk(model_dir: Path) -> dict[int, Path]:
    """Integer-named folders, as TF Serving's file system source lists them: leading zeros allowed
    ("00000123" is 123, the first spelling wins); "."-prefixed temp folders, other names, non-ASCII
    digits ("²", which str.isdigit accepts) and numbers above int64 are not versions."""
    found: dict[int, Path] = {}
    if not model_dir.is_dir():
        return found
    for child in sorted(model_dir.iterdir()):
        if not (child.name.isascii() and child.name.isdigit()) or not child.is_dir():
            continue
        version = version_number(child.name)
        if version is not None:
            found.setdefault(version, child)
    return found

"""Replay `assets.extra/tf_serving_warmup_requests` before a version is AVAILABLE, as TF Serving does.

The file is a TFRecord of PredictionLog protos; each logged request is run against the new version so
the first real request does not pay for tracing and lazy initialisation. A failing record fails the load.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf
from google.protobuf import message
from tensorflow_serving.apis import prediction_log_pb2

from serving.contract import WARMUP_FILE
from serving.model_server.errors import ServingError, invalid_argument, status_code

MAX_WARMUP_RECORDS = 1000  # TF Serving's kMaxNumRecords

log = logging.getLogger(__name__)


def replay(version_path: Path, run_log: Callable[[prediction_log_pb2.PredictionLog], None], iterations: int = 1) -> int:
    """Run every logged request `iterations` times; return how many records were read (0: no file).
    A bad file fails the load with TF Serving's code and words (saved_model_warmup_util.cc)."""
    path = Path(version_path) / WARMUP_FILE
    if not path.exists():
        return 0
    records = 0
    try:
        for raw in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS + 1):
            records += 1
            if records > MAX_WARMUP_RECORDS:
                raise invalid_argument(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
            try:
                entry = prediction_log_pb2.PredictionLog.FromString(raw.numpy())
            except message.DecodeError:
                raise invalid_argument(f"Failed to parse warmup record: {raw.numpy()!r} from {path}") from None
            for _ in range(max(iterations, 1)):
                run_log(entry)
    except tf.errors.OpError as exc:
        data_loss = isinstance(exc, tf.errors.DataLossError)
        suffix = ". Please verify your warmup data is in TFRecord format." if data_loss else ""
        raise ServingError(status_code(exc.error_code), exc.message + suffix) from exc
    log.info("Finished reading warmup data for model at %s. Number of warmup records read: %d.", path, records)
    return records

"""A version that cannot load fails with TF Serving's status code and words (a ServingError), whatever broke:
the SavedModel, its variables, or its warm-up records. Real TensorFlow, in process."""

from __future__ import annotations

import shutil
from pathlib import Path

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from serving.contract import SIGNATURE, WARMUP_FILE
from serving.model_server import warmup
from serving.model_server.errors import ServingError
from serving.model_server.servable import Servable


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SavedModel with a variable, so its variables/ folder matters."""

    class Scale(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.factor = tf.Variable(2.0)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def scale(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": x * self.factor}

    module = Scale()
    path = tmp_path_factory.mktemp("scale") / "1"
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: module.scale})
    return path


def copy_of(exported: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported, tmp_path / "1"))


def load_error(path: Path, tags: tuple[str, ...] = ("serve",)) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ServingError) as failed:
        Servable.load("m", 1, path, list(tags))
    return failed.value.code, failed.value.message


def test_a_whole_export_loads(exported):
    assert Servable.load("m", 1, exported, ["serve"]).signature("").name == SIGNATURE


def test_a_folder_without_a_saved_model_is_not_found(tmp_path):
    assert load_error(tmp_path) == (
        grpc.StatusCode.NOT_FOUND,
        f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {tmp_path}",
    )


def test_missing_tags_are_not_found(exported):
    code, message = load_error(exported, ("serve", "gpu"))
    assert code == grpc.StatusCode.NOT_FOUND
    assert message.startswith("Could not find meta graph def matching supplied tags: { serve gpu }.")


def test_missing_variables_load_and_fail_at_run_time_as_under_tf_serving(exported, tmp_path):
    """TF's C++ loader restores only when variables/variables.index exists ("The specified SavedModel has no
    variables; no checkpoints were restored"): the version loads, and reading a variable fails the request."""
    path = copy_of(exported, tmp_path)
    shutil.rmtree(path / "variables")
    servable = Servable.load("m", 1, path, ["serve"])
    with pytest.raises(ServingError) as failed:
        servable.signature("").run({"x": np.array([1.0], np.float32)})
    servable.retire()
    assert failed.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "variable" in failed.value.message.lower()


def test_a_corrupt_saved_model_is_data_loss(exported, tmp_path):
    path = copy_of(exported, tmp_path)
    (path / "saved_model.pb").write_bytes(b"\x01not a proto")
    code, message = load_error(path)
    assert code == grpc.StatusCode.DATA_LOSS
    assert "saved_model.pb" in message


def warmup_error(path: Path) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(ServingError) as failed:
        warmup.replay(path, lambda entry: None)
    return failed.value.code, failed.value.message


def test_warmup_records_that_are_not_a_tfrecord_file_are_data_loss(tmp_path):
    (tmp_path / WARMUP_FILE).parent.mkdir()
    (tmp_path / WARMUP_FILE).write_bytes(b"this is not a TFRecord file at all")
    code, message = warmup_error(tmp_path)
    assert code == grpc.StatusCode.DATA_LOSS
    assert message.endswith(". Please verify your warmup data is in TFRecord format.")


def test_a_warmup_record_that_is_not_a_prediction_log_is_invalid(tmp_path):
    (tmp_path / WARMUP_FILE).parent.mkdir()
    with tf.io.TFRecordWriter(str(tmp_path / WARMUP_FILE)) as writer:
        writer.write(b"\xff\xff\xff")
    code, message = warmup_error(tmp_path)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("Failed to parse warmup record: ")


def test_too_many_warmup_records_are_invalid(tmp_path):
    (tmp_path / WARMUP_FILE).parent.mkdir()
    record = prediction_log_pb2.PredictionLog().SerializeToString()
    with tf.io.TFRecordWriter(str(tmp_path / WARMUP_FILE)) as writer:
        for _ in range(warmup.MAX_WARMUP_RECORDS + 1):
            writer.write(record)
    assert warmup_error(tmp_path) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        f"Number of warmup records exceeds the maximum ({warmup.MAX_WARMUP_RECORDS}) at {tmp_path / WARMUP_FILE}",
    )


def test_a_version_whose_signatures_cannot_be_built_closes_its_session(exported, monkeypatch):
    """A SignatureDef TensorFlow cannot read (its default value, say) is simulated: such a SavedModel does not save."""
    from serving.model_server import servable as servable_module
    from serving.model_server.session_bundle import SessionBundle

    bundles: list[SessionBundle] = []
    load = SessionBundle.load

    def recorded(*args: object) -> SessionBundle:
        bundles.append(load(*args))  # type: ignore[arg-type]
        return bundles[-1]

    def unreadable(*args: object) -> None:
        raise ValueError("Cannot read the signature's default value")

    monkeypatch.setattr(SessionBundle, "load", recorded)
    monkeypatch.setattr(servable_module, "Signature", unreadable)
    with pytest.raises(ValueError):
        Servable.load("m", 1, exported, ["serve"])
    with pytest.raises(RuntimeError, match="closed Session"):
        bundles[0].session.run(bundles[0].session.graph.get_operations()[0].outputs[0])

"""TF Serving over gRPC (Contract 3): one channel, the official `tensorflow_serving.apis` stubs, tensors
built and read by hand so no TensorFlow is needed (see tfs_protos)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from serving.contract import SIGNATURE
from serving.gateway import deadline
from serving.gateway.errors import UpstreamError
from serving.gateway.tfs_protos import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    tensor_pb2,
    types_pb2,
)
from serving.gateway.upstream import Signature, VersionStatus

_CODE_KINDS = {
    grpc.StatusCode.UNAVAILABLE: "unavailable",
    grpc.StatusCode.DEADLINE_EXCEEDED: "timeout",
    grpc.StatusCode.NOT_FOUND: "not_found",
    grpc.StatusCode.INVALID_ARGUMENT: "invalid_argument",
    grpc.StatusCode.FAILED_PRECONDITION: "invalid_argument",
}
_NUMERIC = {
    types_pb2.DT_FLOAT: ("float_val", "<f4"),
    types_pb2.DT_DOUBLE: ("double_val", "<f8"),
    types_pb2.DT_INT32: ("int_val", "<i4"),
    types_pb2.DT_INT64: ("int64_val", "<i8"),
}
_MAX_MESSAGE = 64 * 1024 * 1024


class GrpcUpstream:
    def __init__(self, target: str, *, timeout_s: float = 5.0) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self.channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE),
                ("grpc.max_send_message_length", _MAX_MESSAGE),
                # after TF Serving restarts, reconnect within seconds (gRPC's default backoff grows to 120 s)
                ("grpc.initial_reconnect_backoff_ms", 500),
                ("grpc.max_reconnect_backoff_ms", 3000),
            ],
        )
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def metadata(self, model: str, version: int | None = None, label: str | None = None) -> Signature:
        request = get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec=_spec(model, version, label), metadata_field=["signature_def"]
        )
        response = self._call(self.prediction.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata["signature_def"].Unpack(signatures):
            raise UpstreamError("failed", f"unexpected metadata answer for model {model!r}")
        signature = signatures.signature_def.get(SIGNATURE)
        inputs = tuple(signature.inputs) if signature is not None else ()
        outputs = tuple(signature.outputs) if signature is not None else ()
        return Signature(model, response.model_spec.version.value, inputs, outputs)

    def status(self, model: str) -> list[VersionStatus]:
        request = get_model_status_pb2.GetModelStatusRequest(model_spec=model_pb2.ModelSpec(name=model))
        response = self._call(self.models.GetModelStatus, request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [
            VersionStatus(
                item.version,
                state_name(item.state),
                _error_code_name(item.status.error_code),
                item.status.error_message,
            )
            for item in response.model_version_status
        ]

    def predict(
        self, model: str, version: int, input_name: str, values: Sequence[str], outputs: Sequence[str]
    ) -> dict[str, list[Any]]:
        request = predict_pb2.PredictRequest(model_spec=_spec(model, version, None), output_filter=list(outputs))
        tensor = request.inputs[input_name]
        tensor.dtype = types_pb2.DT_STRING
        tensor.tensor_shape.dim.add(size=len(values))
        tensor.string_val.extend(value.encode("utf-8") for value in values)
        response = self._call(self.prediction.Predict, request)
        return {name: tensor_to_list(response.outputs[name]) for name in outputs if name in response.outputs}

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            # cut to the client's deadline, if it has one; gRPC sends it on to TF Serving too
            return method(request, timeout=deadline.call_timeout(self.timeout_s))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
            details = exc.details() if hasattr(exc, "details") else str(exc)
            raise UpstreamError(_CODE_KINDS.get(code, "failed"), f"{code.name}: {details}") from None


def _spec(model: str, version: int | None, label: str | None) -> Any:
    spec = model_pb2.ModelSpec(name=model, signature_name=SIGNATURE)
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label
    return spec


def _error_code_name(code: int) -> str:
    field = get_model_status_pb2.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"].message_type
    enum = field.fields_by_name["error_code"].enum_type
    value = enum.values_by_number.get(code)
    return value.name if value is not None else str(code)


def tensor_to_list(tensor: tensor_pb2.TensorProto) -> list[Any]:
    """A TensorProto (string or numeric) as nested Python lists of its shape.

    Numbers arrive either packed in `tensor_content` or in the typed `*_val` field, where TF may send a
    shorter list whose last value repeats (all-equal tensors compress to one value).
    """
    shape = [dim.size for dim in tensor.tensor_shape.dim]
    count = math.prod(shape)
    if tensor.dtype == types_pb2.DT_STRING:
        flat: Any = np.array([raw.decode("utf-8", "replace") for raw in tensor.string_val], dtype=object)
        fill: Any = ""
    elif tensor.dtype in _NUMERIC:
        field, dtype = _NUMERIC[tensor.dtype]
        if tensor.tensor_content:
            flat = np.frombuffer(tensor.tensor_content, dtype=dtype)
        else:
            flat = np.array(getattr(tensor, field), dtype=dtype)
        fill = 0
    else:
        raise UpstreamError("failed", f"output dtype {types_pb2.DataType.Name(tensor.dtype)} is not supported")
    if len(flat) < count:
        pad = flat[-1] if len(flat) else fill
        flat = np.concatenate([flat, np.full(count - len(flat), pad, dtype=flat.dtype)])
    return flat[:count].reshape(shape).tolist()

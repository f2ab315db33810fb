"""TF Serving's gRPC API: PredictionService and ModelService, on the official tensorflow-serving-api stubs."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import grpc
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving.model_server.dataplane import DataPlane
from serving.model_server.errors import ServingError, invalid_argument
from serving.model_server.tensor_proto import from_ndarray, to_ndarray


def _deadline(context: grpc.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return time.monotonic() + remaining if remaining is not None else None


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def _call(self, api: str, name: str, context: grpc.ServicerContext, work: Callable):
        start = time.monotonic()
        try:
            response = work()
        except ServingError as exc:
            self.plane.metrics.count("request_count", name, exc.code_name)
            context.abort(exc.code, exc.message)
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is INTERNAL, not a dropped call
            self.plane.metrics.count("request_count", name, "INTERNAL")
            context.abort(grpc.StatusCode.INTERNAL, str(exc))
        self.plane.metrics.count("request_count", name, "OK")
        self.plane.metrics.observe("request_latency", (time.monotonic() - start) * 1e6, name, api, "GRPC")
        return response

    def Predict(
        self, request: predict_pb2.PredictRequest, context: grpc.ServicerContext
    ) -> predict_pb2.PredictResponse:
        def work() -> predict_pb2.PredictResponse:
            spec, outputs = self.plane.predict(
                request.model_spec,
                lambda _: {key: to_ndarray(proto, key) for key, proto in request.inputs.items()},
                list(request.output_filter),
                {key: proto.dtype for key, proto in request.inputs.items()},
                _deadline(context),
            )
            response = predict_pb2.PredictResponse(model_spec=spec)
            for alias, value in outputs.items():
                response.outputs[alias].CopyFrom(from_ndarray(value))
            return response

        return self._call("Predict", request.model_spec.name, context, work)

    def Classify(
        self, request: classification_pb2.ClassificationRequest, context: grpc.ServicerContext
    ) -> classification_pb2.ClassificationResponse:
        return self._call(
            "Classify",
            request.model_spec.name,
            context,
            lambda: self.plane.classify(request.model_spec, request.input, _deadline(context)),
        )

    def Regress(
        self, request: regression_pb2.RegressionRequest, context: grpc.ServicerContext
    ) -> regression_pb2.RegressionResponse:
        return self._call(
            "Regress",
            request.model_spec.name,
            context,
            lambda: self.plane.regress(request.model_spec, request.input, _deadline(context)),
        )

    def MultiInference(
        self, request: inference_pb2.MultiInferenceRequest, context: grpc.ServicerContext
    ) -> inference_pb2.MultiInferenceResponse:
        name = request.tasks[0].model_spec.name if request.tasks else ""
        return self._call(
            "MultiInference", name, context, lambda: self.plane.multi_inference(request, _deadline(context))
        )

    def GetModelMetadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            return self.plane.metadata(request)
        except ServingError as exc:
            context.abort(exc.code, exc.message)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, plane: DataPlane, reload_config: Callable) -> None:
        self.plane = plane
        self.reload_config = reload_config

    def GetModelStatus(
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        try:
            return self.plane.status(request)
        except ServingError as exc:
            context.abort(exc.code, exc.message)

    def HandleReloadConfigRequest(
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        """As ModelServiceImpl: a failed reload is the RPC's status (admin.py bounds the wait)."""
        try:
            self.reload_config(request.config, context.time_remaining())
        except ServingError as exc:
            context.abort(exc.code, exc.message)
        return model_management_pb2.ReloadConfigResponse()


def host_port(host: str, port: int) -> str:
    """`host:port`, an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def make_grpc_server(
    plane: DataPlane,
    reload_config: Callable,
    *,
    host: str,
    port: int,
    socket_path: str,
    channel_arguments: str,
    max_threads: int,
) -> grpc.Server:
    """Listen on host:port (TF Serving: always 0.0.0.0) and/or unix:socket_path; channel arguments 'k=v,k=v'
    (ints passed as ints). A port it cannot bind is TF Serving's start-up error."""
    options: list[tuple[str, object]] = [
        ("grpc.max_receive_message_length", 2**31 - 1),
        ("grpc.max_send_message_length", 2**31 - 1),
    ]
    for item in filter(None, channel_arguments.split(",")):
        key, _, value = item.partition("=")
        options.append((key, int(value) if value.lstrip("-").isdigit() else value))
    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=max(max_threads, 1)), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(plane), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(plane, reload_config), server)
    for address in ([host_port(host, port)] if port else []) + ([f"unix:{socket_path}"] if socket_path else []):
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError:  # grpcio raises where older versions returned 0
            bound = 0
        if not bound:
            raise invalid_argument("Failed to BuildAndStart gRPC server")
    return server

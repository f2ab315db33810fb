"""TF Serving's gRPC API: PredictionService and ModelService, on the official tensorflow-serving-api stubs."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable

import grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving.model_server.dataplane import DataPlane
from serving.model_server.errors import ServingError, invalid_argument
from serving.model_server.signature import CLASSIFY_METHOD, REGRESS_METHOD
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

    def Predict(self, request: predict_pb2.PredictRequest, context):
        def work() -> predict_pb2.PredictResponse:
            with self.plane.repository.handle(request.model_spec) as servable:
                inputs = {key: to_ndarray(proto) for key, proto in request.inputs.items()}
                spec, outputs = self.plane.predict(
                    servable,
                    request.model_spec.signature_name,
                    inputs,
                    list(request.output_filter),
                    {key: proto.dtype for key, proto in request.inputs.items()},
                    _deadline(context),
                )
            response = predict_pb2.PredictResponse(model_spec=spec)
            for alias, value in outputs.items():
                response.outputs[alias].CopyFrom(from_ndarray(value))
            return response

        return self._call("Predict", request.model_spec.name, context, work)

    def Classify(self, request, context):
        def work():
            with self.plane.repository.handle(request.model_spec) as servable:
                return self.plane.classify(servable, request.model_spec, request.input, _deadline(context))

        return self._call("Classify", request.model_spec.name, context, work)

    def Regress(self, request, context):
        def work():
            with self.plane.repository.handle(request.model_spec) as servable:
                return self.plane.regress(servable, request.model_spec, request.input, _deadline(context))

        return self._call("Regress", request.model_spec.name, context, work)

    def MultiInference(self, request: inference_pb2.MultiInferenceRequest, context):
        def work() -> inference_pb2.MultiInferenceResponse:
            if not request.tasks:
                raise invalid_argument("Expected at least one task.")
            names = {task.model_spec.name for task in request.tasks}
            if len(names) != 1:
                raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            signatures = [task.model_spec.signature_name for task in request.tasks]
            if len(set(signatures)) != len(signatures):
                raise invalid_argument("Duplicate evaluation of signature: " + signatures[0])
            response = inference_pb2.MultiInferenceResponse()
            with self.plane.repository.handle(request.tasks[0].model_spec) as servable:
                for task in request.tasks:
                    result = response.results.add()
                    if task.method_name == CLASSIFY_METHOD:
                        answer = self.plane.classify(servable, task.model_spec, request.input, _deadline(context))
                        result.classification_result.CopyFrom(answer.result)
                    elif task.method_name == REGRESS_METHOD:
                        answer = self.plane.regress(servable, task.model_spec, request.input, _deadline(context))
                        result.regression_result.CopyFrom(answer.result)
                    else:
                        raise invalid_argument(f"Unsupported signature method_name: {task.method_name}")
                    result.model_spec.CopyFrom(answer.model_spec)
            return response

        return self._call("MultiInference", request.tasks[0].model_spec.name if request.tasks else "", context, work)

    def GetModelMetadata(self, request: get_model_metadata_pb2.GetModelMetadataRequest, context):
        try:
            return self.plane.metadata(request)
        except ServingError as exc:
            context.abort(exc.code, exc.message)


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, plane: DataPlane, reload_config: Callable) -> None:
        self.plane = plane
        self.reload_config = reload_config

    def GetModelStatus(self, request: get_model_status_pb2.GetModelStatusRequest, context):
        try:
            return self.plane.status(request)
        except ServingError as exc:
            context.abort(exc.code, exc.message)

    def HandleReloadConfigRequest(self, request: model_management_pb2.ReloadConfigRequest, context):
        response = model_management_pb2.ReloadConfigResponse()
        try:
            self.reload_config(request.config)
            response.status.error_code = 0
        except ServingError as exc:
            response.status.error_code = exc.code.value[0]
            response.status.error_message = exc.message
        return response


def make_grpc_server(
    plane: DataPlane, reload_config: Callable, *, port: int, socket_path: str, channel_arguments: str, max_threads: int
) -> grpc.Server:
    """Listen on 0.0.0.0:port and/or unix:socket_path; channel arguments 'k=v,k=v' (ints passed as ints)."""
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
    if port:
        server.add_insecure_port(f"0.0.0.0:{port}")
    if socket_path:
        server.add_insecure_port(f"unix:{socket_path}")
    return server

"""Predict, classify, regress, metadata and status on numpy tensors, shared by the REST and gRPC front ends."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    input_pb2,
    model_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from serving.model_server.batching import BatchScheduler
from serving.model_server.errors import ServingError, deadline_exceeded, invalid_argument, not_found
from serving.model_server.monitoring import Metrics
from serving.model_server.repository import ModelRepository
from serving.model_server.servable import Servable
from serving.model_server.signature import DEFAULT_SIGNATURE, Signature, select_outputs
from serving.model_server.tensor_proto import to_ndarray

SIGNATURE_DEF_FIELD = "signature_def"


class DataPlane:
    def __init__(self, repository: ModelRepository, metrics: Metrics, batcher: BatchScheduler | None = None) -> None:
        self.repository = repository
        self.metrics = metrics
        self.batcher = batcher

    def _run(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        api: str,
        deadline: float | None,
    ) -> dict[str, np.ndarray]:
        start = time.monotonic()
        if self.batcher is not None:
            outputs = self.batcher.run(id(servable), signature, inputs, deadline)
        else:
            outputs = signature.run(inputs)
            if deadline is not None and time.monotonic() > deadline:
                raise deadline_exceeded()
        self.metrics.observe("runtime_latency", (time.monotonic() - start) * 1e6, servable.name, api, "TF2")
        return outputs

    # ---- predict ------------------------------------------------------------------------------------------
    def predict(
        self,
        servable: Servable,
        signature_name: str,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
        dtypes: Mapping[str, int] | None = None,
        deadline: float | None = None,
    ) -> tuple[model_pb2.ModelSpec, dict[str, np.ndarray]]:
        """Run a predict on a held servable; returns the response's model_spec and the selected outputs."""
        signature = servable.signature(signature_name)
        signature.check_inputs(inputs, dtypes)
        signature.check_output_filter(output_filter)
        outputs = self._run(servable, signature, inputs, "Predict", deadline)
        spec = model_pb2.ModelSpec()
        self._fill_spec(spec, servable, signature)
        return spec, select_outputs(outputs, output_filter)

    # ---- classify / regress ---------------------------------------------------------------------------------
    def _run_examples(
        self, servable: Servable, signature_name: str, model_input: input_pb2.Input, api: str, deadline: float | None
    ) -> tuple[Signature, dict[str, np.ndarray]]:
        signature = servable.signature(signature_name)
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        kind = model_input.WhichOneof("kind")
        if kind == "example_list":
            serialized = [e.SerializeToString() for e in model_input.example_list.examples]
        elif kind == "example_list_with_context":
            context = model_input.example_list_with_context.context.SerializeToString()
            serialized = [context + e.SerializeToString() for e in model_input.example_list_with_context.examples]
        else:
            raise invalid_argument("Input is empty.")
        if not serialized:
            raise invalid_argument("Input is empty.")
        inputs = {next(iter(signature.inputs)): np.array(serialized, dtype=object)}
        signature.check_inputs(inputs)
        return signature, self._run(servable, signature, inputs, api, deadline)

    def classify(
        self, servable: Servable, spec: model_pb2.ModelSpec, model_input: input_pb2.Input, deadline: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        signature, outputs = self._run_examples(servable, spec.signature_name, model_input, "Classify", deadline)
        classes, scores = outputs.get("classes"), outputs.get("scores")
        if classes is None and scores is None:
            raise invalid_argument(
                "Expected classification signature outputs to contain at least one of {classes, scores}."
            )
        response = classification_pb2.ClassificationResponse()
        self._fill_spec(response.model_spec, servable, signature)
        rows = len(classes if classes is not None else scores)
        for i in range(rows):
            row = response.result.classifications.add()
            width = (classes if classes is not None else scores)[i].size
            for j in range(width):
                label = classes[i].ravel()[j] if classes is not None else b""
                row.classes.add(
                    label=label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label),
                    score=float(scores[i].ravel()[j]) if scores is not None else 0.0,
                )
        return response

    def regress(
        self, servable: Servable, spec: model_pb2.ModelSpec, model_input: input_pb2.Input, deadline: float | None = None
    ) -> regression_pb2.RegressionResponse:
        signature, outputs = self._run_examples(servable, spec.signature_name, model_input, "Regress", deadline)
        values = outputs.get("outputs")
        if values is None:
            raise invalid_argument("No output tensor named outputs found in the signature.")
        response = regression_pb2.RegressionResponse()
        self._fill_spec(response.model_spec, servable, signature)
        for value in np.asarray(values).reshape(len(values), -1)[:, 0]:
            response.result.regressions.add(value=float(value))
        return response

    @staticmethod
    def _fill_spec(spec: model_pb2.ModelSpec, servable: Servable, signature: Signature) -> None:
        spec.name = servable.name
        spec.signature_name = signature.name
        spec.version.value = servable.version

    # ---- metadata / status ---------------------------------------------------------------------------------
    def metadata(
        self, request: get_model_metadata_pb2.GetModelMetadataRequest
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        if not request.metadata_field:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in request.metadata_field:
            if field != SIGNATURE_DEF_FIELD:
                raise invalid_argument(f"Metadata field {field} is not supported")
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        with self.repository.handle(request.model_spec) as servable:
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for name, signature_def in servable.signature_defs.items():
                signature_map.signature_def[name].CopyFrom(signature_def)
            response.model_spec.name = servable.name
            response.model_spec.version.value = servable.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(signature_map)
        return response

    def status(
        self, request: get_model_status_pb2.GetModelStatusRequest
    ) -> get_model_status_pb2.GetModelStatusResponse:
        if not request.HasField("model_spec"):
            raise invalid_argument("Missing ModelSpec")
        spec = request.model_spec
        states = self.repository.version_states(spec.name)
        if spec.HasField("version"):
            states = [(v, s) for v, s in states if v == spec.version.value]
            if not states:
                raise not_found(f"Could not find version {spec.version.value} of model {spec.name}")
        elif not states:
            raise not_found(f"Could not find any versions of model {spec.name}")
        response = get_model_status_pb2.GetModelStatusResponse()
        for version, state in states:
            row = response.model_version_status.add(version=version, state=state.state)
            row.status.error_code = state.error_code
            row.status.error_message = state.error_message
        return response

    # ---- warm-up --------------------------------------------------------------------------------------------
    def replay_log(self, servable: Servable, entry: prediction_log_pb2.PredictionLog) -> None:
        """Run one warm-up record against a version that is not yet visible to clients."""
        kind = entry.WhichOneof("log_type")
        if kind == "predict_log":
            request = entry.predict_log.request
            inputs = {k: to_ndarray(v) for k, v in request.inputs.items()}
            self.predict(
                servable,
                request.model_spec.signature_name or DEFAULT_SIGNATURE,
                inputs,
                request.output_filter,
                {k: v.dtype for k, v in request.inputs.items()},
            )
        elif kind == "classify_log":
            self.classify(servable, entry.classify_log.request.model_spec, entry.classify_log.request.input)
        elif kind == "regress_log":
            self.regress(servable, entry.regress_log.request.model_spec, entry.regress_log.request.input)
        else:
            raise ServingError(invalid_argument("").code, f"Unsupported log_type for warmup: {kind}")

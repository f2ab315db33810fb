"""The protocol-independent core both front ends call, as TF Serving's ServerCore + ServiceImpl.

It owns servable handles: a request's ModelSpec (latest, a version or a label) resolves to one loaded
version, pinned for exactly the work of that request and released after. REST and gRPC only translate
between their wire format and these calls; neither ever holds a servable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import numpy as np
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    regression_pb2,
)

from serving.model_server.errors import invalid_argument, not_found
from serving.model_server.inference import Inference
from serving.model_server.monitoring import Metrics
from serving.model_server.repository import ModelRepository
from serving.model_server.servable import Servable

SIGNATURE_DEF_FIELD = "signature_def"

InputReader = Callable[[Mapping[str, meta_graph_pb2.TensorInfo]], Mapping[str, np.ndarray]]


class DataPlane:
    def __init__(self, repository: ModelRepository, inference: Inference) -> None:
        self.repository = repository
        self.inference = inference

    @property
    def metrics(self) -> Metrics:
        return self.inference.metrics

    # ---- servable handles ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def handle(self, spec: model_pb2.ModelSpec) -> Iterator[Servable]:
        """The version a ModelSpec names (latest, a version, or a label), pinned for the block's duration."""
        # Bounded by the repository: a version retires only after it left the serving map, so a failed
        # try_acquire means the next lookup sees a newer map without it; each further retry needs yet another
        # version loaded and retired meanwhile.
        while True:
            servable = self._resolve(spec)
            if servable.try_acquire():
                break
        try:
            yield servable
        finally:
            servable.release()

    def _resolve(self, spec: model_pb2.ModelSpec) -> Servable:
        if not spec.name:
            raise invalid_argument("ModelSpec has no name specified.")
        model = self.repository.serving_map(spec.name)
        choice = spec.WhichOneof("version_choice")
        if choice == "version_label":
            version = model.labels.get(spec.version_label) if model else None
            if version is None:
                raise invalid_argument(f"Unrecognized servable version label: {spec.version_label}")
            request = f"Specific({spec.name}, {version})"
        elif choice == "version":
            version = spec.version.value
            request = f"Specific({spec.name}, {version})"
        else:
            version = max(model.versions) if model and model.versions else None
            request = f"Latest({spec.name})"
        servable = model.versions.get(version) if model and version is not None else None
        if servable is None:
            raise not_found(f"Servable not found for request: {request}")
        return servable

    # ---- predict / classify / regress ---------------------------------------------------------------------
    def predict(
        self,
        spec: model_pb2.ModelSpec,
        read_inputs: InputReader,
        output_filter: Sequence[str] = (),
        dtypes: Mapping[str, int] | None = None,
        deadline: float | None = None,
        *,
        for_rest_inputs: bool = False,
    ) -> tuple[model_pb2.ModelSpec, dict[str, np.ndarray]]:
        """A Predict; returns the response's model_spec and the selected outputs. The inputs are read under the
        handle, after the model and signature lookups, as TF Serving does: an unknown model is NOT_FOUND even
        when its tensors are malformed, and REST's JSON (which carries no dtypes) is read against the very
        version that runs it. `dtypes` are the wire's declared dtypes (gRPC), checked against the signature."""
        with self.handle(spec) as servable:
            signature = servable.signature(spec.signature_name, for_rest_inputs=for_rest_inputs)
            if dtypes is not None:  # gRPC: the request's names are checked before its tensors are parsed
                signature.check_inputs(dtypes)
            inputs = read_inputs(signature.inputs)
            return self.inference.predict(servable, signature, inputs, output_filter, dtypes, deadline)

    def classify(
        self, spec: model_pb2.ModelSpec, model_input: input_pb2.Input, deadline: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        with self.handle(spec) as servable:
            return self.inference.classify(servable, spec.signature_name, model_input, deadline)

    def regress(
        self, spec: model_pb2.ModelSpec, model_input: input_pb2.Input, deadline: float | None = None
    ) -> regression_pb2.RegressionResponse:
        with self.handle(spec) as servable:
            return self.inference.regress(servable, spec.signature_name, model_input, deadline)

    def multi_inference(
        self, request: inference_pb2.MultiInferenceRequest, deadline: float | None = None
    ) -> inference_pb2.MultiInferenceResponse:
        """Every task on one version of one model, as TF Serving's RunMultiInferenceWithServerCore: the first
        task's ModelSpec (an empty one without tasks) picks the version, the runner checks the tasks."""
        spec = request.tasks[0].model_spec if request.tasks else model_pb2.ModelSpec()
        with self.handle(spec) as servable:
            return self.inference.multi_inference(servable, request, deadline)

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
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        with self.handle(request.model_spec) as servable:
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

"""Running requests on a version already held: predict, classify, regress and warm-up replay.

Split from the dataplane so a version can be warmed up while it loads, before any handle to it exists:
the loader uses this, the dataplane uses this after resolving a handle, and both take the same path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import numpy as np
from tensorflow_serving.apis import classification_pb2, input_pb2, model_pb2, prediction_log_pb2, regression_pb2

from serving.model_server.batching import BatchScheduler
from serving.model_server.errors import deadline_exceeded, invalid_argument
from serving.model_server.monitoring import Metrics
from serving.model_server.servable import Servable
from serving.model_server.signature import Signature, select_outputs
from serving.model_server.tensor_proto import to_ndarray


class Inference:
    """TF Serving's predictor/classifier/regressor over one held servable, with optional server-side batching."""

    def __init__(self, metrics: Metrics, batcher: BatchScheduler | None = None) -> None:
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

    def predict(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
        dtypes: Mapping[str, int] | None = None,
        deadline: float | None = None,
    ) -> tuple[model_pb2.ModelSpec, dict[str, np.ndarray]]:
        """The response's model_spec and the outputs asked for."""
        signature.check_inputs(inputs, dtypes)
        signature.check_output_filter(output_filter)
        outputs = self._run(servable, signature, inputs, "Predict", deadline)
        return model_spec(servable, signature), select_outputs(outputs, output_filter)

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
        self, servable: Servable, signature_name: str, model_input: input_pb2.Input, deadline: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        signature, outputs = self._run_examples(servable, signature_name, model_input, "Classify", deadline)
        classes, scores = outputs.get("classes"), outputs.get("scores")
        if classes is None and scores is None:
            raise invalid_argument(
                "Expected classification signature outputs to contain at least one of {classes, scores}."
            )
        response = classification_pb2.ClassificationResponse(model_spec=model_spec(servable, signature))
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
        self, servable: Servable, signature_name: str, model_input: input_pb2.Input, deadline: float | None = None
    ) -> regression_pb2.RegressionResponse:
        signature, outputs = self._run_examples(servable, signature_name, model_input, "Regress", deadline)
        values = outputs.get("outputs")
        if values is None:
            raise invalid_argument("No output tensor named outputs found in the signature.")
        response = regression_pb2.RegressionResponse(model_spec=model_spec(servable, signature))
        for value in np.asarray(values).reshape(len(values), -1)[:, 0]:
            response.result.regressions.add(value=float(value))
        return response

    def replay(self, servable: Servable, entry: prediction_log_pb2.PredictionLog) -> None:
        """Run one warm-up record against a version that is not yet visible to clients."""
        kind = entry.WhichOneof("log_type")
        if kind == "predict_log":
            request = entry.predict_log.request
            self.predict(
                servable,
                servable.signature(request.model_spec.signature_name),
                {key: to_ndarray(proto) for key, proto in request.inputs.items()},
                request.output_filter,
                {key: proto.dtype for key, proto in request.inputs.items()},
            )
        elif kind == "classify_log":
            request = entry.classify_log.request
            self.classify(servable, request.model_spec.signature_name, request.input)
        elif kind == "regress_log":
            request = entry.regress_log.request
            self.regress(servable, request.model_spec.signature_name, request.input)
        else:
            raise invalid_argument(f"Unsupported log_type for warmup: {kind}")


def model_spec(servable: Servable, signature: Signature) -> model_pb2.ModelSpec:
    """What a response says it ran: the model, the version a handle resolved to, the signature."""
    spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature.name)
    spec.version.value = servable.version
    return spec

"""Running requests on a version already held: predict, classify, regress, multi-inference and warm-up replay.

Split from the dataplane so a version can be warmed up while it loads, before any handle to it exists:
the loader uses this, the dataplane uses this after resolving a handle, and both take the same path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

import grpc
import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    model_pb2,
    prediction_log_pb2,
    regression_pb2,
)

from serving.contract import SIGNATURE
from serving.model_server.batching import BatchScheduler
from serving.model_server.errors import ServingError, deadline_exceeded, invalid_argument
from serving.model_server.monitoring import Metrics
from serving.model_server.servable import Servable
from serving.model_server.signature import (
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    REGRESS_METHOD,
    Signature,
    shape_text,
)
from serving.model_server.tensor_proto import to_ndarray

# signature_constants: the tensor aliases classify and regress signatures use
CLASSIFY_INPUTS = REGRESS_INPUTS = "inputs"
CLASSIFY_CLASSES, CLASSIFY_SCORES = "classes", "scores"
REGRESS_OUTPUTS = "outputs"


class Inference:
    """TF Serving's predictor/classifier/regressor/multi-inference runner over one held servable, with optional
    server-side batching. `method_name_check` is --enable_signature_method_name_check (off, as in TF Serving)."""

    def __init__(
        self, metrics: Metrics, batcher: BatchScheduler | None = None, method_name_check: bool = False
    ) -> None:
        self.metrics = metrics
        self.batcher = batcher
        self.method_name_check = method_name_check

    def _run(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        outputs: Sequence[str],
        api: str,
        deadline: float | None,
    ) -> dict[str, np.ndarray]:
        start = time.monotonic()
        if self.batcher is not None:
            result = self.batcher.run(id(servable), signature, inputs, deadline, tuple(outputs))
        else:
            result = signature.run(inputs, outputs)
            if deadline is not None and time.monotonic() > deadline:
                raise deadline_exceeded()
        self.metrics.observe("runtime_latency", (time.monotonic() - start) * 1e6, servable.name, api, "TF1")
        return result

    def predict(
        self,
        servable: Servable,
        signature: Signature,
        inputs: Mapping[str, np.ndarray],
        output_filter: Sequence[str] = (),
        dtypes: Mapping[str, int] | None = None,
        deadline: float | None = None,
    ) -> tuple[model_pb2.ModelSpec, dict[str, np.ndarray]]:
        """The response's model_spec and the outputs asked for (predict_util.cc PreProcessPrediction's order)."""
        if self.method_name_check and signature.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
            raise ServingError(
                grpc.StatusCode.INTERNAL,
                "Expected prediction signature method_name to be one of "
                f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. Was: {signature.method_name}",
            )
        signature.check_inputs(inputs)
        signature.check_output_filter(output_filter)
        if dtypes is not None:
            signature.check_dtypes(dtypes)
        outputs = self._run(servable, signature, inputs, output_filter, "Predict", deadline)
        return model_spec(servable, signature), outputs

    def _signature_for(self, servable: Servable, signature_name: str, method: str) -> Signature:
        """GetClassificationSignatureDef / GetRegressionSignatureDef: the named signature, fit for `method`."""
        key = signature_name or SIGNATURE
        signature = servable.signatures.get(key)
        if signature is None:
            raise invalid_argument(f"No signature was found with the name: {key}")
        if self.method_name_check and signature.method_name != method:
            kind = "classification" if method == CLASSIFY_METHOD else "regression"
            raise invalid_argument(
                f"Expected {kind} signature method_name to be {method}. Was: {signature.method_name}"
            )
        return signature

    def classify(
        self, servable: Servable, signature_name: str, model_input: input_pb2.Input, deadline: float | None = None
    ) -> classification_pb2.ClassificationResponse:
        signature = self._signature_for(servable, signature_name, CLASSIFY_METHOD)
        aliases = classification_outputs(signature)
        examples = serialized_examples(model_input)
        outputs = self._run(servable, signature, {CLASSIFY_INPUTS: examples}, aliases, "Classify", deadline)
        response = classification_pb2.ClassificationResponse(model_spec=model_spec(servable, signature))
        fill_classifications(outputs, len(examples), response.result)
        return response

    def regress(
        self, servable: Servable, signature_name: str, model_input: input_pb2.Input, deadline: float | None = None
    ) -> regression_pb2.RegressionResponse:
        signature = self._signature_for(servable, signature_name, REGRESS_METHOD)
        aliases = regression_outputs(signature)
        examples = serialized_examples(model_input)
        outputs = self._run(servable, signature, {REGRESS_INPUTS: examples}, aliases, "Regress", deadline)
        response = regression_pb2.RegressionResponse(model_spec=model_spec(servable, signature))
        fill_regressions(outputs[REGRESS_OUTPUTS], len(examples), response.result)
        return response

    def multi_inference(
        self, servable: Servable, request: inference_pb2.MultiInferenceRequest, deadline: float | None = None
    ) -> inference_pb2.MultiInferenceResponse:
        """TensorFlowMultiInferenceRunner: every task's signature over one Session::Run that feeds the same
        serialized examples to each task's input tensor and fetches the union of their outputs."""
        model_name = ""
        seen: set[str] = set()
        plans: list[tuple[inference_pb2.InferenceTask, Signature, tuple[str, ...]]] = []
        for task in request.tasks:
            if not task.model_spec.name:
                raise invalid_argument("Found ModelSpec with an empty model name.")
            if model_name and task.model_spec.name != model_name:
                raise invalid_argument("All ModelSpecs in a MultiInferenceRequest must access the same model name.")
            model_name = task.model_spec.name
            key = task.model_spec.signature_name or SIGNATURE
            if key in seen:
                raise invalid_argument(f"Duplicate evaluation of signature: {key}")
            seen.add(key)
            signature = servable.signatures.get(key)
            if signature is None:
                raise invalid_argument(f"Requested signature not found in model graph: {key}")
            if task.method_name == CLASSIFY_METHOD:
                aliases = classification_outputs(signature)
            elif task.method_name == REGRESS_METHOD:
                aliases = regression_outputs(signature)
            else:
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED, f"Unsupported signature method_name: {task.method_name}"
                )
            plans.append((task, signature, aliases))
        examples = serialized_examples(request.input)
        feeds = {signature.inputs[CLASSIFY_INPUTS].name: examples for _, signature, _ in plans}
        fetches = tuple(sorted({signature.outputs[a].name for _, signature, aliases in plans for a in aliases}))
        start = time.monotonic()
        values = dict(zip(fetches, servable.run_tensors(feeds, fetches), strict=True)) if fetches else {}
        if deadline is not None and time.monotonic() > deadline:
            raise deadline_exceeded()
        self.metrics.observe(
            "runtime_latency", (time.monotonic() - start) * 1e6, servable.name, "MultiInference", "TF1"
        )
        response = inference_pb2.MultiInferenceResponse()
        for task, signature, aliases in plans:
            outputs = {alias: values[signature.outputs[alias].name] for alias in aliases}
            result = response.results.add()
            if task.method_name == CLASSIFY_METHOD:
                fill_classifications(outputs, len(examples), result.classification_result)
            else:
                fill_regressions(outputs[REGRESS_OUTPUTS], len(examples), result.regression_result)
            result.model_spec.CopyFrom(model_spec(servable, signature))
        return response

    def replay(self, servable: Servable, entry: prediction_log_pb2.PredictionLog) -> None:
        """Run one warm-up record against a version that is not yet visible to clients."""
        kind = entry.WhichOneof("log_type")
        if kind == "predict_log":
            request = entry.predict_log.request
            self.predict(
                servable,
                servable.signature(request.model_spec.signature_name),
                {key: to_ndarray(proto, key) for key, proto in request.inputs.items()},
                request.output_filter,
                {key: proto.dtype for key, proto in request.inputs.items()},
            )
        elif kind == "classify_log":
            request = entry.classify_log.request
            self.classify(servable, request.model_spec.signature_name, request.input)
        elif kind == "regress_log":
            request = entry.regress_log.request
            self.regress(servable, request.model_spec.signature_name, request.input)
        elif kind == "multi_inference_log":
            self.multi_inference(servable, entry.multi_inference_log.request)
        else:
            raise invalid_argument(f"Unsupported log_type for warmup: {kind}")


def _debug_string(signature: Signature) -> str:
    return text_format.MessageToString(signature.signature_def)


def classification_outputs(signature: Signature) -> tuple[str, ...]:
    """PreProcessClassification: one `inputs` tensor, and `classes` and/or `scores` among one or two outputs."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) not in (1, 2):
        raise invalid_argument(f"Expected one or two output Tensors, found {len(signature.outputs)}")
    if CLASSIFY_INPUTS not in signature.inputs:
        raise invalid_argument(f"No classification inputs found in SignatureDef: {_debug_string(signature)}")
    aliases = tuple(alias for alias in (CLASSIFY_CLASSES, CLASSIFY_SCORES) if alias in signature.outputs)
    if not aliases:
        raise invalid_argument(
            f'Expected classification signature outputs to contain at least one of "{CLASSIFY_CLASSES}" or '
            f'"{CLASSIFY_SCORES}". Signature was: {_debug_string(signature)}'
        )
    return aliases


def regression_outputs(signature: Signature) -> tuple[str, ...]:
    """PreProcessRegression: one `inputs` tensor and one `outputs` tensor."""
    if len(signature.inputs) != 1:
        raise invalid_argument("Expected one input Tensor.")
    if len(signature.outputs) != 1:
        raise invalid_argument("Expected one output Tensor.")
    if REGRESS_INPUTS not in signature.inputs:
        raise invalid_argument(f"No regression inputs found in SignatureDef: {_debug_string(signature)}")
    if REGRESS_OUTPUTS not in signature.outputs:
        raise invalid_argument(f"No regression outputs found in SignatureDef: {_debug_string(signature)}")
    return (REGRESS_OUTPUTS,)


def serialized_examples(model_input: input_pb2.Input) -> np.ndarray:
    """InputToSerializedExampleTensor: a string vector of serialized tf.Examples, each example_list_with_context
    entry prefixed by the serialized context (parsing merges the two)."""
    kind = model_input.WhichOneof("kind")
    if kind == "example_list":
        serialized = [e.SerializeToString() for e in model_input.example_list.examples]
    elif kind == "example_list_with_context":
        context = model_input.example_list_with_context.context.SerializeToString()
        serialized = [context + e.SerializeToString() for e in model_input.example_list_with_context.examples]
    else:
        serialized = []
    if not serialized:
        raise invalid_argument("Input is empty.")
    examples = np.empty(len(serialized), dtype=object)
    examples[:] = serialized
    return examples


def _dtype_enum_name(array: np.ndarray) -> str:
    return types_pb2.DataType.Name(
        tf.dtypes.as_dtype(tf.string if array.dtype == object else array.dtype).as_datatype_enum
    )


def fill_classifications(
    outputs: Mapping[str, np.ndarray], num_examples: int, result: classification_pb2.ClassificationResult
) -> None:
    """PostProcessClassificationResult: [batch, num_classes] string classes and/or float scores."""
    classes, scores = outputs.get(CLASSIFY_CLASSES), outputs.get(CLASSIFY_SCORES)
    for tensor, kind, dtype in ((classes, "classes", "DT_STRING"), (scores, "scores", "DT_FLOAT")):
        if tensor is None:
            continue
        if tensor.ndim != 2:
            raise invalid_argument(
                f"Expected Tensor shape: [batch_size num_classes] but got {shape_text(tensor.shape)}"
            )
        if _dtype_enum_name(tensor) != dtype:
            raise invalid_argument(f"Expected {kind} Tensor of {dtype}. Got: {_dtype_enum_name(tensor)}")
        if tensor.shape[0] != num_examples:
            raise invalid_argument(f"Expected {kind} output batch size of {num_examples}. Got: {tensor.shape[0]}")
    if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
        raise invalid_argument(
            f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
        )
    width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
    for i in range(num_examples):
        row = result.classifications.add()
        for c in range(width):
            entry = row.classes.add()
            if classes is not None:
                entry.label = classes[i, c].decode("utf-8", "replace")  # DT_STRING: bytes
            if scores is not None:
                entry.score = float(scores[i, c])


def fill_regressions(output: np.ndarray, num_examples: int, result: regression_pb2.RegressionResult) -> None:
    """PostProcessRegressionResult: a float [batch] or [batch, 1] tensor."""
    if not (output.ndim == 1 or (output.ndim == 2 and output.shape[1] == 1)):
        raise invalid_argument(
            "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
            f"{shape_text(output.shape)}"
        )
    if output.shape[0] != num_examples:
        raise invalid_argument(
            f"Input batch size did not match output batch size: {num_examples} vs. {output.shape[0]}"
        )
    if _dtype_enum_name(output) != "DT_FLOAT":
        raise invalid_argument(f"Expected output Tensor of DT_FLOAT.  Got: {_dtype_enum_name(output)}")
    for value in output.ravel():
        result.regressions.add(value=float(value))


def model_spec(servable: Servable, signature: Signature) -> model_pb2.ModelSpec:
    """What a response says it ran: the model, the version a handle resolved to, the signature."""
    spec = model_pb2.ModelSpec(name=servable.name, signature_name=signature.name)
    spec.version.value = servable.version
    return spec

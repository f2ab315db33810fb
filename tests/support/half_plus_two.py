"""The model server's test model: TF Serving's classic half_plus_two (y = 0.5x + 2) plus a string signature."""

from __future__ import annotations

from pathlib import Path

from serving.contract import SIGNATURE, WARMUP_FILE


def export_half_plus_two(base: Path, version: str, warmup: bool = True) -> Path:
    """MODEL_BASE/NAME/<version>: `serving_default` y = 0.5x + 2 (float32 [batch]) and `echo` on tf.string,
    with a one-record warm-up file; written under a '.' temp name then renamed, as Contract 2 publishes."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    class HalfPlusTwo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x):
            return {"y": 0.5 * x + 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def echo(self, text):
            return {"upper": tf.strings.upper(text), "length": tf.strings.length(text, unit="UTF8_CHAR")}

    module = HalfPlusTwo()
    tmp, final = base / f".{version}.tmp", base / version
    tf.saved_model.save(module, str(tmp), signatures={SIGNATURE: module.predict, "echo": module.echo})
    if warmup:
        (tmp / WARMUP_FILE).parent.mkdir()
        request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(signature_name=SIGNATURE))
        request.inputs["x"].CopyFrom(tf.make_tensor_proto([1.0, 2.0], dtype=tf.float32))
        entry = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        with tf.io.TFRecordWriter(str(tmp / WARMUP_FILE)) as writer:
            writer.write(entry.SerializeToString())
    tmp.rename(final)
    return final

"""TF Serving's wire protos (`tensorflow_serving.apis`) without importing TensorFlow.

Why this module exists: the generated `tensorflow_serving.apis.*_pb2` modules do
`from tensorflow.core.framework import tensor_pb2`, and importing any `tensorflow.*` submodule first runs
`tensorflow/__init__.py`, which loads all of TensorFlow (seconds, hundreds of MB). The gateway only needs
the pure-protobuf `*_pb2` files. So, when TensorFlow is not already imported, we register a bare module
named `tensorflow` whose `__path__` is the installed package folder, import the protos through it (Python
then finds `tensorflow/core/.../*_pb2.py` without running `tensorflow/__init__.py`), and remove the bare
module again so a later real `import tensorflow` in the same process still works. In the slim gateway
image `tensorflow` holds only those `*_pb2.py` files (see serving/Dockerfile) and the same code runs.

Everything the gateway (and `textclf drift`) needs from TensorFlow's and TF Serving's protos is imported here
and nowhere else.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from collections.abc import Iterator


@contextlib.contextmanager
def _tensorflow_init_skipped() -> Iterator[None]:
    """Within the block, `tensorflow.*` submodules import without running `tensorflow/__init__.py`."""
    if "tensorflow" in sys.modules:  # real TensorFlow already loaded: nothing to skip
        yield
        return
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("TF Serving's protos need the `tensorflow` package (or just its *_pb2.py files)")
    bare = types.ModuleType("tensorflow")
    bare.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = bare
    try:
        yield
    finally:
        del sys.modules["tensorflow"]


with _tensorflow_init_skipped():
    from tensorflow.core.example import example_pb2  # Contract 1 shards' records (`textclf drift` reads them)
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_service_pb2_grpc,
    )

__all__ = [
    "example_pb2",
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "model_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_service_pb2_grpc",
    "tensor_pb2",
    "types_pb2",
]

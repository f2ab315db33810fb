"""One loaded version of a model: its signatures, and the reference count behind every servable handle, so a
version swap never frees a version a request still runs on."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import grpc
from tensorflow.core.protobuf import meta_graph_pb2

from serving.contract import SIGNATURE
from serving.model_server.errors import ServingError, failed_precondition, invalid_argument, not_found, status_code
from serving.model_server.signature import Signature

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


def _import_custom_ops() -> None:
    """Models may use TF-Text ops (WordPiece, regex split); their kernels register on import."""
    import tensorflow_text  # noqa: F401


class Servable:
    """A model version's signatures. Only the dataplane hands it out: `try_acquire()`/`release()` around every
    request; the repository `retire()`s it once it is no longer aspired."""

    def __init__(
        self,
        name: str,
        version: int,
        signature_defs: Mapping[str, meta_graph_pb2.SignatureDef],
        signatures: Mapping[str, Signature],
        model: object = None,
    ) -> None:
        self.name = name
        self.version = version
        self.signature_defs = signature_defs
        self.signatures = dict(signatures)
        self._model = model  # what tf.saved_model.load returned: the functions' variables live as long as it
        self._refs = 0
        self._retired = False
        self._idle = threading.Condition()

    @classmethod
    def load(cls, name: str, version: int, path: Path, tags: list[str]) -> Servable:
        """Load a SavedModel version with the server's tags. Every failure is a ServingError with TF Serving's
        code: no SavedModel or a tag miss is NOT_FOUND, a corrupt one DATA_LOSS, TensorFlow's errors keep theirs."""
        import tensorflow as tf
        from tensorflow.python.saved_model import loader_impl

        _import_custom_ops()
        if not any((path / file).is_file() for file in SAVED_MODEL_FILES):
            raise not_found(f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}")
        try:
            saved_model = loader_impl.parse_saved_model(str(path))
            wanted = set(tags)
            meta_graphs = [m for m in saved_model.meta_graphs if set(m.meta_info_def.tags) == wanted]
            if not meta_graphs:
                raise not_found(
                    f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. "
                    "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
                    "`saved_model_cli`"
                )
            signature_defs = meta_graphs[0].signature_def
            model = tf.saved_model.load(str(path), tags=tags)
        except (tf.errors.OpError, OSError) as exc:
            # tf.saved_model.load re-raises a NotFoundError (missing variables) as an OSError: take the original
            op_error = exc if isinstance(exc, tf.errors.OpError) else exc.__cause__ or exc.__context__
            if isinstance(op_error, tf.errors.OpError):
                raise ServingError(status_code(op_error.error_code), op_error.message) from exc
            raise ServingError(grpc.StatusCode.DATA_LOSS, str(exc)) from exc  # saved_model.pb does not parse
        signatures = {
            key: Signature(key, signature_defs[key], function)
            for key, function in model.signatures.items()
            if key in signature_defs
        }
        return cls(name, version, signature_defs, signatures, model)

    def signature(self, name: str, *, for_rest_inputs: bool = False) -> Signature:
        """The named signature ('' = serving_default). REST's input lookup and Predict word the miss differently."""
        key = name or SIGNATURE
        found = self.signatures.get(key)
        if found is None:
            if for_rest_inputs:
                raise invalid_argument(f'Serving signature name: "{key}" not found in signature def')
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        return found

    def try_acquire(self) -> bool:
        """Pin this version for one request; False once it is retiring (the caller looks again)."""
        with self._idle:
            if self._retired:
                return False
            self._refs += 1
            return True

    def release(self) -> None:
        with self._idle:
            self._refs -= 1
            if self._refs == 0:
                self._idle.notify_all()

    def retire(self) -> None:
        """Refuse new requests, wait for the ones that hold it, then drop the model."""
        with self._idle:
            self._retired = True
            self._idle.wait_for(lambda: self._refs == 0)
        self.signatures = {}
        self._model = None

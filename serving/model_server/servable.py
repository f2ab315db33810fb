"""One loaded version of a model: its session bundle and signatures, and the reference count behind every
servable handle, so a version swap never frees (closes the session of) a version a request still runs on."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow.python.saved_model import loader_impl

from serving.contract import SIGNATURE
from serving.model_server.errors import ServingError, failed_precondition, invalid_argument, not_found
from serving.model_server.session_bundle import SessionBundle
from serving.model_server.signature import Bundle, Signature, op_error
from serving.model_server.tflite_session import TfLiteSession, has_tflite

log = logging.getLogger(__name__)

SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")


class Servable:
    """A model version's session bundle and signatures. Only the dataplane hands it out: `try_acquire()`/`release()`
    around every request; the repository `retire()`s it once it is no longer aspired, which closes the session."""

    def __init__(
        self,
        name: str,
        version: int,
        signature_defs: Mapping[str, meta_graph_pb2.SignatureDef],
        signatures: Mapping[str, Signature],
        bundle: Bundle | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.signature_defs = signature_defs
        self.signatures = dict(signatures)
        self.bundle = bundle
        self._refs = 0
        self._retired = False
        self._idle = threading.Condition()

    @classmethod
    def load(
        cls, name: str, version: int, path: Path, tags: list[str], *, prefer_tflite: bool = False, tflite_pools: int = 1
    ) -> Servable:
        """Load a SavedModel version with the server's tags as SavedModelBundle does. Every failure is a
        ServingError with TF Serving's code: no SavedModel or a tag miss is NOT_FOUND, a corrupt one DATA_LOSS,
        TensorFlow's errors keep theirs. With `prefer_tflite` a version holding model.tflite is served from it
        (a pool of `tflite_pools` interpreters) and saved_model.pb is not read, as in TF Serving."""
        if prefer_tflite and has_tflite(path):
            lite = TfLiteSession.load(path, tflite_pools)
            log.info("Serving %s version %d from model.tflite (%d interpreters)", name, version, tflite_pools)
            signatures = {key: Signature(key, sd, lite) for key, sd in lite.signature_defs.items()}
            return cls(name, version, lite.signature_defs, signatures, lite)
        if not any((path / file).is_file() for file in SAVED_MODEL_FILES):
            raise not_found(f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}")
        try:
            loader = loader_impl.SavedModelLoader(str(path))
            wanted = set(tags)
            if not any(set(m.meta_info_def.tags) == wanted for m in loader.saved_model.meta_graphs):
                raise not_found(
                    f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. "
                    "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
                    "`saved_model_cli`"
                )
            bundle = SessionBundle.load(path, loader, tags)
        except tf.errors.OpError as exc:
            raise op_error(exc) from exc
        except OSError as exc:  # saved_model.pb does not parse
            raise ServingError(grpc.StatusCode.DATA_LOSS, str(exc)) from exc
        except ValueError as exc:  # the importer's re-raised InvalidArgumentError: a graph TF cannot import
            raise invalid_argument(str(exc).splitlines()[0]) from exc
        signature_defs = bundle.meta_graph_def.signature_def
        try:
            signatures = {key: Signature(key, signature_def, bundle) for key, signature_def in signature_defs.items()}
        except BaseException:  # e.g. a default value TensorFlow cannot read: the session is not leaked
            bundle.close()
            raise
        return cls(name, version, signature_defs, signatures, bundle)

    def signature(self, name: str, *, for_rest_inputs: bool = False) -> Signature:
        """The named signature ('' = serving_default). REST's input lookup and Predict word the miss differently."""
        key = name or SIGNATURE
        found = self.signatures.get(key)
        if found is None:
            if for_rest_inputs:
                raise invalid_argument(f'Serving signature name: "{key}" not found in signature def')
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        return found

    def run_tensors(self, feeds: dict[str, np.ndarray], fetches: tuple[str, ...]) -> list[np.ndarray]:
        """One Session::Run by tensor names (MultiInference feeds several signatures at once)."""
        if self.bundle is None:
            raise failed_precondition(f"Servable {self.name} version {self.version} is not loaded.")
        try:
            return self.bundle.run(feeds, fetches)
        except tf.errors.OpError as exc:
            raise op_error(exc) from None

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
        if self.bundle is not None:
            self.bundle.close()
            self.bundle = None

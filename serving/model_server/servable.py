"""One loaded version of a model: its signatures, and a reference count so a swap never drops a request."""

from __future__ import annotations

import threading
from pathlib import Path

from tensorflow.python.saved_model import loader_impl

from serving.model_server.errors import failed_precondition, invalid_argument
from serving.model_server.signature import DEFAULT_SIGNATURE, Signature


def _import_custom_ops() -> None:
    """Models may use TF-Text ops (WordPiece, regex split); their kernels register on import."""
    import tensorflow_text  # noqa: F401


class Servable:
    """A SavedModel version loaded with the server's tags. Use `acquire()`/`release()` around every request."""

    def __init__(self, name: str, version: int, path: Path, tags: list[str]) -> None:
        import tensorflow as tf

        _import_custom_ops()
        self.name = name
        self.version = version
        saved_model = loader_impl.parse_saved_model(str(path))
        wanted = set(tags)
        meta_graphs = [m for m in saved_model.meta_graphs if set(m.meta_info_def.tags) == wanted]
        if not meta_graphs:
            raise RuntimeError(
                f"Could not find meta graph def matching supplied tags: {{ {' '.join(tags)} }}. "
                "To inspect available tag-sets in the SavedModel, please use the SavedModel CLI: "
                "`saved_model_cli`"
            )
        self.signature_defs = meta_graphs[0].signature_def
        self._model = tf.saved_model.load(str(path), tags=tags)
        self.signatures = {
            name: Signature(name, self.signature_defs[name], function)
            for name, function in self._model.signatures.items()
            if name in self.signature_defs
        }
        self._refs = 0
        self._idle = threading.Condition()

    def signature(self, name: str, *, for_rest_inputs: bool = False) -> Signature:
        """The named signature ('' = serving_default). REST's input lookup and Predict word the miss differently."""
        key = name or DEFAULT_SIGNATURE
        found = self.signatures.get(key)
        if found is None:
            if for_rest_inputs:
                raise invalid_argument(f'Serving signature name: "{key}" not found in signature def')
            raise failed_precondition(f'Serving signature key "{key}" not found.')
        return found

    def acquire(self) -> None:
        with self._idle:
            self._refs += 1

    def release(self) -> None:
        with self._idle:
            self._refs -= 1
            if self._refs == 0:
                self._idle.notify_all()

    def wait_idle(self) -> None:
        """Block until no request holds this version (called after it stopped being handed out)."""
        with self._idle:
            self._idle.wait_for(lambda: self._refs == 0)

    def unload(self) -> None:
        self.signatures = {}
        self._model = None

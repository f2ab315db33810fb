"""A SavedModel loaded the way TF Serving's SavedModelBundle is: the MetaGraphDef with the server's tags imported
into a TF1 session on its own graph, variables restored, the init/main op run with the asset files fed in.

TF1 and TF2 SavedModels load alike (a TF2 export carries a TF1-compatible MetaGraph). Requests run by feeding and
fetching the tensor names of a SignatureDef through a session callable (C++ `Session::MakeCallable`): no Python
shape checks or dtype casts, so the graph alone decides what it accepts, as under TF Serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.saved_model import loader_impl

log = logging.getLogger(__name__)

Feeds = tuple[str, ...]
Fetches = tuple[str, ...]


def _import_custom_ops() -> None:
    """Models may use TF-Text ops (WordPiece, regex split); their kernels register on import."""
    import tensorflow_text  # noqa: F401


def _has_variables(path: Path) -> bool:
    """TF's loader (loader.cc RunRestore) restores only when variables/variables.index exists; a SavedModel
    without it loads, and any variable it reads fails at run time."""
    return (path / "variables" / "variables.index").is_file()


class SessionBundle:
    """One version's session and MetaGraphDef. Callables are made once per (feeds, fetches) and shared by all
    threads (a session callable is thread-safe)."""

    def __init__(self, session: tf.compat.v1.Session, meta_graph_def: meta_graph_pb2.MetaGraphDef) -> None:
        self.session = session
        self.meta_graph_def = meta_graph_def
        self._callables: dict[tuple[Feeds, Fetches], Callable[..., list[np.ndarray]]] = {}
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: Path, loader: loader_impl.SavedModelLoader, tags: Sequence[str]) -> SessionBundle:
        """Import, restore and initialise the tagged MetaGraph of an already parsed SavedModel. TensorFlow's own
        errors (missing or corrupt variables, an init op that fails) propagate with their codes."""
        _import_custom_ops()
        graph = tf.Graph()
        session = tf.compat.v1.Session(graph=graph)
        try:
            with graph.as_default():
                saver, _ = loader.load_graph(graph, list(tags))
                meta_graph_def = loader.get_meta_graph_def_from_tags(list(tags))
                if saver is not None and _has_variables(path):
                    loader.restore_variables(session, saver)
                else:
                    log.info("The specified SavedModel has no variables; no checkpoints were restored: %s", path)
                loader.run_init_ops(session, list(tags))
        except BaseException:
            session.close()
            raise
        graph.finalize()  # nothing may add ops later: every request runs the graph as loaded
        return cls(session, meta_graph_def)

    def run(self, feeds: dict[str, np.ndarray], fetches: Fetches) -> list[np.ndarray]:
        """Feed tensors by name, fetch tensors by name (duplicates allowed); TensorFlow's errors propagate."""
        names = tuple(feeds)
        unique = tuple(dict.fromkeys(fetches))
        key = (names, unique)
        run = self._callables.get(key)
        if run is None:
            with self._lock:
                run = self._callables.get(key)
                if run is None:
                    options = config_pb2.CallableOptions(feed=list(names), fetch=list(unique))
                    # not make_callable: Session.run's Python feed-shape checks and dtype casts are not TF Serving's
                    run = self.session._make_callable_from_options(options)
                    self._callables[key] = run
        values = run(*(feeds[name] for name in names))
        by_name = dict(zip(unique, values, strict=True))
        return [by_name[name] for name in fetches]

    def close(self) -> None:
        with self._lock:
            self._callables.clear()
        self.session.close()

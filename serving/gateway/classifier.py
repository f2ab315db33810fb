"""Classify texts with a named model: preprocess exactly as training did, call TF Serving, name labels.

Protocol-free and Flask-free: the HTTP app and `textclf predict` both call `Classifier.classify`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard, TypeVar

from data_prep.preprocess import Preprocessor
from serving.contract import CLASS_NAMES, LABEL, PROBABILITIES, SIGNATURE, TEXT_INPUT, TOKENS_INPUT
from serving.gateway.cache import ResponseCache
from serving.gateway.errors import ApiError, UpstreamError
from serving.gateway.openapi import EMPTY_TEXT
from serving.gateway.signatures import SignatureCache
from serving.gateway.upstream import Signature, Upstream

T = TypeVar("T")


@dataclass(frozen=True)
class Classification:
    model: str
    version: int
    results: list[dict[str, Any]]  # [{"label", "score", "top_k": [{"label", "score"}]}]
    # each text as cleaned for the model, so the payload log and the length metric need not clean it again
    cleaned: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scores:
    """The answer to rows a caller prepared itself (`Classifier.scores`)."""

    model: str
    version: int
    input_kind: str  # TOKENS_INPUT or TEXT_INPUT: what the rows were prepared for
    probabilities: list[list[float]]  # one row per input row, every row as wide as the first
    labels: list[Any]  # the model's label per row


class Classifier:
    def __init__(
        self,
        upstream: Upstream,
        preprocessor: Preprocessor,
        signatures: SignatureCache,
        *,
        cache: ResponseCache | None = None,
    ) -> None:
        self.upstream = upstream
        self.preprocessor = preprocessor
        self.signatures = signatures
        self.cache = cache  # per-text results by resolved version (cache.py); None = off

    def classify(
        self, model: str, texts: Sequence[str], *, version: int | None = None, label: str | None = None, top_k: int = 1
    ) -> Classification:
        cleaned = [self.preprocessor.clean(text) for text in texts]
        signature, results = self._resolved(model, version, label, lambda sig: self._answer(sig, cleaned, top_k))
        return Classification(model, signature.version, results, cleaned)

    def scores(
        self,
        model: str,
        rows: Callable[[str], Sequence[str]],
        *,
        version: int | None = None,
        label: str | None = None,
    ) -> Scores:
        """Every probability of rows the caller prepares for the resolved version's input kind
        (`rows(kind)`, see `preparer`), in one predict call past the response cache: for answers built
        from rows of the caller's own, such as explain's occlusions. No rows, no call."""

        def answer(signature: Signature) -> tuple[str, dict[str, list[Any]], int]:
            kind = input_kind(signature)
            values = list(rows(kind))
            return kind, self._predict(signature, values, top_k=1), len(values)

        signature, (kind, output, count) = self._resolved(model, version, label, answer)
        probabilities, labels = _checked(output, count)
        table = [[float(p) for p in row] for row in probabilities]
        if table and (not table[0] or any(len(row) != len(table[0]) for row in table)):
            raise ApiError("bad_model_output", f"the model returned {PROBABILITIES} rows of differing or no width")
        return Scores(model, signature.version, kind, table, labels)

    def preparer(self, kind: str) -> Callable[[str], str]:
        """What the model gets for a raw text: jieba words joined by spaces for a `tokens` model, the cleaned
        text for a `text` model."""
        return self.preprocessor.tokens if kind == TOKENS_INPUT else self.preprocessor.clean

    def _resolved(
        self, model: str, version: int | None, label: str | None, answer: Callable[[Signature], T]
    ) -> tuple[Signature, T]:
        """`answer(signature)` for the resolved version, once more if that version went away meanwhile."""
        signature = self._signature(model, version, label)
        try:
            return signature, answer(signature)
        except UpstreamError as exc:
            if exc.kind != "not_found":
                raise exc.to_api_error() from None
            # the cached version was unloaded (or the label moved) since we resolved it: resolve once more,
            # and prepare for the new signature (its input kind and outputs may differ from the old one's)
            self.signatures.invalidate(model, version, label)
            signature = self._signature(model, version, label)
            try:
                return signature, answer(signature)
            except UpstreamError as again:
                raise again.to_api_error() from None

    def _answer(self, signature: Signature, cleaned: Sequence[str], top_k: int) -> list[dict[str, Any]]:
        """One result per cleaned text: from the response cache where it holds the text for this resolved
        version, the rest from one predict call."""

        def predicted(batch: Sequence[str]) -> list[dict[str, Any]]:
            """Texts with nothing left to classify get `empty_result()` and are never sent: a model asked
            about "" invents an answer (or fails), and an answer must not depend on the rest of the batch."""
            # what `preparer` makes of the raw text, from the cleaned one: tokens(text) = segment(clean(text))
            segment = self.preprocessor.segmenter.tokens if input_kind(signature) == TOKENS_INPUT else None
            values = [segment(text) for text in batch] if segment is not None else list(batch)
            sent = [i for i, value in enumerate(values) if value.strip()]
            answered = _results(self._predict(signature, [values[i] for i in sent], top_k), len(sent), top_k)
            results = [empty_result() for _ in batch]
            for i, result in zip(sent, answered, strict=True):
                results[i] = result
            return results

        if self.cache is None:
            return predicted(cleaned)
        return self.cache.results(
            signature.model, signature.version, top_k, cleaned, lambda misses: predicted([cleaned[i] for i in misses])
        )

    def _predict(self, signature: Signature, values: Sequence[str], top_k: int) -> dict[str, list[Any]]:
        if not values:
            return {PROBABILITIES: [], LABEL: []}
        input_name = input_kind(signature)
        # class_names repeats every label on every row: fetch it only when top-k needs more than the argmax
        wanted = (PROBABILITIES, LABEL, CLASS_NAMES) if top_k > 1 else (PROBABILITIES, LABEL)
        outputs = [name for name in wanted if name in signature.outputs]
        return self.upstream.predict(signature.model, signature.version, input_name, values, outputs)

    def _signature(self, model: str, version: int | None, label: str | None) -> Signature:
        try:
            return self.signatures.get(model, version, label)
        except UpstreamError as exc:
            if exc.kind == "not_found" and version is None and label is None and self._has_versions(model):
                raise ApiError(
                    "model_unavailable", f"TF Serving has no AVAILABLE version of model {model!r} now: {exc.message}"
                ) from None
            raise exc.to_api_error() from None

    def _has_versions(self, model: str) -> bool:
        """TF Serving says NOT_FOUND both for a model it does not serve and for one whose versions all failed
        or were unloaded; its status API tells them apart (the latter lists versions)."""
        try:
            return bool(self.upstream.status(model))
        except UpstreamError:
            return False


def empty_result() -> dict[str, Any]:
    """The result of a text with nothing left to classify after cleaning (and segmentation)."""
    return {
        "label": None,
        "score": None,
        "top_k": [],
        "error": {
            "code": EMPTY_TEXT,
            "message": "nothing left to classify after cleaning (HTML tags, control characters, whitespace)",
        },
    }


def input_kind(signature: Signature) -> str:
    """`tokens` (LSTM: jieba words) or `text` (BERT: cleaned text), from the signature's input name."""
    if len(signature.inputs) == 1 and signature.inputs[0] in (TOKENS_INPUT, TEXT_INPUT):
        if PROBABILITIES in signature.outputs and LABEL in signature.outputs:
            return signature.inputs[0]
    raise ApiError(
        "unsupported_model",
        (
            f"model {signature.model!r} version {signature.version} has {SIGNATURE} inputs "
            f"{list(signature.inputs)} and outputs {list(signature.outputs)}; the gateway needs one input "
            f"`{TOKENS_INPUT}` or `{TEXT_INPUT}` and outputs `{PROBABILITIES}` and `{LABEL}`"
        ),
    )


def _checked(answer: dict[str, list[Any]], count: int) -> tuple[list[Any], list[Any]]:
    """`probabilities` and `label` of an answer, each `count` rows long, or ApiError(bad_model_output)."""
    probabilities, labels, names = answer.get(PROBABILITIES), answer.get(LABEL), answer.get(CLASS_NAMES)
    if not _rows(probabilities, count) or not _rows(labels, count) or (names is not None and not _rows(names, count)):
        raise ApiError("bad_model_output", f"the model did not return {count} rows of {PROBABILITIES} and {LABEL}")
    return probabilities, labels


def _results(answer: dict[str, list[Any]], count: int, top_k: int) -> list[dict[str, Any]]:
    probabilities, labels = _checked(answer, count)
    names = answer.get(CLASS_NAMES)
    results = []
    for row in range(count):
        scores = [float(p) for p in probabilities[row]]
        if not scores:
            raise ApiError("bad_model_output", f"the model returned no {PROBABILITIES} for row {row}")
        best = max(range(len(scores)), key=scores.__getitem__)
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])[:top_k]
        row_names = names[row] if names is not None else None
        results.append(
            {
                "label": labels[row],
                "score": scores[best],
                # without `class_names` only the argmax column has a known name
                "top_k": [
                    {"label": row_names[i] if row_names else (labels[row] if i == best else None), "score": scores[i]}
                    for i in ranked
                ],
            }
        )
    return results


def _rows(value: Any, count: int) -> TypeGuard[list[Any]]:
    return isinstance(value, list) and len(value) == count

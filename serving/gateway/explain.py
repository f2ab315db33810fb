"""POST /v1/explain: which tokens made the model say what it said (occlusion).

A token's importance is the drop in the predicted label's probability when that token alone is removed
from the text: positive, it spoke for the label; negative, against it. The text and each of its
occlusions go to the model as one batch (N + 1 rows) through the same guarded path as /v1/classify
(coalescer, breaker, retries, deadline), so a text may have at most `max_texts - 1` tokens. A text of one
token is never sent empty (a model asked about "" invents an answer): that token's importance is measured
against the uniform prior, 1 / number of labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, g, request

from serving.contract import TOKENS_INPUT
from serving.gateway import deadline
from serving.gateway.admission import admitted
from serving.gateway.classifier import empty_result
from serving.gateway.config import GatewayConfig
from serving.gateway.context import gateway
from serving.gateway.errors import ApiError
from serving.gateway.routing import ROUTE_KEY_HEADER
from serving.gateway.validation import ClassifyRequest, classify_request, json_object, read_body

blueprint = Blueprint("explain", __name__)

FIELDS = ("model", "text", "version", "version_label", "timeout_ms")  # /v1/classify's, one `text` for `texts`


@blueprint.post("/v1/explain")
@admitted
def explain() -> dict[str, Any]:
    gw = gateway()
    req = parse_explain(read_body(request.environ, request.content_type, gw.config.max_body_bytes), gw.config)
    gw.check_served(req.model)
    route = gw.router.choose(req.model, req.version, req.version_label, request.headers.get(ROUTE_KEY_HEADER))
    occlusion = Occlusion(req.texts[0], gw.classifier.preparer, max_tokens=gw.config.max_texts - 1)
    with deadline.applied(deadline.from_request(request.headers.get(deadline.HEADER), req.timeout_ms)):
        scores = gw.classifier.scores(req.model, occlusion.rows, version=route.version, label=route.label)
    answer: dict[str, Any] = {"model": scores.model, "version": scores.version, "request_id": g.request_id}
    if not scores.probabilities:  # nothing left after cleaning: never sent, answered as /v1/classify does
        return {**answer, **{key: empty_result()[key] for key in ("label", "score", "error")}, "tokens": []}
    whole, *occluded = scores.probabilities
    best = max(range(len(whole)), key=whole.__getitem__)
    without = [row[best] for row in occluded] or [1 / len(whole)]  # one token: nothing left but the prior
    tokens = [
        {"token": token, "importance": whole[best] - rest}
        for token, rest in zip(occlusion.tokens, without, strict=True)
    ]
    return {**answer, "label": scores.labels[0], "score": whole[best], "tokens": tokens}


def parse_explain(body: bytes, config: GatewayConfig) -> ClassifyRequest:
    """The body checked as /v1/classify checks its fields (one `text` in place of `texts`), or an ApiError."""
    data = json_object(body, FIELDS)
    text = data.pop("text", None)
    if not isinstance(text, str):
        raise ApiError("invalid_request", "`text` must be a string")
    try:
        return classify_request({**data, "texts": [text]}, config)
    except ApiError as exc:
        raise ApiError(exc.code, exc.message.replace("texts[0]", "`text`"), exc.status) from None


@dataclass
class Occlusion:
    """The rows for one text, made once the model's input kind is known: the text as the model reads it,
    then the text without each of its tokens (jieba words for a `tokens` model, characters for `text`)."""

    text: str
    preparer: Callable[[str], Callable[[str], str]]  # Classifier.preparer: input kind -> what the model reads
    max_tokens: int
    tokens: list[str] = field(default_factory=list)

    def rows(self, kind: str) -> list[str]:
        words = kind == TOKENS_INPUT
        prepared = self.preparer(kind)(self.text)
        self.tokens = prepared.split() if words else list(prepared)
        if len(self.tokens) > self.max_tokens:
            raise ApiError(
                "text_too_long",
                f"`text` has {len(self.tokens)} {'words' if words else 'characters'} after cleaning; /v1/explain "
                f"takes at most {self.max_tokens} (one model row per token plus the text: TEXTCLF_MAX_TEXTS - 1)",
            )
        if not self.tokens:
            return []
        joined = " ".join if words else "".join
        if len(self.tokens) == 1:  # its only occlusion is empty: never sent (see the module docstring)
            return [joined(self.tokens)]
        return [joined(self.tokens), *(joined(self.tokens[:i] + self.tokens[i + 1 :]) for i in range(len(self.tokens)))]

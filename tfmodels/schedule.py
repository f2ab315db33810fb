"""Learning rate: linear warmup, then cosine or linear decay to zero; and the optimizer around it."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="textclf")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    def __init__(self, peak: float, warmup_steps: int, total_steps: int, kind: str = "cosine") -> None:
        self.peak, self.warmup_steps, self.total_steps, self.kind = peak, warmup_steps, max(total_steps, 1), kind

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        if self.kind == "cosine":
            decayed = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        else:
            decayed = self.peak * (1.0 - progress)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "warmup_steps": self.warmup_steps,
            "total_steps": self.total_steps,
            "kind": self.kind,
        }


def make_optimizer(config: dict[str, Any], total_steps: int) -> keras.optimizers.Optimizer:
    schedule = WarmupDecay(config["lr"], int(total_steps * config["warmup_ratio"]), total_steps, config["decay"])
    extra: dict[str, Any] = {"clipnorm": config["clipnorm"]} if config["clipnorm"] > 0 else {}
    if config["ema"] > 0:
        extra.update(use_ema=True, ema_momentum=config["ema"])
    if config["optimizer"] == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config["weight_decay"], **extra)
        # no decay on biases and normalisation scales/offsets (Keras and KerasHub name them so)
        optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return optimizer
    return keras.optimizers.Adam(schedule, **extra)

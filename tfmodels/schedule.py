"""Learning rate: linear warmup, then cosine or linear decay to zero; and the optimizer around it."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="textclf")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak`, then cosine or linear decay to zero at `total_steps`."""

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


def make_optimizer(
    *,
    lr: float,
    total_steps: int,
    warmup_ratio: float,
    decay: str,
    optimizer: str,
    weight_decay: float,
    clipnorm: float,
    ema: float,
) -> keras.optimizers.Optimizer:
    """Adam or AdamW on a WarmupDecay schedule; clipnorm 0 and ema 0 turn those off. No defaults: the
    trainer passes a TrainConfig's values, MLM pretraining BERT's own recipe."""
    schedule = WarmupDecay(lr, int(total_steps * warmup_ratio), total_steps, decay)
    extra: dict[str, Any] = {"clipnorm": clipnorm} if clipnorm > 0 else {}
    if ema > 0:
        extra.update(use_ema=True, ema_momentum=ema)
    if optimizer == "adamw":
        adamw = keras.optimizers.AdamW(schedule, weight_decay=weight_decay, **extra)
        # no decay on biases and normalisation scales/offsets (Keras and KerasHub name them so)
        adamw.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
        return adamw
    return keras.optimizers.Adam(schedule, **extra)

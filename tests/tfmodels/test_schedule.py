"""The learning-rate schedule and the optimizer built from explicit settings."""

from __future__ import annotations

import pytest


def test_schedule_warms_up_then_decays_to_zero() -> None:
    from tfmodels.schedule import WarmupDecay

    for kind in ("cosine", "linear"):
        lr = WarmupDecay(1.0, warmup_steps=10, total_steps=110, kind=kind)
        values = [float(lr(step)) for step in (0, 9, 10, 60, 110)]
        assert values[0] < values[1] <= 1.0 and values[2] == pytest.approx(1.0)
        assert values[3] == pytest.approx(0.5) and values[4] == pytest.approx(0.0, abs=1e-6)


def test_make_optimizer_takes_explicit_settings() -> None:
    import keras

    from tfmodels.schedule import WarmupDecay, make_optimizer

    adamw = make_optimizer(
        lr=0.1,
        total_steps=100,
        warmup_ratio=0.1,
        decay="linear",
        optimizer="adamw",
        weight_decay=0.01,
        clipnorm=1.0,
        ema=0.0,
    )
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.clipnorm == 1.0 and not adamw.use_ema
    schedule = keras.saving.deserialize_keras_object(adamw.get_config()["learning_rate"])
    assert isinstance(schedule, WarmupDecay) and (schedule.warmup_steps, schedule.kind) == (10, "linear")
    adam = make_optimizer(
        lr=0.1,
        total_steps=100,
        warmup_ratio=0.0,
        decay="cosine",
        optimizer="adam",
        weight_decay=0.0,
        clipnorm=0.0,
        ema=0.99,
    )
    assert type(adam) is keras.optimizers.Adam and adam.use_ema and adam.ema_momentum == 0.99
    assert adam.clipnorm is None


def test_make_optimizer_has_no_defaults() -> None:
    """Every caller states every setting: the trainer a TrainConfig's, MLM pretraining BERT's recipe."""
    import inspect

    from tfmodels.schedule import make_optimizer

    parameters = inspect.signature(make_optimizer).parameters.values()
    assert all(p.default is inspect.Parameter.empty and p.kind is p.KEYWORD_ONLY for p in parameters)

"""Training settings as dataclasses: the shared ones here, each family's in its package (a subclass).

Layering: the class's defaults < a --config file < flags given on the command line. The resolved settings
are saved as RUN_DIR/config.json (plain JSON, plus the family's name), so a run can be evaluated,
exported or resumed later, and that file can be passed back as --config.
"""

from __future__ import annotations

import json
import math
import typing
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml

from data_prep.errors import UserError
from data_prep.json_file import read_json_object
from tfmodels.run_dir import RunDir

# recorded in config.json beside the settings, ignored when that file is passed back as --config
RUN_KEYS = ("family", "data")

S = TypeVar("S", bound="Settings")
C = TypeVar("C", bound="TrainConfig")


@dataclass(frozen=True)
class Settings:
    """Frozen, type-checked settings: built from a mapping (a config file, flags), validated on creation,
    changed only through dataclasses.replace (which validates again)."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Range checks; a subclass extends them (super().validate() first)."""

    @classmethod
    def settings(cls) -> list[str]:
        """The names a --config file or a flag may set."""
        return sorted(f.name for f in fields(cls) if f.name not in RUN_KEYS)

    @classmethod
    def from_mapping(cls: type[S], values: Mapping[str, Any]) -> S:
        """Type-checked construction: an unknown name or a value of the wrong type is a UserError."""
        hints = typing.get_type_hints(cls)
        types = {f.name: hints[f.name] for f in fields(cls)}
        checked: dict[str, Any] = {}
        for key, value in values.items():
            if key not in types:
                raise UserError(f"unknown hyperparameter {key!r}; known: {', '.join(cls.settings())}")
            checked[key] = _typed(key, value, types[key])
        return cls(**checked)


@dataclass(frozen=True)
class TrainConfig(Settings):
    """What every family's trainer reads; a family subclasses it with its own fields and defaults."""

    family: ClassVar[str] = ""
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"optimizer": ("adam", "adamw"), "decay": ("cosine", "linear")}
    # values that runs saved before a key existed were trained with, where today's default differs
    LEGACY: ClassVar[dict[str, Any]] = {}
    # settings only `textclf export` reads: kept in config.json, but a run resumed or a --seeds rerun with
    # other values trains the same model, so changed_keys' callers leave them out
    EXPORT_ONLY: ClassVar[frozenset[str]] = frozenset()

    epochs: int = 6
    batch_size: int = 64  # per replica; global batch = batch_size x replicas
    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_ratio: float = 0.05
    decay: str = "cosine"
    clipnorm: float = 1.0  # 0 turns clipping off
    label_smoothing: float = 0.0
    ema: float = 0.0  # >0: keep a moving average of the weights (this momentum); dev, best and final use it
    patience: int = 2  # early stopping on dev accuracy; best weights restored
    seed: int = 1234
    shuffle_buffer: int = 20000
    bucketing: bool = True  # False: pad every batch to max_len (benchmark comparison only)
    max_len: int = 128  # length cap, in the family's units (words for LSTM)
    backup_every_steps: int = 50  # BackupAndRestore frequency, so a kill mid-epoch loses little
    strategy: str = "auto"
    max_train_examples: int = 0  # 0: all; >0: first N (smoke runs, bench)
    mixed_precision: bool = False  # mixed_float16 compute, float32 variables (GPUs)
    xla: bool = False  # jit_compile the train step (GPUs; one compile per bucket shape)
    data: str = ""  # the prepared dataset, absolute; set by the trainer, not a hyperparameter

    def validate(self) -> None:
        for key, allowed in self.CHOICES.items():
            if getattr(self, key) not in allowed:
                raise UserError(f"{key}={getattr(self, key)!r}: choose one of {', '.join(allowed)}")
        at_least(self, 1, "epochs", "batch_size", "max_len", "shuffle_buffer", "backup_every_steps")
        at_least(self, 0, "patience", "max_train_examples", "weight_decay", "clipnorm")
        positive(self, "lr")
        in_range(self, "warmup_ratio", top_included=True)
        in_range(self, "ema", "label_smoothing")

    @classmethod
    def from_record(cls: type[C], record: Mapping[str, Any]) -> C:
        """A saved config.json: keys it lacks take LEGACY or default values, keys no longer known are dropped."""
        known = {f.name for f in fields(cls)}
        return cls.from_mapping({**cls.LEGACY, **{k: v for k, v in record.items() if k in known}})

    def to_record(self) -> dict[str, Any]:
        return {"family": self.family, **asdict(self)}


def changed_keys(saved: Mapping[str, Any], new: Mapping[str, Any], ignore: Collection[str] = ()) -> list[str]:
    """The keys whose values differ (present on one side only counts), sorted, leaving out `ignore`: what a
    refusal to resume or rerun with other settings names."""
    return sorted(k for k in set(saved) | set(new) if k not in ignore and saved.get(k) != new.get(k))


def at_least(settings: Settings, minimum: float, *names: str) -> None:
    for name in names:
        if not getattr(settings, name) >= minimum:
            raise UserError(f"{name} must be at least {minimum}, got {getattr(settings, name)}")


def positive(settings: Settings, *names: str) -> None:
    for name in names:
        if not getattr(settings, name) > 0:
            raise UserError(f"{name} must be greater than 0, got {getattr(settings, name)}")


def in_range(settings: Settings, *names: str, top_included: bool = False) -> None:
    """Fractions: [0, 1), or [0, 1] with top_included (a dropout or momentum of 1 would learn nothing)."""
    for name in names:
        value = getattr(settings, name)
        if not (0 <= value <= 1 if top_included else 0 <= value < 1):
            raise UserError(f"{name} must be in [0, 1{']' if top_included else ')'}, got {value}")


def _typed(key: str, value: Any, hint: Any) -> Any:
    allowed = typing.get_args(hint) or (hint,)
    if isinstance(value, bool) and bool not in allowed:
        pass  # True is an int to Python, not to a config file's reader
    elif float in allowed and isinstance(value, int | float | str):
        # PyYAML reads `1e-3` (no dot) as a string; float() reads it as the number it is
        try:
            number = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return number
    elif isinstance(value, allowed):
        return value
    names = " or ".join(t.__name__ for t in allowed if t is not type(None))
    raise UserError(f"hyperparameter {key}={value!r} should be a {'finite ' if float in allowed else ''}{names}")


def load_config_file(path: Path) -> dict[str, Any]:
    """A YAML or JSON mapping of hyperparameters (JSON is YAML, so one parser reads both)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not valid YAML/JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of hyperparameters")
    return data


def resolve(config_class: type[C], config_file: Path | None, overrides: Mapping[str, Any]) -> C:
    """Defaults < --config file < flags given on the command line (None = not given)."""
    layered = load_config_file(config_file) if config_file else {}
    layered.update({k: v for k, v in overrides.items() if v is not None})
    return config_class.from_mapping({k: v for k, v in layered.items() if k not in RUN_KEYS})


def save_config(run: RunDir, config: TrainConfig) -> None:
    from data_prep.atomic import write_text

    write_text(run.config, json.dumps(config.to_record(), indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def read_record(run: RunDir) -> dict[str, Any]:
    """RUN_DIR/config.json as saved; which family's config class reads it is the record's "family"."""
    if not run.config.is_file():
        raise UserError(f"{run.path} is not a training run (no {run.config.name}); run `textclf train` first")
    return read_json_object(run.config)

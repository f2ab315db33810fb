"""BertConfig: the BERT family's settings and its values for the shared ones; MLMConfig: pretraining's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from data_prep.errors import UserError
from tfmodels.bert.presets import check_size
from tfmodels.config import Settings, TrainConfig, at_least, in_range, positive


@dataclass(frozen=True)
class BertConfig(TrainConfig):
    # the shared values suit a tiny BERT on short Chinese reviews on CPU (dev accuracy, builtin corpus)
    family: ClassVar[str] = "bert"

    preset: str | None = None  # local KerasHub or Hugging Face folder; None (or ""): build `size` from scratch
    size: str = "tiny"  # scratch only; tfmodels.bert.presets.SIZES
    vocab_size: int = 8000  # WordPiece vocabulary of a scratch model (CJK characters + Latin pieces)
    dropout: float = 0.2  # BERT's own 0.1 suits a pretrained base model; a tiny one on small data overfits
    epochs: int = 4
    batch_size: int = 32
    lr: float = 3e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    decay: str = "linear"
    max_len: int = 128  # WordPiece tokens including [CLS] and [SEP]

    def __post_init__(self) -> None:
        if self.preset == "":  # a config file's `preset: ""` means scratch, as None does
            object.__setattr__(self, "preset", None)
        super().__post_init__()

    def validate(self) -> None:
        super().validate()
        at_least(self, 1, "vocab_size")
        in_range(self, "dropout")
        if self.preset is None:
            check_size(self.size)  # before the vocabulary, which takes a while


@dataclass(frozen=True)
class MLMConfig(Settings):
    """Pretraining settings (`textclf pretrain-mlm`); `--flag` values override these defaults."""

    size: str = "tiny"
    vocab_size: int = 8000
    sequence_length: int = 128
    batch_size: int = 32  # per replica
    epochs: int = 1
    lr: float = 1e-3
    mask_rate: float = 0.15
    max_examples: int = 0  # 0: all; >0: the first N texts (smoke runs)
    seed: int = 1234
    strategy: str = "auto"

    def validate(self) -> None:
        at_least(self, 1, "vocab_size", "sequence_length", "batch_size", "epochs")
        at_least(self, 0, "max_examples")
        positive(self, "lr")
        if not 0 < self.mask_rate < 1:
            raise UserError(f"mask rate must be between 0 and 1, got {self.mask_rate}")
        check_size(self.size)
